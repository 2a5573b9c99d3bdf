//! The consumer against the real broker and the real PostgreSQL: end to end, exactly once
//! under crashes, several consumers, poison records, database restarts, migrations.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use entity::prelude::*;
use event::partitioner::partition_for;
use migration::MigratorTrait;
use rand::Rng;
use rskafka::record::Record;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement};
use settings::OffsetOutOfRange;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_mutation_becomes_a_row_with_every_field_equal() {
    let url = testkit::fresh_database().await.unwrap();
    let settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    let db = testkit::connect(&url).await.unwrap();
    // The producer creates the topic; the consumer, started first, finds it.
    let consumer = in_process(settings.clone()).await;
    let app = testkit::TestProducer::start(settings.clone())
        .await
        .unwrap();
    wait_for_count(
        &db,
        "SELECT count(*) FROM partition_leases",
        4,
        Duration::from_secs(20),
    )
    .await;

    let response: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/query", app.base))
        .header("content-type", "application/json")
        .body(testkit::README_CURL_BODY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answered = Instant::now();
    let id: uuid::Uuid = response["data"]["register_kafka_event"]["id"]
        .as_str()
        .expect("an id")
        .parse()
        .unwrap();
    let row = testkit::poll_until(Duration::from_secs(30), "the row", || {
        let db = &db;
        async move { KafkaEvent::find_by_id(id).one(db).await.ok().flatten() }
    })
    .await
    .expect("the row becomes visible");
    println!("row visible {:?} after the HTTP answer", answered.elapsed());
    assert_eq!(row.event_type, "PAGE_VIEW");
    assert_eq!(row.user_id, "some_session_id");
    assert_eq!(row.path, "/test");
    assert_eq!(row.search, "?q=foo");
    assert_eq!(row.title, "Kafka Demo");
    assert_eq!(row.url, "kafka.demo.com");
    assert_eq!(row.referrer, None);
    assert_eq!(row.topic, settings.consumer.topics[0]);
    let visitor = row.visitor_id.expect("a visitor id");
    assert_eq!(
        row.partition,
        partition_for(&visitor.to_be_bytes(), 4),
        "keyed by visitor"
    );
    assert_eq!(row.site.as_deref(), Some("kafka.demo.com"));
    assert_eq!(row.channel.as_deref(), Some("direct"));
    assert!(!row.is_bot);
    let age = chrono::Utc::now().signed_duration_since(row.received_at);
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::seconds(10),
        "{age}"
    );

    let metrics = consumer.metrics().await.expect("metrics");
    let stored = format!(
        "pageviews_events_stored_total{{topic=\"{}\"}} 1\n",
        settings.consumer.topics[0]
    );
    assert!(metrics.contains(&stored), "{metrics}");
    assert!(
        metrics.contains("pageviews_consumer_lag{topic="),
        "{metrics}"
    );
    app.stop().await.unwrap();
    consumer.stop().await.expect("the consumer stops");
    // A graceful stop gives the partitions back at once.
    assert_eq!(count(&db, "SELECT count(*) FROM partition_leases").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_stored_exactly_once_while_the_consumer_is_killed_again_and_again() {
    let s = setup().await;
    create_goals(&s.db).await;
    let events = views(20_000, "crash");
    let all_ids: HashSet<uuid::Uuid> = events.iter().map(|v| v.id).collect();

    // Produce in the background, spread over the kills.
    let producing = {
        let kafka = testkit::kafka_client(&testkit::brokers()).await.unwrap();
        let topic = s.topic.clone();
        tokio::spawn(async move {
            for chunk in events.chunks(400) {
                produce(&kafka, &topic, chunk).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };

    for kill in 0..12 {
        let spawned_at = db_now_ms(&s.db).await;
        let mut child = spawn_process(&s.settings);
        // Kill at a random moment while it owns partitions: a fixed lifetime would, on a busy
        // machine, kill every run before it claimed anything and test nothing.
        wait_until_it_owns_partitions(&s.db, spawned_at).await;
        if kill == 0 {
            // Then the later runs start from stored batches, offsets and rollups to get right.
            testkit::poll_until(Duration::from_secs(60), "a first batch stored", || async {
                (count(&s.db, "SELECT count(*) FROM kafka_events").await > 0).then_some(())
            })
            .await
            .unwrap();
        }
        let alive_for = rand::rng().random_range(0..1_500);
        tokio::time::sleep(Duration::from_millis(alive_for)).await;
        child.kill().await.expect("SIGKILL");
    }
    producing.await.unwrap();

    let spawned_at = db_now_ms(&s.db).await;
    let mut last = spawn_process(&s.settings);
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        20_000,
        Duration::from_secs(90),
    )
    .await;
    // SIGTERM once the last consumer owns every partition: then "released" means something.
    wait_for_count(&s.db, &owned_since(spawned_at), 4, Duration::from_secs(20)).await;
    last.terminate().expect("SIGTERM");
    let status = last.wait(Duration::from_secs(30)).await.expect("exits");
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM partition_leases").await,
        0,
        "released on SIGTERM"
    );

    let stored: HashSet<uuid::Uuid> = KafkaEvent::find()
        .all(&s.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(stored, all_ids, "exactly the 20,000 ids");
    assert_eq!(count(&s.db, "SELECT count(*) FROM dead_letters").await, 0);
    assert_no_gaps_and_offsets_at_high_watermark(&s).await;
    assert_rollups_equal_a_recomputation(&s, 20_000).await;
}

/// The database's clock in milliseconds: consumers stamp `consumer_members.started_at` with it.
async fn db_now_ms(db: &DatabaseConnection) -> i64 {
    count(db, "SELECT (extract(epoch FROM now()) * 1000)::bigint").await
}

/// How many partitions are leased to consumers that started at `spawned_at` or later.
fn owned_since(spawned_at: i64) -> String {
    format!(
        "SELECT count(*) FROM partition_leases l JOIN consumer_members m ON m.owner = l.owner \
         WHERE l.expires_at > now() AND m.started_at >= to_timestamp({spawned_at} / 1000.0)"
    )
}

async fn wait_until_it_owns_partitions(db: &DatabaseConnection, spawned_at: i64) {
    let sql = owned_since(spawned_at);
    testkit::poll_until(
        Duration::from_secs(60),
        "the new consumer owns a partition",
        || {
            let sql = &sql;
            async move { (count(db, sql).await > 0).then_some(()) }
        },
    )
    .await
    .unwrap();
}

/// The rollups written batch by batch equal the ones `consumer rebuild` computes afresh from
/// the stored events (`--verify` recomputes in a transaction, compares and rolls back).
async fn assert_rollups_equal_a_recomputation(s: &Setup, events: i64) {
    let pageviews =
        "SELECT coalesce(sum(pageviews), 0)::bigint FROM rollup_days WHERE dimension = 'all'";
    let stored = "SELECT count(*) FROM kafka_events WHERE event_type = 'PAGE_VIEW'";
    assert_eq!(
        count(&s.db, pageviews).await,
        count(&s.db, stored).await,
        "every stored page view is in the rollups"
    );
    let in_britain =
        "SELECT coalesce(sum(pageviews), 0)::bigint FROM rollup_days WHERE dimension = 'country' AND value = 'GB'";
    let stored_in_britain =
        "SELECT count(*) FROM kafka_events WHERE event_type = 'PAGE_VIEW' AND country = 'GB'";
    assert_eq!(
        count(&s.db, in_britain).await,
        count(&s.db, stored_in_britain).await,
        "every page view from GB is under GB"
    );
    assert!(count(&s.db, stored_in_britain).await > 0);
    assert_conversions_equal_the_stored_events(&s.db).await;
    let rebuilt = consumer::rebuild::rebuild(
        &s.db,
        &s.settings.analytics,
        consumer::rebuild::Mode::Verify,
    )
    .await
    .expect("recomputes");
    assert_eq!(rebuilt.events, events as u64);
    assert!(rebuilt.visits > 0);
    assert!(
        !rebuilt.differed,
        "the rollups equal a recomputation from the stored events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_analytics_model_differs_from_the_stored_rollups_rebuilds_them_at_start() {
    let s = setup().await;
    create_goals(&s.db).await;
    produce(&s.kafka, &s.topic, &views(300, "model")).await;
    let first = in_process(s.settings.clone()).await;
    let stored = "SELECT count(*) FROM kafka_events";
    wait_for_count(&s.db, stored, 300, Duration::from_secs(30)).await;
    first.stop().await.expect("stops");
    let devices = "SELECT count(*) FROM rollup_days WHERE dimension = 'device'";
    let device_rows = count(&s.db, devices).await;
    assert!(device_rows > 0);
    let current = format!(
        "SELECT count(*) FROM read_model WHERE fingerprint = '{}'",
        analytics::fingerprint()
    );
    assert_eq!(
        count(&s.db, &current).await,
        1,
        "a fresh database is current"
    );

    // As if the rollups had been built by a version that did not have DEVICE yet.
    s.db.execute_unprepared(
        "DELETE FROM rollup_days WHERE dimension = 'device'; \
         UPDATE read_model SET fingerprint = 'dimensions=page,entry_page;counts=pageviews;rules=1'",
    )
    .await
    .expect("an older model");
    let second = in_process(s.settings.clone()).await;
    assert_eq!(count(&s.db, devices).await, device_rows, "rebuilt at start");
    assert_eq!(count(&s.db, &current).await, 1);
    second.stop().await.expect("stops");
    assert_rollups_equal_a_recomputation(&s, 300).await;
    // One count off by one is told apart.
    s.db.execute_unprepared(
        "UPDATE rollup_days SET pageviews = pageviews + 1 \
         WHERE ctid = (SELECT ctid FROM rollup_days WHERE dimension = 'all' LIMIT 1)",
    )
    .await
    .expect("a count made wrong");
    let verified = consumer::rebuild::rebuild(
        &s.db,
        &s.settings.analytics,
        consumer::rebuild::Mode::Verify,
    )
    .await
    .expect("recomputes");
    assert!(
        verified.differed,
        "a wrong count differs from the recomputation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_the_partitions_and_one_takes_over_when_the_other_dies() {
    let s = setup().await;
    let mut a = spawn_process(&s.settings);
    let mut b = spawn_process(&s.settings);
    let owners_sql = "SELECT count(*) FROM (SELECT owner FROM partition_leases GROUP BY owner HAVING count(*) = 2) o";
    wait_for_count(&s.db, owners_sql, 2, Duration::from_secs(30)).await;

    produce(&s.kafka, &s.topic, &views(4_000, "first")).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        4_000,
        Duration::from_secs(60),
    )
    .await;

    a.kill().await.expect("SIGKILL a");
    produce(&s.kafka, &s.topic, &views(4_000, "second")).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        8_000,
        Duration::from_secs(60),
    )
    .await;
    let single_owner = "SELECT count(*) FROM (SELECT owner FROM partition_leases GROUP BY owner HAVING count(*) = 4) o";
    wait_for_count(&s.db, single_owner, 1, Duration::from_secs(10)).await;
    assert_no_gaps_and_offsets_at_high_watermark(&s).await;

    b.terminate().expect("SIGTERM b");
    assert!(b
        .wait(Duration::from_secs(30))
        .await
        .expect("exits")
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_become_dead_letters_and_the_events_after_them_are_stored() {
    let s = setup().await;
    let record = |value: Option<Vec<u8>>| Record {
        key: Some(b"poison".to_vec()),
        value,
        headers: Default::default(),
        timestamp: chrono::Utc::now(),
    };
    let mut nul = page_view("poison", 0);
    nul.fields.title = "a\0b".into();
    let mut huge = page_view("poison", 1);
    huge.fields.title = "x".repeat(64 * 1024);
    let poison = vec![
        record(Some(b"not json at all".to_vec())),
        record(Some(
            br#"{"id":"0191b3c4-0000-7000-8000-000000000000","eventType":"PAGE_VIEW"}"#.to_vec(),
        )),
        record(Some(nul.encode())),
        record(Some(huge.encode())),
        record(None),
    ];
    let good: Vec<_> = (0..3).map(|i| page_view("poison", 10 + i)).collect();
    let good_records = good
        .iter()
        .map(|v| record(Some(v.encode())))
        .collect::<Vec<_>>();
    produce_raw(&s.kafka, &s.topic, 0, poison).await;
    produce_raw(&s.kafka, &s.topic, 0, good_records).await;

    let consumer = in_process(s.settings.clone()).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        3,
        Duration::from_secs(20),
    )
    .await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM dead_letters",
        5,
        Duration::from_secs(5),
    )
    .await;

    let dead = DeadLetter::find().all(&s.db).await.unwrap();
    let by_offset = |o: i64| dead.iter().find(|d| d.offset == o).expect("dead letter");
    assert_eq!(
        by_offset(0).value.as_deref(),
        Some(&b"not json at all"[..]),
        "raw bytes kept"
    );
    assert!(
        by_offset(0).error.contains("not a page view"),
        "{}",
        by_offset(0).error
    );
    assert!(
        by_offset(1).error.contains("missing field"),
        "{}",
        by_offset(1).error
    );
    assert!(by_offset(2).error.contains("NUL"), "{}", by_offset(2).error);
    assert!(
        by_offset(3).error.contains("title"),
        "{}",
        by_offset(3).error
    );
    assert_eq!(
        by_offset(3).value.as_ref().map(Vec::len),
        Some(huge.encode().len())
    );
    assert!(
        by_offset(4).error.contains("no value"),
        "{}",
        by_offset(4).error
    );
    let metrics = consumer.metrics().await.expect("metrics");
    let dead = format!("pageviews_dead_letters_total{{topic=\"{}\"}} 5\n", s.topic);
    assert!(metrics.contains(&dead), "{metrics}");
    consumer.stop().await.expect("the consumer stops");
    assert_no_gaps_and_offsets_at_high_watermark(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing_and_duplicates_nothing() {
    let pg = testkit::Postgres::start().await.expect("own PostgreSQL");
    let url = testkit::fresh_database_on(&pg.admin_url()).await.unwrap();
    let s = setup_on(&testkit::brokers(), &url).await;
    create_goals(&s.db).await;
    let consumer = in_process(s.settings.clone()).await;
    produce(&s.kafka, &s.topic, &views(3_000, "before")).await;
    testkit::poll_until(Duration::from_secs(30), "some events stored", || {
        let db = &s.db;
        async move { (count(db, "SELECT count(*) FROM kafka_events").await > 0).then_some(()) }
    })
    .await
    .unwrap();

    // Every partition consumed a first time, so that each has a lag to keep on show.
    testkit::poll_until(Duration::from_secs(30), "every partition observed", || {
        let consumer = &consumer;
        async move {
            let text = consumer.metrics().await.ok()?;
            let lags = text
                .lines()
                .filter(|l| l.starts_with("pageviews_consumer_lag{"))
                .count();
            (lags == PARTITIONS as usize).then_some(())
        }
    })
    .await
    .expect("observed");
    pg.stop().await.expect("stop PostgreSQL");
    produce(&s.kafka, &s.topic, &views(3_000, "during")).await;
    // Once the leases expire the partitions stop; their lag stays on show, marked as waiting.
    let waiting = testkit::poll_until(
        Duration::from_secs(30),
        "every partition shown waiting for the database",
        || {
            let consumer = &consumer;
            async move {
                let text = consumer.metrics().await.ok()?;
                let waiting = text
                    .lines()
                    .filter(|l| l.contains("reason=\"database_unavailable\"} 1"))
                    .count();
                (waiting == PARTITIONS as usize).then_some(text)
            }
        },
    )
    .await
    .expect("shown waiting");
    let lags = waiting
        .lines()
        .filter(|l| l.starts_with("pageviews_consumer_lag{"))
        .count();
    assert_eq!(lags, PARTITIONS as usize, "with their lag: {waiting}");
    pg.resume().await.expect("start PostgreSQL again");
    produce(&s.kafka, &s.topic, &views(3_000, "after")).await;

    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        9_000,
        Duration::from_secs(60),
    )
    .await;
    assert_no_gaps_and_offsets_at_high_watermark(&s).await;
    let text = consumer.metrics().await.expect("metrics");
    assert!(
        !text.contains("reason=\"database_unavailable\""),
        "no longer waiting once the database is back: {text}"
    );
    consumer.stop().await.expect("the consumer stops");
    assert_rollups_equal_a_recomputation(&s, 9_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_offset_beyond_the_high_watermark_restarts_from_the_earliest_when_so_configured() {
    let mut s = setup().await;
    s.settings.consumer.on_offset_out_of_range = OffsetOutOfRange::Earliest;
    produce(&s.kafka, &s.topic, &views(40, "lost")).await;
    // As after a broker lost its data: the database remembers more than the broker has.
    for partition in 0..PARTITIONS {
        set_stored_offset(&s, partition, 1000).await;
    }
    let consumer = in_process(s.settings.clone()).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        40,
        Duration::from_secs(20),
    )
    .await;
    consumer.stop().await.expect("the consumer stops");
    assert_no_gaps_and_offsets_at_high_watermark(&s).await;
}

async fn schema_snapshot(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    let sql = "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') \
               FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'seaql_migrations' \
               UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'seaql_migrations' ORDER BY 1";
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_down_then_up_leaves_an_identical_schema() {
    let url = testkit::fresh_database().await.unwrap();
    let db = testkit::connect(&url).await.unwrap();
    let before = schema_snapshot(&db).await;
    assert!(
        before.iter().any(|l| l.starts_with("kafka_events.id uuid")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|l| l.contains("idx_raw_events_site ")),
        "{before:?}"
    );

    migration::Migrator::down(&db, None).await.unwrap();
    assert!(
        schema_snapshot(&db).await.is_empty(),
        "down removes every table"
    );
    migration::Migrator::up(&db, None).await.unwrap();
    assert_eq!(schema_snapshot(&db).await, before);
}

/// A visitor-day's visits are looked up by `(site, day, visitor)`. On a table without
/// statistics yet, PostgreSQL picks among the indexes that lead with `site` and hold `day`
/// by their size: any other such index would read every visit of the day (migration 24).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_day_lookup_has_no_index_of_visits_to_mistake_for_its_own() {
    let url = testkit::fresh_database().await.unwrap();
    let db = testkit::connect(&url).await.unwrap();
    let indexes = "SELECT indexdef FROM pg_indexes WHERE tablename = 'visits' \
                   AND indexname <> 'visits_pkey' ORDER BY indexname";
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, indexes))
        .await
        .unwrap();
    let defs: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "indexdef").unwrap())
        .collect();
    assert_eq!(
        defs,
        ["CREATE INDEX idx_visits_site_day_visitor ON public.visits USING btree (site, day, visitor)"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_starting_at_once_on_an_empty_database_migrate_it_once_without_error() {
    let url = testkit::empty_database_on(&testkit::admin_database_url())
        .await
        .unwrap();
    let settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    let builds = (0..4).map(|_| consumer::Consumer::build(settings.clone()));
    let consumers = futures::future::join_all(builds).await;
    for built in &consumers {
        if let Err(e) = built {
            panic!("a consumer failed to start: {e}");
        }
    }
    let db = testkit::connect(&url).await.unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) FROM seaql_migrations").await,
        migration::Migrator::migrations().len() as i64,
        "every migration applied"
    );
    assert!(schema_snapshot(&db)
        .await
        .iter()
        .any(|l| l.starts_with("kafka_events.id uuid")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_postgresql_refuses_a_wrong_password() {
    let admin = testkit::admin_database_url();
    assert!(
        testkit::connect(&admin).await.is_ok(),
        "the right one works"
    );
    let wrong = admin.replacen("postgres:postgres@", "postgres:not-the-password@", 1);
    assert_ne!(wrong, admin);
    let refused = testkit::connect(&wrong).await;
    assert!(
        refused.is_err(),
        "any password was accepted (trust authentication)"
    );
}

#[test]
fn an_unreachable_database_stops_the_consumer_with_one_readable_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("APP_CONFIG_DIR", "/nonexistent")
        .env(
            "APP__DATABASE__URL",
            "postgres://app:secret@127.0.0.1:1/analytics",
        )
        .env("APP__DATABASE__CONNECT_TIMEOUT_MS", "1000")
        .output()
        .expect("run the consumer");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("cannot connect to the database postgres://app:***@127.0.0.1:1/analytics"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_names_one_event_the_first_stored_wins_a_retry_is_dropped_and_a_conflict_is_a_dead_letter(
) {
    let s = setup().await;
    let first = page_view("same-visitor", 1);
    let conflict = |path: &str| {
        let mut other = first.clone();
        other.fields.path = path.into();
        other
    };
    // In one fetch: the first, a retry of it and a conflicting one. Same visitor, same
    // partition: `first` has the lowest offset.
    produce(
        &s.kafka,
        &s.topic,
        &[first.clone(), first.clone(), conflict("/in-batch")],
    )
    .await;
    let consumer = in_process(s.settings.clone()).await;
    assert_no_gaps_after_storing(&s, 1).await;
    // Later fetches, against the stored row.
    produce(&s.kafka, &s.topic, &[conflict("/later"), first.clone()]).await;
    assert_no_gaps_after_storing(&s, 1).await;

    let row = KafkaEvent::find_by_id(first.id)
        .one(&s.db)
        .await
        .unwrap()
        .expect("the row");
    assert_eq!(row.path, first.fields.path, "the first one stored wins");
    let letters = s
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT convert_from(value, 'UTF8') AS value, error FROM dead_letters ORDER BY \"offset\"",
        ))
        .await
        .expect("dead letters");
    let shown: Vec<String> = letters
        .iter()
        .map(|l| format!("{:?}", l.try_get::<String>("", "value")))
        .collect();
    assert_eq!(
        letters.len(),
        2,
        "one dead letter per conflicting record: {shown:?}"
    );
    for (letter, path) in letters.iter().zip(["/in-batch", "/later"]) {
        let value: String = letter.try_get("", "value").expect("value");
        let error: String = letter.try_get("", "error").expect("error");
        assert!(value.contains(path), "{value}");
        assert!(
            error.contains("different content") && error.contains(&first.id.to_string()),
            "{error}"
        );
    }
    let metrics = settings::telemetry::render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pageviews_duplicate_events_total")
                && l.contains(&s.topic)
                && l.ends_with(" 2")),
        "two retries counted as duplicates:\n{metrics}"
    );
    consumer.stop().await.expect("the consumer stops");
}

/// Waits until every offset is accounted for, then checks `rows` rows were stored.
async fn assert_no_gaps_after_storing(s: &Setup, rows: i64) {
    for partition in 0..PARTITIONS {
        let records = testkit::read_partition(&s.kafka, &s.topic, partition)
            .await
            .expect("read");
        let high_watermark = records.last().map(|r| r.offset + 1).unwrap_or(0);
        let sql = format!(
            "SELECT coalesce(max(next_offset), 0) FROM consumer_offsets WHERE topic = '{}' AND partition = {partition}",
            s.topic
        );
        wait_for_count(&s.db, &sql, high_watermark, Duration::from_secs(30)).await;
    }
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM kafka_events").await,
        rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_delivered_twice_is_one_dead_letter() {
    let s = setup().await;
    let poison = Record {
        key: Some(b"poison".to_vec()),
        value: Some(b"not json".to_vec()),
        headers: Default::default(),
        timestamp: chrono::Utc::now(),
    };
    produce_raw(&s.kafka, &s.topic, 0, vec![poison]).await;
    let consumer = in_process(s.settings.clone()).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM dead_letters",
        1,
        Duration::from_secs(30),
    )
    .await;
    consumer.stop().await.expect("the consumer stops");
    // As after a crash between the broker's answer and the commit: the record comes again.
    s.db.execute_unprepared(&format!(
        "UPDATE consumer_offsets SET next_offset = 0 WHERE topic = '{}' AND partition = 0",
        s.topic
    ))
    .await
    .unwrap();
    let consumer = in_process(s.settings.clone()).await;
    assert_no_gaps_after_storing(&s, 0).await;
    assert_eq!(count(&s.db, "SELECT count(*) FROM dead_letters").await, 1);
    consumer.stop().await.expect("the consumer stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_in_the_tutorials_own_json_is_stored_once_redelivered_or_not() {
    let s = setup().await;
    // What the tutorial's Go producer writes, sent by another client (kafka-python): a
    // Unix-seconds id, no key, no receive time, the client's timestamp on the record.
    let sent = testkit::produce_as_the_tutorial(&s.settings.kafka.brokers.join(","), &s.topic, 1)
        .await
        .expect("kafka-python sends the record");
    let id = sent["id"].as_str().expect("an id").to_owned();
    let timestamp_ms = sent["timestamp_ms"].as_i64().expect("a timestamp");
    assert_eq!(sent["offset"], 0, "the partition's first record: {sent}");
    let consumer = in_process(s.settings.clone()).await;
    assert_no_gaps_after_storing(&s, 1).await;
    consumer.stop().await.expect("the consumer stops");
    // Read again, as after a crash between the broker's answer and the commit.
    s.db.execute_unprepared(&format!(
        "UPDATE consumer_offsets SET next_offset = 0 WHERE topic = '{}' AND partition = 1",
        s.topic
    ))
    .await
    .expect("offset reset");
    let consumer = in_process(s.settings.clone()).await;
    assert_no_gaps_after_storing(&s, 1).await;
    consumer.stop().await.expect("the consumer stops");

    assert_eq!(count(&s.db, "SELECT count(*) FROM dead_letters").await, 0);
    let stored = format!(
        "SELECT count(*) FROM kafka_events WHERE source_id = '{id}' \
         AND user_id = 'some_session_id' AND path = '/test' AND site = 'kafka.demo.com' \
         AND received_at = to_timestamp({timestamp_ms} / 1000.0) AND visitor_id IS NULL"
    );
    assert_eq!(
        count(&s.db, &stored).await,
        1,
        "stored once, its own id kept"
    );
    let visits = "SELECT count(*) FROM visits WHERE site = 'kafka.demo.com' AND pageviews = 1";
    assert_eq!(count(&s.db, visits).await, 1, "and counted once");
}

/// Repeated texts live once in `event_texts`; `raw_events` holds their ids and the view
/// `kafka_events` gives back exactly what was sent, escapes and all, when two consumers add
/// the same new texts at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_texts_are_stored_once_and_kafka_events_reads_them_back_as_sent() {
    let s = setup().await;
    let mut sent = views(2_000, "texts");
    for (i, view) in sent.iter_mut().enumerate() {
        view.fields.title = format!("Title {} \"quoted\" back\\slash ü ☃", i % 7);
        view.visit.user_agent = Some(format!("Mozilla/5.0 (X11; Linux {}) \"x\"", i % 5));
        view.visit.language = Some(["en-GB", "sv-SE"][i % 2].into());
        // Stored as NULL and rebuilt by the view when it is https:// + site + path + search.
        view.fields.search = ["", "?q=1"][i % 2].into();
        let path = &view.fields.path;
        let search = &view.fields.search;
        view.fields.url = match i % 4 {
            0 | 1 => format!("https://texts.example{path}{search}"),
            2 => format!("http://texts.example{path}{search}"),
            _ => format!("https://www.texts.example{path}{search}#top"),
        };
    }
    let a = in_process(s.settings.clone()).await;
    let b = in_process(s.settings.clone()).await;
    produce(&s.kafka, &s.topic, &sent).await;
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        2_000,
        Duration::from_secs(60),
    )
    .await;
    a.stop().await.expect("a stops");
    b.stop().await.expect("b stops");

    let stored: std::collections::HashMap<uuid::Uuid, _> = KafkaEvent::find()
        .all(&s.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    for view in &sent {
        let row = &stored[&view.id];
        assert_eq!(row.title, view.fields.title);
        assert_eq!(row.url, view.fields.url);
        assert_eq!(row.site.as_deref(), Some("texts.example"));
        assert_eq!(row.user_agent, view.visit.user_agent);
        assert_eq!(row.language, view.visit.language);
        assert_eq!(row.country, view.visit.country);
        assert_eq!(row.topic, s.topic);
        assert_eq!(row.created_at, row.received_at);
        assert_eq!(
            (&row.search, &row.user_id),
            (&view.fields.search, &view.fields.user_id)
        );
    }
    // Their usual values are stored as NULL (migration 23), and read back by the view.
    let views = "SELECT count(*) FROM kafka_events WHERE event_type = 'PAGE_VIEW'";
    let usual = "SELECT count(*) FROM raw_events WHERE event_type IS NULL";
    assert!(count(&s.db, views).await > 0);
    assert_eq!(count(&s.db, usual).await, count(&s.db, views).await);
    let no_query = "SELECT count(*) FROM raw_events WHERE search IS NULL";
    assert_eq!(count(&s.db, no_query).await, 1_000);
    let derived = "SELECT count(*) FROM raw_events WHERE url IS NULL";
    assert_eq!(
        count(&s.db, derived).await,
        1_000,
        "the https:// URLs of the site"
    );
    let titles = "SELECT count(*) FROM event_texts WHERE value LIKE 'Title %'";
    assert_eq!(count(&s.db, titles).await, 7, "each title once");
    for column in consumer::texts::COLUMNS {
        let dangling = format!(
            "SELECT count(*) FROM raw_events e WHERE e.{column} IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM event_texts t WHERE t.id = e.{column})"
        );
        assert_eq!(
            count(&s.db, &dangling).await,
            0,
            "{column} points at its text"
        );
    }
}
