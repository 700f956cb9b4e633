//! The statistical reading of every indicator series: one series per indicator × unit × segment
//! at the indicator's SPC grain (default month), over the run's periods. Each gets an XmR chart
//! (per-point special causes and types, the variation icon, assurance against a fixed target), the
//! Anhøj runs analysis, Mann-Kendall and OLS trend tests, and a flag for controllers: `act`, `watch` or `none`, with the reason in
//! plain words.

use std::collections::BTreeMap;

use polars::prelude::*;
use rayon::prelude::*;

use super::stats::intervals::{Significance, compare, rate_interval, wilson};
use super::stats::prime::{PrimeChart, PrimeKind, prime_chart};
use super::stats::{
    Assurance, Centre, Direction, DriftOptions, DriftReading, MannKendall, Ols, PointType,
    SpcOptions, SpcResult, SpecialCause, anhoej, drift, mann_kendall, ols, xmr,
};
use crate::definitions::{IndicatorDef, Pipeline, Polarity, StatKind};
use crate::period::{Grain, Month};

/// The grain an indicator's series are read at: its `spc_grain`, else month when it has months,
/// else its finest declared grain (year-to-date series overlap, so they are never used).
pub(crate) fn spc_grain(ind: &IndicatorDef) -> Option<Grain> {
    if let Some(g) = ind.spc_grain {
        return Some(g);
    }
    let grains = ind.grains.get_ref();
    [Grain::Month, Grain::Quarter, Grain::Tertial, Grain::Year]
        .into_iter()
        .find(|g| grains.contains(g))
}

fn direction(p: Polarity) -> Direction {
    match p {
        Polarity::HigherIsBetter => Direction::Increase,
        Polarity::LowerIsBetter => Direction::Decrease,
        Polarity::Neutral => Direction::Neutral,
    }
}

/// One series' input, in time order.
struct Series {
    indicator: String,
    unit: String,
    segment: String,
    grain: String,
    periods: Vec<String>,
    period_months: Vec<i32>,
    values: Vec<Option<f64>>,
    /// The latest point's fixed target (floor or ceiling), for assurance.
    target: Option<f64>,
    /// The latest point's numerator and denominator, for its confidence interval.
    latest_counts: Option<(f64, f64)>,
    /// Every point's numerator and denominator, for a p′ or u′ chart.
    counts: Vec<Option<(f64, f64)>>,
    /// The unit's parent in the org tree (the benchmark of the funnel across siblings).
    parent: Option<String>,
    /// Each point's row in the deviations read.
    rows: Vec<usize>,
}

struct Analysis {
    spc: SpcResult,
    /// The drift reading, for series long enough (and without rebase points).
    drift: Option<DriftReading>,
    /// I chart (mean-centred) runs analysis, per part.
    runs: Vec<super::stats::RunsPart>,
    /// Run chart (median-centred) runs analysis, per part.
    run_chart: Vec<super::stats::RunsPart>,
    mk: Option<MannKendall>,
    line: Option<Ols>,
    /// Laney's p′ or u′ chart, for an indicator with a `stat_kind`.
    prime: Option<(PrimeKind, PrimeChart)>,
}

/// The interval of a value `scale × x / n` at `confidence`, for an indicator with a `stat_kind`.
fn interval(
    kind: StatKind,
    scale: f64,
    (x, n): (f64, f64),
    confidence: f64,
) -> Option<(Option<f64>, f64)> {
    match kind {
        StatKind::Proportion => wilson(x, n, confidence).map(|(l, u)| (Some(l * scale), u * scale)),
        StatKind::Rate => rate_interval(x, n, scale, confidence).map(|(_, l, u, _)| (l, u)),
    }
}

/// Where a benchmark lies against a value's intervals: inside the 95 % one, between 95 % and
/// 99.8 %, or outside the 99.8 % one (a funnel plot's bands, read from the unit's side).
fn funnel_band(
    i95: Option<(Option<f64>, f64)>,
    i998: Option<(Option<f64>, f64)>,
    benchmark: f64,
) -> Option<&'static str> {
    let outside = |i: Option<(Option<f64>, f64)>| {
        i.map(|(l, u)| compare(l, Some(u), benchmark) != Significance::Similar)
    };
    match (outside(i95)?, outside(i998)?) {
        (false, _) => Some("within_95"),
        (true, false) => Some("between_95_998"),
        (true, true) => Some("beyond_998"),
    }
}

