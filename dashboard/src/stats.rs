//! A Stats query and its answer, independent of where the counts come from: the request's
//! shape (the GraphQL input types), its checks, the metrics derived from additive counts, the
//! order, the limit and the comparison with the previous period.

use std::collections::HashMap;

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};
use entity::rollup::{Counts, Dimension as Stored};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Visitors,
    Visits,
    Pageviews,
    ViewsPerVisit,
    BounceRate,
    VisitDuration,
}

impl Metric {
    /// From the additive counts of a group: visitors, visits and page views as counted;
    /// page views per visit to two decimals; bounce rate in whole percent; visit duration in
    /// whole seconds (the mean).
    pub fn of(self, c: &Counts) -> f64 {
        let per_visit = |n: i64| {
            if c.visits == 0 {
                0.0
            } else {
                n as f64 / c.visits as f64
            }
        };
        match self {
            Metric::Visitors => c.visitors as f64,
            Metric::Visits => c.visits as f64,
            Metric::Pageviews => c.pageviews as f64,
            Metric::ViewsPerVisit => (per_visit(c.pageviews) * 100.0).round() / 100.0,
            Metric::BounceRate => (per_visit(c.bounces) * 100.0).round(),
            Metric::VisitDuration => per_visit(c.duration).round(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    TimeHour,
    TimeDay,
    TimeWeek,
    TimeMonth,
    Page,
    EntryPage,
    ExitPage,
    Source,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    Browser,
    Os,
    Device,
}

impl Dimension {
    /// The stored dimension, `None` for time.
    pub fn stored(self) -> Option<Stored> {
        Some(match self {
            Dimension::TimeHour
            | Dimension::TimeDay
            | Dimension::TimeWeek
            | Dimension::TimeMonth => return None,
            Dimension::Page => Stored::Page,
            Dimension::EntryPage => Stored::EntryPage,
            Dimension::ExitPage => Stored::ExitPage,
            Dimension::Source => Stored::Source,
            Dimension::Channel => Stored::Channel,
            Dimension::UtmSource => Stored::UtmSource,
            Dimension::UtmMedium => Stored::UtmMedium,
            Dimension::UtmCampaign => Stored::UtmCampaign,
            Dimension::Browser => Stored::Browser,
            Dimension::Os => Stored::Os,
            Dimension::Device => Stored::Device,
        })
    }

    pub fn is_time(self) -> bool {
        self.stored().is_none()
    }

    /// The column header of a CSV export.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::TimeHour => "hour",
            Dimension::TimeDay => "day",
            Dimension::TimeWeek => "week",
            Dimension::TimeMonth => "month",
            other => other.stored().map_or("", Stored::as_str),
        }
    }

    /// The bucket a local hour falls in, as it is written in answers.
    pub fn bucket(self, hour: NaiveDateTime) -> String {
        let day = hour.date();
        match self {
            Dimension::TimeHour => hour.format("%Y-%m-%dT%H:00").to_string(),
            Dimension::TimeWeek => week_of(day).format("%Y-%m-%d").to_string(),
            Dimension::TimeMonth => day
                .with_day(1)
                .unwrap_or(day)
                .format("%Y-%m-%d")
                .to_string(),
            _ => day.format("%Y-%m-%d").to_string(),
        }
    }
}

/// The Monday of a day's ISO week (what PostgreSQL's `date_trunc('week', …)` gives).
pub fn week_of(day: NaiveDate) -> NaiveDate {
    day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Is,
    IsNot,
    /// Case-insensitive substring.
    Contains,
}

#[derive(InputObject, Debug, Clone)]
pub struct Filter {
    pub dimension: Dimension,
    pub op: FilterOp,
    /// `""` matches "none" (no UTM source, no referrer).
    pub values: Vec<String>,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    Asc,
    #[default]
    Desc,
}

/// Sort by a metric or by a dimension of the query.
#[derive(InputObject, Debug, Clone)]
pub struct OrderBy {
    pub metric: Option<Metric>,
    pub dimension: Option<Dimension>,
    #[graphql(default)]
    pub direction: Direction,
}

/// Local dates of the site, both included.
#[derive(InputObject, Debug, Clone)]
pub struct DateRange {
    pub from: String,
    pub to: String,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// The same number of days just before the range.
    PreviousPeriod,
}

#[derive(InputObject, Debug, Clone)]
pub struct StatsQuery {
    pub site: String,
    pub date_range: DateRange,
    pub metrics: Vec<Metric>,
    #[graphql(default)]
    pub dimensions: Vec<Dimension>,
    #[graphql(default)]
    pub filters: Vec<Filter>,
    #[graphql(default)]
    pub order_by: Vec<OrderBy>,
    #[graphql(default = 100)]
    pub limit: i32,
    #[graphql(default)]
    pub offset: i32,
    pub compare: Option<Compare>,
}

/// Why a query is refused; `code` is the GraphQL error's `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("dateRange.{field}: {value:?} is not a date (YYYY-MM-DD)")]
    InvalidDate { field: &'static str, value: String },
    #[error("dateRange: `from` ({from}) is after `to` ({to})")]
    EmptyRange { from: NaiveDate, to: NaiveDate },
    #[error("dateRange spans {days} days; the limit is {max} (dashboard.max_date_span_days)")]
    RangeTooLong { days: i64, max: u32 },
    #[error("limit: {0} is not between 1 and {1} (dashboard.max_limit)")]
    Limit(i32, usize),
    #[error("offset: must not be negative")]
    Offset,
    #[error("{0}: not a whole number")]
    NotANumber(&'static str),
    #[error("metrics: name at least one metric")]
    NoMetric,
    #[error("dimensions: {0}")]
    Dimensions(String),
    #[error("filters: {0}")]
    Filters(String),
    #[error("orderBy: {0}")]
    OrderBy(String),
    #[error("site: {0:?} is not a site this system has seen")]
    UnknownSite(String),
}

impl QueryError {
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidDate { .. } | QueryError::EmptyRange { .. } => "INVALID_DATE_RANGE",
            QueryError::RangeTooLong { .. } => "DATE_RANGE_TOO_LONG",
            QueryError::Limit(..) | QueryError::Offset | QueryError::NotANumber(_) => {
                "LIMIT_OUT_OF_RANGE"
            }
            QueryError::UnknownSite(_) => "UNKNOWN_SITE",
            _ => "BAD_USER_INPUT",
        }
    }
}

