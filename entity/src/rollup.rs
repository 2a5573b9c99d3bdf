//! The rows of `rollup_days` and `rollup_hours` and the dimensions they are kept for. The
//! consumer writes them, the dashboard reads them; both name a dimension through this enum only.

use serde::{Deserialize, Serialize};

/// What a rollup row is broken down by. Every one but `Page` and `Bot` is a property of the
/// whole visit (taken from its first page view, or its last for `ExitPage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Every visit, value `''`: the site's totals.
    All,
    Page,
    EntryPage,
    ExitPage,
    Source,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    Browser,
    Os,
    Device,
    /// Page views of bots by bot name (no visits: bots are kept out of every other row).
    Bot,
}

impl Dimension {
    /// The dimensions a visit has exactly one value of, in the order `visits` stores them.
    pub const OF_VISIT: [Dimension; 11] = [
        Dimension::All,
        Dimension::EntryPage,
        Dimension::ExitPage,
        Dimension::Source,
        Dimension::Channel,
        Dimension::UtmSource,
        Dimension::UtmMedium,
        Dimension::UtmCampaign,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Device,
    ];

    /// The value of `rollup_days.dimension`, and for visit dimensions the `visits` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::All => "all",
            Dimension::Page => "page",
            Dimension::EntryPage => "entry_page",
            Dimension::ExitPage => "exit_page",
            Dimension::Source => "source",
            Dimension::Channel => "channel",
            Dimension::UtmSource => "utm_source",
            Dimension::UtmMedium => "utm_medium",
            Dimension::UtmCampaign => "utm_campaign",
            Dimension::Browser => "browser",
            Dimension::Os => "os",
            Dimension::Device => "device",
            Dimension::Bot => "bot",
        }
    }
}

/// The additive counts of a rollup row. `visitors` counts distinct visitor ids per local day
/// (and per local hour in `rollup_hours`), so it adds up over days but not within one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pageviews: i64,
    pub visitors: i64,
    pub visits: i64,
    pub bounces: i64,
    /// Sum of visit durations in seconds.
    pub duration: i64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts, sign: i64) {
        self.pageviews += sign * other.pageviews;
        self.visitors += sign * other.visitors;
        self.visits += sign * other.visits;
        self.bounces += sign * other.bounces;
        self.duration += sign * other.duration;
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}
