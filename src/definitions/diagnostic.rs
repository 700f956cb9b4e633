//! One problem with the definitions or inputs, located as precisely as we can: file, line and
//! column where known, and the item (indicator, goal, org unit ...) it concerns.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub(crate) file: PathBuf,
    /// 1-based line and column.
    pub(crate) location: Option<(usize, usize)>,
    pub(crate) item: String,
    pub(crate) message: String,
}

impl Diagnostic {
    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            location: None,
            item: String::new(),
            message: message.into(),
        }
    }

    pub(crate) fn at_line(
        file: &Path,
        line: usize,
        item: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            location: Some((line, 1)),
            item: item.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        if self.item.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.item, self.message)
        }
    }
}

/// Every problem found by one check, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn one(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// 1-based (line, column) of a byte offset in `text`; the column counts characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 4));
    }
}

/// `" (did you mean 'X'?)"` for the known id most like `wanted` (Jaro-Winkler similarity of at
/// least 0.85, letter case ignored), or "" when none is close: a typo names its fix.
pub(crate) fn did_you_mean<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let wanted_lower = wanted.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for k in known {
        if k == wanted {
            continue;
        }
        let score = strsim::jaro_winkler(&wanted_lower, &k.to_lowercase());
        if score >= 0.85 && best.is_none_or(|(b, id)| score > b || (score == b && k < id)) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod did_you_mean_tests {
    use super::did_you_mean;

    #[test]
    fn a_typo_names_the_closest_id_and_a_stranger_names_none() {
        let ids = ["SOC-ALD-HTN", "SOC-ALD-HTS", "hr_time", "sick_leave_pct"];
        assert_eq!(
            did_you_mean("SOC-ALD-HTM", ids),
            " (did you mean 'SOC-ALD-HTN'?)"
        );
        assert_eq!(did_you_mean("hr_tiem", ids), " (did you mean 'hr_time'?)");
        assert_eq!(
            did_you_mean("soc-ald-hts", ids),
            " (did you mean 'SOC-ALD-HTS'?)"
        );
        assert_eq!(did_you_mean("budget", ids), "");
    }
}
