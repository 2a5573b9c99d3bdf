//! The user-agent parser candidates compared on the 20 most common browsers and crawlers:
//! correctness of browser, OS and device class, and the cost of one parse without a cache.
//!
//! `cargo run --release -p bench --example ua_compare`
//!
//! Candidates: `enrich::agent` (the uap-core rules through the `ua-parser` crate of the same
//! project, as the consumer uses it, with its cache bypassed) and `woothee`.

use std::time::Instant;

/// (user agent, browser, OS, device class)
const CASES: [(&str, &str, &str, &str); 20] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Mac OS X", "desktop"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome", "Android", "mobile"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari", "iOS", "mobile"),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari", "iOS", "tablet"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari", "Mac OS X", "desktop"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge", "Windows", "desktop"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", "Windows", "desktop"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", "Linux", "desktop"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "Firefox", "Android", "mobile"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "Chrome", "iOS", "mobile"),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "Samsung Internet", "Android", "mobile"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0", "Opera", "Windows", "desktop"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 YaBrowser/24.12.0.0 Safari/537.36", "Yandex Browser", "Windows", "desktop"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Chrome OS", "desktop"),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Android", "tablet"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "", "bot"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot", "", "bot"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "HeadlessChrome", "Linux", "bot"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/480.0.0.0]", "Facebook", "iOS", "mobile"),
];

fn uap(parser: &enrich::agent::AgentParser, ua: &str) -> (String, String, String) {
    let a = parser.parse_uncached(ua);
    (
        a.browser.unwrap_or_default(),
        a.os.unwrap_or_default(),
        a.device.map(|d| d.as_str().to_owned()).unwrap_or_default(),
    )
}

fn woothee_parse(parser: &woothee::parser::Parser, ua: &str) -> (String, String, String) {
    let Some(r) = parser.parse(ua) else {
        return Default::default();
    };
    let device = match r.category {
        "pc" => "desktop",
        "smartphone" | "mobilephone" => "mobile",
        "crawler" => "bot",
        other => other,
    };
    // Its names for the same systems are not misses.
    let os = match r.os {
        "Windows 10" => "Windows",
        "Mac OSX" => "Mac OS X",
        "iPhone" | "iPad" => "iOS",
        "ChromeOS" => "Chrome OS",
        other => other,
    };
    (r.name.to_owned(), os.to_owned(), device.to_owned())
}

fn score(name: &str, parse: impl Fn(&str) -> (String, String, String)) {
    let mut right = [0; 3];
    for (ua, browser, os, device) in CASES {
        let got = parse(ua);
        let ok = [
            got.0 == browser,
            os.is_empty() || got.1 == os,
            got.2 == device,
        ];
        for (n, ok) in right.iter_mut().zip(ok) {
            *n += usize::from(ok);
        }
        if ok.contains(&false) {
            println!("  {name} misses: {got:?} for {browser}/{os}/{device}");
        }
    }
    // Cost without a cache: every parse is a new user agent.
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        for (ua, ..) in CASES {
            std::hint::black_box(parse(ua));
        }
    }
    let per_parse = started.elapsed() / (rounds * CASES.len() as u32);
    println!(
        "{name}: browser {}/20, OS {}/20, device {}/20, {per_parse:?} per parse",
        right[0], right[1], right[2]
    );
}

fn main() -> Result<(), String> {
    let started = Instant::now();
    let agents = enrich::agent::AgentParser::new()?;
    println!("uap-core rules compiled in {:?}", started.elapsed());
    // Uncached: the cost of a user agent seen for the first time.
    score("uap-core (ua-parser)", |ua| uap(&agents, ua));
    let started = Instant::now();
    for _ in 0..200 {
        for (ua, ..) in CASES {
            std::hint::black_box(agents.parse(ua));
        }
    }
    println!(
        "uap-core, cached: {:?} per parse",
        started.elapsed() / (200 * CASES.len() as u32)
    );
    let woothee = woothee::parser::Parser::new();
    score("woothee", |ua| woothee_parse(&woothee, ua));
    Ok(())
}
