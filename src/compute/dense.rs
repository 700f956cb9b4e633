//! Phase 1's scalar states (sums, counts, min and max) accumulated in dense arrays over the
//! run's known `unit × month` cells, instead of polars' hash group-by.
//!
//! The rows reach the accumulator through `sink_batches`: polars' streaming engine still reads,
//! checks and filters them on every core, and computes each state's row-level input (`case
//! when …`, the filter masks); only the last step — adding each row's inputs into its cell —
//! runs here, one batch at a time, in row order. A cell is an index into an array (`__cell`,
//! unit × months + month), so there is no hashing, and a breakdown's segments get dense ids as
//! they appear. Summing in row order also makes a float sum's last bits the same on every run,
//! which the hash group-by (partial sums per thread) does not promise.
//!
//! The result is the frame the group-by would give, column for column and type for type: the
//! group-by's own schema is asked for, and each state is cast to it. A state whose input has a
//! type this module does not sum (text, 64-bit unsigned, 32-bit floats, dates in a sum) leaves
//! the whole output to the group-by.
//!
//! A median's value multiset (rows per cell, segment and value) is counted here too, in a hash
//! map keyed by slot and value, for whole-number values (`DenseMultiset`). Accumulations over
//! the same rows — a source's total, its breakdowns, its medians — share one sink
//! (`start_together`): the rows are filtered and handed over once for all of them.

use std::sync::{Arc, Mutex};

use polars::prelude::*;
use polars_arrow::array::{Array, Utf8ViewArray};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::bitmap::bitmask::BitMask;

use super::IdMaps;
use super::sql::RowAgg;

/// How one state adds a row's input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Every row.
    Rows,
    /// Rows whose boolean input is true (null is false).
    CountTrue,
    SumFloat,
    SumInt,
    MinFloat,
    MaxFloat,
    MinInt,
    MaxInt,
}

impl Kind {
    /// The accumulation of `agg` over an input of type `dtype`; `None` when it is not one this
    /// module does.
    fn of(agg: &RowAgg, dtype: Option<&DataType>) -> Option<Kind> {
        use DataType as D;
        let int = |d: &DataType| {
            matches!(
                d,
                D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32
            )
        };
        Some(match (agg, dtype) {
            (RowAgg::Rows, _) => Kind::Rows,
            (RowAgg::CountTrue(_), Some(D::Boolean)) => Kind::CountTrue,
            (RowAgg::Sum(_), Some(D::Float64)) => Kind::SumFloat,
            // A boolean sum counts the true values (polars gives an unsigned count).
            (RowAgg::Sum(_), Some(D::Boolean)) => Kind::CountTrue,
            (RowAgg::Sum(_), Some(d)) if int(d) => Kind::SumInt,
            (RowAgg::Min(_), Some(D::Float64)) => Kind::MinFloat,
            (RowAgg::Max(_), Some(D::Float64)) => Kind::MaxFloat,
            (RowAgg::Min(_), Some(d)) if int(d) || *d == D::Date => Kind::MinInt,
            (RowAgg::Max(_), Some(d)) if int(d) || *d == D::Date => Kind::MaxInt,
            _ => return None,
        })
    }
}

/// One segmentation's scalar states as a dense accumulation, planned beside the group-by it
/// replaces.
pub(crate) struct DenseScalars {
    /// The rows to group: the same frame the group-by reads.
    pub(crate) rows: LazyFrame,
    /// `__cell` of a row.
    pub(crate) cell: Expr,
    /// The breakdown column, if the segmentation has one.
    pub(crate) dim: Option<String>,
    /// Per state: its output name and its row-level aggregation.
    pub(crate) states: Vec<(String, RowAgg)>,
    pub(crate) n_cells: usize,
    /// The group-by this replaces (`__cell`, the breakdown column, the states): the output has
    /// its schema.
    pub(crate) grouped: LazyFrame,
    /// What follows the group-by in the plan (`__unit`, `__month`, `__segment`, the states).
    pub(crate) then: Then,
}

/// A median's value multiset — rows per (cell, segment, value) — counted in a hash map keyed
/// by slot and value, instead of polars' group-by, which encodes its three keys into a row of
/// bytes for every row. Integer values only; others leave the output to the group-by.
pub(crate) struct DenseMultiset {
    /// The rows: the same frame the group-by reads before its filters.
    pub(crate) rows: LazyFrame,
    /// `__cell` of a row.
    pub(crate) cell: Expr,
    /// The breakdown column, if the segmentation has one.
    pub(crate) dim: Option<String>,
    /// The indicator's row filter (a boolean column), if any.
    pub(crate) mask: Option<String>,
    /// The values; null ones are not counted.
    pub(crate) value: Expr,
    pub(crate) n_cells: usize,
    /// The group-by this replaces (`__cell`, the breakdown column, `__v`, `__w`): the output
    /// has its schema.
    pub(crate) grouped: LazyFrame,
    /// What follows the group-by in the plan.
    pub(crate) then: Then,
}

/// An output accumulated here instead of by polars' group-by.
pub(crate) enum Dense {
    Scalars(DenseScalars),
    Multiset(DenseMultiset),
}

impl Dense {
    /// The rows it reads.
    pub(crate) fn rows(&self) -> &LazyFrame {
        match self {
            Dense::Scalars(d) => &d.rows,
            Dense::Multiset(d) => &d.rows,
        }
    }

    /// The plan that feeds it on its own (to run in place of the group-by) and what finishes
    /// it; `None` when its input types are not ones this module accumulates.
    pub(crate) fn start(self) -> PolarsResult<Option<(LazyFrame, Pending)>> {
        let rows = self.rows().clone();
        let (sink, mut pending) = start_together(rows, vec![self])?;
        Ok(sink.zip(pending.pop().flatten()))
    }

