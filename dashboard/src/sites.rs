//! The site registry (`sites`): which sites the dashboard shows, in which time zone, and the
//! admin's `addSite`, `updateSite` and `deleteSite`.
//!
//! A site added or moved to another zone is counted by a consumer in the background (its
//! `counted_at` is NULL until then, and the API says `counting`); a deleted one takes every
//! row of it along, in one transaction, after the consumers' batches in flight.

use analytics::RollupTable;
use async_graphql::{ErrorExtensions, SimpleObject};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use settings::AnalyticsSettings;

/// A registered site, as the API shows it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Site")]
pub struct SiteInfo {
    pub domain: String,
    /// The same as `domain` (the name the first API gave it).
    pub name: String,
    /// The IANA zone its days are counted in.
    pub time_zone: String,
    /// Whether its stored events are being counted (just added, or its zone changed): its
    /// numbers are incomplete meanwhile.
    pub counting: bool,
    /// The first day (UTC) whose raw events are all kept, once `analytics.raw_retention_months`
    /// dropped a month: before it, visits and rollups answer, but not what only raw events
    /// hold (pages' scroll depth and time on page, custom events' properties).
    pub raw_events_from: Option<String>,
    #[graphql(skip)]
    pub zone: chrono_tz::Tz,
}

/// A host name as a site is registered under: lower case, no trailing dot, letters, digits and
/// hyphens in labels of 1 to 63 characters, 253 at most in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain(String);

impl Domain {
    pub fn parse(text: &str) -> Result<Domain, SiteError> {
        let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(label_ok) {
            return Err(SiteError::InvalidDomain(text.to_owned()));
        }
        Ok(Domain(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(
        "domain: {0:?} is not a host name (letters, digits, hyphens and dots, e.g. shop.example)"
    )]
    InvalidDomain(String),
    #[error("timeZone: {0:?} is not an IANA time zone name (e.g. UTC, Europe/Berlin)")]
    InvalidTimeZone(String),
    #[error("the site {0} is registered already")]
    AlreadyRegistered(String),
    #[error("no site {0} is registered")]
    UnknownSite(String),
    #[error("raw events before {0} were dropped (analytics.raw_retention_months): the site's days cannot be counted again in another zone")]
    RawEventsDropped(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

impl SiteError {
    pub fn code(&self) -> &'static str {
        match self {
            SiteError::InvalidDomain(_) => "INVALID_DOMAIN",
            SiteError::InvalidTimeZone(_) => "INVALID_TIME_ZONE",
            SiteError::AlreadyRegistered(_) => "SITE_EXISTS",
            SiteError::UnknownSite(_) => "UNKNOWN_SITE",
            SiteError::RawEventsDropped(_) => "RAW_EVENTS_DROPPED",
            SiteError::Database(_) => "DATABASE_UNAVAILABLE",
        }
    }

    pub fn into_graphql(self) -> async_graphql::Error {
        if let SiteError::Database(e) = &self {
            tracing::error!(error = %e, "a site change failed");
        }
        let code = self.code();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| ext.set("code", code))
    }
}

/// A zone as given, checked; `None` leaves the site in the settings' zone.
fn zone_name(zone: Option<&str>) -> Result<Option<String>, SiteError> {
    zone.map(|z| {
        z.trim()
            .parse::<chrono_tz::Tz>()
            .map(|tz| tz.name().to_owned())
            .map_err(|_| SiteError::InvalidTimeZone(z.to_owned()))
    })
    .transpose()
}

const COLUMNS: &str = "domain, time_zone, counted_at IS NULL AS counting, \
     (SELECT (kept_from AT TIME ZONE 'UTC')::date::text FROM raw_retention) AS raw_events_from";

fn info(row: &sea_orm::QueryResult, analytics: &AnalyticsSettings) -> Result<SiteInfo, DbErr> {
    let domain: String = row.try_get("", "domain")?;
    let stored: Option<String> = row.try_get("", "time_zone")?;
    let zone = analytics.zone_of_registered(&domain, stored.as_deref());
    Ok(SiteInfo {
        name: domain.clone(),
        domain,
        time_zone: zone.name().to_owned(),
        counting: row.try_get("", "counting")?,
        raw_events_from: row.try_get("", "raw_events_from")?,
        zone,
    })
}

/// Every registered site, by domain.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    analytics: &AnalyticsSettings,
) -> Result<Vec<SiteInfo>, DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM sites ORDER BY domain");
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    rows.iter().map(|r| info(r, analytics)).collect()
}

