//! The whole pipeline (producer, Apache Kafka, consumer, PostgreSQL) when brokers die: a
//! partition leader SIGKILLed in a three-broker KRaft cluster and then restarted, a single
//! broker SIGKILLed and restarted, and the two ways a stored offset falls off the log.
//!
//! "Lost" and "duplicated" are counted against what the producer acknowledged: every
//! acknowledged id must be in `kafka_events`, once, and nothing may be stored that the producer
//! never accepted.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rskafka::client::partition::OffsetAt;
use rskafka::record::Record;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{json, Value};
use settings::{OffsetOutOfRange, Settings};
use uuid::Uuid;

/// The producer inside the test process, and a client for it.
struct Producer {
    app: testkit::TestProducer,
    http: reqwest::Client,
}

/// What the producer answered to one mutation.
#[derive(Debug)]
enum Answer {
    Acked(Uuid),
    Refused {
        code: String,
        retryable: bool,
        ids: Vec<Uuid>,
    },
}

impl Producer {
    async fn start(settings: Settings) -> Self {
        let app = testkit::TestProducer::start(settings)
            .await
            .expect("the producer starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Producer { app, http }
    }

    async fn post(&self, user: &str, path: &str) -> Answer {
        self.post_with_id(user, path, None).await
    }

    /// Posts one page view, with the idempotency key `id` if given.
    async fn post_with_id(&self, user: &str, path: &str, id: Option<Uuid>) -> Answer {
        let mut event = json!({"eventType": "PAGE_VIEW", "userId": user, "path": path,
                               "search": "", "title": "t", "url": "faults.example"});
        if let Some(id) = id {
            event["id"] = json!(id.to_string());
        }
        let body = json!({
            "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
            "variables": {"e": event},
        });
        // A browser of its own per user: a visitor id of its own, spread over the partitions.
        let answer: Value = self
            .http
            .post(format!("{}/query", self.app.base))
            .header("user-agent", format!("Mozilla/5.0 (fault test; {user})"))
            .json(&body)
            .send()
            .await
            .expect("the producer answers over HTTP")
            .json()
            .await
            .expect("a JSON answer");
        if let Some(id) = answer["data"]["register_kafka_event"]["id"].as_str() {
            return Answer::Acked(id.parse().expect("a UUID"));
        }
        let ext = &answer["errors"][0]["extensions"];
        Answer::Refused {
            code: ext["code"].as_str().unwrap_or("none").to_owned(),
            retryable: ext["retryable"].as_bool().unwrap_or(false),
            ids: ext["eventIds"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|i| i.as_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    async fn stop(self) {
        self.app.stop().await.expect("the producer stops cleanly");
    }
}

/// Every answer the posting clients got.
#[derive(Default)]
struct Tally {
    acked: Vec<Uuid>,
    refused: Vec<(String, bool, Vec<Uuid>)>,
}

impl Tally {
    fn record(&mut self, answer: Answer) {
        match answer {
            Answer::Acked(id) => self.acked.push(id),
            Answer::Refused {
                code,
                retryable,
                ids,
            } => self.refused.push((code, retryable, ids)),
        }
    }
}

/// Clients that post page views one after another until told to stop.
struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(producer: &Arc<Producer>, visitors: usize) -> Self {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..visitors)
            .map(|v| {
                let (producer, tally, stop) = (producer.clone(), tally.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let answer = producer
                            .post(&format!("visitor-{v}"), &format!("/p/{n}"))
                            .await;
                        tally.lock().expect("tally").record(answer);
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            tally,
            stop,
            clients,
        }
    }

    fn acked(&self) -> usize {
        self.tally.lock().expect("tally").acked.len()
    }

    /// Waits until `more` events beyond those acknowledged so far are acknowledged.
    async fn until_acked(&self, more: usize, what: &str) {
        let target = self.acked() + more;
        testkit::poll_until(Duration::from_secs(120), what, || async {
            (self.acked() >= target).then_some(())
        })
        .await
        .expect("acknowledgements resume");
    }

    async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.expect("a posting client");
        }
        Arc::try_unwrap(self.tally)
            .ok()
            .expect("no other owner")
            .into_inner()
            .expect("tally")
    }
}

async fn stored_ids(db: &DatabaseConnection) -> Vec<Uuid> {
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

/// Every acknowledged id stored exactly once, nothing stored that was never sent, and every
/// partition's stored offset at its high watermark (the consumer followed the leaders).
async fn assert_exactly_the_acknowledged_events(db: &DatabaseConnection, tally: &Tally) {
    for (code, retryable, _) in &tally.refused {
        assert!(
            *retryable && (code == "KAFKA_UNAVAILABLE" || code == "OVERLOADED"),
            "only retryable refusals while a broker is down, got {code}"
        );
    }
    let acked: HashSet<Uuid> = tally.acked.iter().copied().collect();
    assert_eq!(acked.len(), tally.acked.len(), "distinct acknowledged ids");
    let stored = testkit::poll_until(
        Duration::from_secs(120),
        "every acknowledged event stored",
        || async {
            let stored = stored_ids(db).await;
            let set: HashSet<Uuid> = stored.iter().copied().collect();
            acked.is_subset(&set).then_some(stored)
        },
    )
    .await
    .expect("0 acknowledged events lost");
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "0 duplicated");
    let sent: HashSet<Uuid> = tally
        .refused
        .iter()
        .flat_map(|(_, _, ids)| ids.iter().copied())
        .chain(acked.iter().copied())
        .collect();
    assert!(unique.is_subset(&sent), "nothing stored that was not sent");
    println!(
        "acknowledged {}, refused (retryable) {}, stored {}",
        acked.len(),
        tally.refused.len(),
        stored.len()
    );
}

/// A partition that holds records.
async fn busy_partition(brokers: &str, topic: &str) -> i32 {
    let kafka = testkit::kafka_client(brokers).await.expect("kafka");
    for partition in 0..PARTITIONS {
        let pc = testkit::partition_client(&kafka, topic, partition)
            .await
            .expect("partition");
        let end = tokio::time::timeout(Duration::from_secs(20), pc.get_offset(OffsetAt::Latest))
            .await
            .expect("in time")
            .expect("high watermark");
        if end > 0 {
            return partition;
        }
    }
    panic!("no partition of {topic} holds a record")
}

async fn assert_offsets_reach_the_high_watermarks(
    db: &DatabaseConnection,
    brokers: &str,
    topic: &str,
) {
    let kafka = testkit::kafka_client(brokers).await.expect("kafka");
    for partition in 0..PARTITIONS {
        let pc = testkit::partition_client(&kafka, topic, partition)
            .await
            .expect("partition");
        let high_watermark =
            tokio::time::timeout(Duration::from_secs(20), pc.get_offset(OffsetAt::Latest))
                .await
                .expect("in time")
                .expect("high watermark");
        let sql = format!(
            "SELECT coalesce(max(next_offset), 0) FROM consumer_offsets WHERE topic = '{topic}' AND partition = {partition}"
        );
        wait_for_count(db, &sql, high_watermark, Duration::from_secs(60)).await;
    }
}

/// Producer and consumer in this process, on `brokers` and a fresh database.
struct Pipeline {
    topic: String,
    db: DatabaseConnection,
    producer: Arc<Producer>,
    consumer: testkit::TestConsumer,
}

impl Pipeline {
    /// Returns once the consumer owns every partition of the topic the producer created.
    async fn start(brokers: &str, replication: i16) -> Self {
        Self::start_with(brokers, |s| s.kafka.replication_factor = replication).await
    }

    async fn start_with(brokers: &str, tweak: impl FnOnce(&mut Settings)) -> Self {
        let url = testkit::fresh_database().await.expect("database");
        let mut settings = testkit::settings(brokers, &url, &testkit::unique_prefix());
        tweak(&mut settings);
        let db = testkit::connect(&url).await.expect("db");
        let producer = Arc::new(Producer::start(settings.clone()).await);
        let consumer = in_process(settings.clone()).await;
        wait_for_count(
            &db,
            "SELECT count(*) FROM partition_leases",
            i64::from(PARTITIONS),
            Duration::from_secs(60),
        )
        .await;
        Pipeline {
            topic: settings.consumer.topics[0].clone(),
            db,
            producer,
            consumer,
        }
    }

    async fn stop(self) {
        self.consumer.stop().await.expect("the consumer stops");
        let producer = Arc::try_unwrap(self.producer).ok().expect("sole owner");
        producer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_leader_killed_and_restarted_in_a_three_broker_cluster_loses_and_duplicates_no_acknowledged_event(
) {
    let cluster = testkit::Cluster::start(3).await.expect("a 3-node cluster");
    let p = Pipeline::start(cluster.bootstrap(), 3).await;
    let topic = p.topic.clone();

    let load = Load::start(&p.producer, 6);
    load.until_acked(300, "acknowledgements before the kill")
        .await;
    // The leader of a partition that takes writes.
    let partition = busy_partition(cluster.bootstrap(), &topic).await;
    let leader = cluster.leader(&topic, partition).await.expect("a leader");
    cluster.kill(leader).await.expect("SIGKILL the leader");
    load.until_acked(300, "acknowledgements after the election, no restart")
        .await;
    let new_leader = cluster.leader(&topic, partition).await.expect("a leader");
    assert_ne!(
        new_leader, leader,
        "another broker leads partition {partition}"
    );

    cluster
        .restart(leader)
        .await
        .expect("the killed broker rejoins");
    load.until_acked(300, "acknowledgements with all three brokers")
        .await;
    let tally = load.finish().await;

    assert_exactly_the_acknowledged_events(&p.db, &tally).await;
    assert_offsets_reach_the_high_watermarks(&p.db, cluster.bootstrap(), &topic).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_broker_killed_and_restarted_keeps_every_acknowledged_event_and_the_producer_recovers(
) {
    let broker = testkit::Broker::start().await.expect("a broker");
    let p = Pipeline::start(&broker.address(), 1).await;

    let load = Load::start(&p.producer, 4);
    load.until_acked(300, "acknowledgements before the kill")
        .await;
    broker.kill().await.expect("SIGKILL the broker");
    let during = p.producer.post("alone", "/during").await;
    assert!(
        matches!(&during, Answer::Refused { code, retryable: true, .. } if code == "KAFKA_UNAVAILABLE"),
        "{during:?}"
    );
    broker.resume().await.expect("the broker restarts");
    load.until_acked(
        300,
        "acknowledgements after the restart, no producer restart",
    )
    .await;
    let mut tally = load.finish().await;
    // The client retries the refused event with the id it was given: stored once, whether or
    // not the first attempt reached the broker after all.
    let Answer::Refused { ids, .. } = &during else {
        unreachable!("checked above")
    };
    let retried = p
        .producer
        .post_with_id("alone", "/during", ids.first().copied())
        .await;
    assert!(
        matches!(&retried, Answer::Acked(id) if Some(id) == ids.first()),
        "{retried:?}"
    );
    tally.record(during);
    tally.record(retried);

    assert_exactly_the_acknowledged_events(&p.db, &tally).await;
    assert_offsets_reach_the_high_watermarks(&p.db, &broker.address(), &p.topic).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_below_the_log_start_before_they_were_stored_are_skipped_logged_and_counted(
) {
    let s = setup().await;
    let records: Vec<Record> = views(100, "retention")
        .iter()
        .map(|v| Record {
            key: Some(v.fields.user_id.as_bytes().to_vec()),
            value: Some(v.encode()),
            headers: Default::default(),
            timestamp: v.received_at,
        })
        .collect();
    produce_raw(&s.kafka, &s.topic, 0, records).await;
    // What retention does to a log nobody consumed: its start moves past unstored records.
    let pc = testkit::partition_client(&s.kafka, &s.topic, 0)
        .await
        .expect("partition");
    tokio::time::timeout(Duration::from_secs(20), pc.delete_records(60, 10_000))
        .await
        .expect("in time")
        .expect("delete records");
    set_stored_offset(&s, 0, 0).await;

    let consumer = in_process(s.settings.clone()).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        40,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        count(&s.db, "SELECT min(\"offset\") FROM kafka_events").await,
        60
    );
    let metrics = consumer.metrics().await.expect("metrics");
    let skipped = format!(
        "pageviews_consumer_skipped_offsets_total{{topic=\"{}\",partition=\"0\"}} 60",
        s.topic
    );
    assert!(metrics.contains(&skipped), "{metrics}");
    consumer.stop().await.expect("the consumer stops");
    let next = count(
        &s.db,
        &format!(
            "SELECT next_offset FROM consumer_offsets WHERE topic = '{}' AND partition = 0",
            s.topic
        ),
    )
    .await;
    assert_eq!(next, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_offset_beyond_the_high_watermark_waits_without_skipping_when_so_configured() {
    let mut s = setup().await;
    s.settings.consumer.on_offset_out_of_range = OffsetOutOfRange::Wait;
    produce(&s.kafka, &s.topic, &views(40, "kept")).await;
    // As after a broker lost its data: the database remembers more than the broker has.
    for partition in 0..PARTITIONS {
        set_stored_offset(&s, partition, 1000).await;
    }
    let consumer = in_process(s.settings.clone()).await;
    // Seen twice on every partition: it looked, waited, looked again.
    testkit::poll_until(
        Duration::from_secs(60),
        "the consumer to report the lost records twice per partition",
        || async {
            let metrics = consumer.metrics().await.expect("metrics");
            (0..PARTITIONS)
                .all(|p| {
                    let prefix = format!(
                        "pageviews_consumer_beyond_high_watermark_total{{topic=\"{}\",partition=\"{p}\"}} ",
                        s.topic
                    );
                    metrics
                        .lines()
                        .filter_map(|l| l.strip_prefix(&prefix))
                        .any(|n| n.parse::<u64>().is_ok_and(|n| n >= 2))
                })
                .then_some(())
        },
    )
    .await
    .expect("the metric says why the consumer waits");
    assert_eq!(count(&s.db, "SELECT count(*) FROM kafka_events").await, 0);
    assert_eq!(
        count(
            &s.db,
            "SELECT count(*) FROM consumer_offsets WHERE next_offset = 1000"
        )
        .await,
        i64::from(PARTITIONS),
        "no offset moved"
    );
    consumer.stop().await.expect("the consumer stops");
}

/// Deletes the test's topic and creates it again, empty, with the same partitions.
async fn recreate_topic(s: &Setup) {
    testkit::delete_topic(&s.kafka, &s.topic)
        .await
        .expect("topic deleted");
    testkit::poll_until(
        Duration::from_secs(30),
        "the topic to be created again",
        || async {
            testkit::create_topic(&s.kafka, &s.topic, PARTITIONS)
                .await
                .ok()
        },
    )
    .await
    .expect("topic re-created");
}

/// How many of `ids` are stored.
async fn stored_among(db: &DatabaseConnection, ids: &HashSet<Uuid>) -> usize {
    stored_ids(db)
        .await
        .iter()
        .filter(|id| ids.contains(id))
        .count()
}

/// A consumer stores 40 events and stops; the topic is replaced by a new log that grows well
/// past the stored offsets (about 10 per partition) with 200 other events; a consumer starts
/// again. Nothing at the stored offsets looks wrong: only the record below them can tell.
async fn replace_the_log_while_the_consumer_is_down(
    s: &Setup,
) -> (testkit::TestConsumer, HashSet<Uuid>) {
    let consumer = in_process(s.settings.clone()).await;
    produce(&s.kafka, &s.topic, &views(40, "before")).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        40,
        Duration::from_secs(60),
    )
    .await;
    consumer.stop().await.expect("the consumer stops");
    recreate_topic(s).await;
    let after = views(200, "after");
    produce(&s.kafka, &s.topic, &after).await;
    let consumer = in_process(s.settings.clone()).await;
    (consumer, after.iter().map(|v| v.id).collect())
}

async fn offsets_sum(s: &Setup) -> i64 {
    let sql = format!(
        "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE topic = '{}'",
        s.topic
    );
    count(&s.db, &sql).await
}

fn has_line(metrics: &str, prefix: &str) -> bool {
    metrics.lines().any(|l| l.starts_with(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_re_created_and_grown_past_the_stored_offsets_is_read_from_its_start_when_so_configured(
) {
    let mut s = setup().await;
    s.settings.consumer.on_offset_out_of_range = OffsetOutOfRange::Earliest;
    let (consumer, after) = replace_the_log_while_the_consumer_is_down(&s).await;
    testkit::poll_until(
        Duration::from_secs(90),
        "every event of the new log stored",
        || async { (stored_among(&s.db, &after).await == after.len()).then_some(()) },
    )
    .await
    .expect("nothing of the new log skipped");
    let metrics = consumer.metrics().await.expect("metrics");
    for p in 0..PARTITIONS {
        let counted = format!(
            "pageviews_consumer_log_replaced_total{{topic=\"{}\",partition=\"{p}\"}} 1",
            s.topic
        );
        assert!(has_line(&metrics, &counted), "partition {p}: {metrics}");
    }
    consumer.stop().await.expect("the consumer stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_re_created_and_grown_past_the_stored_offsets_is_not_skipped_and_the_metric_says_it_waits(
) {
    let mut s = setup().await;
    s.settings.consumer.on_offset_out_of_range = OffsetOutOfRange::Wait;
    let (consumer, _after) = replace_the_log_while_the_consumer_is_down(&s).await;
    let before = offsets_sum(&s).await;
    testkit::poll_until(Duration::from_secs(90), "every partition to wait", || async {
        let metrics = consumer.metrics().await.ok()?;
        (0..PARTITIONS)
            .all(|p| {
                has_line(&metrics, &format!(
                    "pageviews_consumer_waiting{{topic=\"{}\",partition=\"{p}\",reason=\"log_replaced\"}} 1",
                    s.topic
                ))
            })
            .then_some(())
    })
    .await
    .expect("the metric says why the consumer waits");
    assert_eq!(offsets_sum(&s).await, before, "no offset moved");
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM kafka_events").await,
        40,
        "nothing of the new log stored"
    );
    consumer.stop().await.expect("the consumer stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_wiped_while_the_pipeline_runs_loses_no_event_acknowledged_after_it() {
    let broker = testkit::Broker::start().await.expect("a broker");
    let p = Pipeline::start_with(&broker.address(), |s| {
        s.consumer.on_offset_out_of_range = OffsetOutOfRange::Earliest;
    })
    .await;
    let load = Load::start(&p.producer, 4);
    load.until_acked(300, "acknowledgements before the wipe")
        .await;
    broker.wipe().await.expect("the broker's data wiped");
    // Answers that came before this point may be for records the wipe destroyed.
    let lost_with_the_broker = load.acked();
    load.until_acked(400, "acknowledgements after the wipe, no producer restart")
        .await;
    let tally = load.finish().await;
    let after: HashSet<Uuid> = tally.acked[lost_with_the_broker..]
        .iter()
        .copied()
        .collect();
    testkit::poll_until(
        Duration::from_secs(120),
        "every event acknowledged after the wipe stored",
        || async { (stored_among(&p.db, &after).await == after.len()).then_some(()) },
    )
    .await
    .expect("0 events acknowledged after the wipe lost");
    let stored = stored_ids(&p.db).await;
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "0 duplicated");
    println!("after the wipe: acknowledged {}, all stored", after.len());
    p.stop().await;
}
