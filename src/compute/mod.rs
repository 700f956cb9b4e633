//! Indicator values for every unit, level, period and segment, by two-phase aggregation.
//!
//! Phase 1 (`partial`): per source, one fused scan of the rows, run by polars' streaming engine
//! in bounded batches, groups them by integer keys `(own unit, month)` and segment into partial
//! states for every indicator at once (sums, counts, min/max, added into dense arrays by
//! `dense`; distinct values and value multiplicities where `count(distinct …)` or `median` need
//! them). Filters are conditions inside each indicator's aggregation, so indicators with
//! different filters share the scan.
//! Phase 2 (`rollup`): the small partial table is merged into every unit above (children into
//! parents) and every period (months into quarters, tertials, years, ytd), and each numerator and
//! denominator is evaluated on the merged states. A parent's value is therefore still computed
//! from the rows beneath it — a ratio of sums, a distinct count over the union of its units'
//! values, a median of the merged multiset — never combined from its children's values.
//! Indicators whose aggregates have no exact mergeable state take the direct path (`direct`):
//! rows joined to ancestors and periods, as one more output of the same scan.
//! Small sources run side by side, large ones one at a time; `finish` then fills the unit ×
//! period grid and computes values.
//! Phase 1 of a Parquet source can instead run as SQL on Apache DataFusion, in-process or on a
//! Ballista cluster (`engine`, `sql`, and with the `distributed` feature `datafusion`,
//! `cluster`): the same expressions, printed as SQL, answered in the same frames.

#[cfg(feature = "distributed")]
pub mod cluster;
mod cross;
#[cfg(feature = "distributed")]
mod datafusion;
mod dense;
mod direct;
mod distinct;
mod engine;
mod expr;
mod finish;
mod partial;
mod rollup;
pub(crate) mod sql;

pub use crate::definitions::Engine;
pub(crate) use cross::combine_sides;
pub(crate) use engine::{DEFAULT_TIMEOUT, Phase1, SqlAnswers};
pub(crate) use finish::{IndicatorRules, finish_values};
pub(crate) use partial::{SetKind, decompose};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, Utf8ViewArray};
use polars_arrow::bitmap::Bitmap;
use rayon::prelude::*;

use crate::definitions::{IndicatorDef, Pipeline, Rollup, SourceDef};
use crate::ingest::{IngestError, InputFile, SourceRows, checked_rows, scan_source};
use crate::org::{CodeMapping, OrgTree};
use crate::period::{Grain, Month, RunMonths};
use rollup::{PartialIndicator, SegmentPartials};

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("indicator '{indicator}': {message}")]
    Expression { indicator: String, message: String },
    #[error("source '{source_name}': {message}")]
    Polars {
        source_name: String,
        message: String,
    },
}

/// Dense ids for the values of one distinct set: equal values get equal ids (null stays null).
/// Shared by the threads of the streaming scan; ids depend on arrival order, counts do not.
///
/// The values are spread over [`SHARDS`] dictionaries by a hash of their bytes, each behind its
/// own lock, so that the threads look values up side by side: with values that rarely repeat
/// (a contact id per row) the look-ups are most of phase 1, and one lock made them serial. A
/// shard's k-th value gets id `k * SHARDS + shard`.
struct ValueIds {
    shards: Vec<Mutex<IdMaps>>,
}

/// Dictionaries per [`ValueIds`]: enough that two threads seldom wait for the same one.
const SHARDS: usize = 64;

