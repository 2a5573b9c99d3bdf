//! Proof that the log under a stored offset is still the log that was read.
//!
//! A broker that lost its data, or a topic deleted and re-created, leaves a new log at the same
//! offsets. Once that log grows past the stored offset nothing at the offset itself looks wrong,
//! and resuming there would skip every record below it. So each commit also stores a
//! fingerprint of its last record, and before resuming the worker reads the record just below
//! the stored offset again: a different record, or none where one must be, means the log was
//! replaced.

use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::Record;

/// What the record below the stored offset says about the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The same record is there: the log is the one that was read.
    Holds,
    /// Nothing to compare: no fingerprint stored (a fresh or moved offset), or retention or
    /// compaction removed the record while the log kept growing from where it was.
    Unknown,
    /// A different record is there, or the log ends before the stored offset.
    Replaced,
}

/// A fingerprint of a record: its key, value and timestamp (FNV-1a, 64 bits). Stable across
/// builds and versions, unlike `std`'s hasher, because it is stored.
pub fn fingerprint(record: &Record) -> i64 {
    let mut hash = Fnv::new();
    for part in [record.key.as_deref(), record.value.as_deref()] {
        match part {
            None => hash.write(&[0]),
            Some(bytes) => {
                hash.write(&[1]);
                hash.write(&(bytes.len() as u64).to_le_bytes());
                hash.write(bytes);
            }
        }
    }
    hash.write(&record.timestamp.timestamp_millis().to_le_bytes());
    hash.0 as i64
}

/// FNV-1a of some bytes, stable like `fingerprint` (a stand-in visitor id for old events).
pub fn fnv1a(bytes: &[u8]) -> i64 {
    let mut hash = Fnv::new();
    hash.write(bytes);
    hash.0 as i64
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Reads the record at `next - 1` and compares it with the stored fingerprint.
pub async fn check(
    client: &PartitionClient,
    next: i64,
    stored: Option<i64>,
    max_bytes: i32,
) -> Result<Anchor, ClientError> {
    let Some(expected) = stored.filter(|_| next > 0) else {
        return Ok(Anchor::Unknown);
    };
    let below = next - 1;
    match client.fetch_records(below, 1..max_bytes, 0).await {
        Ok((records, high_watermark)) => Ok(match records.iter().find(|r| r.offset == below) {
            Some(r) if fingerprint(&r.record) == expected => Anchor::Holds,
            Some(_) => Anchor::Replaced,
            None if high_watermark < next => Anchor::Replaced,
            None => Anchor::Unknown,
        }),
        Err(ClientError::ServerError {
            protocol_error: ProtocolError::OffsetOutOfRange,
            ..
        }) => {
            // Below the log start (retention) is no proof of anything; a log that ends before
            // the stored offset is not the log that was read.
            let latest = client.get_offset(OffsetAt::Latest).await?;
            Ok(if latest < next {
                Anchor::Replaced
            } else {
                Anchor::Unknown
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &[u8], value: &[u8], millis: i64) -> Record {
        Record {
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            headers: Default::default(),
            timestamp: chrono::DateTime::from_timestamp_millis(millis).expect("a time"),
        }
    }

    #[test]
    fn records_differing_in_key_value_or_time_have_different_fingerprints() {
        let base = fingerprint(&record(b"k", b"v", 1));
        assert_eq!(base, fingerprint(&record(b"k", b"v", 1)));
        assert_ne!(base, fingerprint(&record(b"k", b"w", 1)));
        assert_ne!(base, fingerprint(&record(b"j", b"v", 1)));
        assert_ne!(base, fingerprint(&record(b"k", b"v", 2)));
        // The boundary between key and value is part of the fingerprint.
        assert_ne!(
            fingerprint(&record(b"kv", b"", 1)),
            fingerprint(&record(b"k", b"v", 1))
        );
    }
}
