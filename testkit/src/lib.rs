//! Test harness for the integration tests: the real broker and the real PostgreSQL.
//!
//! `make test` (scripts/test.sh) starts one Apache Kafka node and one PostgreSQL cluster on free
//! ports and passes them in `PAGEVIEWS_TEST_BROKERS` and `PAGEVIEWS_TEST_DATABASE_URL`. Each test
//! then takes its own database ([`fresh_database`]) and its own topics ([`unique_prefix`]), so
//! tests run in parallel without seeing each other's data. Tests that stop or kill a broker or a
//! database get their own processes ([`Broker::start`], [`Cluster::start`], [`Postgres::start`]),
//! started by `scripts/stack.sh`, the same script `make up` uses, through `tokio::process` so
//! that a test's own runtime keeps serving the system under test meanwhile.
//!
//! Architecture Invariant: no mocks. Everything here talks to real processes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use event::{PageFields, PageView};
use migration::MigratorTrait;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::Client;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use settings::{ExposeSecret, SecretString, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The body of the README's curl mutation (the original tutorial's), verbatim.
pub const README_CURL_BODY: &str = r#"{"query":"mutation { register_kafka_event(event: {eventType: \"PAGE_VIEW\", userId: \"some_session_id\", path: \"/test\", search: \"?q=foo\", title: \"Kafka Demo\", url: \"kafka.demo.com\"}) { id eventType } }"}"#;

/// The shared broker's bootstrap address.
pub fn brokers() -> String {
    shared_env("PAGEVIEWS_TEST_BROKERS")
}

/// URL of the shared cluster's `postgres` database (used to create per-test databases).
pub fn admin_database_url() -> String {
    shared_env("PAGEVIEWS_TEST_DATABASE_URL")
}

/// The same database as `database_url`, on the shared cluster's streaming replica
/// (`PAGEVIEWS_TEST_STANDBY_URL`, which `make test` starts), once the replica has replayed it
/// with its tables.
pub async fn on_the_standby(database_url: &str) -> Result<String> {
    let name = database_url.rsplit('/').next().unwrap_or_default();
    let url = replace_database(&shared_env("PAGEVIEWS_TEST_STANDBY_URL"), name);
    poll_until(
        Duration::from_secs(30),
        "the database on the standby",
        || {
            let url = url.clone();
            async move {
                let db = Database::connect(&url).await.ok()?;
                let ready = scalar(&db, "SELECT count(*) FROM sites").await.ok();
                let _ = db.close().await;
                ready.map(|_| ())
            }
        },
    )
    .await?;
    Ok(url)
}

fn shared_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: run the tests with `make test`, which starts the broker and \
             PostgreSQL they need (or export it yourself)"
        ),
    }
}

/// The folder `scripts/stack.sh ensure-geoip` filled (`make test` passes it in
/// `PAGEVIEWS_TEST_GEOIP_DIR`): the real country database and MaxMind's test databases.
pub fn geoip_dir() -> PathBuf {
    PathBuf::from(shared_env("PAGEVIEWS_TEST_GEOIP_DIR"))
}

