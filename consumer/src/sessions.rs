//! Visits and rollups, kept in the transaction that stores the page views they come from.
//!
//! A visit is one visitor's page views on one site with no gap over
//! `analytics.visit_timeout_minutes`, and never across the end of the site's day. Its state is
//! the `visits` row, read and written in the batch's transaction, so a crash rolls it back with
//! the events and a partition moved to another consumer resumes it where it stood.
//!
//! Rollups are a pure function of the visits: the rows of a visitor's day contribute counts to
//! `rollup_days` and `rollup_hours` (see `contribute`). A batch adds, for each visitor-day it
//! touches, the contribution after minus the contribution before. So the rollups always equal
//! the sum over all visits, whatever the batches were, and the rebuild command (which replays
//! every stored page view through this same code) must find them unchanged.
//!
//! Unique visitors are exact and bounded: visitor ids are salted per UTC day, so a visitor's
//! distinct (dimension, value) pairs of a day are read from that visitor's few visits of the day,
//! and no set of visitor ids is ever kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
use entity::rollup::{Counts, Dimension};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use settings::AnalyticsSettings;
use uuid::Uuid;

/// Distinct pages remembered per visit; later new pages count under `OTHER_PAGES`. A visit
/// reading more distinct pages than this is a crawler in all but name.
pub const MAX_PAGES_PER_VISIT: usize = 500;
pub const OTHER_PAGES: &str = "(other pages)";
/// Rows per statement: each statement carries its rows as one JSON array.
const ROWS_PER_STATEMENT: usize = 5000;

/// A page view as visits see it. Text fields hold `""` for "none".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub id: Uuid,
    pub site: String,
    pub visitor: i64,
    pub at: DateTime<Utc>,
    pub page: String,
    pub is_bot: bool,
    pub traits: Traits,
    /// Set on an engagement report (not a page view): engaged milliseconds on the page.
    pub engaged_ms: Option<i32>,
}

/// A visit with at least this much engaged time (visible and focused) is not a bounce, even
/// with one page view (GA4's "engaged session" threshold).
pub const ENGAGED_MS: i32 = 10_000;

/// What a visit takes from its first page view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traits {
    pub source: String,
    pub channel: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub browser: String,
    pub os: String,
    pub device: String,
}

/// The columns of `kafka_events` a hit is made from (the rebuild reads these).
#[derive(Debug, Clone, Deserialize)]
pub struct HitColumns {
    pub id: Uuid,
    pub event_type: String,
    pub user_id: String,
    pub visitor_id: Option<i64>,
    pub received_at: DateTime<Utc>,
    pub path: String,
    pub engaged_ms: Option<i32>,
    pub site: Option<String>,
    pub is_bot: bool,
    pub source: Option<String>,
    pub channel: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device: Option<String>,
}

impl HitColumns {
    /// The hit of a stored page view; `None` for other event types and events without a site.
    pub fn into_hit(self, analytics: &AnalyticsSettings) -> Option<Hit> {
        if self.event_type != analytics.page_view_type {
            return None;
        }
        let text = |v: Option<String>| v.unwrap_or_default();
        Some(Hit {
            id: self.id,
            site: self.site?,
            // Events stored before visitor ids existed: their user id stands in.
            visitor: self
                .visitor_id
                .unwrap_or_else(|| crate::anchor::fnv1a(self.user_id.as_bytes())),
            at: self.received_at,
            page: self.path,
            is_bot: self.is_bot,
            engaged_ms: self.engaged_ms,
            traits: Traits {
                source: text(self.source),
                channel: text(self.channel),
                utm_source: text(self.utm_source),
                utm_medium: text(self.utm_medium),
                utm_campaign: text(self.utm_campaign),
                browser: text(self.browser),
                os: text(self.os),
                device: text(self.device),
            },
        })
    }
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
    pub engaged: bool,
    /// Engaged milliseconds reported by the tracker, summed.
    pub engaged_ms: i32,
    pub entry_page: String,
    pub exit_page: String,
    #[serde(flatten)]
    pub traits: Traits,
    /// Page views per path.
    pub pages: BTreeMap<String, i32>,
}