impl Default for ValueIds {
    fn default() -> Self {
        ValueIds {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

/// Value → id within a shard. A string of at most 12 bytes (most ids and codes) is held whole
/// in its 16-byte polars view, zero-padded, so it is keyed by the view: no string is hashed,
/// compared or copied for it. Longer strings are keyed by their text. The view is two 8-byte
/// words rather than one `u128`, which is 16-byte aligned: an entry takes 24 bytes instead of
/// 32, which matters when every row has a new id (14.6 million contact ids take ~120 MB less).
#[derive(Default)]
struct IdMaps {
    inline: PlHashMap<[u64; 2], u32>,
    long: PlHashMap<String, u32>,
}

impl IdMaps {
    fn next(&self) -> u32 {
        (self.inline.len() + self.long.len()) as u32
    }

    /// The shard's id of row `i` of `chunk` (not null): the next one for a value not seen
    /// before.
    fn id_of(&mut self, chunk: &Utf8ViewArray, i: usize) -> u32 {
        let view = chunk.views()[i];
        let next = self.next();
        if view.is_inline() {
            let key = view.as_u128();
            return *self
                .inline
                .entry([key as u64, (key >> 64) as u64])
                .or_insert(next);
        }
        let value = chunk.value(i);
        match self.long.get(value) {
            Some(&id) => id,
            None => {
                self.long.insert(value.to_string(), next);
                next
            }
        }
    }
}

/// The shard of row `i` of `chunk` (not null), from its bytes: the view of a short string (its
/// bytes, zero-padded), the text of a long one. Equal values, equal shards.
fn shard_of(chunk: &Utf8ViewArray, i: usize) -> usize {
    const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
    let view = chunk.views()[i];
    let hash = if view.is_inline() {
        let key = view.as_u128();
        ((key as u64) ^ ((key >> 64) as u64).rotate_left(29)).wrapping_mul(MIX)
    } else {
        chunk.value(i).as_bytes().chunks(8).fold(0u64, |h, word| {
            let mut bytes = [0u8; 8];
            bytes[..word.len()].copy_from_slice(word);
            (h.rotate_left(23) ^ u64::from_le_bytes(bytes)).wrapping_mul(MIX)
        })
    };
    (hash >> (64 - SHARDS.trailing_zeros())) as usize
}

impl ValueIds {
    fn ids(&self, values: &Column) -> PolarsResult<Column> {
        let text = if values.dtype() == &DataType::String {
            values.clone()
        } else {
            values.cast(&DataType::String)?
        };
        let text = text.str()?;
        let mut out = UInt32Chunked::full_null(text.name().clone(), 0);
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); SHARDS];
        for chunk in text.downcast_iter() {
            let views = chunk.views();
            // A value often repeats on consecutive rows (an employee's months in a row): such a
            // row takes the id of the row before it, without a look-up. Equal views are equal
            // strings (inline: the bytes; otherwise: the same place in the same buffer).
            let repeats = |i: usize, last: &mut Option<u128>| {
                let key = views[i].as_u128();
                let same = *last == Some(key);
                *last = Some(key);
                same
            };
            let mut last = None;
            for rows in by_shard.iter_mut() {
                rows.clear();
            }
            for i in 0..chunk.len() {
                if chunk.is_valid(i) && !repeats(i, &mut last) {
                    by_shard[shard_of(chunk, i)].push(i as u32);
                }
            }
            let mut ids = vec![0u32; chunk.len()];
            for (shard, rows) in by_shard.iter().enumerate() {
                if rows.is_empty() {
                    continue;
                }
                let mut maps = self.shards[shard]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for &i in rows {
                    let local = maps.id_of(chunk, i as usize);
                    ids[i as usize] = local * SHARDS as u32 + shard as u32;
                }
            }
            // The repeats, in order: each takes the id of the last valid row before it.
            let (mut last, mut previous) = (None, 0);
            for (i, id) in ids.iter_mut().enumerate() {
                if chunk.is_valid(i) {
                    if repeats(i, &mut last) {
                        *id = previous;
                    }
                    previous = *id;
                }
            }
            let name = text.name().clone();
            out.append_owned(UInt32Chunked::from_vec_validity(
                name,
                ids,
                chunk.validity().cloned(),
            ))?;
        }
        Ok(out.into_column())
    }
}

/// Where one segmentation's phase-1 outputs are in the plan's output list.
struct SegmentLayout {
    /// The breakdown dimension (none for the total).
    dim: Option<String>,
    /// Positions (in `SourcePlan::partial`) of the indicators computed in this segmentation.
    members: Vec<usize>,
    scalars: usize,
    /// Per set state: its output and the value column in it.
    sets: Vec<(String, usize, String)>,
}

/// The plan for one source: phase-1 outputs of one fused scan, and what phase 2 does with them.
pub(crate) struct SourcePlan {
    pub(crate) source: String,
    /// Indicators computed by this plan, in definition order.
    pub(crate) indicators: Vec<String>,
    /// Indicators taking the direct path, with the reason.
    pub(crate) direct: Vec<(String, String)>,
    /// Breakdown columns, each adding one more segmentation beside the total.
    pub(crate) breakdowns: Vec<String>,
    /// Per segmentation (`total`, then `by <dim>`): how many partial-state outputs it has.
    pub(crate) segment_outputs: Vec<(String, usize, usize)>,
    pub(crate) rows: SourceRows,
    /// Phase-1 outputs: per segmentation its scalar states and its set states, then the
    /// direct path's cells (if any indicator takes it).
    pub(crate) outputs: Vec<LazyFrame>,
    /// Phase 1 as SQL when an SQL engine was asked for: `Err` says why this source runs on
    /// polars instead.
    pub(crate) sql: Option<Result<sql::SqlSource, String>>,
    partial: Vec<PartialIndicator>,
    layout: Vec<SegmentLayout>,
    direct_output: Option<usize>,
    /// On polars: the total's scalar output again with `__rows` (usable rows per unit and
    /// month) added, and its position; the rows per month are summed from it. With the same
    /// output accumulated densely.
    counted: Option<(usize, LazyFrame, dense::DenseScalars)>,
    /// Each scalar output and median multiset (by position) accumulated densely, to run in
    /// place of its group-by.
    dense: BTreeMap<usize, dense::Dense>,
    /// Whether every segmentation reads the same rows (the source carries no totals of its
    /// own): then one sink feeds all the dense accumulations.
    same_rows: bool,
}

/// One source's fused plan, as `styrkort explain` prints it.
pub struct ExplainedSource {
    pub source: String,
    pub files: Vec<String>,
    pub indicators: Vec<String>,
    pub breakdowns: Vec<String>,
    /// Per two-phase indicator: the partial states it keeps and how it rolls up.
    pub state_kinds: Vec<(String, String)>,
    /// Per segmentation: label, indicators, set-state outputs.
    pub segments: Vec<(String, usize, usize)>,
    /// Indicators computed directly from rows, with the reason.
    pub direct: Vec<(String, String)>,
    /// Where phase 1 runs, and why polars when another engine was asked for.
    pub engine: String,
    /// Phase 1's SQL statements on a SQL engine (only with `--verbose`).
    pub sql: Vec<String>,
    /// The optimised polars plan (only with `--verbose`).
    pub polars_plan: String,
}

/// What one source's execution produced.
pub(crate) struct SourceResult {
    pub(crate) source: String,
    pub(crate) files: Vec<InputFile>,
    pub(crate) values: DataFrame,
    pub(crate) rejected: DataFrame,
    /// Usable rows dated outside the run's months (kept out, not rejected).
    pub(crate) outside_months: i64,
    /// Usable rows per month of the run, `(month, rows)` ascending, months without rows left out.
    pub(crate) month_rows: Vec<(Month, i64)>,
}

/// The grains a set of indicators needs computed from rows. Stock measures need months, from
/// which their coarser periods are formed.
pub(crate) fn grains_needed<'a>(indicators: impl Iterator<Item = &'a IndicatorDef>) -> Vec<Grain> {
    let mut set = BTreeSet::new();
    for ind in indicators {
        set.extend(ind.grains.get_ref().iter().copied());
        if ind.stock.is_some() {
            set.insert(Grain::Month);
        }
    }
    set.into_iter().collect()
}

/// The grains phase 2 produces for an indicator: stock measures need only months.
fn partial_grains(ind: &IndicatorDef) -> Vec<Grain> {
    if ind.stock.is_some() {
        return vec![Grain::Month];
    }
    let mut g = ind.grains.get_ref().clone();
    g.sort();
    g.dedup();
    g
}

/// The indices of the units in the subtrees under `roots`, ascending.
fn scope_units(tree: &OrgTree, roots: &[&str]) -> Vec<u32> {
    let units: BTreeSet<u32> = roots
        .iter()
        .flat_map(|root| tree.subtree(root))
        .filter_map(|id| tree.index_of(id))
        .collect();
    units.into_iter().collect()
}

/// True for rows whose own unit is in `units`: a scoped indicator counts only the rows of the
/// subtrees under its scope, in its units and in every unit above them (a board's home-care
/// cost per client must not divide its nursing homes' costs by home-care clients).
fn in_scope(tree: &OrgTree, units: &[u32]) -> Expr {
    let mut inside = vec![false; tree.units().len()];
    for &u in units {
        inside[u as usize] = true;
    }
    let inside = Arc::new(inside);
    col("__unit").map(
        move |units| {
            let units = units.u32()?;
            // Chunk by chunk over the plain values, the validity applied as a bitmap: this runs
            // on every row of a scoped source, and an iterator of optional values costs several
            // times more than the lookup.
            let chunks = units.downcast_iter().map(|chunk| {
                let looked_up: Bitmap = chunk
                    .values()
                    .iter()
                    .map(|&u| inside.get(u as usize).copied().unwrap_or(false))
                    .collect();
                let bits = match chunk.validity() {
                    Some(valid) => &looked_up & valid,
                    None => looked_up,
                };
                BooleanArray::from_data_default(bits, None)
            });
            let out = BooleanChunked::from_chunk_iter(units.name().clone(), chunks);
            Ok(out.into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::Boolean)),
    )
}

/// `dim=value` (or `dim=(missing)`), the segment label of a breakdown value.
fn segment_label(dim: &str) -> Expr {
    concat_str(
        [
            lit(format!("{dim}=")),
            col(dim).cast(DataType::String).fill_null(lit("(missing)")),
        ],
        "",
        false,
    )
}

impl SourcePlan {
    /// Per two-phase indicator, the kinds of partial state it keeps, in words.
    pub(crate) fn state_kinds(&self) -> Vec<(String, String)> {
        self.partial
            .iter()
            .map(|p| {
                let mut kinds = vec![format!("{} sums/counts", p.parts.scalars.len())];
                for s in &p.parts.sets {
                    kinds.push(
                        match s.kind {
                            SetKind::Distinct => "a distinct-value set",
                            SetKind::Median => "a value multiset",
                        }
                        .to_string(),
                    );
                }
                let roll = if p.tree { "tree" } else { "own rows" };
                (
                    p.parts.id.clone(),
                    format!("{} [{roll}]", kinds.join(" + ")),
                )
            })
            .collect()
    }
}

