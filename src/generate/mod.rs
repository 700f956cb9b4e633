//! A synthetic but realistic municipality (Uddevalla's five boards and administrations, 57 org
//! units) with three years (2022–2024) of operational data: HR time, ledger, preschool
//! applications, grade-9 results, home-care visits, building permits, library activities,
//! citizen contacts and user surveys.
//!
//! Scale 1, seed 1 is exactly `fixtures/uddevalla/`; a larger scale multiplies the people and
//! cases per unit (the org tree stays the same), for benchmarks. The same scale and seed always
//! give byte-identical files: the random generator is ChaCha8, whose stream is stable across
//! platforms and versions, and every number is written with a fixed format.
//!
//! Planted realities that the fixtures' tests and users can find:
//! - sick leave peaks every winter and dips every summer (±30 % of a unit's level), and in
//!   Hemtjänst Norr (`SOC-ALD-HTN`) it climbs from about 6 % to about 14 % besides;
//! - building permit applications rise every spring, library activities drop every July, home
//!   care plans more visits in winter (±10 %);
//! - Herrestadskolan (`BUF-GSK-HER`) has clearly fewer pupils eligible for upper secondary;
//! - Hemtjänst Söder (`SOC-ALD-HTS`) reported no home-care visits for March 2024;
//! - a team's cost centre `1450` moved from Hemtjänst Centrum to Hemtjänst Norr on 2023-07-01,
//!   and Hemtjänst Ljungskile changed cost centre from `1440` to `1441` on 2024-01-01;
//! - a few HR rows carry an unknown cost centre (`1999`) or no month, and are rejected.

mod init;
pub use init::write_starter;

mod org;

use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Error;
use crate::period::Month;
pub(crate) use org::{UNITS, Unit};

const FIRST_YEAR: i32 = 2022;
const YEARS: i32 = 3;

/// A CSV table being built: header and rows of already formatted fields.
struct Table {
    name: &'static str,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(name: &'static str, header: &[&'static str]) -> Table {
        Table {
            name,
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    fn write(&self, dir: &Path) -> Result<PathBuf, Error> {
        let path = dir.join(self.name);
        let io = |e: csv::Error| Error::io("write", &path)(e.into());
        let mut w = csv::Writer::from_path(&path).map_err(io)?;
        w.write_record(&self.header).map_err(io)?;
        for r in &self.rows {
            w.write_record(r).map_err(io)?;
        }
        w.flush().map_err(Error::io("write", &path))?;
        Ok(path)
    }
}

fn months() -> impl Iterator<Item = Month> {
    (0..YEARS * 12).map(|i| Month::new(FIRST_YEAR, 1) + i)
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Rounds to the nearest half: hours in half-hour steps add up exactly in floating point.
fn half(x: f64) -> String {
    format!("{:.1}", (x * 2.0).round() / 2.0)
}

fn day_in(rng: &mut ChaCha8Rng, m: Month) -> NaiveDate {
    let days = m.last_day().day();
    m.first_day() + Duration::days(rng.random_range(0..days) as i64)
}

/// Approximately normal noise with mean 0 and standard deviation `sd` (sum of uniforms).
fn noise(rng: &mut ChaCha8Rng, sd: f64) -> f64 {
    let s: f64 = (0..3).map(|_| rng.random::<f64>()).sum::<f64>() - 1.5;
    s * 2.0 * sd
}

fn units_of(kind_prefix: &str) -> Vec<&'static Unit> {
    UNITS
        .iter()
        .filter(|u| u.kind == "enhet" && u.id.starts_with(kind_prefix))
        .collect()
}

/// How the generated sources are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataFormat {
    Csv,
    /// Typed Parquet (dates, numbers, booleans), as a database export would be.
    Parquet,
}

/// The sources of the synthetic municipality, in the order of the pipeline file.
pub(crate) const SOURCES: [&str; 9] = [
    "hr_time",
    "ledger",
    "preschool_applications",
    "grade9_results",
    "homecare_visits",
    "building_permits",
    "library_activities",
    "citizen_contacts",
    "user_surveys",
];

/// The hand-kept definitions shipped beside generated data, so the folder runs as it is.
const PIPELINE: &str = include_str!("../../pipelines/uddevalla.toml");
const TARGETS: &str = include_str!("../../fixtures/uddevalla/targets.csv");
const ACTIONS: &str = include_str!("../../fixtures/uddevalla/actions.csv");
const ANALYSES: &str = include_str!("../../fixtures/uddevalla/analyses.csv");

/// Writes the org tree, code mapping and every source's CSV into `dir`.
pub fn write_municipality(dir: &Path, scale: u32, seed: u64) -> Result<Vec<PathBuf>, Error> {
    write_sources(dir, scale, seed, DataFormat::Csv, None)
}

/// The sick-leave step planted in known-truth mode: ×1.5 from this month on.
pub(crate) const PLANTED_FROM: (i32, u32) = (FIRST_YEAR + YEARS - 1, 1);
const PLANTED_FACTOR: f64 = 1.5;

/// Known-truth mode: which units get a planted sick-leave change. About a third of the units
/// (Hemtjänst Norr always, whose climb is planted anyway), chosen by the seed.
fn planted_units(seed: u64) -> Vec<&'static str> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(100));
    UNITS
        .iter()
        .filter(|u| u.kind == "enhet")
        .filter(|u| u.id == "SOC-ALD-HTN" || rng.random_bool(1.0 / 3.0))
        .map(|u| u.id)
        .collect()
}

