//! What a sandbox contains: [`SandboxConfig`], the caller's description of one sandbox, and
//! the defaults that mirror Nix's build sandbox.

use std::path::PathBuf;

/// The uid the command has inside the sandbox by default: Nix's `sandboxUid` (user `nixbld`).
pub const SANDBOX_UID: u32 = 1000;

/// The gid the command has inside the sandbox by default: Nix's `sandboxGid` (group `nixbld`).
pub const SANDBOX_GID: u32 = 100;

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
        }
    }
}
