//! Visits and rollups in the database, kept in the transaction that stores the page views they
//! come from. What a visit is and what it counts is `analytics` (`session::sessionize`); this
//! file reads the state of the visitor-days a batch touches and writes what changed.
//!
//! A visit's state is its `visits` row, read and written in the batch's transaction, so a crash
//! rolls it back with the events, and a partition moved to another consumer resumes the visit
//! where it stood.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use analytics::{Counts, Hit, Rollup, RollupTable, Visit, VisitorDay};
use chrono::{NaiveDate, NaiveDateTime};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde::Serialize;
use settings::AnalyticsSettings;

use crate::written::Written;

/// Rows per statement: each statement carries its rows as one JSON array.
const ROWS_PER_STATEMENT: usize = 1000;

/// Which visitor-days may have visits stored before `apply` reads them.
pub enum Stored<'a> {
    /// Any: the consumer's batches, adding to what is there.
    Any,
    /// Only those this replay wrote (`consumer rebuild`, a recount: they start from none);
    /// `apply` notes there the visits it writes, and reads there those it holds.
    Replayed(&'a mut Written),
}

/// Where a batch's hits went: the visit each was placed in, in the order of the hits, and the
/// rollup deltas, still to be added (`write_rollup`).
pub struct Applied {
    pub placed: Vec<Option<uuid::Uuid>>,
    pub rollup: Rollup,
}

/// Reads the visits of the visitor-days `hits` fall on (each site's days in `zone_of` it),
/// places the hits, and writes the changed visits, on `conn` (the batch's transaction).
pub async fn apply<C: ConnectionTrait>(
    conn: &C,
    hits: &[Hit<'_>],
    settings: &AnalyticsSettings,
    zone_of: impl Fn(&str) -> chrono_tz::Tz + Copy,
    mut stored: Stored<'_>,
) -> Result<Applied, DbErr> {
    if hits.is_empty() {
        return Ok(Applied {
            placed: Vec::new(),
            rollup: Rollup::default(),
        });
    }
    let mut keys = analytics::session::visitor_days(hits, zone_of);
    let mut state = match &mut stored {
        Stored::Replayed(written) => written.recall(&mut keys),
        Stored::Any => HashMap::new(),
    };
    state.extend(load(conn, &keys).await?);
    let changes = analytics::sessionize(&state, hits, settings.visit_timeout(), zone_of);
    write_visits(conn, &changes.visits).await?;
    if let Stored::Replayed(written) = stored {
        written.remember(state, changes.visits);
    }
    Ok(Applied {
        placed: changes.placed,
        rollup: changes.rollup,
    })
}

/// Every visit of the given visitor-days, sorted by start.
async fn load<C: ConnectionTrait>(
    conn: &C,
    keys: &BTreeSet<VisitorDay>,
) -> Result<HashMap<VisitorDay, Vec<Visit>>, DbErr> {
    // One index lookup per visitor-day, whatever the planner believes about the table's size
    // (right after a rebuild's TRUNCATE it believes it empty).
    const LOAD: &str = "SELECT to_json(v)::text AS row \
         FROM json_to_recordset($1::json) AS k(site text, visitor bigint, day date) \
         CROSS JOIN LATERAL (SELECT * FROM visits v WHERE v.site = k.site \
             AND v.visitor = k.visitor AND v.day = k.day) v \
         ORDER BY v.started_at, v.id";
    let mut state: HashMap<VisitorDay, Vec<Visit>> = HashMap::new();
    let keys: Vec<&VisitorDay> = keys.iter().collect();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let json = serde_json::to_string(chunk).map_err(|e| DbErr::Json(e.to_string()))?;
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                LOAD,
                [json.into()],
            ))
            .await?;
        for row in rows {
            let text: String = row.try_get("", "row")?;
            let visit: Visit = serde_json::from_str(&text)
                .map_err(|e| DbErr::Type(format!("a stored visit: {e}")))?;
            state.entry(VisitorDay::of(&visit)).or_default().push(visit);
        }
    }
    Ok(state)
}

