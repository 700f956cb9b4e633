//! Sources → typed lazy frames. Every row is either usable (typed columns, its org unit and month)
//! or rejected with a reason naming the file, line and column. Nothing is dropped silently: rows
//! dated outside the run's months are counted, not rejected.
//!
//! This stage only builds lazy plans; the compute stage adds the aggregations and runs them, so
//! one scan of a source serves every indicator over it.

mod convert;
mod files;
mod kolada_json;
pub(crate) mod quality;
#[cfg(feature = "distributed")]
pub(crate) mod remote;

pub(crate) use files::{InputFile, expand_sources};

use std::collections::BTreeSet;
use std::sync::Arc;

use polars::prelude::*;
use polars_arrow::array::Array;
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use thiserror::Error;

use crate::definitions::{CellText, ColumnChecks, ColumnType, SourceDef, read_sheet};
use crate::org::{CodeMapping, OrgTree};
use crate::period::{RunMonths, days_since_epoch};

pub(crate) use crate::definitions::normalise;
pub(crate) use convert::{FINITE, TRIMMED, TextFormat, conversion_cannot_fail, typed_column};

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("source '{source_name}': no file matches '{pattern}'")]
    NoFiles {
        source_name: String,
        pattern: String,
    },
    #[error("source '{source_name}': bad path pattern '{pattern}': {message}")]
    BadPattern {
        source_name: String,
        pattern: String,
        message: String,
    },
    #[error(
        "{file}: an object-store source is read by the SQL engines (--engine datafusion or ballista://…, in a build with `cargo build --release --features distributed`); this build reads local files only"
    )]
    NeedsSqlEngine { file: String },
    #[error(
        "source '{source_name}': only Parquet sources can be read from an object store (CSV, Excel and Kolada JSON are checked line by line on this machine: copy them here)"
    )]
    StoredNotParquet { source_name: String },
    #[error("{file}: cannot read: {message}")]
    Unreadable { file: String, message: String },
    #[error(
        "source '{source_name}': '{file}' is reached through the symlink '{link}', which points back to a folder above it (a loop: the pattern would read the same files again and again); remove the link or narrow the path pattern"
    )]
    SymlinkLoop {
        source_name: String,
        file: String,
        link: String,
    },
    #[error(
        "{file}: line 1: the header is one field that contains '{found}': the file is separated by '{found}'; set delimiter = \"{found}\" in its [[sources]] entry (and decimal = \",\" if numbers are written 12,5; for a Swedish Excel export, dialect = \"excel-sv\" sets both)"
    )]
    Delimiter { file: String, found: String },
    #[error("{file}: the file is empty (not even a header line)")]
    EmptyFile { file: String },
    #[error(
        "{file}: the file changed while the run read it (its size or modification time differs from when it was hashed); nothing was published — rerun once the export has finished writing"
    )]
    Changed { file: String },
    #[error(
        "{file}: byte {offset}: a NUL byte — this is not a text CSV (a binary file, or text saved as UTF-16); export it as a UTF-8 (or declared encoding) CSV"
    )]
    NotText { file: String, offset: usize },
    #[error(
        "{file}: a header but no rows; an empty export is treated as a failure (set allow_empty = true on source '{source_name}' if it is expected)"
    )]
    NoRows { file: String, source_name: String },
    #[error("{file}: line {line}: {found} fields where the header has {expected} (a ragged row)")]
    Ragged {
        file: String,
        line: u64,
        found: usize,
        expected: usize,
    },
    #[error(
        "{file}: line {line}, field {field}: not valid UTF-8 — save the file as UTF-8, or set encoding = \"windows-1252\" on its [[sources]] entry (what older Windows systems and Excel's plain CSV write; dialect = \"excel-sv\" reads it too)"
    )]
    NotUtf8 {
        file: String,
        line: u64,
        field: usize,
    },
    #[error("{file}: not a readable Parquet file: {message}")]
    Parquet { file: String, message: String },
    #[error(
        "{file}: missing column(s) {missing} declared by source '{source_name}' (the file has: {found})"
    )]
    MissingColumns {
        file: String,
        source_name: String,
        missing: String,
        found: String,
    },
    #[error(
        "{file}: column '{column}' has type {found}, which cannot hold the declared {expected}"
    )]
    UnusableType {
        file: String,
        column: String,
        found: String,
        expected: String,
    },
}

