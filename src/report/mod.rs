//! What people read: in a terminal, the run summary, validation results, the explained plans and
//! `inspect`; for the nämnd, the HTML report (`html`) and the Excel workbook (`excel`).

mod adhoc_spc;
mod charts;
mod excel;
mod html;
mod inspect;
mod words;

pub use adhoc_spc::{AdhocOptions, Format, spc_report};
pub use excel::export_xlsx;
pub use html::{ReportOptions, html_report};
pub use inspect::{
    InspectFilter, InspectFormat, deviations_for_programs, render as inspect, render_goals,
    render_signals,
};
pub use words::Lang;

use std::fmt::Write;
use std::path::Path;

use polars::prelude::{DataFrame, ParquetReader, SerReader};

use crate::compute::ExplainedSource;

/// One table of a published run folder (`name` such as `deviations.parquet`).
fn read_run_table(dir: &Path, name: &str) -> Result<DataFrame, crate::Error> {
    let path = dir.join(name);
    let file = std::fs::File::open(&path).map_err(|e| {
        crate::Error::Usage(format!(
            "{}: {e} (is this a run folder, OUT/<pipeline>/as_of=<date>, written by this styrkort version?)",
            path.display()
        ))
    })?;
    ParquetReader::new(file)
        .finish()
        .map_err(crate::Error::table_at(&path))
}

/// Up to five known ids that look most like `wanted` (longest common prefix, then the closest
/// length), for "did you mean" messages.
fn nearest<'a>(wanted: &str, known: impl IntoIterator<Item = &'a String>) -> String {
    let score = |k: &str| {
        let prefix = k
            .chars()
            .zip(wanted.chars())
            .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
            .count();
        (std::cmp::Reverse(prefix), k.len().abs_diff(wanted.len()))
    };
    let mut ranked: Vec<&String> = known.into_iter().collect();
    ranked.sort_by_key(|k| (score(k), k.to_string()));
    ranked
        .into_iter()
        .take(5)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn explained(sources: &[ExplainedSource]) -> String {
    let mut out = String::new();
    for s in sources {
        let _ = writeln!(out, "== source {} ==", s.source);
        let _ = writeln!(out, "files: {}", s.files.join(", "));
        let _ = writeln!(
            out,
            "{} indicators fused into one plan: {}",
            s.indicators.len(),
            s.indicators.join(", ")
        );
        if s.breakdowns.is_empty() {
            let _ = writeln!(out, "group-bys: total");
        } else {
            let _ = writeln!(out, "group-bys: total, by {}", s.breakdowns.join(", by "));
        }
        let _ = writeln!(out, "engine: {}", s.engine);
        if s.engine.starts_with("polars") {
            let _ = writeln!(
                out,
                "phase 1 — one pass over the rows (streaming, in batches): group by own unit, month and segment into partial states (sums, counts, min and max added into an array of unit × month cells, medians' whole-number values counted per cell, in file order):"
            );
        } else {
            let _ = writeln!(
                out,
                "phase 1 — SQL on {}: one GROUPING SETS statement for every sum and count, one per distinct-value set or value multiset; group by own unit, month and segment into partial states:",
                s.engine
            );
        }
        for (label, members, sets) in &s.segments {
            let plural =
                |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
            let _ = writeln!(
                out,
                "  {label}: sums and counts of {}{}",
                plural(*members, "indicator"),
                if *sets > 0 {
                    format!(
                        ", plus {} of distinct values or value multisets",
                        plural(*sets, "output")
                    )
                } else {
                    String::new()
                }
            );
        }
        for (id, kinds) in &s.state_kinds {
            let _ = writeln!(out, "    {id}: {kinds}");
        }
        let _ = writeln!(
            out,
            "phase 2 — roll the partial table up: children into parents over the org tree, months into quarter / tertial / year / ytd; then numerator and denominator per cell"
        );
        if !s.direct.is_empty() {
            let _ = writeln!(
                out,
                "computed directly from rows (no exact mergeable state; every row joined to its ancestors and periods):"
            );
            for (id, why) in &s.direct {
                let _ = writeln!(out, "    {id}: {why}");
            }
        }
        for (k, statement) in s.sql.iter().enumerate() {
            let _ = writeln!(out, "SQL statement {}:\n  {statement}", k + 1);
        }
        if !s.polars_plan.is_empty() {
            let _ = writeln!(
                out,
                "polars plan (optimised; the sums and counts appear as the group-by whose place the array takes):"
            );
            for line in s.polars_plan.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        let _ = writeln!(out);
    }
    out
}
