//! Target values (målvärden): read from the analysts' CSV and the indicators' defaults, checked,
//! and resolved to the most specific target for every indicator × unit × period.
//!
//! Specificity: a target on a deeper org unit beats one on a unit above it, which beats one with
//! no unit (the whole tree); at the same unit, an exact period beats a year, which beats no period.
//! A default in the pipeline file applies only where no CSV target does.

use std::collections::BTreeMap;
use std::path::Path;

use crate::definitions::{
    Diagnostic, Diagnostics, IndicatorDef, Pipeline, Polarity, TargetKind, ToleranceDef,
    read_table_with,
};
use crate::org::{Groups, OrgTree, OrgUnit};

/// How far on the unfavourable side of the target still counts as partly met.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    Absolute(f64),
    /// Percent of the target (or of the comparison value, for relative kinds).
    Percent(f64),
}

impl Tolerance {
    pub(crate) fn parse(s: &str) -> Option<Tolerance> {
        let s = s.trim();
        let (number, percent) = match s.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (s, false),
        };
        let x: f64 = number.parse().ok()?;
        if !x.is_finite() || x < 0.0 {
            return None;
        }
        Some(if percent {
            Tolerance::Percent(x)
        } else {
            Tolerance::Absolute(x)
        })
    }

    /// The tolerance in the indicator's unit, for a target (or comparison) value `of`.
    pub(crate) fn amount(self, of: f64) -> f64 {
        match self {
            Tolerance::Absolute(x) => x,
            // Multiply before dividing: 30 × 20 / 100 is exactly 6, 30 × 0.2 is not.
            Tolerance::Percent(p) => (of * p).abs() / 100.0,
        }
    }

    pub(crate) fn label(self) -> String {
        match self {
            Tolerance::Absolute(x) => format!("{x}"),
            Tolerance::Percent(p) => format!("{p}%"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTo {
    /// The same period a year earlier (direction targets' default).
    PreviousYear,
    /// The previous period of the same grain.
    PreviousPeriod,
    /// The unit's parent in the org tree (benchmark).
    Parent,
    /// A named org unit, e.g. the kommun as a whole (benchmark).
    Unit(String),
    /// The root of the org tree (Riket in a Kolada pipeline).
    National,
    /// The unweighted mean of a comparison group's members (Kolada's "Liknande kommuner").
    Group(String),
}

impl CompareTo {
    pub(crate) fn parse(s: &str) -> Option<CompareTo> {
        let s = s.trim();
        Some(match s {
            "previous_year" => CompareTo::PreviousYear,
            "previous_period" => CompareTo::PreviousPeriod,
            // In a tree kommun → region → riket the parent of a kommun is its region.
            "parent" | "region" => CompareTo::Parent,
            "national" => CompareTo::National,
            other => match other.strip_prefix("group:") {
                Some(g) => CompareTo::Group(g.to_string()),
                None => CompareTo::Unit(other.strip_prefix("unit:")?.to_string()),
            },
        })
    }

    pub(crate) fn label(&self) -> String {
        match self {
            CompareTo::PreviousYear => "previous_year".into(),
            CompareTo::PreviousPeriod => "previous_period".into(),
            CompareTo::Parent => "parent".into(),
            CompareTo::Unit(u) => format!("unit:{u}"),
            CompareTo::National => "national".into(),
            CompareTo::Group(g) => format!("group:{g}"),
        }
    }
}

/// Which periods a target covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodSpec {
    All,
    /// Every period of the year (months, quarters, tertials, ytd and the year itself).
    Year(i32),
    /// One period label, e.g. `2024-T2`.
    Exact(String),
}

impl PeriodSpec {
    pub(crate) fn parse(s: &str) -> Option<PeriodSpec> {
        let s = s.trim();
        if s.is_empty() {
            return Some(PeriodSpec::All);
        }
        if s.len() == 4 {
            return s.parse().ok().map(PeriodSpec::Year);
        }
        let (year, rest) = s.split_once('-')?;
        if year.len() != 4 || year.parse::<i32>().is_err() {
            return None;
        }
        let number = |t: &str, max: u32| t.parse::<u32>().ok().filter(|n| (1..=max).contains(n));
        let ok = if let Some(q) = rest.strip_prefix('Q') {
            number(q, 4).is_some()
        } else if let Some(t) = rest.strip_prefix('T') {
            number(t, 3).is_some()
        } else if let Some(m) = rest.strip_prefix("YTD") {
            m.len() == 2 && number(m, 12).is_some()
        } else {
            rest.len() == 2 && number(rest, 12).is_some()
        };
        ok.then(|| PeriodSpec::Exact(s.to_string()))
    }

    fn matches(&self, label: &str) -> bool {
        match self {
            PeriodSpec::All => true,
            PeriodSpec::Year(y) => label.starts_with(&format!("{y:04}")),
            PeriodSpec::Exact(p) => p == label,
        }
    }

    fn specificity(&self) -> u8 {
        match self {
            PeriodSpec::All => 0,
            PeriodSpec::Year(_) => 1,
            PeriodSpec::Exact(_) => 2,
        }
    }

    fn label(&self) -> String {
        match self {
            PeriodSpec::All => String::new(),
            PeriodSpec::Year(y) => format!("{y}"),
            PeriodSpec::Exact(p) => p.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub indicator_id: String,
    /// `None` = every unit.
    pub org_unit_id: Option<String>,
    pub period: PeriodSpec,
    /// Only cells of this grain (`None` = every grain): an annual and a monthly target side by side.
    pub grain: Option<crate::period::Grain>,
    pub kind: TargetKind,
    pub value: Option<f64>,
    pub value_high: Option<f64>,
    pub tolerance: Option<Tolerance>,
    pub compare_to: Option<CompareTo>,
    pub note: String,
    /// Where it was defined, for messages: `targets.csv:12` or `pipeline default`.
    pub origin: String,
}

/// All targets of a pipeline, checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    pub(crate) list: Vec<Target>,
    /// Index into `list` of each indicator's pipeline default.
    defaults: BTreeMap<String, usize>,
}

/// The raw fields of one target, from a CSV row or a pipeline default.
struct RawTarget<'a> {
    indicator_id: &'a str,
    org_unit_id: &'a str,
    period: &'a str,
    grain: &'a str,
    kind: &'a str,
    value: &'a str,
    value_high: &'a str,
    tolerance: &'a str,
    compare_to: &'a str,
    note: &'a str,
}

/// The required columns of the targets file, in the order `read_csv` reads them; `grain` is an
/// optional tenth.
const TARGET_COLUMNS: [&str; 9] = [
    "indicator_id",
    "org_unit_id",
    "period",
    "kind",
    "value",
    "value_high",
    "tolerance",
    "compare_to",
    "note",
];

impl RawTarget<'_> {
    /// How a problem names the target: `target <indicator>/<unit>/<period>`, `*` for a blank.
    fn item(&self) -> String {
        fn or_any(s: &str) -> &str {
            if s.is_empty() { "*" } else { s }
        }
        format!(
            "target {}/{}/{}",
            self.indicator_id,
            or_any(self.org_unit_id),
            or_any(self.period)
        )
    }
}

impl Targets {
    /// Reads the targets CSV (if the pipeline names one) and the indicators' defaults.
    pub(crate) fn load(
        pipeline: &Pipeline,
        tree: &OrgTree,
        groups: &Groups,
    ) -> Result<Targets, Diagnostics> {
        let mut problems = Vec::new();
        let mut targets = Targets::default();
        for ind in &pipeline.def.indicators {
            let Some(d) = &ind.target else { continue };
            let item = format!("indicator '{}'", ind.id.get_ref());
            let tolerance = match &d.tolerance {
                None => String::new(),
                Some(ToleranceDef::Number(x)) => x.to_string(),
                Some(ToleranceDef::Text(t)) => t.clone(),
            };
            let fmt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
            let (value, value_high) = (fmt(d.value), fmt(d.value_high));
            let raw = RawTarget {
                indicator_id: ind.id.get_ref(),
                org_unit_id: "",
                period: "",
                grain: "",
                kind: d.kind.as_str(),
                value: &value,
                value_high: &value_high,
                tolerance: &tolerance,
                compare_to: d.compare_to.as_deref().unwrap_or(""),
                note: &d.note,
            };
            match check(pipeline, tree, groups, &raw, "pipeline default".into()) {
                Ok(t) => {
                    targets
                        .defaults
                        .insert(t.indicator_id.clone(), targets.list.len());
                    targets.list.push(t);
                }
                Err(message) => problems.push(pipeline.diag_at(
                    ind.id.span(),
                    item,
                    format!("target: {message}"),
                )),
            }
        }
        if let Some(file) = &pipeline.def.targets {
            let path = pipeline.resolve(file);
            read_csv(pipeline, tree, groups, &path, &mut targets, &mut problems);
        }
        if problems.is_empty() {
            Ok(targets)
        } else {
            Err(Diagnostics(problems))
        }
    }

    /// The target for one cell, if any: the most specific CSV target, else the default. Most
    /// specific: the nearest unit first; then an exact period, then a target for the cell's
    /// grain, then a year, then one for every period.
    pub(crate) fn resolve(
        &self,
        tree: &OrgTree,
        indicator: &str,
        unit: &str,
        grain: crate::period::Grain,
        period: &str,
    ) -> Option<usize> {
        let candidates = self.candidates(indicator);
        let ancestors = tree.ancestors_and_self(unit);
        self.resolve_among(&candidates, &ancestors, indicator, grain, period)
    }

    /// The CSV targets of `indicator` (not its default), by index: what `resolve_among` chooses
    /// from, found once for all of an indicator's cells.
    pub(crate) fn candidates(&self, indicator: &str) -> Vec<usize> {
        let default = self.defaults.get(indicator);
        (0..self.list.len())
            .filter(|&i| self.list[i].indicator_id == indicator && default != Some(&i))
            .collect()
    }

    /// `resolve` for a unit whose `ancestors_and_self` and indicator's `candidates` are known.
    pub(crate) fn resolve_among(
        &self,
        candidates: &[usize],
        ancestors: &[&OrgUnit],
        indicator: &str,
        grain: crate::period::Grain,
        period: &str,
    ) -> Option<usize> {
        let depth_of = |id: &str| {
            ancestors
                .iter()
                .position(|a| a.id == id)
                .map(|from_unit| ancestors.len() - from_unit)
        };
        let mut best: Option<((usize, u8, bool, u8), usize)> = None;
        for &i in candidates {
            let t = &self.list[i];
            let org_rank = match &t.org_unit_id {
                None => 0,
                Some(id) => match depth_of(id) {
                    Some(d) => d,
                    None => continue,
                },
            };
            if !t.period.matches(period) || t.grain.is_some_and(|g| g != grain) {
                continue;
            }
            let exact = u8::from(t.period.specificity() == 2);
            let rank = (org_rank, exact, t.grain.is_some(), t.period.specificity());
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, i));
            }
        }
        best.map(|(_, i)| i)
            .or_else(|| self.defaults.get(indicator).copied())
    }
}

