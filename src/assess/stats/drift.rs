//! Whether a series has drifted from its own past, judged the way its data behave: the latest
//! points (the *judged window*, by default the last 12) against a *baseline* of the points before
//! them, on the seasonally adjusted series where the season is real, with EWMA limits widened for
//! lag-1 autocorrelation where it is real.
//!
//! Why: XmR rules read every seasonal peak and every autocorrelated wander as a special cause
//! (a stable seasonal series got `watch` 39 % of the time, an AR(1) φ = 0.5 series 59 %), and
//! miss small sustained shifts. The pieces, each from the literature:
//!
//! - **Season**: the whole series fitted by least squares as a line, a step at the judged
//!   window (so a recent change does not leak into the months) and one level per calendar month
//!   (additive seasonal indices; at least two points per month), the months' levels tested with
//!   the nested-model F test against the same model without them (p < 0.10: a missed season
//!   costs more power than a spurious one). Where real, every point is adjusted by its month's
//!   index.
//! - **Autocorrelation**: the lag-1 autocorrelation r₁ of the (adjusted) baseline around its
//!   least-squares line, bias-corrected as φ = r₁ + (1 + 4 r₁)/n (Kendall 1954) and clamped to
//!   [0, 0.9]; the baseline's sample variance, biased low by 2φ/((n − 1)(1 − φ)) under
//!   autocorrelation, is corrected for it.
//! - **EWMA** (Roberts 1959; Lucas & Saccucci 1990): zₜ = λxₜ + (1 − λ)zₜ₋₁ from the baseline
//!   mean, with λ = 0.2 and L = 2.962, which gives an in-control average run length of 500
//!   (Montgomery, *Introduction to Statistical Quality Control*, table 9.11). The limits are
//!   μ₀ ± L σ₀ √(λ/(2 − λ) · c + m), σ₀ the baseline's standard deviation (with a season: the
//!   season model's residual one), c = (1 + φ(1 − λ))/(1 − φ(1 − λ)) the variance inflation of an EWMA of an AR(1)
//!   process (1 without autocorrelation), and m = (1 + φ)/((1 − φ) n) the variance of the
//!   baseline mean of n points, itself an estimate.
//! - **Shewhart**: a judged point beyond μ₀ ± 3σ₀√(1 + m).

use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::spc::Direction;

/// The EWMA design and the split of a series into baseline and judged window.
#[derive(Debug, Clone, Copy)]
pub struct DriftOptions {
    pub lambda: f64,
    pub l: f64,
    /// Judged points at the end of the series.
    pub window: usize,
    /// The fewest baseline points a reading needs.
    pub min_baseline: usize,
    /// The season is used when its F test's p value is below this.
    pub season_p: f64,
    /// The EWMA limit multiple for `watch` (narrower than `l`, which is for `act`).
    pub watch_l: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            lambda: 0.2,
            l: 2.962,
            window: 12,
            min_baseline: 12,
            season_p: 0.10,
            watch_l: 2.5,
        }
    }
}

/// Seasonal indices by calendar month (0 = January), and the strength of the season.
#[derive(Debug, Clone)]
pub struct Season {
    pub indices: [f64; 12],
    pub f: f64,
    pub p: f64,
    /// The residual standard deviation of the season model (n − 14 degrees of freedom): the
    /// spread once trend, step and season are taken out.
    pub residual_sd: f64,
}

/// What the drift reading found for one series.
#[derive(Debug, Clone)]
pub struct DriftReading {
    /// Index (in the series) of the first judged point.
    pub judged_from: usize,
    /// The season, when it was real and the series was adjusted for it.
    pub season: Option<Season>,
    /// The autocorrelation used for the EWMA limits (0 when not significant).
    pub phi: f64,
    /// The lag-1 autocorrelation measured in the baseline.
    pub r1: f64,
    /// Indices of judged points where the EWMA or the point itself lies beyond its limit on the
    /// deteriorating side.
    pub alarms: Vec<usize>,
    /// The subset of `alarms` raised by the EWMA.
    pub ewma_alarms: Vec<usize>,
    /// Judged points where the EWMA lies beyond the narrower watch limit (L = `watch_l`) on the
    /// worse side, or that are alarms.
    pub watch_alarms: Vec<usize>,
}

