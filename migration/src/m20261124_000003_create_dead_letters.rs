use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .col(big_pk_auto(DeadLetters::Id))
                    .col(text(DeadLetters::Topic))
                    .col(integer(DeadLetters::Partition))
                    .col(big_integer(DeadLetters::Offset))
                    .col(blob_null(DeadLetters::Key))
                    .col(blob_null(DeadLetters::Value))
                    .col(text(DeadLetters::Error))
                    .col(timestamp_with_time_zone_default_now(DeadLetters::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // One dead letter per record, however often a batch is retried.
        manager
            .create_index(
                Index::create()
                    .name("uq_dead_letters_topic_partition_offset")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::Topic)
                    .col(DeadLetters::Partition)
                    .col(DeadLetters::Offset)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeadLetters::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Error,
    CreatedAt,
}
