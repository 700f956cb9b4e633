//! Data-quality gates on what a source delivered, checked after the scan and before anything is
//! published: the share of rejected rows, freshness (how old the latest month with rows is) and
//! volume (a month with far fewer rows than usual). They catch the feeds that break quietly: an
//! export whose date format changed (every row rejected), a feed that stopped, a half-delivered
//! month.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::definitions::{GateAction, SourceDef};
use crate::period::{Month, RunMonths};

/// The default largest share of a source's rows that may be rejected.
pub(crate) const DEFAULT_MAX_REJECTED_SHARE: f64 = 0.05;
/// The default freshness limit of a run as of today (live data): last month's rows may be
/// missing, not more.
pub(crate) const DEFAULT_MAX_LAG_MONTHS: u32 = 1;
/// Months of history a month's volume is compared with, at least.
const VOLUME_HISTORY: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateOutcome {
    Pass,
    Warn,
    Fail,
}

impl GateOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GateOutcome::Pass => "pass",
            GateOutcome::Warn => "warn",
            GateOutcome::Fail => "fail",
        }
    }

    fn of(action: GateAction) -> GateOutcome {
        match action {
            GateAction::Fail => GateOutcome::Fail,
            GateAction::Warn => GateOutcome::Warn,
            GateAction::Off => GateOutcome::Pass,
        }
    }
}

/// One gate's verdict on one source.
#[derive(Debug, Clone)]
pub(crate) struct GateResult {
    pub(crate) source: String,
    /// `rejected_share`, `freshness` or `volume`.
    pub(crate) gate: &'static str,
    pub(crate) outcome: GateOutcome,
    /// What was measured, and when the gate did not pass, what to do.
    pub(crate) message: String,
}

/// What one source delivered, as the gates need it.
pub(crate) struct Delivered<'a> {
    pub(crate) rows_read: i64,
    /// `source, file, row, reason` of the rejected rows.
    pub(crate) rejected: &'a DataFrame,
    /// Usable rows per month of the run, ascending; months without rows left out.
    pub(crate) month_rows: &'a [(Month, i64)],
}

/// Runs every gate of one source. `live` is true when the run is as of today.
pub(crate) fn check_source(
    source: &SourceDef,
    delivered: &Delivered,
    months: RunMonths,
    live: bool,
) -> PolarsResult<Vec<GateResult>> {
    let name = source.name.get_ref().clone();
    let mut results = vec![rejected_share(&name, source, delivered)?];
    if let Some(r) = freshness(&name, source, delivered, months, live) {
        results.push(r);
    }
    if source.volume_check != GateAction::Off {
        results.push(volume(&name, source, delivered));
    }
    Ok(results)
}

fn rejected_share(
    name: &str,
    source: &SourceDef,
    delivered: &Delivered,
) -> PolarsResult<GateResult> {
    let limit = source
        .max_rejected_share
        .as_ref()
        .map(|s| *s.get_ref())
        .unwrap_or(DEFAULT_MAX_REJECTED_SHARE);
    let rejected = delivered.rejected.height() as i64;
    let share = if delivered.rows_read > 0 {
        rejected as f64 / delivered.rows_read as f64
    } else {
        0.0
    };
    let measured = format!(
        "{rejected} of {} rows rejected ({:.1} %, max_rejected_share = {limit})",
        delivered.rows_read,
        share * 100.0
    );
    if share <= limit {
        return Ok(GateResult {
            source: name.to_string(),
            gate: "rejected_share",
            outcome: GateOutcome::Pass,
            message: measured,
        });
    }
    Ok(GateResult {
        source: name.to_string(),
        gate: "rejected_share",
        outcome: GateOutcome::Fail,
        message: format!(
            "source '{name}': {measured}. Top reasons: {}. A changed export format is the usual cause: \
             fix the export or the column declarations; if that many bad rows is normal for this source, \
             raise max_rejected_share in its [[sources]] entry",
            top_reasons(delivered.rejected, 3)?
        ),
    })
}

