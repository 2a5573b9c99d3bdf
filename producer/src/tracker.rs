//! `GET /tracker.js`: the one-line tracker (`tracker/tracker.js`, plain JavaScript in the repo),
//! embedded in the binary and served minified by oxc (at start), a week of caching,
//! an ETag for revalidation, and headers that let any site load it.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

const SOURCE: &str = include_str!("tracker/tracker.js");
/// The automatic events (outbound links, file downloads), inserted into `SOURCE` at this line.
const CLICKS: &str = include_str!("tracker/clicks.js");
const CLICKS_AT: &str = "  // automatic events (tracker.clicks.js only)\n";

/// A served script and its ETag, made once.
pub struct Script {
    pub text: String,
    etag: String,
}

impl Script {
    fn new(source: &str) -> Script {
        let text = minify(source);
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let etag = format!("\"{hash:016x}\"");
        Script { text, etag }
    }
}

/// `/tracker.js`: page views, engagement and custom events.
pub static DEFAULT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// `/tracker.clicks.js`: the same with the automatic events.
pub static WITH_CLICKS: LazyLock<Script> =
    LazyLock::new(|| Script::new(&SOURCE.replacen(CLICKS_AT, CLICKS, 1)));

pub async fn serve_clicks(request: HttpRequest) -> HttpResponse {
    respond(&WITH_CLICKS, &request)
}

pub async fn serve(request: HttpRequest) -> HttpResponse {
    respond(&DEFAULT, &request)
}

fn respond(served: &'static Script, request: &HttpRequest) -> HttpResponse {
    let (script, etag) = (&served.text, &served.etag);
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "public, max-age=604800"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"));
    if fresh {
        return response.finish();
    }
    response
        .content_type("text/javascript; charset=utf-8")
        .body(script.as_str())
}

/// The script minified by oxc: parsed, compressed, its local names mangled and printed without
/// blanks or comments. The source is checked in and parsed by a test, so a syntax error cannot
/// reach a release; should one anyway, the source is served as it is.
fn minify(source: &str) -> String {
    use oxc_allocator::Allocator;
    use oxc_codegen::{Codegen, CodegenOptions};
    use oxc_minifier::{Minifier, MinifierOptions};
    use oxc_parser::Parser;
    use oxc_span::SourceType;

    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::cjs()).parse();
    if !parsed.errors.is_empty() {
        tracing::error!(
            errors = parsed.errors.len(),
            "the tracker does not parse; serving it unminified"
        );
        return source.to_owned();
    }
    let mut program = parsed.program;
    let minified = Minifier::new(MinifierOptions::default()).minify(&allocator, &mut program);
    Codegen::new()
        .with_options(CodegenOptions::minify())
        .with_scoping(minified.scoping)
        .build(&program)
        .code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_events_are_inserted_into_the_clicks_script_only() {
        assert!(SOURCE.contains(CLICKS_AT));
        assert!(WITH_CLICKS.text.contains("Outbound Link: Click"));
        assert!(!DEFAULT.text.contains("Outbound Link: Click"));
        assert_ne!(DEFAULT.etag, WITH_CLICKS.etag);
    }

    #[test]
    fn the_tracker_parses_and_minifies_to_a_fraction_of_its_source() {
        let script = minify(SOURCE);
        assert_ne!(script, SOURCE, "it parsed");
        assert!(!script.contains("// "), "no comments");
        assert!(
            script.len() * 2 < SOURCE.len(),
            "{} of {} bytes",
            script.len(),
            SOURCE.len()
        );
        assert!(script.contains("register_kafka_event") && script.contains("pageviews"));
    }
}
