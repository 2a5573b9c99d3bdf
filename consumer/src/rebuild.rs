//! `consumer rebuild`: recomputes the visits and every rollup from `kafka_events`, through the
//! same code the consumer runs for each batch (`sessions::apply`), in stored order (per
//! partition, by offset). Use it after changing `analytics.*` (a site's time zone, the visit
//! timeout), after a migration, or to check that the rollups are exact: `--verify` rebuilds and
//! rolls back, reporting whether anything differed.
//!
//! It runs in one transaction holding an exclusive lock on the read side's tables: consumers
//! wait for it at their next batch and then add to the rebuilt rows, so nothing is counted
//! twice or missed, and the dashboard waits rather than seeing half a rebuild.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use settings::AnalyticsSettings;

use crate::sessions::{self, HitColumns};

/// Page views read per step.
const CHUNK: usize = 20_000;

const HIT_COLUMNS: &str =
    "id, event_type, user_id, visitor_id, received_at, path, engaged_ms, site, is_bot, \
     source, channel, utm_source, utm_medium, utm_campaign, browser, os, device";

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    pub visits: u64,
    /// Whether the rebuilt rollups and visits differ from the ones there before.
    pub differed: bool,
}

/// Whether to keep the rebuilt tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Replace,
    /// Rebuild, compare with what was there, and roll back.
    Verify,
}

/// A fingerprint of the read side's tables, to compare before and after.
const DIGEST: &str = "SELECT \
    (SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY site, dimension, day, value), '')) \
        FROM rollup_days d WHERE (pageviews, visitors, visits, bounces, duration) <> (0, 0, 0, 0, 0)) || \
    (SELECT md5(coalesce(string_agg(h::text, ',' ORDER BY site, hour), '')) \
        FROM rollup_hours h WHERE (pageviews, visitors, visits, bounces, duration) <> (0, 0, 0, 0, 0)) || \
    (SELECT md5(coalesce(string_agg(v::text, ',' ORDER BY id), '')) FROM visits v) AS digest";

pub async fn rebuild(
    db: &DatabaseConnection,
    analytics: &AnalyticsSettings,
    mode: Mode,
) -> Result<Rebuilt, DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared("LOCK TABLE visits, rollup_days, rollup_hours IN ACCESS EXCLUSIVE MODE")
        .await?;
    let before = digest(&txn).await?;
    txn.execute_unprepared("TRUNCATE visits, rollup_days, rollup_hours")
        .await?;
    txn.execute_unprepared(&format!(
        "DECLARE stored_hits NO SCROLL CURSOR FOR SELECT to_json(h)::text AS row FROM \
         (SELECT {HIT_COLUMNS} FROM kafka_events ORDER BY topic, partition, \"offset\") h"
    ))
    .await?;
    // The tables were just emptied, so the planner's statistics say "empty" while they grow to
    // millions of rows in this transaction: keep it on the indexes.
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await?;
    let mut events = 0;
    loop {
        let rows = txn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("FETCH {CHUNK} FROM stored_hits"),
            ))
            .await?;
        if rows.is_empty() {
            break;
        }
        let mut hits = Vec::with_capacity(rows.len());
        for row in &rows {
            let text: String = row.try_get("", "row")?;
            let columns: HitColumns = serde_json::from_str(&text)
                .map_err(|e| DbErr::Type(format!("a stored event: {e}")))?;
            hits.extend(columns.into_hit(analytics));
        }
        events += rows.len() as u64;
        sessions::apply(&txn, &hits, analytics).await?;
    }
    txn.execute_unprepared("CLOSE stored_hits").await?;
    let after = digest(&txn).await?;
    let visits = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM visits",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    match mode {
        Mode::Replace => txn.commit().await?,
        Mode::Verify => txn.rollback().await?,
    }
    Ok(Rebuilt {
        events,
        visits: visits as u64,
        differed: before != after,
    })
}

async fn digest<C: ConnectionTrait>(conn: &C) -> Result<String, DbErr> {
    conn.query_one_raw(Statement::from_string(DbBackend::Postgres, DIGEST))
        .await?
        .map(|row| row.try_get::<String>("", "digest"))
        .transpose()?
        .ok_or_else(|| DbErr::RecordNotFound("digest".into()))
}