/// Builds (but does not run) the plan for one source; with `as_sql`, also its phase 1 as SQL.
pub(crate) fn plan_source(
    pipeline: &Pipeline,
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    files: Vec<InputFile>,
    as_sql: bool,
) -> Result<SourcePlan, ComputeError> {
    let name = source.name.get_ref().clone();
    let first_file = files.first().cloned();
    let rows = scan_source(source, tree, mapping, months, files)?;
    // The total reads the same rows as the breakdowns unless the source carries its own totals.
    let same_rows = source.total_rows.is_none();
    let defs: Vec<&IndicatorDef> = pipeline.indicators_of(&name).collect();
    let parts = indicator_parts(&defs, tree)?;
    let mut base = rows.usable.clone();
    if !parts.scopes.is_empty() {
        base = base.with_columns(parts.scopes.clone());
    }
    if !parts.filters.is_empty() {
        base = base.with_columns(parts.filters.clone());
    }
    let (total_rows, breakdown_rows) = total_and_breakdown_rows(source, base)?;

    let breakdowns: BTreeSet<String> = defs
        .iter()
        .flat_map(|d| d.breakdown.iter().map(|b| b.get_ref().clone()))
        .collect();
    let mut outputs = Outputs::default();
    let (layout, segment_outputs) = plan_segmentations(
        &parts,
        &breakdowns,
        months,
        tree.units().len(),
        (&total_rows, &breakdown_rows),
        same_rows,
        &mut outputs,
    );
    // With any two-phase indicator the first segmentation is the total, over every usable row
    // unless the source carries its own totals: its group-by also counts the rows.
    let counted =
        match layout.first() {
            Some(total) if same_rows && !parts.partial.is_empty() => {
                let (frame, dense) = Segmentation::new(None, months, tree.units().len())
                    .scalar_output(&total_rows, &total.members, &parts.partial, Some("__rows"));
                Some((total.scalars, frame, dense))
            }
            _ => None,
        };

    let direct_output = if parts.direct_defs.is_empty() {
        None
    } else {
        outputs.frames.push(
            direct::plan(&parts.direct_defs, total_rows, breakdown_rows, tree, months)
                .map_err(|(indicator, message)| ComputeError::Expression { indicator, message })?,
        );
        Some(outputs.frames.len() - 1)
    };

    let sql = as_sql.then(|| {
        sql_form(
            source,
            tree,
            mapping,
            parts.direct.first().map(|(id, _)| id.as_str()),
            first_file.as_ref(),
            parts.sql_filters,
            outputs.sql,
        )
    });

    Ok(SourcePlan {
        sql,
        source: name.clone(),
        indicators: defs.iter().map(|d| d.id.get_ref().clone()).collect(),
        direct: parts.direct,
        breakdowns: breakdowns.into_iter().collect(),
        segment_outputs,
        rows,
        outputs: outputs.frames,
        partial: parts.partial,
        layout,
        direct_output,
        counted,
        dense: outputs.dense,
        same_rows,
    })
}

/// Phase 1's outputs of every segmentation (the total, then each breakdown dimension) with
/// partial indicators in it: its scalar states and its distinct sets and value multisets,
/// planned over `total_rows` or `breakdown_rows` (`same_rows`: the two are the same rows).
/// Returns each segmentation's layout and, for `explain`, its name and its numbers of
/// indicators and of set outputs.
#[allow(clippy::type_complexity)] // the two lists `SourcePlan` keeps
fn plan_segmentations(
    parts: &IndicatorParts,
    breakdowns: &BTreeSet<String>,
    months: RunMonths,
    n_units: usize,
    (total_rows, breakdown_rows): (&LazyFrame, &LazyFrame),
    same_rows: bool,
    outputs: &mut Outputs,
) -> (Vec<SegmentLayout>, Vec<(String, usize, usize)>) {
    let mut segmentations: Vec<(Option<String>, Vec<usize>)> =
        vec![(None, (0..parts.partial.len()).collect())];
    for dim in breakdowns {
        let members = parts
            .partial_defs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.breakdown.iter().any(|b| b.get_ref() == dim))
            .map(|(i, _)| i)
            .collect();
        segmentations.push((Some(dim.clone()), members));
    }
    let mut layout = Vec::new();
    let mut segment_outputs = Vec::new();
    for (dim, members) in segmentations {
        if members.is_empty() {
            continue;
        }
        let rows = if dim.is_some() {
            breakdown_rows
        } else {
            total_rows
        };
        let segment = Segmentation::new(dim.clone(), months, n_units);
        let scalars = segment.plan_scalars(rows, &members, &parts.partial, outputs);
        let sets = segment.plan_sets(rows, &members, &parts.partial, outputs);
        segment_outputs.push((
            segment.name(),
            members.len(),
            outputs.frames.len() - scalars - 1,
        ));
        layout.push(SegmentLayout {
            dim,
            members,
            scalars,
            sets,
        });
    }
    if same_rows {
        total_sets_from_breakdowns(&mut layout, &mut segment_outputs, outputs);
    }
    (layout, segment_outputs)
}

/// Points the total's distinct sets at a breakdown's set of the same rows and value where there
/// is one: counted with its segments ignored, it is the total's set (a breakdown keeps every
/// row, a missing value as a segment of its own), so the values are looked up and kept once
/// instead of twice. A total output left with no set is not computed. Only when the total and
/// the breakdowns read the same rows (no `total_rows`).
fn total_sets_from_breakdowns(
    layout: &mut [SegmentLayout],
    segment_outputs: &mut [(String, usize, usize)],
    outputs: &mut Outputs,
) {
    let Some((total, breakdowns)) = layout.split_first_mut() else {
        return;
    };
    if total.dim.is_some() {
        return;
    }
    let distinct = |at: usize| match &outputs.sql[at] {
        sql::SqlOutput::Distinct { dim, mask, columns } => Some((dim.as_deref(), mask, columns)),
        _ => None,
    };
    let mut moved = BTreeSet::new();
    let mut from = BTreeSet::new();
    for (_, at, column) in total.sets.iter_mut() {
        let Some((None, mask, columns)) = distinct(*at) else {
            continue;
        };
        let Some((_, value)) = columns.iter().find(|(c, _)| c == column) else {
            continue;
        };
        let shared = breakdowns.iter().find_map(|b| {
            b.sets.iter().find_map(|(_, other, other_column)| {
                let (Some(dim), other_mask, other_columns) = distinct(*other)? else {
                    return None;
                };
                let same = other_mask == mask
                    && other_columns
                        .iter()
                        .any(|(c, e)| c == other_column && e == value);
                same.then(|| (*other, other_column.clone(), dim.to_string()))
            })
        });
        if let Some((other, other_column, dim)) = shared {
            moved.insert(*at);
            from.insert(dim);
            *at = other;
            *column = other_column;
        }
    }
    let still_used: BTreeSet<usize> = total.sets.iter().map(|(_, at, _)| *at).collect();
    let unused: Vec<usize> = moved.difference(&still_used).copied().collect();
    for &at in &unused {
        outputs.frames[at] = DataFrame::empty().lazy();
        if let sql::SqlOutput::Distinct { columns, .. } = &mut outputs.sql[at] {
            columns.clear();
        }
    }
    if let Some((label, _, sets)) = segment_outputs.first_mut()
        && !from.is_empty()
    {
        *sets -= unused.len();
        let from: Vec<String> = from.into_iter().map(|d| format!("by {d}")).collect();
        label.push_str(&format!(
            " (its distinct counts from the sets {})",
            from.join(", ")
        ));
    }
}