async fn write_visits<C: ConnectionTrait>(conn: &C, visits: &[Visit]) -> Result<(), DbErr> {
    // Only what a later hit can change; a visit's start and traits are set when it starts.
    const UPSERT: &str = "INSERT INTO visits \
         SELECT * FROM json_populate_recordset(NULL::visits, $1::json) \
         ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
         pageviews = excluded.pageviews, duration = excluded.duration, \
         engaged = excluded.engaged, engaged_ms = excluded.engaged_ms, \
         exit_page = excluded.exit_page, pages = excluded.pages, events = excluded.events, \
         event_names = excluded.event_names, props = excluded.props";
    for chunk in visits.chunks(ROWS_PER_STATEMENT) {
        execute_json(conn, UPSERT, chunk).await?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DayRow<'a> {
    site: &'a str,
    dimension: Cow<'static, str>,
    day: NaiveDate,
    value: &'a str,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
struct HourRow<'a> {
    site: &'a str,
    hour: NaiveDateTime,
    #[serde(flatten)]
    counts: Counts,
}

/// Adds the deltas. Rows are locked in key order (sorted, tables in `RollupTable` order),
/// the same in every transaction, so consumers of different partitions adding to the same rows
/// wait for each other but never deadlock. They wait until the holder commits: a batch adds
/// its deltas last, right before it commits.
pub async fn write_rollup<C: ConnectionTrait>(conn: &C, rollup: &Rollup) -> Result<(), DbErr> {
    let mut by_table: BTreeMap<RollupTable, Vec<DayRow>> = BTreeMap::new();
    for row in rollup.days() {
        by_table.entry(row.key.table()).or_default().push(DayRow {
            site: row.site,
            dimension: row.key.stored(row.filter),
            day: row.day,
            value: row.value,
            counts: *row.counts,
        });
    }
    for (table, mut rows) in by_table {
        // Sorted as the statement locks them (byte order: `COLLATE "C"`), so the order holds
        // across statements too.
        rows.sort_unstable_by(|a, b| {
            (a.site, &a.dimension, a.day, a.value).cmp(&(b.site, &b.dimension, b.day, b.value))
        });
        let sql = upsert_days_sql(table);
        for chunk in rows.chunks(ROWS_PER_STATEMENT * 4) {
            execute_json(conn, &sql, chunk).await?;
        }
    }
    static HOURS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO rollup_hours AS r \
             SELECT * FROM json_populate_recordset(NULL::rollup_hours, $1::json) \
             ORDER BY site COLLATE \"C\", hour ON CONFLICT (site, hour) DO UPDATE SET {}",
            Counts::add_excluded_sql()
        )
    });
    // In the map's order, byte order by site, as the statement locks them.
    let hour_rows: Vec<HourRow> = rollup
        .hours
        .iter()
        .map(|((site, hour), counts)| HourRow {
            site,
            hour: *hour,
            counts: *counts,
        })
        .collect();
    for chunk in hour_rows.chunks(ROWS_PER_STATEMENT * 4) {
        execute_json(conn, &HOURS, chunk).await?;
    }
    Ok(())
}

/// The upsert adding day rows to `table` (each day table is shaped as `rollup_days`).
fn upsert_days_sql(table: RollupTable) -> String {
    let name = table.name();
    format!(
        "INSERT INTO {name} AS r \
         SELECT * FROM json_populate_recordset(NULL::{name}, $1::json) \
         ORDER BY site COLLATE \"C\", dimension COLLATE \"C\", day, value COLLATE \"C\" \
         ON CONFLICT (site, dimension, day, value) DO UPDATE SET {}",
        Counts::add_excluded_sql()
    )
}

async fn execute_json<C: ConnectionTrait, T: Serialize>(
    conn: &C,
    sql: &str,
    rows: &[T],
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(rows).map_err(|e| DbErr::Json(e.to_string()))?;
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [json.into()],
    ))
    .await?;
    Ok(())
}
