//! The pipeline model: what a `pipelines/*.toml` file says, as serde types, and the checks that
//! need nothing but the file itself (ids, references, expressions against declared columns).
//!
//! Checks that need data — the org tree, code mappings, input headers — live with the stage that
//! reads that data (`org`, `ingest`); they report through the same [`Diagnostic`].

mod diagnostic;
mod engine;
mod model;
mod sheet;
mod table;
mod targets;
mod validate;

pub use diagnostic::{Diagnostic, Diagnostics};
pub(crate) use diagnostic::{did_you_mean, line_col};
pub use engine::Engine;
pub use model::*;
pub(crate) use sheet::{CellText, read_sheet};
pub(crate) use table::{TableDialect, TableRow, read_table, read_table_with};
pub use targets::TargetKind;
pub(crate) use targets::{TargetDefault, ToleranceDef};
pub(crate) use validate::compile_sql_expr;

use std::path::{Component, Path, PathBuf};

/// The pipeline file's text; a file saved as "ANSI" (Windows-1252) by an editor is named with
/// its first bad line and what to do.
fn read_pipeline_text(path: &Path) -> Result<String, Diagnostics> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics::one(Diagnostic::file(
            path,
            format!("cannot read pipeline file: {e}"),
        ))
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line = 1 + memchr::memchr_iter(b'\n', &bytes[..at]).count();
        Diagnostics::one(Diagnostic::at_line(
            path,
            line,
            "pipeline",
            "not valid UTF-8 (saved as ANSI/Windows-1252?): save the pipeline file as UTF-8",
        ))
    })
}

/// A pipeline file read from disk and checked on its own terms.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline file, as given.
    pub(crate) path: PathBuf,
    /// Directory that relative paths inside the file are resolved against.
    pub(crate) base_dir: PathBuf,
    /// The raw TOML text: hashed into the manifest and used for line numbers in diagnostics.
    pub(crate) text: String,
    pub(crate) def: PipelineDef,
    /// The indicators as the sources' plans compute them (cross-source ones split into sides).
    computed: Vec<IndicatorDef>,
}

impl Pipeline {
    /// Reads and parses a pipeline file, then runs the static checks. All problems found are
    /// returned together so a user can fix them in one go.
    pub fn load(path: &Path) -> Result<Pipeline, Diagnostics> {
        Self::from_text(path, read_pipeline_text(path)?)
    }

    /// The pipeline's name: the folder its runs are published under.
    pub fn name(&self) -> &str {
        self.def.name.get_ref()
    }

    /// Parses pipeline text as if it were read from `path` (used by `load` and by tests).
    pub(crate) fn from_text(path: &Path, text: String) -> Result<Pipeline, Diagnostics> {
        let (pipeline, problems) = Self::parse_text(path, text)?;
        if problems.is_empty() {
            Ok(pipeline)
        } else {
            Err(Diagnostics(problems))
        }
    }

    /// Reads and parses a pipeline file; the static checks' problems come back beside the
    /// pipeline, so later stages can still be checked. Only an unreadable or unparsable file is
    /// an error.
    pub(crate) fn parse(path: &Path) -> Result<(Pipeline, Vec<Diagnostic>), Diagnostics> {
        Self::parse_text(path, read_pipeline_text(path)?)
    }

    fn parse_text(path: &Path, text: String) -> Result<(Pipeline, Vec<Diagnostic>), Diagnostics> {
        let def: PipelineDef = toml::from_str(&text).map_err(|e| {
            let location = e.span().map(|s| line_col(&text, s.start));
            Diagnostics::one(Diagnostic {
                file: path.to_path_buf(),
                location,
                item: "pipeline".into(),
                message: e.message().trim().to_string(),
            })
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let computed = def
            .indicators
            .iter()
            .flat_map(|i| {
                if i.is_cross_source() {
                    i.sides()
                } else {
                    vec![i.clone()]
                }
            })
            .collect();
        let pipeline = Pipeline {
            path: path.to_path_buf(),
            base_dir,
            text,
            def,
            computed,
        };
        let problems = validate::check(&pipeline);
        Ok((pipeline, problems))
    }

    /// Resolves a path written in the pipeline file (relative to the file's directory).
    pub(crate) fn resolve(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        };
        PathBuf::from(normalise(&joined))
    }

    /// Every goal id the pipeline defines.
    pub(crate) fn goal_ids(&self) -> std::collections::BTreeSet<&str> {
        self.def
            .goals
            .iter()
            .map(|g| g.id.get_ref().as_str())
            .collect()
    }

    /// Every indicator id the pipeline defines.
    pub(crate) fn indicator_ids(&self) -> std::collections::BTreeSet<&str> {
        self.def
            .indicators
            .iter()
            .map(|i| i.id.get_ref().as_str())
            .collect()
    }

    /// A diagnostic pointing at a span of the pipeline file.
    pub(crate) fn diag_at(
        &self,
        span: std::ops::Range<usize>,
        item: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.path.clone(),
            location: Some(line_col(&self.text, span.start)),
            item: item.into(),
            message: message.into(),
        }
    }

    /// How the definitions tables are written (`[tables]`).
    pub(crate) fn table_dialect(&self) -> TableDialect {
        let tables = &self.def.tables;
        TableDialect {
            encoding: tables
                .encoding
                .as_ref()
                .and_then(|e| encoding_rs::Encoding::for_label(e.get_ref().as_bytes()))
                .filter(|e| *e != encoding_rs::UTF_8),
            decimal_comma: tables.decimal.as_ref().is_some_and(|d| d.get_ref() == ","),
        }
    }

    /// `" (did you mean 'X'?)"` for the indicator id most like `id`, or "".
    pub(crate) fn indicator_hint(&self, id: &str) -> String {
        did_you_mean(
            id,
            self.def.indicators.iter().map(|i| i.id.get_ref().as_str()),
        )
    }

    /// `" (did you mean 'X'?)"` for the goal id most like `id`, or "".
    pub(crate) fn goal_hint(&self, id: &str) -> String {
        did_you_mean(id, self.goal_ids())
    }

    /// `" (did you mean 'X'?)"` for the source name most like `name`, or "".
    pub(crate) fn source_hint(&self, name: &str) -> String {
        did_you_mean(
            name,
            self.def.sources.iter().map(|s| s.name.get_ref().as_str()),
        )
    }

    pub(crate) fn source(&self, name: &str) -> Option<&SourceDef> {
        self.def.sources.iter().find(|s| s.name.get_ref() == name)
    }

    /// What the sources' plans compute, in definition order: every single-source indicator,
    /// and in place of a cross-source one its two sides (`id::numerator`, `id::denominator`).
    pub(crate) fn computed_indicators(&self) -> &[IndicatorDef] {
        &self.computed
    }

    /// The computed indicators (see [`Pipeline::computed_indicators`]) that read `source`.
    pub(crate) fn indicators_of<'a>(
        &'a self,
        source: &'a str,
    ) -> impl Iterator<Item = &'a IndicatorDef> {
        self.computed
            .iter()
            .filter(move |i| i.source_name() == source)
    }
}

/// Removes `.` and `dir/..` from a path without touching the file system, so paths read well in
/// messages (`fixtures/x.csv`, not `pipelines/../fixtures/x.csv`).
pub(crate) fn normalise(path: &Path) -> String {
    let mut parts: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let p: PathBuf = parts.iter().collect();
    p.to_string_lossy().to_string()
}
