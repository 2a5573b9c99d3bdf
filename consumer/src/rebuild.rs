//! `consumer rebuild`: recomputes the visits and every rollup from the stored events, through the
//! same code the consumer runs for each batch (`visits::apply`), in stored order (per
//! partition, by offset; the partitions merged by the time their events were received). Use it
//! after changing `analytics.*` (a site's time zone, the visit timeout), after a migration, or
//! to check that the rollups are exact: `--verify` rebuilds and rolls back, reporting whether
//! anything differed.
//!
//! The rollups record the model they were built with (`analytics::fingerprint`: the dimensions,
//! the counts, the rules' version) in `read_model`. A consumer starting with a model that
//! differs (a dimension added, say) rebuilds first (`rebuild_if_model_changed`): otherwise the
//! first batch touching an old visitor-day would subtract from the new dimension's rows what
//! was never added to them.
//!
//! Each hit's visit (`raw_events.visit_id`) is set again as it is replayed, and the
//! conversions of every goal are recorded again from them at the end (`analytics::goal`).
//!
//! It runs in one transaction holding an exclusive lock on the read side's tables: consumers
//! wait for it at their next batch and then add to the rebuilt rows, so nothing is counted
//! twice or missed, and the dashboard waits rather than seeing half a rebuild.

use analytics::visit::{hit_kind, Hit, CUSTOM_EVENT_TYPE, ENGAGEMENT_EVENT_TYPE};
use analytics::{Counts, Dimension, RollupTable, Traits};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use serde::Deserialize;
use settings::AnalyticsSettings;

use crate::visits;
use crate::written::Written;

/// Page views read per step.
const CHUNK: usize = 20_000;

/// The columns of a stored event that visits read (the visit dimensions' by their names), as
/// `raw_events` holds them: the topic, the site and the visit dimensions as `event_texts` ids,
/// which the replay looks up itself (`Dictionary`), rather than joining the dictionary once per
/// column and row through the `kafka_events` view.
#[derive(Debug, Deserialize)]
struct StoredHit {
    topic: i32,
    partition: i32,
    offset: i64,
    id: uuid::Uuid,
    event_type: String,
    user_id: String,
    visitor_id: Option<i64>,
    received_at: DateTime<Utc>,
    path: String,
    engaged_ms: Option<i32>,
    site: Option<i32>,
    is_bot: bool,
    name: Option<String>,
    props: Option<Vec<StoredProperty>>,
    #[serde(flatten)]
    traits: Traits<Option<i32>>,
}

/// A custom event's property, as `kafka_events.props` holds it.
#[derive(Debug, Deserialize)]
struct StoredProperty {
    key: String,
    value: String,
}

