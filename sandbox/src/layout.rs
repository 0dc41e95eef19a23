//! What the sandbox's root contains, in mount order: [`Layout`], a list of [`Entry`]s computed
//! from a [`SandboxConfig`] and facts about the host, before any namespace exists.
//!
//! The order is: a fresh `/proc` and its read-only parts, `/dev`, `/tmp`, then the caller's
//! entries (build directory, store paths, lent paths, outputs) parents first, then the files
//! in `/etc`. Mounting parents first means a nested entry (an output under a writable store
//! directory, a lent file under `/dev`) lands on top of its parent rather than under it.
//!
//! Host paths are resolved here, on the host: the mounts themselves name them under the old
//! root after `pivot_root(2)`, where an absolute symlink on the way would point into the new
//! root instead.

use std::fmt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::error::{ConfigProblem, SandboxError};
use crate::sys::{FileKind, Sys};
use crate::SandboxConfig;

/// The device nodes bound from the host's `/dev`, as in Nix.
pub(crate) const DEVICES: [&str; 6] = ["full", "null", "random", "tty", "urandom", "zero"];

/// The parts of `/proc` that stay read-only: sysctls and triggers that a process whose uid maps
/// to the host's root could otherwise write without any capability (Docker's "readonly
/// paths"; `/proc/sys` files check only the owner's permission bits for the global root uid).
pub(crate) const PROC_READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// How a host path is bind-mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Read-only, no set-user-ID, no devices.
    ReadOnly,
    /// Writable.
    ReadWrite,
    /// A device node: read-only (so its host inode cannot be changed) but usable.
    Device,
}

/// One thing the sandbox's root gets, at an inside path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A fresh `proc` for the sandbox's pid namespace.
    Proc {
        /// Where (`/proc`).
        target: PathBuf,
    },
    /// An existing path inside the sandbox made read-only (bound onto itself); skipped when the
    /// kernel does not have it.
    ReadOnly {
        /// Which path.
        target: PathBuf,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Where.
        target: PathBuf,
        /// The mode of its root directory.
        mode: u32,
        /// Its mount flags.
        flags: MsFlags,
    },
    /// A fresh `devpts` instance, private to the sandbox.
    Devpts {
        /// Where (`/dev/pts`).
        target: PathBuf,
    },
    /// A host path bind-mounted inside.
    Bind {
        /// The host path, fully resolved.
        source: PathBuf,
        /// The inside path.
        target: PathBuf,
        /// Whether the mount point is a directory (else an empty file).
        dir: bool,
        /// How it is mounted.
        mode: BindMode,
    },
    /// A symlink.
    Symlink {
        /// The link's inside path.
        link: PathBuf,
        /// What it points at.
        original: PathBuf,
    },
    /// A small file written into the sandbox's root.
    File {
        /// The inside path.
        target: PathBuf,
        /// Its contents.
        contents: String,
    },
}

impl Entry {
    /// The inside path this entry creates or covers.
    pub fn target(&self) -> &Path {
        match self {
            Entry::Proc { target }
            | Entry::ReadOnly { target }
            | Entry::Tmpfs { target, .. }
            | Entry::Devpts { target }
            | Entry::Bind { target, .. }
            | Entry::File { target, .. } => target,
            Entry::Symlink { link, .. } => link,
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Proc { target } => write!(f, "{}: proc", target.display()),
            Entry::ReadOnly { target } => write!(f, "{}: read-only", target.display()),
            Entry::Tmpfs { target, mode, .. } => {
                write!(f, "{}: tmpfs mode {mode:04o}", target.display())
            }
            Entry::Devpts { target } => write!(f, "{}: devpts", target.display()),
            Entry::Bind {
                source,
                target,
                mode,
                ..
            } => {
                let how = match mode {
                    BindMode::ReadOnly => "read-only",
                    BindMode::ReadWrite => "writable",
                    BindMode::Device => "device",
                };
                write!(f, "{}: {how} `{}`", target.display(), source.display())
            }
            Entry::Symlink { link, original } => {
                write!(f, "{}: symlink to `{}`", link.display(), original.display())
            }
            Entry::File { target, .. } => write!(f, "{}: file", target.display()),
        }
    }
}

