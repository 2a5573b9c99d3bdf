//! Tokens made with `createToken` (an admin token): an admin one, or a read one limited to listed
//! sites. Only a SHA-256 of each is stored (`api_tokens.hash`; tokens are 256 random bits, so a
//! fast hash is enough), and the token itself is shown once, in `createToken`'s answer;
//! `revokeToken` ends one at once.

use std::sync::Arc;

use async_graphql::{Enum, SimpleObject};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use sha2::{Digest, Sha256};

use crate::access::{Role, Sites};

/// What a stored token may do.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// Reads its sites only.
    Read,
    /// Everything, every site.
    Admin,
}

/// A stored token as `tokens` lists it (never the token itself).
#[derive(SimpleObject, Clone, Debug)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: TokenScope,
    /// The sites a read token reads.
    pub sites: Vec<String>,
    pub created_at: String,
    pub revoked: bool,
}

/// `createToken`'s answer: the token, shown this once.
#[derive(SimpleObject, Clone, Debug)]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.trim().as_bytes()).to_vec()
}

/// The role of a stored, unrevoked token, and its id.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    token: &str,
) -> Result<Option<(String, Role)>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id::text AS id, scope, sites FROM api_tokens \
             WHERE hash = $1 AND revoked_at IS NULL",
            [hash(token).into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: String = row.try_get("", "id")?;
    let role = match row.try_get::<String>("", "scope")?.as_str() {
        "admin" => Role::Admin,
        _ => Role::Reader(Sites::Only(Arc::from(
            row.try_get::<Vec<String>>("", "sites")?,
        ))),
    };
    Ok(Some((id, role)))
}

const COLUMNS: &str =
    "id::text AS id, name, scope, sites, created_at::text AS created_at, revoked_at IS NOT NULL AS revoked";

fn info(row: &sea_orm::QueryResult) -> Result<TokenInfo, DbErr> {
    Ok(TokenInfo {
        id: row.try_get("", "id")?,
        name: row.try_get("", "name")?,
        scope: match row.try_get::<String>("", "scope")?.as_str() {
            "admin" => TokenScope::Admin,
            _ => TokenScope::Read,
        },
        sites: row.try_get("", "sites")?,
        created_at: row.try_get("", "created_at")?,
        revoked: row.try_get("", "revoked")?,
    })
}

/// Stores a new token's hash; `sites` must be registered (a read token reads those only).
pub async fn create<C: ConnectionTrait>(
    db: &C,
    name: &str,
    scope: TokenScope,
    sites: &[String],
) -> Result<CreatedToken, DbErr> {
    let token = format!("pvt_{}", random_hex::<32>());
    let scope_name = match scope {
        TokenScope::Read => "read",
        TokenScope::Admin => "admin",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO api_tokens (id, name, hash, scope, sites) \
                 VALUES (gen_random_uuid(), $1, $2, $3, $4) RETURNING {COLUMNS}"
            ),
            [
                name.trim().into(),
                hash(&token).into(),
                scope_name.into(),
                sites.to_vec().into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?;
    Ok(CreatedToken {
        token,
        info: info(&row)?,
    })
}

/// Ends a stored token; whether it was one still in use.
pub async fn revoke<C: ConnectionTrait>(db: &C, id: &str) -> Result<bool, DbErr> {
    let Ok(id) = uuid::Uuid::parse_str(id.trim()) else {
        return Ok(false);
    };
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            [id.into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Every stored token, newest first.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<TokenInfo>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC, id"),
        ))
        .await?;
    rows.iter().map(info).collect()
}

/// `N` bytes from rand's thread-local CSPRNG (seeded by the operating system), as hex.
pub(crate) fn random_hex<const N: usize>() -> String {
    let bytes: [u8; N] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
