//! Goals: what a site counts as a conversion, and the one rule that says which stored hits
//! complete a goal (`conversions_sql`), used alike by the consumer for each batch, by the
//! dashboard when a goal is created (the backfill) and by the rebuild.
//!
//! A goal is a custom event's name, optionally narrowed by up to three property equalities,
//! or a page path pattern: `*` stands for any characters within one path segment, `**` for any
//! characters across segments, and the pattern matches the whole path (`/blog/*` matches
//! `/blog/a` but not `/blog` or `/blog/a/b`).
//!
//! A funnel's steps are goals completed in order within one visit, not necessarily one right
//! after the other (other pages may come between); order is the hits' receive time, their
//! stored id breaking ties.

/// Goals per site at most; and properties narrowing one goal at most.
pub const MAX_GOALS_PER_SITE: usize = 100;
pub const MAX_GOAL_PROPERTIES: usize = 3;
pub const MAX_GOAL_NAME: usize = 120;
pub const MAX_PAGE_PATTERN: usize = 2_000;
/// Wildcards in one page pattern: each is a `.*`-like term every stored page view's path is
/// matched against.
pub const MAX_WILDCARDS: usize = 10;
/// Steps of a funnel.
pub const FUNNEL_STEPS: std::ops::RangeInclusive<usize> = 2..=8;

/// The transaction-scoped advisory lock that orders goal changes against stored batches: each
/// batch's transaction takes it shared before it records conversions, a goal's creation or
/// deletion takes it exclusively. So a batch either sees a new goal or is committed before the
/// goal's backfill reads the stored events: no conversion is missed or counted twice.
pub const GOALS_LOCK: i64 = 0x676f_616c_7300;

/// What completes a goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A custom event of this name, with at least these properties.
    Event {
        name: String,
        properties: Vec<(String, String)>,
    },
    /// A page view whose path matches the pattern.
    Page { pattern: String },
}

/// A goal whose fields were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    pub name: String,
    pub target: Target,
}

/// Why a goal is refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for GoalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for GoalError {}

fn refuse<T>(field: &'static str, reason: impl Into<String>) -> Result<T, GoalError> {
    Err(GoalError {
        field,
        reason: reason.into(),
    })
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<String, GoalError> {
    let value = value.trim();
    match value.chars().count() {
        0 => refuse(field, "must not be empty"),
        n if n > max => refuse(field, format!("{n} characters, the limit is {max}")),
        _ => Ok(value.to_owned()),
    }
}

impl Goal {
    /// A goal named `name` completed by the event `event` or by a page matching `page` (one of
    /// the two), an event goal narrowed by `properties`.
    pub fn new(
        name: &str,
        event: Option<&str>,
        page: Option<&str>,
        properties: &[(String, String)],
    ) -> Result<Goal, GoalError> {
        let name = bounded("goal.name", name, MAX_GOAL_NAME)?;
        let target = match (event, page) {
            (Some(event), None) => Target::Event {
                name: bounded("goal.event", event, crate::visit::MAX_EVENT_NAME)?,
                properties: checked_properties(properties)?,
            },
            (None, Some(_)) if !properties.is_empty() => {
                return refuse(
                    "goal.properties",
                    "only an event goal can be narrowed by properties",
                )
            }
            (None, Some(page)) => {
                let pattern = bounded("goal.page", page, MAX_PAGE_PATTERN)?;
                if !pattern.starts_with('/') {
                    return refuse("goal.page", "a path pattern starts with /");
                }
                let wildcards = pattern.split("**").flat_map(|p| p.matches('*')).count()
                    + pattern.matches("**").count();
                if wildcards > MAX_WILDCARDS {
                    let reason = format!("{wildcards} wildcards, the limit is {MAX_WILDCARDS}");
                    return refuse("goal.page", reason);
                }
                Target::Page { pattern }
            }
            _ => return refuse("goal", "give either `event` or `page`, not both or neither"),
        };
        Ok(Goal { name, target })
    }

    /// The PostgreSQL regular expression of a page goal's pattern.
    pub fn page_regex(&self) -> Option<String> {
        match &self.target {
            Target::Page { pattern } => Some(page_regex(pattern)),
            Target::Event { .. } => None,
        }
    }
}

fn checked_properties(properties: &[(String, String)]) -> Result<Vec<(String, String)>, GoalError> {
    if properties.len() > MAX_GOAL_PROPERTIES {
        let reason = format!(
            "{} properties, the limit is {MAX_GOAL_PROPERTIES}",
            properties.len()
        );
        return refuse("goal.properties", reason);
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(properties.len());
    for (key, value) in properties {
        let key = bounded("goal.properties.key", key, crate::visit::MAX_PROPERTY_KEY)?;
        if value.chars().count() > crate::visit::MAX_PROPERTY_VALUE {
            return refuse(
                "goal.properties.value",
                format!("over {} characters", crate::visit::MAX_PROPERTY_VALUE),
            );
        }
        if out.iter().any(|(k, _)| *k == key) {
            return refuse("goal.properties", format!("the key {key:?} is given twice"));
        }
        out.push((key, value.clone()));
    }
    Ok(out)
}

/// `*` within a segment, `**` across segments, everything else literal, the whole path.
pub fn page_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^/]*"),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('$');
    out
}

