//! Exact distinct counts per cell, merged from the phase-1 distinct sets.
//!
//! The sets can be as large as the data (every employee of every month), so this works on one
//! compact array instead of a copy per tree level: each row becomes one integer key packing
//! (segment, value id, month, unit), and the keys are sorted so that all occurrences of a value
//! sit together in time order. Walking them, a value counts once for each distinct ancestor of
//! the units it occurs in within a period; for year-to-date, once from the first month the
//! ancestor sees it in the year (then summed up to each month). Counts go into a dense
//! segment × unit × period array.
//!
//! One integer per row rather than a tuple: sorting 8-byte integers is about twice as fast as
//! sorting 16-byte tuples compared field by field, and this sort is most of phase 2's time on
//! large sets. Keys take 64 bits when the four fields fit (they do for any real kommun: a few
//! hundred units, a few dozen months, millions of values), 128 bits otherwise.

use polars::prelude::*;
use rayon::prelude::*;

use crate::org::OrgTree;
use crate::period::{Grain, RunMonths};

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
    let layout = KeyLayout::new(segments.len(), null_id as usize + 1, n_months, n_units);
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
    };
    let walk = Walk {
        layout,
        chains: &chains,
        segments: &segments,
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

/// Where each field sits in a packed key: unit in the lowest bits, then month (as an offset
/// from the run's first month), value id, segment. Ordering the keys orders the rows by
/// (segment, value, month, unit).
#[derive(Debug, Clone, Copy, PartialEq)]
struct KeyLayout {
    unit_bits: u32,
    month_bits: u32,
    value_bits: u32,
    seg_bits: u32,
}

/// Bits that hold `0..n`.
fn bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

impl KeyLayout {
    fn new(n_segments: usize, n_values: usize, n_months: usize, n_units: usize) -> KeyLayout {
        KeyLayout {
            unit_bits: bits_for(n_units),
            month_bits: bits_for(n_months),
            value_bits: bits_for(n_values),
            seg_bits: bits_for(n_segments),
        }
    }

    fn bits(&self) -> u32 {
        self.unit_bits + self.month_bits + self.value_bits + self.seg_bits
    }

    fn pack(&self, row: KeyRow) -> u128 {
        let mut key = row.seg as u128;
        key = (key << self.value_bits) | row.value as u128;
        key = (key << self.month_bits) | row.month as u128;
        (key << self.unit_bits) | row.unit as u128
    }

    /// The key with month and unit shifted out: segment and value, for comparing runs.
    fn value_part(&self, key: u128) -> u128 {
        key >> (self.unit_bits + self.month_bits)
    }

    fn month_of(&self, key: u128) -> u32 {
        ((key >> self.unit_bits) & ((1u128 << self.month_bits) - 1)) as u32
    }

    fn unit_of(&self, key: u128) -> u32 {
        (key & ((1u128 << self.unit_bits) - 1)) as u32
    }

    fn unpack(&self, key: u128) -> KeyRow {
        let field = |shift: u32, bits: u32| ((key >> shift) & ((1u128 << bits) - 1)) as u32;
        let month_at = self.unit_bits;
        let value_at = month_at + self.month_bits;
        let seg_at = value_at + self.value_bits;
        KeyRow {
            seg: field(seg_at, self.seg_bits),
            value: field(value_at, self.value_bits),
            month: field(month_at, self.month_bits),
            unit: field(0, self.unit_bits),
        }
    }
}

/// One row of a distinct set; `month` is the offset from the run's first month.
#[derive(Debug, Clone, Copy, PartialEq)]
struct KeyRow {
    seg: u32,
    value: u32,
    month: u32,
    unit: u32,
}

/// A packed key: `u64` when the layout fits, `u128` otherwise.
trait PackedKey: Copy + Ord + Send + Sync {
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
}

impl RowColumns<'_> {
    /// One key per row, sorted (the columns they are made of are let go first). Rows without a
    /// unit or month, or (never, phase 1 keeps the run's months only) with a month outside the
    /// run, have no cell to count in and are left out.
    fn into_keys<K: PackedKey>(self, layout: KeyLayout) -> PolarsResult<Vec<K>> {
        let mut keys = self.keys(layout)?;
        drop(self);
        keys.par_sort_unstable();
        Ok(keys)
    }

    fn keys<K: PackedKey>(&self, layout: KeyLayout) -> PolarsResult<Vec<K>> {
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
        let mut keys: Vec<K> = Vec::with_capacity(self.frame.height());
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
                keys.push(K::from_wide(layout.pack(KeyRow {
                    seg,
                    value,
                    month,
                    unit,
                })));
            }
        }
        Ok(keys)
    }
}

