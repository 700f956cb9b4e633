//! One error type for the library's operations, each kind with its exit code. Variants that wrap
//! another error keep it as their `source()`, so a caller (or a log) can walk the chain.
//!
//! The exit-code contract is stated once, in [`EXIT_CODES`], which the CLI's `--help` prints.

use std::path::PathBuf;

use polars::prelude::PolarsError;

use crate::compute::ComputeError;
use crate::definitions::Diagnostics;
use crate::ingest::IngestError;
use crate::publish::PublishError;

/// The exit codes of every command ([`Error::exit_code`] gives 1 and 2; `run --fail-on` gives 3).
pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 the run failed on data, inputs or output (nothing was published), \
2 invalid definitions or usage, 3 `run --fail-on` matched (the run was published).";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file, org tree or code mapping is wrong: fix the definitions.
    #[error("invalid definitions:\n{0}")]
    Definitions(Diagnostics),
    /// The command was asked for something it cannot do (e.g. an as-of date before any period).
    #[error("{0}")]
    Usage(String),
    /// A source's files: missing, unreadable, malformed, or changed while the run read them.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Compute(#[from] ComputeError),
    #[error("{count} bad row(s) and the pipeline sets on_bad_rows = \"fail\"; first: {first}")]
    BadRows { count: usize, first: String },
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A table operation failed (reading, shaping or writing a table), with what was being done.
    #[error("{context}{source}")]
    Table {
        /// `path: ` or empty.
        context: String,
        #[source]
        source: PolarsError,
    },
    /// A file or folder could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Excel workbook could not be written.
    #[error("{}: {source}", path.display())]
    Workbook {
        path: PathBuf,
        #[source]
        source: rust_xlsxwriter::XlsxError,
    },
    /// A published run's content is not what the command needs (e.g. a column with no Excel
    /// form).
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

impl From<PolarsError> for Error {
    fn from(source: PolarsError) -> Error {
        Error::Table {
            context: String::new(),
            source,
        }
    }
}

impl Error {
    /// A table error about the file at `path`.
    pub(crate) fn table_at(path: &std::path::Path) -> impl Fn(PolarsError) -> Error + use<> {
        let context = format!("{}: ", path.display());
        move |source| Error::Table {
            context: context.clone(),
            source,
        }
    }

    /// An I/O error doing `action` ("read", "write", "create") to `path`.
    pub fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl Fn(std::io::Error) -> Error + use<> {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path: path.clone(),
            source,
        }
    }

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
