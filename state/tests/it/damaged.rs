//! Damaged and hostile states: each is refused with a clear error, nothing is written outside
//! the target and nothing of the state is left behind (the target directories are listed after
//! every failure).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_state::{
    extract, list, pack, restore, PackInput, StateError, UnsafeEntry, MANIFEST_FILE, PAYLOAD_FILE,
};

use crate::util::{
    base, crafted_tree, names, raw_dir, raw_file, raw_link, sha256_hex, write_raw_state,
    write_state, Raw,
};

/// A scratch area: a packed crafted state, a fresh target, and an `outside` directory that must
/// stay empty.
struct Setup {
    _scratch: crate::util::Scratch,
    state: PathBuf,
    build: PathBuf,
    store: PathBuf,
    outputs: BTreeMap<String, PathBuf>,
    outside: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let scratch = crate::util::Scratch::new();
        let root = scratch.path();
        let (source_build, source_outputs) = crafted_tree(&root.join("source"));
        let state = root.join("state");
        fs::create_dir(&state).unwrap();
        let input = PackInput {
            exclude: &[".attrs.json", "env-vars"],
            ..PackInput::new(&source_build, &source_outputs)
        };
        pack(&input, base(), &state).unwrap();
        let build = root.join("build");
        fs::create_dir(&build).unwrap();
        fs::write(build.join(".attrs.json"), "{}").unwrap();
        let store = root.join("store");
        fs::create_dir(&store).unwrap();
        let outputs = ["alias", "out", "doc"]
            .into_iter()
            .map(|name| (name.to_owned(), store.join(name)))
            .collect();
        let outside = root.join("outside");
        fs::create_dir(&outside).unwrap();
        Setup {
            _scratch: scratch,
            state,
            build,
            store,
            outputs,
            outside,
        }
    }

    fn restore(&self) -> StateError {
        restore(&self.state, &self.build, &self.outputs).unwrap_err()
    }

    /// Asserts that the failed restore left the target as it was.
    fn assert_untouched(&self) {
        assert_eq!(names(&self.build), [".attrs.json"]);
        assert!(names(&self.store).is_empty(), "{:?}", names(&self.store));
        assert!(
            names(&self.outside).is_empty(),
            "{:?}",
            names(&self.outside)
        );
    }

    fn payload(&self) -> PathBuf {
        self.state.join(PAYLOAD_FILE)
    }

    /// Rewrites the manifest through `edit`.
    fn edit_manifest(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = self.state.join(MANIFEST_FILE);
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        edit(&mut value);
        fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    }
}

#[test]
fn truncated_payload_is_refused_by_size() {
    let setup = Setup::new();
    let payload = fs::read(setup.payload()).unwrap();
    fs::write(setup.payload(), &payload[..payload.len() / 2]).unwrap();
    let error = setup.restore();
    assert!(matches!(error, StateError::PayloadSize { .. }), "{error:?}");
    assert!(
        error.to_string().contains("but its manifest says"),
        "{error}"
    );
    setup.assert_untouched();
}

#[test]
fn truncated_payload_with_a_matching_manifest_is_refused() {
    let setup = Setup::new();
    let payload = fs::read(setup.payload()).unwrap();
    let truncated = &payload[..payload.len() * 2 / 3];
    fs::write(setup.payload(), truncated).unwrap();
    setup.edit_manifest(|manifest| {
        manifest["payload_size"] = truncated.len().into();
        manifest["payload_sha256"] = sha256_hex(truncated).into();
    });
    let error = setup.restore();
    assert!(matches!(error, StateError::ReadPayload { .. }), "{error:?}");
    setup.assert_untouched();
}

#[test]
fn flipped_byte_is_refused_by_hash() {
    for at in [0.1, 0.5, 0.999] {
        let setup = Setup::new();
        let mut payload = fs::read(setup.payload()).unwrap();
        let index = (payload.len() as f64 * at) as usize;
        payload[index] ^= 0x20;
        fs::write(setup.payload(), &payload).unwrap();
        let error = setup.restore();
        assert!(
            matches!(error, StateError::PayloadHash { .. }),
            "byte {index}: {error:?}"
        );
        assert!(
            error.to_string().contains("the state is damaged"),
            "{error}"
        );
        setup.assert_untouched();
        assert!(matches!(
            list(&setup.state),
            Err(StateError::PayloadHash { .. })
        ));
        let to = setup.outside.join("extracted");
        assert!(matches!(
            extract(&setup.state, &to),
            Err(StateError::PayloadHash { .. })
        ));
        setup.assert_untouched();
    }
}

