//! Inline SVG charts for the HTML report: the SPC chart of one series, the comparison of sibling
//! units (bars), and the funnel plot for proportions. Plain SVG with classes the report's CSS
//! colours: no script, nothing fetched.

use maud::{Markup, html};

use super::words::{Lang, decimals_for};
use crate::assess::stats::funnel::sigma_adjustment;

const W: f64 = 560.0;
const H: f64 = 180.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// One period of an SPC series.
pub(crate) struct SpcPoint {
    pub(crate) period: String,
    pub(crate) value: Option<f64>,
    pub(crate) mean: Option<f64>,
    pub(crate) lpl: Option<f64>,
    pub(crate) upl: Option<f64>,
    /// `common_cause`, `special_cause_improvement`, `special_cause_concern`, …
    pub(crate) point_type: String,
    /// The seasonal expectation (the baseline's level plus the month's seasonal index), where
    /// the flag found a season.
    pub(crate) expected: Option<f64>,
}

/// A linear map from data to pixels.
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn new(values: impl Iterator<Item = f64>, from: f64, to: f64) -> Scale {
        let (mut lo, mut hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let pad = (hi - lo) * 0.05;
        Scale {
            lo: lo - pad,
            hi: hi + pad,
            from,
            to,
        }
    }

    fn at(&self, v: f64) -> f64 {
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }
}

fn points(xy: &[(f64, f64)]) -> String {
    xy.iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The class of a point's circle.
fn point_class(point_type: &str) -> &'static str {
    match point_type {
        "special_cause_improvement" => "pi",
        "special_cause_concern" => "pc",
        "special_cause_neutral_high" | "special_cause_neutral_low" => "pn",
        _ => "pcc",
    }
}

/// The SPC chart of one series: values, mean, process limits, the seasonal expectation (where
/// the series has a season), the target line, and each value a circle coloured by its point
/// type. `data-points` says how many values it shows.
pub(crate) fn spc_chart(
    series: &[SpcPoint],
    target: Option<f64>,
    lang: Lang,
    title: &str,
) -> Markup {
    let n = series.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            (LEFT + W - RIGHT) / 2.0
        } else {
            LEFT + i as f64 * (W - LEFT - RIGHT) / (n - 1) as f64
        }
    };
    let y = Scale::new(
        series
            .iter()
            .flat_map(|p| [p.value, p.mean, p.lpl, p.upl, p.expected])
            .flatten()
            .chain(target),
        H - BOTTOM,
        TOP,
    );
    let line = |f: &dyn Fn(&SpcPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        series
            .iter()
            .enumerate()
            .filter_map(|(i, p)| f(p).map(|v| (x(i), y.at(v))))
            .collect()
    };
    let values = line(&|p| p.value);
    let shown = values.len();
    let fmt = |v: f64| lang.number(v, decimals_for(v));
    html! {
        svg.spc viewBox=(format!("0 0 {W} {H}")) role="img" data-points=(shown) {
            title { (title) }
            line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
            text.tick x=(LEFT - 4.0) y=(y.at(y.hi) + 10.0) text-anchor="end" { (fmt(y.hi)) }
            text.tick x=(LEFT - 4.0) y=(y.at(y.lo)) text-anchor="end" { (fmt(y.lo)) }
            @if let Some(first) = series.first() {
                text.tick x=(LEFT) y=(H - 6.0) { (first.period) }
            }
            @if n > 1 {
                text.tick x=(W - RIGHT) y=(H - 6.0) text-anchor="end" { (series[n - 1].period) }
            }
            polyline.lim points=(points(&line(&|p| p.upl))) {}
            polyline.lim points=(points(&line(&|p| p.lpl))) {}
            polyline.mean points=(points(&line(&|p| p.mean))) {}
            @let expected = line(&|p| p.expected);
            @if !expected.is_empty() {
                polyline.exp points=(points(&expected)) {}
            }
            @if let Some(t) = target {
                line.tgt x1=(LEFT) y1=(format!("{:.1}", y.at(t))) x2=(W - RIGHT) y2=(format!("{:.1}", y.at(t))) {}
            }
            polyline.val points=(points(&values)) {}
            @for (i, p) in series.iter().enumerate() {
                @if let Some(v) = p.value {
                    circle class=(point_class(&p.point_type)) cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y.at(v))) r="3" {
                        title { (p.period) ": " (fmt(v)) }
                    }
                }
            }
        }
    }
}

