use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KafkaEvents::Table)
                    .col(uuid(KafkaEvents::Id).primary_key())
                    .col(text(KafkaEvents::UserId))
                    .col(text(KafkaEvents::EventType))
                    .col(text(KafkaEvents::Path))
                    .col(text(KafkaEvents::Search))
                    .col(text(KafkaEvents::Title))
                    .col(text(KafkaEvents::Url))
                    .col(text_null(KafkaEvents::Referrer))
                    .col(timestamp_with_time_zone(KafkaEvents::ReceivedAt))
                    .col(text(KafkaEvents::Topic))
                    .col(integer(KafkaEvents::Partition))
                    .col(big_integer(KafkaEvents::Offset))
                    .col(timestamp_with_time_zone_default_now(KafkaEvents::CreatedAt))
                    .col(timestamp_with_time_zone_default_now(KafkaEvents::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // The analytics reads: events over time, and per path over time.
        manager
            .create_index(
                Index::create()
                    .name("idx_kafka_events_received_at")
                    .table(KafkaEvents::Table)
                    .col(KafkaEvents::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_kafka_events_path_received_at")
                    .table(KafkaEvents::Table)
                    .col(KafkaEvents::Path)
                    .col(KafkaEvents::ReceivedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KafkaEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum KafkaEvents {
    Table,
    Id,
    UserId,
    EventType,
    Path,
    Search,
    Title,
    Url,
    Referrer,
    ReceivedAt,
    Topic,
    Partition,
    Offset,
    CreatedAt,
    UpdatedAt,
}
