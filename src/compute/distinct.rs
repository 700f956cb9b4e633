//! Exact distinct counts per cell, merged from the phase-1 distinct sets.
//!
//! The sets can be as large as the data (every employee of every month), so this works on one
//! compact array instead of a copy per tree level: each row becomes one integer packing its
//! value id and unit, placed in the bucket of its segment and month. A period's rows are then
//! its months' buckets side by side, and one walk over them counts each value once for each
//! distinct ancestor of the units it occurs in: a dense array of "seen in this walk" marks per
//! value tells a new value from a repeated one, so nothing is sorted or hashed. For
//! year-to-date, a year's months are walked in order and a value counts from the first month an
//! ancestor sees it (then summed up to each month). Counts go into a dense unit × period array
//! per segment.
//!
//! Memory: the keys (8 bytes a row), and one mark array (8 bytes per distinct value) per thread
//! walking.

use polars::prelude::*;
use polars_arrow::array::Array;
use rayon::prelude::*;

use crate::org::OrgTree;
use crate::period::{Grain, Month, RunMonths};

/// Distinct counts of one value column per cell: `__ancestor, __grain, __period, __segment,
/// __set` (Int64; cells without values are left out, they count 0). `dim` is the breakdown
/// whose values the frame's `__segment` holds (none for the total).
pub(super) fn distinct_counts(
    frame: &DataFrame,
    column: &str,
    dim: Option<&str>,
    grains: &[Grain],
    tree: &OrgTree,
    months: RunMonths,
    tree_rollup: bool,
) -> PolarsResult<DataFrame> {
    let (segments, seg_ids) = segment_ids(frame, dim)?;
    let values = value_ids(frame.column(column)?)?;
    // Null is a value of its own, as in polars' n_unique: it takes the id after the largest.
    let null_id = values.max().map_or(0, |m| m + 1);
    let n_units = tree.units().len();
    let n_months = (months.last.0 - months.first.0 + 1) as usize;
    let chains: Vec<Vec<u32>> = (0..n_units as u32)
        .map(|u| {
            if tree_rollup {
                tree.ancestor_indices(u)
            } else {
                vec![u]
            }
        })
        .collect();
    let rows = RowColumns {
        frame,
        seg_ids,
        n_segments: segments.len(),
        values,
        null_id,
        first: months.first.0,
        n_months,
        n_units,
    };
    let buckets = rows.into_buckets()?;
    let walk = Walk {
        chains: &chains,
        segments: &segments,
        n_values: null_id as usize + 1,
        months,
    };
    let mut out = CountsOut::default();
    // Grains one after the other, each walking its segments and periods side by side: one mark
    // array per thread at a time.
    for &grain in grains {
        out.append(walk.grain_counts(&buckets, grain));
    }
    out.frame()
}

/// Segment labels (`dim=value`, `dim=(missing)`) and each row's segment id. The frame's
/// `__segment` holds the breakdown's values as text, so a label is made once per value rather
/// than once per row. Without `dim` every row is the total's (a breakdown's frame counted for
/// the total: its segments ignored).
fn segment_ids(frame: &DataFrame, dim: Option<&str>) -> PolarsResult<(Vec<String>, Vec<u32>)> {
    let (Ok(column), Some(dim)) = (frame.column("__segment"), dim) else {
        return Ok((vec!["total".to_string()], vec![0; frame.height()]));
    };
    let mut labels: Vec<String> = Vec::new();
    let mut ids: PlHashMap<Option<&str>, u32> = PlHashMap::new();
    let mut seg_ids = Vec::with_capacity(frame.height());
    for chunk in column.str()?.downcast_iter() {
        // Rows of one segment come in runs: a view equal to the previous row's is the same
        // value (inline: the bytes; otherwise the same place), found without hashing.
        let mut last: Option<(u128, bool, u32)> = None;
        for (i, view) in chunk.views().iter().enumerate() {
            let valid = chunk.is_valid(i);
            let id = match last {
                Some((same, was_valid, id)) if same == view.as_u128() && was_valid == valid => id,
                _ => {
                    let value = valid.then(|| chunk.value(i));
                    let id = *ids.entry(value).or_insert_with(|| {
                        labels.push(format!("{dim}={}", value.unwrap_or("(missing)")));
                        (labels.len() - 1) as u32
                    });
                    last = Some((view.as_u128(), valid, id));
                    id
                }
            };
            seg_ids.push(id);
        }
    }
    Ok((labels, seg_ids))
}

