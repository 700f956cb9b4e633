//! `styrkort explain`: per source, how its indicators are computed — the two phases in words, the
//! engine that reads it, and with `--verbose` the polars plan or the SQL.

use std::path::Path;

use chrono::NaiveDate;

use super::load::{expand_inputs, load, resolve_as_of, run_months};
use crate::Error;
use crate::compute::{self, ExplainedSource, plan_source};

/// Per source: how its indicators are computed in two phases, and (with `verbose`) the
/// optimised polars plan of its one fused scan.
pub fn explain(
    path: &Path,
    as_of: Option<NaiveDate>,
    engine: Option<compute::Engine>,
    verbose: bool,
) -> Result<Vec<ExplainedSource>, Error> {
    let loaded = load(path)?;
    let p = &loaded.pipeline;
    let engine = super::run::resolve_engine(p, engine)?;
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
        out.push(ExplainedSource {
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
