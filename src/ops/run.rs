//! One run, end to end: lock the output, clean up after killed runs, find and hash the inputs,
//! skip if nothing changed (when asked), compute, assess, write into staging and publish. Any
//! error before the publish step leaves the published results exactly as they were.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use polars::prelude::*;

use super::load::{
    Loaded, expand_inputs, load, org_changes_since_last_run, resolve_as_of, run_months,
};
use crate::compute::{
    DEFAULT_TIMEOUT, Engine, IndicatorRules, Phase1, SourceResult, combine_sides, finish_values,
    run_sources,
};
use crate::definitions::{OnBadRows, Pipeline};
use crate::ingest::InputFile;
use crate::ingest::quality::{self, Delivered, GateOutcome, GateResult};
use crate::period::RunMonths;
use crate::publish::{
    self, FileRecord, GateRecord, InputRecord, Lock, Manifest, SourceRecord, Staging, test_pause,
};
use crate::{Error, assess};

/// A `--fail-on` condition: a status in the latest period of any grain, or (`new:STATUS`) only
/// where the status is new since the previously published run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailOn {
    pub(crate) status: assess::Status,
    /// Count a cell only when its series (indicator × unit × segment × grain) did not have this
    /// status in the latest period of the previously published run.
    pub(crate) only_new: bool,
}

impl FailOn {
    /// `not_met` or `new:not_met`.
    pub fn parse(text: &str) -> Option<FailOn> {
        let (only_new, status) = match text.strip_prefix("new:") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        assess::Status::parse(status).map(|status| FailOn { status, only_new })
    }

    pub(crate) fn label(&self) -> String {
        if self.only_new {
            format!("new:{}", self.status.as_str())
        } else {
            self.status.as_str().to_string()
        }
    }
}

pub struct RunOptions {
    pub as_of: Option<NaiveDate>,
    pub out: PathBuf,
    /// Conditions that, met in the latest period of any grain, make the run report
    /// `fail_on_hits` (the CLI exits 3). Results are published all the same.
    pub fail_on: Vec<FailOn>,
    /// Do nothing when the definitions, every input and the styrkort version equal those of the
    /// run already published for this as-of date.
    pub skip_unchanged: bool,
    /// Accept an as-of date more than a month after today (refused by default: a typo such as
    /// 2205 for 2025 would publish centuries of no-data rows and move `latest` there).
    pub allow_future: bool,
    /// Where phase 1 runs, over the pipeline's `[engine]`.
    pub engine: Option<Engine>,
}

impl RunOptions {
    pub fn new(as_of: Option<NaiveDate>, out: PathBuf) -> RunOptions {
        RunOptions {
            as_of,
            out,
            fail_on: Vec::new(),
            skip_unchanged: false,
            allow_future: false,
            engine: None,
        }
    }
}

/// Refuses an as-of date more than a month after `today`, unless allowed.
pub(crate) fn check_as_of(
    as_of: NaiveDate,
    today: NaiveDate,
    allow_future: bool,
) -> Result<(), Error> {
    let limit = today
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(NaiveDate::MAX);
    if as_of > limit && !allow_future {
        return Err(Error::Usage(format!(
            "as-of date {as_of} is more than a month after today ({today}); if that is not a typo, run with --allow-future"
        )));
    }
    Ok(())
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
    /// `(condition, rows in the latest periods)` for each `--fail-on` condition met.
    pub fail_on_hits: Vec<(String, usize)>,
}

pub enum RunOutcome {
    Published(Box<RunSummary>),
    /// `skip_unchanged` found the published run for this as-of up to date.
    Unchanged {
        run_dir: PathBuf,
    },
}

/// Computes every indicator and publishes the run. On any error nothing is published.
pub fn run(path: &Path, options: &RunOptions) -> Result<RunSummary, Error> {
    let options = RunOptions {
        skip_unchanged: false,
        fail_on: options.fail_on.clone(),
        allow_future: options.allow_future,
        engine: options.engine.clone(),
        ..RunOptions::new(options.as_of, options.out.clone())
    };
    match run_or_skip(path, &options)? {
        RunOutcome::Published(s) => Ok(*s),
        RunOutcome::Unchanged { .. } => unreachable!("skip_unchanged is off"),
    }
}

