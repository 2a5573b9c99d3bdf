//! The site registry (`sites`) as the consumer reads it: which sites count, in which time zone.
//!
//! A batch reads the rows of its sites with a share lock (`Registry::for_batch`), so whatever
//! changes a site (a recount's last step, a time-zone change, a deletion: each locks the row
//! for update) waits for the batches in flight, and later batches see the change. Events of a
//! site that is not registered are stored and not counted; those of a site whose past is being
//! counted (`counted_at` NULL) are stored too, and the recount picks them up (`recount`).

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use settings::AnalyticsSettings;

/// Where a site stands for the batch that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not registered: stored, never counted.
    Unknown,
    /// Registered, its stored events being counted: the recount places this batch's too.
    Counting,
    /// Counted, its days in this zone.
    Counted(chrono_tz::Tz),
}

/// The standing of the sites one batch touches.
pub struct Registry {
    sites: HashMap<String, Standing>,
}

impl Registry {
    /// Reads (and, with `analytics.register_sites_on_first_event`, first registers) `sites`,
    /// share-locking their rows until the batch's transaction ends.
    pub async fn for_batch<C: ConnectionTrait>(
        conn: &C,
        sites: &BTreeSet<&str>,
        analytics: &AnalyticsSettings,
    ) -> Result<Self, DbErr> {
        if sites.is_empty() {
            return Ok(Registry {
                sites: HashMap::new(),
            });
        }
        let list = serde_json::to_string(sites).map_err(|e| DbErr::Json(e.to_string()))?;
        let mut rows = read(conn, &list).await?;
        // Most batches' sites are all registered: only a new one is registered, then read.
        if analytics.register_sites_on_first_event && rows.len() < sites.len() {
            register(conn, &list).await?;
            rows = read(conn, &list).await?;
        }
        let mut registry = Registry {
            sites: HashMap::with_capacity(rows.len()),
        };
        for row in rows {
            let domain: String = row.try_get("", "domain")?;
            let zone: Option<String> = row.try_get("", "time_zone")?;
            let standing = match row.try_get::<bool>("", "counted")? {
                true => Standing::Counted(analytics.zone_of_registered(&domain, zone.as_deref())),
                false => Standing::Counting,
            };
            registry.sites.insert(domain, standing);
        }
        Ok(registry)
    }

    pub fn standing(&self, site: &str) -> Standing {
        self.sites.get(site).copied().unwrap_or(Standing::Unknown)
    }

    /// The zone of a counted site (UTC for any other, which is never counted).
    pub fn zone_of(&self, site: &str) -> chrono_tz::Tz {
        match self.standing(site) {
            Standing::Counted(zone) => zone,
            Standing::Unknown | Standing::Counting => chrono_tz::UTC,
        }
    }
}

/// Registers those of `list` (JSON) that are not. A site with events stored before is counted by
/// the recount; a new one starts counted.
async fn register<C: ConnectionTrait>(conn: &C, list: &str) -> Result<(), DbErr> {
    const REGISTER: &str = "INSERT INTO sites (domain, counted_at) \
         SELECT s, CASE WHEN EXISTS (SELECT 1 FROM kafka_events e WHERE e.site = s) \
             THEN NULL ELSE now() END \
         FROM json_array_elements_text($1::json) AS s \
         WHERE NOT EXISTS (SELECT 1 FROM sites WHERE domain = s) \
         ON CONFLICT (domain) DO NOTHING";
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        REGISTER,
        [list.into()],
    ))
    .await?;
    Ok(())
}

/// The rows of the registered sites of `list` (JSON), share-locked.
async fn read<C: ConnectionTrait>(
    conn: &C,
    list: &str,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    const READ: &str = "SELECT domain, time_zone, counted_at IS NOT NULL AS counted \
         FROM sites WHERE domain IN (SELECT json_array_elements_text($1::json)) \
         ORDER BY domain FOR SHARE";
    conn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        READ,
        [list.into()],
    ))
    .await
}
