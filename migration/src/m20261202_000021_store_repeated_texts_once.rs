//! Raw events take fewer bytes. Texts that repeat from event to event (the site, the topic,
//! the title, the parsed user agent, the source and channel, the campaign, the place, the raw
//! user agent) are stored once, in `event_texts`. Each row of `raw_events` holds their 4-byte
//! ids. `created_at` and `updated_at` are no longer stored: they read as `received_at`, as a
//! row is written once (rebuilds only set `visit_id`). Nor is a `url` that is exactly
//! `https://` + site + path + search (most are): it is stored as NULL and read back so. `kafka_events` becomes a view over
//! `raw_events` that reads exactly as the table did, column for column and in the same order,
//! so `SELECT * FROM kafka_events` and every query of the tutorial still answer. The consumer
//! writes `raw_events` directly.
//!
//! Kept as text: `event_type` (the partial index of custom events and engagement reports
//! names its values), `path`, `name` and `props` (queries match them), and what rarely repeats
//! (`url`, `referrer`, `search`, `user_id`, `source_id`).
//!
//! A site's events are found by `(site)` alone: what reads them (a goal's backfill, a recount,
//! a deletion, "has this site events?") reads them all, each month is a partition already, and
//! with few distinct sites the index keeps one list of row pointers per site (B-tree
//! deduplication): about 6 bytes per event where `(site, received_at)` took 39. The partial
//! index of custom events and engagement reports keeps `(site, received_at)`: the dashboard
//! reads those by time.
//!
//! The primary key's pages are packed full (`fillfactor = 100`): the producer's ids are UUIDv7,
//! in time order, so new keys land at the end of the index and no page needs room for later
//! ones (a client's own random ids still fit, at the cost of some page splits).
//!
//! The months stay partitions (`raw_events_yYYYYmMM`); the rows of an existing database move
//! over here, month by month, with their texts.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns whose texts move to `event_texts`, for the SQL below and for the consumer,
/// which writes their ids (`migration::RAW_EVENT_TEXT_COLUMNS`).
pub const TEXT_COLUMNS: [&str; 21] = [
    "title",
    "topic",
    "user_agent",
    "language",
    "site",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "click_id",
    "country",
    "region",
    "city",
];

/// The URL a row whose `url` is NULL had (`consumer::row::is_derived_url` says when), from
/// the row's path and search as `stored` reads them.
fn derived_url(stored: &impl Fn(&str) -> String) -> String {
    format!(
        "'https://' || t_site.value || {} || {}",
        stored("path"),
        stored("search")
    )
}

/// `kafka_events`' columns in their order, as the view reads them out of `raw_events` `e`;
/// `stored(c)` is how a column stored as itself reads (a later migration may change it).
fn view_columns(stored: impl Fn(&str) -> String) -> Vec<String> {
    let columns = [
        "id",
        "user_id",
        "event_type",
        "path",
        "search",
        "title",
        "url",
        "referrer",
        "received_at",
        "topic",
        "partition",
        "offset",
        "created_at",
        "updated_at",
        "visitor_id",
        "is_bot",
        "user_agent",
        "language",
        "site",
        "browser",
        "browser_version",
        "os",
        "os_version",
        "device",
        "source",
        "channel",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "click_id",
        "engaged_ms",
        "scroll_depth",
        "name",
        "props",
        "visit_id",
        "country",
        "region",
        "city",
        "source_id",
    ];
    columns
        .iter()
        .map(|c| match *c {
            "created_at" | "updated_at" => format!("e.received_at AS {c}"),
            "url" => format!("coalesce(e.url, {}) AS url", derived_url(&stored)),
            c if TEXT_COLUMNS.contains(&c) => format!("t_{c}.value AS {c}"),
            c => format!("{} AS \"{c}\"", stored(c)),
        })
        .collect()
}

/// The view `kafka_events` over `raw_events`, its stored columns read by `stored`.
pub(crate) fn view_sql_reading(stored: impl Fn(&str) -> String) -> String {
    let joins: Vec<String> = TEXT_COLUMNS
        .iter()
        .map(|c| format!("LEFT JOIN event_texts t_{c} ON t_{c}.id = e.{c}"))
        .collect();
    format!(
        "CREATE VIEW kafka_events AS SELECT {} FROM raw_events e {}",
        view_columns(stored).join(", "),
        joins.join(" ")
    )
}

/// The view as this migration makes it.
pub(crate) fn view_sql() -> String {
    view_sql_reading(|c| format!("e.\"{c}\""))
}

const RAW_EVENTS: &str = r#"
CREATE TABLE event_texts (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    value text NOT NULL UNIQUE
);
CREATE TABLE raw_events (
    received_at timestamptz NOT NULL,
    "offset" bigint NOT NULL,
    visitor_id bigint,
    id uuid NOT NULL,
    visit_id uuid,
    partition integer NOT NULL,
    topic integer NOT NULL,
    title integer NOT NULL,
    site integer,
    user_agent integer,
    language integer,
    browser integer,
    browser_version integer,
    os integer,
    os_version integer,
    device integer,
    source integer,
    channel integer,
    utm_source integer,
    utm_medium integer,
    utm_campaign integer,
    utm_term integer,
    utm_content integer,
    click_id integer,
    country integer,
    region integer,
    city integer,
    engaged_ms integer,
    scroll_depth integer,
    is_bot boolean NOT NULL DEFAULT false,
    user_id text NOT NULL,
    event_type text NOT NULL,
    path text NOT NULL,
    search text NOT NULL,
    url text,
    referrer text,
    name text,
    props jsonb,
    source_id text
) PARTITION BY RANGE (received_at);
"#;

