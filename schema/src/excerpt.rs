//! Bounded quoting of user input in messages: the one place that decides how much of a value a
//! message may show.
//!
//! The plan is hostile input: a key can be 40 MiB long, a name can hold a newline or a terminal
//! escape. Every message that quotes the plan (unknown field names and step kinds, names,
//! values, references, lists of known names, serde's own messages) goes through [`excerpt`],
//! [`excerpt_with`], [`shorten`] or [`list`], so that
//!
//! - a message stays a few hundred bytes whatever the input: at most [`MAX_QUOTED`] bytes of a
//!   value are shown, cut on a character boundary and marked with `…`;
//! - formatting costs what is shown, not what was written: [`Excerpt`] stops reading the value
//!   once its budget is spent;
//! - a value cannot start a new line or drive the terminal: control characters and the Unicode
//!   bidirectional overrides (the "Trojan Source" characters, CVE-2021-42574) are shown escaped,
//!   as `\n` or `\u{1b}`.

use std::fmt::{self, Write as _};

/// The most bytes of one quoted value a message shows (the `…` marker not counted).
pub const MAX_QUOTED: usize = 200;

/// The most bytes of a JSON-path key, or of one name in a list, a message shows.
pub const MAX_QUOTED_NAME: usize = 64;

/// The most bytes of a whole message from elsewhere (serde's, a nested error's) a message shows.
pub const MAX_MESSAGE: usize = 1000;

/// The most names [`list`] shows before `… (N in all)`.
pub const MAX_LISTED: usize = 20;

/// A value as a message shows it: see the [module docs](self). Made by [`excerpt`].
#[derive(Debug, Clone, Copy)]
pub struct Excerpt<'a> {
    text: &'a str,
    max: usize,
    /// Show `\n` as a line break (in a message from elsewhere), not escaped.
    newlines: bool,
}

/// `text`, shown up to [`MAX_QUOTED`] bytes.
pub fn excerpt(text: &str) -> Excerpt<'_> {
    excerpt_with(text, MAX_QUOTED)
}

/// `text`, shown up to `max` bytes.
pub fn excerpt_with(text: &str, max: usize) -> Excerpt<'_> {
    Excerpt {
        text,
        max,
        newlines: false,
    }
}

/// Whether `c` is shown escaped: it would end the line, move the cursor, start a terminal escape
/// sequence or reorder the text around it.
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl Excerpt<'_> {
    /// Whether the value is shown as written: short enough and nothing escaped.
    pub fn is_whole(&self) -> bool {
        self.text.len() <= self.max && !self.text.chars().any(|c| self.escapes(c))
    }

    fn escapes(&self, c: char) -> bool {
        is_hidden(c) && !(self.newlines && c == '\n')
    }
}

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = 0;
        let mut piece = String::new();
        for c in self.text.chars() {
            piece.clear();
            match c {
                c if !self.escapes(c) => piece.push(c),
                '\n' => piece.push_str("\\n"),
                '\r' => piece.push_str("\\r"),
                '\t' => piece.push_str("\\t"),
                c => {
                    let _ = write!(piece, "\\u{{{:x}}}", c as u32);
                }
            }
            if shown + piece.len() > self.max {
                return f.write_str("…");
            }
            f.write_str(&piece)?;
            shown += piece.len();
        }
        Ok(())
    }
}

/// A message from elsewhere (serde's description, which quotes the value it refused), shown up
/// to [`MAX_MESSAGE`] bytes: its start and its end (where serde says what it expected), with
/// `…` between them.
pub fn shorten(message: &str) -> String {
    let whole = Excerpt {
        text: message,
        max: MAX_MESSAGE,
        newlines: true,
    };
    if whole.is_whole() {
        return message.to_owned();
    }
    let head_end = floor_boundary(message, MAX_MESSAGE * 2 / 3);
    let tail_start = ceil_boundary(message, message.len().saturating_sub(MAX_MESSAGE / 3));
    let part = |text, max| Excerpt {
        text,
        max,
        newlines: true,
    };
    if tail_start <= head_end {
        return part(message, MAX_MESSAGE).to_string();
    }
    format!(
        "{}…{}",
        part(&message[..head_end], MAX_MESSAGE * 2 / 3),
        part(&message[tail_start..], MAX_MESSAGE / 3)
    )
}

/// The largest character boundary of `text` at or below `index`.
pub(crate) fn floor_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The smallest character boundary of `text` at or above `index`.
fn ceil_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

/// Names as a message lists them: `` `a`, `b`, `c` ``, each name at most [`MAX_QUOTED_NAME`]
/// bytes, at most [`MAX_LISTED`] of them, then `… (N in all)`.
pub fn list<S: AsRef<str>>(names: &[S]) -> String {
    list_joined(names, ", ", true)
}

/// Names joined by `separator`, bounded as [`list`] bounds them; `backticks` puts each in
/// backticks.
pub fn list_joined<S: AsRef<str>>(names: &[S], separator: &str, backticks: bool) -> String {
    let mut shown = String::new();
    for (index, name) in names.iter().take(MAX_LISTED).enumerate() {
        if index > 0 {
            shown.push_str(separator);
        }
        let name = excerpt_with(name.as_ref(), MAX_QUOTED_NAME);
        let _ = if backticks {
            write!(shown, "`{name}`")
        } else {
            write!(shown, "{name}")
        };
    }
    if names.len() > MAX_LISTED {
        let _ = write!(shown, "{separator}… ({} in all)", names.len());
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_shown_whole() {
        assert_eq!(excerpt("argv").to_string(), "argv");
        assert!(excerpt("argv").is_whole());
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(1000);
        let shown = excerpt(&long).to_string();
        assert!(shown.ends_with('…'), "{shown}");
        let cut = shown.trim_end_matches('…');
        assert!(cut.len() <= MAX_QUOTED && cut.len() >= MAX_QUOTED - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert!(!excerpt(&long).is_whole());
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert_eq!(
            excerpt("a\nerror: b\u{1b}[2J\u{202e}c").to_string(),
            "a\\nerror: b\\u{1b}[2J\\u{202e}c"
        );
        let shown = excerpt(&"\u{1}".repeat(10_000)).to_string();
        assert!(shown.len() <= MAX_QUOTED + "…".len(), "{}", shown.len());
    }

    #[test]
    fn long_messages_keep_their_start_and_end() {
        let message = format!(
            "invalid type: string \"{}\", expected u32",
            "k".repeat(1 << 20)
        );
        let shown = shorten(&message);
        assert!(shown.len() <= MAX_MESSAGE + 8, "{}", shown.len());
        assert!(shown.starts_with("invalid type: string \"kkk"));
        assert!(shown.ends_with("kkk\", expected u32"));
        assert!(shown.contains('…'));
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn lists_are_bounded() {
        assert_eq!(list(&["a", "b"]), "`a`, `b`");
        let many: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        let shown = list(&many);
        assert!(shown.starts_with("`p0`, `p1`"));
        assert!(shown.ends_with("`p19`, … (100 in all)"), "{shown}");
        let huge = vec!["x".repeat(1 << 20)];
        assert!(list(&huge).len() < 100);
    }
}
