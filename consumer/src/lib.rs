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

mod anchor;
pub mod arena;
pub mod leases;
pub mod metrics;
pub mod months;
pub mod partition;
pub mod rebuild;
pub mod row;
pub mod sites;
pub mod store;
pub mod texts;
pub mod visits;
pub mod written;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context as _;
use migration::MigratorTrait;
use rskafka::client::Client;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, TransactionTrait,
};
use settings::{ExposeSecret, Settings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
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
    #[error("cannot rebuild the visits and rollups for this version's analytics model: {0}")]
    Rebuild(#[source] DbErr),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] DbErr),
    #[error(transparent)]
    Kafka(#[from] event::kafka::KafkaError),
    #[error("cannot load the user-agent rules: {0}")]
    Agents(String),
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
    /// User-agent parsing, cached across partitions.
    pub agents: enrich::agent::AgentParser,
    /// The months of `raw_events` known to have their partition.
    pub months: months::Months,
    /// The ids of repeated texts known to be stored.
    pub texts: texts::Texts,
}

pub struct Consumer {
    ctx: Arc<Context>,
    metrics_listener: TcpListener,
    metrics_port: u16,
}

impl Consumer {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        settings::telemetry::init();
        let db = connect(&settings).await?;
        let rebuilt = rebuild::rebuild_if_model_changed(&db, &settings.analytics)
            .await
            .map_err(StartError::Rebuild)?;
        if let Some(done) = rebuilt {
            tracing::info!(
                events = done.events,
                visits = done.visits,
                "the analytics model changed since the rollups were built: rebuilt them"
            );
        }

        // Compiled before the first fetch, so broken rules stop the start, not a batch.
        let agents = enrich::agent::AgentParser::new().map_err(StartError::Agents)?;
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
                agents,
                months: months::Months::default(),
                texts: texts::Texts::default(),
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
    /// releases the partitions and returns. Returns an error, after the same clean-up, when a
    /// task the consumer depends on (the coordinator, the metrics server) ends by itself.
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
        let mut server = tokio::spawn(server);

        let stop = CancellationToken::new();
        let mut recounter = tokio::spawn(recount_sites(Arc::clone(&ctx), stop.child_token()));
        let mut keeper = tokio::spawn(keep_months(Arc::clone(&ctx), stop.child_token()));
        let mut coordinator = tokio::spawn(Coordinator::new(ctx, stop.child_token()).run());
        let outcome = tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down: finishing the batches in flight");
                Ok(())
            }
            ended = &mut coordinator => Err(died("the partition coordinator", ended.err())),
            ended = &mut server => Err(died("the metrics server", ended.err())),
            ended = &mut recounter => Err(died("the site recounter", ended.err())),
            ended = &mut keeper => Err(died("the month keeper", ended.err())),
        };
        stop.cancel();
        if !keeper.is_finished() {
            let _ = keeper.await;
        }
        if !recounter.is_finished() {
            let _ = recounter.await;
        }
        if !coordinator.is_finished() {
            if let Err(e) = coordinator.await {
                tracing::error!(error = %e, "the coordinator failed while stopping");
            }
        }
        server_handle.stop(true).await;
        if !server.is_finished() {
            let _ = server.await;
        }
        tracing::info!("consumer stopped");
        outcome
    }
}

/// Counts the past of newly registered sites and of sites whose time zone changed, one at a
/// time, beside the partition workers (`rebuild::recount_next`), until stopped. A recount that
/// is stopped midway rolls back and is done again.
async fn recount_sites(ctx: Arc<Context>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.settings.consumer.lease_renew());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        loop {
            let counted = tokio::select! {
                () = stop.cancelled() => return,
                counted = rebuild::recount_next(&ctx.db, &ctx.settings.analytics) => counted,
            };
            match counted {
                Ok(Some(done)) => {
                    tracing::info!(site = %done.site, events = done.events, "counted a site's stored events")
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot count a site's stored events; retrying");
                    break;
                }
            }
        }
    }
}

/// How often the months of `raw_events` are looked after.
const MONTHS_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Creates this month's and the next month's partitions ahead of their events and, with
/// `analytics.raw_retention_months`, drops the months older than that: at start, then hourly.
async fn keep_months(ctx: Arc<Context>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(MONTHS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now();
        let this = months::month_of(now);
        let ahead = [
            this,
            this.checked_add_months(chrono::Months::new(1))
                .unwrap_or(this),
        ];
        if let Err(e) = ctx.months.ensure(&ctx.db, ahead).await {
            tracing::warn!(error = %e, "cannot create the coming months' partitions; retrying later");
        }
        let keep = ctx.settings.analytics.raw_retention_months;
        let Some(from) = months::kept_from(now.date_naive(), keep) else {
            continue;
        };
        match months::drop_before(&ctx.db, &ctx.months, from).await {
            Ok(dropped) if !dropped.is_empty() => {
                tracing::info!(?dropped, kept_from = %from, "dropped raw events past analytics.raw_retention_months")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot drop old months of raw events; retrying later")
            }
        }
    }
}

