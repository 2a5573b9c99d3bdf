//! The poll loop of one partition: fetch, decode, commit, advance.
//!
//! It always processes a whole fetch response and resumes at the offset after its last record:
//! Kafka returns whole record batches, and the local broker (tansu) loses the rest of a batch
//! when a fetch starts in its middle. Offsets below the requested one and repeated offsets,
//! which that broker may send, are dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use entity::page_view::PageView;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::record::RecordAndOffset;
use settings::OffsetOutOfRange;
use tokio::sync::watch;

use crate::metrics::PartitionState;
use crate::store::{self, Batch, DeadLetter, StoreError, StoredEvent};
use crate::Context;

/// Exponential backoff for retrying after broker or database errors.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Backoff { next: Self::FIRST }
    }
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
    fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }
}

/// Logs a failure at warn at most every few seconds, so a long outage does not flood the log.
struct Throttled {
    last: Option<Instant>,
}

impl Throttled {
    fn warn(&mut self, topic: &str, partition: i32, what: &str, error: &dyn std::fmt::Display) {
        if self
            .last
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            self.last = Some(Instant::now());
            tracing::warn!(topic, partition, error = %error, "{what}; retrying");
        } else {
            tracing::debug!(topic, partition, error = %error, "{what}; retrying");
        }
    }
}

pub struct Worker {
    pub ctx: Arc<Context>,
    pub topic: String,
    pub partition: i32,
    pub stop: watch::Receiver<bool>,
}

impl Worker {
    /// Sleeps unless told to stop first; true when told to stop.
    async fn pause(&mut self, wait: Duration) -> bool {
        // A dropped sender (the coordinator is gone) also counts as "stop".
        let stopped = tokio::select! {
            _ = self.stop.wait_for(|stop| *stop) => true,
            () = tokio::time::sleep(wait) => false,
        };
        stopped || self.stopping()
    }

