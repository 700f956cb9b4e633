//! `styrkort inspect`: the deviations of a published run as a terminal table, worst first.

use std::path::Path;

use comfy_table::{Cell, Color, Table, presets};
use polars::prelude::*;

use crate::Error;
use crate::assess::Status;

/// What to show. Empty filters mean "all".
#[derive(Debug, Clone)]
pub struct InspectFilter {
    /// Statuses to show; empty = every status except `no_target`.
    pub statuses: Vec<Status>,
    /// A unit and its subtree.
    pub unit: Option<String>,
    /// Indicators measuring this goal.
    pub goal: Option<String>,
    /// Only this indicator.
    pub indicator: Option<String>,
    pub grain: Option<String>,
    /// A period label; without it, the latest period of each grain.
    pub period: Option<String>,
    /// `total` (default), a breakdown segment such as `gender=K`, or `all`.
    pub segment: String,
    /// At most this many rows; 0 = all.
    pub limit: usize,
}

impl Default for InspectFilter {
    fn default() -> Self {
        InspectFilter {
            statuses: Vec::new(),
            unit: None,
            goal: None,
            indicator: None,
            grain: None,
            period: None,
            segment: "total".into(),
            limit: 50,
        }
    }
}

fn read(path: &Path) -> Result<DataFrame, Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    super::read_run_table(dir, &name)
}

/// A table in the terminal's style: box drawing with colour, plain Markdown when piped.
fn new_table(color: bool) -> Table {
    let mut table = Table::new();
    table.load_preset(if color {
        presets::UTF8_FULL_CONDENSED
    } else {
        presets::ASCII_MARKDOWN
    });
    table
}

/// A status cell, coloured by status on a terminal.
fn status_cell(status: &str, color: bool) -> Cell {
    let cell = Cell::new(status);
    if !color {
        return cell;
    }
    cell.fg(match Status::parse(status) {
        Some(Status::Met) => Color::Green,
        Some(Status::PartlyMet) => Color::Yellow,
        Some(Status::NotMet) => Color::Red,
        _ => Color::Grey,
    })
}

/// A column as text (numbers and dates formatted), for the table.
fn text_column(df: &DataFrame, name: &str) -> Result<StringChunked, Error> {
    df.column(name)
        .and_then(|c| c.cast(&DataType::String))
        .and_then(|c| c.str().cloned())
        .map_err(Error::from)
}

/// The distinct non-null texts of a column.
fn distinct(df: &DataFrame, name: &str) -> Result<std::collections::BTreeSet<String>, Error> {
    Ok(text_column(df, name)?
        .iter()
        .flatten()
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect())
}

/// An unknown unit, goal, indicator, grain or period is a usage error naming the nearest known
/// ones: a filter that matches nothing would otherwise print an empty table, as if all were well.
fn check_filter(deviations: &DataFrame, filter: &InspectFilter) -> Result<(), Error> {
    let checks = [
        ("--unit", &filter.unit, "org_unit_id"),
        ("--goal", &filter.goal, "goal_ids"),
        ("--indicator", &filter.indicator, "indicator_id"),
        ("--grain", &filter.grain, "grain"),
        ("--period", &filter.period, "period"),
    ];
    for (flag, wanted, column) in checks {
        let Some(wanted) = wanted else { continue };
        let known = distinct(deviations, column)?;
        if !known.contains(wanted) {
            return Err(Error::Usage(format!(
                "{flag} '{wanted}' is not in this run; did you mean {}?",
                super::nearest(wanted, &known)
            )));
        }
    }
    Ok(())
}

/// Keeps the rows of `filter.unit`'s subtree (by `org_path`) and of indicators measuring
/// `filter.goal` (by `goal_ids`).
fn unit_and_goal(mut lf: LazyFrame, filter: &InspectFilter) -> LazyFrame {
    if let Some(i) = &filter.indicator {
        lf = lf.filter(col("indicator_id").eq(lit(i.as_str())));
    }
    if let Some(u) = &filter.unit {
        let path = concat_str([lit("/"), col("org_path"), lit("/")], "", false);
        lf = lf.filter(path.str().contains_literal(lit(format!("/{u}/"))));
    }
    if let Some(g) = &filter.goal {
        let ids = concat_str(
            [lit(","), col("goal_ids").fill_null(lit("")), lit(",")],
            "",
            false,
        );
        lf = lf.filter(ids.str().contains_literal(lit(format!(",{g},"))));
    }
    lf
}

