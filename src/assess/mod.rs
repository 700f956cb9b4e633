//! Assessment: every indicator value against its target (status and gap, with the previous
//! period's and last year's values beside it), goal attainment rolled up from the indicators, and
//! the actions follow-up. Reads the computed `indicator_values`; never recomputes them.

mod actions;
mod analyses;
mod forecast;
mod goals;
pub mod signals;
pub mod stats;
mod status;
mod targets;

pub use crate::definitions::TargetKind;
pub(crate) use actions::{Action, actions_table, load_actions};
pub(crate) use analyses::{Analysis, analyses_table, load_analyses, with_analysis};
pub(crate) use goals::goal_status;
pub use status::{Judgement, Status, judge};
pub(crate) use targets::Targets;
pub use targets::{CompareTo, PeriodSpec, Target, Tolerance};

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::definitions::{Pipeline, Polarity};
use crate::org::{Groups, OrgTree, OrgUnit};
use crate::period::{Grain, Period, RunMonths};
use crate::schema::{CELL_KEY, DEVIATION_COLUMNS};

/// The assessment tables of one run.
pub(crate) struct Assessment {
    pub(crate) deviations: DataFrame,
    pub(crate) goal_status: DataFrame,
    pub(crate) actions: DataFrame,
    /// One row per series: variation icon, assurance, runs signal, flag and reason.
    pub(crate) signals: DataFrame,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn assess(
    pipeline: &Pipeline,
    tree: &OrgTree,
    groups: &Groups,
    targets: &Targets,
    actions: &[Action],
    values: &DataFrame,
    months: RunMonths,
    as_of: NaiveDate,
) -> PolarsResult<Assessment> {
    let deviations = deviations(pipeline, tree, groups, targets, values, months)?;
    // Goals read the indicators' statuses only, not the signal columns: they are rolled up while
    // the series are analysed.
    let (signals, goal_status) = rayon::join(
        || signal_tables(pipeline, tree, targets, &deviations, months),
        || goal_status_table(pipeline, tree, &deviations, months),
    );
    let (points, series) = signals?;
    let goal_status = goal_status?;
    let mut deviations = deviations;
    deviations.hstack_mut(&points)?;
    let deviations = deviations.select(DEVIATION_COLUMNS)?;
    let actions = actions_table(actions, &goal_status, tree, as_of)?;
    Ok(Assessment {
        deviations,
        goal_status,
        actions,
        signals: series,
    })
}

/// The signal columns of every deviation row, in its order (`points`), and one row per series
/// with its forecast (`series`).
fn signal_tables(
    pipeline: &Pipeline,
    tree: &OrgTree,
    targets: &Targets,
    deviations: &DataFrame,
    months: RunMonths,
) -> PolarsResult<(Vec<Column>, DataFrame)> {
    let signals::Signals { points, series } = signals::signals(pipeline, deviations)?;
    let series_keys = [col("indicator_id"), col("org_unit_id"), col("segment")];
    let series = series
        .lazy()
        .join(
            forecast::forecasts(pipeline, tree, targets, deviations, months)?.lazy(),
            series_keys.clone(),
            series_keys,
            JoinArgs::new(JoinType::Left),
        )
        .collect()?;
    Ok((points, series))
}

/// Goal attainment per goal, unit and period, with the latest period of each grain marked.
fn goal_status_table(
    pipeline: &Pipeline,
    tree: &OrgTree,
    deviations: &DataFrame,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    goal_status(pipeline, tree, deviations)?
        .lazy()
        .join(
            latest_periods(months)?.lazy(),
            [col("grain"), col("period")],
            [col("grain"), col("period")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("is_latest_period").fill_null(lit(false)))
        .sort(
            ["goal_id", "org_unit_id", "grain", "period"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
}

/// The last period of each grain in the run.
fn latest_period_labels(months: RunMonths) -> Vec<(Grain, String)> {
    Grain::ALL
        .iter()
        .filter_map(|&g| months.periods(g).pop().map(|p| (g, p.label)))
        .collect()
}

/// `grain, period, is_latest_period = true` for the last period of each grain in the run.
fn latest_periods(months: RunMonths) -> PolarsResult<DataFrame> {
    let latest = latest_period_labels(months);
    df!(
        "grain" => latest.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>(),
        "period" => latest.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>(),
        "is_latest_period" => vec![true; latest.len()],
    )
}

/// The key columns of `indicator_values` as one `&str` per row, and each cell's row by its five
/// keys. A cell's previous-period, last-year and reference values are looked up here; as polars
/// joins on the five text columns they took about half of the stage.
struct Cells<'a> {
    indicator: Vec<&'a str>,
    unit: Vec<&'a str>,
    grain: Vec<&'a str>,
    period: Vec<&'a str>,
    segment: Vec<&'a str>,
    row_of: PlHashMap<Key5<'a>, usize>,
}

impl<'a> Cells<'a> {
    fn of(values: &'a DataFrame) -> PolarsResult<Cells<'a>> {
        let [indicator, unit, grain, period, segment] = [
            texts(values, CELL_KEY[0])?,
            texts(values, CELL_KEY[1])?,
            texts(values, CELL_KEY[2])?,
            texts(values, CELL_KEY[3])?,
            texts(values, CELL_KEY[4])?,
        ];
        let mut cells = Cells {
            indicator,
            unit,
            grain,
            period,
            segment,
            row_of: PlHashMap::with_capacity(values.height()),
        };
        for i in 0..values.height() {
            cells.row_of.insert(cells.key(i), i);
        }
        Ok(cells)
    }

    /// Row `i`'s five keys.
    fn key(&self, i: usize) -> Key5<'a> {
        (
            self.indicator[i],
            self.unit[i],
            self.grain[i],
            self.period[i],
            self.segment[i],
        )
    }

    fn len(&self) -> usize {
        self.indicator.len()
    }

    /// The row of row `i`'s indicator, grain and segment for `unit` in `period`.
    fn row(&self, i: usize, unit: &str, period: &str) -> Option<usize> {
        let key = (
            self.indicator[i],
            unit,
            self.grain[i],
            period,
            self.segment[i],
        );
        self.row_of.get(&key).copied()
    }
}

/// A text column's values in row order (missing as ""), for per-row look-ups: polars' `get(i)`
/// searches the chunks on every call.
fn texts<'a>(frame: &'a DataFrame, name: &str) -> PolarsResult<Vec<&'a str>> {
    Ok(frame
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or(""))
        .collect())
}