/// A source's indicators taken apart: each one's row filter (scope and `filter`) as a column,
/// and its partial states, or why it is computed directly from rows.
struct IndicatorParts<'a> {
    partial: Vec<PartialIndicator>,
    /// The definitions of `partial`, in the same order.
    partial_defs: Vec<&'a IndicatorDef>,
    /// Indicators computed directly, with the reason.
    direct: Vec<(String, String)>,
    direct_defs: Vec<(usize, &'a IndicatorDef)>,
    /// `__scope_<k>` columns: one per distinct set of scope units, shared by the indicators
    /// with that scope (it is a lookup on every row, so it is done once).
    scopes: Vec<Expr>,
    /// `__filter_<slot>` columns of the indicators that select rows (using `scopes`).
    filters: Vec<Expr>,
    /// The same filters in parts, for the SQL printer: column, `filter`, scope units.
    sql_filters: Vec<(String, Option<Expr>, Option<Vec<u32>>)>,
}

fn indicator_parts<'a>(
    defs: &[&'a IndicatorDef],
    tree: &OrgTree,
) -> Result<IndicatorParts<'a>, ComputeError> {
    let expression_err = |ind: &IndicatorDef, message: String| ComputeError::Expression {
        indicator: ind.id.get_ref().clone(),
        message,
    };
    let mut parts = IndicatorParts {
        partial: Vec::new(),
        partial_defs: Vec::new(),
        direct: Vec::new(),
        direct_defs: Vec::new(),
        scopes: Vec::new(),
        filters: Vec::new(),
        sql_filters: Vec::new(),
    };
    let mut scope_columns: BTreeMap<Vec<u32>, String> = BTreeMap::new();
    for (slot, &ind) in defs.iter().enumerate() {
        let filter = match &ind.filter {
            Some(f) => Some(
                crate::definitions::compile_sql_expr(f.get_ref())
                    .map_err(|m| expression_err(ind, m))?,
            ),
            None => None,
        };
        let units = ind
            .scope
            .as_ref()
            .map(|s| scope_units(tree, &s.get_ref().roots()));
        let scope = units.as_ref().map(|u| {
            let next = scope_columns.len();
            col(scope_columns
                .entry(u.clone())
                .or_insert_with(|| format!("__scope_{next}"))
                .as_str())
        });
        let condition = match (filter.clone().map(|f| f.fill_null(lit(false))), scope) {
            (Some(f), Some(s)) => Some(s.and(f)),
            (f, s) => f.or(s),
        };
        if let Some(cond) = condition {
            parts.filters.push(cond.alias(format!("__filter_{slot}")));
            parts
                .sql_filters
                .push((format!("__filter_{slot}"), filter, units));
        }
        match decompose(ind, slot).map_err(|m| expression_err(ind, m))? {
            Ok(decomposed) => {
                parts.partial.push(PartialIndicator {
                    parts: decomposed,
                    grains: partial_grains(ind),
                    tree: ind.rollup == Rollup::Rows,
                });
                parts.partial_defs.push(ind);
            }
            Err(why) => {
                parts.direct.push((ind.id.get_ref().clone(), why));
                parts.direct_defs.push((slot, ind));
            }
        }
    }
    parts.scopes = scope_columns
        .into_iter()
        .map(|(units, name)| in_scope(tree, &units).alias(name))
        .collect();
    Ok(parts)
}

/// The rows of the total segment and of the breakdowns: the same rows, except for sources that
/// carry their own totals (Kolada's gender T), where the total is those rows and the
/// breakdowns are the others.
fn total_and_breakdown_rows(
    source: &SourceDef,
    base: LazyFrame,
) -> Result<(LazyFrame, LazyFrame), ComputeError> {
    let Some(t) = &source.total_rows else {
        return Ok((base.clone(), base));
    };
    let cond = crate::definitions::compile_sql_expr(t.get_ref())
        .map_err(|message| ComputeError::Polars {
            source_name: source.name.get_ref().clone(),
            message,
        })?
        .fill_null(lit(false));
    Ok((base.clone().filter(cond.clone()), base.filter(cond.not())))
}

/// Phase-1 outputs of a source as they are planned: polars frames and, beside each, its SQL
/// form (the direct path's frame, last, has none).
#[derive(Default)]
struct Outputs {
    frames: Vec<LazyFrame>,
    sql: Vec<sql::SqlOutput>,
    /// The scalar outputs' and medians' dense accumulations, by position in `frames`.
    dense: BTreeMap<usize, dense::Dense>,
}

/// One segmentation of a source's rows: the total, or by one breakdown column.
#[derive(Clone)]
struct Segmentation {
    dim: Option<String>,
    /// `__cell` (unit and month in one integer) and the breakdown column.
    keys: Vec<Expr>,
    months: RunMonths,
    /// Units in the org tree: `__cell` is below units × months.
    n_units: usize,
    /// The `__segment` label of a row.
    label: Expr,
}

impl Segmentation {
    fn new(dim: Option<String>, months: RunMonths, n_units: usize) -> Segmentation {
        // Unit and month grouped as one integer: polars hashes a single integer key directly,
        // where two keys are first encoded into a row of bytes each.
        let n_months = Self::n_months(months);
        let cell = (col("__unit").cast(DataType::UInt32) * lit(n_months)
            + (col("__month") - lit(months.first.0)).cast(DataType::UInt32))
        .alias("__cell");
        let mut keys = vec![cell];
        let label = match &dim {
            Some(d) => {
                keys.push(col(d.as_str()));
                segment_label(d)
            }
            None => lit("total"),
        };
        Segmentation {
            dim,
            keys,
            months,
            n_units,
            label,
        }
    }

    fn n_months(months: RunMonths) -> u32 {
        (months.last.0 - months.first.0 + 1) as u32
    }

    /// `total` or `by <dim>`, as `explain` prints it.
    fn name(&self) -> String {
        match &self.dim {
            Some(d) => format!("by {d}"),
            None => "total".to_string(),
        }
    }

    /// A grouped frame's `__unit, __month, __segment` and `extra` columns.
    fn labelled(&self, lf: LazyFrame, extra: &[&str]) -> LazyFrame {
        let n_months = Self::n_months(self.months);
        let mut out = vec![
            col("__cell")
                .floor_div(lit(n_months))
                .cast(DataType::UInt32)
                .alias("__unit"),
            ((col("__cell") % lit(n_months)).cast(DataType::Int32) + lit(self.months.first.0))
                .alias("__month"),
            self.label.clone().alias("__segment"),
        ];
        out.extend(extra.iter().map(|c| col(*c)));
        lf.select(out)
    }

    /// Every scalar state of the members in one group-by; returns its output's position.
    fn plan_scalars(
        &self,
        rows: &LazyFrame,
        members: &[usize],
        partial: &[PartialIndicator],
        outputs: &mut Outputs,
    ) -> usize {
        let states = || {
            members
                .iter()
                .flat_map(|&i| partial[i].parts.scalars.iter())
        };
        let (frame, dense) = self.scalar_output(rows, members, partial, None);
        outputs.frames.push(frame);
        outputs
            .dense
            .insert(outputs.frames.len() - 1, dense::Dense::Scalars(dense));
        outputs.sql.push(sql::SqlOutput::Scalars {
            dim: self.dim.clone(),
            states: states().map(|s| (s.name.clone(), s.row.clone())).collect(),
        });
        outputs.frames.len() - 1
    }

