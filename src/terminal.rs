//! Text for a terminal: what `sweep` prints of a spec, a results file, a file name or an error goes
//! through [`line`] (one line: a table cell, a log line) or [`text`] (several lines: an error), which
//! show control characters escaped (`\u{1b}`) instead of letting them move the cursor, recolour or
//! clear the screen, or reorder what follows (the Unicode bidirectional overrides).
//!
//! [`is_unsafe`] is also what names are checked against (`spec`): a name that would need escaping is
//! refused before it reaches any output.
//!
//! A leaf like `atomic`: it imports nothing from the crate, so every layer that prints may use it.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: a C0 or C1 control character or DEL, or a
/// bidirectional embedding, override or isolate (U+202A-U+202E, U+2066-U+2069), which reorder the
/// text after them.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` as one line: every unsafe character escaped, newlines and tabs included.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// `s` as text of several lines: unsafe characters escaped except newlines and tabs.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(line("a\x1b[31mred\x07"), "a\\u{1b}[31mred\\u{7}");
        assert_eq!(line("two\nlines\ttab\r"), "two\\u{a}lines\\u{9}tab\\u{d}");
        assert_eq!(text("two\nlines\ttab\r"), "two\nlines\ttab\\u{d}");
        assert_eq!(line("evil\u{202e}txt.exe\u{9b}"), "evil\\u{202e}txt.exe\\u{9b}");
        assert_eq!(line("plain ± é ✓"), "plain ± é ✓");
        assert!(matches!(line("plain"), Cow::Borrowed(_)));
    }
}
