//! Targets, statuses, goals and actions, with expected values worked out by hand.

use crate::common;

use common::*;
use polars::prelude::*;
use styrkort::assess::{CompareTo, PeriodSpec, Status, Target, TargetKind, Tolerance, judge};
use styrkort::definitions::Polarity;

fn target(
    kind: TargetKind,
    value: Option<f64>,
    high: Option<f64>,
    tol: Option<Tolerance>,
) -> Target {
    Target {
        indicator_id: "x".into(),
        org_unit_id: None,
        period: PeriodSpec::All,
        grain: None,
        kind,
        value,
        value_high: high,
        tolerance: tol,
        compare_to: match kind {
            TargetKind::Increase | TargetKind::Decrease => Some(CompareTo::PreviousYear),
            TargetKind::Benchmark => Some(CompareTo::Parent),
            _ => None,
        },
        note: String::new(),
        origin: "test".into(),
    }
}

/// (status, gap) of `value` against `t`.
fn j(value: f64, t: &Target, comparison: Option<f64>, polarity: Polarity) -> (Status, f64) {
    let r = judge(Some(value), Some(t), comparison, polarity);
    (r.status, r.gap.unwrap_or(f64::NAN))
}

const HI: Polarity = Polarity::HigherIsBetter;
const LO: Polarity = Polarity::LowerIsBetter;

#[test]
fn floor_with_a_percentage_tolerance() {
    // Floor 30, tolerance 20 % of 30 = 6: met ≥ 30, partly met ≥ 24, else not met.
    let t = target(
        TargetKind::Floor,
        Some(30.0),
        None,
        Some(Tolerance::Percent(20.0)),
    );
    assert_eq!(j(30.0, &t, None, HI), (Status::Met, 0.0));
    assert_eq!(j(31.0, &t, None, HI), (Status::Met, 1.0));
    assert_eq!(j(24.0, &t, None, HI), (Status::PartlyMet, -6.0));
    assert_eq!(j(23.99, &t, None, HI).0, Status::NotMet);
    // A floor means the same whatever the polarity says.
    assert_eq!(j(24.0, &t, None, LO), (Status::PartlyMet, -6.0));
}

#[test]
fn ceiling_with_an_absolute_tolerance() {
    // Ceiling 99, tolerance 1: met ≤ 99, partly met ≤ 100; gap is target − value.
    let t = target(
        TargetKind::Ceiling,
        Some(99.0),
        None,
        Some(Tolerance::Absolute(1.0)),
    );
    assert_eq!(j(99.0, &t, None, LO), (Status::Met, 0.0));
    assert_eq!(j(97.5, &t, None, LO), (Status::Met, 1.5));
    assert_eq!(j(100.0, &t, None, LO), (Status::PartlyMet, -1.0));
    assert_eq!(j(100.01, &t, None, LO).0, Status::NotMet);
    // 20 % of 99 is 19.8: 118.8 is exactly on the edge.
    let t = target(
        TargetKind::Ceiling,
        Some(99.0),
        None,
        Some(Tolerance::Percent(20.0)),
    );
    assert_eq!(j(118.8, &t, None, LO).0, Status::PartlyMet);
    assert_eq!(j(118.81, &t, None, LO).0, Status::NotMet);
}

#[test]
fn range_is_judged_at_the_nearer_bound() {
    let t = target(
        TargetKind::Range,
        Some(40.0),
        Some(60.0),
        Some(Tolerance::Absolute(5.0)),
    );
    assert_eq!(j(40.0, &t, None, HI), (Status::Met, 0.0));
    assert_eq!(j(60.0, &t, None, HI), (Status::Met, 0.0));
    assert_eq!(j(50.0, &t, None, HI), (Status::Met, 10.0));
    assert_eq!(j(35.0, &t, None, HI), (Status::PartlyMet, -5.0));
    assert_eq!(j(65.0, &t, None, HI), (Status::PartlyMet, -5.0));
    assert_eq!(j(34.0, &t, None, HI), (Status::NotMet, -6.0));
    assert_eq!(j(66.5, &t, None, HI), (Status::NotMet, -6.5));
    // Without tolerance, outside is not met at once.
    let t = target(TargetKind::Range, Some(40.0), Some(60.0), None);
    assert_eq!(j(60.5, &t, None, HI).0, Status::NotMet);
}