const INDEXES: &str = r#"
ALTER TABLE raw_events ADD PRIMARY KEY (id, received_at) WITH (fillfactor = 100);
CREATE INDEX idx_raw_events_site ON raw_events (site);
CREATE INDEX idx_raw_events_events_and_reports ON raw_events (site, received_at)
    WHERE event_type IN ('CUSTOM_EVENT', 'ENGAGEMENT');
"#;

/// Creates the partition of every month `{from}` holds, named by `{prefix}`, of `{parent}`.
fn partitions_sql(from: &str, parent: &str, prefix: &str) -> String {
    format!(
        r#"DO $$
DECLARE month timestamptz;
BEGIN
    FOR month IN SELECT DISTINCT date_trunc('month', received_at, 'UTC') FROM {from} LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF {parent} FOR VALUES FROM (%L) TO (%L)',
            '{prefix}' || to_char(month AT TIME ZONE 'UTC', '"y"YYYY"m"MM'),
            month, month + interval '1 month');
    END LOOP;
END $$;"#
    )
}

fn up_sql() -> String {
    let texts: Vec<String> = TEXT_COLUMNS.iter().map(|c| format!("({c})")).collect();
    let stored: Vec<&str> = [
        "received_at",
        "offset",
        "visitor_id",
        "id",
        "visit_id",
        "partition",
        "engaged_ms",
        "scroll_depth",
        "is_bot",
        "user_id",
        "event_type",
        "path",
        "search",
        "referrer",
        "name",
        "props",
        "source_id",
    ]
    .to_vec();
    let columns: Vec<String> = stored
        .iter()
        .map(|c| format!("\"{c}\""))
        .chain(TEXT_COLUMNS.iter().map(|c| String::from(*c)))
        .chain(["url".to_owned()])
        .collect();
    let values: Vec<String> = stored
        .iter()
        .map(|c| format!("w.\"{c}\""))
        .chain(TEXT_COLUMNS.iter().map(|c| format!("t_{c}.id")))
        .chain([
            "CASE WHEN w.url = 'https://' || w.site || w.path || w.search THEN NULL ELSE w.url END"
                .to_owned(),
        ])
        .collect();
    let joins: Vec<String> = TEXT_COLUMNS
        .iter()
        .map(|c| format!("LEFT JOIN event_texts t_{c} ON t_{c}.value = w.{c}"))
        .collect();
    format!(
        "{RAW_EVENTS}
ALTER TABLE kafka_events RENAME TO kafka_events_wide;
INSERT INTO event_texts (value)
    SELECT DISTINCT v FROM kafka_events_wide, LATERAL (VALUES {}) AS x(v) WHERE v IS NOT NULL
    ORDER BY v;
{}
INSERT INTO raw_events ({}) SELECT {} FROM kafka_events_wide w {};
DROP TABLE kafka_events_wide;
{INDEXES}
{};",
        texts.join(", "),
        partitions_sql("kafka_events_wide", "raw_events", "raw_events_"),
        columns.join(", "),
        values.join(", "),
        joins.join(" "),
        view_sql(),
    )
}

/// Back to one wide partitioned `kafka_events`, as after migration 20.
fn down_sql() -> String {
    format!(
        r#"
ALTER VIEW kafka_events RENAME TO kafka_events_compact;
CREATE TABLE kafka_events (LIKE kafka_events_compact) PARTITION BY RANGE (received_at);
ALTER TABLE kafka_events
    ALTER COLUMN id SET NOT NULL, ALTER COLUMN user_id SET NOT NULL,
    ALTER COLUMN event_type SET NOT NULL, ALTER COLUMN path SET NOT NULL,
    ALTER COLUMN search SET NOT NULL, ALTER COLUMN title SET NOT NULL,
    ALTER COLUMN url SET NOT NULL, ALTER COLUMN received_at SET NOT NULL,
    ALTER COLUMN topic SET NOT NULL, ALTER COLUMN partition SET NOT NULL,
    ALTER COLUMN "offset" SET NOT NULL, ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL, ALTER COLUMN is_bot SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT now(), ALTER COLUMN updated_at SET DEFAULT now(),
    ALTER COLUMN is_bot SET DEFAULT false;
{}
INSERT INTO kafka_events SELECT * FROM kafka_events_compact;
DROP VIEW kafka_events_compact;
DROP TABLE raw_events;
DROP TABLE event_texts;
ALTER TABLE kafka_events ADD PRIMARY KEY (id, received_at);
CREATE INDEX idx_kafka_events_site_received_at ON kafka_events (site, received_at);
CREATE INDEX idx_kafka_events_events_and_reports ON kafka_events (site, received_at)
    WHERE event_type IN ('CUSTOM_EVENT', 'ENGAGEMENT');
"#,
        partitions_sql("kafka_events_compact", "kafka_events", "kafka_events_"),
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&up_sql())
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&down_sql())
            .await?;
        Ok(())
    }
}
