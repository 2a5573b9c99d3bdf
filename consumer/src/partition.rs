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
//!
//! A log can also be replaced under the offset (a topic re-created, a broker's data wiped) and
//! have grown back past it, which no offset comparison sees. So before resuming, at start and
//! after any fetch error or a high watermark that went down, the worker checks the record just
//! below its offset against the fingerprint stored with it (see `anchor`); a replaced log is
//! handled like lost records, by the same setting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event::PageView;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::record::RecordAndOffset;
use settings::OffsetOutOfRange;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::anchor::{self, Anchor};
use crate::metrics::PartitionState;
use crate::store::{self, Batch, DeadLetter, StoreError, StoredEvent, StoredOffset};
use crate::Context;

/// What a step asks of the poll loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
    /// Try again after this long (a broker or database error, or a broker that lost data).
    Retry(Duration),
}

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
    fn warn(&mut self, what: &str, error: &dyn std::fmt::Display) {
        if self
            .last
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            self.last = Some(Instant::now());
            tracing::warn!(error = %error, "{what}; retrying");
        } else {
            tracing::debug!(error = %error, "{what}; retrying");
        }
    }
}

/// One partition's consumer. Every line it logs carries the partition's `topic`/`partition` span.
pub struct Worker {
    ctx: Arc<Context>,
    topic: String,
    partition: i32,
    stop: CancellationToken,
    backoff: Backoff,
    log: Throttled,
    /// The fingerprint of the record below the next offset, if this worker knows it.
    anchor: Option<i64>,
    /// Whether the log under the next offset was checked since the last sign it may have changed.
    verified: bool,
    /// The highest high watermark seen: a lower one means the log changed under us.
    high_watermark: i64,
    /// Why the worker is holding back instead of consuming, for the metrics.
    waiting: Option<&'static str>,
}

impl Worker {
    pub fn new(ctx: Arc<Context>, topic: String, partition: i32, stop: CancellationToken) -> Self {
        Worker {
            ctx,
            topic,
            partition,
            stop,
            backoff: Backoff::new(),
            log: Throttled { last: None },
            anchor: None,
            verified: false,
            high_watermark: 0,
            waiting: None,
        }
    }

    /// Consumes until stopped, or until the stored offset moves under it (another owner).
    pub async fn run(mut self) {
        let span =
            tracing::info_span!("partition", topic = %self.topic, partition = self.partition);
        async move {
            tracing::info!("consuming partition");
            self.consume().await;
            tracing::info!("stopped consuming partition");
        }
        .instrument(span)
        .await
    }

    async fn consume(&mut self) {
        let Some(client) = self.open().await else {
            return;
        };
        let Some(mut next) = self.start(&client).await else {
            return;
        };
        loop {
            let flow = match self.poll_once(&client, &mut next).await {
                Flow::Retry(wait) => self.pause(wait).await,
                flow => flow,
            };
            if flow == Flow::Stop {
                return;
            }
        }
    }

    /// Sleeps unless told to stop first.
    async fn pause(&self, wait: Duration) -> Flow {
        tokio::select! {
            () = self.stop.cancelled() => Flow::Stop,
            () = tokio::time::sleep(wait) => Flow::Continue,
        }
    }

    /// Logs the failure (throttled) and asks for a retry after the next backoff step.
    fn retry(&mut self, what: &str, error: &dyn std::fmt::Display) -> Flow {
        self.log.warn(what, error);
        Flow::Retry(self.backoff.step())
    }

    /// After a failed step: logs it and waits the next backoff step; `Stop` if told to stop.
    async fn after_failure(&mut self, what: &str, error: &(dyn std::fmt::Display + Sync)) -> Flow {
        match self.retry(what, error) {
            Flow::Retry(wait) => self.pause(wait).await,
            flow => flow,
        }
    }