impl Visit {
    fn start(hit: &Hit, day: NaiveDate, hour: NaiveDateTime) -> Visit {
        Visit {
            id: hit.id,
            site: hit.site.clone(),
            visitor: hit.visitor,
            day,
            hour,
            started_at: hit.at,
            last_seen_at: hit.at,
            pageviews: 1,
            duration: 0,
            engaged: false,
            engaged_ms: 0,
            entry_page: hit.page.clone(),
            exit_page: hit.page.clone(),
            traits: hit.traits.clone(),
            pages: BTreeMap::from([(hit.page.clone(), 1)]),
        }
    }

    /// Adds a later page view. Time never runs backwards within a visit: a page view stamped
    /// before the last one (another producer's clock) counts as at the last one.
    fn extend(&mut self, hit: &Hit) {
        self.last_seen_at = self.last_seen_at.max(hit.at);
        self.pageviews += 1;
        self.update_duration();
        self.exit_page.clone_from(&hit.page);
        let page = if self.pages.len() < MAX_PAGES_PER_VISIT || self.pages.contains_key(&hit.page) {
            hit.page.clone()
        } else {
            OTHER_PAGES.to_owned()
        };
        *self.pages.entry(page).or_default() += 1;
    }

    /// Adds an engagement report: the visit lasted at least until it was sent, and at least as
    /// long as its pages were looked at.
    fn engage(&mut self, hit: &Hit, engaged_ms: i32) {
        self.last_seen_at = self.last_seen_at.max(hit.at);
        self.engaged_ms = self.engaged_ms.saturating_add(engaged_ms.max(0));
        self.engaged |= self.engaged_ms >= ENGAGED_MS;
        self.update_duration();
    }

    /// Seconds from the first page view to the last activity, or the engaged time if longer.
    fn update_duration(&mut self) {
        let span = (self.last_seen_at - self.started_at).num_seconds();
        let engaged = i64::from(self.engaged_ms) / 1000;
        self.duration = i32::try_from(span.max(engaged)).unwrap_or(i32::MAX);
    }

    /// One page view and no engagement.
    pub fn is_bounce(&self) -> bool {
        self.pageviews == 1 && !self.engaged
    }

    /// The value of a visit dimension (`Page` and `Bot` have none).
    pub fn value(&self, dimension: Dimension) -> &str {
        let t = &self.traits;
        match dimension {
            Dimension::All | Dimension::Page | Dimension::Bot => "",
            Dimension::EntryPage => &self.entry_page,
            Dimension::ExitPage => &self.exit_page,
            Dimension::Source => &t.source,
            Dimension::Channel => &t.channel,
            Dimension::UtmSource => &t.utm_source,
            Dimension::UtmMedium => &t.utm_medium,
            Dimension::UtmCampaign => &t.utm_campaign,
            Dimension::Browser => &t.browser,
            Dimension::Os => &t.os,
            Dimension::Device => &t.device,
        }
    }

    fn counts(&self) -> Counts {
        Counts {
            pageviews: i64::from(self.pageviews),
            visitors: 0,
            visits: 1,
            bounces: i64::from(self.is_bounce()),
            duration: i64::from(self.duration),
        }
    }
}

/// A visitor's day on a site: the unit visits are read, changed and counted in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VisitorDay {
    pub site: String,
    pub visitor: i64,
    pub day: NaiveDate,
}

/// Rollup deltas keyed as the tables are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub days: BTreeMap<(String, Dimension, NaiveDate, String), Counts>,
    pub hours: BTreeMap<(String, NaiveDateTime), Counts>,
}

impl Rollup {
    fn day(
        &mut self,
        site: &str,
        dimension: Dimension,
        day: NaiveDate,
        value: &str,
    ) -> &mut Counts {
        self.days
            .entry((site.to_owned(), dimension, day, value.to_owned()))
            .or_default()
    }

    fn hour(&mut self, site: &str, hour: NaiveDateTime) -> &mut Counts {
        self.hours.entry((site.to_owned(), hour)).or_default()
    }