/// `truth.csv`: per unit's sick-leave series, whether a change was planted, and which.
fn truth_table(planted: &[&str]) -> Table {
    let mut t = Table::new(
        "truth.csv",
        &[
            "indicator_id",
            "org_unit_id",
            "segment",
            "planted_change",
            "change_from",
            "change",
        ],
    );
    let from = Month::new(PLANTED_FROM.0, PLANTED_FROM.1).label();
    for unit in UNITS.iter().filter(|u| u.kind == "enhet") {
        let (planted_change, change_from, change) = if unit.id == "SOC-ALD-HTN" {
            (
                "true",
                Month::new(FIRST_YEAR, 1).label(),
                "sick leave climbs from about 6 % to about 14 % over the three years".to_string(),
            )
        } else if planted.contains(&unit.id) {
            (
                "true",
                from.clone(),
                format!("sick leave ×{PLANTED_FACTOR} from {from} on (a step up)"),
            )
        } else {
            ("false", String::new(), String::new())
        };
        t.push(vec![
            "sick_leave_pct".into(),
            unit.id.into(),
            "total".into(),
            planted_change.into(),
            change_from,
            change,
        ]);
    }
    t
}

/// Writes the org tree and code mapping (CSV), every source (CSV or Parquet), the hand-kept
/// targets and actions, and `pipeline.toml` pointing at them: `styrkort run DIR/pipeline.toml`
/// works at once. Tables are generated and written one at a time, so memory holds one table.
///
/// With `known_truth`, about a third of the units get a planted sick-leave step (×1.5 from
/// January of the last year) and `truth.csv` says which, so the flag's false-alarm and
/// detection rates can be measured on data that went through the whole engine.
pub fn write_pipeline_dir(
    dir: &Path,
    scale: u32,
    seed: u64,
    format: DataFormat,
    known_truth: bool,
) -> Result<Vec<PathBuf>, Error> {
    let planted = known_truth.then(|| planted_units(seed));
    let mut written = write_sources(dir, scale, seed, format, planted.as_deref())?;
    if let Some(planted) = &planted {
        written.push(truth_table(planted).write(dir)?);
    }
    let write = |name: &str, text: &str| -> Result<PathBuf, Error> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(Error::io("write", &path))?;
        Ok(path)
    };
    written.push(write("targets.csv", TARGETS)?);
    written.push(write("actions.csv", ACTIONS)?);
    written.push(write("analyses.csv", ANALYSES)?);
    written.push(write("pipeline.toml", &pipeline_text(format))?);
    Ok(written)
}

