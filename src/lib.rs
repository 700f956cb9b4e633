//! styrkort: a municipality's operational data in, the follow-up of its goals out.
//!
//! The stages, in the order data moves through them:
//! [`definitions`] (the pipeline file) → [`ingest`] (sources to typed rows) → [`org`] (the tree and
//! code mapping) → [`compute`] (fused indicator plans and roll-up) → [`publish`] (tables, manifest,
//! atomic publish) → [`report`] (what people read). This file wires them into the operations the
//! CLI and tests use: [`load`], [`validate`], [`explain`] and [`run`].

pub mod assess;
pub mod compute;
pub mod definitions;
mod error;
pub mod generate;
pub mod ingest;
pub mod org;
pub mod period;
pub mod publish;
pub mod report;
mod run;

pub use error::Error;
pub use run::{RunOptions, RunOutcome, RunSummary, run, run_or_skip};

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use compute::plan_source;
use definitions::{Diagnostics, Pipeline};
use org::{CodeMapping, OrgTree};
use period::{Month, RunMonths};

/// A pipeline with its org tree and code mapping, all checked.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub tree: OrgTree,
    pub mapping: CodeMapping,
    pub targets: assess::Targets,
    pub actions: Vec<assess::Action>,
    pub groups: org::Groups,
}

/// Reads the pipeline file, org units and code mapping, and runs every check that needs no
/// source data. All problems come back together.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let pipeline = Pipeline::load(path).map_err(Error::Definitions)?;
    let units_path = pipeline.resolve(&pipeline.def.org.units);
    let tree = OrgTree::load(&units_path).map_err(Error::Definitions)?;
    let mapping = match &pipeline.def.org.code_mapping {
        Some(p) => CodeMapping::load(&pipeline.resolve(p), &tree).map_err(Error::Definitions)?,
        None => CodeMapping::default(),
    };
    let mut problems = Vec::new();
    for ind in &pipeline.def.indicators {
        if let Some(scope) = &ind.scope {
            for root in scope.get_ref().roots() {
                if !tree.contains(root) {
                    problems.push(pipeline.diag_at(
                        scope.span(),
                        format!("indicator '{}'", ind.id.get_ref()),
                        format!("scope '{root}' is not an org unit"),
                    ));
                }
            }
        }
    }
    for goal in &pipeline.def.goals {
        if !tree.contains(goal.owner.get_ref()) {
            problems.push(pipeline.diag_at(
                goal.owner.span(),
                format!("goal '{}'", goal.id.get_ref()),
                format!("owner '{}' is not an org unit", goal.owner.get_ref()),
            ));
        }
    }
    for source in &pipeline.def.sources {
        if source.org_codes == definitions::OrgCodes::Mapping
            && !mapping.has_source(source.name.get_ref())
        {
            problems.push(pipeline.diag_at(
                source.name.span(),
                format!("source '{}'", source.name.get_ref()),
                "org_codes = \"mapping\" but the code mapping has no entries for this source",
            ));
        }
    }
    let groups = match &pipeline.def.org.groups {
        Some(g) => org::Groups::load(&pipeline.resolve(g), &tree).map_err(Error::Definitions)?,
        None => org::Groups::default(),
    };
    let targets = match assess::Targets::load(&pipeline, &tree, &groups) {
        Ok(t) => t,
        Err(d) => {
            problems.extend(d.0);
            assess::Targets::default()
        }
    };
    let actions = match assess::load_actions(&pipeline, &tree) {
        Ok(a) => a,
        Err(d) => {
            problems.extend(d.0);
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(Error::Definitions(Diagnostics(problems)));
    }
    Ok(Loaded {
        pipeline,
        tree,
        mapping,
        targets,
        actions,
        groups,
    })
}

/// The as-of date to use: the one given, else the pipeline's default, else today.
pub fn resolve_as_of(pipeline: &Pipeline, given: Option<NaiveDate>) -> NaiveDate {
    given
        .or_else(|| {
            pipeline
                .def
                .periods
                .default_as_of
                .as_ref()
                .and_then(|d| NaiveDate::parse_from_str(d.get_ref(), "%Y-%m-%d").ok())
        })
        .unwrap_or_else(|| chrono::Local::now().date_naive())
}

/// The most months one run covers (100 years): more is a mistake in the dates, and would only
/// fill memory with empty periods.
pub const MAX_RUN_MONTHS: i32 = 1200;

