//! Phase 2 of the two-phase aggregation: the small table of partial states per
//! `(own unit, month, segment)` is merged into every unit above (children into parents) and into
//! every period (months into quarters, tertials, years and year-to-date), then each indicator's
//! numerator and denominator are evaluated on the merged states.
//!
//! Scalar states (sums, counts, min/max) are tiny — units × months × segments — so they are
//! joined to the ancestors and periods at once. Distinct sets and value multisets can be as large
//! as the data (every employee of every month), so they are merged one tree level at a time,
//! which keeps memory at one copy of the set instead of one copy per ancestor; a year-to-date
//! distinct count is the number of values first seen in the year by that month, so it needs no
//! copy per ytd period either.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::partial::{Decomposed, Merge, SetKind};
use crate::org::OrgTree;
use crate::period::{Grain, RunMonths};

/// An indicator as phase 2 sees it.
#[derive(Debug, Clone)]
pub struct PartialIndicator {
    pub parts: Decomposed,
    /// Grains to produce: the declared ones, or months only for stock measures (their coarser
    /// periods are formed from months later).
    pub grains: Vec<Grain>,
    /// Roll up over the tree (`rollup = "rows"`), or only the unit's own rows.
    pub tree: bool,
}

/// One segmentation's phase-1 output: the scalar states, and one frame per set state.
pub struct SegmentPartials {
    /// Positions in the indicator list of the indicators computed in this segmentation.
    pub members: Vec<usize>,
    /// `__unit, __month, __segment`, then the members' scalar states.
    pub scalars: DataFrame,
    /// Per set state: its phase-1 output's number (shared by identical states) and the frame
    /// `__unit, __month, __segment, __v, __w` (`__w` = multiplicity).
    pub sets: BTreeMap<String, (usize, DataFrame)>,
}

const CELL: [&str; 4] = ["__ancestor", "__grain", "__period", "__segment"];

fn cell_keys() -> Vec<Expr> {
    CELL.iter().map(|c| col(*c)).collect()
}

/// Merges every segmentation's partial states and evaluates the indicators. Output: the raw
/// long format `indicator_id, org_unit_id, grain, period, segment, numerator, denominator,
/// n_rows`, one row per cell that has rows.
pub fn roll_up(
    indicators: &[PartialIndicator],
    segments: Vec<SegmentPartials>,
    tree: &OrgTree,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let mut out = Vec::new();
    let mut merged_sets = MergedSets::default();
    for seg in segments {
        for tree_rollup in [true, false] {
            let members: Vec<&PartialIndicator> = seg
                .members
                .iter()
                .map(|&i| &indicators[i])
                .filter(|i| i.tree == tree_rollup)
                .collect();
            if members.is_empty() {
                continue;
            }
            let rolled = roll_scalars(&seg.scalars, &members, tree, months, tree_rollup)?;
            for ind in members {
                out.push(evaluate(
                    ind,
                    &rolled,
                    &seg.sets,
                    &mut merged_sets,
                    tree,
                    months,
                )?);
            }
        }
    }
    if out.is_empty() {
        return Ok(DataFrame::empty());
    }
    concat(out, UnionArgs::default())?
        .join(
            tree.unit_ids_frame()?.lazy(),
            [col("__ancestor")],
            [col("__unit")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            col("indicator_id"),
            col("org_unit_id"),
            col("__grain").alias("grain"),
            col("__period").alias("period"),
            col("__segment").alias("segment"),
            col("numerator"),
            col("denominator"),
            col("n_rows"),
        ])
        .collect()
}

/// `__month → __grain, __period` for the given grains.
fn membership(months: RunMonths, grains: &[Grain]) -> PolarsResult<LazyFrame> {
    Ok(months.membership_frame(grains)?.lazy().select([
        col("__month"),
        col("grain").alias("__grain"),
        col("period").alias("__period"),
    ]))
}

