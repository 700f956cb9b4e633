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
    /// `__unit, __month, __segment`, then the members' scalar states.
    pub(crate) scalars: DataFrame,
    /// Per set state: its phase-1 output's number, the value column in it, and the frame. A
    /// distinct set's frame is `__unit, __month, [__segment], <value columns>` (unique rows; no
    /// `__segment` means the total), shared by the distinct sets with the same filter; a median's
    /// is `__unit, __month, __segment, __v, __w` (`__w` = multiplicity).
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
                out.push(evaluate(ind, &rolled, &seg.sets, &merged_sets)?);
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

/// A set state's identity: (phase-1 output, value column, tree roll-up).
type SetKey = (usize, String, bool);

/// Every set state some indicator needs, merged once for all the grains its indicators want
/// (indicators with other grains often share a set: one sort, one walk per grain). Sets are
/// merged side by side; each is large (hr_time: one row per employee and month) and is built,
/// sorted and walked on its own.
fn merge_sets(
    indicators: &[PartialIndicator],
    segments: &[SegmentPartials],
    tree: &OrgTree,
    months: RunMonths,
) -> PolarsResult<BTreeMap<SetKey, DataFrame>> {
    let mut wanted: BTreeMap<SetKey, (SetKind, &DataFrame, BTreeSet<Grain>)> = BTreeMap::new();
    for seg in segments {
        for ind in seg.members.iter().map(|&i| &indicators[i]) {
            for set in &ind.parts.sets {
                if let Some((at, column, frame)) = seg.sets.get(&set.name) {
                    wanted
                        .entry((*at, column.clone(), ind.tree))
                        .or_insert((set.kind, frame, BTreeSet::new()))
                        .2
                        .extend(ind.grains.iter().copied());
                }
            }
        }
    }
    let merged: Vec<(SetKey, PolarsResult<DataFrame>)> = wanted
        .into_par_iter()
        .map(|(key, (kind, frame, grains))| {
            let grains: Vec<Grain> = grains.into_iter().collect();
            let (column, tree_rollup) = (&key.1, key.2);
            let m = match kind {
                SetKind::Distinct => {
                    distinct_counts(frame, column, &grains, tree, months, tree_rollup)
                }
                SetKind::Median => roll_medians(frame, &grains, tree, months, tree_rollup),
            };
            (key, m)
        })
        .collect();
    merged.into_iter().map(|(k, m)| Ok((k, m?))).collect()
}

/// One indicator's cells: its grains of the merged scalars, its merged sets joined on (the state
/// column is `__set`), and the numerator, denominator and row count evaluated per cell.
fn evaluate(
    ind: &PartialIndicator,
    rolled: &DataFrame,
    sets: &BTreeMap<String, (usize, String, DataFrame)>,
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
        let Some((at, column, _)) = sets.get(&set.name) else {
            continue;
        };
        let merged = merged_sets
            .get(&(*at, column.clone(), ind.tree))
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

/// Distinct counts of one value column per cell: `__ancestor, __grain, __period, __segment,
/// __set` (Int64; cells without values are left out, they count 0).
///
/// The sets can be as large as the data (every employee of every month), so this works on one
/// compact array instead of a copy per tree level: each row becomes (segment, value id, month,
/// unit), sorted so that all occurrences of a value sit together in time order. Walking them,
/// a value counts once for each distinct ancestor of the units it occurs in within a period;
/// for year-to-date, once from the first month the ancestor sees it in the year (then summed
/// up to each month). Counts go into a dense segment × unit × period array.
fn distinct_counts(
    frame: &DataFrame,
    column: &str,
    grains: &[Grain],
    tree: &OrgTree,
    months: RunMonths,
    tree_rollup: bool,
) -> PolarsResult<DataFrame> {
    let n = frame.height();
    // Columns are walked with iterators: the phase-1 output arrives in many small chunks, and
    // indexing across chunks row by row would search them each time.
    let units = frame.column("__unit")?.u32()?;
    let month = frame.column("__month")?.i32()?;
    // Segment ids (a frame without `__segment` is the total).
    let mut seg_labels: Vec<String> = Vec::new();
    let seg_ids: Vec<u32> = match frame.column("__segment") {
        Ok(c) => {
            let mut ids: PlHashMap<&str, u32> = PlHashMap::new();
            let text = c.str()?;
            text.iter()
                .map(|s| {
                    let s = s.unwrap_or("(missing)");
                    *ids.entry(s).or_insert_with(|| {
                        seg_labels.push(s.to_string());
                        (seg_labels.len() - 1) as u32
                    })
                })
                .collect()
        }
        Err(_) => {
            seg_labels.push("total".to_string());
            vec![0; n]
        }
    };
    // Value ids: equal values, equal ids (phase 1 gives ids already); null is a value of its
    // own, as in polars' n_unique.
    let values = frame.column(column)?;
    let mut rows: Vec<(u32, u32, i32, u32)> = Vec::with_capacity(n);
    let mut push = |value: Option<u32>, unit: Option<u32>, m: Option<i32>, seg: u32| {
        if let (Some(unit), Some(m)) = (unit, m) {
            rows.push((seg, value.unwrap_or(u32::MAX), m, unit));
        }
    };
    if values.dtype() == &DataType::UInt32 {
        let ids = values.u32()?;
        for (((value, unit), m), seg) in
            ids.iter().zip(units.iter()).zip(month.iter()).zip(&seg_ids)
        {
            push(value, unit, m, *seg);
        }
    } else {
        let values = values.cast(&DataType::String)?;
        let text = values.str()?;
        let mut ids: PlHashMap<&str, u32> = PlHashMap::with_capacity(n / 4);
        for (((value, unit), m), seg) in text
            .iter()
            .zip(units.iter())
            .zip(month.iter())
            .zip(&seg_ids)
        {
            let value = value.map(|v| {
                let next = ids.len() as u32;
                *ids.entry(v).or_insert(next)
            });
            push(value, unit, m, *seg);
        }
    }
    rows.par_sort_unstable();

    let chains: Vec<Vec<u32>> = (0..tree.units().len() as u32)
        .map(|u| {
            if tree_rollup {
                tree.ancestor_indices(u)
            } else {
                vec![u]
            }
        })
        .collect();
    let walk = SortedValues {
        rows: &rows,
        chains: &chains,
        segments: &seg_labels,
        months,
    };
    // Each grain is one walk over the sorted rows; grains are independent, so they run side by
    // side and their rows are put together in grain order (the same output on any thread count).
    let per_grain: Vec<CountsOut> = grains.par_iter().map(|&grain| walk.counts(grain)).collect();
    let mut out = CountsOut::default();
    for part in per_grain {
        out.append(part);
    }
    out.frame()
}

/// `(segment, value id, month, unit)` rows sorted so that all occurrences of a value sit
/// together in time order, with what is needed to count them per ancestor and period.
struct SortedValues<'a> {
    rows: &'a [(u32, u32, i32, u32)],
    /// Per unit: the units its values count for (itself and its ancestors, or itself only).
    chains: &'a [Vec<u32>],
    segments: &'a [String],
    months: RunMonths,
}

