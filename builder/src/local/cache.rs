//! The local phase-state cache: several keyed states per phase, evicted by age, and the record
//! of the last build's directories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kiln_state::{ManifestBase, PackInput};

use super::{HostDirs, LocalError, KILN_FILES};

/// The local cache of phase states: `DIR/PLAN-NAME/PHASE/KEY/{manifest.json,state.tar.zst,
/// key.json}`, up to [`StateCache::KEEP`] states per phase of each plan name (the newest; older
/// ones are evicted when a new one is stored). `KEY` is the hash of what the state depends on
/// ([`LocalBuild::cache_key_parts`](super::LocalBuild::cache_key_parts)); `key.json` keeps those parts, so a miss can say which one
/// differs from the newest state there is.
#[derive(Debug, Clone)]
pub struct StateCache {
    dir: PathBuf,
}

impl StateCache {
    /// States kept per phase: a build, a `kiln shell` with other directories and a couple of
    /// variants stay side by side.
    pub const KEEP: usize = 4;

    /// The cache of plan `name` under `root`.
    pub fn new(root: &Path, name: &str) -> StateCache {
        StateCache {
            dir: root.join(file_name(name)),
        }
    }

    /// The directory of the plan's states.
    pub fn plan_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The directory of `phase`'s states.
    pub fn phase_dir(&self, phase: &str) -> PathBuf {
        self.dir.join(file_name(phase))
    }

    /// The directory of `phase`'s state made with `key`.
    pub fn entry(&self, phase: &str, key: &str) -> PathBuf {
        self.phase_dir(phase).join(file_name(key))
    }

    /// The cached state of `phase` made with `key` (whose parts are `parts`); otherwise why not,
    /// naming what differs from the newest state of the phase.
    pub fn find(
        &self,
        phase: &str,
        key: &str,
        parts: &serde_json::Value,
    ) -> Result<PathBuf, String> {
        let entry = self.entry(phase, key);
        match kiln_state::read_manifest(&entry) {
            Ok(manifest) if manifest.plan_hash == key && manifest.phase == phase => {
                return Ok(entry)
            }
            Ok(_) | Err(_) => {}
        }
        let newest = self.entries(phase).into_iter().next();
        let Some((newest, _)) = newest else {
            return Err("no cached state".to_owned());
        };
        let theirs: Option<serde_json::Value> = std::fs::read(newest.join(KEY_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let differences = theirs
            .map(|theirs| key_differences(parts, &theirs))
            .unwrap_or_default();
        if differences.is_empty() {
            Err("no cached state made with these settings".to_owned())
        } else {
            Err(format!(
                "no cached state made with these settings; the newest one differs: {}",
                differences.join("; ")
            ))
        }
    }

    /// `phase`'s states, newest first (by their manifest's modification time).
    fn entries(&self, phase: &str) -> Vec<(PathBuf, std::time::SystemTime)> {
        let Ok(read) = std::fs::read_dir(self.phase_dir(phase)) else {
            return Vec::new();
        };
        let mut entries: Vec<(PathBuf, std::time::SystemTime)> = read
            .filter_map(Result::ok)
            .filter(|entry| !entry.file_name().as_encoded_bytes().starts_with(b"."))
            .filter_map(|entry| {
                let path = entry.path();
                let modified = std::fs::metadata(path.join(kiln_state::MANIFEST_FILE))
                    .and_then(|meta| meta.modified())
                    .ok()?;
                Some((path, modified))
            })
            .collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries
    }

    /// Packs the state after `phase` as its entry for `key` (replacing one with the same key),
    /// then evicts the oldest beyond [`StateCache::KEEP`]. A failure leaves the old entries.
    pub(super) fn store(
        &self,
        phase: &str,
        key: &str,
        parts: &serde_json::Value,
        host: &HostDirs,
        workdir: PathBuf,
        env: BTreeMap<String, String>,
    ) -> Result<(), LocalError> {
        let phase_dir = self.phase_dir(phase);
        let entry = self.entry(phase, key);
        let error = |source| LocalError::Cache {
            phase: phase.to_owned(),
            path: entry.clone(),
            source,
        };
        // A cache of the earlier layout (one state directly in the phase's directory) goes.
        if phase_dir.join(kiln_state::MANIFEST_FILE).exists() {
            let _ = std::fs::remove_dir_all(&phase_dir);
        }
        std::fs::create_dir_all(&phase_dir).map_err(|source| LocalError::Io {
            what: "create the state cache",
            path: phase_dir.clone(),
            source,
        })?;
        let temp = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&phase_dir)
            .map_err(|source| LocalError::Io {
                what: "create a cache entry in",
                path: phase_dir.clone(),
                source,
            })?;
        let existing: BTreeMap<String, PathBuf> = host
            .outputs
            .iter()
            .filter(|(_, path)| std::fs::symlink_metadata(path).is_ok())
            .map(|(name, path)| (name.clone(), path.clone()))
            .collect();
        let mut input = PackInput::new(&host.build_top, &existing);
        input.exclude = KILN_FILES;
        let base = ManifestBase {
            plan_hash: key.to_owned(),
            phase: phase.to_owned(),
            workdir,
            env,
        };
        kiln_state::pack(&input, base, temp.path()).map_err(error)?;
        std::fs::write(temp.path().join(KEY_FILE), parts.to_string()).map_err(|source| {
            LocalError::Io {
                what: "write the cache key into",
                path: temp.path().to_owned(),
                source,
            }
        })?;
        // The old entry moves aside first, so that a concurrent reader sees either whole.
        let old = phase_dir.join(format!(".old-{}", std::process::id()));
        let had_old = std::fs::rename(&entry, &old).is_ok();
        std::fs::rename(temp.path(), &entry).map_err(|source| LocalError::Io {
            what: "store the cache entry",
            path: entry.clone(),
            source,
        })?;
        // The directory was renamed away; nothing is left to delete.
        let _ = temp.keep();
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        for (evicted, _) in self.entries(phase).into_iter().skip(Self::KEEP) {
            if evicted != entry {
                let _ = std::fs::remove_dir_all(evicted);
            }
        }
        Ok(())
    }
}

/// Where the last `kiln build` of a plan put its outputs and build directory, kept next to the
/// plan's cached states (`DIR/PLAN-NAME/last-build.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastBuild {
    /// `--out-dir`, absolute (always UTF-8: kiln refuses others).
    pub out_dir: PathBuf,
    /// `--build-dir`, absolute, when one was given.
    #[serde(default)]
    pub build_dir: Option<PathBuf>,
}

