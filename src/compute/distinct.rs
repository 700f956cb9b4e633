//! Exact distinct counts per cell, merged from the phase-1 distinct sets.
//!
//! The sets can be as large as the data (every employee of every month), so this works on one
//! compact array instead of a copy per tree level: each row becomes one integer packing
//! (segment, value id, unit), placed in its month's bucket. A period's rows are then its months'
//! buckets side by side, and one walk over them counts each value once for each distinct
//! ancestor of the units it occurs in: a dense array of "seen in this walk" marks per value
//! tells a new value from a repeated one, so nothing is sorted or hashed. For year-to-date, a
//! year's months are walked in order and a value counts from the first month an ancestor sees it
//! (then summed up to each month). Counts go into a dense segment × unit × period array.
//!
//! Keys take 64 bits when the three fields fit (they do for any real kommun: a few hundred
//! units, a few segments, millions of values), 128 bits otherwise.

use polars::prelude::*;
use rayon::prelude::*;

use crate::org::OrgTree;
use crate::period::{Grain, Period, RunMonths};

/// Distinct counts of one value column per cell: `__ancestor, __grain, __period, __segment,
/// __set` (Int64; cells without values are left out, they count 0).
pub(super) fn distinct_counts(
    frame: &DataFrame,
    column: &str,
    grains: &[Grain],
    tree: &OrgTree,
    months: RunMonths,
    tree_rollup: bool,
) -> PolarsResult<DataFrame> {
    let (segments, seg_ids) = segment_ids(frame)?;
    let values = value_ids(frame.column(column)?)?;
    // Null is a value of its own, as in polars' n_unique: it takes the id after the largest.
    let null_id = values.max().map_or(0, |m| m + 1);
    let n_units = tree.units().len();
    let n_months = (months.last.0 - months.first.0 + 1) as usize;
    let n_values = null_id as usize + 1;
    let layout = KeyLayout::new(segments.len(), n_values, n_units);
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
        values,
        null_id,
        first: months.first.0,
        n_months: n_months as u32,
        n_units,
    };
    let walk = Walk {
        layout,
        chains: &chains,
        segments: &segments,
        n_values,
        months,
        grains,
    };
    let out = if layout.bits() <= 64 {
        walk.counts::<u64>(rows)?
    } else {
        walk.counts::<u128>(rows)?
    };
    out.frame()
}

/// Segment labels and each row's segment id (a frame without `__segment` is the total).
fn segment_ids(frame: &DataFrame) -> PolarsResult<(Vec<String>, Vec<u32>)> {
    let Ok(column) = frame.column("__segment") else {
        return Ok((vec!["total".to_string()], vec![0; frame.height()]));
    };
    let mut labels: Vec<String> = Vec::new();
    let mut ids: PlHashMap<&str, u32> = PlHashMap::new();
    let seg_ids = column
        .str()?
        .iter()
        .map(|s| {
            let s = s.unwrap_or("(missing)");
            *ids.entry(s).or_insert_with(|| {
                labels.push(s.to_string());
                (labels.len() - 1) as u32
            })
        })
        .collect();
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

/// Where each field sits in a packed key: unit in the lowest bits, then value id, then segment.
/// The month is not in the key: it is the bucket the key sits in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct KeyLayout {
    unit_bits: u32,
    value_bits: u32,
    seg_bits: u32,
}

/// Bits that hold `0..n`.
fn bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

impl KeyLayout {
    fn new(n_segments: usize, n_values: usize, n_units: usize) -> KeyLayout {
        KeyLayout {
            unit_bits: bits_for(n_units),
            value_bits: bits_for(n_values),
            seg_bits: bits_for(n_segments),
        }
    }

    fn bits(&self) -> u32 {
        self.unit_bits + self.value_bits + self.seg_bits
    }

    fn pack(&self, row: KeyRow) -> u128 {
        let mut key = row.seg as u128;
        key = (key << self.value_bits) | row.value as u128;
        (key << self.unit_bits) | row.unit as u128
    }