    /// The members' scalar states grouped per unit, month and segment, with a count of every
    /// row named `count_rows` after them if asked: as polars' group-by, and the same states
    /// accumulated in dense arrays (`dense`), which runs in its place on the streaming engine.
    fn scalar_output(
        &self,
        rows: &LazyFrame,
        members: &[usize],
        partial: &[PartialIndicator],
        count_rows: Option<&str>,
    ) -> (LazyFrame, dense::DenseScalars) {
        let scalars = members
            .iter()
            .flat_map(|&i| partial[i].parts.scalars.iter());
        let mut states: Vec<(String, sql::RowAgg)> = scalars
            .clone()
            .map(|s| (s.name.clone(), s.row.clone()))
            .collect();
        let mut aggs: Vec<Expr> = scalars.map(|s| s.agg.clone()).collect();
        if let Some(name) = count_rows {
            states.push((name.to_string(), sql::RowAgg::Rows));
            aggs.push(len().cast(DataType::Int64).alias(name));
        }
        let names: Vec<String> = states.iter().map(|(name, _)| name.clone()).collect();
        let grouped = rows.clone().group_by(self.keys.clone()).agg(aggs);
        let segment = self.clone();
        let then = move |grouped: LazyFrame| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            segment.labelled(grouped, &names)
        };
        let frame = then.clone()(grouped.clone());
        let dense = dense::DenseScalars {
            rows: rows.clone(),
            cell: self.keys[0].clone(),
            dim: self.dim.clone(),
            states,
            n_cells: (Self::n_months(self.months) as usize) * self.n_units,
            grouped,
            then: Box::new(then),
        };
        (frame, dense)
    }

    /// The outputs of the members' set states; per set state, its output and value column.
    /// Distinct sets with the same row filter share one output (one column of value ids each),
    /// so headcount, its average and the permanent share read the employees of a month once.
    /// Identical sets share a column. Medians keep their own outputs: values with
    /// multiplicities.
    fn plan_sets(
        &self,
        rows: &LazyFrame,
        members: &[usize],
        partial: &[PartialIndicator],
        outputs: &mut Outputs,
    ) -> Vec<(String, usize, String)> {
        enum SetAt {
            /// Column `column` of the shared distinct output of the rows passing `mask`.
            Distinct {
                mask: Option<String>,
                column: String,
            },
            /// Column `__v` of output `at`.
            Output(usize),
        }
        let mut names = Vec::new();
        let mut distinct_groups: BTreeMap<Option<String>, Vec<(String, Expr)>> = BTreeMap::new();
        let mut shared: BTreeMap<String, usize> = BTreeMap::new();
        let mut located: Vec<SetAt> = Vec::new();
        for set in members.iter().flat_map(|&i| partial[i].parts.sets.iter()) {
            names.push(set.name.clone());
            let key = format!("{:?}|{:?}|{:?}", set.kind, set.value, set.mask);
            if let Some(&same) = shared.get(&key) {
                let at = match &located[same] {
                    SetAt::Distinct { mask, column } => SetAt::Distinct {
                        mask: mask.clone(),
                        column: column.clone(),
                    },
                    SetAt::Output(at) => SetAt::Output(*at),
                };
                located.push(at);
                continue;
            }
            shared.insert(key, located.len());
            if set.kind == SetKind::Distinct {
                let group = distinct_groups.entry(set.mask.clone()).or_default();
                let column = format!("__v{}", group.len());
                group.push((column.clone(), set.value.clone()));
                located.push(SetAt::Distinct {
                    mask: set.mask.clone(),
                    column,
                });
                continue;
            }
            let (frame, dense) = self.median_output(rows, set);
            outputs.frames.push(frame);
            outputs
                .dense
                .insert(outputs.frames.len() - 1, dense::Dense::Multiset(dense));
            outputs.sql.push(sql::SqlOutput::Median {
                dim: self.dim.clone(),
                mask: set.mask.clone(),
                value: set.value.clone(),
            });
            located.push(SetAt::Output(outputs.frames.len() - 1));
        }
        let mut group_at: BTreeMap<Option<String>, usize> = BTreeMap::new();
        for (mask, columns) in &distinct_groups {
            outputs
                .frames
                .push(self.distinct_output(rows, mask.as_deref(), columns));
            outputs.sql.push(sql::SqlOutput::Distinct {
                dim: self.dim.clone(),
                mask: mask.clone(),
                columns: columns.clone(),
            });
            group_at.insert(mask.clone(), outputs.frames.len() - 1);
        }
        names
            .into_iter()
            .zip(located)
            .map(|(name, at)| match at {
                SetAt::Distinct { mask, column } => (name, group_at[&mask], column),
                SetAt::Output(at) => (name, at, "__v".to_string()),
            })
            .collect()
    }

    /// A median's value multiset: `__unit, __month, __segment, __v, __w` (value, multiplicity),
    /// as polars' group-by, and the same counted in a hash map (`dense`), which runs in its place
    /// on the streaming engine.
    fn median_output(
        &self,
        rows: &LazyFrame,
        set: &partial::SetState,
    ) -> (LazyFrame, dense::DenseMultiset) {
        let picked = match &set.mask {
            Some(m) => rows.clone().filter(col(m.as_str())),
            None => rows.clone(),
        }
        .filter(set.value.clone().is_not_null());
        let mut keys = self.keys.clone();
        keys.push(set.value.clone().alias("__v"));
        let grouped = picked
            .group_by(keys)
            .agg([len().cast(DataType::Int64).alias("__w")]);
        let segment = self.clone();
        let then = move |grouped: LazyFrame| segment.labelled(grouped, &["__v", "__w"]);
        let frame = then.clone()(grouped.clone());
        let dense = dense::DenseMultiset {
            rows: rows.clone(),
            cell: self.keys[0].clone(),
            dim: self.dim.clone(),
            mask: set.mask.clone(),
            value: set.value.clone(),
            n_cells: (Self::n_months(self.months) as usize) * self.n_units,
            grouped,
            then: Box::new(then),
        };
        (frame, dense)
    }

    /// The distinct sets of the rows passing `mask`: `__unit, __month, [__segment,]` and one
    /// column of value ids per set.
    fn distinct_output(
        &self,
        rows: &LazyFrame,
        mask: Option<&str>,
        columns: &[(String, Expr)],
    ) -> LazyFrame {
        let picked = match mask {
            Some(m) => rows.clone().filter(col(m)),
            None => rows.clone(),
        };
        // No group-by: the rows' (unit, month, segment, value ids) go straight out, 16 bytes a
        // row, and phase 2's walks pass over duplicates. A streaming group-by
        // would keep a hash entry of ~150 bytes per distinct key instead: it only pays off
        // when a value repeats more than ten times per unit and month.
        let mut out = vec![col("__unit"), col("__month")];
        if let Some(d) = &self.dim {
            // The breakdown's value as text (as in its label); phase 2 labels each value once.
            out.push(col(d.as_str()).cast(DataType::String).alias("__segment"));
        }
        // Values become dense integer ids on the way in (one dictionary per value column),
        // so phase 2 marks them in a dense array instead of hashing text. A set of
        // `case when c then x end` beside a set of `x` (the permanent employees beside all
        // employees) takes x's ids where c holds: one dictionary look-up per row instead of two,
        // and no text copied.
        let mut plain = Vec::new();
        for (c, e) in columns {
            let base = subset_of(e).and_then(|(cond, x)| {
                columns
                    .iter()
                    .find(|(_, other)| other == x && subset_of(other).is_none())
                    .map(|(other, _)| (cond, other))
            });
            match base {
                Some((cond, other)) => out.push(
                    when(cond.clone())
                        .then(col(other.as_str()))
                        .otherwise(lit(NULL).cast(DataType::UInt32))
                        .alias(c.as_str()),
                ),
                None => {
                    let dictionary = Arc::new(ValueIds::default());
                    plain.push(
                        e.clone()
                            .map(
                                move |v| dictionary.ids(&v),
                                |_, f| Ok(Field::new(f.name().clone(), DataType::UInt32)),
                            )
                            .alias(c.as_str()),
                    );
                    out.push(col(c.as_str()));
                }
            }
        }
        // The plain sets' ids first; the subsets' are taken from them.
        picked.with_columns(plain).select(out)
    }
}

