//! A page view as it travels between the producer and the consumer (JSON, camelCase), and the
//! rules every field must follow. The producer rejects what breaks them; the consumer, which
//! may read records nobody validated, turns such records into dead letters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use analytics::text::is_invisible;

/// Field limits, in bytes of UTF-8.
pub const MAX_USER_ID: usize = 256;
pub const MAX_EVENT_TYPE: usize = 249;
pub const MAX_PATH: usize = 2048;
pub const MAX_SEARCH: usize = 2048;
pub const MAX_TITLE: usize = 1024;
pub const MAX_URL: usize = 2048;
pub const MAX_REFERRER: usize = 2048;
pub const MAX_USER_AGENT: usize = 512;
pub const MAX_LANGUAGE: usize = 35;
/// A region: an ISO 3166-2 code (`GB-ENG`), or the database's name for it when it has no codes.
pub const MAX_REGION: usize = 128;
pub const MAX_CITY: usize = 128;
/// The longest engaged time one report may carry: a day.
pub const MAX_ENGAGED_MS: i32 = 86_400_000;
pub use analytics::visit::{MAX_EVENT_NAME, MAX_PROPERTIES, MAX_PROPERTY_KEY, MAX_PROPERTY_VALUE};

/// What the client says about a page view: the tutorial's fields plus the optional referrer.
/// Declared here once; the GraphQL input and output types and the stored row follow from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "graphql",
    derive(async_graphql::SimpleObject, async_graphql::InputObject),
    graphql(input_name = "PageFieldsInput")
)]
#[serde(rename_all = "camelCase")]
pub struct PageFields {
    pub event_type: String,
    pub user_id: String,
    pub path: String,
    pub search: String,
    pub title: String,
    pub url: String,
    /// The page the visitor came from, if the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// An engagement report rather than a page view: milliseconds the page was visible and
    /// focused (the tracker sends it when the page is hidden or left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engaged_ms: Option<i32>,
    /// With `engagedMs`: how far down the page was scrolled, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scroll_depth: Option<i32>,
    /// A custom event rather than a page view: the site's own name for it (`Signup`). It
    /// travels with the visitor's page views, on their event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// With `name`: the event's properties (`plan` = `pro`), each key once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<Vec<Property>>,
}

/// One property of a custom event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "graphql",
    derive(async_graphql::SimpleObject, async_graphql::InputObject),
    graphql(input_name = "PropertyInput")
)]
pub struct Property {
    pub key: String,
    pub value: String,
}

/// What the producer learned from the HTTP request rather than from the client's fields. The
/// client IP is not here and never is: it became part of `visitor_id` (a keyed hash with a
/// salt that lives 48 hours) inside the producer. All optional, so records written before
/// these fields existed still decode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<i64>,
    /// The raw `User-Agent`, at most `MAX_USER_AGENT` bytes; parsed by the consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The first language of `Accept-Language` (`en-US`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Where the client address is, as the producer's IP database says: the ISO 3166-1
    /// alpha-2 country (`GB`), and with a city database the region and the city's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

/// A page view as produced to Kafka: the client's fields, what the request said, an id and
/// the receive time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageView {
    pub id: Uuid,
    #[serde(flatten)]
    pub fields: PageFields,
    #[serde(flatten)]
    pub visit: Visit,
    pub received_at: DateTime<Utc>,
    /// The id a record of the tutorial's own producer carried (a Unix-seconds string), kept as
    /// it was; `id` is then derived from where the record was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
}

/// Where a record was read: what names a record that carries no id of ours.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp (the producer's clock, or the broker's).
    pub timestamp: DateTime<Utc>,
}

/// What the tutorial's Go producer (gqlgen + confluent-kafka-go) writes: `{"id":"1796118828",
/// "eventType":"PAGE_VIEW",...}`, a Unix-seconds id, no key, no receive time.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TutorialView {
    id: serde_json::Value,
    #[serde(flatten)]
    fields: PageFields,
}

/// The namespace of the ids given to the tutorial's records (UUIDv5 of topic/partition/offset).
const TUTORIAL_IDS: Uuid = Uuid::from_u128(0x6a2f_5e1c_9b0d_4c8e_a3f7_1d2e_4b5c_6d7e);

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The GraphQL / JSON name of the field.
    pub field: &'static str,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no value")]
    Empty,
    #[error("not a page view: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid page view: {0}")]
    Invalid(#[from] FieldError),
}