/// The trend in the indicator's polarity: a significant Mann-Kendall trend is improving when it
/// goes the better way.
fn trend_reading(mk: Option<&MannKendall>, polarity: Polarity) -> &'static str {
    match (mk, polarity) {
        (Some(m), Polarity::HigherIsBetter) if m.significant => {
            if m.z > 0.0 {
                "improving"
            } else {
                "deteriorating"
            }
        }
        (Some(m), Polarity::LowerIsBetter) if m.significant => {
            if m.z < 0.0 {
                "improving"
            } else {
                "deteriorating"
            }
        }
        (Some(m), Polarity::Neutral) if m.significant => {
            if m.z > 0.0 {
                "increasing"
            } else {
                "decreasing"
            }
        }
        (Some(_), _) => "no significant trend",
        (None, _) => "too few values",
    }
}

/// What the statistics add: per-point SPC columns and one row per series.
pub(crate) struct Signals {
    /// `spc_mean` … `seasonal_expected`, one value per row of the deviations read (null where
    /// the row is not a point of a series).
    pub(crate) points: Vec<Column>,
    pub(crate) series: DataFrame,
}

pub(crate) fn signals(pipeline: &Pipeline, deviations: &DataFrame) -> PolarsResult<Signals> {
    let by_indicator: BTreeMap<&str, &IndicatorDef> = pipeline
        .def
        .indicators
        .iter()
        .map(|i| (i.id.get_ref().as_str(), i))
        .collect();
    let series = split_series(deviations, &by_indicator)?;
    let alpha = pipeline.def.alpha();
    let analysed: Vec<Analysis> = series
        .par_iter()
        .map(|s| analyse(s, by_indicator[s.indicator.as_str()], alpha))
        .collect();
    Ok(Signals {
        points: point_columns(&series, &analysed, deviations.height()),
        series: series_frame(&series, &analysed, &by_indicator)?,
    })
}

/// Every statistical reading of one series of indicator `ind`: the XmR chart, the drift
/// reading, the runs rules (around the mean and, as a run chart, the median), the Mann-Kendall
/// trend at `alpha`, the fitted line and, for a proportion or rate, the prime chart.
fn analyse(s: &Series, ind: &IndicatorDef, alpha: f64) -> Analysis {
    let opts = SpcOptions {
        direction: direction(ind.polarity),
        target: s.target,
        rebase_at: rebase_indices(ind, &s.period_months),
        fix_after: ind.spc_baseline,
        screen_outliers: true,
    };
    let spc = xmr(&s.values, &opts);
    // Calendar months for a monthly series, so a season can be found.
    let months: Vec<u32> = s
        .period_months
        .iter()
        .map(|m| m.rem_euclid(12) as u32)
        .collect();
    let drift = opts
        .rebase_at
        .is_empty()
        .then(|| {
            drift(
                &s.values,
                (s.grain == "month").then_some(months.as_slice()),
                opts.direction,
                &DriftOptions::default(),
            )
        })
        .flatten();
    let runs = anhoej(&s.values, Centre::Mean, &opts.rebase_at, None, true);
    let run_chart = anhoej(&s.values, Centre::Median, &opts.rebase_at, None, true);
    let mk = mann_kendall(&s.values, alpha);
    let t: Vec<Option<f64>> = (0..s.values.len()).map(|i| Some(i as f64)).collect();
    let present: Vec<usize> = (0..s.values.len())
        .filter(|&i| s.values[i].is_some())
        .collect();
    // OLS over the points that have values, against their positions in time.
    let line = ols(
        &present.iter().map(|&i| t[i]).collect::<Vec<_>>(),
        &present.iter().map(|&i| s.values[i]).collect::<Vec<_>>(),
    )
    .ok()
    .filter(|_| present.len() >= 3);
    let prime = ind.stat_kind.and_then(|k| {
        let kind = match k {
            StatKind::Proportion => PrimeKind::Proportion,
            StatKind::Rate => PrimeKind::Rate,
        };
        prime_chart(&s.counts, kind, true).map(|c| (kind, c))
    });
    Analysis {
        spc,
        drift,
        runs,
        run_chart,
        mk,
        line,
        prime,
    }
}

