//! Shared links (`createSharedLink`, an admin token): `/share/<id>` opens the dashboard
//! read-only for one site, optionally behind a password and within dates. The id is 128 random
//! bits and is the link; a password is stored as an argon2id PHC string; a right password earns
//! a cookie signed with the link's own key (`shared_links.cookie_key`), so every dashboard on
//! the database accepts it and a revoked link's cookies end with it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use async_graphql::SimpleObject;
use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use sha2::Sha256;

use crate::tokens::random_hex;

/// The shortest password a link may have.
const MIN_PASSWORD: usize = 8;

/// A shared link as `sharedLinks` lists it.
#[derive(SimpleObject, Clone, Debug)]
pub struct SharedLink {
    pub id: String,
    /// Where it opens, on this dashboard: `/share/<id>`.
    pub path: String,
    pub site: String,
    pub name: String,
    /// Whether it asks for a password.
    pub protected: bool,
    /// The first and last day it shows, if it is limited to them.
    pub from: Option<String>,
    pub to: Option<String>,
    pub created_at: String,
    pub revoked: bool,
}

/// What a request under `/share/<id>` needs of its link.
#[derive(Clone, Debug)]
pub struct Link {
    pub id: String,
    pub site: String,
    password_hash: Option<String>,
    cookie_key: Vec<u8>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("password: at least {MIN_PASSWORD} characters, or none for a link anyone may open")]
    ShortPassword,
    #[error("{field}: {value:?} is not a date (YYYY-MM-DD)")]
    InvalidDate { field: &'static str, value: String },
    #[error("from ({from}) is after to ({to})")]
    EmptyRange { from: NaiveDate, to: NaiveDate },
    #[error("the password cannot be hashed: {0}")]
    Hash(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// A new link's dates, checked.
pub fn dates(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), LinkError> {
    let parse = |field, value: Option<&str>| match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| LinkError::InvalidDate {
                field,
                value: v.to_owned(),
            }),
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(LinkError::EmptyRange { from, to });
        }
    }
    Ok((from, to))
}

/// The argon2id hash of a new link's password (OWASP's parameters, argon2's defaults); slow on
/// purpose, so callers run it off the async threads.
pub fn hash_password(password: &str) -> Result<String, LinkError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(LinkError::ShortPassword);
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| LinkError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| LinkError::Hash(e.to_string()))
}

const COLUMNS: &str = "id, site, name, password_hash IS NOT NULL AS protected, \
     date_from::text AS date_from, date_to::text AS date_to, created_at::text AS created_at, \
     revoked_at IS NOT NULL AS revoked";

fn listed(row: &sea_orm::QueryResult) -> Result<SharedLink, DbErr> {
    let id: String = row.try_get("", "id")?;
    Ok(SharedLink {
        path: format!("/share/{id}"),
        id,
        site: row.try_get("", "site")?,
        name: row.try_get("", "name")?,
        protected: row.try_get("", "protected")?,
        from: row.try_get("", "date_from")?,
        to: row.try_get("", "date_to")?,
        created_at: row.try_get("", "created_at")?,
        revoked: row.try_get("", "revoked")?,
    })
}

/// Stores a new link of a registered site; `password_hash` from `hash_password`.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    site: &str,
    name: &str,
    password_hash: Option<String>,
    (from, to): (Option<NaiveDate>, Option<NaiveDate>),
) -> Result<SharedLink, DbErr> {
    let key: [u8; 32] = rand::random();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO shared_links (id, site, name, password_hash, cookie_key, date_from, date_to) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            [
                random_hex::<16>().into(),
                site.into(),
                name.trim().into(),
                password_hash.into(),
                key.to_vec().into(),
                from.into(),
                to.into(),
            ],
        ))
        .await?
        .ok_or(DbErr::RecordNotInserted)?;
    listed(&row)
}

