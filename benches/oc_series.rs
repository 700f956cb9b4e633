//! Simulated 36-month series with known truth, for the flag's operating characteristics: the
//! classes of the signals issue's table. Shared by `benches/signals.rs` (which prints the table)
//! and `tests/it/assess_signals.rs` (which asserts the bar). Improvement is "increase": every
//! planted change is a deterioration (downwards).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Normal};

pub const MONTHS: usize = 36;

/// A class of series: its name and whether a real change is planted.
pub struct Class {
    pub name: &'static str,
    pub changed: bool,
    make: fn(&mut ChaCha8Rng) -> Vec<f64>,
}

fn noise(rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = Normal::new(0.0, 1.0).expect("valid");
    (0..MONTHS).map(|_| n.sample(rng)).collect()
}

/// A ±1 sd yearly wave (peak in January, as sick leave peaks in winter).
fn wave(t: usize) -> f64 {
    (2.0 * std::f64::consts::PI * t as f64 / 12.0).cos()
}

pub const CLASSES: [Class; 8] = [
    Class {
        name: "stable, independent normal noise",
        changed: false,
        make: noise,
    },
    Class {
        name: "stable percentage of a small unit (20 cases a month)",
        changed: false,
        make: |rng| {
            let b = Binomial::new(20, 0.8).expect("valid");
            (0..MONTHS)
                .map(|_| 100.0 * b.sample(rng) as f64 / 20.0)
                .collect()
        },
    },
    Class {
        name: "stable but seasonal (±1 sd yearly wave)",
        changed: false,
        make: |rng| {
            noise(rng)
                .iter()
                .enumerate()
                .map(|(t, e)| 10.0 + wave(t) + e)
                .collect()
        },
    },
    Class {
        name: "stable with AR(1) autocorrelation, φ = 0.5",
        changed: false,
        make: |rng| {
            let e = noise(rng);
            let mut x = vec![0.0; MONTHS];
            // Marginal sd 1: innovations of sd √(1 − φ²), the first value from the marginal.
            x[0] = e[0];
            for t in 1..MONTHS {
                x[t] = 0.5 * x[t - 1] + (0.75f64).sqrt() * e[t];
            }
            x
        },
    },
    Class {
        name: "real change: 1.5 sd deterioration over the last 12 months",
        changed: true,
        make: |rng| {
            noise(rng)
                .iter()
                .enumerate()
                .map(|(t, e)| e - if t >= MONTHS - 12 { 1.5 } else { 0.0 })
                .collect()
        },
    },
    Class {
        name: "real change: 3 sd deterioration over the last 6 months",
        changed: true,
        make: |rng| {
            noise(rng)
                .iter()
                .enumerate()
                .map(|(t, e)| e - if t >= MONTHS - 6 { 3.0 } else { 0.0 })
                .collect()
        },
    },
    Class {
        name: "real change: slow trend, 0.1 sd per month",
        changed: true,
        make: |rng| {
            noise(rng)
                .iter()
                .enumerate()
                .map(|(t, e)| e - 0.1 * t as f64)
                .collect()
        },
    },
    Class {
        name: "seasonal series with a 1.5 sd deterioration over the last 12 months",
        changed: true,
        make: |rng| {
            noise(rng)
                .iter()
                .enumerate()
                .map(|(t, e)| 10.0 + wave(t) + e - if t >= MONTHS - 12 { 1.5 } else { 0.0 })
                .collect()
        },
    },
];

/// Shares of `act`, `watch` and `none` over `n` series of `class` drawn from `seed`.
pub fn rates(class: &Class, n: usize, seed: u64, xmr_only: bool) -> [f64; 3] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let _: u32 = rng.random();
    let months: Vec<u32> = (0..MONTHS as u32).map(|t| t % 12).collect();
    let mut counts = [0usize; 3];
    for _ in 0..n {
        let values: Vec<Option<f64>> = (class.make)(&mut rng).into_iter().map(Some).collect();
        let flag = styrkort::assess::signals::flag_series(
            &values,
            Some(&months),
            styrkort::assess::stats::Direction::Increase,
            xmr_only,
        );
        counts[match flag {
            "act" => 0,
            "watch" => 1,
            _ => 2,
        }] += 1;
    }
    counts.map(|c| c as f64 / n as f64)
}
