//! The database side of the consumer. One transaction per fetched batch holds the events, the
//! dead letters and the partition's next offset, so a crash at any moment leaves either all of
//! them or none (Kafka's "storing offsets outside Kafka" pattern).

use chrono::Utc;
use entity::{consumer_offset, dead_letter};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use crate::row::{client_columns, rows_json, Origin};
use crate::sites::{Registry, Standing};
use crate::visits;
use analytics::visit::{hit_kind, stored_event_type, Hit, Shape};
use analytics::Traits;
use event::PageView;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};

/// Rows per INSERT. Each statement carries its rows as one JSON array, so its size, not a bind
/// parameter count, is what this bounds (driver buffers grow with the statement).
const EVENT_ROWS_PER_INSERT: usize = 250;

/// Inserts JSON rows keyed by column name (`row.rs`), skipping ids already stored.
const INSERT_EVENTS: &str = "INSERT INTO raw_events \
     SELECT * FROM json_populate_recordset(NULL::raw_events, $1::json) \
     ON CONFLICT (id, received_at) DO NOTHING";
/// Which of some ids are stored.
const STORED_IDS: &str = "SELECT id FROM raw_events WHERE id = ANY($1)";
/// For each row (its position `n`), whether the stored row of its id has the same client
/// fields ($2: their column names), compared by PostgreSQL value by value (texts by their ids:
/// one text has one id).
const SAME_AS_STORED: &str = "SELECT a.n, \
     (SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(k)) WHERE key = ANY($2)) \
     IS NOT DISTINCT FROM \
     (SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(r)) WHERE key = ANY($2)) AS same \
     FROM json_array_elements($1::json) WITH ORDINALITY AS a(row, n) \
     CROSS JOIN LATERAL json_populate_record(NULL::raw_events, a.row) r \
     JOIN raw_events k ON k.id = r.id";
/// A dead letter row takes 6.
const DEAD_LETTER_ROWS_PER_INSERT: usize = 8_000;

/// A record that decoded into an event.
pub struct StoredEvent {
    pub offset: i64,
    pub view: PageView,
    pub enrichment: enrich::Enrichment,
    /// The visit this hit was placed in, once visits have seen it.
    pub visit_id: Option<uuid::Uuid>,
}

impl StoredEvent {
    /// An event read at `offset`, with what it says beyond its fields (browser, source, …). An
    /// engagement report or a custom event of the page-view stream is stored under its own type
    /// (`stored_event_type`).
    pub fn new(
        offset: i64,
        mut view: PageView,
        agents: &enrich::agent::AgentParser,
        page_view_type: &str,
    ) -> Self {
        let fields = &view.fields;
        let shape = Shape::of(fields.engaged_ms, fields.name.as_deref());
        let stored = stored_event_type(&fields.event_type, shape, page_view_type);
        if stored != fields.event_type {
            view.fields.event_type = stored.to_owned();
        }
        let page = enrich::PageContext {
            url: &view.fields.url,
            search: &view.fields.search,
            referrer: view.fields.referrer.as_deref(),
            user_agent: view.visit.user_agent.as_deref(),
        };
        let enrichment = enrich::enrich(page, agents);
        StoredEvent {
            offset,
            view,
            enrichment,
            visit_id: None,
        }
    }

    /// What visits see of this event, if it is a page view (or engagement report) of a site.
    pub fn hit(&self, page_view_type: &str) -> Option<Hit<'_>> {
        let (fields, e) = (&self.view.fields, &self.enrichment);
        Some(Hit {
            id: self.view.id,
            kind: hit_kind(&fields.event_type, fields.engaged_ms, page_view_type)?,
            site: e.site.as_deref()?,
            visitor: visitor_of(self.view.visit.visitor_id, &fields.user_id),
            at: self.view.received_at,
            page: &fields.path,
            is_bot: e.is_bot,
            traits: traits_of(&self.view.visit, e),
            name: fields.name.as_deref().unwrap_or(""),
            props: fields
                .props
                .iter()
                .flatten()
                .map(|p| (p.key.as_str(), p.value.as_str()))
                .collect(),
        })
    }
}

