use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsumerMembers::Table)
                    .col(uuid(ConsumerMembers::Owner).primary_key())
                    .col(timestamp_with_time_zone_default_now(
                        ConsumerMembers::StartedAt,
                    ))
                    .col(timestamp_with_time_zone(ConsumerMembers::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PartitionLeases::Table)
                    .col(text(PartitionLeases::Topic))
                    .col(integer(PartitionLeases::Partition))
                    .col(uuid(PartitionLeases::Owner))
                    .col(timestamp_with_time_zone(PartitionLeases::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(PartitionLeases::Topic)
                            .col(PartitionLeases::Partition),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PartitionLeases::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConsumerMembers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ConsumerMembers {
    Table,
    Owner,
    StartedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum PartitionLeases {
    Table,
    Topic,
    Partition,
    Owner,
    ExpiresAt,
}
