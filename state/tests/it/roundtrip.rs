//! Packing and restoring a crafted tree: everything survives, the bytes are deterministic.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use kiln_state::{
    extract, list, pack, read_manifest, restore, EntryKind, PackInput, StateError, MANIFEST_FILE,
    PAYLOAD_FILE,
};

use crate::util::{base, comparable, crafted_tree, long_name, names, OLD};

const NIX_FILES: &[&str] = &[".attrs.json", "env-vars"];

fn pack_into(
    build: &Path,
    outputs: &BTreeMap<String, PathBuf>,
    threads: u32,
    dest: &Path,
) -> kiln_state::Manifest {
    fs::create_dir_all(dest).unwrap();
    let input = PackInput {
        exclude: NIX_FILES,
        threads,
        ..PackInput::new(build, outputs)
    };
    pack(&input, base(), dest).unwrap()
}

/// A fresh place to restore into: a build directory holding Nix's `.attrs.json`, and output
/// paths (not existing yet) in their own directory.
fn fresh(root: &Path) -> (PathBuf, PathBuf, BTreeMap<String, PathBuf>) {
    let build = root.join("next-build");
    fs::create_dir(&build).unwrap();
    fs::write(build.join(".attrs.json"), "{\"new\": true}").unwrap();
    let store = root.join("next-store");
    fs::create_dir(&store).unwrap();
    let outputs = ["alias", "out", "doc", "man"]
        .into_iter()
        .map(|name| (name.to_owned(), store.join(name)))
        .collect();
    (build, store, outputs)
}

#[test]
fn round_trip_keeps_the_tree() {
    let scratch = crate::util::Scratch::new();
    let (build, outputs) = crafted_tree(scratch.path());
    let state = scratch.path().join("state");
    let packed = pack_into(&build, &outputs, 2, &state);
    assert_eq!(names(&state), [MANIFEST_FILE, PAYLOAD_FILE]);
    assert_eq!(packed.outputs["out"], outputs["out"].to_str().unwrap());

    let (next, store, next_outputs) = fresh(scratch.path());
    let restored = restore(&state, &next, &next_outputs).unwrap();
    assert_eq!(restored, packed);

    // Nothing left over: no staging directories, Nix's file untouched.
    assert_eq!(names(&next), [".attrs.json", "hello-2.10"]);
    assert_eq!(
        fs::read_to_string(next.join(".attrs.json")).unwrap(),
        "{\"new\": true}"
    );
    assert_eq!(names(&store), ["alias", "doc", "out"]);

    let before = comparable(&build, NIX_FILES);
    let after = comparable(&next, &[".attrs.json"]);
    for (path, node) in &before {
        assert_eq!(after.get(path), Some(node), "{}", path.display());
    }
    assert_eq!(before.len(), after.len());
    assert_eq!(
        comparable(&outputs["out"], &[]),
        comparable(&next_outputs["out"], &[])
    );
    assert_eq!(
        comparable(&outputs["doc"], &[]),
        comparable(&next_outputs["doc"], &[])
    );
    assert_eq!(
        fs::read_link(&next_outputs["alias"]).unwrap(),
        Path::new("out")
    );

    // The things the issue names, checked directly too.
    let src = next.join("hello-2.10");
    let mtime = |path: &Path| fs::symlink_metadata(path).unwrap().mtime();
    assert_eq!(mtime(&src.join("old.txt")), OLD as i64);
    assert_eq!(mtime(&src.join("lib/nested")), OLD as i64 + 3);
    assert_eq!(mtime(&src), OLD as i64 + 8);
    assert_eq!(
        fs::metadata(src.join("configure")).unwrap().mode() & 0o777,
        0o755
    );
    assert_eq!(
        fs::metadata(src.join("shared.txt")).unwrap().mode() & 0o777,
        0o666
    );
    assert_eq!(
        fs::metadata(src.join("read-only")).unwrap().mode() & 0o777,
        0o555
    );
    assert!(fs::metadata(src.join("empty")).unwrap().is_dir());
    assert_eq!(
        fs::read_link(src.join("link-absolute")).unwrap(),
        Path::new("/etc/hostname")
    );
    assert_eq!(
        fs::read_link(src.join("link-dangling")).unwrap(),
        Path::new("does/not/exist")
    );
    assert_eq!(
        fs::read_link(src.join("link-long"))
            .unwrap()
            .as_os_str()
            .len(),
        124
    );
    assert_eq!(fs::read_to_string(src.join(long_name())).unwrap(), "long\n");
    assert_eq!(fs::metadata(src.join("big.bin")).unwrap().len(), 1 << 20);
    let inode = |path: &Path| fs::metadata(path).unwrap().ino();
    assert_eq!(inode(&src.join("hard-1")), inode(&src.join("hard-2")));
    assert_eq!(fs::metadata(src.join("hard-1")).unwrap().nlink(), 2);
    assert!(!next_outputs["man"].exists());
}

