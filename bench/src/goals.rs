//! Scenario 5, continued: goals, custom events and a funnel over the dashboard's seeded events
//! (10 % of the hits are custom events with a property). Creates 5 goals through the Stats API
//! (each backfilled over every stored event: timed), then times the goals panel, the custom
//! events panel, a property breakdown and a 4-step funnel over the same 30 days through the
//! HTTP API, and checks each against the same answer computed from the raw events here
//! (written apart from the goal rule's SQL; the funnel walked in Rust).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Default, Serialize)]
pub struct GoalsResults {
    pub custom_events: i64,
    pub goals: usize,
    /// Creating the 5 goals, each counting the conversions of every stored event.
    pub backfill_seconds: f64,
    pub slowest_backfill_seconds: f64,
    /// p95 of each panel through the HTTP API, in ms.
    pub p95_ms: Vec<(String, f64)>,
    /// The same answers from the raw events, once each, in ms.
    pub raw_ms: f64,
    pub equal: bool,
}

/// The 5 goals: two page goals and three event goals, one narrowed by a property. Each with the
/// raw-events condition that says the same thing, written by hand.
fn goals() -> [(Value, &'static str); 5] {
    [
        (
            json!({"name": "Pricing", "page": "/p/5"}),
            "event_type = 'PAGE_VIEW' AND path = '/p/5'",
        ),
        (
            json!({"name": "Docs", "page": "/p/4*"}),
            "event_type = 'PAGE_VIEW' AND path ~ '^/p/4[^/]*$'",
        ),
        (
            json!({"name": "Cart", "event": "Add to cart"}),
            "event_type = 'CUSTOM_EVENT' AND name = 'Add to cart'",
        ),
        (
            json!({"name": "Signup", "event": "Signup"}),
            "event_type = 'CUSTOM_EVENT' AND name = 'Signup'",
        ),
        (
            json!({"name": "Pro signup", "event": "Signup", "properties": [{"key": "plan", "value": "pro"}]}),
            "event_type = 'CUSTOM_EVENT' AND name = 'Signup' AND props->0->>'value' = 'pro'",
        ),
    ]
}

const FUNNEL: [&str; 4] = ["Docs", "Cart", "Signup", "Pro signup"];

async fn post(http: &reqwest::Client, base: &str, query: &str, variables: Value) -> Result<Value> {
    let body: Value = http
        .post(format!("{base}/query"))
        .bearer_auth(testkit::ADMIN_TOKEN)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .json()
        .await?;
    if !body["errors"].is_null() {
        bail!("the Stats API refused {variables}: {}", body["errors"]);
    }
    Ok(body["data"].clone())
}

const STATS: &str =
    "query($q: StatsQuery!) { stats(query: $q) { results { dimensions metrics } } }";
const FUNNEL_QUERY: &str =
    "query($q: FunnelQuery!) { funnel(query: $q) { steps { goal visitors } } }";

/// The panels timed: name, GraphQL query, variables.
fn panels(site: &str, from: NaiveDate, to: NaiveDate) -> Vec<(&'static str, &'static str, Value)> {
    let range = json!({"from": from.to_string(), "to": to.to_string()});
    let stats = |extra: Value| {
        let mut q = json!({"site": site, "dateRange": range, "limit": 10});
        if let (Some(q), Some(extra)) = (q.as_object_mut(), extra.as_object()) {
            q.extend(extra.clone());
        }
        json!({"q": q})
    };
    vec![
        (
            "goals",
            STATS,
            stats(
                json!({"metrics": ["CONVERSIONS", "CONVERSION_RATE", "EVENTS"], "dimensions": ["GOAL"]}),
            ),
        ),
        (
            "custom events",
            STATS,
            stats(json!({"metrics": ["VISITORS", "EVENTS"], "dimensions": ["EVENT_NAME"]})),
        ),
        (
            "property plan",
            STATS,
            stats(
                json!({"metrics": ["VISITORS", "EVENTS"], "dimensions": ["PROPERTY"], "property": "plan"}),
            ),
        ),
        (
            "4-step funnel",
            FUNNEL_QUERY,
            json!({"q": {"site": site, "dateRange": range, "steps": FUNNEL}}),
        ),
    ]
}

/// The API's answer as comparable rows: key → numbers.
fn rows_of(name: &str, data: &Value) -> Result<HashMap<String, Vec<f64>>> {
    let mut out = HashMap::new();
    if name == "4-step funnel" {
        for step in data["funnel"]["steps"].as_array().context("steps")? {
            let goal = step["goal"].as_str().unwrap_or("").to_owned();
            out.insert(goal, vec![step["visitors"].as_f64().unwrap_or(f64::NAN)]);
        }
        return Ok(out);
    }
    for row in data["stats"]["results"].as_array().context("results")? {
        let key = row["dimensions"][0].as_str().unwrap_or("").to_owned();
        let metrics = row["metrics"].as_array().context("metrics")?;
        out.insert(
            key,
            metrics
                .iter()
                .map(|m| m.as_f64().unwrap_or(f64::NAN))
                .collect(),
        );
    }
    Ok(out)
}

async fn rows(
    db: &DatabaseConnection,
    sql: &str,
    site: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<sea_orm::QueryResult>> {
    Ok(db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [site.into(), from.into(), to.into()],
        ))
        .await?)
}

