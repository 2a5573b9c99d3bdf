//! Where a query's counts come from. Two engines give the same counts for the same query:
//!
//! - **rollups**: the `RollupTable`s, kept by the consumer. One row per site, dimension, day
//!   and value (the filtered ones in tables of their own), so a 30-day breakdown reads a few
//!   thousand rows whatever the traffic. They answer queries with at most one dimension besides time and at most one
//!   filter, `IS` with one value, on that same dimension or on a paired one
//!   (`Dimension::PAIRED`: a dashboard after a click on a source, channel, device or country),
//!   or two such filters on two paired dimensions (a dashboard after two clicks:
//!   `RollupKey::Triple`).
//! - **visits**: the `visits` table, aggregated at query time (one row per visit, its pages in
//!   a JSON map). It answers everything else: several dimensions, `IS_NOT`, `CONTAINS`, two
//!   filters not both paired, three filters. It scales with the number of visits in the range.
//! - **events**: goals and custom events. A goal's rows come from `conversions` (one row per
//!   hit that completed it), custom events' from `raw_events` (custom events only, by their
//!   partial index), each joined to its visit for the visit's dimensions and filters. A `GOAL`
//!   or `PROPERTY` filter on any other query narrows the visits to those that converted or
//!   sent such an event.
//!
//! No text from a request reaches SQL: dimensions name columns through enums, values are bound
//! parameters.

use std::collections::HashMap;

use analytics::dimension::joined_filter;
use analytics::visit::bounce_sql;
use analytics::{Counts, RollupKey, RollupTable, Scope, Swapped};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

use crate::stats::{Checked, Dimension, Filter, FilterOp, Group, Metric};

#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Engine {
    Rollups,
    Visits,
    Events,
}

/// The counts of a query's groups: goals from `goals`, from the rollups when they can answer
/// it, custom events by name or property from the events themselves when not, the rest from
/// the visits.
pub async fn groups<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
    force: Option<Engine>,
) -> Result<(Engine, Vec<Group>), DbErr> {
    let plan = rollup_plan(q).filter(|_| force != Some(Engine::Visits));
    let of_events = q.dimensions.iter().any(|d| d.scope().is_of_events());
    let (engine, mut groups) = match plan {
        _ if crate::events::of_goals(q) => {
            (Engine::Events, crate::events::of_goals_groups(db, q).await?)
        }
        Some(plan) => (Engine::Rollups, from_rollups(db, q, plan).await?),
        None if force == Some(Engine::Rollups) => {
            return Err(DbErr::Custom(
                "the rollups cannot answer this query (more than one dimension or filter)".into(),
            ))
        }
        None if of_events => (
            Engine::Events,
            crate::events::from_custom_events(db, q).await?,
        ),
        None => (Engine::Visits, from_visits(db, q).await?),
    };
    if q.metrics.contains(&Metric::ConversionRate) {
        crate::events::attach_all_visitors(db, q, &mut groups).await?;
    }
    if q.metrics.iter().any(|m| m.of_pages()) {
        crate::pages::attach_page_reports(db, q, &mut groups).await?;
    }
    Ok((engine, groups))
}

/// What the rollups are asked: one stored dimension, maybe one value of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RollupPlan {
    Hours,
    Days {
        /// Where the rows are (`RollupKey::table`).
        table: RollupTable,
        /// Their `dimension` (`RollupKey::stored`).
        dimension: String,
        value: Option<String>,
        by_value: bool,
        /// The values start with this (a property's key and the separator), not shown.
        prefix: Option<String>,
    },
}