/// The deviations matching `filter`, sorted: not met first, then partly met, no data …; within a
/// status the worst relative gap first.
pub(crate) fn select_deviations(
    run_dir: &Path,
    filter: &InspectFilter,
) -> Result<DataFrame, Error> {
    let df = read(&run_dir.join("deviations.parquet"))?;
    check_filter(&df, filter)?;
    let mut lf = df.lazy();
    if let Some(g) = &filter.grain {
        lf = lf.filter(col("grain").eq(lit(g.as_str())));
    }
    lf = match &filter.period {
        Some(p) => lf.filter(col("period").eq(lit(p.as_str()))),
        None => lf.filter(col("is_latest_period")),
    };
    if filter.segment != "all" {
        lf = lf.filter(col("segment").eq(lit(filter.segment.as_str())));
    }
    lf = unit_and_goal(lf, filter);
    let statuses: Vec<Status> = if filter.statuses.is_empty() {
        Status::ALL
            .into_iter()
            .filter(|s| *s != Status::NoTarget)
            .collect()
    } else {
        filter.statuses.clone()
    };
    let wanted = statuses
        .iter()
        .map(|s| col("status").eq(lit(s.as_str())))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    // Status::ALL is in severity order; its index is the sort rank.
    let rank = Status::ALL
        .iter()
        .enumerate()
        .rev()
        .fold(lit(99i32), |otherwise, (i, s)| {
            when(col("status").eq(lit(s.as_str())))
                .then(lit(i as i32))
                .otherwise(otherwise)
        });
    lf.filter(wanted)
        .with_column(rank.alias("__rank"))
        .sort_by_exprs(
            [
                col("__rank"),
                col("gap_pct"),
                col("indicator_id"),
                col("org_unit_id"),
                col("grain"),
                col("segment"),
            ],
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .drop(cols(["__rank"]))
        .collect()
        .map_err(Error::from)
}

/// How `inspect` prints: a table for people, CSV or JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectFormat {
    #[default]
    Table,
    Csv,
    Json,
}

impl InspectFormat {
    pub fn parse(text: &str) -> Option<InspectFormat> {
        match text {
            "table" => Some(InspectFormat::Table),
            "csv" => Some(InspectFormat::Csv),
            "json" => Some(InspectFormat::Json),
            _ => None,
        }
    }
}

