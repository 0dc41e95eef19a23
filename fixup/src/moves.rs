//! Layout moves inside one output: [`move_docs`] replaces stdenv's `move-docs.sh`
//! (`_moveToShare`, a `preFixupHooks` entry run for `$out` only), [`move_lib64`] replaces
//! `move-lib64.sh` (`_moveLib64`, skipped with `dontMoveLib64`), [`move_sbin`] replaces
//! `move-sbin.sh` (`_moveSbin`, skipped with `dontMoveSbin`), and [`make_writable`] is the
//! `chmod -R u+w` that `fixupPhase` starts with.
//!
//! - [`move_docs`]: each `NAME` of `forceShare` (default `man doc info`) that is a directory at
//!   the top of the output moves to `share/NAME`, unless `share/NAME` already exists (a
//!   warning, as stdenv only echoes).
//! - [`move_lib64`] / [`move_sbin`]: unless `lib64` (`sbin`) is missing or a symlink, its entries
//!   (dotfiles included) move into `lib` (`bin`), the directory is removed and replaced by the
//!   symlink `lib64 -> lib` (`sbin -> bin`).
//!
//! Difference from stdenv: an entry that already exists in `lib` or `bin` is an error
//! ([`StepError::MoveConflict`]) before anything moves. stdenv's `mv --no-clobber` for `lib64`
//! leaves it behind and then fails on `rmdir`; its plain `mv` for `sbin` silently overwrites.

use std::fs;
use std::path::Path;

use crate::error::StepError;
use crate::fsx::{self, Kind};
use crate::{Outcome, Warning};

/// Adds the owner's write bit to every file and directory of the output, and the output itself,
/// so later steps can edit them. Symlinks are not touched.
pub fn make_writable(dir: &Path) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return Ok(outcome);
    };
    use std::os::unix::fs::MetadataExt;
    if !meta.file_type().is_symlink() && meta.mode() & 0o200 == 0 {
        fsx::set_mode(dir, (meta.mode() | 0o200) & 0o7777)?;
        outcome.changed.push(dir.to_owned());
    }
    for entry in fsx::walk(dir)? {
        if matches!(entry.kind, Kind::File | Kind::Dir) && entry.mode & 0o200 == 0 {
            fsx::set_mode(&entry.path, (entry.mode | 0o200) & 0o7777)?;
            outcome.changed.push(entry.path);
        }
    }
    Ok(outcome)
}

/// Moves `NAME/` to `share/NAME/` for each of `force_share` (stdenv's `forceShare`).
pub fn move_docs(dir: &Path, force_share: &[String]) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    for name in force_share {
        let from = dir.join(name);
        if !from.is_dir() {
            continue;
        }
        let to = dir.join("share").join(name);
        if to.is_dir() {
            outcome.warnings.push(Warning {
                path: from,
                message: format!("both `{name}/` and `share/{name}/` exist; left in place"),
            });
            continue;
        }
        fsx::create_dir_all(&dir.join("share"))?;
        fsx::rename(&from, &to)?;
        outcome.changed.push(to);
    }
    Ok(outcome)
}

/// Moves `lib64/*` into `lib/` and leaves `lib64 -> lib` behind.
pub fn move_lib64(dir: &Path) -> Result<Outcome, StepError> {
    merge_into(dir, "lib64", "lib")
}

/// Moves `sbin/*` into `bin/` and leaves `sbin -> bin` behind.
pub fn move_sbin(dir: &Path) -> Result<Outcome, StepError> {
    merge_into(dir, "sbin", "bin")
}

