//! The registry of dimensions: each is declared once, in the `dimensions!` list below, with its
//! stored name (the `visits` column and the `rollup_days.dimension` value; the CSV header), its
//! label (the dashboard's panel title) and its scope. The API name is the variant's, in
//! SCREAMING_SNAKE_CASE (`UtmSource` is `UTM_SOURCE`).
//!
//! A visit dimension (`traits`) is a property of the whole visit, taken from its first page
//! view. Its stored name is also the field of `Traits` and the column of `kafka_events` and
//! `visits` its value is read from and written to.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::bucket::Bucket;

/// Where a dimension's value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A time bucket of the visit's start, in the site's time zone.
    Time(Bucket),
    /// Each page view's path: a visit counts once under each page it viewed.
    PageView,
    /// The visit's first path.
    Entry,
    /// The visit's last path.
    Exit,
    /// A value of the whole visit, from its first page view (`Traits`).
    Visit,
    /// A goal the visit completed: a visit counts once under each (from `conversions`).
    Goal,
    /// A custom event's name: a visit counts once under each name it sent.
    EventName,
    /// A value of one property of custom events, the key named in the query.
    Property,
}

impl Scope {
    /// Whether the values come from custom events and goals, kept apart from the rollups.
    pub const fn is_of_events(self) -> bool {
        matches!(self, Scope::Goal | Scope::EventName | Scope::Property)
    }
}

macro_rules! dimensions {
    (
        fixed { $($fixed:ident = $fname:literal, $flabel:literal, $scope:expr;)* }
        traits { $($trait_:ident = $field:ident, $tlabel:literal;)* }
    ) => {
        /// What a Stats query breaks its counts down by.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum Dimension {
            $($fixed,)*
            $($trait_,)*
        }

        impl Dimension {
            /// Every dimension, in the order the dashboard shows them.
            pub const ALL: &'static [Dimension] = &[$(Dimension::$fixed,)* $(Dimension::$trait_,)*];
            /// The visit dimensions, in the order of `Traits`' fields.
            pub const TRAITS: &'static [Dimension] = &[$(Dimension::$trait_,)*];

            /// The stored name: the `visits` column (for visit dimensions also the
            /// `kafka_events` column), the `rollup_days.dimension` value, the CSV header.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Dimension::$fixed => $fname,)*
                    $(Dimension::$trait_ => stringify!($field),)*
                }
            }

            /// What the dashboard calls it.
            pub const fn label(self) -> &'static str {
                match self {
                    $(Dimension::$fixed => $flabel,)*
                    $(Dimension::$trait_ => $tlabel,)*
                }
            }

            pub const fn scope(self) -> Scope {
                match self {
                    $(Dimension::$fixed => $scope,)*
                    $(Dimension::$trait_ => Scope::Visit,)*
                }
            }
        }

        /// A visit's values of the visit dimensions, one field per dimension, named as the
        /// columns are. `S` is `String` in a stored visit, `&str` in a hit, `Option<String>`
        /// read from a stored event (whose columns are NULL for "none").
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Traits<S> {
            $(pub $field: S,)*
        }

        impl<S> Traits<S> {
            /// The value of a visit dimension; `None` for the others.
            pub fn get(&self, dimension: Dimension) -> Option<&S> {
                match dimension {
                    $(Dimension::$trait_ => Some(&self.$field),)*
                    _ => None,
                }
            }

            /// The same values, each converted.
            pub fn map<'a, T>(&'a self, mut f: impl FnMut(&'a S) -> T) -> Traits<T> {
                Traits { $($field: f(&self.$field),)* }
            }
        }
    };
}

dimensions! {
    fixed {
        TimeHour = "hour", "Hours", Scope::Time(Bucket::Hour);
        TimeDay = "day", "Days", Scope::Time(Bucket::Day);
        TimeWeek = "week", "Weeks", Scope::Time(Bucket::Week);
        TimeMonth = "month", "Months", Scope::Time(Bucket::Month);
        Page = "page", "Pages", Scope::PageView;
        EntryPage = "entry_page", "Entry pages", Scope::Entry;
        ExitPage = "exit_page", "Exit pages", Scope::Exit;
        Goal = "goal", "Goals", Scope::Goal;
        EventName = "event_name", "Custom events", Scope::EventName;
        Property = "property", "Properties", Scope::Property;
    }
    traits {
        Source = source, "Sources";
        Channel = channel, "Channels";
        UtmSource = utm_source, "UTM sources";
        UtmMedium = utm_medium, "UTM media";
        UtmCampaign = utm_campaign, "UTM campaigns";
        Browser = browser, "Browsers";
        Os = os, "Operating systems";
        Device = device, "Devices";
        Country = country, "Countries";
        Region = region, "Regions";
        City = city, "Cities";
    }
}

