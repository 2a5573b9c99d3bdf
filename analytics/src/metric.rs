//! The metrics, declared once in `Metric::spec`: the name (CSV header), the dashboard's label,
//! the unit, and how each derives from additive `Counts`. Ratios are derived per group, never
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
    pub of: fn(&Counts) -> f64,
}

impl Metric {
    pub const ALL: &'static [Metric] = &[
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
    ];

    pub fn spec(self) -> Spec {
        let (name, label, unit, of): (_, _, _, fn(&Counts) -> f64) = match self {
            Metric::Visitors => ("visitors", "Visitors", Unit::Count, |c| c.visitors as f64),
            Metric::Visits => ("visits", "Visits", Unit::Count, |c| c.visits as f64),
            Metric::Pageviews => ("pageviews", "Page views", Unit::Count, |c| {
                c.pageviews as f64
            }),
            Metric::ViewsPerVisit => ("views_per_visit", "Views per visit", Unit::Ratio, |c| {
                (per_visit(c, c.pageviews) * 100.0).round() / 100.0
            }),
            Metric::BounceRate => ("bounce_rate", "Bounce rate", Unit::Percent, |c| {
                (per_visit(c, c.bounces) * 100.0).round()
            }),
            Metric::VisitDuration => ("visit_duration", "Visit duration", Unit::Seconds, |c| {
                per_visit(c, c.duration).round()
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

    /// The metric's value for a group's counts.
    pub fn of(self, counts: &Counts) -> f64 {
        (self.spec().of)(counts)
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
        };
        let m: Vec<f64> = Metric::ALL.iter().map(|m| m.of(&c)).collect();
        assert_eq!(m, [3.0, 4.0, 10.0, 2.5, 25.0, 63.0]);
        assert_eq!(Metric::BounceRate.of(&Counts::default()), 0.0);
        assert_eq!(Metric::BounceRate.change(20.0, 25.0), Some(-5.0));
        assert_eq!(Metric::Visitors.change(3.0, 2.0), Some(50.0));
        assert_eq!(Metric::Visitors.change(3.0, 0.0), None);
    }
}