/// A source's rows as lazy frames, split by what happens to them.
pub(crate) struct SourceRows {
    pub(crate) name: String,
    pub(crate) files: Vec<InputFile>,
    /// Usable rows in the run's months: `__unit`, `__month` and the declared columns, typed.
    pub(crate) usable: LazyFrame,
    /// `source, file, row, reason` for every row left out.
    pub(crate) rejected: LazyFrame,
    /// `__month, rows`: usable rows per month, the run's months and any outside them (those are
    /// kept out of the values, not rejected). The data-quality gates read it.
    pub(crate) month_rows: LazyFrame,
    /// The same for the months outside the run only: with the usable rows counted per unit and
    /// month in the compute stage's own group-by, this completes `month_rows` without a
    /// group-by of its own over every row.
    pub(crate) outside_month_rows: LazyFrame,
}

/// Builds the lazy frames for one source. Reads only file headers and hashes the files.
pub(crate) fn scan_source(
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    files: Vec<InputFile>,
) -> Result<SourceRows, IngestError> {
    rows_of(source, tree, mapping, months, files, None)
}

/// [`scan_source`] over rows already read: per file, its raw columns as the file holds them
/// and `__row` (0-based, the file's row). Engines that find the rejected rows elsewhere
/// (DataFusion) build their messages here, with the same checks as a polars scan.
pub(crate) fn checked_rows(
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    files: Vec<InputFile>,
    raw: Vec<DataFrame>,
) -> Result<SourceRows, IngestError> {
    rows_of(source, tree, mapping, months, files, Some(raw))
}

fn rows_of(
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    files: Vec<InputFile>,
    raw: Option<Vec<DataFrame>>,
) -> Result<SourceRows, IngestError> {
    let mut per_file = Vec::with_capacity(files.len());
    let mut messages = Vec::new();
    let mut numbering = Vec::with_capacity(files.len());
    for (k, file) in files.iter().enumerate() {
        let preloaded = raw.as_ref().map(|frames| frames[k].clone());
        let (rows, m, n) = typed_rows(source, file, preloaded)?;
        per_file.push(rows);
        messages = m;
        numbering.push(n);
    }
    let rows = concat(per_file, UnionArgs::default()).map_err(|e| IngestError::Unreadable {
        file: source.path.get_ref().clone(),
        message: e.to_string(),
    })?;
    let rows = place_in_org(rows, source, tree, mapping, &mut messages).map_err(|e| {
        IngestError::Unreadable {
            file: source.path.get_ref().clone(),
            message: e.to_string(),
        }
    })?;
    let reason = messages.into_iter().enumerate().rev().fold(
        lit(NULL).cast(DataType::String),
        |otherwise, (k, msg)| {
            when(col("__why").eq(lit(k as u32 + 1)))
                .then(msg)
                .otherwise(otherwise)
        },
    );

    let date = col(source.date_column.get_ref().as_str());
    let month = date
        .map(
            |dates| {
                let days = dates.cast(&DataType::Int32)?;
                Ok(crate::period::months_of_days(days.i32()?)
                    .with_name(dates.name().clone())
                    .into_column())
            },
            |_, f| Ok(Field::new(f.name().clone(), DataType::Int32)),
        )
        .alias("__month");
    // One cached frame under every output (values, partial states, rejected rows, rows per
    // month): without it polars reads and converts the files once per output.
    let rows = rows.with_column(month).cache();
    let ok = col("__why").is_null();
    let in_months = col("__month")
        .gt_eq(lit(months.first.0))
        .and(col("__month").lt_eq(lit(months.last.0)));

    let mut keep: Vec<Expr> = vec![col("__unit"), col("__month")];
    keep.extend(source.columns.get_ref().keys().map(|c| col(c.as_str())));
    let usable = rows
        .clone()
        .filter(ok.clone().and(in_months.clone()))
        .select(keep);
    let rejected = rows
        .clone()
        .filter(ok.clone().not().and(col("__why").neq(lit(BLANK_LINE))))
        .select([
            lit(source.name.get_ref().as_str()).alias("source"),
            col("__file").alias("file"),
            row_numbers(numbering).alias("row"),
            reason.alias("reason"),
        ]);
    let per_month = |rows: LazyFrame| {
        rows.group_by([col("__month")])
            .agg([len().cast(DataType::Int64).alias("rows")])
    };
    let outside_month_rows = per_month(rows.clone().filter(ok.clone().and(in_months.not())));
    let month_rows = per_month(rows.filter(ok));
    Ok(SourceRows {
        name: source.name.get_ref().clone(),
        files,
        usable,
        rejected,
        month_rows,
        outside_month_rows,
    })
}

