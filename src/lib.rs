//! styrkort: a municipality's operational data in, the follow-up of its goals out.
//!
//! The stages, in the order data moves through them:
//! [`definitions`] (the pipeline file) → [`ingest`] (sources to typed rows) → [`org`] (the tree and
//! code mapping) → [`compute`] (fused indicator plans and roll-up) → [`publish`] (tables, manifest,
//! atomic publish) → [`report`] (what people read), with [`assess`] between compute and publish.
//! No stage calls a later one. One entry point per command lives in `ops` ([`load`],
//! [`validate`], [`explain`], [`run`]), re-exported here: this file is only the front door.

// Everything outside the library's promise (what this file and the modules below export) is
// `pub(crate)`; the lint keeps it so.
#![warn(unreachable_pub)]

pub mod assess;
pub mod compute;
pub mod definitions;
mod error;
pub mod generate;
pub mod ingest;
mod ops;
pub mod org;
pub mod period;
pub mod publish;
pub mod report;
pub mod schema;

pub use error::{EXIT_CODES, Error};
pub use ops::{
    FailOn, Loaded, MAX_RUN_MONTHS, RunOptions, RunOutcome, RunSummary, Validation, expand_inputs,
    explain, load, org_changes_since_last_run, resolve_as_of, run, run_or_skip, validate,
    validate_against,
};
