//! `sites`: the registry of the sites that count. Only a registered site's events reach visits,
//! rollups and the dashboard; events of other sites are stored all the same, so registering a
//! site later counts its past (the consumer does, in the background, while `counted_at` is
//! NULL). `time_zone` NULL means the zone the settings give the site (`analytics.time_zone`,
//! `analytics.site_time_zones`), which is how the sites counted before the registry existed are
//! registered here, counted already.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE sites (
    domain text PRIMARY KEY,
    time_zone text,
    created_at timestamptz NOT NULL DEFAULT now(),
    counted_at timestamptz
);
INSERT INTO sites (domain, counted_at) SELECT DISTINCT site, now() FROM visits;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE sites")
            .await?;
        Ok(())
    }
}
