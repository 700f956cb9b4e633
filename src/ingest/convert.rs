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
    let trimmed = raw.str().strip_chars(lit(NULL).cast(DataType::String));
    match declared {
        ColumnType::String => trimmed,
        ColumnType::Int => trimmed.cast(DataType::Int64),
        ColumnType::Float => finite(trimmed.cast(DataType::Float64)),
        ColumnType::Bool => {
            let lower = trimmed.str().to_lowercase();
            let any_of = |words: [&str; 5]| {
                words
                    .iter()
                    .map(|w| lower.clone().eq(lit(*w)))
                    .reduce(|a, b| a.or(b))
                    .expect("word lists are non-empty")
            };
            when(any_of(TRUE_WORDS))
                .then(lit(true))
                .when(any_of(FALSE_WORDS))
                .then(lit(false))
                .otherwise(lit(NULL).cast(DataType::Boolean))
        }
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

/// NaN and ±inf are not measurements: they become null and so a rejected row.
fn finite(x: Expr) -> Expr {
    when(x.clone().is_finite())
        .then(x)
        .otherwise(lit(NULL).cast(DataType::Float64))
}
