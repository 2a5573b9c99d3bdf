//! Pages' engagement: `SCROLL_DEPTH` and `TIME_ON_PAGE` from the engagement reports, each
//! joined to its visit for the query's filters.

use std::collections::HashMap;

use analytics::visit::ENGAGEMENT_EVENT_TYPE;
use analytics::{PageReports, Scope};
use sea_orm::{ConnectionTrait, DbErr, Value};

use crate::engine::{compare, query, stored_events, visit_condition};
use crate::stats::{Checked, Group};

/// Sets on each page's group what its engagement reports say (`PageReports`): per visit and
/// page, the deepest scroll and the engaged time, summed over the visits.
pub async fn attach_page_reports<C: ConnectionTrait>(
    db: &C,
    q: &Checked,
    groups: &mut [Group],
) -> Result<(), DbErr> {
    let mut values: Vec<Value> = vec![q.site.clone().into(), q.from.into(), q.to.into()];
    let mut wheres = stored_events(q, ENGAGEMENT_EVENT_TYPE, &mut values);
    for f in &q.filters {
        wheres.push(match f.dimension.scope() {
            Scope::PageView => compare("x.path", f, &mut values),
            _ => visit_condition(f, &mut values),
        });
    }
    let sql = format!(
        "SELECT page, count(*)::bigint AS visits, sum(scroll)::bigint AS scroll, \
         sum(ms)::bigint AS engaged_ms FROM \
         (SELECT x.path AS page, max(coalesce(x.scroll_depth, 0)) AS scroll, \
          sum(x.engaged_ms) AS ms FROM raw_events x JOIN visits v ON v.id = x.visit_id \
          WHERE {} GROUP BY x.visit_id, x.path) r GROUP BY page",
        wheres.join(" AND ")
    );
    let mut by_page: HashMap<String, PageReports> = HashMap::new();
    for row in query(db, &sql, values).await? {
        by_page.insert(
            row.try_get("", "page")?,
            PageReports {
                visits: row.try_get("", "visits")?,
                scroll: row.try_get("", "scroll")?,
                engaged_ms: row.try_get("", "engaged_ms")?,
            },
        );
    }
    for group in groups {
        if let Some(reports) = group.values.first().and_then(|page| by_page.get(page)) {
            group.reports = *reports;
        }
    }
    Ok(())
}
