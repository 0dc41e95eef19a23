//! The `state` target: kiln-state's reader on a state directory (`manifest.json` and
//! `state.tar.zst`): `list`, then `restore` into a build directory and output paths, or
//! `extract` into a fresh directory.
//!
//! The input is a selector byte, the manifest text, a line `%%`, and the payload (without a
//! `%%` line, a valid default manifest and the whole rest as the payload). Selector bits:
//!
//! - bit 0: fill in `payload_sha256` and `payload_size` from the payload file, so that
//!   mutations of the payload get past the checksum (when the manifest is a JSON object);
//! - bit 1: the payload part is a plain tar stream, zstd-compressed by the harness;
//! - bit 2: `extract` instead of `restore`.
//!
//! Invariants checked:
//!
//! - no panic;
//! - nothing outside the build directory, the outputs' directory and the extraction directory
//!   changes (sentinels, the state directory itself);
//! - a failed restore or extraction leaves nothing behind: the build directory and the
//!   outputs' directory are as before, the extraction directory does not exist;
//! - an error names a path (the state, the build directory or an output);
//! - a manifest that reads is written back to the same manifest;
//! - after a restore every entry `list` reports exists where it belongs.
//!
//! Work is bounded like the `archive` target's: a payload that decompresses, or whose tar
//! entries add up, to more than [`crate::archive::MAX_CONTENT`] bytes is skipped.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use kiln_state::{
    extract, list, read_manifest, restore, Manifest, StateError, MANIFEST_FILE, PAYLOAD_FILE,
};
use sha2::Digest as _;

use crate::archive::MAX_CONTENT;
use crate::snapshot::{Scratch, Snapshot};

/// The manifest used when the input has no `%%` line (its payload fields are filled in).
const DEFAULT_MANIFEST: &str = r#"{"format":1,"kiln_version":"0.1.0","plan_hash":"0000000000000000000000000000000000000000000000000000000000000000","phase":"build","payload_sha256":"0000000000000000000000000000000000000000000000000000000000000000","payload_size":0,"workdir":"","env":{"CFLAGS":"-O2"},"outputs":{"out":"/nix/store/00000000000000000000000000000000-out"}}"#;

/// The outputs a restore puts back (an entry for any other output is refused).
const OUTPUTS: [&str; 3] = ["out", "dev", "lib"];

