//! The consumer: reads the event topics with rskafka and stores every event exactly once in
//! PostgreSQL through SeaORM.
//!
//! rskafka has no consumer groups and no offset commits, and none are needed: each partition's
//! next offset lives in `consumer_offsets`, written in the same transaction as the rows it
//! covers (see `store`). Partitions are shared between consumer processes through leases in the
//! database (see `leases`); each owned partition runs its own poll loop (see `partition`).
//!
//! `Consumer::build(settings)` connects, migrates (when `consumer.auto_migrate`) and binds the
//! metrics listener; `run_until(shutdown)` consumes until the shutdown future resolves, then
//! lets every partition finish or roll back its batch, releases the partitions and returns.
//!
//! Architecture Invariant: the consumer never produces to Kafka and never deletes records there.

pub mod leases;
pub mod metrics;
pub mod partition;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use migration::MigratorTrait;
use rskafka::client::Client;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use settings::Settings;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::leases::{Leases, PartitionKey};
use crate::metrics::Metrics;
use crate::partition::Worker;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: DbErr,
    },
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] DbErr),
    #[error(transparent)]
    Kafka(#[from] event::kafka::KafkaError),
    #[error("cannot listen on {address} for metrics: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// What every partition worker shares.
pub struct Context {
    pub settings: Settings,
    pub db: DatabaseConnection,
    /// For metadata only; each partition worker has a client (a connection) of its own.
    pub kafka: Client,
    pub metrics: Metrics,
    pub owner: Uuid,
}

pub struct Consumer {
    ctx: Arc<Context>,
    metrics_listener: TcpListener,
    metrics_port: u16,
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Consumer {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let mut options = ConnectOptions::new(settings.database.url.clone());
        options
            .max_connections(settings.database.max_connections)
            .connect_timeout(settings.database.connect_timeout())
            .acquire_timeout(settings.database.connect_timeout())
            .sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .map_err(|source| StartError::Database {
                url: redact(&settings.database.url),
                source,
            })?;
        if settings.consumer.auto_migrate {
            migration::Migrator::up(&db, None)
                .await
                .map_err(StartError::Migrate)?;
        }

        // The poll loops do their own retrying: rskafka's stops at the request timeout.
        let kafka =
            event::kafka::connect_with(&settings.kafka, settings.kafka.request_timeout()).await?;

        let address = format!(
            "{}:{}",
            settings.consumer.metrics_host, settings.consumer.metrics_port
        );
        let bind = |source| StartError::Bind {
            address: address.clone(),
            source,
        };
        let metrics_listener = TcpListener::bind(&address).map_err(bind)?;
        let metrics_port = metrics_listener.local_addr().map_err(bind)?.port();
        Ok(Consumer {
            ctx: Arc::new(Context {
                settings,
                db,
                kafka,
                metrics: Metrics::default(),
                owner: Uuid::now_v7(),
            }),
            metrics_listener,
            metrics_port,
        })
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// This process's id in `consumer_members` and `partition_leases`.
    pub fn owner(&self) -> Uuid {
        self.ctx.owner
    }

    /// Consumes until `shutdown` resolves; then finishes or rolls back the batches in flight,
    /// releases the partitions and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let ctx = Arc::clone(&self.ctx);
        let metrics_ctx = Arc::clone(&ctx);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(Arc::clone(&metrics_ctx)))
                .route("/metrics", web::get().to(render_metrics))
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(self.metrics_listener)?
        .run();
        let server_handle = server.handle();
        let server = tokio::spawn(server);

        let (stop, stopped) = watch::channel(false);
        let coordinator = tokio::spawn(coordinate(Arc::clone(&ctx), stopped));
        shutdown.await;
        tracing::info!("shutting down: finishing the batches in flight");
        let _ = stop.send(true);
        if let Err(e) = coordinator.await {
            tracing::error!(error = %e, "the coordinator failed");
        }
        server_handle.stop(true).await;
        let _ = server.await;
        tracing::info!("consumer stopped");
        Ok(())
    }
}

/// Builds the consumer and consumes until `shutdown` resolves (what the binary runs).
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let consumer = Consumer::build(settings)
        .await
        .map_err(|e| anyhow::Error::new(e).context("starting the consumer"))?;
    tracing::info!(
        metrics_port = consumer.metrics_port(),
        owner = %consumer.owner(),
        "consumer started; metrics at /metrics"
    );
    consumer
        .run_until(shutdown)
        .await
        .map_err(|e| anyhow::Error::new(e).context("consuming"))
}

async fn render_metrics(ctx: web::Data<Context>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(ctx.metrics.render())
}

struct Running {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Running {
    /// Lets the worker finish its batch; aborting rolls an unfinished transaction back.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut handle = self.handle;
        if tokio::time::timeout(Duration::from_secs(15), &mut handle)
            .await
            .is_err()
        {
            handle.abort();
        }
    }
}