/// The index of the first period at or after each `rebase` month of the indicator.
fn rebase_indices(ind: &IndicatorDef, period_months: &[i32]) -> Vec<usize> {
    ind.rebase
        .iter()
        .filter_map(|r| Month::parse(r.get_ref()))
        .filter_map(|m| period_months.iter().position(|&p| p >= m.0))
        .collect()
}

/// The series of `deviations`: the rows at each indicator's SPC grain, by indicator, unit and
/// segment, each in time order.
fn split_series(
    deviations: &DataFrame,
    by_indicator: &BTreeMap<&str, &IndicatorDef>,
) -> PolarsResult<Vec<Series>> {
    let texts = |n: &str| -> PolarsResult<Vec<Option<&str>>> {
        Ok(deviations.column(n)?.str()?.iter().collect())
    };
    let floats = |n: &str| super::floats(deviations, n);
    let (ind, unit, seg, grain, period, kind, path) = (
        texts("indicator_id")?,
        texts("org_unit_id")?,
        texts("segment")?,
        texts("grain")?,
        texts("period")?,
        texts("target_kind")?,
        texts("org_path")?,
    );
    let start = deviations.column("period_start")?.cast(&DataType::Int32)?;
    let start: Vec<Option<i32>> = start.i32()?.iter().collect();
    let (value, target, numerator, denominator) = (
        floats("value")?,
        floats("target_value")?,
        floats("numerator")?,
        floats("denominator")?,
    );
    let spc_grain: BTreeMap<&str, Option<&str>> = by_indicator
        .iter()
        .map(|(id, ind)| (*id, spc_grain(ind).map(|g| g.as_str())))
        .collect();
    let key = |i: usize| {
        (
            ind[i].unwrap_or(""),
            unit[i].unwrap_or(""),
            seg[i].unwrap_or(""),
        )
    };
    let mut rows: Vec<usize> = (0..deviations.height())
        .filter(|&i| {
            let at = ind[i].and_then(|id| spc_grain.get(id).copied().flatten());
            at.is_some() && at == grain[i]
        })
        .collect();
    // The keys are unique (a series has one row per period start): the order is fully set.
    rows.sort_by(|&a, &b| (key(a), start[a]).cmp(&(key(b), start[b])));
    let mut out: Vec<Series> = Vec::new();
    for i in rows {
        let same = out
            .last()
            .is_some_and(|l| (l.indicator.as_str(), l.unit.as_str(), l.segment.as_str()) == key(i));
        if !same {
            let (indicator, unit, segment) = key(i);
            out.push(Series {
                indicator: indicator.to_string(),
                unit: unit.to_string(),
                segment: segment.to_string(),
                grain: grain[i].unwrap_or("").to_string(),
                periods: Vec::new(),
                period_months: Vec::new(),
                values: Vec::new(),
                target: None,
                latest_counts: None,
                counts: Vec::new(),
                parent: None,
                rows: Vec::new(),
            });
        }
        let last = out.last_mut().expect("pushed above");
        last.periods.push(period[i].unwrap_or("").to_string());
        let days = start[i].unwrap_or(0);
        let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")
            + chrono::Duration::days(days as i64);
        last.period_months.push(Month::of_date(date).0);
        last.values.push(value[i]);
        last.latest_counts = numerator[i].zip(denominator[i]);
        last.counts.push(last.latest_counts);
        last.parent = path[i].and_then(|p| p.rsplit('/').nth(1)).map(String::from);
        last.target = match kind[i] {
            Some("floor") | Some("ceiling") => target[i],
            _ => None,
        };
        last.rows.push(i);
    }
    Ok(out)
}