/// The raw events of the site and days, bots aside.
const RANGE: &str = "site = $1 AND NOT is_bot \
     AND received_at >= ($2::date)::timestamp AT TIME ZONE 'UTC' \
     AND received_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'";
const VISITOR_DAY: &str = "((received_at AT TIME ZONE 'UTC')::date, visitor_id)";

fn rate(part: i64, of: i64) -> f64 {
    if of == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / of as f64).round() / 10.0
    }
}

/// Each panel's answer from the raw events.
async fn raw(
    db: &DatabaseConnection,
    site: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<&'static str, HashMap<String, Vec<f64>>>> {
    let mut out = HashMap::new();
    let all = format!(
        "SELECT count(DISTINCT {VISITOR_DAY}) AS n FROM kafka_events WHERE {RANGE} \
         AND event_type IN ('PAGE_VIEW', 'CUSTOM_EVENT')"
    );
    let visitors: i64 = rows(db, &all, site, from, to).await?[0].try_get("", "n")?;
    let mut goals = HashMap::new();
    for (goal, condition) in goals_conditions() {
        let sql = format!(
            "SELECT count(DISTINCT {VISITOR_DAY}) AS c, count(*) AS n FROM kafka_events \
             WHERE {RANGE} AND {condition}"
        );
        let row = &rows(db, &sql, site, from, to).await?[0];
        let (c, n): (i64, i64) = (row.try_get("", "c")?, row.try_get("", "n")?);
        if n > 0 {
            goals.insert(goal, vec![c as f64, rate(c, visitors), n as f64]);
        }
    }
    out.insert("goals", top(goals, 10));
    for (panel, key) in [
        ("custom events", "name"),
        ("property plan", "props->0->>'value'"),
    ] {
        let sql = format!(
            "SELECT {key} AS k, count(DISTINCT {VISITOR_DAY}) AS c, count(*) AS n FROM kafka_events \
             WHERE {RANGE} AND event_type = 'CUSTOM_EVENT' GROUP BY 1"
        );
        let mut answer = HashMap::new();
        for row in rows(db, &sql, site, from, to).await? {
            let (c, n): (i64, i64) = (row.try_get("", "c")?, row.try_get("", "n")?);
            answer.insert(row.try_get::<String>("", "k")?, vec![c as f64, n as f64]);
        }
        out.insert(panel, top(answer, 10));
    }
    out.insert("4-step funnel", raw_funnel(db, site, from, to).await?);
    Ok(out)
}

fn goals_conditions() -> Vec<(String, &'static str)> {
    goals()
        .into_iter()
        .map(|(g, c)| (g["name"].as_str().unwrap_or("").to_owned(), c))
        .collect()
}

/// The first `n` rows by the first metric (ties by key), as the API orders and limits them.
fn top(answer: HashMap<String, Vec<f64>>, n: usize) -> HashMap<String, Vec<f64>> {
    let mut rows: Vec<(String, Vec<f64>)> = answer.into_iter().collect();
    rows.sort_by(|a, b| b.1[0].total_cmp(&a.1[0]).then_with(|| a.0.cmp(&b.0)));
    rows.into_iter().take(n).collect()
}

