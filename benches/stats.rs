//! Throughput of the statistics stage: XmR chart, Anhøj runs analysis and Mann-Kendall/Sen on
//! many series of 36 monthly points, in parallel, as the engine runs them.
//!
//!     cargo bench --bench stats                       # 100,000 series
//!     STYRKORT_BENCH_SERIES=1000000 cargo bench --bench stats
//!
//! Prints the time and series per second; it asserts nothing.

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use styrkort::assess::stats::{Centre, Direction, SpcOptions, anhoej, mann_kendall, xmr};

fn main() {
    let n_series: usize = std::env::var("STYRKORT_BENCH_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let points = 36;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let series: Vec<Vec<Option<f64>>> = (0..n_series)
        .map(|_| {
            let level = rng.random_range(5.0..15.0);
            let drift = if rng.random_bool(0.1) {
                rng.random_range(-0.2..0.2)
            } else {
                0.0
            };
            (0..points)
                .map(|i| {
                    if rng.random_bool(0.01) {
                        None
                    } else {
                        Some(level + drift * i as f64 + rng.random_range(-1.0..1.0))
                    }
                })
                .collect()
        })
        .collect();
    let opts = SpcOptions {
        direction: Direction::Decrease,
        target: Some(10.0),
        ..SpcOptions::default()
    };
    for round in 1..=3 {
        let started = Instant::now();
        let flagged: usize =
            series
                .par_iter()
                .map(|s| {
                    let spc = xmr(s, &opts);
                    let runs = anhoej(s, Centre::Mean, &[], None, true);
                    let mk = mann_kendall(s, 0.05);
                    usize::from(spc.points.iter().any(|p| {
                        p.special_cause != styrkort::assess::stats::SpecialCause::CommonCause
                    })) + usize::from(runs.iter().any(|r| r.runs_signal))
                        + usize::from(mk.is_some_and(|m| m.significant))
                })
                .sum();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {n_series} series × {points} points in {secs:.2} s = {:.0} series/s ({flagged} signals, {} threads)",
            n_series as f64 / secs,
            rayon::current_num_threads()
        );
    }
}
