//! Grains, months and period labels: which periods a run reports and which months each covers.
//!
//! Months are numbered as `year * 12 + (month - 1)` so that period membership is integer
//! arithmetic inside the polars plan. Only complete periods inside the run's month range are
//! reported; a partial year shows only as year-to-date.

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    Month,
    Quarter,
    /// T1 Jan–Apr, T2 May–Aug, T3 Sep–Dec.
    Tertial,
    Year,
    /// January through each month's end.
    Ytd,
}

impl Grain {
    pub const ALL: [Grain; 5] = [
        Grain::Month,
        Grain::Quarter,
        Grain::Tertial,
        Grain::Year,
        Grain::Ytd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Month => "month",
            Grain::Quarter => "quarter",
            Grain::Tertial => "tertial",
            Grain::Year => "year",
            Grain::Ytd => "ytd",
        }
    }
}

/// A calendar month, as `year * 12 + (month - 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(pub i32);

impl Month {
    pub fn new(year: i32, month: u32) -> Month {
        Month(year * 12 + month as i32 - 1)
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        (1..=12).contains(&month).then(|| Month::new(year, month))
    }

    pub fn of_date(d: NaiveDate) -> Month {
        Month::new(d.year(), d.month())
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1..=12
    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year(), self.month(), 1).expect("month is always 1..=12")
    }

    pub fn last_day(self) -> NaiveDate {
        Month(self.0 + 1)
            .first_day()
            .pred_opt()
            .expect("dates before year 1 are not used")
    }

    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.year(), self.month())
    }
}

impl std::ops::Add<i32> for Month {
    type Output = Month;
    fn add(self, months: i32) -> Month {
        Month(self.0 + months)
    }
}

/// One reported period: a grain, its label, and the months it covers (inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub grain: Grain,
    pub label: String,
    pub first: Month,
    pub last: Month,
}

/// The months a run reports: from the pipeline's first period to the last complete month before
/// the as-of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunMonths {
    pub first: Month,
    pub last: Month,
}

impl RunMonths {
    /// `None` when the as-of date leaves no complete month at or after `first`.
    pub fn new(first: Month, as_of: NaiveDate) -> Option<RunMonths> {
        let last = Month(Month::of_date(as_of).0 - 1);
        (last >= first).then_some(RunMonths { first, last })
    }

    pub fn contains(self, m: Month) -> bool {
        self.first <= m && m <= self.last
    }

    /// The complete periods of a grain inside the run, in time order.
    pub fn periods(self, grain: Grain) -> Vec<Period> {
        let mut out = Vec::new();
        let fixed = |len: i32, label: &dyn Fn(Month) -> String, out: &mut Vec<Period>| {
            // Calendar-aligned blocks of `len` months starting in January.
            let mut start = Month::new(self.first.year(), 1).0;
            while start <= self.last.0 {
                let (a, b) = (Month(start), Month(start + len - 1));
                if self.contains(a) && self.contains(b) {
                    out.push(Period {
                        grain,
                        label: label(a),
                        first: a,
                        last: b,
                    });
                }
                start += len;
            }
        };
        match grain {
            Grain::Month => {
                for m in self.first.0..=self.last.0 {
                    let m = Month(m);
                    out.push(Period {
                        grain,
                        label: m.label(),
                        first: m,
                        last: m,
                    });
                }
            }
            Grain::Quarter => fixed(
                3,
                &|m| format!("{:04}-Q{}", m.year(), (m.month() - 1) / 3 + 1),
                &mut out,
            ),
            Grain::Tertial => fixed(
                4,
                &|m| format!("{:04}-T{}", m.year(), (m.month() - 1) / 4 + 1),
                &mut out,
            ),
            Grain::Year => fixed(12, &|m| format!("{:04}", m.year()), &mut out),
            Grain::Ytd => {
                for end in self.first.0..=self.last.0 {
                    let end = Month(end);
                    let jan = Month::new(end.year(), 1);
                    if self.contains(jan) {
                        out.push(Period {
                            grain,
                            label: format!("{:04}-YTD{:02}", end.year(), end.month()),
                            first: jan,
                            last: end,
                        });
                    }
                }
            }
        }
        out
    }