    /// Adds (`sign` 1) or removes (`sign` -1) what a visitor's visits of one day count.
    pub fn contribute(&mut self, visits: &[Visit], sign: i64) {
        let mut seen: BTreeSet<(Dimension, &str)> = BTreeSet::new();
        let mut hours = BTreeSet::new();
        for visit in visits {
            let counts = visit.counts();
            for dimension in Dimension::OF_VISIT {
                let value = visit.value(dimension);
                self.day(&visit.site, dimension, visit.day, value)
                    .add(&counts, sign);
                seen.insert((dimension, value));
            }
            for (page, views) in &visit.pages {
                let on_page = Counts {
                    pageviews: i64::from(*views),
                    ..counts
                };
                self.day(&visit.site, Dimension::Page, visit.day, page)
                    .add(&on_page, sign);
                seen.insert((Dimension::Page, page));
            }
            self.hour(&visit.site, visit.hour).add(&counts, sign);
            hours.insert(visit.hour);
        }
        let Some(first) = visits.first() else { return };
        for (dimension, value) in seen {
            self.day(&first.site, dimension, first.day, value).visitors += sign;
        }
        for hour in hours {
            self.hour(&first.site, hour).visitors += sign;
        }
    }

    fn drop_zeros(&mut self) {
        self.days.retain(|_, c| !c.is_zero());
        self.hours.retain(|_, c| !c.is_zero());
    }
}

/// The local day and hour of an instant on a site.
fn local(at: DateTime<Utc>, zone: chrono_tz::Tz) -> (NaiveDate, NaiveDateTime) {
    let local = at.with_timezone(&zone).naive_local();
    let hour = local
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(local);
    (local.date(), hour)
}

/// What a batch changes: the visits to write and the rollup deltas.
#[derive(Debug, Default)]
pub struct Changes {
    pub visits: Vec<Visit>,
    pub rollup: Rollup,
}

/// Places `hits` (in the order they were stored) into the visits of `state`, which holds every
/// visit of each visitor-day the hits fall on, sorted by start. Pure: no I/O.
pub fn sessionize(
    state: &HashMap<VisitorDay, Vec<Visit>>,
    hits: &[Hit],
    analytics: &AnalyticsSettings,
) -> Changes {
    let timeout = analytics.visit_timeout();
    let mut rollup = Rollup::default();
    let mut after: HashMap<VisitorDay, Vec<Visit>> = HashMap::new();
    let mut changed: BTreeSet<Uuid> = BTreeSet::new();
    for hit in hits {
        let (day, hour) = local(hit.at, analytics.time_zone_of(&hit.site));
        if hit.is_bot {
            rollup
                .day(&hit.site, Dimension::Bot, day, &hit.traits.browser)
                .pageviews += 1;
            continue;
        }
        let key = VisitorDay {
            site: hit.site.clone(),
            visitor: hit.visitor,
            day,
        };
        let visits = after
            .entry(key)
            .or_insert_with_key(|key| state.get(key).cloned().unwrap_or_default());
        let open = visits
            .last_mut()
            .filter(|open| hit.at - open.last_seen_at <= timeout);
        match (open, hit.engaged_ms) {
            (Some(open), None) => open.extend(hit),
            (Some(open), Some(ms)) => open.engage(hit, ms),
            (None, None) => visits.push(Visit::start(hit, day, hour)),
            // A report for a visit already over (or never seen) starts nothing.
            (None, Some(_)) => continue,
        }
        if let Some(visit) = visits.last() {
            changed.insert(visit.id);
        }
    }
    let mut out = Vec::with_capacity(changed.len());
    for (key, visits) in &after {
        if let Some(before) = state.get(key) {
            rollup.contribute(before, -1);
        }
        rollup.contribute(visits, 1);
        out.extend(visits.iter().filter(|v| changed.contains(&v.id)).cloned());
    }
    rollup.drop_zeros();
    Changes {
        visits: out,
        rollup,
    }
}