/// One file's rows with typed declared columns, their raw values (`__raw_<name>`), `__file`,
/// `__row` (the line in a CSV, the 1-based row in a Parquet file) and `__why` (null when the row
/// is usable so far, else the 1-based number of the first failing check), with the message of
/// each check, in order.
fn typed_rows(
    source: &SourceDef,
    file: &InputFile,
    preloaded: Option<DataFrame>,
) -> Result<(LazyFrame, Vec<Expr>, RowNumbering), IngestError> {
    let unreadable = |e: PolarsError| IngestError::Unreadable {
        file: file.display.clone(),
        message: e.to_string(),
    };
    let path = PlRefPath::new(file.read_path.to_string_lossy().to_string());
    let row_index = Some(RowIndex {
        name: "__row".into(),
        offset: 0,
    });
    let mut file_label = file.display.clone();
    let (mut lf, first_row) = match (preloaded, source.format) {
        // Rows another engine read (Parquet only): numbered as a scan of the file numbers them.
        (Some(frame), _) => (frame.lazy(), 1),
        (None, crate::definitions::SourceFormat::Csv) => (
            LazyCsvReader::new(path)
                .with_has_header(true)
                .with_separator(source.delimiter_byte())
                // Every column is read as text, so a bad value becomes a rejected row that names
                // its line and column instead of failing the whole read.
                .with_infer_schema_length(Some(0))
                .with_row_index(row_index)
                .finish()
                .map_err(unreadable)?,
            2, // line 1 is the header
        ),
        (None, crate::definitions::SourceFormat::KoladaJson) => (
            kolada_json::read(&file.path)
                .map_err(|message| IngestError::Unreadable {
                    file: file.display.clone(),
                    message,
                })?
                .lazy(),
            1,
        ),
        (None, crate::definitions::SourceFormat::Xlsx) => {
            let (frame, first_row, sheet) = sheet_rows(source, file)?;
            // Rejected rows name the sheet beside the file: `hr.xlsx [Blad1]`, row 7.
            file_label = format!("{} [{sheet}]", file.display);
            (frame.lazy(), first_row)
        }
        (None, crate::definitions::SourceFormat::Parquet) => (
            LazyFrame::scan_parquet(
                path,
                ScanArgsParquet {
                    row_index,
                    ..Default::default()
                },
            )
            .map_err(unreadable)?,
            1,
        ),
    };
    let checks = row_checks(source, file, &mut lf, BlankRows::AsTheFooterShows)?;
    // `__row` stays the scan's 0-based index: only rejected rows need their line or row number,
    // so it is worked out for them alone (`row_numbers`), not for every row.
    let mut select = vec![lit(file_label.as_str()).alias("__file"), col("__row")];
    select.extend(checks.typed.into_iter().map(|(name, e)| e.alias(name)));
    let lf = lf.select(select).with_column(checks.why.alias("__why"));
    let numbering = RowNumbering {
        label: file_label,
        first_row,
        line_shifts: file.line_shifts.clone(),
    };
    Ok((lf, checks.messages, numbering))
}

/// How one file's 0-based scan index becomes the number a person finds the row at: the line in
/// a CSV (the header, and the extra lines of quoted fields that span lines, counted), the row in
/// a Parquet file, the row on a sheet.
struct RowNumbering {
    /// The file's `__file` label.
    label: String,
    /// The number of the first row (2 in a CSV: line 1 is the header).
    first_row: i64,
    /// Where quoted fields spanning lines shift the lines (`files::line_of_row`); empty when none do.
    line_shifts: Vec<(u64, u64)>,
}

