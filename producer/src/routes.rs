//! The HTTP surface: routes (`/query`, `/`, `/graphiql.js`, `/tracker.js`, `/healthz`,
//! `/readyz`; 405 for other methods), CORS, security headers, the request span, and
//! `TCP_NODELAY` on accepted connections.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpResponse, HttpServer};
use settings::Settings;
use tracing_actix_web::TracingLogger;

use crate::geo::GeoIp;
use crate::ingest::{graphql, BodyLimits, Clients, EventBudget};
use crate::query_cache::QueryCache;
use crate::schema::IngestSchema;
use crate::sink::EventSink;
use crate::span::RequestSpan;
use crate::tracker;

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

pub(crate) fn http_server(
    settings: &Settings,
    listener: TcpListener,
    schema: IngestSchema,
    sink: Arc<EventSink>,
    geo: Arc<GeoIp>,
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
    let clients = web::Data::new(Clients {
        proxies: settings.server.trusted_proxies.clone(),
        geo,
        rate: crate::ingest::RateLimit::of(settings.server.rate_limit_events_per_minute),
    });
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
            .app_data(clients.clone())
            .service(
                web::resource("/")
                    .route(web::get().to(graphiql))
                    .route(web::post().to(graphql))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(only("/query", web::post().to(graphql)))
            .service(only("/graphiql.js", web::get().to(graphiql_script)))
            .service(only("/tracker.js", web::get().to(tracker::serve)))
            .service(only(
                "/tracker.clicks.js",
                web::get().to(tracker::serve_clicks),
            ))
            .service(only("/healthz", web::get().to(healthz)))
            .service(only("/readyz", web::get().to(readyz)))
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
pub(crate) fn http_error(
    mut builder: actix_web::HttpResponseBuilder,
    code: &str,
    message: &str,
) -> HttpResponse {
    builder.json(serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code, "retryable": false } }]
    }))
}

/// `/metrics` and `/healthz` on their own listener (`server.metrics_host:metrics_port`).
pub(crate) fn metrics_server(listener: TcpListener) -> std::io::Result<Server> {
    Ok(HttpServer::new(|| {
        App::new()
            .service(only("/metrics", web::get().to(metrics_text)))
            .service(only("/healthz", web::get().to(healthz)))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
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
