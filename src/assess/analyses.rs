//! Analysis texts: what controllers write per goal or indicator, unit and period for the tertial
//! report (delårsrapport) and the annual report (verksamhetsberättelse). Kept in a CSV the
//! pipeline names (`analyses = "analyses.csv"`), checked like targets, and carried into
//! `goal_status` / `deviations` (`analysis`) and the report.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use polars::prelude::*;

use super::targets::PeriodSpec;
use crate::definitions::{Diagnostic, Diagnostics, Pipeline, TableRow, read_table};
use crate::org::OrgTree;

/// One analysis text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    /// Exactly one of `goal_id` and `indicator_id` is set.
    pub(crate) goal_id: Option<String>,
    pub(crate) indicator_id: Option<String>,
    pub(crate) org_unit_id: String,
    /// A period label: `2024-T2`, `2024`, `2024-03`, …
    pub(crate) period: String,
    pub(crate) author: String,
    pub(crate) date: NaiveDate,
    pub(crate) text: String,
}

const COLUMNS: [&str; 7] = [
    "goal_id",
    "indicator_id",
    "org_unit_id",
    "period",
    "author",
    "date",
    "text",
];

/// Reads and checks the pipeline's analyses CSV (none when it names none).
pub(crate) fn load_analyses(
    pipeline: &Pipeline,
    tree: &OrgTree,
) -> Result<Vec<Analysis>, Diagnostics> {
    let Some(file) = &pipeline.def.analyses else {
        return Ok(Vec::new());
    };
    let path = pipeline.resolve(file);
    let (rows, mut problems) = read_table(&path, "analyses", &COLUMNS, pipeline.table_dialect())?;
    let goals = pipeline.goal_ids();
    let indicators = pipeline.indicator_ids();
    let mut out = Vec::new();
    let mut seen: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for row in &rows {
        let bad = |message: String| Diagnostic::at_line(&path, row.line, "analysis", message);
        let (goal, indicator, unit, period, author, date, text) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
        );
        let mut row_problems: Vec<Diagnostic> =
            problems_of_row(row, pipeline, tree, &goals, &indicators)
                .into_iter()
                .map(bad)
                .collect();
        let key = (
            goal.to_string(),
            indicator.to_string(),
            unit.to_string(),
            period.to_string(),
        );
        if row_problems.is_empty() && !seen.insert(key) {
            row_problems.push(bad(
                "a second text for the same goal or indicator, unit and period".into(),
            ));
        }
        if !row_problems.is_empty() {
            problems.extend(row_problems);
            continue;
        }
        out.push(Analysis {
            goal_id: (!goal.is_empty()).then(|| goal.to_string()),
            indicator_id: (!indicator.is_empty()).then(|| indicator.to_string()),
            org_unit_id: unit.to_string(),
            period: period.to_string(),
            author: author.to_string(),
            date: NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("checked above"),
            text: text.to_string(),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(problems))
    }
}

/// What is wrong with one row of the analyses file, each problem on its own; none when it reads.
/// (A second text for the same keys is found by the caller, who sees every row.)
fn problems_of_row(
    row: &TableRow,
    pipeline: &Pipeline,
    tree: &OrgTree,
    goals: &BTreeSet<&str>,
    indicators: &BTreeSet<&str>,
) -> Vec<String> {
    let (goal, indicator, unit, period, date, text) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(5),
        row.get(6),
    );
    let mut problems = Vec::new();
    if goal.is_empty() == indicator.is_empty() {
        problems.push(
            "give either goal_id or indicator_id (one of them), not both or neither".to_string(),
        );
    }
    if !goal.is_empty() && !goals.contains(goal) {
        problems.push(format!(
            "column 'goal_id': unknown goal '{goal}'{}",
            pipeline.goal_hint(goal)
        ));
    }
    if !indicator.is_empty() && !indicators.contains(indicator) {
        problems.push(format!(
            "column 'indicator_id': unknown indicator '{indicator}'{}",
            pipeline.indicator_hint(indicator)
        ));
    }
    if !tree.contains(unit) {
        problems.push(format!(
            "column 'org_unit_id': unknown org unit '{unit}'{}",
            tree.did_you_mean(unit)
        ));
    }
    if period.is_empty() || PeriodSpec::parse(period).is_none() {
        problems.push(format!(
            "column 'period': expected a period such as 2024-T2, 2024 or 2024-03, found '{period}'"
        ));
    }
    if NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
        problems.push(format!(
            "column 'date': expected a date YYYY-MM-DD, found '{date}'"
        ));
    }
    if text.is_empty() {
        problems.push("column 'text': empty".into());
    }
    problems
}

/// `analyses.parquet`: every text with its keys.
pub(crate) fn analyses_table(analyses: &[Analysis]) -> PolarsResult<DataFrame> {
    df!(
        "goal_id" => analyses.iter().map(|a| a.goal_id.as_deref()).collect::<Vec<_>>(),
        "indicator_id" => analyses.iter().map(|a| a.indicator_id.as_deref()).collect::<Vec<_>>(),
        "org_unit_id" => analyses.iter().map(|a| a.org_unit_id.as_str()).collect::<Vec<_>>(),
        "period" => analyses.iter().map(|a| a.period.as_str()).collect::<Vec<_>>(),
        "author" => analyses.iter().map(|a| a.author.as_str()).collect::<Vec<_>>(),
        "date" => analyses
            .iter()
            .map(|a| crate::period::days_since_epoch(a.date))
            .collect::<Vec<_>>(),
        "text" => analyses.iter().map(|a| a.text.as_str()).collect::<Vec<_>>(),
    )?
    .lazy()
    .with_column(col("date").cast(DataType::Date))
    .collect()
}

/// Adds `analysis` to a table keyed by `key` (`goal_id` or `indicator_id`), `org_unit_id` and
/// `period`: the text written for that row, else null.
pub(crate) fn with_analysis(
    table: DataFrame,
    analyses: &[Analysis],
    key: &str,
) -> PolarsResult<DataFrame> {
    let picked: Vec<&Analysis> = analyses
        .iter()
        .filter(|a| match key {
            "goal_id" => a.goal_id.is_some(),
            _ => a.indicator_id.is_some(),
        })
        .collect();
    let ids: Vec<&str> = picked
        .iter()
        .map(|a| {
            a.goal_id
                .as_deref()
                .or(a.indicator_id.as_deref())
                .unwrap_or_default()
        })
        .collect();
    let texts = df!(
        key => ids,
        "org_unit_id" => picked.iter().map(|a| a.org_unit_id.as_str()).collect::<Vec<_>>(),
        "period" => picked.iter().map(|a| a.period.as_str()).collect::<Vec<_>>(),
        "analysis" => picked.iter().map(|a| a.text.as_str()).collect::<Vec<_>>(),
    )?;
    let on = [col(key), col("org_unit_id"), col("period")];
    let mut args = JoinArgs::new(JoinType::Left);
    // The tables are sorted for byte-identical reruns: keep their order.
    args.maintain_order = MaintainOrderJoin::Left;
    table
        .lazy()
        .join(texts.lazy(), on.clone(), on, args)
        .collect()
}
