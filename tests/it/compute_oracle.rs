//! The two-phase engine against an independent oracle: randomised small org trees (random depth,
//! rows on leaves and inner units), random rows with nulls, every aggregate kind (sum, avg, count,
//! min, max, count distinct, median), every grain, filters, a breakdown, stock measures and
//! own-rows roll-up. The oracle is plain Rust over the generated rows: for each output cell it
//! takes the rows beneath the unit in the period's months and computes the aggregate directly.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::Fixture;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

// Two values longer than 12 bytes, with the same first bytes: polars keeps short texts whole
// in their view and long ones in a buffer, and the distinct-value ids treat the two apart.
const KS: [&str; 5] = [
    "a",
    "b",
    "c",
    "long-value-number-one",
    "long-value-number-two",
];
const GS: [&str; 2] = ["K", "M"];

#[derive(Debug, Clone)]
struct Row {
    month: i32,
    unit: usize,
    x: Option<f64>,
    /// A whole number (a median of it is counted in a hash map, not a group-by).
    n: Option<i64>,
    k: Option<&'static str>,
    g: Option<&'static str>,
    flag: bool,
}

struct World {
    parents: Vec<Option<usize>>,
    rows: Vec<Row>,
}

impl World {
    fn id(u: usize) -> String {
        format!("U{u:02}")
    }

    fn is_beneath(&self, unit: usize, ancestor: usize) -> bool {
        let mut cur = Some(unit);
        while let Some(u) = cur {
            if u == ancestor {
                return true;
            }
            cur = self.parents[u];
        }
        false
    }
}

fn random_world(seed: u64) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_units = rng.random_range(4..14);
    let mut parents = vec![None];
    for u in 1..n_units {
        parents.push(Some(rng.random_range(0..u)));
    }
    let mut rows = Vec::new();
    let n_rows = rng.random_range(150..400);
    for _ in 0..n_rows {
        // 2022-12 .. 2025-01: a month before the run and one after it are outside.
        let month = 2022 * 12 + 11 + rng.random_range(0..26);
        let x = (rng.random_range(0..10) > 0).then(|| rng.random_range(0..1000) as f64 / 100.0);
        let k = (rng.random_range(0..8) > 0).then(|| KS[rng.random_range(0..KS.len())]);
        let g = (rng.random_range(0..6) > 0).then(|| GS[rng.random_range(0..GS.len())]);
        let n = (rng.random_range(0..10) > 0).then(|| rng.random_range(-5..25));
        rows.push(Row {
            month,
            unit: rng.random_range(0..n_units),
            x,
            n,
            k,
            g,
            flag: rng.random_range(0..2) == 0,
        });
    }
    World { parents, rows }
}

const SOURCE: &str = r#"
[[sources]]
name = "ev"
path = "ev.csv"
format = "csv"
date_column = "day"
org_column = "unit"
[sources.columns]
day = "date"
unit = "string"
x = "float"
n = "int"
k = "string"
g = "string"
flag = "bool"
"#;