/// A checked query: dates parsed, at most one time dimension, limits within bounds.
#[derive(Debug, Clone)]
pub struct Checked {
    pub site: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub metrics: Vec<Metric>,
    pub time: Option<Dimension>,
    /// The non-time dimensions, in the order asked.
    pub dimensions: Vec<Dimension>,
    pub filters: Vec<Filter>,
    pub order_by: Vec<OrderBy>,
    pub limit: usize,
    pub offset: usize,
    pub compare: Option<Compare>,
}

impl Checked {
    pub fn new(q: &StatsQuery, limits: &settings::DashboardSettings) -> Result<Self, QueryError> {
        let date = |field, value: &str| {
            NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
                QueryError::InvalidDate {
                    field,
                    value: value.chars().take(40).collect(),
                }
            })
        };
        let (from, to) = (
            date("from", &q.date_range.from)?,
            date("to", &q.date_range.to)?,
        );
        if from > to {
            return Err(QueryError::EmptyRange { from, to });
        }
        let days = (to - from).num_days() + 1;
        let max = limits.max_date_span_days.get();
        if days > i64::from(max) {
            return Err(QueryError::RangeTooLong { days, max });
        }
        if q.limit < 1 || q.limit as usize > limits.max_limit.get() {
            return Err(QueryError::Limit(q.limit, limits.max_limit.get()));
        }
        if q.offset < 0 {
            return Err(QueryError::Offset);
        }
        if q.metrics.is_empty() {
            return Err(QueryError::NoMetric);
        }
        let times: Vec<Dimension> = q
            .dimensions
            .iter()
            .copied()
            .filter(|d| d.is_time())
            .collect();
        if times.len() > 1 {
            return Err(QueryError::Dimensions(
                "at most one TIME_* dimension".into(),
            ));
        }
        let dimensions: Vec<Dimension> = q
            .dimensions
            .iter()
            .copied()
            .filter(|d| !d.is_time())
            .collect();
        if dimensions.len() > 3 {
            return Err(QueryError::Dimensions(
                "at most three dimensions besides time".into(),
            ));
        }
        if has_repeats(&dimensions) {
            return Err(QueryError::Dimensions("a dimension is named twice".into()));
        }
        for f in &q.filters {
            if f.dimension.is_time() {
                return Err(QueryError::Filters(
                    "time is chosen with dateRange, not with a filter".into(),
                ));
            }
            if f.values.is_empty() || f.values.len() > 100 {
                return Err(QueryError::Filters(
                    "each filter takes 1 to 100 values".into(),
                ));
            }
            if f.values.iter().any(|v| v.len() > 2048) {
                return Err(QueryError::Filters("a value is over 2048 bytes".into()));
            }
        }
        if q.filters.len() > 10 {
            return Err(QueryError::Filters("at most 10 filters".into()));
        }
        for o in &q.order_by {
            match (o.metric, o.dimension) {
                (Some(m), None) if q.metrics.contains(&m) => {}
                (None, Some(d)) if q.dimensions.contains(&d) => {}
                _ => {
                    return Err(QueryError::OrderBy(
                        "each entry names one metric or one dimension of the query".into(),
                    ))
                }
            }
        }
        Ok(Checked {
            site: q.site.trim().to_ascii_lowercase(),
            from,
            to,
            metrics: q.metrics.clone(),
            time: times.first().copied(),
            dimensions,
            filters: q.filters.clone(),
            order_by: q.order_by.clone(),
            limit: q.limit as usize,
            offset: q.offset as usize,
            compare: q.compare,
        })
    }

    /// The same query over the days just before this range.
    pub fn previous_period(&self) -> Checked {
        let days = (self.to - self.from).num_days() + 1;
        Checked {
            from: self.from - TimeDelta::days(days),
            to: self.from - TimeDelta::days(1),
            compare: None,
            ..self.clone()
        }
    }
}