    /// Which periods each month belongs to: columns `__month` (i32), `grain`, `period`.
    /// Joining rows on `__month` places every row in all its periods at once.
    pub fn membership_frame(self, grains: &[Grain]) -> PolarsResult<DataFrame> {
        let (mut months, mut grain_col, mut label) = (Vec::new(), Vec::new(), Vec::new());
        for &g in grains {
            for p in self.periods(g) {
                for m in p.first.0..=p.last.0 {
                    months.push(m);
                    grain_col.push(g.as_str());
                    label.push(p.label.clone());
                }
            }
        }
        df!(
            "__month" => months,
            "grain" => grain_col,
            "period" => label,
        )
    }

    /// One row per period: `grain`, `period`, `period_start`, `period_end` (dates, end
    /// inclusive), `__first_month`, `__last_month`.
    pub fn period_frame(self, grains: &[Grain]) -> PolarsResult<DataFrame> {
        let periods: Vec<Period> = grains.iter().flat_map(|&g| self.periods(g)).collect();
        let mut df = df!(
            "grain" => periods.iter().map(|p| p.grain.as_str()).collect::<Vec<_>>(),
            "period" => periods.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(),
            "period_start" => periods.iter().map(|p| days_since_epoch(p.first.first_day())).collect::<Vec<_>>(),
            "period_end" => periods.iter().map(|p| days_since_epoch(p.last.last_day())).collect::<Vec<_>>(),
            "__first_month" => periods.iter().map(|p| p.first.0).collect::<Vec<_>>(),
            "__last_month" => periods.iter().map(|p| p.last.0).collect::<Vec<_>>(),
        )?;
        for name in ["period_start", "period_end"] {
            let dates = df.column(name)?.cast(&DataType::Date)?;
            df.with_column(dates)?;
        }
        Ok(df)
    }
}

pub fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (d - epoch).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: &str, as_of: &str) -> RunMonths {
        RunMonths::new(
            Month::parse(first).unwrap(),
            NaiveDate::parse_from_str(as_of, "%Y-%m-%d").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn last_month_is_the_last_complete_month_before_as_of() {
        let r = run("2023-01", "2024-09-15");
        assert_eq!(r.last, Month::new(2024, 8));
        let r = run("2023-01", "2024-09-01");
        assert_eq!(r.last, Month::new(2024, 8));
        assert!(
            RunMonths::new(
                Month::new(2024, 9),
                NaiveDate::from_ymd_opt(2024, 9, 30).unwrap()
            )
            .is_none()
        );
    }

    #[test]
    fn only_complete_periods_are_reported() {
        // Run Feb 2023 .. Aug 2024: Q1 2023 and 2023 YTD are incomplete at the start;
        // 2024 is a partial year, so it appears only as ytd.
        let r = run("2023-02", "2024-09-10");
        let labels = |g| {
            r.periods(g)
                .into_iter()
                .map(|p| p.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(Grain::Quarter),
            ["2023-Q2", "2023-Q3", "2023-Q4", "2024-Q1", "2024-Q2"]
        );
        assert_eq!(
            labels(Grain::Tertial),
            ["2023-T2", "2023-T3", "2024-T1", "2024-T2"]
        );
        assert_eq!(labels(Grain::Year), Vec::<String>::new());
        assert_eq!(
            labels(Grain::Ytd),
            (1..=8)
                .map(|m| format!("2024-YTD{m:02}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(r.periods(Grain::Month).len(), 19);
    }

    #[test]
    fn tertials_are_four_months() {
        let r = run("2024-01", "2025-01-01");
        let t: Vec<_> = r
            .periods(Grain::Tertial)
            .into_iter()
            .map(|p| (p.label, p.first.month(), p.last.month()))
            .collect();
        assert_eq!(
            t,
            [
                ("2024-T1".to_string(), 1, 4),
                ("2024-T2".to_string(), 5, 8),
                ("2024-T3".to_string(), 9, 12)
            ]
        );
    }

    #[test]
    fn month_bounds() {
        assert_eq!(
            Month::new(2024, 2).last_day(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert_eq!(Month::parse("2024-13"), None);
        assert_eq!(Month::parse("2024-1"), None);
        assert_eq!(Month::parse("2024-12").unwrap().label(), "2024-12");
    }
}
