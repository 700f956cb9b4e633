//! Trend tests over a series (`shared/conformance/stats/METHODS.md` (e), (f)):
//! - Mann-Kendall as pymannkendall's `original_test` (S, tie-corrected Var(S), continuity-corrected
//!   z, tau-a), with the p-value from the normal upper tail (no early underflow), tau-b beside it,
//!   and Sen's slope on the original positions;
//! - Kendall's tau-b against time with scipy's exact permutation p-value (no ties, n ≤ 33);
//! - Theil-Sen with both intercepts and scipy's confidence interval;
//! - OLS as scipy's `linregress`, with its definitions for n = 2 and constant y.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let m = values.len() / 2;
    if values.len() % 2 == 1 {
        values[m]
    } else {
        (values[m - 1] + values[m]) / 2.0
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Sizes of the groups of equal values (only groups of two or more matter).
fn tie_groups(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        if j - i > 1 {
            out.push((j - i) as f64);
        }
        i = j;
    }
    out
}

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("a standard normal is valid")
}

#[derive(Debug, Clone, PartialEq)]
pub struct MannKendall {
    /// Non-missing values.
    pub n: usize,
    pub s: f64,
    pub var_s: f64,
    pub z: f64,
    /// Two-sided, from the upper tail of the normal.
    pub p: f64,
    /// S over all pairs (pymannkendall's `Tau`).
    pub tau_a: f64,
    /// Tie-adjusted (as R's `trend::mk.test`).
    pub tau_b: f64,
    /// Significant at the alpha given.
    pub significant: bool,
    /// "increasing", "decreasing" or "no trend".
    pub trend: &'static str,
    pub sens_slope: f64,
    pub sens_intercept: f64,
}

/// Mann-Kendall and Sen's slope over a series in time order; missing values are skipped for S
/// and keep their positions for Sen. `None` with fewer than two values.
pub fn mann_kendall(x: &[Option<f64>], alpha: f64) -> Option<MannKendall> {
    let present: Vec<f64> = x.iter().flatten().copied().collect();
    let n = present.len();
    if n < 2 {
        return None;
    }
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            s += sign(present[j] - present[i]);
        }
    }
    let nf = n as f64;
    let ties = tie_groups(&present);
    let tie_term: f64 = ties.iter().map(|t| t * (t - 1.0) * (2.0 * t + 5.0)).sum();
    let var_s = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - tie_term) / 18.0;
    let z = if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    // erfc(|z|/√2) is the two-sided normal tail, accurate far out where 1 − Φ underflows.
    let p = libm::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
    let significant = z.abs() > standard_normal().inverse_cdf(1.0 - alpha / 2.0);
    let pairs = nf * (nf - 1.0) / 2.0;
    let tied_pairs: f64 = ties.iter().map(|t| t * (t - 1.0) / 2.0).sum();
    let tau_b = s / ((pairs - tied_pairs).sqrt() * pairs.sqrt());

    let positions: Vec<(f64, f64)> = x
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
        .collect();
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..positions.len() {
        for j in i + 1..positions.len() {
            slopes.push((positions[j].1 - positions[i].1) / (positions[j].0 - positions[i].0));
        }
    }
    let sens_slope = median(&mut slopes);
    let mut xs: Vec<f64> = positions.iter().map(|p| p.0).collect();
    let mut ys = present.clone();
    let sens_intercept = median(&mut ys) - median(&mut xs) * sens_slope;
    Some(MannKendall {
        n,
        s,
        var_s,
        z,
        p,
        tau_a: s / pairs,
        tau_b,
        significant,
        trend: match (significant, z > 0.0) {
            (false, _) => "no trend",
            (true, true) => "increasing",
            (true, false) => "decreasing",
        },
        sens_slope,
        sens_intercept,
    })
}

/// Kendall's tau-b of `x` against `t`, and the exact two-sided p-value when there are no ties and
/// n ≤ 33 (else `None` for p): twice the share of permutations with at most min(concordant,
/// discordant) inversions.
pub fn kendall_tau_exact(t: &[f64], x: &[f64]) -> (f64, Option<f64>) {
    let n = t.len().min(x.len());
    let (mut concordant, mut discordant) = (0u64, 0u64);
    let (mut tied_t, mut tied_x) = (0u64, 0u64);
    for i in 0..n {
        for j in i + 1..n {
            let a = sign(t[j] - t[i]) * sign(x[j] - x[i]);
            if t[j] == t[i] {
                tied_t += 1;
            }
            if x[j] == x[i] {
                tied_x += 1;
            }
            if a > 0.0 {
                concordant += 1;
            } else if a < 0.0 {
                discordant += 1;
            }
        }
    }
    let pairs = (n * n.saturating_sub(1) / 2) as f64;
    let tau = (concordant as f64 - discordant as f64)
        / ((pairs - tied_t as f64).sqrt() * (pairs - tied_x as f64).sqrt());
    if tied_t > 0 || tied_x > 0 || !(2..=33).contains(&n) {
        return (tau, None);
    }
    // counts[k] = permutations of n items with exactly k inversions (Mahonian numbers).
    let c = concordant.min(discordant) as usize;
    let max = n * (n - 1) / 2;
    let mut counts = vec![0f64; max + 1];
    counts[0] = 1.0;
    for m in 2..=n {
        let mut next = vec![0f64; max + 1];
        for (k, slot) in next.iter_mut().enumerate() {
            // Inserting item m adds 0..m-1 inversions.
            for add in 0..m.min(k + 1) {
                *slot += counts[k - add];
            }
        }
        counts = next;
    }
    let total: f64 = counts.iter().sum();
    let tail: f64 = counts[..=c].iter().sum();
    (tau, Some((2.0 * tail / total).min(1.0)))
}

