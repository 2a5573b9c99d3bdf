//! Where a query's counts come from. Two engines give the same counts for the same query:
//!
//! - **rollups**: `rollup_days` / `rollup_hours`, kept by the consumer. One row per site,
//!   dimension, day and value, so a 30-day breakdown reads a few thousand rows whatever the
//!   traffic. They answer queries with at most one dimension besides time and at most one
//!   filter, `IS` with one value, on that same dimension (what a dashboard asks).
//! - **visits**: the `visits` table, aggregated at query time (one row per visit, its pages in
//!   a JSON map). It answers everything else: several dimensions, `IS_NOT`, `CONTAINS`, several
//!   filters. It scales with the number of visits in the range.
//!
//! No text from a request reaches SQL: dimensions name columns through enums, values are bound
//! parameters.

use std::collections::HashMap;

use analytics::visit::bounce_sql;
use analytics::{Counts, RollupKey, Scope};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

use crate::stats::{Checked, Dimension, FilterOp, Group};

#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Engine {
    Rollups,
    Visits,
}

/// The counts of a query's groups, from the rollups when they can answer it.
pub async fn groups<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
    force: Option<Engine>,
) -> Result<(Engine, Vec<Group>), DbErr> {
    let plan = rollup_plan(q);
    match (force, plan) {
        (Some(Engine::Visits), _) | (None, None) => Ok((Engine::Visits, from_visits(db, q).await?)),
        (_, Some(plan)) => Ok((Engine::Rollups, from_rollups(db, q, plan).await?)),
        (Some(Engine::Rollups), None) => Err(DbErr::Custom(
            "the rollups cannot answer this query (more than one dimension or filter)".into(),
        )),
    }
}

/// What the rollups are asked: one stored dimension, maybe one value of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RollupPlan {
    Hours,
    Days {
        key: RollupKey,
        value: Option<String>,
        by_value: bool,
    },
}

fn rollup_plan(q: &Checked) -> Option<RollupPlan> {
    if q.time == Some(Dimension::TimeHour) {
        return (q.dimensions.is_empty() && q.filters.is_empty()).then_some(RollupPlan::Hours);
    }
    let filter = match q.filters.as_slice() {
        [] => None,
        [f] if f.op == FilterOp::Is && f.values.len() == 1 => Some((f.dimension, &f.values[0])),
        _ => return None,
    };
    let breakdown = match q.dimensions.as_slice() {
        [] => None,
        [d] => Some(*d),
        _ => return None,
    };
    let key = match (breakdown, filter) {
        (Some(d), Some((f, _))) if d != f => return None,
        (Some(d), _) | (None, Some((d, _))) => RollupKey::of(Some(d))?,
        (None, None) => RollupKey::All,
    };
    Some(RollupPlan::Days {
        key,
        value: filter.map(|(_, v)| v.clone()),
        by_value: breakdown.is_some(),
    })
}

fn counts(row: &QueryResult) -> Result<Counts, DbErr> {
    Counts::read(|column| row.try_get("", column))
}

async fn from_rollups<C: ConnectionTrait>(
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
            for row in query(db, &sql, values).await? {
                let hour: NaiveDateTime = row.try_get("", "hour")?;
                merged
                    .entry((Some(hour), Vec::new()))
                    .or_default()
                    .add(&counts(&row)?, 1);
            }
        }
        RollupPlan::Days {
            key,
            value,
            by_value,
        } => {
            let mut values: Vec<Value> = vec![
                q.site.clone().into(),
                key.name().into(),
                q.from.into(),
                q.to.into(),
            ];
            let only = match value {
                Some(v) => {
                    values.push(v.into());
                    " AND value = $5"
                }
                None => "",
            };
            let keys = match q.time {
                Some(_) => "day, value",
                None => "value",
            };
            let sql = format!(
                "SELECT {keys}, {} FROM rollup_days WHERE site = $1 AND dimension = $2 \
                 AND day BETWEEN $3 AND $4{only} GROUP BY {keys}",
                Counts::sums_sql()
            );
            let bucket = q.time.and_then(Dimension::bucket);
            for row in query(db, &sql, values).await? {
                let bucket = match bucket {
                    Some(b) => {
                        let day: NaiveDate = row.try_get("", "day")?;
                        Some(b.start(day.and_time(NaiveTime::MIN)))
                    }
                    None => None,
                };
                let value: String = row.try_get("", "value")?;
                let values = if by_value { vec![value] } else { Vec::new() };
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
        })
        .collect())
}

