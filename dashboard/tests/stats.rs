//! The read side end to end: page views posted through the producer (on a clock the test moves),
//! consumed into visits and rollups, and read back through the Stats API over HTTP.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_sql_on_page_view_events_counts_exactly_the_page_views_the_api_reports() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.report(start, 1, CHROME_WINDOWS, "/", 15_000).await;
    s.view(start, 2, SAFARI_IPHONE, ("/pricing", "", None))
        .await;
    s.report(start, 3, SAFARI_IPHONE, "/pricing", 4_000).await;
    s.stored(4).await;

    let top = s
        .stats(json!({
            "site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
            "metrics": ["PAGEVIEWS", "VISITS", "BOUNCE_RATE"],
        }))
        .await;
    // Two page views in two visits; the report of 15 s makes the first visit not a bounce.
    assert_eq!(top["results"][0]["metrics"], json!([2.0, 2.0, 50.0]));
    let tutorial = "SELECT count(*) FROM kafka_events WHERE event_type = 'PAGE_VIEW'";
    assert_eq!(count(&s.db, tutorial).await, 2);
    let reports = "SELECT count(*) FROM kafka_events WHERE event_type = 'ENGAGEMENT'";
    assert_eq!(count(&s.db, reports).await, 2);

    // Rows stored before the fix had reports as PAGE_VIEW: the migration tells them apart.
    use migration::MigratorTrait;
    let since = testkit::migrations_since("m20261201_000009_store_engagement_reports_apart")
        .expect("the migration");
    migration::Migrator::down(&s.db, Some(since))
        .await
        .expect("down");
    assert_eq!(count(&s.db, tutorial).await, 4, "as stored before");
    migration::Migrator::up(&s.db, None).await.expect("up");
    assert_eq!(count(&s.db, tutorial).await, 2);
    assert_eq!(count(&s.db, reports).await, 2);

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_series_over_two_years_carries_every_day_and_a_breakdown_its_first_hundred_rows() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    for minute in 0..101 {
        let path = format!("/p{minute}");
        s.view(start, minute, CHROME_WINDOWS, (&path, "", None))
            .await;
    }
    s.stored(101).await;
    let range = json!({"from": "2024-12-01", "to": "2026-12-01"});
    let series = |time: &str| json!({"site": "shop.example", "dateRange": range, "metrics": ["PAGEVIEWS"], "dimensions": [time]});
    let days = rows(&s.stats(series("TIME_DAY")).await);
    assert_eq!(days.len(), 731);
    let day = days
        .iter()
        .find(|(d, _)| d == "2026-11-02")
        .expect("the day");
    assert_eq!(day.1, [101.0]);
    assert_eq!(rows(&s.stats(series("TIME_WEEK")).await).len(), 106);
    let pages = json!({"site": "shop.example", "dateRange": range, "metrics": ["PAGEVIEWS"], "dimensions": ["PAGE"]});
    assert_eq!(rows(&s.stats(pages).await).len(), 100);

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_api_counts_exactly_the_visits_a_known_mix_of_page_views_makes() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    let google = Some("https://www.google.com/search?q=shop");
    let hn = Some("https://news.ycombinator.com/item?id=1");
    let inside = Some("https://shop.example/");
    let campaign = "?utm_source=newsletter&utm_medium=email&utm_campaign=nov";
    // Visitor A (desktop): a 12-minute visit from Google, then after 48 idle minutes a bounce
    // from the newsletter.
    s.view(start, 0, CHROME_WINDOWS, ("/", "", google)).await;
    // Visitor B (mobile): a bounce from Hacker News.
    s.view(start, 3, SAFARI_IPHONE, ("/pricing", "", hn)).await;
    s.view(start, 5, CHROME_WINDOWS, ("/pricing", "", inside))
        .await;
    s.view(start, 12, CHROME_WINDOWS, ("/signup", "", inside))
        .await;
    // A bot: stored, counted apart, in no visit.
    s.view(start, 15, GOOGLEBOT, ("/", "", None)).await;
    // Visitor C (desktop): a direct bounce.
    s.view(start, 20, FIREFOX_LINUX, ("/", "", None)).await;
    // Visitor B again after 47 minutes: a direct visit of two pages, 5 minutes long.
    s.view(start, 50, SAFARI_IPHONE, ("/", "", None)).await;
    s.view(start, 55, SAFARI_IPHONE, ("/pricing", "", inside))
        .await;
    s.view(start, 60, CHROME_WINDOWS, ("/blog", campaign, None))
        .await;

    s.stored(9).await;

    // Top line: 3 visitors, 5 visits (A 2, B 2, C 1), 8 page views (the bot's is not one),
    // bounces A2, B1, C = 3 of 5, durations 720 + 300 seconds over 5 visits.
    let top = s
        .stats(json!({
            "site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
            "metrics": ["VISITORS", "VISITS", "PAGEVIEWS", "VIEWS_PER_VISIT", "BOUNCE_RATE", "VISIT_DURATION"],
            "compare": "PREVIOUS_PERIOD",
        }))
        .await;
    assert_eq!(top["meta"]["engine"], "ROLLUPS");
    assert_eq!(top["meta"]["timeZone"], "UTC");
    assert_eq!(
        top["results"][0]["metrics"],
        json!([3.0, 5.0, 8.0, 1.6, 60.0, 204.0])
    );
    assert_eq!(
        top["results"][0]["comparison"]["metrics"],
        json!([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    );
    assert_eq!(
        top["results"][0]["comparison"]["change"],
        json!([null, null, null, null, null, null]),
        "no change against an empty previous period, not \"▲ 60 pts\""
    );

    assert_eq!(
        s.breakdown("PAGE", json!([])).await,
        vec![
            row(json!("/"), &[3.0, 3.0, 3.0]),
            row(json!("/blog"), &[1.0, 1.0, 1.0]),
            row(json!("/pricing"), &[2.0, 3.0, 3.0]),
            row(json!("/signup"), &[1.0, 1.0, 1.0]),
        ]
    );
    assert_eq!(
        s.breakdown("SOURCE", json!([])).await,
        vec![
            row(Value::Null, &[2.0, 2.0, 3.0]),
            row(json!("google"), &[1.0, 1.0, 3.0]),
            row(json!("news.ycombinator.com"), &[1.0, 1.0, 1.0]),
            row(json!("newsletter"), &[1.0, 1.0, 1.0]),
        ]
    );
    assert_eq!(
        s.breakdown("ENTRY_PAGE", json!([])).await,
        vec![
            row(json!("/"), &[3.0, 3.0, 6.0]),
            row(json!("/blog"), &[1.0, 1.0, 1.0]),
            row(json!("/pricing"), &[1.0, 1.0, 1.0]),
        ]
    );
    assert_eq!(
        s.breakdown("EXIT_PAGE", json!([])).await,
        vec![
            row(json!("/"), &[1.0, 1.0, 1.0]),
            row(json!("/blog"), &[1.0, 1.0, 1.0]),
            row(json!("/pricing"), &[1.0, 2.0, 3.0]),
            row(json!("/signup"), &[1.0, 1.0, 3.0]),
        ]
    );
    assert_eq!(
        s.breakdown("DEVICE", json!([])).await,
        vec![
            row(json!("desktop"), &[2.0, 3.0, 5.0]),
            row(json!("mobile"), &[1.0, 2.0, 3.0]),
        ]
    );
    assert_eq!(
        s.breakdown("UTM_CAMPAIGN", json!([])).await,
        vec![
            row(Value::Null, &[3.0, 4.0, 7.0]),
            row(json!("nov"), &[1.0, 1.0, 1.0])
        ]
    );
    // A filter on another dimension (a paired one: from the rollups): Google's visit, by page.
    let from_google = json!([{"dimension": "SOURCE", "op": "IS", "values": ["google"]}]);
    assert_eq!(
        s.breakdown("PAGE", from_google.clone()).await,
        vec![
            row(json!("/"), &[1.0, 1.0, 1.0]),
            row(json!("/pricing"), &[1.0, 1.0, 1.0]),
            row(json!("/signup"), &[1.0, 1.0, 1.0]),
        ]
    );
    // Hours: four visits started in the 09:00 hour (A, B, C, B again), one at 10:00.
    let hours = s
        .stats(json!({
            "site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
            "metrics": ["VISITS"], "dimensions": ["TIME_HOUR"],
        }))
        .await;
    let hourly = rows(&hours);
    assert_eq!(hourly.len(), 24, "every hour, zero-filled");
    assert_eq!(hourly[9], row(json!("2026-11-02T09:00"), &[4.0]));
    assert_eq!(hourly[10], row(json!("2026-11-02T10:00"), &[1.0]));

    let bots = count(
        &s.db,
        "SELECT sum(pageviews)::bigint FROM rollup_days WHERE dimension = 'bot'",
    )
    .await;
    assert_eq!(bots, 1, "the bot's page view is counted apart");

    assert_both_engines_agree(&s).await;

    // CSV of a breakdown, from the same query code.
    let csv = s
        .http
        .get(format!(
            "{}/export.csv?site=shop.example&from=2026-11-02&to=2026-11-02&dimensions=DEVICE&metrics=VISITORS,BOUNCE_RATE",
            s.dashboard.base
        ))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.text().await.expect("text"),
        "device,visitors,bounce_rate\r\ndesktop,2,67\r\nmobile,1,50\r\n"
    );
    // A date that is no date is the client's mistake, named as such, not the database's.
    for (from, to) in [
        ("2026-13-45", "2026-11-02"),
        ("+262142-12-31", "2026-11-02"),
    ] {
        let bad = s
            .http
            .get(format!(
                "{}/export.csv?site=shop.example&from={from}&to={to}&dimensions=DEVICE&metrics=VISITORS",
                s.dashboard.base
            ))
            .bearer_auth(testkit::DASHBOARD_TOKEN)
            .send()
            .await
            .expect("answered");
        assert_eq!(bad.status(), 400, "from={from}");
        let text = bad.text().await.expect("text");
        assert!(text.contains("date"), "says what is wrong: {text}");
    }

    // Pair rows stored before migration 22 were in `rollup_days`: it moves them to their own
    // table, and the page after a click answers as before.
    use migration::MigratorTrait;
    let since = testkit::migrations_since("m20261203_000022_keep_filtered_rollups_apart")
        .expect("the migration");
    migration::Migrator::down(&s.db, Some(since))
        .await
        .expect("down");
    let pairs = "SELECT count(*) FROM rollup_days WHERE strpos(dimension, E'\\x1f') > 0";
    assert!(count(&s.db, pairs).await > 0, "pairs among the rows before");
    migration::Migrator::up(&s.db, None).await.expect("up");
    assert_eq!(count(&s.db, pairs).await, 0, "every pair moved");
    assert_eq!(
        s.breakdown("PAGE", from_google).await,
        vec![
            row(json!("/"), &[1.0, 1.0, 1.0]),
            row(json!("/pricing"), &[1.0, 1.0, 1.0]),
            row(json!("/signup"), &[1.0, 1.0, 1.0]),
        ],
        "read from the moved rows"
    );

    s.stop().await;
}

