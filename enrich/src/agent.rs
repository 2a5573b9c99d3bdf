//! Browser, OS, device class and the bot flag from a user agent, with the uap-core rules
//! (`data/uap-core-0.18.0-regexes.json`, Apache-2.0, converted from its `regexes.yaml`) run by
//! the `ua-parser` crate of the same project. Results are cached by user-agent string: a site's
//! visitors share few of them, and a parse costs microseconds while a cache hit costs a lookup.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// The browser and OS rules, compiled once per process. uap-core's 628 device rules are left
/// out: they name phone models, while a device *class* follows from a few words of the user
/// agent, and compiled they took the consumer from 56 to 121 MB (`make bench`).
struct Rules {
    browser: ua_parser::user_agent::Extractor<'static>,
    os: ua_parser::os::Extractor<'static>,
}

static RULES: LazyLock<Result<Rules, String>> = LazyLock::new(|| {
    let regexes: ua_parser::Regexes<'static> =
        serde_json::from_str(include_str!("../data/uap-core-0.18.0-regexes.json"))
            .map_err(|e| format!("the vendored uap-core rules do not load: {e}"))?;
    let bad =
        |e: &dyn std::fmt::Display| format!("the vendored uap-core rules do not compile: {e}");
    let browser = regexes
        .user_agent_parsers
        .into_iter()
        .try_fold(ua_parser::user_agent::Builder::new(), |b, p| b.push(p))
        .map_err(|e| bad(&e))?
        .build()
        .map_err(|e| bad(&e))?;
    let os = regexes
        .os_parsers
        .into_iter()
        .try_fold(ua_parser::os::Builder::new(), |b, p| b.push(p))
        .map_err(|e| bad(&e))?
        .build()
        .map_err(|e| bad(&e))?;
    Ok(Rules { browser, os })
});

/// Distinct user agents kept; when full, the cache starts over.
const CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    Bot,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Bot => "bot",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    pub browser: Option<String>,
    /// The major version.
    pub browser_version: Option<String>,
    pub os: Option<String>,
    /// Major, and minor where it means something (`10.15`, `17.5`).
    pub os_version: Option<String>,
    pub device: Option<Device>,
    pub is_bot: bool,
}

/// Parses user agents through a bounded cache.
pub struct AgentParser {
    rules: &'static Rules,
    cache: Mutex<HashMap<String, Agent>>,
}