/// The sandbox's root, in mount order, and what the init needs besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The entries, in the order they are mounted.
    pub entries: Vec<Entry>,
    /// The build directory on the host, fully resolved; the new root's tmpfs is mounted over
    /// it (inside the sandbox's mount namespace only), since it is known to exist.
    pub scratch: PathBuf,
    /// The hostname.
    pub hostname: String,
    /// The build user's uid and gid inside: they own the root's tmpfs and the others, so that
    /// the mount points PID 1 creates there are the build user's (the `mount` module).
    pub owner: (u32, u32),
}

impl Layout {
    /// Checks `config` and resolves its host paths with `sys`.
    pub fn new(config: &SandboxConfig, sys: &dyn Sys) -> Result<Layout, SandboxError> {
        if config.hostname.is_empty() || config.hostname.len() > 64 {
            return Err(SandboxError::Hostname {
                hostname: config.hostname.clone(),
            });
        }
        let mut entries = synthetic_entries(sys)?;

        let mut user = Vec::new();
        check_inside(&config.sandbox_build_dir)?;
        let build = resolve(sys, &config.build_dir)?;
        if build == Path::new("/") {
            return Err(SandboxError::Config {
                path: config.build_dir.clone(),
                problem: ConfigProblem::HostRoot,
            });
        }
        user.push(Entry::Bind {
            dir: sys.kind(&build).map_err(host_path(&config.build_dir))? == FileKind::Dir,
            source: build.clone(),
            target: config.sandbox_build_dir.clone(),
            mode: BindMode::ReadWrite,
        });
        for path in &config.store_paths {
            check_inside(path)?;
            user.push(store_entry(sys, path)?);
        }
        for path in &config.lend {
            check_inside(path)?;
            let source = resolve(sys, path)?;
            let kind = sys.kind(&source).map_err(host_path(path))?;
            user.push(bind(source, path, kind, BindMode::ReadOnly));
        }
        for (host, inside) in &config.writable {
            check_inside(inside)?;
            let source = resolve(sys, host)?;
            let kind = sys.kind(&source).map_err(host_path(host))?;
            user.push(bind(source, inside, kind, BindMode::ReadWrite));
        }

        // Parents first; a stable sort keeps the configured order among equals.
        user.sort_by_key(|entry| entry.target().components().count());
        let mut seen: Vec<Entry> = Vec::new();
        for entry in user {
            match seen.iter().find(|other| other.target() == entry.target()) {
                Some(other) if *other == entry => {}
                Some(_) => {
                    return Err(SandboxError::Config {
                        path: entry.target().to_owned(),
                        problem: ConfigProblem::Duplicate,
                    })
                }
                None => seen.push(entry),
            }
        }

        let files: Vec<Entry> = etc_files(config)
            .into_iter()
            .filter(|file| !seen.iter().any(|e| file.target().starts_with(e.target())))
            .collect();
        entries.extend(seen);
        entries.extend(files);
        Ok(Layout {
            entries,
            scratch: build,
            hostname: config.hostname.clone(),
            owner: (config.uid, config.gid),
        })
    }
}