    fn prepare(self, tag: usize) -> PolarsResult<Option<(Vec<Expr>, Pending)>> {
        match self {
            Dense::Scalars(d) => d.prepare(tag),
            Dense::Multiset(d) => d.prepare(tag),
        }
    }
}

impl DenseMultiset {
    fn prepare(self, tag: usize) -> PolarsResult<Option<(Vec<Expr>, Pending)>> {
        let mut columns = Columns::new(tag, self.dim.is_some());
        columns.inputs = vec![format!("__v{tag}")];
        columns.mask = self.mask.as_ref().map(|_| format!("__mask{tag}"));
        let mut select = columns.placing(&self.cell, self.dim.as_deref());
        select.push(self.value.clone().alias(columns.inputs[0].as_str()));
        if let (Some(m), Some(name)) = (&self.mask, &columns.mask) {
            select.push(col(m.as_str()).alias(name.as_str()));
        }
        let input_schema = self.rows.clone().select(select.clone()).collect_schema()?;
        use DataType as D;
        let integer = matches!(
            input_schema.get(columns.inputs[0].as_str()),
            Some(D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32)
        );
        let boolean_mask = columns
            .mask
            .as_ref()
            .is_none_or(|m| input_schema.get(m.as_str()) == Some(&D::Boolean));
        if !integer || !boolean_mask {
            return Ok(None);
        }
        let acc = Multiset {
            place: Placement::new(columns, self.n_cells),
            counts: PlHashMap::new(),
        };
        Ok(Some((
            select,
            Pending {
                acc: Arc::new(Mutex::new(Accumulation::Multiset(acc))),
                expected: self.grouped.clone().collect_schema()?,
                dim: self.dim,
                names: Vec::new(),
                of_state: Vec::new(),
                then: self.then,
            },
        )))
    }
}

/// What one accumulation keeps while the rows stream past.
enum Accumulation {
    Scalars(Accumulator),
    Multiset(Multiset),
}

impl Accumulation {
    fn add(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        match self {
            Accumulation::Scalars(acc) => acc.add(batch),
            Accumulation::Multiset(acc) => acc.add(batch),
        }
    }
}

/// Rows per (slot, value).
struct Multiset {
    place: Placement,
    counts: PlHashMap<(u32, i64), u64>,
}

impl Multiset {
    fn add(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        if batch.height() == 0 {
            return Ok(());
        }
        let slots = self.place.slots_of(batch)?;
        let values = batch
            .column(&self.place.columns.inputs[0])?
            .cast(&DataType::Int64)?;
        let values = values.i64()?.rechunk();
        let values = values.downcast_as_array();
        let mut counted = match values.validity() {
            Some(valid) => valid.clone(),
            None => Bitmap::new_with_value(true, values.len()),
        };
        if let Some(mask) = &self.place.columns.mask {
            let mask = batch.column(mask)?.bool()?.rechunk();
            let mask = mask.downcast_as_array();
            let holds = match mask.validity() {
                Some(valid) => mask.values() & valid,
                None => mask.values().clone(),
            };
            counted = &counted & &holds;
        }
        if counted.set_bits() > 0 {
            let rows = slots.iter().zip(values.values().iter()).zip(counted.iter());
            for ((&slot, &value), counts) in rows {
                if counts {
                    *self.counts.entry((slot, value)).or_insert(0) += 1;
                }
            }
        }
        self.place.slots = slots;
        Ok(())
    }

    /// The group-by's frame: `__cell`, the breakdown column, `__v`, `__w`, ordered by slot and
    /// value.
    fn frame(self, expected: &Schema, dim: Option<&str>) -> PolarsResult<DataFrame> {
        let mut entries: Vec<((u32, i64), u64)> = self.counts.into_iter().collect();
        entries.sort_unstable();
        let n_cells = self.place.n_cells.max(1);
        let mut columns = Vec::with_capacity(4);
        let cells: Vec<u32> = entries
            .iter()
            .map(|((slot, _), _)| (*slot as usize % n_cells) as u32)
            .collect();
        columns.push(typed(
            Series::new("__cell".into(), cells),
            expected,
            "__cell",
        )?);
        if let Some(d) = dim {
            let values: Vec<Option<&str>> = entries
                .iter()
                .map(|((slot, _), _)| {
                    self.place.segments.values[*slot as usize / n_cells].as_deref()
                })
                .collect();
            columns.push(Series::new(d.into(), values).into_column());
        }
        let values: Vec<i64> = entries.iter().map(|((_, v), _)| *v).collect();
        columns.push(typed(Series::new("__v".into(), values), expected, "__v")?);
        let weights: Vec<i64> = entries.iter().map(|(_, w)| *w as i64).collect();
        columns.push(typed(Series::new("__w".into(), weights), expected, "__w")?);
        DataFrame::new_infer_height(columns)
    }
}

/// The plan's steps after the group-by, applied to the accumulated frame.
pub(crate) type Then = Box<dyn FnOnce(LazyFrame) -> LazyFrame + Send + Sync>;

/// A started accumulation: filled while the scan runs, then turned into the group-by's frame.
pub(crate) struct Pending {
    acc: Arc<Mutex<Accumulation>>,
    expected: SchemaRef,
    dim: Option<String>,
    names: Vec<String>,
    /// Per name, its accumulated state (states shared by several names are accumulated once).
    of_state: Vec<usize>,
    then: Then,
}