/// `__file, __row` → the row number of each row, per its file's numbering.
fn row_numbers(numbering: Vec<RowNumbering>) -> Expr {
    let numbering = Arc::new(numbering);
    map_multiple(
        move |columns| {
            let files = columns[0].cast(&DataType::String)?;
            let files = files.str()?;
            let rows = columns[1].cast(&DataType::Int64)?;
            let rows = rows.i64()?;
            let numbers: Int64Chunked = files
                .iter()
                .zip(rows.iter())
                .map(|(file, row)| {
                    let (file, row) = (file?, row?);
                    let n = numbering.iter().find(|n| n.label == file)?;
                    Some(if n.line_shifts.is_empty() {
                        row + n.first_row
                    } else {
                        files::line_of_row(&n.line_shifts, row as u64) as i64
                    })
                })
                .collect();
            Ok(numbers.with_name(rows.name().clone()).into_column())
        },
        [col("__file"), col("__row")],
        |_, fields| Ok(Field::new(fields[1].name().clone(), DataType::Int64)),
    )
}

/// A source's row checks over one file's columns: the typed value and the raw copy
/// (`__raw_<name>`) of every declared column, and `__why` over them — null when the row is
/// usable so far, else the 1-based number of the first failing check (`BLANK_LINE` for a
/// blank row) — with each check's message, in order.
pub(crate) struct RowChecks {
    pub(crate) typed: Vec<(String, Expr)>,
    pub(crate) why: Expr,
    pub(crate) messages: Vec<Expr>,
}

/// The row checks of a Parquet source over the columns of `file` (read from its footer).
pub(crate) fn parquet_row_checks(
    source: &SourceDef,
    file: &InputFile,
) -> Result<RowChecks, IngestError> {
    let mut lf = LazyFrame::scan_parquet(
        PlRefPath::new(file.read_path.to_string_lossy().to_string()),
        ScanArgsParquet::default(),
    )
    .map_err(|e| IngestError::Unreadable {
        file: file.display.clone(),
        message: e.to_string(),
    })?;
    // The SQL engines check every file of the source with these checks, so the blank-row
    // check stays: another file may have blank rows where this one has none.
    row_checks(source, file, &mut lf, BlankRows::Checked)
}

/// Whether the row checks look for blank rows (every declared column empty) and missing
/// values in every file, or only where this file's footer shows they can occur.
#[derive(Clone, Copy, PartialEq)]
enum BlankRows {
    Checked,
    /// Not where the file's footer shows that none can be (`columns_without_nulls`).
    AsTheFooterShows,
}

