//! Separate debug info: replaces nixpkgs' `separate-debug-info.sh` (`_separateDebugInfo`, the
//! `fixupOutputHooks` entry that `separateDebugInfo = true` adds).
//!
//! [`separate_debug_info`] walks every regular file of an output in sorted order. For each ELF
//! file with a GNU build ID it runs `objcopy --only-keep-debug FILE
//! DEST/lib/debug/.build-id/XX/YYYY.debug` (XX the first byte of the ID in hex, YYYY the rest,
//! the layout gdb and debuginfod look up) and adds the symlink `DEST/lib/debug/NAME` to it, where
//! DEST is the `debug` output (`out` when there is none) and NAME the file's base name. The
//! output that receives the debug info is not itself looked at. Stripping the debug sections
//! from the original is left to the strip step that runs later in the same phase, as in stdenv,
//! and that step never touches `lib/debug`.
//!
//! Which files: every regular ELF file, as current nixpkgs (`find -type f` and `isELF`; older
//! versions looked only at executables and `*.so*`).
//!
//! Differences from stdenv: build IDs are read from the ELF notes with goblin instead of
//! `readelf -n | sed`, reading only the headers and note segments; `objcopy` runs for each build ID once, several at a time, and when two
//! different files share an ID the last in walk order wins with a warning (stdenv overwrites in
//! the same order); a file `objcopy` rejects, an ELF file without a build ID and a missing
//! `objcopy` are warnings, as they are messages in stdenv. kiln has no compiler wrapper, so the
//! `-ggdb` and `--build-id` flags nixpkgs' hook adds through `NIX_CFLAGS_COMPILE` and
//! `NIX_LDFLAGS` are not added: the debug info is whatever the build produced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::fs::File;
use std::os::unix::fs::FileExt;

use goblin::container::Ctx;
use goblin::elf::note::{NoteDataIterator, NT_GNU_BUILD_ID};
use goblin::elf::program_header::PT_NOTE;
use goblin::elf::{Elf, ProgramHeader};

use crate::error::StepError;
use crate::fsx::{self, Kind};
use crate::strip::{self, find_program};
use crate::{Outcome, Warning};

/// The directory under the destination output that holds the debug files.
pub const DEBUG_DIR: &str = "lib/debug";

/// Separates the debug info of the ELF files under `prefix` into `dest` (see the module docs).
/// Does nothing when `prefix` is `dest` or does not exist.
pub fn separate_debug_info(
    prefix: &Path,
    dest: &Path,
    path_dirs: &[PathBuf],
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    if prefix == dest || !prefix.exists() {
        return Ok(outcome);
    }
    let files: Vec<_> = fsx::walk(prefix)?
        .into_iter()
        .filter(|entry| entry.kind == Kind::File)
        .collect();
    let ids = fsx::par_map(&files, |entry| build_id(&entry.path))?;
    let elves: Vec<(&fsx::Entry, Option<String>)> = files
        .iter()
        .zip(ids)
        .filter_map(|(entry, id)| id.map(|id| (entry, id)))
        .collect();
    if elves.is_empty() {
        return Ok(outcome);
    }
    let Some(objcopy) = find_program("objcopy", path_dirs) else {
        outcome.warnings.push(Warning {
            path: prefix.to_owned(),
            message: "no `objcopy` in the search path; no debug info separated".to_owned(),
        });
        return Ok(outcome);
    };
    // One debug file per build ID, from the last file in walk order that has it. Hard links
    // (the same inode under several names) are one file.
    let mut sources: BTreeMap<&str, &fsx::Entry> = BTreeMap::new();
    let mut inodes: BTreeSet<(&str, u64, u64)> = BTreeSet::new();
    for (entry, id) in &elves {
        let Some(id) = id else {
            outcome.warnings.push(Warning {
                path: entry.path.clone(),
                message: "no build ID; its debug info stays in the file".to_owned(),
            });
            continue;
        };
        let new_inode = inodes.insert((id, entry.dev, entry.ino));
        if let Some(earlier) = sources.insert(id, entry) {
            if new_inode {
                outcome.warnings.push(Warning {
                    path: entry.path.clone(),
                    message: format!(
                        "has the build ID `{id}` of `{}` too; its debug info is the one kept",
                        earlier.path.display()
                    ),
                });
            }
        }
    }
    let debug_dir = dest.join(DEBUG_DIR);
    let jobs: Vec<(&str, &fsx::Entry)> = sources.into_iter().collect();
    let results = fsx::par_map(&jobs, |(id, entry)| {
        let target = debug_dir.join(debug_file(id));
        fsx::create_dir_all(target.parent().expect("a build-id path has a parent"))?;
        keep_only_debug(&objcopy, &entry.path, &target)
    })?;
    let mut separated = BTreeSet::new();
    for ((id, entry), failure) in jobs.iter().zip(results) {
        match failure {
            None => {
                outcome.changed.push(debug_dir.join(debug_file(id)));
                separated.insert(*id);
            }
            Some(message) => outcome.warnings.push(Warning {
                path: entry.path.clone(),
                message: format!("`objcopy --only-keep-debug` failed: {message}"),
            }),
        }
    }
    for (entry, id) in &elves {
        let Some(id) = id else { continue };
        if !separated.contains(id.as_str()) {
            continue;
        }
        let name = entry.path.file_name().expect("a walked file has a name");
        let link = debug_dir.join(name);
        fsx::replace_symlink(&debug_file(id), &link)?;
        outcome.changed.push(link);
    }
    Ok(outcome)
}