/// Checks one text field: not longer than `max` bytes, no NUL or other control characters.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.len() > max {
        return Err(FieldError {
            field,
            reason: format!("is {} bytes long, the limit is {max}", value.len()),
        });
    }
    if let Some(pos) = value.find(|c: char| c.is_control()) {
        let what = if value[pos..].starts_with('\0') {
            "a NUL byte".to_owned()
        } else {
            "a control character".to_owned()
        };
        return Err(FieldError {
            field,
            reason: format!("contains {what} at byte {pos}"),
        });
    }
    if let Some((pos, c)) = value.char_indices().find(|(_, c)| is_invisible(*c)) {
        return Err(FieldError {
            field,
            reason: format!(
                "contains the invisible or direction-changing character U+{:04X} at byte {pos}",
                u32::from(c)
            ),
        });
    }
    Ok(())
}

/// Checks an optional number is within `min..=max`.
fn check_range(
    field: &'static str,
    value: Option<i32>,
    min: i32,
    max: i32,
) -> Result<(), FieldError> {
    match value {
        Some(v) if v < min || v > max => Err(FieldError {
            field,
            reason: format!("is {v}, expected {min} to {max}"),
        }),
        _ => Ok(()),
    }
}

impl PageFields {
    /// Every rule a stored event follows.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.event_type.is_empty() {
            return Err(FieldError {
                field: "eventType",
                reason: "must not be empty".into(),
            });
        }
        check_text("eventType", &self.event_type, MAX_EVENT_TYPE)?;
        check_text("userId", &self.user_id, MAX_USER_ID)?;
        check_text("path", &self.path, MAX_PATH)?;
        check_text("search", &self.search, MAX_SEARCH)?;
        check_text("title", &self.title, MAX_TITLE)?;
        check_text("url", &self.url, MAX_URL)?;
        if let Some(referrer) = &self.referrer {
            check_text("referrer", referrer, MAX_REFERRER)?;
        }
        check_range("engagedMs", self.engaged_ms, 0, MAX_ENGAGED_MS)?;
        check_range("scrollDepth", self.scroll_depth, 0, 100)?;
        self.validate_custom_event()
    }

    /// A name is a custom event: it carries no engagement, and its properties are bounded.
    fn validate_custom_event(&self) -> Result<(), FieldError> {
        let refuse = |field, reason: String| Err(FieldError { field, reason });
        let Some(name) = &self.name else {
            return match self.props {
                Some(_) => refuse(
                    "props",
                    "only a custom event (with a name) has properties".into(),
                ),
                None => Ok(()),
            };
        };
        if name.trim().is_empty() {
            return refuse("name", "must not be empty".into());
        }
        check_chars("name", name, MAX_EVENT_NAME)?;
        if self.engaged_ms.is_some() {
            return refuse("name", "a custom event carries no engagedMs".into());
        }
        let props = self.props.as_deref().unwrap_or_default();
        if props.len() > MAX_PROPERTIES {
            let reason = format!("{} properties, the limit is {MAX_PROPERTIES}", props.len());
            return refuse("props", reason);
        }
        for (i, p) in props.iter().enumerate() {
            if p.key.is_empty() {
                return refuse("props", format!("property {i} has an empty key"));
            }
            check_chars("props.key", &p.key, MAX_PROPERTY_KEY)?;
            check_chars("props.value", &p.value, MAX_PROPERTY_VALUE)?;
            if props[..i].iter().any(|q| q.key == p.key) {
                return refuse("props", format!("the key {:?} is given twice", p.key));
            }
        }
        Ok(())
    }

    /// Every optional field set: what names every column a client field is stored in.
    pub fn with_every_field() -> PageFields {
        PageFields {
            referrer: Some(String::new()),
            engaged_ms: Some(0),
            scroll_depth: Some(0),
            name: Some(String::new()),
            props: Some(Vec::new()),
            ..PageFields::default()
        }
    }
}