/// `case when c then x end` (no `else`) as `(c, x)`.
fn subset_of(e: &Expr) -> Option<(&Expr, &Expr)> {
    let Expr::Ternary {
        predicate,
        truthy,
        falsy,
    } = e
    else {
        return None;
    };
    let null = match falsy.as_ref() {
        Expr::Cast { expr, .. } => expr.as_ref(),
        other => other,
    };
    let is_null = matches!(null, Expr::Literal(value) if value.is_null());
    is_null.then_some((predicate.as_ref(), truthy.as_ref()))
}

/// Phase 1 of a source as SQL, or why it stays on polars: CSV, Excel and Kolada JSON sources
/// (their text checks are styrkort's own), `total_rows`, an indicator with no mergeable state
/// (`direct`), or an expression the SQL printer does not know.
fn sql_form(
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    direct: Option<&str>,
    first_file: Option<&InputFile>,
    filters: Vec<(String, Option<Expr>, Option<Vec<u32>>)>,
    outputs: Vec<sql::SqlOutput>,
) -> Result<sql::SqlSource, String> {
    use crate::definitions::SourceFormat;
    let format = match source.format {
        SourceFormat::Parquet => None,
        SourceFormat::Csv => Some("CSV"),
        SourceFormat::KoladaJson => Some("Kolada JSON"),
        SourceFormat::Xlsx => Some("Excel"),
    };
    if let Some(format) = format {
        // Their text checks (decimal commas, date formats, line numbers) are styrkort's own.
        return Err(format!("{format} sources are read by polars"));
    }
    if source.total_rows.is_some() {
        return Err("a source with total_rows is read by polars".to_string());
    }
    if let Some(id) = direct {
        return Err(format!(
            "indicator '{id}' has no mergeable state; its source is read by polars"
        ));
    }
    let file = first_file.ok_or("no file")?;
    let checks = crate::ingest::parquet_row_checks(source, file).map_err(|e| e.to_string())?;
    let sql = sql::SqlSource {
        typed: checks.typed,
        why: checks.why,
        org_column: source.org_column.get_ref().clone(),
        date_column: source.date_column.get_ref().clone(),
        codes: crate::ingest::unit_codes(source, tree, mapping),
        filters,
        outputs,
    };
    // Every expression must print; the statements are written again when they run.
    sql.statements("t")
        .map_err(|what| format!("{what} has no SQL form here; read by polars"))?;
    Ok(sql)
}

/// Runs every source's plan, small sources side by side and large ones one at a time; each
/// source's outputs come from one execution so its files are scanned once.
pub(crate) fn run_sources(
    pipeline: &Pipeline,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    inputs: &BTreeMap<String, Vec<InputFile>>,
    phase1: &Phase1,
    on_source_done: &(dyn Fn(&str) + Sync),
) -> Result<Vec<SourceResult>, ComputeError> {
    let parent = tracing::Span::current();
    let compute_one = |source: &SourceDef| {
        // Worker threads do not inherit the caller's span; enter it so every log line of a
        // source carries the run id.
        let _run = parent.enter();
        let files = inputs
            .get(source.name.get_ref())
            .cloned()
            .unwrap_or_default();
        let plan = plan_source(
            pipeline,
            source,
            tree,
            mapping,
            months,
            files,
            phase1.engine.is_sql(),
        )?;
        let result = execute(plan, source, tree, mapping, months, phase1);
        on_source_done(source.name.get_ref());
        result
    };
    let sources = &pipeline.def.sources;
    let rows = |s: &SourceDef| -> u64 {
        let files = inputs.get(s.name.get_ref());
        files.into_iter().flatten().map(|f| f.rows).sum()
    };
    // Small sources run side by side: their fixed costs (planning, starting a query, the
    // roll-up's joins) outweigh their rows, and they keep no core busy on their own. Large ones
    // run one at a time: polars already runs each scan on every core, and side by side their
    // memory peaks would add up. `STYRKORT_PARALLEL_SOURCES=1` runs all side by side, `=0` all
    // one at a time. A SQL engine blocks on its async runtime for each answer, and a worker
    // thread waiting there could start another source's query inside it (tokio refuses): on a
    // SQL engine, sources always run one at a time.
    let small: Vec<bool> = match std::env::var("STYRKORT_PARALLEL_SOURCES").as_deref() {
        _ if phase1.engine.is_sql() => vec![false; sources.len()],
        Ok("1") => vec![true; sources.len()],
        Ok("0") => vec![false; sources.len()],
        _ => sources
            .iter()
            .map(|s| rows(s) < SMALL_SOURCE_ROWS)
            .collect(),
    };
    let mut results: Vec<Option<Result<SourceResult, ComputeError>>> =
        (0..sources.len()).map(|_| None).collect();
    let small_results: Vec<(usize, Result<SourceResult, ComputeError>)> = sources
        .par_iter()
        .enumerate()
        .filter(|(i, _)| small[*i])
        .map(|(i, s)| (i, compute_one(s)))
        .collect();
    for (i, r) in small_results {
        results[i] = Some(r);
    }
    for (i, s) in sources.iter().enumerate().filter(|(i, _)| !small[*i]) {
        // The run fails with the first failing source in the pipeline's order, as when every
        // source ran in turn: no large source after it needs to run.
        if results[..i].iter().any(|r| matches!(r, Some(Err(_)))) {
            break;
        }
        results[i] = Some(compute_one(s));
    }
    let mut computed = Vec::with_capacity(sources.len());
    for r in results {
        computed.push(r.expect("sources before the first failure were computed")?);
    }
    Ok(computed)
}

/// Sources with fewer input rows than this run side by side with each other (see
/// `run_sources`). At this size a source's memory peak is tens of megabytes.
const SMALL_SOURCE_ROWS: u64 = 250_000;

