//! The run as an Excel workbook for controllers: sheets Mål, Nyckeltal (values by period, wide),
//! Avvikelser, Åtgärder and Signaler, with Swedish headers, numbers as numbers, dates as dates,
//! a frozen header row, autofilter and coloured status cells.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;
use rust_xlsxwriter::{Color, ExcelDateTime, Format, FormatBorder, Workbook, Worksheet, XlsxError};

use crate::Error;
use crate::publish::with_name;

fn data(e: PolarsError) -> Error {
    Error::from(e)
}

fn xlsx(path: &Path) -> impl Fn(XlsxError) -> Error + '_ {
    move |source| Error::Workbook {
        path: path.to_path_buf(),
        source,
    }
}

fn read(dir: &Path, name: &str) -> Result<LazyFrame, Error> {
    Ok(super::read_run_table(dir, name)?.lazy())
}

/// The fill colour of a status or flag cell.
fn status_color(value: &str) -> Option<Color> {
    match value {
        "met" => Some(Color::RGB(0xC8E6C9)),
        "partly_met" | "watch" => Some(Color::RGB(0xFFE9A8)),
        "not_met" | "act" => Some(Color::RGB(0xF4C7C3)),
        "no_data" => Some(Color::RGB(0xE0E0E0)),
        _ => None,
    }
}

/// Writes `df`'s columns `(column, header)` to a new sheet (each as `write_column` does), with
/// the header row frozen and filtered.
fn write_sheet(
    workbook: &mut Workbook,
    name: &str,
    df: &DataFrame,
    columns: &[(&str, &str)],
    path: &Path,
) -> Result<(), Error> {
    let err = xlsx(path);
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDE4EE))
        .set_border_bottom(FormatBorder::Thin);
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let sheet: &mut Worksheet = workbook.add_worksheet();
    sheet.set_name(name).map_err(&err)?;
    for (c, (_, title)) in columns.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *title, &header)
            .map_err(&err)?;
        sheet
            .set_column_width(c as u16, (title.chars().count() as f64 + 4.0).max(12.0))
            .map_err(&err)?;
    }
    for (c, (column, _)) in columns.iter().enumerate() {
        let col_no = c as u16;
        let series = df
            .column(column)
            .map_err(data)?
            .as_materialized_series()
            .clone();
        write_column(sheet, col_no, column, &series, &date, path)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(&err)?;
    let last_col = columns.len().saturating_sub(1) as u16;
    sheet
        .autofilter(0, 0, df.height().max(1) as u32, last_col)
        .map_err(&err)?;
    Ok(())
}

/// Writes one column's values below its header (row 0) in column `col_no`: text as text,
/// numbers as numbers (not finite ones left empty), dates as dates in `date`, booleans as
/// booleans; a `status` or `flag` column coloured by value.
fn write_column(
    sheet: &mut Worksheet,
    col_no: u16,
    column: &str,
    series: &Series,
    date: &Format,
    path: &Path,
) -> Result<(), Error> {
    let err = xlsx(path);
    let coloured = matches!(column, "status" | "flag");
    match series.dtype() {
        DataType::String => {
            for (r, v) in series.str().map_err(data)?.iter().enumerate() {
                let Some(v) = v else { continue };
                let row = r as u32 + 1;
                match status_color(v).filter(|_| coloured) {
                    Some(color) => sheet
                        .write_string_with_format(
                            row,
                            col_no,
                            v,
                            &Format::new().set_background_color(color),
                        )
                        .map_err(&err)?,
                    None => sheet.write_string(row, col_no, v).map_err(&err)?,
                };
            }
        }
        DataType::Date => {
            let days = series.cast(&DataType::Int32).map_err(data)?;
            for (r, v) in days.i32().map_err(data)?.iter().enumerate() {
                let Some(d) = v else { continue };
                let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                    + chrono::Days::new(d as u64);
                let value = ExcelDateTime::parse_from_str(&day.format("%Y-%m-%d").to_string())
                    .map_err(&err)?;
                sheet
                    .write_datetime_with_format(r as u32 + 1, col_no, value, date)
                    .map_err(&err)?;
            }
        }
        DataType::Boolean => {
            for (r, v) in series.bool().map_err(data)?.iter().enumerate() {
                if let Some(v) = v {
                    sheet.write_boolean(r as u32 + 1, col_no, v).map_err(&err)?;
                }
            }
        }
        dt if dt.is_primitive_numeric() => {
            let values = series.cast(&DataType::Float64).map_err(data)?;
            for (r, v) in values.f64().map_err(data)?.iter().enumerate() {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    sheet.write_number(r as u32 + 1, col_no, v).map_err(&err)?;
                }
            }
        }
        other => {
            return Err(Error::Data(format!(
                "column '{column}' of type {other} has no Excel form"
            )));
        }
    }
    Ok(())
}