/// Every shape of query the rollups answer gives the same counts from the visits.
async fn assert_both_engines_agree(s: &Stack) {
    use dashboard::engine::{groups, Engine};
    use dashboard::stats::{
        Checked, DateRange, Dimension as D, Filter, FilterOp, Metric, StatsQuery,
    };
    let limits = settings::Settings::defaults().dashboard;
    let query = |dimensions: Vec<D>, filters: Vec<Filter>| StatsQuery {
        site: "shop.example".into(),
        date_range: DateRange::between("2026-11-01", "2026-11-03"),
        metrics: vec![Metric::Visitors],
        dimensions,
        property: None,
        filters,
        order_by: Vec::new(),
        limit: Some(100),
        offset: 0,
        compare: None,
    };
    let is = |dimension, value: &str| Filter {
        dimension,
        property: None,
        op: FilterOp::Is,
        values: vec![value.to_owned()],
    };
    let all = [
        D::Page,
        D::EntryPage,
        D::ExitPage,
        D::Source,
        D::Channel,
        D::UtmSource,
        D::UtmMedium,
        D::UtmCampaign,
        D::Browser,
        D::Os,
        D::Device,
    ];
    let mut queries = vec![
        query(vec![], vec![]),
        query(vec![D::TimeHour], vec![]),
        query(vec![D::TimeDay], vec![]),
        query(vec![D::TimeWeek, D::Page], vec![]),
        query(vec![D::TimeMonth], vec![is(D::Page, "/pricing")]),
        query(vec![], vec![is(D::Source, "google")]),
    ];
    queries.extend(all.iter().map(|d| query(vec![*d], vec![])));
    // A click on a source or a device row filters every other panel: their pairs answer.
    for (filter, value) in [(D::Source, "google"), (D::Device, "desktop")] {
        let others = all.iter().filter(|d| **d != filter);
        queries.extend(others.map(|d| query(vec![*d], vec![is(filter, value)])));
        queries.push(query(vec![D::TimeDay, D::Browser], vec![is(filter, value)]));
    }
    // A second click (a device after a source, in either order) too: their triples answer.
    let both = || vec![is(D::Device, "desktop"), is(D::Source, "google")];
    queries.extend(all.iter().map(|d| query(vec![*d], both())));
    queries.push(query(vec![], both()));
    queries.push(query(vec![D::TimeDay], both()));
    queries.push(query(vec![D::TimeDay, D::Page], both()));
    for q in queries {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 3).expect("a day");
        let checked = Checked::new(&q, &limits, today).expect("valid");
        let (engine, mut fast) = groups(&s.db, &checked, None).await.expect("rollups");
        assert_eq!(engine, Engine::Rollups, "{q:?}");
        let (_, mut slow) = groups(&s.db, &checked, Some(Engine::Visits))
            .await
            .expect("visits");
        let key = |g: &dashboard::stats::Group| (g.bucket, g.values.clone());
        fast.retain(|g| g.counts.visits != 0 || g.counts.pageviews != 0);
        fast.sort_by_key(key);
        slow.sort_by_key(key);
        assert_eq!(fast, slow, "{q:?}");
        assert!(!fast.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_valid_token_gets_401_and_nothing_else() {
    let url = testkit::fresh_database().await.expect("database");
    let settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let http = reqwest::Client::new();
    let sites = json!({"query": "{ sites { name } }"});
    for token in [None, Some("wrong-token-0123456789abcdef"), Some("")] {
        let mut request = http.post(format!("{}/query", dashboard.base)).json(&sites);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("answered");
        assert_eq!(answer.status(), 401, "token {token:?}");
        assert_eq!(answer.text().await.expect("body"), "", "nothing else");
    }
    let csv = http
        .get(format!("{}/export.csv?site=x", dashboard.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(csv.status(), 401);
    let page = http
        .get(format!("{}/", dashboard.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        page.headers().get("x-frame-options").map(|v| v.as_bytes()),
        Some(b"DENY".as_slice()),
        "the page cannot be framed, by old browsers either"
    );
    for probe in ["/healthz", "/readyz"] {
        let head = http
            .head(format!("{}{probe}", dashboard.base))
            .send()
            .await
            .expect("answered");
        assert_eq!(head.status(), 200, "HEAD {probe}, as load balancers probe");
    }
    let ok = http
        .post(format!("{}/query", dashboard.base))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .json(&sites)
        .send()
        .await
        .expect("answered");
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["data"]["sites"], json!([]));
    dashboard.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_limits_are_refused_with_named_errors() {
    let url = testkit::fresh_database().await.expect("database");
    let settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let http = reqwest::Client::new();
    let ask = |query: Value| {
        let http = http.clone();
        let base = dashboard.base.clone();
        async move {
            let body: Value = http
                .post(format!("{base}/query"))
                .bearer_auth(testkit::DASHBOARD_TOKEN)
                .json(&json!({
                    "query": "query($q: StatsQuery!) { stats(query: $q) { results { metrics } } }",
                    "variables": {"q": query},
                }))
                .send()
                .await
                .expect("answered")
                .json()
                .await
                .expect("json");
            let error = &body["errors"][0];
            (
                error["extensions"]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                error["message"].to_string(),
            )
        }
    };
    let base = |from: &str, to: &str, limit: i32| {
        json!({"site": "nowhere.example", "dateRange": {"from": from, "to": to},
               "metrics": ["VISITORS"], "limit": limit})
    };
    let (code, message) = ask(base("2020-01-01", "2026-11-30", 10)).await;
    assert_eq!(code, "DATE_RANGE_TOO_LONG", "{message}");
    let (code, message) = ask(base("2026-11-01", "2026-11-30", 100_000)).await;
    assert_eq!(code, "LIMIT_OUT_OF_RANGE", "{message}");
    let (code, message) = ask(base("2026-11-31", "2026-11-30", 10)).await;
    assert_eq!(code, "INVALID_DATE_RANGE", "{message}");
    assert!(message.contains("dateRange.from"), "{message}");
    // The last year chrono can parse: refused by name, and the server goes on answering.
    for (from, to) in [
        ("+262142-12-31", "+262142-12-31"),
        ("0001-01-01", "0001-01-02"),
    ] {
        let (code, message) = ask(base(from, to, 10)).await;
        assert_eq!(code, "INVALID_DATE_RANGE", "{from}: {message}");
    }
    let (code, message) = ask(base("2026-11-01", "2026-11-30", 10)).await;
    assert_eq!(code, "UNKNOWN_SITE", "{message}");
    // Aliases cannot pack many queries into one request: each `stats` costs 50 of 500.
    let q = |i: usize| format!("a{i}: stats(query: $q) {{ results {{ metrics }} }}");
    let packed: Vec<String> = (0..12).map(q).collect();
    let body: Value = http
        .post(format!("{}/query", dashboard.base))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .json(&json!({
            "query": format!("query($q: StatsQuery!) {{ {} }}", packed.join(" ")),
            "variables": {"q": base("2026-11-01", "2026-11-30", 10)},
        }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("complex"),
        "{body}"
    );
    // A dimension outside the enum is refused by GraphQL itself: no text reaches SQL.
    let mut injected = base("2026-11-01", "2026-11-30", 10);
    injected["dimensions"] = json!(["PAGE; DROP TABLE visits"]);
    let (_, message) = ask(injected).await;
    assert!(message.contains("Dimension"), "{message}");
    dashboard.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_visitors_are_pushed_over_the_websocket_subscription() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let s = spawn_stack(Utc::now()).await;
    s.view(Utc::now(), 0, FIREFOX_LINUX, ("/", "", None)).await;
    s.view(Utc::now(), 0, SAFARI_IPHONE, ("/live", "", None))
        .await;

    let request = ws_request(&s.dashboard.base);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    ws_init(&mut ws).await;
    let subscribe = json!({"id": "1", "type": "subscribe",
                           "payload": {"query": "subscription { currentVisitors(site: \"shop.example\") }"}});
    ws.send(Message::text(subscribe.to_string()))
        .await
        .expect("subscribe");
    // Counts are pushed until both visitors are stored and counted.
    let pushed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(message)) = ws.next().await {
            let Ok(text) = message.to_text() else {
                continue;
            };
            let body: Value = serde_json::from_str(text).unwrap_or_default();
            if body["type"] == "next" && body["payload"]["data"]["currentVisitors"] == 2 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(pushed, Ok(true), "two current visitors pushed");

    // Without the token in connection_init the socket is refused.
    let request = ws_request(&s.dashboard.base);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {}}).to_string(),
    ))
    .await
    .expect("init");
    assert!(ws_refused(&mut ws).await, "closed without an ack");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_stats_example_answers_todays_page_view_on_any_day_through_a_relative_period() {
    let now = Utc::now();
    let s = spawn_stack(now).await;
    let tutorial = json!({
        "eventType": "PAGE_VIEW", "userId": "some_session_id", "path": "/test",
        "search": "?q=foo", "title": "Kafka Demo", "url": "kafka.demo.com",
    });
    s.post(FIREFOX_LINUX, tutorial).await;
    s.stored(1).await;

    // The README's curl, as written.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let line = readme
        .lines()
        .find(|l| l.contains("stats(query: {site: \\\"kafka.demo.com\\\""))
        .expect("the README's Stats API example");
    let body = line
        .split_once("-d '")
        .and_then(|(_, rest)| rest.rsplit_once('\''))
        .map(|(body, _)| body)
        .expect("its body");
    let answer: Value = s
        .http
        .post(format!("{}/query", s.dashboard.base))
        .bearer_auth(testkit::DASHBOARD_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("asked")
        .json()
        .await
        .expect("json");
    assert_eq!(
        answer["data"]["stats"]["results"],
        json!([{"dimensions": ["/test"], "metrics": [1.0, 1.0, 1.0, 100.0]}]),
        "{answer}"
    );

    let period = |period: &str| json!({"site": "kafka.demo.com", "dateRange": {"period": period}, "metrics": ["PAGEVIEWS"]});
    let today = now.date_naive();
    for (name, views) in [
        ("TODAY", 1.0),
        ("YESTERDAY", 0.0),
        ("LAST_7_DAYS", 1.0),
        ("THIS_MONTH", 1.0),
        ("LAST_MONTH", 0.0),
        ("LAST_12_MONTHS", 1.0),
        ("ALL", 1.0),
    ] {
        let answer = s.stats(period(name)).await;
        // A range without page views has no row.
        let shown = answer["results"][0]["metrics"][0].as_f64().unwrap_or(0.0);
        assert_eq!(shown, views, "{name}: {answer}");
    }
    let answer = s.stats(period("TODAY")).await;
    assert_eq!(answer["meta"]["from"], today.to_string());
    let mut both = period("TODAY");
    both["dateRange"]["from"] = json!(today.to_string());
    let answer = s.ask(STATS, both).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "INVALID_DATE_RANGE",
        "a period or dates, not both: {answer}"
    );
    let csv = s
        .csv("site=kafka.demo.com&period=last_7_days&dimensions=PAGE&metrics=PAGEVIEWS")
        .await;
    assert_eq!(csv.trim(), "page,pageviews\r\n/test,1", "{csv}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_longer_than_the_statement_timeout_is_stopped_with_a_named_error() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.dashboard.statement_timeout_ms = testkit::ms(20);
    })
    .await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.stored(1).await;
    // 200,000 visits like the stored one: the visits engine's scan of them takes far
    // longer than 20 ms.
    use sea_orm::ConnectionTrait;
    s.db.execute_unprepared(
        "INSERT INTO visits SELECT (jsonb_populate_record(v, jsonb_build_object(\
         'id', gen_random_uuid(), 'visitor', v.visitor + g))).* \
         FROM visits v, generate_series(1, 200000) g",
    )
    .await
    .expect("visits");
    let contains = |d: &str| json!({"dimension": d, "op": "CONTAINS", "values": ["e", "o", "a"]});
    let heavy = json!({
        "site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
        "metrics": ["VISITORS", "VISIT_DURATION"], "dimensions": ["PAGE", "BROWSER", "OS"],
        "filters": [contains("PAGE"), contains("BROWSER"), contains("DEVICE")],
    });
    let answer = s.ask(STATS, heavy).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "QUERY_TIMEOUT",
        "{answer}"
    );
    let message = answer["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("dashboard.statement_timeout_ms"),
        "{message}"
    );
    let health = s
        .http
        .get(format!("{}/healthz", s.dashboard.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), 200, "and the dashboard goes on");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_or_too_slow_to_arrive_is_refused_by_name() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = testkit::fresh_database().await.expect("database");
    let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
    settings.dashboard.body_read_timeout_ms = testkit::ms(500);
    let dashboard = testkit::TestDashboard::start(settings)
        .await
        .expect("dashboard");
    let http = reqwest::Client::new();
    let padded = json!({"query": "{ sites { name } }", "pad": "x".repeat(200_000)}).to_string();
    let chunks: Vec<Result<String, std::io::Error>> = padded
        .as_bytes()
        .chunks(50_000)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    for (what, body) in [
        ("declared", reqwest::Body::from(padded.clone())),
        (
            "chunked",
            reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
        ),
    ] {
        let answer = http
            .post(format!("{}/query", dashboard.base))
            .bearer_auth(testkit::DASHBOARD_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), 413, "{what}");
        let text = answer.text().await.unwrap_or_default();
        assert!(
            text.contains("dashboard.body_limit_bytes"),
            "{what}: {text}"
        );
    }
    // A body that stops arriving: 408, and the connection is closed.
    let address = dashboard.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connects");
    let head = format!(
        "POST /query HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"query\":",
        testkit::DASHBOARD_TOKEN
    );
    socket.write_all(head.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 10 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("dashboard.body_read_timeout_ms"),
        "{answer}"
    );
    dashboard.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_more_groups_than_allowed_is_refused_before_they_are_read() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.dashboard.max_groups = std::num::NonZeroUsize::new(2).expect("two");
    })
    .await;
    for (minute, path) in ["/a", "/b", "/c"].into_iter().enumerate() {
        s.view(start, minute as i64, CHROME_WINDOWS, (path, "", None))
            .await;
    }
    s.stored(3).await;
    let pages = |filters: Value| {
        json!({"site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
               "metrics": ["VISITORS"], "dimensions": ["PAGE"], "filters": filters, "limit": 1})
    };
    let chrome = json!([{"dimension": "BROWSER", "op": "IS", "values": ["Chrome"]}]);
    for (engine, q) in [("rollups", pages(json!([]))), ("visits", pages(chrome))] {
        let body = s.ask(STATS, q).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "TOO_MANY_GROUPS",
            "{engine}: three pages are more than two groups, whatever the limit: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains("dashboard.max_groups"), "{message}");
    }
    let one_page = json!([{"dimension": "PAGE", "op": "IS", "values": ["/a", "/b"]}]);
    let body = s.ask(STATS, pages(one_page)).await;
    assert!(body["errors"].is_null(), "two groups are allowed: {body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engagement_reports_cannot_make_a_visit_longer_than_it_had_time_to_be() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    // 25 reports of a whole day each, all within the visit's first minute.
    for _ in 0..25 {
        s.report(start, 1, CHROME_WINDOWS, "/", 86_400_000).await;
    }
    s.stored(26).await;
    // The visit had 60 s between its page view and its last report, and may exceed that by
    // one visit timeout (30 min): 1,860 s, not 25 days.
    let top = s
        .stats(json!({
            "site": "shop.example", "dateRange": {"from": "2026-11-02", "to": "2026-11-02"},
            "metrics": ["VISITS", "VISIT_DURATION", "BOUNCE_RATE"],
        }))
        .await;
    assert_eq!(top["results"][0]["metrics"], json!([1.0, 1860.0, 0.0]));
    let stored = "SELECT max(duration)::bigint FROM visits";
    assert_eq!(count(&s.db, stored).await, 1860, "as stored");
    s.stop().await;
}