/// The polars engine phase 1 runs on: streaming (bounded memory) unless
/// `STYRKORT_ENGINE=in-memory` asks for polars' in-memory engine (for benchmarking the two).
fn phase1_engine() -> polars::prelude::Engine {
    match std::env::var("STYRKORT_ENGINE").as_deref() {
        Ok("in-memory") => polars::prelude::Engine::InMemory,
        _ => polars::prelude::Engine::Streaming,
    }
}

/// Phase 1's frames of a source: one per output, the rejected rows, usable rows per month, and
/// (from a SQL engine) each distinct column's answer by `(output, column)`.
type Phase1Frames = (
    Vec<DataFrame>,
    DataFrame,
    DataFrame,
    BTreeMap<(usize, String), DataFrame>,
);

/// Phase 1 on polars: every output, then the rejected rows and the rows per month (the last two
/// plans), from one execution (one scan of the files). `why` says why a SQL engine was not used,
/// if one was asked for.
fn phase1_on_polars(
    source: &str,
    plans: Vec<LazyFrame>,
    files: &[InputFile],
    why: Option<&str>,
) -> Result<Phase1Frames, ComputeError> {
    let polars_err = |e: PolarsError| ComputeError::Polars {
        source_name: source.to_string(),
        message: e.to_string(),
    };
    // An object's stand-in has its schema and no rows: polars would compute nothing.
    if let Some(file) = files.iter().find(|f| f.object.is_some()) {
        let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
        return Err(ComputeError::Polars {
            source_name: source.to_string(),
            message: format!(
                "{} is in an object store and only the SQL engines read there, but this source runs on polars{why}; run with --engine datafusion or ballista://host:port",
                file.display
            ),
        });
    }
    let frames: Vec<DslPlan> = plans.into_iter().map(|lf| lf.logical_plan).collect();
    let mut out = LazyFrame::collect_all_with_engine(frames, phase1_engine(), OptFlags::default())
        .map_err(polars_err)?;
    let per_month = out.pop().expect("collect_all returns one frame per plan");
    let rejected = out.pop().expect("collect_all returns one frame per plan");
    Ok((out, rejected, per_month, BTreeMap::new()))
}

/// Phase 1's answers from a SQL engine, with the rejected rows' messages made by the polars
/// checks (so they read as on the polars engine) and their count checked against the engine's.
fn phase1_from_sql(
    answers: SqlAnswers,
    source_def: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    rows: &SourceRows,
    engine: &Engine,
) -> Result<Phase1Frames, ComputeError> {
    let polars_err = |e: PolarsError| ComputeError::Polars {
        source_name: rows.name.clone(),
        message: e.to_string(),
    };
    let rejected = match answers.rejected {
        // The rejected rows' messages come from the polars checks, so they read as
        // on the polars engine.
        Some(raw) => checked_rows(source_def, tree, mapping, months, rows.files.clone(), raw)?
            .rejected
            .collect()
            .map_err(polars_err)?,
        None => {
            let schema = rows.rejected.clone().collect_schema().map_err(polars_err)?;
            DataFrame::empty_with_schema(&schema)
        }
    };
    if rejected.height() as i64 != answers.rejected_count {
        return Err(ComputeError::Polars {
            source_name: rows.name.clone(),
            message: format!(
                "engine {}: {} rows rejected by its checks, {} by polars' checks of the same rows",
                engine,
                answers.rejected_count,
                rejected.height()
            ),
        });
    }
    let out = answers
        .outputs
        .into_iter()
        .map(|f| f.unwrap_or_default())
        .collect();
    Ok((out, rejected, answers.month_rows, answers.distinct))
}

fn execute(
    mut plan: SourcePlan,
    source_def: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    phase1: &Phase1,
) -> Result<SourceResult, ComputeError> {
    let source = plan.source.clone();
    let span = tracing::info_span!("source", source = %source);
    let _guard = span.enter();
    let polars_err = |e: PolarsError| ComputeError::Polars {
        source_name: source.clone(),
        message: e.to_string(),
    };
    let started = std::time::Instant::now();
    let n_outputs = plan.outputs.len();
    if let Some(Err(why)) = &plan.sql {
        tracing::info!(engine = "polars", why = %why, "source read by polars");
    }
    let (out, rejected, per_month, distinct) =
        run_phase1(&mut plan, source_def, tree, mapping, months, phase1)?;
    debug_assert_eq!(out.len(), n_outputs);
    let phase1_ms = started.elapsed().as_millis() as u64;
    let partial_rows: usize = out.iter().map(|f| f.height()).sum();

    let values = run_phase2(
        &plan.partial,
        plan.layout,
        plan.direct_output,
        &out,
        &distinct,
        tree,
        months,
    )
    .map_err(polars_err)?;
    let (month_rows, outside_months) = split_month_rows(&per_month, months).map_err(polars_err)?;
    tracing::info!(
        rows_read = plan.rows.files.iter().map(|f| f.rows).sum::<u64>(),
        rejected = rejected.height(),
        outside_months,
        latest_month = month_rows
            .last()
            .map(|(m, _)| m.label())
            .unwrap_or_default(),
        value_rows = values.height(),
        partial_rows,
        phase1_ms,
        ms = started.elapsed().as_millis() as u64,
        "source computed"
    );
    Ok(SourceResult {
        source,
        files: plan.rows.files,
        values,
        rejected,
        outside_months,
        month_rows,
    })
}

/// Phase 1 of a source: on the SQL engine when one was asked for and the source has an SQL
/// form, else on polars (then the plan's frames are moved out and run once).
fn run_phase1(
    plan: &mut SourcePlan,
    source_def: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    phase1: &Phase1,
) -> Result<Phase1Frames, ComputeError> {
    let polars_err = |e: PolarsError| ComputeError::Polars {
        source_name: plan.source.clone(),
        message: e.to_string(),
    };
    let expected: Vec<Schema> = match &plan.sql {
        Some(Ok(_)) => plan
            .outputs
            .iter()
            .map(|lf| lf.clone().collect_schema().map(|s| (*s).clone()))
            .collect::<PolarsResult<_>>()
            .map_err(polars_err)?,
        _ => Vec::new(),
    };
    let answers = phase1.answers(
        &plan.source,
        plan.sql.as_ref().and_then(|s| s.as_ref().ok()),
        &expected,
        &plan.rows.files,
        (months.first.0, months.last.0),
    );
    match answers {
        None => {
            let why = match &plan.sql {
                Some(Err(why)) => Some(why.as_str()),
                _ => None,
            };
            // Moved, not cloned: the plans run once and are dropped with their frames.
            let mut plans = std::mem::take(&mut plan.outputs);
            plans.push(std::mem::take(&mut plan.rows.rejected));
            let counted = plan.counted.take();
            let mut dense = std::mem::take(&mut plan.dense);
            // Rows per month: from the total's group-by when it counts every usable row (one
            // group-by less over all rows), else on their own.
            match counted {
                Some((at, frame, dense_counted)) => {
                    plans[at] = frame;
                    dense.insert(at, dense::Dense::Scalars(dense_counted));
                    plans.push(std::mem::take(&mut plan.rows.outside_month_rows));
                    let pending =
                        start_dense(&mut plans, dense, plan.same_rows).map_err(polars_err)?;
                    let (mut out, rejected, outside, distinct) =
                        phase1_on_polars(&plan.source, plans, &plan.rows.files, why)?;
                    finish_dense(&mut out, pending).map_err(polars_err)?;
                    let per_month =
                        counted_month_rows(&mut out[at], outside).map_err(polars_err)?;
                    Ok((out, rejected, per_month, distinct))
                }
                None => {
                    plans.push(std::mem::take(&mut plan.rows.month_rows));
                    let pending =
                        start_dense(&mut plans, dense, plan.same_rows).map_err(polars_err)?;
                    let (mut out, rejected, per_month, distinct) =
                        phase1_on_polars(&plan.source, plans, &plan.rows.files, why)?;
                    finish_dense(&mut out, pending).map_err(polars_err)?;
                    Ok((out, rejected, per_month, distinct))
                }
            }
        }
        Some(answers) => {
            let answers = answers.map_err(|message| ComputeError::Polars {
                source_name: plan.source.clone(),
                message,
            })?;
            let rows = &plan.rows;
            phase1_from_sql(
                answers,
                source_def,
                tree,
                mapping,
                months,
                rows,
                &phase1.engine,
            )
        }
    }
}

