//! The deployment `docs/deploy.md` describes, all of it at once, as processes: two producers, two
//! consumers, a three-broker KRaft cluster, a PostgreSQL primary with a streaming replica, and a
//! dashboard reading from the replica. While clients post to both producers, one of each is
//! SIGKILLed: a producer, a consumer, a partition's leader, and the replica. Every
//! acknowledged event is then stored once, nothing is stored that was not sent, the rollups
//! equal a recomputation from the stored events, and the dashboard, on the restarted replica,
//! counts exactly the stored page views.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use settings::{ExposeSecret, Settings};
use uuid::Uuid;

const SITE: &str = "deploy.example";

/// What the clients sent, and what was acknowledged.
#[derive(Default)]
struct Sent {
    ids: Vec<Uuid>,
    acked: Vec<Uuid>,
    /// Refusals by code and whether the producer called them retryable.
    refused: Vec<(String, bool)>,
    /// Posts no producer answered (the killed one).
    unanswered: usize,
}

/// What one post came to.
enum Outcome {
    Acked,
    Refused(String, bool),
    Unanswered,
}

/// A process started from `exe`, and where it answers.
struct Service {
    process: testkit::ChildProcess,
    base: String,
}

async fn serve(exe: &std::path::Path, settings: &Settings, port: u16) -> Service {
    let exe = exe.to_str().expect("a UTF-8 path");
    let process = testkit::ChildProcess::spawn(exe, settings).expect("the binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    testkit::poll_until(Duration::from_secs(60), "ready", || async {
        let ready = http.get(format!("{base}/readyz")).send().await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await
    .expect("ready within a minute");
    Service { process, base }
}

/// Clients posting page views with ids of their own, round robin over the producers, as a load
/// balancer would; a post that is not acknowledged is sent again to the next producer.
struct Load {
    sent: Arc<Mutex<Sent>>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(producers: Vec<String>, visitors: usize) -> Self {
        let sent = Arc::new(Mutex::new(Sent::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let producers = Arc::new(producers);
        let turn = Arc::new(AtomicUsize::new(0));
        let clients = (0..visitors)
            .map(|v| {
                let (sent, stop) = (sent.clone(), stop.clone());
                let (producers, turn) = (producers.clone(), turn.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("http client");
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let id = Uuid::new_v4();
                        sent.lock().expect("sent").ids.push(id);
                        // A producer that does not answer, or refuses, is skipped for the next
                        // one, with the same id: the idempotency key makes the retry safe.
                        for _ in 0..2 * producers.len() {
                            let at = turn.fetch_add(1, Ordering::Relaxed) % producers.len();
                            let outcome = post(&http, &producers[at], v, n, id).await;
                            let mut sent = sent.lock().expect("sent");
                            match outcome {
                                Outcome::Acked => {
                                    sent.acked.push(id);
                                    break;
                                }
                                Outcome::Refused(code, retryable) => {
                                    sent.refused.push((code, retryable))
                                }
                                Outcome::Unanswered => sent.unanswered += 1,
                            }
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            sent,
            stop,
            clients,
        }
    }

    fn acked(&self) -> usize {
        self.sent.lock().expect("sent").acked.len()
    }

    async fn until_acked(&self, more: usize, what: &str) {
        let target = self.acked() + more;
        testkit::poll_until(Duration::from_secs(120), what, || async {
            (self.acked() >= target).then_some(())
        })
        .await
        .expect("acknowledgements go on");
    }

    async fn finish(self) -> Sent {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.expect("a client");
        }
        Arc::try_unwrap(self.sent)
            .ok()
            .expect("no other owner")
            .into_inner()
            .expect("sent")
    }
}

/// What the producer at `base` answered to the page view `id`.
async fn post(http: &reqwest::Client, base: &str, visitor: usize, n: usize, id: Uuid) -> Outcome {
    let event = json!({"id": id.to_string(), "eventType": "PAGE_VIEW", "userId": "",
                       "path": format!("/p/{n}"), "search": "", "title": "t",
                       "url": format!("https://{SITE}/p/{n}")});
    let body = json!({
        "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
        "variables": {"e": event},
    });
    let Ok(response) = http
        .post(format!("{base}/query"))
        .header(
            "user-agent",
            format!("Mozilla/5.0 (deployment test; {visitor})"),
        )
        .json(&body)
        .send()
        .await
    else {
        return Outcome::Unanswered;
    };
    let Ok(answer) = response.json::<Value>().await else {
        return Outcome::Unanswered;
    };
    if answer["data"]["register_kafka_event"]["id"].as_str() == Some(id.to_string().as_str()) {
        return Outcome::Acked;
    }
    let ext = &answer["errors"][0]["extensions"];
    Outcome::Refused(
        ext["code"].as_str().unwrap_or("none").to_owned(),
        ext["retryable"].as_bool().unwrap_or(false),
    )
}

async fn stored_ids(db: &sea_orm::DatabaseConnection) -> Vec<Uuid> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    db.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT id FROM kafka_events",
    ))
    .await
    .expect("query")
    .into_iter()
    .map(|row| row.try_get_by_index::<Uuid>(0).expect("an id"))
    .collect()
}

async fn pageviews_on_the_dashboard(http: &reqwest::Client, base: &str) -> Option<f64> {
    let query = json!({"query": "query($q: StatsQuery!) { stats(query: $q) { results { metrics } } }",
                       "variables": {"q": {"site": SITE, "dateRange": {"period": "ALL"}, "metrics": ["PAGEVIEWS"]}}});
    let answer: Value = http
        .post(format!("{base}/query"))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .json(&query)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    answer["data"]["stats"]["results"][0]["metrics"][0].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_producers_two_consumers_three_brokers_and_a_replica_lose_one_of_each_and_count_every_acknowledged_event_once(
) {
    let cluster = testkit::Cluster::start(3)
        .await
        .expect("a 3-broker cluster");
    let primary = testkit::Postgres::start().await.expect("the primary");
    let url = testkit::fresh_database_on(&primary.admin_url())
        .await
        .expect("database");
    let standby = testkit::Postgres::standby_of(&primary)
        .await
        .expect("the replica");
    let mut base = testkit::settings(cluster.bootstrap(), &url, &testkit::unique_prefix());
    base.kafka.replication_factor = 3;
    let db = testkit::connect(&url).await.expect("db");

    let consumer_exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_consumer"));
    let producer_exe = testkit::sibling_binary(env!("CARGO_BIN_EXE_consumer"), "producer");
    let dashboard_exe = testkit::sibling_binary(env!("CARGO_BIN_EXE_consumer"), "dashboard");
    let mut producers = Vec::new();
    for _ in 0..2 {
        let mut settings = base.clone();
        settings.server.port = testkit::free_port().expect("a port");
        let port = settings.server.port;
        producers.push(serve(&producer_exe, &settings, port).await);
    }
    let mut consumers: Vec<testkit::ChildProcess> = (0..2)
        .map(|_| {
            testkit::ChildProcess::spawn(consumer_exe.to_str().expect("a path"), &base)
                .expect("a consumer starts")
        })
        .collect();
    wait_for_count(
        &db,
        "SELECT count(*) FROM partition_leases",
        i64::from(PARTITIONS),
        Duration::from_secs(60),
    )
    .await;
    let mut on_replica = base.clone();
    on_replica.dashboard.port = testkit::free_port().expect("a port");
    on_replica.dashboard.database_url = standby.url_of(&url).into();
    let dashboard_port = on_replica.dashboard.port;
    testkit::poll_until(
        Duration::from_secs(30),
        "the database on the replica",
        || async {
            let db = testkit::connect(on_replica.dashboard.database_url.expose_secret())
                .await
                .ok()?;
            testkit::scalar(&db, "SELECT count(*) FROM sites")
                .await
                .ok()
        },
    )
    .await
    .expect("replayed");
    let dashboard = serve(&dashboard_exe, &on_replica, dashboard_port).await;

    let load = Load::start(producers.iter().map(|p| p.base.clone()).collect(), 6);
    load.until_acked(200, "acknowledgements from both producers")
        .await;
    // One of each, one after the other, with the load running.
    let mut lost_producer = producers.remove(0);
    lost_producer
        .process
        .kill()
        .await
        .expect("SIGKILL a producer");
    load.until_acked(200, "acknowledgements from the other producer")
        .await;
    consumers[0].kill().await.expect("SIGKILL a consumer");
    load.until_acked(200, "acknowledgements with one consumer")
        .await;
    let topic = base.consumer.topics[0].clone();
    let leader = cluster.leader(&topic, 0).await.expect("a leader");
    cluster.kill(leader).await.expect("SIGKILL a broker");
    load.until_acked(200, "acknowledgements after the election")
        .await;
    standby.kill().await.expect("SIGKILL the replica");
    let http = reqwest::Client::new();
    let unready = http
        .get(format!("{}/readyz", dashboard.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        unready.status(),
        503,
        "the dashboard says its database is gone"
    );
    load.until_acked(200, "acknowledgements with the replica down")
        .await;
    let sent = load.finish().await;

    for (code, retryable) in &sent.refused {
        assert!(
            *retryable && (code == "KAFKA_UNAVAILABLE" || code == "OVERLOADED"),
            "only retryable refusals while a broker is down, got {code}"
        );
    }
    // Every acknowledged event stored, once; nothing stored that was never sent.
    let acked: HashSet<Uuid> = sent.acked.iter().copied().collect();
    let stored = testkit::poll_until(
        Duration::from_secs(120),
        "every acknowledged event stored",
        || async {
            let stored = stored_ids(&db).await;
            let set: HashSet<Uuid> = stored.iter().copied().collect();
            acked.is_subset(&set).then_some(stored)
        },
    )
    .await
    .expect("0 acknowledged events lost");
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "0 duplicated");
    let all_sent: HashSet<Uuid> = sent.ids.iter().copied().collect();
    assert!(
        unique.is_subset(&all_sent),
        "nothing stored that was not sent"
    );
    println!(
        "sent {}, acknowledged {}, stored {}; refused (retryable) {}, unanswered {}",
        all_sent.len(),
        acked.len(),
        stored.len(),
        sent.refused.len(),
        sent.unanswered
    );
    // Stored is not yet counted: the consumer left may still be catching up on a partition.
    let pageviews =
        "SELECT coalesce(sum(pageviews), 0)::bigint FROM rollup_days WHERE dimension = 'all'";
    wait_for_count(&db, pageviews, stored.len() as i64, Duration::from_secs(60)).await;
    let rebuilt = consumer::rebuild::rebuild(&db, &base.analytics, consumer::rebuild::Mode::Verify)
        .await
        .expect("recomputes");
    assert!(
        !rebuilt.differed,
        "the rollups equal a recomputation from the stored events"
    );

    // The replica back: the dashboard on it counts exactly the stored page views.
    standby.resume().await.expect("the replica restarts");
    let want = stored.len() as f64;
    testkit::poll_until(
        Duration::from_secs(60),
        "the dashboard on the replica",
        || async {
            (pageviews_on_the_dashboard(&http, &dashboard.base).await == Some(want)).then_some(())
        },
    )
    .await
    .expect("the stored page views, through the replica");

    for mut service in producers.into_iter().chain([dashboard]) {
        service.process.terminate().expect("SIGTERM");
        service
            .process
            .wait(Duration::from_secs(30))
            .await
            .expect("exits");
    }
    for mut consumer in consumers.into_iter().skip(1) {
        consumer.terminate().expect("SIGTERM");
        consumer.wait(Duration::from_secs(30)).await.expect("exits");
    }
}