impl Dimension {
    /// The time bucket of a time dimension.
    pub const fn bucket(self) -> Option<Bucket> {
        match self.scope() {
            Scope::Time(bucket) => Some(bucket),
            _ => None,
        }
    }

    pub const fn is_time(self) -> bool {
        self.bucket().is_some()
    }

    /// The dimensions a table can be broken down by (what the dashboard shows as panels).
    pub fn breakdowns() -> impl Iterator<Item = Dimension> {
        Dimension::ALL.iter().copied().filter(|d| !d.is_time())
    }

    /// The breakdowns the visits and rollups keep (goals have their own tables: a goal is
    /// defined after the events it counts).
    pub fn of_visits() -> impl Iterator<Item = Dimension> {
        Dimension::breakdowns().filter(|d| d.scope() != Scope::Goal)
    }

    /// The dimensions a dashboard is filtered by with a click on a row, kept in the rollups
    /// crossed with every other breakdown of the visits (`RollupKey::Pair`), so that a
    /// dashboard with one such filter reads rollups, not visits. Each costs the consumer a
    /// rollup row per visit and breakdown: only values of the whole visit, few per site.
    pub const PAIRED: &'static [Dimension] = &[
        Dimension::Source,
        Dimension::Channel,
        Dimension::Device,
        Dimension::Country,
    ];

    /// The breakdowns a paired filter is crossed with: the visits' own, not custom events'.
    pub fn crossed() -> impl Iterator<Item = Dimension> {
        Dimension::of_visits().filter(|d| !d.scope().is_of_events())
    }
}

/// What a rollup row is kept for (and so in which table: `RollupKey::table`): the site's
/// totals, one dimension's value, a filtered dimension's value, or the page views of bots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RollupKey {
    /// Every visit, value `''`.
    All,
    Of(Dimension),
    /// The visits with a value of the first (a `Dimension::PAIRED`) by their value of the
    /// second (a row's filter value is kept with its dimension: `RollupKey::stored`).
    Pair(Dimension, Dimension),
    /// The visits with a value of each of two paired dimensions (in `PAIRED` order) by their
    /// value of a third: a dashboard after two clicks (a source, then a device). The row's
    /// filter is both values, joined by `PAIR_SEPARATOR`.
    Triple(Dimension, Dimension, Dimension),
    /// Page views of bots by bot name (no visits: bots are kept out of every other row).
    Bot,
}

/// The tables the rollups are kept in. Each filtered page reads a table of its own kind of rows,
/// so the unfiltered one reads none of the many filtered rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RollupTable {
    /// `RollupKey::All`, `Of` and `Bot`: the unfiltered dashboard.
    Days,
    /// `RollupKey::Pair`: the dashboard after one click.
    PairDays,
    /// `RollupKey::Triple`: the dashboard after two clicks.
    TripleDays,
    /// Every visit by local hour.
    Hours,
}

impl RollupTable {
    pub const ALL: [RollupTable; 4] = [
        RollupTable::Days,
        RollupTable::PairDays,
        RollupTable::TripleDays,
        RollupTable::Hours,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            RollupTable::Days => "rollup_days",
            RollupTable::PairDays => "rollup_pair_days",
            RollupTable::TripleDays => "rollup_triple_days",
            RollupTable::Hours => "rollup_hours",
        }
    }

    /// Every rollup table's name, joined by `, ` (for `TRUNCATE`, `LOCK`, `VACUUM`).
    pub fn list() -> String {
        RollupTable::ALL.map(RollupTable::name).join(", ")
    }
}

/// Whether two filters were given in the other order than a key keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swapped {
    No,
    Yes,
}

/// What separates a pair's name from its filter value in `dimension` (no kept text
/// holds it).
pub const PAIR_SEPARATOR: char = '\u{1f}';

/// The stored names of the pairs, `filter*breakdown`, made once.
static PAIR_NAMES: LazyLock<HashMap<(Dimension, Dimension), String>> = LazyLock::new(|| {
    Dimension::PAIRED
        .iter()
        .flat_map(|f| Dimension::crossed().map(move |d| (*f, d)))
        .filter(|(f, d)| f != d)
        .map(|(f, d)| ((f, d), format!("{}*{}", f.name(), d.name())))
        .collect()
});