/// The SQL expression of a dimension over `visits v` (and `p`, the visit's pages).
fn expression(d: Dimension) -> String {
    match d.scope() {
        Scope::Time(bucket) => bucket.sql("v.hour", "v.day"),
        Scope::PageView => "p.page".into(),
        Scope::Entry | Scope::Exit | Scope::Visit => format!("v.{}", d.name()),
    }
}

/// `%`, `_` and `\` taken literally inside an ILIKE pattern.
fn like_pattern(value: &str) -> String {
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

async fn from_visits<C: ConnectionTrait>(db: &C, q: &Checked) -> Result<Vec<Group>, DbErr> {
    let per_page = |d: Dimension| d.scope() == Scope::PageView;
    let page_dimension = q.dimensions.iter().any(|d| per_page(*d));
    let pages = page_dimension || q.filters.iter().any(|f| per_page(f.dimension));
    let keys: Vec<String> = q
        .time
        .iter()
        .chain(q.dimensions.iter())
        .map(|d| expression(*d))
        .collect();
    let mut values: Vec<Value> = vec![q.site.clone().into(), q.from.into(), q.to.into()];
    let mut wheres = vec![
        "v.site = $1".to_owned(),
        "v.day BETWEEN $2 AND $3".to_owned(),
    ];
    for f in &q.filters {
        let expr = expression(f.dimension);
        let n = values.len() + 1;
        let (condition, bound): (String, Vec<String>) = match f.op {
            FilterOp::Is => (format!("{expr} = ANY(${n})"), f.values.clone()),
            FilterOp::IsNot => (format!("NOT ({expr} = ANY(${n}))"), f.values.clone()),
            FilterOp::Contains => (
                format!("{expr} ILIKE ANY(${n})"),
                f.values.iter().map(|v| like_pattern(v)).collect(),
            ),
        };
        wheres.push(condition);
        values.push(bound.into());
    }
    let selected: String = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} AS k{i}, "))
        .collect();
    let key_names: Vec<String> = (0..keys.len()).map(|i| format!("k{i}")).collect();
    let join = if pages {
        " CROSS JOIN LATERAL jsonb_each_text(v.pages) AS p(page, views)"
    } else {
        ""
    };
    let visit = format!(
        "v.id, v.day, v.visitor, v.duration, {} AS bounce",
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
    let outer_keys = if key_names.is_empty() {
        String::new()
    } else {
        format!("{}, ", key_names.join(", "))
    };
    let group_outer = if key_names.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", key_names.join(", "))
    };
    let sql = format!(
        "SELECT {outer_keys}{sums} \
         FROM ({inner} FROM visits v{join} WHERE {wheres}{group_inner}) x{group_outer}",
        sums = Counts::over_visits_sql(),
        wheres = wheres.join(" AND "),
    );
    let first_value = usize::from(q.time.is_some());
    let mut out = Vec::new();
    for row in query(db, &sql, values).await? {
        let bucket = match q.time {
            Some(_) => Some(row.try_get::<NaiveDateTime>("", "k0")?),
            None => None,
        };
        let mut texts = Vec::with_capacity(keys.len());
        for i in first_value..keys.len() {
            texts.push(row.try_get::<String>("", &format!("k{i}"))?);
        }
        out.push(Group {
            bucket,
            values: texts,
            counts: counts(&row)?,
        });
    }
    Ok(out)
}

async fn query<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await
}

/// The sites seen, in name order.
pub async fn sites<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    let rows = query(
        db,
        "SELECT DISTINCT site FROM rollup_hours ORDER BY site",
        [],
    )
    .await?;
    rows.iter().map(|r| r.try_get("", "site")).collect()
}

pub async fn site_exists<C: ConnectionTrait>(db: &C, site: &str) -> Result<bool, DbErr> {
    let sql = "SELECT EXISTS (SELECT 1 FROM rollup_hours WHERE site = $1) AS seen";
    let rows = query(db, sql, [site.into()]).await?;
    rows.first().map_or(Ok(false), |r| r.try_get("", "seen"))
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
