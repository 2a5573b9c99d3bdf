//! Raw events by month: `kafka_events` is partitioned by month of arrival; with
//! `analytics.raw_retention_months` the consumer drops the months older than that whole, and
//! the Stats API still answers for them from the visits and rollups, equal to what it answered
//! before. The migrations move a filled table into monthly partitions of compact rows, every
//! row and column kept.

mod common;

use chrono::{Datelike, Months, TimeZone, Utc};
use common::*;
use serde_json::{json, Value};

const PARTITIONS: &str = "SELECT count(*) FROM pg_inherits \
     WHERE inhparent IN (to_regclass('kafka_events'), to_regclass('raw_events'))";

/// The first day of the month `back` months before this one, at 10:00 UTC.
fn months_ago(back: u32) -> chrono::DateTime<Utc> {
    let today = Utc::now().date_naive();
    let first = today.with_day(1).expect("a first day") - Months::new(back);
    Utc.from_utc_datetime(&first.and_hms_opt(10, 0, 0).expect("a time"))
}

fn of_the_day(at: chrono::DateTime<Utc>, filters: Value) -> Value {
    let day = at.date_naive().to_string();
    json!({"site": "shop.example", "dateRange": {"from": day, "to": day},
           "metrics": ["VISITORS", "PAGEVIEWS"], "filters": filters})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_past_the_retention_is_dropped_whole_and_the_stats_still_answer_for_it() {
    let (old, kept) = (months_ago(3), months_ago(2));
    let s = spawn_stack(old).await;
    s.view(
        old,
        0,
        CHROME_WINDOWS,
        ("/", "", Some("https://www.google.com/")),
    )
    .await;
    s.view(old, 1, CHROME_WINDOWS, ("/pricing", "", None)).await;
    s.view(old, 2, FIREFOX_LINUX, ("/", "", None)).await;
    s.view(kept, 0, FIREFOX_LINUX, ("/", "", None)).await;
    s.stored(4).await;
    assert!(count(&s.db, PARTITIONS).await >= 2, "a partition per month");
    let in_old = format!(
        "SELECT count(*) FROM kafka_events WHERE received_at < '{}'",
        kept.date_naive()
    );
    assert_eq!(count(&s.db, &in_old).await, 3);
    // Three filters: answered from the visits (two are still a rollup triple).
    let google = json!([{"dimension": "SOURCE", "op": "IS", "values": ["google"]},
                        {"dimension": "BROWSER", "op": "IS", "values": ["Chrome"]},
                        {"dimension": "DEVICE", "op": "IS", "values": ["desktop"]}]);
    let before = (
        s.stats(of_the_day(old, json!([]))).await,
        s.stats(of_the_day(old, google.clone())).await,
    );
    assert_eq!(
        before.0["results"][0]["metrics"],
        json!([2.0, 3.0]),
        "{}",
        before.0
    );
    assert_eq!(
        before.1["results"][0]["metrics"],
        json!([1.0, 2.0]),
        "{}",
        before.1
    );

    assert_eq!(before.1["meta"]["engine"], "VISITS");
    // A consumer keeping two months before this one drops the oldest at start.
    let mut settings = s.settings.clone();
    settings.analytics.raw_retention_months = 2;
    let keeper = testkit::TestConsumer::start(settings.clone())
        .await
        .expect("a consumer with retention");
    let old_month = format!(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'raw_events'::regclass AND c.relname = 'raw_events_y{:04}m{:02}'",
        old.year(),
        old.month()
    );
    testkit::poll_until(
        std::time::Duration::from_secs(30),
        "the old month dropped",
        || async { (count(&s.db, &old_month).await == 0).then_some(()) },
    )
    .await
    .expect("dropped");
    assert_eq!(count(&s.db, &in_old).await, 0, "its raw events are gone");
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM kafka_events").await,
        1,
        "the kept month's stay"
    );

    // The rollups and visits answer for it as before, unfiltered and filtered.
    let after = (
        s.stats(of_the_day(old, json!([]))).await,
        s.stats(of_the_day(old, google)).await,
    );
    assert_eq!(after.0["results"], before.0["results"]);
    assert_eq!(after.1["results"], before.1["results"]);
    // And say from when raw events are kept; what needs them is refused by name.
    let sites = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "{ sites { domain rawEventsFrom } }",
        json!({}),
    )
    .await;
    assert_eq!(
        sites["data"]["sites"][0]["rawEventsFrom"],
        json!(kept.date_naive().with_day(1).expect("a day").to_string()),
        "{sites}"
    );
    let moved = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { updateSite(domain: \"shop.example\", timeZone: \"Asia/Tokyo\") { domain } }",
        json!({}),
    )
    .await;
    assert_eq!(
        moved["errors"][0]["extensions"]["code"], "RAW_EVENTS_DROPPED",
        "{moved}"
    );
    let rebuilt =
        consumer::rebuild::rebuild(&s.db, &settings.analytics, consumer::rebuild::Mode::Verify)
            .await;
    assert!(
        rebuilt.is_err_and(|e| e.to_string().contains("analytics.raw_retention_months")),
        "a rebuild would lose the dropped months' counts"
    );
    // Events of a kept month still land after the drop.
    s.view(kept, 5, SAFARI_IPHONE, ("/late", "", None)).await;
    s.stored(2).await;
    keeper.stop().await.expect("stops");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_moves_a_filled_table_into_monthly_partitions_keeping_every_row_and_column() {
    use migration::MigratorTrait;
    let url = testkit::fresh_database().await.expect("database");
    let db = testkit::connect(&url).await.expect("db");
    // Back to the table as it was before its months, filled over three, then forward again.
    let since = testkit::migrations_since("m20261202_000018_partition_kafka_events_by_month")
        .expect("the migration");
    migration::Migrator::down(&db, Some(since))
        .await
        .expect("down to before the months");
    assert_eq!(count(&db, PARTITIONS).await, 0, "not partitioned");
    let fill = "INSERT INTO kafka_events (id, user_id, event_type, path, search, title, url, \
                received_at, topic, partition, \"offset\", site, is_bot, props) \
                SELECT gen_random_uuid(), 'u' || n, 'PAGE_VIEW', '/p/' || n, '', 't', 'https://fill.example/', \
                timestamptz '2026-09-15 12:00+00' + (n % 3) * interval '1 month', 'pageviews', 0, n, \
                'fill.example', false, '[{\"key\": \"k\", \"value\": \"v\"}]'::jsonb \
                FROM generate_series(1, 3000) n";
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(fill).await.expect("filled");
    // `created_at` and `updated_at` are not stored since migration 21: they read as
    // `received_at` (checked below).
    let digest = "SELECT md5(string_agg((to_jsonb(t) - 'created_at' - 'updated_at')::text, ',' \
                  ORDER BY id)) FROM kafka_events t";
    let before: String = text(&db, digest).await;
    migration::Migrator::up(&db, None).await.expect("up");
    assert_eq!(count(&db, PARTITIONS).await, 3, "one partition per month");
    assert_eq!(
        text(&db, digest).await,
        before,
        "every row and column as it was"
    );
    let per_month = "SELECT count(*) FROM raw_events_y2026m10";
    assert_eq!(count(&db, per_month).await, 1000);
    let stamps = "SELECT count(*) FROM kafka_events \
                  WHERE created_at = received_at AND updated_at = received_at";
    assert_eq!(count(&db, stamps).await, 3000);
    let texts =
        "SELECT count(*) FROM event_texts WHERE value IN ('fill.example', 'pageviews', 't')";
    assert_eq!(count(&db, texts).await, 3, "each repeated text stored once");
}

async fn text(db: &sea_orm::DatabaseConnection, sql: &str) -> String {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("asked")
        .expect("a row");
    row.try_get_by_index(0).expect("text")
}
