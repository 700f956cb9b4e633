//! Indicator values for every unit, level, period and segment.
//!
//! Per source, one fused lazy plan: usable rows are joined to their ancestors (so a row counts for
//! its unit and every unit above it) and to the periods their month belongs to (so one row feeds
//! its month, quarter, tertial, year and every year-to-date it falls in); then one group-by per
//! segmentation computes every indicator's numerator and denominator side by side. A parent's
//! value is therefore always computed from the rows beneath it — a ratio of sums, and medians or
//! distinct counts over the parent's own rows — never combined from its children's values.
//! Sources run in parallel; `finish` then fills the unit × period grid and computes values.

mod expr;
mod finish;

pub use expr::{IndicatorAggs, compile_indicator, restrict_to};
pub use finish::{IndicatorRules, finish_values};

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use rayon::prelude::*;

use crate::definitions::{IndicatorDef, Pipeline, SourceDef};
use crate::ingest::{IngestError, InputFile, SourceRows, scan_source};
use crate::org::{CodeMapping, OrgTree};
use crate::period::{Grain, RunMonths};

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

/// The fused plan for one source.
pub struct SourcePlan {
    pub source: String,
    /// Indicators computed by this plan, in definition order.
    pub indicators: Vec<String>,
    /// Breakdown columns, each adding one more group-by beside the total.
    pub breakdowns: Vec<String>,
    pub rows: SourceRows,
    /// Long format: `indicator_id, org_unit_id, grain, period, segment, numerator, denominator,
    /// n_rows`; only cells with rows (the grid is filled later).
    pub values: LazyFrame,
}

/// What one source's execution produced.
pub struct SourceResult {
    pub source: String,
    pub files: Vec<InputFile>,
    pub values: DataFrame,
    pub rejected: DataFrame,
    pub outside_months: i64,
}

/// The grains a set of indicators needs computed from rows. Stock measures need months, from
/// which their coarser periods are formed.
pub fn grains_needed<'a>(indicators: impl Iterator<Item = &'a IndicatorDef>) -> Vec<Grain> {
    let mut set = BTreeSet::new();
    for ind in indicators {
        set.extend(ind.grains.get_ref().iter().copied());
        if ind.stock.is_some() {
            set.insert(Grain::Month);
        }
    }
    set.into_iter().collect()
}

/// Builds (but does not run) the fused plan for one source.
pub fn plan_source(
    pipeline: &Pipeline,
    source: &SourceDef,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    files: Vec<InputFile>,
) -> Result<SourcePlan, ComputeError> {
    let name = source.name.get_ref().clone();
    let polars_err = |e: PolarsError| ComputeError::Polars {
        source_name: name.clone(),
        message: e.to_string(),
    };
    let rows = scan_source(source, tree, mapping, months, files)?;
    let defs: Vec<&IndicatorDef> = pipeline.indicators_of(&name).collect();
    let aggs: Vec<IndicatorAggs> = defs
        .iter()
        .enumerate()
        .map(|(slot, ind)| {
            compile_indicator(ind, slot).map_err(|message| ComputeError::Expression {
                indicator: ind.id.get_ref().clone(),
                message,
            })
        })
        .collect::<Result<_, _>>()?;

    let mut base = rows.usable.clone();
    let filters: Vec<Expr> = aggs
        .iter()
        .filter_map(|a| {
            a.filter_column
                .as_ref()
                .map(|(n, e)| e.clone().alias(n.as_str()))
        })
        .collect();
    if !filters.is_empty() {
        base = base.with_columns(filters);
    }
    let grains = grains_needed(defs.iter().copied());
    let membership = months.membership_frame(&grains).map_err(polars_err)?;
    let ancestors = tree.ancestors_frame().map_err(polars_err)?;
    // Key columns get reserved names inside the plan, so a source may have its own `period`
    // (Kolada's tidy layout does) or `grain` column; they are renamed on the way out.
    let ancestors = ancestors
        .lazy()
        .select([col("__unit"), col("org_unit_id").alias("__org_unit")]);
    let membership = membership.lazy().select([
        col("__month"),
        col("grain").alias("__grain"),
        col("period").alias("__period"),
    ]);
    let mut exploded = base
        .join(
            ancestors,
            [col("__unit")],
            [col("__unit")],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            membership,
            [col("__month")],
            [col("__month")],
            JoinArgs::new(JoinType::Inner),
        );
    let own_masks: Vec<Expr> = aggs
        .iter()
        .filter_map(|a| {
            a.own_mask
                .as_ref()
                .map(|(n, e)| e.clone().alias(n.as_str()))
        })
        .collect();
    if !own_masks.is_empty() {
        exploded = exploded.with_columns(own_masks);
    }
    // Sources that carry their own totals (Kolada's gender T): the total segment is those rows,
    // the breakdowns are the others.
    let (total_rows, breakdown_rows) = match &source.total_rows {
        Some(t) => {
            let cond = crate::definitions::compile_sql_expr(t.get_ref())
                .map_err(|message| ComputeError::Polars {
                    source_name: name.clone(),
                    message,
                })?
                .fill_null(lit(false));
            (
                exploded.clone().filter(cond.clone()),
                exploded.clone().filter(cond.not()),
            )
        }
        None => (exploded.clone(), exploded.clone()),
    };

    let keys = || vec![col("__org_unit"), col("__grain"), col("__period")];
    let mut long = vec![grouped(
        total_rows,
        keys(),
        lit("total"),
        &aggs.iter().collect::<Vec<_>>(),
    )];
    let breakdowns: BTreeSet<String> = defs
        .iter()
        .flat_map(|d| d.breakdown.iter().map(|b| b.get_ref().clone()))
        .collect();
    for dim in &breakdowns {
        let members: Vec<&IndicatorAggs> = defs
            .iter()
            .zip(&aggs)
            .filter(|(d, _)| d.breakdown.iter().any(|b| b.get_ref() == dim))
            .map(|(_, a)| a)
            .collect();
        let mut by = keys();
        by.push(col(dim.as_str()));
        let segment = concat_str(
            [
                lit(format!("{dim}=")),
                col(dim.as_str())
                    .cast(DataType::String)
                    .fill_null(lit("(missing)")),
            ],
            "",
            false,
        );
        long.push(grouped(breakdown_rows.clone(), by, segment, &members));
    }
    let values = concat(long, UnionArgs::default()).map_err(polars_err)?;
    Ok(SourcePlan {
        source: name,
        indicators: aggs.into_iter().map(|a| a.id).collect(),
        breakdowns: breakdowns.into_iter().collect(),
        rows,
        values,
    })
}