fn row_checks(
    source: &SourceDef,
    file: &InputFile,
    lf: &mut LazyFrame,
    blank_rows: BlankRows,
) -> Result<RowChecks, IngestError> {
    let unreadable = |e: PolarsError| IngestError::Unreadable {
        file: file.display.clone(),
        message: e.to_string(),
    };
    let schema = lf.collect_schema().map_err(unreadable)?;
    let declared = source.columns.get_ref();
    check_declared_present(source, file, &schema)?;
    // A check for a missing value that the footer shows cannot fail is left out: it would
    // still cost a mask and a branch of `__why` on every row.
    let without_nulls = match blank_rows {
        BlankRows::AsTheFooterShows => columns_without_nulls(source, file),
        BlankRows::Checked => BTreeSet::new(),
    };

    let mut select: Vec<(String, Expr)> = Vec::new();
    // Reasons in priority order; the first that applies is the row's reason.
    let mut reasons: Vec<(Expr, Expr)> = Vec::new();
    let date_col = source.date_column.get_ref().as_str();
    let org_col = source.org_column.get_ref().as_str();
    if !without_nulls.contains(date_col) {
        reasons.push((
            col(raw_name(date_col)).is_null(),
            lit(format!("column '{date_col}': missing date")),
        ));
    }
    if !without_nulls.contains(org_col) {
        reasons.push((
            col(raw_name(org_col)).is_null(),
            lit(format!("column '{org_col}': missing org code")),
        ));
    }
    for (name, decl) in declared {
        let ty = decl.ty();
        let raw_type = schema.get(name).expect("checked present above");
        let text = TextFormat {
            numbers: source.number_format(),
            date: decl.date_format(),
        };
        let typed = typed_column(col(name.as_str()), raw_type, ty, text).ok_or_else(|| {
            IngestError::UnusableType {
                file: file.display.clone(),
                column: name.clone(),
                found: raw_type.to_string(),
                expected: ty.as_str().to_string(),
            }
        })?;
        // Text always converts to text, and a Parquet column of the declared type to its
        // type; other conversions can fail on a value. (A check that can never fail would
        // still cost two masks and a branch of `__why` on every row.)
        if !conversion_cannot_fail(raw_type, ty) {
            let expected = match decl.date_format() {
                Some(format) => format!("expected {} written {format}, found", ty.as_str()),
                None => format!("expected {}, found", ty.as_str()),
            };
            let found = quoted(name, &expected, "");
            reasons.push((
                col(raw_name(name))
                    .is_not_null()
                    .and(col(name.as_str()).is_null()),
                found,
            ));
        }
        if let Some(checks) = decl.checks() {
            // Without nulls in the file and a conversion that cannot fail, no value is missing.
            let present =
                without_nulls.contains(name.as_str()) && conversion_cannot_fail(raw_type, ty);
            reasons.extend(check_reasons(name, &col(name.as_str()), checks, present));
        }
        select.push((name.clone(), typed));
    }
    // The raw text stays beside the typed value for the rejection messages.
    select.extend(
        declared
            .keys()
            .map(|name| (raw_name(name), col(name.as_str()))),
    );
    // No row can have every declared column empty when one column has no nulls.
    let blank = if without_nulls.is_empty() {
        Some(declared.keys())
    } else {
        None
    };
    let (why, messages) = first_failing_check(reasons, blank);
    // Typed values first, then the checks over them, so each conversion runs once per value.
    Ok(RowChecks {
        typed: select,
        why,
        messages,
    })
}

