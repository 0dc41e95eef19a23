//! What a sandbox contains: [`SandboxConfig`], the caller's description of one sandbox, and
//! the defaults that mirror Nix's build sandbox.

use std::path::PathBuf;

/// The uid the command has inside the sandbox by default: Nix's `sandboxUid` (user `nixbld`).
pub const SANDBOX_UID: u32 = 1000;

/// The gid the command has inside the sandbox by default: Nix's `sandboxGid` (group `nixbld`).
pub const SANDBOX_GID: u32 = 100;

/// The host uid and gid the build user maps to when kiln runs as root: never root itself (a
/// setuid file left by the build would be setuid-root on the host), and no user of the host.
/// The build directory and the outputs' staging directory are handed to it before a phase runs
/// ([`build_owner`]), and outputs are given back to the caller when they are installed.
/// The number spells `kiln` in ASCII; it lies outside Nix's `auto-allocate-uids` range.
pub const HOST_BUILD_ID: u32 = 0x6b69_6c6e;

/// The host uid and gid the build user has: [`HOST_BUILD_ID`] for a caller that is root, the
/// caller's own ids otherwise (an unprivileged user can map only itself).
pub fn build_owner() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (HOST_BUILD_ID, HOST_BUILD_ID)
    } else {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }
}

/// Where the build directory appears inside the sandbox by default, as in Nix.
pub const SANDBOX_BUILD_DIR: &str = "/build";

/// The sandbox's hostname by default, as in Nix.
pub const SANDBOX_HOSTNAME: &str = "localhost";

/// One sandbox: which host paths appear inside it, where, and how; and who the command is.
///
/// Every path MUST be absolute. Host paths MUST exist when the sandbox starts (outputs
/// included: create the output directory, or mount a writable parent, before running a step).
/// Inside paths MUST NOT contain `.` or `..` components and MUST NOT be `/`, `/proc`, `/dev`,
/// `/tmp` or one of the `/dev` entries the sandbox provides itself; two entries MUST NOT share
/// an inside path.
///
/// Besides these entries the sandbox always has a fresh `/proc` (with `/proc/sys` and friends
/// read-only), a minimal `/dev`, an empty `/tmp`, and `/etc/passwd`, `/etc/group` and
/// `/etc/hosts` naming the build user (unless a lent path covers them). Everything else is a
/// read-only, empty root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The host directory mounted writable at [`SandboxConfig::sandbox_build_dir`].
    pub build_dir: PathBuf,
    /// Where the build directory appears inside, normally `/build`.
    pub sandbox_build_dir: PathBuf,
    /// Store paths (or the whole store directory) mounted read-only at the same path. A store
    /// path that is a symlink appears as the same symlink.
    pub store_paths: Vec<PathBuf>,
    /// `(host, inside)` pairs mounted writable: the step's outputs.
    pub writable: Vec<(PathBuf, PathBuf)>,
    /// Host paths lent read-only at the same path, like Nix's `extra-sandbox-paths`
    /// (`/bin /usr /lib /lib64 /etc/alternatives` lends the host toolchain). A lent symlink is
    /// followed: its target appears at the lent path. Lent device nodes stay usable.
    pub lend: Vec<PathBuf>,
    /// The command's uid inside the sandbox.
    pub uid: u32,
    /// The command's gid inside the sandbox.
    pub gid: u32,
    /// The sandbox's hostname; at most 64 bytes.
    pub hostname: String,
    /// Make the command's standard input its controlling terminal (for an interactive shell on
    /// a pseudo-terminal of its own). The command always runs in a new session, so without this
    /// it has no controlling terminal at all: not the caller's, whose input queue `TIOCSTI`
    /// could fill, as bubblewrap's `--new-session` guards against.
    pub controlling_terminal: bool,
}

impl SandboxConfig {
    /// A sandbox with `build_dir` at `/build`, nothing else lent, and Nix's build user and
    /// hostname.
    pub fn new(build_dir: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            build_dir: build_dir.into(),
            sandbox_build_dir: PathBuf::from(SANDBOX_BUILD_DIR),
            store_paths: Vec::new(),
            writable: Vec::new(),
            lend: Vec::new(),
            uid: SANDBOX_UID,
            gid: SANDBOX_GID,
            hostname: SANDBOX_HOSTNAME.to_owned(),
            controlling_terminal: false,
        }
    }
}