/// One group-by computing every member indicator, unpivoted to one row per indicator.
fn grouped(rows: LazyFrame, by: Vec<Expr>, segment: Expr, members: &[&IndicatorAggs]) -> LazyFrame {
    let mut aggs = Vec::new();
    for a in members {
        aggs.push(a.numerator.clone());
        aggs.extend(a.denominator.clone());
        aggs.push(a.n_rows.clone());
    }
    let wide = rows
        .group_by(by)
        .agg(aggs)
        .with_column(segment.alias("segment"));
    let per_indicator: Vec<LazyFrame> = members
        .iter()
        .map(|a| {
            let out_name = |e: &Expr| {
                e.clone()
                    .meta()
                    .output_name()
                    .map(|n| n.to_string())
                    .expect("aggregations are aliased in compile_indicator")
            };
            wide.clone().select([
                lit(a.id.as_str()).alias("indicator_id"),
                col("__org_unit").alias("org_unit_id"),
                col("__grain").alias("grain"),
                col("__period").alias("period"),
                col("segment"),
                col(out_name(&a.numerator)).alias("numerator"),
                match &a.denominator {
                    Some(d) => col(out_name(d)),
                    None => lit(NULL).cast(DataType::Float64),
                }
                .alias("denominator"),
                col(out_name(&a.n_rows)).alias("n_rows"),
            ])
        })
        .collect();
    concat(per_indicator, UnionArgs::default()).expect("frames of identical schema concatenate")
}

/// Runs every source's plan, sources in parallel; each source's outputs come from one execution
/// so its files are scanned once.
pub fn run_sources(
    pipeline: &Pipeline,
    tree: &OrgTree,
    mapping: &CodeMapping,
    months: RunMonths,
    inputs: &BTreeMap<String, Vec<InputFile>>,
    on_source_done: &(dyn Fn(&str) + Sync),
) -> Result<Vec<SourceResult>, ComputeError> {
    let parent = tracing::Span::current();
    pipeline
        .def
        .sources
        .par_iter()
        .map(|source| {
            // Worker threads do not inherit the caller's span; enter it so every log line of a
            // source carries the run id.
            let _run = parent.enter();
            let files = inputs
                .get(source.name.get_ref())
                .cloned()
                .unwrap_or_default();
            let plan = plan_source(pipeline, source, tree, mapping, months, files)?;
            let result = execute(plan);
            on_source_done(source.name.get_ref());
            result
        })
        .collect()
}

fn execute(plan: SourcePlan) -> Result<SourceResult, ComputeError> {
    let source = plan.source.clone();
    let span = tracing::info_span!("source", source = %source);
    let _guard = span.enter();
    let started = std::time::Instant::now();
    let frames = vec![plan.values, plan.rows.rejected, plan.rows.outside_months];
    let mut out = LazyFrame::collect_all_with_engine(
        frames.into_iter().map(|lf| lf.logical_plan).collect(),
        Engine::InMemory,
        OptFlags::default(),
    )
    .map_err(|e| ComputeError::Polars {
        source_name: source.clone(),
        message: e.to_string(),
    })?
    .into_iter();
    let mut next = || out.next().expect("collect_all returns one frame per plan");
    let (values, rejected, outside) = (next(), next(), next());
    let outside_months = outside
        .column("rows")
        .ok()
        .and_then(|c| c.i64().ok().and_then(|c| c.get(0)))
        .unwrap_or(0);
    tracing::info!(
        value_rows = values.height(),
        rejected = rejected.height(),
        outside_months,
        ms = started.elapsed().as_millis() as u64,
        "source computed"
    );
    Ok(SourceResult {
        source,
        files: plan.rows.files,
        values,
        rejected,
        outside_months,
    })
}
