//! XmR (individuals) charts as NHS England's "Making Data Count" computes them, following
//! NHSRplotthedots 0.2.2 (see `shared/conformance/spc/RULES.md` §1–4): process limits from the
//! screened mean moving range, the four special-cause rules with the peer's precedence, the point
//! type from the improvement direction, the variation icon of the last point and the assurance
//! reading against a target.
//!
//! Where the peer stops with an error, this module returns a defined result and a warning instead:
//! - `fix_after` below 12 (the peer rejects it): the baseline is still the first N points;
//! - a 7-point trend window whose steps are all in one direction except for a missing value (the
//!   peer fails on `if (NA)`): a missing step breaks the trend, as a tie does;
//! - a series with no values at all: every point is common cause with missing limits.
//!   Missing values are skipped for the mean, break moving ranges, runs and trends, and are never
//!   flagged.

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Increase,
    Decrease,
    Neutral,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "increase" => Some(Direction::Increase),
            "decrease" => Some(Direction::Decrease),
            "neutral" => Some(Direction::Neutral),
            _ => None,
        }
    }

    fn sign(self) -> i8 {
        match self {
            Direction::Increase => 1,
            Direction::Decrease => -1,
            Direction::Neutral => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpcOptions {
    pub direction: Direction,
    pub target: Option<f64>,
    /// 0-based index of the first point of each new segment.
    pub rebase_at: Vec<usize>,
    /// Limits from the first N points of each segment only.
    pub fix_after: Option<usize>,
    /// Drop moving ranges ≥ 3.267 × their mean before computing the limits (the peer's default;
    /// the MDC Excel tool does not screen).
    pub screen_outliers: bool,
}

impl Default for SpcOptions {
    fn default() -> Self {
        SpcOptions {
            direction: Direction::Neutral,
            target: None,
            rebase_at: Vec::new(),
            fix_after: None,
            screen_outliers: true,
        }
    }
}

/// The rule that flags a point, in the peer's precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialCause {
    AboveUcl,
    BelowLcl,
    TrendIncreasing,
    TrendDecreasing,
    TwoInThreeAbove,
    TwoInThreeBelow,
    ShiftAbove,
    ShiftBelow,
    CommonCause,
}

impl SpecialCause {
    /// The peer's label.
    pub fn label(self) -> &'static str {
        match self {
            SpecialCause::AboveUcl => "Above UCL",
            SpecialCause::BelowLcl => "Below LCL",
            SpecialCause::TrendIncreasing => "7 Point Trend (Increasing)",
            SpecialCause::TrendDecreasing => "7 Point Trend (Decreasing)",
            SpecialCause::TwoInThreeAbove => "2 in 3 Above CL",
            SpecialCause::TwoInThreeBelow => "2 in 3 Below CL",
            SpecialCause::ShiftAbove => "7 Points Above CL",
            SpecialCause::ShiftBelow => "7 Points Below CL",
            SpecialCause::CommonCause => "Common Cause",
        }
    }

    /// +1 for a signal upwards, −1 downwards, 0 for none.
    fn side(self) -> i8 {
        match self {
            SpecialCause::AboveUcl
            | SpecialCause::TrendIncreasing
            | SpecialCause::TwoInThreeAbove
            | SpecialCause::ShiftAbove => 1,
            SpecialCause::CommonCause => 0,
            _ => -1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointType {
    CommonCause,
    Improvement,
    Concern,
    NeutralHigh,
    NeutralLow,
}

impl PointType {
    pub fn label(self) -> &'static str {
        match self {
            PointType::CommonCause => "common_cause",
            PointType::Improvement => "special_cause_improvement",
            PointType::Concern => "special_cause_concern",
            PointType::NeutralHigh => "special_cause_neutral_high",
            PointType::NeutralLow => "special_cause_neutral_low",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariationIcon {
    CommonCause,
    ImprovementHigh,
    ImprovementLow,
    ConcernHigh,
    ConcernLow,
    NeutralHigh,
    NeutralLow,
}

impl VariationIcon {
    pub fn label(self) -> &'static str {
        match self {
            VariationIcon::CommonCause => "common_cause",
            VariationIcon::ImprovementHigh => "improvement_high",
            VariationIcon::ImprovementLow => "improvement_low",
            VariationIcon::ConcernHigh => "concern_high",
            VariationIcon::ConcernLow => "concern_low",
            VariationIcon::NeutralHigh => "neutral_high",
            VariationIcon::NeutralLow => "neutral_low",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assurance {
    ConsistentPass,
    ConsistentFail,
    /// Hit and miss.
    Inconsistent,
}

impl Assurance {
    pub fn label(self) -> &'static str {
        match self {
            Assurance::ConsistentPass => "consistent_pass",
            Assurance::ConsistentFail => "consistent_fail",
            Assurance::Inconsistent => "inconsistent",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpcPoint {
    pub value: Option<f64>,
    /// 0-based segment number.
    pub group: usize,
    pub mean: f64,
    pub lpl: f64,
    pub upl: f64,
    pub outside_limits: bool,
    /// +1 above the mean, −1 below, 0 on it, `None` for a missing value.
    pub relative_to_mean: Option<i8>,
    pub close_to_limits: bool,
    pub special_cause: SpecialCause,
    pub point_type: PointType,
    /// The point's segment is short (fewer than 13 points): its limits are trial limits.
    pub short_group_warning: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpcSegment {
    pub group: usize,
    pub start: usize,
    pub n: usize,
    pub mean: f64,
    pub lpl: f64,
    pub upl: f64,
    pub n_special_cause: usize,
    pub n_improvement: usize,
    pub n_concern: usize,
    pub last_point_type: PointType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpcResult {
    pub points: Vec<SpcPoint>,
    pub segments: Vec<SpcSegment>,
    /// From the last point's type; `None` for an empty series.
    pub variation_icon: Option<VariationIcon>,
    pub last_point_type: Option<PointType>,
    /// Needs a target and a direction that is not neutral.
    pub assurance: Option<Assurance>,
    pub warnings: Vec<String>,
}

const LIMIT: f64 = 2.66;
const SCREEN: f64 = 3.267;
/// A segment shorter than this has trial limits (the peer's warning threshold).
const SHORT_GROUP: usize = 13;

/// Centre line and limits of one segment: (mean, lpl, upl, near-lower, near-upper).
fn limits(
    values: &[Option<f64>],
    fix_after: Option<usize>,
    screen: bool,
) -> (f64, f64, f64, f64, f64) {
    let base = &values[..fix_after.unwrap_or(values.len()).min(values.len())];
    let present: Vec<f64> = base.iter().flatten().copied().collect();
    let mean = if present.is_empty() {
        f64::NAN
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    };
    let mut ranges: Vec<f64> = base
        .windows(2)
        .filter_map(|w| Some((w[1]? - w[0]?).abs()))
        .collect();
    let average = |r: &[f64]| {
        if r.is_empty() {
            f64::NAN
        } else {
            r.iter().sum::<f64>() / r.len() as f64
        }
    };
    let mut amr = average(&ranges);
    if screen {
        // Strictly below the bound; with amr = 0 (a constant series) nothing survives.
        ranges.retain(|&r| r < SCREEN * amr);
        amr = average(&ranges);
    }
    let close = 2.0 * (LIMIT / 3.0);
    (
        mean,
        mean - LIMIT * amr,
        mean + LIMIT * amr,
        mean - close * amr,
        mean + close * amr,
    )
}

/// `true` where a run of ≥ 7 ends at the point or at one of the next six (the peer's
/// "part of" rule, used for shifts and trends).
fn part_of_seven(ends: &[bool]) -> Vec<bool> {
    (0..ends.len())
        .map(|i| ends[i..ends.len().min(i + 7)].iter().any(|&e| e))
        .collect()
}

fn segment_points(
    values: &[Option<f64>],
    group: usize,
    opts: &SpcOptions,
    warnings: &mut Vec<String>,
    start: usize,
) -> Vec<SpcPoint> {
    let n = values.len();
    let (mean, lpl, upl, nlpl, nupl) = limits(values, opts.fix_after, opts.screen_outliers);
    let rtm: Vec<Option<i8>> = values
        .iter()
        .map(|y| {
            y.and_then(|y| {
                let d = y - mean;
                if d.is_nan() {
                    None
                } else {
                    Some(if d > 0.0 {
                        1
                    } else if d < 0.0 {
                        -1
                    } else {
                        0
                    })
                }
            })
        })
        .collect();
    // NaN limits compare false: nothing is outside or close.
    let outside: Vec<bool> = values
        .iter()
        .map(|y| y.is_some_and(|y| y > upl || y < lpl))
        .collect();
    let close: Vec<bool> = values
        .iter()
        .zip(&outside)
        .map(|(y, &out)| !out && y.is_some_and(|y| y < nlpl || y > nupl))
        .collect();

    // Shift: seven equal, non-zero sides ending at i.
    let shift_end: Vec<bool> = (0..n)
        .map(|i| {
            i >= 6 && {
                let side = rtm[i];
                side.is_some_and(|s| s != 0) && rtm[i - 6..i].iter().all(|&r| r == side)
            }
        })
        .collect();
    let in_shift = part_of_seven(&shift_end);

    // Trend: six strictly increasing (or decreasing) steps ending at i.
    let step = |i: usize| -> Option<i8> {
        let d = values[i]? - values[i - 1]?;
        Some(if d > 0.0 {
            1
        } else if d < 0.0 {
            -1
        } else {
            0
        })
    };
    let mut trend_end = vec![false; n];
    let mut warned = false;
    for (i, end) in trend_end.iter_mut().enumerate().skip(6) {
        let steps: Vec<Option<i8>> = (i - 5..=i).map(step).collect();
        for dir in [1i8, -1] {
            if steps.iter().all(|&s| s == Some(dir)) {
                *end = true;
            } else if !warned
                && steps.iter().all(|&s| s.is_none() || s == Some(dir))
                && steps.iter().any(Option::is_none)
            {
                warned = true;
                warnings.push(format!(
                    "a missing value at or before point {} interrupts a possible 7-point trend; it is read as no trend (NHSRplotthedots stops with an error here)",
                    start + i + 1
                ));
            }
        }
    }
    let in_trend = part_of_seven(&trend_end);

    // Two of three beyond two sigma, all three on one side; only the close points are flagged.
    let close_at = |i: isize| -> i32 { (i >= 0 && (i as usize) < n && close[i as usize]) as i32 };
    let side_at = |i: isize| -> i32 {
        if i >= 0 && (i as usize) < n {
            rtm[i as usize].unwrap_or(0) as i32
        } else {
            0
        }
    };
    let in_two_of_three: Vec<bool> = (0..n as isize)
        .map(|i| {
            close[i as usize]
                && (-2..=0).any(|s| {
                    let w = [i + s, i + s + 1, i + s + 2];
                    w.iter().map(|&j| close_at(j)).sum::<i32>() >= 2
                        && w.iter().map(|&j| side_at(j)).sum::<i32>().abs() == 3
                })
        })
        .collect();

    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let above = rtm[i] == Some(1);
        let cause = if outside[i] {
            if above {
                SpecialCause::AboveUcl
            } else {
                SpecialCause::BelowLcl
            }
        } else if in_trend[i] {
            // A point inside a trend takes the direction of the step to its right when the next
            // point is in the trend too, else of the step from its left.
            let dir = if i + 1 < n && in_trend[i + 1] {
                step(i + 1)
            } else if i > 0 {
                step(i)
            } else {
                Some(0)
            };
            if dir == Some(1) {
                SpecialCause::TrendIncreasing
            } else {
                SpecialCause::TrendDecreasing
            }
        } else if in_two_of_three[i] {
            if above {
                SpecialCause::TwoInThreeAbove
            } else {
                SpecialCause::TwoInThreeBelow
            }
        } else if in_shift[i] {
            if above {
                SpecialCause::ShiftAbove
            } else {
                SpecialCause::ShiftBelow
            }
        } else {
            SpecialCause::CommonCause
        };
        let v = cause.side();
        let point_type = match opts.direction {
            Direction::Neutral => match v {
                1 => PointType::NeutralHigh,
                -1 => PointType::NeutralLow,
                _ => PointType::CommonCause,
            },
            d => match v * d.sign() {
                1 => PointType::Improvement,
                -1 => PointType::Concern,
                _ => PointType::CommonCause,
            },
        };
        points.push(SpcPoint {
            value: values[i],
            group,
            mean,
            lpl,
            upl,
            outside_limits: outside[i],
            relative_to_mean: rtm[i],
            close_to_limits: close[i],
            special_cause: cause,
            point_type,
            short_group_warning: n < SHORT_GROUP,
        });
    }
    points
}

/// The XmR chart of a series in time order (`None` = missing value).
pub fn xmr(values: &[Option<f64>], opts: &SpcOptions) -> SpcResult {
    let mut warnings = Vec::new();
    if let Some(n) = opts.fix_after
        && n < 12
    {
        warnings.push(format!(
            "fix_after = {n}: limits from fewer than 12 points are unreliable (NHSRplotthedots requires at least 12)"
        ));
    }
    if !values.is_empty() && values.iter().all(Option::is_none) {
        warnings.push("the series has no values".to_string());
    }
    let starts = super::part_starts(&opts.rebase_at, values.len());
    let mut points = Vec::with_capacity(values.len());
    let mut segments = Vec::new();
    for (group, &start) in starts.iter().enumerate() {
        let end = starts.get(group + 1).copied().unwrap_or(values.len());
        if start >= end {
            continue;
        }
        let seg = segment_points(&values[start..end], group, opts, &mut warnings, start);
        let count = |t: PointType| seg.iter().filter(|p| p.point_type == t).count();
        segments.push(SpcSegment {
            group,
            start,
            n: end - start,
            mean: seg[0].mean,
            lpl: seg[0].lpl,
            upl: seg[0].upl,
            n_special_cause: seg
                .iter()
                .filter(|p| p.special_cause != SpecialCause::CommonCause)
                .count(),
            n_improvement: count(PointType::Improvement),
            n_concern: count(PointType::Concern),
            last_point_type: seg[seg.len() - 1].point_type,
        });
        points.extend(seg);
    }
    if segments.iter().any(|s| s.n < SHORT_GROUP) {
        warnings.push(
            "Some groups have 'n < 12' observations. These have trial limits, which will be revised with each additional observation until 'n = fix_after_n_points' has been reached."
                .to_string(),
        );
    }
    let last = points.last();
    let last_point_type = last.map(|p| p.point_type);
    let variation_icon = last_point_type.map(|t| icon(t, opts.direction));
    let assurance = match (opts.target, opts.direction, last) {
        (Some(target), Direction::Increase | Direction::Decrease, Some(p)) => {
            Some(assurance(target, p.lpl, p.upl, opts.direction))
        }
        _ => None,
    };
    SpcResult {
        points,
        segments,
        variation_icon,
        last_point_type,
        assurance,
        warnings,
    }
}

fn icon(t: PointType, direction: Direction) -> VariationIcon {
    match (t, direction) {
        (PointType::Improvement, Direction::Increase) => VariationIcon::ImprovementHigh,
        (PointType::Improvement, _) => VariationIcon::ImprovementLow,
        (PointType::Concern, Direction::Increase) => VariationIcon::ConcernLow,
        (PointType::Concern, _) => VariationIcon::ConcernHigh,
        (PointType::NeutralHigh, _) => VariationIcon::NeutralHigh,
        (PointType::NeutralLow, _) => VariationIcon::NeutralLow,
        (PointType::CommonCause, _) => VariationIcon::CommonCause,
    }
}

/// Against the latest segment's limits; strict, so a target on a limit (or missing limits) is
/// hit and miss.
fn assurance(target: f64, lpl: f64, upl: f64, direction: Direction) -> Assurance {
    let increase = direction == Direction::Increase;
    if target > upl {
        if increase {
            Assurance::ConsistentFail
        } else {
            Assurance::ConsistentPass
        }
    } else if target < lpl {
        if increase {
            Assurance::ConsistentPass
        } else {
            Assurance::ConsistentFail
        }
    } else {
        Assurance::Inconsistent
    }
}
