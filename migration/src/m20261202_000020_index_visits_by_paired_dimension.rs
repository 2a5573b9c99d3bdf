//! `visits` gains an index per dimension a person clicks (`Dimension::PAIRED` when this was
//! written: source, channel, device, country), each `(site, dimension, day)`. A dashboard with
//! one such filter reads the rollups' pairs; with two (a source, then a device), it aggregates
//! visits, and these let PostgreSQL read only the visits with both values (a `BitmapAnd` of two
//! indexes) instead of every visit of the site's days. Equal keys repeat per visit, so B-tree
//! deduplication keeps each index to a few bytes per visit.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PAIRED: [&str; 4] = ["source", "channel", "device", "country"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for column in PAIRED {
            db.execute_unprepared(&format!(
                "CREATE INDEX idx_visits_site_{column}_day ON visits (site, {column}, day)"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for column in PAIRED {
            db.execute_unprepared(&format!("DROP INDEX idx_visits_site_{column}_day"))
                .await?;
        }
        Ok(())
    }
}
