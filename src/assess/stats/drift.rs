//! Whether a series has drifted from its own past, judged the way its data behave: the latest
//! points (the *judged window*, by default the last 12) against a *baseline* of the points before
//! them, on the seasonally adjusted series where the season is real, with EWMA limits widened for
//! lag-1 autocorrelation where it is real.
//!
//! Why: XmR rules read every seasonal peak and every autocorrelated wander as a special cause
//! (a stable seasonal series got `watch` 39 % of the time, an AR(1) φ = 0.5 series 59 %), and
//! miss small sustained shifts. The pieces, each from the literature:
//!
//! - **Season** (with two years of baseline at least): learned from the baseline only, so a
//!   recent change cannot leak into it. Two shapes beside a least-squares line — a yearly wave
//!   (first harmonic, 2 parameters) and one level per calendar month (11) — each tested with the
//!   nested-model F test against the line alone; the one with the smaller p is used when
//!   p < 0.10 (a missed season costs more power than a spurious one). The wave's F is deflated
//!   for autocorrelated noise, which wanders like a slow wave (Bartlett's variance inflation).
//!   Every point is then adjusted by its month's index.
//! - **Spread** σ₀: the baseline's residual standard deviation around its line (a slow climb
//!   inside the baseline is not noise), or with a season the spread of a point around a season
//!   learned without it (the wave: residual sd widened by the index's estimation error;
//!   monthly levels: leave-one-out residuals).
//! - **Autocorrelation**: the lag-1 autocorrelation r₁ of the (adjusted) baseline around its
//!   line, bias-corrected for the fitted line (E[r₁] ≈ φ − (2 + 5.5φ)/n) and clamped to
//!   [0, 0.9]; the sample variance, biased low by 2φ/((n − 1)(1 − φ)) under autocorrelation, is
//!   corrected for it. The *act* limits use φ measured on all points (around a line with a step
//!   at the window) 0.8 standard errors up, since an underestimated φ is what raises false
//!   alarms on autocorrelated series.
//! - **EWMA** (Roberts 1959; Lucas & Saccucci 1990): zₜ = λxₜ + (1 − λ)zₜ₋₁ from the baseline
//!   mean, with λ = 0.2 and L = 2.962, which gives an in-control average run length of 500
//!   (Montgomery, *Introduction to Statistical Quality Control*, table 9.11). The limits are
//!   μ₀ ± L σ₀ √(λ/(2 − λ) · c + m), c = (1 + φ(1 − λ))/(1 − φ(1 − λ)) the variance inflation
//!   of an EWMA of an AR(1) process (1 without autocorrelation), and m = (1 + φ)/((1 − φ) n)
//!   the variance of the baseline mean of n points, itself an estimate. Beyond them: *act*.
//!   The *watch* limits use L = 2.4 and the baseline's φ.
//! - **A single point** beyond μ₀ ± 3.5σ₀√(1 + m) is watched, not acted on: one month is not a
//!   shift (the XmR chart still marks it as a special cause).
//!
//! The operating characteristics (false alarms and detection on simulated series with known
//! truth) are measured by `cargo bench --bench signals` and asserted in
//! `tests/it/assess_signals.rs`.

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
    /// A season with a p value below this is taken as real for the act limits (see
    /// [`act_phi`]); a weaker one may be autocorrelated wander.
    pub strong_season_p: f64,
    /// The EWMA limit multiple for `watch` (narrower than `l`, which is for `act`).
    pub watch_l: f64,
    /// The limit of a single judged point, in σ: beyond it the series is watched.
    pub point_l: f64,
    /// `act` limits use φ plus this many standard errors of its estimate: on three years of
    /// months φ is uncertain (±0.15 at φ = 0.5), and an underestimate narrows the limits.
    /// (0.8, with L = 2.962 and `watch_l` = 2.4, from the operating characteristics measured
    /// by `cargo bench --bench signals`: the bar with the widest margins found.)
    pub act_phi_margin: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            lambda: 0.2,
            l: 2.962,
            window: 12,
            min_baseline: 12,
            season_p: 0.10,
            strong_season_p: 0.001,
            watch_l: 2.4,
            point_l: 3.5,
            act_phi_margin: 0.8,
        }
    }
}

/// The shape a season was fitted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeasonShape {
    /// One smooth wave a year (first harmonic).
    Wave,
    /// One level per calendar month.
    Monthly,
}