/// Reads the visits of the visitor-days `hits` fall on, places the hits, and writes the changed
/// visits and the rollup deltas, all on `conn` (the batch's transaction).
pub async fn apply<C: ConnectionTrait>(
    conn: &C,
    hits: &[Hit],
    analytics: &AnalyticsSettings,
) -> Result<(), DbErr> {
    if hits.is_empty() {
        return Ok(());
    }
    let keys: BTreeSet<VisitorDay> = hits
        .iter()
        .filter(|h| !h.is_bot)
        .map(|h| VisitorDay {
            site: h.site.clone(),
            visitor: h.visitor,
            day: local(h.at, analytics.time_zone_of(&h.site)).0,
        })
        .collect();
    let state = load(conn, &keys).await?;
    let changes = sessionize(&state, hits, analytics);
    write_visits(conn, &changes.visits).await?;
    write_rollup(conn, &changes.rollup).await
}

/// Every visit of the given visitor-days, sorted by start.
async fn load<C: ConnectionTrait>(
    conn: &C,
    keys: &BTreeSet<VisitorDay>,
) -> Result<HashMap<VisitorDay, Vec<Visit>>, DbErr> {
    // One index lookup per visitor-day, whatever the planner believes about the table's size
    // (right after a rebuild's TRUNCATE it believes it empty).
    const LOAD: &str = "SELECT to_json(v)::text AS row \
         FROM json_to_recordset($1::json) AS k(site text, visitor bigint, day date) \
         CROSS JOIN LATERAL (SELECT * FROM visits v WHERE v.site = k.site \
             AND v.visitor = k.visitor AND v.day = k.day) v \
         ORDER BY v.started_at, v.id";
    let mut state: HashMap<VisitorDay, Vec<Visit>> = HashMap::new();
    let keys: Vec<&VisitorDay> = keys.iter().collect();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let json = serde_json::to_string(chunk).map_err(|e| DbErr::Json(e.to_string()))?;
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                LOAD,
                [json.into()],
            ))
            .await?;
        for row in rows {
            let text: String = row.try_get("", "row")?;
            let visit: Visit = serde_json::from_str(&text)
                .map_err(|e| DbErr::Type(format!("a stored visit: {e}")))?;
            let key = VisitorDay {
                site: visit.site.clone(),
                visitor: visit.visitor,
                day: visit.day,
            };
            state.entry(key).or_default().push(visit);
        }
    }
    Ok(state)
}

