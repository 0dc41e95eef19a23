//! Stripping: replaces stdenv's `strip.sh` (`_doStrip`, the last `fixupOutputHooks` entry).
//!
//! [`strip_dir`] runs the `strip` program found in the search path over the regular files of
//! the output's `stripDebugList` directories (default `lib lib32 lib64 libexec bin sbin`) with
//! `stripDebugFlags` (default `-S -p`: debug symbols only, keep timestamps), then over the
//! `stripAllList` directories (default none) with `stripAllFlags` (default `-s -p`). Static
//! archives get `ranlib` afterwards, since `strip` drops their symbol index. `lib/debug/` is
//! skipped (separate debug info lives there), and so are the files `stripExclude` names: a
//! pattern matches a file's base name, or its whole path when put after the output's path
//! (stdenv's `find -name P -o -wholename "$prefix/P"`; `*` matches `/` there too).
//!
//! Differences from stdenv: only ELF files and `ar` archives are handed to `strip` (stdenv hands
//! it everything and ignores the errors); each inode is stripped once even when hard-linked
//! (stdenv dedupes by `realpath`, which does not catch hard links); files are passed to `strip`
//! in batches, several batches at a time on the current rayon pool, and a failing batch is
//! retried file by file so a failure names its file. A file `strip` rejects is a warning, as
//! stdenv ignores `strip`'s failures too. Without a `strip` in the search path the step does
//! nothing and says so, like stdenv when `$STRIP` is not a command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::os::unix::ffi::OsStrExt;

use crate::error::StepError;
use crate::outputs::glob_match;
use crate::{fsx, Outcome, Warning};

/// What to strip and how; [`Default`] gives stdenv's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripOptions {
    /// Directories, relative to the output, whose files lose their debug symbols
    /// (`stripDebugList`).
    pub debug_list: Vec<String>,
    /// Flags for them (`stripDebugFlags`).
    pub debug_flags: Vec<String>,
    /// Directories whose files lose all symbols (`stripAllList`).
    pub all_list: Vec<String>,
    /// Flags for them (`stripAllFlags`).
    pub all_flags: Vec<String>,
    /// Shell patterns of files never stripped (`stripExclude`).
    pub exclude: Vec<String>,
}

impl Default for StripOptions {
    fn default() -> Self {
        let words = |s: &str| s.split(' ').map(str::to_owned).collect();
        StripOptions {
            debug_list: words("lib lib32 lib64 libexec bin sbin"),
            debug_flags: words("-S -p"),
            all_list: Vec::new(),
            all_flags: words("-s -p"),
            exclude: Vec::new(),
        }
    }
}

