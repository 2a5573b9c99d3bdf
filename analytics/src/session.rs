//! Sessionizing: places hits into the visits of their visitor-days, and says what the changed
//! visitor-days now contribute to the rollups. Pure; the consumer reads and writes the state.
//!
//! Rollups are a pure function of the visits: the visits of a visitor's day contribute counts
//! to `rollup_days` and `rollup_hours` (see `Rollup::contribute`). A batch adds, for each
//! visitor-day it touches, the contribution after minus the contribution before, so the rollups
//! equal the sum over all visits however the hits were batched.
//!
//! Unique visitors are exact and bounded: visitor ids are salted per UTC day, so a visitor's
//! distinct (dimension, value) pairs of a day are read from that visitor's few visits of the day.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bucket::Bucket;
use crate::counts::Counts;
use crate::dimension::{pair_value, Dimension, RollupKey};
use crate::visit::{Hit, HitKind, Visit};

/// A visitor's day on a site: the unit visits are read, changed and counted in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VisitorDay {
    pub site: String,
    pub visitor: i64,
    pub day: NaiveDate,
}

impl VisitorDay {
    pub fn of(visit: &Visit) -> VisitorDay {
        VisitorDay {
            site: visit.site.clone(),
            visitor: visit.visitor,
            day: visit.day,
        }
    }
}

/// Rollup deltas keyed as the tables are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub days: BTreeMap<(String, RollupKey, NaiveDate, String), Counts>,
    pub hours: BTreeMap<(String, NaiveDateTime), Counts>,
}

impl Rollup {
    fn day(&mut self, site: &str, key: RollupKey, day: NaiveDate, value: &str) -> &mut Counts {
        self.days
            .entry((site.to_owned(), key, day, value.to_owned()))
            .or_default()
    }

    fn hour(&mut self, site: &str, hour: NaiveDateTime) -> &mut Counts {
        self.hours.entry((site.to_owned(), hour)).or_default()
    }

    /// Adds (`sign` 1) or removes (`sign` -1) what a visitor's visits of one day count: under
    /// the site's totals, each visit dimension's value, each page viewed, and the start hour.
    pub fn contribute(&mut self, visits: &[Visit], sign: i64) {
        let mut seen: BTreeSet<(RollupKey, &str)> = BTreeSet::new();
        let mut pairs: BTreeSet<(RollupKey, String)> = BTreeSet::new();
        let mut hours = BTreeSet::new();
        for visit in visits {
            let counts = visit.counts();
            self.day(&visit.site, RollupKey::All, visit.day, "")
                .add(&counts, sign);
            seen.insert((RollupKey::All, ""));
            // Each breakdown value of the visit, with what the visit counts under it.
            let once = Dimension::crossed().filter_map(|d| Some((d, visit.value(d)?, counts)));
            let pages = visit.pages.iter().map(|(page, views)| {
                let on_page = Counts {
                    pageviews: i64::from(*views),
                    ..counts
                };
                (Dimension::Page, page.as_str(), on_page)
            });
            let values: Vec<(Dimension, &str, Counts)> = once.chain(pages).collect();
            for (d, value, counts) in &values {
                let key = RollupKey::Of(*d);
                self.day(&visit.site, key, visit.day, value)
                    .add(counts, sign);
                seen.insert((key, value));
            }
            self.contribute_pairs(visit, &values, sign, &mut pairs);
            // A visit counts once under each event name and property value it sent, with
            // those events.
            let of_events = [
                (Dimension::EventName, &visit.event_names),
                (Dimension::Property, &visit.props),
            ];
            for (dimension, values) in of_events {
                let key = RollupKey::Of(dimension);
                for (value, events) in values {
                    let with = Counts {
                        events: i64::from(*events),
                        ..counts
                    };
                    self.day(&visit.site, key, visit.day, value)
                        .add(&with, sign);
                    seen.insert((key, value));
                }
            }
            self.hour(&visit.site, visit.hour).add(&counts, sign);
            hours.insert(visit.hour);
        }
        let Some(first) = visits.first() else { return };
        for (key, value) in seen {
            self.day(&first.site, key, first.day, value).visitors += sign;
        }
        for (key, value) in pairs {
            self.day(&first.site, key, first.day, &value).visitors += sign;
        }
        for hour in hours {
            self.hour(&first.site, hour).visitors += sign;
        }
    }

