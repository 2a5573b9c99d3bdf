//! A request body read within its size and time limits (`dashboard.body_limit_bytes`,
//! `dashboard.body_read_timeout_ms`): a body declared or found larger is refused with 413 as
//! soon as that is known, without buffering past the limit, and one that does not arrive in
//! time with 408 and a closed connection.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use futures::StreamExt;

pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

impl BodyLimits {
    pub fn of(settings: &settings::DashboardSettings) -> Self {
        BodyLimits {
            max_bytes: settings.body_limit_bytes,
            read_timeout: settings.body_read_timeout(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than dashboard.body_limit_bytes ({0} bytes)")]
    TooLarge(usize),
    #[error("the body did not arrive within dashboard.body_read_timeout_ms ({} ms)", .0.as_millis())]
    TooSlow(Duration),
    #[error("the body could not be read: {0}")]
    Broken(String),
}

impl BodyError {
    pub fn response(&self) -> HttpResponse {
        let mut answer = match self {
            BodyError::TooLarge(_) => HttpResponse::PayloadTooLarge(),
            BodyError::TooSlow(_) => {
                let mut slow = HttpResponse::RequestTimeout();
                slow.insert_header(("Connection", "close"));
                slow
            }
            BodyError::Broken(_) => HttpResponse::BadRequest(),
        };
        answer
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

/// The whole body, or why not.
pub async fn read(
    mut payload: web::Payload,
    declared: Option<usize>,
    limits: &BodyLimits,
) -> Result<web::Bytes, BodyError> {
    let max = limits.max_bytes;
    if declared.is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge(max));
    }
    let whole = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
            if body.len() + chunk.len() > max {
                return Err(BodyError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(limits.read_timeout, whole)
        .await
        .map_err(|_| BodyError::TooSlow(limits.read_timeout))?
}
