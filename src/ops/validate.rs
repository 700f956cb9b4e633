//! `styrkort validate`: every check that reads no more than file headers, all problems at once.

use std::path::Path;

use super::load::{load_all, org_changes_since_last_run, resolve_as_of, run_months};
use crate::definitions::Diagnostics;
use crate::{Error, compute, ingest, publish};

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
    for (source, files) in p.def.sources.iter().zip(ingest::expand_sources(&p)) {
        let files = match files {
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

/// What `styrkort validate` prints.
impl std::fmt::Display for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&validation_text(self))
    }
}

fn validation_text(v: &Validation) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "definitions ok: {} indicators, {} goals, {} org units",
        v.indicators, v.goals, v.units
    );
    for (source, files) in &v.sources {
        let _ = writeln!(
            out,
            "  source {source}: {} file(s), headers ok",
            files.len()
        );
        for f in files {
            let _ = writeln!(out, "    {f}");
        }
    }
    for w in &v.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}
