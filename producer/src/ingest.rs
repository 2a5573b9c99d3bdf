//! `POST /query` and `POST /`: the body read within its size and time limits, parsed as a
//! GraphQL request or a batch, checked against the event budget, and run.

use actix_web::{web, HttpResponse};
use async_graphql::ErrorExtensions;
use async_graphql_actix_web::GraphQLResponse;
use futures::StreamExt;

use crate::answers::{capped, counted, shortened, with_codes, MAX_MESSAGE_CHARS};
use crate::error::IngestError;
use crate::geo::GeoIp;
use crate::query_cache::QueryCache;
use crate::routes::http_error;
use crate::schema::IngestSchema;
use crate::{budget, visitor};

/// How much of a request body is read, and for how long.
pub(crate) struct BodyLimits {
    pub(crate) max_bytes: usize,
    pub(crate) read_timeout: std::time::Duration,
}

/// Reads the body within its size and time limits, or answers 413 or 408.
async fn read_body(
    mut payload: web::Payload,
    limits: &BodyLimits,
    declared: Option<usize>,
) -> Result<web::Bytes, HttpResponse> {
    let too_large = || {
        let message = format!(
            "the body is larger than server.body_limit_bytes ({} bytes)",
            limits.max_bytes
        );
        http_error(
            HttpResponse::PayloadTooLarge(),
            "PAYLOAD_TOO_LARGE",
            &message,
        )
    };
    if declared.is_some_and(|n| n > limits.max_bytes) {
        return Err(too_large());
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                http_error(HttpResponse::BadRequest(), "BAD_REQUEST", &e.to_string())
            })?;
            if body.len() + chunk.len() > limits.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(limits.read_timeout, read).await {
        Ok(read) => read,
        Err(_) => {
            let message = format!(
                "the body did not arrive within server.body_read_timeout_ms ({} ms)",
                limits.read_timeout.as_millis()
            );
            let mut refused = HttpResponse::RequestTimeout();
            refused.insert_header(("Connection", "close"));
            Err(http_error(refused, "REQUEST_TIMEOUT", &message))
        }
    }
}

/// POST /query and POST /: a GraphQL request (or a batch of them) as JSON. Any content type is
/// accepted, so `navigator.sendBeacon` (text/plain) works too.
pub(crate) async fn graphql(
    schema: web::Data<IngestSchema>,
    queries: web::Data<QueryCache>,
    budget: web::Data<EventBudget>,
    limits: web::Data<BodyLimits>,
    clients: web::Data<Clients>,
    http: actix_web::HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let declared = http
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body = match read_body(payload, &limits, declared).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let mut request = match parse_batch(&body) {
        Ok(request) => request,
        Err(why) => return http_error(HttpResponse::BadRequest(), "BAD_REQUEST", &why),
    };
    let requests: &mut [async_graphql::Request] = match &mut request {
        async_graphql::BatchRequest::Single(r) => std::slice::from_mut(r),
        async_graphql::BatchRequest::Batch(rs) => rs,
    };
    let context = visitor::RequestContext::from_request(&http, &clients.proxies, &clients.geo);
    for r in requests.iter_mut() {
        queries.prepare(r);
        r.data.insert(context.clone());
    }
    let events = requests
        .iter_mut()
        .map(budget::events_in)
        .fold(0, usize::saturating_add);
    if events > budget.0 {
        let refusal = IngestError::RequestOverBudget {
            got: events,
            max: budget.0,
        };
        return respond(refused(&request, &refusal), &http);
    }
    // Refused whole, before anything is produced: nothing half-written.
    if let Err(limited) = clients.rate.spend(context.client, events) {
        return respond(refused(&request, &limited), &http);
    }
    respond(execute(&schema, request).await, &http)
}

/// Through async-graphql-actix-web's responder: JSON, and the cache headers an answer asks for.
fn respond(answer: async_graphql::BatchResponse, http: &actix_web::HttpRequest) -> HttpResponse {
    actix_web::Responder::respond_to(GraphQLResponse::from(answer), http).map_into_boxed_body()
}

/// The body as a GraphQL request or a JSON array of them, or why it is not one.
fn parse_batch(body: &[u8]) -> Result<async_graphql::BatchRequest, String> {
    serde_json::from_slice(body).map_err(|e| {
        let message = format!("the body is not a GraphQL request: {e}");
        shortened(&message, MAX_MESSAGE_CHARS)
    })
}

/// Runs the requests; every answer gets error codes, caps and its count in the metrics.
async fn execute(
    schema: &IngestSchema,
    request: async_graphql::BatchRequest,
) -> async_graphql::BatchResponse {
    let tidy = |r| counted(capped(with_codes(r)));
    match schema.execute_batch(request).await {
        async_graphql::BatchResponse::Single(r) => async_graphql::BatchResponse::Single(tidy(r)),
        async_graphql::BatchResponse::Batch(rs) => {
            async_graphql::BatchResponse::Batch(rs.into_iter().map(tidy).collect())
        }
    }
}

/// What tells who a client is and where (`server.trusted_proxies`, the IP database), and how
/// much it may send.
pub(crate) struct Clients {
    pub(crate) proxies: Vec<settings::IpNet>,
    pub(crate) geo: std::sync::Arc<GeoIp>,
    pub(crate) rate: RateLimit,
}

/// Addresses held in memory at most by the rate limit (`throttle` keeps to it).
const MAX_ADDRESSES: usize = 100_000;

/// `server.rate_limit_events_per_minute`, per client address.
pub(crate) enum RateLimit {
    Off,
    PerAddress(throttle::Buckets<std::net::IpAddr>),
}

impl RateLimit {
    pub(crate) fn of(per_minute: u32) -> Self {
        match per_minute {
            0 => RateLimit::Off,
            n => RateLimit::PerAddress(throttle::Buckets::new(n, MAX_ADDRESSES)),
        }
    }

    /// Spends `events` of the client's budget, or says when to come back.
    fn spend(&self, client: Option<std::net::IpAddr>, events: usize) -> Result<(), IngestError> {
        let (RateLimit::PerAddress(buckets), Some(client)) = (self, client) else {
            return Ok(());
        };
        let units = u32::try_from(events).unwrap_or(u32::MAX);
        if buckets.try_spend(&client, units) {
            return Ok(());
        }
        metrics::counter!("pageviews_rate_limited_events_total").increment(events as u64);
        Err(IngestError::RateLimited {
            retry_after_s: buckets.retry_after().as_secs(),
        })
    }
}

/// The most events one HTTP request may produce (`server.max_batch_size`).
pub(crate) struct EventBudget(pub(crate) usize);

/// The same refusal for every request of the batch, in the batch's shape.
fn refused(
    request: &async_graphql::BatchRequest,
    error: &IngestError,
) -> async_graphql::BatchResponse {
    let answer = || {
        let mut e = async_graphql::ServerError::new(error.to_string(), None);
        e.extensions = error.extend().extensions;
        counted(async_graphql::Response::from_errors(vec![e]))
    };
    match request {
        async_graphql::BatchRequest::Single(_) => async_graphql::BatchResponse::Single(answer()),
        async_graphql::BatchRequest::Batch(rs) => {
            async_graphql::BatchResponse::Batch(rs.iter().map(|_| answer()).collect())
        }
    }
}
