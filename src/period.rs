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
    pub(crate) const ALL: [Grain; 5] = [
        Grain::Month,
        Grain::Quarter,
        Grain::Tertial,
        Grain::Year,
        Grain::Ytd,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Grain::Month => "month",
            Grain::Quarter => "quarter",
            Grain::Tertial => "tertial",
            Grain::Year => "year",
            Grain::Ytd => "ytd",
        }
    }

    /// The grain named `s` (`month`, `quarter`, `tertial`, `year`, `ytd`).
    pub(crate) fn parse(s: &str) -> Option<Grain> {
        Grain::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// A calendar month, as `year * 12 + (month - 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Month(pub i32);

impl Month {
    pub(crate) fn new(year: i32, month: u32) -> Month {
        Month(year * 12 + month as i32 - 1)
    }

    /// Parses `YYYY-MM`.
    pub(crate) fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        (1..=12).contains(&month).then(|| Month::new(year, month))
    }

    pub(crate) fn of_date(d: NaiveDate) -> Month {
        Month::new(d.year(), d.month())
    }

    pub(crate) fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1..=12
    pub(crate) fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    pub(crate) fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year(), self.month(), 1).expect("month is always 1..=12")
    }

    pub(crate) fn last_day(self) -> NaiveDate {
        Month(self.0 + 1)
            .first_day()
            .pred_opt()
            .expect("dates before year 1 are not used")
    }

    pub(crate) fn label(self) -> String {
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
pub(crate) struct Period {
    pub(crate) grain: Grain,
    pub(crate) label: String,
    pub(crate) first: Month,
    pub(crate) last: Month,
}

impl Period {
    /// The period of `grain` from `first` to `last`, labelled. Every period label in styrkort is
    /// made here: `2024-03`, `2024-Q1`, `2024-T1`, `2024`, `2024-YTD03` (January to March).
    pub(crate) fn new(grain: Grain, first: Month, last: Month) -> Period {
        let label = match grain {
            Grain::Month => first.label(),
            Grain::Quarter => format!("{:04}-Q{}", first.year(), (first.month() - 1) / 3 + 1),
            Grain::Tertial => format!("{:04}-T{}", first.year(), (first.month() - 1) / 4 + 1),
            Grain::Year => format!("{:04}", first.year()),
            Grain::Ytd => format!("{:04}-YTD{:02}", last.year(), last.month()),
        };
        Period {
            grain,
            label,
            first,
            last,
        }
    }

    /// The year `year` (a whole calendar year).
    pub(crate) fn year(year: i32) -> Period {
        Period::new(Grain::Year, Month::new(year, 1), Month::new(year, 12))
    }

    /// January to `end` of `end`'s year.
    pub(crate) fn ytd(end: Month) -> Period {
        Period::new(Grain::Ytd, Month::new(end.year(), 1), end)
    }

    /// The labels of the period before this one (a year-to-date one month shorter; January's
    /// is last year's full year-to-date) and of the same period a year earlier.
    pub(crate) fn previous_labels(&self) -> (String, String) {
        let back = |months: i32| Month(self.first.0 - months);
        let previous = match self.grain {
            Grain::Month => Period::new(self.grain, back(1), back(1)),
            Grain::Quarter => Period::new(self.grain, back(3), back(1)),
            Grain::Tertial => Period::new(self.grain, back(4), back(1)),
            Grain::Year => Period::year(self.first.year() - 1),
            Grain::Ytd => Period::ytd(Month(self.last.0 - 1)),
        };
        let last_year = Period::new(self.grain, self.first + -12, self.last + -12);
        (previous.label, last_year.label)
    }
}

/// The months a run reports: from the pipeline's first period to the last complete month before
/// the as-of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunMonths {
    pub(crate) first: Month,
    pub(crate) last: Month,
}

impl RunMonths {
    /// `None` when the as-of date leaves no complete month at or after `first`.
    pub(crate) fn new(first: Month, as_of: NaiveDate) -> Option<RunMonths> {
        let last = Month(Month::of_date(as_of).0 - 1);
        (last >= first).then_some(RunMonths { first, last })
    }

    pub(crate) fn contains(self, m: Month) -> bool {
        self.first <= m && m <= self.last
    }

    /// The complete periods of a grain inside the run, in time order.
    pub(crate) fn periods(self, grain: Grain) -> Vec<Period> {
        let mut out = Vec::new();
        let fixed = |len: i32, out: &mut Vec<Period>| {
            // Calendar-aligned blocks of `len` months starting in January.
            let mut start = Month::new(self.first.year(), 1).0;
            while start <= self.last.0 {
                let (a, b) = (Month(start), Month(start + len - 1));
                if self.contains(a) && self.contains(b) {
                    out.push(Period::new(grain, a, b));
                }
                start += len;
            }
        };
        match grain {
            Grain::Month => {
                for m in self.first.0..=self.last.0 {
                    out.push(Period::new(grain, Month(m), Month(m)));
                }
            }
            Grain::Quarter => fixed(3, &mut out),
            Grain::Tertial => fixed(4, &mut out),
            Grain::Year => fixed(12, &mut out),
            Grain::Ytd => {
                for end in self.first.0..=self.last.0 {
                    let end = Month(end);
                    if self.contains(Month::new(end.year(), 1)) {
                        out.push(Period::ytd(end));
                    }
                }
            }
        }
        out
    }