/// Seasonal indices by calendar month (0 = January), and the strength of the season.
#[derive(Debug, Clone)]
pub struct Season {
    pub shape: SeasonShape,
    pub indices: [f64; 12],
    pub f: f64,
    pub p: f64,
    /// The spread of a judged point around the season: for monthly levels the root mean square
    /// of the model's leave-one-out (PRESS) residuals on the baseline (the in-sample spread
    /// understates it: a month's level from two points fits each of them halfway, most of all
    /// where a season was found by chance); for a wave the residual standard deviation widened
    /// by the error of the estimated index.
    pub prediction_sd: f64,
}

/// What the drift reading found for one series.
#[derive(Debug, Clone)]
pub struct DriftReading {
    /// Index (in the series) of the first judged point.
    pub judged_from: usize,
    /// The season, when it was real and the series was adjusted for it.
    pub season: Option<Season>,
    /// The baseline's mean (of the seasonally adjusted values): with the season's index, what a
    /// month is expected to be when nothing has changed.
    pub centre: f64,
    /// The autocorrelation used for the watch limits: the baseline's bias-corrected φ.
    pub phi: f64,
    /// The lag-1 autocorrelation measured in the baseline.
    pub r1: f64,
    /// The autocorrelation used for the act limits (see [`act_phi`]).
    pub phi_act: f64,
    /// Indices of judged points where the EWMA lies beyond its act limit on the deteriorating
    /// side.
    pub alarms: Vec<usize>,
    /// Judged points where the EWMA lies beyond the narrower watch limit (L = `watch_l`) or the
    /// point itself beyond `point_l` σ on the worse side, or that are alarms.
    pub watch_alarms: Vec<usize>,
}

impl DriftReading {
    /// True when the series is on the worse side now: its latest present point is an alarm.
    /// (An earlier alarm with the latest point only at the watch level is a watch: counting it
    /// as act raised the acts on stable autocorrelated series more than on real shifts.)
    pub fn latest_alarm(&self, values: &[Option<f64>]) -> bool {
        let latest = values.iter().rposition(Option::is_some);
        latest.is_some_and(|i| self.alarms.contains(&i))
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

    let season = baseline_season(&baseline, &y, month_of_year, opts.season_p);
    let adjusted = |i: usize| match (&season, month_of_year) {
        (Some(s), Some(months)) => y(i) - s.indices[months[i] as usize],
        _ => y(i),
    };

    let at = |i: usize, y: f64| Point { t: i as f64, y };
    let points: Vec<Point> = baseline.iter().map(|&i| at(i, adjusted(i))).collect();
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.y).sum::<f64>() / n;
    // The spread of a point: around the baseline's line (a slow climb inside the baseline is
    // not noise; around the mean it widened the limits until a slow trend went unseen), or with
    // a season around a season learned without the point.
    let sd = match &season {
        Some(s) => s.prediction_sd,
        None => (regress_within(&[&points]).1 / (n - 2.0)).sqrt(),
    };
    // Autocorrelation of the (adjusted) baseline around its line: a trend is not
    // autocorrelation. The judged window is left out: a recent change would look like it.
    let (r1, phi) = lag1_phi(&[&points]);
    // A sample variance of autocorrelated points is biased low, by 2φ/((n − 1)(1 − φ)) of σ².
    let sd = sd
        / (1.0 - 2.0 * phi / ((n - 1.0) * (1.0 - phi)))
            .max(0.5)
            .sqrt();
    let window: Vec<Point> = present
        .iter()
        .filter(|&&i| i >= judged_from)
        .map(|&i| at(i, adjusted(i)))
        .collect();
    // A season this strong is not autocorrelated wander fitted by chance.
    let unadjusted: Option<Vec<Point>> = season
        .as_ref()
        .filter(|s| s.p >= opts.strong_season_p)
        .map(|_| baseline.iter().map(|&i| at(i, y(i))).collect());
    let phi_act = act_phi(&points, &window, unadjusted.as_deref(), opts);
    let (lambda, l) = (opts.lambda, opts.l);
    // The baseline mean is itself an estimate (its variance σ²(1 + φ)/((1 − φ)n) for an AR(1)
    // process): both limits are widened by it, so a short baseline does not raise false alarms.
    let mean_error = |phi: f64| (1.0 + phi) / (1.0 - phi) / n;
    let half_width = ewma_half_width(sd, lambda, l, phi_act, mean_error(phi_act));
    let watch_width = ewma_half_width(sd, lambda, opts.watch_l, phi, mean_error(phi));
    let point_limit = opts.point_l * sd * (1.0 + mean_error(phi_act)).sqrt();

