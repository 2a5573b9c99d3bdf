//! Three columns of `raw_events` store their usual value as NULL: `event_type` 'PAGE_VIEW'
//! (most rows), `search` and `user_id` '' (the tracker sends no user id, and most pages no
//! query). A row has a null bitmap already, so a NULL costs nothing where 'PAGE_VIEW' took 10
//! bytes and '' one: a page view's row shrinks by 8 bytes or 16 as it is padded to a multiple
//! of 8. The view `kafka_events` reads them back (`read_raw`), so it answers as before.
//!
//! The partial index of custom events and engagement reports is unchanged: it names those two
//! types, and NULL is neither. What reads `raw_events` itself by type reads it through
//! `read_raw` too (the rebuild), or names a type other than the page views' (the dashboard's
//! custom events and engagement reports, which then keep that index).
//!
//! The rows of an existing database are rewritten in place by `ALTER COLUMN … TYPE … USING`
//! (one pass, no dead rows left behind).

use sea_orm_migration::prelude::*;

use crate::m20261202_000021_store_repeated_texts_once::view_sql_reading;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each column stored as NULL when it holds its usual value, with that value (a plain SQL
/// literal: no quote in it).
pub const USUAL_VALUES: [(&str, &str); 3] =
    [("event_type", "PAGE_VIEW"), ("search", ""), ("user_id", "")];

/// The value a column of `raw_events` stores as NULL, if it is one of `USUAL_VALUES`.
pub fn usual_value(column: &str) -> Option<&'static str> {
    let (_, usual) = USUAL_VALUES.iter().find(|(c, _)| *c == column)?;
    Some(usual)
}

/// How a column of `raw_events` `alias` reads: its usual value where it is NULL.
pub fn read_raw(alias: &str, column: &str) -> String {
    match usual_value(column) {
        Some(usual) => format!("coalesce({alias}.\"{column}\", '{usual}')"),
        None => format!("{alias}.\"{column}\""),
    }
}

/// One `ALTER TABLE raw_events` changing each column of `USUAL_VALUES` by `change(column, usual)`.
fn alter_sql(change: impl Fn(&str, &str) -> String) -> String {
    let changes: Vec<String> = USUAL_VALUES
        .iter()
        .map(|(c, usual)| format!("ALTER COLUMN \"{c}\" {}", change(c, usual)))
        .collect();
    format!("ALTER TABLE raw_events {};", changes.join(", "))
}

fn up_sql() -> String {
    format!(
        "DROP VIEW kafka_events;
         {}
         {}
         {};",
        alter_sql(|_, _| "DROP NOT NULL".to_owned()),
        alter_sql(|c, usual| format!("TYPE text USING nullif(\"{c}\", '{usual}')")),
        view_sql_reading(|c| read_raw("e", c)),
    )
}

fn down_sql() -> String {
    format!(
        "DROP VIEW kafka_events;
         {}
         {}
         {};",
        alter_sql(|c, usual| format!("TYPE text USING coalesce(\"{c}\", '{usual}')")),
        alter_sql(|_, _| "SET NOT NULL".to_owned()),
        crate::m20261202_000021_store_repeated_texts_once::view_sql(),
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&up_sql())
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&down_sql())
            .await?;
        Ok(())
    }
}
