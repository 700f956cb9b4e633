//! Excel workbooks (`.xlsx`, also `.xls` and `.ods`, via calamine) as text tables: how most
//! targets and small sources arrive. A sheet's first used row is its header; every cell below
//! becomes the text a CSV export would hold, so the same typing, checks and rejected-row
//! messages apply, with Excel's row numbers as line numbers.

use std::path::Path;

use calamine::{Data, DataType, Reader, open_workbook_auto};

/// How a column's cells become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellText<'a> {
    /// As written: numbers in their shortest exact form (`1101`, `165.5`), dates ISO.
    Plain,
    /// A date column: an Excel date, or a serial number (`45382`), written in `format` (default
    /// `%Y-%m-%d`) so the column's declared format reads it back. Text cells stay as they are.
    Date(Option<&'a str>),
    /// A month column: an Excel date or serial number as `YYYY-MM`.
    Month,
}

/// One sheet as text.
pub(crate) struct SheetText {
    /// The sheet read (the first one when none is named).
    pub(crate) sheet: String,
    /// The header's Excel row number (1-based).
    pub(crate) header_row: usize,
    pub(crate) header: Vec<String>,
    /// Every row below the header, blank ones included (all `None`), so row `k` is Excel row
    /// `header_row + 1 + k`.
    pub(crate) rows: Vec<Vec<Option<String>>>,
}

impl SheetText {
    /// Rows with at least one value.
    pub(crate) fn data_rows(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.iter().any(Option::is_some))
            .count()
    }
}

/// True when `path` names a workbook calamine reads.
pub(crate) fn is_workbook(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["xlsx", "xlsm", "xls", "ods"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads `sheet` (or the first sheet) of the workbook at `path`; `how` says per header name how
/// its cells become text. The error says what is wrong in words (no such sheet, not a workbook).
pub(crate) fn read_sheet<'a>(
    path: &Path,
    sheet: Option<&str>,
    how: &dyn Fn(&str) -> CellText<'a>,
) -> Result<SheetText, String> {
    let mut book = open_workbook_auto(path).map_err(|e| format!("not a readable workbook: {e}"))?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) if names.iter().any(|n| n == s) => s.to_string(),
        Some(s) => {
            return Err(format!(
                "has no sheet '{s}' (its sheets: {})",
                names.join(", ")
            ));
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| "has no sheets".to_string())?,
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| format!("sheet '{name}': {e}"))?;
    let Some((first_row, _)) = range.start() else {
        return Ok(SheetText {
            sheet: name,
            header_row: 1,
            header: Vec::new(),
            rows: Vec::new(),
        });
    };
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            cell_text(c, CellText::Plain)
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect();
    let kinds: Vec<CellText> = header.iter().map(|h| how(h)).collect();
    let rows = rows
        .map(|cells| {
            cells
                .iter()
                .zip(&kinds)
                .map(|(c, kind)| cell_text(c, *kind))
                .collect()
        })
        .collect();
    Ok(SheetText {
        sheet: name,
        header_row: first_row as usize + 1,
        header,
        rows,
    })
}

/// The text of one cell (`None` when empty).
fn cell_text(cell: &Data, kind: CellText) -> Option<String> {
    let date = |format: &str| cell.as_date().map(|d| d.format(format).to_string());
    match (cell, kind) {
        (Data::Empty, _) => None,
        (Data::String(s), _) if s.trim().is_empty() => None,
        (Data::String(s), _) => Some(s.clone()),
        (Data::Error(e), _) => Some(e.to_string()),
        (Data::Bool(b), _) => Some(b.to_string()),
        (_, CellText::Date(format)) => date(format.unwrap_or("%Y-%m-%d")),
        (_, CellText::Month) => date("%Y-%m"),
        (Data::Int(i), CellText::Plain) => Some(i.to_string()),
        // Rust's shortest exact form: 165 for 165.0, 0.1 for 0.1; parsed back to the same f64.
        (Data::Float(f), CellText::Plain) => Some(format!("{f}")),
        (Data::DateTime(_), CellText::Plain) => cell.as_datetime().map(|dt| {
            if dt.time() == chrono::NaiveTime::MIN {
                dt.date().format("%Y-%m-%d").to_string()
            } else {
                dt.format("%Y-%m-%d %H:%M:%S").to_string()
            }
        }),
        (Data::DateTimeIso(s) | Data::DurationIso(s), CellText::Plain) => Some(s.clone()),
    }
}