#[derive(Debug, Clone, PartialEq)]
pub struct TheilSen {
    pub slope: f64,
    /// median(y) − slope · median(x)
    pub intercept_separate: f64,
    /// median(y − slope · x)
    pub intercept_joint: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Theil-Sen slope with scipy's confidence interval at `confidence` (e.g. 0.95).
pub fn theil_sen(x: &[f64], y: &[f64], confidence: f64) -> TheilSen {
    let n = x.len().min(y.len());
    let mut slopes = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if x[j] != x[i] {
                slopes.push((y[j] - y[i]) / (x[j] - x[i]));
            }
        }
    }
    slopes.sort_by(|a, b| a.total_cmp(b));
    let slope = median(&mut slopes.clone());
    let intercept_separate = median(&mut y[..n].to_vec()) - slope * median(&mut x[..n].to_vec());
    let mut residual: Vec<f64> = (0..n).map(|i| y[i] - slope * x[i]).collect();
    let intercept_joint = median(&mut residual);
    let alpha = if confidence > 0.5 {
        1.0 - confidence
    } else {
        confidence
    };
    let z = -standard_normal().inverse_cdf(alpha / 2.0);
    let tie_term = |v: &[f64]| -> f64 {
        tie_groups(v)
            .iter()
            .map(|k| k * (k - 1.0) * (2.0 * k + 5.0))
            .sum()
    };
    let nf = n as f64;
    let sigma = ((nf * (nf - 1.0) * (2.0 * nf + 5.0) - tie_term(&x[..n]) - tie_term(&y[..n]))
        / 18.0)
        .sqrt();
    let nt = slopes.len() as f64;
    let (lower, upper) = if slopes.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        let last = slopes.len() - 1;
        // numpy rounds halves to even.
        let round = |v: f64| v.round_ties_even();
        // As scipy: with z the positive quantile, the interval runs from the
        // round((N − zσ)/2)-th to the round((N + zσ)/2)-th sorted slope (1-based).
        let rl = (round((nt - z * sigma) / 2.0) as i64 - 1).clamp(0, last as i64) as usize;
        let ru = (round((nt + z * sigma) / 2.0) as i64).clamp(0, last as i64) as usize;
        (slopes[rl.min(ru)], slopes[rl.max(ru)])
    };
    TheilSen {
        slope,
        intercept_separate,
        intercept_joint,
        lower,
        upper,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ols {
    pub slope: f64,
    pub intercept: f64,
    pub rvalue: f64,
    /// Two-sided p-value of the slope.
    pub pvalue: f64,
    pub stderr: f64,
    pub intercept_stderr: f64,
}

/// Least squares of y on x as scipy's `linregress`. Any missing value, or no values, gives all
/// NaN; `Err` when every x is the same (no slope exists).
pub fn ols(x: &[Option<f64>], y: &[Option<f64>]) -> Result<Ols, String> {
    let nan = Ols {
        slope: f64::NAN,
        intercept: f64::NAN,
        rvalue: f64::NAN,
        pvalue: f64::NAN,
        stderr: f64::NAN,
        intercept_stderr: f64::NAN,
    };
    let n = x.len().min(y.len());
    let pairs: Option<Vec<(f64, f64)>> = (0..n).map(|i| Some((x[i]?, y[i]?))).collect();
    let Some(pairs) = pairs.filter(|p| !p.is_empty()) else {
        return Ok(nan);
    };
    let nf = pairs.len() as f64;
    let xm = pairs.iter().map(|p| p.0).sum::<f64>() / nf;
    let ym = pairs.iter().map(|p| p.1).sum::<f64>() / nf;
    if pairs.iter().all(|p| p.0 == pairs[0].0) {
        return Err("cannot fit a line when every x is the same".into());
    }
    let ssxm = pairs.iter().map(|p| (p.0 - xm) * (p.0 - xm)).sum::<f64>() / nf;
    let ssym = pairs.iter().map(|p| (p.1 - ym) * (p.1 - ym)).sum::<f64>() / nf;
    let ssxym = pairs.iter().map(|p| (p.0 - xm) * (p.1 - ym)).sum::<f64>() / nf;
    let r = if ssxm == 0.0 || ssym == 0.0 {
        if ssxym == 0.0 { f64::NAN } else { 0.0 }
    } else {
        (ssxym / (ssxm * ssym).sqrt()).clamp(-1.0, 1.0)
    };
    let slope = ssxym / ssxm;
    let intercept = ym - slope * xm;
    let (pvalue, stderr, intercept_stderr) = if pairs.len() == 2 {
        (if pairs[0].1 == pairs[1].1 { 1.0 } else { 0.0 }, 0.0, 0.0)
    } else {
        let df = nf - 2.0;
        const TINY: f64 = 1e-20;
        let t = r * (df / ((1.0 - r + TINY) * (1.0 + r + TINY))).sqrt();
        let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
        let p = if t.is_nan() {
            f64::NAN
        } else {
            (2.0 * dist.sf(t.abs())).min(1.0)
        };
        let se = ((1.0 - r * r) * ssym / ssxm / df).sqrt();
        (p, se, se * (ssxm + xm * xm).sqrt())
    };
    Ok(Ols {
        slope,
        intercept,
        rvalue: r,
        pvalue,
        stderr,
        intercept_stderr,
    })
}
