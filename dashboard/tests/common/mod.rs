//! The stack the read side's tests run against: a producer on a clock the test moves, a
//! consumer, a dashboard, all on a fresh database; and helpers to post events and read stats.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
pub const GOOGLEBOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

pub struct Stack {
    pub producer: testkit::TestProducer,
    pub consumer: testkit::TestConsumer,
    pub dashboard: testkit::TestDashboard,
    pub db: sea_orm::DatabaseConnection,
    pub now: Arc<Mutex<DateTime<Utc>>>,
    pub http: reqwest::Client,
    /// What the stack runs with, for a process started beside it.
    pub settings: settings::Settings,
}

pub async fn spawn_stack(start: DateTime<Utc>) -> Stack {
    spawn_stack_with(start, |_| {}).await
}

/// As `spawn_stack`, with the test's changes to the settings.
pub async fn spawn_stack_with(
    start: DateTime<Utc>,
    change: impl FnOnce(&mut settings::Settings),
) -> Stack {
    let url = testkit::fresh_database().await.expect("database");
    let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    change(&mut settings);
    let now = Arc::new(Mutex::new(start));
    let clock = {
        let now = Arc::clone(&now);
        producer::Clock::new(move || *now.lock().expect("clock"))
    };
    let producer = testkit::TestProducer::start_with_clock(settings.clone(), clock)
        .await
        .expect("producer");
    let consumer = testkit::TestConsumer::start(settings.clone())
        .await
        .expect("consumer");
    let dashboard = testkit::TestDashboard::start(settings.clone())
        .await
        .expect("dashboard");
    let db = testkit::connect(&url).await.expect("db");
    Stack {
        producer,
        consumer,
        dashboard,
        db,
        now,
        http: reqwest::Client::new(),
        settings,
    }
}

impl Stack {
    /// Posts one page view at `minute` minutes after the start, as a browser with `agent`.
    pub async fn view(
        &self,
        start: DateTime<Utc>,
        minute: i64,
        agent: &str,
        page: (&str, &str, Option<&str>),
    ) {
        let (path, search, referrer) = page;
        *self.now.lock().expect("clock") = start + TimeDelta::minutes(minute);
        let event = json!({
            "eventType": "PAGE_VIEW", "userId": "", "path": path, "search": search,
            "title": "Shop", "url": format!("https://shop.example{path}{search}"),
            "referrer": referrer,
        });
        self.post(agent, event).await;
    }

    /// Posts the tracker's engagement report for `path`: `ms` visible milliseconds.
    pub async fn report(
        &self,
        start: DateTime<Utc>,
        minute: i64,
        agent: &str,
        path: &str,
        ms: i32,
    ) {
        *self.now.lock().expect("clock") = start + TimeDelta::minutes(minute);
        let event = json!({
            "eventType": "PAGE_VIEW", "userId": "", "path": path, "search": "",
            "title": "Shop", "url": format!("https://shop.example{path}"),
            "engagedMs": ms, "scrollDepth": 80,
        });
        self.post(agent, event).await;
    }

    pub async fn stop(self) {
        self.producer.stop().await.expect("producer stops");
        self.consumer.stop().await.expect("consumer stops");
        self.dashboard.stop().await.expect("dashboard stops");
    }

    /// Waits until `events` rows are stored.
    pub async fn stored(&self, events: i64) {
        let what = format!("{events} events stored");
        testkit::poll_until(Duration::from_secs(120), &what, || {
            let db = &self.db;
            async move {
                let n = count(db, "SELECT count(*) FROM kafka_events").await;
                (n == events).then_some(())
            }
        })
        .await
        .expect("stored");
    }

    pub async fn post(&self, agent: &str, event: Value) {
        self.post_with(&[("user-agent", agent)], event).await;
    }