/// Every declared column is in the file's `schema`; else the error lists the missing ones and
/// the columns the file has.
fn check_declared_present(
    source: &SourceDef,
    file: &InputFile,
    schema: &Schema,
) -> Result<(), IngestError> {
    let missing: Vec<&str> = source
        .columns
        .get_ref()
        .keys()
        .map(String::as_str)
        .filter(|c| !schema.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(IngestError::MissingColumns {
        file: file.display.clone(),
        source_name: source.name.get_ref().clone(),
        missing: missing.join(", "),
        found: schema
            .iter_names()
            .filter(|n| n.as_str() != "__row")
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The declared columns that the footer of a local Parquet file shows without a null in any
/// row group. With one of them no row can have every declared column empty, so the blank-line
/// check (which reads every declared column) can be left out, and a column no indicator uses is
/// not decoded at all; and such a column's "missing" checks cannot fail. Empty when that cannot
/// be told (CSV, a sheet, an object in a store, a footer without null counts, an unreadable
/// footer: the scan reports that one).
fn columns_without_nulls(source: &SourceDef, file: &InputFile) -> BTreeSet<String> {
    if source.format != crate::definitions::SourceFormat::Parquet || file.object.is_some() {
        return BTreeSet::new();
    }
    let Ok(reader) = std::fs::File::open(&file.read_path) else {
        return BTreeSet::new();
    };
    let mut reader = ParquetReader::new(reader);
    let Ok(footer) = reader.get_metadata() else {
        return BTreeSet::new();
    };
    let without_nulls = |name: &String| {
        footer.row_groups.iter().all(|group| {
            group
                .columns_under_root_iter(name)
                .is_some_and(|mut chunks| {
                    chunks.all(|chunk| {
                        matches!(
                            chunk.statistics(&footer.footer_buf),
                            Some(Ok(stats)) if stats.null_count() == Some(0)
                        )
                    })
                })
        })
    };
    source
        .columns
        .get_ref()
        .keys()
        .filter(|name| without_nulls(name))
        .cloned()
        .collect()
}

/// `reasons` (condition, message), in priority order, as one expression: the 1-based number of
/// the first that applies to the row ([`BLANK_LINE`] for a blank line, null for a good row),
/// with the messages in the same order. `declared` are the columns whose being all empty makes
/// a blank line; `None` when no row of the file can be blank.
fn first_failing_check<'a>(
    reasons: Vec<(Expr, Expr)>,
    declared: Option<impl Iterator<Item = &'a String>>,
) -> (Expr, Vec<Expr>) {
    // Per row only the number of the first failing check (cheap); the message with the raw
    // value is built later for rejected rows alone.
    let (conds, messages): (Vec<Expr>, Vec<Expr>) = reasons.into_iter().unzip();
    let why = conds
        .into_iter()
        .enumerate()
        .rev()
        .fold(lit(NULL).cast(DataType::UInt32), |otherwise, (k, cond)| {
            when(cond).then(lit(k as u32 + 1)).otherwise(otherwise)
        });
    // A blank line (every field empty) is not a row: check 0 keeps it out of the usable rows
    // without making it a phantom "missing date" rejection (a filter here would copy every
    // column of every batch).
    let Some(declared) = declared else {
        return (why, messages);
    };
    let blank = declared
        .map(|name| col(raw_name(name)).is_null())
        .reduce(|a, b| a.and(b))
        .unwrap_or(lit(false));
    let why = when(blank).then(lit(BLANK_LINE)).otherwise(why);
    (why, messages)
}

/// An Excel source's sheet as text columns (dates written as the declared column reads them)
/// with `__row` counting the rows below the header from 0, and the Excel row of the first.
fn sheet_rows(
    source: &SourceDef,
    file: &InputFile,
) -> Result<(DataFrame, i64, String), IngestError> {
    let declared = source.columns.get_ref();
    let how = |column: &str| match declared.get(column).map(|d| (d.ty(), d.date_format())) {
        Some((ColumnType::Date, format)) => CellText::Date(format),
        Some((ColumnType::Month, _)) => CellText::Month,
        _ => CellText::Plain,
    };
    let sheet = source.sheet.as_ref().map(|s| s.get_ref().as_str());
    let unreadable = |message: String| IngestError::Unreadable {
        file: file.display.clone(),
        message,
    };
    let text = read_sheet(&file.read_path, sheet, &how).map_err(unreadable)?;
    let mut columns = vec![Column::new(
        "__row".into(),
        (0..text.rows.len() as u32).collect::<Vec<_>>(),
    )];
    for (k, name) in text.header.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let values: Vec<Option<&str>> = text
            .rows
            .iter()
            .map(|r| r.get(k).and_then(|v| v.as_deref()))
            .collect();
        columns.push(Column::new(name.as_str().into(), values));
    }
    let frame = DataFrame::new(text.rows.len(), columns)
        .map_err(|e| unreadable(format!("sheet '{}': {e}", text.sheet)))?;
    Ok((frame, text.header_row as i64 + 1, text.sheet))
}

/// The `__why` of a blank line: not usable, not rejected.
const BLANK_LINE: u32 = 0;

/// The column holding a declared column's raw text (for messages).
fn raw_name(name: &str) -> String {
    format!("__raw_{name}")
}

/// `column 'name': <what> '<raw value>'<tail>` as an expression over the row.
fn quoted(name: &str, what: &str, tail: &str) -> Expr {
    concat_str(
        [
            lit(format!("column '{name}': {what} '")),
            col(raw_name(name)).cast(DataType::String),
            lit(format!("'{tail}")),
        ],
        "",
        false,
    )
}

/// Reasons from a column's declared checks, in the order min, max, values, required;
/// `present` when no value of the column can be missing (the required check is then left out).
fn check_reasons(
    name: &str,
    typed: &Expr,
    checks: &ColumnChecks,
    present: bool,
) -> Vec<(Expr, Expr)> {
    let mut out = Vec::new();
    if let Some(min) = checks.min {
        out.push((
            typed.clone().lt(lit(min)).fill_null(lit(false)),
            quoted(name, "value", &format!(" is below the minimum {min}")),
        ));
    }
    if let Some(max) = checks.max {
        out.push((
            typed.clone().gt(lit(max)).fill_null(lit(false)),
            quoted(name, "value", &format!(" is above the maximum {max}")),
        ));
    }
    if let Some(values) = &checks.values {
        let allowed = values
            .iter()
            .map(|v| typed.clone().eq(lit(v.as_str())))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false));
        out.push((
            typed.clone().is_not_null().and(allowed.not()),
            quoted(
                name,
                "value",
                &format!(" is not one of {}", values.join(", ")),
            ),
        ));
    }
    if checks.required && !present {
        out.push((
            typed.clone().is_null(),
            lit(format!("column '{name}': missing value (required)")),
        ));
    }
    out
}

