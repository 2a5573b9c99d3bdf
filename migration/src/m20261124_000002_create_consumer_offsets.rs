use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsumerOffsets::Table)
                    .col(text(ConsumerOffsets::Topic))
                    .col(integer(ConsumerOffsets::Partition))
                    .col(big_integer(ConsumerOffsets::NextOffset))
                    .col(timestamp_with_time_zone_default_now(
                        ConsumerOffsets::UpdatedAt,
                    ))
                    .primary_key(
                        Index::create()
                            .col(ConsumerOffsets::Topic)
                            .col(ConsumerOffsets::Partition),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConsumerOffsets::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ConsumerOffsets {
    Table,
    Topic,
    Partition,
    NextOffset,
    UpdatedAt,
}
