//! Sessionizing: places hits into the visits of their visitor-days, and says what the changed
//! visitor-days now contribute to the rollups. Pure; the consumer reads and writes the state.
//!
//! Rollups are a pure function of the visits: the visits of a visitor's day contribute counts
//! to the rollup tables (`RollupTable`; see `Rollup::contribute`). A batch adds, for each
//! visitor-day it touches, the contribution after minus the contribution before, so the rollups
//! equal the sum over all visits however the hits were batched.
//!
//! Unique visitors are exact and bounded: visitor ids are salted per UTC day, so a visitor's
//! distinct (dimension, value) pairs of a day are read from that visitor's few visits of the day.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bucket::Bucket;
use crate::counts::Counts;
use crate::dimension::{Dimension, RollupKey};
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

/// Rollup deltas keyed as the tables are: by site and local day, key, the filter value of a
/// pair or triple (`""` for other keys), and value. The texts of the keys are kept once each
/// (`Names`) and rows are keyed by their numbers, so adding to a row found again (most are)
/// hashes a few integers and allocates nothing: the consumer adds over a hundred per visit.
#[derive(Debug, Default, Clone)]
pub struct Rollup {
    names: Names,
    days: hashbrown::HashMap<RowKey, Counts>,
    pub hours: BTreeMap<(String, NaiveDateTime), Counts>,
}

/// A day row's key, its texts by their numbers in `Names`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RowKey {
    site: u32,
    day: NaiveDate,
    key: RollupKey,
    filter: u32,
    value: u32,
}

/// Each text a rollup's rows name, kept once and numbered in the order first met.
#[derive(Debug, Default, Clone)]
struct Names {
    texts: Vec<Box<str>>,
    /// The number of each text, found by the text's hash.
    numbers: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Names {
    fn number(&mut self, text: &str) -> u32 {
        let Names {
            texts,
            numbers,
            hasher,
        } = self;
        let hash = hasher.hash_one(text);
        let found = numbers.find(hash, |&n| &*texts[n as usize] == text);
        if let Some(&n) = found {
            return n;
        }
        let n = u32::try_from(texts.len()).expect("fewer than 2^32 texts in one batch");
        texts.push(text.into());
        numbers.insert_unique(hash, n, |&n| hasher.hash_one(&*texts[n as usize]));
        n
    }

    fn text(&self, n: u32) -> &str {
        &self.texts[n as usize]
    }
}

/// One row of day deltas (of `key.table()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRow<'a> {
    pub site: &'a str,
    pub key: RollupKey,
    pub day: NaiveDate,
    /// A pair's filter value; `""` for other keys.
    pub filter: &'a str,
    pub value: &'a str,
    pub counts: &'a Counts,
}

/// A visit's rows before they are added: key, filter and value (by number), and counts.
type Contribution = Vec<(RollupKey, u32, u32, Counts)>;

impl Rollup {
    /// The row of `key`, `filter` and `value` on a site's day, made on first use.
    fn row(
        &mut self,
        (site, day): (u32, NaiveDate),
        key: RollupKey,
        (filter, value): (u32, u32),
    ) -> &mut Counts {
        let key = RowKey {
            site,
            day,
            key,
            filter,
            value,
        };
        self.days.entry(key).or_default()
    }

    fn hour(&mut self, site: &str, hour: NaiveDateTime) -> &mut Counts {
        self.hours.entry((site.to_owned(), hour)).or_default()
    }

    /// Counts a bot's page view on a site's day.
    fn bot_view(&mut self, site: &str, day: NaiveDate, bot: &str) {
        let (site, empty, bot) = (
            self.names.number(site),
            self.names.number(""),
            self.names.number(bot),
        );
        self.row((site, day), RollupKey::Bot, (empty, bot))
            .pageviews += 1;
    }