impl LastBuild {
    const FILE: &'static str = "last-build.json";

    /// The record of `cache`'s plan, if there is a readable one.
    pub fn read(cache: &StateCache) -> Option<LastBuild> {
        let bytes = std::fs::read(cache.plan_dir().join(Self::FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records this build (best effort: a `shell` then merely starts without it).
    pub fn write(&self, cache: &StateCache) {
        let dir = cache.plan_dir();
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        if let Ok(text) = serde_json::to_vec(self) {
            let temp = dir.join(format!(".{}.{}", Self::FILE, std::process::id()));
            if std::fs::write(&temp, text).is_ok() {
                let _ = std::fs::rename(&temp, dir.join(Self::FILE));
            }
        }
    }
}

/// The file in a cache entry that keeps the parts of its key.
const KEY_FILE: &str = "key.json";

/// What differs between two cache keys' parts, in words: the output or build directory, an
/// earlier phase, the dependencies, the environment (the variables named), kiln's version, the
/// sandbox.
fn key_differences(ours: &serde_json::Value, theirs: &serde_json::Value) -> Vec<String> {
    let show = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => format!("`{text}`"),
        other => format!("`{other}`"),
    };
    // The keys of two JSON objects whose values differ.
    let differing = |a: &'_ serde_json::Value, b: &'_ serde_json::Value| -> Vec<String> {
        let names: BTreeSet<&String> = a
            .as_object()
            .into_iter()
            .chain(b.as_object())
            .flat_map(|map| map.keys())
            .filter(|name| a[name.as_str()] != b[name.as_str()])
            .collect();
        names.into_iter().cloned().collect()
    };
    let mut out = Vec::new();
    let field = |name: &str| (&ours[name], &theirs[name]);
    let (a, b) = field("outputs");
    for name in differing(a, b) {
        out.push(format!(
            "the output directory of `{name}` differs: {} here, {} there",
            show(&a[name.as_str()]),
            show(&b[name.as_str()])
        ));
    }
    let (a, b) = field("buildTop");
    if a != b {
        out.push(format!(
            "the build directory differs: {} here, {} there",
            show(a),
            show(b)
        ));
    }
    if field("prefix").0 != field("prefix").1 {
        out.push("the plan up to this phase changed (a phase, an input or a source)".to_owned());
    }
    if field("deps").0 != field("deps").1 || field("propagate").0 != field("propagate").1 {
        out.push("the dependencies changed".to_owned());
    }
    let (a, b) = field("baseEnv");
    let names = differing(a, b);
    if !names.is_empty() {
        let shown: Vec<String> = names
            .iter()
            .take(5)
            .map(|name| format!("`{name}`"))
            .collect();
        out.push(format!("the environment differs ({})", shown.join(", ")));
    }
    let (a, b) = field("kiln");
    if a != b {
        out.push(format!(
            "kiln's version differs: {} here, {} there",
            show(a),
            show(b)
        ));
    }
    let (a, b) = field("sandbox");
    if a != b {
        out.push(if a == &serde_json::Value::Bool(true) {
            "that state was made with `--no-sandbox`".to_owned()
        } else {
            "that state was made in the sandbox, this run is `--no-sandbox`".to_owned()
        });
    }
    out
}

/// A name that is one safe path component.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_are_single_components() {
        assert_eq!(file_name("hello-2.10"), "hello-2.10");
        assert_eq!(file_name("a/b"), "a_b");
        assert_eq!(file_name(".."), "_..");
        assert_eq!(file_name(""), "_");
    }
}