/// The fixtures' pipeline with its paths pointing beside itself, and the sources' format.
pub(crate) fn pipeline_text(format: DataFormat) -> String {
    let mut text = PIPELINE.replace("../fixtures/uddevalla/", "");
    if format == DataFormat::Parquet {
        for name in SOURCES {
            text = text.replace(
                &format!("path = \"{name}.csv\"\nformat = \"csv\""),
                &format!("path = \"{name}.parquet\"\nformat = \"parquet\""),
            );
        }
    }
    text
}

fn write_sources(
    dir: &Path,
    scale: u32,
    seed: u64,
    format: DataFormat,
    planted: Option<&[&str]>,
) -> Result<Vec<PathBuf>, Error> {
    if scale == 0 {
        return Err(Error::Usage("--scale must be at least 1".into()));
    }
    std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let s = scale as usize;
    // Each table has its own stream, so adding a table never changes the others.
    let rng = |k: u64| ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(k));
    let tables: [&dyn Fn() -> Table; 11] = [
        &org::org_units,
        &org::code_mapping,
        &|| hr_time(&mut rng(1), s, planted.unwrap_or_default()),
        &|| ledger(&mut rng(2), s),
        &|| preschool_applications(&mut rng(3), s),
        &|| grade9_results(&mut rng(4), s),
        &|| homecare_visits(&mut rng(5), s),
        &|| building_permits(&mut rng(6), s),
        &|| library_activities(&mut rng(7), s),
        &|| citizen_contacts(&mut rng(8), s),
        &|| user_surveys(&mut rng(9), s),
    ];
    let mut written = Vec::new();
    for make in tables {
        let table = make();
        let csv = table.write(dir)?;
        let is_source = SOURCES.iter().any(|n| table.name == format!("{n}.csv"));
        drop(table);
        if format == DataFormat::Parquet && is_source {
            written.push(csv_to_parquet(&csv)?);
        } else {
            written.push(csv);
        }
    }
    Ok(written)
}

/// Rewrites a generated CSV as typed Parquet, with the types the pipeline declares for the
/// source's columns (dates, numbers, booleans), and removes the CSV.
fn csv_to_parquet(csv: &Path) -> Result<PathBuf, Error> {
    use polars::prelude::*;
    let out = csv.with_extension("parquet");
    let err = Error::table_at(&out);
    let source = csv
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut schema = Schema::default();
    for (column, ty) in declared_columns(&source) {
        let dtype = match ty.as_str() {
            "date" => DataType::Date,
            "int" => DataType::Int64,
            "float" => DataType::Float64,
            "bool" => DataType::Boolean,
            _ => DataType::String,
        };
        schema.with_column(column.into(), dtype);
    }
    let mut df = LazyCsvReader::new(PlRefPath::new(csv.to_string_lossy().to_string()))
        .with_has_header(true)
        .with_dtype_overwrite(Some(Arc::new(schema)))
        .finish()
        .and_then(|lf| lf.collect())
        .map_err(&err)?;
    let file = std::fs::File::create(&out).map_err(Error::io("write", &out))?;
    ParquetWriter::new(file).finish(&mut df).map_err(&err)?;
    std::fs::remove_file(csv).map_err(Error::io("remove", csv))?;
    Ok(out)
}

/// `(column, declared type)` of a source in the shipped pipeline.
fn declared_columns(source: &str) -> Vec<(String, String)> {
    let pipeline: toml::Value = toml::from_str(PIPELINE).expect("the shipped pipeline parses");
    let Some(src) = pipeline["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"].as_str() == Some(source)))
    else {
        return Vec::new();
    };
    let columns = src["columns"].as_table().cloned().unwrap_or_default();
    columns
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("string").to_string()))
        .collect()
}

