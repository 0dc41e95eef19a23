//! The `graft` step: a copy of a store path with some dependencies' store paths replaced by
//! others of the same length ([`GraftStep`]), on `kiln-fixup`'s rewrite engine
//! ([`kiln_fixup::rewrite`], which split mode's placeholder rewrite also uses).
//!
//! - What is replaced is each old path's base name, `HASH-NAME`, by the new path's (the store
//!   directories are equal, so the lengths are too): in file contents at any offset, which
//!   also catches relative references (`../HASH-NAME/lib`); in symlink targets; in every file
//!   and directory name; inside gzip files, which are decompressed, rewritten and compressed
//!   again as the fixup compresses. Several old paths are matched at once, leftmost then
//!   longest first, occurrences never overlapping.
//! - The source is read in 1 MiB chunks overlapping by the longest base name less one byte,
//!   never whole; files are grafted in parallel on a pool of the build's cores.
//! - Modes are kept, except setuid and setgid, which no output keeps. Access and modification
//!   times are kept, as `copy` keeps them: a store path's mtimes are already 1, what Nix sets,
//!   and a local graft of a build tree keeps what `make` compares (directories keep whole
//!   seconds).
//! - Files hard-linked to each other in `from` are hard-linked in `to`, rewritten once. A
//!   sparse file's holes (`SEEK_DATA`/`SEEK_HOLE`) stay holes: only its data is read and
//!   written (a store path never holds a NUL inside a path, so no occurrence spans a hole).
//! - Symlinks are copied as symlinks, never followed, wherever they point; source files are
//!   opened with `O_NOFOLLOW`; everything is created under `to` with `O_EXCL`, through
//!   directories this step created ([`kiln_fsio::TreeWriter`]). `to` MUST NOT exist and MUST
//!   NOT be inside `from`.
//! - Then the new tree is checked: the hash part of any old path anywhere in it — a name, a
//!   symlink target, a file's contents, or the decompressed contents of a gzip, bzip2, xz,
//!   lzma or zstd file — fails the step with [`GraftError::Left`], naming the file and byte
//!   offset (for an xz file: kiln cannot rewrite inside it, and Nix would not see the
//!   reference either).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, FileTimes, Metadata, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt as _, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kiln_fixup::rewrite::{self, FileRange, RewriteError, Rewriter, Scanner};
use kiln_fsio::{Existing, PendingDirs, TreeWriter};
use kiln_schema::events::Level;
use kiln_schema::{GraftStep, JsonPath};
use rayon::prelude::*;

use crate::{StepContext, StepEffects, StepError};