impl DriftReading {
    /// True when the series is on the worse side now: its latest present point is an alarm, or
    /// an earlier point of the window was and the latest is still beyond the watch limit (a
    /// shift that has stayed).
    pub fn latest_alarm(&self, values: &[Option<f64>]) -> bool {
        let Some(latest) = values.iter().rposition(Option::is_some) else {
            return false;
        };
        self.alarms.contains(&latest)
            || (!self.alarms.is_empty() && self.watch_alarms.contains(&latest))
    }

    /// True when the latest present point is beyond the watch limit (but not an alarm).
    pub fn latest_watch(&self, values: &[Option<f64>]) -> bool {
        let latest = values.iter().rposition(Option::is_some);
        latest.is_some_and(|i| self.watch_alarms.contains(&i))
    }
}

/// Reads `values` (in time order; `month_of_year[i]` is point i's calendar month 0–11 for a
/// monthly series, or `None` for other grains). `improvement` is the better direction:
/// alarms are raised on the other side (never for a neutral indicator). `None` when the series has
/// too few points for a baseline and a window.
pub fn drift(
    values: &[Option<f64>],
    month_of_year: Option<&[u32]>,
    improvement: Direction,
    opts: &DriftOptions,
) -> Option<DriftReading> {
    let present: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_some()).collect();
    if present.len() < opts.min_baseline + opts.window {
        return None;
    }
    let judged_from = present[present.len() - opts.window];
    let baseline: Vec<usize> = present
        .iter()
        .copied()
        .filter(|&i| i < judged_from)
        .collect();
    let y = |i: usize| values[i].expect("present");

    // Season: every point by calendar month, as (time, in the judged window, value).
    let season = month_of_year.and_then(|months| {
        let groups: Vec<Vec<Point>> = (0..12u32)
            .map(|m| {
                present
                    .iter()
                    .filter(|&&i| months[i] == m)
                    .map(|&i| Point {
                        t: i as f64,
                        w: if i >= judged_from { 1.0 } else { 0.0 },
                        y: y(i),
                    })
                    .collect()
            })
            .collect();
        season_test(&groups, opts.season_p)
    });
    let adjusted = |i: usize| match (&season, month_of_year) {
        (Some(s), Some(months)) => y(i) - s.indices[months[i] as usize],
        _ => y(i),
    };

    let base: Vec<f64> = baseline.iter().map(|&i| adjusted(i)).collect();
    let n = base.len() as f64;
    let mean = base.iter().sum::<f64>() / n;
    // The spread a point has around the baseline mean: the baseline's standard deviation, or
    // with a season the season model's residual one (its indices come from every point, the
    // judged ones too, with the step keeping a change out of them).
    let sd = match &season {
        Some(s) => s.residual_sd,
        None => (base.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    };
    // Autocorrelation of the (adjusted) baseline around its line: a trend is not
    // autocorrelation. The judged window is left out: a recent change would look like it.
    let points: Vec<Point> = baseline
        .iter()
        .zip(&base)
        .map(|(&i, &x)| Point {
            t: i as f64,
            w: 0.0,
            y: x,
        })
        .collect();
    let (b, _, _) = regress_within(&[points.as_slice()]);
    let centre = points.iter().map(|p| p.y - b * p.t).sum::<f64>() / n;
    let detrended: Vec<f64> = points.iter().map(|p| p.y - b * p.t - centre).collect();
    let r1 = lag1(&detrended);
    // The bias-corrected estimate whenever it is positive: a real φ = 0.5 often fails a
    // significance test on two years of months, and treating it as 0 would halve the limits.
    let phi = (r1 + (1.0 + 4.0 * r1) / n).clamp(0.0, 0.9);
    // A sample variance of autocorrelated points is biased low, by 2φ/((n − 1)(1 − φ)) of σ².
    let sd = sd
        / (1.0 - 2.0 * phi / ((n - 1.0) * (1.0 - phi)))
            .max(0.5)
            .sqrt();
    let (lambda, l) = (opts.lambda, opts.l);
    // The baseline mean is itself an estimate (its variance σ²(1 + φ)/((1 − φ)n) for an AR(1)
    // process): both limits are widened by it, so a short baseline does not raise false alarms.
    let mean_error = (1.0 + phi) / (1.0 - phi) / n;
    let half_width = ewma_half_width(sd, lambda, l, phi, mean_error);
    let point_limit = 3.0 * sd * (1.0 + mean_error).sqrt();

    // A neutral indicator has no worse side: like the XmR chart's "neither", nothing is alarmed.
    let worse = |d: f64| match improvement {
        Direction::Increase => d < 0.0,
        Direction::Decrease => d > 0.0,
        Direction::Neutral => false,
    };
    let (mut alarms, mut ewma_alarms, mut watch_alarms) = (Vec::new(), Vec::new(), Vec::new());
    let watch_width = half_width * opts.watch_l / l;
    let mut z = mean;
    let usable = sd.is_finite() && sd > 0.0;
    for &i in present.iter().filter(|&&i| i >= judged_from) {
        let x = adjusted(i);
        z = lambda * x + (1.0 - lambda) * z;
        if !usable {
            continue;
        }
        let ewma_out = (z - mean).abs() > half_width && worse(z - mean);
        let point_out = (x - mean).abs() > point_limit && worse(x - mean);
        if ewma_out {
            ewma_alarms.push(i);
        }
        if ewma_out || point_out {
            alarms.push(i);
        }
        if ewma_out || point_out || ((z - mean).abs() > watch_width && worse(z - mean)) {
            watch_alarms.push(i);
        }
    }
    Some(DriftReading {
        judged_from,
        season,
        phi,
        r1,
        alarms,
        ewma_alarms,
        watch_alarms,
    })
}

