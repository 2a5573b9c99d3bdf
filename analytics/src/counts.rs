//! The additive counts of a rollup row, declared once in the `counts!` list with how each is
//! aggregated over a table of visits in SQL. The rollup tables' columns, the consumer's
//! upsert, the rebuild's digest and both engines' sums derive from the list (each SQL fragment
//! written once per process).

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

macro_rules! counts {
    ($($(#[$doc:meta])* $name:ident: $over_visits:literal,)*) => {
        /// The additive counts of a group of visits. `visitors` counts distinct visitor ids per
        /// local day (and per local hour in `rollup_hours`), so it adds up over days but not
        /// within one.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct Counts {
            $($(#[$doc])* pub $name: i64,)*
        }

        impl Counts {
            /// The column names, as in the rollup tables.
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($name),)*];

            /// How each count is aggregated over rows of visits (`day`, `visitor`, `views`,
            /// `duration`, `bounce` per visit), in the order of `COLUMNS`.
            const OVER_VISITS: &'static [&'static str] = &[$($over_visits,)*];

            pub fn add(&mut self, other: &Counts, sign: i64) {
                $(self.$name += sign * other.$name;)*
            }

            /// Reads each count by its column name.
            pub fn read<E>(mut column: impl FnMut(&str) -> Result<i64, E>) -> Result<Counts, E> {
                Ok(Counts { $($name: column(stringify!($name))?,)* })
            }
        }
    };
}

counts! {
    /// Page views (in a page's row: that page's views).
    pageviews: "coalesce(sum(views), 0)",
    visitors: "count(DISTINCT (day, visitor))",
    visits: "count(*)",
    /// Visits that bounced (`visit::is_bounce`).
    bounces: "count(*) FILTER (WHERE bounce)",
    /// Sum of visit durations in seconds.
    duration: "coalesce(sum(duration), 0)",
    /// Custom events (in an event name's or property's row: those events).
    events: "coalesce(sum(events), 0)",
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    /// `sum(c)::bigint AS c, …` over rollup rows.
    pub fn sums_sql() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| Counts::select(|c| format!("sum({c})")));
        &SQL
    }

    /// Each count aggregated over rows of visits, `… AS c, …`.
    pub fn over_visits_sql() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let mut aggregates = Counts::OVER_VISITS.iter();
            Counts::select(|_| aggregates.next().copied().unwrap_or("0").to_owned())
        });
        &SQL
    }

    /// `c = r.c + excluded.c, …`: an upsert that adds to the row `r`.
    pub fn add_excluded_sql() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let sets: Vec<String> = Counts::COLUMNS
                .iter()
                .map(|c| format!("{c} = r.{c} + excluded.{c}"))
                .collect();
            sets.join(", ")
        });
        &SQL
    }

    /// A condition true when any count is not zero.
    pub fn nonzero_sql() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let columns = Counts::COLUMNS.join(", ");
            let zeros = vec!["0"; Counts::COLUMNS.len()].join(", ");
            format!("({columns}) <> ({zeros})")
        });
        &SQL
    }

    fn select(mut aggregate: impl FnMut(&str) -> String) -> String {
        let parts: Vec<String> = Self::COLUMNS
            .iter()
            .map(|c| format!("{}::bigint AS {c}", aggregate(c)))
            .collect();
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_count_has_its_aggregate_over_visits() {
        assert_eq!(Counts::COLUMNS.len(), Counts::OVER_VISITS.len());
        assert!(Counts::over_visits_sql().contains("count(*)::bigint AS visits"));
        assert!(Counts::sums_sql().starts_with("sum(pageviews)::bigint AS pageviews, "));
        let read = Counts::read(|c| Ok::<_, ()>(c.len() as i64)).expect("read");
        assert_eq!((read.pageviews, read.visits), (9, 6));
    }
}