/// Why a graft failed.
#[derive(Debug, thiserror::Error)]
pub enum GraftError {
    /// The replacements are refused (checked again once references are resolved).
    #[error("{0}")]
    Replacements(kiln_schema::PlanErrors),
    /// A replacement is not in the build's store directory.
    #[error("`{path}` is not in the store directory `{}`", store_dir.display())]
    NotInStore {
        /// The path.
        path: String,
        /// The store directory.
        store_dir: PathBuf,
    },
    /// `to` exists already.
    #[error("`{}` already exists", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// `to` is inside `from`.
    #[error("cannot graft `{}` into itself (to `{}`)", from.display(), to.display())]
    IntoItself {
        /// The source.
        from: PathBuf,
        /// The destination.
        to: PathBuf,
    },
    /// Something in `from` is not a file, a directory or a symlink.
    #[error("cannot graft `{}`: it is not a regular file, a directory or a symlink", path.display())]
    Unsupported {
        /// The special file.
        path: PathBuf,
    },
    /// Reading the source failed.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Copying a file's contents failed (reading, rewriting or writing).
    #[error("cannot graft `{}` to `{}`", from.display(), to.display())]
    Copy {
        /// The source file.
        from: PathBuf,
        /// The copy.
        to: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing the copy failed.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Creating an entry of the copy was refused or failed.
    #[error("cannot create an entry of the graft")]
    Tree(#[from] kiln_fsio::TreeError),
    /// Setting a directory's mode or mtime failed.
    #[error(transparent)]
    DirMetadata(#[from] kiln_fsio::DirMetadataError),
    /// The thread pool could not start.
    #[error("cannot start {threads} threads")]
    ThreadPool {
        /// How many.
        threads: usize,
        /// Why.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// The rewrite engine failed (building the matcher, or checking the copy).
    #[error(transparent)]
    Rewrite(RewriteError),
    /// An old path is left in the copy.
    #[error("an old path is left after grafting: {0}")]
    Left(rewrite::Left),
}

impl GraftError {
    /// What the user can do about it, when the step can tell.
    pub fn hint(&self) -> Option<String> {
        match self {
            GraftError::Left(left) => Some(match left.place {
                rewrite::Place::Decoded { format, .. } if format != "gzip" => format!(
                    "kiln rewrites inside gzip only, not {format}: rebuild this package against \
                     the new dependency instead of grafting it, or regenerate the file"
                ),
                _ => "the old path is there in a form kiln does not rewrite (a bare hash, or \
                      data kiln cannot decode): rebuild this package against the new dependency"
                    .to_owned(),
            }),
            GraftError::Replacements(errors) => errors.0.first().and_then(|error| error.hint()),
            _ => None,
        }
    }
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> GraftError + '_ {
    move |source| GraftError::Read {
        path: path.to_owned(),
        source,
    }
}

fn write_error(path: &Path) -> impl FnOnce(io::Error) -> GraftError + '_ {
    move |source| GraftError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Runs a `graft` step (paths relative to `cwd`) on `ctx.cores` threads.
pub(crate) fn run(step: &GraftStep, ctx: &StepContext<'_>) -> Result<StepEffects, StepError> {
    let report = graft(step, ctx)?;
    let mut effects = StepEffects::default();
    effects.message(Level::Info, report.to_string());
    Ok(effects)
}

/// What a graft did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GraftReport {
    /// Regular files written (hard links not counted).
    pub files: usize,
    /// Hard links made to files already written.
    pub hard_links: usize,
    /// Symlinks.
    pub symlinks: usize,
    /// Directories.
    pub directories: usize,
    /// Occurrences replaced: in contents, symlink targets and names.
    pub replacements: usize,
    /// Files whose contents changed.
    pub changed_files: usize,
}

impl std::fmt::Display for GraftReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "grafted {} files, {} replacements ({} files changed; {} hard links, {} symlinks, {} \
             directories)",
            self.files,
            self.replacements,
            self.changed_files,
            self.hard_links,
            self.symlinks,
            self.directories
        )
    }
}

/// One regular file to write.
struct FileJob {
    from: PathBuf,
    to: PathBuf,
}

