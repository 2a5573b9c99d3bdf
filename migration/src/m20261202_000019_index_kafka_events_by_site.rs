//! `kafka_events` loses the indexes no query of the product uses, for fewer bytes per event and
//! fewer index writes per insert: `(path, received_at)` (the tutorial's "per path over time",
//! answered by the rollups since) and `(received_at)` (each month is a partition now). In their
//! place `(site, received_at)`: a site's events over time, which a site's count, its deletion
//! and a goal's backfill read. The partial index of custom events and engagement reports stays.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
DROP INDEX idx_kafka_events_path_received_at;
DROP INDEX idx_kafka_events_received_at;
CREATE INDEX idx_kafka_events_site_received_at ON kafka_events (site, received_at);
";

const DOWN: &str = "
DROP INDEX idx_kafka_events_site_received_at;
CREATE INDEX idx_kafka_events_received_at ON kafka_events (received_at);
CREATE INDEX idx_kafka_events_path_received_at ON kafka_events (path, received_at);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