    /// A client for this partition, on a connection of its own to the partition's leader.
    async fn open(&mut self) -> Option<PartitionClient> {
        let limit = self.ctx.settings.kafka.request_timeout();
        loop {
            let opening = self.ctx.kafka.partition_client(
                self.topic.clone(),
                self.partition,
                UnknownTopicHandling::Retry,
            );
            let error = match tokio::time::timeout(limit, opening).await {
                Ok(Ok(client)) => {
                    self.backoff.reset();
                    return Some(client);
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("timed out after {limit:?}"),
            };
            if self.after_failure("cannot open partition", &error).await == Flow::Stop {
                return None;
            }
        }
    }

    /// The offset to consume from, once the database and the broker answer.
    async fn start(&mut self, client: &PartitionClient) -> Option<i64> {
        loop {
            match self.start_offset(client).await {
                Ok(StoredOffset { next, last_record }) => {
                    self.backoff.reset();
                    self.anchor = last_record;
                    return Some(next);
                }
                Err(e) => {
                    if self
                        .after_failure("cannot read the stored offset", &e)
                        .await
                        == Flow::Stop
                    {
                        return None;
                    }
                }
            }
        }
    }

    /// The stored offset, or the partition's earliest offset stored as the start.
    async fn start_offset(&self, client: &PartitionClient) -> anyhow::Result<StoredOffset> {
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

    /// One fetch and what follows from it, once the log under the offset is known to be ours.
    async fn poll_once(&mut self, client: &PartitionClient, next: &mut i64) -> Flow {
        if !self.verified {
            let flow = self.verify(client, next).await;
            if flow != Flow::Continue || !self.verified {
                return flow;
            }
        }
        let consumer = &self.ctx.settings.consumer;
        let wait = Duration::from_millis(consumer.fetch_max_wait_ms.max(0) as u64);
        let limit = self.ctx.settings.kafka.request_timeout() + wait;
        let fetch = client.fetch_records(
            *next,
            1..consumer.fetch_max_bytes,
            consumer.fetch_max_wait_ms,
        );
        let fetched = tokio::select! {
            () = self.stop.cancelled() => return Flow::Stop,
            fetched = tokio::time::timeout(limit, fetch) => fetched,
        };
        match fetched {
            Ok(Ok((records, high_watermark))) => {
                self.store(client, records, high_watermark, next).await
            }
            Ok(Err(ClientError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            })) => self.offset_out_of_range(client, next).await,
            Ok(Err(e)) => {
                self.verified = false;
                self.retry("fetch failed", &e)
            }
            // The broker stopped answering: the next fetch goes through reconnecting.
            Err(_) => {
                self.verified = false;
                self.log.warn("fetch failed", &"timed out");
                Flow::Continue
            }
        }
    }

    /// Checks that the record below `next` is the one stored last (see `anchor`).
    async fn verify(&mut self, client: &PartitionClient, next: &mut i64) -> Flow {
        let limit = self.ctx.settings.kafka.request_timeout();
        let max_bytes = self.ctx.settings.consumer.fetch_max_bytes;
        let checked =
            tokio::time::timeout(limit, anchor::check(client, *next, self.anchor, max_bytes)).await;
        match checked {
            Ok(Ok(Anchor::Replaced)) => self.log_replaced(client, next).await,
            Ok(Ok(Anchor::Holds | Anchor::Unknown)) => {
                self.verified = true;
                self.set_waiting(*next, None);
                Flow::Continue
            }
            Ok(Err(e)) => self.retry("cannot check the log under the stored offset", &e),
            Err(_) => self.retry("cannot check the log under the stored offset", &"timed out"),
        }
    }

    /// The log under the stored offset is not the one that was read: the broker lost its data
    /// or the topic was re-created. Follows `consumer.on_offset_out_of_range`.
    async fn log_replaced(&mut self, client: &PartitionClient, next: &mut i64) -> Flow {
        let policy = self.ctx.settings.consumer.on_offset_out_of_range;
        if self.waiting == Some("log_replaced") {
            // Still waiting for an operator: said and counted already.
            return self.follow_policy(client, next, "log_replaced").await;
        }
        self.ctx.metrics.log_replaced(&self.topic, self.partition);
        tracing::error!(
            stored_offset = *next,
            policy = ?policy,
            "the log under the stored offset was replaced (topic re-created or broker data lost): \
             the record below the offset is not the one stored last"
        );
        self.follow_policy(client, next, "log_replaced").await
    }

    /// Stores what a fetch returned, all of it or nothing, and advances.
    async fn store(
        &mut self,
        client: &PartitionClient,
        records: Vec<RecordAndOffset>,
        high_watermark: i64,
        next: &mut i64,
    ) -> Flow {
        if high_watermark < self.high_watermark {
            // A log only grows (retention moves its start, not its end): check it again.
            self.high_watermark = high_watermark;
            self.verified = false;
            return Flow::Continue;
        }
        self.high_watermark = high_watermark;
        self.observe(*next, high_watermark);
        let records = fresh_records(records, *next);
        let Some(last) = records.last().map(|r| r.offset) else {
            // A broker that answers an offset past the end with nothing rather than an error.
            if *next > high_watermark {
                return self
                    .beyond_high_watermark(client, next, high_watermark)
                    .await;
            }
            return Flow::Continue;
        };
        let batch = self.decode(records, *next, last + 1);
        let last_record = batch.last_record;
        let bots = batch.events.iter().filter(|e| e.enrichment.is_bot).count();
        let ctx = &self.ctx;
        match store::commit(
            &ctx.db,
            &ctx.settings.analytics,
            &ctx.months,
            &ctx.texts,
            batch,
        )
        .await
        {
            Ok(committed) => {
                *next = last + 1;
                self.anchor = last_record;
                self.backoff.reset();
                self.ctx.metrics.stored(&self.topic, committed);
                self.ctx.metrics.bots(&self.topic, bots as u64);
                self.observe(*next, high_watermark);
                Flow::Continue
            }
            Err(e @ StoreError::OffsetMoved { .. }) => {
                // Someone else stored past us: nothing of ours was written. Stop; the lease
                // coordinator decides whether this partition is still ours.
                tracing::warn!(error = %e, "batch rolled back");
                Flow::Stop
            }
            // Rolled back: fetch the same records again once the database answers.
            Err(e) => self.retry("storing a batch failed", &e),
        }
    }

    fn observe(&self, next_offset: i64, high_watermark: i64) {
        self.ctx.metrics.observe(
            &self.topic,
            self.partition,
            PartitionState {
                next_offset,
                high_watermark,
                waiting: self.waiting,
            },
        );
    }

    fn set_waiting(&mut self, next_offset: i64, reason: Option<&'static str>) {
        self.waiting = reason;
        self.observe(next_offset, self.high_watermark);
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
            // Back in range: the log moved between the fetch and the look-up. Check it is
            // still the same log before going on.
            Ok(Ok(_)) => {
                self.verified = false;
                Flow::Continue
            }
            Ok(Err(e)) => self.retry("cannot read the partition's offsets", &e),
            Err(_) => self.retry("cannot read the partition's offsets", &"timed out"),
        }
    }