/// Looks `name` up in `path_dirs` like the shell's `type -P`: the first `dir/name` that is an
/// executable regular file (symlinks followed).
pub fn find_program(name: &str, path_dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    path_dirs
        .iter()
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Strips the output at `prefix` as stdenv's `_doStrip` does: `options.debug_list` with
/// `options.debug_flags`, then `options.all_list` with `options.all_flags`.
pub fn strip_dir(
    prefix: &Path,
    options: &StripOptions,
    path_dirs: &[PathBuf],
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let Some(strip) = find_program("strip", path_dirs) else {
        outcome.warnings.push(Warning {
            path: prefix.to_owned(),
            message: "no `strip` in the search path; nothing stripped".to_owned(),
        });
        return Ok(outcome);
    };
    let ranlib = find_program("ranlib", path_dirs);
    let exclude = Exclude::new(prefix, &options.exclude);
    for (dirs, flags) in [
        (&options.debug_list, &options.debug_flags),
        (&options.all_list, &options.all_flags),
    ] {
        let dirs: Vec<PathBuf> = dirs.iter().map(|dir| prefix.join(dir)).collect();
        let one = strip_dirs(prefix, &dirs, flags, &strip, ranlib.as_deref(), &exclude)?;
        outcome.changed.extend(one.changed);
        outcome.warnings.extend(one.warnings);
    }
    Ok(outcome)
}

/// The files `stripExclude` keeps from `strip`, for one output.
#[derive(Debug, Default)]
pub struct Exclude {
    prefix: PathBuf,
    patterns: Vec<String>,
}

impl Exclude {
    /// `patterns` (shell patterns: `*`, `?`, `[...]`; an unclosed `[` is itself, as in
    /// fnmatch(3)) for the output at `prefix`.
    pub fn new(prefix: &Path, patterns: &[String]) -> Exclude {
        Exclude {
            prefix: prefix.to_owned(),
            patterns: patterns.to_vec(),
        }
    }

    /// `true` if `path` (under the output) is excluded: a pattern matches its base name
    /// (`find -name P`) or its path below the output (`find -wholename "$prefix/P"`, where `*`
    /// matches `/` too; the prefix is taken literally).
    pub fn matches(&self, path: &Path) -> bool {
        let name = path.file_name().map(OsStrExt::as_bytes).unwrap_or_default();
        let below = path
            .strip_prefix(&self.prefix)
            .ok()
            .map(|below| below.as_os_str().as_bytes());
        self.patterns.iter().any(|pattern| {
            let pattern = pattern.as_bytes();
            glob_match(pattern, name) || below.is_some_and(|below| glob_match(pattern, below))
        })
    }
}

/// Strips the ELF files and `ar` archives under `dirs` (stdenv's `stripDirs`) with `strip`
/// and `flags`, then runs `ranlib` on the archives. `prefix/lib/debug` and the files `exclude`
/// matches are skipped.
pub fn strip_dirs(
    prefix: &Path,
    dirs: &[PathBuf],
    flags: &[String],
    strip: &Path,
    ranlib: Option<&Path>,
    exclude: &Exclude,
) -> Result<Outcome, StepError> {
    let mut entries = Vec::new();
    for dir in dirs {
        entries.extend(fsx::walk(dir)?);
    }
    let debug_dir = prefix.join("lib/debug");
    // Names are excluded before hard links are merged, as stdenv's `find` filters names and
    // only then dedupes inodes: an excluded name does not hide the other names of its file.
    entries.retain(|entry| !entry.path.starts_with(&debug_dir) && !exclude.matches(&entry.path));
    let candidates = fsx::unique_files(&entries);
    let kinds = fsx::par_map(&candidates, |entry| {
        let mut head = [0u8; 8];
        let n = fsx::read_head(&entry.path, &mut head)?;
        Ok(if n >= 4 && head[..4] == *b"\x7fELF" {
            Some(false)
        } else if n == 8 && head == *b"!<arch>\n" {
            Some(true)
        } else {
            None
        })
    })?;
    let mut files = Vec::new();
    let mut archives = Vec::new();
    for (entry, kind) in candidates.iter().zip(kinds) {
        if let Some(is_archive) = kind {
            files.push(entry.path.clone());
            if is_archive {
                archives.push(entry.path.clone());
            }
        }
    }
    let mut outcome = Outcome::default();
    if files.is_empty() {
        return Ok(outcome);
    }
    let failures = run_batched(strip, flags, &files)?;
    for file in &files {
        if let Some((_, message)) = failures.iter().find(|(failed, _)| failed == file) {
            outcome.warnings.push(Warning {
                path: file.clone(),
                message: format!("`strip` failed: {message}"),
            });
        } else {
            outcome.changed.push(file.clone());
        }
    }
    if !archives.is_empty() {
        match ranlib {
            Some(ranlib) => {
                for (file, message) in run_batched(ranlib, &[], &archives)? {
                    outcome.warnings.push(Warning {
                        path: file,
                        message: format!("`ranlib` failed: {message}"),
                    });
                }
            }
            None => outcome.warnings.push(Warning {
                path: prefix.to_owned(),
                message: "no `ranlib` in the search path; static archives keep no symbol index"
                    .to_owned(),
            }),
        }
    }
    Ok(outcome)
}

/// Runs `program flags... files...` over batches of `files` on the current rayon pool; returns
/// the files it failed on, with its stderr.
fn run_batched(
    program: &Path,
    flags: &[String],
    files: &[PathBuf],
) -> Result<Vec<(PathBuf, String)>, StepError> {
    let threads = rayon::current_num_threads().max(1);
    // A few batches per thread balance uneven file sizes; a cap keeps command lines short.
    let size = files.len().div_ceil(threads * 4).clamp(1, 64);
    let batches: Vec<&[PathBuf]> = files.chunks(size).collect();
    let failures = fsx::par_map(&batches, |batch| {
        let Some(message) = run(program, flags, batch)? else {
            return Ok(Vec::new());
        };
        if batch.len() == 1 {
            return Ok(vec![(batch[0].clone(), message)]);
        }
        let mut failed = Vec::new();
        for file in batch.iter() {
            if let Some(message) = run(program, flags, std::slice::from_ref(file))? {
                failed.push((file.clone(), message));
            }
        }
        Ok(failed)
    })?;
    Ok(failures.into_iter().flatten().collect())
}

/// Runs `program flags... files...` once; `Ok(None)` on success, `Ok(Some(stderr))` on failure.
pub(crate) fn run(
    program: &Path,
    flags: &[String],
    files: &[PathBuf],
) -> Result<Option<String>, StepError> {
    let output = Command::new(program)
        .args(flags)
        .args(files)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| StepError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(None);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Ok(Some(if stderr.is_empty() {
        format!("exited with {}", output.status)
    } else {
        stderr
    }))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::testutil::{
        debug_sections, greet_library, greet_program, host_path, section_names, write,
    };

    #[test]
    fn strip_exclude_matches_base_names_and_whole_paths_like_find() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let by_name = greet_library(&out.join("lib/a"));
        let by_path = greet_library(&out.join("lib/plugins/deep"));
        let stripped = greet_library(&out.join("lib/b"));
        let options = StripOptions {
            // `*` crosses `/` in the whole-path form, as in find's -wholename.
            exclude: vec!["lib/plugins*".to_owned(), "libgreet.so".to_owned()],
            ..StripOptions::default()
        };
        // The name pattern excludes every libgreet.so; rename one so the path form is needed.
        let renamed = by_path.with_file_name("libother.so");
        fs::rename(&by_path, &renamed).unwrap();
        let kept_name = stripped.with_file_name("libkept.so");
        fs::rename(&stripped, &kept_name).unwrap();
        let outcome = strip_dir(&out, &options, &host_path()).unwrap();
        assert_eq!(outcome.changed, vec![kept_name.clone()]);
        assert!(debug_sections(&kept_name).is_empty());
        assert!(!debug_sections(&by_name).is_empty());
        assert!(!debug_sections(&renamed).is_empty());

        // An excluded name does not protect another name of the same file (stdenv's `find`
        // filters names before hard links are merged).
        let other_name = out.join("lib/a/other.so");
        fs::hard_link(&by_name, &other_name).unwrap();
        let outcome = strip_dir(&out, &options, &host_path()).unwrap();
        assert!(outcome.changed.contains(&other_name), "{outcome:?}");
        assert!(debug_sections(&by_name).is_empty());

        // An unclosed `[` is a literal `[`, as in fnmatch(3): no error, no match here.
        let literal = StripOptions {
            exclude: vec!["[a-".to_owned()],
            ..StripOptions::default()
        };
        strip_dir(&out, &literal, &host_path()).unwrap();
    }

    #[test]
    fn strips_debug_sections_once_per_inode_and_skips_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let library = greet_library(&out.join("lib"));
        let program = out.join("bin/hello");
        greet_program(&program, &out.join("lib"), &[]);
        fs::hard_link(&program, out.join("bin/hello-link")).unwrap();
        let kept_debug = greet_library(&out.join("lib/debug"));
        let not_listed = greet_library(&out.join("share/plugins"));
        write(&out.join("bin/script"), "#!/bin/sh\n", 0o755);
        for file in [&library, &program, &kept_debug, &not_listed] {
            assert!(!debug_sections(file).is_empty(), "{}", file.display());
        }
        let mtime = fs::metadata(&program).unwrap().mtime();
        let symbols_before = section_names(&program).contains(&".symtab".to_owned());

        let outcome = strip_dir(&out, &StripOptions::default(), &host_path()).unwrap();

        // One entry for the two names of `hello`; the script is not handed to `strip`.
        assert_eq!(outcome.changed, [library.clone(), program.clone()]);
        assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
        for file in [&library, &program, &out.join("bin/hello-link")] {
            assert_eq!(
                debug_sections(file),
                Vec::<String>::new(),
                "{}",
                file.display()
            );
        }
        // `-S` keeps the symbol table; `-p` keeps the modification time.
        assert_eq!(
            section_names(&program).contains(&".symtab".to_owned()),
            symbols_before
        );
        assert_eq!(fs::metadata(&program).unwrap().mtime(), mtime);
        // lib/debug and directories outside stripDebugList are untouched.
        assert!(!debug_sections(&kept_debug).is_empty());
        assert!(!debug_sections(&not_listed).is_empty());
        assert_eq!(
            fs::read_to_string(out.join("bin/script")).unwrap(),
            "#!/bin/sh\n"
        );
        // The program still runs.
        let run = std::process::Command::new(&program)
            .env("LD_LIBRARY_PATH", out.join("lib"))
            .output()
            .unwrap();
        assert_eq!(run.stdout, b"hello from greet\n");
    }

    #[test]
    fn strip_all_list_removes_the_symbol_table() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let plugin = greet_library(&out.join("share/plugins"));
        let options = StripOptions {
            all_list: vec!["share/plugins".to_owned()],
            ..StripOptions::default()
        };
        let outcome = strip_dir(&out, &options, &host_path()).unwrap();
        assert_eq!(outcome.changed, std::slice::from_ref(&plugin));
        let names = section_names(&plugin);
        assert!(!names.contains(&".symtab".to_owned()), "{names:?}");
        assert_eq!(debug_sections(&plugin), Vec::<String>::new());
    }

    #[test]
    fn archives_get_their_index_back_and_failures_are_warnings() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let object = tmp.path().join("greet.o");
        let source = tmp.path().join("greet.c");
        fs::write(&source, "int greet(void) { return 1; }\n").unwrap();
        crate::testutil::cc(&[
            "-g",
            "-c",
            "-o",
            object.to_str().unwrap(),
            source.to_str().unwrap(),
        ]);
        let archive = out.join("lib/libgreet.a");
        fs::create_dir_all(archive.parent().unwrap()).unwrap();
        let status = Command::new("ar")
            .arg("rcs")
            .arg(&archive)
            .arg(&object)
            .status()
            .unwrap();
        assert!(status.success());
        // Starts like ELF, but `strip` cannot read it.
        write(
            &out.join("lib/broken.so"),
            "\x7fELF\x02\x01\x01 garbage",
            0o644,
        );

        let outcome = strip_dir(&out, &StripOptions::default(), &host_path()).unwrap();

        assert_eq!(outcome.changed, std::slice::from_ref(&archive));
        assert_eq!(outcome.warnings.len(), 1);
        assert_eq!(outcome.warnings[0].path, out.join("lib/broken.so"));
        assert!(outcome.warnings[0].message.starts_with("`strip` failed: "));
        // `nm --print-armap` shows the index that ranlib restored.
        let armap = Command::new("nm")
            .arg("--print-armap")
            .arg(&archive)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&armap.stdout).contains("greet in greet.o"));
    }

    #[test]
    fn no_strip_program_is_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        greet_library(&out.join("lib"));
        let outcome =
            strip_dir(&out, &StripOptions::default(), &[tmp.path().join("empty")]).unwrap();
        assert!(outcome.changed.is_empty());
        assert_eq!(
            outcome.warnings[0].message,
            "no `strip` in the search path; nothing stripped"
        );
    }
}