/// Value ids: equal values, equal ids; null stays null. Phase 1 gives ids already (`UInt32`);
/// the SQL engines hand the values themselves.
fn value_ids(values: &Column) -> PolarsResult<UInt32Chunked> {
    if values.dtype() == &DataType::UInt32 {
        return Ok(values.u32()?.clone());
    }
    let values = values.cast(&DataType::String)?;
    let text = values.str()?;
    let mut ids: PlHashMap<&str, u32> = PlHashMap::with_capacity(text.len() / 4);
    Ok(text
        .iter()
        .map(|v| {
            v.map(|v| {
                let next = ids.len() as u32;
                *ids.entry(v).or_insert(next)
            })
        })
        .collect())
}

/// A key: value id in the high 32 bits, unit in the low.
fn pack(value: u32, unit: u32) -> u64 {
    (value as u64) << 32 | unit as u64
}

fn unpack(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// The columns a distinct set's keys are built from.
struct RowColumns<'a> {
    frame: &'a DataFrame,
    seg_ids: Vec<u32>,
    n_segments: usize,
    values: UInt32Chunked,
    null_id: u32,
    first: i32,
    n_months: usize,
    n_units: usize,
}

/// A set's keys by segment and month: segment `s`, month offset `m` is
/// `keys[s * n_months + m]`.
struct Buckets {
    keys: Vec<Vec<u64>>,
    n_months: usize,
}

impl Buckets {
    fn of(&self, seg: usize, month: usize) -> &[u64] {
        &self.keys[seg * self.n_months + month]
    }
}

impl RowColumns<'_> {
    /// Every row's key in its bucket, in one pass over the rows (the columns they are made of
    /// are let go after). Rows without a unit or month, or (never, phase 1 keeps the run's
    /// months only) with a month outside the run, have no cell to count in and are left out.
    /// Of the rows with a null value only the first per (segment, unit, month) is kept: nulls
    /// repeat the most (a `case when` set is null on every row its condition leaves out), and
    /// a repeat adds nothing to a distinct count.
    fn into_buckets(self) -> PolarsResult<Buckets> {
        let n_buckets = self.n_segments * self.n_months;
        let guess = self.frame.height() / n_buckets.max(1);
        let mut keys: Vec<Vec<u64>> = (0..n_buckets).map(|_| Vec::with_capacity(guess)).collect();
        let mut null_seen = vec![false; n_buckets * self.n_units];
        // The columns are walked as plain slices, chunk by chunk (the phase-1 output arrives in
        // many small chunks, and walking four chunked columns as optional values costs more
        // than the rest); nulls are replaced by values that mark them.
        let units = self.frame.column("__unit")?.u32()?;
        let units = units.fill_null_with_values(u32::MAX)?;
        let month = self.frame.column("__month")?.i32()?;
        let month = month.fill_null_with_values(i32::MIN)?;
        let values = self.values.fill_null_with_values(self.null_id)?;
        let aligned = units.chunk_lengths().eq(month.chunk_lengths())
            && units.chunk_lengths().eq(values.chunk_lengths());
        let (units, month, values) = if aligned {
            (units, month, values)
        } else {
            let one = |c: UInt32Chunked| c.rechunk().into_owned();
            (one(units), month.rechunk().into_owned(), one(values))
        };
        let mut row = 0;
        for ((units, month), values) in units
            .downcast_iter()
            .zip(month.downcast_iter())
            .zip(values.downcast_iter())
        {
            let segs = &self.seg_ids[row..row + units.len()];
            row += units.len();
            let rows = values.values().iter().zip(units.values().iter());
            for (((&value, &unit), &m), &seg) in rows.zip(month.values().iter()).zip(segs) {
                let Ok(month) = usize::try_from(m.saturating_sub(self.first)) else {
                    continue;
                };
                if unit == u32::MAX || month >= self.n_months {
                    continue;
                }
                let bucket = seg as usize * self.n_months + month;
                if value == self.null_id
                    && std::mem::replace(
                        &mut null_seen[bucket * self.n_units + unit as usize],
                        true,
                    )
                {
                    continue;
                }
                keys[bucket].push(pack(value, unit));
            }
        }
        Ok(Buckets {
            keys,
            n_months: self.n_months,
        })
    }
}

/// What the walks over a set's keys share.
struct Walk<'a> {
    /// Per unit: the units its values count for (itself and its ancestors, or itself only).
    chains: &'a [Vec<u32>],
    segments: &'a [String],
    /// Value ids are below this.
    n_values: usize,
    months: RunMonths,
}

/// One walk's view of the values: which it has seen, and the first unit each was seen in.
/// Marked with the walk's number, so one scratch serves many walks without being cleared.
struct Seen {
    walk: u32,
    mark: Vec<u32>,
    first_unit: Vec<u32>,
    /// The ancestors already counted for a value seen in more than one unit in this walk.
    several: PlHashMap<u32, Vec<u32>>,
}

