//! The analysts' CSV tables (org units, code mapping, targets, actions, groups): read whole, each
//! row with its line number and its fields in the order of the required columns.

use std::path::Path;

use super::{Diagnostic, Diagnostics};

/// One data row of a definitions table.
pub struct TableRow {
    /// 1-based line in the file (the header is line 1).
    pub line: usize,
    fields: Vec<String>,
}

impl TableRow {
    /// The k-th required column, trimmed ("" when the row is short).
    pub fn get(&self, k: usize) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Reads `path`, checking the header has every `required` column (in any order; other columns
/// are ignored). Rows the CSV reader cannot read come back as diagnostics beside the good rows.
pub fn read_table(
    path: &Path,
    what: &str,
    required: &[&str],
) -> Result<(Vec<TableRow>, Vec<Diagnostic>), Diagnostics> {
    // A FIFO or a device (`/dev/zero`) would hang or fill memory: only regular files are read.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.file_type().is_file()
    {
        return Err(Diagnostics::one(Diagnostic::file(
            path,
            format!("cannot read {what}: not a regular file (a pipe, device or folder)"),
        )));
    }
    let mut reader = csv::Reader::from_path(path).map_err(|e| {
        Diagnostics::one(Diagnostic::file(path, format!("cannot read {what}: {e}")))
    })?;
    let headers = reader
        .headers()
        .map_err(|e| Diagnostics::one(Diagnostic::file(path, format!("cannot read header: {e}"))))?
        .clone();
    let mut names: Vec<&str> = headers.iter().map(str::trim).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1] && !w[0].is_empty()) {
        return Err(Diagnostics::one(Diagnostic::at_line(
            path,
            1,
            "",
            format!("column '{}' appears twice in the header", twice[0]),
        )));
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !headers.iter().any(|h| h.trim() == *r))
        .collect();
    if !missing.is_empty() {
        return Err(Diagnostics::one(Diagnostic::at_line(
            path,
            1,
            "",
            format!(
                "missing column(s) {}; expected header {}",
                missing.join(", "),
                required.join(",")
            ),
        )));
    }
    let positions: Vec<usize> = required
        .iter()
        .map(|r| {
            headers
                .iter()
                .position(|h| h.trim() == *r)
                .expect("checked above")
        })
        .collect();
    let (mut rows, mut problems) = (Vec::new(), Vec::new());
    for record in reader.records() {
        match record {
            Ok(r) => rows.push(TableRow {
                line: r.position().map(|p| p.line()).unwrap_or(0) as usize,
                fields: positions
                    .iter()
                    .map(|&i| r.get(i).unwrap_or("").trim().to_string())
                    .collect(),
            }),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0) as usize;
                problems.push(Diagnostic::at_line(
                    path,
                    line,
                    "",
                    format!("unreadable row: {e}"),
                ));
            }
        }
    }
    Ok((rows, problems))
}
