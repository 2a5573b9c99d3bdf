//! The read side: the Stats API over the visits and rollups the consumer keeps in PostgreSQL.
//!
//! - `POST /query`: GraphQL (`stats`, `sites`, `currentVisitors`); `GET /query` upgraded to a
//!   WebSocket serves the `currentVisitors` subscription (graphql-ws and graphql-transport-ws).
//! - `GET /export.csv?…`: any breakdown as CSV (see `export`).
//! - `GET /`: the dashboard page (`ui/`, embedded), which asks for the token and keeps it in
//!   the browser.
//! - `GET /share/<id>`: the page as a shared link's, read-only for one site; its data routes
//!   (`/share/<id>/query`, `/share/<id>/export.csv`) take the link (and, for a password, the
//!   cookie `POST /share/<id>/unlock` gave) instead of a token (see `share`).
//! - `GET /healthz` (alive), `GET /readyz` (the database answers); these, the page's files and
//!   a link's page and `unlock` are the only routes without a token.
//!
//! - `GET /metrics` on `dashboard.metrics_host:metrics_port`: the read database's lag (see
//!   `replica`).
//!
//! Queries read from `dashboard.database_url` (a streaming replica) when it is set; what an
//! admin changes, and the stored tokens and links every request is checked against, go to
//! `database.url`.
//!
//! Every other request needs `Authorization: Bearer <token>` with one of
//! `dashboard.api_tokens`; anything else gets HTTP 401 with an empty body. A request is
//! authorized by the token it proves, never by what it says it is: browsers cannot set headers
//! on a WebSocket, so the one route that may defer the check is `GET /query`, whose handler
//! does nothing but a WebSocket handshake, and that socket must then send the token as
//! `{"authorization": "Bearer <token>"}` in its `connection_init` payload, or is closed.
//!
//! Architecture Invariant: the dashboard never touches Kafka, and writes to PostgreSQL only what
//! an admin token changes (sites, goals; a deleted site's rows); it never counts visits, and
//! knows the tables only through the `analytics` model and the column names of `visits`.

pub mod access;
mod attempts;
mod body;
mod cancel;
mod departure;
pub mod engine;
mod events;
pub mod export;
pub mod funnel;
pub mod goals;
mod identity;
pub mod links;
mod pages;
mod replica;
pub mod schema;
mod share;
pub mod sites;
pub mod stats;
mod tokens;
mod ui;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use async_graphql::{Data, ErrorExtensions};
use async_graphql_actix_web::{GraphQLResponse, GraphQLSubscription};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use settings::{ExposeSecret, Settings};
use tokio_util::sync::CancellationToken;

