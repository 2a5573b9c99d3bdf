//! The GraphQL ingest API over real HTTP against a real broker.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use event::partitioner::partition_for;
use event::PageView;
use serde_json::{json, Value};
use settings::Settings;

struct TestApp {
    base: String,
    settings: Settings,
    http: reqwest::Client,
    app: testkit::TestProducer,
}

impl TestApp {
    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("HTTP request")
    }

    async fn graphql(&self, body: Value) -> Value {
        self.post("/query", body.to_string())
            .await
            .json()
            .await
            .expect("JSON body")
    }

    /// A GraphQL request with extra headers (a browser's user agent, a proxy's X-Forwarded-For).
    async fn graphql_with(&self, headers: &[(&str, &str)], body: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/query", self.base))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(body.to_string())
            .send()
            .await
            .expect("HTTP request")
            .json()
            .await
            .expect("JSON body")
    }

    async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("HTTP request")
            .text()
            .await
            .expect("a text body")
    }

    async fn status(&self, path: &str) -> u16 {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("HTTP request")
            .status()
            .as_u16()
    }

    /// Posts a page view until one is acknowledged (after an outage), within a minute.
    async fn until_a_mutation_succeeds(&self, why: &str) -> Value {
        testkit::poll_until(
            Duration::from_secs(60),
            "a mutation to succeed again",
            || async {
                let body = self.graphql(mutation("u", "/after")).await;
                body["errors"].is_null().then_some(body)
            },
        )
        .await
        .expect(why)
    }

    fn topic(&self) -> String {
        self.settings.kafka.topic_for("PAGE_VIEW")
    }

    /// Every record on the page-view topic, decoded, with its partition and offset.
    async fn records(&self) -> Vec<(i32, i64, PageView)> {
        let client = testkit::kafka_client(&self.settings.kafka.brokers[0])
            .await
            .expect("client");
        let mut out = Vec::new();
        for partition in 0..self.settings.kafka.partitions {
            for r in testkit::read_partition(&client, &self.topic(), partition)
                .await
                .expect("read partition")
            {
                let view = PageView::decode(r.record.value.as_deref()).expect("a page view");
                out.push((partition, r.offset, view));
            }
        }
        out
    }

    async fn shutdown(self) {
        self.app.stop().await.expect("the producer stops cleanly");
    }
}

