//! Runs analysis with the Anhøj rules, as qicharts2 0.8.1 does it (`RULES.md` §5): for the
//! median-centred run chart and the mean-centred I chart, per part, the longest run on one side of
//! the centre line and the number of crossings, against limits that depend on the number of
//! useful points.

use statrs::distribution::{Binomial, DiscreteCDF};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Centre {
    /// Run chart: the median of the baseline.
    Median,
    /// I chart: the mean of the baseline, with 3-sigma limits from the screened moving range.
    Mean,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunsPart {
    pub part: usize,
    pub start: usize,
    pub n_obs: usize,
    /// Points neither missing nor on the centre line.
    pub n_useful: usize,
    pub longest_run: Option<usize>,
    pub longest_run_max: Option<usize>,
    pub n_crossings: Option<usize>,
    pub n_crossings_min: Option<usize>,
    pub runs_signal: bool,
    pub cl: Option<f64>,
    pub lcl: Option<f64>,
    pub ucl: Option<f64>,
    /// Points beyond the 3-sigma limits (I chart).
    pub n_sigma_signal: usize,
}

/// The longest run a random series of `n_useful` points should not exceed.
pub fn longest_run_max(n_useful: usize) -> usize {
    ((n_useful as f64).log2().round() as i64 + 3).max(0) as usize
}

/// The fewest crossings a random series of `n_useful` points should have: the 5 % quantile of
/// Binomial(n_useful − 1, 0.5).
pub fn crossings_min(n_useful: usize) -> usize {
    let trials = n_useful.saturating_sub(1) as u64;
    let binomial = Binomial::new(0.5, trials).expect("0.5 is a valid probability");
    (0..=trials)
        .find(|&k| binomial.cdf(k) >= 0.05)
        .unwrap_or(trials) as usize
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut s = xs.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

/// Runs analysis per part. `parts_at` are 0-based first indices of new parts; `freeze` limits the
/// baseline to the first N points and is ignored when there are parts (as in qicharts2).
pub fn anhoej(
    values: &[Option<f64>],
    centre: Centre,
    parts_at: &[usize],
    freeze: Option<usize>,
    screen: bool,
) -> Vec<RunsPart> {
    let starts = super::part_starts(parts_at, values.len());
    let freeze = if starts.len() > 1 { None } else { freeze };
    let mut out = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(values.len());
        let part = &values[start..end];
        let base = &part[..freeze.unwrap_or(part.len()).min(part.len())];
        let base_present: Vec<f64> = base.iter().flatten().copied().collect();
        let cl = match centre {
            Centre::Median => median(&base_present),
            Centre::Mean => mean(&base_present),
        };
        let (lcl, ucl) = match (centre, cl) {
            (Centre::Mean, Some(cl)) => three_sigma_limits(base, cl, screen),
            _ => (None, None),
        };
        let sides = sides_of_centre(part, cl);
        let n_useful = sides.len();
        let (longest, runs) = longest_run_and_runs(&sides);
        let useful = n_useful > 0;
        let (longest_max, crossings, crossings_lim) = (
            useful.then(|| longest_run_max(n_useful)),
            useful.then(|| runs.saturating_sub(1)),
            useful.then(|| crossings_min(n_useful)),
        );
        let runs_signal = useful
            && (longest > longest_max.unwrap_or(usize::MAX)
                || crossings.unwrap_or(0) < crossings_lim.unwrap_or(0));
        let n_sigma_signal = match (lcl, ucl) {
            (Some(l), Some(u)) => part.iter().flatten().filter(|&&y| y > u || y < l).count(),
            _ => 0,
        };
        out.push(RunsPart {
            part: k + 1,
            start,
            n_obs: part.len(),
            n_useful,
            longest_run: useful.then_some(longest),
            longest_run_max: longest_max,
            n_crossings: crossings,
            n_crossings_min: crossings_lim,
            runs_signal,
            cl,
            lcl,
            ucl,
            n_sigma_signal,
        });
    }
    out
}

/// The individuals chart's limits around `cl`: 3σ with σ from the mean moving range of `base`
/// (ranges only between neighbours that are both present; with `screen`, ranges of 3.267 times
/// the mean or more are left out and the mean taken again).
fn three_sigma_limits(base: &[Option<f64>], cl: f64, screen: bool) -> (Option<f64>, Option<f64>) {
    let mut ranges: Vec<f64> = base
        .windows(2)
        .filter_map(|w| Some((w[1]? - w[0]?).abs()))
        .collect();
    let mut amr = mean(&ranges);
    if screen && let Some(a) = amr {
        ranges.retain(|&r| r < 3.267 * a);
        amr = mean(&ranges);
    }
    match amr {
        Some(a) => {
            let sigma = a / 1.128;
            (Some(cl - 3.0 * sigma), Some(cl + 3.0 * sigma))
        }
        None => (None, None),
    }
}

/// The side of the centre line each present point lies on (1 above, −1 below); points on the
/// line are not useful and left out, as is everything when there is no centre.
fn sides_of_centre(part: &[Option<f64>], cl: Option<f64>) -> Vec<i8> {
    part.iter()
        .flatten()
        .filter_map(|&y| {
            let d = y - cl?;
            if d > 0.0 {
                Some(1)
            } else if d < 0.0 {
                Some(-1)
            } else {
                None
            }
        })
        .collect()
}

/// The longest run of points on one side, and the number of runs.
fn longest_run_and_runs(sides: &[i8]) -> (usize, usize) {
    let (mut longest, mut runs, mut current) = (0usize, 0usize, 0usize);
    for (i, s) in sides.iter().enumerate() {
        if i == 0 || sides[i - 1] != *s {
            runs += 1;
            current = 1;
        } else {
            current += 1;
        }
        longest = longest.max(current);
    }
    (longest, runs)
}
