//! Laney's p′ and u′ charts (Laney 2002, "Improved control charts for attributes"), as
//! qicharts2 computes them (`qic.pp`, `qic.up`): a proportion or rate per period from its count
//! `x` and its size `n`, limits that follow each period's size, widened by the variation
//! *between* periods that binomial or Poisson noise alone does not explain.
//!
//! - centre: p̄ = Σx / Σn;
//! - a period's sampling spread: √(p̄(1 − p̄)/n) for a proportion, √(p̄/n) for a rate;
//! - zᵢ = (pᵢ − p̄) / spreadᵢ, and σ_z = the mean moving range of z / 1.128 (1 for the plain
//!   p and u charts);
//! - limits p̄ ± 3 σ_z spreadᵢ, clamped to [0, 1] for a proportion and at 0 below for a rate.
//!
//! With small units the spread is large and a month's dip is inside the limits; with a large
//! unit the spread is small, but σ_z keeps overdispersion (real month-to-month variation that is
//! not a signal) from putting every point outside.

/// What the counts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimeKind {
    /// `x` of `n` (pupils eligible of pupils): a p′ chart.
    Proportion,
    /// `x` events per `n` of exposure: a u′ chart.
    Rate,
}

impl PrimeKind {
    /// The chart's name: `p′` or `u′`.
    pub fn label(self) -> &'static str {
        match self {
            PrimeKind::Proportion => "p′",
            PrimeKind::Rate => "u′",
        }
    }
}

/// One period on the chart, in the units of x / n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrimePoint {
    pub value: f64,
    pub lcl: f64,
    pub ucl: f64,
}

/// A p′ or u′ chart.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimeChart {
    pub centre: f64,
    /// Laney's σ_z: 1 when the periods vary as binomial (Poisson) noise alone would.
    pub sigma_z: f64,
    /// Per period, `None` where it has no count or no size.
    pub points: Vec<Option<PrimePoint>>,
}

/// The chart of `counts` (`(x, n)` per period, in time order). With `laney` false, the plain
/// p or u chart (σ_z = 1). `None` when no period has a positive size, or the centre leaves no
/// sampling spread (a proportion of 0 or 1, a rate of 0).
pub fn prime_chart(
    counts: &[Option<(f64, f64)>],
    kind: PrimeKind,
    laney: bool,
) -> Option<PrimeChart> {
    let usable = |c: &Option<(f64, f64)>| c.filter(|&(x, n)| n > 0.0 && x.is_finite());
    let (sx, sn) = counts
        .iter()
        .filter_map(usable)
        .fold((0.0, 0.0), |(a, b), (x, n)| (a + x, b + n));
    if sn <= 0.0 {
        return None;
    }
    let centre = sx / sn;
    let spread = |n: f64| match kind {
        PrimeKind::Proportion => (centre * (1.0 - centre) / n).sqrt(),
        PrimeKind::Rate => (centre / n).sqrt(),
    };
    if spread(1.0).is_nan() || spread(1.0) <= 0.0 {
        return None;
    }
    let sigma_z = if laney {
        // Moving ranges between consecutive periods that both have counts (qicharts2 takes
        // `diff` over the periods with values, so a gap joins its neighbours).
        let z: Vec<f64> = counts
            .iter()
            .filter_map(usable)
            .map(|(x, n)| (x / n - centre) / spread(n))
            .collect();
        if z.len() < 2 {
            return None;
        }
        let amr = z.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (z.len() - 1) as f64;
        amr / 1.128
    } else {
        1.0
    };
    let points = counts
        .iter()
        .map(|c| {
            usable(c).map(|(x, n)| {
                let half = 3.0 * sigma_z * spread(n);
                let (lcl, ucl) = (centre - half, centre + half);
                PrimePoint {
                    value: x / n,
                    lcl: lcl.max(0.0),
                    ucl: if kind == PrimeKind::Proportion {
                        ucl.min(1.0)
                    } else {
                        ucl
                    },
                }
            })
        })
        .collect();
    Some(PrimeChart {
        centre,
        sigma_z,
        points,
    })
}