/// The commonest kinds of rejection (the reason with its quoted values left out), each with its
/// count and first example.
fn top_reasons(rejected: &DataFrame, n: usize) -> PolarsResult<String> {
    let file = rejected.column("file")?.str()?;
    let row = rejected.column("row")?.i64()?;
    let reason = rejected.column("reason")?.str()?;
    // kind → (count, first example)
    let mut kinds: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for i in 0..rejected.height() {
        let text = reason.get(i).unwrap_or("");
        let entry = kinds.entry(reason_kind(text)).or_insert_with(|| {
            (
                0,
                format!(
                    "{} line/row {}: {text}",
                    file.get(i).unwrap_or(""),
                    row.get(i).unwrap_or(0)
                ),
            )
        });
        entry.0 += 1;
    }
    let mut ranked: Vec<(String, (usize, String))> = kinds.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    Ok(ranked
        .into_iter()
        .take(n)
        .map(|(_, (count, example))| format!("{count} × e.g. {example}"))
        .collect::<Vec<_>>()
        .join("; "))
}

/// A reason with the values it quotes replaced by `…`, keeping the column name:
/// `column 'date': expected date, found '2022-01'` → `column 'date': expected date, found '…'`.
pub(crate) fn reason_kind(reason: &str) -> String {
    let (head, tail) = match reason.split_once("': ") {
        Some((h, t)) => (format!("{h}': "), t),
        None => (String::new(), reason),
    };
    let mut out = head;
    let mut quoted = false;
    for c in tail.chars() {
        if c == '\'' {
            if quoted {
                out.push('…');
            }
            quoted = !quoted;
            out.push(c);
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

fn freshness(
    name: &str,
    source: &SourceDef,
    delivered: &Delivered,
    months: RunMonths,
    live: bool,
) -> Option<GateResult> {
    if source.freshness == GateAction::Off {
        return None;
    }
    let (limit, why) = match &source.max_lag_months {
        Some(m) => (*m.get_ref(), format!("max_lag_months = {}", m.get_ref())),
        None if live => (
            DEFAULT_MAX_LAG_MONTHS,
            format!("max_lag_months = {DEFAULT_MAX_LAG_MONTHS}, the default of a run as of today"),
        ),
        None => return None,
    };
    let Some(&(latest, _)) = delivered.month_rows.last() else {
        // A source declared `allow_empty` that delivered nothing: its emptiness is declared
        // normal, so there is no latest month to judge.
        return Some(GateResult {
            source: name.to_string(),
            gate: "freshness",
            outcome: GateOutcome::Pass,
            message: "no rows in the run's months (allow_empty)".to_string(),
        });
    };
    let lag = months.last.0 - latest.0;
    let measured = format!(
        "latest month with rows {}, {lag} month(s) before the run's last month {} ({why})",
        latest.label(),
        months.last.label()
    );
    if lag <= limit as i32 {
        return Some(GateResult {
            source: name.to_string(),
            gate: "freshness",
            outcome: GateOutcome::Pass,
            message: measured,
        });
    }
    Some(GateResult {
        source: name.to_string(),
        gate: "freshness",
        outcome: GateOutcome::of(source.freshness),
        message: format!(
            "source '{name}' is stale: {measured}. The feed may have stopped; if the data arrives later than \
             that by design, raise max_lag_months (or set freshness = \"warn\") in its [[sources]] entry"
        ),
    })
}

/// Months of the last year with rows whose row count is below half the median of the (up to
/// twelve) months before it — and, when the source has that month a year earlier, below half of
/// that too, so a seasonal dip (libraries in July) is not a partial delivery. At least three
/// months of history are needed; a month without rows counts 0. Older months were judged by
/// earlier runs: repeating their warnings every night would only teach people to ignore them.
fn volume(name: &str, source: &SourceDef, delivered: &Delivered) -> GateResult {
    let mut low = Vec::new();
    if let (Some(&(first, _)), Some(&(last, _))) =
        (delivered.month_rows.first(), delivered.month_rows.last())
    {
        let by_month: BTreeMap<i32, i64> = delivered
            .month_rows
            .iter()
            .map(|(m, n)| (m.0, *n))
            .collect();
        let counts: Vec<i64> = (first.0..=last.0)
            .map(|m| by_month.get(&m).copied().unwrap_or(0))
            .collect();
        let recent = counts.len().saturating_sub(12).max(VOLUME_HISTORY);
        for i in recent..counts.len() {
            let history = &counts[i.saturating_sub(12)..i];
            let median = median(history);
            let year_ago = (i >= 12).then(|| counts[i - 12]);
            let below_usual = (counts[i] as f64) < median / 2.0;
            let below_last_year = year_ago.is_none_or(|y| (counts[i] as f64) < y as f64 / 2.0);
            if below_usual && below_last_year {
                low.push(format!(
                    "{} has {} rows (median of the months before: {median}{})",
                    Month(first.0 + i as i32).label(),
                    counts[i],
                    year_ago
                        .map(|y| format!(", a year before: {y}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if low.is_empty() {
        return GateResult {
            source: name.to_string(),
            gate: "volume",
            outcome: GateOutcome::Pass,
            message: "no month below half the median of the months before it".to_string(),
        };
    }
    let shown: Vec<&str> = low.iter().take(5).map(String::as_str).collect();
    let more = if low.len() > 5 {
        format!(" and {} more", low.len() - 5)
    } else {
        String::new()
    };
    GateResult {
        source: name.to_string(),
        gate: "volume",
        outcome: GateOutcome::of(source.volume_check),
        message: format!(
            "source '{name}': {} month(s) with fewer than half the usual rows: {}{more}. A partial delivery? \
             (volume_check = \"off\" silences this for a source whose volume varies by design)",
            low.len(),
            shown.join("; ")
        ),
    }
}

fn median(counts: &[i64]) -> f64 {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_kind_drops_quoted_values_but_keeps_the_column() {
        assert_eq!(
            reason_kind("column 'date': expected date, found '2022-01'"),
            "column 'date': expected date, found '…'"
        );
        assert_eq!(
            reason_kind("column 'unit': unknown org code 'X9' on 2022-01-03"),
            "column 'unit': unknown org code '…' on 2022-01-03"
        );
        assert_eq!(reason_kind("no quotes"), "no quotes");
    }

    fn gate_source(volume_check: &str) -> SourceDef {
        toml::from_str(&format!(
            r#"
name = "s"
path = "s.csv"
format = "csv"
columns = {{ d = "date", u = "string" }}
date_column = "d"
org_column = "u"
volume_check = "{volume_check}"
"#
        ))
        .unwrap()
    }

    fn monthly(counts: &[i64]) -> Vec<(Month, i64)> {
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (Month(2022 * 12 + i as i32), *n))
            .collect()
    }

    fn volume_of(counts: &[i64], action: &str) -> GateResult {
        let rejected = DataFrame::empty();
        let month_rows = monthly(counts);
        let delivered = Delivered {
            rows_read: counts.iter().sum(),
            rejected: &rejected,
            month_rows: &month_rows,
        };
        volume("s", &gate_source(action), &delivered)
    }

    #[test]
    fn a_half_delivered_latest_month_is_flagged_and_a_seasonal_dip_is_not() {
        // 2022-01 … 2023-12: 100 rows a month, 10 each July.
        let mut counts: Vec<i64> = (0..24)
            .map(|i| if i % 12 == 6 { 10 } else { 100 })
            .collect();
        assert_eq!(volume_of(&counts, "warn").outcome, GateOutcome::Pass);
        // December 2023 arrives with 40 rows: below half of both the usual 100 and last December.
        *counts.last_mut().unwrap() = 40;
        let r = volume_of(&counts, "fail");
        assert_eq!(r.outcome, GateOutcome::Fail);
        assert!(r.message.contains("2023-12 has 40 rows"), "{}", r.message);
        assert!(!r.message.contains("2023-07"), "{}", r.message);
        // A missing month in the middle counts as 0 rows.
        let mut gap: Vec<i64> = vec![100; 10];
        gap[8] = 0;
        let r = volume_of(&gap, "warn");
        assert_eq!(r.outcome, GateOutcome::Warn);
        assert!(r.message.contains("2022-09 has 0 rows"), "{}", r.message);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[5, 1, 3]), 3.0);
        assert_eq!(median(&[4, 1, 3, 10]), 3.5);
    }
}
