//! The daily salts of the visitor id, agreed on by every producer instance through a
//! one-partition Kafka topic (`{topic_prefix}pageviews_salts`), never through PostgreSQL.
//!
//! A salt is 16 random bytes keyed by its UTC day. The first instance that needs the salt of a
//! day and finds none produces one; the salt of a day is the *first* record with that day's key
//! in the partition, so instances racing to create it still agree. Each instance keeps only
//! today's salt in memory. When a day's salt is first needed, every record older than
//! yesterday's is deleted from the topic (`DeleteRecords`), so a salt lives at most 48 hours
//! (its day and the next) and an old visitor id can never be recomputed.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use event::kafka::within;
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::Client;
use rskafka::record::{Record, RecordAndOffset};

/// The topic of the salts for a topic prefix.
pub fn topic(prefix: &str) -> String {
    format!("{prefix}pageviews_salts")
}

pub type Salt = [u8; 16];

#[derive(Debug, thiserror::Error)]
pub enum SaltError {
    #[error("the salt topic did not answer in time")]
    Timeout,
    #[error("the salt topic: {0}")]
    Kafka(#[from] rskafka::client::error::Error),
    #[error("no salt for {0} after producing one")]
    Vanished(NaiveDate),
}

pub struct SaltBook {
    client: Arc<PartitionClient>,
    today: RwLock<Option<(NaiveDate, Salt)>>,
    /// One instance-wide look-up at a time: a day change is one read, not one per request.
    loading: tokio::sync::Mutex<()>,
    /// The day whose expired salts were last deleted, so a failed deletion is tried again.
    destroyed_for: RwLock<Option<NaiveDate>>,
    timeout: Duration,
}

impl SaltBook {
    pub async fn open(client: &Client, topic: &str, timeout: Duration) -> Result<Self, SaltError> {
        let pc = within(
            timeout,
            "opening the salt topic",
            client.partition_client(topic.to_owned(), 0, UnknownTopicHandling::Retry),
        )
        .await
        .map_err(|_| SaltError::Timeout)??;
        Ok(SaltBook {
            client: Arc::new(pc),
            today: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            destroyed_for: RwLock::new(None),
            timeout,
        })
    }

    /// The salt of `day`, the same on every instance.
    pub async fn salt_for(&self, day: NaiveDate) -> Result<Salt, SaltError> {
        if let Some(salt) = self.cached(day) {
            return Ok(salt);
        }
        let _loading = self.loading.lock().await;
        if let Some(salt) = self.cached(day) {
            return Ok(salt);
        }
        let salt = tokio::time::timeout(self.timeout, self.agree_on(day))
            .await
            .map_err(|_| SaltError::Timeout)??;
        if let Ok(mut today) = self.today.write() {
            // Yesterday's salt is dropped from memory here; the topic keeps it one more day.
            *today = Some((day, salt));
        }
        self.destroy_expired(day).await;
        Ok(salt)
    }

    /// Deletes the salts older than yesterday's unless done already for `today`; a failure is
    /// logged and tried again at the next maintenance.
    async fn destroy_expired(&self, today: NaiveDate) {
        if self.destroyed_for.read().is_ok_and(|d| *d == Some(today)) {
            return;
        }
        let outcome = tokio::time::timeout(self.timeout, self.destroy_before(today))
            .await
            .unwrap_or(Err(SaltError::Timeout));
        match outcome {
            Ok(()) => {
                if let Ok(mut done) = self.destroyed_for.write() {
                    *done = Some(today);
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                "could not delete the expired salts yet; trying again at the next maintenance"
            ),
        }
    }

    /// Keeps the salt topic current even when no page view arrives: run once a minute.
    pub async fn maintain(&self, today: NaiveDate) {
        if let Err(e) = self.salt_for(today).await {
            tracing::warn!(error = %e, "salt maintenance failed");
            return;
        }
        self.destroy_expired(today).await;
    }

    /// The one day whose salt this instance holds in memory.
    pub fn day_in_memory(&self) -> Option<NaiveDate> {
        self.today.read().ok()?.map(|(day, _)| day)
    }

    fn cached(&self, day: NaiveDate) -> Option<Salt> {
        match *self.today.read().ok()? {
            Some((d, salt)) if d == day => Some(salt),
            _ => None,
        }
    }

    async fn agree_on(&self, day: NaiveDate) -> Result<Salt, SaltError> {
        if let Some(salt) = self.first_for(day).await? {
            return Ok(salt);
        }
        let record = Record {
            key: Some(day.to_string().into_bytes()),
            value: Some(uuid::Uuid::new_v4().into_bytes().to_vec()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        };
        self.client
            .produce(
                vec![record],
                rskafka::client::partition::Compression::NoCompression,
            )
            .await?;
        self.first_for(day).await?.ok_or(SaltError::Vanished(day))
    }

    /// The first salt recorded for `day`.
    async fn first_for(&self, day: NaiveDate) -> Result<Option<Salt>, SaltError> {
        let key = day.to_string().into_bytes();
        Ok(self.records().await?.into_iter().find_map(|r| {
            let value: Salt = r.record.value?.try_into().ok()?;
            (r.record.key.as_deref() == Some(key.as_slice())).then_some(value)
        }))
    }

    /// Deletes every salt older than yesterday's.
    async fn destroy_before(&self, today: NaiveDate) -> Result<(), SaltError> {
        let Some(yesterday) = today.checked_sub_days(Days::new(1)) else {
            return Ok(());
        };
        let records = self.records().await?;
        let expired = |r: &RecordAndOffset| {
            let day = r
                .record
                .key
                .as_deref()
                .and_then(|k| std::str::from_utf8(k).ok());
            day.and_then(|d| d.parse::<NaiveDate>().ok())
                .is_none_or(|d| d < yesterday)
        };
        // Records are in day order (a day's salt is produced when the day is first needed),
        // so everything before the first unexpired record can go.
        let keep_from = records.iter().find(|r| !expired(r)).map(|r| r.offset);
        let first = records.first().map(|r| r.offset);
        let end = match keep_from {
            Some(offset) => offset,
            None => records.last().map_or(0, |r| r.offset + 1),
        };
        if first.is_some_and(|first| first < end) {
            self.client
                .delete_records(end, self.timeout.as_millis().min(i32::MAX as u128) as i32)
                .await?;
            tracing::info!("deleted the salts older than {yesterday}");
        }
        Ok(())
    }

    /// Every record still in the topic (a handful: today's, yesterday's, maybe a racing twin).
    async fn records(&self) -> Result<Vec<RecordAndOffset>, SaltError> {
        let mut offset = self.client.get_offset(OffsetAt::Earliest).await?;
        let end = self.client.get_offset(OffsetAt::Latest).await?;
        let mut out = Vec::new();
        while offset < end {
            let (records, _) = self.client.fetch_records(offset, 1..1_000_000, 0).await?;
            let Some(last) = records.last().map(|r| r.offset) else {
                break;
            };
            out.extend(records.into_iter().filter(|r| r.offset >= offset));
            offset = last + 1;
        }
        Ok(out)
    }
}