#[test]
fn manifest_size_mismatch_is_refused() {
    let setup = Setup::new();
    setup.edit_manifest(|manifest| {
        let size = manifest["payload_size"].as_u64().unwrap();
        manifest["payload_size"] = (size + 1).into();
    });
    assert!(matches!(setup.restore(), StateError::PayloadSize { .. }));
    setup.assert_untouched();
}

#[test]
fn manifest_hash_mismatch_is_refused_after_a_full_read() {
    // The payload itself is intact: everything is staged before the hash is known, and all of
    // it must go.
    let setup = Setup::new();
    setup.edit_manifest(|manifest| manifest["payload_sha256"] = "0".repeat(64).into());
    let error = setup.restore();
    assert!(
        matches!(&error, StateError::PayloadHash { expected, .. } if *expected == "0".repeat(64)),
        "{error:?}"
    );
    setup.assert_untouched();
}

#[test]
fn unsupported_format_is_refused() {
    let setup = Setup::new();
    setup.edit_manifest(|manifest| manifest["format"] = 2.into());
    let error = setup.restore();
    assert!(
        matches!(error, StateError::UnsupportedFormat { supported: 1, .. }),
        "{error:?}"
    );
    setup.assert_untouched();
}

#[test]
fn missing_manifest_is_refused() {
    let setup = Setup::new();
    fs::remove_file(setup.state.join(MANIFEST_FILE)).unwrap();
    assert!(matches!(setup.restore(), StateError::ReadManifest { .. }));
    setup.assert_untouched();
}

