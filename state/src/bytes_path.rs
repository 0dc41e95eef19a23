//! Paths in JSON, byte for byte: a path is bytes on Linux, a JSON string is UTF-8, and serde's
//! own `PathBuf` support refuses (serializing) or cannot express (deserializing) the
//! difference. Used with `#[serde(with = "kiln_state::bytes_path")]` wherever a path crosses a
//! process or a file: [`Manifest::workdir`](crate::Manifest::workdir), and kiln's phase request
//! and response.
//!
//! # Format
//!
//! A path that is valid UTF-8 is a plain JSON string, exactly as serde writes a `PathBuf`
//! (so every manifest and message written before this module reads back the same); any other
//! path is an object with one field, its bytes:
//!
//! ```json
//! "hello-2.10"
//! {"bytes": [115, 114, 99, 45, 255]}
//! ```
//!
//! Reading accepts both forms whatever the bytes (a UTF-8 path written as bytes reads back the
//! same); an object with any other field is an error.
//!
//! # Example
//!
//! ```
//! use std::ffi::OsStr;
//! use std::os::unix::ffi::OsStrExt;
//! use std::path::PathBuf;
//!
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Where {
//!     #[serde(with = "kiln_state::bytes_path")]
//!     dir: PathBuf,
//! }
//!
//! let odd = Where { dir: PathBuf::from(OsStr::from_bytes(b"src-\xff")) };
//! let json = serde_json::to_string(&odd).unwrap();
//! assert_eq!(json, r#"{"dir":{"bytes":[115,114,99,45,255]}}"#);
//! assert_eq!(serde_json::from_str::<Where>(&json).unwrap(), odd);
//!
//! let plain = Where { dir: PathBuf::from("/build/hello-2.10") };
//! assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"dir":"/build/hello-2.10"}"#);
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserializer, Serialize, Serializer};

/// The field of the object form.
const BYTES: &str = "bytes";

/// Writes `path` as a string when it is UTF-8, else as `{"bytes": [...]}`.
pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    match path.to_str() {
        Some(text) => serializer.serialize_str(text),
        None => {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(BYTES, path.as_os_str().as_bytes())?;
            map.end()
        }
    }
}

/// Reads what [`serialize`] writes.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    deserializer.deserialize_any(PathVisitor)
}

/// A path that serializes like [`serialize`] writes it: for building JSON values by hand (a
/// cache key) or for maps of paths.
#[derive(Debug, Clone, Copy)]
pub struct AsBytes<'a>(pub &'a Path);

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, serializer)
    }
}

/// `path` as a JSON value in this module's format.
pub fn to_value(path: &Path) -> serde_json::Value {
    match path.to_str() {
        Some(text) => serde_json::Value::String(text.to_owned()),
        None => serde_json::json!({ BYTES: path.as_os_str().as_bytes() }),
    }
}

/// The same format for a map of names to paths (`#[serde(with = "kiln_state::bytes_path::map")]`).
pub mod map {
    use super::*;

    /// Writes each path as [`serialize`](super::serialize) does.
    pub fn serialize<S: Serializer>(
        paths: &BTreeMap<String, PathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(paths.len()))?;
        for (name, path) in paths {
            map.serialize_entry(name, &AsBytes(path))?;
        }
        map.end()
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, PathBuf>, D::Error> {
        deserializer.deserialize_map(MapVisitor)
    }

    struct MapVisitor;

    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, PathBuf>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a map of names to paths")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut paths = BTreeMap::new();
            while let Some(name) = access.next_key::<String>()? {
                let path = access.next_value::<Owned>()?.0;
                if paths.insert(name.clone(), path).is_some() {
                    return Err(de::Error::custom(format!(
                        "the name `{name}` appears twice"
                    )));
                }
            }
            Ok(paths)
        }
    }
}

/// A path read in this module's format, for containers.
struct Owned(PathBuf);

impl<'de> serde::Deserialize<'de> for Owned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Owned)
    }
}

struct PathVisitor;

impl<'de> Visitor<'de> for PathVisitor {
    type Value = PathBuf;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(r#"a path: a string, or {"bytes": [...]} when it is not UTF-8"#)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<PathBuf, E> {
        Ok(PathBuf::from(text))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<PathBuf, E> {
        Ok(PathBuf::from(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<PathBuf, A::Error> {
        let mut bytes: Option<Vec<u8>> = None;
        while let Some(key) = access.next_key::<String>()? {
            if key != BYTES {
                return Err(de::Error::unknown_field(&key, &[BYTES]));
            }
            if bytes.is_some() {
                return Err(de::Error::duplicate_field(BYTES));
            }
            bytes = Some(access.next_value()?);
        }
        let bytes = bytes.ok_or_else(|| de::Error::missing_field(BYTES))?;
        Ok(PathBuf::from(OsString::from_vec(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct One {
        #[serde(with = "super")]
        path: PathBuf,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Many {
        #[serde(with = "super::map")]
        paths: BTreeMap<String, PathBuf>,
    }

    fn raw(bytes: &[u8]) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(bytes))
    }

    #[test]
    fn every_byte_string_round_trips() {
        let all: Vec<u8> = (1..=255).collect();
        for bytes in [
            &b""[..],
            b"hello-2.10",
            b"src-\xff",
            b"\xc3\x28/x",
            b"caf\xc3\xa9",
            &all,
        ] {
            let one = One { path: raw(bytes) };
            let json = serde_json::to_string(&one).unwrap();
            assert_eq!(serde_json::from_str::<One>(&json).unwrap(), one, "{json}");
            assert_eq!(
                serde_json::from_value::<One>(serde_json::json!({ "path": to_value(&one.path) }))
                    .unwrap(),
                one
            );
        }
    }

    #[test]
    fn utf8_paths_are_plain_strings_as_before() {
        let one = One {
            path: PathBuf::from("/build/café"),
        };
        let json = serde_json::to_string(&one).unwrap();
        assert_eq!(json, r#"{"path":"/build/café"}"#);
        // What serde's own `PathBuf` support writes, read back.
        #[derive(Serialize)]
        struct Plain {
            path: PathBuf,
        }
        let plain = serde_json::to_string(&Plain {
            path: one.path.clone(),
        })
        .unwrap();
        assert_eq!(plain, json);
    }

    #[test]
    fn maps_round_trip() {
        let many = Many {
            paths: BTreeMap::from([
                ("out".to_owned(), PathBuf::from("/tmp/out")),
                ("dev".to_owned(), raw(b"/tmp/\xfe-dev")),
            ]),
        };
        let json = serde_json::to_string(&many).unwrap();
        assert_eq!(
            json,
            r#"{"paths":{"dev":{"bytes":[47,116,109,112,47,254,45,100,101,118]},"out":"/tmp/out"}}"#
        );
        assert_eq!(serde_json::from_str::<Many>(&json).unwrap(), many);
    }

    #[test]
    fn malformed_forms_are_errors() {
        for json in [
            r#"{"path": {"text": "x"}}"#,
            r#"{"path": {}}"#,
            r#"{"path": {"bytes": [256]}}"#,
            r#"{"path": {"bytes": "abc"}}"#,
            r#"{"path": {"bytes": [1], "bytes": [2]}}"#,
            r#"{"path": 7}"#,
        ] {
            assert!(serde_json::from_str::<One>(json).is_err(), "{json}");
        }
        assert!(serde_json::from_str::<Many>(r#"{"paths": {"a": "x", "a": "y"}}"#).is_err());
    }
}
