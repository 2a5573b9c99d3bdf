//! The visitor-days a replay (`consumer rebuild`, a site's recount) has written visits of.
//!
//! A replay starts from no visits (the rebuild empties the table, a recount deletes the site's
//! and keeps the consumers off them), so a visitor-day it has not written has none stored and
//! its lookup can be skipped. Most of a replay's visitor-days are met in one chunk only (the
//! events are replayed in time order, `rebuild::Streams`): without this, each of them cost
//! an index probe that found nothing, a third of a 1 M-event rebuild's time
//! (`pg_stat_statements`, 74 s of 222 s).
//!
//! It is a Bloom filter of fixed size: a few megabytes however many events are replayed. A
//! false positive costs one lookup that finds nothing; there are no false negatives, so no
//! stored visit is ever missed.

use std::hash::BuildHasher;

use analytics::VisitorDay;

/// 2^26 bits (8 MiB): under 1 % false positives up to ~6 M visitor-days with `PROBES`
/// (about 1.4 % at 7 M).
const BITS_LOG2: u32 = 26;
const PROBES: usize = 4;

pub struct WrittenDays {
    bits: Vec<u64>,
    hasher: std::hash::RandomState,
}

impl Default for WrittenDays {
    fn default() -> Self {
        WrittenDays {
            bits: vec![0; 1 << (BITS_LOG2 - 6)],
            hasher: std::hash::RandomState::new(),
        }
    }
}

impl WrittenDays {
    /// The bit positions of a key: double hashing from one 64-bit hash.
    fn positions(&self, day: &VisitorDay) -> [usize; PROBES] {
        let hash = self.hasher.hash_one(day);
        let (a, b) = (hash, hash.rotate_left(32) | 1);
        let mask = (1u64 << BITS_LOG2) - 1;
        std::array::from_fn(|i| (a.wrapping_add((i as u64).wrapping_mul(b)) & mask) as usize)
    }

    pub fn insert(&mut self, day: &VisitorDay) {
        for bit in self.positions(day) {
            self.bits[bit >> 6] |= 1 << (bit & 63);
        }
    }

    /// False only if `insert` was never called with `day`.
    pub fn may_contain(&self, day: &VisitorDay) -> bool {
        self.positions(day)
            .iter()
            .all(|bit| self.bits[bit >> 6] & (1 << (bit & 63)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(visitor: i64) -> VisitorDay {
        VisitorDay {
            site: "example.com".into(),
            visitor,
            day: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default(),
        }
    }

    #[test]
    fn every_written_visitor_day_is_reported_and_few_unwritten_ones_are() {
        let mut written = WrittenDays::default();
        for visitor in 0..100_000 {
            written.insert(&day(visitor));
        }
        assert!((0..100_000).all(|v| written.may_contain(&day(v))));
        let false_positives = (100_000..200_000)
            .filter(|v| written.may_contain(&day(*v)))
            .count();
        assert!(false_positives < 100, "{false_positives} false positives");
    }
}