    fn unpack(&self, key: u128) -> KeyRow {
        let field = |shift: u32, bits: u32| ((key >> shift) & ((1u128 << bits) - 1)) as u32;
        let value_at = self.unit_bits;
        let seg_at = value_at + self.value_bits;
        KeyRow {
            seg: field(seg_at, self.seg_bits),
            value: field(value_at, self.value_bits),
            unit: field(0, self.unit_bits),
        }
    }
}

/// One row of a distinct set (its month is its bucket).
#[derive(Debug, Clone, Copy, PartialEq)]
struct KeyRow {
    seg: u32,
    value: u32,
    unit: u32,
}

/// A packed key: `u64` when the layout fits, `u128` otherwise.
trait PackedKey: Copy + Send + Sync {
    fn from_wide(key: u128) -> Self;
    fn wide(self) -> u128;
}

impl PackedKey for u64 {
    fn from_wide(key: u128) -> u64 {
        key as u64
    }
    fn wide(self) -> u128 {
        self as u128
    }
}

impl PackedKey for u128 {
    fn from_wide(key: u128) -> u128 {
        key
    }
    fn wide(self) -> u128 {
        self
    }
}

/// The columns a distinct set's keys are built from.
struct RowColumns<'a> {
    frame: &'a DataFrame,
    seg_ids: Vec<u32>,
    values: UInt32Chunked,
    null_id: u32,
    first: i32,
    n_months: u32,
    n_units: usize,
}

/// A set's keys grouped by month: month offset `m`'s keys are `months[m]`.
struct MonthBuckets<K> {
    months: Vec<Vec<K>>,
}

impl RowColumns<'_> {
    /// Every row's key in its month's bucket (the columns they are made of are let go after),
    /// in one pass over the rows instead of a sort. Rows without a unit or month, or (never,
    /// phase 1 keeps the run's months only) with a month outside the run, have no cell to
    /// count in and are left out.
    fn into_buckets<K: PackedKey>(self, layout: KeyLayout) -> PolarsResult<MonthBuckets<K>> {
        let n_months = self.n_months as usize;
        let guess = self.frame.height() / n_months.max(1);
        let mut months: Vec<Vec<K>> = (0..n_months).map(|_| Vec::with_capacity(guess)).collect();
        self.for_each_row(|month, row| {
            months[month as usize].push(K::from_wide(layout.pack(row)))
        })?;
        drop(self);
        Ok(MonthBuckets { months })
    }

    /// Calls `f(month offset, row)` for every row that has a cell, in row order; of the rows
    /// with a null value, only the first per (segment, unit, month). Nulls repeat the most (a
    /// `case when` set is null on every row its condition leaves out), and a repeat adds
    /// nothing to a distinct count.
    fn for_each_row(&self, mut f: impl FnMut(u32, KeyRow)) -> PolarsResult<()> {
        let n_segments = self.seg_ids.iter().max().map_or(0, |&s| s as usize + 1);
        let mut null_seen = vec![false; n_segments * self.n_units * self.n_months as usize];
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
                let Ok(month) = u32::try_from(m.saturating_sub(self.first)) else {
                    continue;
                };
                if unit == u32::MAX || month >= self.n_months {
                    continue;
                }
                if value == self.null_id {
                    let at = (seg as usize * self.n_units + unit as usize) * self.n_months as usize
                        + month as usize;
                    if std::mem::replace(&mut null_seen[at], true) {
                        continue;
                    }
                }
                f(month, KeyRow { seg, value, unit });
            }
        }
        Ok(())
    }
}

/// What the walks over a set's keys share.
struct Walk<'a> {
    layout: KeyLayout,
    /// Per unit: the units its values count for (itself and its ancestors, or itself only).
    chains: &'a [Vec<u32>],
    segments: &'a [String],
    /// Value ids are below this.
    n_values: usize,
    months: RunMonths,
    grains: &'a [Grain],
}

