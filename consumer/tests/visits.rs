//! Visits end to end: what the request said (user agent, referrer, campaign, language) is in
//! PostgreSQL as browser, OS, device, bot flag, source, channel and UTM values; and the raw
//! client address is nowhere: not in Kafka, not in the database, not in the logs.

mod common;

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};

/// Every log line of this test binary, at debug level, for the raw-IP search.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .try_init();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Producer and consumer in this process on a fresh database; the producer trusts
/// 127.0.0.1 as a proxy, so a test can send from any address it likes.
struct Site {
    settings: settings::Settings,
    db: sea_orm::DatabaseConnection,
    producer: testkit::TestProducer,
    consumer: testkit::TestConsumer,
    http: reqwest::Client,
}

impl Site {
    async fn start() -> Self {
        let url = testkit::fresh_database().await.expect("database");
        let mut settings = testkit::settings(&testkit::brokers(), &url, &testkit::unique_prefix());
        settings.server.trusted_proxies =
            vec![settings::IpNet::try_from("127.0.0.1".to_owned()).expect("a network")];
        // Addresses are looked up too: the lookup must not leak them either.
        settings.analytics.geoip_database = testkit::city_test_database();
        let producer = testkit::TestProducer::start(settings.clone())
            .await
            .expect("the producer starts");
        let consumer = in_process(settings.clone()).await;
        let db = testkit::connect(&url).await.expect("db");
        Site {
            settings,
            db,
            producer,
            consumer,
            http: reqwest::Client::new(),
        }
    }

    async fn visit(&self, headers: &[(&str, &str)], event: Value) {
        let mut request = self.http.post(format!("{}/query", self.producer.base)).json(&json!({
            "query": "mutation($e: RegisterKafkaEventInput!) { register_kafka_event(event: $e) { id } }",
            "variables": { "e": event }
        }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer: Value = request
            .send()
            .await
            .expect("HTTP")
            .json()
            .await
            .expect("JSON");
        assert!(answer["errors"].is_null(), "{answer}");
    }

    async fn wait_for_rows(&self, rows: i64) {
        wait_for_count(
            &self.db,
            "SELECT count(*) FROM kafka_events",
            rows,
            Duration::from_secs(60),
        )
        .await;
    }

    async fn stop(self) {
        self.consumer.stop().await.expect("the consumer stops");
        self.producer.stop().await.expect("the producer stops");
    }
}

fn page(path: &str, search: &str, referrer: Option<&str>) -> Value {
    let mut e = json!({
        "eventType": "PAGE_VIEW", "userId": "tutorial-user", "path": path, "search": search,
        "title": "Kafka Demo", "url": "kafka.demo.com"
    });
    if let Some(r) = referrer {
        e["referrer"] = json!(r);
    }
    e
}

const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_bots_sources_channels_and_campaigns_are_stored_with_each_page_view() {
    let site = Site::start().await;
    let cases = [
        (
            CHROME_WINDOWS,
            page(
                "/from-google",
                "",
                Some("https://www.google.com/search?q=kafka"),
            ),
        ),
        (
            SAFARI_IPHONE,
            page("/same-site", "", Some("https://kafka.demo.com/previous")),
        ),
        (
            FIREFOX_LINUX,
            page(
                "/newsletter",
                "?utm_source=newsletter&utm_medium=email&utm_campaign=launch",
                None,
            ),
        ),
        (GOOGLEBOT, page("/crawled", "", None)),
    ];
    for (agent, event) in &cases {
        site.visit(
            &[("user-agent", agent), ("accept-language", "de-DE,de;q=0.9")],
            event.clone(),
        )
        .await;
    }
    site.wait_for_rows(cases.len() as i64).await;

    let rows = site
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT path, browser, browser_version, os, device, is_bot, source, channel, utm_source, \
             utm_medium, utm_campaign, site, language, user_id, visitor_id IS NOT NULL AS has_visitor \
             FROM kafka_events ORDER BY path",
        ))
        .await
        .expect("rows");
    let get = |row: &sea_orm::QueryResult, column: &str| -> Option<String> {
        row.try_get::<Option<String>>("", column).expect(column)
    };
    let mut seen = Vec::new();
    for row in &rows {
        let bot: bool = row.try_get("", "is_bot").expect("is_bot");
        let has_visitor: bool = row.try_get("", "has_visitor").expect("visitor");
        assert!(has_visitor);
        assert_eq!(get(row, "site").as_deref(), Some("kafka.demo.com"));
        assert_eq!(get(row, "language").as_deref(), Some("de-DE"));
        assert_eq!(
            get(row, "user_id").as_deref(),
            Some("tutorial-user"),
            "kept as the client gave it"
        );
        seen.push((
            get(row, "path").unwrap_or_default(),
            [
                get(row, "browser"),
                get(row, "os"),
                get(row, "device"),
                get(row, "source"),
                get(row, "channel"),
                get(row, "utm_source"),
                get(row, "utm_medium"),
                get(row, "utm_campaign"),
            ],
            bot,
        ));
    }
    let s = |v: &str| Some(v.to_owned());
    let expected = vec![
        (
            "/crawled".to_owned(),
            [
                s("Googlebot"),
                None,
                s("bot"),
                None,
                s("direct"),
                None,
                None,
                None,
            ],
            true,
        ),
        (
            "/from-google".to_owned(),
            [
                s("Chrome"),
                s("Windows"),
                s("desktop"),
                s("google"),
                s("organic_search"),
                None,
                None,
                None,
            ],
            false,
        ),
        (
            "/newsletter".to_owned(),
            [
                s("Firefox"),
                s("Linux"),
                s("desktop"),
                s("newsletter"),
                s("email"),
                s("newsletter"),
                s("email"),
                s("launch"),
            ],
            false,
        ),
        (
            "/same-site".to_owned(),
            [
                s("Safari"),
                s("iOS"),
                s("mobile"),
                None,
                s("direct"),
                None,
                None,
                None,
            ],
            false,
        ),
    ];
    assert_eq!(seen, expected);
    let metrics = site.consumer.metrics().await.expect("metrics");
    let topic = site.settings.kafka.topic_for("PAGE_VIEW");
    assert!(
        metrics.contains(&format!(
            "pageviews_bot_events_total{{topic=\"{topic}\"}} 1"
        )),
        "bots are counted apart:\n{metrics}"
    );
    site.stop().await;
}

