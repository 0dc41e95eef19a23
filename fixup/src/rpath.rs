//! Shrinking RPATHs: replaces `patchelf --shrink-rpath`, which stdenv runs on every ELF file of
//! every output (`patchELF` in patchelf's setup hook, the first `fixupOutputHooks` entry).
//!
//! [`shrink_rpath`] keeps an entry of `DT_RUNPATH` / `DT_RPATH` if it is not absolute (`$ORIGIN`
//! and friends are kept as patchelf does) or if it holds a `DT_NEEDED` library, of the file's
//! machine type, that no earlier entry already provides. The shorter string is written in place
//! over the old one in `.dynstr` and NUL-padded, so the file's layout does not change and no
//! trace of the dropped directories (often store paths, hence references) is left. patchelf pads
//! with `X` characters instead; the NULs read the same to the dynamic loader.
//!
//! Differences from patchelf: the edit is done in-process, without the `patchelf` binary; a file
//! whose RPATH string is shared with another `.dynstr` string (a linker tail-merge: a symbol or
//! version name pointing into the RPATH's tail) is left alone with a warning instead of being
//! corrupted; [`shrink_rpaths`] reports malformed ELF files as warnings, like stdenv's
//! `patchelf --shrink-rpath "$i" || true`.
//!
//! [`shrink_rpaths`] works on every regular file under a directory (skipping `.build-id`), each
//! inode once, in parallel on the current rayon pool. Files are edited in place, so hard links
//! stay hard links; their modification time changes, as with patchelf.

use std::fs::OpenOptions;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::StepError;
use crate::{elf, fsx, Outcome, Warning};

/// One RPATH string that [`shrink_rpath`] rewrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpathChange {
    /// `RPATH` or `RUNPATH`.
    pub kind: &'static str,
    /// The old value.
    pub old: String,
    /// The new value.
    pub new: String,
}

/// What [`shrink_rpath`] did to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShrinkResult {
    /// The rewritten entries (empty if nothing could be dropped or the file is not dynamic ELF).
    pub changes: Vec<RpathChange>,
    /// Why an entry that could have been shrunk was left alone.
    pub warnings: Vec<String>,
}

/// Drops the entries of `file`'s RPATH and RUNPATH that provide none of its needed libraries.
/// A file that is not ELF, or has no dynamic section, is left alone.
pub fn shrink_rpath(file: &Path) -> Result<ShrinkResult, StepError> {
    let mut result = ShrinkResult::default();
    if !fsx::is_elf(file)? {
        return Ok(result);
    }
    let bytes = fsx::read(file)?;
    let parse_error = |source| StepError::ParseElf {
        path: file.to_owned(),
        source,
    };
    let Some(info) = elf::dyn_info(&bytes).map_err(parse_error)? else {
        return Ok(result);
    };
    let mut edits = Vec::new();
    let mut done_offsets = Vec::new();
    for search_path in &info.search_paths {
        if done_offsets.contains(&search_path.strtab_offset) {
            continue; // DT_RPATH and DT_RUNPATH sharing one string
        }
        done_offsets.push(search_path.strtab_offset);
        let new = shrunk(&search_path.value, &info);
        if new != search_path.value {
            edits.push((search_path, new));
        }
    }
    if edits.is_empty() {
        return Ok(result);
    }
    let mut protected = elf::protected_offsets(&bytes, &info).map_err(parse_error)?;
    protected.extend(info.search_paths.iter().map(|sp| sp.strtab_offset));
    let mut writes = Vec::new();
    for (search_path, new) in edits {
        let start = search_path.strtab_offset;
        let end = start + search_path.value.len();
        // Another string shares bytes with this one if it starts inside it (a tail merge), or
        // starts before it and runs into it (no NUL in between: found by fuzzing, a second
        // RUNPATH whose string held this one).
        let base = search_path.file_offset - start;
        let runs_into = |offset: usize| {
            offset < start
                && bytes
                    .get(base + offset..base + start)
                    .is_some_and(|between| !between.contains(&0))
        };
        if protected
            .iter()
            .any(|&offset| (offset > start && offset < end) || runs_into(offset))
        {
            result.warnings.push(format!(
                "{} `{}` shares bytes with another dynamic string; left unchanged",
                search_path.kind,
                String::from_utf8_lossy(&search_path.value)
            ));
            continue;
        }
        let mut replacement = new.clone();
        replacement.resize(search_path.value.len(), 0);
        writes.push((search_path.file_offset, replacement));
        result.changes.push(RpathChange {
            kind: search_path.kind,
            old: String::from_utf8_lossy(&search_path.value).into_owned(),
            new: String::from_utf8_lossy(&new).into_owned(),
        });
    }
    if writes.is_empty() {
        return Ok(result);
    }
    let mode = fsx::metadata(file)?.mode();
    fsx::with_writable(file, mode, || {
        let write_error = |source| StepError::Write {
            path: file.to_owned(),
            source,
        };
        let handle = OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(write_error)?;
        for (offset, bytes) in &writes {
            handle
                .write_all_at(bytes, *offset as u64)
                .map_err(write_error)?;
        }
        Ok(())
    })?;
    Ok(result)
}

