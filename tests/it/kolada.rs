//! Kolada: published values checked against the source file directly, peer-group benchmarks
//! against means computed here from the shared CSVs, and the unweighted-mean roll-up by hand.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::*;
use polars::prelude::*;

fn shared(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/kolada")
        .join(file)
}

/// The published value of a KPI for a municipality, year and gender, from the shared CSV.
fn published(kpi: &str, municipality: &str, year: &str, gender: &str) -> Option<f64> {
    static ROWS: OnceLock<BTreeMap<(String, String, String, String), f64>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let mut reader =
            csv::Reader::from_path(shared("kpi_values_41_kpis_all_municipalities.csv")).unwrap();
        reader
            .records()
            .filter_map(|r| {
                let r = r.unwrap();
                let v = r.get(4)?.parse().ok()?;
                Some((
                    (
                        r[0].to_string(),
                        r[1].to_string(),
                        r[2].to_string(),
                        r[3].to_string(),
                    ),
                    v,
                ))
            })
            .collect()
    })
    .get(&(kpi.into(), municipality.into(), year.into(), gender.into()))
    .copied()
}

struct Run {
    values: DataFrame,
    deviations: DataFrame,
    _out: tempfile::TempDir,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let s = styrkort::run(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/kolada-uddevalla.toml"),
            &styrkort::RunOptions::new(None, out.path().to_path_buf()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Run {
            values: read_parquet(&s.run_dir.join("indicator_values.parquet")),
            deviations: read_parquet(&s.run_dir.join("deviations.parquet")),
            _out: out,
        }
    })
}

#[test]
fn published_values_come_through_unchanged() {
    let v = &run().values;
    // The sanity values of SOURCES.md, read from the source file here rather than trusted.
    assert_eq!(published("N00090", "1485", "2022", "T"), Some(10.0));
    assert_eq!(published("N00090", "0000", "2022", "T"), Some(8.1));
    assert_close(value(v, "sick_leave", "1485", "year", "2022"), 10.0);
    assert_close(value(v, "sick_leave", "0000", "year", "2022"), 8.1);
    assert_close(
        cell(v, "sick_leave", "1485", "year", "2022", "gender=K").value,
        published("N00090", "1485", "2022", "K").unwrap(),
    );
    for (ind, kpi) in [
        ("solidity", "N03002"),
        ("self_financing", "N03103"),
        ("merit_value", "N15505"),
    ] {
        for unit in ["1485", "0180", "2584"] {
            let expected = published(kpi, unit, "2021", "T");
            let c = cell(v, ind, unit, "year", "2021", "total");
            match expected {
                Some(e) => assert_close(c.value, e),
                None => assert_eq!((c.value, c.n_rows), (None, 0), "{ind} {unit}"),
            }
        }
    }
    // A region is not the sum of its kommuner: its own published value, or no data.
    assert_close(
        value(v, "eligible_vocational", "0014", "year", "2022"),
        published("N15428", "0014", "2022", "T").unwrap(),
    );
    assert_eq!(published("N00090", "0014", "2022", "T"), None);
    assert_eq!(
        cell(v, "sick_leave", "0014", "year", "2022", "total").n_rows,
        0
    );
}

