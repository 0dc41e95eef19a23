//! Shared helpers: a crafted build tree, a tree description to compare trees by, and a way to
//! write hand-made (possibly hostile) states.

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kiln_state::{Manifest, ManifestBase, FORMAT, KILN_VERSION, MANIFEST_FILE, PAYLOAD_FILE};
use sha2::{Digest as _, Sha256};

/// A temporary directory that can be removed even when a test left read-only directories in
/// it (which only root could otherwise delete).
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch(tempfile::tempdir().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        fn writable(path: &Path) {
            let Ok(metadata) = fs::symlink_metadata(path) else {
                return;
            };
            if metadata.is_dir() {
                let _ = fs::set_permissions(path, Permissions::from_mode(0o700));
                for child in fs::read_dir(path).into_iter().flatten().flatten() {
                    writable(&child.path());
                }
            }
        }
        writable(self.0.path());
    }
}

/// An old mtime (2001-09-09) that the tree's files and directories carry.
pub const OLD: u64 = 1_000_000_000;

pub fn time(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

pub fn set_mtime(path: &Path, seconds: u64) {
    let metadata = fs::symlink_metadata(path).unwrap();
    if metadata.is_symlink() {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &nix::sys::time::TimeSpec::UTIME_OMIT,
            &nix::sys::time::TimeSpec::new(seconds as i64, 0),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    } else {
        File::open(path)
            .unwrap()
            .set_times(FileTimes::new().set_modified(time(seconds)))
            .unwrap();
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Pseudo-random bytes (xorshift), deterministic.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A 150-byte file name.
pub fn long_name() -> String {
    format!("{}.c", "long-name-".repeat(15))
        .chars()
        .take(150)
        .collect()
}

/// Builds the crafted tree under `root`: `root/build` (with Nix's `.attrs.json` and
/// `env-vars`), `root/out` (a directory output), `root/doc` (a single-file output) and
/// `root/alias` (a symlink output).
/// Returns the build directory and the outputs map (with `man`, which does not exist).
pub fn crafted_tree(root: &Path) -> (PathBuf, BTreeMap<String, PathBuf>) {
    let build = root.join("build");
    let src = build.join("hello-2.10");
    fs::create_dir_all(src.join("lib/nested/deep")).unwrap();
    fs::write(src.join("lib/nested/deep/x.c"), "int x;\n").unwrap();
    fs::create_dir(src.join("empty")).unwrap();
    fs::write(src.join("configure"), "#! /bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(src.join("configure"), Permissions::from_mode(0o755)).unwrap();
    fs::write(src.join("old.txt"), "old\n").unwrap();
    // A mode the usual umask (022) would change if the restore applied it.
    fs::write(src.join("shared.txt"), "rw for all\n").unwrap();
    fs::set_permissions(src.join("shared.txt"), Permissions::from_mode(0o666)).unwrap();
    fs::write(src.join(long_name()), "long\n").unwrap();
    fs::write(src.join("big.bin"), noise(1 << 20, 7)).unwrap();
    fs::write(src.join("hard-1"), "linked\n").unwrap();
    fs::hard_link(src.join("hard-1"), src.join("hard-2")).unwrap();
    std::os::unix::fs::symlink("lib/nested", src.join("link-relative")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", src.join("link-absolute")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", src.join("link-dangling")).unwrap();
    let long_target = format!("lib/{}", "t".repeat(120));
    std::os::unix::fs::symlink(long_target, src.join("link-long")).unwrap();
    fs::create_dir(src.join("read-only")).unwrap();
    fs::write(src.join("read-only/file"), "ro\n").unwrap();
    fs::set_permissions(src.join("read-only/file"), Permissions::from_mode(0o444)).unwrap();
    fs::write(build.join(".attrs.json"), "{}").unwrap();
    fs::write(build.join("env-vars"), "declare -x A=b\n").unwrap();

    let out = root.join("out");
    fs::create_dir_all(out.join("bin")).unwrap();
    fs::write(out.join("bin/hello"), "\x7fELF not really").unwrap();
    fs::set_permissions(out.join("bin/hello"), Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("bin", out.join("sbin")).unwrap();
    fs::write(root.join("doc"), "a single-file output\n").unwrap();
    // An output that is a symlink (to another output, as `dev -> out` setups do).
    std::os::unix::fs::symlink("out", root.join("alias")).unwrap();

    // mtimes last, deepest first: creating entries changes a directory's mtime.
    for (path, seconds) in [
        (src.join("old.txt"), OLD),
        (src.join("lib/nested/deep/x.c"), OLD + 1),
        (src.join("lib/nested/deep"), OLD + 2),
        (src.join("lib/nested"), OLD + 3),
        (src.join("link-relative"), OLD + 4),
        (src.join("read-only/file"), OLD + 5),
        (src.join("read-only"), OLD + 6),
        (src.join("empty"), OLD + 7),
        (src.clone(), OLD + 8),
        (out.join("bin/hello"), OLD + 9),
        (out.join("bin"), OLD + 10),
        (out.clone(), OLD + 11),
    ] {
        set_mtime(&path, seconds);
    }
    fs::set_permissions(src.join("read-only"), Permissions::from_mode(0o555)).unwrap();
    let outputs = BTreeMap::from([
        ("alias".to_owned(), root.join("alias")),
        ("out".to_owned(), out),
        ("doc".to_owned(), root.join("doc")),
        ("man".to_owned(), root.join("man")),
    ]);
    (build, outputs)
}

/// What a test compares of one file system object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub mtime: i64,
    /// SHA-256 of a file's content.
    pub content: Option<String>,
    pub target: Option<PathBuf>,
    pub inode: u64,
}

/// Describes `path` and everything under it, keyed by path relative to `path` (`""` is
/// `path` itself); top-level names in `skip` are left out.
pub fn describe(path: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Node> {
    let mut nodes = BTreeMap::new();
    describe_into(path, Path::new(""), skip, &mut nodes);
    nodes
}

fn describe_into(path: &Path, relative: &Path, skip: &[&str], nodes: &mut BTreeMap<PathBuf, Node>) {
    let metadata = fs::symlink_metadata(path).unwrap();
    let kind = if metadata.is_dir() {
        "dir"
    } else if metadata.is_symlink() {
        "symlink"
    } else {
        "file"
    };
    nodes.insert(
        relative.to_owned(),
        Node {
            kind,
            mode: if metadata.is_symlink() {
                0
            } else {
                metadata.mode() & 0o7777
            },
            mtime: metadata.mtime(),
            content: (kind == "file").then(|| sha256_hex(&fs::read(path).unwrap())),
            target: (kind == "symlink").then(|| fs::read_link(path).unwrap()),
            inode: metadata.ino(),
        },
    );
    if metadata.is_dir() {
        for child in fs::read_dir(path).unwrap() {
            let name = child.unwrap().file_name();
            if relative.as_os_str().is_empty() && skip.iter().any(|s| name == **s) {
                continue;
            }
            describe_into(&path.join(&name), &relative.join(&name), skip, nodes);
        }
    }
}

/// Like [`describe`], without inode numbers and without the root's own metadata (the build
/// directory itself is not part of a state).
pub fn comparable(path: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Node> {
    let mut nodes = describe(path, skip);
    for node in nodes.values_mut() {
        node.inode = 0;
    }
    if let Some(root) = nodes.get_mut(Path::new("")) {
        if root.kind == "dir" {
            root.mode = 0;
            root.mtime = 0;
        }
    }
    nodes
}

/// The names in a directory, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn base() -> ManifestBase {
    ManifestBase {
        plan_hash: "ab".repeat(32),
        phase: "build".to_owned(),
        workdir: "hello-2.10".into(),
        env: BTreeMap::from([("CFLAGS".to_owned(), "-O2".to_owned())]),
    }
}

/// One hand-made tar entry; the path and link are written into the header as raw bytes, so
/// anything goes.
pub struct Raw<'a> {
    pub path: &'a str,
    pub kind: u8,
    pub link: &'a str,
    pub data: &'a [u8],
    pub mtime: u64,
}

pub fn raw_file<'a>(path: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        path,
        kind: b'0',
        link: "",
        data,
        mtime: OLD,
    }
}

pub fn raw_dir(path: &str) -> Raw<'_> {
    Raw {
        path,
        kind: b'5',
        link: "",
        data: b"",
        mtime: OLD,
    }
}

pub fn raw_link<'a>(kind: u8, path: &'a str, link: &'a str) -> Raw<'a> {
    Raw {
        path,
        kind,
        link,
        data: b"",
        mtime: OLD,
    }
}

/// Writes a state whose payload holds exactly `entries`, with a matching manifest listing
/// `outputs`.
pub fn write_raw_state(dir: &Path, entries: &[Raw<'_>], outputs: &[&str]) {
    let mut builder = tar::Builder::new(Vec::new());
    for raw in entries {
        let mut header = tar::Header::new_gnu();
        {
            let old = header.as_old_mut();
            old.name[..raw.path.len()].copy_from_slice(raw.path.as_bytes());
            old.linkname[..raw.link.len()].copy_from_slice(raw.link.as_bytes());
        }
        header.set_entry_type(tar::EntryType::new(raw.kind));
        header.set_mode(0o644);
        header.set_mtime(raw.mtime);
        header.set_size(raw.data.len() as u64);
        header.set_cksum();
        builder.append(&header, raw.data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let payload = zstd::encode_all(&tar[..], 3).unwrap();
    write_state(dir, &payload, outputs);
}

/// Writes `payload` as a state in `dir` with a manifest that matches it.
pub fn write_state(dir: &Path, payload: &[u8], outputs: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(PAYLOAD_FILE), payload).unwrap();
    let base = base();
    let manifest = Manifest {
        format: FORMAT,
        kiln_version: KILN_VERSION.to_owned(),
        plan_hash: base.plan_hash,
        phase: base.phase,
        payload_sha256: sha256_hex(payload),
        payload_size: payload.len() as u64,
        workdir: base.workdir,
        env: base.env,
        outputs: outputs
            .iter()
            .map(|name| (name.to_string(), format!("/placeholder/{name}")))
            .collect(),
    };
    let mut file = File::create(dir.join(MANIFEST_FILE)).unwrap();
    file.write_all(&serde_json::to_vec_pretty(&manifest).unwrap())
        .unwrap();
}
