//! Engagement reports get their own stored event type, `ENGAGEMENT`, so that the tutorial's
//! `SELECT count(*) FROM kafka_events WHERE event_type = 'PAGE_VIEW'` counts page views only
//! (the rows stored before were `PAGE_VIEW` with `engaged_ms` set). The consumer stores new
//! reports this way; this fixes the rows already there, of the default page-view type (an
//! installation with another `analytics.page_view_type` keeps its rows as they are, and they
//! still count as reports). Visits and rollups do not change: they already told the two apart
//! by `engaged_ms`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE kafka_events SET event_type = 'ENGAGEMENT' \
                 WHERE engaged_ms IS NOT NULL AND event_type = 'PAGE_VIEW'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Reports were produced as page views of the default page-view type.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE kafka_events SET event_type = 'PAGE_VIEW' WHERE event_type = 'ENGAGEMENT'",
            )
            .await?;
        Ok(())
    }
}
