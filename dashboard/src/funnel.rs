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
/// step; `entering` narrows the visits of the first step (a condition over `v`, or `None`).
/// Step 1 is every completion of its goal; step k keeps, per visit, the earliest completion
/// after some completion of step k-1 (a semi-join, no sort of the first step's rows).
pub fn sql(steps: usize, entering: Option<&str>) -> String {
    let mut ctes = Vec::with_capacity(steps);
    let range = "c.day BETWEEN $2 AND $3";
    let visits = match entering {
        Some(condition) => {
            format!(" AND c.visit_id IN (SELECT v.id FROM visits v WHERE {condition})")
        }
        None => String::new(),
    };
    ctes.push(format!(
        "s1 AS (SELECT c.visit_id, c.day, c.visitor, c.at, c.event_id FROM conversions c \
         WHERE c.goal_id = $4 AND {range}{visits})"
    ));
    for k in 2..=steps {
        let goal = 3 + k;
        ctes.push(format!(
            "s{k} AS (SELECT DISTINCT ON (c.visit_id) c.visit_id, c.day, c.visitor, c.at, c.event_id \
             FROM conversions c WHERE c.goal_id = ${goal} AND {range} AND EXISTS (SELECT 1 FROM s{p} p \
             WHERE p.visit_id = c.visit_id AND (p.at, p.event_id) < (c.at, c.event_id)) \
             ORDER BY c.visit_id, c.at, c.event_id)",
            p = k - 1
        ));
    }
    let counts: Vec<String> = (1..=steps)
        .map(|k| match (k, entering) {
            // Unfiltered, the first step's visitors are its goal's, kept per day.
            (1, None) => "(SELECT coalesce(sum(visitors), 0) FROM goal_days \
                 WHERE goal_id = $4 AND day BETWEEN $2 AND $3)::bigint AS n1"
                .to_owned(),
            _ => format!(
                "(SELECT count(*) FROM (SELECT DISTINCT day, visitor FROM s{k}) d)::bigint AS n{k}"
            ),
        })
        .collect();
    format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", "))
}

/// Runs a funnel whose steps are goal ids (named `names`).
pub async fn run<C: ConnectionTrait>(
    db: &C,
    names: &[String],
    values: Vec<Value>,
    entering: Option<&str>,
) -> Result<Funnel, DbErr> {
    let sql = sql(names.len(), entering);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            crate::cancel::tagged(&sql),
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
        let sql = sql(3, None);
        assert!(sql.contains("s2 AS (SELECT DISTINCT ON (c.visit_id)"));
        assert!(sql.contains(
            "FROM s2 p WHERE p.visit_id = c.visit_id AND (p.at, p.event_id) < (c.at, c.event_id)"
        ));
        assert!(sql.contains("c.goal_id = $6"));
        assert!(sql.ends_with("FROM (SELECT DISTINCT day, visitor FROM s3) d)::bigint AS n3"));
        assert!(
            sql.contains("FROM goal_days"),
            "unfiltered, step 1 is the goal's visitors"
        );
        let filtered = super::sql(2, Some("v.os = $6"));
        assert!(filtered.contains("c.visit_id IN (SELECT v.id FROM visits v WHERE v.os = $6)"));
        assert!(!filtered.contains("goal_days"));
        assert_eq!(percent(1, 2), 50.0);
        assert_eq!(percent(2, 3), 66.7);
        assert_eq!(percent(1, 0), 0.0);
    }
}
