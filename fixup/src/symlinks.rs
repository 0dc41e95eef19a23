//! Symlink hygiene: [`make_relative`] replaces stdenv's `make-symlinks-relative.sh`
//! (`_makeSymlinksRelative`, skipped with `dontRewriteSymlinks`) and [`check_broken`] replaces
//! `no-broken-symlinks.sh` (`noBrokenSymlinks`, skipped with `dontCheckForBrokenSymlinks`).
//! Both run after the per-output hooks (stdenv's `postFixupHooks`, broken-symlink check first).
//!
//! [`make_relative`] rewrites every symlink whose target is the output directory or a path
//! inside it into the equivalent relative path, so that the output does not refer to its own
//! store path. Links to missing targets are rewritten too, with a warning (as stdenv echoes).
//! The relative path is computed lexically (the target's `.` and `..` resolved textually);
//! `ln -snrf`, which stdenv uses, resolves symlinked directories of existing parts first, which
//! only differs when the link's own path runs through a symlinked directory, and the walk never
//! follows those.
//!
//! [`check_broken`] fails listing every symlink that is dangling (its target, resolved
//! lexically against the link's directory, does not exist when followed) or reflexive (the
//! target is the link itself), as nixpkgs does now. Targets outside the store that exist on the
//! build machine pass, as in nixpkgs; cycles count as dangling (`-e` fails on them).

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{BrokenSymlink, StepError};
use crate::fsx::{self, Kind};
use crate::{Outcome, Warning};

/// The relative path from directory `from` to `to`, both absolute and normalised.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for component in &to[common..] {
        out.push(component);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Makes the absolute symlinks under `dir` that point into `dir` relative.
///
/// `dir` is made absolute (lexically) first. [`Outcome::changed`] lists the rewritten links.
pub fn make_relative(dir: &Path) -> Result<Outcome, StepError> {
    let prefix = fsx::normalize(&std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()));
    let mut outcome = Outcome::default();
    for entry in fsx::walk(&prefix)? {
        if entry.kind != Kind::Symlink {
            continue;
        }
        let text = fsx::read_link(&entry.path)?;
        if !text.is_absolute() {
            continue;
        }
        let target = fsx::normalize(&text);
        if !target.starts_with(&prefix) {
            continue;
        }
        if fs::metadata(&target).is_err() {
            outcome.warnings.push(Warning {
                path: entry.path.clone(),
                message: format!("points to `{}`, which is missing", text.display()),
            });
        }
        let parent = entry.path.parent().unwrap_or(&prefix);
        let relative = relative_path(parent, &target);
        fsx::replace_symlink(&relative, &entry.path)?;
        outcome.changed.push(entry.path);
    }
    Ok(outcome)
}

