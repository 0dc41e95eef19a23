//! Each way out of the sandbox, tried from inside; each must fail.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::{read, Sandbox, SECRET};

#[test]
fn a_port_on_the_host_loopback_is_unreachable() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sandbox = Sandbox::new();

    // A new network namespace has its own loopback: nothing listens there.
    assert_eq!(sandbox.probe(&["connect", &addr]).errno(), "ECONNREFUSED");
    assert_eq!(sandbox.probe(&["interfaces"]).ok(), "lo\n");

    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept();
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the host listener saw a connection: {accepted:?}"
    );
}

#[test]
fn host_paths_that_are_not_lent_are_invisible() {
    let sandbox = Sandbox::new();
    let outside = sandbox.host_dir("outside");
    let target = outside.join("escaped");

    assert_eq!(
        sandbox.probe(&["write", target.to_str().unwrap()]).errno(),
        "ENOENT"
    );
    assert_eq!(
        sandbox.probe(&["ls", outside.to_str().unwrap()]).errno(),
        "ENOENT"
    );
    // Not even the host's own files: /etc holds only what the sandbox wrote.
    assert_eq!(sandbox.probe(&["read", "/etc/hostname"]).errno(), "ENOENT");
    assert!(!target.exists());
}

#[test]
fn lent_host_paths_are_read_only() {
    let mut sandbox = Sandbox::new();
    let lent = sandbox.host_dir("lent");
    fs_err::write(lent.join("existing"), "host\n").unwrap();
    sandbox.config.lend.push(lent.clone());
    let existing = lent.join("existing");
    let new = lent.join("new");

    assert_eq!(
        sandbox.probe(&["read", existing.to_str().unwrap()]).ok(),
        "host\n"
    );
    for args in [
        ["write", existing.to_str().unwrap()],
        ["write", new.to_str().unwrap()],
        ["remove", existing.to_str().unwrap()],
    ] {
        assert_eq!(sandbox.probe(&args).errno(), "EROFS", "{args:?}");
    }
    assert_eq!(
        sandbox
            .probe(&["chmod", existing.to_str().unwrap(), "777"])
            .errno(),
        "EROFS"
    );
    assert_eq!(read(&existing), "host\n");
    assert!(!new.exists());
    // The lent toolchain too.
    assert_eq!(
        sandbox.probe(&["write", "/usr/kiln-escape"]).errno(),
        "EROFS"
    );
}

#[test]
fn the_root_and_etc_are_read_only() {
    let sandbox = Sandbox::new();
    for path in ["/kiln-escape", "/etc/passwd", "/etc/kiln-escape"] {
        assert_eq!(sandbox.probe(&["write", path]).errno(), "EROFS", "{path}");
    }
}

#[test]
fn host_inodes_behind_devices_and_proc_cannot_be_changed() {
    // As root, the build user is the host's root: read-only mounts are what keep it from the
    // host's /dev/null inode and from global sysctls.
    let sandbox = Sandbox::new();
    let mode_before = fs_err::metadata("/dev/null").unwrap().permissions().mode();
    assert_eq!(
        sandbox.probe(&["chmod", "/dev/null", "600"]).errno(),
        "EROFS"
    );
    assert_eq!(
        fs_err::metadata("/dev/null").unwrap().permissions().mode(),
        mode_before
    );
    assert_eq!(
        sandbox
            .probe(&["write", "/proc/sys/kernel/domainname", "escaped"])
            .errno(),
        "EROFS"
    );
    // Devices still work.
    assert_eq!(sandbox.probe(&["write", "/dev/null"]).ok(), "");
}

#[test]
fn host_processes_are_invisible() {
    let sandbox = Sandbox::new();
    // PID 1 (the sandbox's init) and the probe: nothing of the host. (The probe is not
    // always PID 2: as root, PID 1 creates the root's entries from short-lived threads.)
    let pids = sandbox.probe(&["pids"]);
    let pids: Vec<&str> = pids.ok().lines().collect();
    assert_eq!((pids.len(), pids[0]), (2, "1"), "{pids:?}");
    let own_pid = std::process::id().to_string();
    assert_eq!(sandbox.probe(&["kill0", &own_pid]).errno(), "ESRCH");
    let init = sandbox.probe(&["read", "/proc/1/cmdline"]);
    assert!(init.ok().contains("__sandbox-init"), "{init:?}");
}

#[test]
fn the_callers_environment_does_not_leak() {
    let mut sandbox = Sandbox::new();
    assert_eq!(std::env::var(SECRET).as_deref(), Ok("leaked"));
    sandbox.env.push(("KILN_GIVEN".into(), "yes".into()));
    let env = sandbox.probe(&["env"]);
    let mut lines: Vec<&str> = env.ok().lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "HOME=/homeless-shelter",
            "KILN_GIVEN=yes",
            "PATH=/usr/bin:/bin"
        ]
    );
}

#[test]
fn store_paths_are_read_only() {
    let mut sandbox = Sandbox::new();
    let store = sandbox.host_dir("store");
    let path = store.join("00000000000000000000000000000000-dep");
    fs_err::create_dir(&path).unwrap();
    fs_err::write(path.join("lib.txt"), "store\n").unwrap();
    fs_err::create_dir(store.join("11111111111111111111111111111111-other")).unwrap();
    sandbox.config.store_paths.push(path.clone());
    let file = path.join("lib.txt");
    let file = file.to_str().unwrap();
    let new = path.join("new");

    assert_eq!(sandbox.probe(&["read", file]).ok(), "store\n");
    assert_eq!(sandbox.probe(&["write", file]).errno(), "EROFS");
    assert_eq!(
        sandbox.probe(&["write", new.to_str().unwrap()]).errno(),
        "EROFS"
    );
    assert_eq!(sandbox.probe(&["remove", file]).errno(), "EROFS");
    assert_eq!(sandbox.probe(&["chmod", file, "666"]).errno(), "EROFS");
    assert_eq!(read(Path::new(file)), "store\n");
    assert!(!new.exists());
    // Beside the store path, the store directory has nothing: not even the other files of
    // the host directory the store path is in.
    assert_eq!(
        sandbox.probe(&["ls", store.to_str().unwrap()]).ok(),
        "00000000000000000000000000000000-dep\n"
    );
}
