//! The routes of a shared link, `/share/<id>`: the dashboard page, `unlock` (a password for a
//! cookie), and the data routes `query` (POST, and the WebSocket) and `export.csv`, which the
//! token middleware lets through with the link's role (`Role::Shared`) instead of a token.
//!
//! Password attempts are limited per link and client address
//! (`dashboard.share_password_attempts_per_minute`); a right one earns a cookie signed with the
//! link's key, HttpOnly (the page's script never sees it), SameSite=Strict (no other site's
//! page can send it) and scoped to the link's path, for `SESSION`. An unknown id counts as a
//! wrong token, so ids are guessed no faster than tokens.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sea_orm::DatabaseConnection;

use crate::access::{Role, Shared};
use crate::attempts::WrongTokens;
use crate::identity::{Identity, Tokens};
use crate::links::{self, Link};
use crate::Databases;

pub(crate) const COOKIE: &str = "pageviews_share";
/// How long a right password opens its link.
const SESSION: Duration = Duration::from_secs(24 * 3600);
/// Links with recent wrong passwords held in memory at most, per address.
const MAX_ATTEMPTERS: usize = 10_000;

/// The link id of a data route (`/share/<id>/query`, `/share/<id>/export.csv`).
pub(crate) fn data_route(path: &str) -> Option<&str> {
    let (id, rest) = path.strip_prefix("/share/")?.split_once('/')?;
    matches!(rest, "query" | "export.csv").then_some(id)
}

/// The page and `unlock`, which check the link themselves.
pub(crate) fn is_open(path: &str) -> bool {
    path.strip_prefix("/share/").is_some_and(|rest| {
        let id = rest.strip_suffix("/unlock").unwrap_or(rest);
        !id.is_empty() && !id.contains('/')
    })
}

/// What a request under a link is.
pub(crate) enum Through {
    /// No open link has that id.
    Unknown,
    /// The link asks for a password, and the request has no valid cookie.
    Locked,
    Open(Identity),
}

/// Who a request under link `id` is: the link's role if the link is open and, when it has a
/// password, the request carries a cookie it signed.
pub(crate) async fn identify(
    db: &DatabaseConnection,
    tokens: &Tokens,
    id: &str,
    headers: &header::HeaderMap,
) -> Through {
    let link = match links::open(db, id).await {
        Ok(Some(link)) => link,
        Ok(None) => return Through::Unknown,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look a shared link up");
            return Through::Locked;
        }
    };
    if link.is_protected() && !cookies(headers).any(|c| link.admits(c, now())) {
        return Through::Locked;
    }
    Through::Open(Identity {
        slots: tokens.slots_of(&format!("share:{}", link.id)),
        role: Role::Shared(Arc::new(Shared {
            site: link.site,
            from: link.from,
            to: link.to,
        })),
    })
}