/// Columns of the "Mål" sheet: table column, Swedish heading.
const GOAL_COLUMNS: &[(&str, &str)] = &[
    ("goal_id", "Mål-id"),
    ("goal_name", "Mål"),
    ("org_unit_id", "Enhet-id"),
    ("org_name", "Enhet"),
    ("grain", "Periodtyp"),
    ("period", "Period"),
    ("status", "Status"),
    ("n_indicators", "Antal nyckeltal"),
    ("n_met", "Uppfyllda"),
    ("n_partly_met", "Delvis uppfyllda"),
    ("n_not_met", "Ej uppfyllda"),
    ("n_no_data", "Uppgift saknas"),
    ("share_met", "Andel uppfyllda"),
];

/// The "Nyckeltal" sheet's leading columns; one column per period follows.
const VALUE_KEY_COLUMNS: &[(&str, &str)] = &[
    ("indicator_id", "Nyckeltal-id"),
    ("indicator_name", "Nyckeltal"),
    ("org_unit_id", "Enhet-id"),
    ("org_name", "Enhet"),
    ("grain", "Periodtyp"),
];

const DEVIATION_COLUMNS: &[(&str, &str)] = &[
    ("indicator_id", "Nyckeltal-id"),
    ("indicator_name", "Nyckeltal"),
    ("org_unit_id", "Enhet-id"),
    ("org_name", "Enhet"),
    ("grain", "Periodtyp"),
    ("period", "Period"),
    ("period_start", "Från"),
    ("period_end", "Till"),
    ("value", "Värde"),
    ("target_kind", "Måltyp"),
    ("target_value", "Målvärde"),
    ("status", "Status"),
    ("gap", "Avvikelse"),
    ("change", "Förändring"),
    ("yoy_change", "Mot förra året"),
    ("n_rows", "Antal rader"),
];

const ACTION_COLUMNS: &[(&str, &str)] = &[
    ("record_type", "Typ"),
    ("action_id", "Åtgärd-id"),
    ("title", "Åtgärd"),
    ("goal_id", "Mål-id"),
    ("goal_name", "Mål"),
    ("org_unit_id", "Enhet-id"),
    ("org_name", "Enhet"),
    ("owner", "Ansvarig"),
    ("start", "Start"),
    ("due", "Klart senast"),
    ("status", "Status"),
    ("overdue", "Försenad"),
    ("days_overdue", "Dagar försenad"),
    ("grain", "Periodtyp"),
    ("period", "Period"),
];

const SIGNAL_COLUMNS: &[(&str, &str)] = &[
    ("indicator_id", "Nyckeltal-id"),
    ("indicator_name", "Nyckeltal"),
    ("org_unit_id", "Enhet-id"),
    ("org_name", "Enhet"),
    ("grain", "Periodtyp"),
    ("latest_period", "Senaste period"),
    ("latest_value", "Senaste värde"),
    ("flag", "Signal"),
    ("reason", "Skäl"),
    ("variation_icon", "Variation"),
    ("assurance", "Måluppfyllelse"),
    ("trend", "Trend"),
    ("forecast_year_end", "Prognos helår"),
];

/// The tables of the workbook's sheets, read from a run folder with names beside the ids.
struct SheetTables {
    /// Goal status in the latest period.
    goal_status: DataFrame,
    /// Values, one column per period.
    values: DataFrame,
    /// Deviations in the latest period.
    latest: DataFrame,
    actions: DataFrame,
    signals: DataFrame,
}

fn sheet_tables(run_dir: &Path) -> Result<SheetTables, Error> {
    let collect = |lf: LazyFrame| lf.collect().map_err(data);
    let indicators = collect(read(run_dir, "indicators.parquet")?)?;
    let goals = collect(read(run_dir, "goals.parquet")?)?;
    let units = collect(read(run_dir, "org_units.parquet")?)?;
    // Runs carry the names already; older ones get them here.
    let named = |df: DataFrame, pairs: &[(&DataFrame, &str, &str)]| -> Result<DataFrame, Error> {
        pairs
            .iter()
            .try_fold(df, |df, (names, key, name)| with_name(df, names, key, name))
            .map_err(data)
    };
    let goal_names = (&goals, "goal_id", "goal_name");
    let unit_names = (&units, "org_unit_id", "org_name");
    let indicator_names = (&indicators, "indicator_id", "indicator_name");

    let goal_status = collect(
        read(run_dir, "goal_status.parquet")?
            .filter(col("is_latest_period"))
            .sort(
                ["goal_id", "org_unit_id", "grain"],
                SortMultipleOptions::default(),
            ),
    )?;
    let deviations =
        collect(read(run_dir, "deviations.parquet")?.filter(col("segment").eq(lit("total"))))?;
    let deviations = named(deviations, &[indicator_names])?;
    let latest = collect(
        deviations
            .clone()
            .lazy()
            .filter(col("is_latest_period"))
            .sort(
                ["indicator_id", "org_unit_id", "grain"],
                SortMultipleOptions::default(),
            ),
    )?;
    let signals = collect(
        read(run_dir, "signals.parquet")?
            .filter(col("segment").eq(lit("total")))
            .sort(
                ["indicator_id", "org_unit_id"],
                SortMultipleOptions::default(),
            ),
    )?;
    Ok(SheetTables {
        goal_status: named(goal_status, &[goal_names, unit_names])?,
        values: values_by_period(deviations.lazy())?,
        latest,
        actions: named(
            collect(read(run_dir, "actions.parquet")?)?,
            &[goal_names, unit_names],
        )?,
        signals: named(signals, &[indicator_names, unit_names])?,
    })
}

