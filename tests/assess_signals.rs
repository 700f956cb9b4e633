//! The statistical reading in the engine: a fixed SPC baseline and the warnings where styrkort
//! gives a result the reference implementation would refuse.

mod common;

use common::*;
use polars::prelude::*;

/// A1: sick leave 5 % and 6 % alternating for 2023, then 10 % every month of 2024.
/// A2: 1 %, 2 %, 3 %, (no report in April), 5 %, 6 %, 7 %, 8 %, then 8 % — a climb with a gap.
fn hr_csv() -> String {
    let mut out = String::from("month,unit,person,gender,hours,sick\n");
    for i in 0..24 {
        let day = format!("{}-{:02}-01", 2023 + i / 12, i % 12 + 1);
        let sick = if i < 12 { 5 + i % 2 } else { 10 };
        out += &format!("{day},A1,p1,K,100,{sick}\n");
        if i != 3 {
            out += &format!("{day},A2,p2,K,100,{}\n", (i + 1).min(8));
        }
    }
    out
}

#[test]
fn a_fixed_baseline_keeps_the_limits_of_the_first_year_and_gaps_are_reported() {
    let f = Fixture::new();
    f.file("hr.csv", &hr_csv());
    let body = HR_SOURCE.to_string()
        + &indicator(
            "sick_pct",
            "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\"]\nspc_baseline = 12",
        )
        .replace("polarity = \"neutral\"", "polarity = \"lower_is_better\"");
    f.pipeline_full("", "2023-01", &body);
    let s = f.run("2025-01-01").unwrap_or_else(|e| panic!("{e}"));
    let d = read_parquet(&s.run_dir.join("deviations.parquet"));
    let a1 = d
        .clone()
        .lazy()
        .filter(
            col("org_unit_id")
                .eq(lit("A1"))
                .and(col("segment").eq(lit("total"))),
        )
        .sort(["period"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    let means: Vec<Option<f64>> = a1
        .column("spc_mean")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    // The baseline is 2023: mean 5.5 (not 7.75 over both years), moving ranges all 1.
    assert!(
        means.iter().all(|m| (m.unwrap() - 5.5).abs() < 1e-12),
        "{means:?}"
    );
    let upl = a1.column("spc_upl").unwrap().f64().unwrap().get(0).unwrap();
    assert!((upl - (5.5 + 2.66)).abs() < 1e-12);
    // Every 2024 month is above the upper limit: a concern when lower is better.
    let types = strings(&a1, "point_type");
    assert!(
        types[12..].iter().all(|t| t == "special_cause_concern"),
        "{types:?}"
    );

    let signals = read_parquet(&s.run_dir.join("signals.parquet"));
    let a2 = signals
        .lazy()
        .filter(
            col("org_unit_id")
                .eq(lit("A2"))
                .and(col("segment").eq(lit("total"))),
        )
        .collect()
        .unwrap();
    let warnings = strings(&a2, "spc_warnings");
    assert!(
        warnings[0].contains("interrupts a possible 7-point trend"),
        "{warnings:?}"
    );
}

#[test]
fn a_baseline_under_12_points_is_refused() {
    let f = Fixture::new();
    f.file("hr.csv", &hr_csv());
    f.pipeline(
        &(HR_SOURCE.to_string()
            + &indicator(
                "x",
                "numerator = \"sum(sick)\"\ngrains = [\"month\"]\nspc_baseline = 6",
            )),
    );
    let err = f.run("2025-01-01").err().expect("must fail");
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("spc_baseline must be at least 12"),
        "{err}"
    );
}