/// The values of this module's cookie in a request's `Cookie` headers.
fn cookies(headers: &header::HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Wrong passwords per (link, address), refilled evenly over a minute.
pub(crate) struct PasswordAttempts(throttle::Buckets<(String, IpAddr)>);

impl PasswordAttempts {
    pub(crate) fn new(per_minute: u32) -> Self {
        PasswordAttempts(throttle::Buckets::new(per_minute, MAX_ATTEMPTERS))
    }
}

/// Only GraphQL queries go through a link: a mutation or subscription is refused before it is
/// run (the role would refuse each mutation too).
pub(crate) fn only_queries(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::OperationType;
    match async_graphql::parser::parse_query(&request.query) {
        Ok(document) => document
            .operations
            .iter()
            .all(|(_, op)| op.node.ty == OperationType::Query),
        // The schema answers with the parse error; nothing runs.
        Err(_) => true,
    }
}

fn text(mut response: actix_web::HttpResponseBuilder, body: &'static str) -> HttpResponse {
    response
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

fn gone() -> HttpResponse {
    text(
        HttpResponse::NotFound(),
        "This shared link does not exist or was revoked.\n",
    )
}

/// The open link of `id` for the routes that check it themselves (the page, `unlock`), or the
/// refusal: 429 past the address's budget of wrong tokens (an unknown id spends it, so ids are
/// guessed through these routes no faster than through the data routes), 404, or 503.
async fn open_link(
    databases: &Databases,
    wrong: &WrongTokens,
    id: &str,
    peer: Option<IpAddr>,
) -> Result<Link, HttpResponse> {
    if !wrong.allows(peer) {
        return Err(too_many(wrong.retry_after()));
    }
    match links::open(&databases.writes, id).await {
        Ok(Some(link)) => Ok(link),
        Ok(None) => {
            wrong.wrong(peer);
            Err(gone())
        }
        Err(_) => Err(text(
            HttpResponse::ServiceUnavailable(),
            "The database does not answer; try again.\n",
        )),
    }
}

/// `GET /share/<id>`: the dashboard page, for an open link.
pub(crate) async fn page(
    databases: web::Data<Databases>,
    wrong: web::Data<WrongTokens>,
    id: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let peer = req.peer_addr().map(|a| a.ip());
    match open_link(&databases, &wrong, &id, peer).await {
        Ok(_) => crate::ui::page().await,
        Err(refused) => refused,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Unlock {
    password: String,
}

/// `POST /share/<id>/unlock` with `{"password": "…"}`: 204 and the cookie for the right one,
/// 401 for a wrong one, 429 past the attempts allowed.
pub(crate) async fn unlock(
    databases: web::Data<Databases>,
    wrong: web::Data<WrongTokens>,
    attempts: web::Data<PasswordAttempts>,
    id: web::Path<String>,
    body: web::Json<Unlock>,
    req: HttpRequest,
) -> HttpResponse {
    let peer = req.peer_addr().map(|a| a.ip());
    let link = match open_link(&databases, &wrong, &id, peer).await {
        Ok(link) => link,
        Err(refused) => return refused,
    };
    let key = peer.map(|ip| (link.id.clone(), ip));
    if key.as_ref().is_some_and(|k| !attempts.0.allows(k, 1)) {
        return too_many(attempts.0.retry_after());
    }
    let password = body.into_inner().password;
    let checked = link.clone();
    // argon2id: tens of milliseconds and 19 MiB, off the async threads.
    let right = tokio::task::spawn_blocking(move || checked.password_matches(&password))
        .await
        .unwrap_or(false);
    if !right {
        if let Some(key) = &key {
            attempts.0.spend(key, 1);
        }
        return text(
            HttpResponse::Unauthorized(),
            "That is not this link's password.\n",
        );
    }
    match session_cookie(&link, &req) {
        Some(cookie) => HttpResponse::NoContent()
            .insert_header((header::SET_COOKIE, cookie))
            .finish(),
        None => HttpResponse::InternalServerError().finish(),
    }
}

/// The `Set-Cookie` value a right password earns: `Secure` when the page came over HTTPS.
fn session_cookie(link: &Link, req: &HttpRequest) -> Option<String> {
    let seconds = SESSION.as_secs();
    let value = link.cookie(now() + i64::try_from(seconds).ok()?)?;
    let secure = match req.connection_info().scheme() {
        "https" => "; Secure",
        _ => "",
    };
    Some(format!(
        "{COOKIE}={value}; Path=/share/{}; Max-Age={seconds}; HttpOnly; SameSite=Strict{secure}",
        link.id
    ))
}

fn too_many(wait: Duration) -> HttpResponse {
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, wait.as_secs().max(1).to_string()))
        .content_type("text/plain; charset=utf-8")
        .body("Too many wrong attempts from this address; try again later.\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_routes_of_a_link_are_told_from_its_page() {
        assert_eq!(data_route("/share/ab12/query"), Some("ab12"));
        assert_eq!(data_route("/share/ab12/export.csv"), Some("ab12"));
        assert_eq!(data_route("/share/ab12"), None);
        assert_eq!(data_route("/share/ab12/other"), None);
        assert!(is_open("/share/ab12") && is_open("/share/ab12/unlock"));
        assert!(
            !is_open("/share/ab12/query") && !is_open("/share/") && !is_open("/share/a/b/unlock")
        );
    }

    #[test]
    fn only_queries_pass_a_link() {
        let ask = |q: &str| only_queries(&async_graphql::Request::new(q));
        assert!(ask("{ sites { name } }"));
        assert!(ask("query A { viewer { scope } }"));
        assert!(!ask("mutation { deleteSite(domain: \"x.example\") }"));
        assert!(!ask(
            "query A { sites { name } } mutation B { revokeToken(id: \"x\") }"
        ));
        assert!(!ask("subscription { currentVisitors(site: \"x\") }"));
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::COOKIE,
            header::HeaderValue::from_static("a=1; pageviews_share=5.ab; pageviews_sharex=2"),
        );
        assert_eq!(cookies(&headers).collect::<Vec<_>>(), vec!["5.ab"]);
    }
}