/// Checks one text field, limited in characters (names and properties are counted as people
/// read them), with the same rules on control and invisible characters as every field.
fn check_chars(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(FieldError {
            field,
            reason: format!("is {chars} characters long, the limit is {max}"),
        });
    }
    check_text(field, value, usize::MAX)
}

impl Visit {
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(agent) = &self.user_agent {
            check_text("userAgent", agent, MAX_USER_AGENT)?;
        }
        if let Some(language) = &self.language {
            check_text("language", language, MAX_LANGUAGE)?;
        }
        if let Some(country) = &self.country {
            check_country(country)?;
        }
        if let Some(region) = &self.region {
            check_text("region", region, MAX_REGION)?;
        }
        if let Some(city) = &self.city {
            check_text("city", city, MAX_CITY)?;
        }
        Ok(())
    }
}

/// An ISO 3166-1 alpha-2 code: two ASCII capital letters.
pub fn check_country(code: &str) -> Result<(), FieldError> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Ok(());
    }
    Err(FieldError {
        field: "country",
        reason: format!(
            "{:?} is not an ISO 3166-1 alpha-2 code (two capital letters)",
            shortened(code)
        ),
    })
}

/// At most 16 characters of a refused value, for its error message.
fn shortened(text: &str) -> String {
    text.chars().take(16).collect()
}

impl PageView {
    /// Parses and validates a record value.
    pub fn decode(value: Option<&[u8]>) -> Result<Self, DecodeError> {
        let bytes = value.ok_or(DecodeError::Empty)?;
        let view: PageView = serde_json::from_slice(bytes)?;
        view.fields.validate()?;
        view.visit.validate()?;
        Ok(view)
    }

