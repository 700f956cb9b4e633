//! Conformance of the trend tests with the peers' answers in `shared/conformance/stats/cases.json`,
//! groups (e) Mann-Kendall / Sen / Kendall and (f) OLS. Tolerances are the peers' own.

use std::path::PathBuf;

use serde_json::Value;
use styrkort::assess::stats::{kendall_tau_exact, mann_kendall, ols, theil_sen};

fn cases(group: &str) -> Vec<Value> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/stats/cases.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter().filter(|c| c["group"] == group).collect()
}

/// A JSON number, or the strings "NaN" / "Inf" / "-Inf".
fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Inf" => f64::INFINITY,
        Value::String(s) if s == "-Inf" => f64::NEG_INFINITY,
        other => other.as_f64().unwrap_or(f64::NAN),
    }
}

fn opt_vec(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(Value::as_f64).collect()
}

/// `ours` matches `expected` within the case's tolerance.
fn within(ours: f64, expected: f64, tol: &Value, key: &str) -> bool {
    if expected.is_nan() {
        return ours.is_nan();
    }
    if expected.is_infinite() || tol["exact"] == true {
        return ours == expected;
    }
    let diff = (ours - expected).abs();
    if let Some(rel) = tol["rel"].as_f64().or(tol["suggested_rel"].as_f64()) {
        return diff <= rel * expected.abs().max(f64::MIN_POSITIVE) || diff <= 1e-300;
    }
    if let Some(sig) = tol["significant"].as_f64() {
        return diff <= 0.5 * 10f64.powf(-sig + 1.0) * expected.abs();
    }
    let decimal = if key == "upper" || key == "lower" {
        tol["ci_decimal"].as_f64()
    } else {
        tol["slope_intercept_decimal"].as_f64()
    }
    .or(tol["decimal"].as_f64())
    .unwrap_or(7.0);
    diff < 1.5 * 10f64.powf(-decimal)
}

fn check(case: &Value, got: &[(&str, f64)], failures: &mut Vec<String>) {
    let expected = &case["expected"];
    let tol = &case["tolerance"];
    for (key, ours) in got {
        let Some(e) = expected.get(*key) else {
            continue;
        };
        // pymannkendall's 1 − Φ(|z|) underflows to 0 for |z| > 8.3; styrkort computes the tail
        // directly (METHODS.md: "compute p from the upper tail") and reports the tiny number.
        if case["method"] == "mann_kendall" && *key == "p" && num(e) == 0.0 && *ours < 1e-15 {
            continue;
        }
        if !within(*ours, num(e), tol, key) {
            failures.push(format!(
                "{}: {key}: ours {ours}, peer {e}",
                case["id"].as_str().unwrap()
            ));
        }
    }
}

#[test]
fn mann_kendall_sen_and_kendall_conform() {
    let mut failures = Vec::new();
    let group = cases("e");
    assert_eq!(group.len(), 11);
    for case in &group {
        let input = &case["input"];
        match case["method"].as_str().unwrap() {
            "mann_kendall" => {
                let r = mann_kendall(&opt_vec(&input["x"]), 0.05).expect("enough values");
                check(
                    case,
                    &[
                        ("p", r.p),
                        ("z", r.z),
                        ("Tau", r.tau_a),
                        ("s", r.s),
                        ("var_s", r.var_s),
                        ("sens_slope", r.sens_slope),
                        ("sens_intercept", r.sens_intercept),
                    ],
                    &mut failures,
                );
                if case["expected"]["trend"] != r.trend {
                    failures.push(format!("{}: trend {}", case["id"], r.trend));
                }
                if case["expected"]["h"] != r.significant {
                    failures.push(format!("{}: h {}", case["id"], r.significant));
                }
                if case["expected"].get("sens_intercept_rounded").is_some()
                    && r.sens_intercept.round() != 0.0
                {
                    failures.push(format!(
                        "{}: sens_intercept {}",
                        case["id"], r.sens_intercept
                    ));
                }
            }
            "sens_slope" => {
                let y: Vec<f64> = input["y"].as_array().unwrap().iter().map(num).collect();
                let x: Vec<f64> = match input.get("x") {
                    Some(x) => x.as_array().unwrap().iter().map(num).collect(),
                    None => (0..y.len()).map(|i| i as f64).collect(),
                };
                let r = theil_sen(&x, &y, input["alpha"].as_f64().unwrap_or(0.95));
                check(
                    case,
                    &[
                        ("slope", r.slope),
                        ("intercept_separate", r.intercept_separate),
                        ("intercept_joint", r.intercept_joint),
                        ("lower", r.lower),
                        ("upper", r.upper),
                    ],
                    &mut failures,
                );
            }
            "kendall_tau_exact_p" => {
                let x: Vec<f64> = input["x"].as_array().unwrap().iter().map(num).collect();
                let t: Vec<f64> = input["time_index"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(num)
                    .collect();
                let (tau, p) = kendall_tau_exact(&t, &x);
                check(
                    case,
                    &[("tau", tau), ("pvalue_exact", p.unwrap_or(f64::NAN))],
                    &mut failures,
                );
            }
            other => failures.push(format!("unknown method {other}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ols_conforms() {
    let mut failures = Vec::new();
    let group = cases("f");
    assert_eq!(group.len(), 12);
    for case in &group {
        let (x, y) = (opt_vec(&case["input"]["x"]), opt_vec(&case["input"]["y"]));
        let expected = &case["expected"];
        match ols(&x, &y) {
            Err(e) => {
                if expected.get("error").is_none() {
                    failures.push(format!("{}: unexpected error {e}", case["id"]));
                }
            }
            Ok(r) => {
                if expected.get("error").is_some() {
                    failures.push(format!(
                        "{}: the peer errors, styrkort returned {r:?}",
                        case["id"]
                    ));
                }
                if expected["all_nan"] == true {
                    if ![r.slope, r.intercept, r.rvalue, r.pvalue, r.stderr]
                        .iter()
                        .all(|v| v.is_nan())
                    {
                        failures.push(format!("{}: expected all NaN, got {r:?}", case["id"]));
                    }
                    continue;
                }
                check(
                    case,
                    &[
                        ("slope", r.slope),
                        ("intercept", r.intercept),
                        ("rvalue", r.rvalue),
                        ("rvalue_squared", r.rvalue * r.rvalue),
                        ("pvalue", r.pvalue),
                        ("stderr", r.stderr),
                        ("intercept_stderr", r.intercept_stderr),
                    ],
                    &mut failures,
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
