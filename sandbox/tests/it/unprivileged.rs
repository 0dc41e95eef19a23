//! The same sandbox for a caller without privileges: run as root (as CI does), these tests
//! start the sandbox as `nobody`, which exercises what an ordinary user gets (the id maps it
//! may write, mounts in a user namespace it owns). Run as an ordinary user, the whole suite
//! does that anyway.

use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::util::{output_bounded, read, Sandbox, PROBE};

/// `nobody`.
const UNPRIVILEGED: u32 = 65534;

/// A sandbox whose scratch space belongs to [`UNPRIVILEGED`] when we are root.
fn sandbox() -> Sandbox {
    let mut sandbox = Sandbox::new();
    // The sandbox starts as that user, whose build user is itself.
    sandbox.hand_over = false;
    if nix::unistd::geteuid().is_root() {
        for path in [sandbox.dir.path(), sandbox.build_dir()] {
            std::os::unix::fs::chown(path, Some(UNPRIVILEGED), Some(UNPRIVILEGED)).unwrap();
        }
    }
    sandbox
}

fn probe(sandbox: &Sandbox, args: &[&str]) -> crate::util::Outcome {
    let mut argv = vec!["kiln-sandbox-probe"];
    argv.extend_from_slice(args);
    let mut command = sandbox.command(Path::new(PROBE), &argv);
    if nix::unistd::geteuid().is_root() {
        // std drops the supplementary groups too when root changes uid.
        command.uid(UNPRIVILEGED).gid(UNPRIVILEGED);
    }
    output_bounded(command)
}

#[test]
fn an_unprivileged_caller_gets_the_build_user_and_the_layout() {
    let sandbox = sandbox();
    let ids = probe(&sandbox, &["ids"]);
    assert!(
        ids.ok()
            .starts_with("uid=1000 gid=100 euid=1000 egid=100 groups="),
        "{ids:?}"
    );
    assert_eq!(probe(&sandbox, &["pids"]).ok(), "1\n2\n");
    assert_eq!(probe(&sandbox, &["hostname"]).ok(), "localhost\n");
    assert_eq!(probe(&sandbox, &["loopback"]).ok(), "loopback works\n");
    assert_eq!(probe(&sandbox, &["cwd"]).ok(), "/build\n");
}

#[test]
fn an_unprivileged_caller_writes_only_the_build_dir() {
    let sandbox = sandbox();
    assert_eq!(probe(&sandbox, &["write", "/build/made", "hi\n"]).ok(), "");
    assert_eq!(read(&sandbox.build_dir().join("made")), "hi\n");
    for path in ["/usr/kiln-escape", "/kiln-escape", "/etc/passwd"] {
        assert_eq!(probe(&sandbox, &["write", path]).errno(), "EROFS", "{path}");
    }
    assert_eq!(
        probe(&sandbox, &["chmod", "/dev/null", "600"]).errno(),
        "EROFS"
    );
}
