//! Token buckets per key, in memory: each key (a client address) may spend `per_minute` units
//! at once or spread over a minute, refilled evenly. The producer spends one per event
//! (`server.rate_limit_events_per_minute`), the dashboard one per wrong token
//! (`dashboard.wrong_tokens_per_minute`).
//!
//! Memory stays bounded whoever sends: beyond `max_keys` keys with recent spending, the full
//! buckets are forgotten, and if that is not enough the table starts over (which only ever
//! lets more through, for a moment).
//!
//! Architecture Invariant: no I/O; keys live in memory only and are never written anywhere.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Buckets<K> {
    per_minute: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// What a key may still spend, as of `at`.
#[derive(Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(per_minute: u32, max_keys: usize) -> Self {
        Buckets {
            per_minute: f64::from(per_minute),
            max_keys,
            buckets: Mutex::default(),
        }
    }

    /// Whether `key` could spend `units` now (nothing is spent).
    pub fn allows(&self, key: &K, units: u32) -> bool {
        let Ok(buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        buckets
            .get(key)
            .is_none_or(|b| self.refilled(*b, now).left >= f64::from(units))
    }

    /// Spends `units` if `key` has them, and says whether it did.
    pub fn try_spend(&self, key: &K, units: u32) -> bool {
        self.update(key, |left| {
            (left >= f64::from(units)).then(|| left - f64::from(units))
        })
    }

    /// Spends `units` whether `key` has them or not (down to nothing).
    pub fn spend(&self, key: &K, units: u32) {
        self.update(key, |left| Some((left - f64::from(units)).max(0.0)));
    }

    /// How long a refused key waits for one unit.
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.per_minute.max(1.0)).max(Duration::from_secs(1))
    }

    /// Applies `change` to the key's refilled bucket; `None` leaves it as it was.
    fn update(&self, key: &K, change: impl FnOnce(f64) -> Option<f64>) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        if buckets.len() >= self.max_keys && !buckets.contains_key(key) {
            buckets.retain(|_, b| self.refilled(*b, now).left < self.per_minute);
            if buckets.len() >= self.max_keys {
                buckets.clear();
            }
        }
        let full = Bucket {
            left: self.per_minute,
            at: now,
        };
        let bucket = buckets.entry(key.clone()).or_insert(full);
        let refilled = self.refilled(*bucket, now);
        match change(refilled.left) {
            Some(left) => {
                *bucket = Bucket { left, at: now };
                true
            }
            None => {
                *bucket = refilled;
                false
            }
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let minutes = now.duration_since(bucket.at).as_secs_f64() / 60.0;
        Bucket {
            left: (bucket.left + minutes * self.per_minute).min(self.per_minute),
            at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_spends_its_budget_and_no_more_while_another_keeps_its_own() {
        let buckets = Buckets::new(3, 10);
        assert!(buckets.try_spend(&"a", 2));
        assert!(!buckets.try_spend(&"a", 2), "one left, two asked");
        assert!(buckets.try_spend(&"a", 1));
        assert!(!buckets.allows(&"a", 1));
        assert!(buckets.try_spend(&"b", 3), "another key has its own");
    }

    #[test]
    fn spending_beyond_the_budget_leaves_nothing_rather_than_a_debt() {
        let buckets = Buckets::new(2, 10);
        buckets.spend(&"a", 5);
        assert!(!buckets.allows(&"a", 1));
    }

    #[test]
    fn the_table_never_holds_more_keys_than_its_bound() {
        let buckets = Buckets::new(1, 4);
        for key in 0..100 {
            buckets.spend(&key, 1);
        }
        let held = buckets
            .buckets
            .lock()
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        assert!(held <= 4, "{held} keys held");
    }
}
