//! Source-system codes (cost centres) → org units, each entry valid for a date range, so past
//! periods stay where they were after a reorganisation.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use super::OrgTree;
use crate::definitions::{Diagnostic, Diagnostics, TableDialect, read_table};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappingEntry {
    pub(crate) source: String,
    pub(crate) code: String,
    pub(crate) unit_id: String,
    /// Inclusive; `None` = since always.
    pub(crate) valid_from: Option<NaiveDate>,
    /// Inclusive; `None` = still valid.
    pub(crate) valid_to: Option<NaiveDate>,
    pub(crate) line: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct CodeMapping {
    pub(crate) entries: Vec<MappingEntry>,
}

impl CodeMapping {
    /// Reads `source, code, unit_id, valid_from, valid_to` and checks every unit exists, dates
    /// parse, and no code has two entries valid on the same day.
    pub(crate) fn load(
        path: &Path,
        tree: &OrgTree,
        dialect: TableDialect,
    ) -> Result<CodeMapping, Diagnostics> {
        let required = ["source", "code", "unit_id", "valid_from", "valid_to"];
        let (rows, mut problems) = read_table(path, "code mapping", &required, dialect)?;
        let mut entries = Vec::new();
        for row in rows {
            let line = row.line as u64;
            let field = |k: usize| row.get(k).to_string();
            let mut date = |k: usize| -> Option<NaiveDate> {
                let text = field(k);
                if text.is_empty() {
                    return None;
                }
                match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
                    Ok(d) => Some(d),
                    Err(_) => {
                        problems.push(Diagnostic::at_line(
                            path,
                            line as usize,
                            format!("code '{}'", field(1)),
                            format!(
                                "column '{}': expected a date YYYY-MM-DD, found '{text}'",
                                required[k]
                            ),
                        ));
                        None
                    }
                }
            };
            let (valid_from, valid_to) = (date(3), date(4));
            let entry = MappingEntry {
                source: field(0),
                code: field(1),
                unit_id: field(2),
                valid_from,
                valid_to,
                line,
            };
            let item = format!("code '{}'", entry.code);
            if entry.source.is_empty() || entry.code.is_empty() {
                problems.push(Diagnostic::at_line(
                    path,
                    line as usize,
                    item,
                    "source and code must not be empty",
                ));
                continue;
            }
            if !tree.contains(&entry.unit_id) {
                problems.push(Diagnostic::at_line(
                    path,
                    line as usize,
                    item,
                    format!(
                        "column 'unit_id': unknown org unit '{}'{}",
                        entry.unit_id,
                        tree.did_you_mean(&entry.unit_id)
                    ),
                ));
                continue;
            }
            if let (Some(f), Some(t)) = (entry.valid_from, entry.valid_to)
                && f > t
            {
                problems.push(Diagnostic::at_line(
                    path,
                    line as usize,
                    item,
                    format!("valid_from {f} is after valid_to {t}"),
                ));
                continue;
            }
            entries.push(entry);
        }
        problems.extend(overlaps(path, &entries));
        if problems.is_empty() {
            Ok(CodeMapping { entries })
        } else {
            Err(Diagnostics(problems))
        }
    }

    /// True when some entry is for `key` (a source name or a code system).
    pub(crate) fn has_source(&self, source: &str) -> bool {
        self.entries.iter().any(|e| e.source == source)
    }
}

/// Two entries for the same source and code whose date ranges share a day would place one row
/// in two units.
fn overlaps(path: &Path, entries: &[MappingEntry]) -> Vec<Diagnostic> {
    let mut by_code: BTreeMap<(&str, &str), Vec<&MappingEntry>> = BTreeMap::new();
    for e in entries {
        by_code.entry((&e.source, &e.code)).or_default().push(e);
    }
    let mut out = Vec::new();
    for ((source, code), mut list) in by_code {
        list.sort_by_key(|e| e.valid_from);
        for pair in list.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let a_end = a.valid_to.unwrap_or(NaiveDate::MAX);
            let b_start = b.valid_from.unwrap_or(NaiveDate::MIN);
            if b_start <= a_end {
                out.push(Diagnostic::at_line(
                    path,
                    b.line as usize,
                    format!("code '{code}' of source '{source}'"),
                    format!("validity overlaps the entry on line {} (a row dated in both ranges would map to two units)", a.line),
                ));
            }
        }
    }
    out
}
