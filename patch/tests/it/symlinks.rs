//! Patches against a hostile tree: every path a patch reads, writes, creates, renames, copies or
//! deletes is resolved without following a symlink, so nothing outside the source root is ever
//! read or changed. Each test puts a file `victim` in a directory `outside/` next to the tree
//! and checks that it is untouched, and that the error names the patch file and the line of the
//! header that named the refused path.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use kiln_patch::{apply_patch_file, FileChange, PatchError, PatchOptions};

/// A scratch directory holding the tree `src/` and the directory `outside/`, which holds
/// `victim` ("original\n").
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(files: &[(&str, &str)]) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/victim"), "original\n").unwrap();
        let scratch = Scratch { dir };
        for (path, content) in files {
            let path = scratch.src().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        scratch
    }

    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Makes `src/<link>` a symlink to `target` (absolute, or relative to `src/`).
    fn link(&self, link: &str, target: &Path) {
        symlink(target, self.src().join(link)).unwrap();
    }

    /// Writes the patch `name` next to the tree and applies it with `-p1`.
    fn apply(&self, name: &str, text: &str) -> (PathBuf, Result<(), PatchError>) {
        let patch = self.dir.path().join(name);
        fs::write(&patch, text).unwrap();
        let result = apply_patch_file(&patch, &self.src(), &PatchOptions::default()).map(drop);
        (patch, result)
    }

    /// Asserts that `outside/` still holds only `victim`, unchanged.
    fn assert_outside_untouched(&self) {
        assert_eq!(
            fs::read_to_string(self.outside().join("victim")).unwrap(),
            "original\n"
        );
        let names: Vec<_> = fs::read_dir(self.outside())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"], "something was created outside the tree");
    }
}

/// Asserts that `result` is an error whose message starts with "`<patch>` line <line>:" and
/// mentions `needle`.
fn assert_refused(result: Result<(), PatchError>, patch: &Path, line: usize, needle: &str) {
    let error = result.expect_err("the patch must be refused");
    let message = error.to_string();
    let location = format!("`{}` line {line}: ", patch.display());
    assert!(
        message.starts_with(&location),
        "expected `{location}...`, got: {message}"
    );
    assert!(message.contains(needle), "`{needle}` not in: {message}");
}

#[test]
fn rename_to_through_a_symlinked_directory_is_refused() {
    let scratch = Scratch::new(&[("file.txt", "pwned\n")]);
    scratch.link("link", &scratch.outside());
    let (patch, result) = scratch.apply(
        "rename.patch",
        "diff --git a/file.txt b/link/victim\n\
         similarity index 100%\n\
         rename from file.txt\n\
         rename to link/victim\n",
    );
    assert_refused(result, &patch, 4, "symlink `link`");
    scratch.assert_outside_untouched();
    // Nothing was written: the source of the rename is still there.
    assert_eq!(
        fs::read_to_string(scratch.src().join("file.txt")).unwrap(),
        "pwned\n"
    );
}

#[test]
fn copy_to_through_a_symlinked_directory_is_refused() {
    let scratch = Scratch::new(&[("file.txt", "pwned\n")]);
    scratch.link("link", &scratch.outside());
    let (patch, result) = scratch.apply(
        "copy.patch",
        "From 1234 Mon Sep 17 00:00:00 2001\n\
         Subject: [PATCH] copy\n\
         \n\
         diff --git a/file.txt b/link/new\n\
         similarity index 100%\n\
         copy from file.txt\n\
         copy to link/new\n",
    );
    assert_refused(result, &patch, 7, "symlink `link`");
    scratch.assert_outside_untouched();
}

#[test]
fn rename_with_content_through_a_relative_symlink_is_refused() {
    // `link -> ../outside`, relative, and the rename also changes the content.
    let scratch = Scratch::new(&[("file.txt", "original\n")]);
    scratch.link("link", Path::new("../outside"));
    let (patch, result) = scratch.apply(
        "rename-edit.patch",
        "diff --git a/file.txt b/link/victim\n\
         similarity index 50%\n\
         rename from file.txt\n\
         rename to link/victim\n\
         --- a/file.txt\n\
         +++ b/link/victim\n\
         @@ -1 +1 @@\n\
         -original\n\
         +pwned\n",
    );
    assert_refused(result, &patch, 4, "symlink `link`");
    scratch.assert_outside_untouched();
}

#[test]
fn modifying_under_a_symlinked_parent_is_refused() {
    let scratch = Scratch::new(&[]);
    scratch.link("link", &scratch.outside());
    let (patch, result) = scratch.apply(
        "modify.patch",
        "Description: edits a file outside\n\
         --- a/link/victim\n\
         +++ b/link/victim\n\
         @@ -1 +1 @@\n\
         -original\n\
         +pwned\n",
    );
    assert_refused(result, &patch, 2, "symlink `link`");
    scratch.assert_outside_untouched();
}

