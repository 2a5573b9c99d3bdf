//! `visits` loses the indexes migration 20 gave each clicked dimension (`(site, source, day)`
//! and the same for channel, device and country). Two clicks are answered from the rollups'
//! triples since migration 22, so only three filters and more still aggregate visits, and
//! there the indexes narrowed one of the dimensions at most.
//!
//! What they cost: each visit's update wrote them all (the visits are updated with every page
//! view of a batch), 30 bytes per visit, and, on a table PostgreSQL has no statistics of yet
//! (a new database, or right after a rebuild emptied it), the lookup of a visitor-day used one
//! of them, small from B-tree deduplication, with only `site` and `day` as conditions: every
//! visit of the day read to find one visitor's (`auto_explain` in the storage benchmark: 5 s
//! for 1,165 visitor-days, 4,999 rows removed by the filter for each). The one index left
//! that leads with `site` and `day`, `(site, day, visitor)`, is the lookup's own.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXED: [&str; 4] = ["source", "channel", "device", "country"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for column in INDEXED {
            db.execute_unprepared(&format!("DROP INDEX idx_visits_site_{column}_day"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for column in INDEXED {
            db.execute_unprepared(&format!(
                "CREATE INDEX idx_visits_site_{column}_day ON visits (site, {column}, day)"
            ))
            .await?;
        }
        Ok(())
    }
}