/// Each indicator's polarity, by id.
fn polarities(pipeline: &Pipeline) -> PlHashMap<&str, Polarity> {
    pipeline
        .def
        .indicators
        .iter()
        .map(|i| (i.id.get_ref().as_str(), i.polarity))
        .collect()
}

/// A float column's values in row order.
pub(super) fn floats(frame: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(frame.column(name)?.f64()?.iter().collect())
}

/// Every value row judged: with its previous-period and last-year values, target, status, gap,
/// ranks, goals and place in the tree — the deviations table without its signal columns, in
/// cell order.
fn deviations(
    pipeline: &Pipeline,
    tree: &OrgTree,
    groups: &Groups,
    targets: &Targets,
    values: &DataFrame,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let cells = Cells::of(values)?;
    let value = floats(values, "value")?;
    let history = History::of(&cells, &value, months);
    let target = row_targets(&cells, tree, targets);
    let reference = reference_values(&cells, &value, &target, values, tree, groups, targets)?;
    let ranks = ranks(
        pipeline,
        &cells,
        &texts(values, "org_kind")?,
        &value,
        &history,
    );
    let judged = judge_rows(
        pipeline, targets, &cells, &value, &history, &reference, &target, &ranks,
    )?;
    let mut frame = values.clone();
    frame.hstack_mut(&[
        Column::new("previous_value".into(), &history.previous_value),
        Column::new("last_year_value".into(), &history.last_year_value),
        Column::new("rank".into(), &ranks.rank),
        Column::new("rank_of".into(), &ranks.rank_of),
        Column::new("last_year_rank".into(), &ranks.last_year_rank),
    ])?;
    frame.hstack_mut(judged.columns())?;
    with_changes_and_context(pipeline, tree, &cells, frame, &value, &history, months)
}

/// Each row's value in the previous period and the same period a year earlier (null when that
/// period has no row in this run), and that year-earlier row.
struct History {
    previous_value: Vec<Option<f64>>,
    last_year_value: Vec<Option<f64>>,
    last_year_row: Vec<Option<usize>>,
}