/// Whether a stored hit `e` (a `kafka_events` row) completes the goal `g` (a `goals` row);
/// `$1` is the page views' event type. Page goals match page views by path; event goals match
/// custom events by name, and their properties by containment (`props` is an array of
/// `{key, value}`, as the goal's `properties`).
const MATCHES: &str =
    "((g.page_regex IS NOT NULL AND e.event_type = $1 AND e.path ~ g.page_regex) \
     OR (g.event IS NOT NULL AND e.event_type = 'CUSTOM_EVENT' AND e.name = g.event \
         AND coalesce(e.props, '[]'::jsonb) @> g.properties))";

/// Records the conversions of the stored hits and goals `scope` selects (a condition over `e`,
/// the event, and `g`, the goal; its parameters from `$2`): one row per hit that completes a
/// goal, in the visit the hit was placed in (rows already recorded are kept), and adds to
/// `goal_days` the visitors and visits converting for the first time that day and the
/// completions. Its reads of `conversions` see the table as it was before the statement.
pub fn conversions_sql(scope: &str) -> String {
    format!(
        "WITH new AS (INSERT INTO conversions (goal_id, site, day, visitor, visit_id, at, event_id) \
           SELECT g.id, v.site, v.day, v.visitor, v.id, e.received_at, e.id \
           FROM kafka_events e JOIN visits v ON v.id = e.visit_id JOIN goals g ON g.site = v.site \
           WHERE ({scope}) AND {MATCHES} ON CONFLICT DO NOTHING \
           RETURNING goal_id, day, visitor, visit_id), \
         per_visit AS (SELECT n.goal_id, n.day, n.visitor, n.visit_id, count(*) AS completions, \
             EXISTS (SELECT 1 FROM conversions o WHERE o.goal_id = n.goal_id AND o.day = n.day \
                 AND o.visitor = n.visitor) AS visitor_before, \
             EXISTS (SELECT 1 FROM conversions o WHERE o.goal_id = n.goal_id AND o.day = n.day \
                 AND o.visitor = n.visitor AND o.visit_id = n.visit_id) AS visit_before \
           FROM new n GROUP BY n.goal_id, n.day, n.visitor, n.visit_id) \
         INSERT INTO goal_days AS r (goal_id, day, visitors, visits, completions) \
         SELECT goal_id, day, count(DISTINCT visitor) FILTER (WHERE NOT visitor_before), \
             count(*) FILTER (WHERE NOT visit_before), sum(completions) \
         FROM per_visit GROUP BY goal_id, day ORDER BY goal_id, day \
         ON CONFLICT (goal_id, day) DO UPDATE SET visitors = r.visitors + excluded.visitors, \
             visits = r.visits + excluded.visits, completions = r.completions + excluded.completions"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_star_stays_within_a_segment_and_a_double_star_crosses_them() {
        assert_eq!(page_regex("/pricing*"), "^\\/pricing[^/]*$");
        assert_eq!(page_regex("/blog/**"), "^\\/blog\\/.*$");
        assert_eq!(page_regex("/a.b(c)"), "^\\/a\\.b\\(c\\)$");
    }

    #[test]
    fn a_goal_is_an_event_or_a_page_and_only_an_event_takes_properties() {
        let pro = [("plan".to_owned(), "pro".to_owned())];
        let signup = Goal::new("Signup", Some("Signup"), None, &pro).expect("an event goal");
        assert_eq!(signup.page_regex(), None);
        let err = |r: Result<Goal, GoalError>| r.map_err(|e| e.field).err();
        assert_eq!(
            err(Goal::new("P", None, Some("/p"), &pro)),
            Some("goal.properties")
        );
        assert_eq!(
            err(Goal::new("P", Some("a"), Some("/p"), &[])),
            Some("goal")
        );
        assert_eq!(err(Goal::new("P", None, None, &[])), Some("goal"));
        assert_eq!(
            err(Goal::new(" ", None, Some("/p"), &[])),
            Some("goal.name")
        );
        assert_eq!(err(Goal::new("P", None, Some("p"), &[])), Some("goal.page"));
        let wild = format!("/{}", "**/".repeat(11));
        assert_eq!(
            err(Goal::new("P", None, Some(&wild), &[])),
            Some("goal.page")
        );
        assert!(Goal::new("P", None, Some("/a/*/b/**"), &[]).is_ok());
        let four: Vec<(String, String)> = (0..4).map(|i| (i.to_string(), "v".into())).collect();
        assert_eq!(
            err(Goal::new("P", Some("a"), None, &four)),
            Some("goal.properties")
        );
        let twice = [pro[0].clone(), pro[0].clone()];
        assert_eq!(
            err(Goal::new("P", Some("a"), None, &twice)),
            Some("goal.properties")
        );
    }
}
