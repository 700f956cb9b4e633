//! Year-end forecast (helårsprognos) for indicators followed year-to-date, at an interim month.
//!
//! The numerator and denominator so far this year are scaled up by the share of the full year
//! that the same months made up in each earlier year of the run (last year's seasonal profile,
//! and the years before it): one forecast per earlier year. Where that share is no profile — a
//! balance that changes sign, or months that carried under 5 % of the year — the rest of the
//! earlier year is added instead. The point forecast is their mean and
//! the interval runs from the lowest to the highest, so a year with a different profile widens
//! it. The outlook compares both ends with the year's target: `likely` when both meet it,
//! `unlikely` when neither does, `uncertain` otherwise.

use std::collections::HashMap;

use polars::prelude::*;

use super::status::{Status, judge};
use super::targets::Targets;
use crate::definitions::{IndicatorDef, Pipeline};
use crate::org::OrgTree;
use crate::period::{Grain, Month, Period, RunMonths};

type Key = (String, String, String); // indicator, unit, segment
/// (numerator, denominator, rows) of one year-to-date cell.
type Cell = (Option<f64>, Option<f64>, i64);

pub(crate) fn forecasts(
    pipeline: &Pipeline,
    tree: &OrgTree,
    targets: &Targets,
    deviations: &DataFrame,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let last = months.last;
    let year = last.year();
    let m = last.month();
    let mut out = ForecastRows::default();
    if m == 12 {
        return out.frame();
    }
    let ytd = |y: i32, month: u32| Period::ytd(Month::new(y, month)).label;
    let cells = ytd_cells(deviations)?;
    let mut keys: Vec<&Key> = cells
        .keys()
        .filter(|(_, p)| *p == ytd(year, m))
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    for key in keys {
        let Some(ind) = pipeline
            .def
            .indicators
            .iter()
            .find(|i| i.id.get_ref() == &key.0)
        else {
            continue;
        };
        if ind.stock.is_some() {
            continue; // a stock's year is its last month, not a sum
        }
        let (Some(num_now), den_now, rows_now) = cells[&(key.clone(), ytd(year, m))] else {
            continue;
        };
        if rows_now == 0 {
            continue;
        }
        let estimates = year_end_estimates(
            &cells,
            key,
            ind,
            months.first.year()..year,
            m,
            (num_now, den_now),
        );
        if estimates.is_empty() {
            continue;
        }
        let point = estimates.iter().sum::<f64>() / estimates.len() as f64;
        let low = estimates.iter().copied().fold(f64::INFINITY, f64::min);
        let high = estimates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let target = targets
            .resolve(
                tree,
                &key.0,
                &key.1,
                crate::period::Grain::Year,
                &Period::year(year).label,
            )
            .map(|t| &targets.list[t])
            .filter(|t| !t.kind.is_relative());
        let outlook = target.map(|t| {
            let met = |v: f64| judge(Some(v), Some(t), None, ind.polarity).status == Status::Met;
            match (met(low), met(high)) {
                (true, true) => "likely",
                (false, false) => "unlikely",
                _ => "uncertain",
            }
        });
        out.push(
            key,
            Period::year(year).label,
            point,
            low,
            high,
            estimates.len() as u32,
            target.map(|t| t.kind.as_str()),
            target.and_then(|t| t.value),
            outlook,
        );
    }
    out.frame()
}