impl History {
    fn of(cells: &Cells, value: &[Option<f64>], months: RunMonths) -> History {
        let periods: Vec<(Grain, Period)> = Grain::ALL
            .iter()
            .flat_map(|&g| months.periods(g).into_iter().map(move |p| (g, p)))
            .collect();
        let before: PlHashMap<(&str, &str), (String, String)> = periods
            .iter()
            .map(|(g, p)| ((g.as_str(), p.label.as_str()), p.previous_labels()))
            .collect();
        let n = cells.len();
        let mut history = History {
            previous_value: Vec::with_capacity(n),
            last_year_value: Vec::with_capacity(n),
            last_year_row: Vec::with_capacity(n),
        };
        for i in 0..n {
            let (previous, last_year) = match before.get(&(cells.grain[i], cells.period[i])) {
                Some((p, l)) => (
                    cells.row(i, cells.unit[i], p),
                    cells.row(i, cells.unit[i], l),
                ),
                None => (None, None),
            };
            history.previous_value.push(previous.and_then(|r| value[r]));
            history
                .last_year_value
                .push(last_year.and_then(|r| value[r]));
            history.last_year_row.push(last_year);
        }
        history
    }
}

/// The index of the target that applies to each row: resolved once per cell on its total row,
/// and shared by the cell's segments.
fn row_targets(cells: &Cells, tree: &OrgTree, targets: &Targets) -> Vec<Option<u32>> {
    let key = |i: usize| {
        (
            cells.indicator[i],
            cells.unit[i],
            cells.grain[i],
            cells.period[i],
        )
    };
    // An indicator's targets and a unit's ancestors once, not once per cell.
    let mut candidates: PlHashMap<&str, Vec<usize>> = PlHashMap::new();
    let mut ancestors: PlHashMap<&str, Vec<&OrgUnit>> = PlHashMap::new();
    let mut by_cell: PlHashMap<(&str, &str, &str, &str), u32> = PlHashMap::new();
    for i in (0..cells.len()).filter(|&i| cells.segment[i] == "total") {
        let Some(grain) = Grain::parse(cells.grain[i]) else {
            continue;
        };
        let (indicator, unit, _, period) = key(i);
        let candidates = candidates
            .entry(indicator)
            .or_insert_with(|| targets.candidates(indicator));
        let ancestors = ancestors
            .entry(unit)
            .or_insert_with(|| tree.ancestors_and_self(unit));
        if let Some(t) = targets.resolve_among(candidates, ancestors, indicator, grain, period) {
            by_cell.insert(key(i), t as u32);
        }
    }
    (0..cells.len())
        .map(|i| by_cell.get(&key(i)).copied())
        .collect()
}

/// What a benchmark target compares each row with: another unit's value of the same cell (the
/// parent, a named unit, the nation's root), else the unweighted mean of a group's members in
/// the same cell.
fn reference_values(
    cells: &Cells,
    value: &[Option<f64>],
    target: &[Option<u32>],
    values: &DataFrame,
    tree: &OrgTree,
    groups: &Groups,
    targets: &Targets,
) -> PolarsResult<Vec<Option<f64>>> {
    let compare_to =
        |i: usize| target[i].and_then(|t| targets.list[t as usize].compare_to.as_ref());
    let group_means =
        if (0..cells.len()).any(|i| matches!(compare_to(i), Some(CompareTo::Group(_)))) {
            group_means(values, groups)?
        } else {
            DataFrame::empty()
        };
    let group_mean = GroupMeans::of(&group_means)?;
    let root = tree.roots().first().map(|r| r.id.as_str());
    Ok((0..cells.len())
        .map(|i| {
            let unit = match compare_to(i)? {
                CompareTo::Parent => tree.get(cells.unit[i])?.parent_id.as_deref(),
                CompareTo::Unit(u) => Some(u.as_str()),
                CompareTo::National => root,
                CompareTo::Group(g) => return group_mean.get(cells, i, g),
                _ => None,
            };
            unit.and_then(|u| cells.row(i, u, cells.period[i]))
                .and_then(|r| value[r])
        })
        .collect())
}

/// `indicator_id, __reference_group, grain, period, segment, __group_value`: the unweighted mean
/// of each group's members' values in each cell.
fn group_means(values: &DataFrame, groups: &Groups) -> PolarsResult<DataFrame> {
    values
        .clone()
        .lazy()
        .join(
            groups.frame()?.lazy(),
            [col("org_unit_id")],
            [col("org_unit_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([
            col("indicator_id"),
            col("__reference_group"),
            col("grain"),
            col("period"),
            col("segment"),
        ])
        .agg([col("value").mean().alias("__group_value")])
        .collect()
}

/// `group_means`' rows by their keys.
struct GroupMeans<'a>(PlHashMap<Key5<'a>, Option<f64>>);