use crate::access::Role;
use crate::identity::{bearer, bearer_header, Identity, Tokens};
use crate::schema::{Reader, StatsSchema};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("dashboard.api_tokens: no token is set, so nobody could read the stats (set APP__DASHBOARD__API_TOKENS, or run `make up`, which generates one)")]
    NoToken,
    #[error("cannot connect to the database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: DbErr,
    },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics`, on `dashboard.metrics_host:metrics_port`.
    metrics: Server,
    metrics_port: u16,
    /// Cancelled when the server starts to stop: subscriptions end then.
    stopping: CancellationToken,
}

impl Application {
    /// Connects to the database and binds `dashboard.host:dashboard.port`.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let address = settings.dashboard.address();
        let listener =
            TcpListener::bind(&address).map_err(|source| StartError::Bind { address, source })?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartError> {
        if settings.dashboard.api_tokens.is_empty() {
            return Err(StartError::NoToken);
        }
        let databases = Databases::connect(&settings).await?;
        let db = databases.reads.clone();
        // Tokens and links are checked where they are revoked: a revocation ends them at once.
        let tokens = Tokens::new(&settings.dashboard, databases.writes.clone());
        let address = settings.dashboard.address();
        let bind_err = |source| StartError::Bind {
            address: address.clone(),
            source,
        };
        let port = listener.local_addr().map_err(bind_err)?.port();
        let schema = schema::build(Reader {
            db: db.clone(),
            primary: databases.writes.clone(),
            analytics: settings.analytics.clone(),
            limits: settings.dashboard.clone(),
        });
        let limits = settings.dashboard.clone();
        let stopping = CancellationToken::new();
        let wrong = web::Data::new(attempts::WrongTokens::new(
            settings.dashboard.wrong_tokens_per_minute.get(),
        ));
        let attempts = web::Data::new(share::PasswordAttempts::new(
            settings.dashboard.share_password_attempts_per_minute.get(),
        ));
        let ends = stopping.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(require_token))
                .wrap(tracing_actix_web::TracingLogger::default())
                .app_data(web::Data::new(schema.clone()))
                .app_data(web::Data::new(tokens.clone()))
                .app_data(web::Data::new(databases.clone()))
                .app_data(web::Data::new(body::BodyLimits::of(&limits)))
                .app_data(web::Data::new(limits.clone()))
                .app_data(web::Data::new(ends.clone()))
                .app_data(wrong.clone())
                .app_data(attempts.clone())
                // A password, nothing more.
                .app_data(web::JsonConfig::default().limit(4096))
                .route("/query", web::post().to(graphql))
                .route("/query", web::get().to(subscription))
                .route("/export.csv", web::get().to(export_csv))
                .route("/", web::get().to(ui::page))
                .route("/app.js", web::get().to(ui::script))
                .route("/app.css", web::get().to(ui::style))
                .route("/manage.js", web::get().to(ui::manage_script))
                .route("/share/{id}", web::get().to(share::page))
                .route("/share/{id}/unlock", web::post().to(share::unlock))
                .route("/share/{id}/query", web::post().to(graphql))
                .route("/share/{id}/query", web::get().to(subscription))
                .route("/share/{id}/export.csv", web::get().to(export_csv))
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                )
                // Load balancers probe with HEAD too.
                .route("/healthz", web::head().to(HttpResponse::Ok))
                .route("/readyz", web::get().to(ready))
                .route("/readyz", web::head().to(ready))
        })
        .on_connect(departure::remember)
        // A large answer's last partial segment must not wait for the client's delayed ACK.
        .tcp_nodelay(true)
        .listen(listener)
        .map_err(bind_err)?
        .shutdown_timeout(settings.dashboard.shutdown_timeout().as_secs().max(1))
        .disable_signals()
        .run();
        let (metrics, metrics_port) = metrics_server(&settings.dashboard, db)?;
        Ok(Application {
            port,
            server,
            metrics,
            metrics_port,
            stopping,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let metrics_handle = self.metrics.handle();
        let mut server = tokio::spawn(self.server);
        let mut metrics = tokio::spawn(self.metrics);
        let result = tokio::select! {
            joined = &mut server => joined,
            joined = &mut metrics => match joined {
                Ok(Ok(())) => Ok(Err(std::io::Error::other("the metrics server stopped"))),
                other => other,
            },
            () = shutdown => {
                self.stopping.cancel();
                handle.stop(true).await;
                server.await
            }
        };
        metrics_handle.stop(false).await;
        result.map_err(std::io::Error::other)?
    }
}

/// The `/metrics` server: the read database's lag, measured at each scrape.
fn metrics_server(
    dashboard: &settings::DashboardSettings,
    reads: DatabaseConnection,
) -> Result<(Server, u16), StartError> {
    let address = format!("{}:{}", dashboard.metrics_host, dashboard.metrics_port);
    let bind_err = |source| StartError::Bind {
        address: address.clone(),
        source,
    };
    let listener = TcpListener::bind(&address).map_err(bind_err)?;
    let port = listener.local_addr().map_err(bind_err)?.port();
    let reads = web::Data::new(reads);
    let server = HttpServer::new(move || {
        App::new().app_data(reads.clone()).route(
            "/metrics",
            web::get().to(|reads: web::Data<DatabaseConnection>| async move {
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4")
                    .body(replica::render(&reads).await)
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_err)?
    .run();
    Ok((server, port))
}

/// The dashboard's connections: where it reads (a replica, if `dashboard.database_url` names
/// one) and where it writes (`database.url`); the same pool when there is no replica.
#[derive(Clone)]
pub(crate) struct Databases {
    pub(crate) reads: DatabaseConnection,
    pub(crate) writes: DatabaseConnection,
}

impl Databases {
    async fn connect(settings: &Settings) -> Result<Databases, StartError> {
        let writes = connect(
            settings,
            settings.database.url.expose_secret(),
            settings.database.redacted_url(),
        )
        .await?;
        if !settings.dashboard.reads_elsewhere() {
            return Ok(Databases {
                reads: writes.clone(),
                writes,
            });
        }
        let reads = connect(
            settings,
            settings.dashboard.database_url.expose_secret(),
            settings.dashboard.redacted_database_url(),
        )
        .await?;
        Ok(Databases { reads, writes })
    }
}

async fn connect(
    settings: &Settings,
    url: &str,
    redacted: String,
) -> Result<DatabaseConnection, StartError> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.database.max_connections.get())
        .connect_timeout(settings.database.connect_timeout())
        .acquire_timeout(settings.database.connect_timeout())
        .statement_timeout(settings.dashboard.statement_timeout())
        // A statement whose dashboard died (SIGKILL, a lost network) is stopped within a
        // second instead of running on: PostgreSQL checks that the client is still there.
        .map_sqlx_postgres_opts(|o| o.options([("client_connection_check_interval", "1000")]))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .map_err(|source| StartError::Database {
            url: redacted,
            source,
        })
}

/// `dashboard`: serve until SIGTERM/SIGINT.
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let app = Application::build(settings)
        .await
        .map_err(|e| anyhow::Error::new(e).context("starting the dashboard"))?;
    tracing::info!(
        port = app.port(),
        "dashboard started; Stats API at POST /query"
    );
    app.run_until(shutdown)
        .await
        .map_err(|e| anyhow::Error::new(e).context("serving"))
}

/// The health checks, and the dashboard page itself (it asks for the token, then sends it);
/// a shared link's page and `unlock`, which check the link themselves.
fn is_open(req: &ServiceRequest) -> bool {
    matches!(
        req.path(),
        "/healthz" | "/readyz" | "/" | "/app.js" | "/manage.js" | "/app.css"
    ) || share::is_open(req.path())
}

/// The subscription route, whose handler only ever completes a WebSocket handshake (anything
/// else is refused there with 400, nothing run): it may leave the token to `connection_init`.
/// What the request's headers claim decides nothing else.
fn defers_to_connection_init(req: &ServiceRequest) -> bool {
    req.method() == actix_web::http::Method::GET && req.path() == "/query"
}

/// Every route but the health checks and the page needs a valid token; the subscription's
/// handshake proves it in `connection_init` instead.
async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if is_open(&req) || defers_to_connection_init(&req) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let (Some(tokens), Some(wrong)) = (
        req.app_data::<web::Data<Tokens>>().cloned(),
        req.app_data::<web::Data<attempts::WrongTokens>>().cloned(),
    ) else {
        return Ok(req
            .into_response(HttpResponse::InternalServerError().finish())
            .map_into_right_body());
    };
    let peer = req.peer_addr().map(|a| a.ip());
    // Over its budget of wrong tokens, an address is refused before any token is compared.
    if !wrong.allows(peer) {
        let refusal = HttpResponse::TooManyRequests()
            .insert_header((
                header::RETRY_AFTER,
                wrong.retry_after().as_secs().to_string(),
            ))
            .body("too many wrong tokens from this address (dashboard.wrong_tokens_per_minute)\n");
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    let identity = match share::data_route(req.path()) {
        // A shared link's data routes: the link's role, never a token's.
        Some(id) => {
            let Some(db) = req
                .app_data::<web::Data<Databases>>()
                .map(|d| d.writes.clone())
            else {
                return Ok(req
                    .into_response(HttpResponse::InternalServerError().finish())
                    .map_into_right_body());
            };
            match share::identify(&db, &tokens, id, req.headers()).await {
                share::Through::Open(identity) => Some(identity),
                share::Through::Locked => None,
                share::Through::Unknown => {
                    wrong.wrong(peer);
                    None
                }
            }
        }
        None => {
            let found = tokens.identify(bearer_header(req.headers())).await;
            // A missing header guesses nothing; any other refused one counts.
            if found.is_none() && req.headers().contains_key(header::AUTHORIZATION) {
                wrong.wrong(peer);
            }
            found
        }
    };
    let Some(identity) = identity else {
        return Ok(req.into_response(unauthorized()).map_into_right_body());
    };
    req.extensions_mut().insert(identity);
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// A query runs with the role of its token (the middleware let only valid tokens through).
/// The body is read within its limits first; then it must be one GraphQL request as JSON.
async fn graphql(
    schema: web::Data<StatsSchema>,
    wrong: web::Data<attempts::WrongTokens>,
    limits: web::Data<body::BodyLimits>,
    dashboard: web::Data<settings::DashboardSettings>,
    databases: web::Data<Databases>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(Identity { role, slots }) = identity_of(&req) else {
        // The middleware lets no such request through; refuse rather than assume.
        return HttpResponse::Unauthorized().finish();
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let bytes = match body::read(payload, declared, &limits).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused.response(),
    };
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(e) => {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body(format!("the body is not a GraphQL request: {e}\n"))
        }
    };
    if matches!(role, Role::Shared(_)) && !share::only_queries(&request) {
        return HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("a shared link reads; it changes nothing\n");
    }
    // The slot is taken once the body is in: a client slow to send it holds no slot.
    let answer = match tokio::time::timeout(dashboard.query_queue(), slots.acquire_owned()).await {
        Ok(Ok(_slot)) => {
            let work = schema.execute(request.data(role));
            match cancel::bounded(&databases.reads, dashboard.request_timeout(), &req, work).await {
                Ok(answer) => answer,
                Err(cancel::Unfinished::PastDeadline) => request_timeout(),
                // Nobody reads this answer.
                Err(cancel::Unfinished::ClientLeft) => return HttpResponse::NoContent().finish(),
            }
        }
        _ => refusal(
            "TOO_MANY_QUERIES",
            "this token has dashboard.max_queries_per_token queries running and none ended within dashboard.query_queue_ms; try again",
        ),
    };
    // A site this token may not read: the same 401 a wrong token gets, nothing else said.
    if answer.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == async_graphql::Value::from(access::NOT_YOURS))
    }) {
        wrong.wrong(req.peer_addr().map(|a| a.ip()));
        return unauthorized();
    }
    actix_web::Responder::respond_to(GraphQLResponse::from(answer), &req).map_into_boxed_body()
}

/// What the middleware found the request's token to be.
fn identity_of(req: &HttpRequest) -> Option<Identity> {
    req.extensions().get::<Identity>().cloned()
}

/// The refusal of a request without a valid token: 401, an empty body.
fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .finish()
}

/// A whole answer refused with a named error.
fn refusal(code: &'static str, message: &str) -> async_graphql::Response {
    let error = async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code));
    async_graphql::Response::from_errors(vec![error.into_server_error(Default::default())])
}

const REQUEST_TIMEOUT: &str = "the request took longer than dashboard.request_timeout_ms and was stopped; ask for fewer stats at once, fewer days, dimensions or filters";

fn request_timeout() -> async_graphql::Response {
    refusal("REQUEST_TIMEOUT", REQUEST_TIMEOUT)
}

/// The client's frames, ended at `deadline` unless `initialized` is set by then: a socket that
/// has not had its `connection_init` accepted in time is closed, whatever else it sends.
fn initialized_by(
    payload: web::Payload,
    deadline: tokio::time::Instant,
    initialized: Arc<std::sync::atomic::AtomicBool>,
) -> impl futures::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> {
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    futures::stream::unfold(payload, move |mut payload| {
        let initialized = Arc::clone(&initialized);
        async move {
            let next = match initialized.load(Ordering::Acquire) {
                true => payload.next().await,
                false => tokio::time::timeout_at(deadline, payload.next())
                    .await
                    .ok()?,
            };
            // Past the deadline without an accepted init: end the stream, closing the socket.
            if !initialized.load(Ordering::Acquire) && tokio::time::Instant::now() >= deadline {
                return None;
            }
            next.map(|frame| (frame, payload))
        }
    })
}

/// Whether a WebSocket handshake comes from the dashboard's own page: browsers send the page's
/// `Origin`, which must name this host (or be listed); other clients send none.
fn same_origin(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

async fn subscription(
    schema: web::Data<StatsSchema>,
    tokens: web::Data<Tokens>,
    wrong: web::Data<attempts::WrongTokens>,
    limits: web::Data<settings::DashboardSettings>,
    stopping: web::Data<CancellationToken>,
    req: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    use futures::StreamExt;
    if !same_origin(&req, &limits.ws_allowed_origins) {
        return Ok(HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("a WebSocket is accepted from the dashboard's own origin or dashboard.ws_allowed_origins\n"));
    }
    let wait = limits.ws_init_timeout();
    let initialized = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The socket closes when its frames end: at the init deadline, or when the server stops.
    let payload = initialized_by(
        payload,
        tokio::time::Instant::now() + wait,
        Arc::clone(&initialized),
    )
    .take_until(stopping.get_ref().clone().cancelled_owned());
    // Proven by a shared link's cookie (the middleware found it), or the header's token, or
    // else by the one in `connection_init`.
    let by_header = match identity_of(&req) {
        Some(identity) => Some(identity),
        None => tokens.identify(bearer_header(req.headers())).await,
    };
    let tokens = tokens.get_ref().clone();
    let most = limits.max_subscriptions_per_socket.get();
    let peer = req.peer_addr().map(|a| a.ip());
    GraphQLSubscription::new(schema.get_ref().clone())
        .on_connection_init(move |init| async move {
            let given = init
                .get("authorization")
                .or_else(|| init.get("Authorization"))
                .and_then(|v| v.as_str())
                .and_then(bearer);
            if by_header.is_none() && !wrong.allows(peer) {
                return Err(async_graphql::Error::new(
                    "too many wrong tokens from this address (dashboard.wrong_tokens_per_minute)",
                ));
            }
            let identity = match by_header {
                Some(identity) => Some(identity),
                None => tokens.identify(given).await,
            };
            let Some(identity) = identity else {
                wrong.wrong(peer);
                return Err(async_graphql::Error::new("unauthorized"));
            };
            initialized.store(true, std::sync::atomic::Ordering::Release);
            let mut data = Data::default();
            data.insert(schema::SocketSubscriptions::new(most));
            data.insert(identity.role);
            Ok(data)
        })
        .start(&req, payload)
}

async fn export_csv(
    reader: web::Data<StatsSchema>,
    databases: web::Data<Databases>,
    dashboard: web::Data<settings::DashboardSettings>,
    params: web::Query<Vec<(String, String)>>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(identity) = identity_of(&req) else {
        return unauthorized();
    };
    let work = export(reader, params, identity.role);
    match cancel::bounded(&databases.reads, dashboard.request_timeout(), &req, work).await {
        Ok(answer) => answer,
        Err(cancel::Unfinished::ClientLeft) => HttpResponse::NoContent().finish(),
        Err(cancel::Unfinished::PastDeadline) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{REQUEST_TIMEOUT}\n")),
    }
}

async fn export(
    reader: web::Data<StatsSchema>,
    params: web::Query<Vec<(String, String)>>,
    role: Role,
) -> HttpResponse {
    let refuse = |message: String| {
        HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{message}\n"))
    };
    let Some(reader) = reader.data::<Reader>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let query = match export::query_of(&params) {
        Ok(q) => q,
        Err(e) => return refuse(e.to_string()),
    };
    if !role.may_read(&query.site.trim().to_ascii_lowercase()) {
        return unauthorized();
    }
    let checked = match reader.check(&query, &role).await {
        Ok(c) => c,
        Err(e) => return refuse(e.message),
    };
    let answer = match reader.run(&checked, None).await {
        Ok(a) => a,
        Err(e) => return HttpResponse::ServiceUnavailable().body(e.message),
    };
    let header: Vec<String> = checked
        .time
        .iter()
        .chain(checked.dimensions.iter())
        .map(|d| d.name().to_owned())
        .chain(checked.metrics.iter().map(|m| m.name().to_owned()))
        .collect();
    let rows: Vec<Vec<String>> = answer
        .results
        .iter()
        .map(|row| {
            row.dimensions
                .iter()
                .map(|d| d.clone().unwrap_or_default())
                .chain(row.metrics.iter().map(f64::to_string))
                .collect()
        })
        .collect();
    let name: String = format!("{}-{}-{}", checked.site, checked.from, checked.to)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.csv\""),
        ))
        .body(export::csv(&header, &rows))
}

/// Ready while the database answers within `READY_WITHIN`: a probe must hear "not ready"
/// sooner than the pool's connect timeout would say it.
async fn ready(databases: web::Data<Databases>) -> HttpResponse {
    const READY_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);
    let reads = databases.reads.execute_unprepared("SELECT 1");
    match tokio::time::timeout(READY_WITHIN, reads).await {
        Ok(Ok(_)) => HttpResponse::Ok().body("ready"),
        _ => HttpResponse::ServiceUnavailable().body("the database does not answer"),
    }
}
