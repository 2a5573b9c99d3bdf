//! The poll loop of one partition: fetch, decode, commit, advance.
//!
//! It always processes a whole fetch response and resumes at the offset after its last record.
//! Kafka returns whole record batches, so a response may start before the requested offset:
//! offsets below it, and repeated ones, are dropped.
//!
//! An offset the broker calls out of range fell off one end of the log. Below the log start,
//! retention deleted records nobody stored: they are gone, so the worker jumps to the earliest
//! offset and counts the skipped offsets. Above the high watermark, the broker lost records it
//! had acknowledged: `consumer.on_offset_out_of_range` decides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event::PageView;
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

/// What a step asks of the poll loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub struct Worker {
    pub ctx: Arc<Context>,
    pub topic: String,
    pub partition: i32,
    pub stop: watch::Receiver<bool>,
}

impl Worker {
    /// Sleeps unless told to stop first.
    async fn pause(&mut self, wait: Duration) -> Flow {
        // A dropped sender (the coordinator is gone) also counts as "stop".
        let stopped = tokio::select! {
            _ = self.stop.wait_for(|stop| *stop) => true,
            () = tokio::time::sleep(wait) => false,
        };
        if stopped || self.stopping() {
            Flow::Stop
        } else {
            Flow::Continue
        }
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
            if self.pause(backoff.step()).await == Flow::Stop {
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
            if self.pause(backoff.step()).await == Flow::Stop {
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
                    if self.offset_out_of_range(&client, &mut next).await == Flow::Stop {
                        break;
                    }
                    continue;
                }
                Ok(Err(e)) => {
                    log.warn(&self.topic, self.partition, "fetch failed", &e);
                    if self.pause(backoff.step()).await == Flow::Stop {
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
                // A broker that answers an offset past the end with nothing rather than an error.
                if next > high_watermark
                    && self
                        .beyond_high_watermark(&client, &mut next, high_watermark)
                        .await
                        == Flow::Stop
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
                    if self.pause(backoff.step()).await == Flow::Stop {
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

    /// The broker refused `next` as out of range: finds out which end of the log it fell off.
    async fn offset_out_of_range(&mut self, client: &PartitionClient, next: &mut i64) -> Flow {
        let bounds = async {
            let earliest = client.get_offset(OffsetAt::Earliest).await?;
            let latest = client.get_offset(OffsetAt::Latest).await?;
            Ok::<_, ClientError>((earliest, latest))
        };
        let limit = self.ctx.settings.kafka.request_timeout();
        match tokio::time::timeout(limit, bounds).await {
            Ok(Ok((earliest, _))) if *next < earliest => self.skip_deleted(next, earliest).await,
            Ok(Ok((_, latest))) if *next > latest => {
                self.beyond_high_watermark(client, next, latest).await
            }
            // Back in range: the log moved between the fetch and the look-up.
            Ok(Ok(_)) => Flow::Continue,
            Ok(Err(e)) => {
                tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "cannot read the partition's offsets");
                self.pause(Duration::from_secs(1)).await
            }
            Err(_) => {
                tracing::warn!(topic = %self.topic, partition = self.partition, "reading the partition's offsets timed out");
                self.pause(Duration::from_secs(1)).await
            }
        }
    }

    /// The records below the log start were deleted (retention) before anyone stored them.
    /// They cannot come back, so waiting would block the partition forever: move past them.
    async fn skip_deleted(&mut self, next: &mut i64, earliest: i64) -> Flow {
        let skipped = earliest - *next;
        tracing::error!(
            topic = %self.topic,
            partition = self.partition,
            from = *next,
            to = earliest,
            skipped,
            "records were deleted by the broker's retention before they were stored; skipping to the log start"
        );
        match store::move_offset(&self.ctx.db, &self.topic, self.partition, *next, earliest).await {
            Ok(()) => {
                self.ctx
                    .metrics
                    .skipped(&self.topic, self.partition, skipped as u64);
                *next = earliest;
                Flow::Continue
            }
            Err(StoreError::OffsetMoved { .. }) => Flow::Stop,
            Err(e) => {
                tracing::warn!(error = %e, "cannot move the offset");
                self.pause(Duration::from_secs(1)).await
            }
        }
    }

    /// The stored offset is beyond the high watermark: the broker lost records it had
    /// acknowledged. Follows `consumer.on_offset_out_of_range`.
    async fn beyond_high_watermark(
        &mut self,
        client: &PartitionClient,
        next: &mut i64,
        high_watermark: i64,
    ) -> Flow {
        let policy = self.ctx.settings.consumer.on_offset_out_of_range;
        self.ctx
            .metrics
            .beyond_high_watermark(&self.topic, self.partition);
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
                let limit = self.ctx.settings.kafka.request_timeout();
                let earliest = match tokio::time::timeout(
                    limit,
                    client.get_offset(OffsetAt::Earliest),
                )
                .await
                {
                    Ok(Ok(earliest)) => earliest,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot read the earliest offset");
                        return self.pause(Duration::from_secs(1)).await;
                    }
                    Err(_) => {
                        tracing::warn!("reading the earliest offset timed out");
                        return self.pause(Duration::from_secs(1)).await;
                    }
                };
                match store::move_offset(&self.ctx.db, &self.topic, self.partition, *next, earliest)
                    .await
                {
                    Ok(()) => {
                        tracing::warn!(topic = %self.topic, partition = self.partition, from = *next, to = earliest, "restarting from the earliest offset");
                        *next = earliest;
                        Flow::Continue
                    }
                    Err(StoreError::OffsetMoved { .. }) => Flow::Stop,
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