impl<'a> GroupMeans<'a> {
    fn of(frame: &'a DataFrame) -> PolarsResult<GroupMeans<'a>> {
        if frame.height() == 0 {
            return Ok(GroupMeans(PlHashMap::new()));
        }
        let k = |name: &str| texts(frame, name);
        let (ind, group, grain, period, seg) = (
            k("indicator_id")?,
            k("__reference_group")?,
            k("grain")?,
            k("period")?,
            k("segment")?,
        );
        let mean = floats(frame, "__group_value")?;
        Ok(GroupMeans(
            (0..frame.height())
                .map(|i| ((ind[i], group[i], grain[i], period[i], seg[i]), mean[i]))
                .collect(),
        ))
    }

    /// Group `group`'s mean in row `i`'s cell.
    fn get(&self, cells: &Cells, i: usize, group: &str) -> Option<f64> {
        let key = (
            cells.indicator[i],
            group,
            cells.grain[i],
            cells.period[i],
            cells.segment[i],
        );
        self.0.get(&key).copied().flatten()
    }
}

/// The judged frame with the changes against the previous period and last year, the goals each
/// indicator measures, the unit's place in the tree and whether the period is the latest: the
/// published columns of `deviations` (without the signal columns), in cell order.
fn with_changes_and_context(
    pipeline: &Pipeline,
    tree: &OrgTree,
    cells: &Cells,
    mut frame: DataFrame,
    value: &[Option<f64>],
    history: &History,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let change = |before: &[Option<f64>]| -> Vec<Option<f64>> {
        value
            .iter()
            .zip(before)
            .map(|(v, b)| Some((*v)? - (*b)?))
            .collect()
    };
    let goal_ids = goal_ids(pipeline);
    let org_paths = org_paths(tree);
    let latest = latest_period_labels(months);
    let n = cells.len();
    let (goals, goal_of_row) = by_key(&cells.indicator, |id| goal_ids.get(id).map(String::as_str));
    let (paths, path_of_row) = by_key(&cells.unit, |u| org_paths.get(u).map(String::as_str));
    let is_latest: Vec<bool> = (0..n)
        .map(|i| {
            latest
                .iter()
                .any(|(g, p)| g.as_str() == cells.grain[i] && p == cells.period[i])
        })
        .collect();
    frame.hstack_mut(&[
        Column::new("change".into(), change(&history.previous_value)),
        Column::new("yoy_change".into(), change(&history.last_year_value)),
        gathered("goal_ids", &goals, &goal_of_row)?,
        gathered("org_path", &paths, &path_of_row)?,
        Column::new("is_latest_period".into(), is_latest),
    ])?;
    let frame = frame.select(DEVIATION_COLUMNS[..36].iter().copied())?;
    // `indicator_values` comes sorted by cell (`finish` sorts it): checking is cheaper than
    // sorting on five text columns again.
    if (1..n).all(|i| cells.key(i - 1) < cells.key(i)) {
        return Ok(frame);
    }
    frame
        .lazy()
        .sort(
            CELL_KEY,
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
}

/// The distinct texts `text(key)` of `keys` and each row's index among them, for `gathered`.
fn by_key<'t>(
    keys: &[&str],
    text: impl Fn(&str) -> Option<&'t str>,
) -> (Vec<Option<&'t str>>, Vec<Option<u32>>) {
    let mut at: PlHashMap<&str, u32> = PlHashMap::new();
    let mut dictionary = Vec::new();
    let index = keys
        .iter()
        .map(|&k| {
            Some(*at.entry(k).or_insert_with(|| {
                dictionary.push(text(k));
                (dictionary.len() - 1) as u32
            }))
        })
        .collect();
    (dictionary, index)
}

/// Status, gap and the target's description for every row.
#[allow(clippy::too_many_arguments)]
fn judge_rows(
    pipeline: &Pipeline,
    targets: &Targets,
    cells: &Cells,
    value: &[Option<f64>],
    history: &History,
    reference: &[Option<f64>],
    target: &[Option<u32>],
    ranks: &Ranks,
) -> PolarsResult<DataFrame> {
    let polarity = polarities(pipeline);
    let mut out = JudgedColumns::default();
    for i in 0..cells.len() {
        let target = target[i].map(|t| (t, &targets.list[t as usize]));
        let pol = polarity
            .get(cells.indicator[i])
            .copied()
            .unwrap_or(Polarity::Neutral);
        if let Some((_, t)) = target.filter(|(_, t)| t.kind.is_rank()) {
            let rank = ranks.rank[i].zip(ranks.rank_of[i]);
            let j = status::judge_rank(t, rank, ranks.last_year_rank[i]);
            out.push(j, target, j.target_value, pol);
            continue;
        }
        let comparison = target.and_then(|(_, t)| match t.compare_to {
            Some(CompareTo::PreviousYear) => history.last_year_value[i],
            Some(CompareTo::PreviousPeriod) => history.previous_value[i],
            Some(
                CompareTo::Parent | CompareTo::Unit(_) | CompareTo::National | CompareTo::Group(_),
            ) => reference[i],
            None => None,
        });
        let j = judge(value[i], target.map(|(_, t)| t), comparison, pol);
        out.push(j, target, comparison, pol);
    }
    out.frame(targets)
}

/// A target's texts as the deviations table shows them.
struct TargetLabels {
    tolerance: Option<String>,
    compare_to: Option<String>,
    note: Option<String>,
}

impl TargetLabels {
    fn of(t: &Target) -> TargetLabels {
        TargetLabels {
            tolerance: t.tolerance.map(|x| x.label()),
            compare_to: t.compare_to.as_ref().map(|c| c.label()),
            note: Some(t.note.clone()).filter(|n| !n.is_empty()),
        }
    }
}

/// The judged columns of every row. The texts repeat a few values (a status, a target's
/// labels), so rows keep an index into them and each text column is gathered at the end.
#[derive(Default)]
struct JudgedColumns {
    status: Vec<Option<u32>>,
    target: Vec<Option<u32>>,
    target_value: Vec<Option<f64>>,
    target_value_high: Vec<Option<f64>>,
    comparison: Vec<Option<f64>>,
    gap: Vec<Option<f64>>,
    gap_pct: Vec<Option<f64>>,
    polarity: Vec<Option<u32>>,
}

/// The polarities, in the order `JudgedColumns` indexes them.
const POLARITIES: [Polarity; 3] = [
    Polarity::HigherIsBetter,
    Polarity::LowerIsBetter,
    Polarity::Neutral,
];

fn polarity_label(p: Polarity) -> &'static str {
    match p {
        Polarity::HigherIsBetter => "higher_is_better",
        Polarity::LowerIsBetter => "lower_is_better",
        Polarity::Neutral => "neutral",
    }
}