/// (id, extra TOML) of every indicator in the test pipeline.
const INDICATORS: [(&str, &str); 15] = [
    (
        "s_sum",
        "numerator = \"sum(x)\"\ngrains = [\"month\", \"quarter\", \"tertial\", \"year\", \"ytd\"]\nbreakdown = [\"g\"]",
    ),
    (
        "s_ratio",
        "numerator = \"sum(case when flag then x else 0 end)\"\ndenominator = \"count(*)\"\nfilter = \"k <> 'c'\"\ngrains = [\"month\", \"quarter\", \"year\", \"ytd\"]",
    ),
    (
        "s_avg",
        "numerator = \"avg(x)\"\ngrains = [\"tertial\", \"year\", \"ytd\"]\nbreakdown = [\"g\"]",
    ),
    (
        "s_cnt",
        "numerator = \"count(x)\"\ngrains = [\"month\", \"year\"]",
    ),
    (
        "s_min",
        "numerator = \"min(x)\"\ngrains = [\"quarter\", \"year\"]",
    ),
    (
        "s_max",
        "numerator = \"max(x)\"\ngrains = [\"quarter\", \"ytd\"]",
    ),
    (
        "s_dist",
        "numerator = \"count(distinct k)\"\ngrains = [\"month\", \"quarter\", \"tertial\", \"year\", \"ytd\"]\nbreakdown = [\"g\"]",
    ),
    (
        // A subset of s_dist's set in the same scan: its ids are taken from s_dist's.
        "s_dist_case",
        "numerator = \"count(distinct case when flag then k end)\"\ndenominator = \"count(distinct k)\"\ngrains = [\"month\", \"year\", \"ytd\"]\nbreakdown = [\"g\"]",
    ),
    (
        "s_dist_f",
        "numerator = \"count(distinct k)\"\nfilter = \"x > 2\"\ngrains = [\"month\", \"ytd\", \"year\"]",
    ),
    (
        "s_med",
        "numerator = \"median(x)\"\ngrains = [\"month\", \"quarter\", \"tertial\", \"year\", \"ytd\"]\nbreakdown = [\"g\"]",
    ),
    (
        "s_med_int",
        "numerator = \"median(n)\"\nfilter = \"k <> 'c'\"\ngrains = [\"month\", \"quarter\", \"tertial\", \"year\", \"ytd\"]\nbreakdown = [\"g\"]",
    ),
    (
        "s_stock_last",
        "numerator = \"count(distinct k)\"\nstock = \"last\"\ngrains = [\"month\", \"quarter\", \"year\"]",
    ),
    (
        "s_stock_mean",
        "numerator = \"sum(x)\"\ndenominator = \"count(*)\"\nstock = \"mean\"\ngrains = [\"month\", \"tertial\", \"year\"]",
    ),
    (
        "s_own",
        "numerator = \"sum(x)\"\nrollup = \"none\"\ngrains = [\"month\", \"year\"]",
    ),
    (
        // A breakdown by a boolean column: its segments are its values as text.
        "s_by_flag",
        "numerator = \"sum(x)\"\ndenominator = \"count(*)\"\ngrains = [\"month\", \"year\", \"ytd\"]\nbreakdown = [\"flag\"]",
    ),
];

