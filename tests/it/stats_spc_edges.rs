//! The SPC edges of `shared/conformance/spc/RULES.md` §7 that the peer cases do not cover, each
//! worked out by hand, and the `styrkort spc` command.

use styrkort::assess::stats::{
    Assurance, Direction, PointType, SpcOptions, SpecialCause, VariationIcon, xmr,
};

fn opts(direction: Direction) -> SpcOptions {
    SpcOptions {
        direction,
        ..SpcOptions::default()
    }
}

fn some(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().copied().map(Some).collect()
}

#[test]
fn a_constant_series_has_no_limits_when_screened_and_the_mean_when_not() {
    let ys = some(&[5.0; 15]);
    let r = xmr(
        &ys,
        &SpcOptions {
            target: Some(4.0),
            ..opts(Direction::Increase)
        },
    );
    // Every moving range is 0, and 0 < 3.267 × 0 is false: all are screened out.
    assert!(r.segments[0].lpl.is_nan() && r.segments[0].upl.is_nan());
    assert!(
        r.points
            .iter()
            .all(|p| p.special_cause == SpecialCause::CommonCause)
    );
    // NaN limits fall through to hit and miss.
    assert_eq!(r.assurance, Some(Assurance::Inconsistent));
    let r = xmr(
        &ys,
        &SpcOptions {
            screen_outliers: false,
            ..opts(Direction::Increase)
        },
    );
    assert_eq!((r.segments[0].lpl, r.segments[0].upl), (5.0, 5.0));
}

#[test]
fn a_single_point_and_an_empty_series() {
    let r = xmr(&some(&[3.0]), &opts(Direction::Decrease));
    assert!(r.segments[0].upl.is_nan());
    assert_eq!(r.variation_icon, Some(VariationIcon::CommonCause));
    let r = xmr(&[], &opts(Direction::Decrease));
    assert!(r.points.is_empty());
    assert_eq!(r.variation_icon, None);
}

/// 12 of the first 13 points above the mean, with the 7th exactly on it, then 12 below.
fn on_mean_series(middle: f64) -> Vec<Option<f64>> {
    let mut v = vec![10.5; 6];
    v.push(middle);
    v.extend([10.5; 6]);
    for i in 0..12 {
        v.push(if i % 2 == 0 { 9.9 } else { 9.1 });
    }
    some(&v)
}

#[test]
fn a_point_on_the_mean_breaks_a_shift() {
    // Mean: (12 × 10.5 + 10 + 6 × 19) / 25 = 250 / 25 = 10 exactly.
    let r = xmr(&on_mean_series(10.0), &opts(Direction::Increase));
    assert_eq!(r.segments[0].mean, 10.0);
    assert_eq!(r.points[6].relative_to_mean, Some(0));
    assert!(
        r.points[..13]
            .iter()
            .all(|p| p.special_cause == SpecialCause::CommonCause),
        "{:?}",
        r.points[..13]
            .iter()
            .map(|p| p.special_cause)
            .collect::<Vec<_>>()
    );
    // With the 7th point above the mean too, the first 13 points are one shift.
    let r = xmr(&on_mean_series(10.5), &opts(Direction::Increase));
    assert!(
        r.points[..13]
            .iter()
            .all(|p| p.special_cause == SpecialCause::ShiftAbove)
    );
    assert!(
        r.points[..13]
            .iter()
            .all(|p| p.point_type == PointType::Improvement)
    );
}