/// Ends a link at once (its cookies with it); whether it was open.
pub async fn revoke<C: ConnectionTrait>(db: &C, id: &str) -> Result<bool, DbErr> {
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE shared_links SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            [id.trim().into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A site's links, newest first.
pub async fn list<C: ConnectionTrait>(db: &C, site: &str) -> Result<Vec<SharedLink>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT {COLUMNS} FROM shared_links WHERE site = $1 ORDER BY created_at DESC, id"
            ),
            [site.into()],
        ))
        .await?;
    rows.iter().map(listed).collect()
}

/// The open (not revoked) link of that id, of a site still registered.
pub async fn open<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Link>, DbErr> {
    // Ids are hex: anything else is no link, and never reaches the database.
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT l.id, l.site, l.password_hash, l.cookie_key, l.date_from, l.date_to \
             FROM shared_links l JOIN sites s ON s.domain = l.site \
             WHERE l.id = $1 AND l.revoked_at IS NULL",
            [id.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Link {
        id: row.try_get("", "id")?,
        site: row.try_get("", "site")?,
        password_hash: row.try_get("", "password_hash")?,
        cookie_key: row.try_get("", "cookie_key")?,
        from: row.try_get("", "date_from")?,
        to: row.try_get("", "date_to")?,
    }))
}

impl Link {
    pub fn is_protected(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Whether `password` is this link's (slow on purpose: argon2id).
    pub fn password_matches(&self, password: &str) -> bool {
        let Some(stored) = &self.password_hash else {
            return true;
        };
        PasswordHash::new(stored).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    }

    fn mac(&self, until: i64) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cookie_key).ok()?;
        mac.update(format!("{}\n{until}", self.id).as_bytes());
        Some(mac)
    }

    /// The value of the cookie that opens this link until `until` (Unix seconds).
    pub fn cookie(&self, until: i64) -> Option<String> {
        let tag = self.mac(until)?.finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("{until}.{hex}"))
    }

    /// Whether a cookie's value opens this link at `now` (Unix seconds): signed with its key,
    /// and not expired. The signature is compared in constant time.
    pub fn admits(&self, cookie: &str, now: i64) -> bool {
        let Some((until, hex)) = cookie.split_once('.') else {
            return false;
        };
        let (Ok(until), Some(tag)) = (until.parse::<i64>(), unhex(hex)) else {
            return false;
        };
        until > now
            && self
                .mac(until)
                .is_some_and(|mac| mac.verify_slice(&tag).is_ok())
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(password: Option<&str>) -> Link {
        Link {
            id: "ab".repeat(16),
            site: "shop.example".into(),
            password_hash: password.map(|p| hash_password(p).expect("a hash")),
            cookie_key: vec![7; 32],
            from: None,
            to: None,
        }
    }

    #[test]
    fn a_password_is_stored_as_argon2id_and_only_it_matches() {
        let link = link(Some("correct horse"));
        assert!(link
            .password_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("$argon2id$")));
        assert!(link.password_matches("correct horse"));
        assert!(!link.password_matches("correct horse "));
        assert!(!link.password_matches(""));
        assert!(matches!(
            hash_password("short"),
            Err(LinkError::ShortPassword)
        ));
    }

    #[test]
    fn a_cookie_opens_its_own_link_until_it_expires_and_no_other() {
        let first = link(None);
        let cookie = first.cookie(1_000).expect("a cookie");
        assert!(first.admits(&cookie, 999));
        assert!(!first.admits(&cookie, 1_000), "expired");
        let forged = cookie.replacen("1000.", "9999.", 1);
        assert!(!first.admits(&forged, 999), "a later expiry is not signed");
        let other = Link {
            cookie_key: vec![8; 32],
            ..link(None)
        };
        assert!(!other.admits(&cookie, 999), "another link's key");
        assert!(!first.admits("garbage", 0));
        assert!(!first.admits("5.zz", 0));
    }

    #[test]
    fn a_links_dates_are_checked() {
        assert_eq!(dates(None, Some("")).ok(), Some((None, None)));
        assert!(matches!(
            dates(Some("2026-11-31"), None),
            Err(LinkError::InvalidDate { field: "from", .. })
        ));
        assert!(matches!(
            dates(Some("2026-11-02"), Some("2026-11-01")),
            Err(LinkError::EmptyRange { .. })
        ));
    }
}
