//! The dashboard's `/metrics` (on `dashboard.metrics_host:metrics_port`): how far the database
//! it reads from is behind, measured when scraped. On a streaming replica that is the time
//! since the last transaction it replayed while it has WAL left to replay (0 once it has
//! replayed all it received), and the bytes received but not replayed; on the primary, 0.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// How long a scrape waits for the database before saying it does not answer.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);

const LAG: &str = "SELECT pg_is_in_recovery() AS replica, \
     CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
          ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS seconds, \
     CASE WHEN pg_is_in_recovery() \
          THEN COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0) \
          ELSE 0 END::float8 AS bytes";

struct Lag {
    replica: bool,
    seconds: f64,
    bytes: f64,
}

async fn lag(db: &DatabaseConnection) -> Option<Lag> {
    let asked = db.query_one_raw(Statement::from_string(DbBackend::Postgres, LAG));
    let row = tokio::time::timeout(ANSWER_WITHIN, asked)
        .await
        .ok()?
        .ok()??;
    Some(Lag {
        replica: row.try_get("", "replica").ok()?,
        seconds: row.try_get("", "seconds").ok()?,
        bytes: row.try_get("", "bytes").ok()?,
    })
}

/// The Prometheus text of the read database's state, then whatever the process recorded.
pub(crate) async fn render(reads: &DatabaseConnection) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    };
    let found = lag(reads).await;
    gauge(
        &mut out,
        "pageviews_dashboard_database_up",
        "Whether the database the Stats API reads from answered this scrape.",
        f64::from(u8::from(found.is_some())),
    );
    if let Some(lag) = found {
        gauge(
            &mut out,
            "pageviews_dashboard_reads_from_replica",
            "Whether the Stats API reads from a streaming replica (dashboard.database_url).",
            f64::from(u8::from(lag.replica)),
        );
        gauge(
            &mut out,
            "pageviews_dashboard_replica_lag_seconds",
            "How far the answers are behind the primary: time since the last replayed transaction while WAL waits to be replayed, else 0.",
            lag.seconds,
        );
        gauge(
            &mut out,
            "pageviews_dashboard_replica_lag_bytes",
            "WAL the replica has received and not yet replayed.",
            lag.bytes,
        );
    }
    out.push_str(&settings::telemetry::render());
    out
}