/// The per-point SPC columns, one value per row of the deviations read (`n` rows).
fn point_columns(series: &[Series], analysed: &[Analysis], n: usize) -> Vec<Column> {
    let (mut mean, mut lpl, mut upl) = (vec![None; n], vec![None; n], vec![None; n]);
    let (mut cause, mut ptype) = (vec![None; n], vec![None; n]);
    let mut expected = vec![None; n];
    for (s, a) in series.iter().zip(analysed) {
        // The seasonal expectation, where a season was found: the baseline's level plus the
        // month's index, so the chart shows the winter peak that comes every winter.
        let season = a
            .drift
            .as_ref()
            .and_then(|d| d.season.as_ref().map(|season| (d.centre, season)));
        for ((p, &row), month) in a.spc.points.iter().zip(&s.rows).zip(&s.period_months) {
            expected[row] = season
                .map(|(centre, season)| centre + season.indices[month.rem_euclid(12) as usize]);
            let finite = |x: f64| x.is_finite().then_some(x);
            mean[row] = finite(p.mean);
            lpl[row] = finite(p.lpl);
            upl[row] = finite(p.upl);
            cause[row] = p.value.map(|_| p.special_cause.label());
            ptype[row] = p.value.map(|_| p.point_type.label());
        }
    }
    vec![
        Column::new("spc_mean".into(), mean),
        Column::new("spc_lpl".into(), lpl),
        Column::new("spc_upl".into(), upl),
        Column::new("special_cause".into(), cause),
        Column::new("point_type".into(), ptype),
        Column::new("seasonal_expected".into(), expected),
    ]
}

/// The reason of an `act` for a target outside the process limits on the wrong side.
const CONSISTENT_FAIL: &str = "consistently failing the target: it lies outside the process limits, so the process must change to meet it";
/// The reason of a `watch` for an Anhøj runs signal.
const RUNS_SIGNAL: &str =
    "non-random runs around the mean (Anhøj rules): the process may be shifting";

/// `none`, `watch` or `act`, and why, for one series. With a drift reading (a series long enough
/// for a baseline and a judged window, see `stats::drift`), the flag is the drift reading's:
/// `act` when the latest point is an alarm (the EWMA beyond its act limit on the worse side),
/// when it is beyond the watch limit after a significant trend the worse way (`trend_worse`),
/// or when the target is consistently failed; `watch` when the latest point, or one of the
/// last six, is beyond the watch limit.
/// Shorter series keep the XmR reading (`flag_xmr`).
pub(crate) fn flag(
    spc: &SpcResult,
    drift: Option<&DriftReading>,
    values: &[Option<f64>],
    runs_signal: bool,
    trend_worse: bool,
    periods: &[String],
) -> (&'static str, String) {
    let Some(d) = drift else {
        return flag_xmr(spc, runs_signal, periods);
    };
    let judged = match &d.season {
        Some(_) => "the seasonally adjusted series",
        None => "the series",
    };
    let baseline = format!(
        "its baseline {}–{}",
        periods.first().map(String::as_str).unwrap_or(""),
        periods
            .get(d.judged_from.saturating_sub(1))
            .map(String::as_str)
            .unwrap_or("")
    );
    let widened = |phi: f64| {
        if phi > 0.0 {
            format!("; limits widened for lag-1 autocorrelation {phi:.2}")
        } else {
            String::new()
        }
    };
    let autocorrelation = widened(d.phi);
    if d.latest_alarm(values) {
        let since = d.alarms.first().map(|&i| periods[i].as_str()).unwrap_or("");
        return (
            "act",
            format!(
                "concern: {judged} has moved to the worse side of {baseline}, since {since} (EWMA beyond its limit{})",
                widened(d.phi_act)
            ),
        );
    }
    if trend_worse && d.phi_act < 0.2 && d.latest_watch(values) {
        // A climb that began inside the baseline: the window is only near the limit, but the
        // whole series has a significant trend the worse way (Mann-Kendall). Not where
        // autocorrelation is plausible (φ for the act limits reaches 0.2), which makes
        // Mann-Kendall's p too small (Hamed & Rao 1998).
        return (
            "act",
            format!(
                "concern: {judged} is near the worse-side limit of {baseline} in the latest period, after a significant deteriorating trend{autocorrelation}"
            ),
        );
    }
    if spc.assurance == Some(Assurance::ConsistentFail) {
        return ("act", CONSISTENT_FAIL.into());
    }
    if d.latest_watch(values) {
        return (
            "watch",
            format!(
                "{judged} is near the worse-side limit of {baseline} in the latest period{autocorrelation}"
            ),
        );
    }
    // An excursion that has come back counts while it is recent (the last six periods, as for
    // the XmR flag): one from most of a year ago that has not stayed is not news.
    let recent = values.len().saturating_sub(6);
    if let Some(&i) = d.watch_alarms.last().filter(|&&i| i >= recent) {
        return (
            "watch",
            format!(
                "{judged} was on the worse side of {baseline} in period {}, not in the latest period{autocorrelation}",
                periods[i]
            ),
        );
    }
    if spc.assurance == Some(Assurance::Inconsistent) {
        return (
            "none",
            "hit and miss: the target lies within the process limits".into(),
        );
    }
    match &d.season {
        Some(_) => (
            "none",
            "common-cause variation around its seasonal pattern".into(),
        ),
        None => ("none", "common-cause variation".into()),
    }
}