/// Sends one record exactly as the tutorial's Go producer writes it, with kafka-python (an
/// independent client; `make test` installs it and passes its python in
/// `PAGEVIEWS_TEST_KAFKA_PYTHON`). Returns what the script prints: id, partition, offset and
/// timestamp_ms.
pub async fn produce_as_the_tutorial(
    brokers: &str,
    topic: &str,
    partition: i32,
) -> Result<serde_json::Value> {
    let python = shared_env("PAGEVIEWS_TEST_KAFKA_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tutorial/produce.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args([brokers, topic, &partition.to_string()])
        .stdin(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .context("kafka-python did not finish within 60 s")??;
    anyhow::ensure!(
        out.status.success(),
        "kafka-python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The real, free country database `make up` uses (ip-location-db's flat layout).
pub fn country_database() -> settings::GeoIpDatabase {
    settings::GeoIpDatabase::File(geoip_dir().join("country.mmdb"))
}

/// MaxMind's GeoIP2 City test database: 81.2.69.142 is London (GB-ENG), 89.160.20.112
/// Linköping (SE-E), 216.160.83.56 Milton (US-WA).
pub fn city_test_database() -> settings::GeoIpDatabase {
    settings::GeoIpDatabase::File(geoip_dir().join("test/GeoIP2-City-Test.mmdb"))
}

/// A prefix no other test uses, for topic names: `t<uuid>_`.
pub fn unique_prefix() -> String {
    format!("t{}_", uuid::Uuid::new_v4().simple())
}

/// With `PAGEVIEWS_TEST_LOG` set (a tracing filter such as `debug` or `consumer=debug`), the
/// system's logs go to the tests' output (shown for failing tests, or with `--nocapture`).
pub fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("PAGEVIEWS_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// `host:port,host:port` as a list.
fn bootstrap(brokers: &str) -> Vec<String> {
    brokers.split(',').map(str::to_owned).collect()
}

/// Settings for a test: the checked-in defaults pointed at the given broker and database, on
/// free ports, with short leases so takeovers happen within a test's patience.
pub fn settings(brokers: &str, database_url: &str, topic_prefix: &str) -> Settings {
    init_logging();
    let mut s = Settings::defaults();
    s.server.host = "127.0.0.1".into();
    s.server.port = 0;
    s.kafka.brokers = bootstrap(brokers);
    s.kafka.topic_prefix = topic_prefix.to_owned();
    s.kafka.produce_timeout_ms = ms(3000);
    s.kafka.request_timeout_ms = ms(5000);
    s.database.url = database_url.into();
    s.consumer.topics = s
        .kafka
        .event_types
        .iter()
        .map(|t| s.kafka.topic_for(t))
        .collect();
    s.consumer.metrics_host = "127.0.0.1".into();
    s.consumer.metrics_port = 0;
    // Tests and the benchmark send thousands of events a minute from one address; the rate
    // limit's own test turns it on.
    s.server.rate_limit_events_per_minute = 0;
    // Sites count from their first event, as in development; the registry's tests turn it off.
    s.analytics.register_sites_on_first_event = true;
    s.server.metrics_port = 0;
    s.consumer.lease_ttl_ms = ms(2000);
    s.consumer.lease_renew_ms = ms(250);
    s.consumer.partition_refresh_ms = ms(1000);
    s.dashboard.host = "127.0.0.1".into();
    s.dashboard.port = 0;
    s.dashboard.metrics_host = "127.0.0.1".into();
    s.dashboard.metrics_port = 0;
    s.dashboard.api_tokens = vec![DASHBOARD_TOKEN.into()];
    s.dashboard.admin_tokens = vec![ADMIN_TOKEN.into()];
    s.dashboard.realtime_push_ms = ms(200);
    s.analytics.geoip_database = country_database();
    s
}

/// The Stats API token of [`settings`].
pub const DASHBOARD_TOKEN: &str = "test-token-0123456789abcdef";

/// The admin token of [`settings`]: it reads and manages goals.
pub const ADMIN_TOKEN: &str = "test-admin-0123456789abcdef";

/// The environment that gives a child process (the producer or consumer binary) the same
/// settings as `s`, for every key the tests and the benchmark change: the one place that turns
/// settings into a child's configuration.
pub fn child_env(s: &Settings) -> Vec<(&'static str, String)> {
    let (k, c) = (&s.kafka, &s.consumer);
    let policy = format!("{:?}", c.on_offset_out_of_range).to_lowercase();
    let mut env = vec![
        ("APP_CONFIG_DIR", "/nonexistent".into()),
        ("APP__SERVER__HOST", s.server.host.clone()),
        ("APP__SERVER__PORT", s.server.port.to_string()),
        ("APP__SERVER__METRICS_HOST", s.server.metrics_host.clone()),
        (
            "APP__SERVER__RATE_LIMIT_EVENTS_PER_MINUTE",
            s.server.rate_limit_events_per_minute.to_string(),
        ),
        (
            "APP__SERVER__METRICS_PORT",
            s.server.metrics_port.to_string(),
        ),
        ("APP__KAFKA__BROKERS", k.brokers.join(",")),
        ("APP__KAFKA__TOPIC_PREFIX", k.topic_prefix.clone()),
        (
            "APP__KAFKA__REPLICATION_FACTOR",
            k.replication_factor.to_string(),
        ),
        (
            "APP__KAFKA__PRODUCE_TIMEOUT_MS",
            k.produce_timeout_ms.to_string(),
        ),
        (
            "APP__KAFKA__REQUEST_TIMEOUT_MS",
            k.request_timeout_ms.to_string(),
        ),
        (
            "APP__DATABASE__URL",
            s.database.url.expose_secret().to_owned(),
        ),
        ("APP__CONSUMER__TOPICS", c.topics.join(",")),
        ("APP__CONSUMER__METRICS_HOST", c.metrics_host.clone()),
        ("APP__CONSUMER__METRICS_PORT", c.metrics_port.to_string()),
        ("APP__CONSUMER__LEASE_TTL_MS", c.lease_ttl_ms.to_string()),
        (
            "APP__CONSUMER__LEASE_RENEW_MS",
            c.lease_renew_ms.to_string(),
        ),
        (
            "APP__CONSUMER__PARTITION_REFRESH_MS",
            c.partition_refresh_ms.to_string(),
        ),
        (
            "APP__CONSUMER__FETCH_MAX_WAIT_MS",
            c.fetch_max_wait_ms.to_string(),
        ),
        ("APP__CONSUMER__ON_OFFSET_OUT_OF_RANGE", policy),
        (
            "APP__ANALYTICS__REGISTER_SITES_ON_FIRST_EVENT",
            s.analytics.register_sites_on_first_event.to_string(),
        ),
        ("APP__LOG__FILTER", "warn,rskafka=error".into()),
        ("APP__DASHBOARD__HOST", s.dashboard.host.clone()),
        ("APP__DASHBOARD__PORT", s.dashboard.port.to_string()),
        (
            "APP__DASHBOARD__METRICS_PORT",
            s.dashboard.metrics_port.to_string(),
        ),
        (
            "APP__DASHBOARD__DATABASE_URL",
            s.dashboard.database_url.expose_secret().to_owned(),
        ),
        (
            "APP__DASHBOARD__API_TOKENS",
            secrets(&s.dashboard.api_tokens),
        ),
        (
            "APP__DASHBOARD__ADMIN_TOKENS",
            secrets(&s.dashboard.admin_tokens),
        ),
        (
            "APP__DASHBOARD__STATEMENT_TIMEOUT_MS",
            s.dashboard.statement_timeout_ms.to_string(),
        ),
        (
            "APP__DASHBOARD__REQUEST_TIMEOUT_MS",
            s.dashboard.request_timeout_ms.to_string(),
        ),
        (
            "APP__DASHBOARD__SHUTDOWN_TIMEOUT_MS",
            s.dashboard.shutdown_timeout_ms.to_string(),
        ),
        (
            "APP__ANALYTICS__GEOIP_DATABASE",
            geoip_setting(&s.analytics.geoip_database),
        ),
    ];
    let proxies: Vec<String> = s
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    if !proxies.is_empty() {
        env.push(("APP__SERVER__TRUSTED_PROXIES", proxies.join(",")));
    }
    env
}

/// Tokens as their environment variable lists them.
fn secrets(tokens: &[settings::SecretString]) -> String {
    let exposed: Vec<&str> = tokens.iter().map(|t| t.expose_secret()).collect();
    exposed.join(",")
}

/// `analytics.geoip_database` as its environment variable says it.
fn geoip_setting(database: &settings::GeoIpDatabase) -> String {
    match database {
        settings::GeoIpDatabase::Unset => String::new(),
        settings::GeoIpDatabase::Off => "off".into(),
        settings::GeoIpDatabase::File(path) => path.display().to_string(),
    }
}

/// A positive number of milliseconds, as the settings take it.
pub fn ms(n: u64) -> std::num::NonZeroU64 {
    std::num::NonZeroU64::new(n).unwrap_or(std::num::NonZeroU64::MIN)
}

/// Creates an empty database with all migrations applied and returns its URL.
pub async fn fresh_database() -> Result<String> {
    fresh_database_on(&admin_database_url()).await
}

/// Like [`fresh_database`], on the cluster behind `admin_url`.
pub async fn fresh_database_on(admin_url: &str) -> Result<String> {
    let url = empty_database_on(admin_url).await?;
    let db = Database::connect(&url).await?;
    migration::Migrator::up(&db, None).await?;
    db.close().await?;
    Ok(url)
}

/// A new database with no tables at all, on the cluster behind `admin_url`.
pub async fn empty_database_on(admin_url: &str) -> Result<String> {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    Ok(replace_database(admin_url, &name))
}

fn replace_database(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => url.to_owned(),
    }
}

/// How many migrations `Migrator::down` undoes to stand just before the one named `name`
/// (counted from the list, so a later migration does not move the place a test goes back to).
pub fn migrations_since(name: &str) -> Result<u32> {
    let all = migration::Migrator::migrations();
    let at = all
        .iter()
        .position(|m| m.name() == name)
        .with_context(|| format!("no migration {name}"))?;
    Ok(u32::try_from(all.len() - at)?)
}

pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    Database::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// The first column of a query's one row as a number (NULL is 0): counts and sums in asserts.
pub async fn scalar(db: &DatabaseConnection, sql: &str) -> Result<i64> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql,
        ))
        .await?
        .with_context(|| format!("no row from {sql}"))?;
    Ok(row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0))
}