/// What the walks over a set's sorted keys share.
struct Walk<'a> {
    layout: KeyLayout,
    chains: &'a [Vec<u32>],
    segments: &'a [String],
    months: RunMonths,
    grains: &'a [Grain],
}

impl Walk<'_> {
    /// The rows' keys sorted, then one walk per grain; grains are independent, so they run side
    /// by side and their rows are put together in grain order (the same output on any thread
    /// count).
    fn counts<K: PackedKey>(&self, rows: RowColumns) -> PolarsResult<CountsOut> {
        let keys: Vec<K> = rows.into_keys(self.layout)?;
        let sorted = SortedValues {
            keys: &keys,
            layout: self.layout,
            chains: self.chains,
            segments: self.segments,
            months: self.months,
        };
        let per_grain: Vec<CountsOut> = self
            .grains
            .par_iter()
            .map(|&grain| sorted.counts(grain))
            .collect();
        let mut out = CountsOut::default();
        for part in per_grain {
            out.append(part);
        }
        Ok(out)
    }
}

/// Sorted keys with what is needed to count them per ancestor and period.
struct SortedValues<'a, K> {
    keys: &'a [K],
    layout: KeyLayout,
    /// Per unit: the units its values count for (itself and its ancestors, or itself only).
    chains: &'a [Vec<u32>],
    segments: &'a [String],
    months: RunMonths,
}

