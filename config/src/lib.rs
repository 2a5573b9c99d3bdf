//! Typed settings of the page-view pipeline, read in one place only.
//!
//! Layers (later wins): `config/default.toml` (compiled in), `config/local.toml` (optional,
//! git-ignored; `APP_CONFIG_DIR` moves the folder), then `APP__SECTION__KEY` environment
//! variables. [`Settings::load`] validates everything up front, so a wrong value stops a binary
//! with one line naming the key instead of failing somewhere later.
//!
//! `launch.rs` is what every binary does first ([`launch`]): install logging, install the
//! SIGTERM/SIGINT handlers, and report a failure as one line; `telemetry.rs` is the process's
//! metrics recorder.
//!
//! Architecture Invariant: this is the only crate of the product that reads the environment.

mod launch;
pub mod telemetry;

pub use launch::{launch, shutdown_signal};

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
pub use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../default.toml");

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "kafka.brokers",
    "kafka.event_types",
    "consumer.topics",
    "server.cors_allowed_origins",
    "server.trusted_proxies",
    "analytics.site_time_zones",
    "dashboard.api_tokens",
    "dashboard.admin_tokens",
    "dashboard.ws_allowed_origins",
];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings")]
    Source(#[from] config::ConfigError),
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub kafka: KafkaSettings,
    pub database: DatabaseSettings,
    pub consumer: ConsumerSettings,
    pub analytics: AnalyticsSettings,
    pub dashboard: DashboardSettings,
    pub log: LogSettings,
}

/// How events become visits and rollups (read by the consumer, which writes them, and by the
/// dashboard, which must count days the same way).
#[derive(Debug, Clone, Deserialize)]
pub struct AnalyticsSettings {
    /// The event type whose events are page views: they make the visits and the rollups.
    pub page_view_type: String,
    /// Minutes of inactivity after which a visit ends.
    pub visit_timeout_minutes: NonZeroU32,
    /// The time zone of every site without its own entry in `site_time_zones`.
    pub time_zone: TimeZone,
    /// `site=Zone` entries, e.g. `shop.example=Europe/Paris`.
    pub site_time_zones: Vec<SiteTimeZone>,
    /// The IP-to-location database the producer looks client addresses up in.
    pub geoip_database: GeoIpDatabase,
    /// Whether a site is registered, and counted, when its first event arrives (development).
    pub register_sites_on_first_event: bool,
    /// Months of raw events (`kafka_events`) kept before this one; older months are dropped
    /// whole. 0 keeps every month.
    pub raw_retention_months: u32,
}

/// `analytics.geoip_database`: the path of an `.mmdb` file, or `off`. Unset is allowed here (the
/// consumer and the dashboard never read it) and refused by the producer, which needs one of
/// the two said explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum GeoIpDatabase {
    Unset,
    Off,
    File(PathBuf),
}

impl GeoIpDatabase {
    pub const KEY: &'static str = "analytics.geoip_database";
}

impl From<String> for GeoIpDatabase {
    fn from(text: String) -> Self {
        match text.trim() {
            "" => GeoIpDatabase::Unset,
            off if off.eq_ignore_ascii_case("off") => GeoIpDatabase::Off,
            path => GeoIpDatabase::File(PathBuf::from(path)),
        }
    }
}

/// An IANA time zone name (`UTC`, `Europe/Paris`), checked when the settings are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TimeZone(pub chrono_tz::Tz);

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.trim()
            .parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| format!("{text:?} is not an IANA time zone name (e.g. UTC, Europe/Paris)"))
    }
}

/// One `site=Zone` entry of `analytics.site_time_zones`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SiteTimeZone {
    pub site: String,
    pub zone: TimeZone,
}

impl TryFrom<String> for SiteTimeZone {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let (site, zone) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not site=Zone (e.g. shop.example=Europe/Paris)"))?;
        Ok(SiteTimeZone {
            site: site.trim().to_ascii_lowercase(),
            zone: TimeZone::try_from(zone.to_owned())?,
        })
    }
}

impl AnalyticsSettings {
    /// The time zone of a registered site: its own (`sites.time_zone`), or else the one these
    /// settings give it.
    pub fn zone_of_registered(&self, site: &str, stored: Option<&str>) -> chrono_tz::Tz {
        stored
            .and_then(|zone| zone.parse().ok())
            .unwrap_or_else(|| self.time_zone_of(site))
    }