async fn write_visits<C: ConnectionTrait>(conn: &C, visits: &[Visit]) -> Result<(), DbErr> {
    const UPSERT: &str = "INSERT INTO visits \
         SELECT * FROM json_populate_recordset(NULL::visits, $1::json) \
         ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
         pageviews = excluded.pageviews, duration = excluded.duration, \
         engaged = excluded.engaged, engaged_ms = excluded.engaged_ms, \
         exit_page = excluded.exit_page, pages = excluded.pages";
    for chunk in visits.chunks(ROWS_PER_STATEMENT) {
        execute_json(conn, UPSERT, chunk).await?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DayRow<'a> {
    site: &'a str,
    dimension: &'static str,
    day: NaiveDate,
    value: &'a str,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
struct HourRow<'a> {
    site: &'a str,
    hour: NaiveDateTime,
    #[serde(flatten)]
    counts: Counts,
}

/// Adds the deltas. Rows are locked in key order (`ORDER BY`), the same in every transaction,
/// so consumers of different partitions adding to the same rows wait for each other but never
/// deadlock.
async fn write_rollup<C: ConnectionTrait>(conn: &C, rollup: &Rollup) -> Result<(), DbErr> {
    const ADD: &str = "pageviews = r.pageviews + excluded.pageviews, \
         visitors = r.visitors + excluded.visitors, visits = r.visits + excluded.visits, \
         bounces = r.bounces + excluded.bounces, duration = r.duration + excluded.duration";
    let days = format!(
        "INSERT INTO rollup_days AS r \
         SELECT * FROM json_populate_recordset(NULL::rollup_days, $1::json) \
         ORDER BY site, dimension, day, value \
         ON CONFLICT (site, dimension, day, value) DO UPDATE SET {ADD}"
    );
    let hours = format!(
        "INSERT INTO rollup_hours AS r \
         SELECT * FROM json_populate_recordset(NULL::rollup_hours, $1::json) \
         ORDER BY site, hour ON CONFLICT (site, hour) DO UPDATE SET {ADD}"
    );
    let day_rows: Vec<DayRow> = rollup
        .days
        .iter()
        .map(|((site, dimension, day, value), counts)| DayRow {
            site,
            dimension: dimension.as_str(),
            day: *day,
            value,
            counts: *counts,
        })
        .collect();
    // One statement per batch when it fits, so the lock order holds across the whole batch.
    for chunk in day_rows.chunks(ROWS_PER_STATEMENT * 4) {
        execute_json(conn, &days, chunk).await?;
    }
    let hour_rows: Vec<HourRow> = rollup
        .hours
        .iter()
        .map(|((site, hour), counts)| HourRow {
            site,
            hour: *hour,
            counts: *counts,
        })
        .collect();
    for chunk in hour_rows.chunks(ROWS_PER_STATEMENT * 4) {
        execute_json(conn, &hours, chunk).await?;
    }
    Ok(())
}

async fn execute_json<C: ConnectionTrait, T: Serialize>(
    conn: &C,
    sql: &str,
    rows: &[T],
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(rows).map_err(|e| DbErr::Json(e.to_string()))?;
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [json.into()],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn analytics() -> AnalyticsSettings {
        settings::Settings::defaults().analytics
    }

    fn hit(n: u128, visitor: i64, minute: i64, page: &str) -> Hit {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
            .single()
            .expect("a time");
        Hit {
            id: Uuid::from_u128(n),
            site: "shop.example".into(),
            visitor,
            at: start + chrono::TimeDelta::minutes(minute),
            page: page.into(),
            is_bot: false,
            engaged_ms: None,
            traits: Traits {
                source: "google".into(),
                ..Traits::default()
            },
        }
    }

    /// Applies batches one after the other, as the consumer does, keeping the visits between.
    fn run(batches: &[&[Hit]], analytics: &AnalyticsSettings) -> (Vec<Visit>, Rollup) {
        let mut state: HashMap<VisitorDay, Vec<Visit>> = HashMap::new();
        let mut total = Rollup::default();
        for batch in batches {
            let changes = sessionize(&state, batch, analytics);
            for visit in changes.visits {
                let key = VisitorDay {
                    site: visit.site.clone(),
                    visitor: visit.visitor,
                    day: visit.day,
                };
                let visits = state.entry(key).or_default();
                match visits.iter_mut().find(|v| v.id == visit.id) {
                    Some(old) => *old = visit,
                    None => visits.push(visit),
                }
            }
            for (k, c) in changes.rollup.days {
                total.days.entry(k).or_default().add(&c, 1);
            }
            for (k, c) in changes.rollup.hours {
                total.hours.entry(k).or_default().add(&c, 1);
            }
        }
        total.drop_zeros();
        let mut visits: Vec<Visit> = state.into_values().flatten().collect();
        visits.sort_by_key(|v| v.started_at);
        (visits, total)
    }

    fn totals(rollup: &Rollup, dimension: Dimension, value: &str) -> Counts {
        rollup
            .days
            .iter()
            .filter(|((_, d, _, v), _)| *d == dimension && v == value)
            .fold(Counts::default(), |mut sum, (_, c)| {
                sum.add(c, 1);
                sum
            })
    }

    #[test]
    fn a_gap_over_thirty_minutes_starts_a_new_visit_and_a_single_page_visit_bounces() {
        let hits = [
            hit(1, 7, 0, "/"),
            hit(2, 7, 10, "/pricing"),
            hit(3, 7, 41, "/docs"), // 31 minutes later: a new visit, a bounce
            hit(4, 8, 5, "/pricing"),
        ];
        let (visits, rollup) = run(&[&hits], &analytics());
        assert_eq!(visits.len(), 3);
        assert_eq!(visits[0].duration, 600);
        assert_eq!(
            (visits[0].entry_page.as_str(), visits[0].exit_page.as_str()),
            ("/", "/pricing")
        );
        let all = totals(&rollup, Dimension::All, "");
        assert_eq!(
            all,
            Counts {
                pageviews: 4,
                visitors: 2,
                visits: 3,
                bounces: 2,
                duration: 600
            }
        );
        let pricing = totals(&rollup, Dimension::Page, "/pricing");
        assert_eq!(
            (pricing.pageviews, pricing.visitors, pricing.visits),
            (2, 2, 2)
        );
        assert_eq!(totals(&rollup, Dimension::ExitPage, "/pricing").visits, 2);
        assert_eq!(totals(&rollup, Dimension::ExitPage, "/").visits, 0);
    }

    #[test]
    fn the_rollup_is_the_same_however_the_page_views_are_split_into_batches() {
        let mut hits = Vec::new();
        for n in 0..60u128 {
            let visitor = (n % 5) as i64;
            let minute = (n as i64) * 7 % 200 + (n as i64) * 3;
            hits.push(hit(
                n + 1,
                visitor,
                minute,
                ["/", "/a", "/b"][(n % 3) as usize],
            ));
        }
        hits.sort_by_key(|h| h.at);
        let whole = run(&[&hits], &analytics());
        let split: Vec<&[Hit]> = hits.chunks(7).collect();
        let pieces = run(&split, &analytics());
        assert_eq!(whole, pieces);
        assert!(totals(&whole.1, Dimension::All, "").visits > 5);
    }

    #[test]
    fn a_visit_ends_at_the_end_of_the_sites_day_in_its_time_zone() {
        let mut analytics = analytics();
        analytics.site_time_zones =
            vec![
                settings::SiteTimeZone::try_from("shop.example=America/New_York".to_owned())
                    .expect("a zone"),
            ];
        // Midnight in New York is 05:00 UTC: 04:55 and 05:10 UTC are 15 minutes apart.
        let hits = [hit(1, 7, -305, "/"), hit(2, 7, -290, "/a")];
        let (visits, rollup) = run(&[&hits], &analytics);
        assert_eq!(visits.len(), 2, "the visit is cut at local midnight");
        assert_eq!(
            visits[0].day,
            NaiveDate::from_ymd_opt(2026, 11, 19).expect("a day")
        );
        assert_eq!(
            visits[1].day,
            NaiveDate::from_ymd_opt(2026, 11, 20).expect("a day")
        );
        assert_eq!(
            totals(&rollup, Dimension::All, "").visitors,
            2,
            "one per local day"
        );
    }

    #[test]
    fn an_engagement_report_gives_a_single_page_visit_its_duration_and_unbounces_it() {
        let mut report = hit(2, 7, 1, "/");
        report.engaged_ms = Some(25_000);
        let mut late = hit(3, 8, 50, "/");
        late.engaged_ms = Some(5_000); // visitor 8 has no visit: starts nothing
        let (visits, rollup) = run(&[&[hit(1, 7, 0, "/")], &[report, late]], &analytics());
        assert_eq!(visits.len(), 1);
        assert_eq!((visits[0].pageviews, visits[0].duration), (1, 60));
        let all = totals(&rollup, Dimension::All, "");
        assert_eq!(
            (all.pageviews, all.visits, all.bounces, all.duration),
            (1, 1, 0, 60)
        );
    }

    #[test]
    fn bots_are_counted_apart_and_make_no_visit() {
        let mut bot = hit(1, 9, 0, "/");
        bot.is_bot = true;
        bot.traits.browser = "Googlebot".into();
        let (visits, rollup) = run(&[&[bot, hit(2, 7, 1, "/")]], &analytics());
        assert_eq!(visits.len(), 1);
        assert_eq!(totals(&rollup, Dimension::Bot, "Googlebot").pageviews, 1);
        assert_eq!(totals(&rollup, Dimension::All, "").pageviews, 1);
    }
}
