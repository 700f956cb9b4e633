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

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::definitions::{Pipeline, Polarity};
use crate::org::{Groups, OrgTree};
use crate::period::{Grain, RunMonths};
use crate::schema::{CELL_KEY, DEVIATION_COLUMNS, cols};

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
    let keys = CELL_KEY.map(col);
    let deviations = deviations
        .lazy()
        .join(
            points.lazy(),
            keys.clone(),
            keys,
            JoinArgs::new(JoinType::Left),
        )
        .select(DEVIATION_COLUMNS.map(col))
        .collect()?;
    let actions = actions_table(actions, &goal_status, tree, as_of)?;
    Ok(Assessment {
        deviations,
        goal_status,
        actions,
        signals: series,
    })
}

/// The signal columns of every deviation row (`points`) and one row per series with its
/// forecast (`series`).
fn signal_tables(
    pipeline: &Pipeline,
    tree: &OrgTree,
    targets: &Targets,
    deviations: &DataFrame,
    months: RunMonths,
) -> PolarsResult<(DataFrame, DataFrame)> {
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

/// `grain, period, is_latest_period = true` for the last period of each grain in the run.
fn latest_periods(months: RunMonths) -> PolarsResult<DataFrame> {
    let latest: Vec<(Grain, String)> = Grain::ALL
        .iter()
        .filter_map(|&g| months.periods(g).pop().map(|p| (g, p.label)))
        .collect();
    df!(
        "grain" => latest.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>(),
        "period" => latest.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>(),
        "is_latest_period" => vec![true; latest.len()],
    )
}

/// Every period's predecessor and its same period last year, by label.
fn period_relations(months: RunMonths) -> PolarsResult<DataFrame> {
    let mut cols: [Vec<String>; 4] = Default::default();
    for g in Grain::ALL {
        for p in months.periods(g) {
            let (previous, last_year) = p.previous_labels();
            cols[0].push(g.as_str().to_string());
            cols[1].push(p.label.clone());
            cols[2].push(previous);
            cols[3].push(last_year);
        }
    }
    let [a, b, c, d] = cols;
    df!("grain" => a, "period" => b, "__previous" => c, "__last_year" => d)
}

fn deviations(
    pipeline: &Pipeline,
    tree: &OrgTree,
    groups: &Groups,
    targets: &Targets,
    values: &DataFrame,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let frame = with_history_and_targets(tree, targets, values, months)?;
    let mut frame = with_reference_values(frame, values, tree, groups, targets)?;
    let ranks = ranks(pipeline, &frame)?;
    frame.hstack_mut(ranks.columns())?;
    let judged = judge_rows(pipeline, targets, &frame)?;
    frame.hstack_mut(judged.columns())?;
    with_changes_and_context(pipeline, tree, frame, months)
}

/// `values` with each cell's previous-period and last-year values beside it, and the index of
/// the target that applies to it (`__target`).
fn with_history_and_targets(
    tree: &OrgTree,
    targets: &Targets,
    values: &DataFrame,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let value_at = |period_col: &str, name: &str| {
        values.clone().lazy().select([
            col("indicator_id"),
            col("org_unit_id"),
            col("grain"),
            col("period").alias(period_col),
            col("segment"),
            col("value").alias(name),
        ])
    };
    let on = |period_col: &str| {
        [
            col("indicator_id"),
            col("org_unit_id"),
            col("grain"),
            col(period_col),
            col("segment"),
        ]
    };
    // One target per cell; the segments of a cell share it.
    let cells = values
        .clone()
        .lazy()
        .filter(col("segment").eq(lit("total")))
        .select(cols(&CELL_KEY[..4]))
        .collect()?;
    let assignments = targets.assignments(tree, &cells)?;
    let cell_keys = cols(&CELL_KEY[..4]);
    values
        .clone()
        .lazy()
        .join(
            period_relations(months)?.lazy(),
            [col("grain"), col("period")],
            [col("grain"), col("period")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            value_at("__previous", "previous_value"),
            on("__previous"),
            on("__previous"),
            JoinArgs::new(JoinType::Left),
        )
        .join(
            value_at("__last_year", "last_year_value"),
            on("__last_year"),
            on("__last_year"),
            JoinArgs::new(JoinType::Left),
        )
        .join(
            assignments.lazy(),
            cell_keys.clone(),
            cell_keys,
            JoinArgs::new(JoinType::Left),
        )
        .collect()
}

/// The judged frame with the changes against the previous period and last year, the goals each
/// indicator measures, the unit's place in the tree and whether the period is the latest: the
/// published columns of `deviations` (without the signal columns), in cell order.
fn with_changes_and_context(
    pipeline: &Pipeline,
    tree: &OrgTree,
    frame: DataFrame,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let goal_ids = goal_ids_frame(pipeline)?;
    let org_paths = org_paths_frame(tree)?;
    frame
        .lazy()
        .with_columns([
            (col("value") - col("previous_value")).alias("change"),
            (col("value") - col("last_year_value")).alias("yoy_change"),
        ])
        .join(
            goal_ids.lazy(),
            [col("indicator_id")],
            [col("indicator_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            org_paths.lazy(),
            [col("org_unit_id")],
            [col("org_unit_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            latest_periods(months)?.lazy(),
            [col("grain"), col("period")],
            [col("grain"), col("period")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("is_latest_period").fill_null(lit(false)))
        .select(
            DEVIATION_COLUMNS[..36]
                .iter()
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
        .sort(
            CELL_KEY,
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
}

/// `frame` with `__reference_value`: what a benchmark target compares with — another unit's
/// value of the same cell (the parent, a named unit, the nation's root), or the unweighted mean
/// of a group's members in the same cell.
fn with_reference_values(
    mut frame: DataFrame,
    values: &DataFrame,
    tree: &OrgTree,
    groups: &Groups,
    targets: &Targets,
) -> PolarsResult<DataFrame> {
    let (reference_unit, reference_group) = reference_columns(&frame, tree, targets)?;
    frame.with_column(reference_unit)?;
    frame.with_column(reference_group)?;
    let reference = values.clone().lazy().select([
        col("indicator_id"),
        col("org_unit_id").alias("__reference_unit"),
        col("grain"),
        col("period"),
        col("segment"),
        col("value").alias("__reference_value"),
    ]);
    let ref_keys = [
        col("indicator_id"),
        col("__reference_unit"),
        col("grain"),
        col("period"),
        col("segment"),
    ];
    // A group's benchmark is the unweighted mean of its members' values in the same cell.
    let group_means = values
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
        .agg([col("value").mean().alias("__group_value")]);
    let group_keys = [
        col("indicator_id"),
        col("__reference_group"),
        col("grain"),
        col("period"),
        col("segment"),
    ];
    frame
        .lazy()
        .join(
            reference,
            ref_keys.clone(),
            ref_keys,
            JoinArgs::new(JoinType::Left),
        )
        .join(
            group_means,
            group_keys.clone(),
            group_keys,
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("__reference_value").fill_null(col("__group_value")))
        .collect()
}

/// `__reference_unit` and `__reference_group`: the unit (parent, named unit or the root) or the
/// group each row's target compares with, if it compares with one.
fn reference_columns(
    frame: &DataFrame,
    tree: &OrgTree,
    targets: &Targets,
) -> PolarsResult<(Column, Column)> {
    let unit_col = frame.column("org_unit_id")?.str()?.clone();
    let target_col = frame.column("__target")?.u32()?.clone();
    let reference_unit: Vec<Option<String>> = unit_col
        .iter()
        .zip(target_col.iter())
        .map(|(unit, t)| {
            let target = &targets.list[t? as usize];
            match &target.compare_to {
                Some(CompareTo::Parent) => tree.get(unit?)?.parent_id.clone(),
                Some(CompareTo::Unit(u)) => Some(u.clone()),
                Some(CompareTo::National) => tree.roots().first().map(|r| r.id.clone()),
                _ => None,
            }
        })
        .collect();
    let reference_group: Vec<Option<String>> = target_col
        .iter()
        .map(|t| match &targets.list[t? as usize].compare_to {
            Some(CompareTo::Group(g)) => Some(g.clone()),
            _ => None,
        })
        .collect();
    Ok((
        Column::new("__reference_unit".into(), reference_unit),
        Column::new("__reference_group".into(), reference_group),
    ))
}

/// Status, gap and the target's description for every row.
fn judge_rows(
    pipeline: &Pipeline,
    targets: &Targets,
    frame: &DataFrame,
) -> PolarsResult<DataFrame> {
    let polarity: BTreeMap<&str, Polarity> = pipeline
        .def
        .indicators
        .iter()
        .map(|i| (i.id.get_ref().as_str(), i.polarity))
        .collect();
    let f64s = |name: &str| frame.column(name).and_then(|c| c.f64().cloned());
    let (value, previous, last_year, reference) = (
        f64s("value")?,
        f64s("previous_value")?,
        f64s("last_year_value")?,
        f64s("__reference_value")?,
    );
    let indicator = frame.column("indicator_id")?.str()?.clone();
    let target_idx = frame.column("__target")?.u32()?.clone();

    let rank = frame.column("rank")?.u32()?.clone();
    let rank_of = frame.column("rank_of")?.u32()?.clone();
    let last_year_rank = frame.column("last_year_rank")?.u32()?.clone();
    let n = frame.height();
    // Each target's texts once, not once per row.
    let labels: Vec<TargetLabels> = targets.list.iter().map(TargetLabels::of).collect();
    let mut out = JudgedColumns::default();
    for i in 0..n {
        let target = target_idx
            .get(i)
            .map(|t| (&targets.list[t as usize], &labels[t as usize]));
        if let Some((t, _)) = target.filter(|(t, _)| t.kind.is_rank()) {
            let pol = indicator
                .get(i)
                .and_then(|id| polarity.get(id).copied())
                .unwrap_or(Polarity::Neutral);
            let j = status::judge_rank(t, rank.get(i).zip(rank_of.get(i)), last_year_rank.get(i));
            out.push(j, target, j.target_value, pol);
            continue;
        }
        let comparison = target.and_then(|(t, _)| match t.compare_to {
            Some(CompareTo::PreviousYear) => last_year.get(i),
            Some(CompareTo::PreviousPeriod) => previous.get(i),
            Some(
                CompareTo::Parent | CompareTo::Unit(_) | CompareTo::National | CompareTo::Group(_),
            ) => reference.get(i),
            None => None,
        });
        let pol = indicator
            .get(i)
            .and_then(|id| polarity.get(id).copied())
            .unwrap_or(Polarity::Neutral);
        let j = judge(value.get(i), target.map(|(t, _)| t), comparison, pol);
        out.push(j, target, comparison, pol);
    }
    out.frame()
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

#[derive(Default)]
struct JudgedColumns<'a> {
    status: Vec<&'static str>,
    kind: Vec<Option<&'static str>>,
    target_value: Vec<Option<f64>>,
    target_value_high: Vec<Option<f64>>,
    tolerance: Vec<Option<&'a str>>,
    compare_to: Vec<Option<&'a str>>,
    comparison: Vec<Option<f64>>,
    gap: Vec<Option<f64>>,
    gap_pct: Vec<Option<f64>>,
    origin: Vec<Option<&'a str>>,
    note: Vec<Option<&'a str>>,
    polarity: Vec<&'static str>,
}

impl<'a> JudgedColumns<'a> {
    fn push(
        &mut self,
        j: Judgement,
        target: Option<(&'a Target, &'a TargetLabels)>,
        comparison: Option<f64>,
        polarity: Polarity,
    ) {
        self.status.push(j.status.as_str());
        self.kind.push(target.map(|(t, _)| t.kind.as_str()));
        self.target_value.push(j.target_value);
        self.target_value_high
            .push(target.and_then(|(t, _)| t.value_high));
        self.tolerance
            .push(target.and_then(|(_, l)| l.tolerance.as_deref()));
        self.compare_to
            .push(target.and_then(|(_, l)| l.compare_to.as_deref()));
        self.comparison.push(comparison);
        self.gap.push(j.gap);
        self.gap_pct.push(match (j.gap, j.target_value) {
            (Some(g), Some(t)) if t != 0.0 => Some(100.0 * g / t.abs()),
            _ => None,
        });
        self.origin.push(target.map(|(t, _)| t.origin.as_str()));
        self.note.push(target.and_then(|(_, l)| l.note.as_deref()));
        self.polarity.push(match polarity {
            Polarity::HigherIsBetter => "higher_is_better",
            Polarity::LowerIsBetter => "lower_is_better",
            Polarity::Neutral => "neutral",
        });
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        df!(
            "status" => self.status,
            "target_kind" => self.kind,
            "target_value" => self.target_value,
            "target_value_high" => self.target_value_high,
            "tolerance" => self.tolerance,
            "compare_to" => self.compare_to,
            "comparison_value" => self.comparison,
            "gap" => self.gap,
            "gap_pct" => self.gap_pct,
            "target_origin" => self.origin,
            "target_note" => self.note,
            "polarity" => self.polarity,
        )
    }
}

/// Five text keys of a row (which five: see where it is used).
type Key5<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// `rank, rank_of, last_year_rank`: each value's rank among the units of the same kind (all
/// kommuner, say) for the same indicator, period and segment — 1 is the best in the indicator's
/// polarity, ties share the better rank — and the unit's rank the same period a year earlier.
/// Neutral indicators are not ranked.
fn ranks(pipeline: &Pipeline, frame: &DataFrame) -> PolarsResult<DataFrame> {
    let polarity: HashMap<&str, Polarity> = pipeline
        .def
        .indicators
        .iter()
        .map(|i| (i.id.get_ref().as_str(), i.polarity))
        .collect();
    let s = |n: &str| frame.column(n).and_then(|c| c.str().cloned());
    let (ind, kind, grain, period, seg) = (
        s("indicator_id")?,
        s("org_kind")?,
        s("grain")?,
        s("period")?,
        s("segment")?,
    );
    let value = frame.column("value")?.f64()?;
    let n = frame.height();
    // Keys: indicator, grain, period, segment and org kind.
    let mut groups: PlHashMap<Key5, Vec<(usize, f64)>> = PlHashMap::new();
    for i in 0..n {
        let (Some(id), Some(v)) = (ind.get(i), value.get(i)) else {
            continue;
        };
        let sign = match polarity.get(id) {
            Some(Polarity::HigherIsBetter) => 1.0,
            Some(Polarity::LowerIsBetter) => -1.0,
            _ => continue,
        };
        if !v.is_finite() {
            continue;
        }
        let key = (
            id,
            grain.get(i).unwrap_or(""),
            period.get(i).unwrap_or(""),
            seg.get(i).unwrap_or(""),
            kind.get(i).unwrap_or(""),
        );
        groups.entry(key).or_default().push((i, sign * v));
    }
    let mut rank: Vec<Option<u32>> = vec![None; n];
    let mut of: Vec<Option<u32>> = vec![None; n];
    for members in groups.values() {
        let mut scores: Vec<f64> = members.iter().map(|m| m.1).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        for &(i, score) in members {
            // 1 + the number of units strictly better.
            let better = scores.partition_point(|&x| x > score);
            rank[i] = Some(better as u32 + 1);
            of[i] = Some(members.len() as u32);
        }
    }
    let last = last_year_ranks(frame, &rank)?;
    df!("rank" => rank, "rank_of" => of, "last_year_rank" => last)
}

/// Each row's rank in the same cell a year earlier (`__last_year` is that period's label), from
/// the ranks of this run's rows.
fn last_year_ranks(frame: &DataFrame, rank: &[Option<u32>]) -> PolarsResult<Vec<Option<u32>>> {
    let s = |n: &str| frame.column(n).and_then(|c| c.str().cloned());
    let (ind, unit, grain, period, seg, last_year) = (
        s("indicator_id")?,
        s("org_unit_id")?,
        s("grain")?,
        s("period")?,
        s("segment")?,
        s("__last_year")?,
    );
    // Keys: indicator, unit, grain, period, segment.
    let mut by_cell: PlHashMap<Key5, u32> = PlHashMap::with_capacity(rank.len());
    for (i, r) in rank.iter().enumerate() {
        if let (Some(r), Some(id), Some(u), Some(g), Some(p), Some(sg)) = (
            *r,
            ind.get(i),
            unit.get(i),
            grain.get(i),
            period.get(i),
            seg.get(i),
        ) {
            by_cell.insert((id, u, g, p, sg), r);
        }
    }
    Ok((0..frame.height())
        .map(|i| {
            by_cell
                .get(&(
                    ind.get(i)?,
                    unit.get(i)?,
                    grain.get(i)?,
                    last_year.get(i)?,
                    seg.get(i)?,
                ))
                .copied()
        })
        .collect())
}

/// `indicator_id, goal_ids`: the goals each indicator measures, comma-separated.
fn goal_ids_frame(pipeline: &Pipeline) -> PolarsResult<DataFrame> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for g in &pipeline.def.goals {
        for i in &g.indicators {
            map.entry(i.get_ref()).or_default().push(g.id.get_ref());
        }
    }
    df!(
        "indicator_id" => map.keys().copied().collect::<Vec<_>>(),
        "goal_ids" => map.values().map(|v| v.join(",")).collect::<Vec<_>>(),
    )
}

/// `org_unit_id, org_path`: `UK/SN/SOC/SOC-ALD/SOC-ALD-HTN`, for filtering on a subtree.
fn org_paths_frame(tree: &OrgTree) -> PolarsResult<DataFrame> {
    let ids: Vec<&str> = tree.units().iter().map(|u| u.id.as_str()).collect();
    let paths: Vec<String> = ids
        .iter()
        .map(|id| {
            let mut chain: Vec<&str> = tree
                .ancestors_and_self(id)
                .iter()
                .map(|u| u.id.as_str())
                .collect();
            chain.reverse();
            chain.join("/")
        })
        .collect();
    df!("org_unit_id" => ids, "org_path" => paths)
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