impl StoredHit {
    fn columns() -> String {
        let mut columns = vec![
            "topic",
            "partition",
            "offset",
            "id",
            "event_type",
            "user_id",
            "visitor_id",
            "received_at",
            "path",
            "engaged_ms",
            "site",
            "is_bot",
            "name",
            "props",
        ];
        columns.extend(Dimension::TRAITS.iter().map(|d| d.name()));
        columns
            .into_iter()
            .map(|c| format!("{} AS \"{c}\"", migration::read_raw("e", c)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The ids of texts this hit holds.
    fn text_ids(&self) -> impl Iterator<Item = i32> + '_ {
        let traits = Dimension::TRAITS
            .iter()
            .filter_map(|d| *self.traits.get(*d)?);
        [Some(self.topic), self.site]
            .into_iter()
            .flatten()
            .chain(traits)
    }

    fn hit<'a>(&'a self, page_view_type: &str, texts: &'a Dictionary) -> Option<Hit<'a>> {
        Some(Hit {
            id: self.id,
            kind: hit_kind(&self.event_type, self.engaged_ms, page_view_type)?,
            site: texts.get(self.site?)?,
            visitor: crate::store::visitor_of(self.visitor_id, &self.user_id),
            at: self.received_at,
            page: &self.path,
            is_bot: self.is_bot,
            // NULL as "".
            traits: self
                .traits
                .map(|id| id.and_then(|id| texts.get(id)).unwrap_or("")),
            name: self.name.as_deref().unwrap_or(""),
            props: self
                .props
                .iter()
                .flatten()
                .map(|p| (p.key.as_str(), p.value.as_str()))
                .collect(),
        })
    }
}

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

/// A fingerprint of the read side's tables, to compare before and after: per table, its row
/// count and the sum of its rows' hashes. Order-free, so no sort of millions of rows (a
/// digest of the rows in key order took 14 s of a rebuild of 1 M events; this, a scan).
fn digest_sql() -> String {
    let nonzero = Counts::nonzero_sql();
    let of = |table: &str, only: &str| {
        format!(
            "(SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text \
             FROM {table} t WHERE {only})"
        )
    };
    let rollups = RollupTable::ALL.map(|t| of(t.name(), nonzero));
    let others = ["visits", "conversions", "goal_days"].map(|t| of(t, "true"));
    let parts: Vec<String> = rollups.into_iter().chain(others).collect();
    format!("SELECT {} AS digest", parts.join(" || ',' || "))
}

pub async fn rebuild(
    db: &DatabaseConnection,
    analytics: &AnalyticsSettings,
    mode: Mode,
) -> Result<Rebuilt, DbErr> {
    let txn = db.begin().await?;
    lock(&txn).await?;
    let rebuilt = replay(&txn, analytics).await?;
    match mode {
        Mode::Replace => txn.commit().await?,
        Mode::Verify => txn.rollback().await?,
    }
    Ok(rebuilt)
}

/// Rebuilds when the rollups were built with another model than this binary's; `None` when
/// they are current. Several consumers starting at once rebuild once: the second finds the
/// model current once it has the lock.
pub async fn rebuild_if_model_changed(
    db: &DatabaseConnection,
    analytics: &AnalyticsSettings,
) -> Result<Option<Rebuilt>, DbErr> {
    let current = analytics::fingerprint();
    if stored_model(db).await?.as_deref() == Some(current.as_str()) {
        return Ok(None);
    }
    let txn = db.begin().await?;
    lock(&txn).await?;
    if stored_model(&txn).await?.as_deref() == Some(current.as_str()) {
        txn.rollback().await?;
        return Ok(None);
    }
    let rebuilt = replay(&txn, analytics).await?;
    txn.commit().await?;
    Ok(Some(rebuilt))
}

async fn lock<C: ConnectionTrait>(txn: &C) -> Result<(), DbErr> {
    txn.execute_unprepared(&format!(
        "LOCK TABLE sites, visits, {}, read_model, conversions, goal_days \
         IN ACCESS EXCLUSIVE MODE",
        RollupTable::list()
    ))
    .await?;
    Ok(())
}

/// The model the rollups were last built with.
async fn stored_model<C: ConnectionTrait>(conn: &C) -> Result<Option<String>, DbErr> {
    let sql = "SELECT fingerprint FROM read_model WHERE name = 'rollups'";
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    row.map(|r| r.try_get("", "fingerprint")).transpose()
}

/// Empties the read side and replays every stored page view of the registered sites into it,
/// on `txn` (which holds the lock), and records the model it was built with.
async fn replay<C: ConnectionTrait>(
    txn: &C,
    analytics: &AnalyticsSettings,
) -> Result<Rebuilt, DbErr> {
    if let Some(from) = crate::months::raw_kept_from(txn).await? {
        return Err(DbErr::Custom(format!(
            "raw events before {from} were dropped (analytics.raw_retention_months): a rebuild from the stored events would lose the visits and rollups before then, so it is refused"
        )));
    }
    let before = digest(txn).await?;
    txn.execute_unprepared(&format!(
        "TRUNCATE visits, {}, conversions, goal_days",
        RollupTable::list()
    ))
    .await?;
    let zones = registered_zones(txn, analytics).await?;
    let zone_of = |site: &str| zones.get(site).copied().unwrap_or(chrono_tz::UTC);
    let registered =
        "e.site IN (SELECT t.id FROM event_texts t JOIN sites s ON s.domain = t.value)";
    let mut written = Written::default();
    let replayed = replay_hits(
        txn,
        analytics,
        (registered, Vec::new()),
        zone_of,
        &mut written,
    )
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        analytics::goal::conversions_sql("true"),
        [analytics.page_view_type.clone().into()],
    ))
    .await?;
    // Every site's past is counted now, those waiting for their recount too.
    txn.execute_unprepared("UPDATE sites SET counted_at = now() WHERE counted_at IS NULL")
        .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO read_model (name, fingerprint) VALUES ('rollups', $1) \
         ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, built_at = now()",
        [analytics::fingerprint().into()],
    ))
    .await?;
    let after = digest(txn).await?;
    let visits = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM visits",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    Ok(Rebuilt {
        events: replayed.events,
        visits: visits as u64,
        differed: before != after || replayed.moved > 0,
    })
}