    /// Posts one event with these request headers.
    pub async fn post_with(&self, headers: &[(&str, &str)], event: Value) {
        let mut request = self.http.post(format!("{}/query", self.producer.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer: Value = request
            .json(&json!({
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

    pub async fn stats(&self, query: Value) -> Value {
        let answer = self.ask(STATS, query).await;
        assert!(answer["errors"].is_null(), "{answer}");
        answer["data"]["stats"].clone()
    }

    /// The whole answer to `document` with `$q` = `query`, errors included.
    pub async fn ask(&self, document: &str, query: Value) -> Value {
        ask(&self.http, &self.dashboard.base, document, query).await
    }

    /// A CSV export (`params` after `?`), as text.
    pub async fn csv(&self, params: &str) -> String {
        self.http
            .get(format!("{}/export.csv?{params}", self.dashboard.base))
            .bearer_auth(testkit::DASHBOARD_TOKEN)
            .send()
            .await
            .expect("asked")
            .text()
            .await
            .expect("text")
    }

    /// `dimensions → metrics` of a breakdown.
    pub async fn breakdown(&self, dimension: &str, filters: Value) -> Vec<(Value, Vec<f64>)> {
        let answer = self
            .stats(json!({
                "site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
                "metrics": ["VISITORS", "VISITS", "PAGEVIEWS"], "dimensions": [dimension],
                "filters": filters,
                "orderBy": [{"dimension": dimension, "direction": "ASC"}],
            }))
            .await;
        rows(&answer)
    }
}

/// What `stats` answers, all of it.
pub const STATS: &str = "query($q: StatsQuery!) { stats(query: $q) { results { dimensions metrics comparison { metrics change } } meta { engine timeZone from to } } }";

/// POSTs `document` with `$q` = `query` to a dashboard with the reader token; the whole answer.
pub async fn ask(http: &reqwest::Client, base: &str, document: &str, query: Value) -> Value {
    http.post(format!("{base}/query"))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .json(&json!({"query": document, "variables": {"q": query}}))
        .send()
        .await
        .expect("asked")
        .json()
        .await
        .expect("json")
}

pub fn rows(answer: &Value) -> Vec<(Value, Vec<f64>)> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let metrics = r["metrics"].as_array().expect("metrics");
            (
                r["dimensions"][0].clone(),
                metrics
                    .iter()
                    .map(|m| m.as_f64().expect("a number"))
                    .collect(),
            )
        })
        .collect()
}

pub fn row(value: Value, metrics: &[f64]) -> (Value, Vec<f64>) {
    (value, metrics.to_vec())
}

pub async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    testkit::scalar(db, sql).await.expect("a number")
}

/// Whether the socket is closed (or fails) before it is acknowledged.
pub async fn ws_refused(
    ws: &mut (impl futures::StreamExt<
        Item = Result<
            tokio_tungstenite::tungstenite::Message,
            tokio_tungstenite::tungstenite::Error,
        >,
    > + Unpin),
) -> bool {
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None
                | Some(Err(_))
                | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return true,
                Some(Ok(m)) if m.to_text().is_ok_and(|t| t.contains("connection_ack")) => {
                    return false
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    outcome == Ok(true)
}

/// Statements of a Stats query inside PostgreSQL waiting on a lock of the rollups.
const HELD: &str = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                    AND wait_event_type = 'Lock' AND query LIKE '%rollup_days%'";

/// Waits until `n` Stats statements wait on the rollups' lock.
pub async fn held_statements_reach(db: &sea_orm::DatabaseConnection, what: &str, n: i64) {
    testkit::poll_until(Duration::from_secs(10), what, || async move {
        (count(db, HELD).await == n).then_some(())
    })
    .await
    .expect(what);
}

/// Holds every Stats query that reads the day rollups until the transaction ends.
pub async fn lock_rollups(db: &sea_orm::DatabaseConnection) -> sea_orm::DatabaseTransaction {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let lock = db.begin().await.expect("a transaction");
    lock.execute_unprepared("LOCK TABLE rollup_days IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("locked");
    lock
}

/// POSTs a GraphQL document with `token`; the whole answer.
pub async fn graphql(s: &Stack, token: &str, query: &str, variables: Value) -> Value {
    s.http
        .post(format!("{}/query", s.dashboard.base))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("asked")
        .json()
        .await
        .expect("json")
}

/// A WebSocket handshake request to a dashboard's `/query`, speaking graphql-transport-ws.
pub fn ws_request(base: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{}/query", base.replace("http://", "ws://"))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    request
}

/// Sends `connection_init` with the reader token.
pub async fn ws_init(
    ws: &mut (impl futures::SinkExt<tokio_tungstenite::tungstenite::Message> + Unpin),
) {
    let init = json!({"type": "connection_init",
                      "payload": {"authorization": format!("Bearer {}", testkit::DASHBOARD_TOKEN)}});
    let sent = ws
        .send(tokio_tungstenite::tungstenite::Message::text(
            init.to_string(),
        ))
        .await;
    assert!(sent.is_ok(), "connection_init sent");
}

/// The tests' day, 2026-11-02 (a Monday), at `hour:minute` UTC.
pub fn on_nov_2(hour: u32, minute: u32) -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2026, 11, 2, hour, minute, 0)
        .single()
        .expect("a time")
}