fn merge_into(dir: &Path, from_name: &str, to_name: &str) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let from = dir.join(from_name);
    let to = dir.join(to_name);
    // `[ ! -e "$prefix/lib64" -o -L "$prefix/lib64" ]`
    let is_link = fs::symlink_metadata(&from).is_ok_and(|meta| meta.file_type().is_symlink());
    if !from.exists() || is_link {
        return Ok(outcome);
    }
    fsx::create_dir_all(&to)?;
    let names = fsx::read_dir_sorted(&from)?;
    for name in &names {
        if fsx::lexists(&to.join(name)) {
            return Err(StepError::MoveConflict {
                from: from.join(name),
                to: to.join(name),
            });
        }
    }
    for name in &names {
        fsx::rename(&from.join(name), &to.join(name))?;
        outcome.changed.push(to.join(name));
    }
    fsx::remove_dir(&from)?;
    fsx::replace_symlink(Path::new(to_name), &from)?;
    outcome.changed.push(from);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::testutil::{symlink, write};

    #[test]
    fn lib64_and_sbin_are_merged_and_linked() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out.join("lib/libkeep.so"), "keep", 0o644);
        write(&out.join("lib64/libmove.so"), "move", 0o644);
        write(&out.join("lib64/.hidden"), "dot", 0o644);
        write(&out.join("lib64/pkgconfig/x.pc"), "pc", 0o644);
        write(&out.join("sbin/daemon"), "d", 0o755);

        let outcome = move_lib64(&out).unwrap();
        assert_eq!(
            outcome.changed,
            [
                out.join("lib/.hidden"),
                out.join("lib/libmove.so"),
                out.join("lib/pkgconfig"),
                out.join("lib64"),
            ]
        );
        assert_eq!(fs::read_link(out.join("lib64")).unwrap(), Path::new("lib"));
        assert_eq!(
            fs::read_to_string(out.join("lib/libmove.so")).unwrap(),
            "move"
        );
        assert_eq!(
            fs::read_to_string(out.join("lib/pkgconfig/x.pc")).unwrap(),
            "pc"
        );
        assert_eq!(
            fs::read_to_string(out.join("lib/libkeep.so")).unwrap(),
            "keep"
        );
        // Running again: lib64 is a symlink now, nothing to do.
        assert_eq!(move_lib64(&out).unwrap(), Outcome::default());

        move_sbin(&out).unwrap();
        assert_eq!(fs::read_link(out.join("sbin")).unwrap(), Path::new("bin"));
        assert!(out.join("bin/daemon").is_file());
    }

    #[test]
    fn conflicts_fail_before_moving_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out.join("lib/same.so"), "lib", 0o644);
        write(&out.join("lib64/a.so"), "a", 0o644);
        write(&out.join("lib64/same.so"), "lib64", 0o644);
        let err = move_lib64(&out).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot move `{}` to `{}`: the destination already exists",
                out.join("lib64/same.so").display(),
                out.join("lib/same.so").display()
            )
        );
        assert!(out.join("lib64/a.so").is_file());
    }

    #[test]
    fn docs_move_under_share() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out.join("man/man1/x.1"), "x", 0o644);
        write(&out.join("doc/README"), "r", 0o644);
        write(&out.join("share/doc/other"), "o", 0o644);
        write(&out.join("info/x.info"), "i", 0o644);
        let outcome = move_docs(&out, &["man".into(), "doc".into(), "info".into()]).unwrap();
        assert_eq!(
            outcome.changed,
            [out.join("share/man"), out.join("share/info")]
        );
        assert!(out.join("share/man/man1/x.1").is_file());
        assert!(out.join("doc/README").is_file());
        assert_eq!(outcome.warnings.len(), 1);
        assert_eq!(
            outcome.warnings[0].message,
            "both `doc/` and `share/doc/` exist; left in place"
        );
    }

    #[test]
    fn write_bits_are_added_and_symlinks_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out.join("bin/ro"), "", 0o555);
        write(&out.join("share/rw"), "", 0o644);
        symlink("/etc/hostname", &out.join("link"));
        fs::set_permissions(out.join("bin"), fs::Permissions::from_mode(0o555)).unwrap();
        let outcome = make_writable(&out).unwrap();
        assert_eq!(outcome.changed, [out.join("bin"), out.join("bin/ro")]);
        assert_eq!(
            fs::metadata(out.join("bin/ro")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(
            fs::metadata(out.join("bin")).unwrap().mode() & 0o7777,
            0o755
        );
    }
}