/// Every registered site's time zone.
async fn registered_zones<C: ConnectionTrait>(
    conn: &C,
    analytics: &AnalyticsSettings,
) -> Result<HashMap<String, chrono_tz::Tz>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT domain, time_zone FROM sites",
        ))
        .await?;
    let mut zones = HashMap::with_capacity(rows.len());
    for row in rows {
        let domain: String = row.try_get("", "domain")?;
        let zone: Option<String> = row.try_get("", "time_zone")?;
        let zone = analytics.zone_of_registered(&domain, zone.as_deref());
        zones.insert(domain, zone);
    }
    Ok(zones)
}

/// What a replay read.
#[derive(Default)]
struct Replayed {
    events: u64,
    /// Hits whose visit changed.
    moved: u64,
    /// The last offset replayed, per topic (its `event_texts` id) and partition.
    last: HashMap<(i32, i32), i64>,
}

/// The texts of the ids a replay has met, read from `event_texts` chunk by chunk: a few
/// thousand sites, browsers, sources and places, however many events hold them.
#[derive(Default)]
struct Dictionary(HashMap<i32, String>);

impl Dictionary {
    fn get(&self, id: i32) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }

    /// Reads the texts of the ids in `hits` it does not know yet.
    async fn learn<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        hits: &[StoredHit],
    ) -> Result<(), DbErr> {
        let mut missing: Vec<i32> = hits
            .iter()
            .flat_map(StoredHit::text_ids)
            .filter(|id| !self.0.contains_key(id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id, value FROM event_texts WHERE id = ANY($1)",
                [missing.into()],
            ))
            .await?;
        for row in rows {
            self.0
                .insert(row.try_get("", "id")?, row.try_get("", "value")?);
        }
        Ok(())
    }
}

/// The stored hits of each partition in offset order (a cursor each), merged by the time
/// they were received: the order within a partition, which is all a visit depends on, is
/// kept, and a chunk holds the same hours of every partition, so a rollup row is added to
/// about once per chunk of its day rather than once per partition. Each cursor scans the
/// table for its own partition (no index has `(topic, partition, offset)`): a few scans for
/// the few partitions of a topic; one for each of hundreds would want that index.
struct Streams {
    cursors: Vec<Cursor>,
    /// The next hit of each cursor that has one, earliest first (by time, then cursor).
    heads: std::collections::BinaryHeap<std::cmp::Reverse<(DateTime<Utc>, usize)>>,
}

struct Cursor {
    name: String,
    buffered: std::collections::VecDeque<StoredHit>,
    exhausted: bool,
}

