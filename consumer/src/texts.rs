//! The dictionary of texts that repeat from event to event (`event_texts`): a row of
//! `raw_events` holds a 4-byte id in place of its site, title, browser, source, … (the
//! `COLUMNS`), and the `kafka_events` view reads the texts back.
//!
//! Ids are resolved before a batch's transaction, each in a statement of its own that commits
//! at once: an id the cache holds is always committed, so a batch that rolls back never leaves
//! a row pointing at nothing, and consumers adding the same text never wait on each other's
//! batches. A text is never removed, so a cached id stays true.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// The `raw_events` columns that hold an `event_texts` id.
pub const COLUMNS: [&str; 21] = migration::RAW_EVENT_TEXT_COLUMNS;

/// Most texts kept in memory; past it the cache starts again (titles and user agents have a
/// long tail, and the consumer's memory has a budget).
const CACHED_TEXTS: usize = 20_000;

/// Adds the texts not yet stored, then reads every one's id. A text another consumer added
/// after this statement's snapshot is neither inserted nor seen: it is asked again.
const RESOLVE: &str = "WITH v AS (SELECT DISTINCT unnest($1::text[]) AS value), \
     added AS (INSERT INTO event_texts (value) SELECT value FROM v ORDER BY value \
               ON CONFLICT (value) DO NOTHING RETURNING id, value) \
     SELECT id, value FROM added UNION ALL SELECT t.id, t.value FROM event_texts t JOIN v USING (value)";

/// How often a text is asked again before giving up (each ask sees what committed before it).
const RESOLVE_ATTEMPTS: usize = 3;

/// The ids this process knows, by text.
#[derive(Default)]
pub struct Texts {
    ids: RwLock<HashMap<Box<str>, i32>>,
}

/// The ids of the texts one batch holds.
pub type Ids = HashMap<Box<str>, i32>;

impl Texts {
    /// The id of each of `texts`, adding to `event_texts` those it has not stored yet.
    pub async fn ids_of(
        &self,
        db: &DatabaseConnection,
        texts: BTreeSet<String>,
    ) -> Result<Ids, DbErr> {
        let mut batch = Ids::with_capacity(texts.len());
        let mut missing = Vec::new();
        {
            let known = self.ids.read().map_err(|_| poisoned())?;
            for text in texts {
                match known.get(text.as_str()) {
                    Some(&id) => {
                        batch.insert(text.into_boxed_str(), id);
                    }
                    None => missing.push(text),
                }
            }
        }
        for _ in 0..RESOLVE_ATTEMPTS {
            if missing.is_empty() {
                return Ok(batch);
            }
            let found = resolve(db, &missing).await?;
            missing.retain(|t| !found.contains_key(t.as_str()));
            let mut known = self.ids.write().map_err(|_| poisoned())?;
            if known.len() + found.len() > CACHED_TEXTS {
                known.clear();
            }
            known.extend(found.iter().map(|(t, &id)| (t.clone(), id)));
            batch.extend(found);
        }
        match missing.first() {
            None => Ok(batch),
            Some(text) => Err(DbErr::Custom(format!(
                "no id for the text {text:?} in event_texts after {RESOLVE_ATTEMPTS} attempts"
            ))),
        }
    }
}

fn poisoned() -> DbErr {
    DbErr::Custom("the cache of event_texts was poisoned".into())
}

async fn resolve<C: ConnectionTrait>(conn: &C, texts: &[String]) -> Result<Ids, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            RESOLVE,
            [texts.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let value: String = row.try_get("", "value")?;
            Ok((value.into_boxed_str(), row.try_get("", "id")?))
        })
        .collect()
}