    /// A visit's counts under each paired filter value it has, by each of its other
    /// breakdown values (`values`, with what the visit counts under each).
    fn contribute_pairs(
        &mut self,
        visit: &Visit,
        values: &[(Dimension, &str, Counts)],
        sign: i64,
        seen: &mut BTreeSet<(RollupKey, String)>,
    ) {
        for filter in Dimension::PAIRED {
            let Some(kept) = visit.value(*filter) else {
                continue;
            };
            for (d, value, counts) in values {
                let Some(key) = RollupKey::pair(*filter, *d) else {
                    continue;
                };
                let value = pair_value(kept, value);
                self.day(&visit.site, key, visit.day, &value)
                    .add(counts, sign);
                seen.insert((key, value));
            }
        }
    }

    pub fn drop_zeros(&mut self) {
        self.days.retain(|_, c| !c.is_zero());
        self.hours.retain(|_, c| !c.is_zero());
    }

    /// Adds another batch's deltas to these.
    pub fn merge(&mut self, other: Rollup) {
        for (k, c) in other.days {
            self.days.entry(k).or_default().add(&c, 1);
        }
        for (k, c) in other.hours {
            self.hours.entry(k).or_default().add(&c, 1);
        }
    }
}

/// The local day and hour of an instant on a site.
pub fn local(at: DateTime<Utc>, zone: Tz) -> (NaiveDate, NaiveDateTime) {
    let local = at.with_timezone(&zone).naive_local();
    (local.date(), Bucket::Hour.start(local))
}

