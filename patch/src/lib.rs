//! kiln's patcher: applies unified diffs to a source tree in process, replacing nixpkgs stdenv's
//! `patchPhase` and its `patch -p1 < file`.
//!
//! [`apply_patch_file`] reads a patch (plain, or gzip/bzip2/xz/zstd-compressed, told by its first
//! bytes), parses every file's diff (classic `---`/`+++` and `diff --git`, created and deleted
//! files, renames, copies, mode changes, `\ No newline at end of file`), strips `-pN` leading
//! path components, and places each hunk as GNU patch does by default: at the stated line, else
//! at the nearest offset, else with fuzz up to 2 (see the `apply` module). All files of a patch
//! are patched in memory first; only when every hunk of every file fits are the results written,
//! each atomically (a temporary file renamed over the old one, keeping its mode). A failing hunk
//! therefore leaves the whole tree untouched. [`read_quilt_series`] reads Debian's
//! `debian/patches/series`, and [`read_quilt_series_under`] reads it from a patches directory
//! named relative to the source tree.
//!
//! # Hostile input
//!
//! Patches and the source tree are both treated as hostile:
//!
//! - Every path a patch names (read, patched, created, renamed or copied to, deleted) must be
//!   relative and free of `..`, and is resolved under the root one component at a time without
//!   following any symlink, wherever it points — kiln-archive's unpacking rule. A file that is
//!   itself a symlink is neither read, written through, replaced nor deleted. See the `tree`
//!   module; the errors are [`PatchError::ThroughSymlink`] and [`PatchError::NotRegularFile`],
//!   naming the patch and the line of the header that named the path.
//! - The patch file is the caller's, trusted like the plan naming it: symlinks to it are
//!   followed. It must be a regular file, checked before it is opened and again after
//!   ([`PatchError::PatchNotRegular`]): a FIFO would block the build, a device never end.
//! - A quilt series and its patches are not the caller's: [`read_quilt_series`] resolves each
//!   patch it names inside the patches directory by the tree's rule (relative, no `..`, no
//!   symlink on the way or at the end, a regular file), and opens `series` the same way
//!   ([`PatchError::SeriesEntry`], [`PatchError::SeriesNotRegular`], naming the series and the
//!   line). [`read_quilt_series_under`] also reaches the patches directory from the source
//!   tree's root without following a symlink ([`PatchError::SeriesThroughSymlink`]), so a tree
//!   whose `debian` is a symlink cannot hand out a series from elsewhere.
//! - Modes from git headers (`new file mode`, `new mode`) give the permission bits `0o777`
//!   only, never setuid, setgid or sticky. Only regular files are made: a mode that makes a
//!   symlink (`120000`) or a submodule (`160000`) is refused ([`PatchError::UnsupportedMode`]),
//!   so a patch never creates a symlink, in the tree or among the patches of a series.
//! - A patch is read into memory whole, but never more than [`MAX_PATCH_SIZE`] bytes of it once
//!   decompressed ([`PatchError::TooLarge`]), so a small compressed "bomb" cannot take all memory.
//!   The parse copies none of the text (see the `parse` module).
//! - Malformed input is an error, never a panic.
//!
//! Errors are [`PatchError`]s naming the patch, the file and, for a hunk that does not fit, its
//! number and header.
//!
//! # Example
//!
//! ```
//! use kiln_patch::{apply_patch_file, PatchOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scratch = tempfile::tempdir()?;
//! let tree = scratch.path().join("hello-1.0");
//! std::fs::create_dir(&tree)?;
//! std::fs::write(tree.join("greeting"), "hello\nworld\n")?;
//! let patch = scratch.path().join("fix.patch");
//! std::fs::write(&patch, "--- a/greeting\n+++ b/greeting\n@@ -1,2 +1,2 @@\n-hello\n+goodbye\n world\n")?;
//!
//! let report = apply_patch_file(&patch, &tree, &PatchOptions::default())?;
//! assert_eq!(std::fs::read_to_string(tree.join("greeting"))?, "goodbye\nworld\n");
//! assert_eq!(report.files[0].hunks[0].offset, 0);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod apply;
mod error;
mod parse;
mod series;
mod tree;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};

pub use error::{FileKind, PatchError, SeriesRefusal};
pub use series::{read_quilt_series, read_quilt_series_under};

