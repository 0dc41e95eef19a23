//! What a build sees inside the sandbox: the layout, the build user, the host name, and the
//! places it may write.

use std::path::{Component, Path};

use crate::util::{read, Sandbox, PROBE};

#[test]
fn the_build_dir_is_the_writable_working_directory() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.probe(&["cwd"]).ok(), "/build\n");
    assert_eq!(sandbox.probe(&["write", "made-inside", "hello\n"]).ok(), "");
    assert_eq!(read(&sandbox.build_dir().join("made-inside")), "hello\n");
}

#[test]
fn outputs_are_writable_at_their_inside_paths() {
    let mut sandbox = Sandbox::new();
    let out = sandbox.host_dir("out");
    let inside = "/nix/store/00000000000000000000000000000000-kiln-sandbox-test";
    sandbox.config.writable.push((out.clone(), inside.into()));
    let file = format!("{inside}/result");
    assert_eq!(sandbox.probe(&["write", &file, "built\n"]).ok(), "");
    assert_eq!(read(&out.join("result")), "built\n");
}

#[test]
fn the_lent_toolchain_is_readable_and_runs() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.run(Path::new("/usr/bin/true"), &["true"]).code(), 0);
    assert_eq!(
        sandbox.run(Path::new("/usr/bin/false"), &["false"]).code(),
        1
    );
    let listing = sandbox.probe(&["ls", "/usr/bin"]);
    assert!(
        listing.ok().lines().any(|name| name == "env"),
        "{listing:?}"
    );
    // Found through the PATH the caller gave.
    let env = sandbox.run(Path::new("env"), &["env"]);
    assert!(env.stdout.contains("PATH=/usr/bin:/bin\n"), "{env:?}");
}

#[test]
fn the_hostname_is_localhost_unless_configured() {
    let mut sandbox = Sandbox::new();
    assert_eq!(sandbox.probe(&["hostname"]).ok(), "localhost\n");
    sandbox.config.hostname = "kiln-test".into();
    assert_eq!(sandbox.probe(&["hostname"]).ok(), "kiln-test\n");
}

#[test]
fn the_build_user_is_nixbld() {
    let mut sandbox = Sandbox::new();
    let ids = sandbox.probe(&["ids"]);
    assert!(
        ids.ok()
            .starts_with("uid=1000 gid=100 euid=1000 egid=100 groups="),
        "{ids:?}"
    );
    let passwd = sandbox.probe(&["read", "/etc/passwd"]);
    assert!(passwd
        .ok()
        .contains("\nnixbld:x:1000:100:Nix build user:/build:/noshell\n"));

    sandbox.config.uid = 4242;
    sandbox.config.gid = 4343;
    let ids = sandbox.probe(&["ids"]);
    assert!(
        ids.ok()
            .starts_with("uid=4242 gid=4343 euid=4242 egid=4343 groups="),
        "{ids:?}"
    );
    // The build directory belongs to the build user.
    let id = sandbox.run(
        Path::new("/usr/bin/stat"),
        &["stat", "-c", "%u:%g %a", "/build"],
    );
    assert!(id.ok().starts_with("4242:4343 "), "{id:?}");
}

#[test]
fn the_root_has_only_what_the_sandbox_provides() {
    let sandbox = Sandbox::new();
    let mut expected: Vec<String> = ["build", "dev", "etc", "proc", "tmp"]
        .into_iter()
        .map(String::from)
        .collect();
    // The lent toolchain, and the top directory of the lent probe binary.
    for lent in &sandbox.config.lend {
        if let Some(Component::Normal(top)) = lent.components().nth(1) {
            expected.push(top.to_string_lossy().into_owned());
        }
    }
    expected.sort();
    expected.dedup();
    let root = sandbox.probe(&["ls", "/"]);
    assert_eq!(root.ok().lines().collect::<Vec<_>>(), expected);
    assert!(Path::new(PROBE).is_absolute());

    let dev = sandbox.probe(&["ls", "/dev"]);
    assert_eq!(
        dev.ok().lines().collect::<Vec<_>>(),
        [
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero"
        ]
    );
    assert_eq!(
        sandbox
            .probe(&["ls", "/etc"])
            .ok()
            .lines()
            .collect::<Vec<_>>(),
        if sandbox
            .config
            .lend
            .iter()
            .any(|p| p == Path::new("/etc/alternatives"))
        {
            vec!["alternatives", "group", "hosts", "passwd"]
        } else {
            vec!["group", "hosts", "passwd"]
        }
    );
}

#[test]
fn tmp_and_dev_shm_are_private_and_writable() {
    let sandbox = Sandbox::new();
    let name = format!("kiln-sandbox-test-{}", std::process::id());
    for dir in ["/tmp", "/dev/shm"] {
        let path = format!("{dir}/{name}");
        assert_eq!(sandbox.probe(&["write", &path]).ok(), "", "{path}");
        assert!(!Path::new(&path).exists(), "{path} appeared on the host");
    }
}

#[test]
fn the_loopback_interface_is_up() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.probe(&["loopback"]).ok(), "loopback works\n");
}

#[test]
fn stdio_and_dev_fd_work() {
    let sandbox = Sandbox::new();
    // /dev/stdout is a symlink into the fresh /proc. Reopening it opens the file behind the
    // probe's stdout, so that file must be the build user's, as kiln's own pipes are (the
    // runner inside makes them); here, a file in the build directory.
    let stdout_path = sandbox.build_dir().join("stdout");
    let stdout = fs_err::File::create(&stdout_path).unwrap();
    let mut command = sandbox.command(
        Path::new(PROBE),
        &[
            "kiln-sandbox-probe",
            "write",
            "/dev/stdout",
            "through /dev/stdout\n",
        ],
    );
    let (uid, gid) = kiln_sandbox::build_owner();
    kiln_sandbox::hand_over(&stdout_path, uid, gid).unwrap();
    command.stdout(std::process::Stdio::from(stdout.into_parts().0));
    let status = command.status().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        fs_err::read_to_string(&stdout_path).unwrap(),
        "through /dev/stdout\n"
    );
}
