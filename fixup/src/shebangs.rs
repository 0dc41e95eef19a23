//! Patching script interpreters: replaces stdenv's `patch-shebangs.sh` (`patchShebangsAuto`,
//! i.e. `patchShebangs --host "$prefix"`).
//!
//! A script is a regular file with the owner's execute bit whose first two bytes are `#!`. Its
//! first line is split like bash's `read -r oldPath arg0 args` and rewritten as stdenv does:
//!
//! | first line                   | becomes                                   |
//! |------------------------------|-------------------------------------------|
//! | `#!/bin/sh`                  | `#!<dir>/sh`                              |
//! | `#!/usr/bin/perl -w`         | `#!<dir>/perl -w`                         |
//! | `#!/usr/bin/env python3`     | `#!<dir>/python3`                         |
//! | `#!/usr/bin/env -S bash -e`  | `#!<dir>/env -S <dir>/bash -e`            |
//! | `#!` (nothing)               | `#!<dir>/sh` (the kernel's default)       |
//!
//! where `<dir>` is the first directory of the search path (stdenv: `HOST_PATH`) holding an
//! executable of that name. Trailing whitespace of the new line is dropped. Interpreters already
//! under the store directory are left alone, and so is a line whose lookup gives the same path.
//! Contents after the first line, the mode and the access and modification times are kept; the
//! file is rewritten in place (same inode, so hard links stay linked), temporarily made writable
//! if it is read-only.
//!
//! Differences from stdenv: an interpreter that is not found leaves the line unchanged with a
//! warning (stdenv says nothing; for `env -S` it would even write a line with an empty
//! interpreter); a store-path `env` with unsupported options is left alone instead of failing.
//! Like stdenv, `env` with an option other than `-S` or a `NAME=value` argument is an error
//! ([`StepError::UnsupportedShebang`]).

use std::fs::{self, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::StepError;
use crate::strip::find_program;
use crate::{fsx, Outcome, Warning};

/// What [`patch_shebang`] did to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shebang {
    /// Not a script, or nothing to change (already in the store, or the same path).
    Unchanged,
    /// The first line was rewritten.
    Patched {
        /// The old first line, without `#!` (lossily decoded).
        old: String,
        /// The new first line, without `#!`.
        new: String,
    },
    /// The interpreter is not in the search path; the file is unchanged.
    NotFound {
        /// The first line, without `#!`.
        line: String,
        /// The name that was looked up.
        interpreter: String,
    },
}

/// The decision for one interpreter line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Keep,
    Rewrite(Vec<u8>),
    NotFound(Vec<u8>),
    Unsupported,
}

fn is_ifs(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n')
}

fn trim_start_ifs(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ifs(b))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn split_word(bytes: &[u8]) -> (&[u8], &[u8]) {
    let bytes = trim_start_ifs(bytes);
    let end = bytes.iter().position(|&b| is_ifs(b)).unwrap_or(bytes.len());
    (&bytes[..end], trim_start_ifs(&bytes[end..]))
}

/// `read -r a b c <<< line`: two words, then the rest without surrounding IFS whitespace.
fn read3(line: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let (first, rest) = split_word(line);
    let (second, rest) = split_word(rest);
    let end = rest.iter().rposition(|&b| !is_ifs(b)).map_or(0, |i| i + 1);
    (first, second, &rest[..end])
}

fn trim_end_space(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes
        .last()
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
    {
        bytes.pop();
    }
    bytes
}

fn lookup(name: &[u8], path_dirs: &[PathBuf]) -> Option<Vec<u8>> {
    let name = std::str::from_utf8(name).ok()?;
    find_program(name, path_dirs).map(|path| path.into_os_string().into_encoded_bytes())
}

fn basename(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    let path = &path[..end];
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) if path.len() > 1 => &path[i + 1..],
        _ => path,
    }
}

