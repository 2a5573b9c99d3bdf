//! Goals, custom events and funnels end to end: events posted through the producer, goals
//! created afterwards through the Stats API (their past counted by the backfill), later events
//! counted by the consumer, every figure compared with a count from the stored events.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use serde_json::{json, Value};

/// Posts a custom event at `minute` minutes after the start.
async fn send(s: &Stack, start: DateTime<Utc>, minute: i64, agent: &str, name: &str, plan: &str) {
    *s.now.lock().expect("clock") = start + TimeDelta::minutes(minute);
    let event = json!({
        "eventType": "PAGE_VIEW", "userId": "", "path": "/pricing", "search": "",
        "title": "Shop", "url": "https://shop.example/pricing",
        "name": name, "props": [{"key": "plan", "value": plan}],
    });
    s.post(agent, event).await;
}

async fn create_goal(s: &Stack, goal: Value) -> Value {
    graphql(
        s,
        testkit::ADMIN_TOKEN,
        "mutation($g: GoalInput!) { createGoal(site: \"shop.example\", goal: $g) { name event page properties { key value } } }",
        json!({"g": goal}),
    )
    .await
}

const DAY: &str = "2026-11-02";

/// `value → metrics` of a breakdown of goals or custom events on the test's day.
async fn by(s: &Stack, dimension: &str, metrics: Value, extra: Value) -> Vec<(Value, Vec<f64>)> {
    let mut q = json!({
        "site": "shop.example", "dateRange": {"from": DAY, "to": DAY},
        "metrics": metrics, "dimensions": [dimension],
        "orderBy": [{"dimension": dimension, "direction": "ASC"}],
    });
    if let (Some(q), Some(extra)) = (q.as_object_mut(), extra.as_object()) {
        q.extend(extra.clone());
    }
    rows(&s.stats(q).await)
}