/// Where each visit dimension's value comes from: the enrichment of the event, or what the
/// producer learned from the request.
fn traits_of<'a>(visit: &'a event::Visit, e: &'a enrich::Enrichment) -> Traits<&'a str> {
    fn text(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }
    Traits {
        source: text(&e.source),
        channel: e.channel,
        utm_source: text(&e.campaign.utm_source),
        utm_medium: text(&e.campaign.utm_medium),
        utm_campaign: text(&e.campaign.utm_campaign),
        browser: text(&e.browser),
        os: text(&e.os),
        device: text(&e.device),
        country: text(&visit.country),
        region: text(&visit.region),
        city: text(&visit.city),
    }
}

/// The visitor of an event; for events stored before visitor ids existed, their user id
/// stands in.
pub fn visitor_of(visitor_id: Option<i64>, user_id: &str) -> i64 {
    visitor_id.unwrap_or_else(|| crate::anchor::fnv1a(user_id.as_bytes()))
}

/// A record that could not become an event.
pub struct DeadLetter {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub error: String,
}

/// What one fetched batch turns into.
pub struct Batch {
    pub topic: String,
    pub partition: i32,
    /// The offset the batch starts at, as stored before it.
    pub expected_offset: i64,
    /// The offset after the batch's last record.
    pub next_offset: i64,
    /// The fingerprint of the batch's last record.
    pub last_record: Option<i64>,
    pub events: Vec<StoredEvent>,
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Rows inserted into kafka_events (duplicates of already stored ids are not counted).
    pub events: u64,
    pub dead_letters: u64,
    /// Events whose id was stored already with the same content (a client's retry).
    pub duplicates: u64,
    /// Stored events of sites that are not registered: kept, not counted.
    pub unregistered: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another consumer moved this partition's offset since we read it: we no longer own it.
    #[error("the stored offset of {topic}/{partition} is no longer {expected}: another consumer took the partition")]
    OffsetMoved {
        topic: String,
        partition: i32,
        expected: i64,
    },
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Where a partition's consumption resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredOffset {
    pub next: i64,
    /// The fingerprint of the record at `next - 1`, if this consumer stored it.
    pub last_record: Option<i64>,
}

/// The stored offset of a partition, if any.
pub async fn stored_offset(
    db: &DatabaseConnection,
    topic: &str,
    partition: i32,
) -> Result<Option<StoredOffset>, DbErr> {
    Ok(
        consumer_offset::Entity::find_by_id((topic.to_owned(), partition))
            .one(db)
            .await?
            .map(|row| StoredOffset {
                next: row.next_offset,
                last_record: row.last_record,
            }),
    )
}

/// Stores `start` as the partition's offset unless one is stored already; returns the stored one.
pub async fn init_offset(
    db: &DatabaseConnection,
    topic: &str,
    partition: i32,
    start: i64,
) -> Result<StoredOffset, DbErr> {
    consumer_offset::Entity::insert(consumer_offset::ActiveModel {
        topic: Set(topic.to_owned()),
        partition: Set(partition),
        next_offset: Set(start),
        last_record: Set(None),
        updated_at: Set(Utc::now().into()),
    })
    .on_conflict(
        OnConflict::columns([
            consumer_offset::Column::Topic,
            consumer_offset::Column::Partition,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    stored_offset(db, topic, partition)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("offset of {topic}/{partition}")))
}

/// Moves a partition's offset from `expected` to `next` with nothing else (out-of-range reset).
/// Nothing below `next` was stored from this log, so no fingerprint goes with it.
pub async fn move_offset(
    db: &DatabaseConnection,
    topic: &str,
    partition: i32,
    expected: i64,
    next: i64,
) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    compare_and_set_offset(&txn, topic, partition, expected, (next, None)).await?;
    txn.commit().await?;
    Ok(())
}

async fn compare_and_set_offset<C: sea_orm::ConnectionTrait>(
    conn: &C,
    topic: &str,
    partition: i32,
    expected: i64,
    (next, last_record): (i64, Option<i64>),
) -> Result<(), StoreError> {
    let updated = consumer_offset::Entity::update_many()
        .col_expr(consumer_offset::Column::NextOffset, Expr::value(next))
        .col_expr(
            consumer_offset::Column::LastRecord,
            Expr::value(last_record),
        )
        .col_expr(
            consumer_offset::Column::UpdatedAt,
            Expr::current_timestamp(),
        )
        .filter(consumer_offset::Column::Topic.eq(topic))
        .filter(consumer_offset::Column::Partition.eq(partition))
        .filter(consumer_offset::Column::NextOffset.eq(expected))
        .exec(conn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::OffsetMoved {
            topic: topic.to_owned(),
            partition,
            expected,
        });
    }
    Ok(())
}