/// Half-width of EWMA limits: L σ √(λ/(2 − λ) · c + m), with c = (1 + φ(1 − λ))/(1 − φ(1 − λ))
/// the asymptotic variance inflation of an EWMA of an AR(1) process and m the variance (in σ²)
/// of the estimated centre line (0 when it is known).
pub fn ewma_half_width(sd: f64, lambda: f64, l: f64, phi: f64, mean_error: f64) -> f64 {
    let inflation = (1.0 + phi * (1.0 - lambda)) / (1.0 - phi * (1.0 - lambda));
    l * sd * (lambda / (2.0 - lambda) * inflation + mean_error).sqrt()
}

/// Lag-1 autocorrelation around the mean.
fn lag1(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 3 {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / n as f64;
    let den: f64 = x.iter().map(|v| (v - m).powi(2)).sum();
    if den <= 0.0 {
        return 0.0;
    }
    let num: f64 = x.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum();
    num / den
}

/// One point for the season model: time, whether it is in the judged window, value.
#[derive(Debug, Clone, Copy)]
struct Point {
    t: f64,
    w: f64,
    y: f64,
}

/// Least squares of `y` on `t` and `w` after subtracting each group's means (one group: a
/// plain regression with an intercept): the two slopes and the residual sum of squares.
fn regress_within(groups: &[&[Point]]) -> (f64, f64, f64) {
    let mut m = [[0.0; 2]; 2];
    let mut v = [0.0; 2];
    let centred: Vec<Vec<(f64, f64, f64)>> = groups
        .iter()
        .map(|g| {
            let n = g.len() as f64;
            let (mt, mw, my) = g.iter().fold((0.0, 0.0, 0.0), |a, p| {
                (a.0 + p.t / n, a.1 + p.w / n, a.2 + p.y / n)
            });
            g.iter().map(|p| (p.t - mt, p.w - mw, p.y - my)).collect()
        })
        .collect();
    for (t, w, y) in centred.iter().flatten() {
        m[0][0] += t * t;
        m[0][1] += t * w;
        m[1][1] += w * w;
        v[0] += t * y;
        v[1] += w * y;
    }
    m[1][0] = m[0][1];
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let (b, d) = if det.abs() > 1e-12 {
        (
            (v[0] * m[1][1] - v[1] * m[0][1]) / det,
            (m[0][0] * v[1] - m[1][0] * v[0]) / det,
        )
    } else if m[0][0] > 0.0 {
        (v[0] / m[0][0], 0.0)
    } else {
        (0.0, 0.0)
    };
    let rss = centred
        .iter()
        .flatten()
        .map(|(t, w, y)| (y - b * t - d * w).powi(2))
        .sum();
    (b, d, rss)
}

/// The season of `groups` (per calendar month, its points): a line plus a step for the judged
/// window plus one level per month, fitted by least squares over all points (the step keeps a
/// recent change out of the months' levels), and the F test of the months' levels against the
/// same model without them. `None` unless every month has two points and p < `p_max`.
fn season_test(groups: &[Vec<Point>], p_max: f64) -> Option<Season> {
    if groups.len() != 12 || groups.iter().any(|g| g.len() < 2) {
        return None;
    }
    let slices: Vec<&[Point]> = groups.iter().map(Vec::as_slice).collect();
    let (b, d, rss_full) = regress_within(&slices);
    let all: Vec<Point> = groups.iter().flatten().copied().collect();
    let (_, _, rss_reduced) = regress_within(&[all.as_slice()]);
    let n = all.len() as f64;
    let (df1, df2) = (11.0, n - 14.0);
    if rss_full <= 0.0 || df2 < 1.0 {
        return None;
    }
    let f = ((rss_reduced - rss_full) / df1) / (rss_full / df2);
    let p = FisherSnedecor::new(df1, df2).ok()?.sf(f);
    if p >= p_max {
        return None;
    }
    let levels: Vec<f64> = groups
        .iter()
        .map(|g| {
            let k = g.len() as f64;
            g.iter().map(|p| p.y - b * p.t - d * p.w).sum::<f64>() / k
        })
        .collect();
    let centre = levels.iter().sum::<f64>() / 12.0;
    let mut indices = [0.0; 12];
    for (m, level) in levels.iter().enumerate() {
        indices[m] = level - centre;
    }
    Some(Season {
        indices,
        f,
        p,
        residual_sd: (rss_full / df2).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pure_seasonal_wave_is_found_and_removed() {
        // Three years of a ±2 wave with a tiny irregular part: the season is real, and the
        // adjusted judged year sits on the baseline mean, so nothing is alarmed.
        let months: Vec<u32> = (0..36).map(|t| t % 12).collect();
        let values: Vec<Option<f64>> = (0..36)
            .map(|t| {
                let wave = 2.0 * (2.0 * std::f64::consts::PI * (t % 12) as f64 / 12.0).sin();
                Some(10.0 + wave + 0.01 * ((t * 7 % 5) as f64 - 2.0))
            })
            .collect();
        let r = drift(
            &values,
            Some(&months),
            Direction::Increase,
            &DriftOptions::default(),
        )
        .unwrap();
        let s = r.season.expect("the season is real");
        assert!(s.p < 1e-6, "{}", s.p);
        assert!((s.indices[3] - 2.0).abs() < 0.05, "{:?}", s.indices);
        assert!(r.alarms.is_empty(), "{:?}", r.alarms);
        assert_eq!(r.judged_from, 24);
    }

    #[test]
    fn a_step_down_in_the_judged_window_is_alarmed_only_on_the_worse_side() {
        // Baseline alternating 9 and 11 (mean 10, sd ≈ 1.02); the last 12 points at 7.
        let mut values: Vec<Option<f64>> = (0..24)
            .map(|t| Some(if t % 2 == 0 { 9.0 } else { 11.0 }))
            .collect();
        values.extend((0..12).map(|_| Some(7.0)));
        let opts = DriftOptions::default();
        let down_is_worse = drift(&values, None, Direction::Increase, &opts).unwrap();
        // z after k points at 7: 10 − 3(1 − 0.8^k); half-width 2.962 · 1.0215 · √(0.2/1.8 + 1/24)
        // ≈ 1.183: beyond from k = 3 (z = 8.536); the first point is within 3 sd (3 < 3.13).
        assert_eq!(down_is_worse.ewma_alarms.first(), Some(&26));
        // The watch limit (2.5 instead of 2.962: ≈ 0.998) is crossed from k = 2 (z = 8.92).
        assert_eq!(down_is_worse.watch_alarms.first(), Some(&25));
        assert!(down_is_worse.latest_alarm(&values));
        let up_is_worse = drift(&values, None, Direction::Decrease, &opts).unwrap();
        assert!(up_is_worse.alarms.is_empty());
    }
}