/// The funnel walked in Rust over the raw events' visits (sessions by the anchor's window
/// functions): in each visit, in receive order, each step after the one before.
async fn raw_funnel(
    db: &DatabaseConnection,
    site: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<String, Vec<f64>>> {
    let conditions = goals_conditions();
    let step_of: Vec<String> = FUNNEL
        .iter()
        .map(|step| {
            let condition = conditions
                .iter()
                .find(|(g, _)| g == step)
                .map_or("false", |(_, c)| *c);
            format!("({condition})")
        })
        .collect();
    let flags: Vec<String> = step_of
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} AS s{i}"))
        .collect();
    let sql = format!(
        "{} SELECT visitor_id, day, visit_no, {} FROM n WHERE {} \
         ORDER BY visitor_id, day, visit_no, received_at, \"offset\"",
        crate::dashboard::raw_visits(),
        flags.join(", "),
        step_of.join(" OR ")
    );
    let mut reached: Vec<HashSet<(NaiveDate, i64)>> = vec![HashSet::new(); FUNNEL.len()];
    let mut current: Option<(i64, NaiveDate, i64)> = None;
    let mut next_step = 0;
    for row in rows(db, &sql, site, from, to).await? {
        let visit: (i64, NaiveDate, i64) = (
            row.try_get("", "visitor_id")?,
            row.try_get("", "day")?,
            row.try_get("", "visit_no")?,
        );
        if current != Some(visit) {
            current = Some(visit);
            next_step = 0;
        }
        if next_step < FUNNEL.len() && row.try_get::<bool>("", &format!("s{next_step}"))? {
            reached[next_step].insert((visit.1, visit.0));
            next_step += 1;
        }
    }
    Ok(FUNNEL
        .iter()
        .zip(reached)
        .map(|(goal, r)| ((*goal).to_owned(), vec![r.len() as f64]))
        .collect())
}

pub async fn run(
    db: &DatabaseConnection,
    base: &str,
    site: &str,
    (from, to): (NaiveDate, NaiveDate),
    rounds: usize,
) -> Result<GoalsResults> {
    let http = reqwest::Client::new();
    let mut r = GoalsResults::default();
    let custom = "SELECT count(*) AS n FROM kafka_events WHERE event_type = 'CUSTOM_EVENT'";
    r.custom_events = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, custom))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);

    crate::say("5. goals: creating 5 goals, each backfilled over every stored event");
    let create =
        "mutation($s: String!, $g: GoalInput!) { createGoal(site: $s, goal: $g) { name } }";
    let started = Instant::now();
    for (goal, _) in goals() {
        let one = Instant::now();
        post(&http, base, create, json!({"s": site, "g": goal})).await?;
        r.slowest_backfill_seconds = r.slowest_backfill_seconds.max(one.elapsed().as_secs_f64());
        r.goals += 1;
    }
    r.backfill_seconds = started.elapsed().as_secs_f64();
    db.execute_unprepared("VACUUM ANALYZE conversions, goals")
        .await?;

    crate::say("5. goals: the goals, events, property and funnel panels through the Stats API");
    let panels = panels(site, from, to);
    let mut times: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut answers = HashMap::new();
    for round in 0..rounds + 2 {
        for (name, query, variables) in &panels {
            let one = Instant::now();
            let data = post(&http, base, query, variables.clone()).await?;
            if round >= 2 {
                times.entry(name).or_default().push(one.elapsed());
            }
            answers.insert(*name, data);
        }
    }
    for (name, _, _) in &panels {
        let mut t = times.remove(name).unwrap_or_default();
        t.sort();
        let p95 = t
            .get(((t.len().max(1) - 1) as f64 * 0.95).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        r.p95_ms.push(((*name).to_owned(), p95));
    }

    crate::say("5. goals: the same answers from the raw events");
    let started = Instant::now();
    let expected = raw(db, site, from, to).await?;
    r.raw_ms = started.elapsed().as_secs_f64() * 1000.0;
    r.equal = true;
    for (name, _, _) in &panels {
        let got = rows_of(name, &answers[name])?;
        let want = expected.get(name).cloned().unwrap_or_default();
        if got != want || got.is_empty() {
            crate::say(&format!(
                "5. goals: {name} differs: the API says {got:?}, the raw events {want:?}"
            ));
            r.equal = false;
        }
    }
    Ok(r)
}
