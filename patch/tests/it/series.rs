//! A hostile quilt series: the `series` file and the patches directory come with the source, so
//! a patch they name must be a regular file inside the patches directory, reached without a
//! symlink; the `series` file itself must be a regular file too. Each refusal names the series
//! file and its line. Each test keeps a patch `outside/evil.patch` next to the patches directory
//! and checks that the series never hands it out.
//!
//! The `under` tests name the patches directory relative to a source tree
//! ([`read_quilt_series_under`]): the directories on the way come with the source too, so a
//! symlink among them is refused.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use kiln_patch::{read_quilt_series, read_quilt_series_under, PatchError, PatchOptions};

/// A scratch directory holding the patches directory `patches/` (with `good.patch`) and
/// `outside/evil.patch`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("patches")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(
            dir.path().join("patches/good.patch"),
            "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("outside/evil.patch"),
            "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+pwned\n",
        )
        .unwrap();
        Scratch { dir }
    }

    fn patches(&self) -> PathBuf {
        self.dir.path().join("patches")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn series(&self) -> PathBuf {
        self.patches().join("series")
    }

    /// Writes `series` and reads it.
    fn read(&self, series: &str) -> Result<Vec<(PathBuf, PatchOptions)>, PatchError> {
        fs::write(self.series(), series).unwrap();
        read_quilt_series(&self.patches())
    }
}

/// Asserts that `result` is an error whose message starts with "`<series>` line <line>:" and
/// mentions `needle`, with a hint.
fn assert_refused(
    result: Result<Vec<(PathBuf, PatchOptions)>, PatchError>,
    series: &Path,
    line: usize,
    needle: &str,
) -> PatchError {
    let error = match result {
        Ok(patches) => panic!("the series must be refused, got {patches:?}"),
        Err(error) => error,
    };
    let message = error.to_string();
    let location = format!("`{}` line {line}: ", series.display());
    assert!(
        message.starts_with(&location),
        "expected `{location}...`, got: {message}"
    );
    assert!(message.contains(needle), "`{needle}` not in: {message}");
    assert!(error.hint().is_some(), "no hint for: {message}");
    error
}

#[test]
fn a_parent_directory_name_is_refused() {
    let scratch = Scratch::new();
    let result = scratch.read("good.patch\n# then\n../outside/evil.patch\n");
    let error = assert_refused(
        result,
        &scratch.series(),
        3,
        "`../outside/evil.patch` is outside the patches directory",
    );
    assert!(matches!(error, PatchError::SeriesEntry { line: 3, .. }));
    // `..` is refused even when it would come back inside.
    let result = scratch.read("../patches/good.patch -p1\n");
    assert_refused(
        result,
        &scratch.series(),
        1,
        "outside the patches directory",
    );
}

#[test]
fn an_absolute_name_is_refused() {
    let scratch = Scratch::new();
    let evil = scratch.outside().join("evil.patch");
    let result = scratch.read(&format!("good.patch\n{} -p0\n", evil.display()));
    assert_refused(
        result,
        &scratch.series(),
        2,
        &format!("`{}` is outside the patches directory", evil.display()),
    );
}

#[test]
fn a_patch_that_is_a_symlink_out_of_the_directory_is_refused() {
    let scratch = Scratch::new();
    symlink(
        "../outside/evil.patch",
        scratch.patches().join("evil.patch"),
    )
    .unwrap();
    let result = scratch.read("good.patch\nevil.patch\n");
    assert_refused(result, &scratch.series(), 2, "`evil.patch` is a symlink");
}

#[test]
fn a_patch_that_is_a_symlink_inside_the_directory_is_refused_too() {
    // The same rule as in the tree: no symlink is followed, wherever it points.
    let scratch = Scratch::new();
    symlink("good.patch", scratch.patches().join("alias.patch")).unwrap();
    let result = scratch.read("alias.patch\n");
    assert_refused(result, &scratch.series(), 1, "is a symlink");
}