    fn observe(&self, next_offset: i64, high_watermark: i64) {
        self.ctx.metrics.observe(
            &self.topic,
            self.partition,
            PartitionState {
                next_offset,
                high_watermark,
            },
        );
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub async fn run(mut self) {
        tracing::info!(topic = %self.topic, partition = self.partition, "consuming partition");
        let mut backoff = Backoff::new();
        let mut log = Throttled { last: None };
        let request_timeout = self.ctx.settings.kafka.request_timeout();

        let client = loop {
            let opened = tokio::time::timeout(
                request_timeout,
                self.ctx.kafka.partition_client(
                    self.topic.clone(),
                    self.partition,
                    UnknownTopicHandling::Retry,
                ),
            )
            .await;
            match opened {
                Ok(Ok(client)) => break client,
                Ok(Err(e)) => log.warn(&self.topic, self.partition, "cannot open partition", &e),
                Err(_) => log.warn(
                    &self.topic,
                    self.partition,
                    "cannot open partition",
                    &"timed out",
                ),
            }
            if self.pause(backoff.step()).await {
                return;
            }
        };
        backoff.reset();

        let mut next = loop {
            match self.start_offset(&client).await {
                Ok(offset) => break offset,
                Err(e) => log.warn(
                    &self.topic,
                    self.partition,
                    "cannot read the stored offset",
                    &e,
                ),
            }
            if self.pause(backoff.step()).await {
                return;
            }
        };
        backoff.reset();

        let ctx = Arc::clone(&self.ctx);
        let consumer = &ctx.settings.consumer;
        let fetch_timeout =
            request_timeout + Duration::from_millis(consumer.fetch_max_wait_ms.max(0) as u64);
        while !self.stopping() {
            let fetched = tokio::select! {
                _ = self.stop.wait_for(|stop| *stop) => break,
                fetched = tokio::time::timeout(
                    fetch_timeout,
                    client.fetch_records(next, 1..consumer.fetch_max_bytes, consumer.fetch_max_wait_ms),
                ) => fetched,
            };
            let (records, high_watermark) = match fetched {
                Ok(Ok(fetched)) => fetched,
                Ok(Err(ClientError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                })) => {
                    // Real Kafka says so; tansu answers empty (handled below).
                    let high_watermark = client.get_offset(OffsetAt::Latest).await.unwrap_or(-1);
                    if self.out_of_range(&client, &mut next, high_watermark).await {
                        break;
                    }
                    continue;
                }
                Ok(Err(e)) => {
                    log.warn(&self.topic, self.partition, "fetch failed", &e);
                    if self.pause(backoff.step()).await {
                        break;
                    }
                    continue;
                }
                Err(_) => {
                    log.warn(&self.topic, self.partition, "fetch failed", &"timed out");
                    continue;
                }
            };
            self.observe(next, high_watermark);
            let records = fresh_records(records, next);
            let Some(last) = records.last().map(|r| r.offset) else {
                if next > high_watermark
                    && self.out_of_range(&client, &mut next, high_watermark).await
                {
                    break;
                }
                continue;
            };
            let batch = self.decode(records, next, last + 1);
            match store::commit(&self.ctx.db, batch).await {
                Ok(committed) => {
                    next = last + 1;
                    backoff.reset();
                    self.ctx
                        .metrics
                        .stored(committed.events, committed.dead_letters);
                    self.observe(next, high_watermark);
                }
                Err(e @ StoreError::OffsetMoved { .. }) => {
                    // Someone else stored past us: nothing of ours was written. Stop; the lease
                    // coordinator decides whether this partition is still ours.
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "batch rolled back");
                    break;
                }
                Err(e) => {
                    // Rolled back: fetch the same records again once the database answers.
                    log.warn(&self.topic, self.partition, "storing a batch failed", &e);
                    if self.pause(backoff.step()).await {
                        break;
                    }
                }
            }
        }
        self.ctx.metrics.forget(&self.topic, self.partition);
        tracing::info!(topic = %self.topic, partition = self.partition, "stopped consuming partition");
    }

    /// The stored offset, or the partition's earliest offset stored as the start.
    async fn start_offset(&self, client: &PartitionClient) -> anyhow::Result<i64> {
        if let Some(offset) =
            store::stored_offset(&self.ctx.db, &self.topic, self.partition).await?
        {
            return Ok(offset);
        }
        let earliest = tokio::time::timeout(
            self.ctx.settings.kafka.request_timeout(),
            client.get_offset(OffsetAt::Earliest),
        )
        .await??;
        Ok(store::init_offset(&self.ctx.db, &self.topic, self.partition, earliest).await?)
    }

    /// The stored offset is beyond the high watermark: the broker lost data. Follows the
    /// setting; returns true when the worker should stop.
    async fn out_of_range(
        &mut self,
        client: &PartitionClient,
        next: &mut i64,
        high_watermark: i64,
    ) -> bool {
        let policy = self.ctx.settings.consumer.on_offset_out_of_range;
        tracing::error!(
            topic = %self.topic,
            partition = self.partition,
            stored_offset = *next,
            high_watermark,
            policy = ?policy,
            "the stored offset is beyond the partition's high watermark: the broker lost records"
        );
        match policy {
            OffsetOutOfRange::Wait => self.pause(Duration::from_secs(5)).await,
            OffsetOutOfRange::Earliest => {
                let earliest = match client.get_offset(OffsetAt::Earliest).await {
                    Ok(earliest) => earliest,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the earliest offset");
                        return self.pause(Duration::from_secs(1)).await;
                    }
                };
                match store::move_offset(&self.ctx.db, &self.topic, self.partition, *next, earliest)
                    .await
                {
                    Ok(()) => {
                        tracing::warn!(topic = %self.topic, partition = self.partition, from = *next, to = earliest, "restarting from the earliest offset");
                        *next = earliest;
                        false
                    }
                    Err(StoreError::OffsetMoved { .. }) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reset the offset");
                        self.pause(Duration::from_secs(1)).await
                    }
                }
            }
        }
    }

    fn decode(
        &self,
        records: Vec<RecordAndOffset>,
        expected_offset: i64,
        next_offset: i64,
    ) -> Batch {
        let mut events = Vec::with_capacity(records.len());
        let mut dead_letters = Vec::new();
        for r in records {
            match PageView::decode(r.record.value.as_deref()) {
                Ok(view) => events.push(StoredEvent {
                    offset: r.offset,
                    view,
                }),
                Err(e) => {
                    tracing::warn!(topic = %self.topic, partition = self.partition, offset = r.offset, error = %e, "dead letter");
                    dead_letters.push(DeadLetter {
                        offset: r.offset,
                        key: r.record.key,
                        value: r.record.value,
                        error: e.to_string(),
                    })
                }
            }
        }
        Batch {
            topic: self.topic.clone(),
            partition: self.partition,
            expected_offset,
            next_offset,
            events,
            dead_letters,
        }
    }
}

/// The records at or after `next`, in offset order, each offset once.
fn fresh_records(mut records: Vec<RecordAndOffset>, next: i64) -> Vec<RecordAndOffset> {
    records.retain(|r| r.offset >= next);
    records.sort_by_key(|r| r.offset);
    records.dedup_by_key(|r| r.offset);
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use rskafka::record::Record;

    fn at(offset: i64) -> RecordAndOffset {
        RecordAndOffset {
            record: Record {
                key: None,
                value: None,
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            },
            offset,
        }
    }

    #[test]
    fn repeated_and_earlier_offsets_are_dropped() {
        let kept: Vec<i64> = fresh_records(vec![at(3), at(4), at(5), at(5), at(6)], 4)
            .into_iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(kept, vec![4, 5, 6]);
    }
}
