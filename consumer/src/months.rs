//! The monthly partitions of `raw_events` (by `received_at`, UTC): created before a batch
//! stores an event of a month that has none, and ahead for this month and the next; with
//! `analytics.raw_retention_months`, months older than that are dropped whole, and
//! `raw_retention.kept_from` says from when the raw events are all kept. Visits and rollups
//! are never dropped: they go on answering for every month.
//!
//! Creating and dropping take a transaction-level advisory lock, so consumers racing to create
//! the same month do it once; each statement waits at most `LOCK_WAIT` for the table, so a
//! long dashboard query delays a drop to the next pass instead of holding up the batches.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Datelike, Months as MonthSpan, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};

/// The advisory lock key of partition changes ("kafka_ev" in ASCII).
const MONTHS_LOCK: i64 = 0x6b61_666b_615f_6576;
const LOCK_WAIT: &str = "SET LOCAL lock_timeout = '5s'";

/// The first day of the month of `at` (UTC).
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    let day = at.date_naive();
    day.with_day(1).unwrap_or(day)
}

fn name_of(month: NaiveDate) -> String {
    format!("raw_events_y{:04}m{:02}", month.year(), month.month())
}

fn month_named(name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix("raw_events_y")?;
    let (year, month) = rest.split_once('m')?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

fn next(month: NaiveDate) -> NaiveDate {
    month.checked_add_months(MonthSpan::new(1)).unwrap_or(month)
}

/// The months this process knows have a partition.
#[derive(Default)]
pub struct Months {
    known: Mutex<HashSet<NaiveDate>>,
}

impl Months {
    /// Makes sure each month has its partition, creating those that have none.
    pub async fn ensure(
        &self,
        db: &DatabaseConnection,
        months: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<(), DbErr> {
        let missing: Vec<NaiveDate> = {
            let known = self
                .known
                .lock()
                .map_err(|_| DbErr::Custom("months".into()))?;
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        for month in missing {
            create(db, month).await?;
            if let Ok(mut known) = self.known.lock() {
                known.insert(month);
            }
        }
        Ok(())
    }

    /// Forgets what it knew: another consumer may have dropped a month.
    pub fn forget(&self) {
        if let Ok(mut known) = self.known.lock() {
            known.clear();
        }
    }
}

/// A transaction holding the lock of partition changes, whose statements wait `LOCK_WAIT` at
/// most for a table.
async fn locked(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared(LOCK_WAIT).await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [MONTHS_LOCK.into()],
    ))
    .await?;
    Ok(txn)
}

async fn create(db: &DatabaseConnection, month: NaiveDate) -> Result<(), DbErr> {
    let txn = locked(db).await?;
    txn.execute_unprepared(&format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF raw_events \
         FOR VALUES FROM ('{month} 00:00:00+00') TO ('{} 00:00:00+00')",
        name_of(month),
        next(month)
    ))
    .await?;
    txn.commit().await
}

/// Whether an error is an insert into a month without a partition.
pub fn is_missing_month(e: &DbErr) -> bool {
    e.to_string().contains("no partition of relation")
}

/// The months that have a partition, oldest first.
pub async fn stored_months<C: ConnectionTrait>(db: &C) -> Result<Vec<NaiveDate>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'raw_events'::regclass",
        ))
        .await?;
    let mut months: Vec<NaiveDate> = rows
        .iter()
        .filter_map(|row| month_named(&row.try_get::<String>("", "name").ok()?))
        .collect();
    months.sort();
    Ok(months)
}

/// The first month kept when `keep` months before this one are kept (0: every month).
pub fn kept_from(today: NaiveDate, keep: u32) -> Option<NaiveDate> {
    let this = today.with_day(1)?;
    (keep > 0).then(|| this.checked_sub_months(MonthSpan::new(keep)))?
}

/// Drops the partitions of months before `from`, and records that raw events are kept from
/// there on. Returns the months dropped.
pub async fn drop_before(
    db: &DatabaseConnection,
    months: &Months,
    from: NaiveDate,
) -> Result<Vec<NaiveDate>, DbErr> {
    let txn = locked(db).await?;
    let old: Vec<NaiveDate> = stored_months(&txn)
        .await?
        .into_iter()
        .filter(|m| *m < from)
        .collect();
    for month in &old {
        txn.execute_unprepared(&format!("DROP TABLE {}", name_of(*month)))
            .await?;
    }
    if !old.is_empty() {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO raw_retention (kept_from) VALUES ($1) ON CONFLICT (only_row) \
             DO UPDATE SET kept_from = greatest(raw_retention.kept_from, excluded.kept_from)",
            [from.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).into()],
        ))
        .await?;
    }
    txn.commit().await?;
    months.forget();
    Ok(old)
}

/// From when raw events are all kept, if a month was ever dropped.
pub async fn raw_kept_from<C: ConnectionTrait>(db: &C) -> Result<Option<DateTime<Utc>>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT kept_from FROM raw_retention",
        ))
        .await?;
    row.map(|r| r.try_get("", "kept_from")).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a day")
    }

    #[test]
    fn a_months_partition_is_named_and_read_back() {
        assert_eq!(name_of(day(2026, 1, 1)), "raw_events_y2026m01");
        assert_eq!(month_named("raw_events_y2026m01"), Some(day(2026, 1, 1)));
        assert_eq!(month_named("raw_events_unpartitioned"), None);
        assert_eq!(next(day(2026, 12, 1)), day(2027, 1, 1));
    }

    #[test]
    fn keeping_n_months_keeps_this_one_and_the_n_before() {
        assert_eq!(kept_from(day(2026, 12, 2), 0), None);
        assert_eq!(kept_from(day(2026, 12, 2), 1), Some(day(2026, 11, 1)));
        assert_eq!(kept_from(day(2026, 3, 31), 13), Some(day(2025, 2, 1)));
    }
}