impl<K: PackedKey> SortedValues<'_, K> {
    fn row(&self, i: usize) -> KeyRow {
        self.layout.unpack(self.keys[i].wide())
    }

    /// Distinct values per (segment, ancestor, period) of one grain.
    fn counts(&self, grain: Grain) -> CountsOut {
        let periods = self.months.periods(grain);
        let n_months = (self.months.last.0 - self.months.first.0 + 1) as usize;
        let n_units = self.chains.len();
        if grain == Grain::Ytd {
            // New values per (segment, unit, month), then running sums within the year.
            let new = self.first_seen_in_year(n_months);
            let mut out = CountsOut::default();
            for (seg, label) in self.segments.iter().enumerate() {
                for a in 0..n_units {
                    let base = (seg * n_units + a) * n_months;
                    for p in &periods {
                        let from = (p.first.0 - self.months.first.0) as usize;
                        let to = (p.last.0 - self.months.first.0) as usize;
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
                period_of[(m - self.months.first.0) as usize] = k;
            }
        }
        let counts = self.per_period(&period_of, periods.len().max(1));
        let mut out = CountsOut::default();
        for (seg, label) in self.segments.iter().enumerate() {
            for a in 0..n_units {
                for (k, p) in periods.iter().enumerate() {
                    let count = counts[(seg * n_units + a) * periods.len() + k];
                    if count > 0 {
                        out.push(a as u32, grain, &p.label, label, count);
                    }
                }
            }
        }
        out
    }

    /// The runs of keys with the same segment and value and the same `group` of their month
    /// (a period, a year), as index ranges in key order: months are in order within a value,
    /// so a group's keys are consecutive.
    fn runs<G: PartialEq>(
        &self,
        group: impl Fn(u32) -> G,
    ) -> impl Iterator<Item = std::ops::Range<usize>> {
        let mut start = 0;
        let layout = self.layout;
        std::iter::from_fn(move || {
            if start >= self.keys.len() {
                return None;
            }
            // Compared as shifted keys, not unpacked rows: this runs once per row of the set.
            let head = self.keys[start].wide();
            let head_value = layout.value_part(head);
            let head_group = group(layout.month_of(head));
            let mut end = start + 1;
            while end < self.keys.len() {
                let key = self.keys[end].wide();
                if layout.value_part(key) != head_value || group(layout.month_of(key)) != head_group
                {
                    break;
                }
                end += 1;
            }
            let run = start..end;
            start = end;
            Some(run)
        })
    }

    /// Distinct values per (segment, unit, period) with `period_of[month offset]` (usize::MAX:
    /// a month in no period), in a dense array.
    fn per_period(&self, period_of: &[usize], n_periods: usize) -> Vec<u32> {
        let n_units = self.chains.len();
        let mut counts = vec![0u32; self.segments.len() * n_units * n_periods];
        // The units a value occurs in within one period: usually one (an employee stays in a
        // unit), so its chain is counted as it is; several units' chains are merged first.
        let mut units: Vec<u32> = Vec::new();
        let mut ancestors: Vec<u32> = Vec::new();
        for run in self.runs(|month| period_of[month as usize]) {
            let head = self.row(run.start);
            let period = period_of[head.month as usize];
            if period == usize::MAX {
                continue;
            }
            let cell = |a: u32| (head.seg as usize * n_units + a as usize) * n_periods + period;
            if run.len() == 1 {
                // Most values occur once per unit and period (an employee's month).
                for &a in &self.chains[head.unit as usize] {
                    counts[cell(a)] += 1;
                }
                continue;
            }
            units.clear();
            for i in run {
                let unit = self.layout.unit_of(self.keys[i].wide());
                if !units.contains(&unit) {
                    units.push(unit);
                }
            }
            if let [unit] = units[..] {
                for &a in &self.chains[unit as usize] {
                    counts[cell(a)] += 1;
                }
            } else {
                ancestors.clear();
                for &u in &units {
                    ancestors.extend_from_slice(&self.chains[u as usize]);
                }
                ancestors.sort_unstable();
                ancestors.dedup();
                for &a in &ancestors {
                    counts[cell(a)] += 1;
                }
            }
        }
        counts
    }

    /// Per (segment, unit, month offset): the values first seen that month within the year by
    /// the unit (through itself or a unit beneath it).
    fn first_seen_in_year(&self, n_months: usize) -> Vec<u32> {
        let n_units = self.chains.len();
        let first = self.months.first.0;
        let mut new = vec![0u32; self.segments.len() * n_units * n_months];
        // Ancestors that have seen the value this year, and the units it was seen in (a unit
        // seen again adds nothing: its chain was counted at its first, earlier month).
        let mut seen: Vec<u32> = Vec::new();
        let mut seen_units: Vec<u32> = Vec::new();
        for run in self.runs(|month| (first + month as i32).div_euclid(12)) {
            seen.clear();
            seen_units.clear();
            for i in run {
                let r = self.row(i);
                if seen_units.contains(&r.unit) {
                    continue;
                }
                seen_units.push(r.unit);
                for &a in &self.chains[r.unit as usize] {
                    if !seen.contains(&a) {
                        seen.push(a);
                        let at =
                            (r.seg as usize * n_units + a as usize) * n_months + r.month as usize;
                        new[at] += 1;
                    }
                }
            }
        }
        new
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
    fn packed_keys_round_trip_and_order_as_the_tuples() {
        let layout = KeyLayout::new(3, 1000, 37, 45);
        assert_eq!(layout.bits(), 2 + 10 + 6 + 6);
        // Every field at its extremes and a few between, in tuple order.
        let mut rows = Vec::new();
        for seg in [0, 2] {
            for value in [0, 1, 500, 999] {
                for month in [0, 17, 36] {
                    for unit in [0, 9, 44] {
                        rows.push(KeyRow {
                            seg,
                            value,
                            month,
                            unit,
                        });
                    }
                }
            }
        }
        let keys: Vec<u128> = rows.iter().map(|r| layout.pack(*r)).collect();
        for (r, k) in rows.iter().zip(&keys) {
            assert_eq!(layout.unpack(*k), *r);
        }
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "keys sort as the tuples"
        );
    }

    #[test]
    fn a_layout_wider_than_64_bits_round_trips_in_128() {
        let layout = KeyLayout::new(1 << 20, 1 << 30, 1 << 10, 1 << 10);
        assert_eq!(layout.bits(), 70);
        let top = KeyRow {
            seg: (1 << 20) - 1,
            value: (1 << 30) - 1,
            month: (1 << 10) - 1,
            unit: (1 << 10) - 1,
        };
        let key = u128::from_wide(layout.pack(top));
        assert_eq!(layout.unpack(key.wide()), top);
        assert!(key > u64::MAX as u128, "the key needs more than 64 bits");
    }
}