fn hr_time(rng: &mut ChaCha8Rng, scale: usize, planted: &[&str]) -> Table {
    let mut t = Table::new(
        "hr_time.csv",
        &[
            "month",
            "cost_centre",
            "employee_id",
            "gender",
            "employment",
            "scheduled_hours",
            "worked_hours",
            "sick_hours",
            "overtime_hours",
        ],
    );
    let mut next_id = 0usize;
    let all: Vec<Month> = months().collect();
    for unit in UNITS.iter().filter(|u| u.kind == "enhet") {
        let care = unit.id.starts_with("SOC") || unit.id.starts_with("BUF");
        let staff = unit.staff * scale;
        for k in 0..staff {
            next_id += 1;
            // A team in Hemtjänst Norr books on the cost centre that moved there in 2023.
            let moved_team = unit.id == "SOC-ALD-HTN" && k < 4 * scale;
            let employee = format!("E{next_id:06}");
            let Staffing {
                gender,
                employment,
                rate,
                start,
                end,
            } = Staffing::draw(rng, care, all.len());
            for (i, &m) in all.iter().enumerate().take(end + 1).skip(start) {
                let scheduled = (165.0 * rate * 2.0f64).round() / 2.0;
                let step = planted.contains(&unit.id)
                    && unit.id != "SOC-ALD-HTN"
                    && m >= Month::new(PLANTED_FROM.0, PLANTED_FROM.1);
                let sick_rate = unit_sick_rate(unit.id, i, all.len())
                    * sick_season(m)
                    * if step { PLANTED_FACTOR } else { 1.0 };
                let (sick, overtime) = month_hours(rng, scheduled, sick_rate);
                t.push(vec![
                    date(m.first_day()),
                    if moved_team {
                        org::MOVED_TEAM_CODE
                    } else {
                        unit.cost_centre_at(m)
                    }
                    .to_string(),
                    employee.clone(),
                    gender.to_string(),
                    employment.to_string(),
                    half(scheduled),
                    half(scheduled - sick + overtime),
                    half(sick),
                    half(overtime),
                ]);
            }
        }
    }
    hr_time_bad_rows(&mut t, &all, scale);
    t
}

/// One employee's gender, employment, rate of full time and first and last month (indices into
/// the `n_months` generated months). `care`: a care unit, where more staff are women.
struct Staffing {
    gender: &'static str,
    employment: &'static str,
    rate: f64,
    start: usize,
    end: usize,
}

impl Staffing {
    fn draw(rng: &mut ChaCha8Rng, care: bool, n_months: usize) -> Staffing {
        let gender = if rng.random_bool(if care { 0.8 } else { 0.55 }) {
            "K"
        } else {
            "M"
        };
        let employment = if rng.random_bool(0.85) {
            "permanent"
        } else {
            "temporary"
        };
        let rate = if rng.random_bool(0.7) { 1.0 } else { 0.75 };
        let start = if rng.random_bool(0.8) {
            0
        } else {
            rng.random_range(0..n_months)
        };
        let end = if rng.random_bool(0.85) {
            n_months - 1
        } else {
            rng.random_range(start..n_months)
        };
        Staffing {
            gender,
            employment,
            rate,
            start,
            end,
        }
    }
}

/// One month's sick and overtime hours, in half hours: sick leave in about three months of ten,
/// at `sick_rate` of `scheduled` on average; overtime in one of five.
fn month_hours(rng: &mut ChaCha8Rng, scheduled: f64, sick_rate: f64) -> (f64, f64) {
    let sick = if rng.random_bool(0.3) {
        (scheduled * sick_rate / 0.3 * rng.random_range(0.5..1.5)).min(scheduled)
    } else {
        0.0
    };
    let sick = (sick * 2.0).round() / 2.0;
    let overtime = if rng.random_bool(0.2) {
        rng.random_range(1.0..15.0)
    } else {
        0.0
    };
    let overtime = (overtime * 2.0f64).round() / 2.0;
    (sick, overtime)
}