/// `.build-id/XX/YYYY.debug` (relative to [`DEBUG_DIR`]) for the build ID `XXYYYY` (lowercase hex).
fn debug_file(id: &str) -> PathBuf {
    let (head, tail) = id.split_at(2);
    Path::new(".build-id")
        .join(head)
        .join(format!("{tail}.debug"))
}

/// `None` for a file that is not ELF; `Some(None)` for an ELF file without a usable build ID
/// (stdenv wants 20 bytes, a SHA-1); `Some(Some(hex))` otherwise.
///
/// Only the ELF header, the program headers and the `PT_NOTE` segments are read, never the whole
/// file: unstripped binaries can be very large, and this runs on several files at once. A build
/// ID lives in a `PT_NOTE` segment of every linked file; a relocatable object (no program
/// headers) has none, as `ld` adds it.
fn build_id(path: &Path) -> Result<Option<Option<String>>, StepError> {
    let mut head = [0u8; 64];
    let read = fsx::read_head(path, &mut head)?;
    if read < 4 || head[..4] != *b"\x7fELF" {
        return Ok(None);
    }
    // Not an ELF file we can read (truncated, an unknown class): no ID, as `readelf` finds none.
    let Ok(header) = Elf::parse_header(&head[..read]) else {
        return Ok(Some(None));
    };
    let (Ok(container), Ok(endianness)) = (header.container(), header.endianness()) else {
        return Ok(Some(None));
    };
    let ctx = Ctx::new(container, endianness);
    let file = File::open(path).map_err(|source| StepError::Read {
        path: path.to_owned(),
        source,
    })?;
    let size = file
        .metadata()
        .map_err(|source| StepError::Metadata {
            path: path.to_owned(),
            source,
        })?
        .len();
    // The bytes at `offset`, or `None` when they are not all in the file (a corrupt header).
    let at = |offset: u64, len: u64| -> Result<Option<Vec<u8>>, StepError> {
        if len > MAX_HEADERS || offset.checked_add(len).is_none_or(|end| end > size) {
            return Ok(None);
        }
        let mut bytes = vec![0; len as usize];
        match file.read_exact_at(&mut bytes, offset) {
            Ok(()) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(source) => Err(StepError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    };
    let table_len = u64::from(header.e_phentsize) * u64::from(header.e_phnum);
    let Some(table) = at(header.e_phoff, table_len)? else {
        return Ok(Some(None));
    };
    let Ok(program_headers) = ProgramHeader::parse(&table, 0, header.e_phnum as usize, ctx) else {
        return Ok(Some(None));
    };
    for segment in program_headers.iter().filter(|ph| ph.p_type == PT_NOTE) {
        let Some(notes) = at(segment.p_offset, segment.p_filesz)? else {
            continue;
        };
        let iterator = NoteDataIterator {
            data: &notes,
            size: notes.len(),
            offset: 0,
            ctx: (segment.p_align as usize, ctx),
        };
        // The iterator ends at the first malformed note (goblin >= 0.10.7).
        for note in iterator.map_while(Result::ok) {
            if note.n_type == NT_GNU_BUILD_ID && note.name == "GNU" && note.desc.len() == 20 {
                let hex = note.desc.iter().map(|byte| format!("{byte:02x}")).collect();
                return Ok(Some(Some(hex)));
            }
        }
    }
    Ok(Some(None))
}

/// Program header tables and note segments larger than this are not read (real ones are a few
/// kilobytes; this only bounds what a corrupt header could make us allocate).
const MAX_HEADERS: u64 = 16 << 20;

/// Runs `objcopy --only-keep-debug source target`; `Ok(None)` on success, `Ok(Some(stderr))`
/// on failure, with no partial `target` left.
fn keep_only_debug(
    objcopy: &Path,
    source: &Path,
    target: &Path,
) -> Result<Option<String>, StepError> {
    let flags = ["--only-keep-debug".to_owned()];
    let Some(message) = strip::run(objcopy, &flags, &[source.to_owned(), target.to_owned()])?
    else {
        return Ok(None);
    };
    if fsx::lexists(target) {
        fsx::remove_file(target)?;
    }
    // stdenv: `rmdir -p` of the build ID's directory; kept when another ID's file is in it.
    if let Some(dir) = target.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::testutil::{cc, debug_sections, greet_library, host_path, write};

    #[test]
    fn debug_info_goes_to_the_build_id_path_with_a_name_link() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let debug = tmp.path().join("debug");
        let library = greet_library(&out.join("lib"));
        let id = build_id(&library)
            .unwrap()
            .unwrap()
            .expect("gcc adds a build ID");
        assert_eq!(id.len(), 40);
        // A script and a file without a build ID are left alone (the latter with a warning).
        write(&out.join("bin/tool"), "#!/bin/sh\n", 0o755);
        let source = tmp.path().join("noid.c");
        fs::write(&source, "int main(void) { return 0; }\n").unwrap();
        let no_id = out.join("bin/noid");
        cc(&[
            "-g",
            "-Wl,--build-id=none",
            "-o",
            no_id.to_str().unwrap(),
            source.to_str().unwrap(),
        ]);

        let outcome = separate_debug_info(&out, &debug, &host_path()).unwrap();
        let debug_file = debug.join(format!(
            "lib/debug/.build-id/{}/{}.debug",
            &id[..2],
            &id[2..]
        ));
        assert_eq!(
            outcome.changed,
            vec![debug_file.clone(), debug.join("lib/debug/libgreet.so")]
        );
        assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
        assert_eq!(outcome.warnings[0].path, no_id);
        assert!(!debug_sections(&debug_file).is_empty());
        assert_eq!(
            fs::read_link(debug.join("lib/debug/libgreet.so")).unwrap(),
            Path::new(".build-id")
                .join(&id[..2])
                .join(format!("{}.debug", &id[2..]))
        );
        // The original keeps its debug info until the strip step.
        assert!(!debug_sections(&library).is_empty());
        // Nothing of `out` landed anywhere but `lib/debug`.
        assert_eq!(
            fs::read_dir(&debug).unwrap().count(),
            1,
            "only `lib` in the debug output"
        );
    }

    #[test]
    fn corrupt_elf_files_have_no_build_id_and_do_not_stop_the_step() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let library = greet_library(&out.join("lib"));
        // A truncated copy, and a header whose program headers point far past the end.
        let bytes = fs::read(&library).unwrap();
        write(&out.join("lib/truncated.so"), &bytes[..200], 0o644);
        let mut far = bytes[..64].to_vec();
        far[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // e_phoff
        write(&out.join("lib/far.so"), &far, 0o644);
        assert_eq!(build_id(&out.join("lib/truncated.so")).unwrap(), Some(None));
        assert_eq!(build_id(&out.join("lib/far.so")).unwrap(), Some(None));
        let debug = tmp.path().join("debug");
        let outcome = separate_debug_info(&out, &debug, &host_path()).unwrap();
        assert_eq!(outcome.changed.len(), 2, "{outcome:?}");
        assert_eq!(outcome.warnings.len(), 2, "{:?}", outcome.warnings);
    }

    #[test]
    fn the_destination_output_itself_and_missing_outputs_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        greet_library(&out.join("lib"));
        let outcome = separate_debug_info(&out, &out, &host_path()).unwrap();
        assert_eq!(outcome, Outcome::default());
        assert!(!out.join("lib/debug").exists());
        let missing = tmp.path().join("missing");
        let outcome = separate_debug_info(&missing, &out, &host_path()).unwrap();
        assert_eq!(outcome, Outcome::default());
    }

    #[test]
    fn without_objcopy_nothing_is_separated_and_it_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let debug = tmp.path().join("debug");
        greet_library(&out.join("lib"));
        let outcome = separate_debug_info(&out, &debug, &[]).unwrap();
        assert!(outcome.changed.is_empty());
        assert!(outcome.warnings[0].message.contains("no `objcopy`"));
        assert!(!debug.exists());
    }

    #[test]
    fn a_shared_build_id_keeps_the_last_file_and_warns() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let debug = tmp.path().join("debug");
        let library = greet_library(&out.join("lib"));
        // A copy (another inode, the same build ID) and a hard link (the same inode).
        fs::copy(&library, out.join("lib/libgreet.so.copy")).unwrap();
        fs::hard_link(&library, out.join("lib/libgreet.so.link")).unwrap();
        let outcome = separate_debug_info(&out, &debug, &host_path()).unwrap();
        assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
        assert!(outcome.warnings[0].message.contains("has the build ID"));
        // Every name gets its link; one debug file.
        for name in ["libgreet.so", "libgreet.so.copy", "libgreet.so.link"] {
            assert!(debug.join("lib/debug").join(name).is_file(), "{name}");
        }
        let ids: Vec<_> = fs::read_dir(debug.join("lib/debug/.build-id"))
            .unwrap()
            .collect();
        assert_eq!(ids.len(), 1);
    }
}