/// `/proc`, `/dev` and `/tmp`, as Nix's sandbox has them.
fn synthetic_entries(sys: &dyn Sys) -> Result<Vec<Entry>, SandboxError> {
    let mut entries = vec![Entry::Proc {
        target: "/proc".into(),
    }];
    entries.extend(PROC_READ_ONLY.iter().map(|path| Entry::ReadOnly {
        target: path.into(),
    }));
    entries.push(Entry::Tmpfs {
        target: "/dev".into(),
        mode: 0o755,
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
    });
    for device in DEVICES {
        let path = PathBuf::from(format!("/dev/{device}"));
        // User namespaces cannot mknod(2) devices; binding the host's nodes is what rootless
        // containers do too.
        sys.kind(&path).map_err(host_path(&path))?;
        entries.push(Entry::Bind {
            source: path.clone(),
            target: path,
            dir: false,
            mode: BindMode::Device,
        });
    }
    entries.push(Entry::Devpts {
        target: "/dev/pts".into(),
    });
    entries.push(Entry::Symlink {
        link: "/dev/ptmx".into(),
        original: "/dev/pts/ptmx".into(),
    });
    entries.push(Entry::Tmpfs {
        target: "/dev/shm".into(),
        mode: 0o1777,
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    });
    for (link, original) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        entries.push(Entry::Symlink {
            link: PathBuf::from("/dev").join(link),
            original: original.into(),
        });
    }
    entries.push(Entry::Tmpfs {
        target: "/tmp".into(),
        mode: 0o1777,
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    });
    Ok(entries)
}

/// A store path: bound read-only, or copied when it is a symlink (its target is another store
/// path, normally in the closure too).
fn store_entry(sys: &dyn Sys, path: &Path) -> Result<Entry, SandboxError> {
    let source = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolve(sys, parent)?.join(name),
        _ => path.to_owned(),
    };
    let kind = sys.kind(&source).map_err(host_path(path))?;
    if kind == FileKind::Symlink {
        let original = sys.read_link(&source).map_err(host_path(path))?;
        return Ok(Entry::Symlink {
            link: path.to_owned(),
            original,
        });
    }
    Ok(bind(source, path, kind, BindMode::ReadOnly))
}

fn bind(source: PathBuf, target: &Path, kind: FileKind, mode: BindMode) -> Entry {
    let mode = match (kind, mode) {
        (FileKind::Device, BindMode::ReadOnly) => BindMode::Device,
        (_, mode) => mode,
    };
    Entry::Bind {
        source,
        target: target.to_owned(),
        dir: kind == FileKind::Dir,
        mode,
    }
}

/// `/etc/passwd`, `/etc/group` and `/etc/hosts` as Nix writes them.
fn etc_files(config: &SandboxConfig) -> Vec<Entry> {
    let (uid, gid) = (config.uid, config.gid);
    let home = config.sandbox_build_dir.display();
    vec![
        Entry::File {
            target: "/etc/passwd".into(),
            contents: format!(
                "root:x:0:0:Nix build user:{home}:/noshell\n\
                 nixbld:x:{uid}:{gid}:Nix build user:{home}:/noshell\n\
                 nobody:x:65534:65534:Nobody:/:/noshell\n"
            ),
        },
        Entry::File {
            target: "/etc/group".into(),
            contents: format!("root:x:0:\nnixbld:!:{gid}:\nnogroup:x:65534:\n"),
        },
        Entry::File {
            target: "/etc/hosts".into(),
            contents: "127.0.0.1 localhost\n::1 localhost\n".into(),
        },
    ]
}

/// Resolves every symlink in the host path `path`.
fn resolve(sys: &dyn Sys, path: &Path) -> Result<PathBuf, SandboxError> {
    if !path.is_absolute() {
        return Err(SandboxError::Config {
            path: path.to_owned(),
            problem: ConfigProblem::NotAbsolute,
        });
    }
    sys.canonicalize(path).map_err(host_path(path))
}

fn host_path(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::HostPath {
        path: path.to_owned(),
        source,
    }
}