#[test]
fn packing_is_deterministic_whatever_the_thread_count() {
    let scratch = crate::util::Scratch::new();
    let (build, outputs) = crafted_tree(scratch.path());
    let payload = |name: &str, threads: u32| {
        let dest = scratch.path().join(name);
        let manifest = pack_into(&build, &outputs, threads, &dest);
        (fs::read(dest.join(PAYLOAD_FILE)).unwrap(), manifest)
    };
    let (first, first_manifest) = payload("a", 2);
    let (second, second_manifest) = payload("b", 2);
    assert!(first == second, "two packs of one tree differ");
    assert_eq!(first_manifest, second_manifest);
    let (one, _) = payload("c", 1);
    let (four, four_manifest) = payload("d", 4);
    assert!(
        one == first && four == first,
        "the thread count changed the bytes"
    );
    assert_eq!(four_manifest, first_manifest);
    assert_eq!(
        fs::read(scratch.path().join("a").join(MANIFEST_FILE)).unwrap(),
        fs::read(scratch.path().join("d").join(MANIFEST_FILE)).unwrap()
    );
}

#[test]
fn list_shows_the_payload_in_order() {
    let scratch = crate::util::Scratch::new();
    let (build, outputs) = crafted_tree(scratch.path());
    let state = scratch.path().join("state");
    pack_into(&build, &outputs, 1, &state);
    let entries = list(&state).unwrap();
    let paths: Vec<String> = entries
        .iter()
        .map(|entry| entry.path.to_string_lossy().into_owned())
        .collect();
    assert_eq!(paths[0], "build");
    assert_eq!(paths[1], "build/hello-2.10");
    assert!(!paths
        .iter()
        .any(|path| path.contains(".attrs.json") || path.contains("env-vars")));
    // Directories come right before their contents, names bytewise within a directory.
    let position = |path: &str| paths.iter().position(|p| p == path).unwrap();
    assert!(position("build/hello-2.10/big.bin") < position("build/hello-2.10/configure"));
    assert!(position("build/hello-2.10/lib") < position("build/hello-2.10/lib/nested/deep/x.c"));
    assert_eq!(
        &paths[paths.len() - 5..],
        [
            "outputs/doc",
            "outputs/out",
            "outputs/out/bin",
            "outputs/out/bin/hello",
            "outputs/out/sbin"
        ]
    );
    let hard = entries
        .iter()
        .find(|entry| entry.path.ends_with("hard-2"))
        .unwrap();
    assert_eq!(hard.kind, EntryKind::HardLink);
    assert_eq!(
        hard.link.as_deref(),
        Some(Path::new("build/hello-2.10/hard-1"))
    );
    let long = format!("build/hello-2.10/{}", long_name());
    let long = entries
        .iter()
        .find(|entry| entry.path == Path::new(&long))
        .unwrap();
    assert_eq!(
        (long.kind.clone(), long.size, long.mode),
        (EntryKind::File, 5, 0o644)
    );
    let old = entries
        .iter()
        .find(|entry| entry.path.ends_with("old.txt"))
        .unwrap();
    assert_eq!(old.mtime, OLD);
}

#[test]
fn extract_writes_build_and_outputs() {
    let scratch = crate::util::Scratch::new();
    let (build, outputs) = crafted_tree(scratch.path());
    let state = scratch.path().join("state");
    pack_into(&build, &outputs, 1, &state);
    let to = scratch.path().join("extracted");
    extract(&state, &to).unwrap();
    assert_eq!(names(&to), ["build", "outputs"]);
    assert_eq!(names(&to.join("outputs")), ["alias", "doc", "out"]);
    assert_eq!(
        comparable(&to.join("build"), &[]),
        comparable(&build, NIX_FILES)
    );
    assert_eq!(
        fs::read_to_string(to.join("outputs/doc")).unwrap(),
        "a single-file output\n"
    );
}

