//! Conformance with the peers' SPC answers in `shared/conformance/spc/cases.json`:
//! NHSRplotthedots (Making Data Count) for XmR charts, qicharts2 for the Anhøj runs analysis.
//! Every case is checked; the test lists every mismatch with its case and field.

use std::path::PathBuf;

use serde_json::Value;
use styrkort::assess::stats::{
    Centre, Direction, SpcOptions, anhoej, crossings_min, longest_run_max, xmr,
};

fn shared(path: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/spc")
        .join(path);
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (shared/ must sit beside the repo)", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// Relative comparison at 1e-9; null in the peer's output stands for NaN/NA.
fn close(ours: f64, expected: &Value) -> bool {
    match expected.as_f64() {
        None => ours.is_nan(),
        Some(e) => {
            if ours.is_nan() {
                return false;
            }
            (ours - e).abs() <= 1e-9 * ours.abs().max(e.abs()).max(f64::MIN_POSITIVE)
        }
    }
}

fn close_opt(ours: Option<f64>, expected: &Value) -> bool {
    close(ours.unwrap_or(f64::NAN), expected)
}

struct Check<'a> {
    case: &'a str,
    failures: Vec<String>,
}

impl Check<'_> {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, ours: T, expected: T) {
        if ours != expected {
            self.failures.push(format!(
                "{}: {what}: ours {ours:?}, peer {expected:?}",
                self.case
            ));
        }
    }
    fn float(&mut self, what: &str, ours: f64, expected: &Value) {
        if !close(ours, expected) {
            self.failures.push(format!(
                "{}: {what}: ours {ours}, peer {expected}",
                self.case
            ));
        }
    }
    fn float_opt(&mut self, what: &str, ours: Option<f64>, expected: &Value) {
        if !close_opt(ours, expected) {
            self.failures.push(format!(
                "{}: {what}: ours {ours:?}, peer {expected}",
                self.case
            ));
        }
    }
}

fn values(input: &Value) -> Vec<Option<f64>> {
    input["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as usize)
                .collect()
        })
        .unwrap_or_default()
}

fn options(input: &Value) -> SpcOptions {
    SpcOptions {
        direction: Direction::parse(input["improvement_direction"].as_str().unwrap_or("neutral"))
            .unwrap(),
        target: input["target"].as_f64(),
        rebase_at: indices(&input["rebase_at_index"]),
        fix_after: input["fix_after_n_points"].as_u64().map(|n| n as usize),
        screen_outliers: input["screen_outliers"].as_bool().unwrap_or(true),
    }
}

