//! What an HTTP request says about its visitor, and the cookieless visitor id.
//!
//! The client address is the TCP peer, or, only when that peer is a trusted proxy
//! (`server.trusted_proxies`), the last address in `X-Forwarded-For` / `Forwarded` that is not
//! itself a trusted proxy. It is used for two things, the visitor id and the place (`geo`), and
//! dropped with the request: it is never logged, produced or stored.
//!
//! `visitor_id = SipHash-2-4(salt of the day, site ‖ address ‖ user agent)`: the same person
//! on the same site on the same day gets the same id on every producer instance, and once the
//! day's salt is destroyed (see `salts`) nobody can tell whose id it was.

use std::hash::Hasher;
use std::net::IpAddr;

use actix_web::http::header::{HeaderMap, ACCEPT_LANGUAGE, REFERER, USER_AGENT};
use actix_web::HttpRequest;
use event::page_view::{check_text, MAX_LANGUAGE, MAX_REFERRER, MAX_USER_AGENT};

use crate::geo::{GeoIp, Place};
use settings::IpNet;

/// What the request carries besides the GraphQL body.
#[derive(Clone)]
pub struct RequestContext {
    pub client: Option<IpAddr>,
    /// Where the client address is (looked up once per request).
    pub place: Place,
    pub user_agent: Option<String>,
    pub language: Option<String>,
    pub referer: Option<String>,
}

// Hand-written so that no `{:?}` can ever print the address.
impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("client", &self.client.map(|_| "<hidden>"))
            .field("place", &self.place)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl RequestContext {
    pub fn from_request(request: &HttpRequest, trusted: &[IpNet], geo: &GeoIp) -> Self {
        let headers = request.headers();
        let peer = request.peer_addr().map(|a| a.ip());
        let client = peer.map(|peer| client_address(peer, headers, trusted));
        RequestContext {
            client,
            place: client.map(|ip| geo.locate(ip)).unwrap_or_default(),
            user_agent: header_text(headers, USER_AGENT.as_str())
                .map(|ua| truncated(ua, MAX_USER_AGENT))
                .filter(|ua| check_text("userAgent", ua, MAX_USER_AGENT).is_ok())
                .map(str::to_owned),
            language: header_text(headers, ACCEPT_LANGUAGE.as_str()).and_then(first_language),
            referer: header_text(headers, REFERER.as_str())
                .filter(|r| check_text("referrer", r, MAX_REFERRER).is_ok())
                .map(str::to_owned),
        }
    }
}

/// A header's value when it is valid UTF-8 and not empty; anything else is as if absent.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then_some(value)
}

/// The client behind any trusted proxies. An untrusted peer's headers are ignored: anyone can
/// write `X-Forwarded-For`.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Proxies append: walk from the right, past the trusted hops, to the first address that
    // is not one of ours. A hop that does not parse ends the walk (it cannot be trusted).
    let mut chain = forwarded_chain(headers);
    chain.reverse();
    let mut client = peer;
    for hop in chain {
        let Some(ip) = hop else { break };
        client = canonical(ip);
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// The addresses of `Forwarded: for=…` if present, else of `X-Forwarded-For`, left to right.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for").then_some(value)
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded.into_iter().map(parse_node).collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// `203.0.113.7`, `"[2001:db8::1]:4711"`, `203.0.113.7:80`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.parse()
        .ok()
        .or_else(|| node.rsplit_once(':')?.0.parse().ok())
}

/// An IPv4 client reached over IPv6 (`::ffff:192.0.2.1`) is the same client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `en-US,en;q=0.9` → `en-US`. Only a well-formed tag is kept.
fn first_language(header: &str) -> Option<String> {
    let tag = header.split(',').next()?.split(';').next()?.trim();
    let well_formed = !tag.is_empty()
        && tag.len() <= MAX_LANGUAGE
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && tag.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    well_formed.then(|| tag.to_owned())
}

/// The longest prefix of at most `max` bytes that ends on a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The visitor id: a keyed hash of site, address and user agent under the day's salt.
pub fn visitor_id(
    salt: &[u8; 16],
    site: &str,
    client: Option<IpAddr>,
    user_agent: Option<&str>,
) -> i64 {
    let mut hasher = siphasher::sip::SipHasher24::new_with_key(salt);
    hasher.write(site.as_bytes());
    hasher.write_u8(0xff);
    match client {
        Some(IpAddr::V4(v4)) => hasher.write(&v4.octets()),
        Some(IpAddr::V6(v6)) => hasher.write(&v6.octets()),
        None => {}
    }
    hasher.write_u8(0xff);
    hasher.write(user_agent.unwrap_or("").as_bytes());
    hasher.finish() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn net(text: &str) -> IpNet {
        IpNet::try_from(text.to_owned()).expect("a network")
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let peer: IpAddr = "10.0.0.5".parse().expect("ip");
        let forged = headers(&[("x-forwarded-for", "198.51.100.9")]);
        assert_eq!(
            client_address(peer, &forged, &[]),
            peer,
            "trusted by no one"
        );
        let trusted = [net("10.0.0.0/8")];
        assert_eq!(
            client_address(peer, &forged, &trusted),
            "198.51.100.9".parse::<IpAddr>().expect("ip")
        );
        // The client may write its own X-Forwarded-For; only the hop our proxy added counts.
        let chained = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(
            client_address(peer, &chained, &trusted),
            "203.0.113.7".parse::<IpAddr>().expect("ip")
        );
        let standard = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8::7]:4711\"",
        )]);
        assert_eq!(
            client_address(peer, &standard, &trusted),
            "2001:db8::7".parse::<IpAddr>().expect("ip")
        );
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_address(peer, &garbage, &trusted), peer);
    }

    #[test]
    fn an_ipv4_client_over_ipv6_is_the_same_client() {
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(
            canonical(mapped),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn languages_user_agents_and_ids() {
        assert_eq!(first_language("en-US,en;q=0.9").as_deref(), Some("en-US"));
        assert_eq!(first_language("*"), None);
        assert_eq!(first_language("<script>"), None);
        let ua = "é".repeat(600);
        assert!(truncated(&ua, MAX_USER_AGENT).len() <= MAX_USER_AGENT);
        let salt = [7u8; 16];
        let ip = Some("192.0.2.1".parse().expect("ip"));
        let id = visitor_id(&salt, "example.com", ip, Some("UA"));
        assert_eq!(id, visitor_id(&salt, "example.com", ip, Some("UA")));
        assert_ne!(id, visitor_id(&[8u8; 16], "example.com", ip, Some("UA")));
        assert_ne!(id, visitor_id(&salt, "other.com", ip, Some("UA")));
        assert_ne!(id, visitor_id(&salt, "example.com", ip, Some("UA2")));
    }
}
