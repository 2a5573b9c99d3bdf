//! Goals and custom events. A goal's figures come from `goal_days` (per goal and day, kept
//! with the conversions) when the query is by goal and time alone, else from `conversions`
//! (one row per completion) joined to the visits; custom events by name or property, when the
//! rollups cannot answer, from the events themselves joined to their visits. Visitors are
//! distinct per visitor-day everywhere, counted by grouping (not `count(DISTINCT …)` over
//! rows).

use std::collections::HashMap;

use analytics::visit::CUSTOM_EVENT_TYPE;
use analytics::{Counts, Scope};
use chrono::NaiveDateTime;
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use crate::engine::{
    bind, compare, expression, from_rollups, from_visits, group_by_keys, grouped_query, keys_of,
    leading_keys, property_value, rollup_plan, selected_keys, stored_events, visit_condition,
};
use crate::stats::{Checked, Dimension, Filter, FilterOp, Group, Metric};

/// Whether goals answer the query: a `GOAL` dimension, or a goal's metric.
pub fn of_goals(q: &Checked) -> bool {
    q.dimensions.contains(&Dimension::Goal) || q.metrics.iter().any(|m| m.of_goals())
}

/// A goal query's groups, from `goal_days` when it can answer.
pub async fn of_goals_groups<C: ConnectionTrait>(db: &C, q: &Checked) -> Result<Vec<Group>, DbErr> {
    if by_goal_days(q) {
        from_goal_days(db, q).await
    } else {
        from_conversions(db, q).await
    }
}

/// `goal_days` holds each goal's visitors per day: it answers a breakdown by goal (or one
/// goal's figures) by day, week or month, narrowed only by goals.
fn by_goal_days(q: &Checked) -> bool {
    let by_goal = q.dimensions == [Dimension::Goal];
    let one_goal =
        q.dimensions.is_empty() && matches!(q.filters.as_slice(), [f] if f.values.len() == 1);
    let daily = q.time.is_none_or(|t| t != Dimension::TimeHour);
    let goals_only = q
        .filters
        .iter()
        .all(|f| f.dimension == Dimension::Goal && f.op == FilterOp::Is);
    (by_goal || one_goal) && daily && goals_only
}

async fn from_goal_days<C: ConnectionTrait>(db: &C, q: &Checked) -> Result<Vec<Group>, DbErr> {
    let mut values: Vec<Value> = vec![q.site.clone().into(), q.from.into(), q.to.into()];
    let mut keys = Vec::new();
    if let Some(bucket) = q.time.and_then(Dimension::bucket) {
        keys.push(bucket.sql("NULL", "d.day"));
    }
    if q.dimensions.contains(&Dimension::Goal) {
        keys.push("g.name".to_owned());
    }
    let mut wheres = vec![
        "g.site = $1".to_owned(),
        "d.day BETWEEN $2 AND $3".to_owned(),
    ];
    for f in &q.filters {
        wheres.push(compare("g.name", f, &mut values));
    }
    let sql = format!(
        "SELECT {selected}sum(d.visitors)::bigint AS visitors, sum(d.visits)::bigint AS visits, \
         sum(d.completions)::bigint AS events \
         FROM goal_days d JOIN goals g ON g.id = d.goal_id WHERE {wheres}{group_by}",
        selected = selected_keys(&keys),
        wheres = wheres.join(" AND "),
        group_by = group_by_keys(keys.len()),
    );
    let rows = grouped_query(db, q, &sql, values).await?;
    rows.iter().map(|row| group(q, row, keys.len())).collect()
}

/// A group from a row of `k0…` keys and the three figures.
fn group(q: &Checked, row: &QueryResult, keys: usize) -> Result<Group, DbErr> {
    let (bucket, values) = keys_of(q, row, keys)?;
    Ok(Group {
        bucket,
        values,
        counts: Counts {
            visitors: row.try_get("", "visitors")?,
            visits: row.try_get("", "visits")?,
            events: row.try_get("", "events")?,
            ..Counts::default()
        },
        ..Group::default()
    })
}

/// Groups rows by the keys, then by visitor-day and visit: visitors, visits and rows (the
/// events) of each group. `rows` selects `k0…`, `day`, `visitor` and `visit`.
fn grouped(rows: &str, keys: usize) -> String {
    let k = leading_keys(keys);
    format!(
        "SELECT {k}count(*)::bigint AS visitors, sum(visits)::bigint AS visits, \
             sum(events)::bigint AS events FROM \
           (SELECT {k}day, visitor, count(*) AS visits, sum(events) AS events FROM \
             (SELECT {k}day, visitor, visit, count(*) AS events FROM ({rows}) r \
              GROUP BY {k}day, visitor, visit) per_visit \
            GROUP BY {k}day, visitor) per_visitor{}",
        group_by_keys(keys)
    )
}