/// The flag of a bare series as the engine reads it (no target, no rebase): XmR chart, runs
/// and, when the series is long enough, the drift reading. `months` are calendar months 0–11
/// for a monthly series. With `xmr_only`, the flag as it was before the drift reading (for
/// measuring the two side by side).
pub fn flag_series(
    values: &[Option<f64>],
    months: Option<&[u32]>,
    improvement: Direction,
    xmr_only: bool,
) -> &'static str {
    let opts = SpcOptions {
        direction: improvement,
        target: None,
        rebase_at: Vec::new(),
        fix_after: None,
        screen_outliers: true,
    };
    let spc = xmr(values, &opts);
    let runs = anhoej(values, Centre::Mean, &[], None, true);
    let signal = runs.last().is_some_and(|r| r.runs_signal);
    let periods: Vec<String> = (0..values.len()).map(|i| i.to_string()).collect();
    let reading = if xmr_only {
        None
    } else {
        drift(values, months, improvement, &DriftOptions::default())
    };
    let trend_worse = mann_kendall(values, 0.05).is_some_and(|m| worse_trend(&m, improvement));
    flag(
        &spc,
        reading.as_ref(),
        values,
        signal,
        trend_worse,
        &periods,
    )
    .0
}

/// True when a significant Mann-Kendall trend goes the worse way (never for a neutral indicator).
pub(crate) fn worse_trend(m: &MannKendall, improvement: Direction) -> bool {
    m.significant
        && match improvement {
            Direction::Increase => m.z < 0.0,
            Direction::Decrease => m.z > 0.0,
            Direction::Neutral => false,
        }
}

/// The flag of a proportion or rate too short for the drift reading, from Laney's p′ or u′
/// chart: `act` when the latest value is beyond its limit on the worse side (the limit follows
/// that period's size: a small month's dip is binomial noise, a large unit's real shift is not)
/// or the target is consistently failed; `watch` when one of the last six was beyond it, or on
/// a runs signal.
pub fn flag_prime(
    chart: &PrimeChart,
    kind: PrimeKind,
    improvement: Direction,
    spc: &SpcResult,
    runs_signal: bool,
    periods: &[String],
) -> (&'static str, String) {
    let name = kind.label();
    let worse = |p: &super::stats::prime::PrimePoint| match improvement {
        Direction::Increase => p.value < p.lcl,
        Direction::Decrease => p.value > p.ucl,
        Direction::Neutral => false,
    };
    let side = match improvement {
        Direction::Increase => "below the lower",
        _ => "above the upper",
    };
    let Some(last) = chart.points.iter().rposition(Option::is_some) else {
        return ("none", "no values".into());
    };
    if chart.points[last].as_ref().is_some_and(worse) {
        return (
            "act",
            format!("concern: the latest value is {side} {name} limit"),
        );
    }
    if spc.assurance == Some(Assurance::ConsistentFail) {
        return ("act", CONSISTENT_FAIL.into());
    }
    let recent = chart.points.len().saturating_sub(6);
    if let Some(i) = (recent..chart.points.len())
        .rev()
        .find(|&i| chart.points[i].as_ref().is_some_and(worse))
    {
        return (
            "watch",
            format!(
                "concern at {} ({side} {name} limit), not in the latest period",
                periods[i]
            ),
        );
    }
    if runs_signal {
        return ("watch", RUNS_SIGNAL.into());
    }
    ("none", format!("common-cause variation ({name} limits)"))
}