    /// Every day row.
    pub fn days(&self) -> impl Iterator<Item = DayRow<'_>> {
        self.days.iter().map(|(k, counts)| DayRow {
            site: self.names.text(k.site),
            key: k.key,
            day: k.day,
            filter: self.names.text(k.filter),
            value: self.names.text(k.value),
            counts,
        })
    }

    /// The rows a visit counts under: the site's totals, each visit dimension's value, each
    /// page viewed, each paired filter value by each other value, each two paired values by
    /// each other value, each event name and property value it sent.
    fn rows_of(&mut self, visit: &Visit) -> Contribution {
        let names = &mut self.names;
        let empty = names.number("");
        let counts = visit.counts();
        let once =
            Dimension::crossed().filter_map(|d| Some((d, names.number(visit.value(d)?), counts)));
        let mut single: Vec<(Dimension, u32, Counts)> = once.collect();
        for (page, views) in &visit.pages {
            let on_page = Counts {
                pageviews: i64::from(*views),
                ..counts
            };
            single.push((Dimension::Page, names.number(page), on_page));
        }
        let mut rows: Contribution = vec![(RollupKey::All, empty, empty, counts)];
        rows.extend(
            single
                .iter()
                .map(|&(d, v, c)| (RollupKey::Of(d), empty, v, c)),
        );
        for &filter in Dimension::PAIRED {
            let Some(kept) = visit.value(filter) else {
                continue;
            };
            let kept = names.number(kept);
            for &(d, value, counts) in &single {
                if let Some(pair) = RollupKey::pair(filter, d) {
                    rows.push((pair, kept, value, counts));
                }
            }
        }
        for (a, b, kept) in paired_twos(visit) {
            let kept = names.number(&kept);
            for &(d, value, counts) in &single {
                if let Some((triple, _)) = RollupKey::triple(a, b, d) {
                    rows.push((triple, kept, value, counts));
                }
            }
        }
        let of_events = [
            (Dimension::EventName, &visit.event_names),
            (Dimension::Property, &visit.props),
        ];
        for (dimension, values) in of_events {
            for (value, events) in values {
                let with = Counts {
                    events: i64::from(*events),
                    ..counts
                };
                rows.push((RollupKey::Of(dimension), empty, names.number(value), with));
            }
        }
        rows
    }

    /// Adds (`sign` 1) or removes (`sign` -1) what a visitor's visits of one day count: each
    /// visit under each of its rows (`rows_of`), the visitor once under each row any of the
    /// day's visits has, and the start hours.
    pub fn contribute(&mut self, visits: &[Visit], sign: i64) {
        let Some(first) = visits.first() else { return };
        let site_day = (self.names.number(&first.site), first.day);
        // Most days of a visitor are one visit: nothing to remember then.
        let mut seen: hashbrown::HashSet<(RollupKey, u32, u32)> = hashbrown::HashSet::new();
        let one_visit = visits.len() == 1;
        let mut hours = BTreeSet::new();
        for visit in visits {
            for (key, filter, value, counts) in self.rows_of(visit) {
                let row = self.row(site_day, key, (filter, value));
                row.add(&counts, sign);
                if one_visit {
                    row.visitors += sign;
                } else {
                    seen.insert((key, filter, value));
                }
            }
            hours.insert(visit.hour);
        }
        for (key, filter, value) in seen {
            self.row(site_day, key, (filter, value)).visitors += sign;
        }
        for visit in visits {
            self.hour(&visit.site, visit.hour)
                .add(&visit.counts(), sign);
        }
        for hour in hours {
            self.hour(&first.site, hour).visitors += sign;
        }
    }

    pub fn drop_zeros(&mut self) {
        self.days.retain(|_, c| !c.is_zero());
        self.hours.retain(|_, c| !c.is_zero());
    }

    /// Adds another batch's deltas to these.
    pub fn merge(&mut self, other: Rollup) {
        for (k, counts) in &other.days {
            let site = self.names.number(other.names.text(k.site));
            let filter = self.names.number(other.names.text(k.filter));
            let value = self.names.number(other.names.text(k.value));
            self.row((site, k.day), k.key, (filter, value))
                .add(counts, 1);
        }
        for (k, c) in other.hours {
            self.hours.entry(k).or_default().add(&c, 1);
        }
    }

    /// The rows, sorted, whatever the numbering: what two equal rollups share.
    fn sorted(&self) -> Vec<DayRow<'_>> {
        let mut rows: Vec<DayRow> = self.days().collect();
        rows.sort_by_key(|r| (r.site, r.day, r.key, r.filter, r.value));
        rows
    }
}

impl PartialEq for Rollup {
    fn eq(&self, other: &Self) -> bool {
        self.hours == other.hours && self.sorted() == other.sorted()
    }
}

impl Eq for Rollup {}