impl DenseScalars {
    /// The accumulation's columns in a sink's batches (named with `tag`, so that several
    /// accumulations can share one sink) and what finishes it; `None` when a state's input
    /// type is not one this module accumulates.
    fn prepare(self, tag: usize) -> PolarsResult<Option<(Vec<Expr>, Pending)>> {
        // Indicators share states (the rows passing the same filter, the nulls of one column):
        // each distinct aggregation is accumulated once.
        let mut distinct: Vec<(String, &RowAgg)> = Vec::new();
        let of_state: Vec<usize> = self
            .states
            .iter()
            .map(|(_, agg)| {
                let key = format!("{agg:?}");
                match distinct.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        distinct.push((key, agg));
                        distinct.len() - 1
                    }
                }
            })
            .collect();
        let mut columns = Columns::new(tag, self.dim.is_some());
        columns.inputs = (0..distinct.len())
            .map(|k| format!("__in{tag}_{k}"))
            .collect();
        let mut select = columns.placing(&self.cell, self.dim.as_deref());
        select.extend(
            distinct
                .iter()
                .zip(&columns.inputs)
                .filter_map(|((_, agg), name)| input_of(agg).map(|e| e.alias(name.as_str()))),
        );
        let input_schema = self.rows.clone().select(select.clone()).collect_schema()?;
        let mut kinds = Vec::with_capacity(distinct.len());
        for ((_, agg), name) in distinct.iter().zip(&columns.inputs) {
            match Kind::of(agg, input_schema.get(name.as_str())) {
                Some(kind) => kinds.push(kind),
                None => return Ok(None),
            }
        }
        let expected = self.grouped.clone().collect_schema()?;
        let acc = Accumulator::new(kinds, self.n_cells, columns);
        Ok(Some((
            select,
            Pending {
                acc: Arc::new(Mutex::new(Accumulation::Scalars(acc))),
                expected,
                dim: self.dim,
                names: self.states.into_iter().map(|(name, _)| name).collect(),
                of_state,
                then: self.then,
            },
        )))
    }
}

/// Accumulations over the same `rows` fed by one sink, so that the rows are filtered and
/// handed over once for all of them (a source's total and its breakdowns): the sink (`None`
/// when no accumulation is possible), and per accumulation what finishes it (`None` where a
/// state's input type is not one this module accumulates: that output stays a group-by).
pub(crate) fn start_together(
    rows: LazyFrame,
    list: Vec<Dense>,
) -> PolarsResult<(Option<LazyFrame>, Vec<Option<Pending>>)> {
    let mut select = Vec::new();
    let mut pending = Vec::with_capacity(list.len());
    for (tag, dense) in list.into_iter().enumerate() {
        match dense.prepare(tag)? {
            Some((columns, p)) => {
                select.extend(columns);
                pending.push(Some(p));
            }
            None => pending.push(None),
        }
    }
    let accs: Vec<Arc<Mutex<Accumulation>>> =
        pending.iter().flatten().map(|p| p.acc.clone()).collect();
    if accs.is_empty() {
        return Ok((None, pending));
    }
    let callback = move |batch: DataFrame| -> PolarsResult<bool> {
        for acc in &accs {
            acc.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .add(&batch)?;
        }
        Ok(false)
    };
    // In row order: each cell's floats are summed in the order of the file's rows.
    let sink = rows.select(select).sink_batches(
        PlanCallback::Rust(SpecialEq::new(Arc::new(callback))),
        true,
        None,
    )?;
    Ok((Some(sink), pending))
}

/// The names of one accumulation's columns in the sink's batches.
#[derive(Default)]
struct Columns {
    cell: String,
    dim: Option<String>,
    /// Per accumulated state, its row-level input (unused for a count of rows); a multiset's
    /// values.
    inputs: Vec<String>,
    /// A multiset's row filter.
    mask: Option<String>,
}

impl Columns {
    /// The cell's and segment's names for accumulation `tag` (inputs and mask left to fill).
    fn new(tag: usize, with_dim: bool) -> Self {
        Columns {
            cell: format!("__cell{tag}"),
            dim: with_dim.then(|| format!("__dim{tag}")),
            ..Columns::default()
        }
    }

    /// The expressions that place a row: its cell, and its breakdown value `dim` if any.
    fn placing(&self, cell: &Expr, dim: Option<&str>) -> Vec<Expr> {
        let mut select = vec![cell.clone().alias(self.cell.as_str())];
        if let (Some(d), Some(name)) = (dim, &self.dim) {
            // As text: the segment's label is made from the text (`segment_label`).
            select.push(col(d).cast(DataType::String).alias(name.as_str()));
        }
        select
    }
}

fn input_of(agg: &RowAgg) -> Option<Expr> {
    match agg {
        RowAgg::Rows => None,
        RowAgg::CountTrue(e) | RowAgg::Sum(e) | RowAgg::Min(e) | RowAgg::Max(e) => Some(e.clone()),
    }
}

impl Pending {
    /// The output as the group-by's plan gives it: the accumulated frame (one row per cell and
    /// segment with rows: segments in order of appearance, cells ascending) through the steps
    /// after the group-by.
    pub(crate) fn finish(self) -> PolarsResult<DataFrame> {
        // Taken out of its lock: the sink's callback may still hold the other handle.
        let acc = std::mem::replace(
            &mut *self.acc.lock().unwrap_or_else(|p| p.into_inner()),
            Accumulation::Scalars(Accumulator::default()),
        );
        let frame = match acc {
            Accumulation::Scalars(acc) => self.scalars_frame(acc)?,
            Accumulation::Multiset(acc) => acc.frame(&self.expected, self.dim.as_deref())?,
        };
        (self.then)(frame.lazy()).collect()
    }

