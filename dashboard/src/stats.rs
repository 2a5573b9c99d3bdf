//! A Stats query and its answer, independent of where the counts come from: the request's
//! shape (the GraphQL input types), its checks, the metrics derived from additive counts, the
//! order, the limit and the comparison with the previous period.

use std::collections::HashMap;

pub use analytics::{Counts, Dimension, Figures, Metric, PageReports, Scope};
use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

/// Rows a breakdown answers when the query gives no `limit`. A time series with no other
/// dimension answers all its buckets instead.
pub const DEFAULT_LIMIT: usize = 100;

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
    /// The property's key, with `dimension: PROPERTY`.
    pub property: Option<String>,
    pub op: FilterOp,
    /// `""` matches "none" (no UTM source, no referrer).
    pub values: Vec<String>,
}

impl Filter {
    /// The same filter with `IS`, for a condition whose caller keeps or drops what it selects.
    pub fn clone_is(&self) -> Filter {
        let op = match self.op {
            FilterOp::IsNot => FilterOp::Is,
            op => op,
        };
        Filter { op, ..self.clone() }
    }
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

/// Local dates of the site, both included: `from` and `to` (`YYYY-MM-DD`), or a `period`
/// that ends on the site's today, in its time zone.
#[derive(InputObject, Debug, Clone, Default)]
pub struct DateRange {
    pub from: Option<String>,
    pub to: Option<String>,
    pub period: Option<Period>,
}

impl DateRange {
    pub fn between(from: &str, to: &str) -> Self {
        DateRange {
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            period: None,
        }
    }

    /// The first and last day, given the site's today and the longest range allowed.
    fn days(&self, today: NaiveDate, max_days: u32) -> Result<(NaiveDate, NaiveDate), QueryError> {
        match (self.period, &self.from, &self.to) {
            (Some(period), None, None) => Ok(period.days(today, max_days)),
            (None, Some(from), Some(to)) => Ok((parse_date("from", from)?, parse_date("to", to)?)),
            _ => Err(QueryError::RangeShape),
        }
    }
}

/// A date range that ends today (or yesterday, or last month), in the site's time zone.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Today,
    Yesterday,
    #[graphql(name = "LAST_7_DAYS")]
    Last7Days,
    #[graphql(name = "LAST_30_DAYS")]
    Last30Days,
    ThisMonth,
    LastMonth,
    ThisYear,
    /// This month and the 11 before it.
    #[graphql(name = "LAST_12_MONTHS")]
    Last12Months,
    /// The longest range a query may span (`dashboard.max_date_span_days`), ending today.
    All,
}

impl Period {
    pub const NAMES: [(&'static str, Period); 9] = [
        ("TODAY", Period::Today),
        ("YESTERDAY", Period::Yesterday),
        ("LAST_7_DAYS", Period::Last7Days),
        ("LAST_30_DAYS", Period::Last30Days),
        ("THIS_MONTH", Period::ThisMonth),
        ("LAST_MONTH", Period::LastMonth),
        ("THIS_YEAR", Period::ThisYear),
        ("LAST_12_MONTHS", Period::Last12Months),
        ("ALL", Period::All),
    ];

    /// The period of an API name (`LAST_30_DAYS`).
    pub fn named(name: &str) -> Option<Period> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, p)| *p)
    }

    /// Its first and last day when the site's today is `today`.
    pub fn days(self, today: NaiveDate, max_days: u32) -> (NaiveDate, NaiveDate) {
        use chrono::{Datelike, Months};
        let ending_today = |n: i64| (today - TimeDelta::days(n - 1), today);
        let month = today.with_day(1).unwrap_or(today);
        match self {
            Period::Today => (today, today),
            Period::Yesterday => (today - TimeDelta::days(1), today - TimeDelta::days(1)),
            Period::Last7Days => ending_today(7),
            Period::Last30Days => ending_today(30),
            Period::ThisMonth => (month, today),
            Period::LastMonth => {
                let last = month - TimeDelta::days(1);
                (last.with_day(1).unwrap_or(last), last)
            }
            Period::ThisYear => (today.with_ordinal(1).unwrap_or(today), today),
            Period::Last12Months => (month - Months::new(11), today),
            Period::All => ending_today(i64::from(max_days)),
        }
    }
}

