//! `kiln state inspect|extract` on states made by `kiln-state`, and damaged states refused
//! with exit code 2 and nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{describe, Scratch};

/// Packs a small build tree (a file, an executable, a symlink) into `scratch/state`.
fn make_state(scratch: &Scratch) -> PathBuf {
    scratch.write("tree/src/main.c", "int main(void) { return 0; }\n");
    scratch.write("tree/src/run.sh", "#!/bin/sh\n");
    use std::os::unix::fs::PermissionsExt;
    let run = scratch.path().join("tree/src/run.sh");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("main.c", scratch.path().join("tree/src/link.c")).unwrap();
    let state = scratch.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let outputs = BTreeMap::new();
    let tree = scratch.path().join("tree");
    let input = kiln_state::PackInput::new(&tree, &outputs);
    let base = kiln_state::ManifestBase {
        plan_hash: "0".repeat(64),
        phase: "build".to_owned(),
        workdir: "src".into(),
        env: BTreeMap::new(),
    };
    kiln_state::pack(&input, base, &state).unwrap();
    state
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(read) => read
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn inspect_and_extract_a_state() {
    let scratch = Scratch::new();
    let state = make_state(&scratch);
    let output = scratch
        .kiln()
        .arg("state")
        .arg("inspect")
        .arg(&state)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\"phase\": \"build\""), "{stdout}");
    assert!(stdout.contains("build/src/run.sh"), "{stdout}");
    let to = scratch.path().join("out");
    let output = scratch
        .kiln()
        .arg("state")
        .arg("extract")
        .arg(&state)
        .arg(&to)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        std::fs::read_link(to.join("build/src/link.c")).unwrap(),
        PathBuf::from("main.c")
    );
}

#[test]
fn damaged_states_are_refused_and_nothing_is_written() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 3] = [
        ("truncated", |state| {
            let payload = state.join("state.tar.zst");
            let bytes = std::fs::read(&payload).unwrap();
            std::fs::write(&payload, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("flipped byte", |state| {
            let payload = state.join("state.tar.zst");
            let mut bytes = std::fs::read(&payload).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            std::fs::write(&payload, &bytes).unwrap();
        }),
        ("manifest/payload mismatch", |state| {
            let manifest = state.join("manifest.json");
            let text = std::fs::read_to_string(&manifest).unwrap();
            let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
            value["payload_sha256"] = serde_json::Value::from("1".repeat(64));
            std::fs::write(&manifest, value.to_string()).unwrap();
        }),
    ];
    for (name, damage) in damages {
        let scratch = Scratch::new();
        let state = make_state(&scratch);
        damage(&state);
        let to = scratch.path().join("out");
        let output = scratch
            .kiln()
            .arg("state")
            .arg("extract")
            .arg(&state)
            .arg(&to)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{name}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        let left: Vec<String> = entries(&to.join("build"))
            .into_iter()
            .chain(entries(&to.join("outputs")))
            .collect();
        assert!(left.is_empty(), "{name}: left behind {left:?}");
        let output = scratch
            .kiln()
            .arg("state")
            .arg("inspect")
            .arg(&state)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{name}: {}",
            describe(&output)
        );
    }
}