fn run_months(pipeline: &Pipeline, as_of: NaiveDate) -> Result<RunMonths, Error> {
    let first = Month::parse(pipeline.def.periods.first.get_ref())
        .expect("periods.first is checked when the pipeline loads");
    let months = RunMonths::new(first, as_of).ok_or_else(|| {
        Error::Usage(format!(
            "as-of date {as_of} leaves no complete month at or after the first period {} (the last period is the last complete month before the as-of date)",
            first.label()
        ))
    })?;
    let n = months.last.0 - months.first.0 + 1;
    if n > MAX_RUN_MONTHS {
        return Err(Error::Usage(format!(
            "the run would cover {n} months ({} to {}), more than {MAX_RUN_MONTHS}: check --as-of and periods.first",
            months.first.label(),
            months.last.label()
        )));
    }
    Ok(months)
}

/// Every source's files, found, hashed and checked (sources in parallel).
pub fn expand_inputs(p: &Pipeline) -> Result<BTreeMap<String, Vec<ingest::InputFile>>, Error> {
    use rayon::prelude::*;
    p.def
        .sources
        .par_iter()
        .map(|s| {
            ingest::expand_source(p, s)
                .map(|files| (s.name.get_ref().clone(), files))
                .map_err(|e| Error::Compute(e.into()))
        })
        .collect()
}

/// What `validate` found beyond the definitions: each source's files, with headers checked.
pub struct Validation {
    pub sources: Vec<(String, Vec<String>)>,
    pub indicators: usize,
    pub goals: usize,
    pub units: usize,
}

/// Checks definitions, org tree, code mapping and every source's headers, computing nothing.
pub fn validate(path: &Path) -> Result<Validation, Error> {
    let loaded = load(path)?;
    let p = &loaded.pipeline;
    let months = run_months(p, resolve_as_of(p, None))?;
    let inputs = expand_inputs(p)?;
    // What `run` would refuse in an expression (a column outside any aggregate), said now.
    for (slot, ind) in p.def.indicators.iter().enumerate() {
        // Ok(Err(_)) is fine: such an indicator is computed the direct way.
        let _parts_or_direct = compute::decompose(ind, slot).map_err(|message| {
            Error::Compute(compute::ComputeError::Expression {
                indicator: ind.id.get_ref().clone(),
                message,
            })
        })?;
    }
    let mut sources = Vec::new();
    for source in &p.def.sources {
        let files = inputs[source.name.get_ref()].clone();
        // Building the scan reads each file's header and checks the declared columns.
        let rows = ingest::scan_source(source, &loaded.tree, &loaded.mapping, months, files)
            .map_err(|e| Error::Compute(e.into()))?;
        sources.push((
            source.name.get_ref().clone(),
            rows.files.iter().map(|f| f.display.clone()).collect(),
        ));
    }
    Ok(Validation {
        sources,
        indicators: p.def.indicators.len(),
        goals: p.def.goals.len(),
        units: loaded.tree.units().len(),
    })
}

/// Per source: how its indicators are computed in two phases, and (with `verbose`) the
/// optimised polars plan of its one fused scan.
pub fn explain(
    path: &Path,
    as_of: Option<NaiveDate>,
    verbose: bool,
) -> Result<Vec<report::ExplainedSource>, Error> {
    let loaded = load(path)?;
    let p = &loaded.pipeline;
    let months = run_months(p, resolve_as_of(p, as_of))?;
    let inputs = expand_inputs(p)?;
    let mut out = Vec::new();
    for source in &p.def.sources {
        let files = inputs[source.name.get_ref()].clone();
        let plan = plan_source(p, source, &loaded.tree, &loaded.mapping, months, files)?;
        let polars_plan = if verbose {
            polars::prelude::LazyFrame::explain_all(
                plan.outputs
                    .iter()
                    .map(|lf| lf.logical_plan.clone())
                    .collect(),
                polars::prelude::OptFlags::default(),
            )
            .map_err(|e| {
                Error::Compute(compute::ComputeError::Polars {
                    source_name: plan.source.clone(),
                    message: e.to_string(),
                })
            })?
        } else {
            String::new()
        };
        out.push(report::ExplainedSource {
            source: plan.source.clone(),
            files: plan.rows.files.iter().map(|f| f.display.clone()).collect(),
            indicators: plan.indicators.clone(),
            breakdowns: plan.breakdowns.clone(),
            state_kinds: plan.state_kinds(),
            segments: plan.segment_outputs.clone(),
            direct: plan.direct.clone(),
            polars_plan,
        });
    }
    Ok(out)
}
