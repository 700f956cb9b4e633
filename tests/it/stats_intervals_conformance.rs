//! Conformance of the confidence intervals with the peers' answers in
//! `shared/conformance/stats/cases.json`, groups (a) proportions and (b) counts and rates.

use std::path::PathBuf;

use serde_json::Value;
use styrkort::assess::stats::intervals::{
    byar_half, byar_lower, byar_upper, exact_poisson, rate_interval, wilson,
};

fn cases(group: &str) -> Vec<Value> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/stats/cases.json");
    let all: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    all.into_iter().filter(|c| c["group"] == group).collect()
}

fn within(ours: Option<f64>, expected: &Value, tol: &Value) -> bool {
    match (ours, expected.as_f64()) {
        (None, None) => expected.is_null(),
        (Some(o), Some(e)) => {
            let diff = (o - e).abs();
            if e == 0.0 || e == 1.0 {
                // "bounds of exactly 0 or 1 must be exact" (and PHE's own zero lower limit)
                return diff == 0.0
                    || tol["decimal"]
                        .as_f64()
                        .is_some_and(|d| diff < 1.5 * 10f64.powf(-d));
            }
            if let Some(rel) = tol["rel"].as_f64() {
                diff <= rel * e.abs()
            } else if let Some(d) = tol["decimal"].as_f64() {
                diff < 1.5 * 10f64.powf(-d)
            } else {
                tol["abs"].as_f64().is_some_and(|a| diff <= a)
            }
        }
        _ => false,
    }
}

fn check(case: &Value, key: &str, ours: Option<f64>, expected: &Value, failures: &mut Vec<String>) {
    if !within(ours, expected, &case["tolerance"]) {
        failures.push(format!(
            "{}: {key}: ours {ours:?}, peer {expected}",
            case["id"].as_str().unwrap()
        ));
    }
}

fn confidences(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_f64).collect(),
        other => other.as_f64().into_iter().collect(),
    }
}

