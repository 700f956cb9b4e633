//! Raw column → declared type. A value that does not convert becomes null, which the ingest stage
//! turns into a rejected row naming the column and the offending text.

use polars::prelude::*;

use crate::definitions::ColumnType;

const TRUE_WORDS: [&str; 5] = ["true", "1", "yes", "ja", "t"];
const FALSE_WORDS: [&str; 5] = ["false", "0", "no", "nej", "f"];

/// How numbers are written in a text source: Swedish exports write `1 234,5` (decimal comma,
/// a space or no-break space between thousands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NumberFormat {
    pub decimal_comma: bool,
    /// The thousands separator; a space stands for every kind of space (U+0020, U+00A0, U+202F).
    pub thousands: Option<char>,
}

impl NumberFormat {
    /// `text` as a number in this format: separators dropped, the decimal comma made a point.
    fn normalise(&self, text: &str) -> String {
        let is_sep = |c: char| match self.thousands {
            Some(' ') => matches!(c, ' ' | '\u{a0}' | '\u{202f}'),
            Some(sep) => c == sep,
            None => false,
        };
        text.trim()
            .chars()
            .filter(|c| !is_sep(*c))
            .map(|c| {
                if self.decimal_comma && c == ',' {
                    '.'
                } else {
                    c
                }
            })
            .collect()
    }
}

/// Numbers written in `format`, parsed in one pass over the text (float, or int when `int`).
fn parse_numbers(raw: Expr, format: NumberFormat, int: bool) -> Expr {
    let dtype = if int {
        DataType::Int64
    } else {
        DataType::Float64
    };
    raw.map(
        move |c| {
            let text = c.str()?;
            let out: Column = if int {
                let v: Int64Chunked = text
                    .iter()
                    .map(|v| v.and_then(|v| format.normalise(v).parse::<i64>().ok()))
                    .collect();
                v.with_name(text.name().clone()).into_column()
            } else {
                let v: Float64Chunked = text
                    .iter()
                    .map(|v| {
                        v.and_then(|v| format.normalise(v).parse::<f64>().ok())
                            .filter(|x| x.is_finite())
                    })
                    .collect();
                v.with_name(text.name().clone()).into_column()
            };
            Ok(out)
        },
        move |_, f| Ok(Field::new(f.name().clone(), dtype.clone())),
    )
}

/// The typed expression for a raw column, or `None` when the raw type can never hold the
/// declared one (e.g. a Parquet boolean declared as a date).
pub fn typed_column(
    raw: Expr,
    raw_type: &DataType,
    declared: ColumnType,
    numbers: NumberFormat,
) -> Option<Expr> {
    if raw_type == &DataType::String {
        if numbers != NumberFormat::default() {
            match declared {
                ColumnType::Int => return Some(parse_numbers(raw, numbers, true)),
                ColumnType::Float => return Some(parse_numbers(raw, numbers, false)),
                _ => {}
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_numbers_normalise() {
        let sv = NumberFormat {
            decimal_comma: true,
            thousands: Some(' '),
        };
        assert_eq!(sv.normalise(" 334 800,50 "), "334800.50");
        assert_eq!(sv.normalise("1\u{a0}234,5"), "1234.5");
        assert_eq!(sv.normalise("1\u{202f}234"), "1234");
        assert_eq!(sv.normalise("-12,0"), "-12.0");
        let dots = NumberFormat {
            decimal_comma: true,
            thousands: Some('.'),
        };
        assert_eq!(dots.normalise("1.234.567,8"), "1234567.8");
    }
}