    /// One row per cell and segment with rows, with the states.
    fn scalars_frame(&self, acc: Accumulator) -> PolarsResult<DataFrame> {
        let present: Vec<usize> = (0..acc.rows.len()).filter(|&s| acc.rows[s] > 0).collect();
        let n_cells = acc.place.n_cells.max(1);
        let mut columns: Vec<Column> = Vec::with_capacity(self.names.len() + 2);
        let cells: Vec<u32> = present.iter().map(|&s| (s % n_cells) as u32).collect();
        columns.push(typed(
            Series::new("__cell".into(), cells),
            &self.expected,
            "__cell",
        )?);
        if let Some(d) = &self.dim {
            let values: Vec<Option<&str>> = present
                .iter()
                .map(|&s| acc.place.segments.values[s / n_cells].as_deref())
                .collect();
            columns.push(Series::new(d.as_str().into(), values).into_column());
        }
        for (k, name) in self.names.iter().enumerate() {
            let state = &acc.states[self.of_state[k]];
            let series = match state.kind {
                Kind::Rows => Series::new(
                    name.as_str().into(),
                    present
                        .iter()
                        .map(|&s| acc.rows[s] as i64)
                        .collect::<Vec<i64>>(),
                ),
                Kind::CountTrue | Kind::SumInt => Series::new(
                    name.as_str().into(),
                    present.iter().map(|&s| state.ints[s]).collect::<Vec<i64>>(),
                ),
                Kind::SumFloat => Series::new(
                    name.as_str().into(),
                    present
                        .iter()
                        .map(|&s| state.floats[s])
                        .collect::<Vec<f64>>(),
                ),
                Kind::MinInt | Kind::MaxInt => Series::new(
                    name.as_str().into(),
                    present
                        .iter()
                        .map(|&s| (state.flags[s] & HAS_NUMBER != 0).then_some(state.ints[s]))
                        .collect::<Vec<Option<i64>>>(),
                ),
                Kind::MinFloat | Kind::MaxFloat => Series::new(
                    name.as_str().into(),
                    present
                        .iter()
                        .map(|&s| {
                            // polars' min and max pass over NaN unless there is nothing else.
                            let flags = state.flags[s];
                            if flags & HAS_NUMBER != 0 {
                                Some(state.floats[s])
                            } else if flags & HAS_NAN != 0 {
                                Some(f64::NAN)
                            } else {
                                None
                            }
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
            };
            columns.push(typed(series, &self.expected, name)?);
        }
        DataFrame::new_infer_height(columns)
    }
}

/// `series` cast to the type the group-by gives column `name`.
fn typed(series: Series, expected: &Schema, name: &str) -> PolarsResult<Column> {
    let dtype = expected.get(name).ok_or_else(
        || polars_err!(ColumnNotFound: "the grouped states have no column '{}'", name),
    )?;
    Ok(series.strict_cast(dtype)?.into_column())
}

const HAS_NUMBER: u8 = 1;
const HAS_NAN: u8 = 2;

/// One state's values per slot (segment × cells + cell).
struct State {
    kind: Kind,
    ints: Vec<i64>,
    floats: Vec<f64>,
    flags: Vec<u8>,
}

impl State {
    fn grow(&mut self, len: usize) {
        match self.kind {
            Kind::Rows => {}
            Kind::CountTrue | Kind::SumInt => self.ints.resize(len, 0),
            Kind::SumFloat => self.floats.resize(len, 0.0),
            Kind::MinInt => {
                self.ints.resize(len, i64::MAX);
                self.flags.resize(len, 0);
            }
            Kind::MaxInt => {
                self.ints.resize(len, i64::MIN);
                self.flags.resize(len, 0);
            }
            Kind::MinFloat => {
                self.floats.resize(len, f64::INFINITY);
                self.flags.resize(len, 0);
            }
            Kind::MaxFloat => {
                self.floats.resize(len, f64::NEG_INFINITY);
                self.flags.resize(len, 0);
            }
        }
    }
}

/// A breakdown's segment values, each with a block of slots in order of appearance.
#[derive(Default)]
struct Segments {
    /// The values' ids (as for distinct sets), and each id's block.
    ids: IdMaps,
    block_of_id: Vec<u32>,
    null: Option<u32>,
    /// Each block's value.
    values: Vec<Option<String>>,
}

impl Segments {
    /// The block of row `i`'s segment, a new one for a value not seen before.
    fn block_of(&mut self, chunk: &Utf8ViewArray, i: usize) -> u32 {
        if !chunk.is_valid(i) {
            if let Some(block) = self.null {
                return block;
            }
            let block = self.new_block(None);
            self.null = Some(block);
            return block;
        }
        let id = self.ids.id_of(chunk, i) as usize;
        if id == self.block_of_id.len() {
            let block = self.new_block(Some(chunk.value(i).to_string()));
            self.block_of_id.push(block);
        }
        self.block_of_id[id]
    }

    fn new_block(&mut self, value: Option<String>) -> u32 {
        self.values.push(value);
        (self.values.len() - 1) as u32
    }
}

#[derive(Default)]
struct Accumulator {
    place: Placement,
    /// Rows per slot: a slot with rows is a group.
    rows: Vec<u64>,
    states: Vec<State>,
    /// The runs of the batch being added (kept to reuse memory).
    runs: Vec<Run>,
}

impl Accumulator {
    fn new(kinds: Vec<Kind>, n_cells: usize, columns: Columns) -> Accumulator {
        Accumulator {
            place: Placement::new(columns, n_cells),
            states: kinds
                .into_iter()
                .map(|kind| State {
                    kind,
                    ints: Vec::new(),
                    floats: Vec::new(),
                    flags: Vec::new(),
                })
                .collect(),
            ..Accumulator::default()
        }
    }

    /// Room for `segments` segments.
    fn grow(&mut self, segments: usize) {
        let len = segments * self.place.n_cells;
        if self.rows.len() >= len {
            return;
        }
        self.rows.resize(len, 0);
        for state in &mut self.states {
            state.grow(len);
        }
    }

    fn add(&mut self, batch: &DataFrame) -> PolarsResult<()> {
        if batch.height() == 0 {
            return Ok(());
        }
        let slots = self.place.slots_of(batch)?;
        let mut runs = std::mem::take(&mut self.runs);
        runs.clear();
        for (i, &slot) in slots.iter().enumerate() {
            if runs.last().is_none_or(|r: &Run| r.slot != slot) {
                runs.push(Run { start: i, slot });
            }
        }
        self.grow(self.place.segments.values.len().max(1));
        runs.push(Run {
            start: slots.len(),
            slot: u32::MAX,
        });
        for (rows, slot) in each_run(&runs) {
            self.rows[slot] += rows.len() as u64;
        }
        // Rows in unit and date order come in long runs of one slot: a run is added as one (a
        // sum kept in a register). Rows in another order (an employee's months in a row) are
        // added one by one.
        let by_runs = runs.len() * 8 < slots.len();
        for (k, state) in self.states.iter_mut().enumerate() {
            // A count of every row is the slot's row count, taken when finishing.
            if state.kind == Kind::Rows {
                continue;
            }
            let input = batch.column(&self.place.columns.inputs[k])?;
            match state.kind {
                Kind::CountTrue => count_true(state, input, &runs, &slots, by_runs)?,
                Kind::SumFloat | Kind::SumInt if by_runs => add_runs(state, input, &runs)?,
                // Min and max are rare: row by row.
                _ => add_rows(state, input, &slots)?,
            }
        }
        self.runs = runs;
        self.place.slots = slots;
        Ok(())
    }
}

/// Where a batch's rows go: the columns that name their cells and segments, and the segments'
/// blocks of slots, given as they appear.
#[derive(Default)]
struct Placement {
    columns: Columns,
    n_cells: usize,
    segments: Segments,
    /// The last batch's slots, handed back to reuse their memory.
    slots: Vec<u32>,
}

impl Placement {
    fn new(columns: Columns, n_cells: usize) -> Placement {
        Placement {
            columns,
            n_cells,
            ..Placement::default()
        }
    }

    /// Each row's slot (segment block × cells + cell), in the vector the last batch handed
    /// back.
    fn slots_of(&mut self, batch: &DataFrame) -> PolarsResult<Vec<u32>> {
        let mut slots = std::mem::take(&mut self.slots);
        slots.clear();
        let cells = batch.column(&self.columns.cell)?.cast(&DataType::UInt32)?;
        let cells = cells.u32()?.rechunk();
        polars_ensure!(
            cells.null_count() == 0,
            ComputeError: "a usable row without a unit or month"
        );
        let cells = cells.cont_slice()?;
        // The largest cell, checked once for the batch.
        let largest = cells.iter().copied().max().unwrap_or(0);
        polars_ensure!(
            (largest as usize) < self.n_cells,
            ComputeError: "a row's unit and month outside the run's cells"
        );
        let Some(dim) = &self.columns.dim else {
            slots.extend_from_slice(cells);
            return Ok(slots);
        };
        let n_cells = self.n_cells as u32;
        let dims = batch.column(dim)?.str()?.rechunk();
        let chunk = dims.downcast_as_array();
        let mut last: Option<(u128, u32)> = None;
        for (i, (view, &cell)) in chunk.views().iter().zip(cells).enumerate() {
            // Equal views are equal strings (inline: the bytes; else the same place).
            let key = if chunk.is_valid(i) {
                view.as_u128()
            } else {
                u128::MAX
            };
            let block = match last {
                Some((same, block)) if same == key => block,
                _ => {
                    let block = self.segments.block_of(chunk, i);
                    last = Some((key, block));
                    block
                }
            };
            slots.push(block * n_cells + cell);
        }
        Ok(slots)
    }
}

/// Adds the rows where a boolean input is true (and not null). Most such inputs are the null
/// count of a column without nulls, or a filter every row passes: all false or all true, both
/// counted without looking at a row.
fn count_true(
    state: &mut State,
    input: &Column,
    runs: &[Run],
    slots: &[u32],
    by_runs: bool,
) -> PolarsResult<()> {
    let input = input.bool()?.rechunk();
    let chunk = input.downcast_as_array();
    let set = match chunk.validity() {
        Some(valid) => chunk.values() & valid,
        None => chunk.values().clone(),
    };
    let ones = set.set_bits();
    if ones == 0 {
        return Ok(());
    }
    if ones == set.len() {
        for (rows, slot) in each_run(runs) {
            state.ints[slot] += rows.len() as i64;
        }
    } else if by_runs {
        let set = BitMask::from_bitmap(&set);
        for (rows, slot) in each_run(runs) {
            state.ints[slot] += set.sliced(rows.start, rows.len()).set_bits() as i64;
        }
    } else {
        for (&s, is_set) in slots.iter().zip(set.iter()) {
            state.ints[s as usize] += is_set as i64;
        }
    }
    Ok(())
}

/// Consecutive rows of one slot: rows are mostly in unit and date order, so a batch has few
/// runs, and each run's sum is kept in a register instead of a memory slot.
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    slot: u32,
}

/// The rows of each run (all but the closing sentinel) with their slot.
fn each_run(runs: &[Run]) -> impl Iterator<Item = (std::ops::Range<usize>, usize)> + '_ {
    runs.windows(2)
        .map(|w| (w[0].start..w[1].start, w[0].slot as usize))
}

/// Adds one batch's inputs of a state into their slots, row by row.
fn add_rows(state: &mut State, input: &Column, slots: &[u32]) -> PolarsResult<()> {
    match state.kind {
        Kind::Rows | Kind::CountTrue => unreachable!("counted elsewhere"),
        Kind::SumFloat | Kind::MinFloat | Kind::MaxFloat => {
            let input = input.f64()?.rechunk();
            let chunk = input.downcast_as_array();
            let (values, valid) = (chunk.values().as_slice(), chunk.validity());
            match state.kind {
                Kind::SumFloat => {
                    each_valid(values, valid, slots, |s, v| state.floats[s] += v);
                }
                Kind::MinFloat => each_valid(values, valid, slots, |s, v| {
                    min_max_float(state, s, v, true);
                }),
                _ => each_valid(values, valid, slots, |s, v| {
                    min_max_float(state, s, v, false);
                }),
            }
        }
        Kind::SumInt | Kind::MinInt | Kind::MaxInt => {
            let input = input.cast(&DataType::Int64)?;
            let input = input.i64()?.rechunk();
            let chunk = input.downcast_as_array();
            let (values, valid) = (chunk.values().as_slice(), chunk.validity());
            match state.kind {
                Kind::SumInt => each_valid(values, valid, slots, |s, v| {
                    state.ints[s] = state.ints[s].wrapping_add(v);
                }),
                Kind::MinInt => each_valid(values, valid, slots, |s, v| {
                    state.ints[s] = state.ints[s].min(v);
                    state.flags[s] |= HAS_NUMBER;
                }),
                _ => each_valid(values, valid, slots, |s, v| {
                    state.ints[s] = state.ints[s].max(v);
                    state.flags[s] |= HAS_NUMBER;
                }),
            }
        }
    }
    Ok(())
}

/// `f(slot, value)` for each row's value that is not null, in row order.
fn each_valid<T: Copy>(
    values: &[T],
    valid: Option<&Bitmap>,
    slots: &[u32],
    mut f: impl FnMut(usize, T),
) {
    match valid {
        None => {
            for (&s, &v) in slots.iter().zip(values) {
                f(s as usize, v);
            }
        }
        Some(valid) => {
            for ((&s, &v), ok) in slots.iter().zip(values).zip(valid.iter()) {
                if ok {
                    f(s as usize, v);
                }
            }
        }
    }
}

/// A float into a min or max: polars' min and max pass over NaN unless there is nothing else.
fn min_max_float(state: &mut State, s: usize, v: f64, min: bool) {
    if v.is_nan() {
        state.flags[s] |= HAS_NAN;
        return;
    }
    state.floats[s] = if min {
        state.floats[s].min(v)
    } else {
        state.floats[s].max(v)
    };
    state.flags[s] |= HAS_NUMBER;
}

/// Adds one batch's values of a sum into their slots run by run, in row order: a run's sum is
/// kept in a register, not written back to its slot after every row.
fn add_runs(state: &mut State, input: &Column, runs: &[Run]) -> PolarsResult<()> {
    match state.kind {
        Kind::SumFloat => {
            let input = input.f64()?.rechunk();
            let chunk = input.downcast_as_array();
            let (values, valid) = (chunk.values().as_slice(), chunk.validity());
            for (rows, slot) in each_run(runs) {
                let mut sum = state.floats[slot];
                each_valid_in(values, valid, rows, |v| sum += v);
                state.floats[slot] = sum;
            }
        }
        Kind::SumInt => {
            let input = input.cast(&DataType::Int64)?;
            let input = input.i64()?.rechunk();
            let chunk = input.downcast_as_array();
            let (values, valid) = (chunk.values().as_slice(), chunk.validity());
            for (rows, slot) in each_run(runs) {
                let mut sum = state.ints[slot];
                each_valid_in(values, valid, rows, |v| sum = sum.wrapping_add(v));
                state.ints[slot] = sum;
            }
        }
        _ => unreachable!("only sums are added by runs"),
    }
    Ok(())
}

/// `f(value)` for each value of `rows` that is not null, in row order.
fn each_valid_in<T: Copy>(
    values: &[T],
    valid: Option<&Bitmap>,
    rows: std::ops::Range<usize>,
    mut f: impl FnMut(T),
) {
    let run = &values[rows.clone()];
    match valid {
        None => run.iter().for_each(|&v| f(v)),
        Some(valid) => {
            let valid = BitMask::from_bitmap(valid).sliced(rows.start, rows.len());
            for (&v, ok) in run.iter().zip(valid.iter()) {
                if ok {
                    f(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const N_CELLS: usize = 40;

    /// Random rows: a cell, a segment (with nulls), and inputs of every supported type with
    /// nulls; floats in halves (their sums are exact in any order) and some NaN.
    fn rows(n: usize, sorted: bool, seed: u64) -> DataFrame {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cells: Vec<u32> = (0..n)
            .map(|_| rng.random_range(0..N_CELLS as u32))
            .collect();
        if sorted {
            // Long runs of one cell, as in an export sorted by unit and date.
            cells.sort();
        }
        let pick = |rng: &mut ChaCha8Rng, p: f64| rng.random_bool(p);
        let segments = ["K", "M", "a segment name longer than twelve bytes"];
        let seg: Vec<Option<&str>> = (0..n)
            .map(|_| (!pick(&mut rng, 0.1)).then(|| segments[rng.random_range(0..3)]))
            .collect();
        // The last cell's floats are NaN or null (min and max are then NaN), the one before's
        // all null (min and max null, sum 0).
        let f: Vec<Option<f64>> = cells
            .iter()
            .map(|&cell| match rng.random_range(0..20) {
                _ if cell as usize == N_CELLS - 2 => None,
                0..=2 => None,
                3 => Some(f64::NAN),
                _ if cell as usize == N_CELLS - 1 => Some(f64::NAN),
                _ => Some(rng.random_range(-200..200) as f64 / 2.0),
            })
            .collect();
        let i: Vec<Option<i64>> = (0..n)
            .map(|_| (!pick(&mut rng, 0.2)).then(|| rng.random_range(-1000..1000)))
            .collect();
        let i32s: Vec<Option<i32>> = (0..n)
            .map(|_| (!pick(&mut rng, 0.2)).then(|| rng.random_range(-50..50)))
            .collect();
        let days: Vec<Option<i32>> = (0..n)
            .map(|_| (!pick(&mut rng, 0.2)).then(|| rng.random_range(18000..20000)))
            .collect();
        let b: Vec<Option<bool>> = (0..n)
            .map(|_| (!pick(&mut rng, 0.2)).then(|| pick(&mut rng, 0.5)))
            .collect();
        df!(
            "cell" => cells,
            "seg" => seg,
            "f" => f,
            "i" => i,
            "i32" => i32s,
            "d" => Series::new("d".into(), days).cast(&DataType::Date).unwrap(),
            "b" => b,
        )
        .unwrap()
    }

    /// Every kind of state, as `partial` plans them: the row aggregation and the group-by's
    /// aggregation of it.
    fn states() -> Vec<(String, RowAgg, Expr)> {
        let masked = when(col("b")).then(col("f")).otherwise(lit(NULL));
        let cases = vec![
            (RowAgg::Rows, len().cast(DataType::Int64)),
            (
                RowAgg::CountTrue(col("b")),
                col("b").sum().cast(DataType::Int64),
            ),
            (
                RowAgg::CountTrue(col("f").is_null()),
                col("f").is_null().sum().cast(DataType::Int64),
            ),
            (RowAgg::Sum(col("f")), col("f").sum()),
            (RowAgg::Sum(masked.clone()), masked.sum()),
            (RowAgg::Sum(col("i")), col("i").sum()),
            (RowAgg::Sum(col("i32")), col("i32").sum()),
            (RowAgg::Sum(col("b")), col("b").sum()),
            (RowAgg::Min(col("f")), col("f").min()),
            (RowAgg::Max(col("f")), col("f").max()),
            (RowAgg::Min(col("i")), col("i").min()),
            (RowAgg::Max(col("i32")), col("i32").max()),
            (RowAgg::Min(col("d")), col("d").min()),
            (RowAgg::Max(col("d")), col("d").max()),
        ];
        cases
            .into_iter()
            .enumerate()
            .map(|(k, (row, agg))| {
                let name = format!("s{k}");
                (name.clone(), row, agg.alias(name))
            })
            .collect()
    }

    /// Every state of `states()` by cell (and `dim`): densely, and as polars' group-by.
    fn planned(frame: &DataFrame, dim: Option<&str>) -> (DenseScalars, LazyFrame) {
        let states = states();
        let mut keys = vec![col("cell").alias("__cell")];
        keys.extend(dim.map(col));
        let grouped = frame.clone().lazy().group_by(keys).agg(
            states
                .iter()
                .map(|(_, _, agg)| agg.clone())
                .collect::<Vec<_>>(),
        );
        let dense = DenseScalars {
            rows: frame.clone().lazy(),
            cell: col("cell"),
            dim: dim.map(str::to_string),
            states: states
                .into_iter()
                .map(|(name, row, _)| (name, row))
                .collect(),
            n_cells: N_CELLS,
            grouped: grouped.clone(),
            then: Box::new(|lf| lf),
        };
        (dense, grouped)
    }

    fn run(sink: LazyFrame) {
        LazyFrame::collect_all_with_engine(
            vec![sink.logical_plan],
            polars::prelude::Engine::Streaming,
            OptFlags::default(),
        )
        .unwrap();
    }

    /// A result sorted by cell (and `dim`), to compare row by row.
    fn sorted(df: DataFrame, dim: Option<&str>) -> DataFrame {
        sorted_by(df, &["__cell"], dim)
    }

    /// A result sorted by `keys` (and `dim`).
    fn sorted_by(df: DataFrame, keys: &[&str], dim: Option<&str>) -> DataFrame {
        let mut by: Vec<PlSmallStr> = keys.iter().map(|&k| k.into()).collect();
        by.extend(dim.map(PlSmallStr::from));
        df.sort(by, SortMultipleOptions::default().with_nulls_last(true))
            .unwrap()
    }

    fn dense_and_grouped(frame: &DataFrame, dim: Option<&str>) -> (DataFrame, DataFrame) {
        let (dense, grouped) = planned(frame, dim);
        let (sink, pending) = Dense::Scalars(dense)
            .start()
            .unwrap()
            .expect("every type is accumulated");
        run(sink);
        (
            sorted(pending.finish().unwrap(), dim),
            sorted(grouped.collect().unwrap(), dim),
        )
    }

    /// Each value of a frame as text (NaN included, which `==` on frames does not equate), with
    /// its column's type.
    fn cells_of(df: &DataFrame) -> Vec<(String, String, Vec<String>)> {
        df.columns()
            .iter()
            .map(|c| {
                let s = c.as_materialized_series();
                (
                    c.name().to_string(),
                    c.dtype().to_string(),
                    (0..s.len())
                        .map(|i| s.get(i).unwrap().to_string())
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn dense_states_equal_polars_group_by() {
        for (sorted, seed) in [(true, 1), (false, 2), (true, 3), (false, 4)] {
            let frame = rows(20_000, sorted, seed);
            // Sorted by segment and cell too: long runs in the breakdown's slots.
            let by_segment = frame
                .sort(["seg", "cell"], SortMultipleOptions::default())
                .unwrap();
            for (frame, dim) in [
                (&frame, None),
                (&frame, Some("seg")),
                (&by_segment, Some("seg")),
            ] {
                let (dense, grouped) = dense_and_grouped(frame, dim);
                assert!(grouped.height() > N_CELLS / 2);
                assert_eq!(
                    cells_of(&dense),
                    cells_of(&grouped),
                    "sorted rows: {sorted}, breakdown: {dim:?}"
                );
            }
        }
    }

    #[test]
    fn accumulations_fed_by_one_sink_equal_their_own_group_bys() {
        // A source's total and its breakdown over the same rows, and beside them an output
        // the arrays do not take (a text min): one sink feeds the first two, the third is left
        // to its group-by.
        let frame = rows(20_000, true, 5);
        let (total, total_grouped) = planned(&frame, None);
        let (by_seg, by_seg_grouped) = planned(&frame, Some("seg"));
        let text = DenseScalars {
            rows: frame.clone().lazy(),
            cell: col("cell"),
            dim: None,
            states: vec![(
                "s0".to_string(),
                RowAgg::Min(col("i").cast(DataType::String)),
            )],
            n_cells: N_CELLS,
            grouped: frame
                .clone()
                .lazy()
                .group_by([col("cell")])
                .agg([col("i").cast(DataType::String).min().alias("s0")]),
            then: Box::new(|lf| lf),
        };
        let (sink, mut pending) = start_together(
            frame.clone().lazy(),
            vec![
                Dense::Scalars(total),
                Dense::Scalars(text),
                Dense::Scalars(by_seg),
            ],
        )
        .unwrap();
        run(sink.expect("two of the three are accumulated"));
        let by_seg = pending.pop().unwrap().expect("by segment is accumulated");
        assert!(pending.pop().unwrap().is_none(), "a text min is not");
        let total = pending.pop().unwrap().expect("the total is accumulated");
        for (dense, grouped, dim) in [
            (total, total_grouped, None),
            (by_seg, by_seg_grouped, Some("seg")),
        ] {
            let dense = sorted(dense.finish().unwrap(), dim);
            let grouped = sorted(grouped.collect().unwrap(), dim);
            assert!(grouped.height() > N_CELLS / 2);
            assert_eq!(cells_of(&dense), cells_of(&grouped), "breakdown: {dim:?}");
        }
    }

    /// A median's multiset of `value` over the rows where `b` holds (or all rows), by cell
    /// (and `dim`): densely, and as polars' group-by (null values left out, as planned).
    fn multiset_planned(
        frame: &DataFrame,
        dim: Option<&str>,
        value: Expr,
        masked: bool,
    ) -> (Dense, LazyFrame) {
        let mut keys = vec![col("cell").alias("__cell")];
        keys.extend(dim.map(col));
        keys.push(value.clone().alias("__v"));
        let picked = if masked {
            frame.clone().lazy().filter(col("b"))
        } else {
            frame.clone().lazy()
        };
        let grouped = picked
            .filter(value.clone().is_not_null())
            .group_by(keys)
            .agg([len().cast(DataType::Int64).alias("__w")]);
        let dense = DenseMultiset {
            rows: frame.clone().lazy(),
            cell: col("cell"),
            dim: dim.map(str::to_string),
            mask: masked.then(|| "b".to_string()),
            value,
            n_cells: N_CELLS,
            grouped: grouped.clone(),
            then: Box::new(|lf| lf),
        };
        (Dense::Multiset(dense), grouped)
    }

    #[test]
    fn dense_multisets_equal_polars_group_by() {
        for (sorted, seed) in [(true, 6), (false, 7)] {
            let frame = rows(20_000, sorted, seed);
            for dim in [None, Some("seg")] {
                for masked in [false, true] {
                    for value in [col("i32"), col("i") % lit(7)] {
                        let (dense, grouped) = multiset_planned(&frame, dim, value, masked);
                        let (sink, pending) = dense.start().unwrap().expect("integers are counted");
                        run(sink);
                        let by = |df: DataFrame| sorted_by(df, &["__cell", "__v"], dim);
                        let dense = by(pending.finish().unwrap());
                        let grouped = by(grouped.collect().unwrap());
                        assert!(grouped.height() > N_CELLS);
                        assert_eq!(
                            cells_of(&dense),
                            cells_of(&grouped),
                            "sorted: {sorted}, breakdown: {dim:?}, filtered: {masked}"
                        );
                    }
                }
            }
        }
        // Floats are left to the group-by.
        let frame = rows(100, true, 8);
        let (dense, _) = multiset_planned(&frame, None, col("f"), false);
        assert!(dense.start().unwrap().is_none());
    }

    #[test]
    fn types_it_does_not_accumulate_leave_the_output_to_the_group_by() {
        let frame = df!("cell" => [0u32, 1], "t" => ["a", "b"]).unwrap();
        let dense = DenseScalars {
            rows: frame.clone().lazy(),
            cell: col("cell"),
            dim: None,
            states: vec![("s0".to_string(), RowAgg::Min(col("t")))],
            n_cells: N_CELLS,
            grouped: frame.lazy().group_by([col("cell")]).agg([col("t").min()]),
            then: Box::new(|lf| lf),
        };
        assert!(Dense::Scalars(dense).start().unwrap().is_none());
    }
}
