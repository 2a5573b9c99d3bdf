//! The consumer's metrics at `/metrics`, in Prometheus text format.
//!
//! Counters go through the `metrics` facade (labelled by topic, and by partition where it says
//! which partition lost or skipped records). The per-partition gauges (offsets, high watermark,
//! lag) are this instance's own state instead: each rebalance keeps only the partitions this
//! consumer owns, so a partition handed to another consumer leaves no stale lag behind here.
//! While the database cannot be reached nothing is rebalanced: the partitions keep their last
//! values, marked waiting (`database_unavailable`), for as long as that lasts.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::store::Committed;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionState {
    pub next_offset: i64,
    pub high_watermark: i64,
    /// Why the partition is not being consumed (`log_replaced`, `beyond_high_watermark`,
    /// `database_unavailable`).
    pub waiting: Option<&'static str>,
}

impl PartitionState {
    /// Not clamped: a negative lag is a stored offset beyond the log's end, which is news.
    pub fn lag(&self) -> i64 {
        self.high_watermark - self.next_offset
    }
}

/// Why a partition is not consumed while the database cannot be reached.
pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";

#[derive(Default)]
pub struct Metrics {
    partitions: Mutex<BTreeMap<(String, i32), PartitionState>>,
}

fn partition_labels(topic: &str, partition: i32) -> [(&'static str, String); 2] {
    [
        ("topic", topic.to_owned()),
        ("partition", partition.to_string()),
    ]
}

impl Metrics {
    /// A committed batch: rows inserted and dead letters stored.
    pub fn stored(&self, topic: &str, committed: Committed) {
        let Committed {
            events,
            dead_letters,
            duplicates,
            unregistered,
        } = committed;
        let topic = topic.to_owned();
        // Sites nobody registered: spam, or a site not added yet. Stored, never shown.
        metrics::counter!("pageviews_unregistered_site_events_total", "topic" => topic.clone())
            .increment(unregistered);
        // A client's retry of an event already stored: dropped, as an idempotency key promises.
        metrics::counter!("pageviews_duplicate_events_total", "topic" => topic.clone())
            .increment(duplicates);
        metrics::counter!("pageviews_events_stored_total", "topic" => topic.clone())
            .increment(events);
        metrics::counter!("pageviews_dead_letters_total", "topic" => topic).increment(dead_letters);
    }

    /// Page views from crawlers and automation in committed batches: stored with `is_bot`,
    /// counted apart. (A client's retry of a bot event counts again.)
    pub fn bots(&self, topic: &str, events: u64) {
        metrics::counter!("pageviews_bot_events_total", "topic" => topic.to_owned())
            .increment(events);
    }

    pub fn observe(&self, topic: &str, partition: i32, state: PartitionState) {
        if let Ok(mut map) = self.partitions.lock() {
            map.insert((topic.to_owned(), partition), state);
        }
    }

    /// Offsets given up because retention deleted them before they were stored.
    pub fn skipped(&self, topic: &str, partition: i32, offsets: u64) {
        metrics::counter!(
            "pageviews_consumer_skipped_offsets_total",
            &partition_labels(topic, partition)
        )
        .increment(offsets);
    }

    /// The stored offset was found beyond the high watermark (the broker lost records).
    pub fn beyond_high_watermark(&self, topic: &str, partition: i32) {
        metrics::counter!(
            "pageviews_consumer_beyond_high_watermark_total",
            &partition_labels(topic, partition)
        )
        .increment(1);
    }

    /// The log under the stored offset was found replaced (re-created topic, wiped broker).
    pub fn log_replaced(&self, topic: &str, partition: i32) {
        metrics::counter!(
            "pageviews_consumer_log_replaced_total",
            &partition_labels(topic, partition)
        )
        .increment(1);
    }

    /// The database cannot be reached and the partitions are stopped: their last state stays
    /// on show, waiting for `database_unavailable`, until a rebalance decides whose they are.
    pub fn unreachable(&self) {
        if let Ok(mut map) = self.partitions.lock() {
            for state in map.values_mut() {
                state.waiting = Some(DATABASE_UNAVAILABLE);
            }
        }
    }

    /// After a rebalance: forgets the partitions `ours` does not claim (handed to another
    /// consumer, or gone from the topic).
    pub fn keep_only(&self, ours: impl Fn(&(String, i32)) -> bool) {
        if let Ok(mut map) = self.partitions.lock() {
            map.retain(|key, _| ours(key));
        }
    }

    pub fn partitions(&self) -> BTreeMap<(String, i32), PartitionState> {
        self.partitions
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub fn render(&self) -> String {
        let mut out = settings::telemetry::render();
        let partitions = self.partitions();
        let _ = writeln!(
            out,
            "# HELP pageviews_partitions_owned Partitions this process consumes."
        );
        let _ = writeln!(out, "# TYPE pageviews_partitions_owned gauge");
        let _ = writeln!(out, "pageviews_partitions_owned {}", partitions.len());
        for (name, help, value) in [
            (
                "pageviews_consumer_lag",
                "Records between the stored offset and the high watermark.",
                PartitionState::lag as fn(&PartitionState) -> i64,
            ),
            (
                "pageviews_consumer_next_offset",
                "The next offset to store.",
                |s: &PartitionState| s.next_offset,
            ),
            (
                "pageviews_consumer_high_watermark",
                "The partition's high watermark at the last fetch.",
                |s: &PartitionState| s.high_watermark,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for ((topic, partition), state) in &partitions {
                let _ = writeln!(
                    out,
                    "{name}{{topic=\"{}\",partition=\"{partition}\"}} {}",
                    escape_label(topic),
                    value(state)
                );
            }
        }
        let name = "pageviews_consumer_waiting";
        let _ = writeln!(
            out,
            "# HELP {name} 1 while a partition is not consumed, by reason: an operator's decision (log_replaced, beyond_high_watermark) or the database (database_unavailable)."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        for ((topic, partition), state) in &partitions {
            if let Some(reason) = state.waiting {
                let _ = writeln!(
                    out,
                    "{name}{{topic=\"{}\",partition=\"{partition}\",reason=\"{reason}\"}} 1",
                    escape_label(topic)
                );
            }
        }
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
