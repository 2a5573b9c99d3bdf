//! What a stored page view knows beyond the tutorial's fields: the request's visit (visitor id,
//! user agent, language) and the consumer's enrichment (site, browser, OS, device, bot flag,
//! source, channel, campaign). All nullable (the bot flag defaults to false), so rows stored
//! before this migration stay valid and `SELECT * FROM kafka_events` keeps working.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut alter = Table::alter();
        alter
            .table(KafkaEvents::Table)
            .add_column(big_integer_null(KafkaEvents::VisitorId))
            .add_column(boolean(KafkaEvents::IsBot).default(false));
        for column in TEXT_COLUMNS {
            alter.add_column(text_null(column));
        }
        manager.alter_table(alter.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut alter = Table::alter();
        alter
            .table(KafkaEvents::Table)
            .drop_column(KafkaEvents::VisitorId)
            .drop_column(KafkaEvents::IsBot);
        for column in TEXT_COLUMNS {
            alter.drop_column(column);
        }
        manager.alter_table(alter.to_owned()).await
    }
}

const TEXT_COLUMNS: [KafkaEvents; 16] = [
    KafkaEvents::UserAgent,
    KafkaEvents::Language,
    KafkaEvents::Site,
    KafkaEvents::Browser,
    KafkaEvents::BrowserVersion,
    KafkaEvents::Os,
    KafkaEvents::OsVersion,
    KafkaEvents::Device,
    KafkaEvents::Source,
    KafkaEvents::Channel,
    KafkaEvents::UtmSource,
    KafkaEvents::UtmMedium,
    KafkaEvents::UtmCampaign,
    KafkaEvents::UtmTerm,
    KafkaEvents::UtmContent,
    KafkaEvents::ClickId,
];

#[derive(DeriveIden, Clone, Copy)]
enum KafkaEvents {
    Table,
    VisitorId,
    IsBot,
    UserAgent,
    Language,
    Site,
    Browser,
    BrowserVersion,
    Os,
    OsVersion,
    Device,
    Source,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmTerm,
    UtmContent,
    ClickId,
}
