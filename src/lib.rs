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
pub use run::{FailOn, RunOptions, RunOutcome, RunSummary, run, run_or_skip};

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use compute::plan_source;
use definitions::{Diagnostic, Diagnostics, Pipeline};
use org::{CodeMapping, OrgTree};
use period::{Month, RunMonths};

/// A pipeline with its org tree and code mapping, all checked.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub tree: OrgTree,
    pub mapping: CodeMapping,
    pub targets: assess::Targets,
    pub actions: Vec<assess::Action>,
    pub analyses: Vec<assess::Analysis>,
    pub groups: org::Groups,
}

/// Reads the pipeline file, org units and code mapping, and runs every check that needs no
/// source data. All problems come back together.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let (pipeline, org, problems) = load_all(path)?;
    match org {
        Some(org) if problems.is_empty() => Ok(Loaded {
            pipeline,
            tree: org.tree,
            mapping: org.mapping,
            targets: org.targets,
            actions: org.actions,
            analyses: org.analyses,
            groups: org.groups,
        }),
        _ => Err(Error::Definitions(Diagnostics(problems))),
    }
}

/// What hangs on the org tree.
struct OrgParts {
    tree: OrgTree,
    mapping: CodeMapping,
    targets: assess::Targets,
    actions: Vec<assess::Action>,
    analyses: Vec<assess::Analysis>,
    groups: org::Groups,
}

