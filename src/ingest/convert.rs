//! Raw column → declared type. A value that does not convert becomes null, which the ingest stage
//! turns into a rejected row naming the column and the offending text.

use polars::prelude::*;
use polars_arrow::bitmap::Bitmap;

use crate::definitions::ColumnType;
use crate::definitions::NumberFormat;

const TRUE_WORDS: [&str; 5] = ["true", "1", "yes", "ja", "t"];
const FALSE_WORDS: [&str; 5] = ["false", "0", "no", "nej", "f"];

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

/// How a text source writes values that have more than one way: numbers and dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TextFormat<'a> {
    pub(crate) numbers: NumberFormat,
    /// A chrono format string for dates (default `%Y-%m-%d`).
    pub(crate) date: Option<&'a str>,
}

/// The typed expression for a raw column, or `None` when the raw type can never hold the
/// declared one (e.g. a Parquet boolean declared as a date).
pub(crate) fn typed_column(
    raw: Expr,
    raw_type: &DataType,
    declared: ColumnType,
    text: TextFormat,
) -> Option<Expr> {
    if raw_type == &DataType::String {
        if text.numbers != NumberFormat::default() {
            match declared {
                ColumnType::Int => return Some(parse_numbers(raw, text.numbers, true)),
                ColumnType::Float => return Some(parse_numbers(raw, text.numbers, false)),
                _ => {}
            }
        }
        return Some(from_text(raw, declared, text.date));
    }
    let expr = match declared {
        ColumnType::String => raw.cast(DataType::String),
        ColumnType::Int if raw_type.is_integer() || raw_type.is_bool() => raw.cast(DataType::Int64),
        // SQL Server's and Oracle's DECIMAL(p, s): hours and amounts. A fraction in a column
        // declared int is a rejected row, as for floats.
        ColumnType::Float if raw_type.is_decimal() => finite(raw.cast(DataType::Float64)),
        ColumnType::Int if raw_type.is_float() || raw_type.is_decimal() => {
            let raw = raw.cast(DataType::Float64);
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
        // A TIMESTAMP/DATETIME (with or without time zone) is the date it falls on.
        ColumnType::Date | ColumnType::Month
            if matches!(raw_type, DataType::Date | DataType::Datetime(_, _)) =>
        {
            raw.cast(DataType::Date)
        }
        ColumnType::Year if raw_type.is_integer() => {
            from_text(raw.cast(DataType::String), ColumnType::Year, None)
        }
        _ => return None,
    };
    Some(expr)
}

/// Whether [`typed_column`] turns every value of a column of type `raw_type` into a value: an
/// integer column read as int (all but u64, which may not fit), a boolean read as bool or int,
/// a date or timestamp read as a date. Such a column needs no per-row conversion check.
pub(crate) fn conversion_cannot_fail(raw_type: &DataType, declared: ColumnType) -> bool {
    match declared {
        ColumnType::String => true,
        ColumnType::Int => {
            raw_type.is_bool() || (raw_type.is_integer() && raw_type != &DataType::UInt64)
        }
        ColumnType::Bool => raw_type.is_bool(),
        ColumnType::Date | ColumnType::Month => {
            matches!(raw_type, DataType::Date | DataType::Datetime(_, _))
        }
        _ => false,
    }
}

fn from_text(raw: Expr, declared: ColumnType, date_format: Option<&str>) -> Expr {
    let trimmed = trimmed(raw.clone());
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
        ColumnType::Year => first_day(trimmed, 4, "-01-01"),
        // `2024-01` is the month; `2024-01-15` is a date, not a month (a rejected row).
        ColumnType::Month => first_day(trimmed, 7, "-01"),
        ColumnType::Date => trimmed.str().to_date(StrptimeOptions {
            format: Some(date_format.unwrap_or("%Y-%m-%d").into()),
            strict: false,
            exact: true,
            cache: true,
        }),
    }
}

/// Text without surrounding whitespace (`str::trim`, as polars' `strip_chars`). Most exports
/// carry no padding, and then the column is handed on as it is: building a trimmed copy of
/// every text column was a tenth of a large run's time.
fn trimmed(raw: Expr) -> Expr {
    raw.map_with_fmt_str(
        |c| {
            let text = c.str()?;
            if !text.downcast_iter().any(|a| a.values_iter().any(padded)) {
                return Ok(c);
            }
            let out: StringChunked = text.apply_values(|v| std::borrow::Cow::Borrowed(v.trim()));
            Ok(out.into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::String)),
        TRIMMED,
    )
}

/// Whether `str::trim` would change `v`. Text that starts and ends with a visible ASCII
/// character (nearly every value) is settled by two bytes.
fn padded(v: &str) -> bool {
    let visible = |b: &u8| b.is_ascii_graphic();
    match (v.as_bytes().first(), v.as_bytes().last()) {
        (Some(first), Some(last)) if visible(first) && visible(last) => false,
        _ => v.trim().len() != v.len(),
    }
}

