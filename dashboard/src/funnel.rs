//! Funnels: 2 to 8 goals completed in order within one visit (other hits may come between
//! steps: ordered, not consecutive). A visit reaches step k when it completed step k's goal
//! after the earliest time it reached step k-1; taking the earliest completion of each step is
//! what lets the most visits through, so every count is exact. Visitors count as everywhere
//! else: distinct per local day.

use async_graphql::{InputObject, SimpleObject};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use crate::stats::{DateRange, Filter};

#[derive(InputObject, Debug, Clone)]
pub struct FunnelQuery {
    pub site: String,
    pub date_range: DateRange,
    /// Goal names, in order.
    pub steps: Vec<String>,
    /// As in `stats`: they narrow the visits that enter the funnel.
    #[graphql(default)]
    pub filters: Vec<Filter>,
}

#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct FunnelStep {
    pub goal: String,
    pub visitors: i64,
    /// Visitors of this step in percent of the first step's, one decimal.
    pub conversion_rate: f64,
    /// Visitors of the step before who did not reach this one (0 for the first step).
    pub drop_off: i64,
    /// `dropOff` in percent of the step before, one decimal.
    pub drop_off_rate: f64,
}

#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Funnel {
    pub steps: Vec<FunnelStep>,
}

fn percent(part: i64, of: i64) -> f64 {
    match of {
        0 => 0.0,
        of => (part as f64 * 1000.0 / of as f64).round() / 10.0,
    }
}

/// The visitors reaching each step: `$1` the site, `$2`/`$3` the days, then one goal id per
/// step; `entering` narrows the visits of the first step (a condition over `v`).
pub fn sql(steps: usize, entering: &str) -> String {
    let mut ctes = Vec::with_capacity(steps);
    for k in 1..=steps {
        let goal = 3 + k;
        let after = match k {
            1 => format!(
                "JOIN visits v ON v.id = c.visit_id AND {entering} \
                 WHERE c.site = $1 AND c.day BETWEEN $2 AND $3 AND c.goal_id = ${goal}"
            ),
            _ => format!(
                "JOIN s{p} p ON p.visit_id = c.visit_id AND (c.at, c.event_id) > (p.at, p.event_id) \
                 WHERE c.site = $1 AND c.day BETWEEN $2 AND $3 AND c.goal_id = ${goal}",
                p = k - 1
            ),
        };
        ctes.push(format!(
            "s{k} AS (SELECT DISTINCT ON (c.visit_id) c.visit_id, c.day, c.visitor, c.at, c.event_id \
             FROM conversions c {after} ORDER BY c.visit_id, c.at, c.event_id)"
        ));
    }
    let counts: Vec<String> = (1..=steps)
        .map(|k| format!("(SELECT count(DISTINCT (day, visitor)) FROM s{k})::bigint AS n{k}"))
        .collect();
    format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", "))
}

/// Runs a funnel whose steps are goal ids (named `names`).
pub async fn run<C: ConnectionTrait>(
    db: &C,
    names: &[String],
    values: Vec<Value>,
    entering: &str,
) -> Result<Funnel, DbErr> {
    let sql = sql(names.len(), entering);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("funnel".into()))?;
    let mut reached = Vec::with_capacity(names.len());
    for k in 1..=names.len() {
        reached.push(row.try_get::<i64>("", &format!("n{k}"))?);
    }
    let first = reached.first().copied().unwrap_or(0);
    let steps = names
        .iter()
        .zip(&reached)
        .enumerate()
        .map(|(i, (goal, &visitors))| {
            let before = if i == 0 { visitors } else { reached[i - 1] };
            FunnelStep {
                goal: goal.clone(),
                visitors,
                conversion_rate: percent(visitors, first),
                drop_off: before - visitors,
                drop_off_rate: percent(before - visitors, before),
            }
        })
        .collect();
    Ok(Funnel { steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_starts_after_the_earliest_completion_of_the_step_before() {
        let sql = sql(3, "true");
        assert!(sql.contains("s2 AS (SELECT DISTINCT ON (c.visit_id)"));
        assert!(sql.contains(
            "JOIN s2 p ON p.visit_id = c.visit_id AND (c.at, c.event_id) > (p.at, p.event_id)"
        ));
        assert!(sql.contains("c.goal_id = $6"));
        assert!(sql.ends_with("(SELECT count(DISTINCT (day, visitor)) FROM s3)::bigint AS n3"));
        assert_eq!(percent(1, 2), 50.0);
        assert_eq!(percent(2, 3), 66.7);
        assert_eq!(percent(1, 0), 0.0);
    }
}