/// The flag from the XmR chart and runs alone, for series too short for a drift reading.
pub fn flag_xmr(spc: &SpcResult, runs_signal: bool, periods: &[String]) -> (&'static str, String) {
    let n = spc.points.len();
    let Some(last) = spc.points.iter().rposition(|p| p.value.is_some()) else {
        return ("none", "no values".into());
    };
    let p = &spc.points[last];
    if p.point_type == PointType::Concern {
        // The signal started where the latest run of the same rule began.
        let mut first = last;
        while first > 0 && spc.points[first - 1].special_cause == p.special_cause {
            first -= 1;
        }
        let what = match p.special_cause {
            SpecialCause::AboveUcl if first == last => {
                "the latest value is above the upper process limit".to_string()
            }
            SpecialCause::AboveUcl => format!(
                "{} values in a row above the upper process limit",
                last - first + 1
            ),
            SpecialCause::BelowLcl if first == last => {
                "the latest value is below the lower process limit".to_string()
            }
            SpecialCause::BelowLcl => format!(
                "{} values in a row below the lower process limit",
                last - first + 1
            ),
            SpecialCause::TrendIncreasing => {
                format!("{} periods rising in a row", last - first + 1)
            }
            SpecialCause::TrendDecreasing => {
                format!("{} periods falling in a row", last - first + 1)
            }
            SpecialCause::ShiftAbove => format!("{} periods above the mean", last - first + 1),
            SpecialCause::ShiftBelow => format!("{} periods below the mean", last - first + 1),
            SpecialCause::TwoInThreeAbove | SpecialCause::TwoInThreeBelow => {
                "2 of the last 3 values near a process limit".to_string()
            }
            SpecialCause::CommonCause => unreachable!("a concern has a special cause"),
        };
        return ("act", format!("concern: {what}, since {}", periods[first]));
    }
    if spc.assurance == Some(Assurance::ConsistentFail) {
        return ("act", CONSISTENT_FAIL.into());
    }
    let recent = n.saturating_sub(6);
    if let Some(i) = (recent..n)
        .rev()
        .find(|&i| spc.points[i].point_type == PointType::Concern)
    {
        return (
            "watch",
            format!(
                "concern at {} ({}), not in the latest period",
                periods[i],
                spc.points[i].special_cause.label()
            ),
        );
    }
    if runs_signal {
        return ("watch", RUNS_SIGNAL.into());
    }
    if spc.assurance == Some(Assurance::Inconsistent) {
        return (
            "none",
            "hit and miss: the target lies within the process limits".into(),
        );
    }
    ("none", "common-cause variation".into())
}

/// One series' row of `signals.parquet`.
struct SignalRow {
    indicator: String,
    unit: String,
    segment: String,
    grain: String,
    latest_period: String,
    latest_value: Option<f64>,
    n_points: u32,
    variation_icon: Option<&'static str>,
    latest_point_type: String,
    latest_special_cause: String,
    target: Option<f64>,
    assurance: Option<&'static str>,
    runs_signal: bool,
    run_chart_signal: bool,
    longest_run: Option<u32>,
    n_crossings: Option<u32>,
    /// 95 % lower and upper, 99.8 % lower and upper.
    ci: [Option<f64>; 4],
    significance_vs_target: Option<&'static str>,
    parent_value: Option<f64>,
    funnel_band: Option<&'static str>,
    trend: &'static str,
    mk_s: Option<f64>,
    mk_p: Option<f64>,
    kendall_tau_b: Option<f64>,
    sens_slope: Option<f64>,
    ols_slope: Option<f64>,
    ols_p: Option<f64>,
    chart: &'static str,
    seasonal: Option<bool>,
    season_p: Option<f64>,
    autocorrelation: Option<f64>,
    ewma_signal: Option<bool>,
    flag: &'static str,
    reason: String,
    spc_warnings: Option<String>,
}

