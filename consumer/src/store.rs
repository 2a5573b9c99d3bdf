//! The database side of the consumer. One transaction per fetched batch holds the events, the
//! dead letters and the partition's next offset, so a crash at any moment leaves either all of
//! them or none (Kafka's "storing offsets outside Kafka" pattern).

use chrono::Utc;
use entity::{consumer_offset, dead_letter};
use event::PageView;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use serde_json::{Map, Value};

/// Rows per INSERT. Each statement carries its rows as one JSON array, so its size, not a bind
/// parameter count, is what this bounds (driver buffers grow with the statement).
const EVENT_ROWS_PER_INSERT: usize = 1000;

/// Inserts JSON rows keyed by column name, skipping ids already stored. `created_at` and
/// `updated_at` come from the database clock, as their column defaults would.
const INSERT_EVENTS: &str = "INSERT INTO kafka_events \
     SELECT * FROM json_populate_recordset(\
         json_populate_record(NULL::kafka_events, json_build_object('created_at', now(), 'updated_at', now())), \
         $1::json) \
     ON CONFLICT (id) DO NOTHING";
/// A dead letter row takes 6.
const DEAD_LETTER_ROWS_PER_INSERT: usize = 8_000;

/// A record that decoded into an event.
pub struct StoredEvent {
    pub offset: i64,
    pub view: PageView,
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
    pub events: Vec<StoredEvent>,
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Rows inserted into kafka_events (duplicates of already stored ids are not counted).
    pub events: u64,
    pub dead_letters: u64,
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

/// The stored next offset of a partition, if any.
pub async fn stored_offset(
    db: &DatabaseConnection,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, DbErr> {
    Ok(
        consumer_offset::Entity::find_by_id((topic.to_owned(), partition))
            .one(db)
            .await?
            .map(|row| row.next_offset),
    )
}

/// Stores `start` as the partition's offset unless one is stored already; returns the stored one.
pub async fn init_offset(
    db: &DatabaseConnection,
    topic: &str,
    partition: i32,
    start: i64,
) -> Result<i64, DbErr> {
    consumer_offset::Entity::insert(consumer_offset::ActiveModel {
        topic: Set(topic.to_owned()),
        partition: Set(partition),
        next_offset: Set(start),
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
pub async fn move_offset(
    db: &DatabaseConnection,
    topic: &str,
    partition: i32,
    expected: i64,
    next: i64,
) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    compare_and_set_offset(&txn, topic, partition, expected, next).await?;
    txn.commit().await?;
    Ok(())
}

async fn compare_and_set_offset<C: sea_orm::ConnectionTrait>(
    conn: &C,
    topic: &str,
    partition: i32,
    expected: i64,
    next: i64,
) -> Result<(), StoreError> {
    let updated = consumer_offset::Entity::update_many()
        .col_expr(consumer_offset::Column::NextOffset, Expr::value(next))
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

/// Stores a batch exactly once: events (skipping ids already stored), dead letters, and the
/// offset compare-and-set, in one transaction. Dropping the future rolls it back.
pub async fn commit(db: &DatabaseConnection, batch: Batch) -> Result<Committed, StoreError> {
    let txn = db.begin().await?;
    let mut committed = Committed {
        events: 0,
        dead_letters: 0,
    };
    for chunk in batch.events.chunks(EVENT_ROWS_PER_INSERT) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|e| Value::Object(event_row(&e.view, &batch.topic, batch.partition, e.offset)))
            .collect();
        // As text, parsed once by PostgreSQL's `json` (cheaper than building a `jsonb`).
        let rows = Value::Array(rows).to_string();
        committed.events += txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                INSERT_EVENTS,
                [rows.into()],
            ))
            .await?
            .rows_affected();
    }
    for chunk in batch.dead_letters.chunks(DEAD_LETTER_ROWS_PER_INSERT) {
        let rows = chunk.iter().map(|d| dead_letter::ActiveModel {
            id: NotSet,
            topic: Set(batch.topic.clone()),
            partition: Set(batch.partition),
            offset: Set(d.offset),
            key: Set(d.key.clone()),
            value: Set(d.value.clone()),
            error: Set(d.error.clone()),
            created_at: NotSet,
        });
        committed.dead_letters += dead_letter::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    dead_letter::Column::Topic,
                    dead_letter::Column::Partition,
                    dead_letter::Column::Offset,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    compare_and_set_offset(
        &txn,
        &batch.topic,
        batch.partition,
        batch.expected_offset,
        batch.next_offset,
    )
    .await?;
    txn.commit().await?;
    Ok(committed)
}

/// The `kafka_events` row of an event: its wire form with the keys in snake_case, plus where
/// the record was read. No field is named here, so a field added to the event reaches the
/// column of the same name without an edit.
pub fn event_row(view: &PageView, topic: &str, partition: i32, offset: i64) -> Map<String, Value> {
    let wire = match serde_json::to_value(view) {
        Ok(Value::Object(map)) => map,
        // A struct of strings, a UUID and a timestamp always serialises to an object.
        _ => Map::new(),
    };
    let mut row: Map<String, Value> = wire
        .into_iter()
        .map(|(key, value)| (snake_case(&key), value))
        .collect();
    row.insert("topic".into(), topic.into());
    row.insert("partition".into(), partition.into());
    row.insert("offset".into(), offset.into());
    row
}

/// `receivedAt` → `received_at`.
fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_names_its_columns_in_snake_case() {
        let view = PageView {
            id: uuid::Uuid::now_v7(),
            fields: event::PageFields {
                event_type: "PAGE_VIEW".into(),
                user_id: "u".into(),
                ..Default::default()
            },
            received_at: Utc::now(),
        };
        let row = event_row(&view, "PAGE_VIEW", 3, 42);
        assert_eq!(row["event_type"], "PAGE_VIEW");
        assert_eq!(row["user_id"], "u");
        assert!(row["received_at"].is_string());
        assert_eq!(row["partition"], 3);
        assert_eq!(row["offset"], 42);
        assert!(!row.contains_key("eventType") && !row.contains_key("referrer"));
    }
}
