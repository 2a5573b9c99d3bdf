//! What a token may do, checked in one place. A token in `dashboard.admin_tokens` (or an admin
//! token stored by `createToken`) reads every site and changes what is counted (sites, goals,
//! tokens); one in `dashboard.api_tokens` reads every site; a read token from `createToken`
//! reads only its sites. A resolver that changes anything calls `require_admin` first; one that
//! reads a site calls `require_site`, whose refusal the HTTP layer turns into the same 401 a
//! wrong token gets, so a read token cannot learn which other sites exist. A shared link
//! (`/share/<id>`) reads its one site, within its dates (`Role::bound`), and changes nothing.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions};
use chrono::NaiveDate;

use crate::stats::{Checked, QueryError};

/// The role of the request's token, or of the shared link it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Reader(Sites),
    Admin,
    Shared(Arc<Shared>),
}

/// What a shared link shows: one site, from and to its dates if it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub site: String,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Shared {
    fn shows(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= day) && self.to.is_none_or(|t| day <= t)
    }

    fn described(&self) -> String {
        let day = |d: Option<NaiveDate>| d.map_or("…".to_owned(), |d| d.to_string());
        format!("{} to {}", day(self.from), day(self.to))
    }
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
            Role::Shared(shared) => shared.site == site,
        }
    }

    /// Narrows a query to the days this role shows: a shared link's dates (a range partly
    /// outside them is cut to them; one wholly outside is refused, as is a comparison with days
    /// before them).
    pub fn bound(&self, checked: &mut Checked) -> Result<(), QueryError> {
        let Role::Shared(shared) = self else {
            return Ok(());
        };
        let from = shared.from.map_or(checked.from, |f| checked.from.max(f));
        let to = shared.to.map_or(checked.to, |t| checked.to.min(t));
        if from > to {
            return Err(QueryError::OutsideSharedRange(shared.described()));
        }
        (checked.from, checked.to) = (from, to);
        if checked.compare.is_some() && !shared.shows(checked.previous_period().from) {
            checked.compare = None;
        }
        Ok(())
    }

    /// Whether this role may see what happens on `today` (current visitors).
    pub fn sees(&self, today: NaiveDate) -> bool {
        match self {
            Role::Shared(shared) => shared.shows(today),
            _ => true,
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