#[test]
fn every_kommun_is_computed() {
    let kommuner = run()
        .values
        .clone()
        .lazy()
        .filter(col("org_kind").eq(lit("kommun")))
        .select([col("org_unit_id")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .unwrap();
    assert_eq!(kommuner.height(), 290);
}

#[test]
fn the_peer_group_benchmark_is_the_unweighted_mean_of_its_members() {
    // Members of "Liknande kommuner, övergripande, Uddevalla" from the shared CSV.
    let mut reader = csv::Reader::from_path(shared("municipality_group_members.csv")).unwrap();
    let members: Vec<String> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[0] == "G37561")
        .map(|r| r[2].to_string())
        .collect();
    assert_eq!(members.len(), 7);
    let values: Vec<f64> = members
        .iter()
        .filter_map(|m| published("N15428", m, "2022", "T"))
        .collect();
    assert_eq!(values.len(), 7);
    let mean = values.iter().sum::<f64>() / 7.0;
    let r = run()
        .deviations
        .clone()
        .lazy()
        .filter(
            col("indicator_id")
                .eq(lit("eligible_vocational"))
                .and(col("org_unit_id").eq(lit("1485")))
                .and(col("period").eq(lit("2022")))
                .and(col("segment").eq(lit("total"))),
        )
        .collect()
        .unwrap();
    assert_eq!(strings(&r, "compare_to"), ["group:G37561"]);
    assert_close(
        r.column("comparison_value").unwrap().f64().unwrap().get(0),
        mean,
    );
    // Uddevalla 89.2 % against the peers' 81.2 %: better, so met.
    assert_eq!(strings(&r, "status"), ["met"]);
}

/// Published values for leaves A1, A2 (under A) and B1 (under B) under root R, in Kolada's tidy
/// layout. A2 has no value in 2021 and an empty one in 2022.
const TIDY: &str = "kpi,municipality,period,gender,value
X,A1,2021,T,10
X,A2,2021,K,99
X,B1,2021,T,40
X,A1,2022,T,20
X,A2,2022,T,
X,B1,2022,T,50
X,R,2022,T,77
";

const TREE: &str = "id,name,parent_id,kind
R,Riket,,riket
A,Region A,R,region
A1,Kommun A1,A,kommun
A2,Kommun A2,A,kommun
B,Region B,R,region
B1,Kommun B1,B,kommun
";

#[test]
fn unweighted_mean_roll_up_counts_the_contributing_units() {
    let f = Fixture::new();
    f.file("org.csv", TREE);
    f.file("kolada.csv", TIDY);
    let body = r#"
[[sources]]
name = "kolada"
path = "kolada.csv"
format = "csv"
date_column = "period"
org_column = "municipality"
total_rows = "gender = 'T'"
[sources.columns]
kpi = "string"
municipality = "string"
period = "year"
gender = "string"
value = "float"

[[indicators]]
id = "x"
name = "x"
source = "kolada"
filter = "kpi = 'X' and value is not null"
numerator = "avg(value)"
grains = ["year"]
breakdown = ["gender"]
rollup = "unweighted_mean"
polarity = "neutral"

[[goals]]
id = "g"
name = "g"
level = "kf"
owner = "R"
basis = "law"
reference = "r"
indicators = ["x"]
"#;
    f.pipeline_full("", "2021-01", body);
    let v = f.values("2023-01-01");
    let n_units = |unit: &str, year: &str| {
        let r = v
            .clone()
            .lazy()
            .filter(
                col("org_unit_id")
                    .eq(lit(unit))
                    .and(col("period").eq(lit(year)))
                    .and(col("segment").eq(lit("total"))),
            )
            .collect()
            .unwrap();
        r.column("n_units").unwrap().i64().unwrap().get(0)
    };
    // 2021: A = mean(A1 10) = 10 from one unit (A2 published only for women); B = 40; R = mean(10, 40).
    assert_close(value(&v, "x", "A", "year", "2021"), 10.0);
    assert_eq!(n_units("A", "2021"), Some(1));
    assert_close(value(&v, "x", "R", "year", "2021"), 25.0);
    assert_eq!(n_units("R", "2021"), Some(2));
    // 2022: A2's value is empty, so it is missing, not 0; R's own published 77 is not used by an
    // unweighted mean: mean(20, 50) = 35 over two units.
    assert_eq!(cell(&v, "x", "A2", "year", "2022", "total").value, None);
    assert_close(value(&v, "x", "A", "year", "2022"), 20.0);
    assert_close(value(&v, "x", "R", "year", "2022"), 35.0);
    assert_eq!(n_units("R", "2022"), Some(2));
    assert_eq!(n_units("A1", "2022"), Some(1));
    // Women's segment: only A2 2021 has one.
    assert_close(cell(&v, "x", "A2", "year", "2021", "gender=K").value, 99.0);
    assert_close(cell(&v, "x", "R", "year", "2021", "gender=K").value, 99.0);
}

#[test]
fn the_kolada_api_v3_json_shape_is_read_with_nulls_as_missing() {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shared("api_v3_data_example.json")).unwrap())
            .unwrap();
    let entries = json["values"].as_array().unwrap();
    // A KPI with both a published value and a null, for the test to check.
    let with_value = entries
        .iter()
        .find(|e| {
            e["values"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["gender"] == "T" && v["value"].is_f64())
        })
        .unwrap();
    let kpi = with_value["kpi"].as_str().unwrap();
    let mut units: Vec<String> = entries
        .iter()
        .map(|e| e["municipality"].as_str().unwrap().to_string())
        .collect();
    units.sort();
    units.dedup();
    let mut org = String::from("id,name,parent_id,kind\nR,Riket,,riket\n");
    for u in &units {
        org += &format!("{u},{u},R,kommun\n");
    }
    let f = Fixture::new();
    f.file("org.csv", &org);
    std::fs::copy(shared("api_v3_data_example.json"), f.path("data.json")).unwrap();
    let body = format!(
        r#"
[[sources]]
name = "kolada"
path = "data.json"
format = "kolada_json"
date_column = "period"
org_column = "municipality"
total_rows = "gender = 'T'"
[sources.columns]
kpi = "string"
municipality = "string"
period = "year"
gender = "string"
value = "float"

[[indicators]]
id = "k"
name = "k"
source = "kolada"
filter = "kpi = '{kpi}' and value is not null"
numerator = "avg(value)"
grains = ["year"]
rollup = "none"
polarity = "neutral"

[[goals]]
id = "g"
name = "g"
level = "kf"
owner = "R"
basis = "law"
reference = "r"
indicators = ["k"]
"#
    );
    f.pipeline_full("", "2010-01", &body);
    // The example's years run to 2024.
    let v = f.values("2025-01-01");
    let mut checked = (0, 0);
    for e in entries.iter().filter(|e| e["kpi"] == kpi) {
        let unit = e["municipality"].as_str().unwrap();
        let year = e["period"].to_string();
        if !(2010..=2024).contains(&year.parse::<i32>().unwrap()) {
            continue;
        }
        for g in e["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["gender"] == "T")
        {
            let c = cell(&v, "k", unit, "year", &year, "total");
            match g["value"].as_f64() {
                Some(x) => {
                    assert_close(c.value, x);
                    checked.0 += 1;
                }
                None => {
                    assert_eq!((c.value, c.n_rows), (None, 0), "{unit} {year}");
                    checked.1 += 1;
                }
            }
        }
    }
    assert!(checked.0 > 0 && checked.1 > 0, "checked {checked:?}");
}