pub(crate) fn rollup_plan(q: &Checked) -> Option<RollupPlan> {
    if q.time == Some(Dimension::TimeHour) {
        return (q.dimensions.is_empty() && q.filters.is_empty()).then_some(RollupPlan::Hours);
    }
    let one_value = |f: &Filter| f.op == FilterOp::Is && f.values.len() == 1;
    let breakdown = match q.dimensions.as_slice() {
        [] => None,
        [d] => Some(*d),
        _ => return None,
    };
    let filter = match q.filters.as_slice() {
        [] => None,
        [f] if one_value(f) => Some((f.dimension, &f.values[0])),
        [f, g] if one_value(f) && one_value(g) => return two_filter_plan(breakdown, f, g),
        _ => return None,
    };
    let key = match (breakdown, filter) {
        (Some(d), Some((f, _))) if d != f => RollupKey::pair(f, d)?,
        (Some(d), _) | (None, Some((d, _))) => RollupKey::of(Some(d))?,
        (None, None) => RollupKey::All,
    };
    // A property's rows are `key<separator>value`: its key is the query's (a filter's must
    // be the same).
    let prefix = match key {
        RollupKey::Of(Dimension::Property) => {
            let filtered = q.filters.first().and_then(|f| f.property.as_deref());
            let key = match (breakdown, filtered) {
                (Some(_), Some(f)) if Some(f.trim()) != q.property.as_deref() => return None,
                (Some(_), _) => q.property.clone()?,
                (None, f) => f?.trim().to_owned(),
            };
            Some(analytics::visit::property_value(&key, ""))
        }
        // A pair's filter value is kept with its dimension.
        RollupKey::Pair(..) => {
            let (_, v) = filter?;
            return Some(RollupPlan::Days {
                table: key.table(),
                dimension: key.stored(v).into_owned(),
                value: None,
                by_value: true,
                prefix: None,
            });
        }
        _ => None,
    };
    let value = filter.map(|(_, v)| format!("{}{v}", prefix.as_deref().unwrap_or("")));
    Some(RollupPlan::Days {
        table: key.table(),
        dimension: key.name().to_owned(),
        value,
        by_value: breakdown.is_some(),
        prefix,
    })
}

/// The rollups of a dashboard after two clicks (`IS` one value each, on two paired
/// dimensions): a pair when the breakdown is one of the two or there is none (its rows of the
/// first value, the second's row), a triple otherwise.
fn two_filter_plan(breakdown: Option<Dimension>, f: &Filter, g: &Filter) -> Option<RollupPlan> {
    let (a, b) = ((f.dimension, &f.values[0]), (g.dimension, &g.values[0]));
    let (first, second) = match breakdown {
        Some(d) if d == a.0 => (b, a),
        _ => (a, b),
    };
    match breakdown {
        None => {}
        Some(d) if d == first.0 || d == second.0 => {}
        Some(d) => {
            let (key, swapped) = RollupKey::triple(a.0, b.0, d)?;
            let (x, y) = match swapped {
                Swapped::No => (a.1, b.1),
                Swapped::Yes => (b.1, a.1),
            };
            return Some(RollupPlan::Days {
                table: key.table(),
                dimension: key.stored(&joined_filter(x, y)).into_owned(),
                value: None,
                by_value: true,
                prefix: None,
            });
        }
    }
    let key = RollupKey::pair(first.0, second.0)?;
    Some(RollupPlan::Days {
        table: key.table(),
        dimension: key.stored(first.1).into_owned(),
        value: Some(second.1.clone()),
        by_value: breakdown.is_some(),
        prefix: None,
    })
}

pub(crate) fn counts(row: &QueryResult) -> Result<Counts, DbErr> {
    Counts::read(|column| row.try_get("", column))
}