/// `rows`' `columns` as CSV (a header line, then one line per row) or as a JSON array of
/// objects; numbers stay numbers in JSON, nulls are empty in CSV and null in JSON.
fn machine_output(
    rows: &DataFrame,
    columns: &[&str],
    format: InspectFormat,
) -> Result<String, Error> {
    let err = Error::from;
    let picked: Vec<Column> = columns
        .iter()
        .map(|c| rows.column(c).cloned().map_err(err))
        .collect::<Result<_, _>>()?;
    let cell = |c: &Column, i: usize| -> serde_json::Value {
        match c.get(i) {
            Ok(AnyValue::Null) | Err(_) => serde_json::Value::Null,
            Ok(AnyValue::Float64(v)) => serde_json::json!(v),
            Ok(AnyValue::Float32(v)) => serde_json::json!(v),
            Ok(AnyValue::Int64(v)) => serde_json::json!(v),
            Ok(AnyValue::Int32(v)) => serde_json::json!(v),
            Ok(AnyValue::UInt32(v)) => serde_json::json!(v),
            Ok(AnyValue::Boolean(v)) => serde_json::json!(v),
            Ok(AnyValue::String(v)) => serde_json::json!(v),
            Ok(other) => serde_json::json!(other.to_string().trim_matches('"')),
        }
    };
    match format {
        InspectFormat::Json => {
            let list: Vec<serde_json::Value> = (0..rows.height())
                .map(|i| {
                    serde_json::Value::Object(
                        columns
                            .iter()
                            .zip(&picked)
                            .map(|(name, c)| (name.to_string(), cell(c, i)))
                            .collect(),
                    )
                })
                .collect();
            Ok(serde_json::to_string_pretty(&list).unwrap_or_default() + "\n")
        }
        _ => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let io = |e: csv::Error| Error::io("write", Path::new("CSV output"))(e.into());
            w.write_record(columns).map_err(io)?;
            for i in 0..rows.height() {
                let record: Vec<String> = picked
                    .iter()
                    .map(|c| match cell(c, i) {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect();
                w.write_record(&record).map_err(io)?;
            }
            let bytes = w.into_inner().map_err(|e| io(e.into_error().into()))?;
            Ok(String::from_utf8_lossy(&bytes).to_string())
        }
    }
}

/// The open actions on any of `goal_ids` (comma-separated) at `unit`, from [`open_actions`].
fn actions_on<'a>(
    covering: &'a std::collections::BTreeMap<(String, String), Vec<String>>,
    goal_ids: &str,
    unit: &str,
) -> Vec<&'a str> {
    goal_ids
        .split(',')
        .flat_map(|g| {
            covering
                .get(&(g.to_string(), unit.to_string()))
                .into_iter()
                .flatten()
        })
        .map(String::as_str)
        .collect()
}

/// The deviations matching `filter` as CSV or JSON (every row, no limit), with the indicator's
/// name and, for rows not met, the open actions covering them.
pub fn deviations_for_programs(
    run_dir: &Path,
    filter: &InspectFilter,
    format: InspectFormat,
) -> Result<String, Error> {
    let rows = select_deviations(run_dir, filter)?;
    let names = indicator_names(run_dir);
    let covering = open_actions(run_dir)?;
    let ids = text_column(&rows, "indicator_id")?;
    let units = text_column(&rows, "org_unit_id")?;
    let goals = text_column(&rows, "goal_ids")?;
    let statuses = text_column(&rows, "status")?;
    let name_col: Vec<Option<String>> = ids
        .iter()
        .map(|i| i.and_then(|i| names.get(i).cloned()))
        .collect();
    let actions: Vec<Option<String>> = (0..rows.height())
        .map(|i| {
            (statuses.get(i) == Some("not_met")).then(|| {
                actions_on(
                    &covering,
                    goals.get(i).unwrap_or(""),
                    units.get(i).unwrap_or(""),
                )
                .join(",")
            })
        })
        .collect();
    let mut rows = rows;
    if rows.column("indicator_name").is_err() {
        rows.with_column(Column::new("indicator_name".into(), name_col))
            .map_err(Error::from)?;
    }
    rows.with_column(Column::new("open_actions".into(), actions))
        .map_err(Error::from)?;
    machine_output(
        &rows,
        &[
            "status",
            "indicator_id",
            "indicator_name",
            "org_unit_id",
            "org_name",
            "grain",
            "period",
            "segment",
            "value",
            "target_kind",
            "target_value",
            "target_value_high",
            "tolerance",
            "gap",
            "gap_pct",
            "change",
            "yoy_change",
            "goal_ids",
            "open_actions",
        ],
        format,
    )
}

