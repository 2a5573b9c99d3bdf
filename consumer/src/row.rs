//! The `raw_events` row of a stored event, written as JSON keyed by column name for
//! `json_populate_recordset`: its wire form, its enrichment, and where the record was read. No
//! field is named here, so a field added to the event or to the enrichment reaches the column
//! of the same name without an edit. The texts of `texts::COLUMNS` are written as their ids,
//! a `url` that `is_derived_url` rebuilds from the row is written as NULL (the view
//! `kafka_events` rebuilds it the same way), and so is a column's usual value
//! (`migration::USUAL_VALUES`, which the view reads back).

use std::collections::BTreeSet;

use event::PageFields;
use sea_orm::DbErr;
use serde_json::{Map, Value};

use crate::store::StoredEvent;
use crate::texts::{self, Ids};

/// Where a batch's records were read, and the ids of the texts its rows hold.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub texts: &'a Ids,
}

#[derive(serde::Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    view: &'a event::PageView,
    #[serde(flatten)]
    enrichment: &'a enrich::Enrichment,
    topic: &'a str,
    partition: i32,
    offset: i64,
    visit_id: Option<uuid::Uuid>,
}

/// What the writer does with a text of `texts::COLUMNS`.
enum TextMode<'a> {
    /// Writes its id (the text must be in the map).
    Encode(&'a Ids),
    /// Writes nothing and collects the text.
    Collect(&'a mut BTreeSet<String>),
    /// Writes the text itself (where only the column names are wanted).
    Plain,
}

fn write_row(
    out: &mut Vec<u8>,
    event: &StoredEvent,
    origin: (&str, i32),
    mode: TextMode<'_>,
) -> Result<(), DbErr> {
    let row = Row {
        view: &event.view,
        enrichment: &event.enrichment,
        topic: origin.0,
        partition: origin.1,
        offset: event.offset,
        visit_id: event.visit_id,
    };
    let mut formatter = RowFormatter::new(mode);
    formatter.url_is_derived = is_derived_url(event);
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, &mut formatter);
    serde::Serialize::serialize(&row, &mut serializer).map_err(|e| DbErr::Json(e.to_string()))?;
    match formatter.unknown {
        None => Ok(()),
        Some(text) => Err(DbErr::Custom(format!(
            "the text {text:?} has no id of event_texts in this batch"
        ))),
    }
}

/// Whether the event's URL is `https://` + its site + its path + its search, exactly: the
/// rule migration 21's view `kafka_events` reads a NULL `url` by.
pub fn is_derived_url(event: &StoredEvent) -> bool {
    let (Some(site), fields) = (event.enrichment.site.as_deref(), &event.view.fields) else {
        return false;
    };
    fields
        .url
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_prefix(site))
        .and_then(|rest| rest.strip_prefix(fields.path.as_str()))
        == Some(fields.search.as_str())
}

/// The rows of events as one JSON array, as text: PostgreSQL parses it once as `json`
/// (cheaper than building a `jsonb`).
pub fn rows_json<'a>(
    events: impl ExactSizeIterator<Item = &'a StoredEvent>,
    origin: Origin<'_>,
) -> Result<String, DbErr> {
    let mut rows = Vec::with_capacity(events.len() * 512);
    rows.push(b'[');
    for (n, event) in events.enumerate() {
        if n > 0 {
            rows.push(b',');
        }
        write_row(
            &mut rows,
            event,
            (origin.topic, origin.partition),
            TextMode::Encode(origin.texts),
        )?;
    }
    rows.push(b']');
    String::from_utf8(rows).map_err(|e| DbErr::Json(e.to_string()))
}

/// The texts of `texts::COLUMNS` the rows of `events`, read from `topic`, hold.
pub fn texts_of<'a>(
    events: impl Iterator<Item = &'a StoredEvent>,
    topic: &str,
) -> Result<BTreeSet<String>, DbErr> {
    let mut texts = BTreeSet::new();
    let mut sink = Vec::new();
    for event in events {
        write_row(
            &mut sink,
            event,
            // The partition is a number, never a text.
            (topic, 0),
            TextMode::Collect(&mut texts),
        )?;
        sink.clear();
    }
    Ok(texts)
}

/// The row of an event as a map from column name to value, its texts as ids (for tests and
/// the benchmark).
pub fn event_row(event: &StoredEvent, origin: Origin<'_>) -> Result<Map<String, Value>, DbErr> {
    let text = rows_json(std::iter::once(event), origin)?;
    match serde_json::from_str(&text) {
        Ok(Value::Array(mut rows)) => match rows.pop() {
            Some(Value::Object(map)) => Ok(map),
            _ => Err(DbErr::Json("a row is not an object".into())),
        },
        _ => Err(DbErr::Json("the rows are not an array".into())),
    }
}

