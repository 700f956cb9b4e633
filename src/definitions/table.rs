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
    read_table_with(path, what, required, &[])
}

/// As [`read_table`], with `optional` columns after the required ones: `row.get(required.len()
/// + k)` is the k-th optional column, "" when the file does not have it.
pub fn read_table_with(
    path: &Path,
    what: &str,
    required: &[&str],
    optional: &[&str],
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
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics::one(Diagnostic::file(path, format!("cannot read {what}: {e}")))
    })?;
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
    let positions: Vec<Option<usize>> = required
        .iter()
        .chain(optional)
        .map(|r| headers.iter().position(|h| h.trim() == *r))
        .collect();
    let (mut rows, mut problems) = (Vec::new(), Vec::new());
    for record in reader.records() {
        match record {
            Ok(r) => rows.push(TableRow {
                line: line_at(r.position()),
                fields: positions
                    .iter()
                    .map(|i| i.and_then(|i| r.get(i)).unwrap_or("").trim().to_string())
                    .collect(),
            }),
            Err(e) => {
                let line = line_at(e.position());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semicolon_table_is_read_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "id;name;note\r\nSN;Socialnämnden;\"a, b\"\r\n").unwrap();
        let (rows, problems) = read_table(&path, "t", &["id", "name", "note"]).unwrap();
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
        let (rows, problems) = read_table(&path, "t", &["id", "note"]).unwrap();
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