/// The RPATH value with useless entries dropped, following patchelf's `rpShrink`.
fn shrunk(value: &[u8], info: &elf::DynInfo) -> Vec<u8> {
    let mut found = vec![false; info.needed.len()];
    let mut kept: Vec<&[u8]> = Vec::new();
    for dir in value.split(|&b| b == b':') {
        if dir.first() != Some(&b'/') {
            kept.push(dir); // `$ORIGIN/..`, relative and empty entries are kept
            continue;
        }
        let mut provides = false;
        for (index, library) in info.needed.iter().enumerate() {
            if found[index] {
                continue;
            }
            let mut candidate = dir.to_vec();
            candidate.push(b'/');
            candidate.extend_from_slice(library);
            let candidate = PathBuf::from(<std::ffi::OsString as OsStringExt>::from_vec(candidate));
            // Only a regular file can be a library. The RPATH and the library names come from
            // the file being fixed: opening whatever they name could block on a FIFO or a
            // terminal (`/dev` + `tty`, `/proc/self/fd` + `1`) and hang the build.
            if !std::fs::metadata(&candidate).is_ok_and(|metadata| metadata.is_file()) {
                continue;
            }
            let mut head = [0u8; 20];
            let Ok(n) = fsx::read_head(&candidate, &mut head) else {
                continue;
            };
            if elf::machine_of(&head[..n]) == Some(info.machine) {
                found[index] = true;
                provides = true;
            }
        }
        if provides {
            kept.push(dir);
        }
    }
    kept.join(&b':')
}

