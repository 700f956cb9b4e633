//! Small pipelines built in a temporary folder, with values worked out by hand in each test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use polars::prelude::*;
use styrkort::{RunOptions, RunSummary};

/// A tiny org: kommun K with boards A (units A1, A2) and B (unit B1).
pub const ORG: &str = "id,name,parent_id,kind
K,Kommun,,kommun
A,Nämnd A,K,namnd
A1,Enhet A1,A,enhet
A2,Enhet A2,A,enhet
B,Nämnd B,K,namnd
B1,Enhet B1,B,enhet
";

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Writes `pipeline.toml` from a header (name, periods, org) plus the given body.
    pub fn pipeline(&self, body: &str) -> PathBuf {
        self.pipeline_with("", body)
    }

    /// As `pipeline`, with top-level keys (which TOML wants before the first table).
    pub fn pipeline_with(&self, top: &str, body: &str) -> PathBuf {
        self.pipeline_full(top, "2024-01", body)
    }

    /// As `pipeline_with`, with the first period.
    pub fn pipeline_full(&self, top: &str, first: &str, body: &str) -> PathBuf {
        if !self.path("org.csv").exists() {
            self.file("org.csv", ORG);
        }
        let text = format!(
            "name = \"t\"\n{top}\n[periods]\nfirst = \"{first}\"\n[org]\nunits = \"org.csv\"\n{}\n{body}",
            if self.path("mapping.csv").exists() {
                "code_mapping = \"mapping.csv\""
            } else {
                ""
            }
        );
        self.file("pipeline.toml", &text)
    }

    pub fn run(&self, as_of: &str) -> Result<RunSummary, styrkort::Error> {
        styrkort::run(
            &self.path("pipeline.toml"),
            &RunOptions::new(
                Some(chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d").unwrap()),
                self.path("out"),
            ),
        )
    }

    /// Runs and reads back `indicator_values.parquet`.
    pub fn values(&self, as_of: &str) -> DataFrame {
        let summary = self
            .run(as_of)
            .unwrap_or_else(|e| panic!("run failed: {e}"));
        read_parquet(&summary.run_dir.join("indicator_values.parquet"))
    }
}

pub fn read_parquet(path: &Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap();
    ParquetReader::new(file).finish().unwrap()
}

/// One row of indicator_values.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    pub n_rows: i64,
}

/// The cell for (indicator, unit, grain, period, segment); panics if it is not exactly one row.
pub fn cell(
    df: &DataFrame,
    indicator: &str,
    unit: &str,
    grain: &str,
    period: &str,
    segment: &str,
) -> Cell {
    let hit = df
        .clone()
        .lazy()
        .filter(
            col("indicator_id")
                .eq(lit(indicator))
                .and(col("org_unit_id").eq(lit(unit)))
                .and(col("grain").eq(lit(grain)))
                .and(col("period").eq(lit(period)))
                .and(col("segment").eq(lit(segment))),
        )
        .collect()
        .unwrap();
    assert_eq!(
        hit.height(),
        1,
        "expected one row for {indicator}/{unit}/{grain}/{period}/{segment}, found {}",
        hit.height()
    );
    let f = |name: &str| hit.column(name).unwrap().f64().unwrap().get(0);
    Cell {
        numerator: f("numerator"),
        denominator: f("denominator"),
        value: f("value"),
        n_rows: hit.column("n_rows").unwrap().i64().unwrap().get(0).unwrap(),
    }
}

pub fn value(
    df: &DataFrame,
    indicator: &str,
    unit: &str,
    grain: &str,
    period: &str,
) -> Option<f64> {
    cell(df, indicator, unit, grain, period, "total").value
}

pub fn assert_close(actual: Option<f64>, expected: f64) {
    let a = actual.unwrap_or_else(|| panic!("expected {expected}, got null"));
    assert!(
        (a - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "expected {expected}, got {a}"
    );
}

/// Rows matching a filter.
pub fn count_where(df: &DataFrame, predicate: Expr) -> usize {
    df.clone()
        .lazy()
        .filter(predicate)
        .collect()
        .unwrap()
        .height()
}

/// The source block most tests use: `hr.csv` with month, unit, person, gender, hours, sick.
pub const HR_SOURCE: &str = r#"
[[sources]]
name = "hr"
path = "hr.csv"
format = "csv"
date_column = "month"
org_column = "unit"
[sources.columns]
month = "date"
unit = "string"
person = "string"
gender = "string"
hours = "float"
sick = "float"
"#;

/// An indicator block over `hr` with a goal that lists it.
pub fn indicator(id: &str, extra: &str) -> String {
    format!(
        "[[indicators]]\nid = \"{id}\"\nname = \"{id}\"\nsource = \"hr\"\npolarity = \"neutral\"\n{extra}\n\
         [[goals]]\nid = \"goal_{id}\"\nname = \"g\"\nlevel = \"kf\"\nowner = \"K\"\nbasis = \"law\"\nreference = \"r\"\nindicators = [\"{id}\"]\n"
    )
}

/// A string column as owned values (nulls as empty strings).
pub fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect()
}

/// An integer column as values (the column has no nulls).
pub fn ints(df: &DataFrame, name: &str) -> Vec<i64> {
    df.column(name)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

/// Writes HR rows to a Parquet file, the `month` column (text) stored as a date.
pub fn write_hr_parquet(path: &Path, mut rows: DataFrame) {
    let dates = rows.column("month").unwrap().cast(&DataType::Date).unwrap();
    rows.with_column(dates).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut rows)
        .unwrap();
}

/// `fixtures/dialects/hr_sqlserver.parquet` (the clean HR rows as SQL Server writes them:
/// DECIMAL hours, a TIMESTAMP month, INTEGER cost centres 101/102 for A1/A2) copied into the
/// fixture with its code mapping; returns the `hr` source block that reads it.
pub fn sql_server_hr_source(f: &Fixture) -> String {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dialects");
    std::fs::copy(repo.join("hr_sqlserver.parquet"), f.path("hr.parquet")).unwrap();
    f.file(
        "mapping.csv",
        "source,code,unit_id,valid_from,valid_to\nhr,101,A1,,\nhr,102,A2,,\n",
    );
    HR_SOURCE
        .replace("hr.csv", "hr.parquet")
        .replace("format = \"csv\"", "format = \"parquet\"")
        .replace(
            "org_column = \"unit\"",
            "org_column = \"unit\"\norg_codes = \"mapping\"",
        )
}