/// The goal status rows `inspect --goals` shows: the filter's period (else each grain's latest),
/// grain, goal, unit (and the units beneath it) and statuses, in goal and tree order.
fn goal_rows(run_dir: &Path, filter: &InspectFilter) -> Result<DataFrame, Error> {
    let deviations = read(&run_dir.join("deviations.parquet"))?;
    check_filter(&deviations, filter)?;
    let paths = deviations
        .lazy()
        .select([col("org_unit_id"), col("org_path")])
        .unique(None, UniqueKeepStrategy::Any);
    let mut lf = read(&run_dir.join("goal_status.parquet"))?.lazy().join(
        paths,
        [col("org_unit_id")],
        [col("org_unit_id")],
        JoinArgs::new(JoinType::Left),
    );
    lf = match &filter.period {
        Some(p) => lf.filter(col("period").eq(lit(p.as_str()))),
        None => lf.filter(col("is_latest_period")),
    };
    if let Some(g) = &filter.grain {
        lf = lf.filter(col("grain").eq(lit(g.as_str())));
    }
    if let Some(g) = &filter.goal {
        lf = lf.filter(col("goal_id").eq(lit(g.as_str())));
    }
    if let Some(u) = &filter.unit {
        let path = concat_str([lit("/"), col("org_path"), lit("/")], "", false);
        lf = lf.filter(path.str().contains_literal(lit(format!("/{u}/"))));
    }
    if !filter.statuses.is_empty() {
        let wanted = filter
            .statuses
            .iter()
            .map(|s| col("status").eq(lit(s.as_str())))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false));
        lf = lf.filter(wanted);
    }
    let mut rows = lf
        .sort(
            ["goal_id", "org_path", "grain"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(Error::from)?;
    if rows.column("analysis").is_err() {
        let empty: Vec<Option<&str>> = vec![None; rows.height()];
        rows.with_column(Column::new("analysis".into(), empty))
            .map_err(Error::from)?;
    }
    Ok(rows)
}

/// The goal view: each goal's status per unit in the latest period of each grain (or
/// `filter.period`), with names, counts and the analysis text where one exists.
pub fn render_goals(
    run_dir: &Path,
    filter: &InspectFilter,
    format: InspectFormat,
    color: bool,
) -> Result<String, Error> {
    let rows = goal_rows(run_dir, filter)?;
    let columns = [
        "status",
        "goal_id",
        "goal_name",
        "org_unit_id",
        "org_name",
        "grain",
        "period",
        "n_indicators",
        "n_met",
        "n_partly_met",
        "n_not_met",
        "n_no_data",
        "analysis",
    ];
    if format != InspectFormat::Table {
        return machine_output(&rows, &columns, format);
    }
    let total = rows.height();
    let (shown, left_out) = shown_rows(total, filter.limit);
    let table = goals_table(&rows, shown, color)?;
    Ok(format!(
        "goals in {} — {} row(s){}\n{table}\n",
        run_dir.display(),
        total,
        left_out
    ))
}

/// How many of `total` rows are shown under `--limit` (0 shows all), and the heading's note
/// when some are left out.
fn shown_rows(total: usize, limit: usize) -> (usize, String) {
    let shown = if limit == 0 { total } else { total.min(limit) };
    let note = if shown < total {
        format!(", showing the first {shown} (--limit 0 for all)")
    } else {
        String::new()
    };
    (shown, note)
}

/// The first `shown` goal rows as the terminal table.
fn goals_table(rows: &DataFrame, shown: usize, color: bool) -> Result<Table, Error> {
    let t = |c: &str| text_column(rows, c);
    let (status, goal, goal_name, unit, unit_name, grain, period) = (
        t("status")?,
        t("goal_id")?,
        t("goal_name")?,
        t("org_unit_id")?,
        t("org_name")?,
        t("grain")?,
        t("period")?,
    );
    let (n, met, partly, not_met, no_data, analysis) = (
        t("n_indicators")?,
        t("n_met")?,
        t("n_partly_met")?,
        t("n_not_met")?,
        t("n_no_data")?,
        t("analysis")?,
    );
    let mut table = new_table(color);
    table.set_header([
        "status",
        "goal",
        "unit",
        "period",
        "met / partly / not / no data of n",
        "analysis",
    ]);
    for i in 0..shown {
        let cell = status_cell(status.get(i).unwrap_or(""), color);
        let note: String = analysis.get(i).unwrap_or("").chars().take(80).collect();
        table.add_row(vec![
            cell,
            Cell::new(format!(
                "{} ({})",
                goal_name.get(i).unwrap_or(""),
                goal.get(i).unwrap_or("")
            )),
            Cell::new(format!(
                "{} ({})",
                unit_name.get(i).unwrap_or(""),
                unit.get(i).unwrap_or("")
            )),
            Cell::new(format!(
                "{} {}",
                grain.get(i).unwrap_or(""),
                period.get(i).unwrap_or("")
            )),
            Cell::new(format!(
                "{} / {} / {} / {} of {}",
                met.get(i).unwrap_or("0"),
                partly.get(i).unwrap_or("0"),
                not_met.get(i).unwrap_or("0"),
                no_data.get(i).unwrap_or("0"),
                n.get(i).unwrap_or("0")
            )),
            Cell::new(note),
        ]);
    }
    Ok(table)
}

/// The flagged series (flag watch or act) of the run, with the units' names and the goals of
/// their indicators, filtered as asked; act before watch.
fn flagged_series(run_dir: &Path, filter: &InspectFilter) -> Result<DataFrame, Error> {
    let signals = read(&run_dir.join("signals.parquet"))?;
    let deviations = read(&run_dir.join("deviations.parquet"))?;
    check_filter(&deviations, filter)?;
    let paths = deviations
        .lazy()
        .select([
            col("org_unit_id"),
            col("org_name"),
            col("org_path"),
            col("indicator_id"),
            col("goal_ids"),
        ])
        .unique(None, UniqueKeepStrategy::Any);
    let mut lf = signals
        .lazy()
        .join(
            paths,
            [col("org_unit_id"), col("indicator_id")],
            [col("org_unit_id"), col("indicator_id")],
            JoinArgs::new(JoinType::Left),
        )
        .filter(col("flag").neq(lit("none")));
    if filter.segment != "all" {
        lf = lf.filter(col("segment").eq(lit(filter.segment.as_str())));
    }
    lf = unit_and_goal(lf, filter);
    lf.sort(
        ["flag", "indicator_id", "org_unit_id", "segment"],
        SortMultipleOptions::default(),
    )
    .collect()
    .map_err(Error::from)
}

/// The first `shown` flagged series as the terminal table.
fn signals_table(rows: &DataFrame, shown: usize, color: bool) -> Result<Table, Error> {
    let text = |name: &str| text_column(rows, name);
    let (flag, ind, unit, name, seg, period, icon, trend, reason) = (
        text("flag")?,
        text("indicator_id")?,
        text("org_unit_id")?,
        text("org_name")?,
        text("segment")?,
        text("latest_period")?,
        text("variation_icon")?,
        text("trend")?,
        text("reason")?,
    );
    let mut table = new_table(color);
    table.set_header([
        "flag",
        "indicator",
        "unit",
        "segment",
        "latest",
        "icon",
        "trend",
        "reason",
    ]);
    for i in 0..shown {
        let f = flag.get(i).unwrap_or("");
        let mut cell = Cell::new(f);
        if color {
            cell = cell.fg(if f == "act" {
                Color::Red
            } else {
                Color::Yellow
            });
        }
        table.add_row(vec![
            cell,
            Cell::new(ind.get(i).unwrap_or("")),
            Cell::new(format!(
                "{} ({})",
                name.get(i).unwrap_or(""),
                unit.get(i).unwrap_or("")
            )),
            Cell::new(seg.get(i).unwrap_or("")),
            Cell::new(period.get(i).unwrap_or("")),
            Cell::new(icon.get(i).unwrap_or("")),
            Cell::new(trend.get(i).unwrap_or("")),
            Cell::new(reason.get(i).unwrap_or("")),
        ]);
    }
    Ok(table)
}

/// A target as a controller reads it: `≥ 90`, `≤ 5`, `80–95`, the rank it needs, or what it is
/// compared with, and its tolerance.
fn target_text(
    kind: Option<&str>,
    (target, high): (Option<f64>, Option<f64>),
    (rank, rank_of): (Option<u32>, Option<u32>),
    compare_to: Option<&str>,
    tolerance: Option<&str>,
) -> String {
    let Some(kind) = kind else {
        return "–".to_string();
    };
    let fmt = |x: Option<f64>| x.map(format_number).unwrap_or_else(|| "–".into());
    let place = |r: Option<u32>| r.map_or("–".into(), |r| r.to_string());
    let mut text = match kind {
        "floor" => format!("≥ {}", fmt(target)),
        "ceiling" => format!("≤ {}", fmt(target)),
        "range" => format!("{}–{}", fmt(target), fmt(high)),
        "top_share" => format!(
            "rank {} of {}, needs ≤ {}",
            place(rank),
            place(rank_of),
            fmt(target)
        ),
        "rank_improves" => format!("rank {}, needs < {} (last year)", place(rank), fmt(target)),
        other => format!("{other} vs {} ({})", compare_to.unwrap_or(""), fmt(target)),
    };
    if let Some(tol) = tolerance {
        text.push_str(&format!(" ±{tol}"));
    }
    text
}

/// The table as text; `color` adds terminal colours to the status column.
pub fn render(run_dir: &Path, filter: &InspectFilter, color: bool) -> Result<String, Error> {
    let rows = select_deviations(run_dir, filter)?;
    let total = rows.height();
    let (shown, left_out) = shown_rows(total, filter.limit);
    let rows = rows.head(Some(shown));

    let mut table = new_table(color);
    table.set_header([
        "status",
        "indicator",
        "unit",
        "period",
        "segment",
        "value",
        "target",
        "gap",
        "gap %",
        "Δ prev",
        "Δ year",
        "open action",
    ]);
    let columns = DeviationColumns::read(&rows)?;
    let names = indicator_names(run_dir);
    let covering = open_actions(run_dir)?;
    for i in 0..shown {
        table.add_row(columns.cells(i, &names, &covering, color));
    }
    let mut out = format!(
        "deviations in {} — {} — {} row(s){}\n",
        run_dir.display(),
        filter
            .period
            .as_deref()
            .map(|p| format!("period {p}"))
            .unwrap_or_else(|| "latest period of each grain".into()),
        total,
        left_out
    );
    out.push_str(&table.to_string());
    out.push('\n');
    Ok(out)
}

/// The columns of the deviations table that `render` shows.
struct DeviationColumns {
    goal_ids: StringChunked,
    status: StringChunked,
    indicator: StringChunked,
    unit: StringChunked,
    name: StringChunked,
    period: StringChunked,
    segment: StringChunked,
    kind: StringChunked,
    tolerance: StringChunked,
    compare_to: StringChunked,
    value: Float64Chunked,
    target: Float64Chunked,
    high: Float64Chunked,
    gap: Float64Chunked,
    gap_pct: Float64Chunked,
    change: Float64Chunked,
    yoy: Float64Chunked,
    rank: UInt32Chunked,
    rank_of: UInt32Chunked,
}

impl DeviationColumns {
    fn read(rows: &DataFrame) -> Result<DeviationColumns, Error> {
        let text = |name: &str| text_column(rows, name);
        let num = |name: &str| -> Result<Float64Chunked, Error> {
            rows.column(name)
                .and_then(|c| c.f64().cloned())
                .map_err(Error::from)
        };
        let rank = |name: &str| -> Result<UInt32Chunked, Error> {
            rows.column(name)
                .and_then(|c| c.cast(&DataType::UInt32))
                .and_then(|c| c.u32().cloned())
                .map_err(Error::from)
        };
        Ok(DeviationColumns {
            goal_ids: text("goal_ids")?,
            status: text("status")?,
            indicator: text("indicator_id")?,
            unit: text("org_unit_id")?,
            name: text("org_name")?,
            period: text("period")?,
            segment: text("segment")?,
            kind: text("target_kind")?,
            tolerance: text("tolerance")?,
            compare_to: text("compare_to")?,
            value: num("value")?,
            target: num("target_value")?,
            high: num("target_value_high")?,
            gap: num("gap")?,
            gap_pct: num("gap_pct")?,
            change: num("change")?,
            yoy: num("yoy_change")?,
            rank: rank("rank")?,
            rank_of: rank("rank_of")?,
        })
    }

    /// Row `i` as table cells; a row not met names the open actions on one of its goals at its
    /// unit (or says there are none).
    fn cells(
        &self,
        i: usize,
        names: &std::collections::BTreeMap<String, String>,
        covering: &std::collections::BTreeMap<(String, String), Vec<String>>,
        color: bool,
    ) -> Vec<Cell> {
        let fmt = |x: Option<f64>| x.map(format_number).unwrap_or_else(|| "–".into());
        let st = self.status.get(i).unwrap_or("");
        let unit = self.unit.get(i).unwrap_or("");
        let target_text = target_text(
            self.kind.get(i),
            (self.target.get(i), self.high.get(i)),
            (self.rank.get(i), self.rank_of.get(i)),
            self.compare_to.get(i),
            self.tolerance.get(i),
        );
        let ind = self.indicator.get(i).unwrap_or("");
        let ind_cell = match names.get(ind) {
            Some(n) => format!("{n} ({ind})"),
            None => ind.to_string(),
        };
        let action = if st == "not_met" {
            let ids = actions_on(covering, self.goal_ids.get(i).unwrap_or(""), unit);
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        } else {
            String::new()
        };
        vec![
            status_cell(st, color),
            Cell::new(ind_cell),
            Cell::new(format!("{} ({unit})", self.name.get(i).unwrap_or(""))),
            Cell::new(self.period.get(i).unwrap_or("")),
            Cell::new(self.segment.get(i).unwrap_or("")),
            Cell::new(fmt(self.value.get(i))),
            Cell::new(target_text),
            Cell::new(fmt(self.gap.get(i))),
            Cell::new(
                self.gap_pct
                    .get(i)
                    .map(|g| format!("{g:.1}"))
                    .unwrap_or_else(|| "–".into()),
            ),
            Cell::new(fmt(self.change.get(i))),
            Cell::new(fmt(self.yoy.get(i))),
            Cell::new(action),
        ]
    }
}

/// Indicator id → name, from the run's `indicators.parquet` (empty for runs made before it).
fn indicator_names(run_dir: &Path) -> std::collections::BTreeMap<String, String> {
    let Ok(df) = read(&run_dir.join("indicators.parquet")) else {
        return Default::default();
    };
    match (
        text_column(&df, "indicator_id"),
        text_column(&df, "indicator_name"),
    ) {
        (Ok(ids), Ok(names)) => ids
            .iter()
            .zip(names.iter())
            .filter_map(|(i, n)| Some((i?.to_string(), n?.to_string())))
            .collect(),
        _ => Default::default(),
    }
}

/// (goal, unit) → ids of the open actions (not done or cancelled) on that goal at that unit.
fn open_actions(
    run_dir: &Path,
) -> Result<std::collections::BTreeMap<(String, String), Vec<String>>, Error> {
    let df = read(&run_dir.join("actions.parquet"))?;
    let (kind, id, goal, unit, status) = (
        text_column(&df, "record_type")?,
        text_column(&df, "action_id")?,
        text_column(&df, "goal_id")?,
        text_column(&df, "org_unit_id")?,
        text_column(&df, "status")?,
    );
    let mut out: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for i in 0..df.height() {
        let open = !matches!(status.get(i), Some("done") | Some("cancelled"));
        if kind.get(i) == Some("action") && open {
            out.entry((
                goal.get(i).unwrap_or("").to_string(),
                unit.get(i).unwrap_or("").to_string(),
            ))
            .or_default()
            .push(id.get(i).unwrap_or("").to_string());
        }
    }
    Ok(out)
}

/// Two decimals, without trailing zeros: 6.27, 45, 98.5.
fn format_number(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// The flagged series of a run (`act` first, then `watch`), optionally for a unit's subtree.
pub fn render_signals(
    run_dir: &Path,
    filter: &InspectFilter,
    color: bool,
) -> Result<String, Error> {
    let rows = flagged_series(run_dir, filter)?;
    let total = rows.height();
    let (shown, left_out) = shown_rows(total, filter.limit);
    let table = signals_table(&rows, shown, color)?;
    Ok(format!(
        "flagged series in {} — {} series{}\n{table}\n",
        run_dir.display(),
        total,
        left_out
    ))
}