impl Streams {
    async fn declare<C: ConnectionTrait>(
        txn: &C,
        scope: &str,
        values: Vec<sea_orm::Value>,
    ) -> Result<Streams, DbErr> {
        let selected = format!(
            "FROM raw_events e WHERE {} IN ($1, $2, $3) AND ({scope})",
            migration::read_raw("e", "event_type")
        );
        let partitions = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("SELECT DISTINCT topic, partition {selected} ORDER BY topic, partition"),
                values.clone(),
            ))
            .await?;
        let mut cursors = Vec::with_capacity(partitions.len());
        for (i, row) in partitions.iter().enumerate() {
            let (topic, partition): (i32, i32) =
                (row.try_get("", "topic")?, row.try_get("", "partition")?);
            let name = format!("stored_hits_{i}");
            // Numbers read from the table, not a request's text.
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "DECLARE {name} NO SCROLL CURSOR FOR SELECT to_json(h)::text AS row FROM \
                     (SELECT {} {selected} AND e.topic = {topic} AND e.partition = {partition} \
                      ORDER BY \"offset\") h",
                    StoredHit::columns()
                ),
                values.clone(),
            ))
            .await?;
            cursors.push(Cursor {
                name,
                buffered: Default::default(),
                exhausted: false,
            });
        }
        let mut streams = Streams {
            cursors,
            heads: Default::default(),
        };
        for i in 0..streams.cursors.len() {
            streams.refill(txn, i).await?;
        }
        Ok(streams)
    }

    /// Reads the next rows of cursor `i` if it has none buffered, and notes its head (its
    /// earliest buffered hit) in `heads`.
    async fn refill<C: ConnectionTrait>(&mut self, txn: &C, i: usize) -> Result<(), DbErr> {
        let per_cursor = (CHUNK / self.cursors.len().max(1)).max(1_000);
        let cursor = &mut self.cursors[i];
        if cursor.buffered.is_empty() && !cursor.exhausted {
            let rows = txn
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("FETCH {per_cursor} FROM {}", cursor.name),
                ))
                .await?;
            cursor.exhausted = rows.len() < per_cursor;
            for row in rows {
                let text: String = row.try_get("", "row")?;
                let hit: StoredHit = serde_json::from_str(&text)
                    .map_err(|e| DbErr::Type(format!("a stored event: {e}")))?;
                cursor.buffered.push_back(hit);
            }
        }
        if let Some(head) = cursor.buffered.front() {
            self.heads.push(std::cmp::Reverse((head.received_at, i)));
        }
        Ok(())
    }

    /// Up to `CHUNK` hits, earliest head first; empty once every cursor is read.
    async fn next_chunk<C: ConnectionTrait>(&mut self, txn: &C) -> Result<Vec<StoredHit>, DbErr> {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            let Some(std::cmp::Reverse((_, i))) = self.heads.pop() else {
                break;
            };
            if let Some(hit) = self.cursors[i].buffered.pop_front() {
                chunk.push(hit);
            }
            self.refill(txn, i).await?;
        }
        Ok(chunk)
    }

    async fn close<C: ConnectionTrait>(&self, txn: &C) -> Result<(), DbErr> {
        for cursor in &self.cursors {
            txn.execute_unprepared(&format!("CLOSE {}", cursor.name))
                .await?;
        }
        Ok(())
    }
}