fn check_nhs(c: &mut Check, input: &Value, expected: &Value) {
    let ys = values(input);
    let opts = options(input);
    let r = xmr(&ys, &opts);
    if expected.get("error").is_some() {
        // The peer refuses this input; styrkort answers with a defined result and a warning.
        if r.warnings.is_empty() {
            c.failures.push(format!(
                "{}: the peer errors ({}), styrkort gave no warning",
                c.case, expected["error"]
            ));
        }
        c.eq("points", r.points.len(), ys.len());
        return;
    }
    let segs = expected["segments"].as_array().unwrap();
    c.eq("segments", r.segments.len(), segs.len());
    for (s, e) in r.segments.iter().zip(segs) {
        let w = |f: &str| format!("segment {} {f}", s.group);
        c.eq(
            &w("start"),
            s.start as u64,
            e["start_index"].as_u64().unwrap(),
        );
        c.eq(&w("n"), s.n as u64, e["n"].as_u64().unwrap());
        c.float(&w("mean"), s.mean, &e["mean"]);
        c.float(&w("lpl"), s.lpl, &e["lpl"]);
        c.float(&w("upl"), s.upl, &e["upl"]);
        c.eq(
            &w("n_special_cause"),
            s.n_special_cause as u64,
            e["n_special_cause"].as_u64().unwrap(),
        );
        c.eq(
            &w("n_improvement"),
            s.n_improvement as u64,
            e["n_improvement"].as_u64().unwrap(),
        );
        c.eq(
            &w("n_concern"),
            s.n_concern as u64,
            e["n_concern"].as_u64().unwrap(),
        );
        c.eq(
            &w("last_point_type"),
            s.last_point_type.label(),
            e["last_point_type"].as_str().unwrap(),
        );
    }
    let p = &expected["points"];
    for (i, pt) in r.points.iter().enumerate() {
        let w = |f: &str| format!("point {i} {f}");
        c.eq(
            &w("rebase_group"),
            pt.group as u64,
            p["rebase_group"][i].as_u64().unwrap(),
        );
        c.float(&w("mean"), pt.mean, &p["mean"][i]);
        c.float(&w("lpl"), pt.lpl, &p["lpl"][i]);
        c.float(&w("upl"), pt.upl, &p["upl"][i]);
        c.eq(
            &w("outside_limits"),
            Some(pt.outside_limits),
            p["outside_limits"][i].as_bool(),
        );
        c.eq(
            &w("relative_to_mean"),
            pt.relative_to_mean.map(i64::from),
            p["relative_to_mean"][i].as_i64(),
        );
        c.eq(
            &w("close_to_limits"),
            Some(pt.close_to_limits),
            p["close_to_limits"][i].as_bool(),
        );
        c.eq(
            &w("special_cause_type"),
            Some(pt.special_cause.label()),
            p["special_cause_type"][i].as_str(),
        );
        c.eq(
            &w("special_cause_flag"),
            Some(pt.special_cause != styrkort::assess::stats::SpecialCause::CommonCause),
            p["special_cause_flag"][i].as_bool(),
        );
        c.eq(
            &w("point_type"),
            Some(pt.point_type.label()),
            p["point_type"][i].as_str(),
        );
        c.eq(
            &w("short_group_warning"),
            Some(pt.short_group_warning),
            p["short_group_warning"][i].as_bool(),
        );
    }
    c.eq(
        "points",
        r.points.len(),
        p["mean"].as_array().unwrap().len(),
    );
    c.eq(
        "variation_icon",
        r.variation_icon.map(|v| v.label()),
        expected["variation_icon"].as_str(),
    );
    c.eq(
        "last_point_type",
        r.last_point_type.map(|v| v.label()),
        expected["last_point_type"].as_str(),
    );
    c.eq(
        "assurance",
        r.assurance.map(|a| a.label()),
        expected["assurance"].as_str(),
    );
    let short = expected["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("n < 12"));
    c.eq(
        "short-group warning",
        r.warnings.iter().any(|w| w.contains("n < 12")),
        short,
    );
}

fn check_anhoej(c: &mut Check, input: &Value, expected: &Value, centre: Centre) {
    let ys = values(input);
    let parts = anhoej(
        &ys,
        centre,
        &indices(&input["rebase_at_index"]),
        input["fix_after_n_points"].as_u64().map(|n| n as usize),
        true,
    );
    let exp = expected["parts"].as_array().unwrap();
    let chart = if centre == Centre::Mean {
        "I chart"
    } else {
        "run chart"
    };
    c.eq(&format!("{chart} parts"), parts.len(), exp.len());
    for (p, e) in parts.iter().zip(exp) {
        let w = |f: &str| format!("{chart} part {} {f}", p.part);
        let opt = |x: Option<usize>| x.map(|v| v as u64);
        c.eq(
            &w("start"),
            p.start as u64,
            e["start_index"].as_u64().unwrap(),
        );
        c.eq(&w("n_obs"), p.n_obs as u64, e["n_obs"].as_u64().unwrap());
        c.eq(
            &w("n_useful"),
            p.n_useful as u64,
            e["n_useful"].as_u64().unwrap(),
        );
        c.eq(
            &w("longest_run"),
            opt(p.longest_run),
            e["longest_run"].as_u64(),
        );
        c.eq(
            &w("longest_run_max"),
            opt(p.longest_run_max),
            e["longest_run_max"].as_u64(),
        );
        c.eq(
            &w("n_crossings"),
            opt(p.n_crossings),
            e["n_crossings"].as_u64(),
        );
        c.eq(
            &w("n_crossings_min"),
            opt(p.n_crossings_min),
            e["n_crossings_min"].as_u64(),
        );
        c.eq(
            &w("runs_signal"),
            Some(p.runs_signal),
            e["runs_signal"].as_bool(),
        );
        c.float_opt(&w("cl"), p.cl, &e["cl"]);
        if centre == Centre::Mean {
            c.float_opt(&w("lcl"), p.lcl, &e["lcl"]);
            c.float_opt(&w("ucl"), p.ucl, &e["ucl"]);
            c.eq(
                &w("n_sigma_signal"),
                p.n_sigma_signal as u64,
                e["n_sigma_signal"].as_u64().unwrap(),
            );
        }
    }
}

#[test]
fn every_peer_case_conforms() {
    let cases = shared("cases.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 38);
    let mut failures = Vec::new();
    for case in cases {
        let mut c = Check {
            case: case["id"].as_str().unwrap(),
            failures: Vec::new(),
        };
        let e = &case["expected"];
        check_nhs(&mut c, &case["input"], &e["nhs_mdc"]);
        check_anhoej(&mut c, &case["input"], &e["anhoej_i"], Centre::Mean);
        check_anhoej(&mut c, &case["input"], &e["anhoej_run"], Centre::Median);
        failures.extend(c.failures);
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn anhoej_limits_match_the_table() {
    let table = shared("anhoej_limits.json");
    for row in table["table"].as_array().unwrap() {
        let n = row["n_useful"].as_u64().unwrap() as usize;
        assert_eq!(
            longest_run_max(n) as u64,
            row["longest_run_max"].as_u64().unwrap(),
            "n = {n}"
        );
        assert_eq!(
            crossings_min(n) as u64,
            row["n_crossings_min"].as_u64().unwrap(),
            "n = {n}"
        );
    }
}

/// Hospital infections of qicharts2's data (all hospitals and infections, summed per month):
/// infections and patient days, 2015–2016.
const HAI_MONTHS: [(f64, f64); 24] = [
    (575.0, 310466.8333332932),
    (521.0, 282346.7916667171),
    (585.0, 309089.7083333032),
    (528.0, 287977.3333331682),
    (507.0, 297743.3750000285),
    (519.0, 286988.25000001),
    (457.0, 261120.3333333698),
    (505.0, 268720.7500000453),
    (494.0, 284437.875000129),
    (512.0, 290449.4999999395),
    (543.0, 288104.4583333086),
    (506.0, 279961.374999952),
    (509.0, 289803.9583333509),
    (521.0, 275950.5833333193),
    (549.0, 290824.4583333324),
    (531.0, 285495.750000041),
    (509.0, 282515.2083332975),
    (528.0, 273927.8750000195),
    (419.0, 253085.624999983),
    (512.0, 262410.7083333832),
    (495.0, 275529.2500000122),
    (513.0, 282405.0833333654),
    (454.0, 259530.7916666563),
    (490.0, 256235.45833330762),
];

#[test]
fn u_chart_matches_qicharts2_hospital_infections() {
    // qicharts2's own test `hai_1.rds` (qic(month, n, days, data = hospital_infections,
    // chart = 'u'), read with the `rdata` Python package): CL 0.001823575165, mean lower limit
    // 0.001581489772, mean upper limit 0.002065660559.
    use styrkort::assess::stats::prime::{PrimeKind, prime_chart};
    let counts: Vec<Option<(f64, f64)>> = HAI_MONTHS.iter().map(|&c| Some(c)).collect();
    let chart = prime_chart(&counts, PrimeKind::Rate, false).unwrap();
    let mean = |f: fn(&styrkort::assess::stats::prime::PrimePoint) -> f64| {
        chart.points.iter().flatten().map(f).sum::<f64>() / 24.0
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    assert!(close(chart.centre, 0.001823575165), "{}", chart.centre);
    assert!(
        close(mean(|p| p.lcl), 0.001581489772),
        "{}",
        mean(|p| p.lcl)
    );
    assert!(
        close(mean(|p| p.ucl), 0.002065660559),
        "{}",
        mean(|p| p.ucl)
    );
}

#[test]
fn p_prime_chart_reads_nhs_accident_and_emergency_as_qicharts2_and_laney_do() {
    // Mohammed et al. 2013 (BMJ Qual Saf 22:362), qicharts2's `nhs_accidents`: attendances seen
    // within four hours of all attendances, 20 weeks, ~280,000 a week. With such sizes the
    // plain p chart puts 16 of 20 weeks outside its limits; Laney's p′ none. Expected values
    // from an independent computation (Python, Laney's formulas: p̄ = Σr/Σn, zᵢ over
    // √(p̄(1 − p̄)/nᵢ), σ_z = mean |Δz| / 1.128, limits p̄ ± 3σ_z√(p̄(1 − p̄)/nᵢ)).
    use styrkort::assess::stats::prime::{PrimeKind, prime_chart};
    let r = [
        266501, 264225, 276532, 281461, 269071, 261215, 270409, 279778, 270483, 270320, 267923,
        271478, 255353, 256820, 261835, 259144, 255910, 260863, 264465, 260989,
    ];
    let n = [
        280443, 276823, 291681, 296155, 282343, 275888, 283867, 295251, 284468, 282529, 279618,
        283932, 266629, 268091, 276803, 271578, 266005, 273520, 278574, 273772,
    ];
    let counts: Vec<Option<(f64, f64)>> = r
        .iter()
        .zip(&n)
        .map(|(&r, &n)| Some((r as f64, n as f64)))
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    let prime = prime_chart(&counts, PrimeKind::Proportion, true).unwrap();
    assert!(close(prime.centre, 0.9528997113441912), "{}", prime.centre);
    assert!(close(prime.sigma_z, 10.64042186349651), "{}", prime.sigma_z);
    for (i, lcl, ucl) in [
        (0, 0.9401296441775141, 0.9656697785108682),
        (12, 0.939803013989125, 0.9659964086992573),
        (19, 0.9399749965229042, 0.9658244261654781),
    ] {
        let p = prime.points[i].unwrap();
        assert!(
            close(p.lcl, lcl) && close(p.ucl, ucl),
            "week {}: {p:?}",
            i + 1
        );
    }
    let outside = |chart: &styrkort::assess::stats::prime::PrimeChart| {
        chart
            .points
            .iter()
            .flatten()
            .filter(|p| p.value < p.lcl || p.value > p.ucl)
            .count()
    };
    let plain = prime_chart(&counts, PrimeKind::Proportion, false).unwrap();
    assert_eq!(outside(&plain), 16);
    assert_eq!(outside(&prime), 0);
}