/// The visitor-days a batch of hits falls on (bots make no visits).
pub fn visitor_days(hits: &[Hit<'_>], zone_of: impl Fn(&str) -> Tz) -> BTreeSet<VisitorDay> {
    hits.iter()
        .filter(|h| !h.is_bot)
        .map(|h| VisitorDay {
            site: h.site.to_owned(),
            visitor: h.visitor,
            day: local(h.at, zone_of(h.site)).0,
        })
        .collect()
}

/// What a batch changes: the visits to write, the rollup deltas, and the visit each hit was
/// placed in (in the order of the hits; `None` for bots and for reports of no open visit).
#[derive(Debug, Default)]
pub struct Changes {
    pub visits: Vec<Visit>,
    pub rollup: Rollup,
    pub placed: Vec<Option<Uuid>>,
}

/// Places `hits` (in the order they were stored) into the visits of `state`, which holds every
/// visit of each visitor-day the hits fall on, sorted by start. A gap over `timeout` or the
/// site's midnight starts a new visit; an engagement report extends the open visit and starts
/// none; a custom event extends the open visit or starts one.
pub fn sessionize(
    state: &HashMap<VisitorDay, Vec<Visit>>,
    hits: &[Hit<'_>],
    timeout: TimeDelta,
    zone_of: impl Fn(&str) -> Tz,
) -> Changes {
    let mut rollup = Rollup::default();
    let mut after: HashMap<VisitorDay, Vec<Visit>> = HashMap::new();
    let mut changed: BTreeSet<Uuid> = BTreeSet::new();
    let mut placed = Vec::with_capacity(hits.len());
    for hit in hits {
        let (day, hour) = local(hit.at, zone_of(hit.site));
        if hit.is_bot {
            let bot = hit.traits.browser;
            if hit.kind == HitKind::PageView {
                rollup.day(hit.site, RollupKey::Bot, day, bot).pageviews += 1;
            }
            placed.push(None);
            continue;
        }
        let key = VisitorDay {
            site: hit.site.to_owned(),
            visitor: hit.visitor,
            day,
        };
        let visits = after
            .entry(key)
            .or_insert_with_key(|key| state.get(key).cloned().unwrap_or_default());
        let open = visits
            .last_mut()
            .filter(|open| hit.at - open.last_seen_at <= timeout);
        match (open, hit.kind) {
            (Some(open), HitKind::PageView) => open.extend(hit),
            (Some(open), HitKind::Engagement { ms }) => open.engage(hit, ms, timeout),
            (Some(open), HitKind::Event) => open.touch(hit),
            (None, HitKind::PageView) => visits.push(Visit::start(hit, day, hour)),
            (None, HitKind::Event) => {
                let mut visit = Visit::start(hit, day, hour);
                visit.touch(hit);
                visits.push(visit);
            }
            // A report for a visit already over (or never seen) starts nothing.
            (None, HitKind::Engagement { .. }) => {
                placed.push(None);
                continue;
            }
        }
        let visit = visits.last().map(|v| v.id);
        changed.extend(visit);
        placed.push(visit);
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
        placed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimension::Traits;
    use chrono::TimeZone;

    const TIMEOUT: TimeDelta = TimeDelta::minutes(30);

    fn utc(_: &str) -> Tz {
        Tz::UTC
    }

    fn hit(n: u128, visitor: i64, minute: i64, page: &'static str) -> Hit<'static> {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
            .single()
            .expect("a time");
        Hit {
            id: Uuid::from_u128(n),
            site: "shop.example",
            visitor,
            at: start + TimeDelta::minutes(minute),
            page,
            is_bot: false,
            kind: HitKind::PageView,
            traits: Traits {
                source: "google",
                ..Traits::default()
            },
            name: "",
            props: Vec::new(),
        }
    }

    /// Applies batches one after the other, as the consumer does, keeping the visits between.
    fn run(batches: &[&[Hit<'_>]], zone_of: impl Fn(&str) -> Tz + Copy) -> (Vec<Visit>, Rollup) {
        let mut state: HashMap<VisitorDay, Vec<Visit>> = HashMap::new();
        let mut total = Rollup::default();
        for batch in batches {
            let changes = sessionize(&state, batch, TIMEOUT, zone_of);
            for visit in changes.visits {
                let visits = state.entry(VisitorDay::of(&visit)).or_default();
                match visits.iter_mut().find(|v| v.id == visit.id) {
                    Some(old) => *old = visit,
                    None => visits.push(visit),
                }
            }
            total.merge(changes.rollup);
        }
        total.drop_zeros();
        let mut visits: Vec<Visit> = state.into_values().flatten().collect();
        visits.sort_by_key(|v| v.started_at);
        (visits, total)
    }

    fn totals(rollup: &Rollup, key: RollupKey, value: &str) -> Counts {
        rollup
            .days
            .iter()
            .filter(|((_, k, _, v), _)| *k == key && v == value)
            .fold(Counts::default(), |mut sum, (_, c)| {
                sum.add(c, 1);
                sum
            })
    }

    #[test]
    fn a_paired_filter_counts_what_the_visits_with_its_value_count_under_each_breakdown() {
        let from_bing = |mut h: Hit<'static>| {
            h.traits.source = "bing";
            h
        };
        let hits = [
            hit(1, 7, 0, "/"),
            hit(2, 7, 10, "/pricing"),
            from_bing(hit(3, 8, 0, "/pricing")),
            hit(4, 9, 0, "/pricing"),
            hit(5, 9, 45, "/docs"), // the same visitor's second visit, also from google
        ];
        let (_, rollup) = run(&[&hits[..2], &hits[2..]], utc);
        let pricing = |source| {
            let key = RollupKey::pair(Dimension::Source, Dimension::Page).expect("paired");
            totals(&rollup, key, &pair_value(source, "/pricing"))
        };
        let google = pricing("google");
        assert_eq!(
            (google.pageviews, google.visits, google.visitors),
            (2, 2, 2)
        );
        let bing = pricing("bing");
        assert_eq!((bing.pageviews, bing.visits, bing.visitors), (1, 1, 1));
        let key = RollupKey::pair(Dimension::Source, Dimension::EntryPage).expect("paired");
        let entered = totals(&rollup, key, &pair_value("google", "/docs"));
        assert_eq!(
            (entered.visits, entered.visitors, entered.bounces),
            (1, 1, 1)
        );
        // Every google row of a pair sums to the google row of the source itself.
        let key = RollupKey::pair(Dimension::Source, Dimension::Device).expect("paired");
        let by_device = totals(&rollup, key, &pair_value("google", ""));
        assert_eq!(
            by_device,
            totals(&rollup, RollupKey::Of(Dimension::Source), "google")
        );
        assert_eq!(RollupKey::pair(Dimension::Source, Dimension::Source), None);
        assert_eq!(RollupKey::pair(Dimension::Page, Dimension::Source), None);
    }

    #[test]
    fn a_gap_over_thirty_minutes_starts_a_new_visit_and_a_single_page_visit_bounces() {
        let hits = [
            hit(1, 7, 0, "/"),
            hit(2, 7, 10, "/pricing"),
            hit(3, 7, 41, "/docs"), // 31 minutes later: a new visit, a bounce
            hit(4, 8, 5, "/pricing"),
        ];
        let (visits, rollup) = run(&[&hits], utc);
        assert_eq!(visits.len(), 3);
        assert_eq!(visits[0].duration, 600);
        assert_eq!(
            (visits[0].entry_page.as_str(), visits[0].exit_page.as_str()),
            ("/", "/pricing")
        );
        let all = totals(&rollup, RollupKey::All, "");
        assert_eq!(
            all,
            Counts {
                pageviews: 4,
                visitors: 2,
                visits: 3,
                bounces: 2,
                duration: 600,
                events: 0,
            }
        );
        let pricing = totals(&rollup, RollupKey::Of(Dimension::Page), "/pricing");
        assert_eq!(
            (pricing.pageviews, pricing.visitors, pricing.visits),
            (2, 2, 2)
        );
        let exit = |page| totals(&rollup, RollupKey::Of(Dimension::ExitPage), page).visits;
        assert_eq!((exit("/pricing"), exit("/")), (2, 0));
        assert_eq!(
            totals(&rollup, RollupKey::Of(Dimension::Source), "google").visits,
            3
        );
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
        let whole = run(&[&hits], utc);
        let split: Vec<&[Hit<'_>]> = hits.chunks(7).collect();
        let pieces = run(&split, utc);
        assert_eq!(whole, pieces);
        assert!(totals(&whole.1, RollupKey::All, "").visits > 5);
    }

    #[test]
    fn a_visit_ends_at_the_end_of_the_sites_day_in_its_time_zone() {
        let new_york = |_: &str| chrono_tz::America::New_York;
        // Midnight in New York is 05:00 UTC: 04:55 and 05:10 UTC are 15 minutes apart.
        let hits = [hit(1, 7, -305, "/"), hit(2, 7, -290, "/a")];
        let (visits, rollup) = run(&[&hits], new_york);
        assert_eq!(visits.len(), 2, "the visit is cut at local midnight");
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("a day");
        assert_eq!((visits[0].day, visits[1].day), (day(19), day(20)));
        assert_eq!(
            totals(&rollup, RollupKey::All, "").visitors,
            2,
            "one per local day"
        );
    }

    #[test]
    fn an_engagement_report_gives_a_single_page_visit_its_duration_and_unbounces_it() {
        let mut report = hit(2, 7, 1, "/");
        report.kind = HitKind::Engagement { ms: 25_000 };
        let mut late = hit(3, 8, 50, "/");
        late.kind = HitKind::Engagement { ms: 5_000 }; // visitor 8 has no visit: starts nothing
        let (visits, rollup) = run(&[&[hit(1, 7, 0, "/")], &[report, late]], utc);
        assert_eq!(visits.len(), 1);
        assert_eq!((visits[0].pageviews, visits[0].duration), (1, 60));
        let all = totals(&rollup, RollupKey::All, "");
        assert_eq!(
            (all.pageviews, all.visits, all.bounces, all.duration),
            (1, 1, 0, 60)
        );
    }

    #[test]
    fn a_custom_event_keeps_its_visit_going_or_starts_one_without_a_page_view() {
        let mut signup = hit(2, 7, 25, "/pricing");
        signup.kind = HitKind::Event;
        signup.name = "Signup";
        signup.props = vec![("plan", "pro")];
        let mut alone = hit(4, 8, 1, "/docs");
        alone.kind = HitKind::Event;
        alone.name = "Signup";
        alone.props = vec![("plan", "free")];
        let batch = [hit(1, 7, 0, "/"), signup, hit(3, 7, 50, "/"), alone];
        let changes = sessionize(&HashMap::new(), &batch, TIMEOUT, utc);
        let one = Some(Uuid::from_u128(1));
        let four = Some(Uuid::from_u128(4));
        assert_eq!(changes.placed, vec![one, one, one, four]);
        let (visits, rollup) = run(&[&batch], utc);
        assert_eq!(
            visits.len(),
            2,
            "the page view 25 minutes after the event continues it"
        );
        assert_eq!((visits[0].pageviews, visits[0].duration), (2, 3000));
        assert_eq!(
            (visits[1].pageviews, visits[1].entry_page.as_str()),
            (0, "/docs")
        );
        assert!(visits[1].pages.is_empty());
        let all = totals(&rollup, RollupKey::All, "");
        assert_eq!(
            (all.pageviews, all.visits, all.visitors, all.events),
            (2, 2, 2, 2)
        );
        let signups = totals(&rollup, RollupKey::Of(Dimension::EventName), "Signup");
        assert_eq!((signups.visitors, signups.events), (2, 2));
        let pro = totals(&rollup, RollupKey::Of(Dimension::Property), "plan\u{1f}pro");
        assert_eq!((pro.visitors, pro.visits, pro.events), (1, 1, 1));
    }

    #[test]
    fn bots_are_counted_apart_and_make_no_visit() {
        let mut bot = hit(1, 9, 0, "/");
        bot.is_bot = true;
        bot.traits.browser = "Googlebot";
        let (visits, rollup) = run(&[&[bot, hit(2, 7, 1, "/")]], utc);
        assert_eq!(visits.len(), 1);
        assert_eq!(totals(&rollup, RollupKey::Bot, "Googlebot").pageviews, 1);
        assert_eq!(totals(&rollup, RollupKey::All, "").pageviews, 1);
    }
}