pub(crate) async fn from_rollups<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
    plan: RollupPlan,
) -> Result<Vec<Group>, DbErr> {
    let mut merged: HashMap<(Option<NaiveDateTime>, Vec<String>), Counts> = HashMap::new();
    match plan {
        RollupPlan::Hours => {
            let start = q.from.and_hms_opt(0, 0, 0).unwrap_or_default();
            let end = (q.to + TimeDelta::days(1))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default();
            let sql = format!(
                "SELECT hour, {} FROM rollup_hours \
                 WHERE site = $1 AND hour >= $2 AND hour < $3 GROUP BY hour",
                Counts::sums_sql()
            );
            let values = [q.site.clone().into(), start.into(), end.into()];
            for row in grouped_query(db, q, &sql, values).await? {
                let hour: NaiveDateTime = row.try_get("", "hour")?;
                merged
                    .entry((Some(hour), Vec::new()))
                    .or_default()
                    .add(&counts(&row)?, 1);
            }
        }
        RollupPlan::Days {
            table,
            dimension,
            value,
            by_value,
            prefix,
        } => {
            let mut values: Vec<Value> = vec![
                q.site.clone().into(),
                dimension.into(),
                q.from.into(),
                q.to.into(),
            ];
            let only = match (value, &prefix) {
                (Some(v), _) => format!(" AND value = {}", bind(&mut values, v.into())),
                (None, Some(p)) => {
                    format!(
                        " AND starts_with(value, {})",
                        bind(&mut values, p.clone().into())
                    )
                }
                (None, None) => String::new(),
            };
            let keys = match q.time {
                Some(_) => "day, value",
                None => "value",
            };
            let sql = format!(
                "SELECT {keys}, {} FROM {} WHERE site = $1 AND dimension = $2 \
                 AND day BETWEEN $3 AND $4{only} GROUP BY {keys}",
                Counts::sums_sql(),
                table.name()
            );
            let bucket = q.time.and_then(Dimension::bucket);
            for row in grouped_query(db, q, &sql, values).await? {
                let bucket = match bucket {
                    Some(b) => {
                        let day: NaiveDate = row.try_get("", "day")?;
                        Some(b.start(day.and_time(NaiveTime::MIN)))
                    }
                    None => None,
                };
                let value: String = row.try_get("", "value")?;
                let shown = match &prefix {
                    Some(p) => value.strip_prefix(p.as_str()).unwrap_or(&value).to_owned(),
                    None => value,
                };
                let values = if by_value { vec![shown] } else { Vec::new() };
                merged
                    .entry((bucket, values))
                    .or_default()
                    .add(&counts(&row)?, 1);
            }
        }
    }
    Ok(merged
        .into_iter()
        .map(|((bucket, values), counts)| Group {
            bucket,
            values,
            counts,
            ..Group::default()
        })
        .collect())
}

/// The SQL expression of a dimension over `visits v` (and `p`, the visit's pages; `g`, the
/// goal; `x`, the custom event; `$key`, the parameter holding the property's key).
pub(crate) fn expression(d: Dimension, key: &str) -> String {
    match d.scope() {
        Scope::Time(bucket) => bucket.sql("v.hour", "v.day"),
        Scope::PageView => "p.page".into(),
        Scope::Entry | Scope::Exit | Scope::Visit => format!("v.{}", d.name()),
        Scope::Goal => "g.name".into(),
        Scope::EventName => "x.name".into(),
        Scope::Property => property_value("x", key),
    }
}

/// The value of the property `key` (a parameter) of the custom event `e`, NULL without one.
pub(crate) fn property_value(e: &str, key: &str) -> String {
    format!(
        "(SELECT p.prop->>'value' FROM jsonb_array_elements({e}.props) AS p(prop) \
          WHERE p.prop->>'key' = {key} LIMIT 1)"
    )
}

/// The condition of a query's filters over a visit `v` of the site and days (`$1`..`$3`,
/// already in `values`), binding what it needs after them.
pub fn visit_filters(q: &Checked, values: &mut Vec<Value>) -> String {
    let mut wheres = vec![
        "v.site = $1".to_owned(),
        "v.day BETWEEN $2 AND $3".to_owned(),
    ];
    for f in &q.filters {
        wheres.push(visit_condition(f, values));
    }
    wheres.join(" AND ")
}

/// The conditions selecting the `raw_events` `x` of one type (a constant of the model, not the
/// page views': those store theirs as NULL, `migration::USUAL_VALUES`) of the
/// query's site (`$1`) in visits `v` of its days (`$2`..`$3`). The received times bound the
/// index scan in any time zone (a local day lies within a day either side of the UTC day of
/// the same date); the exact days are the visit's.
pub(crate) fn stored_events(q: &Checked, event_type: &str, values: &mut Vec<Value>) -> Vec<String> {
    let at = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    let lo = bind(values, at(q.from - TimeDelta::days(1)).into());
    let hi = bind(values, at(q.to + TimeDelta::days(2)).into());
    vec![
        format!("x.event_type = '{event_type}'"),
        "x.site = (SELECT id FROM event_texts WHERE value = $1)".to_owned(),
        format!("x.received_at >= {lo} AND x.received_at < {hi}"),
        "v.day BETWEEN $2 AND $3".to_owned(),
    ]
}