impl AgentParser {
    /// Compiles the rules (once per process); fails only if the vendored data is broken.
    pub fn new() -> Result<Self, String> {
        let rules = RULES.as_ref().map_err(Clone::clone)?;
        Ok(AgentParser {
            rules,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Without the cache: what a user agent seen for the first time costs.
    pub fn parse_uncached(&self, user_agent: &str) -> Agent {
        parse(self.rules, user_agent)
    }

    pub fn parse(&self, user_agent: &str) -> Agent {
        if let Some(agent) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(user_agent).cloned())
        {
            return agent;
        }
        let agent = parse(self.rules, user_agent);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(user_agent.to_owned(), agent.clone());
        }
        agent
    }
}

/// Names the families of browsers that drop the words for the form factor: the device column
/// says mobile, so "Mobile Safari" is Safari and "Chrome Mobile iOS" is Chrome.
fn browser_name(family: &str) -> String {
    let name = match family {
        "Mobile Safari" | "Mobile Safari UI/WKWebView" | "Safari" => "Safari",
        "Chrome Mobile" | "Chrome Mobile iOS" | "Chrome Mobile WebView" | "Chrome" => "Chrome",
        "Firefox Mobile" | "Firefox iOS" | "Firefox" => "Firefox",
        "Edge Mobile" | "Edge" => "Edge",
        "Opera Mobile" | "Opera" => "Opera",
        other => other,
    };
    name.to_owned()
}

/// User agents that automate rather than browse, beyond what uap-core marks as a spider.
/// Crawling frameworks are here; a bare HTTP library (`curl`, `python-requests`, `okhttp`, …)
/// is not: a server-side sender posts with it, and the tutorial's own curl is a page view. It
/// counts as a visitor under its own name in Browsers, where a site owner can filter it out.
const AUTOMATION: &[&str] = &[
    "scrapy",
    "headless",
    "bot",
    "crawler",
    "spider",
    "lighthouse",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "prerender",
    "slurp",
];

fn parse(rules: &Rules, user_agent: &str) -> Agent {
    let (ua, os) = (
        rules.browser.extract(user_agent),
        rules.os.extract(user_agent),
    );
    let lower = user_agent.to_ascii_lowercase();
    let family = ua
        .as_ref()
        .map(|u| u.family.to_string())
        .filter(|f| f != "Other");
    let os_family = os
        .as_ref()
        .map(|o| o.os.to_string())
        .filter(|f| f != "Other");
    let is_bot = AUTOMATION.iter().any(|word| lower.contains(word))
        || family
            .as_deref()
            .is_some_and(|f| f.to_ascii_lowercase().contains("bot"));
    let device = if is_bot {
        Some(Device::Bot)
    } else {
        device_class(os_family.as_deref(), &lower)
    };
    Agent {
        browser: family.as_deref().map(browser_name),
        browser_version: ua.as_ref().and_then(|u| u.major).map(str::to_owned),
        os_version: os.as_ref().and_then(|o| {
            let major = o.major.as_deref()?;
            Some(match (o.os.as_ref(), o.minor.as_deref()) {
                ("Mac OS X" | "iOS" | "Android", Some(minor)) => format!("{major}.{minor}"),
                _ => major.to_owned(),
            })
        }),
        os: os_family,
        device,
        is_bot,
    }
}

/// The device class from the words browsers put in their user agents.
fn device_class(os: Option<&str>, lower_ua: &str) -> Option<Device> {
    if ["ipad", "tablet", "kindle", "silk/"]
        .iter()
        .any(|w| lower_ua.contains(w))
    {
        return Some(Device::Tablet);
    }
    match os {
        // Android tablets leave "Mobile" out of the user agent.
        Some("Android") if !lower_ua.contains("mobile") => Some(Device::Tablet),
        Some("iOS" | "Android") => Some(Device::Mobile),
        _ if lower_ua.contains("mobi") || lower_ua.contains("phone") => Some(Device::Mobile),
        Some(_) => Some(Device::Desktop),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(ua: &str) -> Agent {
        AgentParser::new()
            .expect("the vendored rules compile")
            .parse(ua)
    }

    #[test]
    fn common_browsers_get_their_browser_os_and_device() {
        let chrome = agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
        assert_eq!(
            (
                chrome.browser.as_deref(),
                chrome.browser_version.as_deref(),
                chrome.os.as_deref(),
                chrome.device
            ),
            (
                Some("Chrome"),
                Some("131"),
                Some("Windows"),
                Some(Device::Desktop)
            )
        );
        let iphone = agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1");
        assert_eq!(
            (
                iphone.browser.as_deref(),
                iphone.os.as_deref(),
                iphone.os_version.as_deref(),
                iphone.device
            ),
            (
                Some("Safari"),
                Some("iOS"),
                Some("17.5"),
                Some(Device::Mobile)
            )
        );
        let ipad = agent("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1");
        assert_eq!(ipad.device, Some(Device::Tablet));
        let firefox =
            agent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0");
        assert_eq!(
            (
                firefox.browser.as_deref(),
                firefox.os.as_deref(),
                firefox.device,
                firefox.is_bot
            ),
            (Some("Firefox"), Some("Linux"), Some(Device::Desktop), false)
        );
    }

    #[test]
    fn crawlers_and_headless_browsers_are_bots() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        ] {
            let a = agent(ua);
            assert!(a.is_bot, "{ua}");
            assert_eq!(a.device, Some(Device::Bot), "{ua}");
        }
    }

    #[test]
    fn a_bare_http_library_is_a_visitor_under_its_own_name_and_a_crawling_framework_a_bot() {
        for (ua, name) in [
            ("curl/8.5.0", Some("curl")),
            ("python-requests/2.31.0", Some("Python Requests")),
            ("Go-http-client/1.1", Some("Go-http-client")),
            ("Java/17.0.2", Some("Java")),
            ("okhttp/4.12.0", Some("okhttp")),
            ("axios/1.6.0", Some("axios")),
            (
                "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
                None,
            ),
            ("", None),
        ] {
            let a = agent(ua);
            assert!(!a.is_bot, "{ua:?} counts");
            assert_eq!(a.browser.as_deref(), name, "{ua:?}");
        }
        let scrapy = agent("Scrapy/2.11.0 (+https://scrapy.org)");
        assert!(scrapy.is_bot);
    }

    #[test]
    fn an_unknown_or_huge_user_agent_is_parsed_without_a_guess() {
        let a = agent("curl/8.5.0");
        assert_eq!((a.os, a.device, a.is_bot), (None, None, false));
        let huge = "x".repeat(10_000);
        assert_eq!(agent(&huge).device, None);
    }
}
