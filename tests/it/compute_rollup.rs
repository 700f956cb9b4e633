//! Roll-up across the org tree, worked out by hand: ratios of sums, non-additive aggregates from
//! the parent's own rows, zero denominators, units without rows, filters and gender breakdown.

use crate::common;

use common::*;
use polars::prelude::*;

/// Jan–Mar 2024 for units A1, A2 (board A) and B1 (board B).
const HR: &str = "month,unit,person,gender,hours,sick
2024-01-01,A1,p1,K,60,6
2024-01-01,A1,p2,M,40,4
2024-01-01,A2,p3,K,900,9
2024-01-01,B1,p4,M,100,0
2024-02-01,A1,p1,K,50,0
2024-02-01,A2,p3,K,0,0
2024-03-01,A1,p1,K,100,5
2024-03-01,A2,p3,K,100,15
2024-03-01,B1,p4,M,100,10
";

fn fixture() -> (Fixture, DataFrame) {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    let mut body = HR_SOURCE.to_string();
    body += &indicator(
        "sick_pct",
        "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\", \"quarter\", \"ytd\"]\nbreakdown = [\"gender\"]",
    );
    body += &indicator(
        "median_hours",
        "numerator = \"median(hours)\"\ngrains = [\"month\", \"quarter\"]",
    );
    body += &indicator(
        "persons",
        "numerator = \"count(distinct person)\"\ngrains = [\"month\", \"quarter\"]",
    );
    body += &indicator(
        "row_count",
        "numerator = \"count(*)\"\ngrains = [\"month\"]\nwhen_no_rows = \"zero\"",
    );
    body += &indicator(
        "sick_pct_women",
        "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\nfilter = \"gender = 'K'\"\ngrains = [\"month\"]",
    );
    body += &indicator(
        "women_rows",
        "numerator = \"count(*)\"\nfilter = \"gender = 'K'\"\ngrains = [\"month\"]",
    );
    f.pipeline(&body);
    let df = f.values("2024-04-01");
    (f, df)
}

#[test]
fn a_parent_ratio_is_the_ratio_of_its_rows_sums_not_the_mean_of_children() {
    let (_f, df) = fixture();
    // A1: 10/100 = 10 %, A2: 9/900 = 1 %. Mean of ratios would be 5.5 %; A is 19/1000.
    assert_close(value(&df, "sick_pct", "A1", "month", "2024-01"), 10.0);
    assert_close(value(&df, "sick_pct", "A2", "month", "2024-01"), 1.0);
    let a = cell(&df, "sick_pct", "A", "month", "2024-01", "total");
    assert_close(a.numerator, 19.0);
    assert_close(a.denominator, 1000.0);
    assert_close(a.value, 1.9);
    assert_eq!(a.n_rows, 3);
    // The kommun: all four rows, 19 / 1100.
    assert_close(
        value(&df, "sick_pct", "K", "month", "2024-01"),
        100.0 * 19.0 / 1100.0,
    );
    // Q1 for A: sick 10+9+0+0+5+15 = 39 over hours 100+900+50+0+100+100 = 1250.
    assert_close(
        value(&df, "sick_pct", "A", "quarter", "2024-Q1"),
        100.0 * 39.0 / 1250.0,
    );
}

#[test]
fn non_additive_aggregates_use_the_parents_own_rows() {
    let (_f, df) = fixture();
    // Median of A's January rows (60, 40, 900) is 60; the children's medians are 50 and 900.
    assert_close(value(&df, "median_hours", "A", "month", "2024-01"), 60.0);
    assert_close(value(&df, "median_hours", "A1", "month", "2024-01"), 50.0);
    // Q1 at A: rows 60,40,900,50,0,100,100 → sorted 0,40,50,60,100,100,900 → 60.
    assert_close(value(&df, "median_hours", "A", "quarter", "2024-Q1"), 60.0);
    // Distinct persons in Q1 at K: p1..p4 = 4, though months hold 4 + 2 + 3 person-rows.
    assert_close(value(&df, "persons", "K", "quarter", "2024-Q1"), 4.0);
    assert_close(value(&df, "persons", "K", "month", "2024-03"), 3.0);
    assert_close(value(&df, "persons", "A", "quarter", "2024-Q1"), 3.0);
}

