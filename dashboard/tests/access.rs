//! Who may read: a request is authorized by the token it proves, never by what its headers say
//! it is. Every route that serves data is sent the headers a hostile client would try
//! (`Upgrade: websocket`, a chunked body, an `Authorization` that is not UTF-8, two of them)
//! and answers 401 with nothing in it; a WebSocket is accepted only with a token.

mod common;

use std::time::Duration;

use common::*;
use futures::SinkExt;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            *name,
            HeaderValue::from_bytes(value).expect("a header value"),
        );
    }
    map
}

/// What a hostile client sends instead of a token, by name.
fn disguises() -> Vec<(&'static str, HeaderMap)> {
    let upgrade: &[(&str, &[u8])] = &[("upgrade", b"websocket"), ("connection", b"Upgrade")];
    let wrong = "Bearer wrong-token-0123456789abcdef".to_owned();
    let valid = format!("Bearer {}", testkit::DASHBOARD_TOKEN);
    vec![
        ("Upgrade: websocket", headers(upgrade)),
        (
            "Upgrade: websocket and a WebSocket key",
            headers(&[
                ("upgrade", b"websocket"),
                ("connection", b"Upgrade"),
                ("sec-websocket-version", b"13"),
                ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            ]),
        ),
        (
            "an Authorization that is not UTF-8",
            headers(&[("authorization", b"Bearer \xff\xfe")]),
        ),
        (
            "Upgrade: websocket with an Authorization that is not UTF-8",
            headers(&[
                ("upgrade", b"websocket"),
                ("connection", b"Upgrade"),
                ("authorization", b"Bearer \xff\xfe"),
            ]),
        ),
        (
            "a wrong token",
            headers(&[("authorization", wrong.as_bytes())]),
        ),
        (
            "a valid and a wrong Authorization",
            headers(&[
                ("authorization", valid.as_bytes()),
                ("authorization", wrong.as_bytes()),
            ]),
        ),
        (
            "another scheme",
            headers(&[("authorization", b"Basic dGVzdDp0ZXN0")]),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_header_stands_in_for_a_token_on_any_route_that_serves_data() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    s.view(start, 0, CHROME_WINDOWS, ("/secret-page", "", None))
        .await;
    s.stored(1).await;
    let base = &s.dashboard.base;
    let csv = format!(
        "{base}/export.csv?site=shop.example&from=2026-11-02&to=2026-11-02&dimensions=PAGE&metrics=VISITORS"
    );
    let sites = json!({"query": "{ sites { name } }"}).to_string();
    // A refusal that leaves the body unread closes the connection; a pooled client could send
    // the next request on it just as it closes.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    for (what, disguise) in disguises() {
        for chunked in [false, true] {
            let body = if chunked {
                // A streamed body goes out chunked, with no Content-Length.
                let chunks = vec![Ok::<_, std::io::Error>(sites.clone())];
                reqwest::Body::wrap_stream(futures::stream::iter(chunks))
            } else {
                reqwest::Body::from(sites.clone())
            };
            let answer = http
                .post(format!("{base}/query"))
                .headers(disguise.clone())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("answered");
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            assert_eq!(
                status, 401,
                "POST /query with {what} (chunked: {chunked}): {text}"
            );
            assert_eq!(text, "", "nothing else");
        }
        let answer = http
            .get(&csv)
            .headers(disguise.clone())
            .send()
            .await
            .expect("answered");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert_eq!(status, 401, "GET /export.csv with {what}: {text}");
        assert!(!text.contains("secret-page"), "{text}");
        // The subscription route answers a handshake or nothing: never data.
        let answer = http
            .get(format!(
                "{base}/query?query=%7B%20sites%20%7B%20name%20%7D%20%7D"
            ))
            .headers(disguise.clone())
            .send()
            .await
            .expect("answered");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(
            status.is_client_error(),
            "GET /query with {what}: {status} {text}"
        );
        assert!(!text.contains("shop.example"), "{text}");
    }
    // The scheme is case-insensitive (RFC 6750): `bearer` with a valid token reads.
    let answer = http
        .post(format!("{base}/query"))
        .header(
            "authorization",
            format!("bearer {}", testkit::DASHBOARD_TOKEN),
        )
        .header("content-type", "application/json")
        .body(sites.clone())
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.expect("body");
    assert!(text.contains("shop.example"), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_with_an_unreadable_authorization_header_still_needs_the_token_in_connection_init(
) {
    let url = testkit::fresh_database().await.expect("database");
    let settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    for (header, init) in [
        (b"Bearer \xff\xfe".as_slice(), json!({})),
        (b"Bearer wrong-token-0123456789abcdef".as_slice(), json!({})),
        (
            b"Bearer \xff\xfe".as_slice(),
            json!({"authorization": "Bearer wrong-token-0123456789abcdef"}),
        ),
    ] {
        let mut request = ws_request(&dashboard.base);
        request.headers_mut().insert(
            "authorization",
            tokio_tungstenite::tungstenite::http::HeaderValue::from_bytes(header).expect("value"),
        );
        let connected = tokio_tungstenite::connect_async(request).await;
        let Ok((mut ws, _)) = connected else {
            continue; // refused at the handshake: as good
        };
        ws.send(Message::text(
            json!({"type": "connection_init", "payload": init}).to_string(),
        ))
        .await
        .expect("init");
        assert!(ws_refused(&mut ws).await, "closed without an ack ({init})");
    }
    dashboard.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_without_an_accepted_connection_init_in_time_is_closed() {
    let url = testkit::fresh_database().await.expect("database");
    let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    settings.dashboard.ws_init_timeout_ms = testkit::ms(300);
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let connect = || async {
        let request = ws_request(&dashboard.base);
        tokio_tungstenite::connect_async(request)
            .await
            .expect("connects")
            .0
    };
    // Silent, and chatty without ever sending connection_init: both closed.
    let mut silent = connect().await;
    assert!(ws_refused(&mut silent).await, "a silent socket is closed");
    let mut chatty = connect().await;
    chatty
        .send(Message::Ping(b"still here".to_vec()))
        .await
        .expect("ping");
    assert!(
        ws_refused(&mut chatty).await,
        "pings do not stand in for init"
    );
    // With the token in time, it is acknowledged and kept.
    let mut welcome = connect().await;
    ws_init(&mut welcome).await;
    assert!(!ws_refused(&mut welcome).await, "acknowledged");
    dashboard.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_runs_its_own_share_of_queries_and_cannot_hold_up_another() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.dashboard.max_queries_per_token = std::num::NonZeroUsize::MIN;
        s.dashboard.query_queue_ms = testkit::ms(100);
    })
    .await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.stored(1).await;
    // Hold the reader token's one query inside PostgreSQL: the rollups it reads are locked.
    let lock = lock_rollups(&s.db).await;
    let pages = json!({"site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
                       "metrics": ["VISITORS"], "dimensions": ["PAGE"]});
    let held = {
        let (http, base, q) = (s.http.clone(), s.dashboard.base.clone(), pages.clone());
        tokio::spawn(async move { ask(&http, &base, STATS, q).await })
    };
    held_statements_reach(&s.db, "the first query waits on the lock", 1).await;

    let second = s.ask(STATS, pages.clone()).await;
    assert_eq!(
        second["errors"][0]["extensions"]["code"], "TOO_MANY_QUERIES",
        "the same token's next query waits its turn, then is refused by name: {second}"
    );
    let other: Value = s
        .http
        .post(format!("{}/query", s.dashboard.base))
        .bearer_auth(testkit::ADMIN_TOKEN)
        .json(&json!({"query": "{ sites { name } }"}))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(
        other["data"]["sites"],
        json!([{"name": "shop.example"}]),
        "another token is not held up: {other}"
    );
    lock.rollback().await.expect("released");
    let first = held.await.expect("the held query");
    assert!(
        first["errors"].is_null(),
        "and the first one answers: {first}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_left_or_whose_deadline_passed_stops_running_in_postgresql() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        // Only a cancellation can end the held statements within the test's deadlines.
        s.dashboard.statement_timeout_ms = testkit::ms(600_000);
        s.dashboard.request_timeout_ms = testkit::ms(60_000);
    })
    .await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.stored(1).await;
    let lock = lock_rollups(&s.db).await;
    let pages = json!({"site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
                       "metrics": ["VISITORS"], "dimensions": ["PAGE"]});

    // A client that gives up: its statement is cancelled, not left to run.
    let impatient = {
        let (http, base, q) = (s.http.clone(), s.dashboard.base.clone(), pages.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/query"))
                .bearer_auth(testkit::DASHBOARD_TOKEN)
                .json(&json!({"query": STATS, "variables": {"q": q}}))
                .timeout(Duration::from_secs(2))
                .send()
                .await
        })
    };
    held_statements_reach(&s.db, "the impatient client's statement waits", 1).await;
    let gone = impatient.await.expect("the client task");
    assert!(gone.is_err_and(|e| e.is_timeout()), "the client gave up");
    held_statements_reach(&s.db, "its statement is cancelled once it left", 0).await;
    lock.rollback().await.expect("released");
    s.stop().await;

    // A request past dashboard.request_timeout_ms is answered by name, and its statement ends.
    let s = spawn_stack_with(start, |s| {
        s.dashboard.statement_timeout_ms = testkit::ms(600_000);
        s.dashboard.request_timeout_ms = testkit::ms(500);
    })
    .await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.stored(1).await;
    let lock = lock_rollups(&s.db).await;
    let answer = s.ask(STATS, pages).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "REQUEST_TIMEOUT",
        "a request past its deadline is refused by name: {answer}"
    );
    held_statements_reach(&s.db, "the late request's statement is cancelled", 0).await;
    lock.rollback().await.expect("released");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_holds_at_most_its_share_of_subscriptions_and_a_completed_one_frees_its_place() {
    use futures::StreamExt;
    let url = testkit::fresh_database().await.expect("database");
    let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    settings.dashboard.max_subscriptions_per_socket = std::num::NonZeroUsize::new(2).expect("2");
    // A registered site to subscribe to.
    let db = testkit::connect(&url).await.expect("db");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "INSERT INTO sites (domain, counted_at) VALUES ('shop.example', now())",
    )
    .await
    .expect("registered");
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let request = ws_request(&dashboard.base);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    ws_init(&mut ws).await;
    assert!(!ws_refused(&mut ws).await, "acknowledged");
    let subscribe = |id: &str| {
        let message = json!({"id": id, "type": "subscribe",
            "payload": {"query": "subscription { currentVisitors(site: \"shop.example\") }"}});
        Message::text(message.to_string())
    };
    // The first answer for a subscription: its first count, or its error.
    async fn first_for(
        ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
        id: &str,
    ) -> Value {
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(frame)) = ws.next().await {
                let Ok(text) = frame.to_text() else { continue };
                let Ok(body) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if body["id"] == id && matches!(body["type"].as_str(), Some("next" | "error")) {
                    return body;
                }
            }
            Value::Null
        });
        wait.await.expect("an answer in time")
    }
    for id in ["1", "2"] {
        ws.send(subscribe(id)).await.expect("subscribe");
        let first = first_for(&mut ws, id).await;
        assert!(
            first["type"] == "next" && first["payload"]["errors"].is_null(),
            "subscription {id} counts: {first}"
        );
    }
    ws.send(subscribe("3")).await.expect("subscribe");
    let third = first_for(&mut ws, "3").await;
    assert_eq!(
        third["payload"]["errors"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS",
        "a third is refused by name: {third}"
    );
    assert!(third["payload"]["data"].is_null(), "with no count: {third}");
    let complete = json!({"id": "1", "type": "complete"});
    ws.send(Message::text(complete.to_string()))
        .await
        .expect("complete");
    // Messages are handled in order: the completed one is gone before the next subscribe.
    ws.send(subscribe("4")).await.expect("subscribe");
    let fourth = first_for(&mut ws, "4").await;
    assert!(
        fourth["type"] == "next" && fourth["payload"]["errors"].is_null(),
        "a completed subscription frees its place: {fourth}"
    );
    dashboard.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_from_another_sites_page_is_refused_at_the_handshake() {
    let url = testkit::fresh_database().await.expect("database");
    let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    settings.dashboard.ws_allowed_origins = vec!["https://stats.example.com".into()];
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let own = dashboard.base.clone();
    let handshake = |origin: Option<&str>| {
        let mut request = ws_request(&dashboard.base);
        if let Some(origin) = origin {
            let headers = request.headers_mut();
            headers.insert("origin", origin.parse().expect("header"));
        }
        tokio_tungstenite::connect_async(request)
    };
    for foreign in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let refused = handshake(Some(foreign)).await;
        assert!(
            matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
            "Origin {foreign} is refused with 403: {refused:?}"
        );
    }
    for welcome in [Some(own.as_str()), Some("https://stats.example.com"), None] {
        let (mut ws, _) = handshake(welcome).await.expect("the handshake completes");
        ws_init(&mut ws).await;
        assert!(
            !ws_refused(&mut ws).await,
            "Origin {welcome:?} is acknowledged"
        );
    }
    dashboard.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_wrong_token_budget_is_refused_even_a_right_token_and_others_are_not() {
    let url = testkit::fresh_database().await.expect("database");
    let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    settings.dashboard.wrong_tokens_per_minute = std::num::NonZeroU32::new(3).expect("3");
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let from = |address: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(address))
            .build()
            .expect("a client")
    };
    let (guesser, neighbour) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let sites = json!({"query": "{ sites { name } }"});
    let ask = |http: &reqwest::Client, token: &str| {
        let request = http
            .post(format!("{}/query", dashboard.base))
            .bearer_auth(token)
            .json(&sites);
        async move { request.send().await.expect("answered") }
    };
    for guess in 0..3 {
        let answer = ask(&guesser, &format!("wrong-token-number-{guess:06}")).await;
        assert_eq!(answer.status(), 401, "wrong token {guess} is refused");
    }
    let past = ask(&guesser, "wrong-token-number-000004").await;
    assert_eq!(past.status(), 429, "past the budget");
    assert_eq!(
        past.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(b"20".as_slice()),
        "one wrong token's refill: 60 s / 3"
    );
    let right = ask(&guesser, testkit::DASHBOARD_TOKEN).await;
    assert_eq!(
        right.status(),
        429,
        "a right guess is refused too, so guessing goes no faster than the budget"
    );
    let csv = guesser
        .get(format!("{}/export.csv?site=x&period=TODAY", dashboard.base))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(csv.status(), 429, "on every route that needs a token");
    let request = ws_request(&dashboard.base);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    ws_init(&mut ws).await;
    assert!(
        ws_refused(&mut ws).await,
        "and a WebSocket's connection_init"
    );
    let other = ask(&neighbour, testkit::DASHBOARD_TOKEN).await;
    assert_eq!(other.status(), 200, "another address reads as before");
    dashboard.stop().await.expect("stops");
}