/// Stores a batch exactly once: events (skipping ids already stored), the visits and rollups
/// they change, dead letters, and the offset compare-and-set, in one transaction. Dropping the
/// future rolls it back.
///
/// An id names one event: the first record stored with it wins. A later record with the same
/// id and the same client fields is a retry and is dropped (counted as a duplicate); one with
/// different fields is kept as a dead letter saying so, never silently dropped. Only events
/// stored now reach the visits, so a retry is never counted twice.
pub async fn commit(
    db: &DatabaseConnection,
    analytics: &settings::AnalyticsSettings,
    months: &crate::months::Months,
    texts: &crate::texts::Texts,
    batch: Batch,
) -> Result<Committed, StoreError> {
    // Each month's partition exists before the batch's transaction, which then takes no lock
    // beyond its rows.
    let received = batch
        .events
        .iter()
        .map(|e| crate::months::month_of(e.view.received_at));
    months.ensure(db, received).await?;
    // So are the ids of its texts, each committed on its own (see `texts`).
    let batch_texts = crate::row::texts_of(batch.events.iter(), &batch.topic)?;
    let ids = texts.ids_of(db, batch_texts).await?;
    let committed = store(db, analytics, batch, &ids).await;
    if let Err(StoreError::Db(e)) = &committed {
        if crate::months::is_missing_month(e) {
            // Another consumer dropped a month this one thought it had: ask again next time.
            months.forget();
        }
    }
    committed
}

async fn store(
    db: &DatabaseConnection,
    analytics: &settings::AnalyticsSettings,
    batch: Batch,
    ids: &crate::texts::Ids,
) -> Result<Committed, StoreError> {
    let txn = db.begin().await?;
    let Batch {
        topic,
        partition,
        expected_offset,
        next_offset,
        last_record,
        events,
        mut dead_letters,
    } = batch;
    let origin = Origin {
        topic: &topic,
        partition,
        texts: ids,
    };
    let mut committed = Committed {
        events: 0,
        dead_letters: 0,
        duplicates: 0,
        unregistered: 0,
    };
    let (fresh, fresh_repeats) = judge_known(&txn, events, origin, |same, event| match same {
        Sameness::Retry => committed.duplicates += 1,
        Sameness::Conflict => dead_letters.push(conflicting(event)),
    })
    .await?;
    let mut fresh = fresh;
    let rollup;
    (committed.unregistered, rollup) = place_in_visits(&txn, &mut fresh, analytics).await?;
    committed.events = insert_fresh(&txn, &fresh, origin).await?;
    record_conversions(&txn, &fresh, &analytics.page_view_type).await?;
    // Later events of an id first seen in this batch are judged against that first one.
    for event in &fresh_repeats {
        let first = fresh.iter().find(|f| f.view.id == event.view.id);
        if first.map(|f| &f.view.fields) == Some(&event.view.fields) {
            committed.duplicates += 1;
        } else {
            dead_letters.push(conflicting(event));
        }
    }
    committed.dead_letters = insert_dead_letters(&txn, &topic, partition, &dead_letters).await?;
    compare_and_set_offset(
        &txn,
        &topic,
        partition,
        expected_offset,
        (next_offset, last_record),
    )
    .await?;
    // Last: other partitions' batches adding to the same rollup rows wait for this commit.
    visits::write_rollup(&txn, &rollup).await?;
    txn.commit().await?;
    Ok(committed)
}

