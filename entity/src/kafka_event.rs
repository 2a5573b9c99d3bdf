//! One stored page view. `SELECT * FROM kafka_events;` is what the tutorial's users run. The
//! table is partitioned by month of `received_at` (its key is `(id, received_at)`; an id names
//! one event all the same: the consumer stores the first record of each id).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "kafka_events")]
pub struct Model {
    /// The event's UUID (server-generated v7, or the client's idempotency key).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: String,
    pub event_type: String,
    pub path: String,
    pub search: String,
    pub title: String,
    pub url: String,
    pub referrer: Option<String>,
    /// Set on an engagement report: visible and focused milliseconds on the page.
    pub engaged_ms: Option<i32>,
    /// With `engaged_ms`: the deepest scroll, in percent.
    pub scroll_depth: Option<i32>,
    /// A custom event's name (`event_type` is then `CUSTOM_EVENT`).
    pub name: Option<String>,
    /// A custom event's properties: a JSON array of `{"key", "value"}`.
    pub props: Option<Json>,
    /// When the producer received the event (UTC).
    pub received_at: DateTimeWithTimeZone,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    /// A keyed hash of site, client address and user agent under a salt that lives 48 hours.
    pub visitor_id: Option<i64>,
    /// Crawlers, headless browsers and other automation: kept, but out of statistics.
    pub is_bot: bool,
    pub user_agent: Option<String>,
    pub language: Option<String>,
    /// Where the client address was (ISO 3166-1 alpha-2), as the producer looked it up; the
    /// address itself is stored nowhere.
    pub country: Option<String>,
    /// With a city database: ISO 3166-2 (`GB-ENG`), or the database's name of the region.
    pub region: Option<String>,
    pub city: Option<String>,
    /// The host of `url`, without `www.`.
    pub site: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    pub device: Option<String>,
    pub source: Option<String>,
    /// `direct`, `organic_search`, `organic_social`, `email`, `paid` or `referral`.
    pub channel: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// Which ad click id the URL carried (`gclid`, `msclkid`, `fbclid`), never its value.
    pub click_id: Option<String>,
    /// The visit the consumer placed this hit in (NULL for bots and events of other topics).
    pub visit_id: Option<Uuid>,
    /// The id a record of the tutorial's own producer carried (`id` is then derived from the
    /// record's topic, partition and offset).
    pub source_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