fn has_repeats(dimensions: &[Dimension]) -> bool {
    dimensions
        .iter()
        .enumerate()
        .any(|(i, d)| dimensions[..i].contains(d))
}

/// One group of an answer before its metrics are derived: the time bucket (if any), the values
/// of the non-time dimensions, and the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub bucket: Option<String>,
    pub values: Vec<String>,
    pub counts: Counts,
}

#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct StatsRow {
    /// In the order of `dimensions`; null for "none".
    pub dimensions: Vec<Option<String>>,
    /// In the order of `metrics`.
    pub metrics: Vec<f64>,
    /// The same group in the previous period, when `compare` is set.
    pub comparison: Option<Comparison>,
}

#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Comparison {
    pub metrics: Vec<f64>,
    /// Change in percent of the previous value (null when it was 0); for BOUNCE_RATE, the
    /// difference in points.
    pub change: Vec<Option<f64>>,
}

/// Every time bucket of the range, in order (time series have no holes).
pub fn buckets(time: Dimension, from: NaiveDate, to: NaiveDate) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut day = from;
    while day <= to {
        let hours = if time == Dimension::TimeHour { 24 } else { 1 };
        for h in 0..hours {
            let bucket = time.bucket(day.and_hms_opt(h, 0, 0).unwrap_or_default());
            if out.last() != Some(&bucket) {
                out.push(bucket);
            }
        }
        day += TimeDelta::days(1);
    }
    out
}

/// Turns groups into answer rows: zero-filled time buckets (when time is the only dimension),
/// metrics derived, sorted, paged.
pub fn rows(q: &Checked, mut groups: Vec<Group>) -> Vec<(Group, StatsRow)> {
    groups.retain(|g| g.counts.visits != 0 || g.counts.pageviews != 0);
    if let (Some(time), true) = (q.time, q.dimensions.is_empty()) {
        let mut by_bucket: HashMap<String, Group> = groups
            .into_iter()
            .filter_map(|g| Some((g.bucket.clone()?, g)))
            .collect();
        groups = buckets(time, q.from, q.to)
            .into_iter()
            .map(|b| {
                by_bucket.remove(&b).unwrap_or(Group {
                    bucket: Some(b),
                    values: Vec::new(),
                    counts: Counts::default(),
                })
            })
            .collect();
    }
    let mut rows: Vec<(Group, StatsRow)> = groups
        .into_iter()
        .map(|g| {
            let row = StatsRow {
                dimensions: dimension_values(q, &g),
                metrics: q.metrics.iter().map(|m| m.of(&g.counts)).collect(),
                comparison: None,
            };
            (g, row)
        })
        .collect();
    rows.sort_by(|a, b| compare_rows(q, a, b));
    rows.into_iter().skip(q.offset).take(q.limit).collect()
}