use parse::FilePatch;
use tree::{Refusal, Tree};

/// The most a patch may hold once decompressed, in bytes: 64 MiB.
///
/// Patches are text; the largest in Debian's archive are a few MiB. The limit is checked while
/// reading, so a patch that inflates past it costs at most this much memory before it is
/// refused with [`PatchError::TooLarge`].
pub const MAX_PATCH_SIZE: u64 = 64 * 1024 * 1024;

/// How to apply a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOptions {
    /// Leading path components to strip from the names in the patch (`patch -pN`); default 1.
    pub strip: usize,
}

impl Default for PatchOptions {
    fn default() -> Self {
        PatchOptions { strip: 1 }
    }
}

/// What a patch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchReport {
    /// One entry per file diff in the patch, in patch order.
    pub files: Vec<FileReport>,
}

/// What a patch did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file, relative to the tree (after stripping).
    pub path: PathBuf,
    /// How the file changed.
    pub change: FileChange,
    /// Where each hunk went.
    pub hunks: Vec<HunkReport>,
}

/// How a file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileChange {
    /// An existing file was patched (or only its mode changed).
    Modified,
    /// The file was created.
    Created,
    /// The file was deleted.
    Deleted,
    /// The file was renamed from this path (and maybe patched).
    Renamed {
        /// The old path, relative to the tree.
        from: PathBuf,
    },
    /// The file was copied from this path (and maybe patched).
    Copied {
        /// The source path, relative to the tree.
        from: PathBuf,
    },
}

/// Where one hunk was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HunkReport {
    /// The hunk's 1-based number within its file.
    pub number: usize,
    /// The 1-based line of the old file where it was applied.
    pub line: usize,
    /// Lines between where the patch said and where it applied (GNU: "offset N lines").
    pub offset: isize,
    /// Context lines ignored to make it fit (GNU: "with fuzz N").
    pub fuzz: usize,
}

/// Applies the patch file `patch` to the tree at `root`; see the crate documentation.
///
/// `patch` must be a regular file ([`PatchError::PatchNotRegular`] otherwise): a FIFO, a
/// device or a directory is refused before anything is read from it. `patch` is the caller's
/// and is trusted like the plan that names it: symlinks on its path, its last component
/// included, are followed (a `result` link to a store path works); what they lead to must be a
/// regular file. Patches named by a quilt series are confined to their directory by
/// [`read_quilt_series`] instead. At most [`MAX_PATCH_SIZE`] bytes of the (decompressed) patch
/// are read.
pub fn apply_patch_file(
    patch: &Path,
    root: &Path,
    options: &PatchOptions,
) -> Result<PatchReport, PatchError> {
    let read_error = |source| PatchError::Read {
        patch: patch.to_owned(),
        source,
    };
    let file = tree::open_regular(patch).map_err(|refusal| match refusal {
        Refusal::NotRegular(kind) => PatchError::PatchNotRegular {
            patch: patch.to_owned(),
            kind,
        },
        Refusal::Io { source, .. } => read_error(source),
        // `open_regular` walks no tree.
        Refusal::ThroughSymlink(_) | Refusal::NotADirectory(_) => {
            read_error(std::io::ErrorKind::InvalidInput.into())
        }
    })?;
    // What kiln_archive::open_decompressed does, from the file already checked.
    let mut buffered = BufReader::with_capacity(128 * 1024, file);
    let head = buffered.fill_buf().map_err(read_error)?;
    let name = patch
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reader = kiln_archive::Compression::detect(head, &name).decoder(buffered);
    let mut text = Vec::new();
    // One byte more than allowed tells a patch of exactly the limit from a larger one.
    reader
        .take(MAX_PATCH_SIZE + 1)
        .read_to_end(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_PATCH_SIZE {
        return Err(PatchError::TooLarge {
            patch: patch.to_owned(),
            limit: MAX_PATCH_SIZE,
        });
    }
    apply_patch(&text, patch, root, options)
}

/// Applies the unified diff `text` to the tree at `root`; `patch` names it in errors.
///
/// A `text` longer than [`MAX_PATCH_SIZE`] is refused.
pub fn apply_patch(
    text: &[u8],
    patch: &Path,
    root: &Path,
    options: &PatchOptions,
) -> Result<PatchReport, PatchError> {
    let files = parse::parse(text, patch)?;
    if files.is_empty() {
        return Err(PatchError::Empty {
            patch: patch.to_owned(),
        });
    }
    let tree = Tree::open(root).map_err(|source| PatchError::OpenTree {
        root: root.to_owned(),
        source,
    })?;
    let mut plan = PatchPlan {
        patch,
        tree,
        strip: options.strip,
        files: BTreeMap::new(),
        order: Vec::new(),
    };
    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        reports.push(plan.file(file)?);
    }
    plan.write()?;
    Ok(PatchReport { files: reports })
}