/// Puts each dense accumulation (a scalar output's states, a median's multiset) in place of its
/// group-by in `plans`; returns them by position, to finish once the plans have run. When every
/// accumulation reads the same rows (`same_rows`), one sink feeds them all, in the first one's
/// place: the rows are filtered and handed over once, not once per output; the others' plans
/// become empty frames. None on polars' in-memory engine, or with `STYRKORT_DENSE=0` (the
/// group-bys then run, for measuring one against the other).
fn start_dense(
    plans: &mut [LazyFrame],
    dense: BTreeMap<usize, dense::Dense>,
    same_rows: bool,
) -> PolarsResult<Vec<(usize, dense::Pending)>> {
    let off = std::env::var("STYRKORT_DENSE").is_ok_and(|v| v == "0");
    if off || matches!(phase1_engine(), polars::prelude::Engine::InMemory) {
        return Ok(Vec::new());
    }
    let mut pending = Vec::new();
    if !same_rows {
        for (at, d) in dense {
            if let Some((sink, p)) = d.start()? {
                plans[at] = sink;
                pending.push((at, p));
            }
        }
        return Ok(pending);
    }
    let Some(rows) = dense.values().next().map(|d| d.rows().clone()) else {
        return Ok(pending);
    };
    let (at, list): (Vec<usize>, Vec<dense::Dense>) = dense.into_iter().unzip();
    let (mut sink, started) = dense::start_together(rows, list)?;
    for (at, p) in at.into_iter().zip(started) {
        let Some(p) = p else { continue };
        plans[at] = sink.take().unwrap_or_else(|| DataFrame::empty().lazy());
        pending.push((at, p));
    }
    Ok(pending)
}

/// The dense accumulations' frames, in place of the (empty) answers of their sinks.
fn finish_dense(out: &mut [DataFrame], pending: Vec<(usize, dense::Pending)>) -> PolarsResult<()> {
    for (at, p) in pending {
        out[at] = p.finish()?;
    }
    Ok(())
}

/// Phase 2 of a source: its partial states merged over the tree and periods, and the direct
/// path's cells beside them.
fn run_phase2(
    partial: &[PartialIndicator],
    layout: Vec<SegmentLayout>,
    direct_output: Option<usize>,
    out: &[DataFrame],
    distinct: &BTreeMap<(usize, String), DataFrame>,
    tree: &OrgTree,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let segments: Vec<SegmentPartials> = layout
        .into_iter()
        .map(|l| SegmentPartials {
            dim: l.dim,
            members: l.members,
            scalars: out[l.scalars].clone(),
            sets: l
                .sets
                .into_iter()
                .map(|(name, at, column)| {
                    // A SQL engine answers each distinct column on its own.
                    let frame = distinct
                        .get(&(at, column.clone()))
                        .cloned()
                        .unwrap_or_else(|| out[at].clone());
                    (name, (at, column, frame))
                })
                .collect(),
        })
        .collect();
    let mut values = if partial.is_empty() {
        None
    } else {
        Some(rollup::roll_up(partial, segments, tree, months)?)
    };
    if let Some(at) = direct_output {
        let direct = out[at].clone();
        values = Some(match values {
            Some(v) => v.vstack(&direct)?,
            None => direct,
        });
    }
    Ok(values.unwrap_or_else(finish::empty_raw))
}

/// `__month, rows` of every usable row: the run's months summed from the total's `__rows`
/// (taken out of `scalars`, which is then as planned), the others from `outside`.
fn counted_month_rows(scalars: &mut DataFrame, outside: DataFrame) -> PolarsResult<DataFrame> {
    let inside = scalars
        .select(["__month", "__rows"])?
        .lazy()
        .group_by([col("__month")])
        .agg([col("__rows").sum().alias("rows")])
        .collect()?;
    scalars.drop_in_place("__rows")?;
    inside.vstack(&outside)
}

/// The run's months with their row counts (ascending), and the rows of all other months.
fn split_month_rows(
    per_month: &DataFrame,
    months: RunMonths,
) -> PolarsResult<(Vec<(Month, i64)>, i64)> {
    let month = per_month.column("__month")?.i32()?;
    let rows = per_month.column("rows")?.i64()?;
    let mut inside = Vec::new();
    let mut outside = 0;
    for (m, n) in month.iter().zip(rows.iter()) {
        let (Some(m), Some(n)) = (m, n) else { continue };
        if m >= months.first.0 && m <= months.last.0 {
            inside.push((Month(m), n));
        } else {
            outside += n;
        }
    }
    inside.sort();
    Ok((inside, outside))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids name values one to one: equal values get equal ids, different values different ids,
    /// nulls stay null. Checked against the texts themselves, over chunks arriving one after
    /// another, with short (inline) and long values, runs of one value, and a value repeated
    /// across a null (its id is the last valid row's, not the null's slot).
    #[test]
    fn value_ids_are_one_to_one_with_the_values() {
        let long = "a value longer than twelve bytes";
        let chunks: Vec<Vec<Option<String>>> = vec![
            vec![
                Some("a"),
                None,
                Some("a"),
                Some("b"),
                Some("b"),
                Some(long),
                None,
            ]
            .into_iter()
            .map(|v| v.map(str::to_string))
            .collect(),
            vec![Some(long), Some("a"), None, None, Some("c"), Some("b")]
                .into_iter()
                .map(|v| v.map(str::to_string))
                .collect(),
            // Many values, so that every shard holds several.
            (0..2000).map(|k| Some(format!("v{}", k % 700))).collect(),
        ];
        let dictionary = ValueIds::default();
        let mut seen: Vec<(Option<String>, Option<u32>)> = Vec::new();
        for chunk in &chunks {
            let column = Column::new("x".into(), chunk.clone());
            let ids = dictionary.ids(&column).unwrap();
            let ids: Vec<Option<u32>> = ids.u32().unwrap().iter().collect();
            seen.extend(chunk.iter().cloned().zip(ids));
        }
        for (value, id) in &seen {
            assert_eq!(value.is_none(), id.is_none(), "{value:?} → {id:?}");
        }
        for (a, id_a) in seen.iter().filter(|(v, _)| v.is_some()) {
            for (b, id_b) in seen.iter().filter(|(v, _)| v.is_some()) {
                assert_eq!(a == b, id_a == id_b, "{a:?} → {id_a:?}, {b:?} → {id_b:?}");
            }
        }
    }
}
