//! The state manifest, `manifest.json`: [`Manifest`], written by [`pack`](crate::pack) next to
//! the payload, read and checked by [`read_manifest`] before anything else touches a state.
//!
//! Reading is strict: unknown fields are refused, a `format` other than [`FORMAT`] is reported as
//! [`StateError::UnsupportedFormat`] (before the rest is parsed, so a newer format's new fields do
//! not hide the real problem), and [`Manifest::validate`] refuses values the restoring side would
//! use unsafely: a `workdir` outside the build directory, output names that are not single path
//! components, environment names with `=`.
//!
//! The working directory is whatever the build found (a source archive's top directory may
//! have any name): it is carried byte for byte, as a string when it is UTF-8 and as bytes
//! otherwise ([`crate::bytes_path`]), so a state restores into exactly the directory it was
//! packed from.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::StateError;

/// The manifest format this kiln writes and reads.
pub const FORMAT: u32 = 1;

/// The manifest's file name in a state directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The payload's file name in a state directory.
pub const PAYLOAD_FILE: &str = "state.tar.zst";

/// The version of kiln (and of this crate: the workspace shares one) that writes manifests.
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a state is: written as `manifest.json` next to the payload `state.tar.zst`.
///
/// # Format
///
/// ```json
/// {
///   "format": 1,
///   "kiln_version": "0.1.0",
///   "plan_hash": "<64 hex digits>",
///   "phase": "build",
///   "payload_sha256": "<64 hex digits>",
///   "payload_size": 123456,
///   "workdir": "hello-2.10",
///   "env": { "NAME": "value" },
///   "outputs": { "out": "/nix/store/…-hello-2.10" }
/// }
/// ```
///
/// A `workdir` that is not UTF-8 is written as its bytes, `{"bytes": [115, 114, 99, 45, 255]}`
/// (see [`crate::bytes_path`]); a UTF-8 one as a string, as it always was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest format; MUST be [`FORMAT`].
    pub format: u32,
    /// The kiln version that packed the state.
    pub kiln_version: String,
    /// The SHA-256 (64 lowercase hex digits) of the plan the state belongs to, as given by the
    /// caller.
    pub plan_hash: String,
    /// The last phase the state includes; MUST NOT be empty.
    pub phase: String,
    /// The SHA-256 (64 lowercase hex digits) of the compressed payload bytes.
    pub payload_sha256: String,
    /// The size of the compressed payload in bytes.
    pub payload_size: u64,
    /// The working directory, relative to the build directory (empty is the build directory
    /// itself), any bytes but NUL. MUST consist of normal components only: no `..`, no `.`, not
    /// absolute.
    #[serde(with = "crate::bytes_path")]
    pub workdir: PathBuf,
    /// The exported environment (the caller decides what is in it). Names MUST be non-empty and
    /// hold no `=` or NUL; values MUST hold no NUL.
    pub env: BTreeMap<String, String>,
    /// Output name → the path the partial output lived at when the state was packed (in split
    /// mode a placeholder of the real path's length). Names MUST be single normal path
    /// components.
    pub outputs: BTreeMap<String, String>,
}

/// The fields of a [`Manifest`] the caller provides to [`pack`](crate::pack); the payload fields
/// and the outputs (from [`PackInput::outputs`](crate::PackInput::outputs)) are filled in by
/// the packer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestBase {
    /// See [`Manifest::plan_hash`].
    pub plan_hash: String,
    /// See [`Manifest::phase`].
    pub phase: String,
    /// See [`Manifest::workdir`].
    pub workdir: PathBuf,
    /// See [`Manifest::env`].
    pub env: BTreeMap<String, String>,
}