#[test]
fn a_patch_reached_through_a_symlinked_directory_is_refused() {
    let scratch = Scratch::new();
    symlink(scratch.outside(), scratch.patches().join("upstream")).unwrap();
    let result = scratch.read("good.patch\n\nupstream/evil.patch -p1\n");
    assert_refused(
        result,
        &scratch.series(),
        3,
        "is reached through the symlink `upstream`",
    );
}

#[test]
fn a_missing_a_fifo_and_a_directory_are_refused_without_blocking() {
    let scratch = Scratch::new();
    nix::unistd::mkfifo(
        &scratch.patches().join("fifo.patch"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    fs::create_dir(scratch.patches().join("dir.patch")).unwrap();
    let result = scratch.read("missing.patch\n");
    assert_refused(
        result,
        &scratch.series(),
        1,
        "`missing.patch` does not exist",
    );
    let result = scratch.read("good.patch\nfifo.patch\n");
    assert_refused(result, &scratch.series(), 2, "`fifo.patch` is a FIFO");
    let result = scratch.read("dir.patch\n");
    assert_refused(result, &scratch.series(), 1, "`dir.patch` is a directory");
}

#[test]
fn a_series_that_is_a_symlink_or_a_fifo_is_refused() {
    let scratch = Scratch::new();
    fs::write(scratch.outside().join("series"), "../outside/evil.patch\n").unwrap();
    symlink(scratch.outside().join("series"), scratch.series()).unwrap();
    let error = read_quilt_series(&scratch.patches()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the series `{}` is a symlink, not a regular file",
            scratch.series().display()
        )
    );
    assert!(error.hint().is_some());

    fs::remove_file(scratch.series()).unwrap();
    nix::unistd::mkfifo(
        &scratch.series(),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let patches = scratch.patches();
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(read_quilt_series(&patches).map_err(|error| error.to_string()));
    });
    let Ok(result) = receiver.recv_timeout(Duration::from_secs(10)) else {
        // Unblock the reader (it waits for a writer), then fail.
        drop(fs::OpenOptions::new().write(true).open(scratch.series()));
        panic!("reading a series that is a FIFO blocked");
    };
    assert_eq!(
        result.unwrap_err(),
        format!(
            "the series `{}` is a FIFO, not a regular file",
            scratch.series().display()
        )
    );
}

#[test]
fn good_entries_still_resolve_inside_the_directory() {
    let scratch = Scratch::new();
    fs::create_dir(scratch.patches().join("upstream")).unwrap();
    fs::write(scratch.patches().join("upstream/02.diff"), "x").unwrap();
    let patches = scratch
        .read("./good.patch\nupstream//02.diff -p0\n")
        .unwrap();
    assert_eq!(
        patches,
        vec![
            (
                scratch.patches().join("good.patch"),
                PatchOptions { strip: 1 }
            ),
            (
                scratch.patches().join("upstream/02.diff"),
                PatchOptions { strip: 0 }
            ),
        ]
    );
    // No series: no patches, as for dpkg-source; so for a missing patches directory.
    fs::remove_file(scratch.series()).unwrap();
    assert_eq!(read_quilt_series(&scratch.patches()).unwrap(), vec![]);
    assert_eq!(
        read_quilt_series(&scratch.dir.path().join("nope")).unwrap(),
        vec![]
    );
}

/// A source tree `tree/` next to the scratch's `patches/` and `outside/`.
fn tree(scratch: &Scratch) -> PathBuf {
    let tree = scratch.dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    tree
}