    let limits = Limits {
        mean,
        lambda,
        act: half_width,
        watch: watch_width,
        point: point_limit,
    };
    let (alarms, watch_alarms) = if sd.is_finite() && sd > 0.0 {
        limits.alarms(&window, improvement)
    } else {
        (Vec::new(), Vec::new())
    };
    Some(DriftReading {
        judged_from,
        season,
        centre: mean,
        phi,
        r1,
        phi_act,
        alarms,
        watch_alarms,
    })
}

/// The season of the baseline's points by calendar month (`y(i)` is point i's value), when the
/// series is monthly and the baseline holds two years at least.
fn baseline_season(
    baseline: &[usize],
    y: &dyn Fn(usize) -> f64,
    month_of_year: Option<&[u32]>,
    season_p: f64,
) -> Option<Season> {
    let months = month_of_year.filter(|_| baseline.len() >= 24)?;
    let groups: Vec<Vec<Point>> = (0..12u32)
        .map(|m| {
            baseline
                .iter()
                .filter(|&&i| months[i] == m)
                .map(|&i| Point {
                    t: i as f64,
                    y: y(i),
                })
                .collect()
        })
        .collect();
    season_test(&groups, season_p)
}

/// The EWMA's centre and smoothing, and the half-widths of its act and watch limits and of the
/// single-point limit around the centre.
struct Limits {
    mean: f64,
    lambda: f64,
    act: f64,
    watch: f64,
    point: f64,
}

impl Limits {
    /// The judged points (`t` is the index in the series) beyond the act limit, and those
    /// worth watching: beyond the watch limit, a single point beyond the point limit, or an
    /// alarm. Only deviations to the worse side of `improvement` count.
    fn alarms(&self, window: &[Point], improvement: Direction) -> (Vec<usize>, Vec<usize>) {
        // A neutral indicator has no worse side: like the XmR chart's "neither", nothing is
        // alarmed.
        let worse = |d: f64| match improvement {
            Direction::Increase => d < 0.0,
            Direction::Decrease => d > 0.0,
            Direction::Neutral => false,
        };
        let (mean, lambda) = (self.mean, self.lambda);
        let (mut alarms, mut watch_alarms) = (Vec::new(), Vec::new());
        let mut z = mean;
        for point in window {
            let (i, x) = (point.t as usize, point.y);
            z = lambda * x + (1.0 - lambda) * z;
            let ewma_out = (z - mean).abs() > self.act && worse(z - mean);
            // A single point far out is worth watching, not acting on: one month is not a
            // shift, and in a skewed small-unit share it is the tail (the XmR chart still marks
            // it).
            let point_out = (x - mean).abs() > self.point && worse(x - mean);
            if ewma_out {
                alarms.push(i);
            }
            if ewma_out || point_out || ((z - mean).abs() > self.watch && worse(z - mean)) {
                watch_alarms.push(i);
            }
        }
        (alarms, watch_alarms)
    }
}

/// The autocorrelation the `act` limits are built with: φ measured on every point (baseline and
/// judged window, around a line with a step at the window, so a real change is not read as
/// autocorrelation: 36 points instead of 24), `act_phi_margin` standard errors up. With a weak
/// season (`unadjusted` baseline given), φ of the unadjusted baseline too, and the larger
/// taken: a wave fitted to two years soaks up autocorrelated wander (a stable AR(1) series
/// "has" a wave one time in four), and φ after adjusting then understates it. An
/// underestimated φ is what made stable AR(1) series act 2.6 % of the time; `watch` keeps the
/// baseline's point estimate, so detection is not lost.
fn act_phi(
    baseline: &[Point],
    window: &[Point],
    unadjusted: Option<&[Point]>,
    opts: &DriftOptions,
) -> f64 {
    let mut phi = lag1_phi(&[baseline, window]).1;
    if let Some(raw) = unadjusted {
        phi = phi.max(lag1_phi(&[raw]).1);
    }
    let n = (baseline.len() + window.len()) as f64;
    (phi + opts.act_phi_margin * ((1.0 - phi * phi) / n).sqrt()).min(0.9)
}

