//! A Stats request's statements stop when the request does: when its client goes away (actix
//! drops the handler's future) or when it passes `dashboard.request_timeout_ms`.
//!
//! actix-web does not drop a handler whose client left, so [`bounded`] watches for that too
//! (`departure`). Dropping a future stops the Rust side at once, but a statement already sent goes on inside
//! PostgreSQL until it ends or meets `statement_timeout`, holding a connection and a core. So
//! each statement run within [`bounded`] carries its request's tag as a leading SQL comment,
//! and a request dropped unfinished cancels, by that tag, whatever of it is still running.
//! Statements outside a request (the subscription's counts) carry no tag.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use actix_web::HttpRequest;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

tokio::task_local! {
    static REQUEST: Tag;
}

/// One request's mark on its statements: a UUID, so that dashboards sharing a database never
/// cancel each other's.
#[derive(Clone, Copy)]
struct Tag(uuid::Uuid);

impl Tag {
    fn comment(self) -> String {
        format!("/* request {} */ ", self.0.simple())
    }
}

/// `sql`, tagged with the request it runs for, if any.
pub(crate) fn tagged(sql: &str) -> Cow<'_, str> {
    match REQUEST.try_with(|tag| tag.comment()) {
        Ok(comment) => Cow::Owned(comment + sql),
        Err(_) => Cow::Borrowed(sql),
    }
}

/// Why a request ended without its answer.
#[derive(Debug)]
pub(crate) enum Unfinished {
    /// It took longer than `dashboard.request_timeout_ms`.
    PastDeadline,
    /// Its client closed the connection.
    ClientLeft,
}

/// Runs `work` as one request: done within `deadline` and while the client waits, or stopped
/// and its statements cancelled, as they are if this future is dropped.
pub(crate) async fn bounded<F: Future>(
    db: &DatabaseConnection,
    deadline: Duration,
    req: &HttpRequest,
    work: F,
) -> Result<F::Output, Unfinished> {
    let tag = Tag(uuid::Uuid::new_v4());
    let mut guard = CancelOnDrop {
        db: db.clone(),
        tag,
        finished: false,
    };
    let outcome = tokio::select! {
        done = tokio::time::timeout(deadline, REQUEST.scope(tag, work)) => {
            done.map_err(|_| Unfinished::PastDeadline)
        }
        () = crate::departure::client_left(req) => Err(Unfinished::ClientLeft),
    };
    guard.finished = outcome.is_ok();
    outcome
}

struct CancelOnDrop {
    db: DatabaseConnection,
    tag: Tag,
    finished: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (db, tag) = (self.db.clone(), self.tag);
        runtime.spawn(async move { cancel(&db, tag).await });
    }
}

/// Cancels the tagged statements still running. A statement sent just before the drop may not
/// be visible yet, so the search is made once more a moment later.
async fn cancel(db: &DatabaseConnection, tag: Tag) {
    const AGAIN_AFTER: Duration = Duration::from_millis(200);
    let sql = "SELECT count(pg_cancel_backend(pid)) AS n FROM pg_stat_activity \
               WHERE pid <> pg_backend_pid() AND datname = current_database() \
               AND state = 'active' AND starts_with(query, $1)";
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(AGAIN_AFTER).await;
        }
        let statement =
            Statement::from_sql_and_values(DbBackend::Postgres, sql, [tag.comment().into()]);
        match db.query_one_raw(statement).await {
            Ok(row) => {
                let n = row
                    .and_then(|r| r.try_get::<i64>("", "n").ok())
                    .unwrap_or(0);
                if n > 0 {
                    tracing::info!(
                        statements = n,
                        "a request ended unfinished; its statements were cancelled"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not cancel an unfinished request's statements")
            }
        }
    }
}