/// The stored names of the triples, `first+second*breakdown`, made once: each two paired
/// dimensions in `PAIRED` order, by every other crossed breakdown.
static TRIPLE_NAMES: LazyLock<HashMap<(Dimension, Dimension, Dimension), String>> =
    LazyLock::new(|| {
        let paired = Dimension::PAIRED;
        let twos = paired
            .iter()
            .enumerate()
            .flat_map(|(i, a)| paired[i + 1..].iter().map(move |b| (*a, *b)));
        twos.flat_map(|(a, b)| Dimension::crossed().map(move |d| (a, b, d)))
            .filter(|(a, b, d)| d != a && d != b)
            .map(|(a, b, d)| ((a, b, d), format!("{}+{}*{}", a.name(), b.name(), d.name())))
            .collect()
    });

/// Two filter values as a triple's row keeps them, in the order of their dimensions.
pub fn joined_filter(first: &str, second: &str) -> String {
    format!("{first}{PAIR_SEPARATOR}{second}")
}

impl RollupKey {
    /// The value of a rollup row's `dimension`.
    pub fn name(self) -> &'static str {
        match self {
            RollupKey::All => "all",
            RollupKey::Of(d) => d.name(),
            RollupKey::Pair(f, d) => match PAIR_NAMES.get(&(f, d)) {
                Some(name) => name.as_str(),
                None => "unpaired",
            },
            RollupKey::Triple(a, b, d) => match TRIPLE_NAMES.get(&(a, b, d)) {
                Some(name) => name.as_str(),
                None => "unpaired",
            },
            RollupKey::Bot => "bot",
        }
    }

    /// The table its rows are kept in.
    pub const fn table(self) -> RollupTable {
        match self {
            RollupKey::All | RollupKey::Of(_) | RollupKey::Bot => RollupTable::Days,
            RollupKey::Pair(..) => RollupTable::PairDays,
            RollupKey::Triple(..) => RollupTable::TripleDays,
        }
    }

    /// The `dimension` of a row of this key: a pair's filter value goes with its
    /// name (`source*page<separator>google`), so a filtered panel reads only its own rows, by
    /// the primary key.
    pub fn stored(self, filter: &str) -> Cow<'static, str> {
        match self {
            RollupKey::Pair(..) | RollupKey::Triple(..) => {
                Cow::Owned(format!("{}{PAIR_SEPARATOR}{filter}", self.name()))
            }
            _ => Cow::Borrowed(self.name()),
        }
    }

    /// The rollup of a breakdown under a one-value filter on another dimension, if kept.
    pub fn pair(filter: Dimension, breakdown: Dimension) -> Option<RollupKey> {
        PAIR_NAMES
            .contains_key(&(filter, breakdown))
            .then_some(RollupKey::Pair(filter, breakdown))
    }

    /// The rollup of a breakdown under one-value filters on two other dimensions, if kept,
    /// with whether the filters go the other way round (their values are joined in the
    /// key's order: `joined_filter`).
    pub fn triple(
        first: Dimension,
        second: Dimension,
        breakdown: Dimension,
    ) -> Option<(RollupKey, Swapped)> {
        if TRIPLE_NAMES.contains_key(&(first, second, breakdown)) {
            return Some((RollupKey::Triple(first, second, breakdown), Swapped::No));
        }
        TRIPLE_NAMES
            .contains_key(&(second, first, breakdown))
            .then_some((RollupKey::Triple(second, first, breakdown), Swapped::Yes))
    }

    /// The rollup of a query's one breakdown or filter dimension (time has none: it is the
    /// rows' day).
    pub fn of(dimension: Option<Dimension>) -> Option<RollupKey> {
        match dimension {
            None => Some(RollupKey::All),
            Some(d) if d.is_time() || d.scope() == Scope::Goal => None,
            Some(d) => Some(RollupKey::Of(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_unique_and_traits_are_named_as_their_columns() {
        let mut names: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
        names.extend(["all", "bot"]);
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        let traits = Traits::<&str>::default().map(|_| 1);
        let json = serde_json::to_value(&traits).expect("json");
        for d in Dimension::TRAITS {
            assert_eq!(json[d.name()], 1, "{d:?}");
            assert_eq!(d.scope(), Scope::Visit);
        }
    }

    #[test]
    fn a_stored_event_without_a_value_reads_as_none() {
        let stored: Traits<Option<i32>> =
            serde_json::from_str(r#"{"source":7,"channel":null,"other":1}"#).expect("row");
        assert_eq!(stored.get(Dimension::Source), Some(&Some(7)));
        assert_eq!(stored.get(Dimension::Channel), Some(&None));
        assert_eq!(stored.get(Dimension::Country), Some(&None));
        assert_eq!(stored.get(Dimension::Page), None);
    }
}