#[test]
fn direction_targets_need_strictly_better() {
    // Increase vs last year's 10, tolerance 10 % of 10 = 1.
    let t = target(
        TargetKind::Increase,
        None,
        None,
        Some(Tolerance::Percent(10.0)),
    );
    assert_eq!(j(10.5, &t, Some(10.0), HI), (Status::Met, 0.5));
    assert_eq!(j(10.0, &t, Some(10.0), HI), (Status::PartlyMet, 0.0));
    assert_eq!(j(9.0, &t, Some(10.0), HI), (Status::PartlyMet, -1.0));
    assert_eq!(j(8.9, &t, Some(10.0), HI).0, Status::NotMet);
    // Decrease vs 10 with an absolute tolerance of 2.
    let t = target(
        TargetKind::Decrease,
        None,
        None,
        Some(Tolerance::Absolute(2.0)),
    );
    assert_eq!(j(9.0, &t, Some(10.0), LO), (Status::Met, 1.0));
    assert_eq!(j(12.0, &t, Some(10.0), LO), (Status::PartlyMet, -2.0));
    assert_eq!(j(12.5, &t, Some(10.0), LO), (Status::NotMet, -2.5));
    // Without a comparison value the target cannot be judged.
    let r = judge(Some(12.0), Some(&t), None, LO);
    assert_eq!(
        (r.status, r.gap, r.target_value),
        (Status::NotAssessable, None, None)
    );
}

#[test]
fn benchmark_follows_the_polarity() {
    let t = target(TargetKind::Benchmark, None, None, None);
    assert_eq!(j(51.0, &t, Some(50.0), HI), (Status::Met, 1.0));
    assert_eq!(j(50.0, &t, Some(50.0), HI), (Status::PartlyMet, 0.0));
    assert_eq!(j(49.0, &t, Some(50.0), HI), (Status::NotMet, -1.0));
    assert_eq!(j(49.0, &t, Some(50.0), LO), (Status::Met, 1.0));
    assert_eq!(j(51.0, &t, Some(50.0), LO), (Status::NotMet, -1.0));
}

#[test]
fn missing_value_or_target() {
    let t = target(TargetKind::Floor, Some(30.0), None, None);
    let r = judge(None, Some(&t), None, HI);
    assert_eq!((r.status, r.target_value), (Status::NoData, Some(30.0)));
    assert_eq!(judge(Some(1.0), None, None, HI).status, Status::NoTarget);
}

// ---------------------------------------------------------------- end to end

/// Yearly sums of `sick` per unit: 2023 A1 30, A2 20, B1 5; 2024 A1 24, A2 25, B1 4.
const HR: &str = "month,unit,person,gender,hours,sick
2023-06-01,A1,p1,K,1,30
2023-06-01,A2,p2,K,1,20
2023-06-01,B1,p3,M,1,5
2024-06-01,A1,p1,K,1,24
2024-06-01,A2,p2,K,1,25
2024-06-01,B1,p3,M,1,4
";

const TARGETS: &str =
    "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note
pct,,,floor,50,,10%,,everyone
pct,A,,floor,40,,5,,board A
pct,A1,2024,floor,24,,,,A1 in 2024
pct,B,,ceiling,4,,1,,board B
trend,,,increase,,,2,previous_year,
third,B,,floor,100,,,,
";

const ACTIONS: &str = "action_id,goal_id,org_unit_id,title,owner,start,due,status
X1,G3,A,Fix A,Ann,2024-01-01,2024-12-31,ongoing
X2,G1,A,Plan,Bo,2024-01-01,2025-01-01,planned
X3,G3,A1,Done,Cy,,2024-06-30,done
";

fn goals() -> &'static str {
    r#"
[[goals]]
id = "G1"
name = "parent"
level = "kf"
owner = "K"
basis = "political_decision"
reference = "KF"
indicators = ["pct"]
weights = { pct = 3 }