/// The forms an address can be written in: as text, expanded, IPv4-mapped, and its raw octets.
fn forms(ip: IpAddr) -> Vec<Vec<u8>> {
    let mut forms = vec![ip.to_string().into_bytes()];
    match ip {
        IpAddr::V4(v4) => {
            forms.push(format!("::ffff:{v4}").into_bytes());
            forms.push(v4.octets().to_vec());
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            forms.push(
                s.iter()
                    .map(|x| format!("{x:04x}"))
                    .collect::<Vec<_>>()
                    .join(":")
                    .into_bytes(),
            );
            forms.push(
                s.iter()
                    .map(|x| format!("{x:x}"))
                    .collect::<Vec<_>>()
                    .join(":")
                    .into_bytes(),
            );
            forms.push(v6.octets().to_vec());
        }
    }
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_client_address_is_in_no_record_no_database_row_and_no_log_line() {
    let logs = captured_logs();
    let site = Site::start().await;
    let v4: IpAddr = "203.0.113.77".parse().expect("ip");
    let v6: IpAddr = "2001:db8:4d::77".parse().expect("ip");
    // In MaxMind's City test database: London.
    let located: IpAddr = "81.2.69.142".parse().expect("ip");
    for (n, ip) in [v4, v6, located].into_iter().enumerate() {
        let forwarded = ip.to_string();
        let headers = [
            ("x-forwarded-for", forwarded.as_str()),
            ("user-agent", CHROME_WINDOWS),
        ];
        site.visit(&headers, page(&format!("/private/{n}"), "", None))
            .await;
        site.visit(
            &headers,
            page(
                &format!("/private/{n}/again"),
                "",
                Some("https://www.google.com/"),
            ),
        )
        .await;
    }
    site.wait_for_rows(6).await;
    // The addresses were used: three visitors, three ids, one of them placed.
    let visitors = count(
        &site.db,
        "SELECT count(DISTINCT visitor_id) FROM kafka_events",
    )
    .await;
    assert_eq!(visitors, 3);
    let london = "SELECT count(*) FROM kafka_events WHERE country = 'GB' AND city = 'London'";
    assert_eq!(count(&site.db, london).await, 2);
    let placed = "SELECT count(*) FROM kafka_events WHERE country IS NOT NULL";
    assert_eq!(
        count(&site.db, placed).await,
        2,
        "documentation addresses are nowhere"
    );

    // Kafka: every record of the event topic and of the salt topic, keys and values.
    let kafka = testkit::kafka_client(&testkit::brokers())
        .await
        .expect("kafka");
    let mut bytes = Vec::new();
    let topics = [
        (
            site.settings.kafka.topic_for("PAGE_VIEW"),
            site.settings.kafka.partitions,
        ),
        (producer::salts::topic(&site.settings.kafka.topic_prefix), 1),
    ];
    for (topic, partitions) in &topics {
        for partition in 0..*partitions {
            for r in testkit::read_partition(&kafka, topic, partition)
                .await
                .expect("read")
            {
                bytes.extend(r.record.key.unwrap_or_default());
                bytes.extend(r.record.value.unwrap_or_default());
                bytes.extend(r.record.headers.values().flatten());
            }
        }
    }
    assert!(!bytes.is_empty());
    // PostgreSQL: a full dump of the database.
    let dump = testkit::pg_dump(&site.settings.database.url)
        .await
        .expect("pg_dump");
    assert!(dump.contains("kafka_events"), "a real dump");
    site.stop().await;
    let logs = logs.lock().expect("logs").clone();
    assert!(!logs.is_empty(), "logs were captured");

    for ip in [v4, v6, located] {
        for form in forms(ip) {
            let shown = String::from_utf8_lossy(&form).into_owned();
            assert!(!contains(&bytes, &form), "{shown} in a Kafka record");
            assert!(!contains(dump.as_bytes(), &form), "{shown} in the database");
            assert!(!contains(&logs, &form), "{shown} in the logs");
        }
    }
}
