//! Where visitors are, end to end: page views sent through a trusted proxy with the
//! `X-Forwarded-For` addresses of MaxMind's City test database are stored with their country,
//! region and city, taken by their visits, and counted by the Stats API and the CSV export,
//! equal to a recount from the stored events. A private address is nowhere.

mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use serde_json::{json, Value};

/// Who visits: the address their proxy saw, their browser, how many pages they view.
const VISITORS: &[(&str, &str, i64)] = &[
    ("81.2.69.142", CHROME_WINDOWS, 2),
    ("89.160.20.112", SAFARI_IPHONE, 1),
    ("216.160.83.56", FIREFOX_LINUX, 1),
    ("10.1.2.3", CHROME_WINDOWS, 1),
];

async fn geolocated_stack() -> (Stack, chrono::DateTime<Utc>) {
    let start = on_nov_2(9, 0);
    let s = spawn_stack_with(start, |s| {
        s.server.trusted_proxies =
            vec![settings::IpNet::try_from("127.0.0.1".to_owned()).expect("a network")];
        s.analytics.geoip_database = testkit::city_test_database();
    })
    .await;
    for (n, (address, agent, pages)) in VISITORS.iter().enumerate() {
        for page in 0..*pages {
            *s.now.lock().expect("clock") = start + TimeDelta::minutes(n as i64 * 3 + page);
            let path = format!("/v{n}/p{page}");
            let event = json!({
                "eventType": "PAGE_VIEW", "userId": "", "path": path, "search": "",
                "title": "Shop", "url": format!("https://shop.example{path}"),
            });
            let headers = [("user-agent", *agent), ("x-forwarded-for", *address)];
            s.post_with(&headers, event).await;
        }
    }
    s.stored(5).await;
    (s, start)
}

async fn texts(db: &sea_orm::DatabaseConnection, sql: &str) -> Vec<Vec<Option<String>>> {
    use sea_orm::ConnectionTrait;
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql,
        ))
        .await
        .expect("rows");
    rows.iter()
        .map(|row| {
            (0..3)
                .map(|i| row.try_get_by_index::<Option<String>>(i).expect("text"))
                .collect()
        })
        .collect()
}

fn place(country: &str, region: &str, city: &str) -> Vec<Option<String>> {
    [country, region, city]
        .iter()
        .map(|s| (!s.is_empty()).then(|| s.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_through_a_trusted_proxy_are_counted_by_the_country_region_and_city_of_their_address(
) {
    let (s, _) = geolocated_stack().await;
    let london = place("GB", "GB-ENG", "London");
    let linkoping = place("SE", "SE-E", "Linköping");
    let milton = place("US", "US-WA", "Milton");
    let nowhere = place("", "", "");

    let stored = "SELECT country, region, city FROM kafka_events ORDER BY path";
    assert_eq!(
        texts(&s.db, stored).await,
        [&london, &london, &linkoping, &milton, &nowhere].map(Clone::clone),
        "each event carries its place; the private address has none"
    );
    let visits = "SELECT nullif(country, ''), nullif(region, ''), nullif(city, '') FROM visits \
                  ORDER BY pageviews DESC, country";
    assert_eq!(
        texts(&s.db, visits).await,
        [&london, &nowhere, &linkoping, &milton].map(Clone::clone),
        "each visit has its place"
    );

    let by = |dimension: &'static str| s.breakdown(dimension, json!([]));
    assert_eq!(
        by("COUNTRY").await,
        vec![
            row(json!(null), &[1.0, 1.0, 1.0]),
            row(json!("GB"), &[1.0, 1.0, 2.0]),
            row(json!("SE"), &[1.0, 1.0, 1.0]),
            row(json!("US"), &[1.0, 1.0, 1.0]),
        ]
    );
    let regions: Vec<Value> = by("REGION").await.into_iter().map(|r| r.0).collect();
    assert_eq!(
        regions,
        [json!(null), json!("GB-ENG"), json!("SE-E"), json!("US-WA")]
    );
    let cities: Vec<Value> = by("CITY").await.into_iter().map(|r| r.0).collect();
    assert_eq!(
        cities,
        [
            json!(null),
            json!("Linköping"),
            json!("London"),
            json!("Milton")
        ]
    );

    let filter = |values: Value| json!([{"dimension": "COUNTRY", "op": "IS", "values": values}]);
    assert_eq!(
        s.breakdown("CITY", filter(json!(["GB", "US"]))).await,
        vec![
            row(json!("London"), &[1.0, 1.0, 2.0]),
            row(json!("Milton"), &[1.0, 1.0, 1.0]),
        ],
        "a country filter"
    );
    assert_eq!(
        s.breakdown(
            "PAGE",
            json!([{"dimension": "REGION", "op": "IS", "values": ["SE-E"]}])
        )
        .await,
        vec![row(json!("/v1/p0"), &[1.0, 1.0, 1.0])],
        "a region filter"
    );

    // Every count above equals a recount from the stored events.
    let recount = "SELECT count(DISTINCT visitor_id) AS visitors, count(*) AS views \
                   FROM kafka_events WHERE event_type = 'PAGE_VIEW' GROUP BY country \
                   ORDER BY country NULLS FIRST";
    let recounted: Vec<Vec<f64>> = {
        use sea_orm::ConnectionTrait;
        s.db.query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            recount,
        ))
        .await
        .expect("rows")
        .iter()
        .map(|r| {
            let visitors: i64 = r.try_get("", "visitors").expect("visitors");
            let views: i64 = r.try_get("", "views").expect("views");
            vec![visitors as f64, views as f64]
        })
        .collect()
    };
    let api: Vec<Vec<f64>> = by("COUNTRY")
        .await
        .into_iter()
        .map(|(_, m)| vec![m[0], m[2]])
        .collect();
    assert_eq!(api, recounted);

    let csv = s
        .csv("site=shop.example&from=2026-11-02&to=2026-11-02&dimensions=COUNTRY&metrics=VISITORS,PAGEVIEWS")
        .await;
    assert!(csv.starts_with("country,"), "{csv}");
    assert!(csv.contains("\nGB,1,2"), "{csv}");
    s.stop().await;
}