/// `expr op values` for a filter's values, bound as the next parameter.
pub(crate) fn compare(expr: &str, f: &Filter, values: &mut Vec<Value>) -> String {
    let n = values.len() + 1;
    let (condition, bound): (String, Vec<String>) = match f.op {
        FilterOp::Is => (format!("{expr} = ANY(${n})"), f.values.clone()),
        FilterOp::IsNot => (format!("NOT ({expr} = ANY(${n}))"), f.values.clone()),
        FilterOp::Contains => (
            format!("{expr} ILIKE ANY(${n})"),
            f.values.iter().map(|v| like_pattern(v)).collect(),
        ),
    };
    values.push(bound.into());
    condition
}

/// Binds a value as the next parameter; its placeholder.
pub(crate) fn bind(values: &mut Vec<Value>, value: Value) -> String {
    values.push(value);
    format!("${}", values.len())
}

/// The condition of a filter over a visit `v` (`$1` the site, `$2`/`$3` the days). A goal or
/// property filter keeps the visits that converted or sent such an event.
pub(crate) fn visit_condition(f: &Filter, values: &mut Vec<Value>) -> String {
    match f.dimension.scope() {
        Scope::Goal => {
            let names = compare("g.name", &f.clone_is(), values);
            let keep = if f.op == FilterOp::IsNot {
                "NOT IN"
            } else {
                "IN"
            };
            format!(
                "v.id {keep} (SELECT c.visit_id FROM conversions c JOIN goals g ON g.id = c.goal_id \
                 WHERE c.site = $1 AND c.day BETWEEN $2 AND $3 AND {names})"
            )
        }
        // The visit sent such an event (its names and property values are keys of its maps).
        Scope::Property | Scope::EventName => {
            let (map, prefix) = match f.dimension.scope() {
                Scope::Property => (
                    "v.props",
                    analytics::visit::property_value(
                        f.property.as_deref().unwrap_or("").trim(),
                        "",
                    ),
                ),
                _ => ("v.event_names", String::new()),
            };
            let keep = if f.op == FilterOp::IsNot { "NOT " } else { "" };
            match f.op {
                FilterOp::Is | FilterOp::IsNot => {
                    let keys: Vec<String> =
                        f.values.iter().map(|v| format!("{prefix}{v}")).collect();
                    format!("{keep}({map} ?| {})", bind(values, keys.into()))
                }
                FilterOp::Contains => {
                    let p = bind(values, prefix.clone().into());
                    let n = prefix.chars().count() + 1;
                    let like = compare(&format!("substr(k.key, {n})"), f, values);
                    format!(
                        "EXISTS (SELECT 1 FROM jsonb_object_keys({map}) AS k(key) \
                         WHERE starts_with(k.key, {p}) AND {like})"
                    )
                }
            }
        }
        // The visit viewed such a page (the visits engine joins the pages instead).
        Scope::PageView => {
            let pages = compare("p.page", &f.clone_is(), values);
            let keep = if f.op == FilterOp::IsNot { "NOT " } else { "" };
            format!(
                "{keep}EXISTS (SELECT 1 FROM jsonb_object_keys(v.pages) AS p(page) WHERE {pages})"
            )
        }
        _ => compare(&expression(f.dimension, ""), f, values),
    }
}

/// `%`, `_` and `\` taken literally inside an ILIKE pattern.
pub(crate) fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(crate) async fn from_visits<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
) -> Result<Vec<Group>, DbErr> {
    let per_page = |d: Dimension| d.scope() == Scope::PageView;
    let page_dimension = q.dimensions.iter().any(|d| per_page(*d));
    let pages = page_dimension || q.filters.iter().any(|f| per_page(f.dimension));
    let keys: Vec<String> = q
        .time
        .iter()
        .chain(q.dimensions.iter())
        .map(|d| expression(*d, ""))
        .collect();
    let mut values: Vec<Value> = vec![q.site.clone().into(), q.from.into(), q.to.into()];
    let mut wheres = vec![
        "v.site = $1".to_owned(),
        "v.day BETWEEN $2 AND $3".to_owned(),
    ];
    for f in &q.filters {
        let condition = match f.dimension.scope() {
            // Pages are joined: a page filter keeps the views of the matching pages.
            Scope::PageView => compare("p.page", f, &mut values),
            _ => visit_condition(f, &mut values),
        };
        wheres.push(condition);
    }
    let selected = selected_keys(&keys);
    let join = if pages {
        " CROSS JOIN LATERAL jsonb_each_text(v.pages) AS p(page, views)"
    } else {
        ""
    };
    let visit = format!(
        "v.id, v.day, v.visitor, v.duration, v.events, {} AS bounce",
        bounce_sql("v.pageviews", "v.engaged_ms")
    );
    let inner = match (pages, page_dimension) {
        (false, _) => format!("SELECT {selected}{visit}, v.pageviews AS views"),
        (true, true) => format!("SELECT {selected}{visit}, p.views::int AS views"),
        (true, false) => format!("SELECT {selected}{visit}, sum(p.views::int) AS views"),
    };
    // A visit matching through several pages is one visit (grouping by the primary key lets
    // the other columns of `v` be selected).
    let group_inner = if pages && !page_dimension {
        " GROUP BY v.id"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {outer_keys}{sums} \
         FROM ({inner} FROM visits v{join} WHERE {wheres}{group_inner}) x{group_outer}",
        outer_keys = leading_keys(keys.len()),
        sums = Counts::over_visits_sql(),
        wheres = wheres.join(" AND "),
        group_outer = group_by_keys(keys.len()),
    );
    let rows = grouped_query(db, q, &sql, values).await?;
    rows.iter()
        .map(|row| {
            let (bucket, values) = keys_of(q, row, keys.len())?;
            Ok(Group {
                bucket,
                values,
                counts: counts(row)?,
                ..Group::default()
            })
        })
        .collect()
}

