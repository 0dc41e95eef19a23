//! JSON paths that name where in a plan something is wrong.
//!
//! [`JsonPath`] renders as `phases[0].steps[2].run.argv`; keys that are not plain identifiers are
//! quoted (`env["MY VAR"]`). A path can carry a prefix for plans nested in another document
//! (`kiln.phases[0]` inside `.attrs.json`).
//!
//! A path keeps its keys whole (a caller may look them up in the document), but shows at most
//! [`MAX_QUOTED_NAME`] bytes of each, cut on a character boundary and marked with `…`, with
//! control characters escaped: a key may be 40 MiB long.

use std::fmt::{self, Write as _};

use crate::excerpt::{floor_boundary, is_hidden, MAX_QUOTED_NAME};

/// One segment of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path from the document root to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    /// The root of the document.
    pub fn root() -> JsonPath {
        JsonPath::default()
    }

    /// This path followed by an object key.
    pub fn key(&self, key: impl Into<String>) -> JsonPath {
        let mut next = self.clone();
        next.segments.push(Segment::Key(key.into()));
        next
    }

    /// This path followed by an array index.
    pub fn index(&self, index: usize) -> JsonPath {
        let mut next = self.clone();
        next.segments.push(Segment::Index(index));
        next
    }

    /// `prefix` followed by this path.
    pub fn prefixed(&self, prefix: &JsonPath) -> JsonPath {
        let mut segments = prefix.segments.clone();
        segments.extend(self.segments.iter().cloned());
        JsonPath { segments }
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Converts the path reported by `serde_path_to_error`.
    pub fn from_serde(path: &serde_path_to_error::Path) -> JsonPath {
        use serde_path_to_error::Segment as S;
        let segments = path
            .iter()
            .filter_map(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Enum { variant } => Some(Segment::Key(variant.clone())),
                S::Unknown => None,
            })
            .collect();
        JsonPath { segments }
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("(the document root)");
        }
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    let shown = &key[..floor_boundary(key, MAX_QUOTED_NAME)];
                    let cut = if shown.len() < key.len() { "…" } else { "" };
                    if is_identifier(shown) {
                        if position > 0 {
                            f.write_str(".")?;
                        }
                        write!(f, "{shown}{cut}")?;
                    } else {
                        f.write_str("[\"")?;
                        for c in shown.chars() {
                            match c {
                                '"' | '\\' => write!(f, "\\{c}")?,
                                c if is_hidden(c) => write!(f, "\\u{:04x}", c as u32)?,
                                c => f.write_char(c)?,
                            }
                        }
                        write!(f, "{cut}\"]")?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_indices_and_quoted_keys() {
        let path = JsonPath::root()
            .key("phases")
            .index(0)
            .key("steps")
            .index(2)
            .key("run");
        assert_eq!(path.to_string(), "phases[0].steps[2].run");
        assert_eq!(
            JsonPath::root().key("env").key("MY VAR").to_string(),
            r#"env["MY VAR"]"#
        );
        assert_eq!(JsonPath::root().to_string(), "(the document root)");
        let nested = JsonPath::root()
            .key("name")
            .prefixed(&JsonPath::root().key("kiln"));
        assert_eq!(nested.to_string(), "kiln.name");
    }

    #[test]
    fn long_keys_are_shown_cut_and_control_characters_escaped() {
        let long = "k".repeat(1 << 20);
        let shown = JsonPath::root().key("env").key(long.as_str()).to_string();
        assert_eq!(shown, format!("env.{}…", "k".repeat(MAX_QUOTED_NAME)));
        let shown = JsonPath::root()
            .key(format!("a b{}", "é".repeat(100)))
            .to_string();
        assert!(
            shown.starts_with("[\"a bé") && shown.ends_with("é…\"]"),
            "{shown}"
        );
        assert!(shown.len() < MAX_QUOTED_NAME + 10);
        assert_eq!(
            JsonPath::root().key("a\n\"\u{1b}").to_string(),
            r#"["a\u000a\"\u001b"]"#
        );
        // The key is kept whole for callers that look it up.
        let path = JsonPath::root().key(long.as_str());
        assert!(matches!(&path.segments()[0], Segment::Key(key) if key.len() == 1 << 20));
    }
}