/// The columns of the client's fields (`PageFields`), as its rows name them: read from a
/// serialized `PageFields` with every optional field set, so a field added there is compared
/// without an edit here. `site` joins them: a derived `url` is NULL in the row, and the site
/// (read from the URL) is what tells two such URLs apart.
pub fn client_columns() -> &'static [String] {
    static COLUMNS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let every = PageFields::with_every_field();
        let mut text = Vec::new();
        let mut formatter = RowFormatter::new(TextMode::Plain);
        let mut serializer = serde_json::Serializer::with_formatter(&mut text, &mut formatter);
        let keys = serde::Serialize::serialize(&every, &mut serializer)
            .ok()
            .and_then(|()| serde_json::from_slice::<Map<String, Value>>(&text).ok());
        let mut columns: Vec<String> = keys
            .map(|m| m.into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default();
        columns.push("site".to_owned());
        columns
    })
}

/// A compact JSON formatter that writes object keys in snake_case (`receivedAt` →
/// `received_at`; keys already in snake_case pass unchanged) and, at the top level, the value
/// of a text column as `mode` says.
struct RowFormatter<'a> {
    mode: TextMode<'a>,
    in_key: bool,
    /// How deep in objects the writer is (the row itself is 1).
    depth: usize,
    /// The snake_case key being written, or last written.
    key: String,
    /// The text of a text column (or of a derived URL) while it is written.
    captured: Option<String>,
    /// Whether this row's `url` is written as NULL.
    url_is_derived: bool,
    /// A text that had no id.
    unknown: Option<String>,
}

impl<'a> RowFormatter<'a> {
    fn new(mode: TextMode<'a>) -> Self {
        RowFormatter {
            mode,
            in_key: false,
            depth: 0,
            key: String::new(),
            captured: None,
            url_is_derived: false,
            unknown: None,
        }
    }

    fn is_text_column(&self) -> bool {
        !matches!(self.mode, TextMode::Plain)
            && self.depth == 1
            && texts::COLUMNS.contains(&self.key.as_str())
    }

    fn is_derived_url(&self) -> bool {
        self.url_is_derived && self.depth == 1 && self.key == "url"
    }

    /// The usual value of the column being written, if it is one stored as NULL then.
    fn usual_value(&self) -> Option<&'static str> {
        (self.depth == 1).then(|| migration::usual_value(&self.key))?
    }
}