fn write_world(fx: &Fixture, w: &World, indicators: &[(&str, &str)]) {
    let mut org = String::from("id,name,parent_id,kind\n");
    for (u, p) in w.parents.iter().enumerate() {
        let parent = p.map(World::id).unwrap_or_default();
        org.push_str(&format!("{},Unit {u},{parent},enhet\n", World::id(u)));
    }
    fx.file("org.csv", &org);
    let mut csv = String::from("day,unit,x,n,k,g,flag\n");
    for (i, r) in w.rows.iter().enumerate() {
        let (y, m) = (r.month / 12, r.month % 12 + 1);
        let day = 1 + (i % 28);
        csv.push_str(&format!(
            "{y:04}-{m:02}-{day:02},{},{},{},{},{},{}\n",
            World::id(r.unit),
            r.x.map(|x| format!("{x:.2}")).unwrap_or_default(),
            r.n.map(|n| n.to_string()).unwrap_or_default(),
            r.k.unwrap_or_default(),
            r.g.unwrap_or_default(),
            r.flag
        ));
    }
    fx.file("ev.csv", &csv);
    let mut body = SOURCE.to_string();
    for (id, extra) in indicators {
        body.push_str(&format!(
            "[[indicators]]\nid = \"{id}\"\nname = \"{id}\"\nsource = \"ev\"\npolarity = \"neutral\"\n{extra}\n"
        ));
    }
    body.push_str(&format!(
        "[[goals]]\nid = \"G\"\nname = \"g\"\nlevel = \"kf\"\nowner = \"U00\"\nbasis = \"law\"\nreference = \"r\"\nindicators = [{}]\n",
        indicators
            .iter()
            .map(|(id, _)| format!("\"{id}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    fx.pipeline_full("", "2023-01", &body);
}

/// The months (as `year * 12 + month - 1`) a period label covers.
fn months_of(grain: &str, label: &str) -> Vec<i32> {
    let year: i32 = label[..4].parse().unwrap();
    let m = |k: i32| year * 12 + k - 1;
    match grain {
        "month" => vec![m(label[5..7].parse().unwrap())],
        "quarter" => {
            let q: i32 = label[6..7].parse().unwrap();
            (m(3 * q - 2)..=m(3 * q)).collect()
        }
        "tertial" => {
            let t: i32 = label[6..7].parse().unwrap();
            (m(4 * t - 3)..=m(4 * t)).collect()
        }
        "year" => (m(1)..=m(12)).collect(),
        "ytd" => (m(1)..=m(label[8..10].parse().unwrap())).collect(),
        other => panic!("unknown grain {other}"),
    }
}

/// What the oracle computes for one cell: numerator, denominator, rows counted.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    numerator: Option<f64>,
    denominator: Option<f64>,
    n_rows: i64,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The cell computed from the rows beneath `unit` in `months` and `segment`.
fn direct(w: &World, ind: &str, unit: usize, months: &[i32], segment: &str) -> Expected {
    let own_only = ind == "s_own";
    let rows: Vec<&Row> = w
        .rows
        .iter()
        .filter(|r| months.contains(&r.month))
        .filter(|r| {
            if own_only {
                r.unit == unit
            } else {
                w.is_beneath(r.unit, unit)
            }
        })
        .filter(|r| match segment {
            "total" => true,
            s => match s.strip_prefix("flag=") {
                Some(flag) => r.flag.to_string() == flag,
                None => {
                    let g = s.strip_prefix("g=").unwrap();
                    r.g.unwrap_or("(missing)") == g
                }
            },
        })
        .filter(|r| match ind {
            "s_ratio" | "s_med_int" => r.k.is_some_and(|k| k != "c"),
            // SQL: a null x is not > 2.
            "s_dist_f" => r.x.is_some_and(|x| x > 2.0),
            _ => true,
        })
        .collect();
    let n = rows.len() as i64;
    let xs: Vec<f64> = rows.iter().filter_map(|r| r.x).collect();
    let distinct = || {
        let set: BTreeSet<&str> = rows.iter().filter_map(|r| r.k).collect();
        Some(set.len() as f64)
    };
    // As in SQL (and polars' grouped sum), a sum over no non-null value is null.
    let sum = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>());
    let (numerator, denominator) = match ind {
        "s_sum" | "s_own" | "s_stock_mean" => {
            (sum(&xs), (ind == "s_stock_mean").then_some(n as f64))
        }
        "s_ratio" => {
            let cases: Vec<f64> = rows
                .iter()
                .filter_map(|r| if r.flag { r.x } else { Some(0.0) })
                .collect();
            (sum(&cases), Some(n as f64))
        }
        "s_by_flag" => (sum(&xs), Some(n as f64)),
        "s_avg" => (
            (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64),
            None,
        ),
        "s_cnt" => (Some(xs.len() as f64), None),
        "s_min" => (xs.iter().copied().reduce(f64::min), None),
        "s_max" => (xs.iter().copied().reduce(f64::max), None),
        "s_dist" | "s_dist_f" | "s_stock_last" => (distinct(), None),
        "s_dist_case" => {
            let flagged: BTreeSet<&str> =
                rows.iter().filter(|r| r.flag).filter_map(|r| r.k).collect();
            (Some(flagged.len() as f64), distinct())
        }
        "s_med" => (median(xs), None),
        "s_med_int" => (
            median(rows.iter().filter_map(|r| r.n).map(|n| n as f64).collect()),
            None,
        ),
        "s_std" => {
            let k = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / k;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
            ((xs.len() >= 2).then(|| var.sqrt()), None)
        }
        other => panic!("no oracle for {other}"),
    };
    Expected {
        numerator,
        denominator,
        n_rows: n,
    }
}

/// The oracle for an output cell, including stock measures' coarser periods.
fn oracle(w: &World, ind: &str, unit: usize, grain: &str, period: &str, seg: &str) -> Expected {
    let months = months_of(grain, period);
    if grain == "month" || !ind.starts_with("s_stock") {
        return direct(w, ind, unit, &months, seg);
    }
    let per_month: Vec<Expected> = months
        .iter()
        .map(|m| direct(w, ind, unit, &[*m], seg))
        .collect();
    if ind == "s_stock_last" {
        return per_month.last().unwrap().clone();
    }
    let with_rows: Vec<&Expected> = per_month.iter().filter(|e| e.n_rows > 0).collect();
    // The mean over the months with rows of their non-null numerators (and denominators).
    let mean = |f: &dyn Fn(&Expected) -> Option<f64>| {
        let v: Vec<f64> = with_rows.iter().filter_map(|e| f(e)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    Expected {
        numerator: mean(&|e| e.numerator),
        denominator: mean(&|e| e.denominator),
        n_rows: with_rows.iter().map(|e| e.n_rows).sum(),
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        (a, b) => a == b,
    }
}

fn check_world(seed: u64) {
    let w = random_world(seed);
    let fx = Fixture::new();
    write_world(&fx, &w, &INDICATORS);
    let values = fx.values("2025-01-01");
    let strs = |name: &str| common::strings(&values, name);
    let f64s = |name: &str| -> Vec<Option<f64>> {
        values.column(name).unwrap().f64().unwrap().iter().collect()
    };
    let (ids, units, grains, periods, segments) = (
        strs("indicator_id"),
        strs("org_unit_id"),
        strs("grain"),
        strs("period"),
        strs("segment"),
    );
    let (num, den) = (f64s("numerator"), f64s("denominator"));
    let n_rows: Vec<i64> = values
        .column("n_rows")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let unit_index: BTreeMap<String, usize> =
        (0..w.parents.len()).map(|u| (World::id(u), u)).collect();
    let mut checked_with_rows = 0;
    for i in 0..values.height() {
        let unit = unit_index[&units[i]];
        let want = oracle(&w, &ids[i], unit, &grains[i], &periods[i], &segments[i]);
        let at = format!(
            "seed {seed}: {} {} {} {} {}",
            ids[i], units[i], grains[i], periods[i], segments[i]
        );
        assert_eq!(n_rows[i], want.n_rows, "n_rows of {at}");
        if want.n_rows == 0 {
            continue;
        }
        checked_with_rows += 1;
        assert!(
            close(num[i], want.numerator),
            "numerator of {at}: engine {:?}, oracle {:?}",
            num[i],
            want.numerator
        );
        assert!(
            close(den[i], want.denominator),
            "denominator of {at}: engine {:?}, oracle {:?}",
            den[i],
            want.denominator
        );
    }
    // Every indicator × unit × declared period × segment is in the table, and most have rows.
    assert!(checked_with_rows > values.height() / 4, "seed {seed}");
    let periods_per_grain = |g: &str| match g {
        "month" => 24,
        "quarter" => 8,
        "tertial" => 6,
        "year" => 2,
        "ytd" => 24,
        _ => unreachable!(),
    };
    let mut expected_rows = 0;
    for (id, extra) in INDICATORS {
        let grains_line = extra.lines().find(|l| l.starts_with("grains")).unwrap();
        let n_periods: usize = ["month", "quarter", "tertial", "year", "ytd"]
            .iter()
            .filter(|g| grains_line.contains(&format!("\"{g}\"")))
            .map(|g| periods_per_grain(g))
            .sum();
        let seen_segments: BTreeSet<&str> = ids
            .iter()
            .zip(&segments)
            .filter(|(i, _)| i.as_str() == id)
            .map(|(_, s)| s.as_str())
            .collect();
        expected_rows += w.parents.len() * n_periods * seen_segments.len();
    }
    assert_eq!(values.height(), expected_rows, "seed {seed}: the full grid");
}

#[test]
fn two_phase_results_equal_a_direct_computation_on_random_trees() {
    for seed in 1..=6 {
        check_world(seed);
    }
}

/// A standard deviation has no exact mergeable state: the indicator takes the direct path (rows
/// joined to ancestors and periods), `explain` says so, and its values still equal the oracle's.
#[test]
fn an_aggregate_without_mergeable_state_is_computed_directly() {
    let w = random_world(11);
    let fx = Fixture::new();
    let indicators = [
        (
            "s_std",
            "numerator = \"stddev(x)\"\ngrains = [\"month\", \"year\"]",
        ),
        (
            "s_sum",
            "numerator = \"sum(x)\"\ngrains = [\"month\", \"year\"]",
        ),
    ];
    write_world(&fx, &w, &indicators);
    let explained = styrkort::explain(&fx.path("pipeline.toml"), None, None, false).unwrap();
    let direct: Vec<&str> = explained[0]
        .direct
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(direct, ["s_std"]);
    let values = fx.values("2025-01-01");
    let strs = |name: &str| common::strings(&values, name);
    let (ids, units, grains, periods) = (
        strs("indicator_id"),
        strs("org_unit_id"),
        strs("grain"),
        strs("period"),
    );
    let num: Vec<Option<f64>> = values
        .column("numerator")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    let mut compared = 0;
    for i in 0..values.height() {
        let unit: usize = units[i][1..].parse().unwrap();
        let want = oracle(&w, &ids[i], unit, &grains[i], &periods[i], "total");
        if want.numerator.is_none() {
            continue;
        }
        compared += 1;
        assert!(
            close(num[i], want.numerator),
            "{} {} {} {}: engine {:?}, oracle {:?}",
            ids[i],
            units[i],
            grains[i],
            periods[i],
            num[i],
            want.numerator
        );
    }
    assert!(compared > 50, "{compared} cells compared");
}
