//! Scenario 4: a steady rate of page views through producer, Kafka and consumer, and how long
//! each took from its POST leaving the client to its row being committed in PostgreSQL.
//!
//! The commit time is PostgreSQL's own (`track_commit_timestamp`, which scripts/bench.sh turns
//! on): `pg_xact_commit_timestamp(xmin)` of the row. Nothing is polled, so the figure carries
//! no polling interval; client and server share this machine's clock. The Go peer's answer
//! at the same rate is the floor the broker and this machine put under the first half.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::load::{self, mutation_body, post_ok};
use crate::peer::GoPeer;
use crate::procs::{wait_ready, Component};
use crate::{scalar, Params, Results, PARTITIONS};

/// When each answered event's POST was sent, and each HTTP answer's latency.
#[derive(Default)]
struct Sent {
    at: HashMap<uuid::Uuid, DateTime<Utc>>,
    http: Vec<Duration>,
}

pub async fn run(p: &Params, brokers: &str, admin: &str, r: &mut Results) -> Result<()> {
    let db_url = testkit::fresh_database_on(admin).await?;
    let mut s = testkit::settings(brokers, &db_url, &testkit::unique_prefix());
    s.server.port = testkit::free_port()?;
    let consumer = Component::spawn("consumer", &s)?;
    let producer = Component::spawn("producer", &s)?;
    let base = format!("http://127.0.0.1:{}", s.server.port);
    wait_ready(&format!("{base}/readyz"), Duration::from_secs(30)).await?;
    let db = testkit::connect(&db_url).await?;
    let on: String = scalar(&db, "SHOW track_commit_timestamp").await?;
    if on != "on" {
        bail!("PostgreSQL runs with track_commit_timestamp = {on}: scripts/bench.sh turns it on");
    }
    testkit::poll_until(
        Duration::from_secs(30),
        "the consumer to own the partitions",
        || {
            let db = &db;
            async move {
                (scalar(db, "SELECT count(*) FROM partition_leases")
                    .await
                    .unwrap_or(0)
                    == PARTITIONS as i64)
                    .then_some(())
            }
        },
    )
    .await?;
    consumer.reset_peak();
    producer.reset_peak();

    let started = Instant::now();
    let with_id = |visitor, id| mutation_body(visitor, Some(id));
    let (sent, errors) = send_at_rate(p, &format!("{base}/query"), with_id).await;
    let sent = Arc::try_unwrap(sent)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .context("the sender still holds its record")?;
    let ids: Vec<uuid::Uuid> = sent.at.keys().copied().collect();
    let stored = committed_at(&db, &ids, Duration::from_secs(60)).await?;
    let mut latencies = Vec::with_capacity(stored.len());
    for (id, committed) in &stored {
        if let Some(at) = sent.at.get(id) {
            latencies.push((*committed - *at).to_std().unwrap_or_default());
        }
    }
    let elapsed = started.elapsed();
    let http = sent.http;
    r.end_to_end_http = load::stats(http.len() as u64, errors, p.e2e, http);
    r.end_to_end = load::stats(latencies.len() as u64, errors, elapsed, latencies);
    r.rss_peak_mb
        .insert("producer (end to end)".into(), producer.rss_peak_mb());
    r.rss_peak_mb
        .insert("consumer (end to end)".into(), consumer.rss_peak_mb());
    producer.stop().await?;
    consumer.stop().await?;

    // The floor under the answer: the Go peer at the same rate, to a topic nobody consumes.
    let topic = format!("{}go_e2e", s.kafka.topic_prefix);
    let peer = GoPeer::start(brokers, &topic, PARTITIONS, 1).await?;
    // The tutorial's input has no client-chosen id.
    let without_id = |visitor, _| mutation_body(visitor, None);
    let (sent, errors) = send_at_rate(p, &format!("{}/query", peer.base), without_id).await;
    let http = sent.lock().map(|s| s.http.clone()).unwrap_or_default();
    r.end_to_end_peer_http = load::stats(http.len() as u64, errors, p.e2e, http);
    Ok(())
}

/// Sends `p.e2e_rate` page views a second for `p.e2e`, in 100 ticks a second, each as its own
/// request from one of 1,000 visitors with the body `body(visitor, id)`; returns what was
/// answered and the error count.
async fn send_at_rate(
    p: &Params,
    query: &str,
    body: fn(usize, uuid::Uuid) -> String,
) -> (Arc<Mutex<Sent>>, u64) {
    let http = reqwest::Client::new();
    let sent: Arc<Mutex<Sent>> = Arc::default();
    let errors = Arc::new(AtomicU64::new(0));
    let ticks_per_second = 100u64;
    let per_tick = (p.e2e_rate / ticks_per_second).max(1);
    let ticks = (p.e2e.as_secs_f64() * ticks_per_second as f64) as u64;
    let started = Instant::now();
    let mut inflight = Vec::new();
    for tick in 0..ticks {
        let due = started + Duration::from_millis(tick * 1000 / ticks_per_second);
        tokio::time::sleep_until(due.into()).await;
        for i in 0..per_tick {
            let (http, query) = (http.clone(), query.to_owned());
            let (sent, errors) = (Arc::clone(&sent), Arc::clone(&errors));
            inflight.push(tokio::spawn(async move {
                let id = uuid::Uuid::now_v7();
                let visitor = ((tick * per_tick + i) % 1000) as usize;
                let body = body(visitor, id);
                let (at, t0) = (Utc::now(), Instant::now());
                if post_ok(&http, &query, visitor, body).await {
                    let latency = t0.elapsed();
                    if let Ok(mut s) = sent.lock() {
                        s.at.insert(id, at);
                        s.http.push(latency);
                    }
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    for t in inflight {
        let _ = t.await;
    }
    let errors = errors.load(Ordering::Relaxed);
    (sent, errors)
}

/// The commit time of each of `ids` once all are stored (waiting at most `limit`).
async fn committed_at(
    db: &sea_orm::DatabaseConnection,
    ids: &[uuid::Uuid],
    limit: Duration,
) -> Result<Vec<(uuid::Uuid, DateTime<Utc>)>> {
    let list = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let wanted = ids.len() as i64;
    let count = format!("SELECT count(*) FROM kafka_events WHERE id IN ({list})");
    testkit::poll_until(limit, "every answered event stored", || {
        let count = &count;
        async move { (scalar(db, count).await.unwrap_or(0) == wanted).then_some(()) }
    })
    .await?;
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT id, pg_xact_commit_timestamp(xmin) FROM raw_events WHERE id IN ({list})"
            ),
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<uuid::Uuid>(0)?,
                row.try_get_by_index::<DateTime<Utc>>(1)?,
            ))
        })
        .collect()
}