/// Rows a real HR export has: an unknown cost centre and a row without a month.
fn hr_time_bad_rows(t: &mut Table, all: &[Month], scale: usize) {
    for k in 0..(3 * scale) {
        let m = all[(7 + 11 * k) % all.len()];
        t.push(vec![
            date(m.first_day()),
            "1999".into(),
            format!("E9{k:05}"),
            "M".into(),
            "temporary".into(),
            "80.0".into(),
            "80.0".into(),
            "0.0".into(),
            "0.0".into(),
        ]);
    }
    for k in 0..scale {
        t.push(vec![
            String::new(),
            "1101".into(),
            format!("E8{k:05}"),
            "K".into(),
            "permanent".into(),
            "165.0".into(),
            "165.0".into(),
            "0.0".into(),
            "0.0".into(),
        ]);
    }
}

/// Sick leave's season: a winter peak (January, +30 %) and a summer low (July, −30 %), as
/// municipal sick leave has every year (colds and flu in winter, holidays in summer).
fn sick_season(m: Month) -> f64 {
    1.0 + 0.3 * (2.0 * std::f64::consts::PI * (m.month() as f64 - 1.0) / 12.0).cos()
}

/// Home care's season: clients need more visits in winter (+10 % in January, −10 % in July,
/// when relatives are on holiday and help more).
fn homecare_season(m: Month) -> f64 {
    1.0 + 0.1 * (2.0 * std::f64::consts::PI * (m.month() as f64 - 1.0) / 12.0).cos()
}

/// Sick-leave level of a unit in month `i` of `n`: Hemtjänst Norr climbs, others stay level.
fn unit_sick_rate(unit: &str, i: usize, n: usize) -> f64 {
    let progress = i as f64 / (n - 1) as f64;
    match unit {
        "SOC-ALD-HTN" => 0.06 + 0.08 * progress,
        u if u.starts_with("SOC") => 0.075,
        u if u.starts_with("BUF-FSK") => 0.07,
        u if u.starts_with("BUF") => 0.055,
        _ => 0.04,
    }
}

fn ledger(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "ledger.csv",
        &[
            "month",
            "cost_centre",
            "account",
            "account_group",
            "budget",
            "outcome",
        ],
    );
    let accounts = [
        ("4010", "personal", 0.72),
        ("5010", "lokaler", 0.14),
        ("6010", "material", 0.06),
        ("7010", "tjanster", 0.08),
    ];
    for unit in UNITS.iter().filter(|u| u.kind == "enhet") {
        let yearly = (unit.staff * scale) as f64 * 620_000.0;
        for (i, m) in months().enumerate() {
            for (account, group, share) in accounts {
                let budget = (yearly * share / 12.0).round();
                let mut drift = noise(rng, 0.04);
                if unit.id == "SOC-ALD-HTN" && group == "personal" {
                    // Sick leave is paid for: cover staff costs climb with it.
                    drift += 0.08 * i as f64 / 35.0;
                }
                let outcome = (budget * (1.0 + drift)).round();
                t.push(vec![
                    date(m.first_day()),
                    unit.cost_centre_at(m).to_string(),
                    account.to_string(),
                    group.to_string(),
                    format!("{budget:.0}"),
                    format!("{outcome:.0}"),
                ]);
            }
        }
    }
    t
}

fn preschool_applications(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "preschool_applications.csv",
        &[
            "wanted_date",
            "application_date",
            "unit_id",
            "child_id",
            "wait_days",
        ],
    );
    let mut child = 0usize;
    let last_day = Month::new(FIRST_YEAR + YEARS - 1, 12).last_day();
    for unit in units_of("BUF-FSK") {
        for m in months() {
            let n = rng.random_range(4..9) * scale;
            for _ in 0..n {
                child += 1;
                let wanted = day_in(rng, m);
                let applied = wanted - Duration::days(rng.random_range(60..200));
                let slow = if unit.id == "BUF-FSK-DAL" { 0.25 } else { 0.08 };
                let wait: i64 = if rng.random_bool(slow) {
                    rng.random_range(121..200)
                } else {
                    rng.random_range(0..120)
                };
                // Children still waiting at the end of the data have no placement yet.
                let placed = wanted + Duration::days(wait) <= last_day;
                t.push(vec![
                    date(wanted),
                    date(applied),
                    unit.id.to_string(),
                    format!("C{child:06}"),
                    if placed {
                        wait.to_string()
                    } else {
                        String::new()
                    },
                ]);
            }
        }
    }
    t
}

