//! Test harness for the integration tests: the real broker and the real PostgreSQL.
//!
//! `make test` (scripts/test.sh) starts one tansu broker and one PostgreSQL cluster on free ports
//! and passes them in `PAGEVIEWS_TEST_BROKERS` and `PAGEVIEWS_TEST_DATABASE_URL`. Each test then
//! takes its own database ([`fresh_database`]) and its own topics ([`unique_prefix`]), so tests
//! run in parallel without seeing each other's data. Tests that stop a broker or a database get
//! their own processes ([`Broker::start`], [`Postgres::start`]), started by `scripts/stack.sh`,
//! the same script `make up` uses.
//!
//! Architecture Invariant: no mocks. Everything here talks to real processes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use migration::MigratorTrait;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use settings::Settings;

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

fn shared_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: run the tests with `make test`, which starts the broker and \
             PostgreSQL they need (or export it yourself)"
        ),
    }
}

/// A prefix no other test uses, for topic names: `t<uuid>_`.
pub fn unique_prefix() -> String {
    format!("t{}_", uuid::Uuid::new_v4().simple())
}

/// Settings for a test: the checked-in defaults pointed at the given broker and database, on
/// free ports, with short leases so takeovers happen within a test's patience.
pub fn settings(brokers: &str, database_url: &str, topic_prefix: &str) -> Settings {
    let mut s = Settings::defaults();
    s.server.host = "127.0.0.1".into();
    s.server.port = 0;
    s.kafka.brokers = vec![brokers.to_owned()];
    s.kafka.topic_prefix = topic_prefix.to_owned();
    s.kafka.produce_timeout_ms = 3000;
    s.kafka.request_timeout_ms = 5000;
    s.database.url = database_url.to_owned();
    s.consumer.topics = s
        .kafka
        .event_types
        .iter()
        .map(|t| s.kafka.topic_for(t))
        .collect();
    s.consumer.metrics_host = "127.0.0.1".into();
    s.consumer.metrics_port = 0;
    s.consumer.lease_ttl_ms = 2000;
    s.consumer.lease_renew_ms = 250;
    s.consumer.partition_refresh_ms = 1000;
    s
}

/// Creates an empty database with all migrations applied and returns its URL.
pub async fn fresh_database() -> Result<String> {
    fresh_database_on(&admin_database_url()).await
}

/// Like [`fresh_database`], on the cluster behind `admin_url`.
pub async fn fresh_database_on(admin_url: &str) -> Result<String> {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    let url = replace_database(admin_url, &name);
    let db = Database::connect(&url).await?;
    migration::Migrator::up(&db, None).await?;
    db.close().await?;
    Ok(url)
}

fn replace_database(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => url.to_owned(),
    }
}

pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    Database::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// A Kafka client whose retries stop after `deadline` (rskafka's default retries forever).
pub async fn kafka_client(brokers: &str) -> Result<Client> {
    let backoff = BackoffConfig {
        deadline: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    tokio::time::timeout(
        Duration::from_secs(15),
        ClientBuilder::new(vec![brokers.to_owned()])
            .backoff_config(backoff)
            .build(),
    )
    .await
    .context("connecting to the broker timed out")?
    .context("connecting to the broker")
}

/// Creates a topic (tansu has no automatic topic creation).
pub async fn create_topic(client: &Client, topic: &str, partitions: i32) -> Result<()> {
    client
        .controller_client()?
        .create_topic(topic, partitions, 1, 5_000)
        .await
        .with_context(|| format!("creating topic {topic}"))
}

pub async fn partition_client(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Result<Arc<PartitionClient>> {
    Ok(Arc::new(
        client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await?,
    ))
}

/// Reads every record of a partition up to its high watermark, each offset once.
pub async fn read_partition(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Result<Vec<rskafka::record::RecordAndOffset>> {
    let pc = partition_client(client, topic, partition).await?;
    let mut out: Vec<rskafka::record::RecordAndOffset> = Vec::new();
    let mut next = 0i64;
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

fn stack(args: &[&str]) -> Result<String> {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/stack.sh"))
        .args(args)
        .output()
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

pub fn free_port() -> Result<u16> {
    Ok(stack(&["free-port"])?.parse()?)
}

fn scratch_dir(kind: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "pageviews-{kind}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// A broker of a test's own, which the test may stop and start again on the same port.
pub struct Broker {
    dir: PathBuf,
    port: u16,
    engine: String,
}

impl Broker {
    /// Starts tansu with the in-memory engine on a free port (a restart loses everything).
    pub fn start() -> Result<Self> {
        Self::start_with("memory://tansu/")
    }

    /// Starts tansu with the persistent sqlite engine: topics and records survive a restart.
    pub fn start_sqlite() -> Result<Self> {
        // Relative to the broker's working directory (an absolute path gets mangled).
        Self::start_with("sqlite://tansu.db")
    }

    fn start_with(engine: &str) -> Result<Self> {
        let broker = Broker {
            dir: scratch_dir("tansu"),
            port: free_port()?,
            engine: engine.into(),
        };
        broker.resume()?;
        Ok(broker)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(&self) -> Result<()> {
        stack(&["stop-pid", &self.dir.join("tansu.pid").to_string_lossy()]).map(drop)
    }

    /// Starts it again on the same port (an in-memory broker comes back empty).
    pub fn resume(&self) -> Result<()> {
        stack(&[
            "tansu-start",
            &self.dir.to_string_lossy(),
            &self.port.to_string(),
            &self.engine,
        ])
        .map(drop)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL cluster of a test's own, which the test may restart.
pub struct Postgres {
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    pub fn start() -> Result<Self> {
        let pg = Postgres {
            dir: scratch_dir("pg"),
            port: free_port()?,
        };
        pg.resume()?;
        Ok(pg)
    }

    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }

    pub fn stop(&self) -> Result<()> {
        stack(&["pg-stop", &self.dir.to_string_lossy()]).map(drop)
    }

    pub fn resume(&self) -> Result<()> {
        stack(&[
            "pg-start",
            &self.dir.to_string_lossy(),
            &self.port.to_string(),
        ])
        .map(drop)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("initdb.log"));
    }
}
