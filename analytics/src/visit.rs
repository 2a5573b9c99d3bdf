//! The hit, the visit, and the visit's rules: the midnight cut (a visit never spans two of the
//! site's days), bounce and engagement. The timeout is a setting
//! (`analytics.visit_timeout_minutes`), passed to `session::sessionize`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::counts::Counts;
use crate::dimension::{Dimension, Scope, Traits};

/// Distinct pages remembered per visit; later new pages count under `OTHER_PAGES`. A visit
/// reading more distinct pages than this is a crawler in all but name.
pub const MAX_PAGES_PER_VISIT: usize = 500;
pub const OTHER_PAGES: &str = "(other pages)";
/// Distinct custom event names, and property values, remembered per visit; later new ones
/// count under `OTHER_EVENTS`.
pub const MAX_EVENT_KEYS_PER_VISIT: usize = 100;
pub const OTHER_EVENTS: &str = "(other events)";
/// Between a property's key and its value in `Visit::props` and in the rollups' values: a
/// character no key contains (the ASCII unit separator).
pub const PROPERTY_SEPARATOR: char = '\u{1f}';

/// A property's stored value in `Visit::props` and the rollups: key, separator, value.
pub fn property_value(key: &str, value: &str) -> String {
    format!("{key}{PROPERTY_SEPARATOR}{value}")
}

/// A custom event's name, in characters.
pub const MAX_EVENT_NAME: usize = 120;
/// Properties of one custom event, and their keys' and values' lengths in characters.
pub const MAX_PROPERTIES: usize = 30;
pub const MAX_PROPERTY_KEY: usize = 300;
pub const MAX_PROPERTY_VALUE: usize = 2_000;

/// Raise when a rule below changes what a stored visit counts: consumers then rebuild the
/// visits and rollups from the stored events at start (`analytics::fingerprint`).
pub const RULES_VERSION: u32 = 3;

/// A visit with at least this much engaged time (visible and focused) is not a bounce, even
/// with one page view (GA4's "engaged session" threshold).
pub const ENGAGED_MS: i32 = 10_000;
/// A visit with more page views than this is not a bounce.
const BOUNCE_MAX_PAGEVIEWS: i32 = 1;

/// The stored `event_type` of an engagement report. The tracker sends reports on the page-view
/// topic (so they stay in order with their visitor's page views); the consumer stores them under
/// this type, so `event_type = 'PAGE_VIEW'` counts page views only.
pub const ENGAGEMENT_EVENT_TYPE: &str = "ENGAGEMENT";
/// The stored `event_type` of a custom event (its name is in `name`). Custom events travel on
/// the page-view topic too, in order with their visitor's page views.
pub const CUSTOM_EVENT_TYPE: &str = "CUSTOM_EVENT";
/// The types the consumer stores events of the page-view stream under, besides page views:
/// no accepted event type may take one of these names.
pub const RESERVED_EVENT_TYPES: [&str; 2] = [ENGAGEMENT_EVENT_TYPE, CUSTOM_EVENT_TYPE];

/// The bounce rule: one page view and less engaged time than `ENGAGED_MS`.
pub fn is_bounce(pageviews: i32, engaged_ms: i32) -> bool {
    pageviews <= BOUNCE_MAX_PAGEVIEWS && engaged_ms < ENGAGED_MS
}

/// The same rule in SQL, over a visit's page-view count and engaged milliseconds.
pub fn bounce_sql(pageviews: &str, engaged_ms: &str) -> String {
    format!("({pageviews} <= {BOUNCE_MAX_PAGEVIEWS} AND {engaged_ms} < {ENGAGED_MS})")
}

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitKind {
    PageView,
    /// An engagement report: the page was visible and focused this many milliseconds.
    Engagement {
        ms: i32,
    },
    /// A custom event: it keeps its visit going (or starts one), and counts no page view.
    Event,
}

/// What an event is to visits: a page view of `page_view_type`, an engagement report of a page
/// view (stored as `ENGAGEMENT`, or still as `page_view_type` on rows stored before that), a
/// custom event, or nothing. Events of other types travel on other topics, out of order with
/// the page views, so they never touch a visit.
pub fn hit_kind(
    event_type: &str,
    engaged_ms: Option<i32>,
    page_view_type: &str,
) -> Option<HitKind> {
    let of_page_views = event_type == page_view_type || event_type == ENGAGEMENT_EVENT_TYPE;
    match engaged_ms {
        _ if event_type == CUSTOM_EVENT_TYPE => Some(HitKind::Event),
        _ if !of_page_views => None,
        Some(ms) => Some(HitKind::Engagement { ms }),
        None if event_type == page_view_type => Some(HitKind::PageView),
        None => None,
    }
}