#[test]
fn rank_targets_rank_every_kommun_in_the_indicators_polarity() {
    // Full-time share 2022, higher is better: Uddevalla's rank among all kommuner, from the CSV.
    let mut reader =
        csv::Reader::from_path(shared("kpi_values_41_kpis_all_municipalities.csv")).unwrap();
    let kommun_values: Vec<(String, f64)> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[0] == "N00206" && &r[2] == "2022" && &r[3] == "T" && !r[1].starts_with("00"))
        .filter_map(|r| Some((r[1].to_string(), r[4].parse().ok()?)))
        .collect();
    let uddevalla = kommun_values.iter().find(|(m, _)| m == "1485").unwrap().1;
    let rank = 1 + kommun_values.iter().filter(|(_, v)| *v > uddevalla).count();
    let of = kommun_values.len();
    let row = run()
        .deviations
        .clone()
        .lazy()
        .filter(
            col("indicator_id")
                .eq(lit("full_time_share"))
                .and(col("org_unit_id").eq(lit("1485")))
                .and(col("period").eq(lit("2022")))
                .and(col("segment").eq(lit("total"))),
        )
        .collect()
        .unwrap();
    let u = |c: &str| {
        row.column(c)
            .unwrap()
            .u32()
            .unwrap()
            .get(0)
            .map(|x| x as usize)
    };
    assert_eq!((u("rank"), u("rank_of")), (Some(rank), Some(of)));
    // Best quarter: rank ≤ ⌈0.25 · n⌉ met, ≤ ⌈0.35 · n⌉ partly met.
    let expected = if rank as f64 <= (0.25 * of as f64).ceil() {
        "met"
    } else if rank as f64 <= (0.35 * of as f64).ceil() {
        "partly_met"
    } else {
        "not_met"
    };
    assert_eq!(strings(&row, "status"), [expected]);
    assert_eq!(strings(&row, "target_kind"), ["top_share"]);
}