/// The error for a task that ended although nothing asked it to.
fn died(task: &str, error: Option<tokio::task::JoinError>) -> std::io::Error {
    let why = error.map_or_else(|| "it returned".to_owned(), |e| e.to_string());
    tracing::error!(task, why = %why, "a task the consumer depends on ended; stopping");
    std::io::Error::other(format!("{task} ended unexpectedly ({why})"))
}

/// Applies pending migrations, one consumer at a time: several starting at once on an empty
/// database would otherwise race to create the same tables. The transaction-scoped advisory
/// lock is released by the commit (or by the connection dying).
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    /// Any constant works; this one is "pageview" in ASCII.
    const MIGRATION_LOCK: i64 = 0x7061_6765_7669_6577;
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await?;
    migration::Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// Builds the consumer and consumes until `shutdown` resolves (what the binary runs).
/// Connects to the database and, when `consumer.auto_migrate`, applies pending migrations.
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, StartError> {
    let mut options = ConnectOptions::new(settings.database.url.expose_secret());
    options
        .max_connections(settings.database.max_connections.get())
        .connect_timeout(settings.database.connect_timeout())
        .acquire_timeout(settings.database.connect_timeout())
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|source| StartError::Database {
            url: settings.database.redacted_url(),
            source,
        })?;
    if settings.consumer.auto_migrate {
        migrate(&db).await.map_err(StartError::Migrate)?;
    }
    Ok(db)
}

/// `consumer rebuild [--verify]`: recomputes visits and rollups from the stored events.
pub async fn rebuild_command(settings: Settings, mode: rebuild::Mode) -> anyhow::Result<()> {
    let db = connect(&settings).await.context("starting the rebuild")?;
    let started = Instant::now();
    let done = rebuild::rebuild(&db, &settings.analytics, mode)
        .await
        .context("rebuilding visits and rollups")?;
    println!(
        "{} {} events into {} visits in {:.1}s; the rollups {}",
        match mode {
            rebuild::Mode::Replace => "rebuilt",
            rebuild::Mode::Verify => "replayed (rolled back)",
        },
        done.events,
        done.visits,
        started.elapsed().as_secs_f64(),
        if done.differed {
            "DIFFERED from the stored ones"
        } else {
            "equal the stored ones"
        }
    );
    if mode == rebuild::Mode::Verify && done.differed {
        anyhow::bail!("the stored rollups differ from a recomputation");
    }
    Ok(())
}

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

/// A partition worker and the token that stops it.
struct Running {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl Running {
    /// Lets the worker finish its batch; aborting rolls an unfinished transaction back.
    async fn stop(self) {
        self.stop.cancel();
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
/// worker per owned partition, until its token is cancelled.
struct Coordinator {
    ctx: Arc<Context>,
    leases: Leases,
    stop: CancellationToken,
    partitions: BTreeSet<PartitionKey>,
    running: BTreeMap<PartitionKey, Running>,
    next_refresh: Instant,
    next_lag_log: Instant,
    last_renewal: Instant,
}

impl Coordinator {
    fn new(ctx: Arc<Context>, stop: CancellationToken) -> Self {
        let settings = &ctx.settings.consumer;
        Coordinator {
            leases: Leases::new(ctx.db.clone(), ctx.owner, settings.lease_ttl()),
            next_lag_log: Instant::now() + settings.lag_log_interval(),
            ctx,
            stop,
            partitions: BTreeSet::new(),
            running: BTreeMap::new(),
            next_refresh: Instant::now(),
            last_renewal: Instant::now(),
        }
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.ctx.settings.consumer.lease_renew());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.refresh().await;
            self.reap();
            self.rebalance().await;
            self.log_lag();
        }
        self.stop_all().await;
        if let Err(e) = self.leases.leave().await {
            tracing::warn!(error = %e, "cannot release the partitions; they are taken over when the leases expire");
        }
    }

