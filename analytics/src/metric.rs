//! The metrics, declared once in `Metric::spec`: the name (CSV header), the dashboard's label,
//! the unit, and how each derives from a group's `Figures` (additive `Counts`, the custom
//! events, the visitors a conversion rate divides by). Ratios are derived per group, never
//! summed, so every metric of every group is exact.

use serde::{Deserialize, Serialize};

use crate::counts::Counts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Metric {
    Visitors,
    Visits,
    Pageviews,
    ViewsPerVisit,
    BounceRate,
    VisitDuration,
    /// Custom events (in a goal's row: the hits that completed it).
    Events,
    /// Unique visitors who completed the goal (of the row, or of the `GOAL` filter).
    Conversions,
    /// Conversions in percent of the visitors under the same filters, the goal's aside.
    ConversionRate,
    /// How far down a page visits scrolled, in percent: the deepest scroll each visit reported
    /// on the page, averaged over the visits that reported one (`PAGE` only).
    ScrollDepth,
    /// Engaged seconds on a page (visible and focused), per visit that reported any (`PAGE`
    /// only).
    TimeOnPage,
}

/// What the engagement reports say of a page: the visits that reported on it, the sum of
/// each one's deepest scroll, and their engaged milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageReports {
    pub visits: i64,
    pub scroll: i64,
    pub engaged_ms: i64,
}

/// What a group's metrics derive from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub counts: Counts,
    /// The visitors of the same group without the goal narrowing it: what a conversion rate
    /// divides by.
    pub all_visitors: i64,
    pub reports: PageReports,
}

impl Figures {
    pub fn of(counts: Counts) -> Figures {
        Figures {
            counts,
            ..Figures::default()
        }
    }
}

/// How a metric's value reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Unit {
    Count,
    /// Two decimals.
    Ratio,
    /// Whole percent; its change between periods is in points.
    Percent,
    Seconds,
}

/// Which way a change is good news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Better {
    Higher,
    Lower,
}

pub struct Spec {
    pub name: &'static str,
    pub label: &'static str,
    pub unit: Unit,
    pub better: Better,
    pub of: fn(&Figures) -> f64,
}

impl Metric {
    pub const ALL: &'static [Metric] = &[
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::Events,
        Metric::Conversions,
        Metric::ConversionRate,
        Metric::ScrollDepth,
        Metric::TimeOnPage,
    ];

    /// Whether the metric is a page's, from the engagement reports (with the `PAGE` dimension).
    pub fn of_pages(self) -> bool {
        matches!(self, Metric::ScrollDepth | Metric::TimeOnPage)
    }

    /// Whether the metric needs goals: a `GOAL` dimension or filter.
    pub fn of_goals(self) -> bool {
        matches!(self, Metric::Conversions | Metric::ConversionRate)
    }

    pub fn spec(self) -> Spec {
        let (name, label, unit, of): (_, _, _, fn(&Figures) -> f64) =
            match self {
                Metric::Visitors => ("visitors", "Visitors", Unit::Count, |f| {
                    f.counts.visitors as f64
                }),
                Metric::Visits => ("visits", "Visits", Unit::Count, |f| f.counts.visits as f64),
                Metric::Pageviews => ("pageviews", "Page views", Unit::Count, |f| {
                    f.counts.pageviews as f64
                }),
                Metric::ViewsPerVisit => ("views_per_visit", "Views per visit", Unit::Ratio, |f| {
                    (per_visit(&f.counts, f.counts.pageviews) * 100.0).round() / 100.0
                }),
                Metric::BounceRate => ("bounce_rate", "Bounce rate", Unit::Percent, |f| {
                    (per_visit(&f.counts, f.counts.bounces) * 100.0).round()
                }),
                Metric::VisitDuration => ("visit_duration", "Visit duration", Unit::Seconds, |f| {
                    per_visit(&f.counts, f.counts.duration).round()
                }),
                Metric::Events => ("events", "Events", Unit::Count, |f| f.counts.events as f64),
                Metric::Conversions => ("conversions", "Conversions", Unit::Count, |f| {
                    f.counts.visitors as f64
                }),
                // One decimal: 2 of 3 visitors is 66.7 %.
                Metric::ConversionRate => (
                    "conversion_rate",
                    "Conversion rate",
                    Unit::Percent,
                    |f| match f.all_visitors {
                        0 => 0.0,
                        all => (f.counts.visitors as f64 * 1000.0 / all as f64).round() / 10.0,
                    },
                ),
                Metric::ScrollDepth => ("scroll_depth", "Scroll depth", Unit::Percent, |f| {
                    per_report(f, f.reports.scroll).round()
                }),
                Metric::TimeOnPage => ("time_on_page", "Time on page", Unit::Seconds, |f| {
                    (per_report(f, f.reports.engaged_ms) / 1000.0).round()
                }),
            };
        // Fewer bounces is better; more of everything else.
        let better = match self {
            Metric::BounceRate => Better::Lower,
            _ => Better::Higher,
        };
        Spec {
            name,
            label,
            unit,
            better,
            of,
        }
    }

    /// The metric's value for a group's figures.
    pub fn of(self, figures: &Figures) -> f64 {
        (self.spec().of)(figures)
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The change from `then` to `now`: points for a percentage, else percent of `then` to
    /// one decimal (none when `then` is 0).
    pub fn change(self, now: f64, then: f64) -> Option<f64> {
        match self.spec().unit {
            Unit::Percent => Some(now - then),
            _ if then == 0.0 => None,
            _ => Some(((now - then) / then * 1000.0).round() / 10.0),
        }
    }
}

fn per_report(f: &Figures, n: i64) -> f64 {
    match f.reports.visits {
        0 => 0.0,
        visits => n as f64 / visits as f64,
    }
}

fn per_visit(c: &Counts, n: i64) -> f64 {
    if c.visits == 0 {
        0.0
    } else {
        n as f64 / c.visits as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_derive_from_additive_counts() {
        let c = Counts {
            pageviews: 10,
            visitors: 3,
            visits: 4,
            bounces: 1,
            duration: 250,
            events: 7,
        };
        let f = Figures {
            counts: c,
            all_visitors: 9,
            reports: PageReports {
                visits: 2,
                scroll: 150,
                engaged_ms: 61_000,
            },
        };
        let m: Vec<f64> = Metric::ALL.iter().map(|m| m.of(&f)).collect();
        assert_eq!(
            m,
            [3.0, 4.0, 10.0, 2.5, 25.0, 63.0, 7.0, 3.0, 33.3, 75.0, 31.0]
        );
        assert_eq!(Metric::BounceRate.of(&Figures::default()), 0.0);
        assert_eq!(Metric::ConversionRate.of(&Figures::default()), 0.0);
        assert_eq!(Metric::BounceRate.change(20.0, 25.0), Some(-5.0));
        assert_eq!(Metric::Visitors.change(3.0, 2.0), Some(50.0));
        assert_eq!(Metric::Visitors.change(3.0, 0.0), None);
    }
}