/// What an event of the page-view stream is, by the fields it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    PageView,
    /// It carries `engagedMs`.
    EngagementReport,
    /// It carries a `name`.
    CustomEvent,
}

impl Shape {
    pub fn of(engaged_ms: Option<i32>, name: Option<&str>) -> Shape {
        match (engaged_ms, name) {
            (_, Some(_)) => Shape::CustomEvent,
            (Some(_), None) => Shape::EngagementReport,
            (None, None) => Shape::PageView,
        }
    }
}

/// The type an event is stored under: engagement reports and custom events of the page-view
/// stream get their own, so that `event_type = 'PAGE_VIEW'` counts page views only.
pub fn stored_event_type<'a>(event_type: &'a str, shape: Shape, page_view_type: &str) -> &'a str {
    match shape {
        _ if event_type != page_view_type => event_type,
        Shape::PageView => event_type,
        Shape::EngagementReport => ENGAGEMENT_EVENT_TYPE,
        Shape::CustomEvent => CUSTOM_EVENT_TYPE,
    }
}

/// A page view, an engagement report or a custom event of a site, as visits see it. It borrows from the event
/// it was read from; a visit copies what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    pub id: Uuid,
    pub site: &'a str,
    pub visitor: i64,
    pub at: DateTime<Utc>,
    pub page: &'a str,
    pub is_bot: bool,
    pub kind: HitKind,
    pub traits: Traits<&'a str>,
    /// A custom event's name and properties (empty for other hits).
    pub name: &'a str,
    pub props: Vec<(&'a str, &'a str)>,
}

/// A `visits` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub id: Uuid,
    pub site: String,
    pub visitor: i64,
    /// The site's local day and hour the visit started in.
    pub day: NaiveDate,
    pub hour: NaiveDateTime,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub pageviews: i32,
    /// Seconds from the first page view to the last.
    pub duration: i32,
    /// Whether `engaged_ms` reached `ENGAGED_MS`.
    pub engaged: bool,
    /// Engaged milliseconds reported by the tracker, summed.
    pub engaged_ms: i32,
    pub entry_page: String,
    pub exit_page: String,
    #[serde(flatten)]
    pub traits: Traits<String>,
    /// Page views per path.
    pub pages: BTreeMap<String, i32>,
    /// Custom events, in all and per name; and per property (`property_value`).
    pub events: i32,
    pub event_names: BTreeMap<String, i32>,
    pub props: BTreeMap<String, i32>,
}

impl Visit {
    /// A visit started by a page view, or by a custom event (then with no page view: its
    /// entry and exit are the event's page).
    pub(crate) fn start(hit: &Hit<'_>, day: NaiveDate, hour: NaiveDateTime) -> Visit {
        let views = i32::from(hit.kind == HitKind::PageView);
        let pages = match views {
            0 => BTreeMap::new(),
            _ => BTreeMap::from([(hit.page.to_owned(), views)]),
        };
        Visit {
            id: hit.id,
            site: hit.site.to_owned(),
            visitor: hit.visitor,
            day,
            hour,
            started_at: hit.at,
            last_seen_at: hit.at,
            pageviews: views,
            duration: 0,
            engaged: false,
            engaged_ms: 0,
            entry_page: hit.page.to_owned(),
            exit_page: hit.page.to_owned(),
            traits: hit.traits.map(|v| (*v).to_owned()),
            pages,
            events: 0,
            event_names: BTreeMap::new(),
            props: BTreeMap::new(),
        }
    }

    /// Adds a later page view. Time never runs backwards within a visit: a page view stamped
    /// before the last one (another producer's clock) counts as at the last one.
    pub(crate) fn extend(&mut self, hit: &Hit<'_>) {
        self.last_seen_at = self.last_seen_at.max(hit.at);
        self.pageviews += 1;
        self.update_duration();
        hit.page.clone_into(&mut self.exit_page);
        let known = self.pages.contains_key(hit.page);
        let page = if known || self.pages.len() < MAX_PAGES_PER_VISIT {
            hit.page
        } else {
            OTHER_PAGES
        };
        *self.pages.entry(page.to_owned()).or_default() += 1;
    }