/// `{key} AS k0, …, ` for a query's group keys (the time bucket's first).
pub(crate) fn selected_keys(keys: &[String]) -> String {
    keys.iter()
        .enumerate()
        .map(|(i, k)| format!("{k} AS k{i}, "))
        .collect()
}

/// `k0, …, ` for `n` keys (empty for none): the keys leading a select or a grouping.
pub(crate) fn leading_keys(n: usize) -> String {
    (0..n).map(|i| format!("k{i}, ")).collect()
}

/// ` GROUP BY k0, …` for `n` keys (empty for none).
pub(crate) fn group_by_keys(n: usize) -> String {
    match n {
        0 => String::new(),
        n => format!(" GROUP BY {}", leading_keys(n).trim_end_matches(", ")),
    }
}

/// A row's group keys `k0…`: the time bucket first (when the query has one), then the values
/// of the other dimensions.
pub(crate) fn keys_of(
    q: &Checked,
    row: &QueryResult,
    keys: usize,
) -> Result<(Option<NaiveDateTime>, Vec<String>), DbErr> {
    let bucket = match q.time {
        Some(_) => Some(row.try_get::<NaiveDateTime>("", "k0")?),
        None => None,
    };
    let mut values = Vec::with_capacity(keys);
    for i in usize::from(q.time.is_some())..keys {
        values.push(row.try_get::<String>("", &format!("k{i}"))?);
    }
    Ok((bucket, values))
}

/// Marks the error of a query whose groups would pass `dashboard.max_groups`.
pub const TOO_MANY_GROUPS: &str = "TOO_MANY_GROUPS";

/// The rows of a grouping query, at most `q.max_groups`: one more is asked for, and its
/// presence refuses the query before the rest is read (memory stays bounded).
pub(crate) async fn grouped_query<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    let sql = format!("{sql} LIMIT {}", q.max_groups.saturating_add(1));
    let rows = query(db, &sql, values).await?;
    if rows.len() > q.max_groups {
        return Err(DbErr::Custom(format!(
            "{TOO_MANY_GROUPS}: the answer would have more than {} groups (dashboard.max_groups); ask for fewer days, dimensions, or a coarser time bucket",
            q.max_groups
        )));
    }
    Ok(rows)
}

pub(crate) async fn query<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        crate::cancel::tagged(sql),
        values,
    ))
    .await
}

/// Distinct visitors of a site seen within the last `window_s` seconds.
pub async fn current_visitors<C: ConnectionTrait>(
    db: &C,
    site: &str,
    today: NaiveDate,
    window_s: u32,
) -> Result<i64, DbErr> {
    let sql = "SELECT count(DISTINCT visitor)::bigint AS n FROM visits \
               WHERE site = $1 AND day >= $2 AND last_seen_at > now() - make_interval(secs => $3)";
    let values = [
        site.into(),
        (today - TimeDelta::days(1)).into(),
        f64::from(window_s).into(),
    ];
    let rows = query(db, sql, values).await?;
    rows.first().map_or(Ok(0), |r| r.try_get("", "n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
