//! What text is kept: none with control characters, or with characters that change how the
//! text around them is displayed without being seen. One rule for the client's fields (the
//! `event` crate refuses them) and for values decoded from them (a percent-encoded UTM value
//! is dropped).

/// Bidi controls (which can reverse a path or title on a dashboard), zero-width characters,
/// the byte-order mark, and the Unicode line and paragraph separators.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'              // Arabic letter mark
            | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner, LRM, RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, LRE, RLE, PDF, LRO, RLO
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
            | '\u{FEFF}' // byte-order mark, zero-width no-break space
    )
}

/// Whether `text` shows as what it is: no control and no invisible character.
pub fn is_readable(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() || is_invisible(c))
}