/// Decides the new interpreter line for `line` (the first line without `#!` and newline).
fn plan(line: &[u8], path_dirs: &[PathBuf], store_dir: &[u8]) -> Plan {
    let (old_path, arg0, args) = read3(line);
    let in_store = |path: &[u8]| path.starts_with(store_dir);
    let (new_path, new_line) = if old_path.ends_with(b"/bin/env") {
        if in_store(old_path) {
            return Plan::Keep;
        }
        if arg0 == b"-S" {
            let (name, rest) = match args.iter().position(|&b| b == b' ') {
                Some(i) => (&args[..i], &args[i + 1..]),
                None => (args, &b""[..]),
            };
            let Some(env) = lookup(b"env", path_dirs) else {
                return Plan::NotFound(b"env".to_vec());
            };
            let Some(interpreter) = lookup(name, path_dirs) else {
                return Plan::NotFound(name.to_vec());
            };
            let line = [&env[..], b" -S ", &interpreter, b" ", rest].concat();
            (env, line)
        } else if arg0.starts_with(b"-") || arg0.contains(&b'=') {
            return Plan::Unsupported;
        } else {
            let Some(interpreter) = lookup(arg0, path_dirs) else {
                return Plan::NotFound(arg0.to_vec());
            };
            let line = [&interpreter[..], b" ", args].concat();
            (interpreter, line)
        }
    } else {
        // No interpreter: the kernel runs `/bin/sh`.
        let old_path = if old_path.is_empty() {
            &b"/bin/sh"[..]
        } else {
            old_path
        };
        if in_store(old_path) {
            return Plan::Keep;
        }
        let name = basename(old_path);
        let Some(interpreter) = lookup(name, path_dirs) else {
            return Plan::NotFound(name.to_vec());
        };
        let line = [&interpreter[..], b" ", arg0, b" ", args].concat();
        if interpreter == old_path {
            return Plan::Keep;
        }
        (interpreter, line)
    };
    if new_path == old_path {
        return Plan::Keep;
    }
    Plan::Rewrite(trim_end_space(new_line))
}

/// Patches the interpreter line of one file, whatever its mode (callers select executables).
pub fn patch_shebang(
    file: &Path,
    path_dirs: &[PathBuf],
    store_dir: &Path,
) -> Result<Shebang, StepError> {
    if !fsx::is_script(file)? {
        return Ok(Shebang::Unchanged);
    }
    let meta = fsx::metadata(file)?;
    let contents = fsx::read(file)?;
    let line_end = memchr::memchr(b'\n', &contents).unwrap_or(contents.len());
    let line = &contents[2..line_end];
    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let new = match plan(line, path_dirs, store_dir.as_os_str().as_bytes()) {
        Plan::Keep => return Ok(Shebang::Unchanged),
        Plan::NotFound(name) => {
            return Ok(Shebang::NotFound {
                line: lossy(line),
                interpreter: lossy(&name),
            })
        }
        Plan::Unsupported => {
            return Err(StepError::UnsupportedShebang {
                path: file.to_owned(),
                line: format!("#!{}", lossy(line)),
            })
        }
        Plan::Rewrite(new) => new,
    };
    let patched = [b"#!", &new[..], &contents[line_end..]].concat();
    let times = FileTimes::new()
        .set_accessed(meta.accessed().unwrap_or(std::time::UNIX_EPOCH))
        .set_modified(meta.modified().unwrap_or(std::time::UNIX_EPOCH));
    fsx::with_writable(file, meta.mode(), || {
        let write_error = |source| StepError::Write {
            path: file.to_owned(),
            source,
        };
        let mut handle = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(file)
            .map_err(write_error)?;
        handle.write_all(&patched).map_err(write_error)?;
        handle
            .set_times(times)
            .map_err(|source| StepError::SetTimes {
                path: file.to_owned(),
                source,
            })
    })?;
    Ok(Shebang::Patched {
        old: lossy(line),
        new: lossy(&new),
    })
}

/// Patches every script under `dir` (files with the owner's execute bit), each inode once, in
/// parallel on the current rayon pool. Interpreters not found are warnings.
pub fn patch_shebangs(
    dir: &Path,
    path_dirs: &[PathBuf],
    store_dir: &Path,
) -> Result<Outcome, StepError> {
    patch_entries(fsx::walk(dir)?, path_dirs, store_dir)
}