#[test]
fn modifying_under_a_nested_symlink_is_refused() {
    // The symlink is a middle component: `dir/link/victim`.
    let scratch = Scratch::new(&[("dir/keep", "x\n")]);
    scratch.link("dir/link", &scratch.outside());
    let (patch, result) = scratch.apply(
        "nested.patch",
        "--- a/dir/link/victim\n+++ b/dir/link/victim\n@@ -1 +1 @@\n-original\n+pwned\n",
    );
    assert_refused(result, &patch, 1, "symlink `dir/link`");
    scratch.assert_outside_untouched();
}

#[test]
fn deleting_through_a_symlink_is_refused() {
    let scratch = Scratch::new(&[]);
    scratch.link("link", &scratch.outside());
    let (patch, result) = scratch.apply(
        "delete.patch",
        "--- a/link/victim\n+++ /dev/null\n@@ -1 +0,0 @@\n-original\n",
    );
    assert_refused(result, &patch, 1, "symlink `link`");
    scratch.assert_outside_untouched();

    // A git deletion of a name that is itself a symlink to the victim: the link is not
    // followed (its target is not compared, read, or removed).
    scratch.link("alias", &scratch.outside().join("victim"));
    let (patch, result) = scratch.apply(
        "delete-alias.patch",
        "diff --git a/alias b/alias\n\
         deleted file mode 100644\n\
         index 1111111..0000000\n\
         --- a/alias\n\
         +++ /dev/null\n\
         @@ -1 +0,0 @@\n\
         -original\n",
    );
    assert_refused(result, &patch, 4, "a symlink");
    scratch.assert_outside_untouched();
    assert!(fs::symlink_metadata(scratch.src().join("alias"))
        .unwrap()
        .is_symlink());
}

#[test]
fn creating_through_a_symlinked_directory_is_refused() {
    let scratch = Scratch::new(&[]);
    scratch.link("link", &scratch.outside());
    let (patch, result) = scratch.apply(
        "create.patch",
        "--- /dev/null\n+++ b/link/created\n@@ -0,0 +1 @@\n+pwned\n",
    );
    assert_refused(result, &patch, 2, "symlink `link`");
    scratch.assert_outside_untouched();

    // A git creation in a directory below the link, which does not exist yet.
    let (patch, result) = scratch.apply(
        "create-git.patch",
        "diff --git a/link/sub/created b/link/sub/created\n\
         new file mode 100644\n\
         index 0000000..1111111\n\
         --- /dev/null\n\
         +++ b/link/sub/created\n\
         @@ -0,0 +1 @@\n\
         +pwned\n",
    );
    assert_refused(result, &patch, 5, "symlink `link`");
    scratch.assert_outside_untouched();

    // A dangling link: creating under it would create the directory it names.
    scratch.link("dangling", &scratch.outside().join("made"));
    let (patch, result) = scratch.apply(
        "create-dangling.patch",
        "--- /dev/null\n+++ b/dangling/created\n@@ -0,0 +1 @@\n+pwned\n",
    );
    assert_refused(result, &patch, 2, "symlink `dangling`");
    scratch.assert_outside_untouched();
}

#[test]
fn a_target_that_is_a_symlink_is_not_written_through() {
    let scratch = Scratch::new(&[("file.txt", "pwned\n")]);
    scratch.link("alias", &scratch.outside().join("victim"));
    let (patch, result) = scratch.apply(
        "alias.patch",
        "--- a/alias\n+++ b/alias\n@@ -1 +1 @@\n-original\n+pwned\n",
    );
    assert_refused(result, &patch, 1, "`alias` is a symlink");
    scratch.assert_outside_untouched();

    // A rename or a copy onto the symlink neither writes through it nor replaces it.
    for (kind, line) in [("rename", 3), ("copy", 3)] {
        let (patch, result) = scratch.apply(
            &format!("{kind}-onto-alias.patch"),
            &format!(
                "diff --git a/file.txt b/alias\n\
                 {kind} from file.txt\n\
                 {kind} to alias\n"
            ),
        );
        assert_refused(result, &patch, line, "`alias` is a symlink");
        scratch.assert_outside_untouched();
        assert!(fs::symlink_metadata(scratch.src().join("alias"))
            .unwrap()
            .is_symlink());
        assert!(scratch.src().join("file.txt").exists());
    }

    // Creating a file where a symlink is: refused too.
    let (patch, result) = scratch.apply(
        "create-alias.patch",
        "--- /dev/null\n+++ b/alias\n@@ -0,0 +1 @@\n+pwned\n",
    );
    assert_refused(result, &patch, 2, "`alias` is a symlink");
    scratch.assert_outside_untouched();
}

