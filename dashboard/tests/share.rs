//! Shared links end to end over HTTP: a link reads its one site, within its dates, equal to the
//! stored events, and changes nothing; a password opens it only through `unlock`, whose cookie
//! is signed, HttpOnly, SameSite=Strict and scoped to the link; wrong passwords are limited per
//! link; a revoked link is gone at once. The browser test opens a protected link in Chromium.

mod common;

use common::*;
use serde_json::{json, Value};

const CREATE: &str = "mutation($s: String!, $n: String!, $p: String, $f: String, $t: String) { \
     createSharedLink(site: $s, name: $n, password: $p, from: $f, to: $t) { id path protected from to } }";

async fn create_link(
    s: &Stack,
    password: Option<&str>,
    days: (Option<&str>, Option<&str>),
) -> Value {
    let made = graphql(
        s,
        testkit::ADMIN_TOKEN,
        CREATE,
        json!({"s": "shop.example", "n": "For the board", "p": password, "f": days.0, "t": days.1}),
    )
    .await;
    assert!(made["errors"].is_null(), "{made}");
    made["data"]["createSharedLink"].clone()
}

/// POSTs a GraphQL document to a link's `query` route, with `cookie` if given.
async fn through(
    s: &Stack,
    path: &str,
    cookie: Option<&str>,
    query: &str,
    variables: Value,
) -> reqwest::Response {
    let mut request = s
        .http
        .post(format!("{}{path}/query", s.dashboard.base))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("asked")
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn unlock(s: &Stack, path: &str, password: &str) -> reqwest::Response {
    s.http
        .post(format!("{}{path}/unlock", s.dashboard.base))
        .json(&json!({ "password": password }))
        .send()
        .await
        .expect("sent")
}

fn visitors_of(site: &str, from: &str, to: &str) -> Value {
    json!({"q": {"site": site, "dateRange": {"from": from, "to": to}, "metrics": ["VISITORS", "PAGEVIEWS"]}})
}

const STATS_OF: &str =
    "query($q: StatsQuery!) { stats(query: $q) { results { metrics } meta { from to } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_link_reads_its_one_site_within_its_dates_and_changes_nothing() {
    let start = on_nov_2(9, 0);
    let s = spawn_stack(start).await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.view(start, 1, FIREFOX_LINUX, ("/pricing", "", None))
        .await;
    // The next day, outside the link's dates.
    s.view(start, 24 * 60, SAFARI_IPHONE, ("/", "", None)).await;
    let other = json!({"eventType": "PAGE_VIEW", "userId": "", "path": "/", "search": "",
                       "title": "Other", "url": "https://other.example/"});
    s.post(CHROME_WINDOWS, other).await;
    s.stored(4).await;
    let link = create_link(&s, None, (Some("2026-11-02"), Some("2026-11-02"))).await;
    let path = link["path"].as_str().expect("a path");
    assert_eq!(link["protected"], false);
    assert_eq!(path.len(), "/share/".len() + 32, "128 random bits: {path}");

    // Asked for three days, it answers for its one: equal to the stored events of that day.
    let stored = "SELECT count(DISTINCT visitor_id) FROM kafka_events \
                  WHERE site = 'shop.example' AND event_type = 'PAGE_VIEW' \
                  AND (received_at AT TIME ZONE 'UTC')::date = '2026-11-02'";
    let want = count(&s.db, stored).await;
    assert_eq!(want, 2);
    let answer = testkit::poll_until(std::time::Duration::from_secs(30), "counted", || async {
        let a = json_of(
            through(
                &s,
                path,
                None,
                STATS_OF,
                visitors_of("shop.example", "2026-11-01", "2026-11-03"),
            )
            .await,
        )
        .await;
        (a["data"]["stats"]["results"][0]["metrics"][0].as_f64() == Some(want as f64)).then_some(a)
    })
    .await
    .expect("the day's visitors");
    assert_eq!(
        answer["data"]["stats"]["meta"],
        json!({"from": "2026-11-02", "to": "2026-11-02"})
    );
    let outside = json_of(
        through(
            &s,
            path,
            None,
            STATS_OF,
            visitors_of("shop.example", "2026-11-03", "2026-11-03"),
        )
        .await,
    )
    .await;
    assert_eq!(
        outside["errors"][0]["extensions"]["code"], "OUTSIDE_SHARED_RANGE",
        "{outside}"
    );

    // Its one site, and no other: not listed, and another's data is the 401 of a wrong token.
    let listed = json_of(
        through(
            &s,
            path,
            None,
            "{ sites { domain } viewer { scope from to } }",
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        listed["data"]["sites"],
        json!([{"domain": "shop.example"}]),
        "{listed}"
    );
    assert_eq!(
        listed["data"]["viewer"],
        json!({"scope": "SHARED", "from": "2026-11-02", "to": "2026-11-02"})
    );
    let another = through(
        &s,
        path,
        None,
        STATS_OF,
        visitors_of("other.example", "2026-11-02", "2026-11-02"),
    )
    .await;
    assert_eq!(another.status(), 401);
    // Nothing it may change: mutations are refused before they run, admin reads by the role.
    let mutation = "mutation { deleteSite(domain: \"shop.example\") }";
    assert_eq!(
        through(&s, path, None, mutation, json!({})).await.status(),
        403
    );
    let tokens = json_of(through(&s, path, None, "{ tokens { id } }", json!({})).await).await;
    assert_eq!(
        tokens["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{tokens}"
    );
    assert_eq!(
        count(
            &s.db,
            "SELECT count(*) FROM sites WHERE domain = 'shop.example'"
        )
        .await,
        1
    );
    // The token routes stay closed to it.
    let token_route = s
        .http
        .post(format!("{}/query", s.dashboard.base))
        .json(&json!({"query": "{ sites { domain } }"}))
        .send()
        .await
        .expect("asked");
    assert_eq!(token_route.status(), 401);
    // Its CSV, within its dates too.
    let csv = s
        .http
        .get(format!(
            "{}{path}/export.csv?site=shop.example&period=ALL&metrics=VISITORS",
            s.dashboard.base
        ))
        .send()
        .await
        .expect("exported");
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.text().await.expect("text").trim(),
        format!("visitors\r\n{want}")
    );

    // Revoked: its routes are gone at once.
    let id = path.trim_start_matches("/share/");
    let revoked = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        "mutation($i: String!) { revokeSharedLink(id: $i) }",
        json!({"i": id}),
    )
    .await;
    assert_eq!(revoked["data"]["revokeSharedLink"], true, "{revoked}");
    assert_eq!(
        through(&s, path, None, "{ sites { domain } }", json!({}))
            .await
            .status(),
        401
    );
    let page = s
        .http
        .get(format!("{}{path}", s.dashboard.base))
        .send()
        .await
        .expect("asked");
    assert_eq!(page.status(), 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_opens_a_link_only_through_its_signed_cookie_and_wrong_ones_are_limited_per_link(
) {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.dashboard.share_password_attempts_per_minute = std::num::NonZeroU32::new(3).expect("3");
        s.dashboard.wrong_tokens_per_minute = std::num::NonZeroU32::new(3).expect("3");
    })
    .await;
    s.view(start, 0, CHROME_WINDOWS, ("/", "", None)).await;
    s.stored(1).await;
    let short = graphql(
        &s,
        testkit::ADMIN_TOKEN,
        CREATE,
        json!({"s": "shop.example", "n": "x", "p": "short"}),
    )
    .await;
    assert_eq!(
        short["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{short}"
    );
    let password = "correct horse battery";
    let link = create_link(&s, Some(password), (None, None)).await;
    let path = link["path"].as_str().expect("a path").to_owned();
    let second = create_link(&s, Some(password), (None, None)).await;
    let second = second["path"].as_str().expect("a path").to_owned();
    let hashes = "SELECT count(*) FROM shared_links WHERE password_hash LIKE '$argon2id$%' \
                  AND position('correct horse' in password_hash) = 0";
    assert_eq!(count(&s.db, hashes).await, 2, "stored as argon2id only");

    // The page opens; its data does not, without the password.
    let page = s
        .http
        .get(format!("{}{path}", s.dashboard.base))
        .send()
        .await
        .expect("asked");
    assert_eq!(page.status(), 200);
    assert_eq!(
        through(&s, &path, None, "{ sites { domain } }", json!({}))
            .await
            .status(),
        401
    );
    assert_eq!(unlock(&s, &path, "not the password").await.status(), 401);

    let right = unlock(&s, &path, password).await;
    assert_eq!(right.status(), 204);
    let set = right
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path={path}"),
        "Max-Age=86400",
    ] {
        assert!(set.contains(part), "{part} in {set}");
    }
    let cookie = set.split(';').next().expect("name=value").to_owned();
    let opened =
        json_of(through(&s, &path, Some(&cookie), "{ sites { domain } }", json!({})).await).await;
    assert_eq!(
        opened["data"]["sites"],
        json!([{"domain": "shop.example"}]),
        "{opened}"
    );
    // The cookie is the link's own: not another link's, and not changed by a hand.
    assert_eq!(
        through(
            &s,
            &second,
            Some(&cookie),
            "{ sites { domain } }",
            json!({})
        )
        .await
        .status(),
        401
    );
    let (name_and_until, _) = cookie.split_once('.').expect("until.signature");
    let forged = format!("{name_and_until}.{}", "0".repeat(64));
    assert_eq!(
        through(&s, &path, Some(&forged), "{ sites { domain } }", json!({}))
            .await
            .status(),
        401
    );

    // Three wrong passwords a minute: the fourth try is refused, the right one too, on this
    // link only.
    assert_eq!(unlock(&s, &path, "wrong 2").await.status(), 401);
    assert_eq!(unlock(&s, &path, "wrong 3").await.status(), 401);
    let limited = unlock(&s, &path, password).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    assert_eq!(
        unlock(&s, &second, password).await.status(),
        204,
        "another link is not limited"
    );
    // What was earned before still opens it.
    assert_eq!(
        through(&s, &path, Some(&cookie), "{ sites { domain } }", json!({}))
            .await
            .status(),
        200
    );
    // Ids guessed through `unlock` spend the address's budget of wrong tokens like any other
    // route's: past it, even an unknown id is refused before it is looked up.
    let unknown = format!("/share/{}", "0".repeat(32));
    for _ in 0..3 {
        assert_eq!(unlock(&s, &unknown, password).await.status(), 404);
    }
    assert_eq!(unlock(&s, &unknown, password).await.status(), 429);
    s.stop().await;
}