/// Loads as far as it can, collecting every problem instead of stopping at the first stage that
/// has one: the pipeline's own checks, the org tree, and (with a tree) the code mapping, groups,
/// targets and actions. Only a pipeline file that does not parse stops it.
fn load_all(path: &Path) -> Result<(Pipeline, Option<OrgParts>, Vec<Diagnostic>), Error> {
    let (pipeline, mut problems) = Pipeline::parse(path).map_err(Error::Definitions)?;
    let units_path = pipeline.resolve(&pipeline.def.org.units);
    let tree = match OrgTree::load(
        &units_path,
        pipeline.def.org.roots.as_deref(),
        pipeline.table_dialect(),
    ) {
        Ok(t) => t,
        Err(d) => {
            problems.extend(d.0);
            return Ok((pipeline, None, problems));
        }
    };
    let mut mapping_loaded = true;
    let mapping = match &pipeline.def.org.code_mapping {
        Some(p) => {
            let mapping_path = pipeline.resolve(p);
            match CodeMapping::load(&mapping_path, &tree, pipeline.table_dialect()) {
                Ok(m) => {
                    problems.extend(unknown_mapping_sources(&pipeline, &mapping_path, &m));
                    m
                }
                Err(d) => {
                    problems.extend(d.0);
                    mapping_loaded = false;
                    CodeMapping::default()
                }
            }
        }
        None => CodeMapping::default(),
    };
    for ind in &pipeline.def.indicators {
        if let Some(scope) = &ind.scope {
            for root in scope.get_ref().roots() {
                if !tree.contains(root) {
                    problems.push(pipeline.diag_at(
                        scope.span(),
                        format!("indicator '{}'", ind.id.get_ref()),
                        format!(
                            "scope '{root}' is not an org unit{}",
                            tree.did_you_mean(root)
                        ),
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
                format!(
                    "owner '{}' is not an org unit{}",
                    goal.owner.get_ref(),
                    tree.did_you_mean(goal.owner.get_ref())
                ),
            ));
        }
    }
    for source in &pipeline.def.sources {
        if source.uses_mapping() && mapping_loaded && !mapping.has_source(source.mapping_key()) {
            let message = match &source.codes {
                Some(codes) => format!(
                    "codes = \"{}\" but the code mapping has no entries for that code system",
                    codes.get_ref()
                ),
                None => {
                    "org_codes = \"mapping\" but the code mapping has no entries for this source"
                        .to_string()
                }
            };
            problems.push(pipeline.diag_at(
                source.name.span(),
                format!("source '{}'", source.name.get_ref()),
                message,
            ));
        }
    }
    let groups = match &pipeline.def.org.groups {
        Some(g) => match org::Groups::load(&pipeline.resolve(g), &tree, pipeline.table_dialect()) {
            Ok(g) => g,
            Err(d) => {
                problems.extend(d.0);
                org::Groups::default()
            }
        },
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
    let analyses = match assess::load_analyses(&pipeline, &tree) {
        Ok(a) => a,
        Err(d) => {
            problems.extend(d.0);
            Vec::new()
        }
    };
    let org = OrgParts {
        tree,
        mapping,
        targets,
        actions,
        analyses,
        groups,
    };
    Ok((pipeline, Some(org), problems))
}

/// Code-mapping entries for a source the pipeline does not define: a typo (`hr_tiem`) would
/// otherwise leave the real source's codes unmapped and its rows rejected.
fn unknown_mapping_sources(
    pipeline: &Pipeline,
    mapping_path: &Path,
    mapping: &CodeMapping,
) -> Vec<Diagnostic> {
    // Sources and the code systems they declare.
    let mut defined: Vec<&str> = Vec::new();
    for s in &pipeline.def.sources {
        for key in [s.name.get_ref().as_str(), s.mapping_key()] {
            if !defined.contains(&key) {
                defined.push(key);
            }
        }
    }
    let mut reported = std::collections::BTreeSet::new();
    mapping
        .entries
        .iter()
        .filter(|e| !defined.contains(&e.source.as_str()) && reported.insert(e.source.clone()))
        .map(|e| {
            Diagnostic::at_line(
                mapping_path,
                e.line as usize,
                format!("source '{}'", e.source),
                format!(
                    "column 'source': the pipeline defines no source or code system '{}'{} (it has: {})",
                    e.source,
                    definitions::did_you_mean(&e.source, defined.iter().copied()),
                    defined.join(", ")
                ),
            )
        })
        .collect()
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
    /// Worth a look, not errors: units whose parent in the last published run is gone.
    pub warnings: Vec<String>,
    pub indicators: usize,
    pub goals: usize,
    pub units: usize,
}

/// Checks definitions, org tree, code mapping, every expression against its source's declared
/// types, and every source's files and headers, computing nothing. Every problem of every stage
/// comes back at once (a bad source does not hide a bad goal owner).
pub fn validate(path: &Path) -> Result<Validation, Error> {
    validate_against(path, None)
}

/// As [`validate`], and compares the org tree with the last run published under `out` (when
/// there is one).
pub fn validate_against(path: &Path, out: Option<&Path>) -> Result<Validation, Error> {
    let (p, org, mut problems) = load_all(path)?;
    // What `run` would refuse in an expression (a column outside any aggregate), said now.
    for (slot, ind) in p.computed_indicators().iter().enumerate() {
        // Ok(Err(_)) is fine: such an indicator is computed the direct way.
        if let Err(message) = compute::decompose(ind, slot) {
            problems.push(p.diag_at(
                ind.numerator.span(),
                format!("indicator '{}'", ind.id.get_ref()),
                message,
            ));
        }
    }
    let months = run_months(&p, resolve_as_of(&p, None));
    let mut data_problems = Vec::new();
    let mut sources = Vec::new();
    for source in &p.def.sources {
        let files = match ingest::expand_source(&p, source) {
            Ok(files) => files,
            Err(e) => {
                data_problems.push(e.to_string());
                continue;
            }
        };
        let (Some(org), Ok(months)) = (&org, &months) else {
            continue;
        };
        // Building the scan reads each file's header and checks the declared columns.
        match ingest::scan_source(source, &org.tree, &org.mapping, *months, files) {
            Ok(rows) => sources.push((
                source.name.get_ref().clone(),
                rows.files.iter().map(|f| f.display.clone()).collect(),
            )),
            Err(e) => data_problems.push(e.to_string()),
        }
    }
    if let Err(e) = &months {
        data_problems.push(e.to_string());
    }
    if !problems.is_empty() || !data_problems.is_empty() {
        return Err(Error::Problems {
            definitions: Diagnostics(problems),
            data: data_problems,
        });
    }
    let org = org.expect("no problems means the tree loaded");
    let warnings = match out {
        Some(out) => {
            org_changes_since_last_run(&org.tree, &publish::pipeline_dir(out, p.def.name.get_ref()))
        }
        None => Vec::new(),
    };
    Ok(Validation {
        sources,
        warnings,
        indicators: p.def.indicators.len(),
        goals: p.def.goals.len(),
        units: org.tree.units().len(),
    })
}

/// Warnings about the org tree compared with the run `latest` points to under `pipeline_dir`
/// (none when nothing was published yet).
pub fn org_changes_since_last_run(tree: &OrgTree, pipeline_dir: &Path) -> Vec<String> {
    let file = pipeline_dir.join("latest").join("org_units.parquet");
    let Ok(f) = std::fs::File::open(&file) else {
        return Vec::new();
    };
    use polars::prelude::SerReader;
    match polars::prelude::ParquetReader::new(f)
        .finish()
        .and_then(|previous| org::vanished_parents(tree, &previous))
    {
        Ok(w) => w,
        Err(e) => vec![format!(
            "{}: cannot compare the org tree with it: {e}",
            file.display()
        )],
    }
}

/// Per source: how its indicators are computed in two phases, and (with `verbose`) the
/// optimised polars plan of its one fused scan.
pub fn explain(
    path: &Path,
    as_of: Option<NaiveDate>,
    engine: Option<compute::Engine>,
    verbose: bool,
) -> Result<Vec<report::ExplainedSource>, Error> {
    let loaded = load(path)?;
    let p = &loaded.pipeline;
    let engine = run::resolve_engine(p, engine)?;
    let months = run_months(p, resolve_as_of(p, as_of))?;
    let inputs = expand_inputs(p)?;
    let mut out = Vec::new();
    for source in &p.def.sources {
        let files = inputs[source.name.get_ref()].clone();
        let plan = plan_source(
            p,
            source,
            &loaded.tree,
            &loaded.mapping,
            months,
            files,
            engine.is_sql(),
        )?;
        let table = format!("source_{}", plan.source);
        let stored = plan.rows.files.iter().any(|f| f.object.is_some());
        let cannot_run = "its files are in an object store, which only the SQL engines read: the run would stop here";
        let (engine_text, sql) = match &plan.sql {
            None if stored => (format!("{engine} — {cannot_run}"), Vec::new()),
            None => (engine.to_string(), Vec::new()),
            Some(Err(why)) if stored => (format!("polars — {why}; {cannot_run}"), Vec::new()),
            Some(Err(why)) => (format!("polars — {why}"), Vec::new()),
            Some(Ok(sql)) => {
                let statements = sql.statements(&table).map_err(Error::Usage)?;
                let mut all = vec![statements.states];
                all.extend(statements.sets.into_iter().map(|(_, _, s)| s));
                (engine.to_string(), all)
            }
        };
        // A source read by a SQL engine shows its SQL instead.
        let polars_plan = if verbose && !matches!(plan.sql, Some(Ok(_))) {
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
            engine: engine_text,
            sql: if verbose { sql } else { Vec::new() },
            polars_plan,
        });
    }
    Ok(out)
}
