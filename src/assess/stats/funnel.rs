//! Funnel-plot control limits (`shared/conformance/stats/METHODS.md` (d)): PHE's limit tables
//! for proportions (inverted Wilson), ratios and rates (exact Poisson, from gamma quantiles
//! rather than PHE's bisection), and FunnelPlotR's exact Poisson limits for standardised ratios,
//! its overdispersion factor and outlier rule.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// 0.95·x rounded down to one significant digit (PHE's axis minimum).
pub fn signif_floor(x: f64) -> f64 {
    round_to_digits(0.95 * x, 1, f64::floor)
}

/// 1.05·x rounded up to two significant digits (PHE's axis maximum).
pub fn signif_ceiling(x: f64) -> f64 {
    round_to_digits(1.05 * x, 2, f64::ceil)
}

fn round_to_digits(x: f64, digits: i32, op: fn(f64) -> f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    op(x * scale) / scale
}

/// The 100 x-axis points of a PHE funnel table between `axis_min` and `axis_max`; ratio tables
/// use an offset one smaller.
pub fn axis_points(axis_min: f64, axis_max: f64, ratio: bool) -> Vec<f64> {
    let mut points = vec![axis_min.max(1.0)];
    for j in 2..=100 {
        let offset = if ratio { j - 1 } else { j } as f64;
        let last = *points.last().expect("starts with one point");
        let step = ((axis_max / last).powf(1.0 / (101.0 - offset)) * last).round_ties_even();
        points.push(step.max(last + 1.0));
    }
    points
}

fn axis(min_den: f64, max_den: f64) -> (f64, f64) {
    let min = if max_den > 2.0 * min_den {
        0.0
    } else {
        signif_floor(min_den)
    };
    (min, signif_ceiling(max_den))
}

/// The proportion whose Wilson bound at population `n` equals the benchmark `a` (PHE
/// `sigma_adjustment`), × `multiplier`.
pub fn sigma_adjustment(p: f64, n: f64, a: f64, high: bool, multiplier: f64) -> f64 {
    let z = Normal::new(0.0, 1.0).expect("valid").inverse_cdf(p);
    let z2 = z * z;
    let f = a * (n / z2 + 1.0);
    let g = 1.0 / z2 + 1.0 / n;
    let d = (64.0 * a * a * (n / z2 + 1.0).powi(2)
        - 64.0 * g * a * (n * (a * (n / z2 + 2.0) - 1.0) + z2 * (a - 1.0)))
        .sqrt();
    let limit = if high {
        (f + d / 8.0) / g / n
    } else {
        (f - d / 8.0) / g / n
    };
    limit * multiplier
}

/// The expected count at which `obs` events sit on a Poisson limit: `high` solves
/// P(X ≤ obs | E) = p (the lower ratio limit), low solves P(X ≥ obs | E) = p.
///
/// Solved as PHE does — bisection on v ∈ (0, 1) with E = (1 + obs)·v/(1 − v), halving the step
/// from 0.5 until it is below 1e-7 — because PHE's published tables come from that search, which
/// differs from the exact gamma quantile by up to 5e-5 relative at one event and 99.8 %.
pub fn poisson_funnel(obs: f64, p: f64, high: bool) -> f64 {
    use statrs::function::gamma::{gamma_lr, gamma_ur};
    let expected = |v: f64| (1.0 + obs) * v / (1.0 - v);
    let (mut v, mut dv) = (0.5f64, 0.5f64);
    while dv > 1e-7 {
        dv /= 2.0;
        let e = expected(v);
        let too_far = if high {
            // P(X ≤ obs | E) below p: E is too large.
            gamma_ur(obs + 1.0, e) < p
        } else {
            // P(X ≥ obs | E) above p: E is too large.
            obs > 0.0 && gamma_lr(obs, e) > p
        };
        if too_far {
            v -= dv;
        } else {
            v += dv;
        }
    }
    expected(v)
}

/// A limit table: named columns of 100 rows.
pub type FunnelTable = Vec<(String, Vec<f64>)>;

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

pub fn proportion_funnel(numerator: &[f64], denominator: &[f64], multiplier: f64) -> FunnelTable {
    let a = numerator.iter().sum::<f64>() / denominator.iter().sum::<f64>();
    let (lo, hi) = min_max(denominator);
    let (amin, amax) = axis(lo, hi);
    let pop = axis_points(amin, amax, false);
    let limit = |p: f64, high: bool| -> Vec<f64> {
        pop.iter()
            .map(|&n| {
                let l = sigma_adjustment(p, n, a, high, multiplier);
                // PHE clamps at 0 and at 100 whatever the multiplier.
                if high { l.min(100.0) } else { l.max(0.0) }
            })
            .collect()
    };
    vec![
        ("Population".into(), pop.clone()),
        ("lower_2s_limit".into(), limit(0.975, false)),
        ("upper_2s_limit".into(), limit(0.975, true)),
        ("lower_3s_limit".into(), limit(0.999, false)),
        ("upper_3s_limit".into(), limit(0.999, true)),
        ("baseline".into(), vec![a * multiplier; pop.len()]),
    ]
}

