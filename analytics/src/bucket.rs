//! Time buckets, typed: a bucket is the local time it starts at, never a formatted string, so
//! both engines and the zero-filling agree by value and a series is indexed once per period.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bucket {
    Hour,
    Day,
    /// ISO weeks, from Monday (PostgreSQL's `date_trunc('week', …)`).
    Week,
    Month,
}

impl Bucket {
    /// The start of the bucket a local time falls in.
    pub fn start(self, at: NaiveDateTime) -> NaiveDateTime {
        let day = at.date();
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN);
        match self {
            Bucket::Hour => midnight(day) + TimeDelta::hours(i64::from(at.hour())),
            Bucket::Day => midnight(day),
            Bucket::Week => midnight(week_of(day)),
            Bucket::Month => midnight(day.with_day(1).unwrap_or(day)),
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(self, start: NaiveDateTime) -> NaiveDateTime {
        match self {
            Bucket::Hour => start + TimeDelta::hours(1),
            Bucket::Day => start + TimeDelta::days(1),
            Bucket::Week => start + TimeDelta::weeks(1),
            Bucket::Month => start
                .checked_add_months(Months::new(1))
                .unwrap_or(start + TimeDelta::days(31)),
        }
    }

    /// Every bucket of the local days `from..=to`, in order: a series has no holes.
    pub fn series(self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDateTime> {
        let end = to.and_time(NaiveTime::MIN) + TimeDelta::days(1);
        let mut out = Vec::new();
        let mut at = self.start(from.and_time(NaiveTime::MIN));
        while at < end {
            out.push(at);
            at = self.next(at);
        }
        out
    }

    /// How a bucket is written in answers: `2026-11-01T10:00` for hours, the first day else.
    pub fn label(self, start: NaiveDateTime) -> String {
        match self {
            Bucket::Hour => start.format("%Y-%m-%dT%H:00").to_string(),
            _ => start.format("%Y-%m-%d").to_string(),
        }
    }

    /// The bucket's start as SQL over a visit's local `hour` (a timestamp) and `day` (a date).
    pub fn sql(self, hour: &str, day: &str) -> String {
        match self {
            Bucket::Hour => hour.to_owned(),
            Bucket::Day => format!("{day}::timestamp"),
            Bucket::Week => format!("date_trunc('week', {day}::timestamp)"),
            Bucket::Month => format!("date_trunc('month', {day}::timestamp)"),
        }
    }
}

/// The Monday of a day's ISO week.
pub fn week_of(day: NaiveDate) -> NaiveDate {
    day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("a day")
    }

    #[test]
    fn series_cover_the_range_without_holes() {
        assert_eq!(Bucket::Day.series(day(1), day(30)).len(), 30);
        assert_eq!(Bucket::Hour.series(day(1), day(2)).len(), 48);
        // 2026-11-01 is a Sunday: its week starts on 2026-10-26.
        let weeks = Bucket::Week.series(day(1), day(30));
        assert_eq!(
            weeks.first().map(|w| Bucket::Week.label(*w)),
            Some("2026-10-26".into())
        );
        assert_eq!(weeks.len(), 6);
        let months = Bucket::Month.series(day(1), day(30));
        assert_eq!(
            months
                .iter()
                .map(|m| Bucket::Month.label(*m))
                .collect::<Vec<_>>(),
            ["2026-11-01"]
        );
        let two_years = Bucket::Day.series(day(1) - TimeDelta::days(731), day(1));
        assert_eq!(two_years.len(), 732);
    }

    #[test]
    fn a_time_falls_in_the_bucket_that_starts_before_it() {
        let at = day(18).and_hms_opt(13, 45, 10).expect("a time");
        assert_eq!(
            Bucket::Hour.label(Bucket::Hour.start(at)),
            "2026-11-18T13:00"
        );
        assert_eq!(Bucket::Week.label(Bucket::Week.start(at)), "2026-11-16");
        assert_eq!(Bucket::Month.label(Bucket::Month.start(at)), "2026-11-01");
    }
}