/// Refuses inside paths that are relative, not normal, or that the sandbox provides itself.
pub(crate) fn check_inside(path: &Path) -> Result<(), SandboxError> {
    let problem = |problem| {
        Err(SandboxError::Config {
            path: path.to_owned(),
            problem,
        })
    };
    if !path.is_absolute() {
        return problem(ConfigProblem::NotAbsolute);
    }
    // Not `Path::components`: it silently drops `.` components.
    let mut segments = path
        .as_os_str()
        .as_encoded_bytes()
        .split(|&byte| byte == b'/');
    if segments.any(|segment| segment == b"." || segment == b"..") {
        return problem(ConfigProblem::NotNormal);
    }
    let provided = ["/", "/dev", "/tmp", "/dev/ptmx", "/dev/fd"]
        .into_iter()
        .chain(["/dev/stdin", "/dev/stdout", "/dev/stderr"])
        .map(PathBuf::from)
        .chain(DEVICES.iter().map(|device| Path::new("/dev").join(device)))
        .any(|reserved| path == reserved);
    let below = ["/proc", "/dev/pts", "/dev/shm", crate::mount::HOST_ROOT]
        .iter()
        .any(|reserved| path.starts_with(reserved));
    if provided || below {
        return problem(ConfigProblem::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::FakeSys;

    fn host() -> FakeSys {
        FakeSys::new()
            .with("/tmp/b", FileKind::Dir)
            .with("/usr", FileKind::Dir)
            .with("/usr/lib64", FileKind::Dir)
            .with_symlink("/lib64", "usr/lib64")
            .with_canonical("/lib64", "/usr/lib64")
            .with("/nix/store", FileKind::Dir)
            .with("/nix/store/aaa-dep", FileKind::Dir)
            .with_symlink("/nix/store/bbb-link", "/nix/store/aaa-dep")
            .with("/tmp/out", FileKind::Dir)
            .with("/dev/kvm", FileKind::Device)
    }

    fn config() -> SandboxConfig {
        SandboxConfig::new("/tmp/b")
    }

    fn targets(layout: &Layout) -> Vec<String> {
        layout.entries.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn minimal_sandbox() {
        let layout = Layout::new(&config(), &host()).unwrap();
        assert_eq!(layout.scratch, Path::new("/tmp/b"));
        assert_eq!(layout.hostname, "localhost");
        assert_eq!(
            targets(&layout),
            [
                "/proc: proc",
                "/proc/bus: read-only",
                "/proc/fs: read-only",
                "/proc/irq: read-only",
                "/proc/sys: read-only",
                "/proc/sysrq-trigger: read-only",
                "/dev: tmpfs mode 0755",
                "/dev/full: device `/dev/full`",
                "/dev/null: device `/dev/null`",
                "/dev/random: device `/dev/random`",
                "/dev/tty: device `/dev/tty`",
                "/dev/urandom: device `/dev/urandom`",
                "/dev/zero: device `/dev/zero`",
                "/dev/pts: devpts",
                "/dev/ptmx: symlink to `/dev/pts/ptmx`",
                "/dev/shm: tmpfs mode 1777",
                "/dev/fd: symlink to `/proc/self/fd`",
                "/dev/stdin: symlink to `/proc/self/fd/0`",
                "/dev/stdout: symlink to `/proc/self/fd/1`",
                "/dev/stderr: symlink to `/proc/self/fd/2`",
                "/tmp: tmpfs mode 1777",
                "/build: writable `/tmp/b`",
                "/etc/passwd: file",
                "/etc/group: file",
                "/etc/hosts: file",
            ]
        );
    }

    #[test]
    fn store_lent_and_outputs_parents_first() {
        let mut config = config();
        config.store_paths = vec![
            "/nix/store/aaa-dep".into(),
            "/nix/store/bbb-link".into(),
            "/nix/store/aaa-dep".into(), // listed twice: mounted once
        ];
        config.lend = vec!["/usr".into(), "/lib64".into(), "/dev/kvm".into()];
        config.writable = vec![("/tmp/out".into(), "/nix/store/ccc-out".into())];
        let layout = Layout::new(&config, &host()).unwrap();
        let user: Vec<String> = targets(&layout)
            .into_iter()
            .skip_while(|target| !target.starts_with("/build"))
            .collect();
        assert_eq!(
            user,
            [
                "/build: writable `/tmp/b`",
                "/usr: read-only `/usr`",
                // A lent symlink is followed, as Nix 2.8 does.
                "/lib64: read-only `/usr/lib64`",
                "/dev/kvm: device `/dev/kvm`",
                "/nix/store/aaa-dep: read-only `/nix/store/aaa-dep`",
                // A store path that is a symlink stays one.
                "/nix/store/bbb-link: symlink to `/nix/store/aaa-dep`",
                "/nix/store/ccc-out: writable `/tmp/out`",
                "/etc/passwd: file",
                "/etc/group: file",
                "/etc/hosts: file",
            ]
        );
    }

    #[test]
    fn etc_files_name_the_build_user() {
        let mut config = config();
        config.uid = 4242;
        config.gid = 4343;
        let layout = Layout::new(&config, &host()).unwrap();
        let passwd = layout
            .entries
            .iter()
            .find_map(|entry| match entry {
                Entry::File { target, contents } if target == Path::new("/etc/passwd") => {
                    Some(contents.clone())
                }
                _ => None,
            })
            .unwrap();
        assert!(passwd.contains("nixbld:x:4242:4343:Nix build user:/build:/noshell\n"));
    }

    #[test]
    fn lent_etc_replaces_the_generated_files() {
        let mut config = config();
        config.lend = vec!["/etc".into()];
        let layout = Layout::new(&config, &host().with("/etc", FileKind::Dir)).unwrap();
        let last = targets(&layout).pop().unwrap();
        assert_eq!(last, "/etc: read-only `/etc`");
    }

    #[test]
    fn refuses_bad_inside_paths() {
        for (path, expected) in [
            ("relative", ConfigProblem::NotAbsolute),
            ("/nix/../etc", ConfigProblem::NotNormal),
            ("/nix/./store", ConfigProblem::NotNormal),
            ("/", ConfigProblem::Reserved),
            ("/proc/sys", ConfigProblem::Reserved),
            ("/dev", ConfigProblem::Reserved),
            ("/dev/null", ConfigProblem::Reserved),
            ("/dev/pts/0", ConfigProblem::Reserved),
            ("/tmp", ConfigProblem::Reserved),
            ("/.kiln-host/x", ConfigProblem::Reserved),
        ] {
            let mut config = config();
            config.writable = vec![("/tmp/out".into(), path.into())];
            match Layout::new(&config, &host()) {
                Err(SandboxError::Config { problem, .. }) => {
                    assert_eq!(problem, expected, "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        for allowed in ["/tmp/x", "/dev/kvm2", "/build2"] {
            check_inside(Path::new(allowed)).unwrap();
        }
    }

    #[test]
    fn refuses_two_entries_at_one_path() {
        let mut config = config();
        config.lend = vec!["/usr".into()];
        config.writable = vec![("/tmp/out".into(), "/usr".into())];
        match Layout::new(&config, &host()) {
            Err(SandboxError::Config { path, problem }) => {
                assert_eq!(path, Path::new("/usr"));
                assert_eq!(problem, ConfigProblem::Duplicate);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_host_paths_and_bad_hostnames() {
        let mut config = config();
        config.lend = vec!["/opt/missing".into()];
        match Layout::new(&config, &host()) {
            Err(SandboxError::HostPath { path, source }) => {
                assert_eq!(path, Path::new("/opt/missing"));
                assert_eq!(source.raw_os_error(), Some(nix::libc::ENOENT));
            }
            other => panic!("{other:?}"),
        }
        let mut config = self::config();
        config.build_dir = "relative".into();
        assert!(matches!(
            Layout::new(&config, &host()),
            Err(SandboxError::Config {
                problem: ConfigProblem::NotAbsolute,
                ..
            })
        ));
        let mut config = self::config();
        config.build_dir = "/".into();
        assert!(matches!(
            Layout::new(&config, &host().with("/", FileKind::Dir)),
            Err(SandboxError::Config {
                problem: ConfigProblem::HostRoot,
                ..
            })
        ));
        let mut config = self::config();
        config.hostname = "x".repeat(65);
        assert!(matches!(
            Layout::new(&config, &host()),
            Err(SandboxError::Hostname { .. })
        ));
    }
}
