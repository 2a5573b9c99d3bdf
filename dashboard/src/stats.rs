//! A Stats query and its answer, independent of where the counts come from: the request's
//! shape (the GraphQL input types), its checks, the metrics derived from additive counts, the
//! order, the limit and the comparison with the previous period.

use std::collections::HashMap;

pub use analytics::{Counts, Dimension, Metric};
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
            filters: q.filters.clone(),
            order_by: q.order_by.clone(),
            limit,
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
    /// The start of the time bucket, in the site's local time.
    pub bucket: Option<NaiveDateTime>,
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
    let prev_q = q.previous_period();
    let (now_index, prev_index) = (bucket_index(q), bucket_index(&prev_q));
    let position = |index: &HashMap<NaiveDateTime, usize>, bucket: Option<NaiveDateTime>| {
        bucket.map_or(0, |b| index.get(&b).copied().unwrap_or(usize::MAX))
    };
    let previous: HashMap<(usize, Vec<String>), Counts> = previous
        .into_iter()
        .map(|g| ((position(&prev_index, g.bucket), g.values), g.counts))
        .collect();
    for (group, row) in current.iter_mut() {
        let key = (position(&now_index, group.bucket), group.values.clone());
        let before = previous.get(&key).copied().unwrap_or_default();
        let metrics: Vec<f64> = q.metrics.iter().map(|m| m.of(&before)).collect();
        let change = q
            .metrics
            .iter()
            .zip(&row.metrics)
            .zip(&metrics)
            .map(|((m, now), then)| m.change(*now, *then))
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
            date_range: DateRange {
                from: from.to_string(),
                to: to.to_string(),
            },
            metrics: vec![Metric::Visitors],
            dimensions: vec![time],
            filters: Vec::new(),
            order_by: Vec::new(),
            limit: None,
            offset: 0,
            compare: Some(Compare::PreviousPeriod),
        };
        Checked::new(&q, &settings::Settings::defaults().dashboard).expect("an allowed query")
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
