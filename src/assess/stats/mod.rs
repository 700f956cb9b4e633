//! The statistical reading of an indicator series: SPC (XmR charts as "Making Data Count" reads
//! them) and runs analysis (Anhøj rules). Pure functions over a series in time order; the
//! engine calls them per series, in parallel.

pub mod drift;
pub mod funnel;
pub mod intervals;
pub mod prime;
pub mod runs;
pub mod spc;
pub mod trend;

pub use drift::{DriftOptions, DriftReading, Season, drift, ewma_half_width};
pub use runs::{Centre, RunsPart, anhoej, crossings_min, longest_run_max};
pub use spc::{
    Assurance, Direction, PointType, SpcOptions, SpcPoint, SpcResult, SpcSegment, SpecialCause,
    VariationIcon, xmr,
};
pub use trend::{MannKendall, Ols, TheilSen, kendall_tau_exact, mann_kendall, ols, theil_sen};

/// The first index of each part of a series of `n` points split at `breaks` (rebase points):
/// 0, then every break inside the series, in order and once each.
fn part_starts(breaks: &[usize], n: usize) -> Vec<usize> {
    let mut starts: Vec<usize> = std::iter::once(0)
        .chain(breaks.iter().copied().filter(|&s| s > 0 && s < n))
        .collect();
    starts.sort();
    starts.dedup();
    starts
}
