//! The target vocabulary of the pipeline file and the targets table: the kinds of target and an
//! indicator's default target (`[indicators.target]`). Resolving and judging targets is
//! `assess`'s work.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// At least `value`.
    Floor,
    /// At most `value`.
    Ceiling,
    /// Between `value` and `value_high`.
    Range,
    /// Higher than the comparison value.
    Increase,
    /// Lower than the comparison value.
    Decrease,
    /// Better than a reference series, in the indicator's polarity.
    Benchmark,
    /// Ranked among the best `value` share of the units of the same kind (0.25: the best
    /// quartile of all kommuner), in the indicator's polarity.
    TopShare,
    /// A better rank among the units of the same kind than the same period last year.
    RankImproves,
}

impl TargetKind {
    pub(crate) fn parse(s: &str) -> Option<TargetKind> {
        Some(match s {
            "floor" => TargetKind::Floor,
            "ceiling" => TargetKind::Ceiling,
            "range" => TargetKind::Range,
            "increase" => TargetKind::Increase,
            "decrease" => TargetKind::Decrease,
            "benchmark" => TargetKind::Benchmark,
            "top_share" => TargetKind::TopShare,
            "rank_improves" => TargetKind::RankImproves,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TargetKind::Floor => "floor",
            TargetKind::Ceiling => "ceiling",
            TargetKind::Range => "range",
            TargetKind::Increase => "increase",
            TargetKind::Decrease => "decrease",
            TargetKind::Benchmark => "benchmark",
            TargetKind::TopShare => "top_share",
            TargetKind::RankImproves => "rank_improves",
        }
    }

    /// Judged against another value of the indicator rather than a fixed number.
    pub(crate) fn is_relative(self) -> bool {
        matches!(
            self,
            TargetKind::Increase
                | TargetKind::Decrease
                | TargetKind::Benchmark
                | TargetKind::TopShare
                | TargetKind::RankImproves
        )
    }

    /// Judged on the unit's rank among the units of its kind.
    pub(crate) fn is_rank(self) -> bool {
        matches!(self, TargetKind::TopShare | TargetKind::RankImproves)
    }
}

/// A target default written in the pipeline file, under an indicator: `[indicators.target]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetDefault {
    pub(crate) kind: TargetKind,
    pub(crate) value: Option<f64>,
    pub(crate) value_high: Option<f64>,
    /// A number, or a percentage of the target as text: `"20%"`.
    pub(crate) tolerance: Option<ToleranceDef>,
    pub(crate) compare_to: Option<String>,
    #[serde(default)]
    pub(crate) note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ToleranceDef {
    Number(f64),
    Text(String),
}