/// The stages of a run, in order: the one after the last finished is the one in progress.
const STAGES: [&str; 8] = [
    "load",
    "hash_inputs",
    "compute_sources",
    "quality_gates",
    "finish_values",
    "assess",
    "write_tables",
    "publish",
];

/// Stage timings, for the manifest and the log.
struct Stages {
    last: Instant,
    done: Vec<(String, u64)>,
}

impl Stages {
    fn lap(&mut self, stage: &str) {
        let ms = self.last.elapsed().as_millis() as u64;
        tracing::info!(stage, ms, "stage done");
        self.done.push((stage.to_string(), ms));
        self.last = Instant::now();
    }

    /// The stage in progress.
    fn current(&self) -> &'static str {
        STAGES.get(self.done.len()).copied().unwrap_or("publish")
    }
}

/// Runs the pipeline (or skips it, when asked and nothing changed). A failure comes back as
/// [`Error::InRun`], carrying the run id and the stage that failed, and is logged once with them.
pub fn run_or_skip(path: &Path, options: &RunOptions) -> Result<RunOutcome, Error> {
    let started_at = chrono::Utc::now();
    // Two runs of one process within a second (the library API) must not share an id: the id
    // names the run's folder.
    static RUNS_IN_PROCESS: AtomicUsize = AtomicUsize::new(0);
    let seq = RUNS_IN_PROCESS.fetch_add(1, Ordering::Relaxed);
    let mut run_id = format!(
        "{}-{:08x}",
        started_at.format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    );
    if seq > 0 {
        run_id.push_str(&format!("-{seq}"));
    }
    let span = tracing::info_span!(
        "run",
        run_id = %run_id,
        pipeline = tracing::field::Empty,
        as_of = tracing::field::Empty
    );
    let _entered = span.enter();
    let mut stages = Stages {
        last: Instant::now(),
        done: Vec::new(),
    };
    run_in_span(path, options, &run_id, started_at, &span, &mut stages).map_err(|e| Error::InRun {
        run_id: run_id.clone(),
        stage: stages.current(),
        inner: Box::new(e),
    })
}

/// The engine phase 1 runs on: `asked` (the command line), else the pipeline's `[engine]`.
pub(crate) fn resolve_engine(p: &Pipeline, asked: Option<Engine>) -> Result<Engine, Error> {
    Ok(match asked {
        Some(e) => e,
        None => match &p.def.engine.name {
            Some(name) => Engine::parse(name.get_ref()).map_err(Error::Usage)?,
            None => Engine::Polars,
        },
    })
}

/// Starts the engine phase 1 runs on (see [`resolve_engine`]).
fn start_engine(p: &Pipeline, asked: Option<Engine>) -> Result<Phase1, Error> {
    let engine = resolve_engine(p, asked)?;
    let timeout = p
        .def
        .engine
        .timeout_seconds
        .as_ref()
        .map(|t| std::time::Duration::from_secs(*t.get_ref()))
        .unwrap_or(DEFAULT_TIMEOUT);
    tracing::info!(engine = %engine, "phase 1 engine");
    Phase1::start(engine, timeout).map_err(Error::Usage)
}

/// What stage `load` hands on: the checked pipeline, the run's dates and folders, and the
/// output lock, held until the run is published or fails.
struct Prepared {
    loaded: Loaded,
    as_of: NaiveDate,
    months: RunMonths,
    pipeline_dir: PathBuf,
    run_dir: PathBuf,
    lock: Lock,
    warnings: Vec<String>,
}

