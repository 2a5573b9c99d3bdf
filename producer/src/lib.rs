//! The GraphQL ingest API: websites POST page views, which are validated, stamped with a UUIDv7,
//! the receive time and the visit (a cookieless visitor id; the country, region and city of the
//! client address, looked up in `geo`), and produced to Kafka with rskafka. A mutation answers success only
//! once the broker acknowledged the event, with its partition and offset.
//!
//! `Application::build(settings)` binds the listener (port 0 in tests) and connects to Kafka;
//! `run_until(shutdown)` serves until the shutdown future resolves, then stops accepting,
//! finishes in-flight requests and flushes the batch producers.
//!
//! Architecture Invariant: the producer knows nothing of PostgreSQL; Kafka is its only output.

mod answers;
mod breaker;
mod budget;
pub mod error;
pub mod geo;
mod ingest;

mod query_cache;
mod routes;
pub mod salts;
pub mod schema;
pub mod sink;
mod span;
pub mod tracker;
pub mod visitor;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use settings::Settings;

use crate::geo::{GeoIp, GeoIpError};
pub use crate::schema::Clock;
use crate::schema::{build_schema, Ingest};
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
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
}

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics`, apart from the public port.
    metrics: Server,
    metrics_port: u16,
    sink: Arc<EventSink>,
    geo: Arc<GeoIp>,
    /// Receive times and the salts' days.
    clock: Clock,
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
        let geo = Arc::new(GeoIp::open(&settings.analytics.geoip_database)?);
        let sink =
            Arc::new(EventSink::connect(&settings.kafka, settings.server.max_in_flight).await?);
        let schema = build_schema(
            Ingest {
                sink: Arc::clone(&sink),
                max_batch_size: settings.server.max_batch_size.get(),
                clock: clock.clone(),
            },
            &settings.server,
        );
        let server = routes::http_server(
            &settings,
            listener,
            schema,
            Arc::clone(&sink),
            Arc::clone(&geo),
        )
        .map_err(bind_err)?;
        let address = format!(
            "{}:{}",
            settings.server.metrics_host, settings.server.metrics_port
        );
        let (metrics, metrics_port) =
            metrics_server(&address).map_err(|source| StartError::Bind { address, source })?;
        Ok(Application {
            port,
            server,
            metrics,
            metrics_port,
            sink,
            geo,
            clock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where `/metrics` is served.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: no acknowledged event is lost.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let metrics_handle = self.metrics.handle();
        let mut server = tokio::spawn(self.server);
        let mut metrics = tokio::spawn(self.metrics);
        let salts = tokio::spawn(maintain_salts(Arc::clone(&self.sink), self.clock.clone()));
        let geo = tokio::spawn(reload_geoip(Arc::clone(&self.geo)));
        let result = tokio::select! {
            joined = &mut server => joined,
            joined = &mut metrics => {
                tracing::error!("the metrics server stopped; stopping");
                handle.stop(true).await;
                server.await.and(joined)
            }
            () = shutdown => {
                tracing::info!("shutting down: no new connections, finishing in-flight requests");
                handle.stop(true).await;
                server.await
            }
        };
        metrics_handle.stop(false).await;
        salts.abort();
        geo.abort();
        self.sink.flush().await;
        tracing::info!("producer stopped");
        result.map_err(std::io::Error::other)?
    }
}

/// Binds `address` and serves `/metrics` there.
fn metrics_server(address: &str) -> std::io::Result<(Server, u16)> {
    let listener = TcpListener::bind(address)?;
    let port = listener.local_addr()?.port();
    Ok((routes::metrics_server(listener)?, port))
}

/// Makes each day's salt and deletes expired ones even when no page view arrives, so that a
/// salt never outlives its 48 hours for want of traffic.
/// Days are the clock's, the same one receive times come from.
async fn maintain_salts(sink: Arc<EventSink>, clock: Clock) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        sink.maintain_salts(clock.now().date_naive()).await;
    }
}

/// Picks up a replaced IP-to-location database; one that does not read keeps the current one.
async fn reload_geoip(geo: Arc<GeoIp>) {
    let mut tick = tokio::time::interval(geo::RELOAD_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let reload = tokio::task::spawn_blocking({
            let geo = Arc::clone(&geo);
            move || geo.reload_if_replaced()
        });
        match reload.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "keeping the IP-to-location database in use"),
            Err(e) => tracing::warn!(error = %e, "the IP database reload stopped"),
        }
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