fn graft(step: &GraftStep, ctx: &StepContext<'_>) -> Result<GraftReport, GraftError> {
    let mut problems = kiln_schema::error::Problems::new();
    step.check_replacements(&JsonPath::root().key("graft"), true, &mut problems);
    problems.finish().map_err(GraftError::Replacements)?;
    let mut pairs = Vec::new();
    for (old, new) in &step.replace {
        for path in [old, new] {
            if Path::new(path).parent() != Some(ctx.store_dir) {
                return Err(GraftError::NotInStore {
                    path: path.clone(),
                    store_dir: ctx.store_dir.to_owned(),
                });
            }
        }
        let (_, old_base) = kiln_schema::split_store_path(old).expect("checked above");
        let (_, new_base) = kiln_schema::split_store_path(new).expect("checked above");
        pairs.push((old_base, new_base));
    }
    let rewriter = Rewriter::new(pairs.iter().copied()).map_err(GraftError::Rewrite)?;
    let hashes = Scanner::new(pairs.iter().map(|(old, _)| &old.as_bytes()[..32]))
        .map_err(GraftError::Rewrite)?;

    let from = ctx.cwd.join(&step.from);
    let to = ctx.cwd.join(&step.to);
    let meta = fs::symlink_metadata(&from).map_err(read_error(&from))?;
    if fs::symlink_metadata(&to).is_ok() {
        return Err(GraftError::Exists { path: to });
    }
    if meta.is_dir() {
        let canonical = fs::canonicalize(&from).map_err(read_error(&from))?;
        if crate::copy::resolve_missing(&to).starts_with(&canonical) {
            return Err(GraftError::IntoItself { from, to });
        }
    }
    if let Some(parent) = to.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(write_error(parent))?;
    }

    let threads = ctx.cores.max(1) as usize;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("kiln-graft-{index}"))
        .build()
        .map_err(|source| GraftError::ThreadPool { threads, source })?;

    let mut report = GraftReport::default();
    let mut jobs = Vec::new();
    let mut links = Vec::new();
    let mut pending = PendingDirs::default();
    let mut copier = Copier {
        rewriter: &rewriter,
        to: &to,
        writer: None,
        primaries: HashMap::new(),
    };
    copier.entry(
        &from,
        &meta,
        Path::new(""),
        &mut Lists {
            report: &mut report,
            jobs: &mut jobs,
            links: &mut links,
            pending: &mut pending,
        },
    )?;

    let counts = pool.install(|| {
        jobs.par_iter()
            .map(|job| graft_file(job, &rewriter))
            .collect::<Result<Vec<usize>, GraftError>>()
    })?;
    report.files = jobs.len();
    report.changed_files = counts.iter().filter(|count| **count > 0).count();
    report.replacements += counts.iter().sum::<usize>();
    for (link, target) in &links {
        match copier.writer.as_mut() {
            Some(writer) => {
                writer.hard_link(link, &to.join(target))?;
            }
            None => unreachable!("hard links are only found inside a directory"),
        }
    }
    report.hard_links = links.len();
    pending.apply()?;

    pool.install(|| rewrite::check_tree(&to, &hashes, &decode))
        .map_err(|error| match error {
            RewriteError::Left(left) => GraftError::Left(left),
            other => GraftError::Rewrite(other),
        })?;
    Ok(report)
}

/// Any compressed format kiln can read, for the check.
fn decode(path: &Path, head: &[u8]) -> Option<(&'static str, Box<dyn Read + Send>)> {
    let name = path
        .file_name()
        .map(OsStr::to_string_lossy)
        .unwrap_or_default();
    let compression = kiln_archive::Compression::detect(head, &name);
    let format = match compression {
        kiln_archive::Compression::None => return None,
        kiln_archive::Compression::Gzip => "gzip",
        kiln_archive::Compression::Bzip2 => "bzip2",
        kiln_archive::Compression::Xz => "xz",
        kiln_archive::Compression::Lzma => "lzma",
        kiln_archive::Compression::Zstd => "zstd",
        _ => "compressed",
    };
    let file = File::open(path).ok()?;
    let reader = compression.decoder(io::BufReader::new(file));
    Some((format, Box::new(reader.take(rewrite::MAX_DECODED))))
}

/// What the walk collects.
struct Lists<'a> {
    report: &'a mut GraftReport,
    jobs: &'a mut Vec<FileJob>,
    /// (link, the file it links to), relative to `to`.
    links: &'a mut Vec<(PathBuf, PathBuf)>,
    pending: &'a mut PendingDirs,
}

/// Creates the copy's directories and symlinks in walk order, and lists its files.
struct Copier<'a> {
    rewriter: &'a Rewriter,
    to: &'a Path,
    /// Writes under `to` once it is a directory.
    writer: Option<TreeWriter>,
    /// (device, inode) of a hard-linked source file → its copy, relative to `to`.
    primaries: HashMap<(u64, u64), PathBuf>,
}

