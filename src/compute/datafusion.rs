//! Phase 1 on Apache DataFusion, in this process or on a Ballista cluster (the `distributed`
//! cargo feature). The statements come from [`super::sql`]; the answers come back as the same
//! polars frames the polars engine gives, so phases 2–3 cannot tell the engines apart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{self as arrow_types, DataType as ArrowType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use polars::prelude::*;

use super::engine::SqlAnswers;
use super::sql::{ROW_REJECTED, ROW_USABLE, SqlOutput, SqlSource};
use crate::definitions::Engine;
use crate::ingest::InputFile;

/// A DataFusion session (local or on a cluster) and the runtime its futures run on.
pub(crate) struct SqlEngine {
    engine: Engine,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
}

impl SqlEngine {
    pub(crate) fn start(engine: &Engine, timeout: Duration) -> Result<SqlEngine, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok(SqlEngine {
            engine: engine.clone(),
            runtime,
            timeout,
        })
    }

    /// A fresh session: `ordered` asks for one partition per scan, so a window numbers rows in
    /// file order.
    async fn session(&self, ordered: bool) -> datafusion::error::Result<SessionContext> {
        Ok(match &self.engine {
            Engine::Ballista { url } => {
                let mut config = SessionConfig::new_with_ballista();
                if ordered {
                    config = ordered_config(config);
                }
                let state = SessionStateBuilder::new()
                    .with_config(config)
                    .with_default_features()
                    .build();
                SessionContext::remote_with_state(url, state).await?
            }
            _ => {
                let mut config = SessionConfig::new();
                if ordered {
                    config = ordered_config(config);
                }
                SessionContext::new_with_config(config)
            }
        })
    }

    /// Runs one source's statements. Errors name the engine.
    pub(crate) fn run(
        &self,
        source: &str,
        sql: &SqlSource,
        expected: &[Schema],
        files: &[InputFile],
        months: (i32, i32),
    ) -> Result<SqlAnswers, String> {
        let work = self.answers(source, sql, expected, files, months);
        let answered = self.runtime.block_on(async {
            tokio::time::timeout(self.timeout, work)
                .await
                .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))?
        });
        answered.map_err(|e| format!("engine {}: {e}", self.engine))
    }

    async fn answers(
        &self,
        source: &str,
        sql: &SqlSource,
        expected: &[Schema],
        files: &[InputFile],
        (first, last): (i32, i32),
    ) -> Result<SqlAnswers, String> {
        let ctx = self.session(false).await.map_err(|e| e.to_string())?;
        let table = format!("source_{source}");
        register(&ctx, &table, files).await?;
        let statements = sql.statements(&table)?;
        tracing::debug!(statement = %statements.states, "phase 1 as SQL");

        let all = std::iter::once(statements.states.clone())
            .chain(statements.sets.iter().map(|(_, _, s)| s.clone()));
        let mut answered = query_all(&ctx, all).await?.into_iter();
        let states = answered.next().unwrap_or_default();
        let grouping = GroupingSets::new(states, &statements.dims)?;
        let counts = grouping.rows(&["__month", "__state"])?;
        let (usable, rejected_count) = row_counts(&counts)?;

        let in_months = || {
            col("__unit")
                .is_not_null()
                .and(col("__month").gt_eq(lit(first)))
                .and(col("__month").lt_eq(lit(last)))
        };
        let mut outputs: Vec<Option<DataFrame>> = vec![None; sql.outputs.len()];
        for (at, dim, names) in &statements.scalar_outputs {
            let mut grouped = vec!["__unit", "__month"];
            if let Some(d) = dim {
                grouped.push(d.as_str());
            }
            let frame = grouping.rows(&grouped)?;
            let mut select = vec![col("__unit"), col("__month"), segment(dim.as_deref())];
            select.extend(names.iter().map(|n| col(n.as_str())));
            let frame = frame
                .lazy()
                .filter(in_months())
                .select(select)
                .collect()
                .map_err(|e| e.to_string())?;
            outputs[*at] = Some(conform(frame, &expected[*at])?);
        }
        let mut distinct = BTreeMap::new();
        for ((at, column, _), frame) in statements.sets.iter().zip(answered) {
            let frame = frame.lazy().filter(in_months());
            let answer = set_answer(frame, &sql.outputs[*at], column, &expected[*at])?;
            match &sql.outputs[*at] {
                SqlOutput::Median { .. } => outputs[*at] = Some(answer),
                _ => {
                    distinct.insert((*at, column.clone()), answer);
                }
            }
        }

        let rejected = if rejected_count > 0 {
            Some(self.rejected_rows(source, sql, files).await?)
        } else {
            None
        };
        Ok(SqlAnswers {
            outputs,
            distinct,
            month_rows: usable,
            rejected,
            rejected_count,
        })
    }

    /// Each file's rejected rows, numbered in file order.
    async fn rejected_rows(
        &self,
        source: &str,
        sql: &SqlSource,
        files: &[InputFile],
    ) -> Result<Vec<DataFrame>, String> {
        let ctx = self.session(true).await.map_err(|e| e.to_string())?;
        let raw: Vec<(String, String)> = sql
            .typed
            .iter()
            .filter_map(|(name, e)| match e {
                Expr::Column(c) if name.starts_with("__raw_") => {
                    Some((name.clone(), c.to_string()))
                }
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (k, file) in files.iter().enumerate() {
            let table = format!("rejected_{source}_{k}");
            register(&ctx, &table, std::slice::from_ref(file)).await?;
            let names: Vec<String> = raw.iter().map(|(r, _)| r.clone()).collect();
            let frame = query(&ctx, &sql.rejected_statement(&table, &names)?).await?;
            let mut select = vec![(col("__rn") - lit(1)).cast(IDX_DTYPE).alias("__row")];
            select.extend(raw.iter().map(|(r, c)| col(r.as_str()).alias(c.as_str())));
            out.push(
                frame
                    .lazy()
                    .select(select)
                    .collect()
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(out)
    }
}

/// Usable rows per month (`__month, rows`) and the number of rejected rows, from the
/// `(__month, __state)` grouping set.
fn row_counts(counts: &DataFrame) -> Result<(DataFrame, i64), String> {
    let state = counts
        .column("__state")
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(|e| e.to_string())?;
    let state = state.i64().map_err(|e| e.to_string())?;
    let usable = counts
        .filter(&state.equal(ROW_USABLE as i64))
        .and_then(|f| {
            f.lazy()
                .select([
                    col("__month").cast(DataType::Int32),
                    col("__rows").cast(DataType::Int64).alias("rows"),
                ])
                .collect()
        })
        .map_err(|e| e.to_string())?;
    let rejected = counts
        .filter(&state.equal(ROW_REJECTED as i64))
        .and_then(|f| f.column("__rows")?.cast(&DataType::Int64))
        .map_err(|e| e.to_string())?
        .i64()
        .map_err(|e| e.to_string())?
        .sum()
        .unwrap_or(0);
    Ok((usable, rejected))
}

/// A distinct set's or multiset's answer as the polars engine shapes it: a median's
/// `__unit, __month, __segment, __v, __w`; a distinct set's `__unit, __month, [__segment],
/// <column>` with the values as dictionary ids.
fn set_answer(
    frame: LazyFrame,
    output: &SqlOutput,
    column: &str,
    expected: &Schema,
) -> Result<DataFrame, String> {
    let dim = match output {
        SqlOutput::Distinct { dim, .. } | SqlOutput::Median { dim, .. } => dim.as_deref(),
        SqlOutput::Scalars { .. } => None,
    };
    let frame = match dim {
        Some(d) => frame.rename(["__dim"], [d], true),
        None => frame,
    };
    if let SqlOutput::Median { .. } = output {
        let frame = frame
            .select([
                col("__unit"),
                col("__month"),
                segment(dim),
                col("__v"),
                col("__w"),
            ])
            .collect()
            .map_err(|e| e.to_string())?;
        return conform(frame, expected);
    }
    let mut select = vec![col("__unit"), col("__month")];
    if let Some(d) = dim {
        // The value as text, as the polars engine hands it (phase 2 makes the labels).
        select.push(col(d).cast(DataType::String).alias("__segment"));
    }
    let ids = Arc::new(super::ValueIds::default());
    select.push(
        col("__v")
            .map(
                move |v| ids.ids(&v),
                |_, f| Ok(Field::new(f.name().clone(), DataType::UInt32)),
            )
            .alias(column),
    );
    let frame = frame.select(select).collect().map_err(|e| e.to_string())?;
    // The polars output holds every distinct column of its filter; this answer one of them.
    let mut schema = Schema::default();
    for name in frame.get_column_names() {
        let dtype = expected.get(name).cloned().unwrap_or(DataType::UInt32);
        schema.insert(name.clone(), dtype);
    }
    conform(frame, &schema)
}

fn ordered_config(config: SessionConfig) -> SessionConfig {
    config
        .with_target_partitions(1)
        .with_repartition_file_scans(false)
}

/// `total`, or the breakdown's `dim=value` label (as the polars engine writes it).
fn segment(dim: Option<&str>) -> Expr {
    match dim {
        Some(d) => super::segment_label(d).alias("__segment"),
        None => lit("total").alias("__segment"),
    }
}

/// Registers the files as one Parquet table.
async fn register(ctx: &SessionContext, table: &str, files: &[InputFile]) -> Result<(), String> {
    // The session reads the store's footers while planning (a cluster's scheduler and executors
    // have their own stores, from their AWS_* variables): one store per bucket.
    let mut buckets = std::collections::BTreeSet::new();
    let urls = files
        .iter()
        .map(|f| match &f.object {
            Some(object) => {
                let (bucket, _) = crate::ingest::remote::split(&object.url)?;
                if buckets.insert(bucket) {
                    let store = crate::ingest::remote::store_for(bucket)?;
                    ctx.register_object_store(&crate::ingest::remote::bucket_url(bucket)?, store);
                }
                ListingTableUrl::parse(&object.url).map_err(|e| e.to_string())
            }
            None => {
                let path = std::path::absolute(&f.read_path).map_err(|e| e.to_string())?;
                ListingTableUrl::parse(path.to_string_lossy()).map_err(|e| e.to_string())
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await
        .map_err(|e| e.to_string())?;
    let provider = ListingTable::try_new(config).map_err(|e| e.to_string())?;
    ctx.register_table(table, Arc::new(provider))
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn query(ctx: &SessionContext, statement: &str) -> Result<DataFrame, String> {
    let frame = ctx.sql(statement).await.map_err(|e| e.to_string())?;
    let schema: arrow_types::SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(|e| e.to_string())?;
    to_polars(&schema, &batches)
}

/// Every statement at once, the answers in the statements' order: on a cluster each is a job,
/// and their scheduling overlaps instead of adding up. Dropping the set (a timeout) cancels
/// them.
async fn query_all(
    ctx: &SessionContext,
    statements: impl Iterator<Item = String>,
) -> Result<Vec<DataFrame>, String> {
    let mut running = tokio::task::JoinSet::new();
    let mut n = 0;
    for (k, statement) in statements.enumerate() {
        let ctx = ctx.clone();
        running.spawn(async move { (k, query(&ctx, &statement).await) });
        n += 1;
    }
    let mut answered: Vec<Option<DataFrame>> = vec![None; n];
    while let Some(done) = running.join_next().await {
        let (k, frame) = done.map_err(|e| e.to_string())?;
        answered[k] = Some(frame?);
    }
    Ok(answered
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// The answer of the grouping-sets statement (see `SourceStatements::states`), split by set.
struct GroupingSets {
    /// The key columns in `grouping()` order.
    keys: Vec<String>,
    states: DataFrame,
    set_of: Int64Chunked,
}

impl GroupingSets {
    fn new(states: DataFrame, dims: &[String]) -> Result<GroupingSets, String> {
        let mut keys = vec!["__unit".to_string(), "__month".to_string()];
        keys.extend(dims.iter().cloned());
        keys.push("__state".to_string());
        let set_of = states
            .column("__set")
            .and_then(|c| c.cast(&DataType::Int64))
            .and_then(|c| c.i64().cloned())
            .map_err(|e| e.to_string())?;
        Ok(GroupingSets {
            keys,
            states,
            set_of,
        })
    }

    /// The rows of the set that groups by exactly the keys `grouped`.
    fn rows(&self, grouped: &[&str]) -> Result<DataFrame, String> {
        // grouping(k1, …, kn) sets bit n-1-i when key i is left out of the set.
        let n = self.keys.len();
        let id: i64 = self
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| !grouped.contains(&k.as_str()))
            .map(|(i, _)| 1i64 << (n - 1 - i))
            .sum();
        self.states
            .filter(&self.set_of.equal(id))
            .map_err(|e| e.to_string())
    }
}

/// Casts every column to the type the polars engine gives it.
fn conform(frame: DataFrame, expected: &Schema) -> Result<DataFrame, String> {
    let select: Vec<Expr> = expected
        .iter()
        .map(|(name, dtype)| col(name.clone()).strict_cast(dtype.clone()))
        .collect();
    frame
        .lazy()
        .select(select)
        .collect()
        .map_err(|e| format!("answers of another shape than polars' plan: {e}"))
}

/// Arrow record batches as a polars frame (column by column; the answers are partial states,
/// small beside the rows).
fn to_polars(
    schema: &arrow_types::SchemaRef,
    batches: &[RecordBatch],
) -> Result<DataFrame, String> {
    let height: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (k, field) in schema.fields().iter().enumerate() {
        let arrays: Vec<&ArrayRef> = batches.iter().map(|b| b.column(k)).collect();
        columns.push(to_column(field.name(), field.data_type(), &arrays)?);
    }
    DataFrame::new(height, columns).map_err(|e| e.to_string())
}

fn to_column(name: &str, dtype: &ArrowType, arrays: &[&ArrayRef]) -> Result<Column, String> {
    // Small integers widen (polars here is built without its 8- and 16-bit types).
    macro_rules! primitive {
        ($arrow:ty) => {
            primitive!($arrow, <$arrow as arrow_types::ArrowPrimitiveType>::Native)
        };
        ($arrow:ty, $native:ty) => {{
            let values: Vec<Option<$native>> = arrays
                .iter()
                .flat_map(|a| a.as_primitive::<$arrow>().iter())
                .map(|v| v.map(<$native>::from))
                .collect();
            Column::new(name.into(), values)
        }};
    }
    Ok(match dtype {
        ArrowType::Boolean => {
            let values: Vec<Option<bool>> =
                arrays.iter().flat_map(|a| a.as_boolean().iter()).collect();
            Column::new(name.into(), values)
        }
        ArrowType::Int8 => primitive!(arrow_types::Int8Type, i32),
        ArrowType::Int16 => primitive!(arrow_types::Int16Type, i32),
        ArrowType::Int32 => primitive!(arrow_types::Int32Type),
        ArrowType::Int64 => primitive!(arrow_types::Int64Type),
        ArrowType::UInt8 => primitive!(arrow_types::UInt8Type, u32),
        ArrowType::UInt16 => primitive!(arrow_types::UInt16Type, u32),
        ArrowType::UInt32 => primitive!(arrow_types::UInt32Type),
        ArrowType::UInt64 => primitive!(arrow_types::UInt64Type),
        ArrowType::Float32 => primitive!(arrow_types::Float32Type),
        ArrowType::Float64 => primitive!(arrow_types::Float64Type),
        ArrowType::Date32 => primitive!(arrow_types::Date32Type)
            .cast(&DataType::Date)
            .map_err(|e| e.to_string())?,
        ArrowType::Utf8 => {
            let values: Vec<Option<&str>> = arrays
                .iter()
                .flat_map(|a| a.as_string::<i32>().iter())
                .collect();
            Column::new(name.into(), values)
        }
        ArrowType::LargeUtf8 => {
            let values: Vec<Option<&str>> = arrays
                .iter()
                .flat_map(|a| a.as_string::<i64>().iter())
                .collect();
            Column::new(name.into(), values)
        }
        ArrowType::Utf8View => {
            let values: Vec<Option<&str>> = arrays
                .iter()
                .flat_map(|a| a.as_string_view().iter())
                .collect();
            Column::new(name.into(), values)
        }
        ArrowType::Null => Column::full_null(
            name.into(),
            arrays.iter().map(|a| a.len()).sum(),
            &DataType::Null,
        ),
        other => {
            return Err(format!(
                "column '{name}' of type {other}, which styrkort does not read back"
            ));
        }
    })
}