/// Adds `__unit`: the index (u32) of the org unit each row belongs to, through the code mapping
/// (by the row's date) or directly when the org column holds unit ids. A row with no unit gets
/// the "unknown org code" check's number in `__why` (its message is added to `messages`). The lookup is one elementwise function over the code and date columns, so the
/// streaming engine can run it batch by batch (a join with a per-row window would hold every row).
fn place_in_org(
    rows: LazyFrame,
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    messages: &mut Vec<Expr>,
) -> PolarsResult<LazyFrame> {
    let org_col = source.org_column.get_ref().as_str();
    let date = col(source.date_column.get_ref().as_str());
    let dated = source.uses_mapping();
    let lookup = Arc::new(UnitLookup::new(source, tree, mapping));
    let unit = map_multiple(
        move |cols: &mut [Column]| lookup.place(&cols[0], &cols[1]),
        [col(org_col).cast(DataType::String), date.clone()],
        |_, fields| Ok(Field::new(fields[0].name().clone(), DataType::UInt32)),
    );
    let rows = rows.with_column(unit.alias("__unit"));
    messages.push(concat_str(
        [
            lit(format!("column '{org_col}': unknown org code '")),
            col(org_col).cast(DataType::String),
            if dated {
                lit("' on ")
            } else {
                lit("' (not an org unit id)")
            },
            if dated {
                date.cast(DataType::String)
            } else {
                lit("")
            },
        ],
        "",
        false,
    ));
    let unknown = messages.len() as u32;
    let why = when(col("__why").is_null().and(col("__unit").is_null()))
        .then(lit(unknown))
        .otherwise(col("__why"));
    Ok(rows.with_columns([
        when(col("__why").is_null())
            .then(col("__unit"))
            .otherwise(lit(NULL).cast(DataType::UInt32))
            .alias("__unit"),
        why.alias("__why"),
    ]))
}

/// The codes of a source's org column with the unit each maps to and the days it does
/// (inclusive, days since 1970; `None` = open). Undated sources map unit ids, at any date.
pub(crate) fn unit_codes(
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
) -> Vec<(String, Option<i32>, Option<i32>, u32)> {
    UnitLookup::new(source, tree, mapping).entries()
}

/// Code → the units it maps to, each with its validity (days since 1970, inclusive; `None` =
/// open). The mapping is checked for overlaps when it loads, so at most one range covers a day.
struct UnitLookup {
    dated: bool,
    /// polars' fast hash map: this is looked up once per row.
    codes: PlHashMap<String, Vec<Validity>>,
}

/// `(valid_from, valid_to, unit index)`, days since 1970, inclusive; `None` = open.
type Validity = (Option<i32>, Option<i32>, u32);

impl UnitLookup {
    fn new(source: &SourceDef, tree: &OrgTree, mapping: &CodeMapping) -> UnitLookup {
        let mut codes: PlHashMap<String, Vec<Validity>> = PlHashMap::new();
        let dated = source.uses_mapping();
        if dated {
            for e in mapping
                .entries
                .iter()
                .filter(|e| e.source == source.mapping_key())
            {
                let Some(unit) = tree.index_of(&e.unit_id) else {
                    continue;
                };
                codes.entry(e.code.clone()).or_default().push((
                    e.valid_from.map(days_since_epoch),
                    e.valid_to.map(days_since_epoch),
                    unit,
                ));
            }
        } else {
            for u in tree.units() {
                let unit = tree.index_of(&u.id).expect("the tree's own unit");
                codes.insert(u.id.clone(), vec![(None, None, unit)]);
            }
        }
        UnitLookup { dated, codes }
    }

