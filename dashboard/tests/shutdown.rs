//! The dashboard binary stops on SIGTERM within its shutdown timeout, whatever its clients hold
//! open: subscriptions are closed, and a query still inside PostgreSQL ends with it. And it
//! says it is not ready, within a probe's patience, while PostgreSQL is down.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_dashboard_with_a_subscription_open_and_a_query_held() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        // Nothing but the shutdown can end the held query.
        s.dashboard.statement_timeout_ms = testkit::ms(600_000);
        s.dashboard.request_timeout_ms = testkit::ms(600_000);
        s.dashboard.shutdown_timeout_ms = testkit::ms(1_000);
    })
    .await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.stored(1).await;
    let mut settings = s.settings.clone();
    settings.dashboard.port = testkit::free_port().expect("a port");
    let base = format!("http://127.0.0.1:{}", settings.dashboard.port);
    let mut dashboard =
        testkit::ChildProcess::spawn(env!("CARGO_BIN_EXE_dashboard"), &settings).expect("starts");
    testkit::poll_until(Duration::from_secs(30), "the dashboard is ready", || {
        let url = format!("{base}/readyz");
        async move {
            let answer = reqwest::get(url).await.ok()?;
            answer.status().is_success().then_some(())
        }
    })
    .await
    .expect("ready");

    let mut socket = subscribed(&base).await;
    let lock = lock_rollups(&s.db).await;
    let held = {
        let (http, base) = (s.http.clone(), base.clone());
        let q = json!({"site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
                       "metrics": ["VISITORS"], "dimensions": ["PAGE"]});
        tokio::spawn(async move { ask(&http, &base, STATS, q).await })
    };
    held_statements_reach(&s.db, "the query waits on the lock", 1).await;

    dashboard.terminate().expect("SIGTERM");
    let status = dashboard
        .wait(Duration::from_secs(20))
        .await
        .expect("the dashboard exits after its shutdown timeout");
    assert!(status.success(), "a clean exit, got {status}");
    held_statements_reach(&s.db, "the held query ends with its dashboard", 0).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(frame)) = socket.next().await {
            if frame.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the subscription's socket is closed");
    held.abort();
    lock.rollback().await.expect("released");
    s.stop().await;
}

/// A socket acknowledged with the token, subscribed to the current visitors.
async fn subscribed(
    base: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let request = ws_request(base);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    ws_init(&mut socket).await;
    assert!(!ws_refused(&mut socket).await, "acknowledged");
    let subscribe = json!({"id": "1", "type": "subscribe",
                           "payload": {"query": "subscription { currentVisitors(site: \"shop.example\") }"}});
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .expect("subscribe");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_to_503_within_a_probes_patience_while_postgresql_hangs_or_is_down_and_back_after(
) {
    let pg = testkit::Postgres::start().await.expect("own PostgreSQL");
    let url = testkit::fresh_database_on(&pg.admin_url())
        .await
        .expect("database");
    let settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    // A Kubernetes probe gives up after 1 s by default.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("a client");
    let readiness = || {
        let (probe, url) = (probe.clone(), format!("{}/readyz", dashboard.base));
        async move { probe.get(url).send().await.map(|a| a.status().as_u16()) }
    };
    assert_eq!(readiness().await.expect("answered"), 200, "ready");
    // Stopped, it refuses connections at once; frozen, it answers nothing, and only a bound on
    // the check itself answers the probe in time.
    pg.freeze().expect("PostgreSQL frozen");
    let frozen = readiness().await;
    pg.thaw().expect("PostgreSQL thawed");
    assert_eq!(
        frozen.expect("answered before the probe gives up"),
        503,
        "not ready while the database does not answer"
    );
    pg.stop().await.expect("PostgreSQL stops");
    assert_eq!(
        readiness()
            .await
            .expect("answered before the probe gives up"),
        503,
        "not ready while the database is down"
    );
    pg.resume().await.expect("PostgreSQL starts again");
    testkit::poll_until(Duration::from_secs(30), "ready again", || async {
        (readiness().await.ok()? == 200).then_some(())
    })
    .await
    .expect("ready again");
    dashboard.stop().await.expect("stops");
}
