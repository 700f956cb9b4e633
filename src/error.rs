//! One error type for the library's operations, each kind with its exit code.

use crate::compute::ComputeError;
use crate::definitions::Diagnostics;
use crate::publish::PublishError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file, org tree or code mapping is wrong: fix the definitions.
    #[error("invalid definitions:\n{0}")]
    Definitions(Diagnostics),
    /// The command was asked for something it cannot do (e.g. an as-of date before any period).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Compute(#[from] ComputeError),
    #[error("{count} bad row(s) and the pipeline sets on_bad_rows = \"fail\"; first: {first}")]
    BadRows { count: usize, first: String },
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("{0}")]
    Data(String),
    /// A data-quality gate failed: nothing was published.
    #[error("data-quality gate(s) failed, nothing was published:\n{}", .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Gates(Vec<String>),
    /// An input file changed while the run read it.
    #[error("{0}")]
    InputChanged(String),
    /// Everything `validate` found, every stage at once: definition problems (exit 2) and data
    /// problems (exit 1 when there are no definition problems).
    #[error("{}", problems_text(definitions, data))]
    Problems {
        definitions: Diagnostics,
        data: Vec<String>,
    },
    /// A run failed: the error, with the run's id and the stage it failed in (for logs).
    #[error("{inner}")]
    InRun {
        run_id: String,
        stage: &'static str,
        inner: Box<Error>,
    },
    /// Another run holds the output directory.
    #[error("{0}")]
    Lock(String),
}

impl Error {
    /// 2 for invalid definitions or usage, 1 for a run that failed on data or output.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::InRun { inner, .. } => inner.exit_code(),
            Error::Definitions(_) | Error::Usage(_) => 2,
            Error::Problems { definitions, .. } if !definitions.0.is_empty() => 2,
            Error::Compute(ComputeError::Expression { .. }) => 2,
            _ => 1,
        }
    }
}

fn problems_text(definitions: &Diagnostics, data: &[String]) -> String {
    let mut lines = Vec::new();
    if !definitions.0.is_empty() {
        lines.push(format!("invalid definitions:\n{definitions}"));
    }
    if !data.is_empty() {
        lines.push(format!("problems in the data:\n{}", data.join("\n")));
    }
    lines.join("\n")
}