/// A `YYYY-MM-DD` date in the years a site can have visitors in: chrono parses up to +262142,
/// where a range's next day or its previous period no longer exists.
fn parse_date(field: &'static str, value: &str) -> Result<NaiveDate, QueryError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| (1970..=9999).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| QueryError::InvalidDate {
            field,
            value: value.chars().take(40).collect(),
        })
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
    /// The property's key the `PROPERTY` dimension breaks down by.
    pub property: Option<String>,
    #[graphql(default)]
    pub filters: Vec<Filter>,
    #[graphql(default)]
    pub order_by: Vec<OrderBy>,
    /// Rows at most: 100 unless given, and every bucket of a time series with no other
    /// dimension.
    pub limit: Option<i32>,
    #[graphql(default)]
    pub offset: i32,
    pub compare: Option<Compare>,
}

/// Why a query is refused; `code` is the GraphQL error's `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("dateRange.{field}: {value:?} is not a date (YYYY-MM-DD, years 1970 to 9999)")]
    InvalidDate { field: &'static str, value: String },
    #[error("dateRange: give `from` and `to`, or a `period` (e.g. LAST_30_DAYS), not both")]
    RangeShape,
    #[error("period: not one of TODAY, YESTERDAY, LAST_7_DAYS, LAST_30_DAYS, THIS_MONTH, LAST_MONTH, THIS_YEAR, LAST_12_MONTHS, ALL")]
    UnknownPeriod,
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
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("dimensions: {0}")]
    Dimensions(String),
    #[error("filters: {0}")]
    Filters(String),
    #[error("orderBy: {0}")]
    OrderBy(String),
    #[error("site: {0:?} is not a registered site (an admin registers one with addSite)")]
    UnknownSite(String),
    #[error("{0}")]
    Events(String),
    #[error("goal: {0:?} is not a goal of this site")]
    UnknownGoal(String),
    #[error("dateRange: this shared link shows {0} only")]
    OutsideSharedRange(String),
}

impl QueryError {
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidDate { .. }
            | QueryError::EmptyRange { .. }
            | QueryError::RangeShape
            | QueryError::UnknownPeriod => "INVALID_DATE_RANGE",
            QueryError::RangeTooLong { .. } => "DATE_RANGE_TOO_LONG",
            QueryError::Limit(..) | QueryError::Offset | QueryError::NotANumber(_) => {
                "LIMIT_OUT_OF_RANGE"
            }
            QueryError::UnknownSite(_) => "UNKNOWN_SITE",
            QueryError::UnknownGoal(_) => "UNKNOWN_GOAL",
            QueryError::OutsideSharedRange(_) => "OUTSIDE_SHARED_RANGE",
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
    /// The key of the `PROPERTY` dimension.
    pub property: Option<String>,
    pub filters: Vec<Filter>,
    pub order_by: Vec<OrderBy>,
    pub limit: usize,
    pub offset: usize,
    pub compare: Option<Compare>,
    /// `dashboard.max_groups`: the most groups an answer may be built from.
    pub max_groups: usize,
    /// The zone the site's days are counted in, and whether its past is still being counted
    /// (both the registry's: set by `Reader::check`).
    pub zone: chrono_tz::Tz,
    pub counting: bool,
}

