//! One value against its target: the status (uppfyllt / delvis uppfyllt / ej uppfyllt / …) and
//! the gap, signed so that a negative gap is on the unfavourable side.

use super::targets::Target;
use crate::definitions::Polarity;
use crate::definitions::TargetKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    NotMet,
    PartlyMet,
    NoData,
    NotAssessable,
    Met,
    NoTarget,
}

impl Status {
    pub(crate) const ALL: [Status; 6] = [
        Status::NotMet,
        Status::PartlyMet,
        Status::NoData,
        Status::NotAssessable,
        Status::Met,
        Status::NoTarget,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::PartlyMet => "partly_met",
            Status::NotMet => "not_met",
            Status::NoData => "no_data",
            Status::NoTarget => "no_target",
            Status::NotAssessable => "not_assessable",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Met, partly met or not met: a judgement was possible.
    pub(crate) fn is_assessed(self) -> bool {
        matches!(self, Status::Met | Status::PartlyMet | Status::NotMet)
    }
}

/// The outcome of judging one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub status: Status,
    /// The number the value was held against: the floor, ceiling, lower bound of a range, or the
    /// comparison value of a relative target.
    pub target_value: Option<f64>,
    /// `value − target` for a floor or an increase, `target − value` for a ceiling or a decrease:
    /// negative means unfavourable. For a range, the distance to the nearer bound (negative
    /// outside it).
    pub gap: Option<f64>,
}

/// Values within this relative distance of a boundary count as on it, so that a value printed as
/// exactly the target is judged as the target.
fn slack(reference: f64) -> f64 {
    1e-9 * reference.abs().max(1.0)
}

/// Judges `value` against `target`. `comparison` is the value a relative target compares with
/// (last year's, the previous period's, or the benchmark unit's).
pub fn judge(
    value: Option<f64>,
    target: Option<&Target>,
    comparison: Option<f64>,
    polarity: Polarity,
) -> Judgement {
    let none = |status| Judgement {
        status,
        target_value: None,
        gap: None,
    };
    let Some(target) = target else {
        return none(Status::NoTarget);
    };
    let fixed_target = if target.kind.is_relative() {
        comparison
    } else {
        target.value
    };
    let Some(v) = value else {
        return Judgement {
            status: Status::NoData,
            target_value: fixed_target,
            gap: None,
        };
    };
    let tolerance = |of: f64| target.tolerance.map(|t| t.amount(of)).unwrap_or(0.0);
    // Floors, ceilings and ranges: on the target is met.
    let bounded = |gap: f64, t: f64| {
        let status = if gap >= -slack(t) {
            Status::Met
        } else if gap >= -tolerance(t) - slack(t) {
            Status::PartlyMet
        } else {
            Status::NotMet
        };
        Judgement {
            status,
            target_value: Some(t),
            gap: Some(gap),
        }
    };
    // Directions and benchmarks: only strictly better is met; equal is within tolerance.
    let relative = |higher_is_better: bool| match comparison {
        None => none(Status::NotAssessable),
        Some(c) => {
            let gap = if higher_is_better { v - c } else { c - v };
            let status = if gap > slack(c) {
                Status::Met
            } else if gap >= -tolerance(c) - slack(c) {
                Status::PartlyMet
            } else {
                Status::NotMet
            };
            Judgement {
                status,
                target_value: Some(c),
                gap: Some(gap),
            }
        }
    };
    let t = target.value.unwrap_or_default();
    match target.kind {
        TargetKind::Floor => bounded(v - t, t),
        TargetKind::Ceiling => bounded(t - v, t),
        TargetKind::Range => {
            let hi = target.value_high.unwrap_or(t);
            if v < t {
                bounded(v - t, t)
            } else if v > hi {
                let mut j = bounded(hi - v, hi);
                j.target_value = Some(t);
                j
            } else {
                bounded((v - t).min(hi - v), t)
            }
        }
        TargetKind::Increase => relative(true),
        TargetKind::Decrease => relative(false),
        // Judged on ranks by `judge_rank`; without ranks there is nothing to judge.
        TargetKind::TopShare | TargetKind::RankImproves => none(Status::NotAssessable),
        TargetKind::Benchmark => match polarity {
            Polarity::HigherIsBetter => relative(true),
            Polarity::LowerIsBetter => relative(false),
            // Rejected when targets load; without a polarity there is no "better".
            Polarity::Neutral => none(Status::NotAssessable),
        },
    }
}

/// A rank target: `rank` among `of` units of the same kind (1 = best), `last_year` the rank a
/// year earlier. A top-share target is met within the best ⌈share·of⌉ ranks (partly met within
/// ⌈(share + tolerance)·of⌉); rank-improves is met by a strictly better rank (partly met by one
/// within the tolerance in ranks). The gap is in ranks, positive when better than needed.
pub(crate) fn judge_rank(
    target: &Target,
    rank: Option<(u32, u32)>,
    last_year: Option<u32>,
) -> Judgement {
    let Some((rank, of)) = rank else {
        return Judgement {
            status: Status::NoData,
            target_value: None,
            gap: None,
        };
    };
    let r = rank as f64;
    match target.kind {
        TargetKind::TopShare => {
            let share = target.value.unwrap_or(1.0);
            let allowed = (share * of as f64).ceil();
            let extra = match target.tolerance {
                Some(super::targets::Tolerance::Absolute(t)) => {
                    (((share + t) * of as f64).ceil()).max(allowed)
                }
                Some(super::targets::Tolerance::Percent(p)) => {
                    ((share * (1.0 + p / 100.0) * of as f64).ceil()).max(allowed)
                }
                None => allowed,
            };
            let status = if r <= allowed {
                Status::Met
            } else if r <= extra {
                Status::PartlyMet
            } else {
                Status::NotMet
            };
            Judgement {
                status,
                target_value: Some(allowed),
                gap: Some(allowed - r),
            }
        }
        _ => match last_year {
            None => Judgement {
                status: Status::NotAssessable,
                target_value: None,
                gap: None,
            },
            Some(previous) => {
                let p = previous as f64;
                let tolerance = target.tolerance.map(|t| t.amount(p)).unwrap_or(0.0);
                let status = if r < p {
                    Status::Met
                } else if r <= p + tolerance {
                    Status::PartlyMet
                } else {
                    Status::NotMet
                };
                Judgement {
                    status,
                    target_value: Some(p),
                    gap: Some(p - r),
                }
            }
        },
    }
}