#[test]
fn a_tie_or_a_missing_value_breaks_a_trend() {
    // 1..7 rising: mean 4, every moving range 1, limits 4 ± 2.66; 1 and 7 are outside, which
    // takes precedence; the five points between are the trend.
    let r = xmr(
        &some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        &opts(Direction::Decrease),
    );
    assert_eq!(r.points[0].special_cause, SpecialCause::BelowLcl);
    assert!(
        r.points[1..6]
            .iter()
            .all(|p| p.special_cause == SpecialCause::TrendIncreasing)
    );
    assert!(
        r.points[1..6]
            .iter()
            .all(|p| p.point_type == PointType::Concern)
    );
    // A tie: six steps of which one is flat — no trend anywhere.
    let r = xmr(
        &some(&[1.0, 2.0, 3.0, 3.0, 5.0, 6.0, 7.0]),
        &opts(Direction::Decrease),
    );
    assert!(r.points.iter().all(|p| !matches!(
        p.special_cause,
        SpecialCause::TrendIncreasing | SpecialCause::TrendDecreasing
    )));
    // A missing value where the peer errors: no trend, and a warning.
    let r = xmr(
        &[
            Some(1.0),
            Some(2.0),
            Some(3.0),
            None,
            Some(5.0),
            Some(6.0),
            Some(7.0),
            Some(8.0),
        ],
        &opts(Direction::Increase),
    );
    assert!(r.points.iter().all(|p| !matches!(
        p.special_cause,
        SpecialCause::TrendIncreasing | SpecialCause::TrendDecreasing
    )));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("interrupts a possible 7-point trend")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.points[3].relative_to_mean, None);
    assert_eq!(r.points[3].special_cause, SpecialCause::CommonCause);
}

#[test]
fn the_icon_comes_from_the_last_point_only() {
    // An early astronomical point, then stable: the icon is common cause.
    let mut v = vec![50.0];
    // Then 10 and 16 alternating: the mean (232 / 15) lies between them, so no shift.
    v.extend((0..14).map(|i| if i % 2 == 0 { 10.0 } else { 16.0 }));
    let r = xmr(&some(&v), &opts(Direction::Increase));
    assert_eq!(r.points[0].special_cause, SpecialCause::AboveUcl);
    assert_eq!(r.segments[0].n_improvement, 1);
    assert_eq!(r.variation_icon, Some(VariationIcon::CommonCause));
}

#[test]
fn a_target_exactly_on_a_limit_is_hit_and_miss() {
    let v = some(&[
        10.0, 11.0, 10.0, 12.0, 10.0, 11.0, 10.0, 11.0, 10.0, 12.0, 11.0, 10.0, 11.0,
    ]);
    let base = xmr(&v, &opts(Direction::Increase));
    let (lpl, upl) = (base.segments[0].lpl, base.segments[0].upl);
    for (target, expected) in [
        (upl, Assurance::Inconsistent),
        (lpl, Assurance::Inconsistent),
        (upl + 1e-9, Assurance::ConsistentFail),
        (lpl - 1e-9, Assurance::ConsistentPass),
    ] {
        let r = xmr(
            &v,
            &SpcOptions {
                target: Some(target),
                ..opts(Direction::Increase)
            },
        );
        assert_eq!(r.assurance, Some(expected), "target {target}");
    }
    // Decrease reads the other way round; neutral has no assurance.
    let r = xmr(
        &v,
        &SpcOptions {
            target: Some(upl + 1.0),
            ..opts(Direction::Decrease)
        },
    );
    assert_eq!(r.assurance, Some(Assurance::ConsistentPass));
    let r = xmr(
        &v,
        &SpcOptions {
            target: Some(upl + 1.0),
            ..opts(Direction::Neutral)
        },
    );
    assert_eq!(r.assurance, None);
}

#[test]
fn fix_after_below_12_gives_a_result_and_a_warning() {
    let v = some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let r = xmr(
        &v,
        &SpcOptions {
            fix_after: Some(3),
            ..opts(Direction::Increase)
        },
    );
    // Baseline 1, 2, 3: mean 2, moving ranges 1 and 1.
    assert_eq!(r.segments[0].mean, 2.0);
    assert_eq!(r.segments[0].upl, 2.0 + 2.66);
    assert!(r.warnings.iter().any(|w| w.contains("fix_after = 3")));
}

