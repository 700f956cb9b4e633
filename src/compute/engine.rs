//! Where phase 1 runs. polars by default; with the `distributed` cargo feature also Apache
//! DataFusion, in this process or on a Ballista cluster, from the SQL of [`super::sql`].
//! Phases 2–3 (roll-up, finish), assessment and publishing always run here.

use std::collections::BTreeMap;
use std::time::Duration;

use polars::prelude::*;

use crate::definitions::Engine;
use crate::ingest::InputFile;

/// How long a SQL engine may take over one source unless the pipeline says otherwise: a
/// nightly run must fail, not hang, when a cluster stops answering.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Phase 1's answers for one source from a SQL engine, shaped as the polars engine shapes them.
pub(crate) struct SqlAnswers {
    /// Per phase-1 output: its frame (scalar states, or a median's values and multiplicities);
    /// `None` for distinct-value outputs, which come per column in `distinct`.
    pub(crate) outputs: Vec<Option<DataFrame>>,
    /// `(output, column)` → `__unit, __month, [__segment], <column>` (value ids).
    pub(crate) distinct: BTreeMap<(usize, String), DataFrame>,
    /// `__month, rows`: usable rows per month, the run's and others.
    pub(crate) month_rows: DataFrame,
    /// Rejected rows per file: `__row` (0-based) and the raw declared columns.
    pub(crate) rejected: Option<Vec<DataFrame>>,
    pub(crate) rejected_count: i64,
}

/// The engine of a run, started.
pub(crate) struct Phase1 {
    pub(crate) engine: Engine,
    #[cfg(feature = "distributed")]
    sql: Option<super::datafusion::SqlEngine>,
}

impl Phase1 {
    pub(crate) fn polars() -> Phase1 {
        Phase1 {
            engine: Engine::Polars,
            #[cfg(feature = "distributed")]
            sql: None,
        }
    }

    /// Starts the engine (for Ballista: a session with the scheduler is opened per source).
    pub(crate) fn start(engine: Engine, timeout: Duration) -> Result<Phase1, String> {
        if !engine.is_sql() {
            return Ok(Phase1::polars());
        }
        #[cfg(feature = "distributed")]
        {
            let sql = super::datafusion::SqlEngine::start(&engine, timeout)?;
            Ok(Phase1 {
                engine,
                sql: Some(sql),
            })
        }
        #[cfg(not(feature = "distributed"))]
        {
            let _ = timeout;
            Err(format!(
                "engine {engine}: this styrkort was built without the `distributed` feature; build it with `cargo build --release --features distributed`"
            ))
        }
    }

    /// Runs a source's phase 1 as SQL, or `None` when it runs on polars.
    pub(crate) fn answers(
        &self,
        source: &str,
        sql: Option<&super::sql::SqlSource>,
        expected: &[Schema],
        files: &[InputFile],
        months: (i32, i32),
    ) -> Option<Result<SqlAnswers, String>> {
        #[cfg(feature = "distributed")]
        {
            let engine = self.sql.as_ref()?;
            Some(engine.run(source, sql?, expected, files, months))
        }
        #[cfg(not(feature = "distributed"))]
        {
            let _ = (source, sql, expected, files, months);
            None
        }
    }
}