fn read_csv(
    pipeline: &Pipeline,
    tree: &OrgTree,
    groups: &Groups,
    path: &Path,
    targets: &mut Targets,
    problems: &mut Vec<Diagnostic>,
) {
    let rows = match read_table_with(
        path,
        "targets",
        &TARGET_COLUMNS,
        &["grain"],
        pipeline.table_dialect(),
    ) {
        Ok((rows, unreadable)) => {
            problems.extend(unreadable);
            rows
        }
        Err(d) => {
            problems.extend(d.0);
            return;
        }
    };
    let mut seen: BTreeMap<(String, String, String, &'static str), u64> = BTreeMap::new();
    for row in &rows {
        let line = row.line as u64;
        let f = |k: usize| row.get(k);
        // Numbers as `6.5` also where the table writes `6,5`.
        let (value, value_high, tolerance) = (row.number(4), row.number(5), row.number(6));
        let raw = RawTarget {
            indicator_id: f(0),
            org_unit_id: f(1),
            period: f(2),
            kind: f(3),
            value: &value,
            value_high: &value_high,
            tolerance: &tolerance,
            compare_to: f(7),
            note: f(8),
            grain: f(9),
        };
        let item = raw.item();
        let origin = format!("{}:{line}", path.display());
        match check(pipeline, tree, groups, &raw, origin) {
            Err(message) => problems.push(Diagnostic::at_line(path, line as usize, item, message)),
            Ok(t) => {
                let key = (
                    t.indicator_id.clone(),
                    t.org_unit_id.clone().unwrap_or_default(),
                    t.period.label(),
                    t.grain.map(|g| g.as_str()).unwrap_or(""),
                );
                if let Some(first) = seen.get(&key) {
                    problems.push(Diagnostic::at_line(
                        path,
                        line as usize,
                        item,
                        format!(
                            "duplicate target: line {first} sets a target for the same indicator, unit, period and grain (lines {first} and {line})"
                        ),
                    ));
                } else {
                    seen.insert(key, line);
                    targets.list.push(t);
                }
            }
        }
    }
}

/// Checks one target's fields; the error says what was expected.
fn check(
    pipeline: &Pipeline,
    tree: &OrgTree,
    groups: &Groups,
    raw: &RawTarget,
    origin: String,
) -> Result<Target, String> {
    let indicator = pipeline
        .def
        .indicators
        .iter()
        .find(|i| i.id.get_ref() == raw.indicator_id)
        .ok_or_else(|| {
            format!(
                "column 'indicator_id': unknown indicator '{}'{}",
                raw.indicator_id,
                pipeline.indicator_hint(raw.indicator_id)
            )
        })?;
    if !raw.org_unit_id.is_empty() && !tree.contains(raw.org_unit_id) {
        return Err(format!(
            "column 'org_unit_id': unknown org unit '{}'{}",
            raw.org_unit_id,
            tree.did_you_mean(raw.org_unit_id)
        ));
    }
    let period = PeriodSpec::parse(raw.period).ok_or_else(|| {
        format!(
            "column 'period': expected blank, a year (2024) or a period label (2024-03, 2024-Q1, 2024-T2, 2024-YTD08), found '{}'",
            raw.period
        )
    })?;
    let grain = blank_or(
        "grain",
        raw.grain,
        "blank (every grain), month, quarter, tertial, year or ytd",
        crate::period::Grain::parse,
    )?;
    let kind = TargetKind::parse(raw.kind).ok_or_else(|| {
        format!(
            "column 'kind': expected floor, ceiling, range, increase, decrease, benchmark, top_share or rank_improves, found '{}'",
            raw.kind
        )
    })?;
    let number = |text: &str| text.parse::<f64>().ok().filter(|x| x.is_finite());
    let value = blank_or("value", raw.value, "a number", number)?;
    let value_high = blank_or("value_high", raw.value_high, "a number", number)?;
    let tolerance = blank_or(
        "tolerance",
        raw.tolerance,
        "a non-negative number or a percentage such as 20%",
        Tolerance::parse,
    )?;
    let compare_to = blank_or(
        "compare_to",
        raw.compare_to,
        "previous_year, previous_period, parent or unit:<id>",
        CompareTo::parse,
    )?;
    check_kind(
        kind,
        (value, value_high),
        compare_to.as_ref(),
        indicator,
        tree,
        groups,
    )?;
    let compare_to = match kind {
        TargetKind::Increase | TargetKind::Decrease => compare_to.or(Some(CompareTo::PreviousYear)),
        _ => compare_to,
    };
    Ok(Target {
        indicator_id: raw.indicator_id.to_string(),
        org_unit_id: (!raw.org_unit_id.is_empty()).then(|| raw.org_unit_id.to_string()),
        period,
        grain,
        kind,
        value,
        value_high,
        tolerance,
        compare_to,
        note: raw.note.to_string(),
        origin,
    })
}

/// A column that may be blank: `None` when it is, else what `parse` makes of `text`, or an
/// error naming the column, what it expected and what it found.
fn blank_or<T>(
    column: &str,
    text: &str,
    expected: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    parse(text)
        .map(Some)
        .ok_or_else(|| format!("column '{column}': expected {expected}, found '{text}'"))
}

/// What a target of `kind` needs beside its kind: values, a comparison it can make, and an
/// indicator with a polarity where better must be known.
fn check_kind(
    kind: TargetKind,
    (value, value_high): (Option<f64>, Option<f64>),
    compare_to: Option<&CompareTo>,
    indicator: &IndicatorDef,
    tree: &OrgTree,
    groups: &Groups,
) -> Result<(), String> {
    match kind {
        TargetKind::Floor | TargetKind::Ceiling if value.is_none() => {
            return Err(format!("a {} target needs a value", kind.as_str()));
        }
        TargetKind::TopShare if !value.is_some_and(|v| v > 0.0 && v <= 1.0) => {
            return Err(
                "a top_share target needs a value in (0, 1], e.g. 0.25 for the best quartile"
                    .into(),
            );
        }
        TargetKind::TopShare | TargetKind::RankImproves
            if indicator.polarity == Polarity::Neutral =>
        {
            return Err(format!(
                "a {} target needs a polarity, and indicator '{}' is neutral",
                kind.as_str(),
                indicator.id.get_ref()
            ));
        }
        TargetKind::Range => match (value, value_high) {
            (Some(lo), Some(hi)) if lo <= hi => {}
            (Some(_), Some(_)) => return Err("a range needs value <= value_high".into()),
            _ => return Err("a range target needs value and value_high".into()),
        },
        TargetKind::Increase | TargetKind::Decrease => match compare_to {
            None | Some(CompareTo::PreviousYear) | Some(CompareTo::PreviousPeriod) => {}
            Some(other) => {
                return Err(format!(
                    "{} targets compare to previous_year or previous_period, not '{}'",
                    kind.as_str(),
                    other.label()
                ));
            }
        },
        TargetKind::Benchmark => {
            match compare_to {
                Some(CompareTo::Parent) => {}
                Some(CompareTo::National) if tree.roots().len() == 1 => {}
                Some(CompareTo::National) => {
                    return Err("compare_to = national needs an org tree with one root".into());
                }
                Some(CompareTo::Unit(u)) if tree.contains(u) => {}
                Some(CompareTo::Unit(u)) => {
                    return Err(format!(
                        "column 'compare_to': unknown org unit '{u}'{}",
                        tree.did_you_mean(u)
                    ));
                }
                Some(CompareTo::Group(g)) if groups.members.contains_key(g) => {}
                Some(CompareTo::Group(g)) => {
                    return Err(format!(
                        "column 'compare_to': unknown group '{g}' (groups come from org.groups)"
                    ));
                }
                _ => {
                    return Err(
                        "a benchmark target needs compare_to = parent, region, national, unit:<id> or group:<id>"
                            .into(),
                    );
                }
            }
            if indicator.polarity == Polarity::Neutral {
                return Err(format!(
                    "a benchmark target needs a polarity, and indicator '{}' is neutral",
                    indicator.id.get_ref()
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_forms() {
        assert_eq!(Tolerance::parse("20%"), Some(Tolerance::Percent(20.0)));
        assert_eq!(Tolerance::parse("1.5"), Some(Tolerance::Absolute(1.5)));
        assert_eq!(Tolerance::parse("-1"), None);
        assert_eq!(Tolerance::parse("x%"), None);
        assert_eq!(Tolerance::Percent(20.0).amount(30.0), 6.0);
        assert_eq!(Tolerance::Percent(20.0).amount(99.0), 19.8);
    }

    #[test]
    fn period_specs() {
        assert_eq!(PeriodSpec::parse(""), Some(PeriodSpec::All));
        assert_eq!(PeriodSpec::parse("2024"), Some(PeriodSpec::Year(2024)));
        for ok in ["2024-03", "2024-Q4", "2024-T3", "2024-YTD08"] {
            assert_eq!(PeriodSpec::parse(ok), Some(PeriodSpec::Exact(ok.into())));
        }
        for bad in ["2024-13", "2024-Q5", "2024-T4", "24", "2024-YTD8", "x"] {
            assert_eq!(PeriodSpec::parse(bad), None, "{bad}");
        }
        assert!(PeriodSpec::Year(2024).matches("2024-YTD03"));
        assert!(!PeriodSpec::Year(2024).matches("2023-12"));
    }
}