/// Stage `load`: definitions loaded and checked, as-of and months resolved, the output folder
/// locked and cleaned of what an unfinished run left, the org tree compared with the last run.
fn prepare(
    path: &Path,
    options: &RunOptions,
    run_id: &str,
    span: &tracing::Span,
) -> Result<Prepared, Error> {
    let loaded = load(path)?;
    let p = &loaded.pipeline;
    span.record("pipeline", p.def.name.get_ref().as_str());
    let as_of = resolve_as_of(p, options.as_of);
    span.record("as_of", tracing::field::display(as_of));
    check_as_of(
        as_of,
        chrono::Local::now().date_naive(),
        options.allow_future,
    )?;
    let months = run_months(p, as_of)?;
    tracing::info!(first = %months.first.label(), last = %months.last.label(), "run started");

    let pipeline_dir = publish::pipeline_dir(&options.out, p.def.name.get_ref());
    let lock = Lock::acquire(&pipeline_dir, run_id).map_err(|e| Error::Lock(e.to_string()))?;
    let mut warnings = Vec::new();
    if let Some(previous) = &lock.taken_over {
        let w = format!("took over a stale lock left by a run that did not finish ({previous})");
        tracing::warn!("{w}");
        warnings.push(w);
    }
    test_pause("after_lock");
    for removed in publish::clean_up(&pipeline_dir) {
        tracing::info!(path = %removed.display(), "removed what an unfinished run left behind");
    }
    let run_dir = publish::run_dir(&options.out, p.def.name.get_ref(), as_of);
    let link_name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    publish::check_links(&pipeline_dir, &link_name)?;
    for w in org_changes_since_last_run(&loaded.tree, &pipeline_dir) {
        tracing::warn!("{w}");
        warnings.push(w);
    }
    Ok(Prepared {
        loaded,
        as_of,
        months,
        pipeline_dir,
        run_dir,
        lock,
        warnings,
    })
}

fn run_in_span(
    path: &Path,
    options: &RunOptions,
    run_id: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    span: &tracing::Span,
    stages: &mut Stages,
) -> Result<RunOutcome, Error> {
    let started = Instant::now();
    let run_id = run_id.to_string();
    let Prepared {
        loaded,
        as_of,
        months,
        pipeline_dir,
        run_dir,
        lock,
        mut warnings,
    } = prepare(path, options, &run_id, span)?;
    let p = &loaded.pipeline;
    stages.lap("load");

    let inputs = expand_inputs(p)?;
    let definitions = definition_files(p)?;
    if options.skip_unchanged
        && published_is_current(&run_dir, &combined_hash(&definitions), &inputs)
    {
        tracing::info!(run_dir = %run_dir.display(), "inputs and definitions unchanged: nothing to do");
        return Ok(RunOutcome::Unchanged { run_dir });
    }
    stages.lap("hash_inputs");

    let results = compute_sources(p, &loaded, months, &inputs, options)?;
    stages.lap("compute_sources");

    let live = as_of == chrono::Local::now().date_naive();
    let checked = check_quality(p, &results, months, live)?;
    warnings.extend(checked.warnings.iter().cloned());
    stages.lap("quality_gates");

    let values = finish(p, &loaded, &results, months)?;
    stages.lap("finish_values");

    let previous = publish::pipeline_dir(&options.out, p.def.name.get_ref()).join("latest");
    let assessed = assess_values(&loaded, &values, months, as_of, &options.fail_on, &previous)?;
    stages.lap("assess");

    let (value_rows, rejected_rows) = (values.height(), checked.rejected.height());
    let Assessed {
        deviations,
        goal_status,
        actions,
        signals,
        counts,
    } = assessed;
    let tables = NamedTables::new(&loaded, deviations, goal_status, actions, signals)?
        .into_outputs(values, checked.rejected);
    warnings.extend(source_warnings(&results));
    let fail_on_hits = counts.fail_on_hits.clone();
    let manifest = Manifest {
        sources: source_records(p, &results, &checked.gates),
        status_counts: counts.status,
        goal_status_counts: counts.goal_status,
        actions: counts.actions,
        signal_flags: counts.flags,
        warnings,
        ..draft_manifest(p, &run_id, started_at, as_of, months, definitions)
    };
    let (run_dir, manifest) = publish_run(&pipeline_dir, as_of, tables, manifest, stages)?;
    drop(lock);
    let summary = RunSummary {
        run_dir,
        indicators: p.def.indicators.len(),
        units: loaded.tree.units().len(),
        periods: (months.last.0 - months.first.0 + 1) as usize,
        value_rows,
        rejected_rows,
        elapsed_ms: started.elapsed().as_millis() as u64,
        manifest,
        fail_on_hits,
    };
    tracing::info!(
        path = %summary.run_dir.display(),
        rows = summary.value_rows,
        rejected = summary.rejected_rows,
        ms = summary.elapsed_ms,
        "run published"
    );
    Ok(RunOutcome::Published(Box::new(summary)))
}