impl Copier<'_> {
    /// Copies the entry `source` (with its `lstat` `meta`) to `relative` under `to` (the empty
    /// path: `to` itself).
    fn entry(
        &mut self,
        source: &Path,
        meta: &Metadata,
        relative: &Path,
        lists: &mut Lists<'_>,
    ) -> Result<(), GraftError> {
        let dest = if relative.as_os_str().is_empty() {
            self.to.to_owned()
        } else {
            self.to.join(relative)
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            match self.writer.as_mut() {
                None => {
                    fs::create_dir(&dest).map_err(|source| exists_or(&dest, source))?;
                    kiln_fsio::set_mode(&dest, 0o700).map_err(write_error(&dest))?;
                    self.writer = Some(TreeWriter::new(dest.clone(), Existing::Refuse, 0o700));
                }
                Some(writer) => {
                    writer.dir(relative, 0o700)?;
                }
            }
            lists.report.directories += 1;
            lists
                .pending
                .push(self.to, relative, Some(kept_mode(meta)), Some(meta.mtime()));
            let names = kiln_fsio::read_dir_sorted(source).map_err(read_error(source))?;
            for name in names {
                let child = source.join(&name);
                let child_meta = fs::symlink_metadata(&child).map_err(read_error(&child))?;
                let (new_name, count) = self.rewrite_bytes(name.as_bytes());
                lists.report.replacements += count;
                let child_relative = relative.join(OsString::from_vec(new_name));
                self.entry(&child, &child_meta, &child_relative, lists)?;
            }
        } else if kind.is_symlink() {
            let target = fs::read_link(source).map_err(read_error(source))?;
            let (new_target, count) = self.rewrite_bytes(target.as_os_str().as_bytes());
            lists.report.replacements += count;
            let new_target = PathBuf::from(OsString::from_vec(new_target));
            match self.writer.as_mut() {
                Some(writer) => {
                    writer.symlink(relative, &new_target)?;
                }
                None => std::os::unix::fs::symlink(&new_target, &dest)
                    .map_err(|source| exists_or(&dest, source))?,
            }
            kiln_fsio::copy_times_nofollow(&dest, meta).map_err(write_error(&dest))?;
            lists.report.symlinks += 1;
        } else if kind.is_file() {
            if meta.nlink() > 1 {
                if let Some(primary) = self.primaries.get(&(meta.dev(), meta.ino())) {
                    lists.links.push((relative.to_owned(), primary.clone()));
                    return Ok(());
                }
                self.primaries
                    .insert((meta.dev(), meta.ino()), relative.to_owned());
            }
            lists.jobs.push(FileJob {
                from: source.to_owned(),
                to: dest,
            });
        } else {
            return Err(GraftError::Unsupported {
                path: source.to_owned(),
            });
        }
        Ok(())
    }

    fn rewrite_bytes(&self, bytes: &[u8]) -> (Vec<u8>, usize) {
        let mut bytes = bytes.to_vec();
        let count = self.rewriter.replace_in(&mut bytes);
        (bytes, count)
    }
}

/// The mode a copy gets: the source's permission bits without setuid and setgid.
fn kept_mode(meta: &Metadata) -> u32 {
    meta.mode() & 0o7777 & !0o6000
}

fn exists_or(path: &Path, source: io::Error) -> GraftError {
    if source.kind() == io::ErrorKind::AlreadyExists {
        GraftError::Exists {
            path: path.to_owned(),
        }
    } else {
        write_error(path)(source)
    }
}

/// Writes one file of the copy, rewritten; returns the occurrences replaced.
fn graft_file(job: &FileJob, rewriter: &Rewriter) -> Result<usize, GraftError> {
    let source = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&job.from)
        .map_err(read_error(&job.from))?;
    let meta = source.metadata().map_err(read_error(&job.from))?;
    if !meta.is_file() {
        return Err(GraftError::Unsupported {
            path: job.from.clone(),
        });
    }
    // The parent is a directory this step created; `create_new` (`O_EXCL`) never follows a
    // symlink at the last component.
    let dest = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&job.to)
        .map_err(|source| exists_or(&job.to, source))?;
    let copy = || -> io::Result<usize> {
        let count = write_contents(&source, meta.len(), &dest, rewriter)?;
        dest.set_permissions(fs::Permissions::from_mode(kept_mode(&meta)))?;
        dest.set_times(
            FileTimes::new()
                .set_accessed(meta.accessed()?)
                .set_modified(meta.modified()?),
        )?;
        Ok(count)
    };
    copy().map_err(|source| GraftError::Copy {
        from: job.from.clone(),
        to: job.to.clone(),
        source,
    })
}