/// Shrinks the RPATH of every ELF file under `dir` (stdenv's `patchELF "$prefix"`).
///
/// [`Outcome::changed`] lists the files rewritten; malformed ELF files and unsafe edits are
/// warnings.
pub fn shrink_rpaths(dir: &Path) -> Result<Outcome, StepError> {
    let entries = fsx::walk(dir)?;
    let files: Vec<_> = fsx::unique_files(&entries)
        .into_iter()
        .filter(|entry| !fsx::in_build_id(&entry.path))
        .collect();
    let results = fsx::par_map(&files, |entry| match shrink_rpath(&entry.path) {
        Ok(result) => Ok(result),
        Err(StepError::ParseElf { source, .. }) => Ok(ShrinkResult {
            changes: Vec::new(),
            warnings: vec![format!("not shrunk: malformed ELF file: {source}")],
        }),
        Err(err) => Err(err),
    })?;
    let mut outcome = Outcome::default();
    for (entry, result) in files.iter().zip(results) {
        if !result.changes.is_empty() {
            outcome.changed.push(entry.path.clone());
        }
        for message in result.warnings {
            outcome.warnings.push(Warning {
                path: entry.path.clone(),
                message,
            });
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::testutil::{greet_library, greet_program, search_paths, write};

    #[test]
    fn drops_runpath_entries_that_provide_no_needed_library() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real/lib");
        greet_library(&real);
        // A directory that exists and holds an unrelated library, and one that does not exist.
        let decoy = tmp.path().join("decoy/lib");
        write(&decoy.join("libother.so"), "", 0o644);
        let program = tmp.path().join("out/bin/hello");
        let rpath = format!(
            "-Wl,-rpath,/some/useless:{}:{}:$ORIGIN/../lib",
            decoy.display(),
            real.display()
        );
        greet_program(&program, &real, &[&rpath, "-Wl,--enable-new-dtags"]);
        let size = fs::metadata(&program).unwrap().len();

        let result = shrink_rpath(&program).unwrap();

        let old = format!(
            "/some/useless:{}:{}:$ORIGIN/../lib",
            decoy.display(),
            real.display()
        );
        let new = format!("{}:$ORIGIN/../lib", real.display());
        assert_eq!(
            result.changes,
            [RpathChange {
                kind: "RUNPATH",
                old,
                new: new.clone()
            }]
        );
        assert_eq!(search_paths(&program), (vec![], vec![new]));
        assert_eq!(fs::metadata(&program).unwrap().len(), size);
        // No trace of the dropped entries is left in the file.
        let bytes = fs::read(&program).unwrap();
        assert!(memchr::memmem::find(&bytes, b"/some/useless").is_none());
        // And the program still finds its library.
        let output = run_until_not_busy(&program);
        assert_eq!(output.stdout, b"hello from greet\n");
        // Shrinking again changes nothing.
        assert_eq!(shrink_rpath(&program).unwrap(), ShrinkResult::default());
    }

    /// Found while writing the fuzz harness: a needed library that the RPATH leads to a FIFO
    /// (or a terminal) was opened for reading and blocked forever. Only regular files are
    /// looked at now.
    #[test]
    fn a_fifo_on_the_search_path_is_not_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real/lib");
        greet_library(&real);
        let trap = tmp.path().join("trap");
        fs::create_dir_all(&trap).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(trap.join("libgreet.so"))
            .status()
            .unwrap();
        assert!(status.success());
        let program = tmp.path().join("out/bin/hello");
        let rpath = format!("-Wl,-rpath,{}:{}", trap.display(), real.display());
        greet_program(&program, &real, &[&rpath, "-Wl,--enable-new-dtags"]);

        let (sender, receiver) = std::sync::mpsc::channel();
        let file = program.clone();
        std::thread::spawn(move || sender.send(shrink_rpath(&file)));
        let result = receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("shrink_rpath blocked on the FIFO")
            .unwrap();
        assert_eq!(
            search_paths(&program),
            (vec![], vec![real.display().to_string()])
        );
        assert_eq!(result.changes.len(), 1);
    }

    /// Runs `program`, retrying while exec says "text file busy": a test running in parallel may
    /// fork just as this one holds `program` open for writing, and its child keeps that
    /// descriptor until it execs (see execve(2), ETXTBSY).
    fn run_until_not_busy(program: &Path) -> std::process::Output {
        for _ in 0..100 {
            match std::process::Command::new(program).output() {
                Err(error) if error.raw_os_error() == Some(ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                result => return result.unwrap(),
            }
        }
        panic!("{} stayed busy", program.display())
    }

    /// "Text file busy" on Linux.
    const ETXTBSY: i32 = 26;

    #[test]
    fn shrinks_old_style_rpath_and_empties_useless_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        greet_library(&real);
        let with_rpath = tmp.path().join("out/bin/old-style");
        let rpath = format!("-Wl,-rpath,/nowhere:{}", real.display());
        greet_program(&with_rpath, &real, &[&rpath, "-Wl,--disable-new-dtags"]);
        shrink_rpath(&with_rpath).unwrap();
        assert_eq!(
            search_paths(&with_rpath),
            (vec![real.display().to_string()], vec![])
        );

        // A library whose RUNPATH provides nothing it needs ends up with an empty RUNPATH.
        let library = tmp.path().join("out/lib/libgreet.so");
        fs::create_dir_all(library.parent().unwrap()).unwrap();
        crate::testutil::cc(&[
            "-shared",
            "-fPIC",
            "-Wl,-rpath,/a/b/c:/d/e",
            "-o",
            library.to_str().unwrap(),
            "-xc",
            "/dev/null",
        ]);
        shrink_rpath(&library).unwrap();
        assert_eq!(search_paths(&library), (vec![], vec![String::new()]));
    }

    #[test]
    fn walks_a_tree_skipping_non_elf_and_hard_link_duplicates() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        greet_library(&real);
        let out = tmp.path().join("out");
        let program = out.join("bin/hello");
        let rpath = format!("-Wl,-rpath,/useless:{}", real.display());
        greet_program(&program, &real, &[&rpath]);
        fs::hard_link(&program, out.join("bin/hello-again")).unwrap();
        write(&out.join("bin/script"), "#!/bin/sh\n", 0o755);
        write(&out.join("lib/fake.so"), "\x7fELF but not really", 0o644);

        let outcome = shrink_rpaths(&out).unwrap();

        assert_eq!(outcome.changed, std::slice::from_ref(&program));
        assert_eq!(outcome.warnings.len(), 1);
        assert_eq!(outcome.warnings[0].path, out.join("lib/fake.so"));
        assert!(outcome.warnings[0]
            .message
            .starts_with("not shrunk: malformed ELF file"));
        assert_eq!(
            search_paths(&out.join("bin/hello-again")).1,
            [real.display().to_string()]
        );
    }
}
