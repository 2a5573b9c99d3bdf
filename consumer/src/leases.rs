//! Partition ownership shared through PostgreSQL, so consumer processes need no static
//! "instance i of n" configuration. Each process heartbeats a membership row; the number of
//! live members gives each one its fair share of partitions, which it claims as leases that
//! expire unless renewed. A process that dies stops renewing and its partitions are claimed by
//! the others after at most one lease TTL. All times are the database's `now()`, so the
//! processes' clocks do not matter.
//!
//! Leases only decide who works on what. Correctness does not depend on them: the offset
//! compare-and-set in `store::commit` rejects a batch from a process that lost its partition.

use std::collections::BTreeSet;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use uuid::Uuid;

pub type PartitionKey = (String, i32);

pub struct Leases {
    db: DatabaseConnection,
    owner: Uuid,
    ttl_secs: f64,
}

impl Leases {
    pub fn new(db: DatabaseConnection, owner: Uuid, ttl: Duration) -> Self {
        Leases {
            db,
            owner,
            ttl_secs: ttl.as_secs_f64(),
        }
    }

    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    /// Renews this process's membership and returns the number of live members (itself included).
    pub async fn heartbeat(&self) -> Result<usize, DbErr> {
        self.db
            .execute_raw(self.statement(
                "INSERT INTO consumer_members (owner, started_at, expires_at) \
                 VALUES ($1, now(), now() + make_interval(secs => $2)) \
                 ON CONFLICT (owner) DO UPDATE SET expires_at = EXCLUDED.expires_at",
                vec![self.owner.into(), self.ttl_secs.into()],
            ))
            .await?;
        // Housekeeping: members that died long ago.
        self.db
            .execute_raw(self.statement(
                "DELETE FROM consumer_members WHERE expires_at < now() - interval '1 hour'",
                vec![],
            ))
            .await?;
        let row = self
            .db
            .query_one_raw(self.statement(
                "SELECT count(*) AS live FROM consumer_members WHERE expires_at > now()",
                vec![],
            ))
            .await?;
        let live: i64 = match row {
            Some(row) => row.try_get("", "live")?,
            None => 1,
        };
        Ok(live.max(1) as usize)
    }

    /// Extends every lease this process still holds; returns them. A lease that expired (say,
    /// while the database was unreachable) is not renewed: it may belong to another process now.
    pub async fn renew(&self) -> Result<BTreeSet<PartitionKey>, DbErr> {
        let rows = self
            .db
            .query_all_raw(self.statement(
                "UPDATE partition_leases SET expires_at = now() + make_interval(secs => $2) \
                 WHERE owner = $1 AND expires_at > now() RETURNING topic, partition",
                vec![self.owner.into(), self.ttl_secs.into()],
            ))
            .await?;
        rows.into_iter()
            .map(|row| Ok((row.try_get("", "topic")?, row.try_get("", "partition")?)))
            .collect()
    }

    /// Claims a partition whose lease is free or expired. True when this process now holds it.
    pub async fn try_claim(&self, topic: &str, partition: i32) -> Result<bool, DbErr> {
        let row = self
            .db
            .query_one_raw(self.statement(
                "INSERT INTO partition_leases (topic, partition, owner, expires_at) \
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4)) \
                 ON CONFLICT (topic, partition) DO UPDATE \
                 SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
                 WHERE partition_leases.expires_at <= now() OR partition_leases.owner = EXCLUDED.owner \
                 RETURNING owner",
                vec![
                    topic.into(),
                    partition.into(),
                    self.owner.into(),
                    self.ttl_secs.into(),
                ],
            ))
            .await?;
        Ok(row.is_some())
    }

    /// Gives a partition back (after its worker stopped).
    pub async fn release(&self, topic: &str, partition: i32) -> Result<(), DbErr> {
        self.db
            .execute_raw(self.statement(
                "DELETE FROM partition_leases WHERE topic = $1 AND partition = $2 AND owner = $3",
                vec![topic.into(), partition.into(), self.owner.into()],
            ))
            .await
            .map(drop)
    }

    /// Gives everything back and leaves the membership: the others take over at once.
    pub async fn leave(&self) -> Result<(), DbErr> {
        self.db
            .execute_raw(self.statement(
                "DELETE FROM partition_leases WHERE owner = $1",
                vec![self.owner.into()],
            ))
            .await?;
        self.db
            .execute_raw(self.statement(
                "DELETE FROM consumer_members WHERE owner = $1",
                vec![self.owner.into()],
            ))
            .await
            .map(drop)
    }
}