    /// Re-reads the topics' partitions when due.
    async fn refresh(&mut self) {
        if Instant::now() < self.next_refresh {
            return;
        }
        let settings = &self.ctx.settings.consumer;
        let retry_soon = Instant::now() + Duration::from_secs(1);
        match list_partitions(&self.ctx).await {
            Ok((found, all_present)) => {
                if found != self.partitions {
                    tracing::info!(
                        partitions = found.len(),
                        "partitions of the configured topics"
                    );
                }
                self.partitions = found;
                // A topic that does not exist yet (the producer creates it) is looked for
                // again soon, not after the full refresh interval.
                self.next_refresh = if all_present {
                    Instant::now() + settings.partition_refresh()
                } else {
                    retry_soon
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the topics' partitions; retrying");
                self.next_refresh = retry_soon;
            }
        }
    }

    /// Forgets workers that ended by themselves (their offset moved under them); `rebalance`
    /// starts them again if the partition is still ours.
    fn reap(&mut self) {
        self.running.retain(|_, r| !r.handle.is_finished());
    }

    async fn rebalance(&mut self) {
        match self.balance().await {
            Ok(()) => self.last_renewal = Instant::now(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew partition leases; retrying");
                let ttl = self.ctx.settings.consumer.lease_ttl();
                if self.last_renewal.elapsed() > ttl && !self.running.is_empty() {
                    // Our leases have expired: others may own these partitions now.
                    tracing::warn!(
                        "leases expired; stopping all partitions until the database answers"
                    );
                    self.stop_all().await;
                    // Lag matters most now: it stays on show, marked as waiting.
                    self.ctx.metrics.unreachable();
                }
            }
        }
    }

    /// One round of membership and partition balancing.
    async fn balance(&mut self) -> Result<(), DbErr> {
        let live = self.leases.heartbeat().await?;
        let mut owned = self.leases.renew().await?;
        self.stop_lost(&owned).await;
        owned.retain(|k| self.partitions.contains(k));
        let share = self.partitions.len().div_ceil(live);
        self.give_back_extra(&mut owned, share, live).await?;
        self.claim_share(&mut owned, share).await?;
        for key in owned {
            self.start_worker(key);
        }
        self.ctx
            .metrics
            .keep_only(|key| self.running.contains_key(key));
        Ok(())
    }

    /// Stops the workers of partitions whose lease we lost or that the broker no longer lists.
    async fn stop_lost(&mut self, owned: &BTreeSet<PartitionKey>) {
        let lost: Vec<PartitionKey> = self
            .running
            .keys()
            .filter(|k| !owned.contains(*k) || !self.partitions.contains(*k))
            .cloned()
            .collect();
        for key in lost {
            if let Some(r) = self.running.remove(&key) {
                tracing::info!(topic = %key.0, partition = key.1, "partition no longer ours");
                r.stop().await;
            }
        }
    }

    /// Over our share (another consumer joined): hands the extra partitions back.
    async fn give_back_extra(
        &mut self,
        owned: &mut BTreeSet<PartitionKey>,
        share: usize,
        live: usize,
    ) -> Result<(), DbErr> {
        while owned.len() > share {
            let Some(key) = owned.pop_last() else { break };
            if let Some(r) = self.running.remove(&key) {
                r.stop().await;
            }
            self.leases.release(&key.0, key.1).await?;
            tracing::info!(topic = %key.0, partition = key.1, live, "released partition for another consumer");
        }
        Ok(())
    }

    /// Under our share: claims free or expired partitions.
    async fn claim_share(
        &mut self,
        owned: &mut BTreeSet<PartitionKey>,
        share: usize,
    ) -> Result<(), DbErr> {
        for key in &self.partitions {
            if owned.len() >= share {
                break;
            }
            if !owned.contains(key) && self.leases.try_claim(&key.0, key.1).await? {
                owned.insert(key.clone());
            }
        }
        Ok(())
    }

    fn start_worker(&mut self, key: PartitionKey) {
        let ctx = &self.ctx;
        let stop = &self.stop;
        self.running.entry(key).or_insert_with_key(|key| {
            let token = stop.child_token();
            let worker = Worker::new(Arc::clone(ctx), key.0.clone(), key.1, token.clone());
            Running {
                stop: token,
                handle: tokio::spawn(worker.run()),
            }
        });
    }

    async fn stop_all(&mut self) {
        for (_, r) in std::mem::take(&mut self.running) {
            r.stop().await;
        }
    }

    fn log_lag(&mut self) {
        if Instant::now() < self.next_lag_log {
            return;
        }
        self.next_lag_log = Instant::now() + self.ctx.settings.consumer.lag_log_interval();
        for ((topic, partition), state) in self.ctx.metrics.partitions() {
            tracing::info!(topic = %topic, partition, next_offset = state.next_offset, high_watermark = state.high_watermark, lag = state.lag(), "lag");
        }
    }
}