async fn funnel(s: &Stack, steps: &[&str]) -> Value {
    let answer = graphql(
        s,
        testkit::DASHBOARD_TOKEN,
        "query($q: FunnelQuery!) { funnel(query: $q) { steps { goal visitors conversionRate dropOff dropOffRate } } }",
        json!({"q": {"site": "shop.example", "dateRange": {"from": DAY, "to": DAY}, "steps": steps}}),
    )
    .await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"]["funnel"]["steps"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goals_created_afterwards_count_the_past_and_the_consumer_counts_what_follows() {
    let start = on_nov_2(10, 0);
    let s = spawn_stack(start).await;
    // One visitor views / and /pricing and signs up for pro; one views both; one views /.
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.view(start, 1, CHROME_WINDOWS, ("/pricing", "", None))
        .await;
    send(&s, start, 2, CHROME_WINDOWS, "Signup", "pro").await;
    s.view(start, 0, SAFARI_IPHONE, ("/", "", None)).await;
    s.view(start, 3, SAFARI_IPHONE, ("/pricing", "", None))
        .await;
    s.view(start, 0, FIREFOX_LINUX, ("/", "", None)).await;
    s.stored(6).await;

    let reader = graphql(
        &s,
        testkit::DASHBOARD_TOKEN,
        "mutation { deleteGoal(site: \"shop.example\", name: \"x\") }",
        json!({}),
    )
    .await;
    assert_eq!(
        reader["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{reader}"
    );
    let signup = create_goal(
        &s,
        json!({"name": "Signup", "event": "Signup", "properties": [{"key": "plan", "value": "pro"}]}),
    )
    .await;
    assert_eq!(
        signup["data"]["createGoal"]["properties"][0]["value"], "pro",
        "{signup}"
    );
    let pricing = create_goal(&s, json!({"name": "Pricing", "page": "/pricing*"})).await;
    assert_eq!(
        pricing["data"]["createGoal"]["page"], "/pricing*",
        "{pricing}"
    );
    let twice = create_goal(&s, json!({"name": "Pricing", "page": "/p"})).await;
    assert_eq!(
        twice["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{twice}"
    );
    let both = create_goal(&s, json!({"name": "X", "page": "/p", "event": "e"})).await;
    assert!(
        both["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("goal:"),
        "{both}"
    );

    let goals = json!(["CONVERSIONS", "CONVERSION_RATE", "EVENTS"]);
    assert_eq!(
        by(&s, "GOAL", goals.clone(), json!({})).await,
        [
            row(json!("Pricing"), &[2.0, 66.7, 2.0]),
            row(json!("Signup"), &[1.0, 33.3, 1.0])
        ]
    );
    let steps = funnel(&s, &["Pricing", "Signup"]).await;
    assert_eq!(
        steps,
        json!([
            {"goal": "Pricing", "visitors": 2, "conversionRate": 100.0, "dropOff": 0, "dropOffRate": 0.0},
            {"goal": "Signup", "visitors": 1, "conversionRate": 50.0, "dropOff": 1, "dropOffRate": 50.0}
        ])
    );
    let plans = by(
        &s,
        "PROPERTY",
        json!(["VISITORS", "EVENTS"]),
        json!({"property": "plan"}),
    )
    .await;
    assert_eq!(plans, [row(json!("pro"), &[1.0, 1.0])]);

    // What follows is counted by the consumer: a free signup (not the goal), and a pro signup
    // from the visitor who never saw the pricing page.
    send(&s, start, 5, SAFARI_IPHONE, "Signup", "free").await;
    send(&s, start, 6, FIREFOX_LINUX, "Signup", "pro").await;
    s.stored(8).await;
    let converted = by(&s, "GOAL", goals.clone(), json!({})).await;
    assert_eq!(
        converted,
        [
            row(json!("Pricing"), &[2.0, 66.7, 2.0]),
            row(json!("Signup"), &[2.0, 66.7, 2.0])
        ]
    );
    // The same figures through the per-completion and per-event paths a filter takes.
    let everyone =
        json!({"filters": [{"dimension": "SOURCE", "op": "IS_NOT", "values": ["nowhere"]}]});
    let through_conversions = by(&s, "GOAL", goals.clone(), everyone.clone()).await;
    assert_eq!(
        through_conversions, converted,
        "goal_days and conversions agree"
    );
    let by_name = json!(["VISITORS", "VISITS", "EVENTS"]);
    let from_rollups = by(&s, "EVENT_NAME", by_name.clone(), json!({})).await;
    let from_events = by(&s, "EVENT_NAME", by_name, everyone).await;
    assert_eq!(
        from_rollups, from_events,
        "the rollups and the events agree"
    );
    let steps = funnel(&s, &["Pricing", "Signup"]).await;
    assert_eq!(
        steps[1]["visitors"], 1,
        "the pro signup without pricing is not in the funnel"
    );
    let names = by(&s, "EVENT_NAME", json!(["VISITORS", "EVENTS"]), json!({})).await;
    assert_eq!(names, [row(json!("Signup"), &[3.0, 3.0])]);
    let plans = by(
        &s,
        "PROPERTY",
        json!(["VISITORS"]),
        json!({"property": "plan"}),
    )
    .await;
    assert_eq!(
        plans,
        [row(json!("free"), &[1.0]), row(json!("pro"), &[2.0])]
    );
    let pro = json!({"filters": [{"dimension": "PROPERTY", "property": "plan", "op": "IS", "values": ["pro"]}]});
    let pro_pricing = by(&s, "GOAL", json!(["CONVERSIONS"]), pro).await;
    assert_eq!(pro_pricing[0], row(json!("Pricing"), &[1.0]));
    let of_pricing = json!({"filters": [{"dimension": "GOAL", "op": "IS", "values": ["Pricing"]}]});
    let browsers = by(&s, "BROWSER", json!(["VISITORS", "PAGEVIEWS"]), of_pricing).await;
    assert_eq!(
        browsers,
        [
            row(json!("Chrome"), &[1.0, 2.0]),
            row(json!("Safari"), &[1.0, 2.0])
        ]
    );

    // The page filtered by a goal: its totals, its events, its funnel.
    let signup = json!([{"dimension": "GOAL", "op": "IS", "values": ["Signup"]}]);
    let totals = s
        .stats(json!({
            "site": "shop.example", "dateRange": {"from": DAY, "to": DAY},
            "metrics": ["VISITORS", "VISITS", "PAGEVIEWS", "VIEWS_PER_VISIT", "BOUNCE_RATE", "VISIT_DURATION"],
            "filters": signup, "compare": "PREVIOUS_PERIOD",
        }))
        .await;
    assert_eq!(rows(&totals)[0].1[0], 2.0, "{totals}");
    let names = by(
        &s,
        "EVENT_NAME",
        json!(["VISITORS", "EVENTS"]),
        json!({"filters": signup}),
    )
    .await;
    assert_eq!(names, [row(json!("Signup"), &[2.0, 2.0])]);

    // Every figure above equals a count from the stored events.
    let raw = |sql: &'static str| count(&s.db, sql);
    let pricing_raw = raw("SELECT count(DISTINCT visitor_id) FROM kafka_events \
         WHERE event_type = 'PAGE_VIEW' AND path LIKE '/pricing%'");
    assert_eq!(pricing_raw.await, 2);
    let signup_raw = raw("SELECT count(DISTINCT visitor_id) FROM kafka_events \
         WHERE event_type = 'CUSTOM_EVENT' AND name = 'Signup' \
         AND props @> '[{\"key\": \"plan\", \"value\": \"pro\"}]'");
    assert_eq!(signup_raw.await, 2);
    assert_eq!(
        raw("SELECT count(*) FROM kafka_events WHERE event_type = 'PAGE_VIEW'").await,
        5
    );
    let analytics = testkit::settings(&testkit::brokers(), "postgres://unused", "x").analytics;
    let verified = consumer::rebuild::rebuild(&s.db, &analytics, consumer::rebuild::Mode::Verify)
        .await
        .expect("rebuilt");
    assert!(!verified.differed, "the rebuild differs: {verified:?}");

    let deleted = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { deleteGoal(site: \"shop.example\", name: \"Pricing\") }",
        json!({}),
    )
    .await;
    assert_eq!(deleted["data"]["deleteGoal"], true, "{deleted}");
    let listed = graphql(
        &s,
        testkit::DASHBOARD_TOKEN,
        "{ goals(site: \"shop.example\") { name } }",
        json!({}),
    )
    .await;
    assert_eq!(listed["data"]["goals"], json!([{"name": "Signup"}]));
    let gone = graphql(
        &s,
        testkit::DASHBOARD_TOKEN,
        "query($q: FunnelQuery!) { funnel(query: $q) { steps { goal } } }",
        json!({"q": {"site": "shop.example", "dateRange": {"from": DAY, "to": DAY}, "steps": ["Pricing", "Signup"]}}),
    )
    .await;
    assert_eq!(
        gone["errors"][0]["extensions"]["code"], "UNKNOWN_GOAL",
        "{gone}"
    );
    assert_eq!(raw("SELECT count(*) FROM conversions").await, 2);
    s.stop().await;
}

/// Posts an engagement report of `/docs`: `ms` engaged milliseconds, scrolled `scroll` %.
async fn report(s: &Stack, start: DateTime<Utc>, minute: i64, agent: &str, ms: i32, scroll: i32) {
    *s.now.lock().expect("clock") = start + TimeDelta::minutes(minute);
    let event = json!({
        "eventType": "PAGE_VIEW", "userId": "", "path": "/docs", "search": "",
        "title": "Docs", "url": "https://shop.example/docs",
        "engagedMs": ms, "scrollDepth": scroll,
    });
    s.post(agent, event).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_scroll_depth_and_time_on_page_come_from_each_visits_reports() {
    let start = on_nov_2(10, 0);
    let s = spawn_stack(start).await;
    // One visit reads /docs twice over (80 % then 50 %, 40 s in all); another 20 s at 40 %.
    s.view(start, 0, CHROME_WINDOWS, ("/docs", "", None)).await;
    report(&s, start, 1, CHROME_WINDOWS, 30_000, 80).await;
    report(&s, start, 2, CHROME_WINDOWS, 10_000, 50).await;
    s.view(start, 0, SAFARI_IPHONE, ("/docs", "", None)).await;
    report(&s, start, 1, SAFARI_IPHONE, 20_000, 40).await;
    s.view(start, 0, FIREFOX_LINUX, ("/", "", None)).await;
    s.stored(6).await;
    let pages = by(
        &s,
        "PAGE",
        json!(["PAGEVIEWS", "SCROLL_DEPTH", "TIME_ON_PAGE"]),
        json!({}),
    )
    .await;
    assert_eq!(
        pages,
        [
            row(json!("/"), &[1.0, 0.0, 0.0]),
            row(json!("/docs"), &[2.0, 60.0, 30.0])
        ]
    );
    // The same from the stored reports.
    let per_visit = "SELECT max(scroll_depth) AS scroll, sum(engaged_ms) AS ms FROM kafka_events \
         WHERE event_type = 'ENGAGEMENT' AND path = '/docs' GROUP BY visitor_id";
    let scroll = format!("SELECT avg(scroll)::bigint FROM ({per_visit}) r");
    let seconds = format!("SELECT (avg(ms) / 1000)::bigint FROM ({per_visit}) r");
    assert_eq!(count(&s.db, &scroll).await, 60);
    assert_eq!(count(&s.db, &seconds).await, 30);
    let chrome = json!({"filters": [{"dimension": "BROWSER", "op": "IS", "values": ["Chrome"]}]});
    let filtered = by(&s, "PAGE", json!(["SCROLL_DEPTH", "TIME_ON_PAGE"]), chrome).await;
    assert_eq!(filtered, [row(json!("/docs"), &[80.0, 40.0])]);
    let refused = s
        .http
        .post(format!("{}/query", s.dashboard.base))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .json(&json!({"query": "{ stats(query: {site: \"shop.example\", dateRange: {from: \"2026-11-02\", to: \"2026-11-02\"}, metrics: [SCROLL_DEPTH], dimensions: [SOURCE]}) { results { metrics } } }"}))
        .send()
        .await
        .expect("asked")
        .json::<Value>()
        .await
        .expect("json");
    let message = refused["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("need the PAGE dimension"), "{refused}");
    s.stop().await;
}

/// The funnel `/pricing*` → `Signup` (plan pro) recomputed from the stored hits: per visit,
/// in receive order, the first pricing view and then a pro signup after it.
async fn funnel_from_stored_hits(s: &Stack) -> (i64, i64) {
    let sql = "SELECT count(DISTINCT (day, visitor)) FILTER (WHERE pricing IS NOT NULL) * 1000000 \
         + count(DISTINCT (day, visitor)) FILTER (WHERE signed > pricing) FROM ( \
           SELECT v.day, v.visitor, \
             min((e.received_at, e.id)::text) FILTER (WHERE e.event_type = 'PAGE_VIEW' \
                 AND e.path LIKE '/pricing%' AND e.path NOT LIKE '/pricing%/%') AS pricing, \
             max((e.received_at, e.id)::text) FILTER (WHERE e.event_type = 'CUSTOM_EVENT' \
                 AND e.name = 'Signup' AND e.props->0->>'value' = 'pro') AS signed \
           FROM kafka_events e JOIN visits v ON v.id = e.visit_id GROUP BY v.id, v.day, v.visitor) x";
    let n = count(&s.db, sql).await;
    (n / 1_000_000, n % 1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goal_created_while_events_stream_in_counts_each_completion_once() {
    let start = on_nov_2(10, 0);
    let s = spawn_stack(start).await;
    const EVENTS: i64 = 1_200;
    let post_all = async {
        for i in 0..EVENTS {
            let agent = CHROME_WINDOWS.replace("131.0.0.0", &format!("131.0.{}.0", i % 40));
            match (i / 40 * 3 + i) % 5 {
                0 | 1 => s.view(start, i / 10, &agent, ("/", "", None)).await,
                2 => s.view(start, i / 10, &agent, ("/pricing", "", None)).await,
                3 => {
                    let plan = if i % 3 == 0 { "pro" } else { "free" };
                    send(&s, start, i / 10, &agent, "Signup", plan).await
                }
                _ => {
                    s.view(start, i / 10, &agent, ("/pricing/team", "", None))
                        .await
                }
            }
        }
    };
    let create_meanwhile = async {
        testkit::poll_until(Duration::from_secs(60), "300 events stored", || async {
            (count(&s.db, "SELECT count(*) FROM kafka_events").await >= 300).then_some(())
        })
        .await
        .expect("stored");
        create_goal(&s, json!({"name": "Pricing", "page": "/pricing*"})).await;
        create_goal(
            &s,
            json!({"name": "Signup", "event": "Signup", "properties": [{"key": "plan", "value": "pro"}]}),
        )
        .await;
    };
    tokio::join!(post_all, create_meanwhile);
    s.stored(EVENTS).await;
    let (pricing, signup) = funnel_from_stored_hits(&s).await;
    assert!(pricing > 0 && signup > 0, "{pricing} {signup}");
    let steps = funnel(&s, &["Pricing", "Signup"]).await;
    assert_eq!(
        (steps[0]["visitors"].as_i64(), steps[1]["visitors"].as_i64()),
        (Some(pricing), Some(signup)),
        "{steps}"
    );
    let completions = "SELECT count(*) FROM kafka_events WHERE (event_type = 'PAGE_VIEW' \
         AND path = '/pricing') OR (event_type = 'CUSTOM_EVENT' AND props->0->>'value' = 'pro')";
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM conversions").await,
        count(&s.db, completions).await,
        "each completion once: /pricing/team is not /pricing*"
    );
    let analytics = testkit::settings(&testkit::brokers(), "postgres://unused", "x").analytics;
    let verified = consumer::rebuild::rebuild(&s.db, &analytics, consumer::rebuild::Mode::Verify)
        .await
        .expect("rebuilt");
    assert!(!verified.differed, "the rebuild differs: {verified:?}");
    s.stop().await;
}
