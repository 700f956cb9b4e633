//! The year-end forecast (helårsprognos), worked out by hand.

use crate::common;

use common::*;
use polars::prelude::*;

/// Unit A1. 2023: 2 events a month January–August and 6 a month September–December (16 + 24 =
/// 40 in the year, so January–August is 40 % of it); sick 5 h of 100 h a month January–August
/// and 10 h of 100 h September–December. 2024 so far (January–August): 3 events and 8 sick
/// hours of 100 a month.
fn hr_csv() -> String {
    let mut out = String::from("month,unit,person,gender,hours,sick\n");
    for m in 1..=12 {
        let (events, sick) = if m <= 8 { (2, 5) } else { (6, 10) };
        for e in 0..events {
            let hours = if e == 0 { 100 } else { 0 };
            let s = if e == 0 { sick } else { 0 };
            out += &format!("2023-{m:02}-01,A1,p{e},K,{hours},{s}\n");
        }
    }
    for m in 1..=8 {
        for e in 0..3 {
            let (hours, sick) = if e == 0 { (100, 8) } else { (0, 0) };
            out += &format!("2024-{m:02}-01,A1,p{e},K,{hours},{sick}\n");
        }
    }
    out
}

#[test]
fn the_year_end_is_forecast_from_last_years_seasonal_profile() {
    let f = Fixture::new();
    f.file("hr.csv", &hr_csv());
    f.file(
        "targets.csv",
        "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note\nevents,,,floor,50,,,,\nsick_pct,,2024,ceiling,10,,,,\n",
    );
    let body = HR_SOURCE.to_string()
        + &indicator(
            "events",
            "numerator = \"count(*)\"\ngrains = [\"month\", \"ytd\"]",
        )
        + &indicator(
            "sick_pct",
            "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\", \"ytd\"]",
        );
    f.pipeline_full("targets = \"targets.csv\"", "2023-01", &body);
    let summary = f.run("2024-09-15").unwrap_or_else(|e| panic!("{e}"));
    let signals = read_parquet(&summary.run_dir.join("signals.parquet"));
    let get = |ind: &str| {
        signals
            .clone()
            .lazy()
            .filter(
                col("indicator_id")
                    .eq(lit(ind))
                    .and(col("org_unit_id").eq(lit("A1")))
                    .and(col("segment").eq(lit("total"))),
            )
            .collect()
            .unwrap()
    };
    let events = get("events");
    let f64_at = |df: &DataFrame, c: &str| df.column(c).unwrap().f64().unwrap().get(0);
    // 24 events by August, which was 40 % of last year: 24 / 0.4 = 60 ≥ 50.
    assert_close(f64_at(&events, "forecast_year_end"), 60.0);
    assert_close(f64_at(&events, "forecast_low"), 60.0);
    assert_eq!(strings(&events, "forecast_year"), ["2024"]);
    assert_eq!(strings(&events, "forecast_outlook"), ["likely"]);
    // Sick hours 64 by August, last year 40 of 80 by August → 128; hours 800 of 1200 → 1200.
    // 100 × 128 / 1200 = 10.67 %, above the 2024 ceiling of 10.
    let sick = get("sick_pct");
    assert_close(f64_at(&sick, "forecast_year_end"), 100.0 * 128.0 / 1200.0);
    assert_eq!(strings(&sick, "forecast_outlook"), ["unlikely"]);
    // A complete year has nothing to forecast.
    let summary = f.run("2025-01-01").unwrap();
    let signals = read_parquet(&summary.run_dir.join("signals.parquet"));
    assert_eq!(
        signals.column("forecast_year_end").unwrap().null_count(),
        signals.height()
    );
}