/// Restores a hand-made payload of valid entries (so that both a build and an output staging
/// directory exist) followed by `hostile`, and checks the refusal and the cleanup.
fn refused(hostile: &[Raw<'_>], expected: UnsafeEntry) {
    let setup = Setup::new();
    let mut entries = vec![
        raw_dir("build"),
        raw_file("build/ok", b"fine"),
        raw_dir("outputs/out"),
        raw_file("outputs/out/a", b"fine"),
    ];
    entries.extend(hostile.iter().map(|raw| Raw {
        path: raw.path,
        kind: raw.kind,
        link: raw.link,
        data: raw.data,
        mtime: raw.mtime,
    }));
    write_raw_state(&setup.state, &entries, &["out"]);
    let error = setup.restore();
    match &error {
        StateError::Unsafe { reason, .. } => assert_eq!(*reason, expected, "{error}"),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
    setup.assert_untouched();
    // Also for the `kiln state extract` path.
    let to = setup.build.join("x");
    assert!(matches!(
        extract(&setup.state, &to),
        Err(StateError::Unsafe { .. })
    ));
    assert!(!to.exists());
}

fn outside_dir() -> PathBuf {
    // A directory outside any target; `refused` checks its own `outside` stays empty, this one
    // is checked by the test that uses it.
    std::env::temp_dir()
}

#[test]
fn hostile_paths_are_refused() {
    refused(
        &[raw_file("/tmp/kiln-state-absolute", b"x")],
        UnsafeEntry::Absolute,
    );
    assert!(!Path::new("/tmp/kiln-state-absolute").exists());
    refused(
        &[raw_file("build/../../escape", b"x")],
        UnsafeEntry::ParentComponent,
    );
    refused(
        &[raw_file("./build/x", b"x")],
        UnsafeEntry::CurrentComponent,
    );
    refused(&[raw_file("src/x", b"x")], UnsafeEntry::OutsideRoots);
    refused(
        &[raw_file("outputs/evil/x", b"x")],
        UnsafeEntry::UnknownOutput {
            name: "evil".to_owned(),
        },
    );
    refused(&[raw_file("build", b"x")], UnsafeEntry::ReplacesBuildDir);
    refused(
        &[raw_file("build/f", b"x"), raw_file("build/f/g", b"x")],
        UnsafeEntry::NotADirectory { path: "f".into() },
    );
    refused(&[raw_file("build/ok", b"again")], UnsafeEntry::Duplicate);
    refused(
        &[Raw {
            mtime: u64::MAX,
            ..raw_file("build/future", b"x")
        }],
        UnsafeEntry::BadHeader {
            detail: format!("the mtime `{}` is out of range", u64::MAX),
        },
    );
    refused(
        &[raw_link(b'3', "build/tty", "")],
        UnsafeEntry::UnsupportedType {
            kind: "Char".to_owned(),
        },
    );
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let outside = outside_dir().join(format!("kiln-state-test-{}", std::process::id()));
    fs::create_dir_all(&outside).unwrap();
    let outside_text = outside.to_str().unwrap().to_owned();
    refused(
        &[
            raw_link(b'2', "build/link", &outside_text),
            raw_file("build/link/evil", b"x"),
        ],
        UnsafeEntry::ThroughSymlink {
            link: "link".into(),
        },
    );
    refused(
        &[
            raw_link(b'2', "build/up", ".."),
            raw_file("build/up/escape", b"x"),
        ],
        UnsafeEntry::ThroughSymlink { link: "up".into() },
    );
    refused(
        &[
            raw_link(b'2', "outputs/out/d", "/"),
            raw_dir("outputs/out/d/etc"),
        ],
        UnsafeEntry::ThroughSymlink { link: "d".into() },
    );
    assert!(names(&outside).is_empty());
    fs::remove_dir(&outside).unwrap();
}

#[test]
fn hard_links_out_of_their_root_are_refused() {
    let outside = outside_dir().join(format!("kiln-state-test-link-{}", std::process::id()));
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "secret").unwrap();
    let outside_text = outside.to_str().unwrap().to_owned();
    let secret = format!("{outside_text}/secret");
    refused(
        &[raw_link(b'1', "build/h", &secret)],
        UnsafeEntry::LinkOutside {
            target: secret.clone().into(),
        },
    );
    refused(
        &[raw_link(b'1', "build/h", "build/../x")],
        UnsafeEntry::LinkOutside {
            target: "build/../x".into(),
        },
    );
    refused(
        &[raw_link(b'1', "build/h", "outputs/out/a")],
        UnsafeEntry::LinkOutside {
            target: "outputs/out/a".into(),
        },
    );
    refused(
        &[raw_link(b'1', "build/h", "build/missing")],
        UnsafeEntry::LinkTargetMissing {
            target: "build/missing".into(),
        },
    );
    refused(
        &[raw_link(b'1', "build/h", "build")],
        UnsafeEntry::LinkTargetMissing {
            target: "build".into(),
        },
    );
    // A target reached through a symlink could be any file on the system.
    refused(
        &[
            raw_link(b'2', "build/l", &outside_text),
            raw_link(b'1', "build/h", "build/l/secret"),
        ],
        UnsafeEntry::LinkTargetMissing {
            target: "build/l/secret".into(),
        },
    );
    assert_eq!(names(&outside), ["secret"]);
    assert_eq!(
        std::fs::metadata(outside.join("secret")).unwrap().len(),
        6,
        "the outside file was not touched"
    );
    fs::remove_dir_all(&outside).unwrap();
}

#[test]
fn a_valid_hand_made_state_restores() {
    // The control for the hostile cases: the same valid entries alone restore fine.
    let setup = Setup::new();
    write_raw_state(
        &setup.state,
        &[
            raw_dir("build"),
            raw_file("build/ok", b"fine"),
            raw_dir("outputs/out"),
            raw_file("outputs/out/a", b"fine"),
            raw_link(b'1', "outputs/out/b", "outputs/out/a"),
        ],
        &["out"],
    );
    restore(&setup.state, &setup.build, &setup.outputs).unwrap();
    assert_eq!(names(&setup.build), [".attrs.json", "ok"]);
    assert_eq!(names(&setup.store), ["out"]);
    assert_eq!(names(&setup.store.join("out")), ["a", "b"]);
}

#[test]
fn garbage_payload_with_a_matching_manifest_is_refused() {
    let setup = Setup::new();
    write_state(&setup.state, b"this is not zstd at all", &["out"]);
    assert!(matches!(setup.restore(), StateError::ReadPayload { .. }));
    setup.assert_untouched();
    // zstd of something that is not tar.
    let payload = zstd::encode_all(&[0x41u8; 4096][..], 3).unwrap();
    write_state(&setup.state, &payload, &["out"]);
    assert!(matches!(setup.restore(), StateError::ReadPayload { .. }));
    setup.assert_untouched();
}