    /// Adds an engagement report: the visit lasted at least until it was sent, and at least as
    /// long as its pages were looked at. A report is sent when its page is left, so a visit's
    /// looked-at time fits in its span; `leeway` (the visit timeout) is all it may exceed it by
    /// (a page's clock is not the server's). So reports claiming more time than the visit had
    /// (25 reports of a day each, sent in a minute) cannot make a 25-day visit.
    pub(crate) fn engage(&mut self, hit: &Hit<'_>, engaged_ms: i32, leeway: TimeDelta) {
        self.last_seen_at = self.last_seen_at.max(hit.at);
        let possible = (self.last_seen_at - self.started_at + leeway).num_milliseconds();
        let possible = i32::try_from(possible.max(0)).unwrap_or(i32::MAX);
        self.engaged_ms = self
            .engaged_ms
            .saturating_add(engaged_ms.max(0))
            .min(possible);
        self.engaged = self.engaged_ms >= ENGAGED_MS;
        self.update_duration();
    }

    /// Adds a custom event: the visit lasted at least until it was sent.
    pub(crate) fn touch(&mut self, hit: &Hit<'_>) {
        self.last_seen_at = self.last_seen_at.max(hit.at);
        self.update_duration();
        self.events += 1;
        count_in(&mut self.event_names, hit.name);
        for (key, value) in &hit.props {
            count_in(&mut self.props, &property_value(key, value));
        }
    }

    /// Seconds from the first page view to the last activity, or the engaged time if longer.
    fn update_duration(&mut self) {
        let span = (self.last_seen_at - self.started_at).num_seconds();
        let engaged = i64::from(self.engaged_ms) / 1000;
        self.duration = i32::try_from(span.max(engaged)).unwrap_or(i32::MAX);
    }

    pub fn is_bounce(&self) -> bool {
        is_bounce(self.pageviews, self.engaged_ms)
    }

    /// The visit's one value of a dimension; `None` for time and pages (a visit has several).
    pub fn value(&self, dimension: Dimension) -> Option<&str> {
        match dimension.scope() {
            Scope::Time(_) | Scope::PageView => None,
            Scope::Goal | Scope::EventName | Scope::Property => None,
            Scope::Entry => Some(&self.entry_page),
            Scope::Exit => Some(&self.exit_page),
            Scope::Visit => self.traits.get(dimension).map(String::as_str),
        }
    }

    /// What the visit counts (`visitors` is counted per visitor-day, not here).
    pub fn counts(&self) -> Counts {
        Counts {
            pageviews: i64::from(self.pageviews),
            visitors: 0,
            visits: 1,
            bounces: i64::from(self.is_bounce()),
            duration: i64::from(self.duration),
            events: i64::from(self.events),
        }
    }
}

/// Counts one more of `key`, under `OTHER_EVENTS` once the map holds its limit.
fn count_in(map: &mut BTreeMap<String, i32>, key: &str) {
    let known = map.contains_key(key);
    let key = if known || map.len() < MAX_EVENT_KEYS_PER_VISIT {
        key
    } else {
        OTHER_EVENTS
    };
    *map.entry(key.to_owned()).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_page_views_and_their_engagement_reports_are_hits() {
        let kind = |t, ms| hit_kind(t, ms, "PAGE_VIEW");
        assert_eq!(kind("PAGE_VIEW", None), Some(HitKind::PageView));
        assert_eq!(
            kind("ENGAGEMENT", Some(5)),
            Some(HitKind::Engagement { ms: 5 })
        );
        assert_eq!(
            kind("PAGE_VIEW", Some(5)),
            Some(HitKind::Engagement { ms: 5 })
        );
        assert_eq!(kind("signup", None), None);
        assert_eq!(kind("signup", Some(5)), None, "another topic: out of order");
        let stored = |t, ms, name| stored_event_type(t, Shape::of(ms, name), "PAGE_VIEW");
        assert_eq!(stored("PAGE_VIEW", Some(5), None), "ENGAGEMENT");
        assert_eq!(stored("PAGE_VIEW", None, Some("Signup")), "CUSTOM_EVENT");
        assert_eq!(stored("signup", Some(5), None), "signup");
        assert_eq!(stored("PAGE_VIEW", None, None), "PAGE_VIEW");
        assert_eq!(kind("CUSTOM_EVENT", None), Some(HitKind::Event));
    }

    #[test]
    fn the_bounce_rule_is_one_page_view_without_ten_seconds_of_engagement() {
        assert!(is_bounce(1, 0));
        assert!(is_bounce(1, ENGAGED_MS - 1));
        assert!(!is_bounce(1, ENGAGED_MS));
        assert!(!is_bounce(2, 0));
        assert_eq!(
            bounce_sql("v.pageviews", "v.engaged_ms"),
            "(v.pageviews <= 1 AND v.engaged_ms < 10000)"
        );
    }
}
