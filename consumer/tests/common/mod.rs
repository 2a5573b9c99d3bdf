//! Helpers of the consumer's integration tests: consumer processes, direct produces, queries.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use event::partitioner::partition_for;
use event::PageView;
use rskafka::client::partition::Compression;
use rskafka::client::Client;
use rskafka::record::Record;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use settings::Settings;

pub const PARTITIONS: i32 = 4;

/// A test's own topic and database on the shared broker and cluster.
pub struct Setup {
    pub settings: Settings,
    pub topic: String,
    pub db: DatabaseConnection,
    pub kafka: Client,
}

pub async fn setup() -> Setup {
    let url = testkit::fresh_database().await.expect("database");
    setup_on(&testkit::brokers(), &url).await
}

pub async fn setup_on(brokers: &str, database_url: &str) -> Setup {
    let settings = testkit::settings(brokers, database_url, &testkit::unique_prefix());
    let topic = settings.consumer.topics[0].clone();
    let kafka = testkit::kafka_client(brokers).await.expect("kafka");
    testkit::create_topic(&kafka, &topic, PARTITIONS)
        .await
        .expect("topic");
    let db = testkit::connect(database_url).await.expect("db");
    Setup {
        settings,
        topic,
        db,
        kafka,
    }
}

pub fn page_view(user: &str, seq: usize) -> PageView {
    testkit::page_view(user, &format!("/page/{seq}"))
}

/// Places of the test users: a city database's answers, a country database's, and none.
const PLACES: [(Option<&str>, Option<&str>, Option<&str>); 3] = [
    (Some("GB"), Some("GB-ENG"), Some("London")),
    (Some("SE"), None, None),
    (None, None, None),
];

/// `n` events of 97 users: page views, and every tenth a custom event `Signup` (every
/// twentieth for the `pro` plan, the others `free`).
pub fn views(n: usize, tag: &str) -> Vec<PageView> {
    (0..n)
        .map(|i| {
            let mut view = page_view(&format!("{tag}-user-{}", i % 97), i);
            // Where each user is, as the producer's lookup would say: the rollups by country,
            // region and city are checked against a recomputation too.
            let (country, region, city) = PLACES[i % 97 % PLACES.len()];
            view.visit.country = country.map(str::to_owned);
            view.visit.region = region.map(str::to_owned);
            view.visit.city = city.map(str::to_owned);
            if i % 10 == 9 {
                let plan = if i % 20 == 19 { "pro" } else { "free" };
                view.fields.name = Some("Signup".into());
                view.fields.props = Some(vec![event::Property {
                    key: "plan".into(),
                    value: plan.into(),
                }]);
            }
            view
        })
        .collect()
}

/// The goals of the test events' site: a page goal and an event goal narrowed by a property,
/// as the Stats API's `createGoal` stores them.
pub async fn create_goals(db: &DatabaseConnection) {
    let regex = analytics::goal::page_regex("/page/1*");
    let sql = format!(
        "INSERT INTO goals (site, name, page, page_regex) VALUES ('example.com', 'Ones', '/page/1*', '{regex}'); \
         INSERT INTO goals (site, name, event, properties) VALUES ('example.com', 'Pro', 'Signup', \
             '[{{\"key\": \"plan\", \"value\": \"pro\"}}]')"
    );
    db.execute_unprepared(&sql).await.expect("goals");
}

/// Each goal's conversions and converting visitors equal a count of the stored events that
/// complete it (written here without the goal rule's SQL).
pub async fn assert_conversions_equal_the_stored_events(db: &DatabaseConnection) {
    let recorded = |goal: &str| {
        format!(
            "SELECT count(*) * 1000000 + count(DISTINCT (c.day, c.visitor)) FROM conversions c \
             JOIN goals g ON g.id = c.goal_id WHERE g.name = '{goal}'"
        )
    };
    let ones =
        "SELECT count(*) * 1000000 + count(DISTINCT (v.day, v.visitor)) FROM kafka_events e \
         JOIN visits v ON v.id = e.visit_id \
         WHERE e.event_type = 'PAGE_VIEW' AND (e.path = '/page/1' OR e.path LIKE '/page/1_%') \
         AND e.path NOT LIKE '/page/1%/%'";
    let pro = "SELECT count(*) * 1000000 + count(DISTINCT (v.day, v.visitor)) FROM kafka_events e \
         JOIN visits v ON v.id = e.visit_id \
         WHERE e.event_type = 'CUSTOM_EVENT' AND e.name = 'Signup' AND e.props->0->>'value' = 'pro'";
    for (goal, raw) in [("Ones", ones), ("Pro", pro)] {
        let expected = count(db, raw).await;
        assert!(expected > 0, "{goal}: some stored events complete it");
        assert_eq!(
            count(db, &recorded(goal)).await,
            expected,
            "{goal}: conversions"
        );
    }
    let unplaced = "SELECT count(*) FROM kafka_events WHERE visit_id IS NULL \
         AND event_type IN ('PAGE_VIEW', 'CUSTOM_EVENT')";
    assert_eq!(count(db, unplaced).await, 0, "every hit is in a visit");
}