/// Replays the stored hits that `scope` (SQL over `raw_events` `e`, its values from `$4` on)
/// selects into the visits and rollups, in stored order (per partition, by offset; `Streams`).
/// The visits of those hits' visitor-days are all in `written` (none were stored before the
/// replay began).
async fn replay_hits<C: ConnectionTrait>(
    txn: &C,
    analytics: &AnalyticsSettings,
    (scope, values): (&str, Vec<sea_orm::Value>),
    zone_of: impl Fn(&str) -> chrono_tz::Tz + Copy,
    written: &mut Written,
) -> Result<Replayed, DbErr> {
    let mut all: Vec<sea_orm::Value> = vec![
        analytics.page_view_type.clone().into(),
        ENGAGEMENT_EVENT_TYPE.into(),
        CUSTOM_EVENT_TYPE.into(),
    ];
    all.extend(values);
    let mut streams = Streams::declare(txn, scope, all).await?;
    // Right after emptying them, the planner's statistics say "empty" while the tables grow to
    // millions of rows in this transaction: keep it on the indexes.
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await?;
    let mut replayed = Replayed::default();
    let mut texts = Dictionary::default();
    loop {
        let stored = streams.next_chunk(txn).await?;
        if stored.is_empty() {
            break;
        }
        for hit in &stored {
            replayed.last.insert((hit.topic, hit.partition), hit.offset);
        }
        replayed.events += stored.len() as u64;
        texts.learn(txn, &stored).await?;
        let hits: Vec<Hit> = stored
            .iter()
            .filter_map(|h| h.hit(&analytics.page_view_type, &texts))
            .collect();
        let applied = visits::apply(
            txn,
            &hits,
            analytics,
            zone_of,
            visits::Stored::Replayed(written),
        )
        .await?;
        visits::write_rollup(txn, &applied.rollup).await?;
        replayed.moved += set_visit_ids(txn, &hits, &applied.placed).await?;
    }
    streams.close(txn).await?;
    // Every event is read once here: a scan, not an index lookup per event.
    txn.execute_unprepared("SET LOCAL enable_seqscan = on")
        .await?;
    Ok(replayed)
}

/// The advisory lock namespace of recounts (with the site's hash as the second key): one
/// consumer counts a site at a time.
const RECOUNT_LOCK: i32 = 0x7265_636e; // "recn"

/// A site's past, counted: what `recount_next` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recounted {
    pub site: String,
    pub events: u64,
}

/// Counts the stored events of one registered site whose past is not counted yet (just
/// registered, or its time zone changed), if there is one no other consumer is counting.
///
/// The consumers store that site's new events meanwhile without counting them. The site's
/// visits, rollups and conversions are recomputed from its events as they stand; then its row
/// is locked for update, which waits for the batches in flight, and the events stored since
/// are counted too, so that none is missed or counted twice; then the site counts again.
pub async fn recount_next(
    db: &DatabaseConnection,
    analytics: &AnalyticsSettings,
) -> Result<Option<Recounted>, DbErr> {
    let txn = db.begin().await?;
    let Some((site, zone)) = claim_pending(&txn).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    let zone_of = |_: &str| analytics.zone_of_registered(&site, zone.as_deref());
    forget_counts(&txn, &site).await?;
    // Both passes' visits are this recount's own: the consumers do not count the site meanwhile.
    let mut written = Written::default();
    let only_site = "e.site = (SELECT id FROM event_texts WHERE value = $4)";
    let first = replay_hits(
        &txn,
        analytics,
        (only_site, vec![site.clone().into()]),
        zone_of,
        &mut written,
    )
    .await?;
    // The row, for update: the batches that stored this site's events meanwhile have ended.
    let now = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT time_zone FROM sites WHERE domain = $1 AND counted_at IS NULL FOR UPDATE",
            [site.clone().into()],
        ))
        .await?;
    let unchanged = match now {
        Some(row) => row.try_get::<Option<String>>("", "time_zone")? == zone,
        None => false,
    };
    if !unchanged {
        // Deleted, or its zone changed again meanwhile: counted on a later round, if at all.
        txn.rollback().await?;
        return Ok(None);
    }
    let last: Vec<serde_json::Value> = first
        .last
        .iter()
        .map(|((topic, partition), offset)| {
            serde_json::json!({"topic": topic, "partition": partition, "last": offset})
        })
        .collect();
    let since = "e.site = (SELECT id FROM event_texts WHERE value = $4) AND NOT EXISTS \
                 (SELECT 1 FROM json_to_recordset($5::json) AS m(topic int, partition int, last bigint) \
                 WHERE m.topic = e.topic AND m.partition = e.partition AND e.\"offset\" <= m.last)";
    let last = serde_json::Value::Array(last).to_string();
    let rest = replay_hits(
        &txn,
        analytics,
        (since, vec![site.clone().into(), last.into()]),
        zone_of,
        &mut written,
    )
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        analytics::goal::conversions_sql("e.site = $2"),
        [analytics.page_view_type.clone().into(), site.clone().into()],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE sites SET counted_at = now() WHERE domain = $1",
        [site.clone().into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(Some(Recounted {
        site,
        events: first.events + rest.events,
    }))
}