[[goals]]
id = "G2"
name = "sub-goal"
level = "kf"
owner = "K"
parent = "G1"
basis = "core_mission"
reference = "mission"
indicators = ["trend", "third"]

[[goals]]
id = "G3"
name = "board A's goal"
level = "namnd"
owner = "A"
basis = "law"
reference = "law"
indicators = ["pct"]
"#
}

fn e2e_body(targets: &str) -> Fixture {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.file("targets.csv", targets);
    f.file("actions.csv", ACTIONS);
    let ind = |id: &str, extra: &str| {
        format!(
            "[[indicators]]\nid = \"{id}\"\nname = \"{id}\"\nsource = \"hr\"\npolarity = \"higher_is_better\"\nnumerator = \"sum(sick)\"\ngrains = [\"year\"]\n{extra}\n"
        )
    };
    let body = HR_SOURCE.to_string()
        + &ind("pct", "")
        + &ind("trend", "")
        + &ind("third", "target = { kind = \"floor\", value = 1 }")
        + goals();
    f.pipeline_full(
        "targets = \"targets.csv\"\nactions = \"actions.csv\"",
        "2023-01",
        &body,
    );
    f
}

struct Outputs {
    deviations: DataFrame,
    goals: DataFrame,
    actions: DataFrame,
    _f: Fixture,
}

fn run_e2e() -> Outputs {
    let f = e2e_body(TARGETS);
    let s = f.run("2025-01-01").unwrap_or_else(|e| panic!("{e}"));
    Outputs {
        deviations: read_parquet(&s.run_dir.join("deviations.parquet")),
        goals: read_parquet(&s.run_dir.join("goal_status.parquet")),
        actions: read_parquet(&s.run_dir.join("actions.parquet")),
        _f: f,
    }
}

fn row(df: &DataFrame, filter: Expr) -> DataFrame {
    let r = df.clone().lazy().filter(filter).collect().unwrap();
    assert_eq!(r.height(), 1, "expected one row, got {r}");
    r
}

fn str_at(df: &DataFrame, name: &str) -> String {
    df.column(name)
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap_or("")
        .to_string()
}

fn f64_at(df: &DataFrame, name: &str) -> Option<f64> {
    df.column(name)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
}

