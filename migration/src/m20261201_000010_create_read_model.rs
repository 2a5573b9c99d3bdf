//! `read_model`: the model the visits and rollups were built with (`analytics::fingerprint`:
//! the stored dimensions, the counts, the rules' version). A consumer whose model differs
//! rebuilds them from the stored events before it consumes. The row written here is the model
//! of the tables as they were when this migration was written, so an existing installation is
//! not rebuilt for nothing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The model of 2026-12-01, as `analytics::fingerprint` wrote it then.
const MODEL_2026_12_01: &str = "dimensions=page,entry_page,exit_page,source,channel,utm_source,\
     utm_medium,utm_campaign,browser,os,device;counts=pageviews,visitors,visits,bounces,duration;\
     rules=1";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReadModel::Table)
                    .col(text(ReadModel::Name).primary_key())
                    .col(text(ReadModel::Fingerprint))
                    .col(
                        timestamp_with_time_zone(ReadModel::BuiltAt)
                            .default(Expr::current_timestamp()),
                    )
                    .to_owned(),
            )
            .await?;
        let insert = Query::insert()
            .into_table(ReadModel::Table)
            .columns([ReadModel::Name, ReadModel::Fingerprint])
            .values_panic(["rollups".into(), MODEL_2026_12_01.into()])
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReadModel::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ReadModel {
    Table,
    Name,
    Fingerprint,
    BuiltAt,
}
