//! The analytics model: what is counted and how, declared once for every crate that counts or
//! reads counts (the consumer, its rebuild, the dashboard's two engines and CSV export, the
//! benchmark's raw-SQL anchor).
//!
//! - `dimension.rs`: the registry of dimensions (API name, stored name, label, whether a value
//!   belongs to the visit or to the page view) and `Traits`, the visit's values, generated
//!   from the same list.
//! - `counts.rs`: the additive `Counts` a rollup row holds, with how each is aggregated over
//!   visits in SQL.
//! - `metric.rs`: the metrics and how each derives from `Counts`.
//! - `bucket.rs`: typed time buckets (hour, day, ISO week, month).
//! - `goal.rs`: goals, and the rule of which stored hits complete one (in SQL, shared by the
//!   consumer, the backfill and the rebuild).
//! - `text.rs`: which characters no kept text may carry (control and invisible ones).
//! - `visit.rs`: the hit, the visit and its rules (timeout, the site's midnight, bounce,
//!   engagement); `session.rs`: sessionizing hits and what a visitor-day contributes to the
//!   rollups.
//!
//! Adding a dimension is one line in `dimension.rs`, a column in a migration, and the line that
//! says where the value comes from; everything else (storage, rollups, both engines, the
//! export, the dashboard's panels) derives from the registry.
//!
//! Architecture Invariant: pure. No I/O, no clock, no settings, no database or Kafka client;
//! SQL appears only as text fragments naming the model's own columns.

pub mod bucket;
pub mod counts;
pub mod dimension;
pub mod goal;
pub mod metric;
pub mod session;
pub mod text;
pub mod visit;

/// What the stored visits and rollups depend on: the visit dimensions, the counts and the
/// rules' version. Stored rollups built with another fingerprint must be rebuilt.
pub fn fingerprint() -> String {
    let dimensions: Vec<&str> = Dimension::of_visits().map(Dimension::name).collect();
    let paired: Vec<&str> = Dimension::PAIRED.iter().map(|d| d.name()).collect();
    // Every two paired dimensions are kept together too (`RollupKey::Triple`).
    format!(
        "dimensions={};paired={};paired_twice=all;counts={};rules={}",
        dimensions.join(","),
        paired.join(","),
        Counts::COLUMNS.join(","),
        visit::RULES_VERSION
    )
}

pub use bucket::Bucket;
pub use counts::Counts;
pub use dimension::{Dimension, RollupKey, RollupTable, Scope, Swapped, Traits};
pub use metric::{Better, Figures, Metric, PageReports, Unit};
pub use session::{sessionize, Changes, DayRow, Rollup, VisitorDay};
pub use visit::{Hit, HitKind, Visit};

#[cfg(test)]
mod tests {
    #[test]
    fn the_fingerprint_names_every_stored_dimension_and_count() {
        let fingerprint = super::fingerprint();
        for d in super::Dimension::of_visits() {
            assert!(fingerprint.contains(d.name()), "{d:?}");
        }
        for c in super::Counts::COLUMNS {
            assert!(fingerprint.contains(c), "{c}");
        }
    }
}
