//! Custom events with properties: the event's `name` and its `props` (a JSON array of
//! `{key, value}`) on `kafka_events`, NULL on page views and engagement reports.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::alter()
            .table(KafkaEvents::Table)
            .add_column(text_null(KafkaEvents::Name))
            .add_column(json_binary_null(KafkaEvents::Props))
            .to_owned();
        manager.alter_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::alter()
            .table(KafkaEvents::Table)
            .drop_column(KafkaEvents::Name)
            .drop_column(KafkaEvents::Props)
            .to_owned();
        manager.alter_table(table).await
    }
}

#[derive(DeriveIden)]
enum KafkaEvents {
    Table,
    Name,
    Props,
}