/// Writes the workbook for the run in `run_dir` to `path`.
pub fn export_xlsx(run_dir: &Path, path: &Path) -> Result<(), Error> {
    let tables = sheet_tables(run_dir)?;
    let mut workbook = Workbook::new();
    write_sheet(
        &mut workbook,
        "Mål",
        &tables.goal_status,
        GOAL_COLUMNS,
        path,
    )?;
    // The period columns are headed by their labels.
    let mut value_columns = VALUE_KEY_COLUMNS.to_vec();
    value_columns.extend(
        tables
            .values
            .get_column_names()
            .iter()
            .skip(VALUE_KEY_COLUMNS.len())
            .map(|c| (c.as_str(), c.as_str())),
    );
    write_sheet(
        &mut workbook,
        "Nyckeltal",
        &tables.values,
        &value_columns,
        path,
    )?;
    write_sheet(
        &mut workbook,
        "Avvikelser",
        &tables.latest,
        DEVIATION_COLUMNS,
        path,
    )?;
    write_sheet(
        &mut workbook,
        "Åtgärder",
        &tables.actions,
        ACTION_COLUMNS,
        path,
    )?;
    write_sheet(
        &mut workbook,
        "Signaler",
        &tables.signals,
        SIGNAL_COLUMNS,
        path,
    )?;
    workbook.save(path).map_err(xlsx(path))?;
    Ok(())
}

/// Indicator name, unit name and the value of each period.
type WideRow = (String, String, BTreeMap<String, f64>);

/// One row per indicator × unit × grain, one column per period (ascending), the total segment's
/// values. Grains month, tertial and year.
fn values_by_period(deviations: LazyFrame) -> Result<DataFrame, Error> {
    let df = deviations
        .filter(
            col("grain")
                .eq(lit("month"))
                .or(col("grain").eq(lit("tertial")))
                .or(col("grain").eq(lit("year"))),
        )
        .select([
            col("indicator_id"),
            col("indicator_name"),
            col("org_unit_id"),
            col("org_name"),
            col("grain"),
            col("period"),
            col("value"),
        ])
        .collect()
        .map_err(data)?;
    let s = |n: &str| -> Result<Vec<String>, Error> {
        Ok(df
            .column(n)
            .map_err(data)?
            .str()
            .map_err(data)?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let (ind, name, unit, uname, grain, period) = (
        s("indicator_id")?,
        s("indicator_name")?,
        s("org_unit_id")?,
        s("org_name")?,
        s("grain")?,
        s("period")?,
    );
    let value: Vec<Option<f64>> = df
        .column("value")
        .map_err(data)?
        .f64()
        .map_err(data)?
        .iter()
        .collect();
    // Periods in order: years, then tertials, then months, each ascending.
    let rank = |p: &str| (p.len(), p.to_string());
    let periods: BTreeSet<(usize, String)> = period.iter().map(|p| rank(p)).collect();
    let mut rows: BTreeMap<(String, String, String), WideRow> = BTreeMap::new();
    for i in 0..df.height() {
        let entry = rows
            .entry((ind[i].clone(), unit[i].clone(), grain[i].clone()))
            .or_insert_with(|| (name[i].clone(), uname[i].clone(), BTreeMap::new()));
        if let Some(v) = value[i] {
            entry.2.insert(period[i].clone(), v);
        }
    }
    let mut columns: Vec<Column> = vec![
        Column::new(
            "indicator_id".into(),
            rows.keys().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "indicator_name".into(),
            rows.values().map(|v| v.0.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "org_unit_id".into(),
            rows.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "org_name".into(),
            rows.values().map(|v| v.1.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "grain".into(),
            rows.keys().map(|k| k.2.as_str()).collect::<Vec<_>>(),
        ),
    ];
    for (_, p) in &periods {
        columns.push(Column::new(
            p.as_str().into(),
            rows.values()
                .map(|v| v.2.get(p).copied())
                .collect::<Vec<_>>(),
        ));
    }
    DataFrame::new(rows.len(), columns).map_err(data)
}