    /// As `decode`, and a record in the tutorial's own shape is a page view too: its id is a
    /// UUIDv5 of where it was read (a redelivery is the same event), its receive time the
    /// record's timestamp, its visitor its `userId` (it has no visitor id), and its own id is
    /// kept in `source_id`. A record that is neither reports why it is not ours.
    pub fn decode_at(value: Option<&[u8]>, at: RecordAt<'_>) -> Result<Self, DecodeError> {
        let ours = match Self::decode(value) {
            Err(DecodeError::Json(e)) => e,
            decoded => return decoded,
        };
        let bytes = value.ok_or(DecodeError::Empty)?;
        let Ok(tutorial) = serde_json::from_slice::<TutorialView>(bytes) else {
            return Err(DecodeError::Json(ours));
        };
        tutorial.fields.validate()?;
        let source_id = match tutorial.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        check_text("id", &source_id, MAX_USER_ID)?;
        let place = format!("{}/{}/{}", at.topic, at.partition, at.offset);
        Ok(PageView {
            id: Uuid::new_v5(&TUTORIAL_IDS, place.as_bytes()),
            fields: tutorial.fields,
            visit: Visit::default(),
            received_at: at.timestamp,
            source_id: Some(source_id),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of strings, a UUID and a timestamp cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PageView {
        PageView {
            id: Uuid::now_v7(),
            fields: PageFields {
                event_type: "PAGE_VIEW".into(),
                user_id: "u1".into(),
                path: "/".into(),
                url: "example.com".into(),
                ..Default::default()
            },
            visit: Visit::default(),
            received_at: Utc::now(),
            source_id: None,
        }
    }

    #[test]
    fn a_record_of_the_tutorials_own_producer_is_a_page_view_named_by_where_it_was_read() {
        let tutorial = br#"{"id":"1796118828","eventType":"PAGE_VIEW","userId":"some_session_id","path":"/test","search":"?q=foo","title":"Kafka Demo","url":"kafka.demo.com"}"#;
        let at = RecordAt {
            topic: "PAGE_VIEW",
            partition: 2,
            offset: 41,
            timestamp: Utc::now(),
        };
        let view = PageView::decode_at(Some(tutorial), at).expect("a page view");
        assert_eq!(view.source_id.as_deref(), Some("1796118828"));
        assert_eq!(view.received_at, at.timestamp);
        assert_eq!(view.fields.path, "/test");
        assert_eq!(
            view.visit,
            Visit::default(),
            "no visitor id: the user id stands in"
        );
        let again = PageView::decode_at(Some(tutorial), at).expect("a page view");
        assert_eq!(again.id, view.id, "a redelivery is the same event");
        let elsewhere = RecordAt { offset: 42, ..at };
        assert_ne!(
            PageView::decode_at(Some(tutorial), elsewhere)
                .expect("decoded")
                .id,
            view.id
        );
        // Ours still decode as ours, and what is neither says why it is not ours.
        let ours = sample();
        assert_eq!(
            PageView::decode_at(Some(&ours.encode()), at).expect("ours"),
            ours
        );
        let err = PageView::decode_at(Some(br#"{"id":"x"}"#), at)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not a page view"), "{err}");
    }

    #[test]
    fn an_encoded_page_view_decodes_to_itself() {
        let v = sample();
        assert_eq!(PageView::decode(Some(&v.encode())).unwrap(), v);
    }

    #[test]
    fn a_nul_byte_is_named_with_its_field() {
        let mut v = sample();
        v.fields.title = "a\0b".into();
        let err = PageView::decode(Some(&v.encode())).unwrap_err().to_string();
        assert!(err.contains("title") && err.contains("NUL"), "{err}");
    }

    #[test]
    fn invisible_and_direction_changing_characters_are_refused_naming_the_field() {
        for c in ['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2028}', '\u{2066}'] {
            let mut v = sample();
            v.fields.path = format!("/admin{c}gpj.exe");
            let err = v.fields.validate().unwrap_err().to_string();
            assert!(
                err.starts_with("path:") && err.contains("U+"),
                "{c:?}: {err}"
            );
        }
        let mut v = sample();
        v.fields.title = "Café — naïve 日本語 emoji 🎉".into();
        assert_eq!(v.fields.validate(), Ok(()), "visible text is fine");
    }

    #[test]
    fn the_wire_format_is_flat_camel_case_json() {
        let v = sample();
        let json: serde_json::Value = serde_json::from_slice(&v.encode()).unwrap();
        assert_eq!(json["eventType"], "PAGE_VIEW");
        assert_eq!(json["userId"], "u1");
        assert!(
            json["receivedAt"].is_string() && json.get("fields").is_none(),
            "{json}"
        );
        assert!(
            json.get("referrer").is_none(),
            "an absent referrer is left out: {json}"
        );
    }

    #[test]
    fn a_custom_events_name_and_properties_are_bounded_and_named_when_wrong() {
        let event = |props: Vec<(&str, String)>| {
            let mut v = sample();
            v.fields.name = Some("Signup".into());
            let props = props.into_iter().map(|(k, v)| Property {
                key: k.to_owned(),
                value: v,
            });
            v.fields.props = Some(props.collect());
            v.fields.validate()
        };
        assert_eq!(event(vec![("plan", "pro".into())]), Ok(()));
        let keys: Vec<String> = (0..31).map(|i| format!("k{i}")).collect();
        let many = keys.iter().map(|k| (k.as_str(), String::new())).collect();
        assert_eq!(event(many).map_err(|e| e.field), Err("props"));
        let long_key = "k".repeat(301);
        let err = event(vec![(long_key.as_str(), String::new())]).unwrap_err();
        assert_eq!(err.field, "props.key");
        let err = event(vec![("plan", "é".repeat(2_001))]).unwrap_err();
        assert_eq!(err.field, "props.value", "{err}");
        assert_eq!(
            event(vec![("plan", "é".repeat(2_000))]),
            Ok(()),
            "characters, not bytes"
        );
        let twice = event(vec![("plan", "a".into()), ("plan", "b".into())]);
        assert!(twice.unwrap_err().reason.contains("twice"));
        let mut v = sample();
        v.fields.props = Some(Vec::new());
        assert_eq!(
            v.fields.validate().map_err(|e| e.field),
            Err("props"),
            "no name"
        );
        v.fields.name = Some("Signup".into());
        v.fields.engaged_ms = Some(5);
        assert_eq!(v.fields.validate().map_err(|e| e.field), Err("name"));
    }

    #[test]
    fn a_missing_field_is_not_a_page_view() {
        let err = PageView::decode(Some(br#"{"id":"00000000-0000-0000-0000-000000000000"}"#))
            .unwrap_err();
        assert!(matches!(err, DecodeError::Json(_)), "{err}");
    }
}
