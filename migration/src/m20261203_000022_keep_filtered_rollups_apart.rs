//! The rollups of a filtered dashboard get tables of their own, shaped as `rollup_days`:
//! `rollup_pair_days` (the visits with one value of a dimension a person clicks, by every other
//! breakdown: one click) and `rollup_triple_days` (with one value of each of two such
//! dimensions: two clicks). The unfiltered dashboard reads `rollup_days` alone, so rows it
//! never reads no longer spread its rows over more pages; each filtered page reads a table
//! whose rows are all of its kind.
//!
//! The pair rows of an existing database move over here (their `dimension` holds the
//! separator, U+001F, that only pair rows have); the triple rows are written by the rebuild
//! the consumer runs when it finds the model changed (`analytics::fingerprint`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE rollup_pair_days (LIKE rollup_days INCLUDING ALL);
                 CREATE TABLE rollup_triple_days (LIKE rollup_days INCLUDING ALL);
                 WITH moved AS (
                     DELETE FROM rollup_days WHERE strpos(dimension, E'\\x1f') > 0 RETURNING *
                 )
                 INSERT INTO rollup_pair_days SELECT * FROM moved;",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO rollup_days SELECT * FROM rollup_pair_days;
                 DROP TABLE rollup_pair_days, rollup_triple_days;",
            )
            .await?;
        Ok(())
    }
}