/// The registered site of that name, if any.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    analytics: &AnalyticsSettings,
    site: &str,
) -> Result<Option<SiteInfo>, DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM sites WHERE domain = $1");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [site.into()],
        ))
        .await?;
    row.map(|r| info(&r, analytics)).transpose()
}

/// `addSite`: registers a site; a consumer counts the events stored for it before.
pub async fn add(
    db: &DatabaseConnection,
    analytics: &AnalyticsSettings,
    domain: &str,
    zone: Option<&str>,
) -> Result<SiteInfo, SiteError> {
    let domain = Domain::parse(domain)?;
    let zone = zone_name(zone)?;
    let sql = format!(
        "INSERT INTO sites (domain, time_zone) VALUES ($1, $2) \
         ON CONFLICT (domain) DO NOTHING RETURNING {COLUMNS}"
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [domain.as_str().into(), zone.into()],
        ))
        .await?;
    match row {
        Some(row) => Ok(info(&row, analytics)?),
        None => Err(SiteError::AlreadyRegistered(domain.0)),
    }
}

/// `updateSite`: another time zone; its visits and rollups are counted again in it.
pub async fn update(
    db: &DatabaseConnection,
    analytics: &AnalyticsSettings,
    domain: &str,
    zone: &str,
) -> Result<SiteInfo, SiteError> {
    let domain = Domain::parse(domain)?;
    let zone = zone_name(Some(zone))?;
    // Another zone recounts from raw events: refused once some of them were dropped.
    if let Some(site) = find(db, analytics, domain.as_str()).await? {
        let moves = Some(site.zone.name()) != zone.as_deref();
        if let (Some(from), true) = (site.raw_events_from, moves) {
            return Err(SiteError::RawEventsDropped(from));
        }
    }
    // The row lock waits for the batches counting this site in its old zone.
    let sql = format!(
        "UPDATE sites SET time_zone = $2, \
             counted_at = CASE WHEN time_zone IS DISTINCT FROM $2 THEN NULL ELSE counted_at END \
         WHERE domain = $1 RETURNING {COLUMNS}"
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [domain.as_str().into(), zone.into()],
        ))
        .await?;
    match row {
        Some(row) => Ok(info(&row, analytics)?),
        None => Err(SiteError::UnknownSite(domain.0)),
    }
}

/// `deleteSite`: the site and everything of it, events included, in one transaction.
pub async fn delete(db: &DatabaseConnection, domain: &str) -> Result<(), SiteError> {
    let domain = Domain::parse(domain)?;
    let txn = db.begin().await?;
    // The batches storing this site's events end first; later ones find it gone.
    let found = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT domain FROM sites WHERE domain = $1 FOR UPDATE",
            [domain.as_str().into()],
        ))
        .await?;
    if found.is_none() {
        txn.rollback().await?;
        return Err(SiteError::UnknownSite(domain.0));
    }
    // Its events may be many: this is not a dashboard query.
    txn.execute_unprepared("SET LOCAL statement_timeout = 0")
        .await?;
    let counted = [
        "DELETE FROM conversions WHERE site = $1",
        "DELETE FROM goals WHERE site = $1",
        "DELETE FROM shared_links WHERE site = $1",
        "DELETE FROM visits WHERE site = $1",
    ]
    .map(String::from);
    let rollups = RollupTable::ALL.map(|t| format!("DELETE FROM {} WHERE site = $1", t.name()));
    let stored = [
        "DELETE FROM raw_events WHERE site = (SELECT id FROM event_texts WHERE value = $1)",
        "DELETE FROM sites WHERE domain = $1",
    ]
    .map(String::from);
    for sql in counted.into_iter().chain(rollups).chain(stored) {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [domain.as_str().into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_is_a_host_name_in_lower_case_and_nothing_else() {
        assert_eq!(
            Domain::parse(" Shop.Example. ").map(|d| d.0).ok(),
            Some("shop.example".to_owned())
        );
        assert!(Domain::parse("localhost").is_ok());
        for bad in [
            "",
            "=1+1.test",
            "x'onmouseover=alert(1)'.test",
            "sum(1+1)",
            "-a.test",
            "a..test",
            "shop.example/path",
            "shop.example:8080",
            "ünïcode.test",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad:?} is refused");
        }
        assert!(Domain::parse(&"a".repeat(64)).is_err(), "a label of 64");
    }
}