/// Every year-to-date cell of the deviations: (indicator, unit, segment) and period →
/// (numerator, denominator, rows).
fn ytd_cells(deviations: &DataFrame) -> PolarsResult<HashMap<(Key, String), Cell>> {
    let rows = deviations
        .clone()
        .lazy()
        .filter(col("grain").eq(lit(Grain::Ytd.as_str())))
        .select([
            col("indicator_id"),
            col("org_unit_id"),
            col("segment"),
            col("period"),
            col("numerator"),
            col("denominator"),
            col("n_rows"),
        ])
        .collect()?;
    let s = |n: &str| rows.column(n).and_then(|c| c.str().cloned());
    let (ind, unit, seg, period) = (
        s("indicator_id")?,
        s("org_unit_id")?,
        s("segment")?,
        s("period")?,
    );
    let (num, den) = (
        rows.column("numerator")?.f64()?,
        rows.column("denominator")?.f64()?,
    );
    let n_rows = rows.column("n_rows")?.i64()?;
    let mut cells: HashMap<(Key, String), Cell> = HashMap::new();
    for i in 0..rows.height() {
        let key = (
            ind.get(i).unwrap_or("").to_string(),
            unit.get(i).unwrap_or("").to_string(),
            seg.get(i).unwrap_or("").to_string(),
        );
        cells.insert(
            (key, period.get(i).unwrap_or("").to_string()),
            (num.get(i), den.get(i), n_rows.get(i).unwrap_or(0)),
        );
    }
    Ok(cells)
}

/// One year-end estimate per earlier year that has both the same months and the whole year:
/// this year's sums scaled by that year's ratio of whole year to same months.
fn year_end_estimates(
    cells: &HashMap<(Key, String), Cell>,
    key: &Key,
    ind: &IndicatorDef,
    earlier_years: std::ops::Range<i32>,
    m: u32,
    (num_now, den_now): (f64, Option<f64>),
) -> Vec<f64> {
    let ytd = |y: i32, month: u32| Period::ytd(Month::new(y, month)).label;
    let mut estimates = Vec::new();
    for earlier in earlier_years {
        let (Some(&(Some(n_part), d_part, _)), Some(&(Some(n_full), d_full, _))) = (
            cells.get(&(key.clone(), ytd(earlier, m))),
            cells.get(&(key.clone(), ytd(earlier, 12))),
        ) else {
            continue;
        };
        let numerator = year_end(num_now, n_part, n_full);
        let value = match (den_now, d_part, d_full) {
            (Some(dn), Some(dp), Some(df)) => {
                let denominator = year_end(dn, dp, df);
                if denominator == 0.0 {
                    continue;
                }
                ind.scale * numerator / denominator
            }
            (None, _, _) if ind.denominator.is_none() => ind.scale * numerator,
            _ => continue,
        };
        if value.is_finite() {
            estimates.push(value);
        }
    }
    estimates
}

/// This year's `now` carried to year end by an earlier year's `part` (same months) and `full`.
fn year_end(now: f64, part: f64, full: f64) -> f64 {
    let share = part / full;
    if part != 0.0 && share.is_finite() && share >= 0.05 {
        now / share
    } else {
        now + (full - part)
    }
}

#[derive(Default)]
struct ForecastRows {
    key: [Vec<String>; 3],
    year: Vec<String>,
    point: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    n_years: Vec<u32>,
    kind: Vec<Option<&'static str>>,
    target: Vec<Option<f64>>,
    outlook: Vec<Option<&'static str>>,
}

impl ForecastRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        key: &Key,
        year: String,
        point: f64,
        low: f64,
        high: f64,
        n_years: u32,
        kind: Option<&'static str>,
        target: Option<f64>,
        outlook: Option<&'static str>,
    ) {
        self.key[0].push(key.0.clone());
        self.key[1].push(key.1.clone());
        self.key[2].push(key.2.clone());
        self.year.push(year);
        self.point.push(point);
        self.low.push(low);
        self.high.push(high);
        self.n_years.push(n_years);
        self.kind.push(kind);
        self.target.push(target);
        self.outlook.push(outlook);
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        let [a, b, c] = self.key;
        df!(
            "indicator_id" => a,
            "org_unit_id" => b,
            "segment" => c,
            "forecast_year" => self.year,
            "forecast_year_end" => self.point,
            "forecast_low" => self.low,
            "forecast_high" => self.high,
            "forecast_profile_years" => self.n_years,
            "forecast_target_kind" => self.kind,
            "forecast_target" => self.target,
            "forecast_outlook" => self.outlook,
        )
    }
}