/// Limits for ratios observed / expected, over the range of the expected counts; `isr` gives
/// ratios × 100, `count` ratios − 1.
pub fn ratio_funnel(expected: &[f64], isr: bool) -> FunnelTable {
    let (lo, hi) = min_max(expected);
    let (amin, amax) = axis(lo, hi);
    let obs = axis_points(amin, amax, true);
    let kind = if isr { "isr" } else { "count" };
    let mut table: FunnelTable = vec![("Observed_events".into(), obs.clone())];
    for (label, p) in [("2s", 0.025), ("3s", 0.001)] {
        for (side, high) in [("lower", true), ("upper", false)] {
            let e: Vec<f64> = obs.iter().map(|&o| poisson_funnel(o, p, high)).collect();
            let ratio: Vec<f64> = obs
                .iter()
                .zip(&e)
                .map(|(o, e)| if isr { o / e * 100.0 } else { o / e - 1.0 })
                .collect();
            table.push((format!("{side}_{label}_exp_events"), e));
            table.push((format!("{side}_{label}_{kind}"), ratio));
        }
    }
    table
}

/// Rates per `multiplier` over `years` years; `denominator` is used where a count is 0 (crude).
pub fn rate_funnel(
    count: &[f64],
    rate: &[f64],
    denominator: Option<&[f64]>,
    dsr: bool,
    multiplier: f64,
    years: f64,
) -> FunnelTable {
    let derived: Vec<Option<f64>> = (0..count.len())
        .map(|i| {
            if count[i] == 0.0 {
                if dsr {
                    None
                } else {
                    denominator
                        .map(|d| d[i])
                        .or(Some(multiplier * count[i] / rate[i]))
                }
            } else {
                Some(multiplier * count[i] / rate[i])
            }
        })
        .collect();
    let present: Vec<f64> = derived.iter().flatten().copied().collect();
    let av = count.iter().sum::<f64>() / present.iter().sum::<f64>();
    let (lo, hi) = min_max(&present);
    let amin = if hi > 2.0 * lo {
        0.0
    } else {
        signif_floor(lo / years) * years
    };
    let amax = signif_ceiling(hi / years) * years;
    let events = axis_points((amin * av).floor(), (amax * av).ceil(), false);
    let mut table: FunnelTable = vec![("Events".into(), events.clone())];
    for (label, p) in [("2s", 0.025), ("3s", 0.001)] {
        for (side, high) in [("lower", true), ("upper", false)] {
            let population: Vec<f64> = events
                .iter()
                .map(|&x| poisson_funnel(x, p, high) / av)
                .collect();
            let limit: Vec<f64> = events
                .iter()
                .zip(&population)
                .map(|(x, pop)| x / pop * multiplier)
                .collect();
            table.push((
                format!("{side}_{label}_population_1_year"),
                population.iter().map(|p| p / years).collect(),
            ));
            table.push((format!("{side}_{label}_limit"), limit));
        }
    }
    table.push(("baseline".into(), vec![av * multiplier; events.len()]));
    table
}

/// FunnelPlotR's exact Poisson limits for a standardised ratio at expected count `e`:
/// (lower, upper) at two-sided level `alpha` (0.05 or 0.002).
pub fn sr_poisson_limits(e: f64, target: f64, alpha: f64) -> (f64, f64) {
    let lower = target
        * ChiSquared::new(2.0 * e)
            .expect("positive df")
            .inverse_cdf(alpha / 2.0)
        / (2.0 * e);
    let upper = target
        * ChiSquared::new(2.0 * (e + 1.0))
            .expect("positive df")
            .inverse_cdf(1.0 - alpha / 2.0)
        / (2.0 * e);
    (lower, upper)
}

/// FunnelPlotR's overdispersion factor φ for SHMI: z = √E·ln(O/E) with E rounded to 2 dp,
/// the `trim_by` share of units at each extreme (by rank) left out, φ = Σz² / n.
pub fn phi_shmi(observed: &[f64], expected: &[f64], trim_by: f64) -> f64 {
    let mut z: Vec<f64> = observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| {
            let e = (e * 100.0).round() / 100.0;
            e.sqrt() * (o / e).ln()
        })
        .collect();
    z.sort_by(|a, b| a.total_cmp(b));
    let drop = (z.len() as f64 * trim_by).floor() as usize;
    let kept = &z[drop..z.len() - drop];
    kept.iter().map(|x| x * x).sum::<f64>() / kept.len() as f64
}

/// A unit is an outlier only strictly outside [lower, upper] (a point on a limit is in control).
pub fn is_outlier(ratio: f64, multiplier: f64, lower: f64, upper: f64) -> bool {
    let r = ratio * multiplier;
    r < lower || r > upper
}