    /// Every code with its validity and unit, sorted, for engines that look units up in SQL.
    fn entries(&self) -> Vec<(String, Option<i32>, Option<i32>, u32)> {
        let mut out: Vec<_> = self
            .codes
            .iter()
            .flat_map(|(code, ranges)| {
                ranges
                    .iter()
                    .map(|&(from, to, unit)| (code.clone(), from, to, unit))
            })
            .collect();
        out.sort();
        out
    }

    fn place(&self, codes: &Column, dates: &Column) -> PolarsResult<Column> {
        let codes = codes.str()?;
        let days = dates.cast(&DataType::Int32)?;
        // One chunk read as plain values and validity: an iterator of optional values across
        // chunks costs more per row than the look-up itself.
        let days = days.i32()?.rechunk();
        let (day_values, day_valid): (&[i32], Option<&Bitmap>) = match days.downcast_iter().next() {
            Some(chunk) => (chunk.values().as_slice(), chunk.validity()),
            None => (&[], None),
        };
        let mut row = 0;
        let mut units: Vec<u32> = Vec::with_capacity(codes.len());
        let mut placed = MutableBitmap::with_capacity(codes.len());
        for chunk in codes.downcast_iter() {
            let views = chunk.views();
            let valid = |i: usize| chunk.validity().is_none_or(|v| v.get_bit(i));
            let mut start = 0;
            // Exports are mostly sorted by unit, so a run of rows shares one code: it is looked
            // up once per run, recognised by its view (equal views are equal strings).
            while start < views.len() {
                let key = views[start].as_u128();
                let is_code = valid(start);
                let end = start
                    + 1
                    + views[start + 1..]
                        .iter()
                        .enumerate()
                        .take_while(|&(k, v)| v.as_u128() == key && valid(start + 1 + k) == is_code)
                        .count();
                let ranges = if is_code {
                    self.codes.get(chunk.value(start))
                } else {
                    None
                };
                let days = row + start..row + end;
                match ranges.and_then(|r| self.unit_whatever_the_day(r, days.clone(), day_valid)) {
                    // One unit for the whole run (nearly always): no day is looked at.
                    Some(unit) => {
                        units.extend(std::iter::repeat_n(unit, end - start));
                        placed.extend_constant(end - start, true);
                    }
                    None => {
                        for d in days {
                            let day = day_valid
                                .is_none_or(|valid| valid.get_bit(d))
                                .then(|| day_values[d]);
                            let unit = ranges.and_then(|ranges| self.unit_on(ranges, day));
                            units.push(unit.unwrap_or(0));
                            placed.push(unit.is_some());
                        }
                    }
                }
                start = end;
            }
            row += views.len();
        }
        Ok(
            UInt32Chunked::from_vec_validity(codes.name().clone(), units, Some(placed.into()))
                .into_column(),
        )
    }

    /// The unit a code maps to on every day of `days` (row numbers), when that does not depend
    /// on the day: an undated source, or one validity open at both ends and no missing day.
    fn unit_whatever_the_day(
        &self,
        ranges: &[Validity],
        days: std::ops::Range<usize>,
        day_valid: Option<&Bitmap>,
    ) -> Option<u32> {
        if !self.dated {
            return ranges.first().map(|r| r.2);
        }
        let [(None, None, unit)] = ranges else {
            return None;
        };
        let no_missing_day = day_valid.is_none_or(|valid| {
            polars_arrow::bitmap::bitmask::BitMask::from_bitmap(valid)
                .sliced(days.start, days.len())
                .unset_bits()
                == 0
        });
        no_missing_day.then_some(*unit)
    }

    /// The unit of a code's ranges on a day (an undated source's code is a unit id).
    fn unit_on(&self, ranges: &[Validity], day: Option<i32>) -> Option<u32> {
        if !self.dated {
            return ranges.first().map(|r| r.2);
        }
        let day = day?;
        ranges
            .iter()
            .find(|(from, to, _)| from.is_none_or(|f| day >= f) && to.is_none_or(|t| day <= t))
            .map(|r| r.2)
    }
}