/// A Kafka client whose retries stop after a deadline (rskafka's default retries forever).
/// `brokers` may list several, comma-separated.
pub async fn kafka_client(brokers: &str) -> Result<Client> {
    event::kafka::connect(
        &bootstrap(brokers),
        "pageviews-test",
        Duration::from_secs(10),
    )
    .await
    .context("connecting to the broker")
}

/// A valid page view of `user` on `path` (the other fields take their defaults).
pub fn page_view(user: &str, path: &str) -> PageView {
    PageView {
        id: uuid::Uuid::now_v7(),
        fields: PageFields {
            event_type: "PAGE_VIEW".into(),
            user_id: user.into(),
            path: path.into(),
            url: "example.com".into(),
            ..Default::default()
        },
        visit: Default::default(),
        received_at: chrono::Utc::now(),
        source_id: None,
    }
}

/// Creates a topic with one replica (the brokers never create topics on their own).
/// A plain-text dump of a whole database (schema and data), with the server's own `pg_dump`.
pub async fn pg_dump(database_url: &SecretString) -> Result<String> {
    let bin = stack(&["pg-bin"]).await?;
    let output = tokio::process::Command::new(format!("{}/pg_dump", bin.trim()))
        .arg("--dbname")
        .arg(database_url.expose_secret())
        .kill_on_drop(true)
        .output()
        .await
        .context("running pg_dump")?;
    if !output.status.success() {
        bail!(
            "pg_dump failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Deletes a topic, within a deadline.
pub async fn delete_topic(client: &Client, topic: &str) -> Result<()> {
    let controller = client.controller_client()?;
    tokio::time::timeout(
        Duration::from_secs(20),
        controller.delete_topic(topic, 10_000),
    )
    .await
    .context("deleting a topic: no answer within 20 s")??;
    Ok(())
}

pub async fn create_topic(client: &Client, topic: &str, partitions: i32) -> Result<()> {
    create_replicated_topic(client, topic, partitions, 1).await
}

pub async fn create_replicated_topic(
    client: &Client,
    topic: &str,
    partitions: i32,
    replication: i16,
) -> Result<()> {
    tokio::time::timeout(
        Duration::from_secs(20),
        client
            .controller_client()?
            .create_topic(topic, partitions, replication, 10_000),
    )
    .await
    .with_context(|| format!("creating topic {topic} timed out"))?
    .with_context(|| format!("creating topic {topic}"))
}

pub async fn partition_client(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Result<Arc<PartitionClient>> {
    let opened = tokio::time::timeout(
        Duration::from_secs(20),
        client.partition_client(topic, partition, UnknownTopicHandling::Retry),
    )
    .await
    .with_context(|| format!("opening {topic}/{partition} timed out"))??;
    Ok(Arc::new(opened))
}

/// Reads every record of a partition up to its high watermark, each offset once.
pub async fn read_partition(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Result<Vec<rskafka::record::RecordAndOffset>> {
    let pc = partition_client(client, topic, partition).await?;
    let mut out: Vec<rskafka::record::RecordAndOffset> = Vec::new();
    // From the log start: records deleted below it are not there to read.
    let mut next = tokio::time::timeout(
        Duration::from_secs(10),
        pc.get_offset(rskafka::client::partition::OffsetAt::Earliest),
    )
    .await
    .context("reading the log start timed out")??;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (records, high_watermark) = tokio::time::timeout(
            Duration::from_secs(10),
            pc.fetch_records(next, 1..16 * 1024 * 1024, 100),
        )
        .await
        .context("fetch timed out")??;
        for r in records {
            if r.offset >= next {
                next = r.offset + 1;
                out.push(r);
            }
        }
        if next >= high_watermark {
            return Ok(out);
        }
        if Instant::now() > deadline {
            bail!("reading {topic}/{partition} did not reach the high watermark {high_watermark}");
        }
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes: the only way tests wait.
pub async fn poll_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs `scripts/stack.sh` without blocking the runtime; its stdout, trimmed. The one way
/// tests and the benchmark reach the local stack (where Kafka's jars and Java are, …).
pub async fn stack(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("bash")
        .arg(repo_root().join("scripts/stack.sh"))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .context("running scripts/stack.sh")?;
    if !out.status.success() {
        bail!(
            "stack.sh {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// For `Drop`, where nothing can be awaited.
fn stack_blocking(args: &[&str]) {
    let _ = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/stack.sh"))
        .args(args)
        .output();
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn port_answers(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// Another binary of the workspace, built beside the one running (`cargo test --workspace`
/// builds them all): e.g. the producer, for a consumer test that runs every process.
pub fn sibling_binary(running: &str, name: &str) -> PathBuf {
    let path = Path::new(running).with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p {name}` first (make test builds every binary)",
        path.display()
    );
    path
}

fn scratch_dir(kind: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "pageviews-{kind}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Held by every Kafka node a test starts of its own. On two cores, a three-node cluster
/// starting beside another test's broker under load once missed its 90 s readiness deadline:
/// the tests that own JVMs take turns, the others run beside them.
async fn kafka_slot() -> tokio::sync::OwnedMutexGuard<()> {
    static SLOT: std::sync::OnceLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
        std::sync::OnceLock::new();
    let slot = SLOT.get_or_init(Default::default);
    std::sync::Arc::clone(slot).lock_owned().await
}

/// An Apache Kafka node of a test's own, which the test may stop, kill and start again on the
/// same port with its data kept.
pub struct Broker {
    dir: PathBuf,
    port: u16,
    _slot: tokio::sync::OwnedMutexGuard<()>,
}

impl Broker {
    pub async fn start() -> Result<Self> {
        let slot = kafka_slot().await;
        let broker = Broker {
            dir: scratch_dir("kafka"),
            port: free_port()?,
            _slot: slot,
        };
        stack(&["kafka-start", &path(&broker.dir), &broker.port.to_string()]).await?;
        Ok(broker)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM: a controlled shutdown.
    pub async fn stop(&self) -> Result<()> {
        stack(&["stop-pid", &path(&self.dir.join("kafka.pid"))])
            .await
            .map(drop)
    }

    /// SIGKILL: the process dies at once, as in a crash.
    pub async fn kill(&self) -> Result<()> {
        stack(&["kill-pid", &path(&self.dir.join("kafka.pid"))])
            .await
            .map(drop)
    }

    /// Starts it again on the same port with the same data; returns once it is in the metadata.
    pub async fn resume(&self) -> Result<()> {
        stack(&["kafka-start", &path(&self.dir), &self.port.to_string()])
            .await
            .map(drop)
    }

    /// SIGKILL, every byte of its data deleted, and a new empty broker on the same port: what a
    /// lost disk, or an in-memory broker restarting, looks like to clients.
    pub async fn wipe(&self) -> Result<()> {
        self.kill().await?;
        std::fs::remove_dir_all(&self.dir)?;
        std::fs::create_dir_all(&self.dir)?;
        self.resume().await
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        stack_blocking(&["kill-pid", &path(&self.dir.join("kafka.pid"))]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A KRaft cluster of a test's own: every node a broker and a controller, topics replicated to
/// every node with `min.insync.replicas = 2`, short session timeouts so elections are quick.
pub struct Cluster {
    dir: PathBuf,
    bootstrap: String,
    nodes: usize,
    _slot: tokio::sync::OwnedMutexGuard<()>,
}

impl Cluster {
    pub async fn start(nodes: usize) -> Result<Self> {
        let slot = kafka_slot().await;
        let dir = scratch_dir("cluster");
        let started = stack(&["cluster-start", &path(&dir), &nodes.to_string()]).await;
        let mut cluster = Cluster {
            dir,
            bootstrap: String::new(),
            nodes,
            _slot: slot,
        };
        // Set after the value exists, so that a failed start still removes what it made.
        cluster.bootstrap = started?;
        Ok(cluster)
    }

    /// Every node's address, comma-separated.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn node_dir(&self, node: i32) -> PathBuf {
        self.dir.join(format!("node-{node}"))
    }

    /// The node id leading `topic`/`partition`, once one does.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        for address in self.bootstrap.split(',') {
            let answer = stack(&["kafka-leader", address, topic, &partition.to_string()]).await;
            if let Ok(leader) = answer.and_then(|a| Ok(a.parse::<i32>()?)) {
                if leader >= 0 {
                    return Ok(leader);
                }
            }
        }
        bail!("no node leads {topic}/{partition}")
    }

    /// SIGKILL one node.
    pub async fn kill(&self, node: i32) -> Result<()> {
        stack(&["kill-pid", &path(&self.node_dir(node).join("kafka.pid"))])
            .await
            .map(drop)
    }

    /// Starts a stopped node again and waits until every node is listed in the metadata.
    pub async fn restart(&self, node: i32) -> Result<()> {
        stack(&["kafka-node-start", &path(&self.node_dir(node))]).await?;
        let first_alive = if node == 1 { 2 } else { 1 };
        let address = self
            .bootstrap
            .split(',')
            .nth(first_alive - 1)
            .unwrap_or_default();
        stack(&["kafka-ready", address, &self.nodes.to_string(), "120"])
            .await
            .map(drop)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in 1..=self.nodes {
            let pid = self.node_dir(node as i32).join("kafka.pid");
            stack_blocking(&["kill-pid", &path(&pid)]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL cluster of a test's own, which the test may restart: a primary, or a streaming
/// replica of one.
pub struct Postgres {
    dir: PathBuf,
    port: u16,
    /// The primary's port, for a replica.
    follows: Option<u16>,
}

impl Postgres {
    pub async fn start() -> Result<Self> {
        let pg = Postgres {
            dir: scratch_dir("pg"),
            port: free_port()?,
            follows: None,
        };
        pg.resume().await?;
        Ok(pg)
    }

    /// A streaming replica of `primary` (`pg_basebackup -R`), read-only, on a port of its own.
    pub async fn standby_of(primary: &Postgres) -> Result<Self> {
        let pg = Postgres {
            dir: scratch_dir("pg-standby"),
            port: free_port()?,
            follows: Some(primary.port),
        };
        pg.resume().await?;
        Ok(pg)
    }

    /// The same database as `database_url` (a URL of any cluster), on this one.
    pub fn url_of(&self, database_url: &str) -> String {
        let name = database_url.rsplit('/').next().unwrap_or_default();
        replace_database(&self.admin_url(), name)
    }

    /// SIGKILL to the whole cluster, as when its machine dies; `resume` starts it again.
    pub async fn kill(&self) -> Result<()> {
        self.signal_all(nix::sys::signal::Signal::SIGKILL)?;
        let pid_file = self.dir.join("postmaster.pid");
        poll_until(
            Duration::from_secs(30),
            "the killed PostgreSQL gone",
            || async { (!port_answers(self.port).await).then_some(()) },
        )
        .await?;
        // What a crashed postmaster leaves behind, and a rebooted machine would not have: its
        // pid file and socket lock (the sockets live in the data folder here).
        let _ = std::fs::remove_file(pid_file);
        let lock = self.dir.join(format!(".s.PGSQL.{}.lock", self.port));
        let _ = std::fs::remove_file(lock);
        Ok(())
    }

    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }

    pub async fn stop(&self) -> Result<()> {
        stack(&["pg-stop", &path(&self.dir)]).await.map(drop)
    }

    pub async fn resume(&self) -> Result<()> {
        let port = self.port.to_string();
        match self.follows {
            None => stack(&["pg-start", &path(&self.dir), &port]).await,
            Some(primary) => {
                let primary = primary.to_string();
                stack(&["pg-standby-start", &path(&self.dir), &port, &primary]).await
            }
        }
        .map(drop)
    }
}

impl Postgres {
    /// SIGSTOP to the whole cluster: it neither answers nor refuses, as behind a lost network.
    pub fn freeze(&self) -> Result<()> {
        self.signal_all(nix::sys::signal::Signal::SIGSTOP)
    }

    /// SIGCONT: it goes on where it stopped.
    pub fn thaw(&self) -> Result<()> {
        self.signal_all(nix::sys::signal::Signal::SIGCONT)
    }

    /// The postmaster (first line of `postmaster.pid`) and its children.
    fn signal_all(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        let pid_file = std::fs::read_to_string(self.dir.join("postmaster.pid"))
            .context("reading postmaster.pid")?;
        let postmaster: i32 = pid_file
            .lines()
            .next()
            .context("an empty postmaster.pid")?
            .trim()
            .parse()?;
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid …": the command may hold spaces, so read after its ')'.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
            if parent == Some(postmaster) {
                pids.extend(
                    entry
                        .file_name()
                        .to_str()
                        .and_then(|n| n.parse::<i32>().ok()),
                );
            }
        }
        for pid in pids {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
                .with_context(|| format!("{signal} to {pid}"))?;
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.thaw();
        stack_blocking(&["pg-stop", &path(&self.dir)]);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("initdb.log"));
        let _ = std::fs::remove_file(self.dir.with_extension("basebackup.log"));
    }
}

/// A `run_until(shutdown)` future running on the test's runtime until told to stop.
struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Serving {
    fn spawn<F>(run_until: impl FnOnce(BoxedShutdown) -> F) -> Self
    where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_until(Box::pin(async {
            let _ = stopped.await;
        })));
        Serving { stop, task }
    }

    /// Asks it to stop and waits, at most `limit`, for a clean end.
    async fn stop(self, what: &str, limit: Duration) -> Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(limit, self.task)
            .await
            .with_context(|| format!("{what} did not stop within {limit:?}"))???;
        Ok(())
    }
}

type BoxedShutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The producer's HTTP server inside the test process, on a free port.
pub struct TestProducer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `http://127.0.0.1:PORT` of its `/metrics`.
    pub metrics: String,
    serving: Serving,
}

impl TestProducer {
    /// Builds it from `settings` (connects, creates the topics) and serves.
    pub async fn start(settings: Settings) -> Result<Self> {
        Self::start_with_clock(settings, producer::Clock::system()).await
    }

    /// As `start`, with receive times from `clock`.
    pub async fn start_with_clock(settings: Settings, clock: producer::Clock) -> Result<Self> {
        let address = settings.server.address();
        let listener =
            std::net::TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let app = producer::Application::build_with_clock(settings, listener, clock)
            .await
            .context("the producer starts")?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let metrics = format!("http://127.0.0.1:{}", app.metrics_port());
        let serving = Serving::spawn(|shutdown| app.run_until(shutdown));
        Ok(TestProducer {
            base,
            metrics,
            serving,
        })
    }

    /// Graceful shutdown: in-flight requests finish and the batch producers are flushed.
    pub async fn stop(self) -> Result<()> {
        self.serving
            .stop("the producer", Duration::from_secs(60))
            .await
    }
}

/// The dashboard (Stats API) inside the test process, on a free port.
pub struct TestDashboard {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `http://127.0.0.1:PORT/metrics`
    pub metrics: String,
    serving: Serving,
}

impl TestDashboard {
    pub async fn start(settings: Settings) -> Result<Self> {
        let app = dashboard::Application::build(settings)
            .await
            .context("the dashboard starts")?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let metrics = format!("http://127.0.0.1:{}/metrics", app.metrics_port());
        let serving = Serving::spawn(|shutdown| app.run_until(shutdown));
        Ok(TestDashboard {
            base,
            metrics,
            serving,
        })
    }

    pub async fn stop(self) -> Result<()> {
        self.serving
            .stop("the dashboard", Duration::from_secs(30))
            .await
    }
}

/// The consumer inside the test process.
pub struct TestConsumer {
    pub metrics_port: u16,
    serving: Serving,
}

impl TestConsumer {
    pub async fn start(settings: Settings) -> Result<Self> {
        let consumer = consumer::Consumer::build(settings)
            .await
            .context("the consumer starts")?;
        let metrics_port = consumer.metrics_port();
        let serving = Serving::spawn(|shutdown| consumer.run_until(shutdown));
        Ok(TestConsumer {
            metrics_port,
            serving,
        })
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        Ok(reqwest::get(url).await?.text().await?)
    }

    /// As on SIGTERM: the batches in flight finish or roll back, the partitions are released.
    pub async fn stop(self) -> Result<()> {
        self.serving
            .stop("the consumer", Duration::from_secs(30))
            .await
    }
}

/// A producer or consumer binary as a child process, configured by [`child_env`]: for the
/// tests that kill it.
pub struct ChildProcess {
    child: tokio::process::Child,
}

impl ChildProcess {
    /// Starts `exe` (e.g. `env!("CARGO_BIN_EXE_consumer")`) with the settings `s`.
    pub fn spawn(exe: &str, s: &Settings) -> Result<Self> {
        let child = tokio::process::Command::new(exe)
            .envs(child_env(s))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {exe}"))?;
        Ok(ChildProcess { child })
    }

    /// SIGKILL, and reaps it.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await.context("SIGKILL")
    }

    /// SIGTERM: the graceful stop `make down` and process managers use.
    pub fn terminate(&self) -> Result<()> {
        let pid = self.child.id().context("the process has already exited")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).context("SIGTERM")
    }

    /// Waits for it to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("the process did not exit within {timeout:?}"))?
            .context("waiting for the process")
    }
}
