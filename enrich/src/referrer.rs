//! Where a visit came from: a source (a short name for well-known hosts, else the normalised
//! host) and a channel, from the referrer and the campaign parameters, in the spirit of
//! Snowplow's referer parser and GA4's default channel groups.

use crate::campaign::Campaign;
use crate::site::normalised_host;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Direct,
    OrganicSearch,
    OrganicSocial,
    Email,
    Paid,
    Referral,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "direct",
            Channel::OrganicSearch => "organic_search",
            Channel::OrganicSocial => "organic_social",
            Channel::Email => "email",
            Channel::Paid => "paid",
            Channel::Referral => "referral",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Option<String>,
    pub channel: Channel,
}

/// Known hosts: (host suffix, source name, channel), the first match wins, so webmail comes
/// before its search engine. A suffix matches the host itself or any subdomain of it;
/// `google.` matches every Google country domain.
const KNOWN: &[(&str, &str, Channel)] = &[
    ("mail.google.com", "gmail", Channel::Email),
    ("outlook.live.com", "outlook", Channel::Email),
    ("outlook.office.com", "outlook", Channel::Email),
    ("mail.yahoo.com", "yahoo mail", Channel::Email),
    ("google.", "google", Channel::OrganicSearch),
    ("bing.com", "bing", Channel::OrganicSearch),
    ("duckduckgo.com", "duckduckgo", Channel::OrganicSearch),
    ("search.yahoo.com", "yahoo", Channel::OrganicSearch),
    ("yandex.", "yandex", Channel::OrganicSearch),
    ("baidu.com", "baidu", Channel::OrganicSearch),
    ("ecosia.org", "ecosia", Channel::OrganicSearch),
    ("search.brave.com", "brave", Channel::OrganicSearch),
    ("startpage.com", "startpage", Channel::OrganicSearch),
    ("qwant.com", "qwant", Channel::OrganicSearch),
    ("kagi.com", "kagi", Channel::OrganicSearch),
    ("naver.com", "naver", Channel::OrganicSearch),
    ("seznam.cz", "seznam", Channel::OrganicSearch),
    ("facebook.com", "facebook", Channel::OrganicSocial),
    ("fb.me", "facebook", Channel::OrganicSocial),
    ("instagram.com", "instagram", Channel::OrganicSocial),
    ("t.co", "twitter", Channel::OrganicSocial),
    ("twitter.com", "twitter", Channel::OrganicSocial),
    ("x.com", "twitter", Channel::OrganicSocial),
    ("linkedin.com", "linkedin", Channel::OrganicSocial),
    ("lnkd.in", "linkedin", Channel::OrganicSocial),
    ("reddit.com", "reddit", Channel::OrganicSocial),
    (
        "news.ycombinator.com",
        "news.ycombinator.com",
        Channel::OrganicSocial,
    ),
    ("youtube.com", "youtube", Channel::OrganicSocial),
    ("pinterest.com", "pinterest", Channel::OrganicSocial),
    ("tiktok.com", "tiktok", Channel::OrganicSocial),
    ("mastodon.social", "mastodon", Channel::OrganicSocial),
    ("bsky.app", "bluesky", Channel::OrganicSocial),
    ("threads.net", "threads", Channel::OrganicSocial),
];

const PAID_MEDIA: &[&str] = &[
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "cpm",
    "display",
    "cpv",
    "paid_social",
    "paidsocial",
];
const SOCIAL_MEDIA: &[&str] = &["social", "social-network", "social_network", "sm"];

/// Classifies a visit. Campaign tags win over the referrer (a tagged link says what it is);
/// a referrer from the visited site itself is an internal move, so the visit counts as direct.
pub fn classify(referrer: Option<&str>, site: Option<&str>, campaign: &Campaign) -> Origin {
    let from = referrer.and_then(referrer_host);
    let internal = from.as_deref().is_some_and(|host| is_same_site(host, site));
    let known = from.as_deref().filter(|_| !internal).and_then(known_host);
    let source = campaign
        .utm_source
        .as_deref()
        .map(str::to_ascii_lowercase)
        .or_else(|| known.map(|(name, _)| name.to_owned()))
        .or_else(|| from.clone().filter(|_| !internal));
    let medium = campaign.medium();
    let medium = medium.as_deref();
    let channel = if medium.is_some_and(|m| PAID_MEDIA.contains(&m))
        || matches!(campaign.click_id, Some("gclid" | "msclkid"))
    {
        Channel::Paid
    } else if medium == Some("email") || known.is_some_and(|(_, c)| c == Channel::Email) {
        Channel::Email
    } else if medium.is_some_and(|m| SOCIAL_MEDIA.contains(&m)) {
        Channel::OrganicSocial
    } else if let Some((_, channel)) = known {
        channel
    } else if (from.is_some() && !internal) || campaign.utm_source.is_some() {
        Channel::Referral
    } else {
        Channel::Direct
    };
    Origin { source, channel }
}

