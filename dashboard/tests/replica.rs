//! The dashboard reading from a streaming replica (`dashboard.database_url`): the standby that
//! `make test` starts with `pg_basebackup -R` follows the primary the consumer writes to. Its
//! answers equal the stored events once replayed, `/metrics` says it reads from a replica and how
//! far behind it is, and what an admin changes goes to the primary.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const DAY: &str = "query($q: StatsQuery!) { stats(query: $q) { results { metrics } } }";

async fn metrics_of(http: &reqwest::Client, url: &str) -> String {
    http.get(url)
        .send()
        .await
        .expect("scraped")
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_a_replica_answers_what_the_primary_stored_and_writes_to_the_primary() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    let standby = testkit::on_the_standby(s.settings.database.url.expose_secret())
        .await
        .expect("the replica has the database");
    let mut settings = s.settings.clone();
    settings.dashboard.database_url = standby.clone().into();
    let replica = testkit::TestDashboard::start(settings)
        .await
        .expect("a dashboard on the replica");

    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.view(start, 1, CHROME_WINDOWS, ("/pricing", "", None))
        .await;
    s.view(start, 2, FIREFOX_LINUX, ("/", "", None)).await;
    s.stored(3).await;
    let visitors = count(
        &s.db,
        "SELECT count(DISTINCT visitor_id) FROM kafka_events WHERE event_type = 'PAGE_VIEW'",
    )
    .await;
    assert_eq!(visitors, 2);
    // Behind by the replica's delay at most: polled until replayed, then equal.
    let query = json!({"site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
                       "metrics": ["VISITORS", "PAGEVIEWS"]});
    testkit::poll_until(Duration::from_secs(30), "the replica's answer", || async {
        let a = ask(&s.http, &replica.base, DAY, query.clone()).await;
        let metrics = a["data"]["stats"]["results"][0]["metrics"].clone();
        (metrics == json!([visitors as f64, 3.0])).then_some(())
    })
    .await
    .expect("the stored events, counted, on the replica");

    let scraped = metrics_of(&s.http, &replica.metrics).await;
    assert!(
        scraped.contains("pageviews_dashboard_reads_from_replica 1"),
        "{scraped}"
    );
    assert!(
        scraped.contains("pageviews_dashboard_replica_lag_seconds "),
        "{scraped}"
    );
    assert!(
        scraped.contains("pageviews_dashboard_replica_lag_bytes "),
        "{scraped}"
    );
    let primary = metrics_of(&s.http, &s.dashboard.metrics).await;
    assert!(
        primary.contains("pageviews_dashboard_reads_from_replica 0"),
        "{primary}"
    );
    // Its reads are the standby's: its own sessions are there.
    let standby_db = testkit::connect(&standby).await.expect("the standby");
    let name = standby.rsplit('/').next().expect("a name");
    let sessions = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    assert!(
        count(&standby_db, &sessions).await >= 1,
        "the dashboard reads there"
    );

    // What an admin changes goes to the primary (the replica refuses writes), and reads back at
    // once there.
    let admin = |query: &'static str| {
        let (http, base) = (s.http.clone(), replica.base.clone());
        async move {
            let answer: Value = http
                .post(format!("{base}/query"))
                .bearer_auth(testkit::ADMIN_TOKEN)
                .json(&json!({"query": query}))
                .send()
                .await
                .expect("asked")
                .json()
                .await
                .expect("json");
            answer
        }
    };
    let goal = admin("mutation { createGoal(site: \"shop.example\", goal: {name: \"Pricing\", page: \"/pricing\"}) { name } }").await;
    assert!(goal["errors"].is_null(), "{goal}");
    let added = admin("mutation { addSite(domain: \"new.example\") { domain } }").await;
    assert!(added["errors"].is_null(), "{added}");
    let listed = admin("{ sites { domain } }").await;
    assert!(
        listed["data"]["sites"]
            .as_array()
            .is_some_and(|all| all.iter().any(|site| site["domain"] == "new.example")),
        "{listed}"
    );
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM goals WHERE name = 'Pricing'").await,
        1
    );
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM conversions").await,
        1,
        "its backfill counted the one visit that saw /pricing, on the primary"
    );
    let link =
        admin("mutation { createSharedLink(site: \"new.example\", name: \"Board\") { path } }")
            .await;
    assert!(link["errors"].is_null(), "{link}");

    replica.stop().await.expect("the replica's dashboard stops");
    s.stop().await;
}

use settings::ExposeSecret;
