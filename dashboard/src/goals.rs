//! Goals of a site: creating one (and counting the conversions already stored: the backfill),
//! deleting one, listing them; and funnels over them. What a goal is and which hits complete
//! it is `analytics::goal`; this file keeps them in `goals` and reads `conversions`.
//!
//! The backfill runs in the transaction that creates the goal, under the goals lock taken
//! exclusively: batches stored before it are all visible to it, batches stored after it see
//! the goal. `createGoal` answers once the past is counted; until then the goal is not listed
//! and queries naming it answer `UNKNOWN_GOAL`.

use analytics::goal::{Goal, Target, GOALS_LOCK, MAX_GOALS_PER_SITE};
use async_graphql::{InputObject, SimpleObject};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value,
};

/// A property a goal's event must carry.
#[derive(InputObject, SimpleObject, Debug, Clone, PartialEq, Eq)]
#[graphql(input_name = "GoalPropertyInput")]
pub struct GoalProperty {
    pub key: String,
    pub value: String,
}

/// A goal as the API takes it: a name, and either an event (with properties) or a page pattern.
#[derive(InputObject, Debug, Clone)]
pub struct GoalInput {
    pub name: String,
    pub event: Option<String>,
    /// A path pattern: `*` within a segment, `**` across segments.
    pub page: Option<String>,
    #[graphql(default)]
    pub properties: Vec<GoalProperty>,
}

impl GoalInput {
    pub fn checked(&self) -> Result<Goal, analytics::goal::GoalError> {
        let properties: Vec<(String, String)> = self
            .properties
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        Goal::new(
            &self.name,
            self.event.as_deref(),
            self.page.as_deref(),
            &properties,
        )
    }
}

/// A goal as the API shows it.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
#[graphql(name = "Goal")]
pub struct GoalInfo {
    pub name: String,
    pub event: Option<String>,
    pub page: Option<String>,
    pub properties: Vec<GoalProperty>,
}

impl GoalInfo {
    /// A checked goal as it is stored and listed.
    pub fn of(goal: &Goal) -> GoalInfo {
        let property = |(key, value): &(String, String)| GoalProperty {
            key: key.clone(),
            value: value.clone(),
        };
        let (event, page, properties) = match &goal.target {
            Target::Event { name, properties } => (
                Some(name.clone()),
                None,
                properties.iter().map(property).collect(),
            ),
            Target::Page { pattern } => (None, Some(pattern.clone()), Vec::new()),
        };
        GoalInfo {
            name: goal.name.clone(),
            event,
            page,
            properties,
        }
    }
}

/// Why a goal change failed.
#[derive(Debug, thiserror::Error)]
pub enum GoalChangeError {
    #[error("{0}")]
    Invalid(#[from] analytics::goal::GoalError),
    #[error("goal.name: {site} already has a goal named {name:?}")]
    Exists { site: String, name: String },
    #[error("site: {0} has {MAX_GOALS_PER_SITE} goals, the limit")]
    TooMany(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

async fn lock_goals<C: ConnectionTrait>(txn: &C) -> Result<(), DbErr> {
    txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({GOALS_LOCK})"))
        .await?;
    Ok(())
}

/// Creates a goal and records the conversions of every event stored before it, in one
/// transaction; returns how many it recorded.
pub async fn create(
    db: &DatabaseConnection,
    site: &str,
    goal: &Goal,
    page_view_type: &str,
) -> Result<u64, GoalChangeError> {
    let txn = db.begin().await?;
    // The backfill reads every stored event: dashboard.statement_timeout_ms bounds queries.
    txn.execute_unprepared("SET LOCAL statement_timeout = 0")
        .await?;
    lock_goals(&txn).await?;
    let count = txn
        .query_one_raw(statement(
            "SELECT count(*) AS n FROM goals WHERE site = $1",
            [site.into()],
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    if count >= MAX_GOALS_PER_SITE as i64 {
        return Err(GoalChangeError::TooMany(site.to_owned()));
    }
    let GoalInfo {
        event,
        page,
        properties,
        ..
    } = GoalInfo::of(goal);
    let properties: Vec<serde_json::Value> = properties
        .into_iter()
        .map(|p| serde_json::json!({"key": p.key, "value": p.value}))
        .collect();
    let inserted = txn
        .query_one_raw(statement(
            "INSERT INTO goals (site, name, event, page, page_regex, properties) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (site, name) DO NOTHING RETURNING id",
            [
                site.into(),
                goal.name.clone().into(),
                event.into(),
                page.into(),
                goal.page_regex().into(),
                serde_json::Value::Array(properties).into(),
            ],
        ))
        .await?;
    let Some(row) = inserted else {
        return Err(GoalChangeError::Exists {
            site: site.to_owned(),
            name: goal.name.clone(),
        });
    };
    let id: i32 = row.try_get("", "id")?;
    let sql = analytics::goal::conversions_sql("g.id = $2 AND e.site = $3");
    let recorded = txn
        .execute_raw(statement(
            &sql,
            [page_view_type.into(), id.into(), site.into()],
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(recorded)
}

/// Deletes a goal and its conversions; whether it existed.
pub async fn delete(db: &DatabaseConnection, site: &str, name: &str) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    lock_goals(&txn).await?;
    let deleted = txn
        .execute_raw(statement(
            "DELETE FROM goals WHERE site = $1 AND name = $2",
            [site.into(), name.trim().into()],
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(deleted > 0)
}

/// The goals of a site, by name.
pub async fn list<C: ConnectionTrait>(db: &C, site: &str) -> Result<Vec<GoalInfo>, DbErr> {
    let rows = db
        .query_all_raw(statement(
            "SELECT name, event, page, properties::text AS properties FROM goals \
             WHERE site = $1 ORDER BY name",
            [site.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let properties: String = row.try_get("", "properties")?;
            let properties: Vec<serde_json::Value> =
                serde_json::from_str(&properties).map_err(|e| DbErr::Json(e.to_string()))?;
            let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
            Ok(GoalInfo {
                name: row.try_get("", "name")?,
                event: row.try_get("", "event")?,
                page: row.try_get("", "page")?,
                properties: properties
                    .iter()
                    .map(|p| GoalProperty {
                        key: text(p, "key"),
                        value: text(p, "value"),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The ids of the named goals of a site, in the order named; `Err` names the first unknown one.
pub async fn ids<C: ConnectionTrait>(
    db: &C,
    site: &str,
    names: &[String],
) -> Result<Result<Vec<i32>, String>, DbErr> {
    // Most queries name no goal: no round trip for them (a dashboard sends sixteen).
    if names.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let rows = db
        .query_all_raw(statement(
            "SELECT id, name FROM goals WHERE site = $1 AND name = ANY($2)",
            [site.into(), names.to_vec().into()],
        ))
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        found.push((
            row.try_get::<String>("", "name")?,
            row.try_get::<i32>("", "id")?,
        ));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match found.iter().find(|(n, _)| n == name) {
            Some((_, id)) => out.push(*id),
            None => return Ok(Err(name.clone())),
        }
    }
    Ok(Ok(out))
}