/// The manifest as far as the run's identity and definitions go: the stage results (sources,
/// counts, warnings) are set by the caller, and `publish_run` fills in the outputs, the stage
/// durations and the finish time.
fn draft_manifest(
    p: &Pipeline,
    run_id: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    as_of: NaiveDate,
    months: RunMonths,
    definitions: Vec<FileRecord>,
) -> Manifest {
    Manifest {
        run_id: run_id.to_string(),
        pipeline: p.def.name.get_ref().clone(),
        as_of: as_of.to_string(),
        first_period: months.first.label(),
        last_period: months.last.label(),
        styrkort_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started_at.to_rfc3339(),
        finished_at: String::new(),
        definitions_hash: combined_hash(&definitions),
        definitions,
        sources: Vec::new(),
        outputs: Vec::new(),
        status_counts: BTreeMap::new(),
        goal_status_counts: BTreeMap::new(),
        actions: Default::default(),
        signal_flags: BTreeMap::new(),
        durations_ms: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Stage `write_tables`, then publishing: every table and the manifest (completed with the
/// outputs, the stage durations and the finish time) written to a staging folder, which is then
/// moved into place at once. On any failure the staging folder is discarded: nothing is
/// published and earlier runs stay as they were.
fn publish_run(
    pipeline_dir: &Path,
    as_of: NaiveDate,
    tables: Vec<(&str, DataFrame)>,
    mut manifest: Manifest,
    stages: &mut Stages,
) -> Result<(PathBuf, Manifest), Error> {
    let staging = Staging::new(pipeline_dir, as_of, &manifest.run_id)?;
    let write = || -> Result<(), Error> {
        for (name, mut df) in tables {
            manifest.outputs.push(staging.write_parquet(name, &mut df)?);
            test_pause(&format!("after_{name}"));
        }
        stages.lap("write_tables");
        manifest.durations_ms = stages.done.clone();
        manifest.finished_at = chrono::Utc::now().to_rfc3339();
        staging.write_json("manifest.json", &manifest)?;
        Ok(())
    };
    if let Err(e) = write() {
        staging.discard();
        return Err(e);
    }
    let run_dir = staging.publish()?;
    publish::clean_up(pipeline_dir);
    Ok((run_dir, manifest))
}

/// Stage `compute_sources`: phase 1 on the chosen engine, phase 2 here, per source; then every
/// input checked unchanged since it was hashed.
fn compute_sources(
    p: &Pipeline,
    loaded: &Loaded,
    months: RunMonths,
    inputs: &BTreeMap<String, Vec<InputFile>>,
    options: &RunOptions,
) -> Result<Vec<SourceResult>, Error> {
    let phase1 = start_engine(p, options.engine.clone())?;
    let total = p.def.sources.len();
    let finished = AtomicUsize::new(0);
    let show_progress = std::io::stderr().is_terminal();
    let on_source_done = |name: &str| {
        let k = finished.fetch_add(1, Ordering::Relaxed) + 1;
        if show_progress {
            eprint!("\r\x1b[2Kcomputing sources: {k}/{total} ({name})");
            if k == total {
                eprintln!();
            }
        }
    };
    let results = run_sources(
        p,
        &loaded.tree,
        &loaded.mapping,
        months,
        inputs,
        &phase1,
        &on_source_done,
    )?;
    for file in inputs.values().flatten() {
        file.check_unchanged().map_err(Error::Ingest)?;
    }
    Ok(results)
}

/// What stage `quality_gates` found: the rejected rows of all sources (sorted), every gate's
/// verdict per source, and the gates' warnings.
struct Checked {
    rejected: DataFrame,
    gates: Vec<Vec<GateResult>>,
    warnings: Vec<String>,
}

/// Stage `quality_gates`: `on_bad_rows = "fail"` and the data-quality gates; any failure stops
/// the run before anything is written.
fn check_quality(
    p: &Pipeline,
    results: &[SourceResult],
    months: RunMonths,
    live: bool,
) -> Result<Checked, Error> {
    let rejected = concat_frames(results.iter().map(|r| r.rejected.clone()).collect())?
        .unwrap_or_else(empty_rejected)
        .lazy()
        .sort(["source", "file", "row"], SortMultipleOptions::default())
        .collect()
        .map_err(data_err)?;
    if p.def.on_bad_rows == OnBadRows::Fail && rejected.height() > 0 {
        return Err(Error::BadRows {
            count: rejected.height(),
            first: first_rejected(&rejected),
        });
    }
    let gates = check_gates(p, results, months, live).map_err(data_err)?;
    let verdicts = |outcome: GateOutcome| -> Vec<String> {
        gates
            .iter()
            .flatten()
            .filter(|g| g.outcome == outcome)
            .map(|g| g.message.clone())
            .collect()
    };
    let failed = verdicts(GateOutcome::Fail);
    if !failed.is_empty() {
        return Err(Error::Gates(failed));
    }
    Ok(Checked {
        rejected,
        warnings: verdicts(GateOutcome::Warn),
        gates,
    })
}

/// Stage `finish_values`: every source's raw cells (cross-source indicators combined) made into
/// `indicator_values`.
fn finish(
    p: &Pipeline,
    loaded: &Loaded,
    results: &[SourceResult],
    months: RunMonths,
) -> Result<DataFrame, Error> {
    let rules: Vec<IndicatorRules> = p
        .def
        .indicators
        .iter()
        .map(|d| IndicatorRules::from_def(d, &loaded.tree))
        .collect();
    let raw: Vec<DataFrame> = results.iter().map(|r| r.values.clone()).collect();
    let raw = combine_sides(raw, p).map_err(data_err)?;
    finish_values(raw, &rules, &loaded.tree, months).map_err(data_err)
}

/// The counts the manifest and the summary give of an assessment.
struct Counts {
    status: BTreeMap<String, usize>,
    goal_status: BTreeMap<String, usize>,
    actions: publish::ActionCounts,
    flags: BTreeMap<String, usize>,
    fail_on_hits: Vec<(String, usize)>,
}

/// What stage `assess` hands on.
struct Assessed {
    deviations: DataFrame,
    goal_status: DataFrame,
    actions: DataFrame,
    signals: DataFrame,
    counts: Counts,
}

/// Stage `assess`: targets, goals, actions and signals, with their counts and the `--fail-on`
/// conditions met (against the run published before, at `previous`).
fn assess_values(
    loaded: &Loaded,
    values: &DataFrame,
    months: RunMonths,
    as_of: NaiveDate,
    fail_on: &[FailOn],
    previous: &Path,
) -> Result<Assessed, Error> {
    let p = &loaded.pipeline;
    let assess::Assessment {
        mut deviations,
        mut goal_status,
        actions,
        signals,
    } = assess::assess(
        p,
        &loaded.tree,
        &loaded.groups,
        &loaded.targets,
        &loaded.actions,
        values,
        months,
        as_of,
    )
    .map_err(data_err)?;
    if !loaded.analyses.is_empty() {
        deviations = assess::with_analysis(deviations, &loaded.analyses, "indicator_id")
            .map_err(data_err)?;
        goal_status =
            assess::with_analysis(goal_status, &loaded.analyses, "goal_id").map_err(data_err)?;
    }
    let counts = Counts {
        status: assess::status_counts(&deviations).map_err(data_err)?,
        goal_status: assess::status_counts(&goal_status).map_err(data_err)?,
        actions: action_counts(&actions).map_err(data_err)?,
        flags: flag_counts(&signals).map_err(data_err)?,
        fail_on_hits: fail_on_hits(&deviations, fail_on, previous).map_err(data_err)?,
    };
    let count = |c: &BTreeMap<String, usize>, s: &str| c.get(s).copied().unwrap_or(0);
    tracing::info!(
        not_met = count(&counts.status, "not_met"),
        partly_met = count(&counts.status, "partly_met"),
        met = count(&counts.status, "met"),
        no_data = count(&counts.status, "no_data"),
        goals_not_met = count(&counts.goal_status, "not_met"),
        goals_partly_met = count(&counts.goal_status, "partly_met"),
        goals_met = count(&counts.goal_status, "met"),
        act = count(&counts.flags, "act"),
        watch = count(&counts.flags, "watch"),
        actions_overdue = counts.actions.overdue,
        deviations_without_action = counts.actions.deviations_without_action,
        "assessed"
    );
    for (condition, rows) in &counts.fail_on_hits {
        tracing::warn!(condition = %condition, rows, "--fail-on hit: the run exits 3");
    }
    Ok(Assessed {
        deviations,
        goal_status,
        actions,
        signals,
        counts,
    })
}

/// The goal-model tables, and the assessment tables with names beside ids (for the tables
/// people open on their own).
struct NamedTables {
    model: Vec<(&'static str, DataFrame)>,
    deviations: DataFrame,
    goal_status: DataFrame,
    actions: DataFrame,
    signals: DataFrame,
}

impl NamedTables {
    fn new(
        loaded: &Loaded,
        deviations: DataFrame,
        goal_status: DataFrame,
        actions: DataFrame,
        signals: DataFrame,
    ) -> Result<NamedTables, Error> {
        let p = &loaded.pipeline;
        let mut model =
            publish::goal_model_tables(p, &loaded.tree, &loaded.groups).map_err(data_err)?;
        let table_of = |name: &str| {
            model
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, df)| df.clone())
                .expect("the goal model has this table")
        };
        let indicators = table_of("indicators.parquet");
        let goals = table_of("goals.parquet");
        let units = table_of("org_units.parquet");
        let indicator_names = (&indicators, "indicator_id", "indicator_name");
        let goal_names = (&goals, "goal_id", "goal_name");
        let unit_names = (&units, "org_unit_id", "org_name");
        let named = |df: DataFrame, pairs: &[(&DataFrame, &str, &str)]| {
            pairs
                .iter()
                .try_fold(df, |df, (names, key, name)| {
                    publish::with_name(df, names, key, name)
                })
                .map_err(data_err)
        };
        let tables = NamedTables {
            deviations: named(deviations, &[indicator_names])?,
            goal_status: named(goal_status, &[goal_names, unit_names])?,
            actions: named(actions, &[goal_names, unit_names])?,
            signals: named(signals, &[indicator_names, unit_names])?,
            model: Vec::new(),
        };
        if !loaded.analyses.is_empty() {
            model.push((
                "analyses.parquet",
                assess::analyses_table(&loaded.analyses).map_err(data_err)?,
            ));
        }
        Ok(NamedTables { model, ..tables })
    }

    /// Every table the run publishes, in the order they are written: the values, the rejected
    /// rows, the assessment tables, then the goal model.
    fn into_outputs(
        self,
        values: DataFrame,
        rejected: DataFrame,
    ) -> Vec<(&'static str, DataFrame)> {
        let mut tables = vec![
            ("indicator_values.parquet", values),
            ("rejected_rows.parquet", rejected),
            ("deviations.parquet", self.deviations),
            ("goal_status.parquet", self.goal_status),
            ("actions.parquet", self.actions),
            ("signals.parquet", self.signals),
        ];
        tables.extend(self.model);
        tables
    }
}

/// Whether the run published at `run_dir` was made by this styrkort version from the same
/// definitions and byte-identical inputs, and its tables are still the bytes it wrote (a damaged
/// or deleted table makes it out of date).
fn published_is_current(
    run_dir: &Path,
    definitions_hash: &str,
    inputs: &BTreeMap<String, Vec<InputFile>>,
) -> bool {
    let Some(m) = Manifest::read(run_dir) else {
        return false;
    };
    let mut published: Vec<(String, String, String)> = m
        .sources
        .iter()
        .flat_map(|s| {
            s.files
                .iter()
                .map(|f| (s.name.clone(), f.path.clone(), f.blake3.clone()))
        })
        .collect();
    let mut current: Vec<(String, String, String)> = inputs
        .iter()
        .flat_map(|(name, files)| {
            files
                .iter()
                .map(move |f| (name.clone(), f.display.clone(), f.blake3.clone()))
        })
        .collect();
    published.sort();
    current.sort();
    let same_inputs = m.styrkort_version == env!("CARGO_PKG_VERSION")
        && m.definitions_hash == definitions_hash
        && published == current;
    if !same_inputs {
        return false;
    }
    let intact = m.outputs.iter().all(|o| {
        publish::hash_file(&run_dir.join(&o.file)).ok() == Some((o.size, o.blake3.clone()))
    });
    if !intact {
        tracing::warn!(
            run_dir = %run_dir.display(),
            "the published run's tables do not match its manifest (damaged or removed): computing it again"
        );
    }
    intact
}

/// Every data-quality gate of every source, in source order.
fn check_gates(
    p: &Pipeline,
    results: &[SourceResult],
    months: RunMonths,
    live: bool,
) -> PolarsResult<Vec<Vec<GateResult>>> {
    results
        .iter()
        .map(|r| {
            let def = p
                .def
                .sources
                .iter()
                .find(|s| s.name.get_ref() == &r.source)
                .expect("results come from the pipeline's sources");
            let delivered = Delivered {
                rows_read: r.files.iter().map(|f| f.rows as i64).sum(),
                rejected: &r.rejected,
                month_rows: &r.month_rows,
            };
            let gates = quality::check_source(def, &delivered, months, live)?;
            for g in &gates {
                match g.outcome {
                    GateOutcome::Pass => tracing::info!(
                        source = %g.source, gate = g.gate, outcome = "pass", detail = %g.message, "gate"
                    ),
                    GateOutcome::Warn => tracing::warn!(
                        source = %g.source, gate = g.gate, outcome = "warn", detail = %g.message, "gate"
                    ),
                    GateOutcome::Fail => tracing::error!(
                        source = %g.source, gate = g.gate, outcome = "fail", detail = %g.message, "gate"
                    ),
                }
            }
            Ok(gates)
        })
        .collect()
}

/// Rows of the latest period of each grain meeting each `--fail-on` condition. For `new:`
/// conditions, a row counts only when its series had another status (or none) in the latest
/// period of the run `previous` (the `latest` link before this run); without a previous run
/// every row counts.
fn fail_on_hits(
    deviations: &DataFrame,
    conditions: &[FailOn],
    previous: &Path,
) -> PolarsResult<Vec<(String, usize)>> {
    if conditions.is_empty() {
        return Ok(Vec::new());
    }
    const SERIES: [&str; 4] = ["indicator_id", "org_unit_id", "segment", "grain"];
    // The rows of the latest period of each grain: their series and status.
    let latest = |df: DataFrame| {
        df.lazy().filter(col("is_latest_period")).select(
            SERIES
                .iter()
                .map(|c| col(*c))
                .chain([col("status")])
                .collect::<Vec<_>>(),
        )
    };
    let now = latest(deviations.clone());
    let before = if conditions.iter().any(|c| c.only_new) {
        let file = previous.join("deviations.parquet");
        match std::fs::File::open(&file) {
            Ok(f) => Some(latest(ParquetReader::new(f).finish()?)),
            Err(_) => {
                tracing::info!(
                    "no previously published run: every --fail-on new: row counts as new"
                );
                None
            }
        }
    } else {
        None
    };
    let mut hits = Vec::new();
    for c in conditions {
        let with_status = |lf: LazyFrame| -> PolarsResult<Vec<[String; 4]>> {
            series_keys(
                &lf.filter(col("status").eq(lit(c.status.as_str())))
                    .collect()?,
            )
        };
        let rows = with_status(now.clone())?;
        let n = match (&before, c.only_new) {
            (Some(before), true) => {
                let had_it: std::collections::HashSet<[String; 4]> =
                    with_status(before.clone())?.into_iter().collect();
                rows.iter().filter(|k| !had_it.contains(*k)).count()
            }
            _ => rows.len(),
        };
        if n > 0 {
            hits.push((c.label(), n));
        }
    }
    Ok(hits)
}

/// `(indicator, unit, segment, grain)` of each row.
fn series_keys(df: &DataFrame) -> PolarsResult<Vec<[String; 4]>> {
    let columns = [
        df.column("indicator_id")?.str()?,
        df.column("org_unit_id")?.str()?,
        df.column("segment")?.str()?,
        df.column("grain")?.str()?,
    ];
    Ok((0..df.height())
        .map(|i| columns.map(|c| c.get(i).unwrap_or_default().to_string()))
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

/// Series per flag (none / watch / act).
fn flag_counts(signals: &DataFrame) -> PolarsResult<BTreeMap<String, usize>> {
    let mut counts: BTreeMap<String, usize> = ["none", "watch", "act"]
        .iter()
        .map(|f| (f.to_string(), 0))
        .collect();
    for f in signals.column("flag")?.str()?.iter().flatten() {
        *counts.entry(f.to_string()).or_default() += 1;
    }
    Ok(counts)
}

fn data_err(e: PolarsError) -> Error {
    Error::from(e)
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
    let (size, blake3) = publish::hash_file(path).map_err(Error::io("read", path))?;
    Ok(FileRecord {
        path: crate::ingest::normalise(path),
        size,
        blake3,
    })
}

/// The pipeline file and every definitions file it names.
fn definition_files(p: &Pipeline) -> Result<Vec<FileRecord>, Error> {
    let mut files = vec![
        hash_file(&p.path)?,
        hash_file(&p.resolve(&p.def.org.units))?,
    ];
    for extra in [
        &p.def.org.code_mapping,
        &p.def.org.groups,
        &p.def.targets,
        &p.def.actions,
        &p.def.analyses,
    ]
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

fn source_records(
    p: &Pipeline,
    results: &[SourceResult],
    gates: &[Vec<GateResult>],
) -> Vec<SourceRecord> {
    results
        .iter()
        .zip(gates)
        .map(|(r, gates)| {
            let files: Vec<InputRecord> = r
                .files
                .iter()
                .map(|f| InputRecord {
                    path: f.display.clone(),
                    size: f.size,
                    rows: f.rows as i64,
                    blake3: f.blake3.clone(),
                    etag: f.object.as_ref().and_then(|o| o.e_tag.clone()),
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
                latest_month: r.month_rows.last().map(|(m, _)| m.label()),
                gates: gates
                    .iter()
                    .map(|g| GateRecord {
                        gate: g.gate.to_string(),
                        outcome: g.outcome.as_str().to_string(),
                        message: g.message.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn source_warnings(results: &[SourceResult]) -> Vec<String> {
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

/// The summary `styrkort run` prints.
impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&summary_text(self))
    }
}

fn summary_text(s: &RunSummary) -> String {
    use std::fmt::Write as _;
    let m = &s.manifest;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "styrkort run {} (as of {}), {} → {}",
        m.pipeline, m.as_of, m.first_period, m.last_period
    );
    let _ = writeln!(
        out,
        "  {} indicators × {} units × {} months, {} sources",
        s.indicators,
        s.units,
        s.periods,
        m.sources.len()
    );
    for src in &m.sources {
        let _ = writeln!(
            out,
            "  source {:<22} {:>9} rows read, {:>6} rejected, {:>7} outside the run's months",
            src.name, src.rows_read, src.rows_rejected, src.rows_outside_periods
        );
    }
    let _ = writeln!(
        out,
        "  wrote {} indicator value rows, {} rejected rows",
        s.value_rows, s.rejected_rows
    );
    let _ = writeln!(out, "  indicator status: {}", counts(&m.status_counts));
    let _ = writeln!(out, "  goal status:      {}", counts(&m.goal_status_counts));
    let _ = writeln!(
        out,
        "  actions: {} ({} overdue); {} not-met goal × unit without an open action",
        m.actions.actions, m.actions.overdue, m.actions.deviations_without_action
    );
    let _ = writeln!(
        out,
        "  series flagged: {} act, {} watch, {} none (signals.parquet)",
        m.signal_flags.get("act").copied().unwrap_or(0),
        m.signal_flags.get("watch").copied().unwrap_or(0),
        m.signal_flags.get("none").copied().unwrap_or(0)
    );
    for (status, n) in &s.fail_on_hits {
        let _ = writeln!(
            out,
            "  --fail-on: {n} row(s) {status} in the latest periods"
        );
    }
    let _ = writeln!(out, "  → {}", s.run_dir.display());
    let _ = write!(out, "  done in {:.2} s", s.elapsed_ms as f64 / 1000.0);
    out
}

fn counts(c: &std::collections::BTreeMap<String, usize>) -> String {
    crate::assess::Status::ALL
        .iter()
        .map(|s| format!("{} {}", c.get(s.as_str()).copied().unwrap_or(0), s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