/// Each two paired dimensions a visit has values of (in `PAIRED` order), with the two values
/// joined (`joined_filter`).
fn paired_twos(visit: &Visit) -> Vec<(Dimension, Dimension, String)> {
    let values: Vec<(Dimension, &str)> = Dimension::PAIRED
        .iter()
        .filter_map(|d| Some((*d, visit.value(*d)?)))
        .collect();
    let mut twos = Vec::new();
    for (i, (a, first)) in values.iter().enumerate() {
        for (b, second) in &values[i + 1..] {
            twos.push((*a, *b, crate::dimension::joined_filter(first, second)));
        }
    }
    twos
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
                rollup.bot_view(hit.site, day, bot);
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
    use crate::dimension::{Swapped, Traits};
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

    /// The counts of a key's value over all days (a pair's value: `filter` and `value`).
    fn totals(rollup: &Rollup, key: RollupKey, value: &str) -> Counts {
        let (filter, value) = match key {
            RollupKey::Pair(..) | RollupKey::Triple(..) => {
                value.rsplit_once('|').unwrap_or(("", value))
            }
            _ => ("", value),
        };
        rollup
            .days()
            .filter(|r| r.key == key && r.filter == filter && r.value == value)
            .fold(Counts::default(), |mut sum, r| {
                sum.add(r.counts, 1);
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
            totals(&rollup, key, &format!("{source}|/pricing"))
        };
        let google = pricing("google");
        assert_eq!(
            (google.pageviews, google.visits, google.visitors),
            (2, 2, 2)
        );
        let bing = pricing("bing");
        assert_eq!((bing.pageviews, bing.visits, bing.visitors), (1, 1, 1));
        let key = RollupKey::pair(Dimension::Source, Dimension::EntryPage).expect("paired");
        let entered = totals(&rollup, key, "google|/docs");
        assert_eq!(
            (entered.visits, entered.visitors, entered.bounces),
            (1, 1, 1)
        );
        // Every google row of a pair sums to the google row of the source itself.
        let key = RollupKey::pair(Dimension::Source, Dimension::Device).expect("paired");
        let by_device = totals(&rollup, key, "google|");
        assert_eq!(
            by_device,
            totals(&rollup, RollupKey::Of(Dimension::Source), "google")
        );
        assert_eq!(RollupKey::pair(Dimension::Source, Dimension::Source), None);
        assert_eq!(RollupKey::pair(Dimension::Page, Dimension::Source), None);
    }

    #[test]
    fn two_paired_filters_count_what_the_visits_with_both_values_count_under_each_breakdown() {
        let on = |device: &'static str, mut h: Hit<'static>| {
            h.traits.device = device;
            h.traits.browser = "Firefox";
            h
        };
        let hits = [
            on("desktop", hit(1, 7, 0, "/")),
            on("desktop", hit(2, 7, 10, "/pricing")),
            on("mobile", hit(3, 8, 0, "/pricing")),
            on("desktop", hit(4, 9, 0, "/pricing")),
        ];
        let (_, rollup) = run(&[&hits[..1], &hits[1..]], utc);
        let (key, swapped) =
            RollupKey::triple(Dimension::Device, Dimension::Source, Dimension::Page).expect("kept");
        assert_eq!(swapped, Swapped::Yes, "source comes first in PAIRED");
        let filter = crate::dimension::joined_filter("google", "desktop");
        let pricing = totals(&rollup, key, &format!("{filter}|/pricing"));
        assert_eq!(
            (pricing.pageviews, pricing.visits, pricing.visitors),
            (2, 2, 2)
        );
        // Each browser's rows under both values sum to the pair's row of the second value.
        let (by_browser, _) =
            RollupKey::triple(Dimension::Source, Dimension::Device, Dimension::Browser)
                .expect("kept");
        let pair = RollupKey::pair(Dimension::Source, Dimension::Device).expect("paired");
        assert_eq!(
            totals(&rollup, by_browser, &format!("{filter}|Firefox")),
            totals(&rollup, pair, "google|desktop")
        );
        assert_eq!(
            RollupKey::triple(Dimension::Source, Dimension::Device, Dimension::Device),
            None
        );
        assert_eq!(
            RollupKey::triple(Dimension::Source, Dimension::Browser, Dimension::Page),
            None,
            "browser is not paired"
        );
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
