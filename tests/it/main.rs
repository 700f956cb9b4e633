//! The integration tests, as one test binary: each binary links polars and DataFusion, so one
//! link instead of eighteen. One module per area, named after the stage or job it checks.

mod common;

mod assess_forecast;
mod assess_signals;
mod assess_targets;
mod cli;
mod compute_grains;
mod compute_oracle;
mod compute_rollup;
mod definitions_validate;
mod engines;
mod fixtures_uddevalla;
mod ingest_rows;
mod kolada;
mod nightly_runs;
mod report;
mod stats_intervals_conformance;
mod stats_spc_conformance;
mod stats_spc_edges;
mod stats_trend_conformance;
