//! One stored page view. `SELECT * FROM kafka_events;` is what the tutorial's users run.

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
    /// When the producer received the event (UTC).
    pub received_at: DateTimeWithTimeZone,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
