//! `GET /tracker.js`: the one-line tracker (`tracker/tracker.js`, plain JavaScript in the repo),
//! embedded in the binary and served with its comments and blanks removed, a week of caching,
//! an ETag for revalidation, and headers that let any site load it.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

const SOURCE: &str = include_str!("tracker/tracker.js");

/// The served script and its ETag, made once.
static SCRIPT: LazyLock<(String, String)> = LazyLock::new(|| {
    let script = minify(SOURCE);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in script.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let etag = format!("\"{hash:016x}\"");
    (script, etag)
});

/// The script as served.
pub fn script() -> &'static str {
    &SCRIPT.0
}

pub async fn serve(request: HttpRequest) -> HttpResponse {
    let (script, etag) = &*SCRIPT;
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

/// Removes comment lines and every blank that does not separate two words. Enough for this one
/// script, written for it: no blank inside its string literals matters to skip, strings are
/// kept whole anyway, and no line starts a comment inside a string.
fn minify(source: &str) -> String {
    let lines: Vec<&str> = source
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.is_empty())
        .collect();
    let text = lines.join("\n");
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' {
                out.extend(chars.next());
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            out.push(c);
            continue;
        }
        if c.is_whitespace() {
            let mut newline = c == '\n';
            while let Some(next) = chars.peek().copied().filter(|n| n.is_whitespace()) {
                newline |= next == '\n';
                chars.next();
            }
            let before = out.chars().last().is_some_and(word);
            let after = chars.peek().copied().is_some_and(word);
            if before && after {
                out.push(if newline { '\n' } else { ' ' });
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minifying_keeps_strings_and_the_blanks_between_words() {
        let source = "// a comment\nvar a = \"x  y\" ,\n  b = 'p // q';\nreturn\nb";
        assert_eq!(minify(source), "var a=\"x  y\",b='p // q';return\nb");
    }
}
