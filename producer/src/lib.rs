//! The GraphQL ingest API: websites POST page views, which are validated, stamped with a UUIDv7
//! and the receive time, and produced to Kafka with rskafka. A mutation answers success only
//! once the broker acknowledged the event, with its partition and offset.
//!
//! `Application::build(settings)` binds the listener (port 0 in tests) and connects to Kafka;
//! `run_until(shutdown)` serves until the shutdown future resolves, then stops accepting,
//! finishes in-flight requests and flushes the batch producers.
//!
//! Architecture Invariant: the producer knows nothing of PostgreSQL; Kafka is its only output.

mod breaker;
mod budget;
pub mod error;

mod query_cache;
pub mod salts;
pub mod schema;
pub mod sink;
pub mod tracker;
pub mod visitor;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::Server;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::DefaultHeaders;
use actix_web::HttpMessage;
use actix_web::{web, App, HttpResponse, HttpServer};
use async_graphql::ErrorExtensions;
use async_graphql_actix_web::GraphQLResponse;
use futures::StreamExt;
use settings::Settings;
use tracing_actix_web::{RequestId, RootSpanBuilder, TracingLogger};

use crate::error::IngestError;
use crate::query_cache::QueryCache;
pub use crate::schema::Clock;
use crate::schema::{build_schema, Ingest, IngestSchema};
use crate::sink::{EventSink, SinkError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Kafka(#[from] SinkError),
}

pub struct Application {
    port: u16,
    server: Server,
    sink: Arc<EventSink>,
}

impl Application {
    /// Binds `server.host:server.port`, connects to Kafka and creates the topics.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let address = settings.server.address();
        let listener =
            TcpListener::bind(&address).map_err(|source| StartError::Bind { address, source })?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartError> {
        Self::build_with_clock(settings, listener, Clock::system()).await
    }

    /// As `build_with_listener`, with receive times from `clock`.
    pub async fn build_with_clock(
        settings: Settings,
        listener: TcpListener,
        clock: Clock,
    ) -> Result<Self, StartError> {
        settings::telemetry::init();
        let address = settings.server.address();
        let bind_err = |source| StartError::Bind {
            address: address.clone(),
            source,
        };
        let port = listener.local_addr().map_err(bind_err)?.port();
        let sink =
            Arc::new(EventSink::connect(&settings.kafka, settings.server.max_in_flight).await?);
        let schema = build_schema(
            Ingest {
                sink: Arc::clone(&sink),
                max_batch_size: settings.server.max_batch_size.get(),
                clock,
            },
            &settings.server,
        );
        let server =
            http_server(&settings, listener, schema, Arc::clone(&sink)).map_err(bind_err)?;
        Ok(Application { port, server, sink })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: no acknowledged event is lost.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let salts = tokio::spawn(maintain_salts(Arc::clone(&self.sink)));
        let result = tokio::select! {
            joined = &mut server => joined,
            () = shutdown => {
                tracing::info!("shutting down: no new connections, finishing in-flight requests");
                handle.stop(true).await;
                server.await
            }
        };
        salts.abort();
        self.sink.flush().await;
        tracing::info!("producer stopped");
        result.map_err(std::io::Error::other)?
    }
}

/// Makes each day's salt and deletes expired ones even when no page view arrives, so that a
/// salt never outlives its 48 hours for want of traffic.
async fn maintain_salts(sink: Arc<EventSink>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        sink.maintain_salts().await;
    }
}

/// Builds the application and serves until `shutdown` resolves (what the binary runs).
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let app = Application::build(settings)
        .await
        .map_err(|e| anyhow::Error::new(e).context("starting the producer"))?;
    tracing::info!(
        port = app.port(),
        "producer listening; GraphiQL at /, GraphQL at /query"
    );
    app.run_until(shutdown)
        .await
        .map_err(|e| anyhow::Error::new(e).context("serving HTTP"))
}

fn cors(origins: &[String]) -> Cors {
    let base = Cors::default()
        .allowed_methods(["GET", "POST", "OPTIONS"])
        .allow_any_header()
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        // Any origin, never with credentials: fine for a public beacon endpoint.
        base.allow_any_origin()
    } else {
        origins
            .iter()
            .fold(base, |cors, origin| cors.allowed_origin(origin))
    }
}

fn http_server(
    settings: &Settings,
    listener: TcpListener,
    schema: IngestSchema,
    sink: Arc<EventSink>,
) -> std::io::Result<Server> {
    let body = web::Data::new(BodyLimits {
        max_bytes: settings.server.body_limit_bytes,
        read_timeout: settings.server.body_read_timeout(),
    });
    let origins = settings.server.cors_allowed_origins.clone();
    let schema = web::Data::new(schema);
    let sink = web::Data::from(sink);
    let queries = web::Data::new(QueryCache::default());
    let budget = web::Data::new(EventBudget(settings.server.max_batch_size.get()));
    let proxies = web::Data::new(TrustedProxies(settings.server.trusted_proxies.clone()));
    let workers = settings.server.workers;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(cors(&origins))
            // A span per request: request id, method, route, status. Never the client's IP.
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .app_data(body.clone())
            .app_data(schema.clone())
            .app_data(sink.clone())
            .app_data(queries.clone())
            .app_data(budget.clone())
            .app_data(proxies.clone())
            .service(
                web::resource("/")
                    .route(web::get().to(graphiql))
                    .route(web::post().to(graphql))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(only("/query", web::post().to(graphql)))
            .service(only("/graphiql.js", web::get().to(graphiql_script)))
            .service(only("/tracker.js", web::get().to(tracker::serve)))
            .service(only("/healthz", web::get().to(healthz)))
            .service(only("/readyz", web::get().to(readyz)))
            .service(only("/metrics", web::get().to(metrics_text)))
    })
    // An answer's last partial segment must not wait for the client's delayed ACK.
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout().as_secs().max(1));
    let server = if workers > 0 {
        server.workers(workers)
    } else {
        server
    };
    Ok(server.listen(listener)?.run())
}