    /// The time zone these settings give a site (registered sites may have their own).
    pub fn time_zone_of(&self, site: &str) -> chrono_tz::Tz {
        self.site_time_zones
            .iter()
            .find(|entry| entry.site == site)
            .map_or(self.time_zone.0, |entry| entry.zone.0)
    }

    pub fn visit_timeout(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(i64::from(self.visit_timeout_minutes.get()))
    }
}

/// The read side: the Stats API and the dashboard.
#[derive(Debug, Clone, Deserialize)]
pub struct DashboardSettings {
    pub host: String,
    pub port: u16,
    /// Where the Stats API reads: a streaming replica, or empty for `database.url`. What the
    /// dashboard writes (sites, goals, tokens, links) goes to `database.url`.
    pub database_url: SecretString,
    /// Its Prometheus endpoint (`/metrics`: the replica's lag among others).
    pub metrics_host: String,
    pub metrics_port: u16,
    /// Bearer tokens accepted by the Stats API; none means the dashboard refuses to start.
    pub api_tokens: Vec<SecretString>,
    /// Bearer tokens that may also change what is counted (goals); they read as well.
    pub admin_tokens: Vec<SecretString>,
    /// The longest date range one query may span, in days.
    pub max_date_span_days: NonZeroU32,
    /// The largest `limit` of one query.
    pub max_limit: NonZeroUsize,
    /// The longest one statement of a Stats query may run in PostgreSQL.
    pub statement_timeout_ms: NonZeroU64,
    /// The longest one request may take, all its statements together.
    pub request_timeout_ms: NonZeroU64,
    /// The most groups (time buckets × dimension values) one answer may build.
    pub max_groups: NonZeroUsize,
    /// How many requests of one token run at once, and how long another waits for its turn.
    pub max_queries_per_token: NonZeroUsize,
    pub query_queue_ms: NonZeroU64,
    /// The largest request body, and how long it may take to arrive.
    pub body_limit_bytes: usize,
    pub body_read_timeout_ms: NonZeroU64,
    pub max_depth: NonZeroUsize,
    pub max_complexity: NonZeroUsize,
    /// "Current visitors" are those seen within this many seconds.
    pub realtime_window_s: NonZeroU32,
    /// How often the `currentVisitors` subscription pushes a count.
    pub realtime_push_ms: NonZeroU64,
    /// How long a WebSocket may stay open before its `connection_init` is accepted.
    pub ws_init_timeout_ms: NonZeroU64,
    /// Wrong tokens one client address may present per minute before it is refused (429).
    pub wrong_tokens_per_minute: NonZeroU32,
    /// Wrong passwords one client address may try per shared link per minute (then 429).
    pub share_password_attempts_per_minute: NonZeroU32,
    /// Page origins besides the dashboard's own that may open a WebSocket.
    pub ws_allowed_origins: Vec<String>,
    /// The most subscriptions one WebSocket may have open at once.
    pub max_subscriptions_per_socket: NonZeroUsize,
    /// On SIGTERM/SIGINT: how long in-flight requests may take to finish.
    pub shutdown_timeout_ms: NonZeroU64,
}