/// Sibling units side by side: one horizontal bar per unit, the target as a line.
pub(crate) fn bar_chart(
    bars: &[(String, String, f64)],
    target: Option<f64>,
    lang: Lang,
    title: &str,
) -> Markup {
    let row = 16.0;
    let height = TOP + bars.len() as f64 * row + BOTTOM;
    let left = 170.0;
    let x = Scale::new(
        bars.iter().map(|b| b.2).chain(target).chain([0.0]),
        left,
        W - 60.0,
    );
    let zero = x.at(0.0);
    html! {
        svg.bars viewBox=(format!("0 0 {W} {height}")) role="img" data-bars=(bars.len()) {
            title { (title) }
            @for (k, (id, name, v)) in bars.iter().enumerate() {
                @let top = TOP + k as f64 * row;
                a href=(format!("#u-{id}")) {
                    text.tick x=(left - 4.0) y=(top + 11.0) text-anchor="end" { (name) }
                }
                rect.bar x=(format!("{:.1}", zero.min(x.at(*v)))) y=(top + 2.0)
                    width=(format!("{:.1}", (x.at(*v) - zero).abs())) height=(row - 4.0) {}
                text.tick x=(format!("{:.1}", zero.max(x.at(*v)) + 4.0)) y=(top + 11.0) { (lang.number(*v, decimals_for(*v))) }
            }
            @if let Some(t) = target {
                line.tgt x1=(format!("{:.1}", x.at(t))) y1=(TOP) x2=(format!("{:.1}", x.at(t))) y2=(height - BOTTOM) {}
            }
        }
    }
}

/// A funnel plot for a proportion: each unit at (denominator, value), with the 95 % and 99.8 %
/// limits around the units' pooled proportion (`scale` = 100 for percentages).
pub(crate) fn funnel_chart(
    units: &[(String, String, f64, f64)],
    scale: f64,
    lang: Lang,
    title: &str,
) -> Markup {
    let numerators: f64 = units.iter().map(|u| u.2).sum();
    let denominators: f64 = units.iter().map(|u| u.3).sum();
    let pooled = if denominators > 0.0 {
        numerators / denominators
    } else {
        0.0
    };
    let max_n = units.iter().map(|u| u.3).fold(1.0, f64::max);
    let min_n = units.iter().map(|u| u.3).fold(max_n, f64::min).max(1.0);
    let grid: Vec<f64> = (0..=40)
        .map(|k| min_n + (max_n - min_n) * k as f64 / 40.0)
        .collect();
    let limit = |p: f64, high: bool| -> Vec<(f64, f64)> {
        grid.iter()
            .map(|&n| {
                let l = sigma_adjustment(p, n, pooled, high, scale);
                (n, if high { l.min(scale) } else { l.max(0.0) })
            })
            .collect()
    };
    let curves = [
        ("l95", limit(0.975, false)),
        ("l95", limit(0.975, true)),
        ("l998", limit(0.999, false)),
        ("l998", limit(0.999, true)),
    ];
    let x = Scale::new(grid.iter().copied(), LEFT, W - RIGHT);
    let y = Scale::new(
        units
            .iter()
            .map(|u| scale * u.2 / u.3.max(f64::MIN_POSITIVE))
            .chain(curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1))),
        H - BOTTOM,
        TOP,
    );
    let to_px = |c: &[(f64, f64)]| -> Vec<(f64, f64)> {
        c.iter().map(|&(n, v)| (x.at(n), y.at(v))).collect()
    };
    let fmt = |v: f64| lang.number(v, decimals_for(v));
    html! {
        svg.funnel viewBox=(format!("0 0 {W} {H}")) role="img" data-points=(units.len()) {
            title { (title) }
            line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
            text.tick x=(LEFT - 4.0) y=(y.at(y.hi) + 10.0) text-anchor="end" { (fmt(y.hi)) }
            text.tick x=(LEFT - 4.0) y=(y.at(y.lo)) text-anchor="end" { (fmt(y.lo)) }
            text.tick x=(W - RIGHT) y=(H - 6.0) text-anchor="end" { (lang.t("antal (nämnare)", "count (denominator)")) }
            line.mean x1=(LEFT) y1=(format!("{:.1}", y.at(pooled * scale))) x2=(W - RIGHT) y2=(format!("{:.1}", y.at(pooled * scale))) {}
            @for (class, curve) in &curves {
                polyline class=(*class) points=(points(&to_px(curve))) {}
            }
            @for (id, name, num, den) in units {
                @if *den > 0.0 {
                    a href=(format!("#u-{id}")) {
                        circle.pcc cx=(format!("{:.1}", x.at(*den))) cy=(format!("{:.1}", y.at(scale * num / den))) r="3.5" {
                            title { (name) ": " (fmt(scale * num / den)) }
                        }
                    }
                }
            }
        }
    }
}

/// A small round icon with a letter, coloured by kind: the NHS variation and assurance icons.
pub(crate) fn icon(kind: &str, letter: &str, label: &str) -> Markup {
    html! {
        svg.icon viewBox="0 0 20 20" role="img" {
            title { (label) }
            circle class=(kind) cx="10" cy="10" r="9" {}
            text x="10" y="14" text-anchor="middle" { (letter) }
        }
    }
}