/// A resource answering one method, and 405 to the others.
fn only(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(request: actix_web::HttpRequest) -> HttpResponse {
    let message = format!(
        "{} is not supported on {}",
        request.method(),
        request.path()
    );
    http_error(
        HttpResponse::MethodNotAllowed(),
        "METHOD_NOT_ALLOWED",
        &message,
    )
}

/// An HTTP-level refusal, in the same shape as GraphQL errors so one client path reads both.
fn http_error(
    mut builder: actix_web::HttpResponseBuilder,
    code: &str,
    message: &str,
) -> HttpResponse {
    builder.json(serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code, "retryable": false } }]
    }))
}

/// How much of a request body is read, and for how long.
struct BodyLimits {
    max_bytes: usize,
    read_timeout: std::time::Duration,
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
async fn graphql(
    schema: web::Data<IngestSchema>,
    queries: web::Data<QueryCache>,
    budget: web::Data<EventBudget>,
    limits: web::Data<BodyLimits>,
    proxies: web::Data<TrustedProxies>,
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
    let context = visitor::RequestContext::from_request(&http, &proxies.0);
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

/// `server.trusted_proxies`.
struct TrustedProxies(Vec<settings::IpNet>);

/// The most events one HTTP request may produce (`server.max_batch_size`).
struct EventBudget(usize);

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

/// Every error carries `extensions.code`: ours set it; async-graphql's own parse and validation
/// errors (missing field, query too deep or too complex) get Apollo's `GRAPHQL_VALIDATION_FAILED`.
fn with_codes(mut response: async_graphql::Response) -> async_graphql::Response {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "GRAPHQL_VALIDATION_FAILED");
            extensions.set("retryable", false);
        }
    }
    response
}

/// Errors an answer lists; the rest are summed up in one more.
const MAX_ERRORS: usize = 10;
/// Characters of an error message; longer ones (a parse error quoting the query) are cut.
const MAX_MESSAGE_CHARS: usize = 300;

/// Keeps an answer small whatever the request: 6,004 unused variables once gave 6,004 errors
/// and a 922 KB answer to a 64 KiB request.
fn capped(mut response: async_graphql::Response) -> async_graphql::Response {
    let extra = response.errors.len().saturating_sub(MAX_ERRORS);
    response.errors.truncate(MAX_ERRORS);
    for error in &mut response.errors {
        error.message = shortened(&error.message, MAX_MESSAGE_CHARS);
    }
    if extra > 0 {
        let mut more = async_graphql::ServerError::new(format!("and {extra} more errors"), None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "GRAPHQL_VALIDATION_FAILED");
        extensions.set("retryable", false);
        more.extensions = Some(extensions);
        response.errors.push(more);
    }
    response
}

/// `text` cut to at most `max` characters, marked with an ellipsis when cut.
pub(crate) fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// The request span. tracing-actix-web's default one records the client's IP address and
/// user agent, and every log line inside a request would carry them: privacy forbids the IP.
struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "request",
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
            method = %request.method(),
            route = %request.match_pattern().unwrap_or_else(|| "unmatched".into()),
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        span.record("status", status);
    }
}

/// Counts a GraphQL answer by outcome: `ok`, or the first error's code.
fn counted(response: async_graphql::Response) -> async_graphql::Response {
    let outcome = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref()?.get("code"))
        .and_then(|code| match code {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "ok".to_owned());
    metrics::counter!("pageviews_requests_total", "outcome" => outcome).increment(1);
    response
}

/// GET /metrics: requests by outcome, produce latency and batch sizes, events in flight.
async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(settings::telemetry::render())
}

/// GraphiQL: its code comes from unpkg.com at pinned versions, each checked by its integrity
/// hash, and the policy lets the page load nothing else and talk only to this producer.
async fn graphiql() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self' https://unpkg.com; \
             style-src 'self' https://unpkg.com 'unsafe-inline'; connect-src 'self'; \
             img-src 'self' data:; font-src 'self' data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ))
        .body(include_str!("graphiql/index.html"))
}

async fn graphiql_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("graphiql/graphiql.js"))
}

/// The process is alive.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

/// The broker answers: this instance can acknowledge events.
async fn readyz(sink: web::Data<EventSink>) -> HttpResponse {
    if sink.ready().await {
        HttpResponse::Ok().body("ready")
    } else {
        HttpResponse::ServiceUnavailable().body("kafka unreachable")
    }
}