/// Half-width of EWMA limits: L σ √(λ/(2 − λ) · c + m), with c = (1 + φ(1 − λ))/(1 − φ(1 − λ))
/// the asymptotic variance inflation of an EWMA of an AR(1) process and m the variance (in σ²)
/// of the estimated centre line (0 when it is known).
pub fn ewma_half_width(sd: f64, lambda: f64, l: f64, phi: f64, mean_error: f64) -> f64 {
    let inflation = (1.0 + phi * (1.0 - lambda)) / (1.0 - phi * (1.0 - lambda));
    l * sd * (lambda / (2.0 - lambda) * inflation + mean_error).sqrt()
}

/// The lag-1 autocorrelation r₁ of the points of `groups` around a common line (one intercept
/// per group: a trend, or a step between groups, is not autocorrelation), and φ: r₁
/// bias-corrected for the fitted model and clamped to [0, 0.9]. The corrected estimate is used
/// whenever it is positive: a real φ = 0.5 often fails a significance test on two years of
/// months, and treating it as 0 would halve the limits.
fn lag1_phi(groups: &[&[Point]]) -> (f64, f64) {
    let (b, _) = regress_within(groups);
    let residuals: Vec<(f64, f64)> = groups
        .iter()
        .flat_map(|g| {
            let centre = g.iter().map(|p| p.y - b * p.t).sum::<f64>() / g.len() as f64;
            g.iter().map(move |p| (p.t, p.y - b * p.t - centre))
        })
        .collect();
    let n = residuals.len() as f64;
    let r1 = lag1_in_time(residuals);
    // E[r₁] ≈ φ − (k + (2.5 + 1.5k)φ)/n for residuals of a model with k parameters: Kendall's
    // (1 + 4φ)/n around a mean, (2 + 5.5φ)/n around a line and (3 + 7φ)/n around a line with
    // a step (the last two measured by simulation; the unit test below checks them).
    let k = 1.0 + groups.len() as f64;
    let phi = (r1 + k / n) / (1.0 - (2.5 + 1.5 * k) / n);
    (r1, phi.clamp(0.0, 0.9))
}

