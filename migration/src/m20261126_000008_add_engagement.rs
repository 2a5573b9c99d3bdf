//! Engagement reports (the tracker's engaged time and scroll depth when a page is hidden or
//! left): two nullable columns on `kafka_events` (NULL on page views), and the engaged time
//! summed per visit.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(KafkaEvents::Table)
                    .add_column(integer_null(KafkaEvents::EngagedMs))
                    .add_column(integer_null(KafkaEvents::ScrollDepth))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Visits::Table)
                    .add_column(integer(Visits::EngagedMs).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Visits::Table)
                    .drop_column(Visits::EngagedMs)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(KafkaEvents::Table)
                    .drop_column(KafkaEvents::EngagedMs)
                    .drop_column(KafkaEvents::ScrollDepth)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum KafkaEvents {
    Table,
    EngagedMs,
    ScrollDepth,
}

#[derive(DeriveIden)]
enum Visits {
    Table,
    EngagedMs,
}