/// The dimension values of a group in the order the query named its dimensions.
fn dimension_values(q: &Checked, g: &Group) -> Vec<Option<String>> {
    let mut values = g.values.iter();
    let mut out = Vec::new();
    let asked = q.time.into_iter().chain(q.dimensions.iter().copied());
    for d in asked {
        if d.is_time() {
            out.push(g.bucket.clone());
        } else {
            out.push(values.next().filter(|v| !v.is_empty()).cloned());
        }
    }
    out
}

fn compare_rows(q: &Checked, a: &(Group, StatsRow), b: &(Group, StatsRow)) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let by_metric = |m: Metric| {
        let (x, y) = (m.of(&a.0.counts), m.of(&b.0.counts));
        x.partial_cmp(&y).unwrap_or(Ordering::Equal)
    };
    let by_dimension = |d: Dimension| {
        let i = q
            .time
            .into_iter()
            .chain(q.dimensions.iter().copied())
            .position(|x| x == d);
        i.map_or(Ordering::Equal, |i| {
            a.1.dimensions[i].cmp(&b.1.dimensions[i])
        })
    };
    for o in &q.order_by {
        let ord = match (o.metric, o.dimension) {
            (Some(m), _) => by_metric(m),
            (_, Some(d)) => by_dimension(d),
            _ => Ordering::Equal,
        };
        let ord = if o.direction == Direction::Desc {
            ord.reverse()
        } else {
            ord
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    // Defaults: time ascending, then the first metric descending, then the values.
    if let Some(t) = q.time {
        let ord = by_dimension(t);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    by_metric(q.metrics[0])
        .reverse()
        .then_with(|| a.1.dimensions.cmp(&b.1.dimensions))
}

/// Attaches the previous period's figures to each row: matched by dimension values, and for
/// time buckets by position in the period.
pub fn attach_comparison(q: &Checked, current: &mut [(Group, StatsRow)], previous: Vec<Group>) {
    let position = |q: &Checked, bucket: &Option<String>| {
        let (Some(time), Some(b)) = (q.time, bucket) else {
            return 0;
        };
        buckets(time, q.from, q.to)
            .iter()
            .position(|x| x == b)
            .unwrap_or(usize::MAX)
    };
    let prev_q = q.previous_period();
    let previous: HashMap<(usize, Vec<String>), Counts> = previous
        .into_iter()
        .map(|g| ((position(&prev_q, &g.bucket), g.values), g.counts))
        .collect();
    for (group, row) in current.iter_mut() {
        let key = (position(q, &group.bucket), group.values.clone());
        let before = previous.get(&key).copied().unwrap_or_default();
        let metrics: Vec<f64> = q.metrics.iter().map(|m| m.of(&before)).collect();
        let change = q
            .metrics
            .iter()
            .zip(&row.metrics)
            .zip(&metrics)
            .map(|((m, now), then)| match m {
                Metric::BounceRate => Some(now - then),
                _ if *then == 0.0 => None,
                _ => Some(((now - then) / then * 1000.0).round() / 10.0),
            })
            .collect();
        row.comparison = Some(Comparison { metrics, change });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_derive_from_additive_counts() {
        let c = Counts {
            pageviews: 10,
            visitors: 3,
            visits: 4,
            bounces: 1,
            duration: 250,
        };
        let m = |m: Metric| m.of(&c);
        assert_eq!(
            [m(Metric::Visitors), m(Metric::Visits), m(Metric::Pageviews)],
            [3.0, 4.0, 10.0]
        );
        assert_eq!(m(Metric::ViewsPerVisit), 2.5);
        assert_eq!(m(Metric::BounceRate), 25.0);
        assert_eq!(m(Metric::VisitDuration), 63.0);
        assert_eq!(Metric::BounceRate.of(&Counts::default()), 0.0);
    }

    #[test]
    fn buckets_cover_the_range_without_holes() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("a day");
        assert_eq!(buckets(Dimension::TimeDay, day(1), day(30)).len(), 30);
        assert_eq!(buckets(Dimension::TimeHour, day(1), day(2)).len(), 48);
        // 2026-11-01 is a Sunday: its week starts on 2026-10-26.
        let weeks = buckets(Dimension::TimeWeek, day(1), day(30));
        assert_eq!(weeks.first().map(String::as_str), Some("2026-10-26"));
        assert_eq!(weeks.len(), 6);
        assert_eq!(
            buckets(Dimension::TimeMonth, day(1), day(30)),
            vec!["2026-11-01"]
        );
    }
}