async fn spawn_app_with(brokers: &str, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = testkit::settings(
        brokers,
        "postgres://unused/unused",
        &testkit::unique_prefix(),
    );
    tweak(&mut settings);
    let app = testkit::TestProducer::start(settings.clone())
        .await
        .expect("the producer starts");
    TestApp {
        base: app.base.clone(),
        settings,
        http: reqwest::Client::new(),
        app,
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(&testkit::brokers(), |_| {}).await
}

fn mutation(user: &str, path: &str) -> Value {
    json!({
        "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id eventType userId partition offset receivedAt } }",
        "variables": { "e": {
            "eventType": "PAGE_VIEW", "userId": user, "path": path,
            "search": "", "title": "t", "url": "example.com"
        }}
    })
}

fn error_code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_mutation_is_acknowledged_and_lands_on_the_page_view_topic() {
    let app = spawn_app().await;

    for path in ["/query", "/"] {
        let response = app.post(path, testkit::README_CURL_BODY).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"].is_null(), "{body}");
        let event = &body["data"]["register_kafka_event"];
        assert_eq!(event["eventType"], "PAGE_VIEW");
        let id = event["id"].as_str().expect("an id");
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    }

    let records = app.records().await;
    assert_eq!(records.len(), 2, "exactly the two events");
    let visitor = records[0].2.visit.visitor_id.expect("a visitor id");
    for (partition, _, view) in &records {
        // Same address, same user agent, same day, same site: one visitor, one partition.
        assert_eq!(view.visit.visitor_id, Some(visitor));
        assert_eq!(*partition, partition_for(&visitor.to_be_bytes(), 4));
        assert_eq!(view.fields.event_type, "PAGE_VIEW");
        assert_eq!(view.fields.user_id, "some_session_id");
        assert_eq!(view.fields.path, "/test");
        assert_eq!(view.fields.search, "?q=foo");
        assert_eq!(view.fields.title, "Kafka Demo");
        assert_eq!(view.fields.url, "kafka.demo.com");
        assert!(view.received_at <= chrono::Utc::now());
    }
    assert_ne!(records[0].2.id, records[1].2.id);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_mutations_get_distinct_ids_and_keep_each_visitors_order() {
    let app = spawn_app().await;
    // 100 visitors (browsers of their own) send concurrently, each its 10 page views one
    // after another.
    let visitors: Vec<String> = (0..100).map(|v| format!("visitor-{v}")).collect();
    let chains = visitors.iter().map(|visitor| {
        let app = &app;
        async move {
            let mut answers = Vec::new();
            let agent = format!("Mozilla/5.0 (test browser of {visitor})");
            for seq in 0..10 {
                let body = app
                    .graphql_with(
                        &[("user-agent", &agent)],
                        mutation(visitor, &format!("/page/{seq}")),
                    )
                    .await;
                assert!(body["errors"].is_null(), "{body}");
                answers.push(body["data"]["register_kafka_event"].clone());
            }
            answers
        }
    });
    let answers: Vec<Value> = futures::future::join_all(chains)
        .await
        .into_iter()
        .flatten()
        .collect();
    let ids: HashSet<&str> = answers.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1000, "1,000 distinct ids");

    let records = app.records().await;
    assert_eq!(records.len(), 1000, "1,000 records on the topic");
    let mut by_visitor: HashMap<&str, Vec<(i32, i64, &str)>> = HashMap::new();
    let mut ids_of: HashMap<&str, HashSet<i64>> = HashMap::new();
    for (partition, offset, view) in &records {
        assert!(ids.contains(view.id.to_string().as_str()));
        let visitor_id = view.visit.visitor_id.expect("a visitor id");
        ids_of
            .entry(view.fields.user_id.as_str())
            .or_default()
            .insert(visitor_id);
        by_visitor
            .entry(view.fields.user_id.as_str())
            .or_default()
            .push((*partition, *offset, view.fields.path.as_str()));
    }
    let distinct: HashSet<i64> = ids_of.values().flatten().copied().collect();
    assert_eq!(distinct.len(), 100, "one visitor id per browser");
    for (visitor, mut seen) in by_visitor {
        let visitor_id = *ids_of[visitor].iter().next().expect("an id");
        assert_eq!(ids_of[visitor].len(), 1, "{visitor} keeps one visitor id");
        let expected_partition = partition_for(&visitor_id.to_be_bytes(), 4);
        assert!(
            seen.iter().all(|(p, _, _)| *p == expected_partition),
            "{visitor} on one partition"
        );
        seen.sort_by_key(|(_, offset, _)| *offset);
        let paths: Vec<&str> = seen.iter().map(|(_, _, path)| *path).collect();
        let in_order: Vec<String> = (0..10).map(|s| format!("/page/{s}")).collect();
        assert_eq!(paths, in_order, "{visitor}'s events in order");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_a_mutation_fails_in_time_as_retryable_is_bounded_and_recovers() {
    // A broker of the test's own, persistent so that its topic survives the restart.
    let broker = testkit::Broker::start().await.expect("broker");
    let app = spawn_app_with(&broker.address(), |s| {
        s.kafka.produce_timeout_ms = testkit::ms(2000);
        // This test is about the in-flight bound: every request tries the broker.
        s.kafka.circuit_breaker_ms = 0;
        s.server.max_in_flight = 1;
        s.server.max_batch_size = std::num::NonZeroUsize::MIN;
    })
    .await;
    let ok = app.graphql(mutation("u", "/before")).await;
    assert!(ok["errors"].is_null(), "{ok}");

    broker.stop().await.expect("stop broker");
    let started = Instant::now();
    let failed = app.graphql(mutation("u", "/during")).await;
    let took = started.elapsed();
    assert_eq!(error_code(&failed), Some("KAFKA_UNAVAILABLE"), "{failed}");
    assert_eq!(failed["errors"][0]["extensions"]["retryable"], true);
    assert_eq!(
        failed["errors"][0]["extensions"]["eventIds"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // Fails rather than hangs; how fast is the benchmark's business.
    assert!(took < Duration::from_secs(60), "failed after {took:?}");
    // Two at once with a bound of 1: one waits out the timeout, the other is refused at once.
    let app_ref = &app;
    let timed = |path: &'static str| async move {
        let app = app_ref;
        let started = Instant::now();
        let body = app.graphql(mutation("u", path)).await;
        (
            error_code(&body).map(str::to_owned),
            body,
            started.elapsed(),
        )
    };
    let (a, b) = tokio::join!(timed("/a"), timed("/b"));
    let (refused, waited) = if a.0.as_deref() == Some("OVERLOADED") {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(refused.0.as_deref(), Some("OVERLOADED"), "{}", refused.1);
    assert_eq!(refused.1["errors"][0]["extensions"]["retryable"], true);
    // Refused without waiting for the broker: it answered before the one that waited out the
    // produce timeout.
    assert!(
        refused.2 < waited.2,
        "refused after {:?}, the other failed after {:?}",
        refused.2,
        waited.2
    );
    assert_eq!(
        waited.0.as_deref(),
        Some("KAFKA_UNAVAILABLE"),
        "{}",
        waited.1
    );

    // The server keeps serving meanwhile.
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(app.status("/readyz").await, 503);

    broker.resume().await.expect("restart broker");
    let recovered = app
        .until_a_mutation_succeeds("recovers without restarting the producer")
        .await;
    assert_eq!(recovered["data"]["register_kafka_event"]["userId"], "u");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_documented_errors_and_nothing_reaches_kafka() {
    let app = spawn_app_with(&testkit::brokers(), |s| {
        s.server.max_batch_size = std::num::NonZeroUsize::new(10).expect("10")
    })
    .await;
    let event = |field: &str, value: Value| {
        let mut e = json!({
            "eventType": "PAGE_VIEW", "userId": "u", "path": "/", "search": "", "title": "t", "url": "x"
        });
        if value.is_null() {
            e.as_object_mut().unwrap().remove(field);
        } else {
            e[field] = value;
        }
        e
    };
    let custom = |props: Vec<Value>| {
        let mut e = event("name", json!("Signup"));
        e["props"] = Value::Array(props);
        e
    };
    let one = |e: Value| {
        json!({
            "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
            "variables": { "e": e }
        })
    };
    let many = |events: Vec<Value>| {
        json!({
            "query": "mutation($e: [RegisterKafkaEventInput!]!) { register_kafka_events(events: $e) { id } }",
            "variables": { "e": events }
        })
    };
    let cases: Vec<(&str, Value, &str, Option<&str>)> = vec![
        (
            "missing field",
            one(event("url", Value::Null)),
            "GRAPHQL_VALIDATION_FAILED",
            None,
        ),
        (
            "unknown event type",
            one(event("eventType", json!("SIGN_UP"))),
            "BAD_USER_INPUT",
            Some("eventType"),
        ),
        (
            "oversized path",
            one(event("path", json!("/".repeat(3000)))),
            "BAD_USER_INPUT",
            Some("path"),
        ),
        (
            "oversized title",
            one(event("title", json!("t".repeat(1500)))),
            "BAD_USER_INPUT",
            Some("title"),
        ),
        (
            "NUL byte",
            one(event("title", json!("a\u{0}b"))),
            "BAD_USER_INPUT",
            Some("title"),
        ),
        (
            "control character",
            one(event("userId", json!("a\u{1b}b"))),
            "BAD_USER_INPUT",
            Some("userId"),
        ),
        (
            "id that is not a UUID",
            one(event("id", json!("42"))),
            "BAD_USER_INPUT",
            Some("id"),
        ),
        (
            "the nil UUID as id",
            one(event("id", json!("00000000-0000-0000-0000-000000000000"))),
            "BAD_USER_INPUT",
            Some("id"),
        ),
        (
            "the same id twice in one batch",
            many(vec![
                event("id", json!("0192f0c4-6a3e-7cc0-8a5e-3f1c2b9d4e01")),
                event("id", json!("0192f0c4-6a3e-7cc0-8a5e-3f1c2b9d4e01")),
            ]),
            "BAD_USER_INPUT",
            Some("id"),
        ),
        (
            "batch with one bad event",
            many(vec![
                event("path", json!("/ok")),
                event("path", json!("a\u{0}")),
                event("path", json!("/ok2")),
            ]),
            "BAD_USER_INPUT",
            Some("path"),
        ),
        (
            "batch over the limit",
            many((0..11).map(|_| event("path", json!("/"))).collect()),
            "BAD_USER_INPUT",
            None,
        ),
        (
            "a custom event with 31 properties",
            one(custom(
                (0..31)
                    .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
                    .collect(),
            )),
            "BAD_USER_INPUT",
            Some("props"),
        ),
        (
            "a property key over 300 characters",
            one(custom(vec![json!({"key": "k".repeat(301), "value": "v"})])),
            "BAD_USER_INPUT",
            Some("props.key"),
        ),
        (
            "a property value over 2,000 characters",
            one(custom(vec![
                json!({"key": "plan", "value": "é".repeat(2_001)}),
            ])),
            "BAD_USER_INPUT",
            Some("props.value"),
        ),
        (
            "properties without an event name",
            one(event("props", json!([{"key": "plan", "value": "pro"}]))),
            "BAD_USER_INPUT",
            Some("props"),
        ),
        (
            "a custom event's name over 120 characters",
            one(event("name", json!("n".repeat(121)))),
            "BAD_USER_INPUT",
            Some("name"),
        ),
        (
            "query nested too deep",
            json!({"query": "{ __schema { types { fields { args { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } } } }"}),
            "GRAPHQL_VALIDATION_FAILED",
            None,
        ),
    ];
    for (name, body, code, field) in cases {
        let response = app.graphql(body).await;
        assert!(
            response["data"].is_null()
                || response["data"]
                    .as_object()
                    .is_some_and(|d| d.values().all(Value::is_null)),
            "{name}: {response}"
        );
        assert_eq!(error_code(&response), Some(code), "{name}: {response}");
        if let Some(field) = field {
            assert_eq!(
                response["errors"][0]["extensions"]["field"], field,
                "{name}: {response}"
            );
        }
    }

    let too_big = app.post("/query", "x".repeat(70 * 1024)).await;
    assert_eq!(too_big.status(), 413, "oversized body");
    let too_big: Value = too_big.json().await.expect("a JSON answer");
    assert_eq!(error_code(&too_big), Some("PAYLOAD_TOO_LARGE"), "{too_big}");
    // Without a Content-Length (chunked), the limit holds while reading.
    let chunks = futures::stream::iter((0..70).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let chunked = app
        .http
        .post(format!("{}/query", app.base))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("HTTP request");
    assert_eq!(chunked.status(), 413, "oversized chunked body");
    let not_json = app.post("/query", "{not json").await;
    assert_eq!(not_json.status(), 400, "a body that is not JSON");

    assert!(app.records().await.is_empty(), "nothing was produced");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_acknowledged_with_a_partition_and_offset_per_event_and_a_client_id_is_kept() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "query": "mutation($e: [RegisterKafkaEventInput!]!) { register_kafka_events(events: $e) { id partition offset referrer } }",
        "variables": { "e": [
            { "id": id, "eventType": "PAGE_VIEW", "userId": "a", "path": "/1", "search": "", "title": "t", "url": "x", "referrer": "https://ref.example/" },
            { "eventType": "PAGE_VIEW", "userId": "b", "path": "/2", "search": "", "title": "t", "url": "x" }
        ]}
    });
    let response = app.graphql(body).await;
    let events = response["data"]["register_kafka_events"]
        .as_array()
        .expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["id"], id.as_str());
    assert_eq!(events[0]["referrer"], "https://ref.example/");
    assert!(events
        .iter()
        .all(|e| e["offset"].as_i64().is_some() && e["partition"].as_i64().is_some()));
    let records = app.records().await;
    let stored = records
        .iter()
        .find(|(_, _, v)| v.id.to_string() == id)
        .expect("stored with the client's id");
    assert_eq!(
        stored.2.fields.referrer.as_deref(),
        Some("https://ref.example/")
    );
    assert_eq!(records.len(), 2);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_health_ping_and_graphiql_answer() {
    let app = spawn_app().await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/query", app.base))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert!(preflight
        .headers()
        .contains_key("access-control-allow-origin"));
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let page = app.get_text("/").await;
    assert!(page.to_lowercase().contains("graphiql"));
    let ping = app.graphql(json!({"query": "{ ping { message } }"})).await;
    assert_eq!(ping["data"]["ping"]["message"], "pong");
    app.shutdown().await;
}

#[test]
fn a_wrong_port_setting_stops_the_producer_with_one_readable_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_producer"))
        .env("APP__SERVER__PORT", "notaport")
        .env("APP_CONFIG_DIR", "/nonexistent")
        .output()
        .expect("run the producer");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("port"), "names the key: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_or_unset_ip_database_stops_the_producer_with_one_line_naming_its_key() {
    for setting in [None, Some("/nonexistent/country.mmdb")] {
        let mut producer = std::process::Command::new(env!("CARGO_BIN_EXE_producer"));
        producer
            .env("APP__SERVER__PORT", "0")
            .env("APP__KAFKA__BROKERS", "127.0.0.1:1")
            .env("APP_CONFIG_DIR", "/nonexistent");
        if let Some(path) = setting {
            producer.env("APP__ANALYTICS__GEOIP_DATABASE", path);
        }
        let out = producer.output().expect("run the producer");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("analytics.geoip_database") && !stderr.contains("127.0.0.1:1"),
            "names the key, before any broker is tried: {stderr}"
        );
        if let Some(path) = setting {
            assert!(stderr.contains(path), "and the file: {stderr}");
        }
    }
}

#[test]
fn an_unreachable_broker_stops_the_producer_with_one_readable_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_producer"))
        .env("APP__SERVER__PORT", "0")
        .env("APP__KAFKA__BROKERS", "127.0.0.1:1")
        .env("APP__KAFKA__REQUEST_TIMEOUT_MS", "1000")
        .env("APP__KAFKA__PRODUCE_TIMEOUT_MS", "1000")
        .env("APP__ANALYTICS__GEOIP_DATABASE", "off")
        .env("APP_CONFIG_DIR", "/nonexistent")
        .output()
        .expect("run the producer");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("producer: error:") && last.contains("127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_outcome_and_time_the_produces() {
    let app = spawn_app().await;
    let ok = app.graphql(mutation("metrics-user", "/m")).await;
    assert!(ok["errors"].is_null(), "{ok}");
    let mut bad = mutation("metrics-user", "/m");
    bad["variables"]["e"]["eventType"] = json!("NOT_ACCEPTED");
    let refused = app.graphql(bad).await;
    assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"));

    // Websites reach the public port; the counters are served apart.
    let public = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(public.status(), 404, "no /metrics on the public port");
    let text = app
        .http
        .get(format!("{}/metrics", app.app.metrics))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    // Counters are per process and tests share it: at least ours are there.
    let count = |line_start: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        count("pageviews_requests_total{outcome=\"ok\"}") >= 1.0,
        "{text}"
    );
    assert!(
        count("pageviews_requests_total{outcome=\"BAD_USER_INPUT\"}") >= 1.0,
        "{text}"
    );
    assert!(count("pageviews_produce_seconds_count") >= 1.0, "{text}");
    assert!(
        text.contains("pageviews_produce_batch_events_bucket"),
        "{text}"
    );
    assert!(text.contains("pageviews_events_in_flight"), "{text}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_plain_body_as_send_beacon_sends_it_is_acknowledged() {
    let app = spawn_app().await;
    let response: Value = app
        .http
        .post(format!("{}/query", app.base))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(mutation("beacon-user", "/beacon").to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        response["data"]["register_kafka_event"]["userId"], "beacon-user",
        "{response}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_of_requests_gets_an_array_of_answers() {
    let app = spawn_app().await;
    let batch = json!([
        mutation("array-a", "/1"),
        mutation("array-b", "/2"),
        {"query": "{ ping { message } }"}
    ]);
    let answers: Value = app
        .post("/query", batch.to_string())
        .await
        .json()
        .await
        .unwrap();
    let answers = answers.as_array().expect("an array");
    assert_eq!(answers.len(), 3);
    assert_eq!(
        answers[0]["data"]["register_kafka_event"]["userId"],
        "array-a"
    );
    assert_eq!(
        answers[1]["data"]["register_kafka_event"]["userId"],
        "array-b"
    );
    assert_eq!(answers[2]["data"]["ping"]["message"], "pong");
    let users: HashSet<String> = app
        .records()
        .await
        .into_iter()
        .map(|(_, _, v)| v.fields.user_id)
        .collect();
    assert!(users.contains("array-a") && users.contains("array-b"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_introspection_off_the_schema_is_not_disclosed() {
    let app = spawn_app_with(&testkit::brokers(), |s| s.server.introspection = false).await;
    let answer = app
        .graphql(json!({"query": "{ __schema { types { name } } }"}))
        .await;
    // async-graphql answers a disabled introspection with null, as if the schema were empty.
    assert!(answer["data"]["__schema"].is_null(), "{answer}");
    let ping = app.graphql(json!({"query": "{ ping { message } }"})).await;
    assert_eq!(ping["data"]["ping"]["message"], "pong");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_with_a_list_of_origins_allows_those_and_refuses_others() {
    let app = spawn_app_with(&testkit::brokers(), |s| {
        s.server.cors_allowed_origins = vec!["https://shop.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/query", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers()
    );
    app.shutdown().await;
}

fn page_event(path: &str) -> Value {
    json!({ "eventType": "PAGE_VIEW", "userId": "u", "path": path, "search": "", "title": "t", "url": "x" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_event_budget_across_aliases_and_batches_is_refused_whole() {
    let app = spawn_app_with(&testkit::brokers(), |s| {
        s.server.max_batch_size = std::num::NonZeroUsize::new(10).expect("10")
    })
    .await;
    // The probe's shape: many aliases of one batch field, each under the per-field cap.
    let aliases: String = (0..800)
        .map(|i| format!("a{i}: register_kafka_events(events: $e) {{ id }} "))
        .collect();
    let eight_hundred_aliases = json!({
        "query": format!("mutation($e: [RegisterKafkaEventInput!]!) {{ {aliases} }}"),
        "variables": { "e": (0..8).map(|i| page_event(&format!("/{i}"))).collect::<Vec<_>>() }
    });
    let two_aliases_of_six = json!({
        "query": "mutation($e: [RegisterKafkaEventInput!]!) { a: register_kafka_events(events: $e) { id } b: register_kafka_events(events: $e) { id } }",
        "variables": { "e": (0..6).map(|i| page_event(&format!("/{i}"))).collect::<Vec<_>>() }
    });
    let through_a_fragment = json!({
        "query": "mutation($e: [RegisterKafkaEventInput!]!) { ...F ...G } fragment F on Mutation { register_kafka_events(events: $e) { id } } fragment G on Mutation { g: register_kafka_events(events: $e) { id } }",
        "variables": { "e": (0..6).map(|i| page_event(&format!("/{i}"))).collect::<Vec<_>>() }
    });
    for (name, body) in [
        ("800 aliases", eight_hundred_aliases),
        ("two aliases", two_aliases_of_six),
        ("fragments", through_a_fragment),
    ] {
        let response = app.graphql(body).await;
        assert_eq!(
            error_code(&response),
            Some("BAD_USER_INPUT"),
            "{name}: {response}"
        );
        assert!(response["data"].is_null(), "{name}: {response}");
        assert_eq!(
            response["errors"].as_array().map(Vec::len),
            Some(1),
            "{name}"
        );
    }

    // A JSON array of requests shares one budget: 3 × 4 events is over 10.
    let four = json!({
        "query": "mutation($e: [RegisterKafkaEventInput!]!) { register_kafka_events(events: $e) { id } }",
        "variables": { "e": (0..4).map(|i| page_event(&format!("/{i}"))).collect::<Vec<_>>() }
    });
    let batch = app.graphql(json!([four, four, four])).await;
    let answers = batch.as_array().expect("an array of answers");
    assert_eq!(answers.len(), 3);
    assert!(
        answers
            .iter()
            .all(|a| error_code(a) == Some("BAD_USER_INPUT")),
        "{batch}"
    );

    // Exactly the budget is fine.
    let ten = json!({
        "query": "mutation($e: [RegisterKafkaEventInput!]!) { a: register_kafka_events(events: $e) { id } b: register_kafka_events(events: $e) { id } }",
        "variables": { "e": (0..5).map(|i| page_event(&format!("/{i}"))).collect::<Vec<_>>() }
    });
    let response = app.graphql(ten).await;
    assert!(response["errors"].is_null(), "{response}");
    assert_eq!(
        app.records().await.len(),
        10,
        "only the request within budget was produced"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mutation_field_succeeds_or_fails_on_its_own_and_a_failed_one_produces_nothing() {
    let app = spawn_app().await;
    let body = json!({
        "query": "mutation($ok: RegisterKafkaEventInput!, $bad: RegisterKafkaEventInput!, $mixed: [RegisterKafkaEventInput!]!) {
            ok: register_kafka_event(event: $ok) { id path }
            bad: register_kafka_event(event: $bad) { id }
            mixed: register_kafka_events(events: $mixed) { id }
        }",
        "variables": {
            "ok": page_event("/kept"),
            "bad": page_event("/\u{0}"),
            "mixed": [page_event("/batch-ok"), page_event("/batch\u{0}")]
        }
    });
    let response = app.graphql(body).await;
    assert_eq!(response["data"]["ok"]["path"], "/kept", "{response}");
    assert!(response["data"]["bad"].is_null(), "{response}");
    assert!(response["data"]["mixed"].is_null(), "{response}");
    let errors = response["errors"].as_array().expect("errors");
    let paths: HashSet<&str> = errors
        .iter()
        .filter_map(|e| e["path"][0].as_str())
        .collect();
    assert_eq!(paths, HashSet::from(["bad", "mixed"]), "{response}");
    let stored: Vec<String> = app
        .records()
        .await
        .into_iter()
        .map(|(_, _, v)| v.fields.path)
        .collect();
    assert_eq!(
        stored,
        vec!["/kept".to_owned()],
        "only the valid field's event"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_the_circuit_breaker_refuses_at_once_and_readyz_is_not_ready() {
    let broker = testkit::Broker::start().await.expect("broker");
    let app = spawn_app_with(&broker.address(), |s| {
        s.kafka.produce_timeout_ms = testkit::ms(1000);
        s.kafka.circuit_breaker_ms = 5000;
    })
    .await;
    let ok = app.graphql(mutation("u", "/before")).await;
    assert!(ok["errors"].is_null(), "{ok}");
    broker.stop().await.expect("stop broker");

    let first = app.graphql(mutation("u", "/during")).await;
    assert_eq!(error_code(&first), Some("KAFKA_UNAVAILABLE"), "{first}");
    let message = first["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("Error") && !message.contains("io::"),
        "no internal error chain: {message}"
    );
    // Until the broker is tried again, requests are refused without trying.
    let refused = testkit::poll_until(
        Duration::from_secs(30),
        "a refusal by the breaker",
        || async {
            let body = app.graphql(mutation("u", "/during")).await;
            let message = body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            message.contains("refused for up to").then_some(body)
        },
    )
    .await
    .expect("the breaker opens");
    assert_eq!(error_code(&refused), Some("KAFKA_UNAVAILABLE"), "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["retryable"], true);
    assert_eq!(
        refused["errors"][0]["extensions"]["eventIds"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(app.status("/readyz").await, 503);

    broker.resume().await.expect("restart broker");
    app.until_a_mutation_succeeds("the probe closes the breaker")
        .await;
    assert_eq!(app.status("/readyz").await, 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_under_the_producer_is_created_again_without_a_restart() {
    let app = spawn_app().await;
    let ok = app.graphql(mutation("u", "/before")).await;
    assert!(ok["errors"].is_null(), "{ok}");
    let client = testkit::kafka_client(&app.settings.kafka.brokers[0])
        .await
        .expect("client");
    testkit::delete_topic(&client, &app.topic())
        .await
        .expect("topic deleted");

    app.until_a_mutation_succeeds("the producer re-creates its topic")
        .await;
    let topics = client.list_topics().await.expect("topics");
    let topic = topics
        .iter()
        .find(|t| t.name == app.topic())
        .expect("the topic is back");
    assert_eq!(topic.partitions.len() as i32, app.settings.kafka.partitions);
    testkit::poll_until(Duration::from_secs(30), "ready again", || async {
        (app.status("/readyz").await == 200).then_some(())
    })
    .await
    .expect("readyz says ready");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_capped_in_number_and_length_whatever_the_request() {
    let app = spawn_app().await;
    let unused: Vec<String> = (0..3000).map(|i| format!("$v{i}: Int")).collect();
    let many_errors =
        json!({ "query": format!("query({}) {{ ping {{ message }} }}", unused.join(", ")) });
    let huge_id = one_event_with_id(&"x".repeat(50_000));
    let long_bad_query =
        json!({ "query": format!("{{ ping {{ message }} {} }}", "}".repeat(20_000)) });
    for (name, body) in [
        ("3,000 unused variables", many_errors),
        ("a 50 KB id", huge_id),
        ("a long query that does not parse", long_bad_query),
    ] {
        let request_len = body.to_string().len();
        let response = app.post("/query", body.to_string()).await;
        assert_eq!(response.status(), 200, "{name}");
        let text = response.text().await.expect("a body");
        assert!(
            text.len() < 8 * 1024,
            "{name}: a {} byte answer to a {request_len} byte request",
            text.len()
        );
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        let errors = answer["errors"].as_array().expect("errors");
        assert!(
            !errors.is_empty() && errors.len() <= 11,
            "{name}: {} errors",
            errors.len()
        );
        assert!(
            errors.iter().all(|e| e["extensions"]["code"].is_string()),
            "{name}: {text}"
        );
    }
    assert!(app.records().await.is_empty(), "nothing was produced");
    app.shutdown().await;
}

fn one_event_with_id(id: &str) -> Value {
    let mut event = page_event("/");
    event["id"] = json!(id);
    json!({
        "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
        "variables": { "e": event }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_methods_get_405_and_a_slow_body_gets_408_both_as_json() {
    let app = spawn_app_with(&testkit::brokers(), |s| {
        s.server.body_read_timeout_ms = testkit::ms(1000);
    })
    .await;
    for (method, path) in [
        ("PUT", "/query"),
        ("DELETE", "/"),
        ("POST", "/healthz"),
        ("GET", "/query"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .expect("HTTP request");
        assert_eq!(response.status(), 405, "{method} {path}");
        let body: Value = response.json().await.expect("a JSON answer");
        assert_eq!(error_code(&body), Some("METHOD_NOT_ALLOWED"), "{body}");
    }

    // Headers, then one byte of a 100-byte body, then nothing: the server answers and closes.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /query HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection instead of waiting forever")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_loads_pinned_integrity_checked_code_under_a_strict_policy_and_its_introspection_query_passes(
) {
    let app = spawn_app().await;
    let page = app
        .http
        .get(format!("{}/", app.base))
        .send()
        .await
        .expect("GraphiQL");
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let policy = header("content-security-policy");
    assert!(
        policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert!(
        !policy.contains("unsafe-eval")
            && !policy.contains("script-src 'self' https://unpkg.com 'unsafe-inline'"),
        "{policy}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    let html = page.text().await.expect("html");
    let external: Vec<&str> = html
        .split('<')
        .filter(|tag| tag.contains("https://"))
        .collect();
    assert!(external.len() >= 4, "{html}");
    for tag in external {
        assert!(
            tag.starts_with("script") || tag.starts_with("link"),
            "only scripts and styles: {tag}"
        );
        assert!(
            tag.contains("integrity=\"sha384-") && tag.contains("crossorigin=\"anonymous\""),
            "{tag}"
        );
        let pinned = tag
            .split("https://unpkg.com/")
            .nth(1)
            .and_then(|rest| rest.split('/').next());
        let version = pinned
            .and_then(|p| p.rsplit('@').next())
            .unwrap_or_default();
        assert_eq!(
            version
                .split('.')
                .filter(|n| n.parse::<u32>().is_ok())
                .count(),
            3,
            "an exact version: {tag}"
        );
    }
    assert!(
        !html.contains("<script>"),
        "no inline script: the policy forbids it"
    );
    let script = app.get_text("/graphiql.js").await;
    assert!(script.contains("/query"));

    let introspection = include_str!("graphiql_introspection.graphql");
    let answer = app
        .graphql(json!({ "query": introspection, "operationName": "IntrospectionQuery" }))
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let types = answer["data"]["__schema"]["types"]
        .as_array()
        .expect("types");
    assert!(types.iter().any(|t| t["name"] == "RegisterKafkaEventInput"));
    app.shutdown().await;
}

const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn visit(url: &str, path: &str) -> Value {
    json!({
        "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
        "variables": { "e": {
            "eventType": "PAGE_VIEW", "userId": "u", "path": path, "search": "", "title": "t", "url": url
        }}
    })
}

/// The visitor id the producer gave the event stored with `path`.
async fn visitor_of(app: &TestApp, path: &str) -> Option<i64> {
    app.records()
        .await
        .into_iter()
        .find(|(_, _, v)| v.fields.path == path)
        .and_then(|(_, _, v)| v.visit.visitor_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_visitor_gets_one_id_on_two_producer_instances_and_another_site_another_id() {
    let shared = testkit::unique_prefix();
    let one = spawn_app_with(&testkit::brokers(), |s| {
        s.kafka.topic_prefix = shared.clone()
    })
    .await;
    let two = spawn_app_with(&testkit::brokers(), |s| {
        s.kafka.topic_prefix = shared.clone()
    })
    .await;
    let ua = [("user-agent", CHROME_WINDOWS)];
    for (app, path) in [(&one, "/on-one"), (&two, "/on-two")] {
        let answer = app
            .graphql_with(&ua, visit("https://kafka.demo.com/a", path))
            .await;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let other_site = one
        .graphql_with(&ua, visit("other.example", "/other-site"))
        .await;
    assert!(other_site["errors"].is_null(), "{other_site}");
    let other_browser = one
        .graphql_with(
            &[(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            )],
            visit("kafka.demo.com", "/other-browser"),
        )
        .await;
    assert!(other_browser["errors"].is_null(), "{other_browser}");

    let on_one = visitor_of(&one, "/on-one").await.expect("a visitor id");
    assert_eq!(
        visitor_of(&one, "/on-two").await,
        Some(on_one),
        "the same id on the other instance"
    );
    assert_ne!(visitor_of(&one, "/other-site").await, Some(on_one));
    assert_ne!(visitor_of(&one, "/other-browser").await, Some(on_one));
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salts_are_shared_differ_by_day_and_are_destroyed_after_48_hours() {
    let client = testkit::kafka_client(&testkit::brokers())
        .await
        .expect("client");
    let topic = producer::salts::topic(&testkit::unique_prefix());
    testkit::create_topic(&client, &topic, 1)
        .await
        .expect("salt topic");
    let open = || producer::salts::SaltBook::open(&client, &topic, Duration::from_secs(10));
    let (a, b) = (open().await.expect("book a"), open().await.expect("book b"));
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("a day");
    let next = day.succ_opt().expect("a day");
    // Two instances asking at once still agree.
    let (from_a, from_b) = tokio::join!(a.salt_for(day), b.salt_for(day));
    let salt = from_a.expect("a salt");
    assert_eq!(from_b.expect("a salt"), salt);
    let next_salt = a.salt_for(next).await.expect("a salt");
    assert_ne!(next_salt, salt, "a new day, a new salt");
    assert_eq!(b.salt_for(next).await.expect("a salt"), next_salt);

    // Two days later the first day's salt is gone from the topic and from both instances.
    let after = next.succ_opt().expect("a day");
    a.salt_for(after).await.expect("a salt");
    b.maintain(after).await;
    let keys: Vec<String> = testkit::read_partition(&client, &topic, 0)
        .await
        .expect("read the salts")
        .into_iter()
        .filter_map(|r| String::from_utf8(r.record.key?).ok())
        .collect();
    assert!(!keys.contains(&day.to_string()), "{keys:?}");
    assert!(
        keys.contains(&next.to_string()) && keys.contains(&after.to_string()),
        "{keys:?}"
    );
    assert_eq!(a.day_in_memory(), Some(after));
    assert_eq!(b.day_in_memory(), Some(after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_upkeep_makes_the_salt_of_the_producers_own_clock_day_with_no_page_view() {
    let settings = testkit::settings(
        &testkit::brokers(),
        "postgres://unused/unused",
        &testkit::unique_prefix(),
    );
    let day = chrono::NaiveDate::from_ymd_opt(2031, 3, 4).expect("a day");
    let noon = day.and_hms_opt(12, 0, 0).expect("a time").and_utc();
    let clock = producer::Clock::new(move || noon);
    let app = testkit::TestProducer::start_with_clock(settings.clone(), clock)
        .await
        .expect("the producer starts");
    let client = testkit::kafka_client(&testkit::brokers())
        .await
        .expect("client");
    let topic = producer::salts::topic(&settings.kafka.topic_prefix);
    let keys = testkit::poll_until(
        Duration::from_secs(30),
        "the clock's day has a salt",
        || {
            let (client, topic) = (&client, &topic);
            async move {
                let records = testkit::read_partition(client, topic, 0).await.ok()?;
                let keys: Vec<String> = records
                    .into_iter()
                    .filter_map(|r| String::from_utf8(r.record.key?).ok())
                    .collect();
                (!keys.is_empty()).then_some(keys)
            }
        },
    )
    .await
    .expect("a salt is made");
    assert_eq!(keys, [day.to_string()]);
    app.stop().await.expect("the producer stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_headers_get_defined_outcomes_and_only_trusted_proxies_name_the_client() {
    let app = spawn_app_with(&testkit::brokers(), |s| {
        s.server.trusted_proxies =
            vec![settings::IpNet::try_from("127.0.0.1".to_owned()).expect("net")];
    })
    .await;
    let huge_agent = format!("Mozilla/5.0 {}", "x".repeat(10_000));
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("/plain", vec![]),
        ("/huge-agent", vec![("user-agent", huge_agent)]),
        ("/v4", vec![("x-forwarded-for", "203.0.113.10".into())]),
        ("/v6", vec![("x-forwarded-for", "2001:db8::10".into())]),
        (
            "/referer",
            vec![("referer", "https://news.ycombinator.com/".into())],
        ),
        (
            "/language",
            vec![("accept-language", "de-DE,de;q=0.9".into())],
        ),
    ];
    for (path, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = app
            .graphql_with(&headers, visit("kafka.demo.com", path))
            .await;
        assert!(answer["errors"].is_null(), "{path}: {answer}");
    }
    // Invalid UTF-8 in a header: as if absent.
    let raw = app
        .http
        .post(format!("{}/query", app.base))
        .header("content-type", "application/json")
        .header(
            "user-agent",
            reqwest::header::HeaderValue::from_bytes(b"Mozilla \xff\xfe").expect("bytes"),
        )
        .body(visit("kafka.demo.com", "/bad-utf8").to_string())
        .send()
        .await
        .expect("HTTP request");
    assert_eq!(raw.status(), 200);
    let no_host = app.graphql(visit("/just/a/path", "/no-host")).await;
    assert_eq!(error_code(&no_host), Some("BAD_USER_INPUT"), "{no_host}");
    assert_eq!(no_host["errors"][0]["extensions"]["field"], "url");
    let not_a_url = app
        .graphql(json!({
            "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
            "variables": { "e": { "eventType": "PAGE_VIEW", "userId": "u", "path": "/odd-referrer", "search": "", "title": "t", "url": "kafka.demo.com", "referrer": "not a url" } }
        }))
        .await;
    assert!(
        not_a_url["errors"].is_null(),
        "kept as sent; the consumer calls it direct: {not_a_url}"
    );

    let records = app.records().await;
    let by_path = |path: &str| {
        records
            .iter()
            .find(|(_, _, v)| v.fields.path == path)
            .map(|(_, _, v)| v.clone())
            .unwrap_or_else(|| panic!("{path} was stored"))
    };
    assert!(records.iter().all(|(_, _, v)| v.fields.path != "/no-host"));
    let agent = by_path("/huge-agent").visit.user_agent.expect("kept");
    assert_eq!(agent.len(), 512, "cut to 512 bytes");
    assert_eq!(by_path("/bad-utf8").visit.user_agent, None);
    assert_eq!(
        by_path("/referer").fields.referrer.as_deref(),
        Some("https://news.ycombinator.com/")
    );
    assert_eq!(
        by_path("/language").visit.language.as_deref(),
        Some("de-DE")
    );
    assert_eq!(
        by_path("/odd-referrer").fields.referrer.as_deref(),
        Some("not a url")
    );
    let plain = by_path("/plain").visit.visitor_id;
    let v4 = by_path("/v4").visit.visitor_id;
    let v6 = by_path("/v6").visit.visitor_id;
    assert!(plain.is_some() && v4.is_some() && v6.is_some());
    assert_ne!(v4, plain, "a trusted proxy names the client");
    assert_ne!(v6, v4);
    app.shutdown().await;

    // The same header from a peer nobody trusts changes nothing.
    let untrusted = spawn_app().await;
    for (path, forged) in [("/no-header", None), ("/forged", Some("203.0.113.10"))] {
        let headers: Vec<(&str, &str)> = forged
            .map(|ip| ("x-forwarded-for", ip))
            .into_iter()
            .collect();
        let answer = untrusted
            .graphql_with(&headers, visit("kafka.demo.com", path))
            .await;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    assert_eq!(
        visitor_of(&untrusted, "/forged").await,
        visitor_of(&untrusted, "/no-header").await,
        "a forged X-Forwarded-For is ignored"
    );
    untrusted.shutdown().await;
}

/// `gzip -9 | wc -c`.
fn gzipped_size(bytes: &[u8]) -> usize {
    let mut gzip = std::process::Command::new("gzip")
        .arg("-9")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    std::io::Write::write_all(&mut gzip.stdin.take().expect("stdin"), bytes).expect("write");
    gzip.wait_with_output().expect("gzip output").stdout.len()
}

#[tokio::test]
async fn the_tracker_is_served_small_cacheable_and_loadable_from_any_site() {
    let app = spawn_app().await;
    let url = format!("{}/tracker.js", app.base);
    let answer = app.http.get(&url).send().await.expect("tracker");
    assert_eq!(answer.status(), 200);
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header("access-control-allow-origin"), "*");
    assert_eq!(header("cross-origin-resource-policy"), "cross-origin");
    assert!(header("cache-control").contains("max-age=604800"));
    let etag = header("etag");
    assert!(etag.starts_with('"'), "{etag}");
    let script = answer.bytes().await.expect("body");
    let text = String::from_utf8_lossy(&script);
    assert!(!text.contains("// "), "comments are removed: {text}");

    // The documented size check: `curl -s …/tracker.js | gzip -9 | wc -c` at most 1024, and
    // 1,536 for the script with every option (the automatic events).
    let gzipped = gzipped_size(&script);
    assert!(
        gzipped <= 1024,
        "the tracker is {gzipped} bytes gzipped, over 1,024"
    );
    let clicks = app.http.get(format!("{}/tracker.clicks.js", app.base));
    let clicks = clicks.send().await.expect("tracker.clicks.js");
    assert_eq!(clicks.status(), 200);
    let clicks = clicks.bytes().await.expect("body");
    let gzipped = gzipped_size(&clicks);
    assert!(
        gzipped <= 1536,
        "tracker.clicks.js is {gzipped} bytes gzipped, over 1,536"
    );

    let again = app
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidation");
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("body").is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn an_engagement_report_is_accepted_and_its_ranges_are_checked() {
    let app = spawn_app().await;
    let post = |engaged: i64, depth: i64| {
        let app = &app;
        async move {
            let mut m = mutation("", "/");
            m["variables"]["e"]["engagedMs"] = json!(engaged);
            m["variables"]["e"]["scrollDepth"] = json!(depth);
            app.http
                .post(format!("{}/query", app.base))
                .body(m.to_string()) // as sendBeacon sends it: text/plain
                .send()
                .await
                .expect("posted")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let ok = post(21_000, 80).await;
    assert!(ok["errors"].is_null(), "{ok}");
    let wrong = post(21_000, 140).await;
    assert_eq!(error_code(&wrong), Some("BAD_USER_INPUT"), "{wrong}");
    assert!(wrong.to_string().contains("scrollDepth"), "{wrong}");
    let views = app.records().await;
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].2.fields.engaged_ms, Some(21_000));
    assert_eq!(views[0].2.fields.scroll_depth, Some(80));
    app.shutdown().await;
}