fn grade9_results(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "grade9_results.csv",
        &[
            "graduation_date",
            "unit_id",
            "pupil_id",
            "gender",
            "eligible",
            "merit_value",
        ],
    );
    let mut pupil = 0usize;
    for year in FIRST_YEAR..FIRST_YEAR + YEARS {
        for unit in units_of("BUF-GSK") {
            let p_eligible: f64 = if unit.id == "BUF-GSK-HER" { 0.68 } else { 0.87 };
            for _ in 0..(45 * scale) {
                pupil += 1;
                let gender = if rng.random_bool(0.5) { "K" } else { "M" };
                let girl_bonus = if gender == "K" { 0.04 } else { -0.02 };
                let eligible = rng.random_bool((p_eligible + girl_bonus).clamp(0.0, 1.0));
                let merit = if eligible {
                    (235.0 + noise(rng, 35.0)).clamp(140.0, 340.0)
                } else {
                    (130.0 + noise(rng, 30.0)).clamp(0.0, 200.0)
                };
                t.push(vec![
                    date(NaiveDate::from_ymd_opt(year, 6, 10).expect("valid date")),
                    unit.id.to_string(),
                    format!("P{pupil:06}"),
                    gender.to_string(),
                    eligible.to_string(),
                    format!("{:.1}", (merit * 2.0).round() / 2.0),
                ]);
            }
        }
    }
    t
}

fn homecare_visits(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "homecare_visits.csv",
        &[
            "month",
            "unit_id",
            "client_id",
            "gender",
            "planned_visits",
            "performed_visits",
            "staff_count",
        ],
    );
    let missing = Month::new(2024, 3);
    for unit in units_of("SOC-ALD-HT") {
        let clients = 35 * scale;
        for c in 0..clients {
            let client = format!("{}-K{c:05}", &unit.id[8..]);
            let gender = if rng.random_bool(0.65) { "K" } else { "M" };
            let planned_base = rng.random_range(20..120);
            for m in months() {
                let planned: u32 =
                    ((planned_base as f64) * homecare_season(m) * (1.0 + noise(rng, 0.1)))
                        .round()
                        .max(1.0) as u32;
                let missed = if rng.random_bool(0.3) {
                    rng.random_range(0..=(planned / 10).max(1))
                } else {
                    0
                };
                let staff_base = if unit.id == "SOC-ALD-HTC" { 16.0 } else { 11.0 };
                let staff = (staff_base + noise(rng, 3.0)).round().max(2.0);
                if unit.id == "SOC-ALD-HTS" && m == missing {
                    continue; // the month Hemtjänst Söder did not report
                }
                t.push(vec![
                    date(m.first_day()),
                    unit.id.to_string(),
                    client.clone(),
                    gender.to_string(),
                    planned.to_string(),
                    planned.saturating_sub(missed).to_string(),
                    format!("{staff:.0}"),
                ]);
            }
        }
    }
    t
}

fn building_permits(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "building_permits.csv",
        &[
            "received_date",
            "unit_id",
            "case_id",
            "case_type",
            "decided_date",
            "handling_days",
        ],
    );
    let types = [
        "nybyggnad",
        "tillbyggnad",
        "andrad_anvandning",
        "rivning",
        "attefallsatgard",
    ];
    let last_day = Month::new(FIRST_YEAR + YEARS - 1, 12).last_day();
    let mut case = 0usize;
    for m in months() {
        // Spring brings more applications.
        let season = if (3..=6).contains(&m.month()) {
            1.4
        } else {
            1.0
        };
        let n = ((rng.random_range(22..34) as f64) * season) as usize * scale;
        for _ in 0..n {
            case += 1;
            let received = day_in(rng, m);
            let days: i64 = if rng.random_bool(0.12) {
                rng.random_range(71..140)
            } else {
                rng.random_range(5..70)
            };
            let decided = received + Duration::days(days);
            let done = decided <= last_day;
            t.push(vec![
                date(received),
                "SBF-BYG-BL".into(),
                format!("BL-{}-{case:05}", received.year()),
                types[rng.random_range(0..types.len())].to_string(),
                if done { date(decided) } else { String::new() },
                if done {
                    days.to_string()
                } else {
                    String::new()
                },
            ]);
        }
    }
    t
}

