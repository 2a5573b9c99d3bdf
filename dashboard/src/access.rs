//! What a token may do, checked in one place: every token in `dashboard.api_tokens` reads the
//! stats; a token in `dashboard.admin_tokens` reads them and also changes what is counted
//! (goals). A resolver that changes anything calls `require_admin` first.

use async_graphql::{Context, ErrorExtensions};

/// The role of the request's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reader,
    Admin,
}

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
