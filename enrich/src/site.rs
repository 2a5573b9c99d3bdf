//! The site a page view belongs to: the host of its `url`, lower-case, without `www.`.

/// `https://www.Example.com:8443/a?b` → `example.com`; the tutorial's bare `kafka.demo.com`
/// works too. `None` for a `url` with no host.
pub fn site_of(url: &str) -> Option<String> {
    let url = url.trim();
    let host = if url.contains("://") {
        url::Url::parse(url).ok()?.host_str()?.to_owned()
    } else {
        // No scheme: `kafka.demo.com/path` or `kafka.demo.com:8080`. (`Url::parse` would read
        // `host:8080` as a scheme and a path.) No user info: `mailto:a@b` is not a site.
        let end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let authority = &url[..end];
        if authority.contains('@') {
            return None;
        }
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => authority,
        };
        url::Host::parse(host).ok()?.to_string()
    };
    normalised_host(&host)
}

/// Lower case, no trailing dot, no leading `www.`; `None` when empty.
pub fn normalised_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    (!host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_is_the_host_of_a_bare_or_full_url() {
        assert_eq!(site_of("kafka.demo.com").as_deref(), Some("kafka.demo.com"));
        assert_eq!(
            site_of("https://www.Example.com:8443/a?b=1").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            site_of("example.com/path?q").as_deref(),
            Some("example.com")
        );
        assert_eq!(site_of("example.com:8080").as_deref(), Some("example.com"));
        assert_eq!(
            site_of("http://[2001:db8::1]/").as_deref(),
            Some("[2001:db8::1]")
        );
    }

    #[test]
    fn a_url_without_a_host_has_no_site() {
        assert_eq!(site_of(""), None);
        assert_eq!(site_of("/just/a/path"), None);
        assert_eq!(site_of("mailto:someone@example.com"), None);
        assert_eq!(site_of("not a host"), None);
    }
}