/// Places the events that are hits of counted sites into visits (writing the visits), and
/// notes on each the visit it went to. Returns how many events belong to sites that are not
/// registered, and the rollup deltas to add.
async fn place_in_visits<C: ConnectionTrait>(
    conn: &C,
    fresh: &mut [StoredEvent],
    analytics: &settings::AnalyticsSettings,
) -> Result<(u64, analytics::Rollup), DbErr> {
    let sites: BTreeSet<&str> = fresh
        .iter()
        .filter_map(|e| e.enrichment.site.as_deref())
        .collect();
    let registry = Registry::for_batch(conn, &sites, analytics).await?;
    let unregistered = fresh
        .iter()
        .filter(|e| {
            e.enrichment
                .site
                .as_deref()
                .is_some_and(|s| registry.standing(s) == Standing::Unknown)
        })
        .count() as u64;
    let hits: Vec<Hit> = fresh
        .iter()
        .filter_map(|e| e.hit(&analytics.page_view_type))
        .filter(|h| matches!(registry.standing(h.site), Standing::Counted(_)))
        .collect();
    let applied = visits::apply(
        conn,
        &hits,
        analytics,
        |s| registry.zone_of(s),
        visits::Stored::Any,
    )
    .await?;
    let visit_of: HashMap<uuid::Uuid, uuid::Uuid> = hits
        .iter()
        .zip(applied.placed)
        .filter_map(|(hit, visit)| Some((hit.id, visit?)))
        .collect();
    drop(hits);
    for event in fresh.iter_mut() {
        event.visit_id = visit_of.get(&event.view.id).copied();
    }
    Ok((unregistered, applied.rollup))
}

/// Records the goals the batch's hits completed, after taking the goals lock shared (see
/// `analytics::goal::GOALS_LOCK`): a goal created meanwhile is either seen here or backfilled
/// after this transaction commits.
pub async fn record_conversions<C: ConnectionTrait>(
    conn: &C,
    events: &[StoredEvent],
    page_view_type: &str,
) -> Result<(), DbErr> {
    let placed: Vec<&StoredEvent> = events.iter().filter(|e| e.visit_id.is_some()).collect();
    if placed.is_empty() {
        return Ok(());
    }
    conn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock_shared({})",
        analytics::goal::GOALS_LOCK
    ))
    .await?;
    // Under the lock, a site with no goal has none until this transaction ends: nothing to
    // match (the match reads the batch's events and visits, a cost each batch would pay).
    let sites: BTreeSet<&str> = placed
        .iter()
        .filter_map(|e| e.enrichment.site.as_deref())
        .collect();
    if !any_goal(conn, sites).await? {
        return Ok(());
    }
    let placed: Vec<uuid::Uuid> = placed.iter().map(|e| e.view.id).collect();
    static SQL: LazyLock<String> =
        LazyLock::new(|| analytics::goal::conversions_sql("e.id = ANY($2)"));
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        SQL.as_str(),
        [page_view_type.into(), placed.into()],
    ))
    .await?;
    Ok(())
}

/// Whether any of `sites` has a goal.
async fn any_goal<C: ConnectionTrait>(conn: &C, sites: BTreeSet<&str>) -> Result<bool, DbErr> {
    let sites: Vec<String> = sites.into_iter().map(str::to_owned).collect();
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM goals WHERE site = ANY($1)) AS any",
            [sites.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "any"),
        None => Ok(false),
    }
}

/// An event whose id was stored already, judged against the stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sameness {
    /// The same client fields: a client's retry.
    Retry,
    /// Other fields under the same id.
    Conflict,
}

/// Judges every event whose id was stored before this batch (`judged` learns each verdict) and
/// returns the others: the first event of each new id, and the later events of those ids.
async fn judge_known<C: ConnectionTrait>(
    conn: &C,
    events: Vec<StoredEvent>,
    origin: Origin<'_>,
    mut judged: impl FnMut(Sameness, &StoredEvent),
) -> Result<(Vec<StoredEvent>, Vec<StoredEvent>), DbErr> {
    let (mut fresh, mut fresh_repeats) = first_of_each_id(events);
    let stored = stored_ids(conn, &fresh).await?;
    // Taken out in place: a batch's events are moved once, not copied into new vectors.
    let known: Vec<StoredEvent> = fresh
        .extract_if(.., |e| stored.contains(&e.view.id))
        .collect();
    let known_repeats: Vec<StoredEvent> = fresh_repeats
        .extract_if(.., |e| stored.contains(&e.view.id))
        .collect();
    let known: Vec<&StoredEvent> = known.iter().chain(&known_repeats).collect();
    let same = same_as_stored(conn, &known, origin).await?;
    for (event, same) in known.into_iter().zip(same) {
        judged(
            if same {
                Sameness::Retry
            } else {
                Sameness::Conflict
            },
            event,
        );
    }
    Ok((fresh, fresh_repeats))
}

