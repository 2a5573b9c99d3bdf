//! `kafka_events` partitioned by month of `received_at` (UTC), so that a month of raw events is
//! dropped whole (`analytics.raw_retention_months`) instead of deleted row by row. The rows move
//! to monthly partitions named `kafka_events_yYYYYmMM`; the consumer creates the partition of
//! each month it stores before it stores it (`consumer::months`). The columns stay as they were:
//! `SELECT * FROM kafka_events` reads as before. The primary key becomes `(id, received_at)`,
//! as a partitioned table's must hold its partition key; a redelivered record has both.
//!
//! `raw_retention` records the first instant whose raw events are all kept, once a month has
//! been dropped: what is before it lives on in the visits and rollups only.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE kafka_events RENAME TO kafka_events_unpartitioned;
ALTER INDEX kafka_events_pkey RENAME TO kafka_events_unpartitioned_pkey;
ALTER INDEX idx_kafka_events_received_at RENAME TO idx_kafka_events_unpartitioned_received_at;
ALTER INDEX idx_kafka_events_path_received_at RENAME TO idx_kafka_events_unpartitioned_path_received_at;
ALTER INDEX idx_kafka_events_events_and_reports RENAME TO idx_kafka_events_unpartitioned_events_and_reports;
CREATE TABLE kafka_events (LIKE kafka_events_unpartitioned INCLUDING DEFAULTS)
    PARTITION BY RANGE (received_at);
DO $$
DECLARE month timestamptz;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', received_at, 'UTC') FROM kafka_events_unpartitioned
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF kafka_events FOR VALUES FROM (%L) TO (%L)',
            'kafka_events_' || to_char(month AT TIME ZONE 'UTC', '"y"YYYY"m"MM'),
            month, month + interval '1 month');
    END LOOP;
END $$;
INSERT INTO kafka_events SELECT * FROM kafka_events_unpartitioned;
DROP TABLE kafka_events_unpartitioned;
ALTER TABLE kafka_events ADD PRIMARY KEY (id, received_at);
CREATE INDEX idx_kafka_events_received_at ON kafka_events (received_at);
CREATE INDEX idx_kafka_events_path_received_at ON kafka_events (path, received_at);
CREATE INDEX idx_kafka_events_events_and_reports ON kafka_events (site, received_at)
    WHERE event_type IN ('CUSTOM_EVENT', 'ENGAGEMENT');
CREATE TABLE raw_retention (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    kept_from timestamptz NOT NULL
);
"#;

const DOWN: &str = r#"
DROP TABLE raw_retention;
ALTER TABLE kafka_events RENAME TO kafka_events_partitioned;
CREATE TABLE kafka_events (LIKE kafka_events_partitioned INCLUDING DEFAULTS);
INSERT INTO kafka_events SELECT * FROM kafka_events_partitioned;
DROP TABLE kafka_events_partitioned;
ALTER TABLE kafka_events ADD PRIMARY KEY (id);
CREATE INDEX idx_kafka_events_received_at ON kafka_events (received_at);
CREATE INDEX idx_kafka_events_path_received_at ON kafka_events (path, received_at);
CREATE INDEX idx_kafka_events_events_and_reports ON kafka_events (site, received_at)
    WHERE event_type IN ('CUSTOM_EVENT', 'ENGAGEMENT');
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