/// Runs the `state` target on one input.
pub fn state(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (manifest_text, payload_part, fill_default) =
        match rest.windows(4).position(|window| window == b"\n%%\n") {
            Some(at) => (rest[..at + 1].to_vec(), &rest[at + 4..], false),
            None => (DEFAULT_MANIFEST.as_bytes().to_vec(), rest, true),
        };
    let payload = if selector & 2 != 0 {
        crate::archive::zstd(payload_part)
    } else {
        payload_part.to_vec()
    };
    if !bounded(&payload) {
        return;
    }
    let manifest = if selector & 1 != 0 || fill_default {
        fill_in(&manifest_text, &payload)
    } else {
        manifest_text
    };

    let scratch = Scratch::new();
    let state_dir = scratch.work.join("state");
    fs::create_dir(&state_dir).expect("the state directory");
    fs::write(state_dir.join(MANIFEST_FILE), &manifest).expect("the manifest");
    fs::write(state_dir.join(PAYLOAD_FILE), &payload).expect("the payload");
    let build_dir = scratch.work.join("build");
    fs::create_dir(&build_dir).expect("the build directory");
    fs::write(build_dir.join(".attrs.json"), b"{}\n").expect("a file in the build directory");
    let outputs_dir = scratch.work.join("outputs");
    fs::create_dir(&outputs_dir).expect("the outputs' directory");
    let extract_dir = scratch.work.join("extract");
    let outputs: BTreeMap<String, PathBuf> = OUTPUTS
        .iter()
        .map(|name| (name.to_string(), outputs_dir.join(name)))
        .collect();

    let excluded: [&Path; 3] = [&build_dir, &outputs_dir, &extract_dir];
    let outside_before = scratch.snapshot(&excluded);
    let build_before = Snapshot::take(&build_dir, &[]);
    let outputs_before = Snapshot::take(&outputs_dir, &[]);

    // A manifest that reads is written back the same (paths that are not UTF-8 included).
    if let Ok(manifest) = read_manifest(&state_dir) {
        let json = serde_json::to_vec(&manifest).expect("a manifest serializes");
        let back: Manifest = serde_json::from_slice(&json)
            .unwrap_or_else(|error| panic!("a manifest does not read back: {error}"));
        assert_eq!(
            back, manifest,
            "a manifest changes when written and read back"
        );
    }
    let listed = list(&state_dir);
    if let Err(error) = &listed {
        check_error(error, scratch.root());
    }
    let result = if selector & 4 != 0 {
        extract(&state_dir, &extract_dir)
    } else {
        restore(&state_dir, &build_dir, &outputs).map(|_| ())
    };
    crate::note("state", || {
        format!(
            "list: {:?}; restore: {result:?}",
            listed.as_ref().map(Vec::len)
        )
    });
    scratch.snapshot(&excluded).assert_unchanged(
        &outside_before,
        "restoring: the scratch directory outside the targets",
    );
    match result {
        Ok(()) => {
            let entries = listed.expect("a state that restores lists");
            let (build, outputs_root) = if selector & 4 != 0 {
                (extract_dir.join("build"), extract_dir.join("outputs"))
            } else {
                (build_dir.clone(), outputs_dir.clone())
            };
            for entry in entries {
                let mut components = entry.path.components();
                let root = match components.next().map(|c| c.as_os_str().to_owned()) {
                    Some(first) if first == "build" => build.clone(),
                    Some(first) if first == "outputs" => outputs_root.clone(),
                    _ => panic!(
                        "`list` reports `{}`, outside the roots",
                        entry.path.display()
                    ),
                };
                let restored = root.join(components.as_path());
                assert!(
                    fs::symlink_metadata(&restored).is_ok(),
                    "`{}` is listed but not restored at {}",
                    entry.path.display(),
                    restored.display()
                );
            }
        }
        Err(error) => {
            check_error(&error, scratch.root());
            Snapshot::take(&build_dir, &[]).assert_unchanged(
                &build_before,
                &format!("the build directory after `{error}`"),
            );
            Snapshot::take(&outputs_dir, &[]).assert_unchanged(
                &outputs_before,
                &format!("the outputs' directory after `{error}`"),
            );
            assert!(
                fs::symlink_metadata(&extract_dir).is_err(),
                "a failed extraction (`{error}`) left {}",
                extract_dir.display()
            );
        }
    }
}

/// An error names some path under the scratch directory.
fn check_error(error: &StateError, scratch_root: &Path) {
    let rendered = error.to_string();
    assert!(
        rendered.contains(&scratch_root.display().to_string()),
        "the error `{rendered}` names no path"
    );
}

/// The manifest with `payload_sha256` and `payload_size` of `payload`, if it is a JSON object.
fn fill_in(manifest: &[u8], payload: &[u8]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(manifest) else {
        return manifest.to_vec();
    };
    let digest = sha2::Sha256::digest(payload);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    object.insert("payload_sha256".to_owned(), hex.into());
    object.insert("payload_size".to_owned(), (payload.len() as u64).into());
    serde_json::to_vec(&object).expect("a JSON object serializes")
}

/// Whether the payload stays under the bound once decompressed and unpacked.
fn bounded(payload: &[u8]) -> bool {
    let mut decompressed = Vec::new();
    let Ok(decoder) = zstd::stream::read::Decoder::new(payload) else {
        return true;
    };
    let _ = decoder.take(MAX_CONTENT + 1).read_to_end(&mut decompressed);
    decompressed.len() as u64 <= MAX_CONTENT && crate::archive::tar_bounded(&decompressed)
}