impl DashboardSettings {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    pub fn realtime_push(&self) -> Duration {
        Duration::from_millis(self.realtime_push_ms.get())
    }
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms.get())
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.get())
    }
    pub fn query_queue(&self) -> Duration {
        Duration::from_millis(self.query_queue_ms.get())
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms.get())
    }
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms.get())
    }
    pub fn ws_init_timeout(&self) -> Duration {
        Duration::from_millis(self.ws_init_timeout_ms.get())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub body_limit_bytes: usize,
    /// A request body must arrive whole within this time (slow senders hold a connection).
    pub body_read_timeout_ms: NonZeroU64,
    pub max_batch_size: NonZeroUsize,
    pub max_in_flight: usize,
    pub max_depth: NonZeroUsize,
    pub max_complexity: NonZeroUsize,
    pub introspection: bool,
    pub cors_allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` / `Forwarded` header names the client (IPs or CIDRs).
    pub trusted_proxies: Vec<IpNet>,
    pub shutdown_timeout_ms: u64,
    /// Events one client address may send per minute; 0 is no limit.
    pub rate_limit_events_per_minute: u32,
    /// Where `/metrics` is served: apart from the public port.
    pub metrics_host: String,
    pub metrics_port: u16,
}

/// An IP network: `10.0.0.0/8`, `::1/128`, or one address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNet(ipnet::IpNet);

impl IpNet {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let net = text.trim();
        let one = |addr: std::net::IpAddr| ipnet::IpNet::from(addr);
        net.parse::<ipnet::IpNet>()
            .or_else(|_| net.parse().map(one))
            .map(IpNet)
            .map_err(|_| format!("{text:?} is not an IP address or network (e.g. 10.0.0.0/8)"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    pub brokers: Vec<String>,
    pub client_id: String,
    pub event_types: Vec<String>,
    pub topic_prefix: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub compression: Compression,
    pub linger_ms: u64,
    pub max_batch_bytes: usize,
    pub produce_timeout_ms: NonZeroU64,
    pub request_timeout_ms: NonZeroU64,
    /// After a failed produce, how long requests are refused at once; 0 turns it off.
    pub circuit_breaker_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Holds the password: `{:?}` prints it redacted, and using it takes `expose_secret()`.
    pub url: SecretString,
    pub max_connections: NonZeroU32,
    pub connect_timeout_ms: NonZeroU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetOutOfRange {
    /// Keep the stored offset and wait for the partition to reach it again.
    Wait,
    /// Restart the partition from its earliest offset.
    Earliest,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerSettings {
    pub topics: Vec<String>,
    pub auto_migrate: bool,
    pub fetch_max_bytes: i32,
    pub fetch_max_wait_ms: i32,
    pub on_offset_out_of_range: OffsetOutOfRange,
    pub lease_ttl_ms: NonZeroU64,
    pub lease_renew_ms: NonZeroU64,
    pub partition_refresh_ms: NonZeroU64,
    pub lag_log_interval_ms: NonZeroU64,
    pub metrics_host: String,
    pub metrics_port: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub filter: String,
}

impl Settings {
    /// All layers: defaults, `config/local.toml`, `APP__…` environment variables.
    pub fn load() -> Result<Self, SettingsError> {
        let dir = std::env::var_os("APP_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        let mut env = Environment::with_prefix("APP")
            .separator("__")
            .list_separator(",")
            .try_parsing(true);
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }
        let raw = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from(dir.join("local.toml")).required(false))
            .add_source(env)
            .build()?;
        Self::from_config(raw)
    }

    /// The checked-in defaults alone, ignoring files and environment: what tests start from.
    pub fn defaults() -> Self {
        let raw = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<Settings>());
        match raw {
            Ok(settings) => settings,
            // The defaults are compiled in and covered by a test; failing here is a build bug.
            Err(e) => panic!("config/default.toml does not match Settings: {e}"),
        }
    }

    fn from_config(raw: Config) -> Result<Self, SettingsError> {
        let settings: Settings = raw.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot say.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, reason: &str| {
            Err(SettingsError::Invalid {
                key,
                reason: reason.to_owned(),
            })
        };
        let s = &self.server;
        if s.host.trim().is_empty() {
            return invalid("server.host", "must not be empty");
        }
        if s.body_limit_bytes < 1024 {
            return invalid("server.body_limit_bytes", "must be at least 1024");
        }
        if s.max_in_flight < s.max_batch_size.get() {
            return invalid(
                "server.max_in_flight",
                "must be at least server.max_batch_size, or a full batch could never be accepted",
            );
        }
        let k = &self.kafka;
        if k.brokers.is_empty() || k.brokers.iter().any(|b| !is_host_port(b)) {
            return invalid(
                "kafka.brokers",
                &format!("expected host:port[,host:port…], got {:?}", k.brokers),
            );
        }
        if k.event_types.is_empty() {
            return invalid("kafka.event_types", "must name at least one event type");
        }
        if let Some(bad) = k
            .event_types
            .iter()
            .find(|t| !is_topic_name(&format!("{}{t}", k.topic_prefix)))
        {
            return invalid(
                "kafka.event_types",
                &format!("{bad:?} is not a valid topic name ([A-Za-z0-9._-], 1 to 249 chars)"),
            );
        }
        let reserved = analytics::visit::RESERVED_EVENT_TYPES;
        if let Some(t) = k
            .event_types
            .iter()
            .find(|t| reserved.contains(&t.as_str()))
        {
            return invalid(
                "kafka.event_types",
                &format!("{t:?} is a type the consumer stores reports or custom events under, not one to accept"),
            );
        }
        if k.partitions < 1 {
            return invalid("kafka.partitions", "must be at least 1");
        }
        if k.replication_factor < 1 {
            return invalid("kafka.replication_factor", "must be at least 1");
        }
        if k.max_batch_bytes < 1024 {
            return invalid("kafka.max_batch_bytes", "must be at least 1024");
        }
        let d = &self.database;
        let url = d.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return invalid("database.url", "must be a postgres:// URL");
        }
        let reads = self.dashboard.database_url.expose_secret().trim();
        if !(reads.is_empty()
            || reads.starts_with("postgres://")
            || reads.starts_with("postgresql://"))
        {
            return invalid(
                "dashboard.database_url",
                "must be a postgres:// URL (a replica to read from), or empty to read from database.url",
            );
        }
        let c = &self.consumer;
        if c.topics.is_empty() {
            return invalid("consumer.topics", "must name at least one topic");
        }
        if let Some(bad) = c.topics.iter().find(|t| !is_topic_name(t)) {
            return invalid(
                "consumer.topics",
                &format!("{bad:?} is not a valid topic name"),
            );
        }
        if (c.fetch_max_bytes.max(0) as usize) < self.kafka.max_batch_bytes + 65536 {
            return invalid(
                "consumer.fetch_max_bytes",
                "must be at least kafka.max_batch_bytes + 65536, or the largest record batch cannot be fetched",
            );
        }
        if c.fetch_max_wait_ms < 0 {
            return invalid("consumer.fetch_max_wait_ms", "must not be negative");
        }
        if c.lease_ttl_ms.get() < 2 * c.lease_renew_ms.get() {
            return invalid(
                "consumer.lease_ttl_ms",
                "must be at least twice consumer.lease_renew_ms",
            );
        }
        let a = &self.analytics;
        if !k.event_types.contains(&a.page_view_type) {
            return invalid(
                "analytics.page_view_type",
                &format!("{:?} is not one of kafka.event_types", a.page_view_type),
            );
        }
        let b = &self.dashboard;
        if b.host.trim().is_empty() {
            return invalid("dashboard.host", "must not be empty");
        }
        for (key, tokens) in [
            ("dashboard.api_tokens", &b.api_tokens),
            ("dashboard.admin_tokens", &b.admin_tokens),
        ] {
            if tokens.iter().any(|t| t.expose_secret().trim().len() < 16) {
                return invalid(
                    key,
                    "every token must be at least 16 characters (make up generates one)",
                );
            }
        }
        Ok(())
    }
}

impl ServerSettings {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms.get())
    }
}

impl KafkaSettings {
    pub fn produce_timeout(&self) -> Duration {
        Duration::from_millis(self.produce_timeout_ms.get())
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.get())
    }
    pub fn circuit_breaker(&self) -> Duration {
        Duration::from_millis(self.circuit_breaker_ms)
    }
    /// The topic an event type is produced to.
    pub fn topic_for(&self, event_type: &str) -> String {
        format!("{}{event_type}", self.topic_prefix)
    }
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }
}

impl ConsumerSettings {
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms.get())
    }
    pub fn lease_renew(&self) -> Duration {
        Duration::from_millis(self.lease_renew_ms.get())
    }
    pub fn partition_refresh(&self) -> Duration {
        Duration::from_millis(self.partition_refresh_ms.get())
    }
    pub fn lag_log_interval(&self) -> Duration {
        Duration::from_millis(self.lag_log_interval_ms.get())
    }
}

impl DatabaseSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.get())
    }

    /// The URL with its password replaced by `***`, for messages and logs.
    pub fn redacted_url(&self) -> String {
        redact(self.url.expose_secret())
    }
}

impl DashboardSettings {
    /// Whether the Stats API reads from a database of its own (a replica).
    pub fn reads_elsewhere(&self) -> bool {
        !self.database_url.expose_secret().trim().is_empty()
    }

    pub fn redacted_database_url(&self) -> String {
        redact(self.database_url.expose_secret())
    }
}

/// A URL without its password, wherever it is given (`user:pw@` or `?password=`).
pub fn redact(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    if let Some(start) = out.find("password=") {
        let value = start + "password=".len();
        let end = out[value..].find('&').map_or(out.len(), |i| value + i);
        out.replace_range(value..end, "***");
    }
    out
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// Kafka's own rule for topic names.
pub fn is_topic_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_defaults_are_valid_and_match_the_documented_ones() {
        let s = Settings::defaults();
        s.validate().expect("defaults validate");
        assert_eq!(s.server.address(), "0.0.0.0:8080");
        assert_eq!(s.kafka.brokers, vec!["localhost:9092".to_owned()]);
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://postgres:postgres@localhost:5432/analytics"
        );
        assert_eq!(s.kafka.event_types, vec!["PAGE_VIEW".to_owned()]);
    }

    #[test]
    fn a_broker_without_a_port_is_rejected_naming_the_key() {
        let mut s = Settings::defaults();
        s.kafka.brokers = vec!["localhost".into()];
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("kafka.brokers"), "{err}");
    }

    #[test]
    fn a_fetch_size_too_small_for_the_largest_batch_is_rejected() {
        let mut s = Settings::defaults();
        s.consumer.fetch_max_bytes = s.kafka.max_batch_bytes as i32;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("consumer.fetch_max_bytes"), "{err}");
    }

    /// The defaults with one key overridden, loaded as the binaries load settings.
    fn load_with(key: &str, value: &str) -> Result<Settings, SettingsError> {
        let raw = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .set_override(key, value)
            .and_then(|b| b.build())?;
        Settings::from_config(raw)
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_own_key() {
        let cases = [
            ("server.port", "notaport"),
            ("server.body_limit_bytes", "10"),
            ("server.body_read_timeout_ms", "0"),
            ("server.trusted_proxies", "10.0.0.0/33"),
            ("server.max_batch_size", "0"),
            ("server.max_in_flight", "1"),
            ("server.max_depth", "0"),
            ("server.max_complexity", "0"),
            ("kafka.brokers", "localhost"),
            ("kafka.event_types", "page view"),
            ("kafka.event_types", "PAGE_VIEW,ENGAGEMENT"),
            ("kafka.event_types", "PAGE_VIEW,CUSTOM_EVENT"),
            ("kafka.partitions", "0"),
            ("kafka.replication_factor", "0"),
            ("kafka.compression", "lz4"),
            ("kafka.max_batch_bytes", "10"),
            ("kafka.produce_timeout_ms", "0"),
            ("kafka.request_timeout_ms", "0"),
            ("database.url", "mysql://db"),
            ("database.max_connections", "0"),
            ("database.connect_timeout_ms", "0"),
            ("consumer.topics", "bad topic"),
            ("consumer.fetch_max_bytes", "1024"),
            ("consumer.fetch_max_wait_ms", "-1"),
            ("consumer.on_offset_out_of_range", "latest"),
            ("consumer.lease_ttl_ms", "1"),
            ("consumer.lease_renew_ms", "0"),
            ("consumer.partition_refresh_ms", "0"),
            ("consumer.lag_log_interval_ms", "0"),
        ];
        for (key, value) in cases {
            let err = match load_with(key, value) {
                Ok(_) => panic!("{key} = {value:?} was accepted"),
                Err(e) => format!(
                    "{e}: {}",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ),
            };
            assert!(err.contains(key), "{key} = {value:?} reported as: {err}");
        }
    }

    #[test]
    fn a_database_password_never_shows_in_debug_output_or_messages() {
        let mut s = Settings::defaults();
        s.database.url = SecretString::from("postgres://app:hunter2@db/analytics?password=hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            s.database.redacted_url(),
            "postgres://app:***@db/analytics?password=***"
        );
    }

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(is_topic_name("PAGE_VIEW"));
        assert!(!is_topic_name("page view"));
        assert!(!is_topic_name(".."));
        assert!(!is_topic_name(&"a".repeat(250)));
    }

    #[test]
    fn a_trusted_network_contains_its_addresses_only() {
        let net = IpNet::try_from("10.1.0.0/16".to_owned()).expect("a network");
        assert!(net.contains("10.1.200.3".parse().expect("ip")));
        assert!(!net.contains("10.2.0.1".parse().expect("ip")));
        assert!(!net.contains("::1".parse().expect("ip")));
        let one = IpNet::try_from("2001:db8::1".to_owned()).expect("an address");
        assert!(one.contains("2001:db8::1".parse().expect("ip")));
        assert!(!one.contains("2001:db8::2".parse().expect("ip")));
        let odd = IpNet::try_from("192.168.0.0/20".to_owned()).expect("a network");
        assert!(odd.contains("192.168.15.255".parse().expect("ip")));
        assert!(!odd.contains("192.168.16.0".parse().expect("ip")));
        assert!(IpNet::try_from("localhost".to_owned()).is_err());
    }
}
