//! The one error type of ingestion, split into what the client got wrong (do not retry) and
//! what went wrong on our side (retry, with the same event ids so the retry is idempotent).

use async_graphql::ErrorExtensions;
use event::page_view::FieldError;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid field {0}")]
    InvalidField(#[from] FieldError),
    #[error("event type {0:?} is not accepted (accepted: {1})")]
    UnknownEventType(String, String),
    #[error("a batch may carry at most {max} events, this one has {got}")]
    BatchTooLarge { got: usize, max: usize },
    #[error("a request may produce at most {max} events across all its fields, aliases and batched operations; this one would produce {got}")]
    RequestOverBudget { got: usize, max: usize },
    #[error("the event id must be a UUID other than the nil UUID, got {0:?}")]
    InvalidId(String),
    #[error("the event id {0} appears more than once in this batch; an id names one event")]
    RepeatedId(Uuid),
    #[error("the broker did not acknowledge the event(s): {reason}")]
    KafkaUnavailable { reason: String, ids: Vec<Uuid> },
    #[error("too many events in flight, try again shortly")]
    Overloaded,
    #[error("this address sent more than server.rate_limit_events_per_minute events; try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
}

impl IngestError {
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::InvalidField(_)
            | IngestError::UnknownEventType(..)
            | IngestError::BatchTooLarge { .. }
            | IngestError::RequestOverBudget { .. }
            | IngestError::InvalidId(_)
            | IngestError::RepeatedId(_) => "BAD_USER_INPUT",
            IngestError::KafkaUnavailable { .. } => "KAFKA_UNAVAILABLE",
            IngestError::Overloaded => "OVERLOADED",
            IngestError::RateLimited { .. } => "RATE_LIMITED",
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(
            self,
            IngestError::KafkaUnavailable { .. }
                | IngestError::Overloaded
                | IngestError::RateLimited { .. }
        )
    }
}

impl ErrorExtensions for IngestError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", self.code());
            e.set("retryable", self.retryable());
            match self {
                IngestError::InvalidField(f) => e.set("field", f.field),
                IngestError::UnknownEventType(..) => e.set("field", "eventType"),
                IngestError::InvalidId(_) | IngestError::RepeatedId(_) => e.set("field", "id"),
                IngestError::RateLimited { retry_after_s } => {
                    e.set("retryAfterSeconds", *retry_after_s)
                }
                IngestError::KafkaUnavailable { ids, .. } => {
                    // Retrying with these ids cannot store an event twice.
                    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                    e.set("eventIds", ids)
                }
                _ => {}
            }
        })
    }
}
