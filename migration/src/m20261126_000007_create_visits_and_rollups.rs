//! The read side's tables, written by the consumer in the transaction that stores the events:
//! `visits` (one row per visit: the session state and the facts of every visit), and the
//! rollups the Stats API reads, `rollup_days` (per site, dimension, local day and value) and
//! `rollup_hours` (per site and local hour, every visit). Text columns of a visit hold `''` for
//! "none", so a value is never NULL and the rollup key stays a plain primary key.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut visits = Table::create();
        visits
            .table(Visits::Table)
            .col(uuid(Visits::Id).primary_key())
            .col(text(Visits::Site))
            .col(big_integer(Visits::Visitor))
            .col(date(Visits::Day))
            .col(timestamp(Visits::Hour))
            .col(timestamp_with_time_zone(Visits::StartedAt))
            .col(timestamp_with_time_zone(Visits::LastSeenAt))
            .col(integer(Visits::Pageviews))
            .col(integer(Visits::Duration))
            .col(boolean(Visits::Engaged).default(false));
        for column in VISIT_TEXT {
            visits.col(text(column).default(""));
        }
        visits.col(json_binary(Visits::Pages));
        manager.create_table(visits.to_owned()).await?;
        // One index for both reads: a visitor's day (the session state, read for every stored
        // batch, by equality on all three) and a site's days (the Stats API's filtered
        // queries, by a range on the second). With two, the planner could take the site-day
        // one for a visitor's lookup and read a whole day per visitor.
        manager
            .create_index(
                Index::create()
                    .name("idx_visits_site_day_visitor")
                    .table(Visits::Table)
                    .col(Visits::Site)
                    .col(Visits::Day)
                    .col(Visits::Visitor)
                    .to_owned(),
            )
            .await?;
        let mut days = Table::create();
        days.table(RollupDays::Table)
            .col(text(RollupDays::Site))
            .col(text(RollupDays::Dimension))
            .col(date(RollupDays::Day))
            .col(text(RollupDays::Value));
        for column in [
            RollupDays::Pageviews,
            RollupDays::Visitors,
            RollupDays::Visits,
            RollupDays::Bounces,
            RollupDays::Duration,
        ] {
            days.col(big_integer(column).default(0));
        }
        days.primary_key(
            Index::create()
                .col(RollupDays::Site)
                .col(RollupDays::Dimension)
                .col(RollupDays::Day)
                .col(RollupDays::Value),
        );
        manager.create_table(days.to_owned()).await?;
        let mut hours = Table::create();
        hours
            .table(RollupHours::Table)
            .col(text(RollupHours::Site))
            .col(timestamp(RollupHours::Hour));
        for column in [
            RollupHours::Pageviews,
            RollupHours::Visitors,
            RollupHours::Visits,
            RollupHours::Bounces,
            RollupHours::Duration,
        ] {
            hours.col(big_integer(column).default(0));
        }
        hours.primary_key(
            Index::create()
                .col(RollupHours::Site)
                .col(RollupHours::Hour),
        );
        manager.create_table(hours.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Visits::Table.into_iden(),
            RollupDays::Table.into_iden(),
            RollupHours::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

const VISIT_TEXT: [Visits; 10] = [
    Visits::EntryPage,
    Visits::ExitPage,
    Visits::Source,
    Visits::Channel,
    Visits::UtmSource,
    Visits::UtmMedium,
    Visits::UtmCampaign,
    Visits::Browser,
    Visits::Os,
    Visits::Device,
];

#[derive(DeriveIden, Clone, Copy)]
enum Visits {
    Table,
    Id,
    Site,
    Visitor,
    Day,
    Hour,
    StartedAt,
    LastSeenAt,
    Pageviews,
    Duration,
    Engaged,
    EntryPage,
    ExitPage,
    Source,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    Browser,
    Os,
    Device,
    Pages,
}

#[derive(DeriveIden, Clone, Copy)]
enum RollupDays {
    Table,
    Site,
    Dimension,
    Day,
    Value,
    Pageviews,
    Visitors,
    Visits,
    Bounces,
    Duration,
}

#[derive(DeriveIden, Clone, Copy)]
enum RollupHours {
    Table,
    Site,
    Hour,
    Pageviews,
    Visitors,
    Visits,
    Bounces,
    Duration,
}
