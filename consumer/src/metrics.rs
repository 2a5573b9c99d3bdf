//! Counters and per-partition gauges, rendered in Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionState {
    pub next_offset: i64,
    pub high_watermark: i64,
}

impl PartitionState {
    pub fn lag(&self) -> i64 {
        (self.high_watermark - self.next_offset).max(0)
    }
}

#[derive(Default)]
pub struct Metrics {
    events_stored: AtomicU64,
    dead_letters: AtomicU64,
    partitions: Mutex<BTreeMap<(String, i32), PartitionState>>,
    skipped: PartitionCounter,
    beyond_high_watermark: PartitionCounter,
}

/// A counter per topic and partition, kept after the partition is given up.
#[derive(Default)]
struct PartitionCounter(Mutex<BTreeMap<(String, i32), u64>>);

impl PartitionCounter {
    fn add(&self, topic: &str, partition: i32, n: u64) {
        if let Ok(mut map) = self.0.lock() {
            *map.entry((topic.to_owned(), partition)).or_default() += n;
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let map = self.0.lock().map(|m| m.clone()).unwrap_or_default();
        for ((topic, partition), n) in &map {
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{partition}\"}} {n}",
                escape_label(topic)
            );
        }
    }
}

impl Metrics {
    pub fn stored(&self, events: u64, dead_letters: u64) {
        self.events_stored.fetch_add(events, Ordering::Relaxed);
        self.dead_letters.fetch_add(dead_letters, Ordering::Relaxed);
    }

    pub fn events_stored(&self) -> u64 {
        self.events_stored.load(Ordering::Relaxed)
    }

    pub fn observe(&self, topic: &str, partition: i32, state: PartitionState) {
        if let Ok(mut map) = self.partitions.lock() {
            map.insert((topic.to_owned(), partition), state);
        }
    }

    /// Offsets given up because retention deleted them before they were stored.
    pub fn skipped(&self, topic: &str, partition: i32, offsets: u64) {
        self.skipped.add(topic, partition, offsets);
    }

    /// The stored offset was found beyond the high watermark (the broker lost records).
    pub fn beyond_high_watermark(&self, topic: &str, partition: i32) {
        self.beyond_high_watermark.add(topic, partition, 1);
    }

    pub fn forget(&self, topic: &str, partition: i32) {
        if let Ok(mut map) = self.partitions.lock() {
            map.remove(&(topic.to_owned(), partition));
        }
    }

    pub fn partitions(&self) -> BTreeMap<(String, i32), PartitionState> {
        self.partitions
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let partitions = self.partitions();
        let _ = writeln!(out, "# HELP pageviews_events_stored_total Events inserted into kafka_events by this process.");
        let _ = writeln!(out, "# TYPE pageviews_events_stored_total counter");
        let _ = writeln!(
            out,
            "pageviews_events_stored_total {}",
            self.events_stored()
        );
        let _ = writeln!(
            out,
            "# HELP pageviews_dead_letters_total Records this process stored in dead_letters."
        );
        let _ = writeln!(out, "# TYPE pageviews_dead_letters_total counter");
        let _ = writeln!(
            out,
            "pageviews_dead_letters_total {}",
            self.dead_letters.load(Ordering::Relaxed)
        );
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
        self.skipped.render(
            &mut out,
            "pageviews_consumer_skipped_offsets_total",
            "Offsets skipped because the broker deleted their records (retention) before they were stored.",
        );
        self.beyond_high_watermark.render(
            &mut out,
            "pageviews_consumer_beyond_high_watermark_total",
            "Times the stored offset was found beyond the high watermark: the broker lost acknowledged records.",
        );
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
