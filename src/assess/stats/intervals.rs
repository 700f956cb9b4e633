//! Confidence intervals as England's Fingertips computes them (PHEindicatormethods 2.1.0,
//! `shared/conformance/stats/METHODS.md` (a), (b)): Wilson score intervals for proportions, and for
//! counts and rates the exact Poisson interval below 10 events and Byar's approximation from 10.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// z for a two-sided interval at `confidence` (0.95 → 1.959964…, 0.998 → 3.090232…).
pub fn z_for(confidence: f64) -> f64 {
    Normal::new(0.0, 1.0)
        .expect("a standard normal is valid")
        .inverse_cdf(confidence + (1.0 - confidence) / 2.0)
}

/// Wilson score interval for `x` of `n`, clamped to [0, 1]. Confidence 1 gives [0, 1]; n ≤ 0 or
/// a missing input gives `None`.
pub fn wilson(x: f64, n: f64, confidence: f64) -> Option<(f64, f64)> {
    if !(x.is_finite() && n.is_finite()) || n <= 0.0 || x < 0.0 || x > n {
        return None;
    }
    if confidence >= 1.0 {
        return Some((0.0, 1.0));
    }
    let z = z_for(confidence);
    let z2 = z * z;
    let root = z * (z2 + 4.0 * x * (1.0 - x / n)).sqrt();
    let lower = (2.0 * x + z2 - root) / (2.0 * (n + z2));
    let upper = (2.0 * x + z2 + root) / (2.0 * (n + z2));
    Some((lower.clamp(0.0, 1.0), upper.clamp(0.0, 1.0)))
}

/// Byar's lower limit for a count; `None` where the approximation goes negative (small x at high
/// confidence) or x is 0.
pub fn byar_lower(x: f64, confidence: f64) -> Option<f64> {
    let z = z_for(confidence);
    let l = x * (1.0 - 1.0 / (9.0 * x) - z / (3.0 * x.sqrt())).powi(3);
    (l.is_finite() && l >= 0.0).then_some(l)
}

/// Byar's upper limit for a count.
pub fn byar_upper(x: f64, confidence: f64) -> f64 {
    let z = z_for(confidence);
    let a = x + 1.0;
    a * (1.0 - 1.0 / (9.0 * a) + z / (3.0 * a.sqrt())).powi(3)
}

/// Exact Poisson interval for a count, from χ² quantiles (a count of 0 has lower limit 0).
pub fn exact_poisson(x: f64, confidence: f64) -> (f64, f64) {
    let tail = (1.0 - confidence) / 2.0;
    let lower = if x <= 0.0 {
        0.0
    } else {
        ChiSquared::new(2.0 * x)
            .expect("positive degrees of freedom")
            .inverse_cdf(tail)
            / 2.0
    };
    let upper = ChiSquared::new(2.0 * x + 2.0)
        .expect("positive degrees of freedom")
        .inverse_cdf(1.0 - tail)
        / 2.0;
    (lower, upper)
}

/// The interval method Fingertips uses for a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateMethod {
    /// Fewer than 10 events.
    Exact,
    /// 10 events or more.
    Byars,
}

impl RateMethod {
    pub fn label(self) -> &'static str {
        match self {
            RateMethod::Exact => "Exact",
            RateMethod::Byars => "Byars",
        }
    }
}

/// Interval for a count: exact below 10, Byar's from 10 (lower limit `None` where Byar's fails).
pub fn count_interval(x: f64, confidence: f64) -> (RateMethod, Option<f64>, f64) {
    if x < 10.0 {
        let (l, u) = exact_poisson(x, confidence);
        (RateMethod::Exact, Some(l), u)
    } else {
        (
            RateMethod::Byars,
            byar_lower(x, confidence),
            byar_upper(x, confidence),
        )
    }
}

/// A rate `x` per `n` × `multiplier` with its interval, as `phe_rate`.
pub fn rate_interval(
    x: f64,
    n: f64,
    multiplier: f64,
    confidence: f64,
) -> Option<(f64, Option<f64>, f64, RateMethod)> {
    if !(x.is_finite() && n.is_finite()) || n <= 0.0 || x < 0.0 {
        return None;
    }
    let (method, lower, upper) = count_interval(x, confidence);
    let scale = multiplier / n;
    Some((x * scale, lower.map(|l| l * scale), upper * scale, method))
}

