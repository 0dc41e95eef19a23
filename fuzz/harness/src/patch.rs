//! The `patch` target: kiln-patch's `apply_patch_file` (decompression, parser, hunk placement,
//! writer) on a small source tree that the input describes too.
//!
//! The input is a selector byte, a tree description, a line `%%`, and the patch text (without
//! a `%%` line the whole rest is the patch, applied to a default tree). The selector: the strip
//! level is `byte % 3`, and bit 2 gzips the patch file. The tree description is lines:
//!
//! ```text
//! F path          a file (0644) whose content is the following lines, up to the next directive
//! X path          the same, executable (0755)
//! D path          a directory
//! L path target   a symlink (made after every file and directory)
//! ```
//!
//! A content line that is a lone `\` removes the newline before it (a file without a final
//! newline).
//!
//! Paths must be relative without `..` (others are skipped). Symlink targets stay inside the
//! scratch directory: an absolute target is taken relative to the scratch root, and a relative
//! one that leaves it is skipped, so `L out ../../../sentinel` is the way to point outside the
//! tree. At most [`MAX_ENTRIES`] entries.
//!
//! Invariants checked:
//!
//! - no panic;
//! - nothing outside the tree changes (sentinels, the patch file);
//! - a patch that fails (for any reason but writing the results) leaves the tree untouched;
//! - an error names the patch (or, for I/O errors, the file in the tree); a parse error's line
//!   is inside the patch text;
//! - on success every file reported as created, modified, renamed or copied (and not touched
//!   again later in the patch) is a regular file in the tree, hunks are numbered from 1, and
//!   no temporary file is left behind.

use std::fs;
use std::path::{Component, Path, PathBuf};

use kiln_patch::{apply_patch_file, FileChange, PatchError, PatchOptions, PatchReport};

use crate::snapshot::{Scratch, Snapshot};

/// The most entries a tree description creates.
pub const MAX_ENTRIES: usize = 16;

/// The tree used when the input has no `%%` line.
const DEFAULT_TREE: &str = "F main.c\nint main(void)\n{\n  return 0;\n}\nF README\nhello\nworld\n";

/// Runs the `patch` target on one input.
pub fn patch(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let strip = usize::from(selector % 3);
    let compress = selector & 4 != 0;
    let (tree_text, patch_text) = split(rest);

    let scratch = Scratch::new();
    let tree = scratch.work.join("src");
    fs::create_dir(&tree).expect("the tree");
    build_tree(&tree, scratch.root(), &tree_text);
    let patch_file = scratch.work.join("fix.patch");
    let file_bytes = if compress {
        crate::archive::gzip(patch_text)
    } else {
        patch_text.to_vec()
    };
    fs::write(&patch_file, &file_bytes).expect("the patch file");

    let outside_before = scratch.snapshot(&[&tree]);
    let tree_before = Snapshot::take(&tree, &[]);
    let result = apply_patch_file(&patch_file, &tree, &PatchOptions { strip });
    crate::note("patch", || match &result {
        Ok(report) => format!("{report:?}"),
        Err(error) => format!("{error}"),
    });
    scratch.snapshot(&[&tree]).assert_unchanged(
        &outside_before,
        "patching: the scratch directory outside the tree",
    );
    match result {
        Ok(report) => check_report(&report, &tree, &tree_before),
        Err(error) => {
            check_error(&error, &patch_file, &tree, patch_text);
            if !matches!(error, PatchError::WriteFile { .. }) {
                Snapshot::take(&tree, &[])
                    .assert_unchanged(&tree_before, &format!("the tree after `{error}`"));
            }
        }
    }
}

/// Splits the input at its first `%%` line into a tree description and the patch.
fn split(rest: &[u8]) -> (String, &[u8]) {
    if let Some(body) = rest.strip_prefix(b"%%\n") {
        return (String::new(), body);
    }
    match rest.windows(4).position(|window| window == b"\n%%\n") {
        Some(at) => (
            String::from_utf8_lossy(&rest[..at + 1]).into_owned(),
            &rest[at + 4..],
        ),
        None => (DEFAULT_TREE.to_owned(), rest),
    }
}

/// `path` if it is relative with normal components only (at most 4), else `None`.
fn plain(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    let mut count = 0;
    for component in path.components() {
        match component {
            Component::Normal(_) => count += 1,
            _ => return None,
        }
    }
    (1..=4).contains(&count).then(|| path.to_owned())
}