/// The first site waiting for its count whose recount lock this transaction could take.
async fn claim_pending<C: ConnectionTrait>(
    txn: &C,
) -> Result<Option<(String, Option<String>)>, DbErr> {
    let rows = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT domain, time_zone FROM sites WHERE counted_at IS NULL \
             ORDER BY created_at, domain LIMIT 16",
        ))
        .await?;
    for row in rows {
        let domain: String = row.try_get("", "domain")?;
        let claimed = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({RECOUNT_LOCK}, hashtext($1)) AS got"),
                [domain.clone().into()],
            ))
            .await?
            .map(|r| r.try_get::<bool>("", "got"))
            .transpose()?
            .unwrap_or(false);
        if claimed {
            return Ok(Some((domain, row.try_get("", "time_zone")?)));
        }
    }
    Ok(None)
}

/// Deletes what was counted of a site: its visits, rollups and conversions.
async fn forget_counts<C: ConnectionTrait>(txn: &C, site: &str) -> Result<(), DbErr> {
    let fixed = [
        "DELETE FROM conversions WHERE site = $1",
        "DELETE FROM goal_days WHERE goal_id IN (SELECT id FROM goals WHERE site = $1)",
        "DELETE FROM visits WHERE site = $1",
    ]
    .map(String::from);
    let rollups = RollupTable::ALL.map(|t| format!("DELETE FROM {} WHERE site = $1", t.name()));
    for sql in fixed.into_iter().chain(rollups) {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [site.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Notes on each replayed hit the visit it is placed in now; returns how many changed.
async fn set_visit_ids<C: ConnectionTrait>(
    txn: &C,
    hits: &[Hit<'_>],
    placed: &[Option<uuid::Uuid>],
) -> Result<u64, DbErr> {
    #[derive(serde::Serialize)]
    struct Placed {
        id: uuid::Uuid,
        // The rest of the primary key: each row is looked up in its own month's partition.
        at: DateTime<Utc>,
        visit: Option<uuid::Uuid>,
    }
    let rows: Vec<Placed> = hits
        .iter()
        .zip(placed)
        .map(|(hit, visit)| Placed {
            id: hit.id,
            at: hit.at,
            visit: *visit,
        })
        .collect();
    let json = serde_json::to_string(&rows).map_err(|e| DbErr::Json(e.to_string()))?;
    let result = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE raw_events e SET visit_id = p.visit \
             FROM json_to_recordset($1::json) AS p(id uuid, at timestamptz, visit uuid) \
             WHERE e.id = p.id AND e.received_at = p.at AND e.visit_id IS DISTINCT FROM p.visit",
            [json.into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

async fn digest<C: ConnectionTrait>(conn: &C) -> Result<String, DbErr> {
    conn.query_one_raw(Statement::from_string(DbBackend::Postgres, digest_sql()))
        .await?
        .map(|row| row.try_get::<String>("", "digest"))
        .transpose()?
        .ok_or_else(|| DbErr::RecordNotFound("digest".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visit_dimension_is_read_as_an_event_texts_id() {
        for d in Dimension::TRAITS {
            assert!(crate::texts::COLUMNS.contains(&d.name()), "{d:?}");
        }
        for column in ["topic", "site"] {
            assert!(crate::texts::COLUMNS.contains(&column), "{column}");
        }
    }
}