/// Writes the contents of `source` (`len` bytes) rewritten to `dest`: a gzip file holding a
/// pattern recompressed, anything else data segment by data segment, holes left as holes.
fn write_contents(source: &File, len: u64, dest: &File, rewriter: &Rewriter) -> io::Result<usize> {
    let mut head = [0u8; 2];
    let read = kiln_fsio::read_full(&mut FileRange::new(source, 0..2), &mut head)?;
    if rewrite::is_gzip(&head[..read]) {
        let mut out = BufWriter::with_capacity(rewrite::CHUNK, dest);
        if let Some(count) = rewriter.rewrite_gzip(source, &mut out)? {
            out.flush()?;
            return Ok(count);
        }
    }
    let mut count = 0;
    for segment in kiln_fsio::data_segments(source, len)? {
        let start = segment.start;
        let mut reader = FileRange::new(source, segment);
        count += rewriter.rewrite_stream(&mut reader, start, &mut |chunk, offset, _| {
            dest.write_all_at(chunk, offset)
        })?;
    }
    dest.set_len(len)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    use super::*;

    const OLD_BASE: &str = "0c5gwrxsxp9qhdnyqv2qbs4b5m2hzi2w-zlib-1.3.1";
    const NEW_BASE: &str = "1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3.2";
    const STORE: &str = "/nix/store";

    fn old() -> String {
        format!("{STORE}/{OLD_BASE}")
    }

    fn new() -> String {
        format!("{STORE}/{NEW_BASE}")
    }

    fn step(from: &Path, to: &Path) -> GraftStep {
        GraftStep {
            from: from.display().to_string(),
            to: to.display().to_string(),
            replace: BTreeMap::from([(old(), new())]),
        }
    }

    fn run_in(dir: &Path, step: &GraftStep) -> Result<StepEffects, StepError> {
        let (env, outputs) = (BTreeMap::new(), BTreeMap::new());
        let ctx = StepContext {
            cwd: dir,
            env: &env,
            cores: 2,
            store_dir: Path::new(STORE),
            outputs: &outputs,
            build_top: dir,
            inputs: &[],
        };
        run(step, &ctx)
    }

    fn write(path: &Path, contents: impl AsRef<[u8]>, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        flate2_free_gunzip(bytes, &mut text);
        text
    }

    /// gzip decompression through kiln-archive's decoder (no direct flate2 dependency here).
    fn flate2_free_gunzip(bytes: &[u8], text: &mut String) {
        kiln_archive::Compression::Gzip
            .decoder(bytes)
            .read_to_string(text)
            .unwrap();
    }

    #[test]
    fn grafts_contents_gzip_links_names_hard_links_sparse_files_and_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("app");
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let (old, new) = (old(), new());

        // A binary: NULs, the path twice (once straddling the 1 MiB chunk boundary), and a
        // relative reference by base name.
        let mut binary = b"\x7fELF\0\0\x01".to_vec();
        binary.extend_from_slice(format!("{old}/lib\0").as_bytes());
        binary.resize(rewrite::CHUNK - 20, 0xAA);
        binary.extend_from_slice(format!("{old}/lib/libz.so.1\0").as_bytes());
        binary.extend_from_slice(format!("../{OLD_BASE}/share\0").as_bytes());
        write(&from.join("bin/app"), &binary, 0o755);
        write(&from.join("bin/suid"), "setuid", 0o4755);
        write(
            &from.join("share/doc/readme.txt"),
            format!("linked against {old}\n"),
            0o444,
        );
        let page = format!(".TH APP 1\nsee {old}/share/man\n");
        write(
            &from.join("share/man/man1/app.1.gz"),
            kiln_fixup::man::gzip_bytes(page.as_bytes()),
            0o444,
        );
        symlink(format!("{old}/lib/libz.so.1"), from.join("libz-link")).unwrap();
        write(&from.join(format!("etc/{OLD_BASE}.conf")), "conf", 0o444);
        write(&from.join(format!("{OLD_BASE}-data/file")), "data", 0o444);
        // A hard-linked pair.
        write(&from.join("lib/one"), format!("a {old} b"), 0o444);
        fs::hard_link(from.join("lib/one"), from.join("lib/two")).unwrap();
        // A sparse file: 64 MiB, the path in the middle.
        let sparse = from.join("data/sparse");
        fs::create_dir_all(sparse.parent().unwrap()).unwrap();
        let file = File::create(&sparse).unwrap();
        file.write_all_at(old.as_bytes(), 32 << 20).unwrap();
        file.set_len(64 << 20).unwrap();
        drop(file);
        // Symlinks that point outside `from`: copied, never followed.
        symlink(&outside, from.join("escape-dir")).unwrap();
        symlink("../../../../../etc/passwd", from.join("escape-file")).unwrap();

        let to = tmp.path().join("out/app");
        let effects = run_in(tmp.path(), &step(&from, &to)).unwrap();
        let (_, message) = &effects.messages[0];
        assert!(
            message.starts_with("grafted 8 files, 10 replacements"),
            "{message}"
        );

        let copy = fs::read(to.join("bin/app")).unwrap();
        let mut expected = binary.clone();
        kiln_fixup::rewrite::Rewriter::new([(OLD_BASE, NEW_BASE)])
            .unwrap()
            .replace_in(&mut expected);
        assert!(copy == expected, "the binary is rewritten in place");
        assert!(
            copy.windows(new.len())
                .filter(|w| *w == new.as_bytes())
                .count()
                == 2
        );
        assert_eq!(mode(&to.join("bin/app")), 0o755);
        assert_eq!(mode(&to.join("bin/suid")), 0o755, "setuid is dropped");
        assert_eq!(
            fs::read_to_string(to.join("share/doc/readme.txt")).unwrap(),
            format!("linked against {new}\n")
        );
        assert_eq!(mode(&to.join("share/doc/readme.txt")), 0o444);
        let page_copy = fs::read(to.join("share/man/man1/app.1.gz")).unwrap();
        assert_eq!(gunzip(&page_copy), page.replace(&old, &new));
        assert_eq!(
            fs::read_link(to.join("libz-link")).unwrap(),
            PathBuf::from(format!("{new}/lib/libz.so.1"))
        );
        assert_eq!(
            fs::read_to_string(to.join(format!("etc/{NEW_BASE}.conf"))).unwrap(),
            "conf"
        );
        assert!(to.join(format!("{NEW_BASE}-data/file")).is_file());
        assert!(!to.join(format!("{OLD_BASE}-data")).exists());

        let (one, two) = (
            fs::metadata(to.join("lib/one")).unwrap(),
            fs::metadata(to.join("lib/two")).unwrap(),
        );
        assert_eq!(one.ino(), two.ino(), "still one inode");
        assert_eq!(one.nlink(), 2);
        assert_eq!(
            fs::read_to_string(to.join("lib/two")).unwrap(),
            format!("a {new} b")
        );

        let (source, copied) = (
            fs::metadata(&sparse).unwrap(),
            fs::metadata(to.join("data/sparse")).unwrap(),
        );
        assert_eq!(copied.len(), 64 << 20);
        assert!(
            copied.blocks() <= source.blocks() && copied.blocks() < 1024,
            "holes stay holes: {} blocks, source {}",
            copied.blocks(),
            source.blocks()
        );
        let sparse_copy = File::open(to.join("data/sparse")).unwrap();
        let mut found = vec![0u8; new.len()];
        sparse_copy.read_exact_at(&mut found, 32 << 20).unwrap();
        assert_eq!(found, new.as_bytes());

        assert_eq!(fs::read_link(to.join("escape-dir")).unwrap(), outside);
        assert!(fs::symlink_metadata(to.join("escape-dir"))
            .unwrap()
            .is_symlink());
        assert_eq!(
            fs::read_link(to.join("escape-file")).unwrap(),
            PathBuf::from("../../../../../etc/passwd")
        );
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_single_file_and_a_symlink_are_grafted_too() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            &tmp.path().join("script"),
            format!("#!{}/bin/sh\n", old()),
            0o555,
        );
        symlink(old(), tmp.path().join("link")).unwrap();
        run_in(
            tmp.path(),
            &step(Path::new("script"), Path::new("o/script")),
        )
        .unwrap();
        run_in(tmp.path(), &step(Path::new("link"), Path::new("o/link"))).unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("o/script")).unwrap(),
            format!("#!{}/bin/sh\n", new())
        );
        assert_eq!(mode(&tmp.path().join("o/script")), 0o555);
        assert_eq!(
            fs::read_link(tmp.path().join("o/link")).unwrap(),
            PathBuf::from(new())
        );
        // The destination must not exist.
        let error = run_in(
            tmp.path(),
            &step(Path::new("script"), Path::new("o/script")),
        )
        .unwrap_err();
        assert!(
            matches!(error, StepError::Graft(GraftError::Exists { .. })),
            "{error}"
        );
    }

    #[test]
    fn an_old_path_inside_an_xz_file_fails_the_check_with_file_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("app");
        // Compressible, so the path is not in the xz stream as it is.
        let text = format!("prefix {}/lib\n", old()).repeat(100);
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(text.as_bytes(), 6)
            .read_to_end(&mut xz)
            .unwrap();
        assert!(!xz.windows(32).any(|w| w == &OLD_BASE.as_bytes()[..32]));
        write(&from.join("share/data.xz"), &xz, 0o444);
        let error = run_in(tmp.path(), &step(&from, &tmp.path().join("out"))).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("share/data.xz` still holds `0c5gwrxsxp9qhdnyqv2qbs4b5m2hzi2w` at byte 18 of its xz-decompressed contents"),
            "{message}"
        );
        assert!(
            error.hint().unwrap().contains("not xz"),
            "{:?}",
            error.hint()
        );

        // A bare hash (no name after it) is not rewritten, and found at its offset.
        let from = tmp.path().join("bare");
        write(&from.join("f"), format!("hash={}", &OLD_BASE[..32]), 0o444);
        let error = run_in(tmp.path(), &step(&from, &tmp.path().join("out2"))).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("/out2/f` still holds `0c5gwrxsxp9qhdnyqv2qbs4b5m2hzi2w` at byte 5"),
            "{error}"
        );
    }

    #[test]
    fn a_length_mismatch_is_refused_when_the_plan_is_loaded() {
        let longer = format!("{STORE}/1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3.10");
        let text = format!(
            r#"{{"version":1,"name":"g","phases":[{{"name":"graft","steps":[
                {{"graft":{{"from":"/nix/store/0c5gwrxsxp9qhdnyqv2qbs4b5m2hzi2w-app","to":"${{outputs.out}}",
                "replace":{{"{}":"{}"}}}}}}]}}]}}"#,
            old(),
            longer
        );
        let plan = kiln_schema::plan_from_str(&text).unwrap();
        let errors = kiln_schema::validate(&plan).unwrap_err();
        let message = errors.to_string();
        assert_eq!(
            message,
            format!(
                "at `phases[0].steps[0].graft.replace[\"{}\"]` (phase `graft`, step 1): `{longer}` \
                 (55 characters) cannot \
                 replace `{}` (54 characters): a graft keeps every path's length, so remove 1 \
                 character from the new path's name",
                old(),
                old()
            )
        );
        assert!(errors.0[0].hint().unwrap().contains("same length"));
        // And again when the step runs (a new path may be a reference resolved only then).
        let tmp = tempfile::tempdir().unwrap();
        let mut graft = step(tmp.path(), &tmp.path().join("out"));
        graft.replace = BTreeMap::from([(old(), longer)]);
        let error = run_in(tmp.path(), &graft).unwrap_err();
        assert!(error.to_string().contains("remove 1 character"), "{error}");
        assert!(!tmp.path().join("out").exists());
    }
}
