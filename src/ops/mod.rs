//! One entry point per command, each sequencing the stages it needs: [`load`] (what every
//! command starts with), [`validate`], [`explain`] and [`run`]. `inspect`, `report` and `spc`
//! read a published run and enter at [`crate::report`] directly; `generate` and `init` at
//! [`crate::generate`].

mod explain;
mod load;
mod run;
mod validate;

pub use explain::explain;
pub use load::{
    Loaded, MAX_RUN_MONTHS, expand_inputs, load, org_changes_since_last_run, resolve_as_of,
};
pub use run::{FailOn, RunOptions, RunOutcome, RunSummary, run, run_or_skip};
pub use validate::{Validation, validate, validate_against};