impl JudgedColumns {
    fn push(
        &mut self,
        j: Judgement,
        target: Option<(u32, &Target)>,
        comparison: Option<f64>,
        polarity: Polarity,
    ) {
        let status = Status::ALL.iter().position(|s| *s == j.status);
        self.status.push(status.map(|s| s as u32));
        self.target.push(target.map(|(i, _)| i));
        self.target_value.push(j.target_value);
        self.target_value_high
            .push(target.and_then(|(_, t)| t.value_high));
        self.comparison.push(comparison);
        self.gap.push(j.gap);
        self.gap_pct.push(match (j.gap, j.target_value) {
            (Some(g), Some(t)) if t != 0.0 => Some(100.0 * g / t.abs()),
            _ => None,
        });
        let polarity = POLARITIES.iter().position(|p| *p == polarity);
        self.polarity.push(polarity.map(|p| p as u32));
    }

    fn frame(self, targets: &Targets) -> PolarsResult<DataFrame> {
        let labels: Vec<TargetLabels> = targets.list.iter().map(TargetLabels::of).collect();
        fn of_target<'t>(
            targets: &Targets,
            text: impl Fn(usize) -> Option<&'t str>,
        ) -> Vec<Option<&'t str>> {
            (0..targets.list.len()).map(text).collect()
        }
        let statuses = Status::ALL.map(|s| Some(s.as_str()));
        let polarities = POLARITIES.map(|p| Some(polarity_label(p)));
        let float = |name: &str, v: Vec<Option<f64>>| Column::new(name.into(), v);
        DataFrame::new_infer_height(vec![
            gathered("status", &statuses, &self.status)?,
            gathered(
                "target_kind",
                &of_target(targets, |t| Some(targets.list[t].kind.as_str())),
                &self.target,
            )?,
            float("target_value", self.target_value),
            float("target_value_high", self.target_value_high),
            gathered(
                "tolerance",
                &of_target(targets, |t| labels[t].tolerance.as_deref()),
                &self.target,
            )?,
            gathered(
                "compare_to",
                &of_target(targets, |t| labels[t].compare_to.as_deref()),
                &self.target,
            )?,
            float("comparison_value", self.comparison),
            float("gap", self.gap),
            float("gap_pct", self.gap_pct),
            gathered(
                "target_origin",
                &of_target(targets, |t| Some(targets.list[t].origin.as_str())),
                &self.target,
            )?,
            gathered(
                "target_note",
                &of_target(targets, |t| labels[t].note.as_deref()),
                &self.target,
            )?,
            gathered("polarity", &polarities, &self.polarity)?,
        ])
    }
}

