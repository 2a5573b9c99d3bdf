//! Campaign parameters from the page's query string: the five `utm_*` and which ad click id is
//! present. The tutorial sends the query as `search` (`?q=foo`); a full `url` may carry one too.

/// Longest UTM value kept; longer ones are cut (they are labels, not payloads).
const MAX_VALUE_CHARS: usize = 200;

/// Field names are column names.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Campaign {
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// Which ad click id the URL carried; never its value.
    pub click_id: Option<&'static str>,
}

/// Click ids by the channel they prove: Google's and Microsoft's are added to ad clicks only;
/// Facebook adds `fbclid` to every outbound link, paid or not.
const CLICK_IDS: [&str; 3] = ["gclid", "msclkid", "fbclid"];

impl Campaign {
    pub fn from_page(url: &str, search: &str) -> Self {
        let url_query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut campaign = Campaign::default();
        for query in [search.trim_start_matches('?'), url_query] {
            let query = query.split('#').next().unwrap_or("");
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                campaign.set(&key, &value);
            }
        }
        campaign
    }

    /// The first value of a parameter wins (`search` is read before the `url`'s query).
    fn set(&mut self, key: &str, value: &str) {
        let slot = match key.to_ascii_lowercase().as_str() {
            "utm_source" => &mut self.utm_source,
            "utm_medium" => &mut self.utm_medium,
            "utm_campaign" => &mut self.utm_campaign,
            "utm_term" => &mut self.utm_term,
            "utm_content" => &mut self.utm_content,
            other => {
                if self.click_id.is_none() {
                    self.click_id = CLICK_IDS.iter().copied().find(|id| *id == other);
                }
                return;
            }
        };
        let value = value.trim();
        // Decoded from percent escapes: held to the rule the client's own fields follow.
        if slot.is_none() && !value.is_empty() && analytics::text::is_readable(value) {
            *slot = Some(value.chars().take(MAX_VALUE_CHARS).collect());
        }
    }

    /// The medium, lower case, for channel rules.
    pub fn medium(&self) -> Option<String> {
        self.utm_medium.as_deref().map(str::to_ascii_lowercase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_parameters_come_from_search_or_the_url_and_click_ids_by_name_only() {
        let c = Campaign::from_page(
            "https://ex.com/p?utm_campaign=launch&gclid=SECRET#top",
            "?utm_source=newsletter&utm_medium=email&utm_term=a%20b",
        );
        assert_eq!(c.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(c.utm_medium.as_deref(), Some("email"));
        assert_eq!(c.utm_campaign.as_deref(), Some("launch"));
        assert_eq!(c.utm_term.as_deref(), Some("a b"));
        assert_eq!(c.click_id, Some("gclid"));
    }

    #[test]
    fn empty_long_and_control_values_are_handled() {
        let long = "x".repeat(1000);
        let c = Campaign::from_page(
            "ex.com",
            &format!("utm_source=&utm_medium={long}&utm_term=%1B"),
        );
        assert_eq!(c.utm_source, None);
        assert_eq!(c.utm_medium.map(|m| m.len()), Some(MAX_VALUE_CHARS));
        assert_eq!(c.utm_term, None);
    }

    #[test]
    fn a_percent_encoded_direction_override_is_dropped_like_a_control_character() {
        let c = Campaign::from_page(
            "ex.com",
            "utm_source=%E2%80%AEgnp.exe&utm_campaign=caf%C3%A9",
        );
        assert_eq!(c.utm_source, None, "it would read as exe.png");
        assert_eq!(
            c.utm_campaign.as_deref(),
            Some("café"),
            "visible text is kept"
        );
    }
}