/// Creates the tree the description asks for under `tree`; see the module documentation.
fn build_tree(tree: &Path, scratch_root: &Path, description: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut files: Vec<(PathBuf, u32, String)> = Vec::new();
    let mut dirs = Vec::new();
    let mut links = Vec::new();
    let mut current: Option<usize> = None;
    let mut entries = 0;
    for line in description.split_inclusive('\n') {
        let directive = line.trim_end_matches('\n');
        let mut words = directive.splitn(3, ' ');
        let kind = words.next().unwrap_or_default();
        if matches!(kind, "F" | "X" | "D" | "L") && directive.len() > 2 {
            current = None;
            entries += 1;
            if entries > MAX_ENTRIES {
                continue;
            }
            let Some(path) = words.next().and_then(plain) else {
                continue;
            };
            match kind {
                "F" | "X" => {
                    files.push((path, if kind == "X" { 0o755 } else { 0o644 }, String::new()));
                    current = Some(files.len() - 1);
                }
                "D" => dirs.push(path),
                _ => {
                    if let Some(target) = words.next() {
                        links.push((path, target.to_owned()));
                    }
                }
            }
            continue;
        }
        if let Some(index) = current {
            let content = &mut files[index].2;
            if directive == "\\" {
                if content.ends_with('\n') {
                    content.pop();
                }
            } else {
                content.push_str(line);
            }
        }
    }
    // Directories and files first, through real directories only; symlinks last, so that the
    // harness itself never writes through one.
    for dir in &dirs {
        let _ = fs::create_dir_all(tree.join(dir));
    }
    for (path, mode, content) in &files {
        let full = tree.join(path);
        if let Some(parent) = full.parent() {
            let _ = fs::create_dir_all(parent);
        }
        if fs::symlink_metadata(&full).is_ok() {
            continue;
        }
        if fs::write(&full, content).is_ok() {
            let _ = fs::set_permissions(&full, fs::Permissions::from_mode(*mode));
        }
    }
    for (path, target) in &links {
        let full = tree.join(path);
        let Some(parent) = full.parent() else {
            continue;
        };
        let target = if let Some(absolute) = target.strip_prefix('/') {
            scratch_root.join(absolute)
        } else {
            PathBuf::from(target)
        };
        if !stays_inside(&parent.join(&target), scratch_root) {
            continue;
        }
        let parent_is_dir = fs::symlink_metadata(parent).is_ok_and(|meta| meta.is_dir());
        if parent_is_dir && fs::symlink_metadata(&full).is_err() {
            let _ = std::os::unix::fs::symlink(&target, &full);
        }
    }
}

/// Whether `path`, with `..` taken lexically, stays under `root`.
fn stays_inside(path: &Path, root: &Path) -> bool {
    let mut resolved = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !resolved.pop() {
                    return false;
                }
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    resolved.starts_with(root)
}

/// See the module documentation.
fn check_error(error: &PatchError, patch_file: &Path, tree: &Path, text: &[u8]) {
    let rendered = error.to_string();
    let _ = error.hint();
    let names_patch = rendered.contains(&patch_file.display().to_string());
    let names_tree_file = matches!(
        error,
        PatchError::ReadFile { .. } | PatchError::WriteFile { .. } | PatchError::OpenTree { .. }
    ) && rendered.contains(&tree.display().to_string());
    assert!(
        names_patch || names_tree_file,
        "the error `{rendered}` names neither the patch nor a file of the tree"
    );
    // `PATCH` line N: ...` points into the patch as written when it is not compressed.
    let plain =
        kiln_archive::Compression::detect(text, "fix.patch") == kiln_archive::Compression::None;
    let after_patch = rendered.strip_prefix(&format!("`{}` line ", patch_file.display()));
    if let (true, Some(rest)) = (plain, after_patch) {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(line) = digits.parse::<usize>() {
            let lines = text.split(|byte| *byte == b'\n').count();
            assert!(
                line >= 1 && line <= lines,
                "`{rendered}`: line {line} of a patch of {lines} lines"
            );
        }
    }
    if let PatchError::HunkFailed { number, .. } = error {
        assert!(*number >= 1, "`{rendered}`: hunk numbers start at 1");
    }
}

/// See the module documentation.
fn check_report(report: &PatchReport, tree: &Path, before: &Snapshot) {
    assert!(
        !report.files.is_empty(),
        "a patch that applied changed no file"
    );
    for (index, file) in report.files.iter().enumerate() {
        assert!(
            plain_path(&file.path),
            "the report names `{}`, not a plain relative path",
            file.path.display()
        );
        for (number, hunk) in file.hunks.iter().enumerate() {
            assert_eq!(hunk.number, number + 1, "hunks are numbered in order");
            assert!(hunk.line >= 1, "hunk lines start at 1");
        }
        let later = &report.files[index + 1..];
        let touched_later = later.iter().any(|other| {
            other.path == file.path
                || matches!(&other.change, FileChange::Renamed { from } if *from == file.path)
        });
        let exists = matches!(
            file.change,
            FileChange::Created
                | FileChange::Modified
                | FileChange::Renamed { .. }
                | FileChange::Copied { .. }
        );
        if exists && !touched_later {
            let metadata = fs::symlink_metadata(tree.join(&file.path));
            assert!(
                metadata.is_ok_and(|meta| meta.is_file()),
                "`{}` was reported {:?} but is not a regular file in the tree",
                file.path.display(),
                file.change
            );
        }
    }
    let reported: Vec<&Path> = report
        .files
        .iter()
        .map(|file| file.path.as_path())
        .collect();
    assert_no_temporary(tree, tree, before, &reported);
}

fn plain_path(path: &Path) -> bool {
    path.components().count() > 0
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

/// Whether `name` is one kiln-patch gives its temporary files: `.kiln-patch.<pid>.<n>` (a
/// patch may create files whose names merely start with `.kiln-patch`).
fn is_temporary_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(".kiln-patch.") else {
        return false;
    };
    let mut parts = rest.split('.');
    let numeric = |part: Option<&str>| {
        part.is_some_and(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    };
    numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
}

/// No `.kiln-patch.<pid>.<n>` temporary file is left anywhere in the tree (a file of that name that
/// was there before is the tree's own, and one the report names is the patch's).
fn assert_no_temporary(tree: &Path, dir: &Path, before: &Snapshot, reported: &[&Path]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let relative = entry
            .path()
            .strip_prefix(tree)
            .unwrap_or(&entry.path())
            .to_owned();
        assert!(
            !is_temporary_name(&name.to_string_lossy())
                || before.0.contains_key(&relative)
                || reported.contains(&relative.as_path()),
            "a temporary file {} is left behind",
            entry.path().display()
        );
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            assert_no_temporary(tree, &entry.path(), before, reported);
        }
    }
}
