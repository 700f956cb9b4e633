//! The analysts' CSV tables (org units, code mapping, targets, actions, groups): read whole, each
//! row with its line number and its fields in the order of the required columns.

use std::path::Path;

use super::{Diagnostic, Diagnostics};

/// How a definitions table is written, beyond what its header shows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TableDialect {
    /// The file's encoding when not UTF-8.
    pub(crate) encoding: Option<&'static encoding_rs::Encoding>,
    /// Numbers are written with a decimal comma (`6,5`).
    pub(crate) decimal_comma: bool,
}

/// One data row of a definitions table.
pub(crate) struct TableRow {
    /// 1-based line in the file (the header is line 1).
    pub(crate) line: usize,
    fields: Vec<String>,
    decimal_comma: bool,
}

impl TableRow {
    /// The k-th required column, trimmed ("" when the row is short).
    pub(crate) fn get(&self, k: usize) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }

    /// The k-th column as number text with a decimal point: `6,5` becomes `6.5` in a table
    /// written with decimal commas (`;`-separated, or `[tables] decimal = ","`).
    pub(crate) fn number(&self, k: usize) -> std::borrow::Cow<'_, str> {
        let text = self.get(k);
        if self.decimal_comma && text.contains(',') {
            std::borrow::Cow::Owned(text.replace(',', "."))
        } else {
            std::borrow::Cow::Borrowed(text)
        }
    }
}

/// Reads `path`, checking the header has every `required` column (in any order; other columns
/// are ignored). Rows the CSV reader cannot read come back as diagnostics beside the good rows.
pub(crate) fn read_table(
    path: &Path,
    what: &str,
    required: &[&str],
    dialect: TableDialect,
) -> Result<(Vec<TableRow>, Vec<Diagnostic>), Diagnostics> {
    read_table_with(path, what, required, &[], dialect)
}

/// As [`read_table`], with `optional` columns after the required ones: `row.get(required.len()
/// + k)` is the k-th optional column, "" when the file does not have it.
pub(crate) fn read_table_with(
    path: &Path,
    what: &str,
    required: &[&str],
    optional: &[&str],
    dialect: TableDialect,
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
    let ((headers, records, problems), semicolons) = if super::sheet::is_workbook(path) {
        (read_workbook(path, what)?, false)
    } else {
        read_csv(path, what, dialect.encoding)?
    };
    let decimal_comma = dialect.decimal_comma || semicolons;
    let mut names: Vec<&str> = headers.iter().map(|h| h.trim()).collect();
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
    let positions: Vec<Option<usize>> = required
        .iter()
        .chain(optional)
        .map(|r| headers.iter().position(|h| h.trim() == *r))
        .collect();
    let rows = records
        .into_iter()
        .map(|(line, fields)| TableRow {
            line,
            decimal_comma,
            fields: positions
                .iter()
                .map(|i| {
                    i.and_then(|i| fields.get(i))
                        .map(|f| f.trim().to_string())
                        .unwrap_or_default()
                })
                .collect(),
        })
        .collect();
    Ok((rows, problems))
}

/// A table's header and its records with their physical lines, and the rows it could not read.
type Records = (Vec<String>, Vec<(usize, Vec<String>)>, Vec<Diagnostic>);

/// The first sheet of a workbook: Excel's row numbers are the lines; blank rows are skipped.
fn read_workbook(path: &Path, what: &str) -> Result<Records, Diagnostics> {
    let sheet =
        super::sheet::read_sheet(path, None, &|_| super::sheet::CellText::Plain).map_err(|e| {
            Diagnostics::one(Diagnostic::file(path, format!("cannot read {what}: {e}")))
        })?;
    let records = sheet
        .rows
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(Option::is_some))
        .map(|(k, r)| {
            (
                sheet.header_row + 1 + k,
                r.into_iter().map(Option::unwrap_or_default).collect(),
            )
        })
        .collect();
    Ok((sheet.header, records, Vec::new()))
}

/// A CSV table, and whether it is `;`-separated (then its numbers have decimal commas too).
fn read_csv(
    path: &Path,
    what: &str,
    encoding: Option<&'static encoding_rs::Encoding>,
) -> Result<(Records, bool), Diagnostics> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics::one(Diagnostic::file(path, format!("cannot read {what}: {e}")))
    })?;
    let bytes = match encoding {
        Some(encoding) => encoding.decode(&bytes).0.into_owned().into_bytes(),
        None => match std::str::from_utf8(&bytes) {
            Ok(_) => bytes,
            Err(e) => {
                let line = 1 + memchr::memchr_iter(b'\n', &bytes[..e.valid_up_to()]).count();
                return Err(Diagnostics::one(Diagnostic::at_line(
                    path,
                    line,
                    "",
                    format!(
                        "{what}: not valid UTF-8 (a file saved by an older Windows program?): save it as UTF-8, or set [tables] encoding = \"windows-1252\" in the pipeline file"
                    ),
                )));
            }
        },
    };
    // Physical lines from byte offsets: the CSV reader's own line count is off after a quoted
    // field that spans lines.
    let newlines: Vec<usize> = memchr::memchr_iter(b'\n', &bytes).collect();
    // A record's position may sit on the line break before it (the reader ends a record at
    // `\r` and takes the `\n` as part of what follows), so skip breaks to its first byte.
    let line_at = |pos: Option<&csv::Position>| {
        pos.map(|p| {
            let mut at = p.byte() as usize;
            while matches!(bytes.get(at), Some(b'\r' | b'\n')) {
                at += 1;
            }
            1 + newlines.partition_point(|&n| n < at)
        })
        .unwrap_or(0)
    };
    // A table saved by Excel on a Swedish Windows is `;`-separated: a header line with `;` and
    // no `,` is read that way.
    let header_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let delimiter = if header_line.contains(&b';') && !header_line.contains(&b',') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Diagnostics::one(Diagnostic::file(path, format!("cannot read header: {e}"))))?
        .iter()
        .map(String::from)
        .collect();
    let (mut records, mut problems) = (Vec::new(), Vec::new());
    for record in reader.records() {
        match record {
            Ok(r) => records.push((line_at(r.position()), r.iter().map(String::from).collect())),
            Err(e) => problems.push(Diagnostic::at_line(
                path,
                line_at(e.position()),
                "",
                format!("unreadable row: {e}"),
            )),
        }
    }
    Ok(((headers, records, problems), delimiter == b';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semicolon_table_is_read_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "id;name;note\r\nSN;Socialnämnden;\"a, b\"\r\n").unwrap();
        let (rows, problems) =
            read_table(&path, "t", &["id", "name", "note"], TableDialect::default()).unwrap();
        assert!(problems.is_empty());
        assert_eq!(
            (rows[0].get(0), rows[0].get(1), rows[0].get(2)),
            ("SN", "Socialnämnden", "a, b")
        );
    }

    #[test]
    fn rows_carry_physical_lines_with_crlf_and_quoted_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(
            &path,
            "id,note\r\na,\"two\r\nlines\"\r\nb,x\r\n\r\nc,\"\"\"q\"\"\"\r\nd,y\r\n",
        )
        .unwrap();
        let (rows, problems) =
            read_table(&path, "t", &["id", "note"], TableDialect::default()).unwrap();
        assert!(problems.is_empty());
        let lines: Vec<(String, usize)> = rows
            .iter()
            .map(|r| (r.get(0).to_string(), r.line))
            .collect();
        assert_eq!(
            lines,
            [
                ("a".to_string(), 2),
                ("b".to_string(), 4),
                ("c".to_string(), 6),
                ("d".to_string(), 7)
            ]
        );
    }
}
