//! Who a request is: its bearer token, found among the configured tokens (compared in constant
//! time) or the stored ones (`tokens`), with the role it gives and its query slots
//! (`dashboard.max_queries_per_token`): one token cannot take every worker and connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::header;
use sea_orm::DatabaseConnection;
use settings::ExposeSecret;
use tokio::sync::Semaphore;

use crate::access::{Role, Sites};

/// A token's role and its query slots.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) role: Role,
    pub(crate) slots: Arc<Semaphore>,
}

#[derive(Clone)]
pub(crate) struct Tokens {
    readers: Arc<Vec<Vec<u8>>>,
    admins: Arc<Vec<Vec<u8>>>,
    /// Per configured token, readers first, then admins.
    slots: Arc<Vec<Arc<Semaphore>>>,
    /// Per stored token, by id, made when first used.
    stored_slots: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    per_token: usize,
    /// Where the stored tokens are.
    db: DatabaseConnection,
}

impl Tokens {
    fn of(tokens: &[settings::SecretString]) -> Arc<Vec<Vec<u8>>> {
        let bytes = tokens
            .iter()
            .map(|t| t.expose_secret().trim().as_bytes().to_vec());
        Arc::new(bytes.collect())
    }

    pub(crate) fn new(settings: &settings::DashboardSettings, db: DatabaseConnection) -> Tokens {
        let (readers, admins) = (
            Tokens::of(&settings.api_tokens),
            Tokens::of(&settings.admin_tokens),
        );
        let per_token = settings.max_queries_per_token.get();
        let slots = (0..readers.len() + admins.len())
            .map(|_| Arc::new(Semaphore::new(per_token)))
            .collect();
        Tokens {
            readers,
            admins,
            slots: Arc::new(slots),
            stored_slots: Arc::default(),
            per_token,
            db,
        }
    }

    /// What a bearer token may do, if anything, and its query slots: a configured token, or
    /// else a stored one that is not revoked.
    pub(crate) async fn identify(&self, token: Option<&str>) -> Option<Identity> {
        let token = token?.trim();
        if token.is_empty() {
            return None;
        }
        if let Some(found) = self.configured(token) {
            return Some(found);
        }
        match crate::tokens::find(&self.db, token).await {
            Ok(Some((id, role))) => Some(Identity {
                role,
                slots: self.slots_of(&id),
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look a stored token up");
                None
            }
        }
    }

    /// The query slots of a stored token (by id) or a shared link (`share:<id>`).
    pub(crate) fn slots_of(&self, id: &str) -> Arc<Semaphore> {
        let Ok(mut slots) = self.stored_slots.lock() else {
            return Arc::new(Semaphore::new(self.per_token));
        };
        let per_token = self.per_token;
        Arc::clone(
            slots
                .entry(id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(per_token))),
        )
    }

    /// A configured token, compared with every one in constant time.
    fn configured(&self, token: &str) -> Option<Identity> {
        use subtle::{ConditionallySelectable, ConstantTimeEq};
        let given = token.as_bytes();
        // Every token is compared, and each comparison takes the same time wherever it differs;
        // an admin token listed among the readers too is found as the admin one (it comes last).
        let (mut found, mut index) = (subtle::Choice::from(0), 0u64);
        for (i, known) in self.readers.iter().chain(self.admins.iter()).enumerate() {
            let same = known.as_slice().ct_eq(given);
            index = u64::conditional_select(&index, &(i as u64), same);
            found |= same;
        }
        if !bool::from(found) {
            return None;
        }
        let index = usize::try_from(index).ok()?;
        let role = match index >= self.readers.len() {
            true => Role::Admin,
            false => Role::Reader(Sites::All),
        };
        Some(Identity {
            role,
            slots: Arc::clone(self.slots.get(index)?),
        })
    }
}

/// The token of a request's `Authorization` header. Exactly one header, valid UTF-8, scheme
/// `Bearer` in any case (RFC 6750): anything else (none, two, unreadable, another scheme) is
/// no token at all.
pub(crate) fn bearer_header(headers: &header::HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(header::AUTHORIZATION);
    let only = all.next()?;
    if all.next().is_some() {
        return None;
    }
    bearer(only.to_str().ok()?)
}

/// The token of an `Authorization` value (`Bearer <token>`).
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}