/// (status, target_value, gap) of an indicator at a unit in a year.
fn dev(o: &Outputs, ind: &str, unit: &str, year: &str) -> (String, Option<f64>, Option<f64>) {
    let r = row(
        &o.deviations,
        col("indicator_id")
            .eq(lit(ind))
            .and(col("org_unit_id").eq(lit(unit)))
            .and(col("period").eq(lit(year)))
            .and(col("segment").eq(lit("total"))),
    );
    (
        str_at(&r, "status"),
        f64_at(&r, "target_value"),
        f64_at(&r, "gap"),
    )
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn the_most_specific_target_wins_and_targets_are_inherited_downwards() {
    let o = run_e2e();
    // Kommun: only the blank target applies: floor 50 (partly met down to 45).
    assert_eq!(
        dev(&o, "pct", "K", "2023"),
        (s("met"), Some(50.0), Some(5.0))
    );
    // Board A's own target, floor 40 ± 5.
    assert_eq!(
        dev(&o, "pct", "A", "2024"),
        (s("met"), Some(40.0), Some(9.0))
    );
    // A1 inherits A's target in 2023 (30 < 35: not met) and has its own for 2024 (24 ≥ 24).
    assert_eq!(
        dev(&o, "pct", "A1", "2023"),
        (s("not_met"), Some(40.0), Some(-10.0))
    );
    assert_eq!(
        dev(&o, "pct", "A1", "2024"),
        (s("met"), Some(24.0), Some(0.0))
    );
    assert_eq!(
        dev(&o, "pct", "A2", "2024"),
        (s("not_met"), Some(40.0), Some(-15.0))
    );
    // B1 inherits B's ceiling 4 ± 1: 5 is exactly on the tolerance edge, 4 exactly on target.
    assert_eq!(
        dev(&o, "pct", "B1", "2023"),
        (s("partly_met"), Some(4.0), Some(-1.0))
    );
    assert_eq!(
        dev(&o, "pct", "B1", "2024"),
        (s("met"), Some(4.0), Some(0.0))
    );
}

#[test]
fn direction_targets_compare_with_last_year() {
    let o = run_e2e();
    // 2023 has no previous year in the run: not assessable.
    assert_eq!(dev(&o, "trend", "K", "2023").0, "not_assessable");
    // K: 53 vs 55, gap −2 = −tolerance: partly met. A2: 25 vs 20: met. A1: 24 vs 30: not met.
    assert_eq!(
        dev(&o, "trend", "K", "2024"),
        (s("partly_met"), Some(55.0), Some(-2.0))
    );
    assert_eq!(
        dev(&o, "trend", "A2", "2024"),
        (s("met"), Some(20.0), Some(5.0))
    );
    assert_eq!(
        dev(&o, "trend", "A1", "2024"),
        (s("not_met"), Some(30.0), Some(-6.0))
    );
    let r = row(
        &o.deviations,
        col("indicator_id")
            .eq(lit("trend"))
            .and(col("org_unit_id").eq(lit("A1")))
            .and(col("period").eq(lit("2024"))),
    );
    assert_eq!(f64_at(&r, "last_year_value"), Some(30.0));
    assert_eq!(f64_at(&r, "yoy_change"), Some(-6.0));
    assert_eq!(f64_at(&r, "previous_value"), Some(30.0)); // year grain: the previous period is last year
}

#[test]
fn a_pipeline_default_applies_only_where_the_csv_sets_no_target() {
    let o = run_e2e();
    assert_eq!(
        dev(&o, "third", "A", "2024"),
        (s("met"), Some(1.0), Some(48.0))
    );
    assert_eq!(
        dev(&o, "third", "B1", "2024"),
        (s("not_met"), Some(100.0), Some(-96.0))
    );
}

/// (status, n_indicators, n_met, n_partly_met, n_not_met, n_no_data, share_met)
fn goal(
    o: &Outputs,
    id: &str,
    unit: &str,
    year: &str,
) -> (String, u32, u32, u32, u32, u32, Option<f64>) {
    let r = row(
        &o.goals,
        col("goal_id")
            .eq(lit(id))
            .and(col("org_unit_id").eq(lit(unit)))
            .and(col("period").eq(lit(year))),
    );
    let n = |c: &str| r.column(c).unwrap().u32().unwrap().get(0).unwrap();
    (
        str_at(&r, "status"),
        n("n_indicators"),
        n("n_met"),
        n("n_partly_met"),
        n("n_not_met"),
        n("n_no_data"),
        f64_at(&r, "share_met"),
    )
}

#[test]
fn goals_roll_up_from_indicators_and_sub_goals() {
    let o = run_e2e();
    // G2 in 2023: trend not assessable, third met (default floor 1 at K) → met.
    assert_eq!(
        goal(&o, "G2", "K", "2023"),
        (s("met"), 2, 1, 0, 0, 1, Some(1.0))
    );
    // G2 at A1 in 2024: trend not met, third met → partly met.
    assert_eq!(
        goal(&o, "G2", "A1", "2024"),
        (s("partly_met"), 2, 1, 0, 1, 0, Some(0.5))
    );
    // G2 at B1 in 2024: trend partly met (4 vs 5, gap −1 within 2), third not met (4 < 100).
    assert_eq!(
        goal(&o, "G2", "B1", "2024"),
        (s("partly_met"), 2, 0, 1, 1, 0, Some(0.0))
    );
    // G1 = pct (weight 3) + G2 (weight 1). At A1 in 2023: pct not met, G2 (third met, trend n/a) met:
    // share_met = 1 / (3 + 1).
    assert_eq!(
        goal(&o, "G1", "A1", "2023"),
        (s("partly_met"), 2, 1, 0, 1, 0, Some(0.25))
    );
    // At A1 in 2024: pct met (weight 3), G2 partly met → share 3 / 4.
    assert_eq!(
        goal(&o, "G1", "A1", "2024"),
        (s("partly_met"), 2, 1, 1, 0, 0, Some(0.75))
    );
    // At B1 in 2024: pct met, G2 partly met.
    assert_eq!(goal(&o, "G1", "B1", "2024").0, "partly_met");
    // G3 is owned by board A: it has rows for A, A1, A2 only.
    assert_eq!(
        goal(&o, "G3", "A2", "2024"),
        (s("not_met"), 1, 0, 0, 1, 0, Some(0.0))
    );
    let g3_units = o
        .goals
        .clone()
        .lazy()
        .filter(col("goal_id").eq(lit("G3")))
        .select([col("org_unit_id")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .unwrap();
    let mut units = strings(&g3_units, "org_unit_id");
    units.sort();
    assert_eq!(units, ["A", "A1", "A2"]);
}

#[test]
fn a_goal_with_nothing_assessable_has_no_data() {
    let f = e2e_body(
        "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note\ntrend,,,increase,,,,,\n",
    );
    let summary = f.run("2025-01-01").unwrap();
    let goals = read_parquet(&summary.run_dir.join("goal_status.parquet"));
    let o = Outputs {
        deviations: read_parquet(&summary.run_dir.join("deviations.parquet")),
        goals,
        actions: DataFrame::empty(),
        _f: f,
    };
    // G3 measures only pct, which now has no target: nothing is assessable.
    assert_eq!(
        goal(&o, "G3", "A", "2023"),
        (s("no_data"), 1, 0, 0, 0, 0, None)
    );
    assert_eq!(dev(&o, "pct", "A", "2023").0, "no_target");
}

#[test]
fn overdue_actions_and_deviations_without_action() {
    let o = run_e2e();
    let actions = o
        .actions
        .clone()
        .lazy()
        .filter(col("record_type").eq(lit("action")))
        .collect()
        .unwrap();
    assert_eq!(strings(&actions, "action_id"), ["X1", "X2", "X3"]);
    let overdue: Vec<Option<bool>> = actions
        .column("overdue")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .collect();
    // X1 was due 2024-12-31 (one day before as-of), X2 is due on the as-of date, X3 is done.
    assert_eq!(overdue, [Some(true), Some(false), Some(false)]);
    let days: Vec<Option<i64>> = actions
        .column("days_overdue")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(days, [Some(1), None, None]);

    // Not met in the latest year: G3 at A2 (covered by X1 on board A, an ancestor) and G2
    // nowhere (partly met at most). So no deviation without action… except where nothing covers.
    let without = o
        .actions
        .clone()
        .lazy()
        .filter(col("record_type").eq(lit("deviation_without_action")))
        .collect()
        .unwrap();
    let pairs: Vec<(String, String)> = strings(&without, "goal_id")
        .into_iter()
        .zip(strings(&without, "org_unit_id"))
        .collect();
    assert_eq!(pairs, Vec::<(String, String)>::new(), "{without}");
}

#[test]
fn a_not_met_goal_without_an_open_action_is_listed() {
    // Without X1 nothing covers G3 at A2 (not met in 2024); X3 at A1 is done anyway.
    let f = e2e_body(TARGETS);
    f.file(
        "actions.csv",
        "action_id,goal_id,org_unit_id,title,owner,start,due,status\nX3,G3,A2,Done,Cy,,2024-06-30,done\n",
    );
    let s = f.run("2025-01-01").unwrap();
    let actions = read_parquet(&s.run_dir.join("actions.parquet"));
    let without = actions
        .lazy()
        .filter(col("record_type").eq(lit("deviation_without_action")))
        .collect()
        .unwrap();
    assert_eq!(strings(&without, "goal_id"), ["G3"]);
    assert_eq!(strings(&without, "org_unit_id"), ["A2"]);
    assert_eq!(strings(&without, "period"), ["2024"]);
    assert_eq!(s.manifest.actions.deviations_without_action, 1);
}

#[test]
fn two_equally_specific_targets_are_an_error_naming_both_lines() {
    let f = e2e_body(&(TARGETS.to_string() + "pct,A,,floor,45,,,,again\n"));
    let err = f.run("2025-01-01").err().expect("must fail");
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(text.contains("targets.csv:8:"), "{text}");
    assert!(text.contains("target pct/A/*"), "{text}");
    assert!(text.contains("lines 3 and 8"), "{text}");
}

#[test]
fn bad_target_rows_name_the_column() {
    for (row, expected) in [
        (
            "nope,,,floor,1,,,,",
            "column 'indicator_id': unknown indicator 'nope'",
        ),
        (
            "pct,Q,,floor,1,,,,",
            "column 'org_unit_id': unknown org unit 'Q'",
        ),
        (
            "pct,,2024-13,floor,1,,,,",
            "column 'period': expected blank, a year",
        ),
        (
            "pct,,,above,1,,,,",
            "column 'kind': expected floor, ceiling, range",
        ),
        ("pct,,,floor,,,,,", "a floor target needs a value"),
        ("pct,,,range,5,1,,,", "a range needs value <= value_high"),
        (
            "pct,,,floor,1,,x%,,",
            "column 'tolerance': expected a non-negative number",
        ),
        (
            "pct,,,benchmark,,,,,",
            "a benchmark target needs compare_to = parent, region, national, unit:<id> or group:<id>",
        ),
        (
            "pct,,,increase,,,,parent,",
            "increase targets compare to previous_year or previous_period, not 'parent'",
        ),
    ] {
        let f = e2e_body(&format!(
            "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note\n{row}\n"
        ));
        let err = f
            .run("2025-01-01")
            .err()
            .unwrap_or_else(|| panic!("{row} must fail"));
        let text = err.to_string();
        assert!(text.contains("targets.csv:2:"), "{row}: {text}");
        assert!(text.contains(expected), "{row}: {text}");
    }
}

#[test]
fn fail_on_exits_3_and_still_publishes() {
    let f = e2e_body(TARGETS);
    let bin = env!("CARGO_BIN_EXE_styrkort");
    let run = |extra: &[&str]| {
        std::process::Command::new(bin)
            .args([
                "run",
                f.path("pipeline.toml").to_str().unwrap(),
                "--as-of",
                "2025-01-01",
            ])
            .args(["--out", f.path("out").to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    assert_eq!(run(&[]).status.code(), Some(0));
    let o = run(&["--fail-on", "not_met"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("--fail-on:"));
    assert!(f.path("out/t/as_of=2025-01-01/deviations.parquet").exists());
    // Nothing is not-assessable in the latest year, so that status does not trigger.
    assert_eq!(run(&["--fail-on", "not_assessable"]).status.code(), Some(0));
    assert_eq!(run(&["--fail-on", "bogus"]).status.code(), Some(2));
}

#[test]
fn inspect_lists_worst_first_and_filters_a_subtree() {
    let f = e2e_body(TARGETS);
    f.run("2025-01-01").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_styrkort"))
        .args([
            "inspect",
            f.path("out/t/as_of=2025-01-01").to_str().unwrap(),
            "--unit",
            "A",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes when piped:\n{text}"
    );
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .collect();
    // Board A's subtree only, the latest year: not met first, worst gap first.
    assert!(
        lines
            .iter()
            .all(|l| l.contains("(A)") || l.contains("(A1)") || l.contains("(A2)")),
        "{text}"
    );
    assert!(
        lines[0].starts_with("| not_met") && lines[0].contains("pct") && lines[0].contains("(A2)"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("| not_met")
            && lines[1].contains("trend")
            && lines[1].contains("(A1)"),
        "{text}"
    );
    assert!(!text.contains("no_target"));
}

#[test]
fn an_annual_and_a_monthly_target_judge_their_own_grain() {
    // 30 hours a month in A1, 20 in March: the annual floor of 300 judges the year (340 → met),
    // the monthly floor of 25 judges the months (March 20 → not met).
    let mut hr = String::from("month,unit,person,gender,hours,sick\n");
    for m in 1..=12 {
        let hours = if m == 3 { 20 } else { 30 };
        hr.push_str(&format!("2024-{m:02}-01,A1,p1,K,{hours},0\n"));
    }
    let f = Fixture::new();
    f.file("hr.csv", &hr);
    f.file(
        "targets.csv",
        "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note,grain\n\
         hours,,,floor,300,,,,per år,year\n\
         hours,,,floor,25,,,,per månad,month\n",
    );
    f.pipeline_full(
        "targets = \"targets.csv\"",
        "2024-01",
        &(HR_SOURCE.to_string()
            + &indicator(
                "hours",
                "numerator = \"sum(hours)\"\ngrains = [\"month\", \"year\"]",
            )),
    );
    let s = f.run("2025-01-01").unwrap_or_else(|e| panic!("{e}"));
    let dev = read_parquet(&s.run_dir.join("deviations.parquet"));
    let cell = |grain: &str, period: &str| {
        row(
            &dev,
            col("org_unit_id")
                .eq(lit("A1"))
                .and(col("grain").eq(lit(grain)))
                .and(col("period").eq(lit(period)))
                .and(col("segment").eq(lit("total"))),
        )
    };
    let year = cell("year", "2024");
    assert_eq!(
        year.column("target_value").unwrap().f64().unwrap().get(0),
        Some(300.0)
    );
    assert_eq!(strings(&year, "status"), ["met"]);
    let march = cell("month", "2024-03");
    assert_eq!(
        march.column("target_value").unwrap().f64().unwrap().get(0),
        Some(25.0)
    );
    assert_eq!(strings(&march, "status"), ["not_met"]);
    let april = cell("month", "2024-04");
    assert_eq!(strings(&april, "status"), ["met"]);
    // An unknown grain is a definition error with its line.
    f.file(
        "targets.csv",
        "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note,grain\n\
         hours,,,floor,300,,,,,week\n",
    );
    let err = f.run("2025-01-01").err().expect("must fail").to_string();
    assert!(
        err.contains("targets.csv:2:") && err.contains("column 'grain'"),
        "{err}"
    );
}

#[test]
fn targets_saved_by_swedish_excel_read_with_decimal_commas_and_their_encoding() {
    // Excel on a Swedish Windows, "CSV (semikolonavgränsad)": `;` between fields, decimal
    // commas, Windows-1252 bytes ("månad").
    let mut hr = String::from("month,unit,person,gender,hours,sick\n");
    for m in 1..=6 {
        let hours = match m {
            3 => 20,
            5 => 25,
            _ => 30,
        };
        hr.push_str(&format!("2024-{m:02}-01,A1,p1,K,{hours},0\n"));
    }
    let targets = "indicator_id;org_unit_id;period;kind;value;value_high;tolerance;compare_to;note;grain\r\n\
                   hours;;;floor;25,5;;0,5;;per månad;month\r\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(targets);
    let f = Fixture::new();
    f.file("hr.csv", &hr);
    std::fs::write(f.path("targets.csv"), &bytes).unwrap();
    let body = HR_SOURCE.to_string()
        + &indicator("hours", "numerator = \"sum(hours)\"\ngrains = [\"month\"]");
    f.pipeline_full(
        "targets = \"targets.csv\"\n[tables]\nencoding = \"windows-1252\"",
        "2024-01",
        &body,
    );
    let s = f.run("2024-07-01").unwrap_or_else(|e| panic!("{e}"));
    let dev = read_parquet(&s.run_dir.join("deviations.parquet"));
    let month = |period: &str| {
        row(
            &dev,
            col("org_unit_id")
                .eq(lit("A1"))
                .and(col("period").eq(lit(period)))
                .and(col("segment").eq(lit("total"))),
        )
    };
    // Floor 25.5 with an absolute tolerance of 0.5: 30 met, 25 partly met, 20 not met.
    assert_eq!(f64_at(&month("2024-03"), "target_value"), Some(25.5));
    assert_eq!(strings(&month("2024-01"), "status"), ["met"]);
    assert_eq!(strings(&month("2024-05"), "status"), ["partly_met"]);
    assert_eq!(strings(&month("2024-03"), "status"), ["not_met"]);

    // Without the encoding: the line and what to do.
    f.pipeline_full("targets = \"targets.csv\"", "2024-01", &body);
    let err = f.run("2024-07-01").err().expect("must fail").to_string();
    assert!(
        err.contains("targets.csv:2:")
            && err.contains("not valid UTF-8")
            && err.contains("[tables] encoding = \"windows-1252\""),
        "{err}"
    );
}