#[test]
fn a_refused_file_leaves_the_rest_of_the_patch_unapplied() {
    // The first file is fine, the second goes through a symlink: neither is written.
    let scratch = Scratch::new(&[("ok.txt", "a\n")]);
    scratch.link("link", &scratch.outside());
    let (patch, result) = scratch.apply(
        "mixed.patch",
        "--- a/ok.txt\n+++ b/ok.txt\n@@ -1 +1 @@\n-a\n+b\n\
         --- /dev/null\n+++ b/link/created\n@@ -0,0 +1 @@\n+pwned\n",
    );
    assert_refused(result, &patch, 7, "symlink `link`");
    assert_eq!(
        fs::read_to_string(scratch.src().join("ok.txt")).unwrap(),
        "a\n"
    );
    scratch.assert_outside_untouched();
}

#[test]
fn paths_without_symlinks_still_work_in_a_tree_that_has_some() {
    // The tree has symlinks (out of it, and within it); a patch that names only real paths
    // edits, creates, renames, copies and deletes as before, and leaves the links alone.
    let scratch = Scratch::new(&[
        ("lib/include/api.h", "int api(void);\n"),
        ("main.c", "int main(void) { return 0; }\n"),
        ("old.c", "old\n"),
        ("gone.txt", "bye\n"),
    ]);
    scratch.link("link", &scratch.outside());
    scratch.link("include", Path::new("lib/include"));
    let (_, result) = scratch.apply(
        "real-paths.patch",
        "diff --git a/lib/include/api.h b/lib/include/api.h\n\
         --- a/lib/include/api.h\n\
         +++ b/lib/include/api.h\n\
         @@ -1 +1,2 @@\n \
         int api(void);\n\
         +int more(void);\n\
         diff --git a/main.c b/src/main.c\n\
         similarity index 100%\n\
         rename from main.c\n\
         rename to src/main.c\n\
         diff --git a/old.c b/lib/new.c\n\
         copy from old.c\n\
         copy to lib/new.c\n\
         diff --git a/doc/NEWS b/doc/NEWS\n\
         new file mode 100644\n\
         --- /dev/null\n\
         +++ b/doc/NEWS\n\
         @@ -0,0 +1 @@\n\
         +news\n\
         --- a/gone.txt\n\
         +++ /dev/null\n\
         @@ -1 +0,0 @@\n\
         -bye\n",
    );
    result.unwrap();
    let read = |path: &str| fs::read_to_string(scratch.src().join(path)).unwrap();
    assert_eq!(
        read("lib/include/api.h"),
        "int api(void);\nint more(void);\n"
    );
    assert_eq!(read("src/main.c"), "int main(void) { return 0; }\n");
    assert!(!scratch.src().join("main.c").exists());
    assert_eq!(read("lib/new.c"), "old\n");
    assert_eq!(read("old.c"), "old\n");
    assert_eq!(read("doc/NEWS"), "news\n");
    assert!(!scratch.src().join("gone.txt").exists());
    assert!(fs::symlink_metadata(scratch.src().join("include"))
        .unwrap()
        .is_symlink());
    scratch.assert_outside_untouched();
}

#[test]
fn a_symlinked_directory_inside_the_tree_is_not_followed_either() {
    // `include -> lib/include` stays inside the tree, but kiln's rule is kiln-archive's: no
    // symlink on the way, wherever it points. The real path works.
    let scratch = Scratch::new(&[("lib/include/api.h", "a\n")]);
    scratch.link("include", Path::new("lib/include"));
    let (patch, result) = scratch.apply(
        "via-link.patch",
        "--- a/include/api.h\n+++ b/include/api.h\n@@ -1 +1 @@\n-a\n+b\n",
    );
    assert_refused(result, &patch, 1, "symlink `include`");
    let report = apply_patch_file(
        &write(
            &scratch,
            "real.patch",
            "--- a/lib/include/api.h\n+++ b/lib/include/api.h\n@@ -1 +1 @@\n-a\n+b\n",
        ),
        &scratch.src(),
        &PatchOptions::default(),
    )
    .unwrap();
    assert_eq!(report.files[0].change, FileChange::Modified);
    assert_eq!(
        fs::read_to_string(scratch.src().join("lib/include/api.h")).unwrap(),
        "b\n"
    );
}

fn write(scratch: &Scratch, name: &str, text: &str) -> PathBuf {
    let patch = scratch.dir.path().join(name);
    fs::write(&patch, text).unwrap();
    patch
}
