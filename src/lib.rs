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

pub use error::Error;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use polars::prelude::*;

use compute::{IndicatorRules, finish_values, plan_source, run_sources};
use definitions::{Diagnostics, OnBadRows, Pipeline};
use org::{CodeMapping, OrgTree};
use period::{Month, RunMonths};
use publish::{FileRecord, InputRecord, Manifest, OutputRecord, SourceRecord, Staging};

/// A pipeline with its org tree and code mapping, all checked.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub tree: OrgTree,
    pub mapping: CodeMapping,
    pub targets: assess::Targets,
    pub actions: Vec<assess::Action>,
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
    let targets = match assess::Targets::load(&pipeline, &tree) {
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

fn run_months(pipeline: &Pipeline, as_of: NaiveDate) -> Result<RunMonths, Error> {
    let first = Month::parse(pipeline.def.periods.first.get_ref())
        .expect("periods.first is checked when the pipeline loads");
    RunMonths::new(first, as_of).ok_or_else(|| {
        Error::Usage(format!(
            "as-of date {as_of} leaves no complete month at or after the first period {} (the last period is the last complete month before the as-of date)",
            first.label()
        ))
    })
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
    let mut sources = Vec::new();
    for source in &p.def.sources {
        let rows = ingest::scan_source(p, source, &loaded.tree, &loaded.mapping, months)
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

/// Per source: the indicators fused into its plan and the optimised polars plan.
pub fn explain(
    path: &Path,
    as_of: Option<NaiveDate>,
) -> Result<Vec<report::ExplainedSource>, Error> {
    let loaded = load(path)?;
    let p = &loaded.pipeline;
    let months = run_months(p, resolve_as_of(p, as_of))?;
    let mut out = Vec::new();
    for source in &p.def.sources {
        let plan = plan_source(p, source, &loaded.tree, &loaded.mapping, months)?;
        let polars_plan = plan.values.describe_optimized_plan().map_err(|e| {
            Error::Compute(compute::ComputeError::Polars {
                source_name: plan.source.clone(),
                message: e.to_string(),
            })
        })?;
        out.push(report::ExplainedSource {
            source: plan.source,
            files: plan.rows.files.iter().map(|f| f.display.clone()).collect(),
            indicators: plan.indicators,
            breakdowns: plan.breakdowns,
            polars_plan,
        });
    }
    Ok(out)
}

pub struct RunOptions {
    pub as_of: Option<NaiveDate>,
    pub out: PathBuf,
    /// Statuses that, found in the latest period of any grain, make the run report
    /// `fail_on_hits` (the CLI exits 3). Results are published all the same.
    pub fail_on: Vec<assess::Status>,
}

impl RunOptions {
    pub fn new(as_of: Option<NaiveDate>, out: PathBuf) -> RunOptions {
        RunOptions {
            as_of,
            out,
            fail_on: Vec::new(),
        }
    }
}

/// What a finished run reports.
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub manifest: Manifest,
    pub indicators: usize,
    pub units: usize,
    pub periods: usize,
    pub value_rows: usize,
    pub rejected_rows: usize,
    pub elapsed_ms: u64,
    /// `(status, rows in the latest periods)` for each `--fail-on` status found.
    pub fail_on_hits: Vec<(String, usize)>,
}

/// Computes every indicator and publishes the run folder. On any error nothing is published.
pub fn run(path: &Path, options: &RunOptions) -> Result<RunSummary, Error> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut durations: Vec<(String, u64)> = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |stage: &str, durations: &mut Vec<(String, u64)>| {
            durations.push((stage.to_string(), last.elapsed().as_millis() as u64));
            last = Instant::now();
        }
    };

    let loaded = load(path)?;
    let p = &loaded.pipeline;
    let as_of = resolve_as_of(p, options.as_of);
    let months = run_months(p, as_of)?;
    lap("load", &mut durations);
    tracing::info!(pipeline = %p.def.name.get_ref(), %as_of, first = %months.first.label(), last = %months.last.label(), "run started");

    let results = run_sources(p, &loaded.tree, &loaded.mapping, months)?;
    lap("compute_sources", &mut durations);

    let mut rejected = concat_frames(results.iter().map(|r| r.rejected.clone()).collect())?
        .unwrap_or_else(empty_rejected);
    rejected = rejected
        .lazy()
        .sort(["source", "file", "row"], SortMultipleOptions::default())
        .collect()
        .map_err(data_err)?;
    if p.def.on_bad_rows == OnBadRows::Fail && rejected.height() > 0 {
        let first = first_rejected(&rejected);
        return Err(Error::BadRows {
            count: rejected.height(),
            first,
        });
    }

    let rules: Vec<IndicatorRules> = p
        .def
        .indicators
        .iter()
        .map(|d| IndicatorRules::from_def(d, &loaded.tree))
        .collect();
    let raw: Vec<DataFrame> = results.iter().map(|r| r.values.clone()).collect();
    let mut values = finish_values(raw, &rules, &loaded.tree, months).map_err(data_err)?;
    lap("finish_values", &mut durations);
    let assessment = assess::assess(
        p,
        &loaded.tree,
        &loaded.targets,
        &loaded.actions,
        &values,
        months,
        as_of,
    )
    .map_err(data_err)?;
    let assess::Assessment {
        mut deviations,
        mut goal_status,
        mut actions,
    } = assessment;
    let status_counts = assess::status_counts(&deviations).map_err(data_err)?;
    let goal_status_counts = assess::status_counts(&goal_status).map_err(data_err)?;
    let action_counts = action_counts(&actions).map_err(data_err)?;
    let fail_on_hits = fail_on_hits(&deviations, &options.fail_on).map_err(data_err)?;
    lap("assess", &mut durations);

    let run_id = format!(
        "{}-{:08x}",
        started_at.format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    );
    let destination = publish::run_dir(&options.out, p.def.name.get_ref(), as_of);
    let staging = Staging::new(destination, &run_id)?;
    let written = (|| -> Result<Manifest, Error> {
        let value_rows = staging.write_parquet("indicator_values.parquet", &mut values)?;
        let rejected_rows = staging.write_parquet("rejected_rows.parquet", &mut rejected)?;
        let deviation_rows = staging.write_parquet("deviations.parquet", &mut deviations)?;
        let goal_rows = staging.write_parquet("goal_status.parquet", &mut goal_status)?;
        let action_rows = staging.write_parquet("actions.parquet", &mut actions)?;
        lap("write_tables", &mut durations);
        let manifest = Manifest {
            run_id: run_id.clone(),
            pipeline: p.def.name.get_ref().clone(),
            as_of: as_of.to_string(),
            first_period: months.first.label(),
            last_period: months.last.label(),
            styrkort_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: started_at.to_rfc3339(),
            finished_at: chrono::Utc::now().to_rfc3339(),
            definitions_hash: String::new(),
            definitions: definition_files(p)?,
            sources: source_records(p, &results),
            outputs: vec![
                OutputRecord {
                    file: "indicator_values.parquet".into(),
                    rows: value_rows,
                },
                OutputRecord {
                    file: "rejected_rows.parquet".into(),
                    rows: rejected_rows,
                },
                OutputRecord {
                    file: "deviations.parquet".into(),
                    rows: deviation_rows,
                },
                OutputRecord {
                    file: "goal_status.parquet".into(),
                    rows: goal_rows,
                },
                OutputRecord {
                    file: "actions.parquet".into(),
                    rows: action_rows,
                },
            ],
            status_counts: status_counts.clone(),
            goal_status_counts: goal_status_counts.clone(),
            actions: action_counts.clone(),
            durations_ms: durations.clone(),
            warnings: warnings(&results),
        };
        let mut manifest = manifest;
        manifest.definitions_hash = combined_hash(&manifest.definitions);
        staging.write_json("manifest.json", &manifest)?;
        Ok(manifest)
    })();
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            staging.discard();
            return Err(e);
        }
    };
    let run_dir = staging.publish()?;
    let summary = RunSummary {
        run_dir,
        indicators: p.def.indicators.len(),
        units: loaded.tree.units().len(),
        periods: (months.last.0 - months.first.0 + 1) as usize,
        value_rows: values.height(),
        rejected_rows: rejected.height(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        manifest,
        fail_on_hits,
    };
    tracing::info!(
        rows = summary.value_rows,
        rejected = summary.rejected_rows,
        ms = summary.elapsed_ms,
        "run published"
    );
    Ok(summary)
}

