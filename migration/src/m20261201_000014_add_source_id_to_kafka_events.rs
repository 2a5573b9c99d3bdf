//! `kafka_events.source_id`: the id a record of the tutorial's own Go producer carried (a
//! Unix-seconds string), kept beside the UUID the consumer derives for it from where the record
//! was read. NULL for every other event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE kafka_events ADD COLUMN source_id text")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE kafka_events DROP COLUMN source_id")
            .await?;
        Ok(())
    }
}