/// The name [`trimmed`] carries in a plan, by which the SQL printer knows it.
pub(crate) const TRIMMED: &str = "trimmed";

/// The first day of a year (`2024`, 4 characters) or month (`2024-01`, 7), from text of exactly
/// `len` characters completed by `rest` to an ISO date; null otherwise.
fn first_day(trimmed: Expr, len: u32, rest: &str) -> Expr {
    let date = concat_str([trimmed.clone(), lit(rest)], "", false)
        .str()
        .to_date(StrptimeOptions {
            format: Some("%Y-%m-%d".into()),
            strict: false,
            exact: true,
            cache: true,
        });
    when(trimmed.str().len_chars().eq(lit(len)))
        .then(date)
        .otherwise(lit(NULL).cast(DataType::Date))
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

/// NaN and ±inf are not measurements: they become null and so a rejected row. Only the
/// validity changes, so the values are not copied; a chunk with every value finite (nearly all)
/// passes as it is.
fn finite(x: Expr) -> Expr {
    x.map_with_fmt_str(
        |c| {
            let values = c.f64()?;
            let chunks = values.downcast_iter().map(|a| {
                if a.values().iter().all(|v| v.is_finite()) {
                    return a.clone();
                }
                let finite: Bitmap = a.values().iter().map(|v| v.is_finite()).collect();
                let validity = match a.validity() {
                    Some(valid) => valid & &finite,
                    None => finite,
                };
                a.clone().with_validity(Some(validity))
            });
            Ok(Float64Chunked::from_chunk_iter(values.name().clone(), chunks).into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::Float64)),
        FINITE,
    )
}

/// The name [`finite`] carries in a plan, by which the SQL printer knows it.
pub(crate) const FINITE: &str = "finite";

#[cfg(test)]
mod tests {
    use super::*;

    /// Days since 1970 of each value read as `declared` (null where it does not convert).
    fn days(values: &[&str], declared: ColumnType, date: Option<&str>) -> Vec<Option<i32>> {
        let text = TextFormat {
            numbers: NumberFormat::default(),
            date,
        };
        let df = df!("x" => values).unwrap();
        let typed = typed_column(col("x"), &DataType::String, declared, text).unwrap();
        let out = df
            .lazy()
            .select([typed.cast(DataType::Int32)])
            .collect()
            .unwrap();
        out.column("x").unwrap().i32().unwrap().iter().collect()
    }

    fn day(y: i32, m: u32, d: u32) -> Option<i32> {
        let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        Some((date - epoch).num_days() as i32)
    }

    #[test]
    fn dates_in_the_formats_swedish_systems_write() {
        assert_eq!(
            days(
                &["31/3/2024", "01/01/2022", "3/13/2024"],
                ColumnType::Date,
                Some("%d/%m/%Y")
            ),
            vec![day(2024, 3, 31), day(2022, 1, 1), None]
        );
        assert_eq!(
            days(
                &["20240331", "2024-03-31"],
                ColumnType::Date,
                Some("%Y%m%d")
            ),
            vec![day(2024, 3, 31), None]
        );
        assert_eq!(
            days(&["01.01.2022"], ColumnType::Date, Some("%d.%m.%Y")),
            vec![day(2022, 1, 1)]
        );
        assert_eq!(
            days(
                &["2024-01", " 2022-12 ", "2024-01-15", "2024-13"],
                ColumnType::Month,
                None
            ),
            vec![day(2024, 1, 1), day(2022, 12, 1), None, None]
        );
    }

    #[test]
    fn text_is_trimmed_only_where_padded() {
        let read = |values: &[Option<&str>]| -> Vec<Option<String>> {
            let df = df!("x" => values).unwrap();
            let typed = typed_column(
                col("x"),
                &DataType::String,
                ColumnType::String,
                TextFormat::default(),
            )
            .unwrap();
            let out = df.lazy().select([typed]).collect().unwrap();
            let text = out.column("x").unwrap().str().unwrap().clone();
            text.iter().map(|v| v.map(str::to_string)).collect()
        };
        // No padding anywhere: handed on unchanged (nulls and empty text kept apart).
        assert_eq!(
            read(&[Some("K1"), None, Some(""), Some("a b")]),
            vec![Some("K1".into()), None, Some("".into()), Some("a b".into())]
        );
        // One padded value (here a no-break space, as Excel writes): every value trimmed as
        // `str::trim` trims it, the others untouched.
        assert_eq!(
            read(&[Some("K1"), Some("\u{a0}K2 "), None, Some("\tK3\r\n")]),
            vec![
                Some("K1".into()),
                Some("K2".into()),
                None,
                Some("K3".into())
            ]
        );
    }

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
