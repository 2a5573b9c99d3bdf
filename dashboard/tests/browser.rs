//! The tracker and the dashboard in a real browser: Debian's Chromium driven by playwright-core
//! (`e2e/browser.mjs`), against a producer, consumer and dashboard started here. `make test`
//! installs both first (`scripts/stack.sh ensure-browser`).

use std::path::PathBuf;
use std::time::Duration;

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    testkit::scalar(db, sql).await.expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_tracked_in_chromium_shows_on_the_dashboard_and_nothing_leaks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("e2e/browser.mjs");
    assert!(
        root.join("e2e/node_modules/playwright-core").exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Chromium and playwright-core: run `bash scripts/stack.sh ensure-browser` (make test does)"
    );
    let url = testkit::fresh_database().await.expect("database");
    // Custom events need no setting: they travel with the page views. Places come from
    // MaxMind's City test database, for addresses a proxy on 127.0.0.1 names.
    let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    settings.server.trusted_proxies =
        vec![settings::IpNet::try_from("127.0.0.1".to_owned()).expect("a network")];
    settings.analytics.geoip_database = testkit::city_test_database();
    let producer = testkit::TestProducer::start(settings.clone())
        .await
        .expect("producer");
    let consumer = testkit::TestConsumer::start(settings.clone())
        .await
        .expect("consumer");
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let db = testkit::connect(&url).await.expect("db");
    visit_from_three_countries(&producer.base).await;

    let config = serde_json::json!({
        "producer": producer.base,
        "dashboard": dashboard.base,
        "token": testkit::DASHBOARD_TOKEN,
        "adminToken": testkit::ADMIN_TOKEN,
        "screenshots": root.join("e2e/screenshots"),
    });
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(config.to_string())
        .current_dir(root.join("e2e"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser checks finish within 3 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all browser checks passed"), "{stdout}");

    // What the browser sent, as stored: five page views, engagement reports (one of at least
    // the 20 visible seconds), one visit, and nothing from the pages that must send nothing.
    let views = "SELECT count(*) FROM kafka_events WHERE site = 'shop.test' \
                 AND event_type = 'PAGE_VIEW' AND engaged_ms IS NULL";
    assert_eq!(count(&db, views).await, 5);
    let engaged = "SELECT max(engaged_ms)::bigint FROM kafka_events WHERE site = 'shop.test'";
    assert!(count(&db, engaged).await >= 20_000);
    // A single-page navigation's report is about the page left, not the one navigated to.
    let spa_report = "SELECT count(*) FROM kafka_events WHERE event_type = 'ENGAGEMENT' \
                      AND path = '/products/1' AND engaged_ms >= 5000";
    assert_eq!(count(&db, spa_report).await, 1);
    let silent = "SELECT count(*) FROM kafka_events WHERE path LIKE '/off/%' \
                  OR path LIKE '/local/%' OR path LIKE '/optout/%'";
    assert_eq!(count(&db, silent).await, 0);
    let signup = "SELECT count(*) FROM kafka_events WHERE event_type = 'CUSTOM_EVENT' \
                  AND name = 'Signup' AND path = '/checkout' \
                  AND props = '[{\"key\": \"plan\", \"value\": \"pro\"}]'::jsonb";
    assert_eq!(count(&db, signup).await, 1, "the custom event is stored");
    let outbound = "SELECT count(*) FROM kafka_events WHERE site = 'clicks.test' \
                    AND name = 'Outbound Link: Click' \
                    AND props = '[{\"key\": \"url\", \"value\": \"https://elsewhere.test/x?y=1\"}]'::jsonb";
    let download = "SELECT count(*) FROM kafka_events WHERE site = 'clicks.test' \
                    AND name = 'File Download' AND props->0->>'key' = 'url' \
                    AND props->0->>'value' LIKE 'http://shop.test:%/files/report.pdf'";
    // Posted last, just before the browser closed: stored soon after.
    let both = format!("SELECT ({outbound}) + ({download})");
    testkit::poll_until(
        Duration::from_secs(30),
        "the automatic events stored",
        || {
            let (db, both) = (&db, &both);
            async move { (count(db, both).await >= 2).then_some(()) }
        },
    )
    .await
    .expect("the automatic events are stored");
    assert_eq!(count(&db, outbound).await, 1, "the outbound click, once");
    assert_eq!(count(&db, download).await, 1, "the download, once");
    let visit = "SELECT count(*) FROM visits WHERE site = 'shop.test' AND pageviews = 5 \
                 AND duration >= 20 AND engaged";
    assert_eq!(count(&db, visit).await, 1);

    producer.stop().await.expect("producer stops");
    consumer.stop().await.expect("consumer stops");
    dashboard.stop().await.expect("dashboard stops");
}

/// Three visitors of world.test, each through the proxy from an address of the City test
/// database: London, Linköping and Milton (WA). The browser checks the dashboard names them.
async fn visit_from_three_countries(producer: &str) {
    let http = reqwest::Client::new();
    for (n, address) in ["81.2.69.142", "89.160.20.112", "216.160.83.56"]
        .into_iter()
        .enumerate()
    {
        let event = serde_json::json!({
            "eventType": "PAGE_VIEW", "userId": "", "path": format!("/from/{n}"), "search": "",
            "title": "Geo", "url": "https://world.test/",
        });
        let answer: serde_json::Value = http
            .post(format!("{producer}/query"))
            .header("x-forwarded-for", address)
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0")
            .json(&serde_json::json!({
                "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
                "variables": {"e": event},
            }))
            .send()
            .await
            .expect("posted")
            .json()
            .await
            .expect("json");
        assert!(answer["errors"].is_null(), "{answer}");
    }
}
