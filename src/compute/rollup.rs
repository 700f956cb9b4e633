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
use rayon::prelude::*;

use super::distinct::distinct_counts;
use super::partial::{Decomposed, Merge, SetKind};
use crate::org::OrgTree;
use crate::period::{Grain, RunMonths};

/// An indicator as phase 2 sees it.
#[derive(Debug, Clone)]
pub(crate) struct PartialIndicator {
    pub(crate) parts: Decomposed,
    /// Grains to produce: the declared ones, or months only for stock measures (their coarser
    /// periods are formed from months later).
    pub(crate) grains: Vec<Grain>,
    /// Roll up over the tree (`rollup = "rows"`), or only the unit's own rows.
    pub(crate) tree: bool,
}

/// One segmentation's phase-1 output: the scalar states, and one frame per set state.
pub(crate) struct SegmentPartials {
    /// Positions in the indicator list of the indicators computed in this segmentation.
    pub(crate) members: Vec<usize>,
    /// The breakdown dimension (none for the total).
    pub(crate) dim: Option<String>,
    /// `__unit, __month, __segment`, then the members' scalar states.
    pub(crate) scalars: DataFrame,
    /// Per set state: its phase-1 output's number, the value column in it, and the frame. A
    /// distinct set's frame is `__unit, __month, [__segment], <value columns>` (`__segment`: the
    /// breakdown's value as text; no `__segment` means the total), shared by the distinct sets
    /// with the same filter; a median's is `__unit, __month, __segment, __v, __w` (`__w` =
    /// multiplicity).
    pub(crate) sets: BTreeMap<String, (usize, String, DataFrame)>,
}

const CELL: [&str; 4] = ["__ancestor", "__grain", "__period", "__segment"];

fn cell_keys() -> Vec<Expr> {
    CELL.iter().map(|c| col(*c)).collect()
}

/// Merges every segmentation's partial states and evaluates the indicators. Output: the raw
/// long format `indicator_id, org_unit_id, grain, period, segment, numerator, denominator,
/// n_rows`, one row per cell that has rows.
pub(crate) fn roll_up(
    indicators: &[PartialIndicator],
    segments: Vec<SegmentPartials>,
    tree: &OrgTree,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let mut out = Vec::new();
    let merged_sets = merge_sets(indicators, &segments, tree, months)?;
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
                out.push(evaluate(ind, &rolled, &seg, &merged_sets)?);
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

/// A set state's identity: (phase-1 output, value column, tree roll-up, the breakdown it is
/// counted by). The total may count a breakdown's set with its segments ignored.
type SetKey = (usize, String, bool, Option<String>);

/// Every set state some indicator needs, merged once for all the grains its indicators want
/// (indicators with other grains often share a set: one bucketing, then walks per grain). Sets
/// are merged side by side; each is large (hr_time: one row per employee and month) and is
/// built and walked on its own.
fn merge_sets(
    indicators: &[PartialIndicator],
    segments: &[SegmentPartials],
    tree: &OrgTree,
    months: RunMonths,
) -> PolarsResult<BTreeMap<SetKey, DataFrame>> {
    type Wanted<'a> = (SetKind, &'a DataFrame, Option<&'a str>, BTreeSet<Grain>);
    let mut wanted: BTreeMap<SetKey, Wanted> = BTreeMap::new();
    for seg in segments {
        for ind in seg.members.iter().map(|&i| &indicators[i]) {
            for set in &ind.parts.sets {
                if let Some((at, column, frame)) = seg.sets.get(&set.name) {
                    wanted
                        .entry((*at, column.clone(), ind.tree, seg.dim.clone()))
                        .or_insert((set.kind, frame, seg.dim.as_deref(), BTreeSet::new()))
                        .3
                        .extend(ind.grains.iter().copied());
                }
            }
        }
    }
    let merged: Vec<(SetKey, PolarsResult<DataFrame>)> = wanted
        .into_par_iter()
        .map(|(key, (kind, frame, dim, grains))| {
            let grains: Vec<Grain> = grains.into_iter().collect();
            let (column, tree_rollup) = (&key.1, key.2);
            let m = match kind {
                SetKind::Distinct => {
                    distinct_counts(frame, column, dim, &grains, tree, months, tree_rollup)
                }
                SetKind::Median => roll_medians(frame, &grains, tree, months, tree_rollup),
            };
            (key, m)
        })
        .collect();
    merged.into_iter().map(|(k, m)| Ok((k, m?))).collect()
}

/// One indicator's cells: its grains of the merged scalars, its merged sets joined on (the state
/// column is `__set`), and the numerator, denominator and row count evaluated per cell. `seg`:
/// the indicator's segmentation.
fn evaluate(
    ind: &PartialIndicator,
    rolled: &DataFrame,
    seg: &SegmentPartials,
    merged_sets: &BTreeMap<SetKey, DataFrame>,
) -> PolarsResult<LazyFrame> {
    let grain_names: Vec<&str> = ind.grains.iter().map(|g| g.as_str()).collect();
    let in_grains = grain_names
        .iter()
        .map(|g| col("__grain").eq(lit(*g)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let mut cells = rolled.clone().lazy().filter(in_grains);
    for set in &ind.parts.sets {
        let Some((at, column, _)) = seg.sets.get(&set.name) else {
            continue;
        };
        let merged = merged_sets
            .get(&(*at, column.clone(), ind.tree, seg.dim.clone()))
            .expect("every set of every member was merged")
            .clone();
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

/// Medians merged per cell: `__ancestor, __grain, __period, __segment, __set` (Float64).
/// Multisets are small (values repeat), so they are joined to each tree level and period.
fn roll_medians(
    frame: &DataFrame,
    grains: &[Grain],
    tree: &OrgTree,
    months: RunMonths,
    tree_rollup: bool,
) -> PolarsResult<DataFrame> {
    let levels = levels(tree, tree_rollup)?;
    let name = "__set";
    let mut out = Vec::new();
    for &grain in grains {
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
            let mut keys = cell_keys();
            keys.push(col("__v"));
            let weighted = by_period
                .clone()
                .lazy()
                .join(
                    level.clone().lazy(),
                    [col("__unit")],
                    [col("__unit")],
                    JoinArgs::new(JoinType::Inner),
                )
                .group_by(keys)
                .agg([col("__w").sum()])
                .sort(
                    ["__ancestor", "__grain", "__period", "__segment", "__v"],
                    SortMultipleOptions::default(),
                )
                .collect()?;
            out.push(weighted_medians(&weighted, name)?.lazy());
        }
    }
    if out.is_empty() {
        return df!(
            "__ancestor" => Vec::<u32>::new(),
            "__grain" => Vec::<String>::new(),
            "__period" => Vec::<String>::new(),
            "__segment" => Vec::<String>::new(),
            name => Vec::<f64>::new(),
        );
    }
    concat(out, UnionArgs::default())?.collect()
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
