//! What a token may do, checked in one place. A token in `dashboard.admin_tokens` (or an admin
//! token stored by `createToken`) reads every site and changes what is counted (sites, goals,
//! tokens); one in `dashboard.api_tokens` reads every site; a read token from `createToken`
//! reads only its sites. A resolver that changes anything calls `require_admin` first; one that
//! reads a site calls `require_site`, whose refusal the HTTP layer turns into the same 401 a
//! wrong token gets, so a read token cannot learn which other sites exist.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions};

/// The role of the request's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Reader(Sites),
    Admin,
}

/// The sites a reader may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sites {
    All,
    Only(Arc<[String]>),
}

impl Role {
    pub fn may_read(&self, site: &str) -> bool {
        match self {
            Role::Admin | Role::Reader(Sites::All) => true,
            Role::Reader(Sites::Only(sites)) => sites.iter().any(|s| s == site),
        }
    }
}

/// The code of a refusal for a site the token may not read: answered as HTTP 401.
pub const NOT_YOURS: &str = "UNAUTHORIZED";

/// Refuses, with `FORBIDDEN`, a request whose token is not an admin token.
pub fn require_admin(ctx: &Context<'_>) -> async_graphql::Result<()> {
    match ctx.data_opt::<Role>() {
        Some(Role::Admin) => Ok(()),
        _ => Err(async_graphql::Error::new(
            "this needs an admin token (dashboard.admin_tokens; make up keeps one in .data/admin-token)",
        )
        .extend_with(|_, ext| ext.set("code", "FORBIDDEN"))),
    }
}

/// Refuses a site the request's token may not read, as if the token were wrong.
pub fn require_site(ctx: &Context<'_>, site: &str) -> async_graphql::Result<()> {
    let site = site.trim().to_ascii_lowercase();
    match ctx.data_opt::<Role>() {
        Some(role) if role.may_read(&site) => Ok(()),
        _ => Err(async_graphql::Error::new("unauthorized")
            .extend_with(|_, ext| ext.set("code", NOT_YOURS))),
    }
}
