//! SeaORM migrations of the page-view store. `cargo run -p migration -- up|down|status|fresh`
//! and `sea-orm-cli migrate up -d migration` both drive them; every migration has a `down`.
//!
//! Architecture Invariant: migrations are plain schema; they know nothing of Kafka or settings.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_kafka_events;
mod m20261124_000002_create_consumer_offsets;
mod m20261124_000003_create_dead_letters;
mod m20261124_000004_create_partition_leases;
mod m20261125_000005_add_last_record_to_consumer_offsets;
mod m20261125_000006_add_visit_and_enrichment_to_kafka_events;
mod m20261126_000007_create_visits_and_rollups;
mod m20261126_000008_add_engagement;
mod m20261201_000009_store_engagement_reports_apart;
mod m20261201_000010_create_read_model;
mod m20261201_000011_add_custom_events_to_kafka_events;
mod m20261201_000012_create_goals_and_conversions;
mod m20261201_000013_add_places;
mod m20261201_000014_add_source_id_to_kafka_events;
mod m20261201_000015_create_sites;
mod m20261201_000016_create_api_tokens;
mod m20261201_000017_create_shared_links;
mod m20261202_000018_partition_kafka_events_by_month;
mod m20261202_000019_index_kafka_events_by_site;
mod m20261202_000020_index_visits_by_paired_dimension;
mod m20261202_000021_store_repeated_texts_once;
mod m20261203_000022_keep_filtered_rollups_apart;
mod m20261204_000023_store_usual_values_as_null;
mod m20261204_000024_drop_visit_indexes_by_paired_dimension;

/// The `raw_events` columns that hold an id of `event_texts` (migration 21 made them so; a
/// later migration that adds one extends this list).
pub use m20261202_000021_store_repeated_texts_once::TEXT_COLUMNS as RAW_EVENT_TEXT_COLUMNS;
/// The `raw_events` columns whose usual value is stored as NULL, and how to read them back
/// (migration 23).
pub use m20261204_000023_store_usual_values_as_null::{read_raw, usual_value, USUAL_VALUES};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_kafka_events::Migration),
            Box::new(m20261124_000002_create_consumer_offsets::Migration),
            Box::new(m20261124_000003_create_dead_letters::Migration),
            Box::new(m20261124_000004_create_partition_leases::Migration),
            Box::new(m20261125_000005_add_last_record_to_consumer_offsets::Migration),
            Box::new(m20261125_000006_add_visit_and_enrichment_to_kafka_events::Migration),
            Box::new(m20261126_000007_create_visits_and_rollups::Migration),
            Box::new(m20261126_000008_add_engagement::Migration),
            Box::new(m20261201_000009_store_engagement_reports_apart::Migration),
            Box::new(m20261201_000010_create_read_model::Migration),
            Box::new(m20261201_000011_add_custom_events_to_kafka_events::Migration),
            Box::new(m20261201_000012_create_goals_and_conversions::Migration),
            Box::new(m20261201_000013_add_places::Migration),
            Box::new(m20261201_000014_add_source_id_to_kafka_events::Migration),
            Box::new(m20261201_000015_create_sites::Migration),
            Box::new(m20261201_000016_create_api_tokens::Migration),
            Box::new(m20261201_000017_create_shared_links::Migration),
            Box::new(m20261202_000018_partition_kafka_events_by_month::Migration),
            Box::new(m20261202_000019_index_kafka_events_by_site::Migration),
            Box::new(m20261202_000020_index_visits_by_paired_dimension::Migration),
            Box::new(m20261202_000021_store_repeated_texts_once::Migration),
            Box::new(m20261203_000022_keep_filtered_rollups_apart::Migration),
            Box::new(m20261204_000023_store_usual_values_as_null::Migration),
            Box::new(m20261204_000024_drop_visit_indexes_by_paired_dimension::Migration),
        ]
    }
}
