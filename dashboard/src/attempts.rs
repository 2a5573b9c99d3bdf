//! Wrong tokens are rate-limited per client address: each address may present
//! `dashboard.wrong_tokens_per_minute` wrong tokens (at once, or spread over a minute, refilled
//! evenly); past that its requests are refused with 429 before any token is compared, so a
//! right guess is refused too and guessing goes no faster than the limit. Addresses live only
//! in memory, at most `MAX_ADDRESSES` of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many addresses with recent wrong tokens, the table starts over: its memory stays
/// bounded whoever sends them.
const MAX_ADDRESSES: usize = 10_000;

pub(crate) struct WrongTokens {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// Wrong tokens an address may still present, as of `at`.
#[derive(Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

impl WrongTokens {
    pub(crate) fn new(per_minute: u32) -> Self {
        WrongTokens {
            per_minute: f64::from(per_minute),
            buckets: Mutex::default(),
        }
    }

    /// Whether `peer` may present a token now.
    pub(crate) fn allows(&self, peer: Option<IpAddr>) -> bool {
        let (Some(peer), Ok(buckets)) = (peer, self.buckets.lock()) else {
            return true;
        };
        buckets
            .get(&peer)
            .is_none_or(|b| self.refilled(*b, Instant::now()).left >= 1.0)
    }

    /// `peer` presented a wrong token.
    pub(crate) fn wrong(&self, peer: Option<IpAddr>) {
        let (Some(peer), Ok(mut buckets)) = (peer, self.buckets.lock()) else {
            return;
        };
        let now = Instant::now();
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&peer) {
            buckets.retain(|_, b| self.refilled(*b, now).left < self.per_minute);
            if buckets.len() >= MAX_ADDRESSES {
                buckets.clear();
            }
        }
        let full = Bucket {
            left: self.per_minute,
            at: now,
        };
        let bucket = buckets.entry(peer).or_insert(full);
        let mut refilled = self.refilled(*bucket, now);
        refilled.left = (refilled.left - 1.0).max(0.0);
        *bucket = refilled;
    }

    /// How long a refused client waits for its next try: one wrong token's refill.
    pub(crate) fn retry_after(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.per_minute.max(1.0)).max(Duration::from_secs(1))
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let minutes = now.duration_since(bucket.at).as_secs_f64() / 60.0;
        Bucket {
            left: (bucket.left + minutes * self.per_minute).min(self.per_minute),
            at: now,
        }
    }
}
