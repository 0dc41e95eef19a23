//! Auditing references to the build directory: replaces stdenv's `audit-tmpdir.sh`
//! (`auditTmpdir`, skipped with `noAuditTmpdir`).
//!
//! An output must not point into the build directory (`$TMPDIR`, which is `$NIX_BUILD_TOP`
//! under Nix): a later build by another user could plant files there and have them loaded. Like
//! stdenv, [`audit_tmpdir`] fails if the `RPATH` or `RUNPATH` of an ELF file has an entry inside
//! the build directory, or if a wrapper script (a script `NAME` next to a `.NAME-wrapped`)
//! mentions `BUILD_TOP/`. Paths containing `.build-id` are skipped.
//!
//! Differences from stdenv: every offending file is listed, not just the first; an RPATH entry
//! equal to the build directory itself counts too (stdenv only matches `BUILD_TOP/...`); with
//! `all_scripts` every script (a file starting with `#!`), not only wrappers, is checked, which
//! is stricter than stdenv; ELF files are read in-process rather than with `patchelf
//! --print-rpath`, and an ELF file that cannot be parsed is skipped (patchelf prints nothing for
//! it). Files are checked in parallel on the current rayon pool.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{StepError, TmpdirReference};
use crate::{elf, fsx, Outcome};

/// Fails with [`StepError::TmpdirReferences`] if files under `dir` refer to `build_top`.
pub fn audit_tmpdir(dir: &Path, build_top: &Path, all_scripts: bool) -> Result<Outcome, StepError> {
    let mut needle = build_top.as_os_str().as_bytes().to_vec();
    while needle.len() > 1 && needle.ends_with(b"/") {
        needle.pop();
    }
    needle.push(b'/');
    let finder = memchr::memmem::Finder::new(&needle);
    let entries = fsx::walk(dir)?;
    let files: Vec<_> = fsx::unique_files(&entries)
        .into_iter()
        .filter(|entry| !fsx::in_build_id(&entry.path))
        .collect();
    let found = fsx::par_map(&files, |entry| {
        check_file(&entry.path, &needle, &finder, all_scripts)
    })?;
    let found: Vec<_> = found.into_iter().flatten().collect();
    if found.is_empty() {
        Ok(Outcome::default())
    } else {
        Err(StepError::TmpdirReferences {
            dir: dir.to_owned(),
            build_top: build_top.to_owned(),
            found,
        })
    }
}

fn check_file(
    path: &Path,
    needle: &[u8],
    finder: &memchr::memmem::Finder<'_>,
    all_scripts: bool,
) -> Result<Option<TmpdirReference>, StepError> {
    let mut head = [0u8; 4];
    let n = fsx::read_head(path, &mut head)?;
    if n == 4 && head == *b"\x7fELF" {
        let bytes = fsx::read(path)?;
        let Ok(Some(info)) = elf::dyn_info(&bytes) else {
            return Ok(None);
        };
        // stdenv: `{ printf :; patchelf --print-rpath "$i"; } | grep -q -F ":$TMPDIR/"`.
        let dir_itself = &needle[..needle.len() - 1];
        for search_path in &info.search_paths {
            let hit = search_path
                .value
                .split(|&b| b == b':')
                .any(|entry| entry.starts_with(needle) || entry == dir_itself);
            if hit {
                return Ok(Some(TmpdirReference {
                    path: path.to_owned(),
                    place: search_path.kind,
                }));
            }
        }
        return Ok(None);
    }
    if n >= 2 && head[..2] == *b"#!" && (all_scripts || is_wrapper(path)) {
        let bytes = fsx::read(path)?;
        if finder.find(&bytes).is_some() {
            return Ok(Some(TmpdirReference {
                path: path.to_owned(),
                place: "script",
            }));
        }
    }
    Ok(None)
}

/// `true` if `.NAME-wrapped` exists next to `path` (made by `wrapProgram`).
fn is_wrapper(path: &Path) -> bool {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let mut wrapped = std::ffi::OsString::from(".");
    wrapped.push(name);
    wrapped.push("-wrapped");
    let wrapped: PathBuf = parent.join(wrapped);
    wrapped.exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{greet_library, greet_program, write};

    #[test]
    fn rpath_into_the_build_directory_fails_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let build = tmp.path().join("build");
        let libs = build.join("source/.libs");
        greet_library(&libs);
        let out = tmp.path().join("out");
        let program = out.join("bin/hello");
        let rpath = format!("-Wl,-rpath,/usr/lib:{}", libs.display());
        greet_program(&program, &libs, &[&rpath]);
        // A file that merely mentions the build directory is not an RPATH reference.
        write(
            &out.join("share/doc/notes"),
            format!("built in {}/x", build.display()),
            0o644,
        );

        let err = audit_tmpdir(&out, &build, false).unwrap_err();

        assert_eq!(
            err.to_string(),
            format!(
                "1 file(s) in `{}` refer to the build directory `{}`:\n  `{}` (RUNPATH)",
                out.display(),
                build.display(),
                program.display()
            )
        );
        // Without the build directory in it, the same program passes.
        let clean = tmp.path().join("clean");
        greet_program(&clean.join("bin/hello"), &libs, &["-Wl,-rpath,/usr/lib"]);
        assert_eq!(
            audit_tmpdir(&clean, &build, false).unwrap(),
            Outcome::default()
        );
    }

    #[test]
    fn wrapper_scripts_are_checked_and_all_scripts_on_request() {
        let tmp = tempfile::tempdir().unwrap();
        let build = tmp.path().join("build");
        let out = tmp.path().join("out");
        let text = format!("#!/bin/sh\nexport PATH={}/tools:$PATH\n", build.display());
        write(&out.join("bin/plain"), &text, 0o755);
        write(&out.join("bin/.wrapped-not"), "", 0o755);
        assert_eq!(
            audit_tmpdir(&out, &build, false).unwrap(),
            Outcome::default()
        );
        let StepError::TmpdirReferences { found, .. } =
            audit_tmpdir(&out, &build, true).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(
            found,
            [TmpdirReference {
                path: out.join("bin/plain"),
                place: "script"
            }]
        );
        write(&out.join("bin/.plain-wrapped"), "binary", 0o755);
        let StepError::TmpdirReferences { found, .. } =
            audit_tmpdir(&out, &build, false).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(found[0].path, out.join("bin/plain"));
    }
}