/// The planned state of one file: its new content (`None`: deleted) and mode.
#[derive(Debug, Clone)]
struct Planned {
    content: Option<Vec<u8>>,
    mode: Option<u32>,
    /// The line of the patch header that last named the file, for errors while writing.
    line: usize,
}

/// All files a patch touches, patched in memory.
struct PatchPlan<'a> {
    patch: &'a Path,
    tree: Tree,
    strip: usize,
    files: BTreeMap<PathBuf, Planned>,
    /// Paths in the order first touched, so results are written in patch order.
    order: Vec<PathBuf>,
}

impl PatchPlan<'_> {
    /// A name from the patch (on header line `line`), stripped and checked; `None` stays `None`
    /// (`/dev/null`).
    fn name(&self, name: Option<&str>, line: usize) -> Result<Option<PathBuf>, PatchError> {
        let Some(name) = name else {
            return Ok(None);
        };
        // GNU patch: -pN removes the smallest prefix holding N slashes, runs of slashes
        // counting as one.
        let mut rest = name;
        for _ in 0..self.strip {
            let Some(slash) = rest.find('/') else {
                return Err(PatchError::StripTooFar {
                    patch: self.patch.to_owned(),
                    line,
                    name: name.to_owned(),
                    strip: self.strip,
                });
            };
            rest = rest[slash + 1..].trim_start_matches('/');
        }
        match tree::relative(Path::new(rest)) {
            Some(relative) if !relative.as_os_str().is_empty() => Ok(Some(relative)),
            _ => Err(PatchError::UnsafePath {
                patch: self.patch.to_owned(),
                line,
                path: PathBuf::from(rest),
            }),
        }
    }

    /// The error for a path the tree refused; `writing` tells which I/O error it was.
    fn refused(&self, file: &Path, line: usize, refusal: Refusal, writing: bool) -> PatchError {
        let patch = self.patch.to_owned();
        let file = file.to_owned();
        match refusal {
            Refusal::ThroughSymlink(link) => PatchError::ThroughSymlink {
                patch,
                line,
                file,
                link,
            },
            Refusal::NotADirectory(parent) => PatchError::NotADirectory {
                patch,
                line,
                file,
                parent,
            },
            Refusal::NotRegular(kind) => PatchError::NotRegularFile {
                patch,
                line,
                file,
                kind,
            },
            Refusal::Io { path, source } if writing => PatchError::WriteFile { path, source },
            Refusal::Io { path, source } => PatchError::ReadFile { path, source },
        }
    }

    /// The current content of `path` (named on header line `line`): planned, or read from the
    /// tree; `None` if it does not exist. Whatever is on the way must be a real directory and
    /// the file a regular file.
    fn current(&self, path: &Path, line: usize) -> Result<Option<Planned>, PatchError> {
        self.check_planned_shape(path, line)?;
        if let Some(planned) = self.files.get(path) {
            return Ok(planned.content.is_some().then(|| planned.clone()));
        }
        let existing = self
            .tree
            .read(path)
            .map_err(|refusal| self.refused(path, line, refusal, false))?;
        Ok(existing.map(|existing| Planned {
            content: Some(existing.content),
            mode: Some(existing.mode),
            line,
        }))
    }

    /// Refuses `path` when the files planned so far make it impossible to write: a planned
    /// file on its way (the patch made `dir` a file, then names `dir/x`), or planned files
    /// under it (the patch made `dir/x`, then names `dir` as a file). The tree alone cannot
    /// tell, as neither exists there yet; found while planning, nothing has been written.
    fn check_planned_shape(&self, path: &Path, line: usize) -> Result<(), PatchError> {
        let planned_file = |path: &Path| self.files.get(path).is_some_and(|p| p.content.is_some());
        if let Some(parent) = path.ancestors().skip(1).find(|a| planned_file(a)) {
            return Err(PatchError::NotADirectory {
                patch: self.patch.to_owned(),
                line,
                file: path.to_owned(),
                parent: parent.to_owned(),
            });
        }
        // Paths order component by component, so everything under `path` follows it.
        let has_planned_child = self
            .files
            .range(path.to_path_buf()..)
            .skip_while(|(planned, _)| *planned == path)
            .take_while(|(planned, _)| planned.starts_with(path))
            .any(|(_, planned)| planned.content.is_some());
        if has_planned_child {
            return Err(PatchError::NotRegularFile {
                patch: self.patch.to_owned(),
                line,
                file: path.to_owned(),
                kind: FileKind::Directory,
            });
        }
        Ok(())
    }

    fn set(&mut self, path: PathBuf, planned: Planned) {
        if !self.files.contains_key(&path) {
            self.order.push(path.clone());
        }
        self.files.insert(path, planned);
    }

    /// Patches one file's diff in memory.
    fn file(&mut self, file: &FilePatch<'_>) -> Result<FileReport, PatchError> {
        let old = self.name(file.old.as_deref(), file.old_line)?;
        let new = self.name(file.new.as_deref(), file.new_line)?;
        let git = file.git.clone().unwrap_or_default();
        if git.binary {
            return Err(PatchError::Binary {
                patch: self.patch.to_owned(),
                line: file.line,
                file: new.clone().or_else(|| old.clone()).unwrap_or_default(),
            });
        }
        // Only regular files are made: not a symlink (`120000`), a submodule (`160000`), ...
        for mode in [git.new_file_mode, git.new_mode].into_iter().flatten() {
            if !error::is_regular_mode(mode.mode) {
                return Err(PatchError::UnsupportedMode {
                    patch: self.patch.to_owned(),
                    line: mode.line,
                    file: new.clone().or_else(|| old.clone()).unwrap_or_default(),
                    mode: mode.mode,
                });
            }
        }

        let (path, line, source, change) = match (&old, &new) {
            (None, Some(new)) => (new.clone(), file.new_line, None, FileChange::Created),
            (Some(old), None) => (
                old.clone(),
                file.old_line,
                Some(old.clone()),
                FileChange::Deleted,
            ),
            // A rename or copy onto itself changes nothing but the content, as GNU patch and
            // `git apply` treat it: it is a modification (marking the source as deleted would
            // delete the file).
            (Some(old), Some(new)) if (git.rename || git.copy) && old != new => {
                let change = if git.rename {
                    FileChange::Renamed { from: old.clone() }
                } else {
                    FileChange::Copied { from: old.clone() }
                };
                (new.clone(), file.new_line, Some(old.clone()), change)
            }
            (Some(old), Some(new)) => {
                let (path, line) = self.choose(old, new, file)?;
                (path.clone(), line, Some(path), FileChange::Modified)
            }
            (None, None) => {
                // `parse` never yields a diff without names; refuse rather than guess.
                return Err(PatchError::Parse {
                    patch: self.patch.to_owned(),
                    line: file.line,
                    message: "a diff that names no file".to_owned(),
                });
            }
        };
        let source_line = if matches!(change, FileChange::Modified) {
            line
        } else {
            file.old_line
        };
        let current =
            match &source {
                Some(source) => Some(self.current(source, source_line)?.ok_or_else(|| {
                    PatchError::MissingFile {
                        patch: self.patch.to_owned(),
                        line: source_line,
                        file: source.clone(),
                    }
                })?),
                None => None,
            };
        match &change {
            // Creating: an existing empty file is fine, as for GNU patch.
            FileChange::Created => match self.current(&path, line)? {
                Some(existing) if existing.content.as_ref().is_some_and(|c| !c.is_empty()) => {
                    return Err(PatchError::FileExists {
                        patch: self.patch.to_owned(),
                        line,
                        file: path,
                    })
                }
                _ => {}
            },
            // The destination of a rename or copy: resolved like any other path, so that it
            // is refused when it is reached through a symlink or is not a regular file. An
            // existing regular file is replaced.
            FileChange::Renamed { .. } | FileChange::Copied { .. } => {
                self.current(&path, line)?;
            }
            FileChange::Modified | FileChange::Deleted => {}
        }
        let content = current
            .as_ref()
            .and_then(|current| current.content.as_deref())
            .unwrap_or_default();
        let (patched, applied) =
            apply::apply_hunks(content, &file.hunks).map_err(|index| PatchError::HunkFailed {
                patch: self.patch.to_owned(),
                file: source.clone().unwrap_or_else(|| path.clone()),
                number: index + 1,
                header: file
                    .hunks
                    .get(index)
                    .map(|hunk| hunk.header.clone())
                    .unwrap_or_default(),
            })?;
        let hunks = applied
            .iter()
            .enumerate()
            .map(|(index, applied)| HunkReport {
                number: index + 1,
                line: applied.placement.position + 1,
                offset: applied.placement.position as isize - applied.stated as isize,
                fuzz: applied.placement.fuzz,
            })
            .collect();

        // A mode from the patch gives permission bits only: never setuid, setgid or sticky
        // (kiln-archive and state restore mask the same way). An existing file keeps its mode.
        let mode = git
            .new_mode
            .or(git.new_file_mode)
            .map(|mode| mode.mode & 0o777)
            .or_else(|| current.as_ref().and_then(|current| current.mode));
        if change == FileChange::Deleted && patched.is_empty() {
            self.set(
                path.clone(),
                Planned {
                    content: None,
                    mode,
                    line,
                },
            );
        } else {
            // GNU patch keeps a "deleted" file whose content was not all removed; so do we.
            self.set(
                path.clone(),
                Planned {
                    content: Some(patched),
                    mode,
                    line,
                },
            );
            if let FileChange::Renamed { from } = &change {
                self.set(
                    from.clone(),
                    Planned {
                        content: None,
                        mode: None,
                        line: file.old_line,
                    },
                );
            }
        }
        Ok(FileReport {
            path,
            change,
            hunks,
        })
    }

    /// Which existing file a plain diff patches, and the line of the header naming it: GNU
    /// patch's choice among the old and new names — the existing one with the fewest
    /// components, then the shortest base name, then the shortest name; the old name on a tie.
    /// A missing file is created only when every hunk adds to nothing.
    fn choose(
        &self,
        old: &Path,
        new: &Path,
        file: &FilePatch<'_>,
    ) -> Result<(PathBuf, usize), PatchError> {
        let mut candidates: Vec<(&Path, usize)> = Vec::new();
        for (name, line) in [(old, file.old_line), (new, file.new_line)] {
            if self.current(name, line)?.is_some()
                && !candidates.iter().any(|(seen, _)| *seen == name)
            {
                candidates.push((name, line));
            }
        }
        let key = |(path, _): &(&Path, usize)| {
            (
                path.components().count(),
                path.file_name().map_or(0, |name| name.len()),
                path.as_os_str().len(),
            )
        };
        if let Some((best, line)) = candidates.into_iter().min_by_key(key) {
            return Ok((best.to_path_buf(), line));
        }
        if file.hunks.iter().all(|hunk| hunk.old.is_empty()) {
            return Ok((new.to_owned(), file.new_line));
        }
        Err(PatchError::MissingFile {
            patch: self.patch.to_owned(),
            line: file.old_line,
            file: old.to_owned(),
        })
    }

    /// Writes every planned file, each atomically, through the tree (which refuses again any
    /// symlink that appeared since planning).
    fn write(self) -> Result<(), PatchError> {
        for path in &self.order {
            let Some(planned) = self.files.get(path) else {
                continue;
            };
            let result = match &planned.content {
                None => self.tree.remove(path),
                Some(content) => self
                    .tree
                    .write(path, content, planned.mode.unwrap_or(0o644)),
            };
            result.map_err(|refusal| self.refused(path, planned.line, refusal, true))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::{Path, PathBuf};

    use super::*;

    /// A tree in a temporary directory, with files given as (path, content).
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join("src").join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn read(dir: &tempfile::TempDir, path: &str) -> String {
        fs::read_to_string(dir.path().join("src").join(path)).unwrap()
    }

    fn numbered(count: usize) -> String {
        (1..=count).map(|line| format!("line {line}\n")).collect()
    }

    /// Writes `text` as a patch next to the tree and applies it to `<dir>/src`.
    fn apply(
        dir: &tempfile::TempDir,
        name: &str,
        text: &str,
        strip: usize,
    ) -> Result<PatchReport, PatchError> {
        let patch = dir.path().join(name);
        fs::write(&patch, text).unwrap();
        apply_patch_file(&patch, &dir.path().join("src"), &PatchOptions { strip })
    }

    fn hunk(number: usize, line: usize, offset: isize, fuzz: usize) -> HunkReport {
        HunkReport {
            number,
            line,
            offset,
            fuzz,
        }
    }

    const MULTI: &str = "\
Description: several files at once
Author: someone
---
 src/main.c | 3 ++-

--- a/main.c\t2024-01-01 00:00:00.000000000 +0000
+++ b/main.c\t2024-01-02 00:00:00.000000000 +0000
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
@@ -8,4 +8,5 @@
 line 8
 line 9
+line 9.5
 line 10
 line 11
--- /dev/null
+++ b/doc/NEWS
@@ -0,0 +1,2 @@
+news
+more news
--- a/obsolete.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-old
-stuff
";

    #[test]
    fn multi_file_patch_with_offsets_creations_and_deletions() {
        // Two lines were added at the top since the patch was made: every hunk is 2 lines lower.
        let main = format!("new 1\nnew 2\n{}", numbered(12));
        let dir = tree(&[("main.c", &main), ("obsolete.txt", "old\nstuff\n")]);
        let report = apply(&dir, "multi.patch", MULTI, 1).unwrap();
        assert_eq!(
            report,
            PatchReport {
                files: vec![
                    FileReport {
                        path: PathBuf::from("main.c"),
                        change: FileChange::Modified,
                        hunks: vec![hunk(1, 4, 2, 0), hunk(2, 10, 2, 0)],
                    },
                    FileReport {
                        path: PathBuf::from("doc/NEWS"),
                        change: FileChange::Created,
                        hunks: vec![hunk(1, 1, 0, 0)],
                    },
                    FileReport {
                        path: PathBuf::from("obsolete.txt"),
                        change: FileChange::Deleted,
                        hunks: vec![hunk(1, 1, 0, 0)],
                    },
                ],
            }
        );
        let expected = format!("new 1\nnew 2\n{}", numbered(12))
            .replace("line 3\n", "line three\n")
            .replace("line 9\n", "line 9\nline 9.5\n");
        assert_eq!(read(&dir, "main.c"), expected);
        assert_eq!(read(&dir, "doc/NEWS"), "news\nmore news\n");
        assert!(!dir.path().join("src/obsolete.txt").exists());
    }

    #[test]
    fn no_newline_at_end_of_file() {
        let dir = tree(&[("a.txt", "one\ntwo"), ("b.txt", "x\ny\n")]);
        let patch = "\
--- a/a.txt
+++ b/a.txt
@@ -1,2 +1,2 @@
 one
-two
\\ No newline at end of file
+TWO
--- a/b.txt
+++ b/b.txt
@@ -1,2 +1,2 @@
 x
-y
+y without newline
\\ No newline at end of file
";
        apply(&dir, "eol.patch", patch, 1).unwrap();
        assert_eq!(read(&dir, "a.txt"), "one\nTWO\n");
        assert_eq!(read(&dir, "b.txt"), "x\ny without newline");
    }

    #[test]
    fn git_patches_create_rename_and_change_modes() {
        let dir = tree(&[("old-name.sh", "echo old\n"), ("run", "#!/bin/sh\n")]);
        let patch = "\
From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH] git things

diff --git a/tool.sh b/tool.sh
new file mode 100755
index 0000000..1111111
--- /dev/null
+++ b/tool.sh
@@ -0,0 +1,2 @@
+#!/bin/sh
+echo tool
diff --git a/old-name.sh b/new-name.sh
similarity index 50%
rename from old-name.sh
rename to new-name.sh
index 2222222..3333333 100644
--- a/old-name.sh
+++ b/new-name.sh
@@ -1 +1 @@
-echo old
+echo new
diff --git a/run b/run
old mode 100644
new mode 100755
-- 
2.39.2
";
        let report = apply(&dir, "0001-git.patch", patch, 1).unwrap();
        let changes: Vec<_> = report
            .files
            .iter()
            .map(|file| file.change.clone())
            .collect();
        assert_eq!(
            changes,
            vec![
                FileChange::Created,
                FileChange::Renamed {
                    from: PathBuf::from("old-name.sh")
                },
                FileChange::Modified,
            ]
        );
        let mode = |path: &str| {
            fs::metadata(dir.path().join("src").join(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(read(&dir, "tool.sh"), "#!/bin/sh\necho tool\n");
        assert_eq!(mode("tool.sh"), 0o755);
        assert_eq!(read(&dir, "new-name.sh"), "echo new\n");
        assert!(!dir.path().join("src/old-name.sh").exists());
        assert_eq!(mode("run"), 0o755);
        assert_eq!(read(&dir, "run"), "#!/bin/sh\n");
    }

    #[test]
    fn compressed_patch_by_content() {
        let dir = tree(&[("main.c", &numbered(12)), ("obsolete.txt", "old\nstuff\n")]);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(MULTI.as_bytes()).unwrap();
        let patch = dir.path().join("multi.patch.gz");
        fs::write(&patch, encoder.finish().unwrap()).unwrap();
        let report =
            apply_patch_file(&patch, &dir.path().join("src"), &PatchOptions::default()).unwrap();
        assert_eq!(report.files.len(), 3);
        assert!(read(&dir, "main.c").contains("line three\n"));
    }

    #[test]
    fn fuzz_when_context_changed() {
        let dir = tree(&[("f", &numbered(10).replace("line 2\n", "line two\n"))]);
        let patch = "--- a/f\n+++ b/f\n@@ -2,5 +2,5 @@\n line 2\n line 3\n-line 4\n+LINE 4\n line 5\n line 6\n";
        let report = apply(&dir, "fuzz.patch", patch, 1).unwrap();
        assert_eq!(report.files[0].hunks, vec![hunk(1, 2, 0, 1)]);
        assert!(read(&dir, "f").starts_with("line 1\nline two\nline 3\nLINE 4\n"));
    }

    #[test]
    fn failing_hunk_changes_nothing() {
        let dir = tree(&[("main.c", &numbered(12)), ("other.c", "a\nb\nc\n")]);
        let patch = "\
--- a/main.c
+++ b/main.c
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
--- a/other.c
+++ b/other.c
@@ -1,3 +1,3 @@
 a
-b
+B
 c
@@ -12,7 +12,8 @@ static int helper(void)
 x
 y
 z
-not there
+anywhere
 p
 q
 r
+s
";
        let error = apply(&dir, "broken.patch", patch, 1).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "hunk #2 `@@ -12,7 +12,8 @@` of `{}` does not apply to `other.c`",
                dir.path().join("broken.patch").display()
            )
        );
        assert_eq!(
            error.hint().unwrap(),
            "the file differs from what the patch expects; the patch may be for another \
             version, or already applied"
        );
        // Neither file changed, although main.c and the first hunk of other.c fit.
        assert_eq!(read(&dir, "main.c"), numbered(12));
        assert_eq!(read(&dir, "other.c"), "a\nb\nc\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("src"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn refuses_paths_outside_the_tree() {
        let dir = tree(&[("main.c", "x\n")]);
        let escape = "--- a/../outside\n+++ b/../outside\n@@ -0,0 +1 @@\n+pwned\n";
        let error = apply(&dir, "escape.patch", escape, 1).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` line 1: `../outside` is outside the tree (absolute or with `..`)",
                dir.path().join("escape.patch").display()
            )
        );
        let absolute = format!(
            "--- /dev/null\n+++ {}\n@@ -0,0 +1 @@\n+pwned\n",
            dir.path().join("abs").display()
        );
        let error = apply(&dir, "abs.patch", &absolute, 0).unwrap_err();
        assert!(matches!(error, PatchError::UnsafePath { .. }), "{error}");
        assert!(!dir.path().join("outside").exists());
        assert!(!dir.path().join("abs").exists());

        // A symlink in the tree that leads out of it is not followed.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("src/link")).unwrap();
        let through = "--- /dev/null\n+++ b/link/created\n@@ -0,0 +1 @@\n+pwned\n";
        let error = apply(&dir, "through.patch", through, 1).unwrap_err();
        assert!(
            matches!(error, PatchError::ThroughSymlink { line: 2, .. }),
            "{error}"
        );
        assert!(!dir.path().join("created").exists());
    }

    #[test]
    fn missing_files_and_strip_levels() {
        let dir = tree(&[("main.c", "x\n")]);
        let patch = "--- a/nope.c\n+++ b/nope.c\n@@ -1 +1 @@\n-x\n+y\n";
        let error = apply(&dir, "missing.patch", patch, 1).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` line 1: `nope.c` does not exist",
                dir.path().join("missing.patch").display()
            )
        );
        assert_eq!(
            error.hint().unwrap(),
            "check the strip level (`-p1` strips `a/`, `-p0` strips nothing)"
        );
        let error = apply(
            &dir,
            "strip.patch",
            "--- main.c\n+++ main.c\n@@ -1 +1 @@\n-x\n+y\n",
            1,
        )
        .unwrap_err();
        assert!(matches!(error, PatchError::StripTooFar { .. }), "{error}");
        apply(
            &dir,
            "p0.patch",
            "--- main.c\n+++ main.c\n@@ -1 +1 @@\n-x\n+y\n",
            0,
        )
        .unwrap();
        assert_eq!(read(&dir, "main.c"), "y\n");

        let error = apply(&dir, "garbage.patch", "just some text\n", 1).unwrap_err();
        assert!(matches!(error, PatchError::Empty { .. }), "{error}");
        let error = apply(
            &dir,
            "exists.patch",
            "--- /dev/null\n+++ b/main.c\n@@ -0,0 +1 @@\n+z\n",
            1,
        )
        .unwrap_err();
        assert!(matches!(error, PatchError::FileExists { .. }), "{error}");
    }

    /// Found by fuzzing (`fuzz/artifacts/patch/crash-3d257d6f…`): a patch that makes `dir` a file
    /// and then names `dir/x` (or the other way round) failed only while writing, after `dir`
    /// had been written. It is refused while planning, and the tree stays as it was.
    #[test]
    fn a_path_planned_as_file_and_as_directory_is_refused_before_writing() {
        let create = |path: &str| format!("--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{path}\n");
        for (first, second, expected) in [
            (
                "dir",
                "dir/created.txt",
                "is under `dir`, which is not a directory",
            ),
            (
                "dir/created.txt",
                "dir",
                "`dir` is a directory, not a regular file",
            ),
        ] {
            let dir = tree(&[("main.c", "main\n")]);
            let text = format!("{}{}", create(first), create(second));
            let error = apply(&dir, "shape.patch", &text, 1).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
            assert!(error.to_string().contains("line 6"), "{error}");
            let left: Vec<_> = fs::read_dir(dir.path().join("src"))
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            assert_eq!(left, ["main.c"], "{first} then {second}: the tree changed");
        }
    }

    #[test]
    fn quilt_series() {
        let dir = tree(&[("main.c", &numbered(5)), ("lib/util.c", "util\n")]);
        let patches = dir.path().join("debian/patches");
        fs::create_dir_all(patches.join("upstream")).unwrap();
        fs::write(
            patches.join("series"),
            "# applied in order\n\
             01-main.patch\n\
             \n\
             upstream/02-util.diff -p0   # made without a/ b/\n\
             #disabled.patch\n",
        )
        .unwrap();
        fs::write(
            patches.join("01-main.patch"),
            "--- a/main.c\n+++ b/main.c\n@@ -1,2 +1,2 @@\n-line 1\n+first\n line 2\n",
        )
        .unwrap();
        fs::write(
            patches.join("upstream/02-util.diff"),
            "--- lib/util.c.orig\n+++ lib/util.c\n@@ -1 +1 @@\n-util\n+utility\n",
        )
        .unwrap();
        let series = read_quilt_series(&patches).unwrap();
        assert_eq!(
            series,
            vec![
                (patches.join("01-main.patch"), PatchOptions { strip: 1 }),
                (
                    patches.join("upstream/02-util.diff"),
                    PatchOptions { strip: 0 }
                ),
            ]
        );
        for (patch, options) in &series {
            apply_patch_file(patch, &dir.path().join("src"), options).unwrap();
        }
        assert!(read(&dir, "main.c").starts_with("first\nline 2\n"));
        assert_eq!(read(&dir, "lib/util.c"), "utility\n");

        fs::write(patches.join("series"), "01-main.patch -R\n").unwrap();
        let error = read_quilt_series(&patches).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` line 1: unsupported option `-R`",
                patches.join("series").display()
            )
        );
        assert_eq!(
            read_quilt_series(Path::new("/nonexistent")).unwrap(),
            vec![]
        );
    }
}