#[test]
fn under_a_symlinked_directory_on_the_way_is_refused() {
    let scratch = Scratch::new();
    fs::write(scratch.series(), "good.patch\n").unwrap();
    let tree = tree(&scratch);
    // `debian` leads out of the tree, to a directory holding `patches/series`.
    let evil = scratch.outside().join("debian/patches");
    fs::create_dir_all(&evil).unwrap();
    fs::write(evil.join("series"), "evil.patch\n").unwrap();
    fs::copy(
        scratch.outside().join("evil.patch"),
        evil.join("evil.patch"),
    )
    .unwrap();
    symlink(scratch.outside().join("debian"), tree.join("debian")).unwrap();
    let error = read_quilt_series_under(&tree, Path::new("debian/patches")).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the series `{}` is reached through the symlink `debian`",
            tree.join("debian/patches/series").display()
        )
    );
    assert!(
        matches!(&error, PatchError::SeriesThroughSymlink { link, .. } if link == Path::new("debian"))
    );
    assert!(error.hint().is_some());

    // The patches directory itself a symlink, even one to a directory inside the tree.
    fs::remove_file(tree.join("debian")).unwrap();
    fs::create_dir_all(tree.join("debian/real")).unwrap();
    fs::write(tree.join("debian/real/series"), "").unwrap();
    symlink("real", tree.join("debian/patches")).unwrap();
    let error = read_quilt_series_under(&tree, Path::new("debian/patches")).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("is reached through the symlink `debian/patches`"),
        "{error}"
    );
    // With the directory itself named, the walk ends there: its `series` is fine.
    assert_eq!(
        read_quilt_series_under(&tree, Path::new("debian/real")).unwrap(),
        Some(vec![])
    );
}

#[test]
fn under_a_file_on_the_way_and_paths_outside_the_root_are_refused() {
    let scratch = Scratch::new();
    let tree = tree(&scratch);
    fs::write(tree.join("debian"), "not a directory").unwrap();
    let error = read_quilt_series_under(&tree, Path::new("debian/patches")).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the series `{}` is under `debian`, which is not a directory",
            tree.join("debian/patches/series").display()
        )
    );
    assert!(error.hint().is_some());
    for outside in ["../patches", "/patches", "debian/../../patches"] {
        let error = read_quilt_series_under(&tree, Path::new(outside)).unwrap_err();
        assert!(
            matches!(error, PatchError::SeriesOutside { .. }),
            "{outside}: {error}"
        );
    }
}

#[test]
fn under_a_plain_tree_reads_what_read_quilt_series_reads() {
    let scratch = Scratch::new();
    let root = scratch.dir.path();
    fs::write(scratch.series(), "good.patch -p0\n").unwrap();
    let expected = read_quilt_series(&scratch.patches()).unwrap();
    assert_eq!(
        expected,
        vec![(
            scratch.patches().join("good.patch"),
            PatchOptions { strip: 0 }
        )]
    );
    assert_eq!(
        read_quilt_series_under(root, Path::new("patches")).unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        read_quilt_series_under(root, Path::new("./patches/.")).unwrap(),
        Some(expected)
    );
    // The root itself, named by an empty path.
    assert_eq!(
        read_quilt_series_under(&scratch.patches(), Path::new("")).unwrap(),
        Some(vec![(
            scratch.patches().join("good.patch"),
            PatchOptions { strip: 0 }
        )])
    );
    // Entries are still confined to the patches directory.
    fs::write(scratch.series(), "../outside/evil.patch\n").unwrap();
    assert_refused(
        read_quilt_series_under(root, Path::new("patches")).map(Option::unwrap_or_default),
        &scratch.series(),
        1,
        "is outside the patches directory",
    );
    // Missing: the series, a directory on the way, the root.
    fs::remove_file(scratch.series()).unwrap();
    assert_eq!(
        read_quilt_series_under(root, Path::new("patches")).unwrap(),
        None
    );
    assert_eq!(
        read_quilt_series_under(root, Path::new("nope/patches")).unwrap(),
        None
    );
    assert_eq!(
        read_quilt_series_under(&root.join("nope"), Path::new("patches")).unwrap(),
        None
    );
    // The root is the caller's: a symlink to it is followed.
    symlink(root, root.join("link")).unwrap();
    fs::write(scratch.series(), "good.patch\n").unwrap();
    assert_eq!(
        read_quilt_series_under(&root.join("link"), Path::new("patches")).unwrap(),
        Some(vec![(
            root.join("link/patches/good.patch"),
            PatchOptions { strip: 1 }
        )])
    );
}
