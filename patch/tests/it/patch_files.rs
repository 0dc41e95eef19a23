//! The patch file itself: it must be a regular file. A FIFO would block the build forever, a
//! device could never end (`/dev/zero`) or have side effects, a directory is a mistake; each is
//! refused with an error naming it, before anything is read. A symlink given directly (the plan
//! names the patch, and is trusted) is followed, but what it leads to must be a regular file too.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use kiln_patch::{apply_patch_file, PatchOptions};

const PATCH: &str = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";

/// A tree `src/` holding `f` ("a\n").
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), "a\n").unwrap();
    (dir, src)
}

/// Applies `patch` to `src` in a thread; the error's message (an error must have a hint), or a
/// panic after 10 s (then `unblock` is called so that the thread can end).
fn apply_in_time(patch: &Path, src: &Path, unblock: impl FnOnce()) -> Result<(), String> {
    let (sender, receiver) = mpsc::channel();
    let (patch_owned, src_owned) = (patch.to_owned(), src.to_owned());
    thread::spawn(move || {
        let result = apply_patch_file(&patch_owned, &src_owned, &PatchOptions::default());
        let _ = sender.send(
            result
                .map(drop)
                .map_err(|error| (error.to_string(), error.hint())),
        );
    });
    let Ok(result) = receiver.recv_timeout(Duration::from_secs(10)) else {
        unblock();
        panic!("applying `{}` blocked", patch.display());
    };
    result.map_err(|(message, hint)| {
        assert!(hint.is_some(), "no hint for: {message}");
        message
    })
}

fn make_fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let (dir, src) = scratch();
    let fifo = dir.path().join("fix.patch");
    make_fifo(&fifo);
    let result = apply_in_time(&fifo, &src, || {
        // The reader waits for a writer: be one, so that it ends.
        drop(fs::OpenOptions::new().write(true).open(&fifo));
    });
    assert_eq!(
        result.unwrap_err(),
        format!(
            "the patch `{}` is a FIFO, not a regular file",
            fifo.display()
        )
    );
    assert_eq!(fs::read_to_string(src.join("f")).unwrap(), "a\n");
}

#[test]
fn a_symlink_to_a_fifo_is_refused_without_blocking() {
    let (dir, src) = scratch();
    let fifo = dir.path().join("fifo");
    make_fifo(&fifo);
    let link = dir.path().join("fix.patch");
    symlink(&fifo, &link).unwrap();
    let result = apply_in_time(&link, &src, || {
        drop(fs::OpenOptions::new().write(true).open(&fifo));
    });
    assert_eq!(
        result.unwrap_err(),
        format!(
            "the patch `{}` is a FIFO, not a regular file",
            link.display()
        )
    );
}

#[test]
fn a_device_is_refused() {
    let (_dir, src) = scratch();
    // Without the check, /dev/zero is read up to the size limit, /dev/null is an empty patch.
    for device in ["/dev/zero", "/dev/null"] {
        let result = apply_in_time(Path::new(device), &src, || {});
        assert_eq!(
            result.unwrap_err(),
            format!("the patch `{device}` is a device, not a regular file")
        );
    }
}

#[test]
fn a_directory_is_refused() {
    let (dir, src) = scratch();
    let patches = dir.path().join("patches");
    fs::create_dir(&patches).unwrap();
    let result = apply_in_time(&patches, &src, || {});
    assert_eq!(
        result.unwrap_err(),
        format!(
            "the patch `{}` is a directory, not a regular file",
            patches.display()
        )
    );
}

#[test]
fn a_symlink_named_directly_is_followed() {
    // The plan names this path and is trusted: `result -> /nix/store/...-fix.patch` works.
    let (dir, src) = scratch();
    let real = dir.path().join("real.patch");
    fs::write(&real, PATCH).unwrap();
    let link = dir.path().join("fix.patch");
    symlink(&real, &link).unwrap();
    apply_in_time(&link, &src, || {}).unwrap();
    assert_eq!(fs::read_to_string(src.join("f")).unwrap(), "b\n");
}