impl SortedValues<'_> {
    /// Distinct values per (segment, ancestor, period) of one grain.
    fn counts(&self, grain: Grain) -> CountsOut {
        let (rows, chains, months) = (self.rows, self.chains, self.months);
        let n_units = chains.len();
        let n_segs = self.segments.len();
        let first = months.first.0;
        let n_months = (months.last.0 - first + 1) as usize;
        let periods = months.periods(grain);
        let mut out = CountsOut::default();
        if grain == Grain::Ytd {
            // New values per (segment, unit, month), then running sums within the year.
            let mut new = vec![0u32; n_segs * n_units * n_months];
            let mut seen: Vec<u32> = Vec::new();
            let mut start = 0;
            while start < rows.len() {
                let (seg, value, m0, _) = rows[start];
                let year = m0.div_euclid(12);
                seen.clear();
                let mut i = start;
                while i < rows.len()
                    && rows[i].0 == seg
                    && rows[i].1 == value
                    && rows[i].2.div_euclid(12) == year
                {
                    let (_, _, m, unit) = rows[i];
                    for &a in &chains[unit as usize] {
                        if !seen.contains(&a) {
                            seen.push(a);
                            let at = (seg as usize * n_units + a as usize) * n_months
                                + (m - first) as usize;
                            new[at] += 1;
                        }
                    }
                    i += 1;
                }
                start = i;
            }
            for (seg, label) in self.segments.iter().enumerate() {
                for a in 0..n_units {
                    let base = (seg * n_units + a) * n_months;
                    for p in &periods {
                        let from = (p.first.0 - first) as usize;
                        let to = (p.last.0 - first) as usize;
                        let count: u32 = new[base + from..=base + to].iter().sum();
                        if count > 0 {
                            out.push(a as u32, grain, &p.label, label, count);
                        }
                    }
                }
            }
            return out;
        }
        let mut period_of = vec![usize::MAX; n_months];
        for (k, p) in periods.iter().enumerate() {
            for m in p.first.0..=p.last.0 {
                period_of[(m - first) as usize] = k;
            }
        }
        let n_periods = periods.len();
        let mut counts = vec![0u32; n_segs * n_units * n_periods.max(1)];
        let mut ancestors: Vec<u32> = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let (seg, value, m0, _) = rows[start];
            let period = period_of[(m0 - first) as usize];
            ancestors.clear();
            let mut i = start;
            // Rows are in month order within a value, so a period's rows are consecutive.
            while i < rows.len()
                && rows[i].0 == seg
                && rows[i].1 == value
                && period_of[(rows[i].2 - first) as usize] == period
            {
                ancestors.extend_from_slice(&chains[rows[i].3 as usize]);
                i += 1;
            }
            if period != usize::MAX {
                ancestors.sort_unstable();
                ancestors.dedup();
                for &a in &ancestors {
                    counts[(seg as usize * n_units + a as usize) * n_periods + period] += 1;
                }
            }
            start = i;
        }
        for (seg, label) in self.segments.iter().enumerate() {
            for a in 0..n_units {
                for (k, p) in periods.iter().enumerate() {
                    let count = counts[(seg * n_units + a) * n_periods + k];
                    if count > 0 {
                        out.push(a as u32, grain, &p.label, label, count);
                    }
                }
            }
        }
        out
    }
}

/// Rows of `distinct_counts`' result, column by column.
#[derive(Default)]
struct CountsOut {
    ancestor: Vec<u32>,
    grain: Vec<&'static str>,
    period: Vec<String>,
    segment: Vec<String>,
    count: Vec<i64>,
}

impl CountsOut {
    fn push(&mut self, ancestor: u32, grain: Grain, period: &str, segment: &str, count: u32) {
        self.ancestor.push(ancestor);
        self.grain.push(grain.as_str());
        self.period.push(period.to_string());
        self.segment.push(segment.to_string());
        self.count.push(count as i64);
    }

    fn append(&mut self, other: CountsOut) {
        self.ancestor.extend(other.ancestor);
        self.grain.extend(other.grain);
        self.period.extend(other.period);
        self.segment.extend(other.segment);
        self.count.extend(other.count);
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        df!(
            "__ancestor" => self.ancestor,
            "__grain" => self.grain,
            "__period" => self.period,
            "__segment" => self.segment,
            "__set" => self.count,
        )
    }
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