#[test]
fn a_zero_denominator_gives_null_not_zero_or_nan() {
    let (_f, df) = fixture();
    // A2 in February reported one row with 0 hours.
    let c = cell(&df, "sick_pct", "A2", "month", "2024-02", "total");
    assert_eq!(c.n_rows, 1);
    assert_close(c.denominator, 0.0);
    assert_eq!(c.value, None);
    // A in February still has A1's hours: 0 / 50 = 0 %.
    assert_close(value(&df, "sick_pct", "A", "month", "2024-02"), 0.0);
}

#[test]
fn a_unit_without_rows_gets_a_no_data_row() {
    let (_f, df) = fixture();
    // B1 and board B have no rows in February.
    for unit in ["B1", "B"] {
        let c = cell(&df, "sick_pct", unit, "month", "2024-02", "total");
        assert_eq!(c.n_rows, 0);
        assert_eq!(c.value, None);
        assert_eq!(c.numerator, None);
    }
    // With when_no_rows = "zero" the same cell is 0.
    let c = cell(&df, "row_count", "B1", "month", "2024-02", "total");
    assert_eq!((c.n_rows, c.value), (0, Some(0.0)));
    assert_close(value(&df, "row_count", "A", "month", "2024-01"), 3.0);
    // Every unit × month × indicator cell exists: 6 units × 3 months for row_count.
    assert_eq!(
        count_where(&df, col("indicator_id").eq(lit("row_count"))),
        18
    );
}

#[test]
fn a_filter_restricts_every_aggregate_of_the_indicator() {
    let (_f, df) = fixture();
    // Women's rows in January at A: p1 (60 h, 6 sick) and p3 (900 h, 9 sick).
    let c = cell(&df, "sick_pct_women", "A", "month", "2024-01", "total");
    assert_close(c.numerator, 15.0);
    assert_close(c.denominator, 960.0);
    assert_eq!(c.n_rows, 2);
    assert_close(value(&df, "women_rows", "K", "month", "2024-01"), 2.0);
    // B1 has rows in January but none by a woman: the indicator has no data there.
    let b1 = cell(&df, "women_rows", "B1", "month", "2024-01", "total");
    assert_eq!((b1.n_rows, b1.value), (0, None));
}

#[test]
fn gender_breakdown_adds_rows_beside_the_total() {
    let (_f, df) = fixture();
    // A in January: women 15/960, men 4/40.
    assert_close(
        cell(&df, "sick_pct", "A", "month", "2024-01", "gender=K").value,
        100.0 * 15.0 / 960.0,
    );
    assert_close(
        cell(&df, "sick_pct", "A", "month", "2024-01", "gender=M").value,
        10.0,
    );
    // Men at the kommun: p2 (40 h, 4) and p4 (100 h, 0).
    assert_close(
        cell(&df, "sick_pct", "K", "month", "2024-01", "gender=M").value,
        100.0 * 4.0 / 140.0,
    );
    // A2 had no men: the segment row is there, with no data.
    let c = cell(&df, "sick_pct", "A2", "month", "2024-01", "gender=M");
    assert_eq!((c.n_rows, c.value), (0, None));
    // Indicators without breakdown have only the total.
    assert_eq!(
        count_where(
            &df,
            col("indicator_id")
                .eq(lit("persons"))
                .and(col("segment").neq(lit("total")))
        ),
        0
    );
}