/// Fails with [`StepError::BrokenSymlinks`] listing every dangling or reflexive symlink under
/// `dir`.
pub fn check_broken(dir: &Path) -> Result<Outcome, StepError> {
    let mut links = Vec::new();
    for entry in fsx::walk(dir)? {
        if entry.kind != Kind::Symlink {
            continue;
        }
        let text = fsx::read_link(&entry.path)?;
        let parent = entry.path.parent().unwrap_or(dir);
        let target = fsx::normalize(&parent.join(&text));
        let reflexive = target == fsx::normalize(&entry.path);
        if reflexive || fs::metadata(&target).is_err() {
            links.push(BrokenSymlink {
                path: entry.path,
                target: text,
                reflexive,
            });
        }
    }
    if links.is_empty() {
        Ok(Outcome::default())
    } else {
        Err(StepError::BrokenSymlinks {
            dir: dir.to_owned(),
            links,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{symlink, write};

    #[test]
    fn relative_paths() {
        let rel = |a: &str, b: &str| relative_path(Path::new(a), Path::new(b));
        assert_eq!(rel("/o/lib", "/o/lib/libx.so.1"), Path::new("libx.so.1"));
        assert_eq!(rel("/o/bin", "/o/lib/x"), Path::new("../lib/x"));
        assert_eq!(rel("/o/share/a/b", "/o"), Path::new("../../.."));
        assert_eq!(rel("/o", "/o"), Path::new("."));
    }

    #[test]
    fn absolute_links_into_the_output_become_relative() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out.join("lib/libx.so.1"), "", 0o644);
        symlink(out.join("lib/libx.so.1"), &out.join("lib/libx.so"));
        symlink(out.join("lib/./../lib/libx.so.1"), &out.join("bin/x"));
        symlink(&out, &out.join("share/root"));
        symlink(out.join("lib/gone"), &out.join("lib/dangling"));
        symlink("/etc/hostname", &out.join("etc/hostname"));
        symlink("libx.so.1", &out.join("lib/libx.so.1.0"));
        // A sibling directory whose name starts like the output's is not inside it.
        let sibling = tmp.path().join("out-other/f");
        write(&sibling, "", 0o644);
        symlink(&sibling, &out.join("lib/sibling"));

        let outcome = make_relative(&out).unwrap();

        let link = |p: &str| fs::read_link(out.join(p)).unwrap();
        assert_eq!(link("lib/libx.so"), Path::new("libx.so.1"));
        assert_eq!(link("bin/x"), Path::new("../lib/libx.so.1"));
        assert_eq!(link("share/root"), Path::new(".."));
        assert_eq!(link("lib/dangling"), Path::new("gone"));
        assert_eq!(link("etc/hostname"), Path::new("/etc/hostname"));
        assert_eq!(link("lib/libx.so.1.0"), Path::new("libx.so.1"));
        assert_eq!(link("lib/sibling"), sibling);
        assert_eq!(
            outcome.changed,
            [
                out.join("bin/x"),
                out.join("lib/dangling"),
                out.join("lib/libx.so"),
                out.join("share/root"),
            ]
        );
        assert_eq!(outcome.warnings.len(), 1);
        assert_eq!(outcome.warnings[0].path, out.join("lib/dangling"));
    }

    #[test]
    fn broken_symlinks_are_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out.join("lib/real"), "", 0o644);
        symlink("real", &out.join("lib/ok"));
        symlink("/etc", &out.join("etc-link"));
        symlink("missing", &out.join("lib/dangling"));
        symlink("../lib/self", &out.join("lib/self"));
        symlink("loop-b", &out.join("lib/loop-a"));
        symlink("loop-a", &out.join("lib/loop-b"));

        let err = check_broken(&out).unwrap_err();

        let StepError::BrokenSymlinks { links, .. } = &err else {
            panic!("{err:?}");
        };
        let summary: Vec<_> = links
            .iter()
            .map(|l| (l.path.strip_prefix(&out).unwrap().to_owned(), l.reflexive))
            .collect();
        assert_eq!(
            summary,
            [
                (PathBuf::from("lib/dangling"), false),
                (PathBuf::from("lib/loop-a"), false),
                (PathBuf::from("lib/loop-b"), false),
                (PathBuf::from("lib/self"), true),
            ]
        );
        let o = out.display();
        assert_eq!(
            err.to_string(),
            format!(
                "4 broken symlink(s) in `{o}`:\n  \
                 `{o}/lib/dangling` -> `missing` points to a missing target\n  \
                 `{o}/lib/loop-a` -> `loop-b` points to a missing target\n  \
                 `{o}/lib/loop-b` -> `loop-a` points to a missing target\n  \
                 `{o}/lib/self` -> `../lib/self` points to itself"
            )
        );
        fs::remove_file(out.join("lib/dangling")).unwrap();
        for name in ["self", "loop-a", "loop-b"] {
            fs::remove_file(out.join("lib").join(name)).unwrap();
        }
        assert_eq!(check_broken(&out).unwrap(), Outcome::default());
    }
}