/// Lag-1 autocorrelation of `(time, value)` pairs taken in time order.
fn lag1_in_time(mut points: Vec<(f64, f64)>) -> f64 {
    points.sort_by(|x, y| x.0.total_cmp(&y.0));
    lag1(&points.iter().map(|p| p.1).collect::<Vec<_>>())
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

/// One point for the season model: time, value.
#[derive(Debug, Clone, Copy)]
struct Point {
    t: f64,
    y: f64,
}

/// Least squares of `y` on `t` after subtracting each group's means (one group: a plain
/// regression with an intercept; one group per calendar month: a line beside monthly levels):
/// the slope and the residual sum of squares.
fn regress_within(groups: &[&[Point]]) -> (f64, f64) {
    let centred: Vec<(f64, f64)> = groups
        .iter()
        .flat_map(|g| {
            let n = g.len() as f64;
            let (mt, my) = g
                .iter()
                .fold((0.0, 0.0), |a, p| (a.0 + p.t / n, a.1 + p.y / n));
            g.iter().map(move |p| (p.t - mt, p.y - my))
        })
        .collect();
    let tt: f64 = centred.iter().map(|(t, _)| t * t).sum();
    let ty: f64 = centred.iter().map(|(t, y)| t * y).sum();
    let b = if tt > 0.0 { ty / tt } else { 0.0 };
    let rss = centred.iter().map(|(t, y)| (y - b * t).powi(2)).sum();
    (b, rss)
}

/// The season of the baseline's `groups` (per calendar month, its points), `None` unless
/// p < `p_max`. The season is learned from the past only, so a recent change cannot leak into it
/// (a 3 sd drop over the last six months fits a half-year wave well). Two shapes are fitted
/// beside a line, each tested with the nested-model F test against the line alone; the one with
/// the smaller p is used:
/// - a **yearly wave**, the first harmonic of the calendar year (2 parameters): far more power
///   for a smooth season such as sick leave's winter peak and summer dip;
/// - **monthly levels**, one per calendar month (11 parameters, at least two points each): any
///   shape, e.g. building permits in spring or a library closed in July.
fn season_test(groups: &[Vec<Point>], p_max: f64) -> Option<Season> {
    if groups.len() != 12 {
        return None;
    }
    [monthly_season(groups), wave_season(groups)]
        .into_iter()
        .flatten()
        .filter(|s| s.p < p_max)
        .min_by(|a, b| a.p.total_cmp(&b.p))
}

/// The F test of a season with `df1` parameters: its model's and the line's residual sums of
/// squares over `n` points, the season model having `params` in all.
fn f_test(rss_line: f64, rss_season: f64, df1: f64, n: f64, params: f64) -> Option<(f64, f64)> {
    let df2 = n - params;
    if rss_season <= 0.0 || df2 < 1.0 {
        return None;
    }
    let f = ((rss_line - rss_season) / df1) / (rss_season / df2);
    let p = FisherSnedecor::new(df1, df2).ok()?.sf(f);
    Some((f, p))
}

/// Monthly levels beside a line (13 parameters).
fn monthly_season(groups: &[Vec<Point>]) -> Option<Season> {
    if groups.iter().any(|g| g.len() < 2) {
        return None;
    }
    let slices: Vec<&[Point]> = groups.iter().map(Vec::as_slice).collect();
    let (b, rss_season) = regress_within(&slices);
    let all: Vec<Point> = groups.iter().flatten().copied().collect();
    let (_, rss_line) = regress_within(&[all.as_slice()]);
    let n = all.len() as f64;
    let (f, p) = f_test(rss_line, rss_season, 11.0, n, 13.0)?;
    let levels: Vec<f64> = groups
        .iter()
        .map(|g| g.iter().map(|p| p.y - b * p.t).sum::<f64>() / g.len() as f64)
        .collect();
    let centre = levels.iter().sum::<f64>() / 12.0;
    let mut indices = [0.0; 12];
    for (m, level) in levels.iter().enumerate() {
        indices[m] = level - centre;
    }
    // Leave-one-out residuals e/(1 − h), h = 1/k + (t − t̄ₘ)²/Σ(t − t̄ₘ)² (within months).
    let stt: f64 = groups
        .iter()
        .map(|g| {
            let mt = g.iter().map(|p| p.t).sum::<f64>() / g.len() as f64;
            g.iter().map(|p| (p.t - mt).powi(2)).sum::<f64>()
        })
        .sum();
    let press: f64 = groups
        .iter()
        .zip(&levels)
        .map(|(g, level)| {
            let k = g.len() as f64;
            let mt = g.iter().map(|p| p.t).sum::<f64>() / k;
            g.iter()
                .map(|p| {
                    let h = 1.0 / k
                        + if stt > 0.0 {
                            (p.t - mt).powi(2) / stt
                        } else {
                            0.0
                        };
                    ((p.y - b * p.t - level) / (1.0 - h)).powi(2)
                })
                .sum::<f64>()
        })
        .sum();
    Some(Season {
        shape: SeasonShape::Monthly,
        indices,
        f,
        p,
        prediction_sd: (press / n).sqrt(),
    })
}

/// A yearly wave a·cos(2πm/12) + b·sin(2πm/12) beside a line (4 parameters), fitted by
/// Frisch–Waugh–Lovell: the value and both wave columns are freed of the line, then the value's
/// remainder is regressed on the waves' remainders.
fn wave_season(groups: &[Vec<Point>]) -> Option<Season> {
    let angle = |m: usize| 2.0 * std::f64::consts::PI * m as f64 / 12.0;
    let all: Vec<(usize, Point)> = groups
        .iter()
        .enumerate()
        .flat_map(|(m, g)| g.iter().map(move |p| (m, *p)))
        .collect();
    let n = all.len() as f64;
    let (mt, tt) = {
        let mt = all.iter().map(|(_, p)| p.t).sum::<f64>() / n;
        (mt, all.iter().map(|(_, p)| (p.t - mt).powi(2)).sum::<f64>())
    };
    let remainder = |value: &dyn Fn(usize, &Point) -> f64| -> Vec<f64> {
        let v: Vec<f64> = all.iter().map(|(m, p)| value(*m, p)).collect();
        let mv = v.iter().sum::<f64>() / n;
        let b = if tt > 0.0 {
            all.iter()
                .zip(&v)
                .map(|((_, p), v)| (p.t - mt) * (v - mv))
                .sum::<f64>()
                / tt
        } else {
            0.0
        };
        all.iter()
            .zip(&v)
            .map(|((_, p), v)| v - mv - b * (p.t - mt))
            .collect()
    };
    let ry = remainder(&|_, p| p.y);
    let rc = remainder(&|m, _| angle(m).cos());
    let rs = remainder(&|m, _| angle(m).sin());
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (cc, cs, ss) = (dot(&rc, &rc), dot(&rc, &rs), dot(&rs, &rs));
    let det = cc * ss - cs * cs;
    if det.abs() < 1e-9 {
        return None;
    }
    let (yc, ys) = (dot(&ry, &rc), dot(&ry, &rs));
    let a = (yc * ss - ys * cs) / det;
    let b = (cc * ys - cs * yc) / det;
    let rss_line = dot(&ry, &ry);
    let rss_season: f64 = ry
        .iter()
        .zip(rc.iter().zip(&rs))
        .map(|(y, (c, s))| (y - a * c - b * s).powi(2))
        .sum();
    // Autocorrelated noise wanders like a slow wave, and the F test takes its points as
    // independent: a stable AR(1) φ = 0.5 series "had" a season 40 % of the time. Where the
    // remainder is autocorrelated, F is deflated by the variance inflation of a regression
    // coefficient under AR(1) errors, (1 + φρ)/(1 − φρ) with ρ = cos(2π/12) the wave's own lag-1
    // autocorrelation (Bartlett 1935; the effective-sample-size correction).
    let r1 = lag1_in_time(
        all.iter()
            .zip(ry.iter().zip(rc.iter().zip(&rs)))
            .map(|((_, p), (y, (c, s)))| (p.t, y - a * c - b * s))
            .collect(),
    );
    // Kendall's lighter correction (1 + 4φ)/n on purpose: the one for a line and a wave,
    // (4 + 8.5φ)/n, removed more chance seasons but also real ones (the seasonal series with a
    // shift was caught 89 % instead of 91 %).
    let phi = (r1 + (1.0 + 4.0 * r1) / n).clamp(0.0, 0.9);
    let rho = angle(1).cos();
    let inflation = (1.0 + phi * rho) / (1.0 - phi * rho);
    let (f, _) = f_test(rss_line, rss_season, 2.0, n, 4.0)?;
    let f = f / inflation;
    let p = FisherSnedecor::new(2.0, n - 4.0).ok()?.sf(f);
    let mut indices = [0.0; 12];
    for (m, index) in indices.iter_mut().enumerate() {
        *index = a * angle(m).cos() + b * angle(m).sin();
    }
    // A judged point is adjusted by an estimated index: Var(a·c + b·s) = (c, s) M⁻¹ (c, s)ᵀ σ²,
    // M the cross products of the wave columns freed of the line, averaged over the months.
    // (Two parameters: little room for a season found by chance to fit the baseline too well,
    // which is why the monthly levels use leave-one-out residuals instead.)
    let index_error = (0..12)
        .map(|m| {
            let (c, s) = (angle(m).cos(), angle(m).sin());
            (c * c * ss - 2.0 * c * s * cs + s * s * cc) / det
        })
        .sum::<f64>()
        / 12.0;
    Some(Season {
        shape: SeasonShape::Wave,
        indices,
        f,
        p,
        prediction_sd: (rss_season / (n - 4.0) * (1.0 + index_error)).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drift reading of a monthly series starting in January, increase is better.
    fn monthly(values: &[Option<f64>]) -> DriftReading {
        let months: Vec<u32> = (0..values.len() as u32).map(|t| t % 12).collect();
        drift(
            values,
            Some(&months),
            Direction::Increase,
            &DriftOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_pure_seasonal_wave_is_found_and_removed() {
        // Three years of a ±2 wave with a tiny irregular part: the season is real, and the
        // adjusted judged year sits on the baseline mean, so nothing is alarmed.
        let values: Vec<Option<f64>> = (0..36)
            .map(|t| {
                let wave = 2.0 * (2.0 * std::f64::consts::PI * (t % 12) as f64 / 12.0).sin();
                Some(10.0 + wave + 0.01 * ((t * 7 % 5) as f64 - 2.0))
            })
            .collect();
        let r = monthly(&values);
        let s = r.season.expect("the season is real");
        assert_eq!(s.shape, SeasonShape::Wave, "a smooth season is a wave");
        assert!(s.p < 1e-6, "{}", s.p);
        assert!((s.indices[3] - 2.0).abs() < 0.05, "{:?}", s.indices);
        assert!(r.alarms.is_empty(), "{:?}", r.alarms);
        assert_eq!(r.judged_from, 24);
    }

    #[test]
    fn a_step_down_in_the_judged_window_is_alarmed_only_on_the_worse_side() {
        // Baseline alternating 9 and 11 (mean 10; around its line sd ≈ 1.042, r₁ ≈ −1 so
        // φ = 0); the last 12 points at 7.
        let mut values: Vec<Option<f64>> = (0..24)
            .map(|t| Some(if t % 2 == 0 { 9.0 } else { 11.0 }))
            .collect();
        values.extend((0..12).map(|_| Some(7.0)));
        let opts = DriftOptions::default();
        let down_is_worse = drift(&values, None, Direction::Increase, &opts).unwrap();
        // z after k points at 7: 10 − 3(1 − 0.8^k). Act limits take φ 0.8 standard errors up,
        // 0 + 0.8 √(1/36) ≈ 0.133: c = (1 + 0.107)/(1 − 0.107) ≈ 1.239, m = (1.133/0.867)/24 ≈
        // 0.0545, half-width 2.962 · 1.042 · √(0.2/1.8 · c + m) ≈ 1.353: beyond from k = 3
        // (z = 8.536, 1.464 below); k = 2 (8.92) is not.
        assert_eq!(down_is_worse.alarms.first(), Some(&26));
        // The watch limit (2.4, φ = 0: 2.4 · 1.042 · √(0.2/1.8 + 1/24) ≈ 0.977) is crossed from
        // k = 2 (z = 8.92); no single point is beyond 3.5 sd.
        assert_eq!(down_is_worse.watch_alarms.first(), Some(&25));
        assert!(down_is_worse.latest_alarm(&values));
        let up_is_worse = drift(&values, None, Direction::Decrease, &opts).unwrap();
        assert!(up_is_worse.alarms.is_empty());
    }

    #[test]
    fn a_library_closed_every_july_has_monthly_levels_not_a_wave() {
        // 100 activities a month (± a little), 20 in July: no smooth wave fits a one-month hole,
        // one level per month does. A July as low as usual is not alarmed; the index is −80
        // less the hole's share of the centre (−80 · 11/12 ≈ −73.3).
        let values: Vec<Option<f64>> = (0..48)
            .map(|t| {
                let level = if t % 12 == 6 { 20.0 } else { 100.0 };
                Some(level + ((t * 7 % 5) as f64 - 2.0))
            })
            .collect();
        let r = monthly(&values);
        let s = r.season.expect("the season is real");
        assert_eq!(s.shape, SeasonShape::Monthly);
        assert!((s.indices[6] + 73.3).abs() < 1.0, "{:?}", s.indices);
        assert!(r.alarms.is_empty() && r.watch_alarms.is_empty());
    }

    #[test]
    fn the_bias_corrected_phi_is_centred_on_the_true_phi() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        // AR(1) series of 24 points around a line and of 36 around a line with a step after 24
        // (the two models φ is measured with): the median estimate within 0.04 of the truth.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let normal = Normal::new(0.0, 1.0).unwrap();
        for (phi, n, step) in [(0.5, 24, false), (0.5, 36, true), (0.3, 36, true)] {
            let mut estimates: Vec<f64> = (0..4000)
                .map(|_| {
                    let mut x = normal.sample(&mut rng);
                    let points: Vec<Point> = (0..n)
                        .map(|t| {
                            if t > 0 {
                                x = phi * x + (1.0f64 - phi * phi).sqrt() * normal.sample(&mut rng);
                            }
                            Point {
                                t: t as f64,
                                y: 5.0 + 0.1 * t as f64 + x,
                            }
                        })
                        .collect();
                    if step {
                        lag1_phi(&[&points[..24], &points[24..]]).1
                    } else {
                        lag1_phi(&[&points]).1
                    }
                })
                .collect();
            estimates.sort_by(f64::total_cmp);
            let median = estimates[estimates.len() / 2];
            assert!(
                (median - phi).abs() < 0.04,
                "φ {phi}, n {n}: median {median}"
            );
        }
    }
}