impl Manifest {
    /// Checks the invariants documented on the fields; `path` names the manifest in errors.
    pub fn validate(&self, path: &Path) -> Result<(), StateError> {
        let invalid = |field: &str, reason: String| StateError::InvalidManifest {
            path: path.to_owned(),
            field: field.to_owned(),
            reason,
        };
        if self.format != FORMAT {
            return Err(StateError::UnsupportedFormat {
                path: path.to_owned(),
                found: self.format.to_string(),
                supported: FORMAT,
            });
        }
        if !is_sha256_hex(&self.plan_hash) {
            return Err(invalid(
                "plan_hash",
                format!(
                    "`{}` is not 64 lowercase hexadecimal digits",
                    self.plan_hash
                ),
            ));
        }
        if !is_sha256_hex(&self.payload_sha256) {
            return Err(invalid(
                "payload_sha256",
                format!(
                    "`{}` is not 64 lowercase hexadecimal digits",
                    self.payload_sha256
                ),
            ));
        }
        if self.phase.is_empty() {
            return Err(invalid("phase", "it is empty".to_owned()));
        }
        if let Some(problem) = relative_path_problem(&self.workdir) {
            return Err(invalid(
                "workdir",
                format!("`{}` {problem}", self.workdir.display()),
            ));
        }
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(invalid(
                    "env",
                    format!("the name `{name}` is empty or holds `=` or NUL"),
                ));
            }
            if value.contains('\0') {
                return Err(invalid(
                    &format!("env.{name}"),
                    "the value holds NUL".to_owned(),
                ));
            }
        }
        for (name, output_path) in &self.outputs {
            if let Some(problem) = output_name_problem(name) {
                return Err(invalid("outputs", format!("the name `{name}` {problem}")));
            }
            if output_path.is_empty() || output_path.contains('\0') {
                return Err(invalid(
                    &format!("outputs.{name}"),
                    format!("`{output_path}` is empty or holds NUL"),
                ));
            }
        }
        Ok(())
    }
}

/// Why `name` cannot be an output name, or `None` when it can.
pub(crate) fn output_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." || name.contains(['/', '\0']) {
        Some("is not a single path component")
    } else {
        None
    }
}

/// Why `path` is not a plain relative path (normal components only), or `None` when it is.
fn relative_path_problem(path: &Path) -> Option<&'static str> {
    if path.as_os_str().as_bytes().contains(&0) {
        return Some("holds NUL");
    }
    for component in path.components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return Some("contains `..`"),
            Component::CurDir => return Some("contains `.`"),
            Component::RootDir | Component::Prefix(_) => return Some("is absolute"),
        }
    }
    None
}

