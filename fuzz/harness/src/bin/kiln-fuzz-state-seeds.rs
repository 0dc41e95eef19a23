//! Writes seed inputs for the `state` fuzz target into the directory given as the only
//! argument: small states packed by kiln-state's own `pack`, in the target's input format
//! (selector byte, manifest, `%%` line, payload; see `kiln_fuzz_harness::state`).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use kiln_state::{pack, ManifestBase, PackInput, MANIFEST_FILE, PAYLOAD_FILE};

fn main() {
    let into = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .expect("usage: kiln-fuzz-state-seeds DIR"),
    );
    fs::create_dir_all(&into).expect("the seed directory");
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let root = scratch.path();

    let build = root.join("build");
    fs::create_dir_all(build.join("hello-2.10/src/empty")).unwrap();
    fs::write(build.join("hello-2.10/src/hello.o"), "object code").unwrap();
    fs::write(build.join("hello-2.10/configure"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        build.join("hello-2.10/configure"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("src/hello.o", build.join("hello-2.10/link")).unwrap();
    fs::hard_link(
        build.join("hello-2.10/src/hello.o"),
        build.join("hello-2.10/hard"),
    )
    .unwrap();
    fs::write(build.join(".attrs.json"), "{}").unwrap();
    let out = root.join("out");
    fs::create_dir_all(out.join("bin")).unwrap();
    fs::write(out.join("bin/hello"), "binary").unwrap();
    let dev = root.join("dev");
    fs::write(&dev, "a file output").unwrap();
    let outputs = BTreeMap::from([
        ("out".to_owned(), out),
        ("dev".to_owned(), dev),
        ("lib".to_owned(), root.join("lib-missing")),
    ]);

    let state = root.join("state");
    fs::create_dir(&state).unwrap();
    let input = PackInput {
        exclude: &[".attrs.json"],
        threads: 1,
        ..PackInput::new(&build, &outputs)
    };
    let base = ManifestBase {
        plan_hash: "a".repeat(64),
        phase: "build".to_owned(),
        workdir: "hello-2.10".into(),
        env: BTreeMap::from([("CFLAGS".to_owned(), "-O2".to_owned())]),
    };
    pack(&input, base, &state).expect("packing the seed state");
    let manifest = fs::read(state.join(MANIFEST_FILE)).unwrap();
    let payload = fs::read(state.join(PAYLOAD_FILE)).unwrap();
    let tar = zstd::decode_all(payload.as_slice()).expect("the payload decompresses");

    let seed = |name: &str, selector: u8, manifest: Option<&[u8]>, payload: &[u8]| {
        let mut bytes = vec![selector];
        if let Some(manifest) = manifest {
            bytes.extend_from_slice(manifest);
            if !manifest.ends_with(b"\n") {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(b"%%\n");
        }
        bytes.extend_from_slice(payload);
        write(&into.join(format!("seed-{name}")), &bytes);
    };
    seed("packed-restore", 0, Some(&manifest), &payload);
    seed("packed-extract", 4, Some(&manifest), &payload);
    seed("tar-filled-restore", 3, Some(&manifest), &tar);
    seed("tar-filled-extract", 7, Some(&manifest), &tar);
    seed("tar-default-manifest", 2, None, &tar);
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
}