/// The readings of one series: intervals against its target and its parent's value, the
/// trend, the chart it is judged on and the flag with its reason.
fn signal_row(
    s: &Series,
    a: &Analysis,
    ind: &IndicatorDef,
    parent_value: Option<f64>,
) -> SignalRow {
    let (spc, runs) = (&a.spc, &a.runs);
    let polarity = ind.polarity;
    let latest_value = s.values.last().copied().flatten();
    // The latest value's 95 % and 99.8 % intervals, for a proportion or rate with its counts.
    let (i95, i998) = match (ind.stat_kind, s.latest_counts, latest_value) {
        (Some(kind), Some(counts), Some(_)) => (
            interval(kind, ind.scale, counts, 0.95),
            interval(kind, ind.scale, counts, 0.998),
        ),
        _ => (None, None),
    };
    // The short-segment note is on every young series; the others say where styrkort chose
    // a result where the reference implementation stops.
    let notes: Vec<&str> = a
        .spc
        .warnings
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with("Some groups have"))
        .collect();
    let latest_part = runs.last();
    let signal = latest_part.is_some_and(|r| r.runs_signal);
    let (chart, (flag_value, reason)) = chart_and_flag(s, a, polarity, signal);
    let finite = |x: Option<f64>| x.filter(|t| t.is_finite());
    SignalRow {
        indicator: s.indicator.clone(),
        unit: s.unit.clone(),
        segment: s.segment.clone(),
        grain: s.grain.clone(),
        latest_period: s.periods.last().cloned().unwrap_or_default(),
        latest_value,
        n_points: s.values.iter().filter(|v| v.is_some()).count() as u32,
        variation_icon: spc.variation_icon.map(|i| i.label()),
        latest_point_type: spc
            .last_point_type
            .map(|t| t.label())
            .unwrap_or("")
            .to_string(),
        latest_special_cause: spc
            .points
            .last()
            .map(|p| p.special_cause.label())
            .unwrap_or("")
            .to_string(),
        target: s.target,
        assurance: spc.assurance.map(|a| a.label()),
        runs_signal: signal,
        run_chart_signal: a.run_chart.last().is_some_and(|r| r.runs_signal),
        longest_run: latest_part.and_then(|r| r.longest_run).map(|x| x as u32),
        n_crossings: latest_part.and_then(|r| r.n_crossings).map(|x| x as u32),
        ci: [
            i95.and_then(|i| i.0),
            i95.map(|i| i.1),
            i998.and_then(|i| i.0),
            i998.map(|i| i.1),
        ],
        significance_vs_target: match (i95, s.target) {
            (Some((l, u)), Some(t)) => Some(compare(l, Some(u), t).label()),
            _ => None,
        },
        parent_value,
        funnel_band: parent_value.and_then(|b| funnel_band(i95, i998, b)),
        trend: trend_reading(a.mk.as_ref(), polarity),
        mk_s: a.mk.as_ref().map(|m| m.s),
        mk_p: a.mk.as_ref().map(|m| m.p),
        kendall_tau_b: finite(a.mk.as_ref().map(|m| m.tau_b)),
        sens_slope: finite(a.mk.as_ref().map(|m| m.sens_slope)),
        ols_slope: finite(a.line.as_ref().map(|l| l.slope)),
        ols_p: finite(a.line.as_ref().map(|l| l.pvalue)),
        chart,
        seasonal: a.drift.as_ref().map(|d| d.season.is_some()),
        season_p: a
            .drift
            .as_ref()
            .and_then(|d| d.season.as_ref())
            .map(|x| x.p),
        autocorrelation: finite(a.drift.as_ref().map(|d| d.r1)),
        ewma_signal: a.drift.as_ref().map(|d| !d.alarms.is_empty()),
        flag: flag_value,
        reason,
        spc_warnings: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// The chart a series is judged on, and its flag and reason: the drift reading for long series;
/// for a proportion or rate too short for it, Laney's chart, whose limits follow each period's
/// size; else the XmR chart. `runs_signal`: the latest part's runs rules signal.
fn chart_and_flag(
    s: &Series,
    a: &Analysis,
    polarity: Polarity,
    runs_signal: bool,
) -> (&'static str, (&'static str, String)) {
    let spc = &a.spc;
    let trend_worse =
        a.mk.as_ref()
            .is_some_and(|m| worse_trend(m, direction(polarity)));
    match (&a.drift, &a.prime) {
        (None, Some((kind, prime))) => (
            kind.label(),
            flag_prime(
                prime,
                *kind,
                direction(polarity),
                spc,
                runs_signal,
                &s.periods,
            ),
        ),
        (drift, _) => (
            if drift.is_some() { "ewma" } else { "xmr" },
            flag(
                spc,
                drift.as_ref(),
                &s.values,
                runs_signal,
                trend_worse,
                &s.periods,
            ),
        ),
    }
}

