//! Where visitors are: the country (ISO 3166-1 alpha-2), region and city the producer looked
//! the client address up as, on each stored event (NULL when unknown, and for events stored
//! before) and on each visit (from its first page view, `''` when unknown).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
ALTER TABLE kafka_events ADD COLUMN country text, ADD COLUMN region text, ADD COLUMN city text;
ALTER TABLE visits ADD COLUMN country text NOT NULL DEFAULT '',
    ADD COLUMN region text NOT NULL DEFAULT '',
    ADD COLUMN city text NOT NULL DEFAULT '';
";

const DOWN: &str = "
ALTER TABLE visits DROP COLUMN country, DROP COLUMN region, DROP COLUMN city;
ALTER TABLE kafka_events DROP COLUMN country, DROP COLUMN region, DROP COLUMN city;
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