/// Inserts events whose ids were not stored when the transaction looked. All of them must go
/// in, or the visits just written would count an event that is not stored: an id stored by
/// another transaction in between fails the batch, and its retry sees that id as stored.
async fn insert_fresh<C: ConnectionTrait>(
    conn: &C,
    fresh: &[StoredEvent],
    origin: Origin<'_>,
) -> Result<u64, DbErr> {
    let mut inserted = 0;
    for chunk in fresh.chunks(EVENT_ROWS_PER_INSERT) {
        let n = insert_events(conn, chunk, origin).await?;
        if n != chunk.len() as u64 {
            return Err(DbErr::Custom(format!(
                "{} of {} new event ids were stored by another transaction meanwhile",
                chunk.len() as u64 - n,
                chunk.len()
            )));
        }
        inserted += n;
    }
    Ok(inserted)
}

/// Splits a batch into the first event of each id and the later ones.
fn first_of_each_id(mut events: Vec<StoredEvent>) -> (Vec<StoredEvent>, Vec<StoredEvent>) {
    let mut seen = HashSet::with_capacity(events.len());
    let repeats = events.extract_if(.., |e| !seen.insert(e.view.id)).collect();
    (events, repeats)
}

/// The dead letter of an event whose id was stored first with other client fields.
fn conflicting(event: &StoredEvent) -> DeadLetter {
    tracing::warn!(offset = event.offset, id = %event.view.id, "dead letter: conflicting event id");
    DeadLetter {
        offset: event.offset,
        key: None,
        value: Some(event.view.encode()),
        error: format!(
            "event id {} was already stored with different content; the first event stored with an id wins",
            event.view.id
        ),
    }
}

/// Inserts events whose ids are not stored yet; returns how many were inserted.
async fn insert_events<C: ConnectionTrait>(
    conn: &C,
    events: &[StoredEvent],
    origin: Origin<'_>,
) -> Result<u64, DbErr> {
    let rows = rows_json(events.iter(), origin)?;
    Ok(conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            INSERT_EVENTS,
            [rows.into()],
        ))
        .await?
        .rows_affected())
}

/// The ids of `events` stored already.
async fn stored_ids<C: ConnectionTrait>(
    conn: &C,
    events: &[StoredEvent],
) -> Result<HashSet<uuid::Uuid>, DbErr> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.view.id).collect();
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            STORED_IDS,
            [ids.into()],
        ))
        .await?;
    rows.iter().map(|row| row.try_get("", "id")).collect()
}

/// For each event (whose id is stored), whether the stored row has the same client fields.
async fn same_as_stored<C: ConnectionTrait>(
    conn: &C,
    events: &[&StoredEvent],
    origin: Origin<'_>,
) -> Result<Vec<bool>, DbErr> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows = rows_json(events.iter().copied(), origin)?;
    let answers = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SAME_AS_STORED,
            [rows.into(), client_columns().to_vec().into()],
        ))
        .await?;
    let mut same = vec![false; events.len()];
    for answer in answers {
        let n: i64 = answer.try_get("", "n")?;
        if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| same.get_mut(i)) {
            *slot = answer.try_get("", "same")?;
        }
    }
    Ok(same)
}

async fn insert_dead_letters<C: ConnectionTrait>(
    conn: &C,
    topic: &str,
    partition: i32,
    dead_letters: &[DeadLetter],
) -> Result<u64, DbErr> {
    let mut inserted = 0;
    for chunk in dead_letters.chunks(DEAD_LETTER_ROWS_PER_INSERT) {
        let rows = chunk.iter().map(|d| dead_letter::ActiveModel {
            id: NotSet,
            topic: Set(topic.to_owned()),
            partition: Set(partition),
            offset: Set(d.offset),
            key: Set(d.key.clone()),
            value: Set(d.value.clone()),
            error: Set(d.error.clone()),
            created_at: NotSet,
        });
        inserted += dead_letter::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    dead_letter::Column::Topic,
                    dead_letter::Column::Partition,
                    dead_letter::Column::Offset,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(inserted)
}
