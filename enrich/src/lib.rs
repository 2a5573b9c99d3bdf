//! Enrichment: what a page view says beyond the fields the client sent. The browser, OS,
//! device class and bot flag come from the user agent (the uap-core rules, vendored in
//! `data/`); source and channel from the referrer and the campaign parameters; the site from the
//! page's URL. Pure functions over strings: no I/O, no clock, nothing about Kafka or SQL.
//!
//! Architecture Invariant: never sees an IP address. The producer turns the IP into a visitor id
//! before anything leaves it; what arrives here is safe to store.

pub mod agent;
pub mod campaign;
pub mod referrer;
pub mod site;

use serde::Serialize;

/// What enrichment adds to a stored page view. Field names are the column names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Enrichment {
    pub site: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    pub device: Option<String>,
    pub is_bot: bool,
    /// Where the visit came from: `google`, `news.ycombinator.com`, a `utm_source`.
    pub source: Option<String>,
    pub channel: &'static str,
    /// The five `utm_*` and the name of an ad click id (`gclid`, `msclkid`, `fbclid`).
    #[serde(flatten)]
    pub campaign: campaign::Campaign,
}

/// What enrichment reads from a page view.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageContext<'a> {
    pub url: &'a str,
    pub search: &'a str,
    pub referrer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Enriches one page view; `agents` caches user-agent parsing.
pub fn enrich(page: PageContext<'_>, agents: &agent::AgentParser) -> Enrichment {
    let site = site::site_of(page.url);
    let agent = page
        .user_agent
        .map(|ua| agents.parse(ua))
        .unwrap_or_default();
    let campaign = campaign::Campaign::from_page(page.url, page.search);
    let origin = referrer::classify(page.referrer, site.as_deref(), &campaign);
    Enrichment {
        site,
        browser: agent.browser,
        browser_version: agent.browser_version,
        os: agent.os,
        os_version: agent.os_version,
        device: agent.device.map(|d| d.as_str().to_owned()),
        is_bot: agent.is_bot,
        source: origin.source,
        channel: origin.channel.as_str(),
        campaign,
    }
}
