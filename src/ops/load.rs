//! What every command starts with: the pipeline file read and checked with its org tree, code
//! mapping, groups, targets, actions and analyses; the run's as-of date and months; each
//! source's files found, hashed and checked.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::definitions::{self, Diagnostic, Diagnostics, Pipeline};
use crate::org::{self, CodeMapping, OrgTree};
use crate::period::{Month, RunMonths};
use crate::{Error, assess, ingest};

/// A pipeline with its org tree and code mapping, all checked.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub tree: OrgTree,
    pub(crate) mapping: CodeMapping,
    pub(crate) targets: assess::Targets,
    pub(crate) actions: Vec<assess::Action>,
    pub(crate) analyses: Vec<assess::Analysis>,
    pub(crate) groups: org::Groups,
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
pub(crate) struct OrgParts {
    pub(crate) tree: OrgTree,
    pub(crate) mapping: CodeMapping,
    pub(crate) targets: assess::Targets,
    pub(crate) actions: Vec<assess::Action>,
    pub(crate) analyses: Vec<assess::Analysis>,
    pub(crate) groups: org::Groups,
}

/// Loads as far as it can, collecting every problem instead of stopping at the first stage that
/// has one: the pipeline's own checks, the org tree, and (with a tree) the code mapping, groups,
/// targets and actions. Only a pipeline file that does not parse stops it.
pub(crate) fn load_all(
    path: &Path,
) -> Result<(Pipeline, Option<OrgParts>, Vec<Diagnostic>), Error> {
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
    problems.extend(org_references(&pipeline, &tree, &mapping, mapping_loaded));
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

/// What the pipeline names in the org tree and code mapping but they lack: scope roots, goal
/// owners, and sources whose codes the mapping has no entries for (checked only when the
/// mapping loaded, so a broken mapping is reported once).
fn org_references(
    pipeline: &Pipeline,
    tree: &OrgTree,
    mapping: &CodeMapping,
    mapping_loaded: bool,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
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
    problems
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

pub(crate) fn run_months(pipeline: &Pipeline, as_of: NaiveDate) -> Result<RunMonths, Error> {
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

/// Every source's files, found, hashed and checked (all files side by side, largest first); the
/// first fault in the pipeline's order of sources fails the run.
pub fn expand_inputs(p: &Pipeline) -> Result<BTreeMap<String, Vec<ingest::InputFile>>, Error> {
    p.def
        .sources
        .iter()
        .zip(ingest::expand_sources(p))
        .map(|(s, files)| {
            files
                .map(|files| (s.name.get_ref().clone(), files))
                .map_err(Error::Ingest)
        })
        .collect()
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
