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