#[test]
fn the_spc_command_reads_a_csv_and_prints_points_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.csv");
    // Waiting days falling steadily from 60 to 41, monthly from January 2023.
    let mut text = String::from("series,date,value,target\n");
    for i in 0..20 {
        text += &format!(
            "waits,{}-{:02}-01,{},45\n",
            2023 + i / 12,
            i % 12 + 1,
            60 - i
        );
    }
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_styrkort"))
        .args([
            "spc",
            file.to_str().unwrap(),
            "--direction",
            "decrease",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &json["series"][0];
    assert_eq!(s["summary"]["series"], "waits");
    assert_eq!(s["points"].as_array().unwrap().len(), 20);
    // 60, 59, …, 41: mean 50.5, every moving range 1 → limits 50.5 ± 2.66.
    assert_eq!(s["points"][0]["mean"], 50.5);
    assert!((s["points"][0]["upl"].as_f64().unwrap() - 53.16).abs() < 1e-12);
    assert_eq!(s["points"][0]["special_cause"], "Above UCL");
    assert_eq!(s["points"][0]["point_type"], "special_cause_concern");
    assert_eq!(s["points"][19]["point_type"], "special_cause_improvement");
    assert_eq!(s["summary"]["variation_icon"], "improvement_low");
    assert_eq!(s["summary"]["trend"], "decreasing");
    // Target 45 is below the lower limit 47.84: a falling process cannot reliably reach it.
    assert_eq!(s["summary"]["assurance"], "consistent_fail");

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "series,date,value\nx,2024-01-01,abc\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_styrkort"))
        .args(["spc", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bad.csv: line 2: column 'value': expected a number, found 'abc'")
    );

    // A header and no rows is not "no signals": it is an error.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "series,date,value\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_styrkort"))
        .args(["spc", empty.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("empty.csv: no rows after the header"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_point_beyond_the_limits_does_not_count_towards_two_in_three() {
    // 30 points alternating 10, 11, then 13.5, 30, 10. Mean 368.5 / 33 = 11.1667. Moving ranges:
    // 29 of 1, then 2.5, 16.5, 20 (mean 2.125); screening drops 16.5 and 20, leaving 31.5 / 30 =
    // 1.05. Limits 11.1667 ± 2.793; near-limit band ± 1.862. So 13.5 is close to the upper
    // limit, 30 is beyond it — and beyond-limit points do not count as close.
    let mut v: Vec<f64> = (0..30)
        .map(|i| if i % 2 == 0 { 10.0 } else { 11.0 })
        .collect();
    v.extend([13.5, 30.0, 10.0]);
    let r = xmr(&some(&v), &opts(Direction::Increase));
    let p = &r.points;
    assert!((r.segments[0].upl - (368.5 / 33.0 + 2.66 * 1.05)).abs() < 1e-9);
    assert!(p[30].close_to_limits, "{:?}", p[30]);
    assert!(p[31].outside_limits && !p[31].close_to_limits);
    // Only one close point in every window around 30: no 2-in-3.
    assert_eq!(p[30].special_cause, SpecialCause::CommonCause);
    assert_eq!(p[31].special_cause, SpecialCause::AboveUcl);
}

#[test]
fn moving_ranges_are_not_bridged_across_a_missing_value() {
    // 0, 10, gap, 10, 20: the ranges are |10 − 0| = 10 and |20 − 10| = 10; 10 → 10 across the
    // gap is not a range. Unscreened: mean 10, amr 10, limits 10 ± 26.6.
    let r = xmr(
        &[Some(0.0), Some(10.0), None, Some(10.0), Some(20.0)],
        &SpcOptions {
            screen_outliers: false,
            ..opts(Direction::Neutral)
        },
    );
    assert_eq!(r.segments[0].mean, 10.0);
    assert!((r.segments[0].upl - (10.0 + 26.6)).abs() < 1e-12);
}

#[test]
fn runs_continue_across_missing_values_and_points_on_the_centre_line() {
    use styrkort::assess::stats::{Centre, anhoej};
    // Median 5; the 5s and the gap are dropped, so the sides are + + + − − −: one crossing,
    // longest run 3, 6 useful points.
    let v = [
        Some(6.0),
        Some(7.0),
        Some(5.0),
        None,
        Some(8.0),
        Some(4.0),
        Some(5.0),
        Some(3.0),
        Some(2.0),
    ];
    let r = &anhoej(&v, Centre::Median, &[], None, true)[0];
    assert_eq!(r.cl, Some(5.0));
    assert_eq!(
        (r.n_useful, r.longest_run, r.n_crossings),
        (6, Some(3), Some(1))
    );
    // Limits for 6 useful points: longest run 6 (round(log2 6) + 3), crossings at least 1.
    assert_eq!((r.longest_run_max, r.n_crossings_min), (Some(6), Some(1)));
    assert!(!r.runs_signal);
}
