//! A circuit breaker in front of the broker. During an outage every produce would wait the
//! whole produce timeout (5 s by default) and hold its client, its connection and its place in
//! the in-flight bound. After a failure the breaker refuses at once for `cooldown`, then lets one
//! request through as a probe: its success closes the breaker, its failure opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// One request is finding out whether the broker is back; the others are refused.
    Probing,
}

pub struct Breaker {
    state: Mutex<State>,
    cooldown: Duration,
}

/// What a request may do.
#[must_use]
pub enum Admission<'a> {
    /// Go ahead, and report how it went.
    Pass(Attempt<'a>),
    /// The broker failed moments ago: refuse without trying.
    Refuse,
}

/// One admitted produce. Dropped without a result (the client went away), a probe hands the
/// probing over to the next request instead of leaving the breaker half-open forever.
pub struct Attempt<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    /// A zero `cooldown` turns the breaker off.
    pub fn new(cooldown: Duration) -> Self {
        Breaker {
            state: Mutex::new(State::Closed),
            cooldown,
        }
    }

    pub fn admit(&self) -> Admission<'_> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::Probing;
                true
            }
            State::Open { .. } | State::Probing => return Admission::Refuse,
        };
        Admission::Pass(Attempt {
            breaker: self,
            probe,
            reported: false,
        })
    }

    /// Whether requests are being refused right now.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, state: State) {
        *self.lock() = state;
    }
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        self.reported = true;
        self.breaker.set(State::Closed);
    }

    pub fn failed(mut self) {
        self.reported = true;
        if !self.breaker.cooldown.is_zero() {
            self.breaker.set(State::Open {
                until: Instant::now() + self.breaker.cooldown,
            });
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.set(State::Open {
                until: Instant::now(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(breaker: &Breaker) -> Attempt<'_> {
        match breaker.admit() {
            Admission::Pass(a) => a,
            Admission::Refuse => panic!("refused"),
        }
    }

    #[test]
    fn a_failure_refuses_until_the_cooldown_ends() {
        let breaker = Breaker::new(Duration::from_secs(3600));
        pass(&breaker).failed();
        assert!(matches!(breaker.admit(), Admission::Refuse));
        assert!(breaker.is_open());
    }

    #[test]
    fn after_the_cooldown_one_probe_passes_and_its_success_closes_the_breaker() {
        let breaker = Breaker::new(Duration::from_secs(3600));
        pass(&breaker).failed();
        breaker.set(State::Open {
            until: Instant::now(),
        });
        let probe = pass(&breaker);
        assert!(
            matches!(breaker.admit(), Admission::Refuse),
            "one probe at a time"
        );
        probe.succeeded();
        assert!(!breaker.is_open());
        pass(&breaker).succeeded();
    }

    #[test]
    fn a_probe_dropped_without_a_result_lets_the_next_request_probe() {
        let breaker = Breaker::new(Duration::from_secs(3600));
        pass(&breaker).failed();
        breaker.set(State::Open {
            until: Instant::now(),
        });
        drop(pass(&breaker));
        pass(&breaker).succeeded();
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_zero_cooldown_never_refuses() {
        let breaker = Breaker::new(Duration::ZERO);
        pass(&breaker).failed();
        pass(&breaker).failed();
        assert!(!breaker.is_open());
    }
}