/// The partitions of the configured topics, as the broker lists them now.
async fn list_partitions(ctx: &Context) -> anyhow::Result<(BTreeSet<PartitionKey>, bool)> {
    let topics = tokio::time::timeout(
        ctx.settings.kafka.request_timeout(),
        ctx.kafka.list_topics(),
    )
    .await??;
    let wanted: BTreeSet<&str> = ctx
        .settings
        .consumer
        .topics
        .iter()
        .map(String::as_str)
        .collect();
    let mut found = BTreeSet::new();
    let mut seen_topics = BTreeSet::new();
    for topic in topics {
        if wanted.contains(topic.name.as_str()) {
            seen_topics.insert(topic.name.clone());
            for partition in topic.partitions {
                found.insert((topic.name.clone(), partition));
            }
        }
    }
    let all_present = seen_topics.len() == wanted.len();
    Ok((found, all_present))
}

/// Heartbeats, renews leases, balances partitions between the live consumers, and runs one
/// worker per owned partition, until told to stop.
async fn coordinate(ctx: Arc<Context>, mut stopped: watch::Receiver<bool>) {
    let settings = &ctx.settings.consumer;
    let leases = Leases::new(ctx.db.clone(), ctx.owner, settings.lease_ttl());
    let mut partitions: BTreeSet<PartitionKey> = BTreeSet::new();
    let mut next_refresh = Instant::now();
    let mut next_lag_log = Instant::now() + settings.lag_log_interval();
    let mut last_renewal = Instant::now();
    let mut running: BTreeMap<PartitionKey, Running> = BTreeMap::new();
    let mut tick = tokio::time::interval(settings.lease_renew());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }

        if Instant::now() >= next_refresh {
            match list_partitions(&ctx).await {
                Ok((found, all_present)) => {
                    if found != partitions {
                        tracing::info!(
                            partitions = found.len(),
                            "partitions of the configured topics"
                        );
                    }
                    partitions = found;
                    // A topic that does not exist yet (the producer creates it) is looked for
                    // again soon, not after the full refresh interval.
                    next_refresh = Instant::now()
                        + if all_present {
                            settings.partition_refresh()
                        } else {
                            Duration::from_secs(1)
                        };
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the topics' partitions; retrying");
                    next_refresh = Instant::now() + Duration::from_secs(1);
                }
            }
        }

        // Workers that ended by themselves (their offset moved under them) are dropped here and
        // restarted below if the partition is still ours.
        running.retain(|_, r| !r.handle.is_finished());

        match balance(&ctx, &leases, &partitions, &mut running).await {
            Ok(()) => last_renewal = Instant::now(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew partition leases; retrying");
                if last_renewal.elapsed() > settings.lease_ttl() && !running.is_empty() {
                    // Our leases have expired: others may own these partitions now.
                    tracing::warn!(
                        "leases expired; stopping all partitions until the database answers"
                    );
                    for (_, r) in std::mem::take(&mut running) {
                        r.stop().await;
                    }
                }
            }
        }

        if Instant::now() >= next_lag_log {
            next_lag_log = Instant::now() + settings.lag_log_interval();
            for ((topic, partition), state) in ctx.metrics.partitions() {
                tracing::info!(topic = %topic, partition, next_offset = state.next_offset, high_watermark = state.high_watermark, lag = state.lag(), "lag");
            }
        }
    }

    for (_, r) in std::mem::take(&mut running) {
        r.stop().await;
    }
    if let Err(e) = leases.leave().await {
        tracing::warn!(error = %e, "cannot release the partitions; they are taken over when the leases expire");
    }
}

/// One round of membership and partition balancing.
async fn balance(
    ctx: &Arc<Context>,
    leases: &Leases,
    partitions: &BTreeSet<PartitionKey>,
    running: &mut BTreeMap<PartitionKey, Running>,
) -> Result<(), DbErr> {
    let live = leases.heartbeat().await?;
    let mut owned = leases.renew().await?;

    // Lost (expired and maybe taken) or gone from the broker: stop.
    let lost: Vec<PartitionKey> = running
        .keys()
        .filter(|k| !owned.contains(*k) || !partitions.contains(*k))
        .cloned()
        .collect();
    for key in lost {
        if let Some(r) = running.remove(&key) {
            tracing::info!(topic = %key.0, partition = key.1, "partition no longer ours");
            r.stop().await;
        }
    }
    owned.retain(|k| partitions.contains(k));

    let share = partitions.len().div_ceil(live);
    // Over our share (another consumer joined): hand the extra partitions back.
    while owned.len() > share {
        let Some(key) = owned.pop_last() else { break };
        if let Some(r) = running.remove(&key) {
            r.stop().await;
        }
        leases.release(&key.0, key.1).await?;
        tracing::info!(topic = %key.0, partition = key.1, live, "released partition for another consumer");
    }
    // Under our share: claim free or expired partitions.
    for key in partitions {
        if owned.len() >= share {
            break;
        }
        if !owned.contains(key) && leases.try_claim(&key.0, key.1).await? {
            owned.insert(key.clone());
        }
    }
    for key in owned {
        running.entry(key.clone()).or_insert_with(|| {
            let (stop, stopped) = watch::channel(false);
            let worker = Worker {
                ctx: Arc::clone(ctx),
                topic: key.0.clone(),
                partition: key.1,
                stop: stopped,
            };
            Running {
                stop,
                handle: tokio::spawn(worker.run()),
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_do_not_appear_in_messages() {
        assert_eq!(
            redact("postgres://app:secret@db:5432/analytics"),
            "postgres://app:***@db:5432/analytics"
        );
        assert_eq!(redact("postgres://db/analytics"), "postgres://db/analytics");
    }
}
