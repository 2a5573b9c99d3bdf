//! What a replay (`consumer rebuild`, a site's recount) has written: which visitor-days have
//! visits stored, and the visits themselves of the visitor-days it met last.
//!
//! A replay starts from no visits (the rebuild empties the table, a recount deletes the site's
//! and keeps the consumers off them), and it is the only writer of the visits it replays, so
//! what it wrote is all there is to read back:
//! - a visitor-day it has not written has none stored, and its lookup is skipped. Most are met
//!   in one chunk only (the events are replayed in time order, `rebuild::Streams`): without
//!   this, each of them cost an index probe that found nothing, a third of a 1 M-event
//!   rebuild's time (`pg_stat_statements`, 74 s of 222 s). `WrittenDays` is a Bloom filter of
//!   fixed size: a few megabytes however many events are replayed. A false positive costs one
//!   lookup that finds nothing; there are no false negatives, so no stored visit is missed.
//! - a visitor-day met in one of the last `KEPT_CHUNKS` chunks is read from memory. The busier
//!   the site, the fewer hours a chunk holds and the more visitor-days go on into the next one:
//!   at 3 M events over 90 days their lookups cost 166 ms per statement, against 26 ms at 1 M.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;

use analytics::{Visit, VisitorDay};

/// How many chunks a visitor-day's visits stay in memory after the last one that met it.
const KEPT_CHUNKS: u64 = 2;

/// The visits a replay has written, as far as it will read them back.
#[derive(Default)]
pub struct Written {
    days: WrittenDays,
    /// Every visit of each recently met visitor-day, sorted by start, with the chunk that last
    /// met it.
    recent: HashMap<VisitorDay, (u64, Vec<Visit>)>,
    chunk: u64,
}

impl Written {
    /// Takes out of `keys` the visitor-days with nothing stored and those held in memory, and
    /// returns the visits of the latter; what is left in `keys` is to be read from the table.
    pub fn recall(&mut self, keys: &mut BTreeSet<VisitorDay>) -> HashMap<VisitorDay, Vec<Visit>> {
        let mut known = HashMap::new();
        keys.retain(|day| match self.recent.remove(day) {
            Some((_, visits)) => {
                known.insert(day.clone(), visits);
                false
            }
            None => self.days.may_contain(day),
        });
        known
    }

    /// Notes a chunk's visits: `state`, every visit of the visitor-days it read (from `recall`
    /// and from the table), and `changed`, the visits it wrote over them or added.
    pub fn remember(&mut self, mut state: HashMap<VisitorDay, Vec<Visit>>, changed: Vec<Visit>) {
        self.chunk += 1;
        for visit in changed {
            let day = VisitorDay::of(&visit);
            self.days.insert(&day);
            let visits = state.entry(day).or_default();
            match visits.iter_mut().find(|v| v.id == visit.id) {
                Some(old) => *old = visit,
                None => visits.push(visit),
            }
        }
        for (day, mut visits) in state {
            visits.sort_by_key(|v| (v.started_at, v.id));
            self.recent.insert(day, (self.chunk, visits));
        }
        let oldest = self.chunk.saturating_sub(KEPT_CHUNKS - 1);
        self.recent.retain(|_, (chunk, _)| *chunk >= oldest);
    }
}

/// 2^26 bits (8 MiB): under 1 % false positives up to ~6 M visitor-days with `PROBES`
/// (about 1.4 % at 7 M).
const BITS_LOG2: u32 = 26;
const PROBES: usize = 4;

struct WrittenDays {
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

    fn insert(&mut self, day: &VisitorDay) {
        for bit in self.positions(day) {
            self.bits[bit >> 6] |= 1 << (bit & 63);
        }
    }

    /// False only if `insert` was never called with `day`.
    fn may_contain(&self, day: &VisitorDay) -> bool {
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

    /// The visit a page view of `visitor` at `minute` past 10:00 starts, as `sessionize` writes it.
    fn visit_of(visitor: i64, minute: i64) -> Visit {
        let at = NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .unwrap_or_default()
            .and_utc()
            + chrono::TimeDelta::minutes(minute);
        let hit = analytics::Hit {
            id: uuid::Uuid::from_u128(visitor as u128 * 1000 + minute as u128),
            site: "example.com",
            visitor,
            at,
            page: "/",
            is_bot: false,
            kind: analytics::HitKind::PageView,
            traits: analytics::Traits::default(),
            name: "",
            props: Vec::new(),
        };
        let timeout = chrono::TimeDelta::minutes(30);
        let changes = analytics::sessionize(&HashMap::new(), &[hit], timeout, |_| chrono_tz::UTC);
        changes.visits.into_iter().next().expect("a visit")
    }

    #[test]
    fn a_visitor_day_met_lately_is_recalled_whole_and_one_met_longer_ago_is_left_to_look_up() {
        let mut written = Written::default();
        let (first, second) = (visit_of(1, 0), visit_of(1, 90));
        written.remember(HashMap::new(), vec![first.clone()]);
        // The next chunk read the visitor-day back and added a visit to it.
        let mut keys = BTreeSet::from([day(1), day(2)]);
        let state = written.recall(&mut keys);
        assert_eq!(state[&day(1)], vec![first.clone()]);
        assert!(
            keys.is_empty(),
            "day 2 was never written, day 1 is in memory"
        );
        written.remember(state, vec![second.clone()]);
        let mut keys = BTreeSet::from([day(1)]);
        let state = written.recall(&mut keys);
        assert_eq!(state[&day(1)], vec![first, second]);
        written.remember(state, Vec::new());
        // Chunks that do not meet it: after `KEPT_CHUNKS` of them it is read from the table.
        for _ in 0..KEPT_CHUNKS {
            written.remember(HashMap::new(), Vec::new());
        }
        let mut keys = BTreeSet::from([day(1)]);
        assert!(written.recall(&mut keys).is_empty());
        assert_eq!(
            keys,
            BTreeSet::from([day(1)]),
            "looked up, as it was written"
        );
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
