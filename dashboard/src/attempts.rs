//! Wrong tokens are rate-limited per client address: each address may present
//! `dashboard.wrong_tokens_per_minute` wrong tokens (at once, or spread over a minute, refilled
//! evenly); past that its requests are refused with 429 before any token is compared, so a
//! right guess is refused too and guessing goes no faster than the limit.

use std::net::IpAddr;
use std::time::Duration;

/// Addresses with recent wrong tokens held in memory at most (`throttle` keeps to it).
const MAX_ADDRESSES: usize = 10_000;

pub(crate) struct WrongTokens(throttle::Buckets<IpAddr>);

impl WrongTokens {
    pub(crate) fn new(per_minute: u32) -> Self {
        WrongTokens(throttle::Buckets::new(per_minute, MAX_ADDRESSES))
    }

    /// Whether `peer` may present a token now.
    pub(crate) fn allows(&self, peer: Option<IpAddr>) -> bool {
        peer.is_none_or(|peer| self.0.allows(&peer, 1))
    }

    /// `peer` presented a wrong token.
    pub(crate) fn wrong(&self, peer: Option<IpAddr>) {
        if let Some(peer) = peer {
            self.0.spend(&peer, 1);
        }
    }

    /// How long a refused client waits for its next try: one wrong token's refill.
    pub(crate) fn retry_after(&self) -> Duration {
        self.0.retry_after()
    }
}
