//! The fingerprint of the last record a partition's offset covers, so the consumer can tell
//! that the log it resumes is still the one it read (and not a re-created or wiped one).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ConsumerOffsets::Table)
                    .add_column(
                        ColumnDef::new(ConsumerOffsets::LastRecord)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ConsumerOffsets::Table)
                    .drop_column(ConsumerOffsets::LastRecord)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ConsumerOffsets {
    Table,
    LastRecord,
}