    /// The records below the log start were deleted (retention) before anyone stored them.
    /// They cannot come back, so waiting would block the partition forever: move past them.
    async fn skip_deleted(&mut self, next: &mut i64, earliest: i64) -> Flow {
        let skipped = earliest - *next;
        tracing::error!(
            from = *next,
            to = earliest,
            skipped,
            "records were deleted by the broker's retention before they were stored; skipping to the log start"
        );
        let flow = self.move_offset(next, earliest).await;
        if flow == Flow::Continue {
            self.ctx
                .metrics
                .skipped(&self.topic, self.partition, skipped as u64);
        }
        flow
    }

    /// Moves the stored offset from `next` to `to` (compare-and-set).
    async fn move_offset(&mut self, next: &mut i64, to: i64) -> Flow {
        match store::move_offset(&self.ctx.db, &self.topic, self.partition, *next, to).await {
            Ok(()) => {
                *next = to;
                self.anchor = None;
                self.high_watermark = 0;
                Flow::Continue
            }
            Err(StoreError::OffsetMoved { .. }) => Flow::Stop,
            Err(e) => self.retry("cannot move the offset", &e),
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
        if self.waiting == Some("beyond_high_watermark") {
            return self
                .follow_policy(client, next, "beyond_high_watermark")
                .await;
        }
        self.ctx
            .metrics
            .beyond_high_watermark(&self.topic, self.partition);
        tracing::error!(
            stored_offset = *next,
            high_watermark,
            policy = ?policy,
            "the stored offset is beyond the partition's high watermark: the broker lost records"
        );
        self.follow_policy(client, next, "beyond_high_watermark")
            .await
    }

    /// Records the broker had acknowledged are gone (`reason`): waits for an operator, or
    /// restarts from the earliest offset, as `consumer.on_offset_out_of_range` says.
    async fn follow_policy(
        &mut self,
        client: &PartitionClient,
        next: &mut i64,
        reason: &'static str,
    ) -> Flow {
        match self.ctx.settings.consumer.on_offset_out_of_range {
            OffsetOutOfRange::Wait => {
                // Checked again at every retry: nothing is consumed, so nothing is skipped.
                self.verified = false;
                self.set_waiting(*next, Some(reason));
                Flow::Retry(Duration::from_secs(5))
            }
            OffsetOutOfRange::Earliest => {
                let limit = self.ctx.settings.kafka.request_timeout();
                let earliest = match tokio::time::timeout(
                    limit,
                    client.get_offset(OffsetAt::Earliest),
                )
                .await
                {
                    Ok(Ok(earliest)) => earliest,
                    Ok(Err(e)) => return self.retry("cannot read the earliest offset", &e),
                    Err(_) => return self.retry("cannot read the earliest offset", &"timed out"),
                };
                tracing::warn!(
                    from = *next,
                    to = earliest,
                    "restarting from the earliest offset"
                );
                let flow = self.move_offset(next, earliest).await;
                if flow == Flow::Continue {
                    self.verified = true;
                    self.set_waiting(*next, None);
                }
                flow
            }
        }
    }

    fn decode(
        &self,
        records: Vec<RecordAndOffset>,
        expected_offset: i64,
        next_offset: i64,
    ) -> Batch {
        let last_record = records.last().map(|r| anchor::fingerprint(&r.record));
        let mut events = Vec::with_capacity(records.len());
        let mut dead_letters = Vec::new();
        for r in records {
            let at = event::page_view::RecordAt {
                topic: &self.topic,
                partition: self.partition,
                offset: r.offset,
                timestamp: r.record.timestamp,
            };
            match PageView::decode_at(r.record.value.as_deref(), at) {
                Ok(view) => events.push(StoredEvent::new(
                    r.offset,
                    view,
                    &self.ctx.agents,
                    &self.ctx.settings.analytics.page_view_type,
                )),
                Err(e) => {
                    tracing::warn!(offset = r.offset, error = %e, "dead letter");
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
            last_record,
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