#[test]
fn levels_and_kinds_come_from_the_org_tree() {
    let (_f, df) = fixture();
    let row = df
        .clone()
        .lazy()
        .filter(col("org_unit_id").eq(lit("A1")))
        .select([col("org_level"), col("org_kind")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .unwrap();
    assert_eq!(row.height(), 1);
    assert_eq!(
        row.column("org_level").unwrap().i32().unwrap().get(0),
        Some(2)
    );
    assert_eq!(
        row.column("org_kind").unwrap().str().unwrap().get(0),
        Some("enhet")
    );
}

#[test]
fn a_scope_counts_only_rows_inside_it_also_in_the_parents_above() {
    // The Äldreomsorgen case: cost per home-care client scoped to the home-care units must not
    // divide the board's other units' costs by home-care clients. Here the scope is A1: board A
    // and the kommun count A1's rows only, not A2's or B1's.
    let f = Fixture::new();
    f.file("hr.csv", HR);
    let mut body = HR_SOURCE.to_string();
    body += &indicator(
        "sick_pct_a1",
        "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\nscope = \"A1\"\ngrains = [\"month\", \"quarter\"]\nbreakdown = [\"gender\"]",
    );
    body += &indicator(
        "persons_a1",
        "numerator = \"count(distinct person)\"\nscope = [\"A1\"]\ngrains = [\"quarter\"]",
    );
    body += &indicator(
        "women_rows_a1",
        "numerator = \"count(*)\"\nfilter = \"gender = 'K'\"\nscope = \"A1\"\ngrains = [\"month\"]",
    );
    // stddev has no mergeable state: the direct path must honour the scope too.
    body += &indicator(
        "hours_sd_a1",
        "numerator = \"stddev(hours)\"\nscope = \"A1\"\ngrains = [\"month\"]",
    );
    body += &indicator(
        "sick_pct_all",
        "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\"]",
    );
    f.pipeline(&body);
    let df = f.values("2024-04-01");

    // January inside A1: p1 60 h / 6 sick, p2 40 h / 4 sick → 10 / 100. A and K the same.
    for unit in ["A1", "A", "K"] {
        let c = cell(&df, "sick_pct_a1", unit, "month", "2024-01", "total");
        assert_close(c.numerator, 10.0);
        assert_close(c.denominator, 100.0);
        assert_close(c.value, 10.0);
        assert_eq!(c.n_rows, 2, "{unit}");
    }
    // The breakdown too: only p1 is a woman in A1 in January (6 / 60).
    let women = cell(&df, "sick_pct_a1", "K", "month", "2024-01", "gender=K");
    assert_close(women.value, 10.0);
    assert_eq!(women.n_rows, 1);
    // Q1 inside A1: 60+40+50+100 hours, 6+4+0+5 sick.
    assert_close(
        value(&df, "sick_pct_a1", "K", "quarter", "2024-Q1"),
        100.0 * 15.0 / 250.0,
    );
    // Units outside the scope and not above it are not reported at all.
    for unit in ["A2", "B", "B1"] {
        assert_eq!(
            count_where(
                &df,
                col("indicator_id")
                    .eq(lit("sick_pct_a1"))
                    .and(col("org_unit_id").eq(lit(unit)))
            ),
            0,
            "{unit}"
        );
    }
    // Distinct persons in Q1 at K within A1: p1 and p2 (p3, p4 are outside).
    assert_close(value(&df, "persons_a1", "K", "quarter", "2024-Q1"), 2.0);
    // Filter and scope together: women in A1 in January = p1.
    assert_close(value(&df, "women_rows_a1", "K", "month", "2024-01"), 1.0);
    // Sample sd of A1's January hours (60, 40): sqrt(((60-50)² + (40-50)²) / 1).
    assert_close(
        value(&df, "hours_sd_a1", "A", "month", "2024-01"),
        (200.0f64).sqrt(),
    );
    // Without a scope, the kommun counts every row: 19 / 1100.
    assert_close(
        value(&df, "sick_pct_all", "K", "month", "2024-01"),
        100.0 * 19.0 / 1100.0,
    );
}

/// Costs per unit, Jan–Feb 2024: wages ('lon') and premises ('lokal').
const COSTS: &str = "month,unit,account,amount
2024-01-15,A1,lon,1000
2024-01-20,A1,lokal,500
2024-01-31,A2,lon,3000
2024-01-10,B1,lon,800
2024-02-05,A1,lon,1200
";

const COSTS_SOURCE: &str = r#"
[[sources]]
name = "costs"
path = "costs.csv"
format = "csv"
date_column = "month"
org_column = "unit"
[sources.columns]
month = "date"
unit = "string"
account = "string"
amount = "float"
"#;

#[test]
fn a_cross_source_indicator_divides_one_sources_sum_by_anothers_count_per_cell() {
    // Wage cost per person: the costs source's wages over the HR source's distinct persons,
    // each side aggregated over the rows beneath the unit, then divided.
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.file("costs.csv", COSTS);
    let mut body = HR_SOURCE.to_string() + COSTS_SOURCE;
    // The denominator takes the indicator's source (hr); the numerator names its own.
    body += &indicator(
        "wage_cost_per_person",
        "numerator = { source = \"costs\", expr = \"sum(amount)\", filter = \"account = 'lon'\" }\ndenominator = \"count(distinct person)\"\ngrains = [\"month\", \"quarter\"]",
    );
    // Both sides as tables, and a scope: only A1's rows count, also at A and K.
    body += &indicator(
        "cost_per_person_a1",
        "numerator = { source = \"costs\", expr = \"sum(amount)\" }\ndenominator = { source = \"hr\", expr = \"count(distinct person)\" }\nscope = \"A1\"\ngrains = [\"month\"]",
    );
    f.pipeline(&body);
    let df = f.values("2024-04-01");

    let c = cell(
        &df,
        "wage_cost_per_person",
        "A1",
        "month",
        "2024-01",
        "total",
    );
    assert_close(c.numerator, 1000.0);
    assert_close(c.denominator, 2.0);
    assert_close(c.value, 500.0);
    assert_eq!(c.n_rows, 1, "rows counted for the numerator");
    // Board A in January: wages 1000 + 3000 over persons p1, p2, p3.
    assert_close(
        value(&df, "wage_cost_per_person", "A", "month", "2024-01"),
        4000.0 / 3.0,
    );
    // The kommun: 4800 over 4 persons.
    assert_close(
        value(&df, "wage_cost_per_person", "K", "month", "2024-01"),
        1200.0,
    );
    // Q1 at A: wages 1000 + 3000 + 1200 over the 3 distinct persons of the quarter.
    assert_close(
        value(&df, "wage_cost_per_person", "A", "quarter", "2024-Q1"),
        5200.0 / 3.0,
    );
    // A2 in February has a person but no cost rows: no data, as for any unit without rows.
    let a2 = cell(
        &df,
        "wage_cost_per_person",
        "A2",
        "month",
        "2024-02",
        "total",
    );
    assert_eq!((a2.n_rows, a2.value, a2.numerator), (0, None, None));
    // B1 in February has neither: the no-data row of the grid.
    let b1 = cell(
        &df,
        "wage_cost_per_person",
        "B1",
        "month",
        "2024-02",
        "total",
    );
    assert_eq!((b1.n_rows, b1.value), (0, None));

    // Scoped to A1: A and K count A1's costs (1000 + 500) over A1's persons (p1, p2).
    for unit in ["A1", "A", "K"] {
        assert_close(
            value(&df, "cost_per_person_a1", unit, "month", "2024-01"),
            750.0,
        );
    }
    // No side rows leak into the published table.
    assert_eq!(
        count_where(&df, col("indicator_id").str().contains_literal(lit("::"))),
        0
    );
}

/// A distinct count with a breakdown: the total is the distinct count over all rows, not the
/// sum of the segments' (p1 is in two segments, p3 has no gender), at a unit and at its parent.
/// The total's set is counted from the breakdown's (one set of values instead of two), which
/// `explain` says.
#[test]
fn a_distinct_total_beside_its_breakdown_counts_each_value_once() {
    let f = Fixture::new();
    f.file(
        "hr.csv",
        "month,unit,person,gender,hours,sick
2024-01-01,A1,p1,K,10,0
2024-01-01,A1,p1,M,10,0
2024-01-01,A1,p2,K,10,0
2024-01-01,A2,p1,K,10,0
2024-01-01,A2,p3,,10,0
2024-01-01,A2,p3,,20,0
",
    );
    f.pipeline(
        &(HR_SOURCE.to_string()
            + &indicator(
                "persons",
                "numerator = \"count(distinct person)\"\ngrains = [\"month\"]\nbreakdown = [\"gender\"]",
            )),
    );
    let df = f.values("2024-02-01");
    let persons = |unit: &str, segment: &str| {
        cell(&df, "persons", unit, "month", "2024-01", segment).numerator
    };
    // A1: {p1, p2}; K {p1, p2}, M {p1}.
    assert_eq!(persons("A1", "total"), Some(2.0));
    assert_eq!(persons("A1", "gender=K"), Some(2.0));
    assert_eq!(persons("A1", "gender=M"), Some(1.0));
    // A2: {p1, p3}; K {p1}, missing {p3}.
    assert_eq!(persons("A2", "total"), Some(2.0));
    assert_eq!(persons("A2", "gender=K"), Some(1.0));
    assert_eq!(persons("A2", "gender=(missing)"), Some(1.0));
    // A: {p1, p2, p3} (the segments' counts add up to 4); K {p1, p2}, M {p1}, missing {p3}.
    assert_eq!(persons("A", "total"), Some(3.0));
    assert_eq!(persons("A", "gender=K"), Some(2.0));
    assert_eq!(persons("A", "gender=M"), Some(1.0));
    assert_eq!(persons("A", "gender=(missing)"), Some(1.0));
    assert_eq!(
        cell(&df, "persons", "A", "month", "2024-01", "total").n_rows,
        6
    );

    let explained = styrkort::explain(&f.path("pipeline.toml"), None, None, false).unwrap();
    let (total, _, outputs) = &explained[0].segments[0];
    assert_eq!(total, "total (its distinct counts from the sets by gender)");
    assert_eq!(*outputs, 0, "the total keeps no distinct set of its own");
}