/// Produces events straight to the topic, keyed and partitioned as the producer does.
pub async fn produce(kafka: &Client, topic: &str, views: &[PageView]) {
    let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    for v in views {
        by_partition
            .entry(partition_for(v.fields.user_id.as_bytes(), PARTITIONS))
            .or_default()
            .push(Record {
                key: Some(v.fields.user_id.as_bytes().to_vec()),
                value: Some(v.encode()),
                headers: Default::default(),
                timestamp: v.received_at,
            });
    }
    for (partition, records) in by_partition {
        produce_raw(kafka, topic, partition, records).await;
    }
}

pub async fn produce_raw(kafka: &Client, topic: &str, partition: i32, records: Vec<Record>) {
    let pc = testkit::partition_client(kafka, topic, partition)
        .await
        .expect("partition client");
    for chunk in records.chunks(500) {
        tokio::time::timeout(
            Duration::from_secs(20),
            pc.produce(chunk.to_vec(), Compression::NoCompression),
        )
        .await
        .expect("produce in time")
        .expect("produce");
    }
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

pub async fn wait_for_count(db: &DatabaseConnection, sql: &str, expected: i64, timeout: Duration) {
    let last = std::sync::atomic::AtomicI64::new(-1);
    let result = testkit::poll_until(timeout, sql, || {
        let last = &last;
        async move {
            let now = count(db, sql).await;
            last.store(now, std::sync::atomic::Ordering::Relaxed);
            (now == expected).then_some(())
        }
    })
    .await;
    if let Err(e) = result {
        panic!("{e}: last value {last:?}, expected {expected}");
    }
}

/// Every offset of every partition stored once, from 0 to the high watermark, and the stored
/// next offsets equal to the high watermarks.
pub async fn assert_no_gaps_and_offsets_at_high_watermark(s: &Setup) {
    for partition in 0..PARTITIONS {
        let records = testkit::read_partition(&s.kafka, &s.topic, partition)
            .await
            .expect("read");
        let high_watermark = records.last().map(|r| r.offset + 1).unwrap_or(0);
        let stored = count(
            &s.db,
            &format!(
                "SELECT count(DISTINCT \"offset\") FROM kafka_events WHERE topic = '{}' AND partition = {partition}",
                s.topic
            ),
        )
        .await;
        let dead = count(
            &s.db,
            &format!(
                "SELECT count(*) FROM dead_letters WHERE topic = '{}' AND partition = {partition}",
                s.topic
            ),
        )
        .await;
        assert_eq!(
            stored + dead,
            high_watermark,
            "partition {partition}: every offset once"
        );
        let next = count(
            &s.db,
            &format!(
                "SELECT coalesce(max(next_offset), 0) FROM consumer_offsets WHERE topic = '{}' AND partition = {partition}",
                s.topic
            ),
        )
        .await;
        assert_eq!(
            next, high_watermark,
            "partition {partition}: stored offset at the high watermark"
        );
    }
}

/// The consumer binary as a child process, configured from the test's settings.
pub fn spawn_process(settings: &Settings) -> testkit::ChildProcess {
    testkit::ChildProcess::spawn(env!("CARGO_BIN_EXE_consumer"), settings)
        .expect("spawn the consumer binary")
}

/// Starts a consumer inside the test process.
pub async fn in_process(settings: Settings) -> testkit::TestConsumer {
    testkit::TestConsumer::start(settings)
        .await
        .expect("the consumer starts")
}

/// Writes a partition's stored offset, as if a consumer had got that far.
pub async fn set_stored_offset(s: &Setup, partition: i32, offset: i64) {
    s.db.execute_raw(Statement::from_string(
        DbBackend::Postgres,
        format!(
            "INSERT INTO consumer_offsets (topic, partition, next_offset) VALUES ('{}', {partition}, {offset})",
            s.topic
        ),
    ))
    .await
    .expect("stored offset");
}