/// stdenv's `patchShebangs PATH...` on files of the build (sources, generated scripts): each
/// path is a script or a directory walked for scripts, without following symlinks, as
/// [`patch_shebangs`] does for an output. A path that does not exist is an error (stdenv's
/// `find` only complains on stderr; a typo should not pass silently).
pub fn patch_shebangs_paths(
    paths: &[PathBuf],
    path_dirs: &[PathBuf],
    store_dir: &Path,
) -> Result<Outcome, StepError> {
    let mut entries = Vec::new();
    for path in paths {
        let meta = fs::symlink_metadata(path).map_err(|source| StepError::Metadata {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            entries.extend(fsx::walk(path)?);
        } else {
            entries.push(fsx::Entry::new(path.clone(), &meta));
        }
    }
    patch_entries(entries, path_dirs, store_dir)
}

fn patch_entries(
    entries: Vec<fsx::Entry>,
    path_dirs: &[PathBuf],
    store_dir: &Path,
) -> Result<Outcome, StepError> {
    let files: Vec<_> = fsx::unique_files(&entries)
        .into_iter()
        .filter(|entry| entry.mode & 0o100 != 0)
        .collect();
    let results = fsx::par_map(&files, |entry| {
        patch_shebang(&entry.path, path_dirs, store_dir)
    })?;
    let mut outcome = Outcome::default();
    for (entry, result) in files.iter().zip(results) {
        match result {
            Shebang::Unchanged => {}
            Shebang::Patched { .. } => outcome.changed.push(entry.path.clone()),
            Shebang::NotFound { line, interpreter } => outcome.warnings.push(Warning {
                path: entry.path.clone(),
                message: format!(
                    "interpreter `{interpreter}` not found in the search path; `#!{line}` left unchanged"
                ),
            }),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::testutil::{first_line, write};

    struct Fixture {
        _tmp: tempfile::TempDir,
        out: PathBuf,
        tools: PathBuf,
        store: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let tools = store.join("0c6kzph7l0dcbfmjap64f0czdafn3b7x-tools/bin");
        for name in ["sh", "perl", "python3", "bash", "env"] {
            write(&tools.join(name), "", 0o755);
        }
        write(&tools.join("not-executable"), "", 0o644);
        Fixture {
            out: tmp.path().join("out"),
            tools,
            store,
            _tmp: tmp,
        }
    }

    fn new_line(fx: &Fixture, line: &str) -> Plan {
        plan(
            line.as_bytes(),
            std::slice::from_ref(&fx.tools),
            fx.store.as_os_str().as_bytes(),
        )
    }

    #[test]
    fn plans_every_form_like_stdenv() {
        let fx = fixture();
        let t = fx.tools.display().to_string();
        let rewrite = |s: String| Plan::Rewrite(s.into_bytes());
        assert_eq!(new_line(&fx, "/bin/sh"), rewrite(format!("{t}/sh")));
        assert_eq!(
            new_line(&fx, "/usr/bin/perl -w"),
            rewrite(format!("{t}/perl -w"))
        );
        assert_eq!(
            new_line(&fx, "/usr/bin/env python3"),
            rewrite(format!("{t}/python3"))
        );
        assert_eq!(
            new_line(&fx, "/usr/bin/env -S bash -e"),
            rewrite(format!("{t}/env -S {t}/bash -e"))
        );
        assert_eq!(
            new_line(&fx, "/usr/bin/env -S bash"),
            rewrite(format!("{t}/env -S {t}/bash"))
        );
        // No interpreter: the kernel's /bin/sh.
        assert_eq!(new_line(&fx, ""), rewrite(format!("{t}/sh")));
        // Split like bash's `read`: the first two words lose their surrounding blanks, the
        // rest keeps its inner ones; trailing whitespace (even CR) is dropped.
        assert_eq!(
            new_line(&fx, " /bin/sh   -e  -x   -y \t\r"),
            rewrite(format!("{t}/sh -e -x   -y"))
        );
        assert_eq!(
            new_line(&fx, "/usr/bin/env python3 -u -O"),
            rewrite(format!("{t}/python3 -u -O"))
        );
    }

    #[test]
    fn leaves_store_paths_and_missing_interpreters_alone() {
        let fx = fixture();
        let in_store = format!("{}/x-bash/bin/bash -e", fx.store.display());
        assert_eq!(new_line(&fx, &in_store), Plan::Keep);
        let env_in_store = format!("{}/x-coreutils/bin/env python3", fx.store.display());
        assert_eq!(new_line(&fx, &env_in_store), Plan::Keep);
        // Already the path the search gives.
        assert_eq!(
            new_line(&fx, &format!("{}/sh", fx.tools.display())),
            Plan::Keep
        );
        assert_eq!(
            new_line(&fx, "/usr/bin/ruby"),
            Plan::NotFound(b"ruby".to_vec())
        );
        assert_eq!(
            new_line(&fx, "/usr/bin/env ruby"),
            Plan::NotFound(b"ruby".to_vec())
        );
        assert_eq!(
            new_line(&fx, "/usr/bin/env -S zsh -f"),
            Plan::NotFound(b"zsh".to_vec())
        );
        // Not executable: `type -P` skips it.
        assert_eq!(
            new_line(&fx, "/bin/not-executable"),
            Plan::NotFound(b"not-executable".to_vec())
        );
        assert_eq!(new_line(&fx, "/usr/bin/env -i sh"), Plan::Unsupported);
        assert_eq!(new_line(&fx, "/usr/bin/env A=b sh"), Plan::Unsupported);
    }

    #[test]
    fn patches_scripts_in_place_keeping_mode_and_mtime() {
        let fx = fixture();
        let t = fx.tools.display().to_string();
        let scripts = [
            ("bin/sh-script", "#!/bin/sh\necho hi\n", format!("#!{t}/sh")),
            (
                "bin/perl-script",
                "#!/usr/bin/perl -w\nprint 1;\n",
                format!("#!{t}/perl -w"),
            ),
            (
                "bin/py",
                "#!/usr/bin/env python3\nprint(1)\n",
                format!("#!{t}/python3"),
            ),
            (
                "libexec/bash-s",
                "#!/usr/bin/env -S bash -e\ntrue\n",
                format!("#!{t}/env -S {t}/bash -e"),
            ),
            // No newline at all: the file is just the line.
            ("bin/oneline", "#!/bin/sh", format!("#!{t}/sh")),
        ];
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for (path, text, _) in &scripts {
            let path = fx.out.join(path);
            write(&path, text, 0o751);
            let file = fs::File::options().write(true).open(&path).unwrap();
            file.set_times(FileTimes::new().set_modified(old).set_accessed(old))
                .unwrap();
        }
        let read_only = fx.out.join("bin/read-only");
        write(&read_only, "#!/bin/sh\n", 0o555);
        let not_executable = fx.out.join("share/not-executable.sh");
        write(&not_executable, "#!/bin/sh\n", 0o644);
        let missing = fx.out.join("bin/ruby-script");
        write(&missing, "#!/usr/bin/ruby\n", 0o755);

        let outcome = patch_shebangs(&fx.out, std::slice::from_ref(&fx.tools), &fx.store).unwrap();

        for (path, text, expected) in &scripts {
            let path = fx.out.join(path);
            assert_eq!(first_line(&path), *expected, "{}", path.display());
            let rest = &text[text.find('\n').unwrap_or(text.len())..];
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                format!("{expected}{rest}")
            );
            let meta = fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, 0o751);
            assert_eq!(meta.modified().unwrap(), old);
        }
        assert_eq!(first_line(&read_only), format!("#!{t}/sh"));
        assert_eq!(fs::metadata(&read_only).unwrap().mode() & 0o7777, 0o555);
        assert_eq!(first_line(&not_executable), "#!/bin/sh");
        assert_eq!(first_line(&missing), "#!/usr/bin/ruby");
        assert_eq!(outcome.changed.len(), scripts.len() + 1);
        assert_eq!(
            outcome.warnings,
            [Warning {
                path: missing,
                message: "interpreter `ruby` not found in the search path; \
                          `#!/usr/bin/ruby` left unchanged"
                    .to_owned()
            }]
        );
    }

    #[test]
    fn hard_links_are_patched_once_and_stay_linked() {
        let fx = fixture();
        let a = fx.out.join("bin/a");
        write(&a, "#!/bin/sh\n", 0o755);
        fs::hard_link(&a, fx.out.join("bin/b")).unwrap();
        let outcome = patch_shebangs(&fx.out, std::slice::from_ref(&fx.tools), &fx.store).unwrap();
        assert_eq!(outcome.changed, std::slice::from_ref(&a));
        let (ma, mb) = (
            fs::metadata(&a).unwrap(),
            fs::metadata(fx.out.join("bin/b")).unwrap(),
        );
        assert_eq!(ma.ino(), mb.ino());
        assert_eq!(
            first_line(&fx.out.join("bin/b")),
            format!("#!{}/sh", fx.tools.display())
        );
    }

    #[test]
    fn unsupported_env_options_fail_naming_the_file() {
        let fx = fixture();
        let script = fx.out.join("bin/x");
        write(&script, "#!/usr/bin/env -i sh\n", 0o755);
        let err = patch_shebangs(&fx.out, std::slice::from_ref(&fx.tools), &fx.store).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` has the unsupported interpreter directive `#!/usr/bin/env -i sh`; \
                 disable `patch_shebangs` for this output and patch it yourself",
                script.display()
            )
        );
    }

    #[test]
    fn named_paths_are_scripts_or_directories_and_must_exist() {
        let fx = fixture();
        let t = fx.tools.display();
        let configure = fx.out.join("configure");
        write(&configure, "#! /bin/sh\n", 0o755);
        let runner = fx.out.join("test/runner.py");
        write(&runner, "#!/usr/bin/env python3\n", 0o755);
        let other = fx.out.join("other/script");
        write(&other, "#!/bin/sh\n", 0o755);
        std::os::unix::fs::symlink("other/script", fx.out.join("link")).unwrap();
        let tools = std::slice::from_ref(&fx.tools);

        let paths = [configure.clone(), fx.out.join("test"), fx.out.join("link")];
        let outcome = patch_shebangs_paths(&paths, tools, &fx.store).unwrap();
        assert_eq!(outcome.changed, [configure.clone(), runner.clone()]);
        assert_eq!(first_line(&configure), format!("#!{t}/sh"));
        assert_eq!(first_line(&runner), format!("#!{t}/python3"));
        // Neither named nor below a named directory; a symlink is not followed.
        assert_eq!(first_line(&other), "#!/bin/sh");

        let missing = fx.out.join("tests");
        let err =
            patch_shebangs_paths(std::slice::from_ref(&missing), tools, &fx.store).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read the metadata of `{}`", missing.display())
        );
    }
}