/// A goal's figures from its completions, for any dimensions and filters.
async fn from_conversions<C: ConnectionTrait>(db: &C, q: &Checked) -> Result<Vec<Group>, DbErr> {
    let mut values: Vec<Value> = vec![q.site.clone().into(), q.from.into(), q.to.into()];
    let keys: Vec<String> = q
        .time
        .iter()
        .chain(q.dimensions.iter())
        .map(|d| expression(*d, "NULL"))
        .collect();
    // The visit is read only for its time, dimensions or filters.
    let of_visits = q.time.is_some()
        || q.dimensions.iter().any(|d| !d.scope().is_of_events())
        || q.filters.iter().any(|f| f.dimension != Dimension::Goal);
    let from = match of_visits {
        true => "conversions c JOIN goals g ON g.id = c.goal_id JOIN visits v ON v.id = c.visit_id",
        false => "conversions c JOIN goals g ON g.id = c.goal_id",
    };
    let mut wheres = vec![
        "g.site = $1".to_owned(),
        "c.day BETWEEN $2 AND $3".to_owned(),
    ];
    for f in &q.filters {
        wheres.push(match f.dimension.scope() {
            // The rows are narrowed to the goals named.
            Scope::Goal => compare("g.name", f, &mut values),
            _ => visit_condition(f, &mut values),
        });
    }
    let rows = format!(
        "SELECT {}c.day, c.visitor, c.visit_id AS visit FROM {from} WHERE {}",
        selected_keys(&keys),
        wheres.join(" AND ")
    );
    let sql = grouped(&rows, keys.len());
    let rows = grouped_query(db, q, &sql, values).await?;
    rows.iter().map(|row| group(q, row, keys.len())).collect()
}

/// Custom events by name or property, with filters the rollups cannot answer: the events in
/// the range (by their partial index) joined to their visits.
pub async fn from_custom_events<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
) -> Result<Vec<Group>, DbErr> {
    let mut values: Vec<Value> = vec![q.site.clone().into(), q.from.into(), q.to.into()];
    let key = match &q.property {
        Some(k) => bind(&mut values, k.clone().into()),
        None => "NULL".to_owned(),
    };
    let keys: Vec<String> = q
        .time
        .iter()
        .chain(q.dimensions.iter())
        .map(|d| expression(*d, &key))
        .collect();
    let mut wheres = stored_events(q, CUSTOM_EVENT_TYPE, &mut values);
    if q.dimensions.contains(&Dimension::Property) {
        wheres.push(format!("{} IS NOT NULL", property_value("x", &key)));
    }
    for f in &q.filters {
        wheres.push(match f.dimension.scope() {
            // The events themselves are narrowed by name and property.
            Scope::Property | Scope::EventName => {
                let matched = event_condition(f, &mut values);
                match f.op {
                    FilterOp::IsNot => format!("NOT coalesce({matched}, false)"),
                    _ => matched,
                }
            }
            _ => visit_condition(f, &mut values),
        });
    }
    let rows = format!(
        "SELECT {}v.day, v.visitor, v.id AS visit \
         FROM raw_events x JOIN visits v ON v.id = x.visit_id WHERE {}",
        selected_keys(&keys),
        wheres.join(" AND ")
    );
    let sql = grouped(&rows, keys.len());
    let rows = grouped_query(db, q, &sql, values).await?;
    rows.iter().map(|row| group(q, row, keys.len())).collect()
}

/// The condition of an event-name or property filter over a custom event `x`, as `IS` (the
/// caller keeps or drops what it selects).
fn event_condition(f: &Filter, values: &mut Vec<Value>) -> String {
    let expr = match f.dimension.scope() {
        Scope::Property => {
            let key = bind(values, f.property.clone().unwrap_or_default().trim().into());
            property_value("x", &key)
        }
        _ => "x.name".to_owned(),
    };
    compare(&expr, &f.clone_is(), values)
}

/// Sets on each group the visitors of the same time bucket and visit dimensions under the
/// same filters, goals and custom events aside: what its conversion rate divides by.
pub async fn attach_all_visitors<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
    groups: &mut [Group],
) -> Result<(), DbErr> {
    let kept: Vec<bool> = q
        .dimensions
        .iter()
        .map(|d| !d.scope().is_of_events())
        .collect();
    let of_visits = Checked {
        metrics: vec![Metric::Visitors],
        dimensions: q
            .dimensions
            .iter()
            .copied()
            .filter(|d| !d.scope().is_of_events())
            .collect(),
        property: None,
        filters: q
            .filters
            .iter()
            .filter(|f| f.dimension != Dimension::Goal)
            .cloned()
            .collect(),
        ..q.clone()
    };
    let all = match rollup_plan(&of_visits) {
        Some(plan) => from_rollups(db, &of_visits, plan).await?,
        None => from_visits(db, &of_visits).await?,
    };
    let visitors: HashMap<(Option<NaiveDateTime>, Vec<String>), i64> = all
        .into_iter()
        .map(|g| ((g.bucket, g.values), g.counts.visitors))
        .collect();
    for group in groups {
        let values: Vec<String> = group
            .values
            .iter()
            .zip(&kept)
            .filter(|(_, keep)| **keep)
            .map(|(v, _)| v.clone())
            .collect();
        group.all_visitors = visitors.get(&(group.bucket, values)).copied().unwrap_or(0);
    }
    Ok(())
}
