//! A site's count survives the crash of the consumer counting it: killed while the count waits
//! for its last step, it leaves nothing counted, and the next consumer counts the site exactly.

mod common;

use std::time::Duration;

use common::*;
use sea_orm::{ConnectionTrait, TransactionTrait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_while_counting_a_site_leaves_nothing_half_counted() {
    let mut s = setup().await;
    s.settings.analytics.register_sites_on_first_event = false;
    create_goals(&s.db).await;
    produce(&s.kafka, &s.topic, &views(400, "before")).await;
    let mut consumer = spawn_process(&s.settings);
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        400,
        Duration::from_secs(60),
    )
    .await;
    let rollups =
        analytics::RollupTable::ALL.map(|t| format!("(SELECT count(*) FROM {})", t.name()));
    let counted = format!(
        "SELECT (SELECT count(*) FROM visits) + {}",
        rollups.join(" + ")
    );
    assert_eq!(
        count(&s.db, &counted).await,
        0,
        "an unregistered site is not counted"
    );

    // Registered, as addSite does; its count will wait at its last step for this lock.
    s.db.execute_unprepared("INSERT INTO sites (domain) VALUES ('example.com')")
        .await
        .expect("registered");
    let hold = s.db.begin().await.expect("a transaction");
    hold.execute_unprepared("SELECT 1 FROM sites WHERE domain = 'example.com' FOR SHARE")
        .await
        .expect("share-locked");
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock' AND query LIKE '%counted_at IS NULL FOR UPDATE%'";
    wait_for_count(&s.db, waiting, 1, Duration::from_secs(60)).await;

    consumer.kill().await.expect("SIGKILL");
    hold.rollback().await.expect("released");
    // Not this test's own connections, whose last query (the one above) names the same text.
    let gone = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                AND query LIKE '%counted_at IS NULL FOR UPDATE%' \
                AND query NOT LIKE '%pg_stat_activity%'";
    wait_for_count(&s.db, gone, 0, Duration::from_secs(30)).await;
    assert_eq!(
        count(&s.db, &counted).await,
        0,
        "the killed count left nothing"
    );
    let pending = "SELECT count(*) FROM sites WHERE counted_at IS NULL";
    assert_eq!(
        count(&s.db, pending).await,
        1,
        "and the site waits for its count"
    );

    // Events arrive meanwhile, and a new consumer counts everything once.
    produce(&s.kafka, &s.topic, &views(100, "after")).await;
    let mut consumer = spawn_process(&s.settings);
    wait_for_count(
        &s.db,
        "SELECT count(*) FROM kafka_events",
        500,
        Duration::from_secs(60),
    )
    .await;
    wait_for_count(&s.db, pending, 0, Duration::from_secs(60)).await;
    wait_for_count(
        &s.db,
        "SELECT coalesce(sum(pageviews), 0)::bigint FROM rollup_days WHERE dimension = 'all'",
        450,
        Duration::from_secs(60),
    )
    .await;
    consumer.terminate().expect("SIGTERM");
    consumer.wait(Duration::from_secs(30)).await.expect("stops");
    let stored = "SELECT count(*) FROM kafka_events WHERE event_type = 'PAGE_VIEW'";
    assert_eq!(
        count(&s.db, stored).await,
        450,
        "every page view stored once"
    );
    assert_conversions_equal_the_stored_events(&s.db).await;
    let rebuilt = consumer::rebuild::rebuild(
        &s.db,
        &s.settings.analytics,
        consumer::rebuild::Mode::Verify,
    )
    .await
    .expect("recomputes");
    assert!(!rebuilt.differed, "the counts equal a recomputation");
}
