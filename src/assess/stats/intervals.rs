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