/// The normalised host of a referrer that is an http(s) URL; anything else is no referrer.
fn referrer_host(referrer: &str) -> Option<String> {
    let url = url::Url::parse(referrer.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    normalised_host(url.host_str()?)
}

fn is_same_site(host: &str, site: Option<&str>) -> bool {
    site.is_some_and(|site| is_domain_or_subdomain(host, site))
}

/// `host` is `domain` or ends with `.domain` (without allocating: this runs per event).
fn is_domain_or_subdomain(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
}

fn known_host(host: &str) -> Option<(&'static str, Channel)> {
    KNOWN.iter().find_map(|(suffix, name, channel)| {
        let matches = if let Some(brand) = suffix.strip_suffix('.') {
            // `google.`: google.com, google.co.uk, www.google.de; not google.example.org.
            let labels: Vec<&str> = host.split('.').collect();
            labels.iter().position(|l| *l == brand).is_some_and(|at| {
                let rest = &labels[at + 1..];
                (1..=2).contains(&rest.len()) && rest.iter().all(|l| (2..=3).contains(&l.len()))
            })
        } else {
            is_domain_or_subdomain(host, suffix)
        };
        matches.then_some((*name, *channel))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(referrer: &str, query: &str) -> (Option<String>, &'static str) {
        let campaign = Campaign::from_page("example.com", query);
        let o = classify(
            Some(referrer).filter(|r| !r.is_empty()),
            Some("example.com"),
            &campaign,
        );
        (o.source, o.channel.as_str())
    }

    #[test]
    fn referrers_map_to_a_source_and_a_channel() {
        let cases = [
            (
                "https://www.google.com/",
                "",
                Some("google"),
                "organic_search",
            ),
            (
                "https://www.google.co.uk/search?q=x",
                "",
                Some("google"),
                "organic_search",
            ),
            (
                "https://duckduckgo.com/",
                "",
                Some("duckduckgo"),
                "organic_search",
            ),
            (
                "https://news.ycombinator.com/item?id=1",
                "",
                Some("news.ycombinator.com"),
                "organic_social",
            ),
            ("https://t.co/abc", "", Some("twitter"), "organic_social"),
            (
                "https://mail.google.com/mail/u/0/",
                "",
                Some("gmail"),
                "email",
            ),
            (
                "https://blog.rust-lang.org/post",
                "",
                Some("blog.rust-lang.org"),
                "referral",
            ),
            ("https://example.com/other-page", "", None, "direct"),
            ("https://shop.example.com/", "", None, "direct"),
            ("", "", None, "direct"),
            (
                "",
                "utm_source=Newsletter&utm_medium=email",
                Some("newsletter"),
                "email",
            ),
            (
                "https://www.google.com/",
                "gclid=abc",
                Some("google"),
                "paid",
            ),
            ("", "utm_source=fb&utm_medium=cpc", Some("fb"), "paid"),
            (
                "https://l.facebook.com/",
                "fbclid=xyz",
                Some("facebook"),
                "organic_social",
            ),
            ("not a url", "", None, "direct"),
            ("android-app://com.slack/", "", None, "direct"),
        ];
        for (referrer, query, source, channel) in cases {
            assert_eq!(
                origin(referrer, query),
                (source.map(str::to_owned), channel),
                "{referrer} {query}"
            );
        }
    }

    #[test]
    fn a_host_that_only_contains_a_known_name_is_not_that_source() {
        assert_eq!(known_host("google.example.org"), None);
        assert_eq!(known_host("notgoogle.com"), None);
        assert_eq!(known_host("mybing.com"), None);
    }
}