impl serde_json::ser::Formatter for &mut RowFormatter<'_> {
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        writer.write_all(b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        writer.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.in_key = true;
        self.key.clear();
        if first {
            Ok(())
        } else {
            writer.write_all(b",")
        }
    }

    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.in_key = false;
        Ok(())
    }

    fn begin_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        let captures =
            self.is_text_column() || self.is_derived_url() || self.usual_value().is_some();
        if !self.in_key && captures {
            self.captured = Some(String::new());
            return Ok(());
        }
        writer.write_all(b"\"")
    }

    fn end_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        let Some(text) = self.captured.take() else {
            return writer.write_all(b"\"");
        };
        if self.is_derived_url() {
            return writer.write_all(b"null");
        }
        if let Some(usual) = self.usual_value() {
            if text == usual {
                return writer.write_all(b"null");
            }
            return serde_json::to_writer(writer, &text).map_err(std::io::Error::other);
        }
        match &mut self.mode {
            TextMode::Encode(ids) => match ids.get(text.as_str()) {
                Some(id) => write!(writer, "{id}"),
                None => {
                    self.unknown = Some(text);
                    writer.write_all(b"null")
                }
            },
            TextMode::Collect(texts) => {
                texts.insert(text);
                Ok(())
            }
            TextMode::Plain => Ok(()),
        }
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if let Some(text) = &mut self.captured {
            text.push_str(fragment);
            return Ok(());
        }
        if !self.in_key {
            return writer.write_all(fragment.as_bytes());
        }
        let start = self.key.len();
        for c in fragment.chars() {
            if c.is_ascii_uppercase() {
                self.key.push('_');
                self.key.push(c.to_ascii_lowercase());
            } else {
                self.key.push(c);
            }
        }
        writer.write_all(&self.key.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        let Some(text) = &mut self.captured else {
            return serde_json::ser::CompactFormatter.write_char_escape(writer, escape);
        };
        text.push(match escape {
            CharEscape::Quote => '"',
            CharEscape::ReverseSolidus => '\\',
            CharEscape::Solidus => '/',
            CharEscape::Backspace => '\u{8}',
            CharEscape::FormFeed => '\u{c}',
            CharEscape::LineFeed => '\n',
            CharEscape::CarriageReturn => '\r',
            CharEscape::Tab => '\t',
            CharEscape::AsciiControl(b) => char::from(b),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use event::PageView;

    fn stored(title: &str) -> StoredEvent {
        let view = PageView {
            id: uuid::Uuid::now_v7(),
            fields: PageFields {
                event_type: "PAGE_VIEW".into(),
                user_id: "u".into(),
                title: title.into(),
                path: "/a".into(),
                url: "https://example.com/a".into(),
                ..Default::default()
            },
            visit: Default::default(),
            received_at: Utc::now(),
            source_id: Some("1796118828".into()),
        };
        let agents = enrich::agent::AgentParser::new().expect("rules");
        StoredEvent::new(42, view, &agents, "PAGE_VIEW")
    }

    /// The event's row, read from topic PAGE_VIEW's `partition`, with its texts numbered from 1.
    fn row_of(event: &StoredEvent, partition: i32) -> (Map<String, Value>, Ids) {
        let texts = texts_of(std::iter::once(event), "PAGE_VIEW").expect("texts");
        let ids: Ids = texts
            .into_iter()
            .zip(1..)
            .map(|(t, id)| (t.into(), id))
            .collect();
        let origin = Origin {
            topic: "PAGE_VIEW",
            partition,
            texts: &ids,
        };
        (event_row(event, origin).expect("row"), ids)
    }

    #[test]
    fn a_row_names_its_columns_in_snake_case_and_its_texts_by_id() {
        let event = stored("A \"quoted\"\ttitle");
        let texts = texts_of(std::iter::once(&event), "PAGE_VIEW").expect("texts");
        assert!(
            texts.contains("A \"quoted\"\ttitle"),
            "escapes undone: {texts:?}"
        );
        assert!(texts.contains("example.com") && texts.contains("PAGE_VIEW"));
        let (row, ids) = row_of(&event, 3);
        assert_eq!(
            row["event_type"],
            Value::Null,
            "the usual type, read back by the view"
        );
        assert_eq!(row["search"], Value::Null, "no query, read back as ''");
        assert_eq!(row["user_id"], "u");
        assert_eq!(row["source_id"], "1796118828");
        assert!(row["received_at"].is_string());
        assert_eq!(row["partition"], 3);
        assert_eq!(row["offset"], 42);
        assert!(!row.contains_key("eventType") && !row.contains_key("referrer"));
        assert_eq!(row["site"], ids["example.com"]);
        assert_eq!(row["topic"], ids["PAGE_VIEW"]);
        assert_eq!(row["title"], ids["A \"quoted\"\ttitle"]);
        assert_eq!(row["channel"], ids["direct"]);
        assert_eq!(row["url"], Value::Null, "https:// + site + path + search");
        assert!(row.contains_key("is_bot"), "enrichment is in the row");
    }

    #[test]
    fn a_column_holding_other_than_its_usual_value_keeps_it_escaped() {
        let mut event = stored("t");
        event.view.fields.event_type = "SIGN \"UP\"".into();
        event.view.fields.search = "?q=a\tb".into();
        event.view.fields.user_id = String::new();
        let (row, _) = row_of(&event, 0);
        assert_eq!(row["event_type"], "SIGN \"UP\"");
        assert_eq!(row["search"], "?q=a\tb");
        assert_eq!(row["user_id"], Value::Null);
    }

    #[test]
    fn a_url_is_derived_only_when_it_is_exactly_https_site_path_and_search() {
        let mut event = stored("t");
        event.view.fields.path = "/a".into();
        event.view.fields.search = "?q=1".into();
        for (url, derived) in [
            ("https://example.com/a?q=1", true),
            ("https://example.com/a?q=1#top", false),
            ("http://example.com/a?q=1", false),
            ("https://example.com/a", false),
            ("https://example.com:8443/a?q=1", false),
        ] {
            event.view.fields.url = url.into();
            event.enrichment.site = Some("example.com".into());
            assert_eq!(is_derived_url(&event), derived, "{url}");
        }
        event.enrichment.site = None;
        event.view.fields.url = "https://example.com/a?q=1".into();
        assert!(!is_derived_url(&event), "no site, nothing to derive from");
    }

    #[test]
    fn a_row_whose_text_has_no_id_is_refused_by_name() {
        let event = stored("Unknown");
        let origin = Origin {
            topic: "PAGE_VIEW",
            partition: 0,
            texts: &Ids::new(),
        };
        let error = event_row(&event, origin).expect_err("no ids").to_string();
        assert!(error.contains("has no id of event_texts"), "{error}");
    }

    #[test]
    fn the_client_columns_are_the_page_fields_named_as_columns() {
        let columns = client_columns();
        for column in [
            "event_type",
            "user_id",
            "path",
            "referrer",
            "engaged_ms",
            "scroll_depth",
        ] {
            assert!(
                columns.iter().any(|c| c == column),
                "{column} in {columns:?}"
            );
        }
        assert!(!columns
            .iter()
            .any(|c| c == "received_at" || c == "visitor_id"));
    }
}