/// Rows of the latest period of each grain whose status is one of `statuses`.
fn fail_on_hits(
    deviations: &DataFrame,
    statuses: &[assess::Status],
) -> PolarsResult<Vec<(String, usize)>> {
    let latest = deviations
        .clone()
        .lazy()
        .filter(col("is_latest_period"))
        .collect()?;
    let counts = assess::status_counts(&latest)?;
    Ok(statuses
        .iter()
        .filter_map(|s| {
            let n = counts.get(s.as_str()).copied().unwrap_or(0);
            (n > 0).then(|| (s.as_str().to_string(), n))
        })
        .collect())
}

fn action_counts(actions: &DataFrame) -> PolarsResult<publish::ActionCounts> {
    let kind = actions.column("record_type")?.str()?;
    let overdue = actions.column("overdue")?.bool()?;
    Ok(publish::ActionCounts {
        actions: kind.iter().filter(|k| *k == Some("action")).count(),
        overdue: overdue.iter().filter(|o| *o == Some(true)).count(),
        deviations_without_action: kind
            .iter()
            .filter(|k| *k == Some("deviation_without_action"))
            .count(),
    })
}

fn data_err(e: PolarsError) -> Error {
    Error::Data(e.to_string())
}

fn concat_frames(frames: Vec<DataFrame>) -> Result<Option<DataFrame>, Error> {
    if frames.is_empty() {
        return Ok(None);
    }
    let lazy: Vec<LazyFrame> = frames.into_iter().map(DataFrame::lazy).collect();
    Ok(Some(
        concat(lazy, UnionArgs::default())
            .and_then(LazyFrame::collect)
            .map_err(data_err)?,
    ))
}

