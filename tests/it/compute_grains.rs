//! Grains (month, quarter, tertial, year, ytd) and stock measures, worked out by hand.

use crate::common;

use common::*;
use polars::prelude::*;

/// Jan 2023 – Feb 2024 for unit A1. p1 works every month with 100 hours and `sick` equal to the
/// month's number in the series (1 for Jan 2023 … 14 for Feb 2024). p2 is employed Jan–Nov 2023
/// and p3 from Jul 2023, both with 0 hours, so headcount is 2 (Jan–Jun), 3 (Jul–Nov), 2 (Dec on).
fn hr_csv() -> String {
    let mut out = String::from("month,unit,person,gender,hours,sick\n");
    for i in 0..14 {
        let (year, month) = (2023 + i / 12, i % 12 + 1);
        let day = format!("{year}-{month:02}-01");
        out += &format!("{day},A1,p1,K,100,{}\n", i + 1);
        if i <= 10 {
            out += &format!("{day},A1,p2,M,0,0\n");
        }
        if i >= 6 {
            out += &format!("{day},A1,p3,K,0,0\n");
        }
    }
    out
}

fn fixture() -> DataFrame {
    let f = Fixture::new();
    f.file("hr.csv", &hr_csv());
    let all = "grains = [\"month\", \"quarter\", \"tertial\", \"year\", \"ytd\"]";
    let mut body = HR_SOURCE.to_string();
    body += &indicator(
        "sick_pct",
        &format!("numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\n{all}"),
    );
    body += &indicator(
        "headcount_last",
        &format!("numerator = \"count(distinct person)\"\nstock = \"last\"\n{all}"),
    );
    body += &indicator(
        "headcount_mean",
        &format!("numerator = \"count(distinct person)\"\nstock = \"mean\"\n{all}"),
    );
    body += &indicator(
        "persons_flow",
        &format!("numerator = \"count(distinct person)\"\n{all}"),
    );
    f.pipeline_full("", "2023-01", &body);
    // The last complete month before 2024-03-15 is February 2024.
    f.values("2024-03-15")
}

#[test]
fn every_grain_sums_its_months() {
    let df = fixture();
    assert_close(value(&df, "sick_pct", "A1", "month", "2023-05"), 5.0);
    // Q2: (4+5+6)/300
    assert_close(value(&df, "sick_pct", "A1", "quarter", "2023-Q2"), 5.0);
    // T2 = May–Aug: (5+6+7+8)/400; T3 = Sep–Dec: (9+10+11+12)/400
    assert_close(value(&df, "sick_pct", "A1", "tertial", "2023-T2"), 6.5);
    assert_close(value(&df, "sick_pct", "A1", "tertial", "2023-T3"), 10.5);
    // Year 2023: (1+…+12)/1200 = 78/1200
    assert_close(value(&df, "sick_pct", "A1", "year", "2023"), 6.5);
    // YTD through August: (1+…+8)/800; 2024 through February: (13+14)/200
    assert_close(value(&df, "sick_pct", "A1", "ytd", "2023-YTD08"), 4.5);
    assert_close(value(&df, "sick_pct", "A1", "ytd", "2024-YTD02"), 13.5);
    assert_close(value(&df, "sick_pct", "K", "ytd", "2024-YTD01"), 13.0);
}

#[test]
fn only_complete_periods_are_reported_and_a_partial_year_only_as_ytd() {
    let df = fixture();
    let periods = |grain: &str| -> Vec<String> {
        let out = df
            .clone()
            .lazy()
            .filter(
                col("indicator_id")
                    .eq(lit("sick_pct"))
                    .and(col("org_unit_id").eq(lit("A1")))
                    .and(col("grain").eq(lit(grain))),
            )
            .select([col("period")])
            .collect()
            .unwrap();
        out.column("period")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|p| p.unwrap().to_string())
            .collect()
    };
    assert_eq!(periods("year"), ["2023"]);
    assert_eq!(
        periods("quarter"),
        ["2023-Q1", "2023-Q2", "2023-Q3", "2023-Q4"]
    );
    assert_eq!(periods("tertial"), ["2023-T1", "2023-T2", "2023-T3"]);
    assert_eq!(periods("month").len(), 14);
    assert_eq!(periods("ytd").len(), 14);
    assert_eq!(periods("ytd").last().unwrap(), "2024-YTD02");
}

#[test]
fn period_bounds_are_dates_with_inclusive_end() {
    let df = fixture();
    let row = df
        .clone()
        .lazy()
        .filter(
            col("indicator_id")
                .eq(lit("sick_pct"))
                .and(col("org_unit_id").eq(lit("A1")))
                .and(col("period").eq(lit("2023-T1"))),
        )
        .select([
            col("period_start").cast(DataType::String),
            col("period_end").cast(DataType::String),
        ])
        .collect()
        .unwrap();
    assert_eq!(
        row.column("period_start").unwrap().str().unwrap().get(0),
        Some("2023-01-01")
    );
    assert_eq!(
        row.column("period_end").unwrap().str().unwrap().get(0),
        Some("2023-04-30")
    );
}

#[test]
fn stock_last_takes_the_periods_last_month() {
    let df = fixture();
    assert_close(value(&df, "headcount_last", "A1", "month", "2023-09"), 3.0);
    assert_close(value(&df, "headcount_last", "A1", "year", "2023"), 2.0); // December
    assert_close(
        value(&df, "headcount_last", "A1", "quarter", "2023-Q3"),
        3.0,
    ); // September
    assert_close(
        value(&df, "headcount_last", "A1", "tertial", "2023-T1"),
        2.0,
    ); // April
    assert_close(value(&df, "headcount_last", "A1", "ytd", "2023-YTD08"), 3.0); // August
    assert_close(value(&df, "headcount_last", "K", "year", "2023"), 2.0);
}

#[test]
fn stock_mean_averages_the_months() {
    let df = fixture();
    // 2023: six months of 2, five of 3, December 2 → 29 / 12.
    assert_close(
        value(&df, "headcount_mean", "A1", "year", "2023"),
        29.0 / 12.0,
    );
    assert_close(
        value(&df, "headcount_mean", "A1", "tertial", "2023-T2"),
        2.5,
    ); // 2,2,3,3
    assert_close(value(&df, "headcount_mean", "A1", "ytd", "2024-YTD02"), 2.0);
}

#[test]
fn a_flow_count_over_a_year_is_not_a_stock() {
    let df = fixture();
    // Three different people worked in 2023; no month had more than three.
    assert_close(value(&df, "persons_flow", "A1", "year", "2023"), 3.0);
    assert_close(value(&df, "persons_flow", "A1", "ytd", "2024-YTD02"), 2.0);
}
