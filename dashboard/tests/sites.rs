//! The site registry end to end: events of an unregistered site are stored but shown nowhere,
//! and counted once the site is added; a time-zone change recounts the site's days; deleting a
//! site leaves no row of it in any table. Every count is compared with the stored events.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const SITES: &str = "{ sites { domain timeZone counting } }";

async fn sites(s: &Stack) -> Value {
    graphql(s, testkit::DASHBOARD_TOKEN, SITES, json!({})).await["data"]["sites"].clone()
}

/// Waits until no site is being counted any more.
async fn counted(s: &Stack) {
    testkit::poll_until(Duration::from_secs(30), "every site counted", || async {
        let all = sites(s).await;
        let list = all.as_array()?;
        list.iter()
            .all(|site| site["counting"] == false)
            .then_some(())
    })
    .await
    .expect("counted");
}

fn page_views_of_the_day(site: &str, day: &str) -> Value {
    json!({"site": site, "dateRange": {"from": day, "to": day},
           "metrics": ["VISITORS", "PAGEVIEWS"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_sites_events_are_stored_unshown_and_counted_once_it_is_registered() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.analytics.register_sites_on_first_event = false;
    })
    .await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.view(start, 1, CHROME_WINDOWS, ("/pricing", "", None))
        .await;
    s.view(start, 2, FIREFOX_LINUX, ("/", "", None)).await;
    s.stored(3).await;

    assert_eq!(sites(&s).await, json!([]), "not listed");
    let refused = s
        .ask(STATS, page_views_of_the_day("shop.example", "2026-11-02"))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNKNOWN_SITE",
        "not answered: {refused}"
    );
    let rollups =
        analytics::RollupTable::ALL.map(|t| format!("(SELECT count(*) FROM {})", t.name()));
    let counted_rows = format!(
        "SELECT (SELECT count(*) FROM visits) + {}",
        rollups.join(" + ")
    );
    assert_eq!(count(&s.db, &counted_rows).await, 0, "not counted");
    let metrics = s.consumer.metrics().await.expect("metrics");
    assert!(
        metrics.lines().any(
            |l| l.starts_with("pageviews_unregistered_site_events_total{") && l.ends_with(" 3")
        ),
        "counted as unregistered: {metrics}"
    );

    let added = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { addSite(domain: \"Shop.Example\", timeZone: \"Europe/Berlin\") { domain timeZone counting } }",
        json!({}),
    )
    .await;
    assert_eq!(
        added["data"]["addSite"],
        json!({"domain": "shop.example", "timeZone": "Europe/Berlin", "counting": true}),
        "registered, its past being counted: {added}"
    );
    // More views while the consumer counts the site's past: each is counted once, whether
    // its batch comes before the count, during it, or after.
    let agents = [CHROME_WINDOWS, FIREFOX_LINUX, SAFARI_IPHONE];
    for minute in 3..13 {
        let agent = agents[minute as usize % agents.len()];
        s.view(start, minute, agent, ("/", "", None)).await;
    }
    s.stored(13).await;
    counted(&s).await;
    let raw = "SELECT count(*) * 1000 + count(DISTINCT visitor_id) FROM kafka_events \
               WHERE site = 'shop.example' AND event_type = 'PAGE_VIEW'";
    assert_eq!(
        count(&s.db, raw).await,
        13_003,
        "13 page views of 3 visitors stored"
    );
    testkit::poll_until(
        Duration::from_secs(20),
        "every view counted once",
        || async {
            let answer = s
                .stats(page_views_of_the_day("shop.example", "2026-11-02"))
                .await;
            (answer["results"][0]["metrics"] == json!([3.0, 13.0])).then_some(())
        },
    )
    .await
    .expect("the API equals the stored events");
    let answer = s
        .stats(page_views_of_the_day("shop.example", "2026-11-02"))
        .await;
    assert_eq!(answer["meta"]["timeZone"], "Europe/Berlin");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_are_managed_by_admins_with_checked_names_and_zones() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.analytics.register_sites_on_first_event = false;
    })
    .await;
    let add = |domain: &str, zone: &str| {
        format!("mutation {{ addSite(domain: {domain:?}, timeZone: {zone:?}) {{ domain }} }}")
    };
    let code = |answer: &Value| answer["errors"][0]["extensions"]["code"].clone();
    let by_reader = graphql(
        &s,
        testkit::DASHBOARD_TOKEN,
        &add("shop.example", "UTC"),
        json!({}),
    )
    .await;
    assert_eq!(
        code(&by_reader),
        "FORBIDDEN",
        "a read token adds nothing: {by_reader}"
    );
    for bad in [
        "=1+1.test",
        "x'onmouseover=alert(1)'.test",
        "sum(1+1)",
        "shop.example/path",
    ] {
        let answer = graphql(&s, testkit::ADMIN_TOKEN, &add(bad, "UTC"), json!({})).await;
        assert_eq!(code(&answer), "INVALID_DOMAIN", "{bad}: {answer}");
    }
    let zone = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        &add("shop.example", "Mars/Olympus"),
        json!({}),
    )
    .await;
    assert_eq!(code(&zone), "INVALID_TIME_ZONE", "{zone}");
    let first = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        &add("shop.example", "UTC"),
        json!({}),
    )
    .await;
    assert!(first["errors"].is_null(), "{first}");
    let again = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        &add("shop.example", "UTC"),
        json!({}),
    )
    .await;
    assert_eq!(code(&again), "SITE_EXISTS", "{again}");
    let delete = "mutation { deleteSite(domain: \"nowhere.example\") }";
    let unknown = graphql(&s, testkit::ADMIN_TOKEN, delete, json!({})).await;
    assert_eq!(code(&unknown), "UNKNOWN_SITE", "{unknown}");
    counted(&s).await;
    assert_eq!(
        sites(&s).await,
        json!([{"domain": "shop.example", "timeZone": "UTC", "counting": false}])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_zone_change_recounts_the_sites_days_in_the_new_zone() {
    // 23:30 in UTC is 08:30 the next day in Tokyo.
    let start = on_nov_2(23, 30);
    let s = spawn_stack(start).await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.view(start, 5, CHROME_WINDOWS, ("/pricing", "", None))
        .await;
    s.stored(2).await;
    let days = json!({"site": "shop.example", "dateRange": {"from": "2026-11-01", "to": "2026-11-04"},
                      "metrics": ["PAGEVIEWS"], "dimensions": ["TIME_DAY"]});
    let counted_on = |answer: &Value| -> Vec<String> {
        answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|row| row["metrics"][0].as_f64().unwrap_or(0.0) > 0.0)
            .map(|row| row["dimensions"][0].as_str().unwrap_or("").to_owned())
            .collect()
    };
    testkit::poll_until(Duration::from_secs(20), "counted in UTC", || async {
        (counted_on(&s.stats(days.clone()).await) == vec!["2026-11-02"]).then_some(())
    })
    .await
    .expect("on the UTC day");

    let moved = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { updateSite(domain: \"shop.example\", timeZone: \"Asia/Tokyo\") { timeZone counting } }",
        json!({}),
    )
    .await;
    assert_eq!(
        moved["data"]["updateSite"],
        json!({"timeZone": "Asia/Tokyo", "counting": true}),
        "{moved}"
    );
    counted(&s).await;
    let answer = s.stats(days.clone()).await;
    assert_eq!(
        counted_on(&answer),
        vec!["2026-11-03"],
        "on Tokyo's day: {answer}"
    );
    let stored_days = "SELECT count(*) FROM rollup_days WHERE site = 'shop.example' \
                       AND day = '2026-11-03' AND dimension = 'page' AND pageviews > 0";
    assert_eq!(
        count(&s.db, stored_days).await,
        2,
        "both pages, on the new day"
    );
    let old_days = analytics::RollupTable::ALL
        .iter()
        .filter(|t| **t != analytics::RollupTable::Hours)
        .map(|t| {
            format!(
                "(SELECT count(*) FROM {} WHERE site = 'shop.example' \
                 AND day = '2026-11-02' AND pageviews <> 0)",
                t.name()
            )
        })
        .collect::<Vec<_>>()
        .join(" + ");
    assert_eq!(
        count(&s.db, &format!("SELECT {old_days}")).await,
        0,
        "nothing left on the old one"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_site_leaves_no_row_of_it_in_any_table() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.view(start, 1, CHROME_WINDOWS, ("/pricing", "", None))
        .await;
    s.report(start, 2, CHROME_WINDOWS, "/pricing", 5_000).await;
    s.stored(3).await;
    counted(&s).await;
    let goal = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { createGoal(site: \"shop.example\", goal: {name: \"Pricing\", page: \"/pricing\"}) { name } }",
        json!({}),
    )
    .await;
    assert!(goal["errors"].is_null(), "{goal}");
    let link = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { createSharedLink(site: \"shop.example\", name: \"Board\", password: \"a long password\") { id } }",
        json!({}),
    )
    .await;
    assert!(link["errors"].is_null(), "{link}");
    let rows_of_the_site = every_row_of(&s.db, "shop.example").await;
    assert!(
        rows_of_the_site > 5,
        "the site has rows in several tables first ({rows_of_the_site})"
    );

    let deleted = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { deleteSite(domain: \"shop.example\") }",
        json!({}),
    )
    .await;
    assert_eq!(deleted["data"]["deleteSite"], true, "{deleted}");
    assert_eq!(every_row_of(&s.db, "shop.example").await, 0, "no row left");
    assert_eq!(count(&s.db, "SELECT count(*) FROM goals").await, 0);
    assert_eq!(count(&s.db, "SELECT count(*) FROM conversions").await, 0);
    assert_eq!(count(&s.db, "SELECT count(*) FROM goal_days").await, 0);
    assert_eq!(count(&s.db, "SELECT count(*) FROM shared_links").await, 0);
    assert_eq!(sites(&s).await, json!([]), "and not listed");
    s.stop().await;
}

/// Rows that name `site` in any text column called `site` or `domain`, over every table and
/// view (`raw_events` holds the site as an id of `event_texts`: its rows are counted through
/// the view `kafka_events`).
async fn every_row_of(db: &sea_orm::DatabaseConnection, site: &str) -> i64 {
    let columns = "SELECT string_agg(format('(SELECT count(*) FROM %I WHERE %I = %L)', \
                   table_name, column_name, $1::text), ' + ') AS q FROM information_schema.columns \
                   WHERE table_schema = 'public' AND column_name IN ('site', 'domain') \
                   AND data_type = 'text'";
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            columns,
            [site.into()],
        ))
        .await
        .expect("the tables")
        .expect("a row");
    let sum: String = row.try_get("", "q").expect("a query");
    count(db, &format!("SELECT {sum}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_flooding_a_site_is_cut_by_the_rate_limit_while_another_lands_whole() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.server.rate_limit_events_per_minute = 20;
        s.server.trusted_proxies = vec!["127.0.0.1".to_owned().try_into().expect("a network")];
    })
    .await;
    let send = |address: &'static str, agent: String| {
        let request = s
            .http
            .post(format!("{}/query", s.producer.base))
            .header("x-forwarded-for", address)
            .header("user-agent", agent)
            .json(&json!({
                "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
                "variables": {"e": {"eventType": "PAGE_VIEW", "userId": "", "path": "/", "search": "",
                                    "title": "Shop", "url": "https://shop.example/"}},
            }));
        async move {
            let answer: Value = request
                .send()
                .await
                .expect("answered")
                .json()
                .await
                .expect("json");
            answer
        }
    };
    // The flood rotates its user agent, as one did to pass for 400 visitors.
    let mut refused = 0;
    for n in 0..60 {
        let answer = send("203.0.113.7", format!("{CHROME_WINDOWS} flood/{n}")).await;
        if answer["errors"].is_null() {
            continue;
        }
        let error = &answer["errors"][0]["extensions"];
        assert_eq!(error["code"], "RATE_LIMITED", "{answer}");
        assert_eq!(error["retryable"], true, "{answer}");
        assert!(error["retryAfterSeconds"].as_u64() >= Some(1), "{answer}");
        refused += 1;
    }
    assert!(
        (30..=40).contains(&refused),
        "60 sent with 20 a minute allowed (and what refilled meanwhile): {refused} refused"
    );
    for n in 0..15 {
        let answer = send("198.51.100.9", format!("{FIREFOX_LINUX} reader/{n}")).await;
        assert!(
            answer["errors"].is_null(),
            "another address lands: {answer}"
        );
    }
    s.stored(60 - refused + 15).await;
    let metrics = reqwest::get(format!("{}/metrics", s.producer.metrics))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pageviews_rate_limited_events_total "))
        .and_then(|n| n.trim().parse::<i64>().ok())
        .unwrap_or(0);
    assert!(
        counted >= refused,
        "refusals counted in /metrics: {counted}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_sees_only_its_sites_changes_nothing_and_ends_when_revoked() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    let blog = json!({"eventType": "PAGE_VIEW", "userId": "", "path": "/", "search": "",
                      "title": "Blog", "url": "https://blog.example/"});
    s.post(FIREFOX_LINUX, blog).await;
    s.stored(2).await;
    counted(&s).await;

    let made = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation { createToken(name: \"client\", scope: READ, sites: [\"shop.example\"]) { token info { id name scope sites revoked } } }",
        json!({}),
    )
    .await;
    let created = &made["data"]["createToken"];
    let token = created["token"]
        .as_str()
        .expect("the token, shown once")
        .to_owned();
    let id = created["info"]["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        created["info"],
        json!({"id": id, "name": "client", "scope": "READ", "sites": ["shop.example"], "revoked": false})
    );
    // Only its hash is stored.
    let stored = format!(
        "SELECT count(*) FROM api_tokens WHERE hash = sha256('{token}'::bytea) \
         AND position('{token}' IN api_tokens::text) = 0"
    );
    assert_eq!(
        count(&s.db, &stored).await,
        1,
        "stored as its SHA-256 alone"
    );

    let as_client = |query: &'static str| {
        let (http, base, token) = (s.http.clone(), s.dashboard.base.clone(), token.clone());
        async move {
            http.post(format!("{base}/query"))
                .bearer_auth(token)
                .json(&json!({"query": query}))
                .send()
                .await
                .expect("answered")
        }
    };
    let own = as_client(SITES).await.json::<Value>().await.expect("json");
    assert_eq!(
        own["data"]["sites"],
        json!([{"domain": "shop.example", "timeZone": "UTC", "counting": false}]),
        "its own site only: {own}"
    );
    let shop = "{ stats(query: {site: \"shop.example\", dateRange: {from: \"2026-11-02\", to: \"2026-11-02\"}, metrics: [PAGEVIEWS]}) { results { metrics } } }";
    let read = as_client(shop).await.json::<Value>().await.expect("json");
    assert_eq!(
        read["data"]["stats"]["results"][0]["metrics"],
        json!([1.0]),
        "{read}"
    );
    // Another site, registered or not, is answered as a wrong token is.
    for other in [
        "{ stats(query: {site: \"blog.example\", dateRange: {from: \"2026-11-02\", to: \"2026-11-02\"}, metrics: [PAGEVIEWS]}) { results { metrics } } }",
        "{ stats(query: {site: \"nowhere.example\", dateRange: {from: \"2026-11-02\", to: \"2026-11-02\"}, metrics: [PAGEVIEWS]}) { results { metrics } } }",
        "{ goals(site: \"blog.example\") { name } }",
        "{ currentVisitors(site: \"blog.example\") }",
    ] {
        let refused = as_client(other).await;
        assert_eq!(refused.status(), 401, "{other}");
        assert_eq!(refused.text().await.expect("body"), "", "nothing said: {other}");
    }
    let csv = s
        .http
        .get(format!(
            "{}/export.csv?site=blog.example&from=2026-11-02&to=2026-11-02&dimensions=PAGE&metrics=PAGEVIEWS",
            s.dashboard.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert_eq!(csv.status(), 401, "nor through the CSV");
    for change in [
        "mutation { createGoal(site: \"shop.example\", goal: {name: \"x\", page: \"/\"}) { name } }",
        "mutation { addSite(domain: \"mine.example\") { domain } }",
        "mutation { createToken(name: \"more\", scope: ADMIN) { token } }",
        "{ tokens { id } }",
    ] {
        let answer = as_client(change).await.json::<Value>().await.expect("json");
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "a read token changes nothing: {change} {answer}"
        );
    }

    let revoke = format!("mutation {{ revokeToken(id: {id:?}) }}");
    let revoked = graphql(&s, testkit::ADMIN_TOKEN, &revoke, json!({})).await;
    assert_eq!(revoked["data"]["revokeToken"], true, "{revoked}");
    let after = as_client(shop).await;
    assert_eq!(after.status(), 401, "a revoked token reads nothing");
    let listed = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "{ tokens { id revoked } }",
        json!({}),
    )
    .await;
    assert_eq!(
        listed["data"]["tokens"],
        json!([{"id": id, "revoked": true}])
    );
    s.stop().await;
}