/// Per walk of a group of months: which (segment, value) slots the walk has seen, and the
/// first unit each was seen in. Marked with the walk's number, so one scratch serves many walks
/// without being cleared.
struct Seen {
    walk: u32,
    mark: Vec<u32>,
    first_unit: Vec<u32>,
    /// The ancestors already counted for a value seen in more than one unit in this walk.
    several: PlHashMap<usize, Vec<u32>>,
}

impl Seen {
    fn new(slots: usize) -> Seen {
        Seen {
            walk: 0,
            mark: vec![0; slots],
            first_unit: vec![0; slots],
            several: PlHashMap::new(),
        }
    }
}

impl Walk<'_> {
    /// The keys bucketed by month, then one walk per grain; grains are independent, so they
    /// run side by side and their rows are put together in grain order (the same output on any
    /// thread count).
    fn counts<K: PackedKey>(&self, rows: RowColumns) -> PolarsResult<CountsOut> {
        let buckets: MonthBuckets<K> = rows.into_buckets(self.layout)?;
        let per_grain: Vec<CountsOut> = self
            .grains
            .par_iter()
            .map(|&grain| self.grain_counts(&buckets, grain))
            .collect();
        let mut out = CountsOut::default();
        for part in per_grain {
            out.append(part);
        }
        Ok(out)
    }

    /// Distinct values per (segment, ancestor, period) of one grain.
    fn grain_counts<K: PackedKey>(&self, buckets: &MonthBuckets<K>, grain: Grain) -> CountsOut {
        let periods = self.months.periods(grain);
        let offset = |m: crate::period::Month| (m.0 - self.months.first.0) as usize;
        let n_units = self.chains.len();
        let n_segments = self.segments.len();
        // The groups of months walked on their own: each period, or for year-to-date each
        // calendar year (its months in order, a value counting from its first month).
        let groups: Vec<(usize, usize)> = if grain == Grain::Ytd {
            let mut years: Vec<(usize, usize)> = Vec::new();
            for p in &periods {
                match years.last_mut() {
                    Some(y) if y.0 == offset(p.first) => y.1 = offset(p.last),
                    _ => years.push((offset(p.first), offset(p.last))),
                }
            }
            years
        } else {
            periods
                .iter()
                .map(|p| (offset(p.first), offset(p.last)))
                .collect()
        };
        let per_group: Vec<Vec<u32>> = self.walk_groups(buckets, &groups, grain == Grain::Ytd);
        let mut out = CountsOut::default();
        if grain == Grain::Ytd {
            // Values new to an ancestor per (group, segment, ancestor, month of the group),
            // summed from January to each period's month.
            let group_of = |p: &Period| {
                groups
                    .iter()
                    .position(|g| g.0 == offset(p.first))
                    .expect("every year-to-date period starts a group")
            };
            for (seg, label) in self.segments.iter().enumerate() {
                for a in 0..n_units {
                    for p in &periods {
                        let g = group_of(p);
                        let len = groups[g].1 - groups[g].0 + 1;
                        let base = (seg * n_units + a) * len;
                        let upto = offset(p.last) - groups[g].0;
                        let count: u32 = per_group[g][base..=base + upto].iter().sum();
                        if count > 0 {
                            out.push(a as u32, grain, &p.label, label, count);
                        }
                    }
                }
            }
            return out;
        }
        for (seg, label) in self.segments.iter().enumerate() {
            for a in 0..n_units {
                for (k, p) in periods.iter().enumerate() {
                    let count = per_group[k][seg * n_units + a];
                    if count > 0 {
                        out.push(a as u32, grain, &p.label, label, count);
                    }
                }
            }
        }
        debug_assert!(per_group.iter().all(|g| g.len() == n_segments * n_units));
        out
    }

    /// One walk per group of months `(from, to)` (offsets, inclusive), side by side; each
    /// thread keeps one scratch for all the groups it walks. Per group, the distinct values per
    /// (segment, ancestor); with `by_month`, per (segment, ancestor, month of the group) the
    /// values an ancestor first sees that month.
    fn walk_groups<K: PackedKey>(
        &self,
        buckets: &MonthBuckets<K>,
        groups: &[(usize, usize)],
        by_month: bool,
    ) -> Vec<Vec<u32>> {
        let slots = self.segments.len() * self.n_values;
        // Contiguous runs of groups per thread, so a large scratch is made once per thread.
        let per_thread = groups.len().div_ceil(rayon::current_num_threads()).max(1);
        let parts: Vec<Vec<Vec<u32>>> = groups
            .par_chunks(per_thread)
            .map(|part| {
                let mut seen = Seen::new(slots);
                part.iter()
                    .map(|&(from, to)| self.walk_group(buckets, from, to, by_month, &mut seen))
                    .collect()
            })
            .collect();
        parts.into_iter().flatten().collect()
    }

    /// Counts the group of months `from..=to`: each (segment, value) once for every ancestor
    /// of the units it occurs in, at the first month the ancestor sees it (months are walked in
    /// order).
    fn walk_group<K: PackedKey>(
        &self,
        buckets: &MonthBuckets<K>,
        from: usize,
        to: usize,
        by_month: bool,
        seen: &mut Seen,
    ) -> Vec<u32> {
        let n_units = self.chains.len();
        let len = if by_month { to - from + 1 } else { 1 };
        let mut counts = vec![0u32; self.segments.len() * n_units * len];
        seen.walk += 1;
        seen.several.clear();
        let walk = seen.walk;
        for m in from..=to {
            let at = if by_month { m - from } else { 0 };
            let cell = |seg: u32, a: u32| (seg as usize * n_units + a as usize) * len + at;
            for key in &buckets.months[m] {
                let row = self.layout.unpack(key.wide());
                let slot = row.seg as usize * self.n_values + row.value as usize;
                if seen.mark[slot] != walk {
                    // Most values: the first time in the walk (an employee's first month).
                    seen.mark[slot] = walk;
                    seen.first_unit[slot] = row.unit;
                    for &a in &self.chains[row.unit as usize] {
                        counts[cell(row.seg, a)] += 1;
                    }
                } else if seen.first_unit[slot] != row.unit {
                    // Seen before in another unit: only ancestors not yet counted count.
                    let first = seen.first_unit[slot] as usize;
                    let counted = seen
                        .several
                        .entry(slot)
                        .or_insert_with(|| self.chains[first].clone());
                    for &a in &self.chains[row.unit as usize] {
                        if !counted.contains(&a) {
                            counted.push(a);
                            counts[cell(row.seg, a)] += 1;
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
    fn bits_hold_every_index_below_n() {
        for (n, bits) in [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (256, 8),
            (257, 9),
        ] {
            assert_eq!(bits_for(n), bits, "n = {n}");
        }
    }

    #[test]
    fn packed_keys_round_trip() {
        let layout = KeyLayout::new(3, 1000, 45);
        assert_eq!(layout.bits(), 2 + 10 + 6);
        // Every field at its extremes and a few between.
        for seg in [0, 2] {
            for value in [0, 1, 500, 999] {
                for unit in [0, 9, 44] {
                    let row = KeyRow { seg, value, unit };
                    assert_eq!(layout.unpack(layout.pack(row)), row);
                }
            }
        }
    }

    #[test]
    fn a_layout_wider_than_64_bits_round_trips_in_128() {
        let layout = KeyLayout::new(1 << 20, 1 << 30, 1 << 20);
        assert_eq!(layout.bits(), 70);
        let top = KeyRow {
            seg: (1 << 20) - 1,
            value: (1 << 30) - 1,
            unit: (1 << 20) - 1,
        };
        let key = u128::from_wide(layout.pack(top));
        assert_eq!(layout.unpack(key.wide()), top);
        assert!(key > u64::MAX as u128, "the key needs more than 64 bits");
    }
}