/// The "Byar" of epitools and DescTools: x + 0.5 in both limits. Not Fingertips' method; kept to
/// show the difference (`METHODS.md` (b)).
pub fn byar_half(x: f64, exposure: f64, confidence: f64) -> (f64, f64) {
    let z = z_for(confidence);
    let a = x + 0.5;
    let f =
        |sign: f64| a * (1.0 - 1.0 / (9.0 * a) + sign * z / (3.0 * a.sqrt())).powi(3) / exposure;
    (f(-1.0), f(1.0))
}

/// Higher / similar / lower than a benchmark, Fingertips-style: the benchmark outside the value's
/// interval at the given confidence (strictly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Significance {
    Higher,
    Similar,
    Lower,
}

impl Significance {
    pub fn label(self) -> &'static str {
        match self {
            Significance::Higher => "higher",
            Significance::Similar => "similar",
            Significance::Lower => "lower",
        }
    }
}

pub fn compare(lower: Option<f64>, upper: Option<f64>, benchmark: f64) -> Significance {
    match (lower, upper) {
        (Some(l), _) if benchmark < l => Significance::Higher,
        (_, Some(u)) if benchmark > u => Significance::Lower,
        _ => Significance::Similar,
    }
}

/// Fingertips' significance labels against a benchmark (PHE `assign_funnel_significance`), in
/// the order they are checked.
pub const HIGH_999: &str = "High (0.001)";
pub const HIGH_975: &str = "High (0.025)";
pub const LOW_999: &str = "Low (0.001)";
pub const LOW_975: &str = "Low (0.025)";
pub const NOT_SIGNIFICANT: &str = "Not significant";
pub const DSR_UNDER_10: &str = "Not applicable for events less than 10 for dsrs";

/// First label whose interval (99.8 %, then 95 %) excludes the benchmark.
fn label(intervals: [(Option<f64>, Option<f64>); 2], benchmark: f64) -> &'static str {
    let [(l998, u998), (l95, u95)] = intervals;
    if l998.is_some_and(|l| benchmark < l) {
        HIGH_999
    } else if l95.is_some_and(|l| benchmark < l) {
        HIGH_975
    } else if u998.is_some_and(|u| benchmark > u) {
        LOW_999
    } else if u95.is_some_and(|u| benchmark > u) {
        LOW_975
    } else {
        NOT_SIGNIFICANT
    }
}

/// Each area's proportion against the overall proportion Σx/Σn: outside the area's Wilson
/// interval (the same as outside PHE's inverted-Wilson funnel limits).
pub fn proportion_significance(x: &[f64], n: &[f64]) -> Vec<&'static str> {
    let overall = x.iter().sum::<f64>() / n.iter().sum::<f64>();
    x.iter()
        .zip(n)
        .map(|(&x, &n)| {
            let w = |c| wilson(x, n, c).map_or((None, None), |(l, u)| (Some(l), Some(u)));
            label([w(0.998), w(0.95)], overall)
        })
        .collect()
}

/// Each ratio observed / expected against 1, with the count's interval (exact below 10, Byar's
/// from 10).
pub fn ratio_significance(observed: &[f64], expected: &[f64]) -> Vec<&'static str> {
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| {
            let ci = |c| {
                let (_, l, u) = count_interval(o, c);
                (l.map(|l| l / e), Some(u / e))
            };
            label([ci(0.998), ci(0.95)], 1.0)
        })
        .collect()
}

/// Directly standardised or crude rates against their weighted average Σcount / Σd, where
/// d = multiplier · count / rate (for a zero count: the given denominator for crude rates, none
/// for dsrs). A dsr with fewer than 10 events is not assessed.
pub fn rate_significance(
    count: &[f64],
    rate: &[f64],
    denominator: &[f64],
    dsr: bool,
    multiplier: f64,
) -> Vec<&'static str> {
    let d: Vec<Option<f64>> = count
        .iter()
        .zip(rate)
        .zip(denominator)
        .map(|((&c, &r), &n)| {
            if c > 0.0 {
                Some(multiplier * c / r)
            } else if dsr {
                None
            } else {
                Some(n)
            }
        })
        .collect();
    let total_d: f64 = d.iter().flatten().sum();
    let average = count.iter().sum::<f64>() / total_d;
    count
        .iter()
        .zip(&d)
        .map(|(&c, d)| {
            if dsr && c < 10.0 {
                return DSR_UNDER_10;
            }
            let Some(d) = *d else { return NOT_SIGNIFICANT };
            let ci = |conf| {
                let (_, l, u) = count_interval(c, conf);
                (l.map(|l| l / d), Some(u / d))
            };
            label([ci(0.998), ci(0.95)], average)
        })
        .collect()
}