/// Whether `text` is a SHA-256 digest in lowercase hex.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// Reads and checks `dir/manifest.json`.
///
/// The `format` field is looked at first, so a manifest of another format is reported as
/// [`StateError::UnsupportedFormat`] rather than as a parse error about its new fields.
pub fn read_manifest(dir: &Path) -> Result<Manifest, StateError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|source| StateError::ReadManifest {
        path: path.clone(),
        source,
    })?;
    let parse_error = |source| StateError::ParseManifest {
        path: path.clone(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(parse_error)?;
    if let Some(format) = value.get("format") {
        if format.as_u64() != Some(u64::from(FORMAT)) {
            return Err(StateError::UnsupportedFormat {
                path,
                found: format.to_string(),
                supported: FORMAT,
            });
        }
    }
    // Parsed again from the text, not from `value`, so that errors carry a line and column.
    let manifest: Manifest = serde_json::from_slice(&text).map_err(parse_error)?;
    manifest.validate(&path)?;
    Ok(manifest)
}

/// The manifest as written: pretty JSON with a final newline, keys in a fixed order.
pub(crate) fn to_json(manifest: &Manifest) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
    json.push(b'\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            kiln_version: KILN_VERSION.to_owned(),
            plan_hash: "ab".repeat(32),
            phase: "build".to_owned(),
            payload_sha256: "cd".repeat(32),
            payload_size: 42,
            workdir: "hello-2.10/src".into(),
            env: BTreeMap::from([("CFLAGS".to_owned(), "-O2".to_owned())]),
            outputs: BTreeMap::from([("out".to_owned(), "/nix/store/x-hello".to_owned())]),
        }
    }

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join(MANIFEST_FILE), text).unwrap();
    }

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = sample();
        std::fs::write(dir.path().join(MANIFEST_FILE), to_json(&manifest)).unwrap();
        assert_eq!(read_manifest(dir.path()).unwrap(), manifest);
    }

    #[test]
    fn refuses_other_formats_before_parsing_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), r#"{"format": 2, "something_new": true}"#);
        let error = read_manifest(dir.path()).unwrap_err();
        assert!(
            matches!(&error, StateError::UnsupportedFormat { found, supported: 1, .. } if found == "2"),
            "{error:?}"
        );
        assert!(error.to_string().contains("has format `2`"), "{error}");
    }

    #[test]
    fn refuses_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let mut value = serde_json::to_value(sample()).unwrap();
        value["extra"] = serde_json::Value::Bool(true);
        write(dir.path(), &value.to_string());
        let error = read_manifest(dir.path()).unwrap_err();
        assert!(
            matches!(error, StateError::ParseManifest { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn refuses_unsafe_values() {
        type Damage = fn(&mut Manifest);
        let cases: [(&str, Damage); 8] = [
            ("workdir", |m| m.workdir = "../escape".into()),
            ("workdir", |m| m.workdir = "/etc".into()),
            ("workdir", |m| m.workdir = "./a".into()),
            ("outputs", |m| {
                m.outputs.insert("../x".to_owned(), "/p".to_owned());
            }),
            ("env", |m| {
                m.env.insert("A=B".to_owned(), String::new());
            }),
            ("payload_sha256", |m| m.payload_sha256 = "XYZ".to_owned()),
            ("plan_hash", |m| m.plan_hash = "AB".repeat(32)),
            ("phase", |m| m.phase.clear()),
        ];
        for (field, damage) in cases {
            let mut manifest = sample();
            damage(&mut manifest);
            let error = manifest.validate(Path::new("m.json")).unwrap_err();
            match error {
                StateError::InvalidManifest { field: found, .. } => assert_eq!(found, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut manifest = sample();
        manifest.workdir = PathBuf::new();
        manifest.validate(Path::new("m.json")).unwrap();
    }

    #[test]
    fn a_non_utf8_workdir_round_trips_as_bytes() {
        use std::ffi::OsStr;
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = sample();
        manifest.workdir = PathBuf::from(OsStr::from_bytes(b"src-\xff/sub"));
        let json = to_json(&manifest);
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.contains(r#""workdir": {"#) && text.contains("255"),
            "{text}"
        );
        std::fs::write(dir.path().join(MANIFEST_FILE), json).unwrap();
        assert_eq!(read_manifest(dir.path()).unwrap(), manifest);
    }

    #[test]
    fn manifests_written_before_bytes_paths_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"{{"format":1,"kiln_version":"0.1.0","plan_hash":"{}","phase":"build",
            "payload_sha256":"{}","payload_size":42,"workdir":"hello-2.10/src",
            "env":{{"CFLAGS":"-O2"}},"outputs":{{"out":"/nix/store/x-hello"}}}}"#,
            "ab".repeat(32),
            "cd".repeat(32)
        );
        write(dir.path(), &text);
        assert_eq!(read_manifest(dir.path()).unwrap(), sample());
        // And a UTF-8 working directory is still written as a string, byte for byte as before.
        let json = String::from_utf8(to_json(&sample())).unwrap();
        assert!(json.contains(r#""workdir": "hello-2.10/src","#), "{json}");
    }

    #[test]
    fn a_workdir_with_nul_is_refused() {
        use std::ffi::OsStr;
        let mut manifest = sample();
        manifest.workdir = PathBuf::from(OsStr::from_bytes(b"a\0b"));
        let error = manifest.validate(Path::new("m.json")).unwrap_err();
        assert!(error.to_string().contains("workdir"), "{error}");
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
