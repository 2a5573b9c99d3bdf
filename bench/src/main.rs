//! `make bench`: measures ingest, storage and end-to-end latency side by side with the
//! machine's own ceilings, in one run, and prints one table (also written as JSON).
//!
//! Usage: `bench [--smoke] [--out FILE] [--results-md FILE]` against the broker and PostgreSQL
//! named by `PAGEVIEWS_TEST_BROKERS` / `PAGEVIEWS_TEST_DATABASE_URL` (scripts/bench.sh starts
//! them). `bench serve-producer|serve-consumer` is this binary re-executed as one component.

mod dashboard;
mod e2e;
mod geo;
mod goals;
mod load;
mod peer;
mod procs;
mod table;
mod versus;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use event::partitioner::partition_for;
use event::PageView;
use load::{batch_body, closed_loop, mutation_body, Stats};
use peer::GoPeer;
use procs::{wait_ready, Component};
use producer::sink::EventSink;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;
use settings::{KafkaSettings, Settings};
use versus::{Contender, Drive, Load};

pub(crate) const PARTITIONS: i32 = 4;
const BATCH: usize = 100;
/// The Go peer's `linger.ms` values: 0, 1 (its best for single events) and librdkafka's default 5.
const PEER_LINGER_MS: [u32; 3] = [0, 1, 5];

pub(crate) struct Params {
    clients: usize,
    /// One contender's run in an A/B round, and how many rounds.
    versus: Duration,
    rounds: usize,
    ceiling: Duration,
    anchor: Duration,
    storage_events: usize,
    e2e_rate: u64,
    e2e: Duration,
    java_records: u64,
    dashboard: dashboard::Plan,
}

impl Params {
    fn full() -> Self {
        Params {
            clients: 64,
            versus: Duration::from_secs(10),
            rounds: 3,
            ceiling: Duration::from_secs(10),
            anchor: Duration::from_secs(10),
            storage_events: 200_000,
            e2e_rate: 1_000,
            e2e: Duration::from_secs(30),
            java_records: 1_000_000,
            dashboard: dashboard::Plan {
                // PAGEVIEWS_BENCH_DASHBOARD_EVENTS=1000000 for a quicker look.
                events: std::env::var("PAGEVIEWS_BENCH_DASHBOARD_EVENTS")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(10_000_000),
                days: 90,
                rounds: 20,
            },
        }
    }

