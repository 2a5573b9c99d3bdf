//! Custom events in visits and rollups, goals and their conversions.
//!
//! - `visits` gains each visit's custom events (in all, per name, per property value) and the
//!   rollups an `events` count.
//! - `kafka_events.visit_id`: the visit each hit was placed in (NULL for bots, for events of
//!   other topics and for rows stored before). Custom events and engagement reports are
//!   indexed by site and time.
//! - `goals`: per site, a custom event's name (with properties it must carry) or a page path
//!   pattern, kept with the regular expression the pattern means.
//! - `conversions`: one row per stored hit that completed a goal, in the visit it was placed
//!   in; the consumer writes them in the transaction that stores the hit, and a goal's
//!   creation writes those of the events stored before it. `goal_days`: per goal and day, the
//!   visitors and visits that converted and the completions, kept with the conversions.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
ALTER TABLE kafka_events ADD COLUMN visit_id uuid;
CREATE INDEX idx_kafka_events_events_and_reports ON kafka_events (site, received_at)
    WHERE event_type IN ('CUSTOM_EVENT', 'ENGAGEMENT');
ALTER TABLE visits ADD COLUMN events integer NOT NULL DEFAULT 0,
    ADD COLUMN event_names jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN props jsonb NOT NULL DEFAULT '{}';
ALTER TABLE rollup_days ADD COLUMN events bigint NOT NULL DEFAULT 0;
ALTER TABLE rollup_hours ADD COLUMN events bigint NOT NULL DEFAULT 0;
CREATE TABLE goals (
    id serial PRIMARY KEY,
    site text NOT NULL,
    name text NOT NULL,
    event text,
    page text,
    page_regex text,
    properties jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site, name)
);
CREATE TABLE conversions (
    goal_id integer NOT NULL REFERENCES goals (id) ON DELETE CASCADE,
    site text NOT NULL,
    day date NOT NULL,
    visitor bigint NOT NULL,
    visit_id uuid NOT NULL,
    at timestamptz NOT NULL,
    event_id uuid NOT NULL,
    PRIMARY KEY (goal_id, event_id)
);
-- The goal's rows by day (funnels read them from the index alone), and whether a visitor or a
-- visit converted before (the conversions' statement).
CREATE INDEX idx_conversions_goal_day_visitor ON conversions (goal_id, day, visitor, visit_id)
    INCLUDE (at, event_id);
CREATE TABLE goal_days (
    goal_id integer NOT NULL REFERENCES goals (id) ON DELETE CASCADE,
    day date NOT NULL,
    visitors bigint NOT NULL,
    visits bigint NOT NULL,
    completions bigint NOT NULL,
    PRIMARY KEY (goal_id, day)
);
";

const DOWN: &str = "
DROP TABLE goal_days;
DROP TABLE conversions;
DROP TABLE goals;
ALTER TABLE rollup_hours DROP COLUMN events;
ALTER TABLE rollup_days DROP COLUMN events;
ALTER TABLE visits DROP COLUMN events, DROP COLUMN event_names, DROP COLUMN props;
DROP INDEX idx_kafka_events_events_and_reports;
ALTER TABLE kafka_events DROP COLUMN visit_id;
";

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