    /// Which periods each month belongs to: columns `__month` (i32), `grain`, `period`.
    /// Joining rows on `__month` places every row in all its periods at once.
    pub(crate) fn membership_frame(self, grains: &[Grain]) -> PolarsResult<DataFrame> {
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
    pub(crate) fn period_frame(self, grains: &[Grain]) -> PolarsResult<DataFrame> {
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

/// The month (`year * 12 + month - 1`) of each date in a column of days since 1970, nulls kept.
/// Every source row passes through this once: chrono runs once per month the column spans
/// (polars' `dt().year()` and `dt().month()` call it twice per row), and each row is placed by
/// one look-up in a table of the days the column spans (a few thousand), or by a binary search
/// over the months' first days when it spans more than 2^16 days. Days outside chrono's
/// calendar give null.
pub(crate) fn months_of_days(days: &Int32Chunked) -> Int32Chunked {
    let to_month = |d: i32| {
        NaiveDate::from_num_days_from_ce_opt(d.saturating_add(EPOCH_DAYS_FROM_CE))
            .map(Month::of_date)
    };
    let bounds = days
        .min()
        .zip(days.max())
        .and_then(|(min, max)| Some((min, max, to_month(min)?, to_month(max)?)));
    let Some((min, max, first, last)) = bounds else {
        return days.apply(|d| d.and_then(to_month).map(|m| m.0));
    };
    let starts: Vec<i32> = (first.0..=last.0)
        .map(|m| days_since_epoch(Month(m).first_day()))
        .collect();
    let month_of = |d: i32| first.0 + starts.partition_point(|&s| s <= d) as i32 - 1;
    if max as i64 - min as i64 >= 1 << 16 {
        return days.apply_values(month_of);
    }
    // A null's slot may hold any value; it falls outside the table and gets a value that is
    // never read.
    let table: Vec<i32> = (min..=max).map(month_of).collect();
    days.apply_values(|d| {
        table
            .get(d.wrapping_sub(min) as u32 as usize)
            .copied()
            .unwrap_or(0)
    })
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (d - epoch).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_of_days_match_the_calendar_over_a_short_span() {
        // 1999-12-01 to 2030-01-31 (2000 a leap year): under 2^16 days, so the day table is
        // used; checked against chrono day by day, nulls between holding far-off values.
        let first = days_since_epoch(NaiveDate::from_ymd_opt(1999, 12, 1).unwrap());
        let last = days_since_epoch(NaiveDate::from_ymd_opt(2030, 1, 31).unwrap());
        let mut values = Vec::new();
        let mut valid = Vec::new();
        for d in first..=last {
            values.extend([d, i32::MIN, i32::MAX]);
            valid.extend([true, false, false]);
        }
        let column = Int32Chunked::from_vec_validity(
            "d".into(),
            values.clone(),
            Some(polars_arrow::bitmap::Bitmap::from_iter(
                valid.iter().copied(),
            )),
        );
        let months: Vec<Option<i32>> = months_of_days(&column).iter().collect();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let expected: Vec<Option<i32>> = values
            .iter()
            .zip(&valid)
            .map(|(&d, &ok)| ok.then(|| Month::of_date(epoch + chrono::Duration::days(d as i64)).0))
            .collect();
        assert_eq!(months, expected);
        assert_eq!(months[0], Some(Month::new(1999, 12).0));
        assert_eq!(months[months.len() - 3], Some(Month::new(2030, 1).0));
    }

    #[test]
    fn months_of_days_match_the_calendar() {
        // Every day from 1899-12-01 to 2101-01-31 (leap years, 1900 not one, 2000 one; over
        // 2^16 days, so by binary search), checked against chrono day by day, with a null between.
        let first = days_since_epoch(NaiveDate::from_ymd_opt(1899, 12, 1).unwrap());
        let last = days_since_epoch(NaiveDate::from_ymd_opt(2101, 1, 31).unwrap());
        let days: Vec<Option<i32>> = (first..=last).flat_map(|d| [Some(d), None]).collect();
        let column = Int32Chunked::from_iter_options("d".into(), days.iter().copied());
        let months: Vec<Option<i32>> = months_of_days(&column).iter().collect();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let expected: Vec<Option<i32>> = days
            .iter()
            .map(|d| d.map(|d| Month::of_date(epoch + chrono::Duration::days(d as i64)).0))
            .collect();
        assert_eq!(months, expected);
        assert_eq!(months[0], Some(Month::new(1899, 12).0));
        // A single day, and an all-null column.
        let one = Int32Chunked::from_slice(
            "d".into(),
            &[days_since_epoch(
                NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
            )],
        );
        assert_eq!(months_of_days(&one).get(0), Some(Month::new(2024, 2).0));
        let none = Int32Chunked::full_null("d".into(), 3);
        assert_eq!(months_of_days(&none).null_count(), 3);
    }

    #[test]
    fn previous_and_last_years_labels() {
        let m = |y, k| Month::new(y, k);
        let cases = [
            (
                Period::new(Grain::Month, m(2024, 1), m(2024, 1)),
                "2023-12",
                "2023-01",
            ),
            (
                Period::new(Grain::Quarter, m(2024, 1), m(2024, 3)),
                "2023-Q4",
                "2023-Q1",
            ),
            (
                Period::new(Grain::Tertial, m(2024, 5), m(2024, 8)),
                "2024-T1",
                "2023-T2",
            ),
            (Period::year(2024), "2023", "2023"),
            (Period::ytd(m(2024, 3)), "2024-YTD02", "2023-YTD03"),
            (Period::ytd(m(2024, 1)), "2023-YTD12", "2023-YTD01"),
        ];
        for (p, previous, last_year) in cases {
            assert_eq!(
                p.previous_labels(),
                (previous.to_string(), last_year.to_string()),
                "{}",
                p.label
            );
        }
    }

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