fn series_frame(
    series: &[Series],
    analysed: &[Analysis],
    by_indicator: &BTreeMap<&str, &IndicatorDef>,
) -> PolarsResult<DataFrame> {
    let latest: std::collections::HashMap<(&str, &str, &str), Option<f64>> = series
        .iter()
        .map(|s| {
            (
                (s.indicator.as_str(), s.unit.as_str(), s.segment.as_str()),
                s.values.last().copied().flatten(),
            )
        })
        .collect();
    let rows: Vec<SignalRow> = series
        .iter()
        .zip(analysed)
        .map(|(s, a)| {
            let parent_value = s.parent.as_deref().and_then(|p| {
                latest
                    .get(&(s.indicator.as_str(), p, s.segment.as_str()))
                    .copied()
                    .flatten()
            });
            signal_row(s, a, by_indicator[s.indicator.as_str()], parent_value)
        })
        .collect();
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
        ($field:ident [$k:expr]) => {
            rows.iter().map(|r| r.$field[$k]).collect::<Vec<_>>()
        };
    }
    df!(
        "indicator_id" => column!(indicator),
        "org_unit_id" => column!(unit),
        "segment" => column!(segment),
        "grain" => column!(grain),
        "latest_period" => column!(latest_period),
        "latest_value" => column!(latest_value),
        "n_points" => column!(n_points),
        "variation_icon" => column!(variation_icon),
        "latest_point_type" => column!(latest_point_type),
        "latest_special_cause" => column!(latest_special_cause),
        "target" => column!(target),
        "assurance" => column!(assurance),
        "runs_signal" => column!(runs_signal),
        "run_chart_signal" => column!(run_chart_signal),
        "longest_run" => column!(longest_run),
        "n_crossings" => column!(n_crossings),
        "ci95_lower" => column!(ci[0]),
        "ci95_upper" => column!(ci[1]),
        "ci998_lower" => column!(ci[2]),
        "ci998_upper" => column!(ci[3]),
        "significance_vs_target" => column!(significance_vs_target),
        "parent_value" => column!(parent_value),
        "funnel_band" => column!(funnel_band),
        "trend" => column!(trend),
        "mk_s" => column!(mk_s),
        "mk_p" => column!(mk_p),
        "kendall_tau_b" => column!(kendall_tau_b),
        "sens_slope" => column!(sens_slope),
        "ols_slope" => column!(ols_slope),
        "ols_p" => column!(ols_p),
        "chart" => column!(chart),
        "seasonal" => column!(seasonal),
        "season_p" => column!(season_p),
        "autocorrelation" => column!(autocorrelation),
        "ewma_signal" => column!(ewma_signal),
        "flag" => column!(flag),
        "reason" => column!(reason),
        "spc_warnings" => column!(spc_warnings),
    )
}