/// A text column whose rows take their values from `dictionary` by index (`None`: null). The
/// rows share the dictionary's texts instead of each copying its own.
fn gathered(
    name: &str,
    dictionary: &[Option<&str>],
    index: &[Option<u32>],
) -> PolarsResult<Column> {
    let dictionary = StringChunked::from_iter_options(name.into(), dictionary.iter().copied());
    let index = IdxCa::from_iter_options("".into(), index.iter().map(|i| i.map(|i| i as IdxSize)));
    Ok(dictionary.take(&index)?.into_column())
}

/// Five text keys of a row (which five: see where it is used).
type Key5<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// `rank, rank_of, last_year_rank` of every row: each value's rank among the units of the same
/// kind (all kommuner, say) for the same indicator, period and segment — 1 is the best in the
/// indicator's polarity, ties share the better rank — and the unit's rank the same period a year
/// earlier. Neutral indicators are not ranked.
struct Ranks {
    rank: Vec<Option<u32>>,
    rank_of: Vec<Option<u32>>,
    last_year_rank: Vec<Option<u32>>,
}

fn ranks(
    pipeline: &Pipeline,
    cells: &Cells,
    org_kind: &[&str],
    value: &[Option<f64>],
    history: &History,
) -> Ranks {
    let polarity = polarities(pipeline);
    let n = cells.len();
    // Keys: indicator, grain, period, segment and org kind.
    let mut groups: PlHashMap<Key5, Vec<(usize, f64)>> = PlHashMap::new();
    for i in 0..n {
        let Some(v) = value[i] else {
            continue;
        };
        let sign = match polarity.get(cells.indicator[i]) {
            Some(Polarity::HigherIsBetter) => 1.0,
            Some(Polarity::LowerIsBetter) => -1.0,
            _ => continue,
        };
        if !v.is_finite() {
            continue;
        }
        let key = (
            cells.indicator[i],
            cells.grain[i],
            cells.period[i],
            cells.segment[i],
            org_kind[i],
        );
        groups.entry(key).or_default().push((i, sign * v));
    }
    let mut rank: Vec<Option<u32>> = vec![None; n];
    let mut rank_of: Vec<Option<u32>> = vec![None; n];
    for members in groups.values() {
        let mut scores: Vec<f64> = members.iter().map(|m| m.1).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        for &(i, score) in members {
            // 1 + the number of units strictly better.
            let better = scores.partition_point(|&x| x > score);
            rank[i] = Some(better as u32 + 1);
            rank_of[i] = Some(members.len() as u32);
        }
    }
    let last_year_rank = history
        .last_year_row
        .iter()
        .map(|r| r.and_then(|r| rank[r]))
        .collect();
    Ranks {
        rank,
        rank_of,
        last_year_rank,
    }
}

/// The goals each indicator measures, comma-separated, by indicator.
fn goal_ids(pipeline: &Pipeline) -> PlHashMap<&str, String> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for g in &pipeline.def.goals {
        for i in &g.indicators {
            map.entry(i.get_ref()).or_default().push(g.id.get_ref());
        }
    }
    map.into_iter()
        .map(|(i, goals)| (i, goals.join(",")))
        .collect()
}

/// Each unit's path from the root, `UK/SN/SOC/SOC-ALD/SOC-ALD-HTN`, for filtering on a subtree.
fn org_paths(tree: &OrgTree) -> PlHashMap<&str, String> {
    tree.units()
        .iter()
        .map(|u| {
            let mut chain: Vec<&str> = tree
                .ancestors_and_self(&u.id)
                .iter()
                .map(|u| u.id.as_str())
                .collect();
            chain.reverse();
            (u.id.as_str(), chain.join("/"))
        })
        .collect()
}

/// Counts per status, for the manifest and the run summary.
pub(crate) fn status_counts(table: &DataFrame) -> PolarsResult<BTreeMap<String, usize>> {
    let mut counts: BTreeMap<String, usize> = Status::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for s in table.column("status")?.str()?.iter().flatten() {
        *counts.entry(s.to_string()).or_default() += 1;
    }
    Ok(counts)
}
