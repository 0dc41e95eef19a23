//! JSON paths that name where in a plan something is wrong.
//!
//! [`JsonPath`] renders as `phases[0].steps[2].run.argv`; keys that are not plain identifiers are
//! quoted (`env["MY VAR"]`). A path can carry a prefix for plans nested in another document
//! (`kiln.phases[0]` inside `.attrs.json`).

use std::fmt;

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
                Segment::Key(key) if is_identifier(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{}]", serde_json::Value::from(key.as_str()))?,
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
}