/// Every scalar state of `members`, merged per (ancestor or own unit, period, segment).
fn roll_scalars(
    scalars: &DataFrame,
    members: &[&PartialIndicator],
    tree: &OrgTree,
    months: RunMonths,
    tree_rollup: bool,
) -> PolarsResult<DataFrame> {
    let grains: BTreeSet<Grain> = members.iter().flat_map(|m| m.grains.clone()).collect();
    let grains: Vec<Grain> = grains.into_iter().collect();
    let placed = if tree_rollup {
        scalars.clone().lazy().join(
            tree.ancestor_index_frame()?.lazy(),
            [col("__unit")],
            [col("__unit")],
            JoinArgs::new(JoinType::Inner),
        )
    } else {
        scalars
            .clone()
            .lazy()
            .with_column(col("__unit").alias("__ancestor"))
    };
    let merges: Vec<Expr> = members
        .iter()
        .flat_map(|m| m.parts.scalars.iter())
        .map(|s| {
            let c = col(s.name.as_str());
            match s.merge {
                Merge::Sum => c.sum(),
                Merge::Min => c.min(),
                Merge::Max => c.max(),
            }
        })
        .collect();
    placed
        .join(
            membership(months, &grains)?,
            [col("__month")],
            [col("__month")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by(cell_keys())
        .agg(merges)
        .collect()
}

/// One indicator's cells: its grains of the merged scalars, its merged sets joined on, and the
/// numerator, denominator and row count evaluated per cell.
/// Merged sets already computed, by (phase-1 output, kind, grains, tree roll-up), so indicators
/// sharing a set merge it once. The state column is `__set`.
#[derive(Default)]
struct MergedSets(BTreeMap<(usize, bool, Vec<Grain>, bool), DataFrame>);

fn evaluate(
    ind: &PartialIndicator,
    rolled: &DataFrame,
    sets: &BTreeMap<String, (usize, DataFrame)>,
    merged_sets: &mut MergedSets,
    tree: &OrgTree,
    months: RunMonths,
) -> PolarsResult<LazyFrame> {
    let grain_names: Vec<&str> = ind.grains.iter().map(|g| g.as_str()).collect();
    let in_grains = grain_names
        .iter()
        .map(|g| col("__grain").eq(lit(*g)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let mut cells = rolled.clone().lazy().filter(in_grains);
    for set in &ind.parts.sets {
        let Some((at, frame)) = sets.get(&set.name) else {
            continue;
        };
        let key = (
            *at,
            set.kind == SetKind::Distinct,
            ind.grains.clone(),
            ind.tree,
        );
        let merged = match merged_sets.0.get(&key) {
            Some(m) => m.clone(),
            None => {
                let m = roll_set(frame, set.kind, &ind.grains, tree, months, ind.tree)?;
                merged_sets.0.insert(key, m.clone());
                m
            }
        };
        cells = cells.join(
            merged.lazy().rename(["__set"], [set.name.as_str()], true),
            cell_keys(),
            cell_keys(),
            JoinArgs::new(JoinType::Left),
        );
        if set.kind == SetKind::Distinct {
            cells = cells.with_column(col(set.name.as_str()).fill_null(lit(0i64)));
        }
    }
    let denominator = match &ind.parts.denominator {
        Some(d) => d.clone(),
        None => lit(NULL).cast(DataType::Float64),
    };
    Ok(cells.select([
        lit(ind.parts.id.as_str()).alias("indicator_id"),
        col("__ancestor"),
        col("__grain"),
        col("__period"),
        col("__segment"),
        ind.parts.numerator.clone().alias("numerator"),
        denominator.alias("denominator"),
        col(ind.parts.n_rows.as_str())
            .cast(DataType::Int64)
            .alias("n_rows"),
    ]))
}

/// The tree levels a set is merged into: per level, `__unit → __ancestor`. Without the tree,
/// one level mapping each unit to itself.
fn levels(tree: &OrgTree, tree_rollup: bool) -> PolarsResult<Vec<DataFrame>> {
    if tree_rollup {
        (0..=tree.max_depth())
            .map(|d| tree.ancestor_at_depth_frame(d))
            .collect()
    } else {
        let n = tree.units().len() as u32;
        Ok(vec![df!(
            "__unit" => (0..n).collect::<Vec<_>>(),
            "__ancestor" => (0..n).collect::<Vec<_>>(),
        )?])
    }
}

/// A set state merged per cell: `__ancestor, __grain, __period, __segment, <state name>` (the
/// distinct count as Int64, or the median as Float64).
fn roll_set(
    frame: &DataFrame,
    kind: SetKind,
    grains: &[Grain],
    tree: &OrgTree,
    months: RunMonths,
    tree_rollup: bool,
) -> PolarsResult<DataFrame> {
    let levels = levels(tree, tree_rollup)?;
    let name = "__set";
    let with_ids;
    let frame = if kind == SetKind::Distinct {
        with_ids = with_value_ids(frame)?;
        &with_ids
    } else {
        frame
    };
    let mut out = Vec::new();
    for &grain in grains {
        if grain == Grain::Ytd && kind == SetKind::Distinct {
            for level in &levels {
                out.push(ytd_distinct(frame, level, months, name)?);
            }
            continue;
        }
        // Months into the grain's periods first: a coarser period holds each value once.
        let keys = [
            col("__unit"),
            col("__grain"),
            col("__period"),
            col("__segment"),
            col("__v"),
        ];
        let by_period = frame
            .clone()
            .lazy()
            .join(
                membership(months, &[grain])?,
                [col("__month")],
                [col("__month")],
                JoinArgs::new(JoinType::Inner),
            )
            .group_by(keys)
            .agg([col("__w").sum()])
            .collect()?;
        for level in &levels {
            let placed = by_period.clone().lazy().join(
                level.clone().lazy(),
                [col("__unit")],
                [col("__unit")],
                JoinArgs::new(JoinType::Inner),
            );
            out.push(match kind {
                SetKind::Distinct => placed
                    .group_by(cell_keys())
                    .agg([col("__v").n_unique().cast(DataType::Int64).alias(name)])
                    .collect()?,
                SetKind::Median => {
                    let mut keys = cell_keys();
                    keys.push(col("__v"));
                    let weighted = placed
                        .group_by(keys)
                        .agg([col("__w").sum()])
                        .sort(
                            ["__ancestor", "__grain", "__period", "__segment", "__v"],
                            SortMultipleOptions::default(),
                        )
                        .collect()?;
                    weighted_medians(&weighted, name)?
                }
            });
        }
    }
    if out.is_empty() {
        return df!(
            "__ancestor" => Vec::<u32>::new(),
            "__grain" => Vec::<String>::new(),
            "__period" => Vec::<String>::new(),
            "__segment" => Vec::<String>::new(),
            name => Vec::<i64>::new(),
        );
    }
    concat(
        out.into_iter().map(|f| f.lazy()).collect::<Vec<_>>(),
        UnionArgs::default(),
    )?
    .collect()
}

/// Replaces text values by dense integer ids (equal text, equal id; null stays null), so the
/// distinct counts of every level hash integers instead of strings.
fn with_value_ids(frame: &DataFrame) -> PolarsResult<DataFrame> {
    let values = frame.column("__v")?;
    if values.dtype() != &DataType::String {
        return Ok(frame.clone());
    }
    let text = values.str()?;
    let mut ids: PlHashMap<&str, u32> = PlHashMap::with_capacity(text.len() / 4);
    let out: UInt32Chunked = text
        .iter()
        .map(|v| {
            v.map(|v| {
                let next = ids.len() as u32;
                *ids.entry(v).or_insert(next)
            })
        })
        .collect();
    let mut frame = frame.clone();
    frame.with_column(out.with_name("__v".into()).into_column())?;
    Ok(frame)
}

/// Year-to-date distinct counts without a copy per ytd period: within a year, the values seen by
/// month m are those whose first month in the year is ≤ m.
fn ytd_distinct(
    frame: &DataFrame,
    level: &DataFrame,
    months: RunMonths,
    name: &str,
) -> PolarsResult<DataFrame> {
    let ytd = months.periods(Grain::Ytd);
    let periods = df!(
        "__year" => ytd.iter().map(|p| p.first.year()).collect::<Vec<_>>(),
        "__last" => ytd.iter().map(|p| p.last.0).collect::<Vec<_>>(),
        "__period" => ytd.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(),
    )?;
    let year = col("__month").floor_div(lit(12i32));
    frame
        .clone()
        .lazy()
        .join(
            level.clone().lazy(),
            [col("__unit")],
            [col("__unit")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([
            col("__ancestor"),
            year.alias("__year"),
            col("__segment"),
            col("__v"),
        ])
        .agg([col("__month").min().alias("__first")])
        .group_by([
            col("__ancestor"),
            col("__year"),
            col("__segment"),
            col("__first"),
        ])
        .agg([len().cast(DataType::Int64).alias("__new")])
        .join(
            periods.lazy(),
            [col("__year")],
            [col("__year")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("__first").lt_eq(col("__last")))
        .group_by([col("__ancestor"), col("__period"), col("__segment")])
        .agg([col("__new").sum().alias(name)])
        .select([
            col("__ancestor"),
            lit(Grain::Ytd.as_str()).alias("__grain"),
            col("__period"),
            col("__segment"),
            col(name),
        ])
        .collect()
}

/// Medians from sorted `(cell, value, multiplicity)` rows, as polars computes a median: the
/// middle value, or for an even count the linear interpolation halfway between the two middle
/// values.
fn weighted_medians(sorted: &DataFrame, name: &str) -> PolarsResult<DataFrame> {
    let anc = sorted.column("__ancestor")?.u32()?;
    let grain = sorted.column("__grain")?.str()?;
    let period = sorted.column("__period")?.str()?;
    let segment = sorted.column("__segment")?.str()?;
    let values = sorted.column("__v")?.cast(&DataType::Float64)?;
    let values = values.f64()?;
    let weights = sorted.column("__w")?.cast(&DataType::Int64)?;
    let weights = weights.i64()?;
    let n = sorted.height();
    let (mut o_anc, mut o_grain, mut o_period, mut o_seg, mut o_val) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    while start < n {
        let key = |i: usize| (anc.get(i), grain.get(i), period.get(i), segment.get(i));
        let mut end = start;
        while end < n && key(end) == key(start) {
            end += 1;
        }
        let entries: Vec<(f64, i64)> = (start..end)
            .filter_map(|i| Some((values.get(i)?, weights.get(i)?)))
            .collect();
        let total: i64 = entries.iter().map(|e| e.1).sum();
        if total > 0 {
            // 0-based positions of the two middle values.
            let (lo_pos, hi_pos) = ((total - 1) / 2, total / 2);
            let at = |pos: i64| {
                let mut seen = 0;
                for (v, w) in &entries {
                    seen += w;
                    if pos < seen {
                        return *v;
                    }
                }
                unreachable!("position is below the total weight")
            };
            let (lo, hi) = (at(lo_pos), at(hi_pos));
            let median = if lo == hi { lo } else { 0.5 * (hi - lo) + lo };
            let (a, g, p, s) = key(start);
            o_anc.push(a);
            o_grain.push(g.map(str::to_string));
            o_period.push(p.map(str::to_string));
            o_seg.push(s.map(str::to_string));
            o_val.push(median);
        }
        start = end;
    }
    df!(
        "__ancestor" => o_anc,
        "__grain" => o_grain,
        "__period" => o_period,
        "__segment" => o_seg,
        name => o_val,
    )
}