#[test]
fn restoring_twice_into_one_place_is_refused() {
    let scratch = crate::util::Scratch::new();
    let (build, outputs) = crafted_tree(scratch.path());
    let state = scratch.path().join("state");
    pack_into(&build, &outputs, 1, &state);
    let (next, store, next_outputs) = fresh(scratch.path());
    restore(&state, &next, &next_outputs).unwrap();
    let before = (comparable(&next, &[]), comparable(&store, &[]));
    let error = restore(&state, &next, &next_outputs).unwrap_err();
    assert!(
        matches!(&error, StateError::Occupied { path } if path.ends_with("hello-2.10")),
        "{error:?}"
    );
    assert_eq!((comparable(&next, &[]), comparable(&store, &[])), before);
}

#[test]
fn an_existing_output_path_is_refused_before_anything_moves() {
    let scratch = crate::util::Scratch::new();
    let (build, outputs) = crafted_tree(scratch.path());
    let state = scratch.path().join("state");
    pack_into(&build, &outputs, 1, &state);
    let (next, store, next_outputs) = fresh(scratch.path());
    fs::write(&next_outputs["out"], "in the way").unwrap();
    let error = restore(&state, &next, &next_outputs).unwrap_err();
    assert!(
        matches!(&error, StateError::Occupied { path } if path.ends_with("out")),
        "{error:?}"
    );
    assert_eq!(names(&next), [".attrs.json"]);
    assert_eq!(names(&store), ["out"]);
}

#[test]
fn pack_refuses_a_fifo_and_leaves_no_payload() {
    let scratch = crate::util::Scratch::new();
    let build = scratch.path().join("build");
    fs::create_dir(&build).unwrap();
    fs::write(build.join("a"), "a").unwrap();
    nix::unistd::mkfifo(
        &build.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let dest = scratch.path().join("state");
    fs::create_dir(&dest).unwrap();
    let outputs = BTreeMap::new();
    let error = pack(&PackInput::new(&build, &outputs), base(), &dest).unwrap_err();
    assert!(
        matches!(&error, StateError::SpecialFile { kind: "FIFO", path } if path.ends_with("pipe")),
        "{error:?}"
    );
    assert!(names(&dest).is_empty(), "{:?}", names(&dest));
}

#[test]
fn pack_checks_the_callers_fields() {
    let scratch = crate::util::Scratch::new();
    let outputs = BTreeMap::new();
    let mut bad = base();
    bad.workdir = "../outside".into();
    let error = pack(
        &PackInput::new(scratch.path(), &outputs),
        bad,
        scratch.path(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, StateError::InvalidManifest { field, .. } if field == "workdir"),
        "{error:?}"
    );
    assert!(names(scratch.path()).is_empty());
}

#[test]
fn manifest_reads_back() {
    let scratch = crate::util::Scratch::new();
    let (build, outputs) = crafted_tree(scratch.path());
    let state = scratch.path().join("state");
    let packed = pack_into(&build, &outputs, 1, &state);
    assert_eq!(read_manifest(&state).unwrap(), packed);
    assert_eq!(packed.workdir, Path::new("hello-2.10"));
    assert_eq!(packed.outputs.len(), 4);
    assert_eq!(
        packed.payload_size,
        fs::metadata(state.join(PAYLOAD_FILE)).unwrap().len()
    );
}

#[test]
fn a_non_utf8_working_directory_restores_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let scratch = crate::util::Scratch::new();
    let build = scratch.path().join("build");
    let workdir = PathBuf::from(OsStr::from_bytes(b"src-\xff/sub"));
    fs::create_dir_all(build.join(&workdir)).unwrap();
    fs::write(build.join(&workdir).join("hello.txt"), "hello\n").unwrap();
    let outputs = BTreeMap::new();
    let state = scratch.path().join("state");
    fs::create_dir(&state).unwrap();
    let mut base = base();
    base.workdir = workdir.clone();
    let packed = pack(&PackInput::new(&build, &outputs), base, &state).unwrap();
    assert_eq!(packed.workdir, workdir);
    let next = scratch.path().join("next");
    fs::create_dir(&next).unwrap();
    let restored = restore(&state, &next, &outputs).unwrap();
    assert_eq!(restored.workdir, workdir);
    assert_eq!(
        fs::read_to_string(next.join(&restored.workdir).join("hello.txt")).unwrap(),
        "hello\n"
    );
}
