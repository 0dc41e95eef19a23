//! Modes from git headers (`new file mode`, `new mode`): only the permission bits `0o777` are
//! taken, never setuid, setgid or sticky (kiln-archive and state restore mask the same way), and
//! only regular files are created: a symlink (`120000`) or a submodule (`160000`) is refused with
//! the line of the header that asked for it, and nothing of the patch is written. A rename or
//! copy onto itself keeps the file.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use kiln_patch::{apply_patch_file, PatchError, PatchOptions};

/// A tree `src/` holding `run` ("#!/bin/sh\n", mode 0o644).
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("run"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("run"), fs::Permissions::from_mode(0o644)).unwrap();
    (dir, src)
}

fn apply(dir: &tempfile::TempDir, text: &str) -> (PathBuf, Result<(), PatchError>) {
    let patch = dir.path().join("fix.patch");
    fs::write(&patch, text).unwrap();
    let result =
        apply_patch_file(&patch, &dir.path().join("src"), &PatchOptions::default()).map(drop);
    (patch, result)
}

fn mode(path: PathBuf) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn setuid_setgid_and_sticky_bits_are_dropped() {
    let (dir, src) = scratch();
    let (_, result) = apply(
        &dir,
        "diff --git a/run b/run\n\
         old mode 100644\n\
         new mode 106755\n\
         diff --git a/tool b/tool\n\
         new file mode 107755\n\
         --- /dev/null\n\
         +++ b/tool\n\
         @@ -0,0 +1 @@\n\
         +#!/bin/sh\n",
    );
    result.unwrap();
    assert_eq!(mode(src.join("run")), 0o755);
    assert_eq!(mode(src.join("tool")), 0o755);
}

#[test]
fn a_new_symlink_is_refused() {
    let (dir, src) = scratch();
    let (patch, result) = apply(
        &dir,
        "diff --git a/other b/other\n\
         new file mode 100644\n\
         --- /dev/null\n\
         +++ b/other\n\
         @@ -0,0 +1 @@\n\
         +fine\n\
         diff --git a/link b/link\n\
         new file mode 120000\n\
         index 0000000..1111111\n\
         --- /dev/null\n\
         +++ b/link\n\
         @@ -0,0 +1 @@\n\
         +/etc/shadow\n\
         \\ No newline at end of file\n",
    );
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "`{}` line 8: `link` is to be a symlink (git mode 120000); kiln creates only \
             regular files from patches",
            patch.display()
        )
    );
    let hint = error.hint().unwrap();
    assert!(hint.contains("`symlink` step"), "{hint}");
    // Nothing was written, not even the fine file before it.
    assert!(fs::symlink_metadata(src.join("link")).is_err());
    assert!(!src.join("other").exists());
}

#[test]
fn changing_a_file_into_a_symlink_or_a_submodule_is_refused() {
    let (dir, src) = scratch();
    let (patch, result) = apply(
        &dir,
        "diff --git a/run b/run\n\
         old mode 100644\n\
         new mode 120755\n",
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "`{}` line 3: `run` is to be a symlink (git mode 120755); kiln creates only \
             regular files from patches",
            patch.display()
        )
    );
    let (patch, result) = apply(
        &dir,
        "diff --git a/vendor/lib b/vendor/lib\n\
         new file mode 160000\n\
         --- /dev/null\n\
         +++ b/vendor/lib\n\
         @@ -0,0 +1 @@\n\
         +Subproject commit 0123456789abcdef0123456789abcdef01234567\n",
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "`{}` line 2: `vendor/lib` is to be a git submodule (git mode 160000); kiln \
             creates only regular files from patches",
            patch.display()
        )
    );
    assert_eq!(mode(src.join("run")), 0o644);
    assert!(!src.join("vendor").exists());
}

#[test]
fn a_rename_onto_itself_keeps_the_file() {
    // Found by the fuzzer (fuzz/artifacts/patch/rename-onto-itself): the source of a rename was
    // marked deleted after its destination was planned, and both were the same file.
    for to in ["run", "elsewhere"] {
        let (dir, src) = scratch();
        let (_, result) = apply(
            &dir,
            &format!("diff --git a/run b/run\nrename from run\nrename to {to}\n"),
        );
        result.unwrap();
        assert_eq!(fs::read_to_string(src.join("run")).unwrap(), "#!/bin/sh\n");
    }
}