impl Seen {
    fn new(n_values: usize) -> Seen {
        Seen {
            walk: 0,
            mark: vec![0; n_values],
            first_unit: vec![0; n_values],
            several: PlHashMap::new(),
        }
    }
}

/// A walk: one segment over the months `from..=to` (offsets, inclusive).
#[derive(Clone, Copy)]
struct Group {
    seg: usize,
    from: usize,
    to: usize,
}

impl Walk<'_> {
    /// Distinct values per (segment, ancestor, period) of one grain.
    fn grain_counts(&self, buckets: &Buckets, grain: Grain) -> CountsOut {
        let periods = self.months.periods(grain);
        let offset = |m: Month| (m.0 - self.months.first.0) as usize;
        let n_units = self.chains.len();
        let by_month = grain == Grain::Ytd;
        // The months walked together (`spans`, with each period's span in `span_of`): each
        // period, or for year-to-date each calendar year (its months in order, a value counting
        // from its first month; a year's periods all start at its first month).
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut span_of = Vec::with_capacity(periods.len());
        for p in &periods {
            let (from, to) = (offset(p.first), offset(p.last));
            match spans.last_mut() {
                Some(span) if by_month && span.0 == from => span.1 = to,
                _ => spans.push((from, to)),
            }
            span_of.push(spans.len() - 1);
        }
        let groups: Vec<Group> = (0..self.segments.len())
            .flat_map(|seg| spans.iter().map(move |&(from, to)| Group { seg, from, to }))
            .collect();
        let counted = self.walk_groups(buckets, &groups, by_month);
        let mut out = CountsOut::default();
        for (seg, label) in self.segments.iter().enumerate() {
            for a in 0..n_units {
                for (p, &span) in periods.iter().zip(&span_of) {
                    let walked = &counted[seg * spans.len() + span];
                    let count = if by_month {
                        // Values new to the ancestor per month of the year, summed from January
                        // to the period's month.
                        let (from, to) = spans[span];
                        let base = a * (to - from + 1);
                        walked[base..=base + offset(p.last) - from].iter().sum()
                    } else {
                        walked[a]
                    };
                    if count > 0 {
                        out.push(a as u32, grain, &p.label, label, count);
                    }
                }
            }
        }
        out
    }

    /// The groups walked side by side, in contiguous runs per thread so that each thread keeps
    /// one scratch. Per group, the distinct values per ancestor; with `by_month`, per (ancestor,
    /// month of the group) the values the ancestor first sees that month.
    fn walk_groups(&self, buckets: &Buckets, groups: &[Group], by_month: bool) -> Vec<Vec<u32>> {
        let per_thread = groups.len().div_ceil(rayon::current_num_threads()).max(1);
        let parts: Vec<Vec<Vec<u32>>> = groups
            .par_chunks(per_thread)
            .map(|part| {
                let mut seen = Seen::new(self.n_values);
                part.iter()
                    .map(|&group| self.walk_group(buckets, group, by_month, &mut seen))
                    .collect()
            })
            .collect();
        parts.into_iter().flatten().collect()
    }

    /// Counts one group: each value once for every ancestor of the units it occurs in, at the
    /// first month the ancestor sees it (months are walked in order).
    fn walk_group(
        &self,
        buckets: &Buckets,
        group: Group,
        by_month: bool,
        seen: &mut Seen,
    ) -> Vec<u32> {
        let len = if by_month {
            group.to - group.from + 1
        } else {
            1
        };
        let mut counts = vec![0u32; self.chains.len() * len];
        seen.walk += 1;
        seen.several.clear();
        let walk = seen.walk;
        for m in group.from..=group.to {
            let at = if by_month { m - group.from } else { 0 };
            for &key in buckets.of(group.seg, m) {
                let (value, unit) = unpack(key);
                let v = value as usize;
                if seen.mark[v] != walk {
                    // Most values: the first time in the walk (an employee's first month).
                    seen.mark[v] = walk;
                    seen.first_unit[v] = unit;
                    for &a in &self.chains[unit as usize] {
                        counts[a as usize * len + at] += 1;
                    }
                } else if seen.first_unit[v] != unit {
                    // Seen before in another unit: only ancestors not yet counted count.
                    let first = seen.first_unit[v] as usize;
                    let counted = seen
                        .several
                        .entry(value)
                        .or_insert_with(|| self.chains[first].clone());
                    for &a in &self.chains[unit as usize] {
                        if !counted.contains(&a) {
                            counted.push(a);
                            counts[a as usize * len + at] += 1;
                        }
                    }
                }
            }
        }
        counts
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_at_the_extremes() {
        for value in [0, 1, 500, u32::MAX] {
            for unit in [0, 9, u32::MAX - 1] {
                assert_eq!(unpack(pack(value, unit)), (value, unit));
            }
        }
    }
}