    /// A few hundred events: proves the harness works, measures nothing.
    fn smoke() -> Self {
        Params {
            clients: 4,
            versus: Duration::from_millis(300),
            rounds: 1,
            ceiling: Duration::from_millis(300),
            anchor: Duration::from_millis(300),
            storage_events: 400,
            e2e_rate: 100,
            e2e: Duration::from_secs(1),
            java_records: 1_000,
            dashboard: dashboard::Plan {
                events: 20_000,
                days: 40,
                rounds: 2,
            },
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Results {
    date: String,
    nproc: usize,
    memory_gib: f64,
    smoke: bool,
    broker: String,
    /// Scenarios (a), (b), (c): ours against the Go peer.
    versus: Vec<versus::Match>,
    ingest_single: Stats,
    ceiling_a_healthz: Stats,
    ceiling_b_raw_rskafka: Stats,
    ceiling_d_java_producer: JavaProducer,
    anchor_tutorial_style: Stats,
    ingest_batches_requests: Stats,
    ingest_batches_events_per_second: f64,
    storage_events_per_second: f64,
    storage_seconds: f64,
    ceiling_c_copy_rows_per_second: f64,
    end_to_end: Stats,
    end_to_end_http: Stats,
    /// The Go peer's HTTP answer at the end-to-end rate (nothing consumes its topic).
    end_to_end_peer_http: Stats,
    rss_peak_mb: BTreeMap<String, f64>,
    dashboard: dashboard::DashboardResults,
    geo: geo::GeoResults,
}

/// What Kafka's own Java producer (`ProducerPerformance`) reported.
#[derive(Debug, Default, Serialize)]
pub(crate) struct JavaProducer {
    records: u64,
    record_bytes: usize,
    per_second: f64,
    p99_ms: f64,
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        // This binary re-executed as one component (see procs.rs).
        Some("serve-producer") => return settings::launch("producer", producer::serve),
        Some("serve-consumer") => {
            consumer::arena::one_malloc_arena();
            return settings::launch("consumer", consumer::serve);
        }
        _ => run_cli(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(args: &[String]) -> Result<()> {
    let mut smoke = false;
    let mut out = PathBuf::from("bench/results.json");
    let mut results_md: Option<PathBuf> = None;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--only" => {
                only = Some(
                    it.next()
                        .context("--only needs ingest, storage, e2e, geo or dashboard")?
                        .clone(),
                )
            }
            "--out" => out = PathBuf::from(it.next().context("--out needs a file")?),
            "--results-md" => {
                results_md = Some(PathBuf::from(
                    it.next().context("--results-md needs a file")?,
                ))
            }
            other => bail!(
                "unknown argument {other:?} (expected --smoke, --out FILE, --results-md FILE)"
            ),
        }
    }
    let params = if smoke {
        Params::smoke()
    } else {
        Params::full()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    if only.is_some() && results_md.is_some() {
        bail!("--results-md records a whole run; it does not go with --only");
    }
    let results = runtime.block_on(run(&params, smoke, only.as_deref()))?;
    let table = table::table(&results);
    println!("{table}");
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("results written to {}", out.display());
    if let Some(md) = results_md {
        let text = format!(
            "# Benchmark results\n\nLatest `make bench` run: {} on {} cores, {:.0} GiB memory, against {}. \
             Figures are from one run; ratios compare figures measured minutes apart on the same machine.\n\n```\n{table}\n```\n{}",
            results.date,
            results.nproc,
            results.memory_gib,
            results.broker,
            earlier_runs(&md)?
        );
        std::fs::write(&md, text).with_context(|| format!("writing {}", md.display()))?;
    }
    Ok(())
}

/// The part of the results file a run keeps: from the `EARLIER_RUNS` heading on, the figures
/// of earlier runs that later ones are read against (written by hand).
fn earlier_runs(md: &std::path::Path) -> Result<String> {
    const EARLIER_RUNS: &str = "\n## Earlier runs";
    let old = match std::fs::read_to_string(md) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", md.display())),
    };
    Ok(old
        .find(EARLIER_RUNS)
        .map(|at| old[at..].to_owned())
        .unwrap_or_default())
}

pub(crate) fn say(what: &str) {
    eprintln!("bench: {what}");
}

async fn run(p: &Params, smoke: bool, only: Option<&str>) -> Result<Results> {
    let brokers = testkit::brokers();
    let admin = testkit::admin_database_url();
    let mut r = Results {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_gib: memory_gib(),
        broker: broker_name().await?,
        smoke,
        ..Default::default()
    };

    let wanted = |name: &str| only.is_none_or(|o| o == name);
    if wanted("ingest") {
        ingest(p, &brokers, &admin, &mut r).await?;
    }
    if wanted("storage") {
        say("3. storage");
        storage(p, &brokers, &admin, &mut r).await?;
    }
    if wanted("e2e") {
        say("4. end to end");
        e2e::run(p, &brokers, &admin, &mut r).await?;
    }
    if wanted("geo") {
        r.geo = geo::run(p, &brokers, &admin).await?;
    }
    if wanted("dashboard") {
        r.dashboard = dashboard::run(&p.dashboard, &admin, &brokers).await?;
    }
    Ok(r)
}

/// Scenarios 1 and 2, against a producer process and the Go peer at each `linger.ms`.
async fn ingest(p: &Params, brokers: &str, admin: &str, r: &mut Results) -> Result<()> {
    let db_url = testkit::fresh_database_on(admin).await?;
    let mut s = testkit::settings(brokers, &db_url, &testkit::unique_prefix());
    s.server.port = testkit::free_port()?;
    let topic = s.kafka.topic_for("PAGE_VIEW");
    let producer = Component::spawn("producer", &s)?;
    let base = format!("http://127.0.0.1:{}", s.server.port);
    wait_ready(&format!("{base}/readyz"), Duration::from_secs(30)).await?;
    let mut peers = Vec::new();
    for linger_ms in PEER_LINGER_MS {
        let peer_topic = format!("{}go{linger_ms}_PAGE_VIEW", s.kafka.topic_prefix);
        peers.push(GoPeer::start(brokers, &peer_topic, PARTITIONS, linger_ms).await?);
    }
    let mut contenders = vec![Contender {
        name: "ours".into(),
        query_url: format!("{base}/query"),
        pid: producer.pid(),
    }];
    contenders.extend(peers.iter().map(|g| Contender {
        name: format!("Go, linger.ms={}", g.linger_ms),
        query_url: format!("{}/query", g.base),
        pid: g.pid(),
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(p.clients)
        .build()?;
    let mut drive = Drive {
        clients: p.clients,
        duration: p.versus,
        rounds: p.rounds,
        events_per_request: 1,
    };

    say("1a. ingest, the tutorial's curl from one client (one visitor, one partition), vs Go");
    let one_visitor: Load = Arc::new(|_, _| (0, testkit::README_CURL_BODY.to_owned()));
    r.versus
        .push(versus::run("a. one visitor", &contenders, &drive, &http, one_visitor).await);
    say("1b. ingest, 1,000 visitors, vs Go");
    let bodies: Arc<Vec<String>> = Arc::new((0..1000).map(|u| mutation_body(u, None)).collect());
    let many_visitors: Load = Arc::new(move |c, n| {
        let visitor = (c * 7919 + n as usize) % bodies.len();
        (visitor, bodies[visitor].clone())
    });
    let b = versus::run(
        "b. 1,000 visitors",
        &contenders,
        &drive,
        &http,
        many_visitors,
    )
    .await;
    r.ingest_single = b.ours.requests.clone();
    r.versus.push(b);

    say("   ceiling A: GET /healthz, same clients");
    r.ceiling_a_healthz = {
        let (http, url) = (http.clone(), format!("{base}/healthz"));
        closed_loop(p.clients, p.ceiling, move |_, _| {
            let (http, url) = (http.clone(), url.clone());
            async move { matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) }
        })
        .await
    };
    say("   ceiling B: the producer's rskafka sink without HTTP/GraphQL");
    r.ceiling_b_raw_rskafka = raw_produce(&s, p.clients, p.ceiling).await?;
    say("   ceiling D: Kafka's own Java producer (ProducerPerformance, acks=all)");
    r.ceiling_d_java_producer = java_producer(brokers, p.java_records).await?;
    say("   anchor: tutorial-style, a client, a create-topic and a produce per event");
    r.anchor_tutorial_style = tutorial_style(&s.kafka, &topic, p.clients, p.anchor).await;

    say("2. ingest, batches of 100, vs Go");
    let batches: Arc<Vec<String>> =
        Arc::new((0..20).map(|i| batch_body(i * BATCH, BATCH)).collect());
    let batched: Load =
        Arc::new(move |c, n| (c, batches[(c + n as usize) % batches.len()].clone()));
    drive.events_per_request = BATCH;
    let c = versus::run("c. batches of 100", &contenders, &drive, &http, batched).await;
    r.ingest_batches_requests = c.ours.requests.clone();
    r.ingest_batches_events_per_second = c.ours.events_per_second;
    r.versus.push(c);
    r.rss_peak_mb
        .insert("producer (ingest)".into(), producer.rss_peak_mb());
    drop(peers);
    producer.stop().await
}

/// The broker every scenario runs against, as scripts/stack.sh starts it.
async fn broker_name() -> Result<String> {
    let home = testkit::stack(&["ensure-kafka"]).await?;
    let version = home.rsplit("kafka-").next().unwrap_or("?");
    Ok(format!(
        "Apache Kafka {version} (KRaft, one combined node on this machine, scripts/stack.sh)"
    ))
}

fn memory_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0)
}

/// The README's page view, as user `n % 1000`.
/// User agents of the traffic a site sees, so that storage pays for real user-agent parsing.
const AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

/// A page view as the producer writes it: a visitor, a user agent, sometimes a referrer or a
/// campaign.
fn event(n: u64) -> PageView {
    let mut view = testkit::page_view(&format!("user_{}", n % 1000), "/test");
    view.fields.search = if n.is_multiple_of(5) {
        "?utm_source=newsletter&utm_medium=email".into()
    } else {
        "?q=foo".into()
    };
    view.fields.title = "Kafka Demo".into();
    view.fields.url = "kafka.demo.com".into();
    view.fields.referrer = match n % 4 {
        0 => Some("https://www.google.com/".into()),
        1 => Some("https://news.ycombinator.com/item?id=1".into()),
        _ => None,
    };
    view.visit = event::Visit {
        visitor_id: Some((n % 5000) as i64),
        user_agent: Some(AGENTS[(n % AGENTS.len() as u64) as usize].into()),
        language: Some("en-US".into()),
        country: Some(COUNTRIES[(n % 5000 % COUNTRIES.len() as u64) as usize].into()),
        region: None,
        city: None,
    };
    view
}

/// The seeded visitors' countries.
const COUNTRIES: &[&str] = &["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "NL", "SE"];

fn record(view: &PageView) -> Record {
    Record {
        key: Some(view.fields.user_id.as_bytes().to_vec()),
        value: Some(view.encode()),
        headers: Default::default(),
        timestamp: view.received_at,
    }
}

/// Ceiling B: what the broker takes through the producer's own sink (same rskafka batching,
/// same connections), without HTTP and GraphQL.
async fn raw_produce(s: &Settings, clients: usize, duration: Duration) -> Result<Stats> {
    let sink = Arc::new(EventSink::connect(&s.kafka, s.server.max_in_flight).await?);
    Ok(closed_loop(clients, duration, move |c, n| {
        let sink = Arc::clone(&sink);
        async move { sink.send(&[event(c as u64 * 1_000_003 + n)]).await.is_ok() }
    })
    .await)
}

/// Ceiling D: Kafka's own Java producer with Kafka's default tuning and `acks=all`, records of
/// the size of one encoded page view, to a topic like ours.
async fn java_producer(brokers: &str, records: u64) -> Result<JavaProducer> {
    let kafka_home = testkit::stack(&["ensure-kafka"]).await?;
    let java = testkit::stack(&["java"]).await?;
    let topic = format!("{}java", testkit::unique_prefix());
    let kafka = testkit::kafka_client(brokers).await?;
    testkit::create_topic(&kafka, &topic, PARTITIONS).await?;
    let record_bytes = event(0).encode().len();
    let out = tokio::process::Command::new(java)
        .args(["-Xmx512m", "-cp", &format!("{kafka_home}/libs/*")])
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", &topic, "--num-records", &records.to_string()])
        .args([
            "--record-size",
            &record_bytes.to_string(),
            "--throughput",
            "-1",
        ])
        .args([
            "--producer-props",
            &format!("bootstrap.servers={brokers}"),
            "acks=all",
        ])
        .output()
        .await
        .context("running ProducerPerformance")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains("records sent"))
        .with_context(|| {
            format!(
                "ProducerPerformance printed no summary: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    // "N records sent, X records/sec (… MB/sec), … ms avg latency, …, P ms 99th, …"
    let number_before = |unit: &str| -> Result<f64> {
        let head = summary
            .split(unit)
            .next()
            .filter(|h| h.len() < summary.len())
            .with_context(|| format!("no {unit:?} in {summary:?}"))?;
        let word = head.split_whitespace().last().unwrap_or_default();
        word.parse::<f64>()
            .with_context(|| format!("{word:?} before {unit:?}"))
    };
    Ok(JavaProducer {
        records,
        record_bytes,
        per_second: number_before(" records/sec")?,
        p99_ms: number_before(" ms 99th")?,
    })
}

/// The anchor: what the original tutorial did for every event.
async fn tutorial_style(
    kafka: &KafkaSettings,
    topic: &str,
    clients: usize,
    duration: Duration,
) -> Stats {
    let (kafka, topic) = (Arc::new(kafka.clone()), topic.to_owned());
    closed_loop(clients, duration, move |c, n| {
        let (kafka, topic) = (Arc::clone(&kafka), topic.clone());
        async move {
            let once = async {
                let client = event::kafka::connect_with(&kafka, kafka.request_timeout()).await?;
                // "Already exists" every time but the first, as in the tutorial.
                let _ = client
                    .controller_client()?
                    .create_topic(&topic, PARTITIONS, 1, 5_000)
                    .await;
                let view = event(c as u64 * 1_000_003 + n);
                let partition = partition_for(view.fields.user_id.as_bytes(), PARTITIONS);
                let pc = client
                    .partition_client(&topic, partition, UnknownTopicHandling::Retry)
                    .await?;
                pc.produce(vec![record(&view)], Compression::NoCompression)
                    .await?;
                Ok::<_, anyhow::Error>(())
            };
            tokio::time::timeout(Duration::from_secs(10), once)
                .await
                .is_ok_and(|r| r.is_ok())
        }
    })
    .await
}

/// The first column of the first row `sql` returns.
pub(crate) async fn scalar<T: sea_orm::TryGetable>(
    db: &DatabaseConnection,
    sql: &str,
) -> Result<T> {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<T>(0)?)
}

/// A table's column names in their order.
async fn table_columns(db: &DatabaseConnection, table: &str) -> Result<Vec<String>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            [table.into()],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?)
}

/// One CSV cell: empty for NULL, otherwise quoted.
fn csv_cell(value: Option<&serde_json::Value>) -> String {
    let text = match value {
        None | Some(serde_json::Value::Null) => return String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Scenario 3: a preloaded topic drained by a consumer process, against COPY of the same rows.
async fn storage(p: &Params, brokers: &str, admin: &str, r: &mut Results) -> Result<()> {
    let db_url = testkit::fresh_database_on(admin).await?;
    let s = testkit::settings(brokers, &db_url, &testkit::unique_prefix());
    let topic = s.consumer.topics[0].clone();
    let kafka = testkit::kafka_client(brokers).await?;
    testkit::create_topic(&kafka, &topic, PARTITIONS).await?;
    let events: Vec<PageView> = (0..p.storage_events as u64).map(event).collect();
    let mut by_partition: HashMap<i32, Vec<Record>> = HashMap::new();
    for v in &events {
        by_partition
            .entry(partition_for(v.fields.user_id.as_bytes(), PARTITIONS))
            .or_default()
            .push(record(v));
    }
    let mut loads = Vec::new();
    for (partition, records) in by_partition {
        let pc = testkit::partition_client(&kafka, &topic, partition).await?;
        loads.push(async move {
            for chunk in records.chunks(1000) {
                pc.produce(chunk.to_vec(), Compression::NoCompression)
                    .await?;
            }
            Ok::<_, rskafka::client::error::Error>(())
        });
    }
    for result in futures::future::join_all(loads).await {
        result?;
    }

    let db = testkit::connect(&db_url).await?;
    let started = Instant::now();
    let consumer = Component::spawn("consumer", &s)?;
    let target = p.storage_events as i64;
    testkit::poll_until(Duration::from_secs(1800), "all events stored", || {
        let db = &db;
        async move {
            let stored = scalar(
                db,
                "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
            )
            .await
            .unwrap_or(0);
            (stored >= target).then_some(())
        }
    })
    .await?;
    let elapsed = started.elapsed();
    r.storage_seconds = elapsed.as_secs_f64();
    r.storage_events_per_second = target as f64 / elapsed.as_secs_f64();
    let rows: i64 = scalar(&db, "SELECT count(*) FROM kafka_events").await?;
    if rows != target {
        bail!("storage stored {rows} rows, expected {target}");
    }
    r.rss_peak_mb
        .insert("consumer (storage)".into(), consumer.rss_peak_mb());
    consumer.stop().await?;

    // Ceiling C: the same rows, COPY'd into an identical empty table on the same server.
    db.execute_unprepared("CREATE TABLE copy_target (LIKE raw_events INCLUDING ALL)")
        .await?;
    let columns = table_columns(&db, "raw_events").await?;
    let mut csv = String::with_capacity(events.len() * 200);
    // The rows as the consumer makes them, enrichment and text ids included: COPY only writes.
    let agents = enrich::agent::AgentParser::new().map_err(anyhow::Error::msg)?;
    let stored: Vec<(i32, consumer::store::StoredEvent)> = events
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let partition = partition_for(v.fields.user_id.as_bytes(), PARTITIONS);
            let event =
                consumer::store::StoredEvent::new(i as i64, v.clone(), &agents, "PAGE_VIEW");
            (partition, event)
        })
        .collect();
    let texts = consumer::row::texts_of(stored.iter().map(|(_, e)| e), &topic)?;
    let ids = consumer::texts::Texts::default().ids_of(&db, texts).await?;
    for (partition, event) in &stored {
        let origin = consumer::row::Origin {
            topic: &topic,
            partition: *partition,
            texts: &ids,
        };
        let row = consumer::row::event_row(event, origin)?;
        let cells: Vec<String> = columns.iter().map(|c| csv_cell(row.get(c))).collect();
        let _ = writeln!(csv, "{}", cells.join(","));
    }
    let pool = db.get_postgres_connection_pool();
    let mut conn = pool.acquire().await?;
    let copy_started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY copy_target FROM STDIN (FORMAT csv)")
        .await?;
    copy.send(csv.as_bytes()).await?;
    let copied = copy.finish().await?;
    let copy_seconds = copy_started.elapsed().as_secs_f64();
    if copied != events.len() as u64 {
        bail!("COPY wrote {copied} rows, expected {}", events.len());
    }
    r.ceiling_c_copy_rows_per_second = copied as f64 / copy_seconds;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_the_earlier_runs_written_under_their_heading_and_nothing_above_it() {
        let md = std::env::temp_dir().join(format!("results-{}.md", uuid::Uuid::new_v4()));
        assert_eq!(earlier_runs(&md).ok().as_deref(), Some(""));
        std::fs::write(
            &md,
            "# Benchmark results\n\nold table\n\n## Earlier runs\n\n| a |\n",
        )
        .expect("writing a results file");
        let kept = earlier_runs(&md).ok();
        let _ = std::fs::remove_file(&md);
        assert_eq!(kept.as_deref(), Some("\n## Earlier runs\n\n| a |\n"));
    }
}