#[test]
fn wilson_intervals_for_proportions_conform() {
    let mut failures = Vec::new();
    let group = cases("a");
    assert_eq!(group.len(), 49);
    for case in &group {
        let input = &case["input"];
        let e = &case["expected"];
        match case["method"].as_str().unwrap() {
            "proportion_ci_wilson" if input.get("pairs").is_some() => {
                for pair in input["pairs"].as_array().unwrap() {
                    let (x, n) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
                    let (l, u) = wilson(x, n, input["confidence"].as_f64().unwrap()).unwrap();
                    if !(0.0 <= l && l <= u && u <= 1.0) {
                        failures.push(format!("{}: {x}/{n} gives [{l}, {u}]", case["id"]));
                    }
                }
            }
            "proportion_ci_wilson" => {
                let xs = confidences(&input["x"]);
                let ns = confidences(&input["n"]);
                for (x, n) in xs.iter().zip(&ns) {
                    let r = wilson(*x, *n, input["confidence"].as_f64().unwrap());
                    check(case, "lower", r.map(|r| r.0), &e["lower"], &mut failures);
                    check(case, "upper", r.map(|r| r.1), &e["upper"], &mut failures);
                }
            }
            "phe_proportion" => {
                let (x, n, m) = (
                    input["x"].as_f64(),
                    input["n"].as_f64(),
                    input["multiplier"].as_f64().unwrap(),
                );
                let value = x.zip(n).map(|(x, n)| x / n * m);
                check(case, "value", value, &e["value"], &mut failures);
                for c in confidences(&input["confidence"]) {
                    let key = if c == 0.95 { "0.95" } else { "0.998" };
                    let r = x.zip(n).and_then(|(x, n)| wilson(x, n, c));
                    check(
                        case,
                        &format!("{key} lower"),
                        r.map(|r| r.0 * m),
                        &e["ci"][key]["lower"],
                        &mut failures,
                    );
                    check(
                        case,
                        &format!("{key} upper"),
                        r.map(|r| r.1 * m),
                        &e["ci"][key]["upper"],
                        &mut failures,
                    );
                }
            }
            other => failures.push(format!("{}: unknown method {other}", case["id"])),
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
fn count_and_rate_intervals_conform() {
    let mut failures = Vec::new();
    let group = cases("b");
    assert_eq!(group.len(), 38);
    for case in &group {
        let input = &case["input"];
        let e = &case["expected"];
        match case["method"].as_str().unwrap() {
            "count_ci_byar" => {
                let (x, c) = (
                    input["x"].as_f64().unwrap(),
                    input["confidence"].as_f64().unwrap(),
                );
                check(case, "lower", byar_lower(x, c), &e["lower"], &mut failures);
                check(
                    case,
                    "upper",
                    Some(byar_upper(x, c)),
                    &e["upper"],
                    &mut failures,
                );
            }
            "rate_ci_exact_poisson" => {
                let (x, t, c) = (
                    input["x"].as_f64().unwrap(),
                    input["exposure"].as_f64().unwrap(),
                    input["confidence"].as_f64().unwrap(),
                );
                let (l, u) = exact_poisson(x, c);
                check(case, "lower", Some(l / t), &e["lower"], &mut failures);
                check(case, "upper", Some(u / t), &e["upper"], &mut failures);
            }
            "rate_ci_byar" => {
                let (x, t, c) = (
                    input["x"].as_f64().unwrap(),
                    input["exposure"].as_f64().unwrap(),
                    input["confidence"].as_f64().unwrap(),
                );
                let (l, u) = byar_half(x, t, c);
                check(case, "lower", Some(l), &e["lower"], &mut failures);
                check(case, "upper", Some(u), &e["upper"], &mut failures);
            }
            "phe_rate" => {
                let (x, n, m) = (
                    input["x"].as_f64(),
                    input["n"].as_f64(),
                    input["multiplier"].as_f64().unwrap(),
                );
                let value = x.zip(n).map(|(x, n)| x / n * m);
                check(case, "value", value, &e["value"], &mut failures);
                for c in confidences(&input["confidence"]) {
                    let key = if c == 0.95 { "0.95" } else { "0.998" };
                    let r = x.zip(n).and_then(|(x, n)| rate_interval(x, n, m, c));
                    check(
                        case,
                        &format!("{key} lower"),
                        r.and_then(|r| r.1),
                        &e["ci"][key]["lower"],
                        &mut failures,
                    );
                    check(
                        case,
                        &format!("{key} upper"),
                        r.map(|r| r.2),
                        &e["ci"][key]["upper"],
                        &mut failures,
                    );
                    if let (Some(r), Some(method)) = (r, e["method"].as_str())
                        && r.3.label() != method
                    {
                        failures.push(format!(
                            "{}: method {} vs {method}",
                            case["id"],
                            r.3.label()
                        ));
                    }
                }
            }
            other => failures.push(format!("{}: unknown method {other}", case["id"])),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

#[test]
fn significance_against_a_benchmark_conforms() {
    use styrkort::assess::stats::intervals::{
        proportion_significance, rate_significance, ratio_significance,
    };
    let mut failures = Vec::new();
    let group = cases("c");
    assert_eq!(group.len(), 10);
    for case in &group {
        let i = &case["input"];
        let labels: Vec<&str> = match case["method"].as_str().unwrap() {
            "funnel_significance_proportion" => {
                proportion_significance(&floats(&i["numerator"]), &floats(&i["denominator"]))
            }
            "funnel_significance_ratio" => {
                ratio_significance(&floats(&i["obs"]), &floats(&i["expected"]))
            }
            "funnel_significance_rate" => rate_significance(
                &floats(&i["count"]),
                &floats(&i["rate"]),
                &floats(&i["denominator"]),
                i["rate_type"] == "dsr",
                i["multiplier"].as_f64().unwrap(),
            ),
            other => panic!("unknown method {other}"),
        };
        let expected: Vec<&str> = case["expected"]["significance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(labels.len(), expected.len());
        for (k, (ours, peer)) in labels.iter().zip(&expected).enumerate() {
            if ours != peer {
                failures.push(format!("{} row {k}: ours {ours}, peer {peer}", case["id"]));
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

fn column<'a>(table: &'a [(String, Vec<f64>)], name: &str) -> &'a [f64] {
    &table
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .1
}

#[test]
fn funnel_limits_conform() {
    use std::collections::BTreeMap;
    use styrkort::assess::stats::funnel::{
        is_outlier, phi_shmi, proportion_funnel, rate_funnel, ratio_funnel, sr_poisson_limits,
    };
    let mut failures = Vec::new();
    let group = cases("d");
    assert_eq!(group.len(), 11);
    for case in &group {
        let i = &case["input"];
        let e = &case["expected"];
        let id = case["id"].as_str().unwrap();
        let rel = case["tolerance"]["rel"].as_f64();
        let compare_table = |table: &[(String, Vec<f64>)], failures: &mut Vec<String>| {
            for (name, values) in e.as_object().unwrap() {
                let ours = column(table, name);
                for (k, (o, p)) in ours.iter().zip(floats(values)).enumerate() {
                    let ok = if p == 0.0 {
                        *o == 0.0
                    } else {
                        (o - p).abs() <= rel.unwrap() * p.abs()
                    };
                    if !ok {
                        failures.push(format!("{id}: {name}[{k}]: ours {o}, peer {p}"));
                    }
                }
            }
        };
        match case["method"].as_str().unwrap() {
            "funnel_limits_proportion_phe" => {
                let t = proportion_funnel(
                    &floats(&i["numerator"]),
                    &floats(&i["denominator"]),
                    i["multiplier"].as_f64().unwrap(),
                );
                compare_table(&t, &mut failures);
            }
            "funnel_limits_ratio_phe" => {
                let t = ratio_funnel(&floats(&i["expected"]), i["ratio_type"] == "isr");
                compare_table(&t, &mut failures);
            }
            "funnel_limits_rate_phe" => {
                let den = i.get("denominator").map(floats);
                let t = rate_funnel(
                    &floats(&i["count"]),
                    &floats(&i["rate"]),
                    den.as_deref(),
                    i["rate_type"] == "dsr",
                    i["multiplier"].as_f64().unwrap(),
                    i["years_of_data"].as_f64().unwrap(),
                );
                compare_table(&t, &mut failures);
            }
            "funnel_limits_fpr" => {
                let digits = &case["tolerance"]["round_digits"];
                let target = i["target"].as_f64().unwrap();
                for (k, n) in floats(&i["number_seq"]).into_iter().enumerate() {
                    let (l95, u95) = sr_poisson_limits(n, target, 0.05);
                    let (l998, u998) = sr_poisson_limits(n, target, 0.002);
                    for (name, ours) in [
                        ("ll95", l95),
                        ("ul95", u95),
                        ("ll998", l998),
                        ("ul998", u998),
                    ] {
                        let d = digits[name].as_i64().unwrap() as i32;
                        let rounded = (ours * 10f64.powi(d)).round() / 10f64.powi(d);
                        let peer = e[name][k].as_f64().unwrap();
                        if (rounded - peer).abs() > 1e-12 {
                            failures
                                .push(format!("{id}: {name}[{k}]: ours {rounded}, peer {peer}"));
                        }
                    }
                }
            }
            "funnel_overdispersion_fpr" => {
                let phi = phi_shmi(
                    &floats(&i["numerator"]),
                    &floats(&i["denominator"]),
                    i["trim_by"].as_f64().unwrap(),
                );
                if ((phi * 1e6).round() / 1e6 - e["phi"].as_f64().unwrap()).abs() > 1e-12 {
                    failures.push(format!("{id}: phi {phi}"));
                }
            }
            "funnel_aggregate_fpr" => {
                let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
                let groups = i["group"].as_array().unwrap();
                for ((g, n), d) in groups
                    .iter()
                    .zip(floats(&i["numerator"]))
                    .zip(floats(&i["denominator"]))
                {
                    let s = sums.entry(g.as_str().unwrap().to_string()).or_default();
                    s.0 += n;
                    s.1 += d;
                }
                for ((_, (n, d)), peer) in sums.iter().zip(floats(&e["rr"])) {
                    if ((n / d * 1e6).round() / 1e6 - peer).abs() > 1e-12 {
                        failures.push(format!("{id}: rr {}", n / d));
                    }
                }
            }
            "funnel_outlier_rule_fpr" => {
                let rr = floats(&i["rr"]);
                let lim = |k: &str| i[k].as_f64().unwrap();
                for (name, lo, hi, m) in [
                    ("limit95_unadjusted", "LCL95", "UCL95", 1.0),
                    ("limit95_adjusted", "OD95LCL", "OD95UCL", 1.0),
                    ("limit99_unadjusted", "LCL99", "UCL99", 1.0),
                    ("limit99_adjusted", "OD99LCL", "OD99UCL", 1.0),
                    ("limit95_unadjusted_multiplier100", "LCL95", "UCL95", 100.0),
                ] {
                    let ours: Vec<f64> = rr
                        .iter()
                        .map(|&r| f64::from(u8::from(is_outlier(r, m, lim(lo), lim(hi)))))
                        .collect();
                    if ours != floats(&e[name]) {
                        failures.push(format!("{id}: {name}: ours {ours:?}"));
                    }
                }
            }
            other => failures.push(format!("{id}: unknown method {other}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
