//! Raw column → declared type. A value that does not convert becomes null, which the ingest stage
//! turns into a rejected row naming the column and the offending text.

use polars::prelude::*;

use crate::definitions::ColumnType;

const TRUE_WORDS: [&str; 5] = ["true", "1", "yes", "ja", "t"];
const FALSE_WORDS: [&str; 5] = ["false", "0", "no", "nej", "f"];

/// The typed expression for a raw column, or `None` when the raw type can never hold the
/// declared one (e.g. a Parquet boolean declared as a date).
pub fn typed_column(raw: Expr, raw_type: &DataType, declared: ColumnType) -> Option<Expr> {
    if raw_type == &DataType::String {
        return Some(from_text(raw, declared));
    }
    let expr = match declared {
        ColumnType::String => raw.cast(DataType::String),
        ColumnType::Int if raw_type.is_integer() || raw_type.is_bool() => raw.cast(DataType::Int64),
        ColumnType::Int if raw_type.is_float() => {
            // A float holding a whole number is an int; 2.5 is not.
            let as_int = raw.clone().cast(DataType::Int64);
            when(as_int.clone().cast(DataType::Float64).eq(raw))
                .then(as_int)
                .otherwise(lit(NULL).cast(DataType::Int64))
        }
        ColumnType::Float if raw_type.is_primitive_numeric() => finite(raw.cast(DataType::Float64)),
        ColumnType::Bool if raw_type.is_bool() => raw,
        ColumnType::Bool if raw_type.is_integer() => when(raw.clone().eq(lit(1)))
            .then(lit(true))
            .when(raw.eq(lit(0)))
            .then(lit(false))
            .otherwise(lit(NULL).cast(DataType::Boolean)),
        ColumnType::Date if matches!(raw_type, DataType::Date | DataType::Datetime(_, _)) => {
            raw.cast(DataType::Date)
        }
        ColumnType::Year if raw_type.is_integer() => {
            from_text(raw.cast(DataType::String), ColumnType::Year)
        }
        _ => return None,
    };
    Some(expr)
}

fn from_text(raw: Expr, declared: ColumnType) -> Expr {
    let trimmed = raw
        .clone()
        .str()
        .strip_chars(lit(NULL).cast(DataType::String));
    match declared {
        ColumnType::String => trimmed,
        ColumnType::Int => trimmed.cast(DataType::Int64),
        ColumnType::Float => finite(trimmed.cast(DataType::Float64)),
        // One pass without allocating a lowercased copy: this runs on every row of a source.
        ColumnType::Bool => raw.map(
            |c| {
                let text = c.str()?;
                let out: BooleanChunked = text
                    .iter()
                    .map(|v| v.and_then(|v| word_bool(v.trim())))
                    .collect();
                Ok(out.with_name(text.name().clone()).into_column())
            },
            |_, f| Ok(Field::new(f.name().clone(), DataType::Boolean)),
        ),
        ColumnType::Year => {
            let four_digits = trimmed.clone().str().len_chars().eq(lit(4u32));
            let date = concat_str([trimmed, lit("-01-01")], "", false)
                .str()
                .to_date(StrptimeOptions {
                    format: Some("%Y-%m-%d".into()),
                    strict: false,
                    exact: true,
                    cache: true,
                });
            when(four_digits)
                .then(date)
                .otherwise(lit(NULL).cast(DataType::Date))
        }
        ColumnType::Date => trimmed.str().to_date(StrptimeOptions {
            format: Some("%Y-%m-%d".into()),
            strict: false,
            exact: true,
            cache: true,
        }),
    }
}

/// `true`/`false` (and 1/0, yes/no, ja/nej, t/f), in any letter case.
fn word_bool(v: &str) -> Option<bool> {
    if TRUE_WORDS.iter().any(|w| v.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE_WORDS.iter().any(|w| v.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// NaN and ±inf are not measurements: they become null and so a rejected row.
fn finite(x: Expr) -> Expr {
    when(x.clone().is_finite())
        .then(x)
        .otherwise(lit(NULL).cast(DataType::Float64))
}