fn library_activities(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "library_activities.csv",
        &[
            "date",
            "unit_id",
            "activity_id",
            "activity_type",
            "target_group",
            "participants",
        ],
    );
    let types = [
        "sagostund",
        "bokcirkel",
        "forfattarbesok",
        "digital_hjalp",
        "lovaktivitet",
    ];
    let mut id = 0usize;
    for unit in units_of("KFF-BIB") {
        let base = if unit.id == "KFF-BIB-STA" { 14 } else { 5 };
        for m in months() {
            let summer = if m.month() == 7 { 0.3 } else { 1.0 };
            let n = ((base as f64 * summer).round() as usize).max(1) * scale;
            for _ in 0..n {
                id += 1;
                let kind = types[rng.random_range(0..types.len())];
                let children = matches!(kind, "sagostund" | "lovaktivitet") || rng.random_bool(0.2);
                t.push(vec![
                    date(day_in(rng, m)),
                    unit.id.to_string(),
                    format!("A{id:06}"),
                    kind.to_string(),
                    if children { "barn" } else { "vuxna" }.to_string(),
                    rng.random_range(3..45).to_string(),
                ]);
            }
        }
    }
    t
}

fn citizen_contacts(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "citizen_contacts.csv",
        &[
            "date",
            "unit_id",
            "contact_id",
            "channel",
            "answered_within_target",
            "handling_minutes",
        ],
    );
    let receivers = [
        ("KLK-MS-KC", 300, 0.88),
        ("SBF-BYG-BL", 60, 0.72),
        ("SOC-IFO-FS", 45, 0.8),
    ];
    let channels = ["telefon", "epost", "webb"];
    let mut id = 0usize;
    for m in months() {
        for (unit, per_month, p_ok) in receivers {
            for _ in 0..(per_month * scale) {
                id += 1;
                let channel = channels[rng.random_range(0..channels.len())];
                t.push(vec![
                    date(day_in(rng, m)),
                    unit.to_string(),
                    format!("K{id:07}"),
                    channel.to_string(),
                    rng.random_bool(p_ok).to_string(),
                    rng.random_range(2..40).to_string(),
                ]);
            }
        }
    }
    t
}

fn user_surveys(rng: &mut ChaCha8Rng, scale: usize) -> Table {
    let mut t = Table::new(
        "user_surveys.csv",
        &[
            "survey_date",
            "unit_id",
            "respondent_id",
            "gender",
            "question_area",
            "score",
        ],
    );
    let areas = ["helhet", "bemotande", "information"];
    let surveyed: Vec<&Unit> = UNITS
        .iter()
        .filter(|u| {
            u.kind == "enhet"
                && ["BUF-FSK", "BUF-GSK", "SOC-ALD", "KFF-BIB"]
                    .iter()
                    .any(|p| u.id.starts_with(p))
        })
        .collect();
    let mut id = 0usize;
    for year in FIRST_YEAR..FIRST_YEAR + YEARS {
        let day = NaiveDate::from_ymd_opt(year, 10, 15).expect("valid date");
        for unit in &surveyed {
            let level = if unit.id == "SOC-ALD-HTN" { 6.4 } else { 7.6 };
            for _ in 0..(25 * scale) {
                id += 1;
                let gender = if rng.random_bool(0.6) { "K" } else { "M" };
                for area in areas {
                    let score = (level + noise(rng, 1.6)).round().clamp(1.0, 10.0);
                    t.push(vec![
                        date(day),
                        unit.id.to_string(),
                        format!("R{id:06}"),
                        gender.to_string(),
                        area.to_string(),
                        format!("{score:.0}"),
                    ]);
                }
            }
        }
    }
    t
}