fn empty_rejected() -> DataFrame {
    df!(
        "source" => Vec::<String>::new(),
        "file" => Vec::<String>::new(),
        "row" => Vec::<i64>::new(),
        "reason" => Vec::<String>::new(),
    )
    .expect("static frame")
}

fn first_rejected(rejected: &DataFrame) -> String {
    let get = |name: &str| {
        rejected
            .column(name)
            .ok()
            .and_then(|c| c.get(0).ok())
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    format!("{} line/row {}: {}", get("file"), get("row"), get("reason"))
}

fn hash_file(path: &Path) -> Result<FileRecord, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    Ok(FileRecord {
        path: ingest::normalise(path),
        size: bytes.len() as u64,
        blake3: blake3::hash(&bytes).to_hex().to_string(),
    })
}

fn definition_files(p: &Pipeline) -> Result<Vec<FileRecord>, Error> {
    let mut files = vec![
        hash_file(&p.path)?,
        hash_file(&p.resolve(&p.def.org.units))?,
    ];
    for extra in [&p.def.org.code_mapping, &p.def.targets, &p.def.actions]
        .into_iter()
        .flatten()
    {
        files.push(hash_file(&p.resolve(extra))?);
    }
    Ok(files)
}

fn combined_hash(files: &[FileRecord]) -> String {
    let mut h = blake3::Hasher::new();
    for f in files {
        h.update(f.blake3.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

fn source_records(p: &Pipeline, results: &[compute::SourceResult]) -> Vec<SourceRecord> {
    results
        .iter()
        .map(|r| {
            let counts: std::collections::HashMap<String, i64> = r
                .rows_per_file
                .column("file")
                .ok()
                .and_then(|f| f.str().ok().cloned())
                .zip(
                    r.rows_per_file
                        .column("rows")
                        .ok()
                        .and_then(|c| c.i64().ok().cloned()),
                )
                .map(|(f, n)| {
                    f.iter()
                        .zip(n.iter())
                        .filter_map(|(f, n)| Some((f?.to_string(), n?)))
                        .collect()
                })
                .unwrap_or_default();
            let files: Vec<InputRecord> = r
                .files
                .iter()
                .map(|f| InputRecord {
                    path: f.display.clone(),
                    size: f.size,
                    rows: counts.get(&f.display).copied().unwrap_or(0),
                    blake3: f.blake3.clone(),
                })
                .collect();
            SourceRecord {
                name: r.source.clone(),
                indicators: p
                    .indicators_of(&r.source)
                    .map(|i| i.id.get_ref().clone())
                    .collect(),
                rows_read: files.iter().map(|f| f.rows).sum(),
                files,
                rows_rejected: r.rejected.height(),
                rows_outside_periods: r.outside_months,
            }
        })
        .collect()
}

fn warnings(results: &[compute::SourceResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.rejected.height() > 0)
        .map(|r| {
            format!(
                "source '{}': {} row(s) rejected (see rejected_rows.parquet)",
                r.source,
                r.rejected.height()
            )
        })
        .collect()
}