impl Checked {
    /// Checks `q`; `today` is the site's today, in its time zone (for a `period`).
    pub fn new(
        q: &StatsQuery,
        limits: &settings::DashboardSettings,
        today: NaiveDate,
    ) -> Result<Self, QueryError> {
        let max = limits.max_date_span_days.get();
        let (from, to) = q.date_range.days(today, max)?;
        if from > to {
            return Err(QueryError::EmptyRange { from, to });
        }
        let days = (to - from).num_days() + 1;
        if days > i64::from(max) {
            return Err(QueryError::RangeTooLong { days, max });
        }
        let max_limit = limits.max_limit.get();
        if let Some(limit) = q.limit.filter(|&l| l < 1 || l as usize > max_limit) {
            return Err(QueryError::Limit(limit, max_limit));
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
        let property = check_events(q, &dimensions)?;
        if q.metrics.iter().any(|m| m.of_pages()) && q.dimensions != [Dimension::Page] {
            return Err(QueryError::Events(
                "metrics: SCROLL_DEPTH and TIME_ON_PAGE need the PAGE dimension alone".into(),
            ));
        }
        let time = times.first().copied();
        let limit = match (q.limit, time) {
            (Some(limit), _) => limit as usize,
            // Every bucket: the range already bounds how many there are.
            (None, Some(_)) if dimensions.is_empty() => usize::MAX,
            (None, _) => DEFAULT_LIMIT,
        };
        Ok(Checked {
            site: q.site.trim().to_ascii_lowercase(),
            from,
            to,
            metrics: q.metrics.clone(),
            time,
            dimensions,
            property,
            filters: q.filters.clone(),
            order_by: q.order_by.clone(),
            limit,
            offset: q.offset as usize,
            compare: q.compare,
            max_groups: limits.max_groups.get(),
            zone: chrono_tz::UTC,
            counting: false,
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

/// The metrics a query of custom events or goals can ask for.
const METRICS_OF_EVENTS: [Metric; 5] = [
    Metric::Visitors,
    Metric::Visits,
    Metric::Events,
    Metric::Conversions,
    Metric::ConversionRate,
];

/// The longest property key, as events carry them.
fn checked_key(field: &str, key: Option<&str>) -> Result<String, QueryError> {
    let key = key.map(str::trim).unwrap_or("");
    if key.is_empty() || key.chars().count() > analytics::visit::MAX_PROPERTY_KEY {
        return Err(QueryError::Events(format!(
            "{field}: name the property's key (1 to {} characters) with PROPERTY",
            analytics::visit::MAX_PROPERTY_KEY
        )));
    }
    Ok(key.to_owned())
}

/// Checks what a query asks of custom events and goals; returns the `PROPERTY` key.
fn check_events(q: &StatsQuery, dimensions: &[Dimension]) -> Result<Option<String>, QueryError> {
    let refuse = |m: &str| Err(QueryError::Events(m.to_owned()));
    for f in &q.filters {
        if f.dimension == Dimension::Property {
            checked_key("filters.property", f.property.as_deref())?;
        }
    }
    let of_events: Vec<Dimension> = dimensions
        .iter()
        .copied()
        .filter(|d| d.scope().is_of_events())
        .collect();
    if of_events.len() > 1 {
        return refuse("dimensions: at most one of GOAL, EVENT_NAME and PROPERTY");
    }
    let goal_filter = q.filters.iter().any(|f| f.dimension == Dimension::Goal);
    if q.metrics.iter().any(|m| m.of_goals()) && !goal_filter && of_events != [Dimension::Goal] {
        return refuse("metrics: CONVERSIONS and CONVERSION_RATE need a GOAL dimension or filter");
    }
    let asks_events = !of_events.is_empty() || q.metrics.iter().any(|m| m.of_goals());
    if asks_events {
        if let Some(m) = q.metrics.iter().find(|m| !METRICS_OF_EVENTS.contains(m)) {
            return Err(QueryError::Events(format!(
                "metrics: {} is not counted for goals and custom events (VISITORS, VISITS, \
                 EVENTS, CONVERSIONS and CONVERSION_RATE are)",
                m.name().to_ascii_uppercase()
            )));
        }
        if dimensions.contains(&Dimension::Page) {
            return refuse("dimensions: PAGE does not break down goals and custom events");
        }
    }
    match of_events.first() {
        Some(Dimension::Property) => checked_key("property", q.property.as_deref()).map(Some),
        _ => Ok(None),
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// The start of the time bucket, in the site's local time.
    pub bucket: Option<NaiveDateTime>,
    pub values: Vec<String>,
    pub counts: Counts,
    /// What a conversion rate divides by (`Figures::all_visitors`).
    pub all_visitors: i64,
    /// A page's engagement reports.
    pub reports: PageReports,
}

impl Group {
    pub fn figures(&self) -> Figures {
        Figures {
            counts: self.counts,
            all_visitors: self.all_visitors,
            reports: self.reports,
        }
    }
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

/// The buckets of a query's time series, each with its position in the period: built once
/// per period, so matching groups to buckets is linear.
fn bucket_index(q: &Checked) -> HashMap<NaiveDateTime, usize> {
    let Some(bucket) = q.time.and_then(Dimension::bucket) else {
        return HashMap::new();
    };
    let series = bucket.series(q.from, q.to);
    series
        .into_iter()
        .enumerate()
        .map(|(i, b)| (b, i))
        .collect()
}

/// Turns groups into answer rows: zero-filled time buckets (when time is the only dimension),
/// metrics derived, sorted, paged.
pub fn rows(q: &Checked, mut groups: Vec<Group>) -> Vec<(Group, StatsRow)> {
    groups.retain(|g| g.counts.visits != 0 || g.counts.pageviews != 0);
    if let (Some(bucket), true) = (q.time.and_then(Dimension::bucket), q.dimensions.is_empty()) {
        let mut by_bucket: HashMap<NaiveDateTime, Group> = groups
            .into_iter()
            .filter_map(|g| Some((g.bucket?, g)))
            .collect();
        groups = bucket
            .series(q.from, q.to)
            .into_iter()
            .map(|b| {
                by_bucket.remove(&b).unwrap_or(Group {
                    bucket: Some(b),
                    values: Vec::new(),
                    counts: Counts::default(),
                    ..Group::default()
                })
            })
            .collect();
    }
    let mut rows: Vec<(Group, StatsRow)> = groups
        .into_iter()
        .map(|g| {
            let row = StatsRow {
                dimensions: dimension_values(q, &g),
                metrics: q.metrics.iter().map(|m| m.of(&g.figures())).collect(),
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
        if let Some(bucket) = d.bucket() {
            out.push(g.bucket.map(|b| bucket.label(b)));
        } else {
            out.push(values.next().filter(|v| !v.is_empty()).cloned());
        }
    }
    out
}

fn compare_rows(q: &Checked, a: &(Group, StatsRow), b: &(Group, StatsRow)) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let by_metric = |m: Metric| {
        let (x, y) = (m.of(&a.0.figures()), m.of(&b.0.figures()));
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
/// time buckets by position in the period. A row the previous period lacks has no change: a
/// rate of no visits is not 0 %, so "▲ 100 pts" against nothing would be made up.
pub fn attach_comparison(q: &Checked, current: &mut [(Group, StatsRow)], previous: Vec<Group>) {
    let prev_q = q.previous_period();
    let (now_index, prev_index) = (bucket_index(q), bucket_index(&prev_q));
    let position = |index: &HashMap<NaiveDateTime, usize>, bucket: Option<NaiveDateTime>| {
        bucket.map_or(0, |b| index.get(&b).copied().unwrap_or(usize::MAX))
    };
    let previous: HashMap<(usize, Vec<String>), Figures> = previous
        .into_iter()
        .map(|g| {
            (
                (position(&prev_index, g.bucket), g.values.clone()),
                g.figures(),
            )
        })
        .collect();
    for (group, row) in current.iter_mut() {
        let key = (position(&now_index, group.bucket), group.values.clone());
        let found = previous.get(&key).copied();
        let before = found.unwrap_or_default();
        let metrics: Vec<f64> = q.metrics.iter().map(|m| m.of(&before)).collect();
        let change = q
            .metrics
            .iter()
            .zip(&row.metrics)
            .zip(&metrics)
            .map(|((m, now), then)| found.and_then(|_| m.change(*now, *then)))
            .collect();
        row.comparison = Some(Comparison { metrics, change });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(time: Dimension, from: NaiveDate, to: NaiveDate) -> Checked {
        let q = StatsQuery {
            site: "shop.example".into(),
            date_range: DateRange::between(&from.to_string(), &to.to_string()),
            metrics: vec![Metric::Visitors],
            dimensions: vec![time],
            property: None,
            filters: Vec::new(),
            order_by: Vec::new(),
            limit: None,
            offset: 0,
            compare: Some(Compare::PreviousPeriod),
        };
        Checked::new(&q, &settings::Settings::defaults().dashboard, to).expect("an allowed query")
    }

    #[test]
    fn each_period_ends_on_the_sites_today() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a day");
        let today = day(2026, 3, 15);
        let expected = [
            (Period::Today, (day(2026, 3, 15), today)),
            (Period::Yesterday, (day(2026, 3, 14), day(2026, 3, 14))),
            (Period::Last7Days, (day(2026, 3, 9), today)),
            (Period::Last30Days, (day(2026, 2, 14), today)),
            (Period::ThisMonth, (day(2026, 3, 1), today)),
            (Period::LastMonth, (day(2026, 2, 1), day(2026, 2, 28))),
            (Period::ThisYear, (day(2026, 1, 1), today)),
            (Period::Last12Months, (day(2025, 4, 1), today)),
            (Period::All, (day(2024, 3, 14), today)),
        ];
        for (period, days) in expected {
            assert_eq!(period.days(today, 732), days, "{period:?}");
        }
        for (name, period) in Period::NAMES {
            assert_eq!(Period::named(name), Some(period));
            assert_eq!(async_graphql::Value::from(period).to_string(), name);
        }
        let january = day(2026, 1, 10);
        assert_eq!(
            Period::LastMonth.days(january, 732),
            (day(2025, 12, 1), day(2025, 12, 31)),
            "across a year"
        );
    }

    fn series_groups(q: &Checked, visitors: impl Fn(usize) -> i64) -> Vec<Group> {
        let bucket = q.time.and_then(Dimension::bucket).expect("a time series");
        let series = bucket.series(q.from, q.to);
        let group = |(i, b)| Group {
            bucket: Some(b),
            values: Vec::new(),
            counts: Counts {
                visitors: visitors(i),
                visits: 1,
                ..Counts::default()
            },
            ..Group::default()
        };
        series.into_iter().enumerate().map(group).collect()
    }

    #[test]
    fn a_time_series_without_a_limit_carries_every_point_of_the_longest_range() {
        let to = NaiveDate::from_ymd_opt(2026, 11, 30).expect("a day");
        let from = to - TimeDelta::days(731);
        for (time, points) in [(Dimension::TimeDay, 732), (Dimension::TimeWeek, 106)] {
            let q = query(time, from, to);
            let groups = series_groups(&q, |i| i as i64 + 1);
            assert_eq!(rows(&q, groups).len(), points, "{time:?}");
        }
    }

    /// 732 days of hours compared with the 732 days before: 17,568 buckets in each period. Each
    /// group is matched to its bucket through one index per period; looking every group up in
    /// a freshly built bucket list (about 3 * 10^8 formatted buckets) would not finish within
    /// the deadline, which is a thousand times what this takes.
    #[test]
    fn the_comparison_of_the_longest_hourly_series_matches_each_hour_in_linear_time() {
        let to = NaiveDate::from_ymd_opt(2026, 11, 30).expect("a day");
        let q = query(Dimension::TimeHour, to - TimeDelta::days(731), to);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut current = rows(&q, series_groups(&q, |i| 2 * i as i64 + 2));
            let previous = series_groups(&q.previous_period(), |i| i as i64 + 1);
            attach_comparison(&q, &mut current, previous);
            let _ = sender.send(current);
        });
        let current = receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the comparison finishes within a minute");
        assert_eq!(current.len(), 17_568);
        for (i, (_, row)) in current.iter().enumerate() {
            let comparison = row.comparison.as_ref().expect("compared");
            assert_eq!(comparison.metrics, [i as f64 + 1.0]);
            assert_eq!(comparison.change, [Some(100.0)]);
        }
    }
}
