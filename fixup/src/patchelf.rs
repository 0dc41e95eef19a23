//! Pointing prebuilt ELF files at the store: [`auto_patchelf`] replaces nixpkgs'
//! `autoPatchelfHook` and the `patchelf --set-interpreter` / `--set-rpath` calls around it.
//!
//! For every ELF file under the given paths that is dynamically linked, it sets the program
//! interpreter (`PT_INTERP`, the dynamic loader) to the one given, when the file has one, and
//! sets `DT_RUNPATH` to the directories of the search path that provide its `DT_NEEDED`
//! libraries, in search-path order: each file gets only the directories it needs, so closures
//! stay small. `$ORIGIN` entries of an existing RPATH or RUNPATH are kept (first); every other
//! entry is dropped (in a prebuilt binary they name the host, `/usr/lib/...`). A needed library
//! found nowhere is an error that names the file and the library, unless it is listed in
//! `ignore_missing` (`*` ignores all), like autoPatchelf's `autoPatchelfIgnoreMissingDeps`.
//! A library is only taken from a directory if it is ELF for the same machine as the file.
//!
//! The edit is done in process with the `elb` crate, which grows the file when the new strings
//! do not fit (a new loadable segment holds the interpreter and the new `.dynstr`), as patchelf
//! does; a Debian binary's 28-byte interpreter becomes a store path of 90 or more. Each file
//! is patched in memory and only then written over its old content (after every file's
//! libraries were looked up: a library being rewritten would read as empty) (the inode stays, so hard
//! links stay hard links, and a file elb cannot patch is left as it was), each inode once, in
//! parallel on the current rayon pool. Relocatable objects, static archives and statically linked programs are left
//! alone; so is a file whose interpreter and RUNPATH are already right.
//!
//! Differences from autoPatchelfHook: the search path is given explicitly (no scan of every
//! input; the plan says where libraries come from), RUNPATH is always written (never the older
//! RPATH, whose precedence over `LD_LIBRARY_PATH` nixpkgs also avoids), and there is no
//! `runtimeDependencies` (add the directory to the search path and a library that needs it).

use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use crate::error::StepError;
use crate::{elf, fsx, Outcome};

/// What [`auto_patchelf`] sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoPatchelfOptions {
    /// The dynamic loader every ELF file with an interpreter gets; `None` leaves interpreters.
    pub interpreter: Option<PathBuf>,
    /// Where needed libraries are looked for, in order.
    pub search_path: Vec<PathBuf>,
    /// Needed libraries (file names such as `libfoo.so.1`) that may be missing; `*` allows all.
    pub ignore_missing: Vec<String>,
    /// Files, or directories, under `paths` that are left alone.
    pub exclude: Vec<PathBuf>,
}

/// What was decided for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Decision {
    interpreter: Option<CString>,
    runpath: Option<CString>,
    missing: Vec<String>,
}

/// Sets the interpreter and RUNPATH of every dynamically linked ELF file under `paths`
/// (files, or directories walked without following symlinks). [`Outcome::changed`] lists the
/// files rewritten. Fails on the first file that cannot be read or patched, and otherwise on
/// needed libraries that are missing, naming every file that lacks one.
pub fn auto_patchelf(
    paths: &[PathBuf],
    options: &AutoPatchelfOptions,
) -> Result<Outcome, StepError> {
    let mut entries = Vec::new();
    for path in paths {
        let metadata = fsx::metadata(path)?;
        if metadata.is_dir() {
            entries.extend(fsx::walk(path)?);
        } else if metadata.is_file() {
            entries.push(fsx::Entry::new(path.clone(), &metadata));
        }
    }
    let files: Vec<_> = fsx::unique_files(&entries)
        .into_iter()
        .filter(|entry| !fsx::in_build_id(&entry.path))
        .filter(|entry| {
            !options
                .exclude
                .iter()
                .any(|skip| entry.path.starts_with(skip))
        })
        .collect();
    let interpreter = options.interpreter.as_deref().map(c_path).transpose()?;
    // Every decision is made before any file is written: deciding reads the libraries'
    // headers, and a library that is being rewritten reads as empty.
    let decisions = fsx::par_map(&files, |entry| {
        decide_file(&entry.path, interpreter.as_ref(), options)
    })?;
    let changes: Vec<_> = files
        .iter()
        .zip(&decisions)
        .filter(|(_, decision)| {
            decision
                .as_ref()
                .is_some_and(|d| d.interpreter.is_some() || d.runpath.is_some())
        })
        .collect();
    fsx::par_map(&changes, |(entry, decision)| {
        let decision = decision.as_ref().expect("filtered above");
        let patched = patch_bytes(&entry.path, fsx::read(&entry.path)?, decision)?;
        fsx::with_writable(&entry.path, entry.mode, || {
            write_in_place(&entry.path, &patched)
        })
    })?;
    let outcome = Outcome {
        changed: changes
            .iter()
            .map(|(entry, _)| entry.path.clone())
            .collect(),
        warnings: Vec::new(),
    };
    let missing: Vec<_> = files
        .iter()
        .zip(decisions)
        .filter_map(|(entry, decision)| {
            let lacking = decision?.missing;
            (!lacking.is_empty()).then(|| (entry.path.clone(), lacking))
        })
        .collect();
    if !missing.is_empty() {
        return Err(StepError::MissingLibraries {
            missing,
            search_path: options.search_path.clone(),
        });
    }
    Ok(outcome)
}

fn c_path(path: &Path) -> Result<CString, StepError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| StepError::PatchElf {
        path: path.to_owned(),
        message: "the path holds a NUL byte".to_owned(),
    })
}

/// What to change in `path`; `None` when it is not a dynamically linked ELF file.
fn decide_file(
    path: &Path,
    interpreter: Option<&CString>,
    options: &AutoPatchelfOptions,
) -> Result<Option<Decision>, StepError> {
    if !fsx::is_elf(path)? {
        return Ok(None);
    }
    decide(path, &fsx::read(path)?, interpreter, options)
}

/// What to change in the ELF file `bytes`; `None` when it is not dynamically linked.
fn decide(
    path: &Path,
    bytes: &[u8],
    interpreter: Option<&CString>,
    options: &AutoPatchelfOptions,
) -> Result<Option<Decision>, StepError> {
    let parse_error = |source| StepError::ParseElf {
        path: path.to_owned(),
        source,
    };
    let Some(info) = elf::dyn_info(bytes).map_err(parse_error)? else {
        return Ok(None);
    };
    let current_interpreter = elf::interpreter(bytes).map_err(parse_error)?;
    let mut decision = Decision::default();
    if let (Some(wanted), Some(current)) = (interpreter, &current_interpreter) {
        if wanted.as_bytes() != current.as_slice() {
            decision.interpreter = Some(wanted.clone());
        }
    }
    // `$ORIGIN` entries of the old search path first, then the directories that provide a
    // needed library, in search-path order.
    let mut runpath: Vec<Vec<u8>> = Vec::new();
    for entry in &info.search_paths {
        for dir in entry.value.split(|&b| b == b':') {
            let origin = dir.starts_with(b"$ORIGIN") || dir.starts_with(b"${ORIGIN}");
            if origin && !runpath.iter().any(|kept| kept == dir) {
                runpath.push(dir.to_vec());
            }
        }
    }
    let mut used = vec![false; options.search_path.len()];
    for needed in &info.needed {
        if needed.contains(&b'/') {
            continue; // a path, not a name to search for
        }
        let name = std::ffi::OsStr::from_bytes(needed);
        let found = options
            .search_path
            .iter()
            .position(|dir| provides(&dir.join(name), info.machine));
        match found {
            Some(index) => used[index] = true,
            None => {
                let name = String::from_utf8_lossy(needed).into_owned();
                let ignored = options
                    .ignore_missing
                    .iter()
                    .any(|pattern| pattern == "*" || *pattern == name);
                if !ignored {
                    decision.missing.push(name);
                }
            }
        }
    }
    for (dir, used) in options.search_path.iter().zip(used) {
        let dir = dir.as_os_str().as_bytes();
        if used && !runpath.iter().any(|kept| kept == dir) {
            runpath.push(dir.to_vec());
        }
    }
    let new = runpath.join(&b':');
    let current: Vec<u8> = info
        .search_paths
        .iter()
        .map(|entry| entry.value.clone())
        .collect::<Vec<_>>()
        .join(&b':');
    let only_runpath = info
        .search_paths
        .iter()
        .all(|entry| entry.kind == "RUNPATH");
    if new != current || !only_runpath {
        decision.runpath = Some(CString::new(new).map_err(|_| StepError::PatchElf {
            path: path.to_owned(),
            message: "a search path directory holds a NUL byte".to_owned(),
        })?);
    }
    Ok(Some(decision))
}

/// Whether `candidate` is a library for `machine` (following symlinks).
fn provides(candidate: &Path, machine: u16) -> bool {
    let mut head = [0u8; 20];
    match fsx::read_head(candidate, &mut head) {
        Ok(read) => elf::machine_of(&head[..read]) == Some(machine),
        Err(_) => false,
    }
}

/// The file `bytes` with the decision applied, by elb, in memory: a file elb cannot patch is
/// left as it was.
///
/// A panic inside elb on a malformed file (its allocator has a `debug_assert!` that hostile
/// segment tables break, found by fuzzing) becomes an error naming the file where panics
/// unwind (debug builds and tests); the release build aborts on panic, but has no debug
/// assertions, and [`verify`] refuses what elb writes for such a file.
fn patch_bytes(path: &Path, bytes: Vec<u8>, decision: &Decision) -> Result<Vec<u8>, StepError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        patch_bytes_with_elb(path, bytes, decision)
    }))
    .unwrap_or_else(|_| {
        Err(StepError::PatchElf {
            path: path.to_owned(),
            message: "the ELF patcher gave up on this malformed file (a panic in elb); the file \
                      is left as it was: list it in `exclude` if it can do without"
                .to_owned(),
        })
    })
}

fn patch_bytes_with_elb(
    path: &Path,
    bytes: Vec<u8>,
    decision: &Decision,
) -> Result<Vec<u8>, StepError> {
    let failed = |error: elb::Error| StepError::PatchElf {
        path: path.to_owned(),
        message: error.to_string(),
    };
    elf::check_bounds(&bytes).map_err(|source| StepError::ParseElf {
        path: path.to_owned(),
        source,
    })?;
    // The libraries the file needs, to check that patching kept them.
    let needed_before = elf::dyn_info(&bytes).ok().flatten().map(|info| info.needed);
    let limit = (bytes.len() as u64).saturating_mul(2) + MAX_GROWTH;
    let mut file = BoundedCursor {
        inner: std::io::Cursor::new(bytes),
        limit,
    };
    let mut parsed = elb::Elf::read(&mut file, PAGE_SIZE).map_err(failed)?;
    // elb's allocator sees free space wherever no section or segment lies, which includes the
    // ELF header and the program header table at the start of the first loadable segment: a
    // small library's grown `.dynstr` landed at offset 0, over the header. A guard section
    // over that area keeps it taken; it is dropped from the written section table below.
    let guard = header_guard(&parsed);
    let guard_size = guard.size;
    parsed.sections.push(guard);
    let mut patcher = elb::ElfPatcher::new(parsed, file);
    if let Some(interpreter) = &decision.interpreter {
        patcher.set_interpreter(interpreter).map_err(failed)?;
    }
    if let Some(runpath) = &decision.runpath {
        patcher
            .remove_dynamic_tag(elb::DynamicTag::Rpath)
            .map_err(failed)?;
        if runpath.is_empty() {
            patcher
                .remove_dynamic_tag(elb::DynamicTag::Runpath)
                .map_err(failed)?;
        } else {
            patcher
                .set_dynamic_tag(elb::DynamicTag::Runpath, runpath.as_c_str())
                .map_err(failed)?;
        }
    }
    let mut patched = patcher.finish().map_err(failed)?.inner.into_inner();
    drop_guard(path, &mut patched, guard_size)?;
    verify(path, &patched, decision, needed_before.as_deref())?;
    Ok(patched)
}

/// A section over the ELF header and the program header table (see [`patch_bytes`]).
fn header_guard(elf: &elb::Elf) -> elb::Section {
    let header = &elf.header;
    let header_len = u64::from(header.len);
    // The program header table counts when it follows the ELF header, as linkers lay it out;
    // one that elb moved to the end of the file (a file patched before) is a segment of its own.
    let tables_end = if header.program_header_offset <= header_len {
        header.program_header_offset
            + u64::from(header.num_segments) * u64::from(header.segment_len)
    } else {
        0
    };
    // The first loadable segment maps offset 0 (at address 0 for libraries and PIE); the guard
    // stays inside it, or elb refuses the section as not covered by a LOAD segment.
    let first_load = elf
        .segments
        .iter()
        .find(|segment| segment.kind == elb::SegmentKind::Loadable && segment.offset == 0);
    let base = first_load.map_or(0, |segment| segment.virtual_address);
    let size = match first_load {
        Some(segment) => tables_end.min(segment.file_size),
        None => tables_end,
    }
    .max(header_len);
    elb::Section {
        name_offset: 0,
        kind: elb::SectionKind::ProgramBits,
        flags: elb::SectionFlags::ALLOC,
        virtual_address: base,
        offset: 0,
        size,
        link: 0,
        info: 0,
        align: 1,
        entry_len: 0,
    }
}

/// Removes the guard section from the section header table elb wrote: it must be the last
/// entry, which `e_shnum` then leaves out.
fn drop_guard(path: &Path, patched: &mut [u8], guard_size: u64) -> Result<(), StepError> {
    use goblin::elf::section_header::{SectionHeader, SHT_PROGBITS};
    let refused = |why: &str| StepError::PatchElf {
        path: path.to_owned(),
        message: format!("{why}; the file is left as it was"),
    };
    let header = goblin::elf::Elf::parse_header(patched)
        .map_err(|_| refused("the patched file has no ELF header"))?;
    let ctx = goblin::container::Ctx::new(
        header.container().map_err(|_| refused("bad ELF class"))?,
        header
            .endianness()
            .map_err(|_| refused("bad ELF data encoding"))?,
    );
    let sections = SectionHeader::parse(
        patched,
        header.e_shoff as usize,
        header.e_shnum as usize,
        ctx,
    )
    .map_err(|_| refused("the patched section table cannot be read"))?;
    let last = sections
        .last()
        .ok_or_else(|| refused("the patched file has no sections"))?;
    let is_guard = last.sh_type == SHT_PROGBITS
        && last.sh_offset == 0
        && last.sh_size == guard_size
        && last.sh_name == 0;
    if !is_guard {
        return Err(refused("the ELF patcher reordered the sections"));
    }
    // e_shnum sits at offset 60 (ELF64) or 48 (ELF32), in the file's byte order.
    let at = if ctx.container.is_big() { 60 } else { 48 };
    let count = header.e_shnum - 1;
    let bytes = if ctx.le.is_little() {
        count.to_le_bytes()
    } else {
        count.to_be_bytes()
    };
    patched[at..at + 2].copy_from_slice(&bytes);
    Ok(())
}

/// Reads the patched file back with kiln's own reader (the dynamic section found through the
/// program headers, as the loader finds it) and checks that it says what was decided. elb
/// edits through the section headers; in a malformed file the two can disagree, and such a
/// file is refused rather than written half-patched.
fn verify(
    path: &Path,
    patched: &[u8],
    decision: &Decision,
    needed_before: Option<&[Vec<u8>]>,
) -> Result<(), StepError> {
    // Every segment and section of the result lies inside it (fuzzing found elb writing a
    // program header table that ended past the end of the file).
    elf::check_bounds(patched).map_err(|source| StepError::PatchElf {
        path: path.to_owned(),
        message: format!(
            "the patched file would be malformed ({source}); the file is left as it was"
        ),
    })?;
    // The result must stay patchable: elb reads it back as it read the input (fuzzing found
    // malformed inputs whose patched form elb then refused: an ALLOC section outside every
    // loadable segment), so running autoPatchelf again over an output cannot fail.
    elb::Elf::read(&mut std::io::Cursor::new(patched), PAGE_SIZE).map_err(|error| {
        StepError::PatchElf {
            path: path.to_owned(),
            message: format!(
                "the ELF patcher wrote a file it cannot read back ({error}); the file is left as \
                 it was: list it in `exclude` if it can do without"
            ),
        }
    })?;
    let mismatch = |what: &str| StepError::PatchElf {
        path: path.to_owned(),
        message: format!(
            "after patching, the {what} read back is not the one written (the section and \
             program headers disagree, or the ELF patcher misplaced a table); the file is left \
             as it was: list it in `exclude` if it can do without"
        ),
    };
    if let Some(wanted) = &decision.interpreter {
        let found = elf::interpreter(patched).map_err(|_| mismatch("interpreter"))?;
        if found.as_deref() != Some(wanted.as_bytes()) {
            return Err(mismatch("interpreter"));
        }
    }
    // The needed libraries survive the move of the string table (fuzzing found elb leaving
    // `DT_NEEDED` entries pointing at other strings in a malformed file).
    if let Some(before) = needed_before {
        let after = elf::dyn_info(patched)
            .map_err(|_| mismatch("dynamic section"))?
            .map(|info| info.needed);
        if after.as_deref() != Some(before) {
            return Err(mismatch("list of needed libraries"));
        }
    }
    if let Some(wanted) = &decision.runpath {
        let info = elf::dyn_info(patched)
            .map_err(|_| mismatch("dynamic section"))?
            .ok_or_else(|| mismatch("dynamic section"))?;
        let found: Vec<&[u8]> = info
            .search_paths
            .iter()
            .map(|entry| entry.value.as_slice())
            .collect();
        let expected: Vec<&[u8]> = if wanted.is_empty() {
            Vec::new()
        } else {
            vec![wanted.as_bytes()]
        };
        let all_runpath = info
            .search_paths
            .iter()
            .all(|entry| entry.kind == "RUNPATH");
        if found != expected || !all_runpath {
            return Err(mismatch("RUNPATH"));
        }
    }
    Ok(())
}

/// How much a patched file may grow by, besides doubling: the new interpreter, `.dynstr`
/// (which elb moves whole; gcc's `cc1` has a large one), program and section header tables.
/// A file that would grow more is malformed, and this bounds what a hostile one can allocate.
const MAX_GROWTH: u64 = 1 << 20;

/// An in-memory file that refuses to be written past `limit` bytes (elb trusts the offsets it
/// reads; a hostile file must not make it allocate beyond its size).
struct BoundedCursor {
    inner: std::io::Cursor<Vec<u8>>,
    limit: u64,
}

impl std::io::Read for BoundedCursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Seek for BoundedCursor {
    fn seek(&mut self, position: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(position)
    }
}

impl std::io::Write for BoundedCursor {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.inner.position().saturating_add(buf.len() as u64);
        if end > self.limit {
            return Err(std::io::Error::other(format!(
                "the patched file would grow past {} bytes",
                self.limit
            )));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Replaces the content of `path` with `content`, keeping the inode (hard links stay linked).
fn write_in_place(path: &Path, content: &[u8]) -> Result<(), StepError> {
    use std::io::Write as _;
    let write_error = |source| StepError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(write_error)?;
    file.write_all(content).map_err(write_error)
}

/// The page size new segments are aligned to: x86_64's and aarch64's smallest (patchelf's
/// default on both).
const PAGE_SIZE: u64 = 4096;

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt as _;
    use std::process::Command;

    use super::*;
    use crate::testutil::{cc, greet_library, greet_program, search_paths, write};

    /// The host's dynamic loader, copied to a path much longer than `/lib64/ld-linux-x86-64.so.2`
    /// (as a store path is), so that setting it must grow the file.
    fn long_loader(root: &Path) -> PathBuf {
        let dir = root.join("nix/store/0123456789abcdefghijklmnopqrstuv-runtime-2.36/lib");
        fs::create_dir_all(&dir).unwrap();
        let loader = dir.join("ld-linux-x86-64.so.2");
        fs::copy("/lib64/ld-linux-x86-64.so.2", &loader).unwrap();
        loader
    }

    fn interpreter_of(path: &Path) -> Option<String> {
        let bytes = fs::read(path).unwrap();
        elf::interpreter(&bytes)
            .unwrap()
            .map(|raw| String::from_utf8(raw).unwrap())
    }

    #[test]
    fn sets_the_interpreter_and_a_runpath_of_only_the_directories_needed() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("greet/lib");
        greet_library(&lib);
        let decoy = tmp.path().join("decoy/lib");
        write(&decoy.join("libunrelated.so"), "", 0o644);
        let program = tmp.path().join("out/bin/hello");
        // A prebuilt binary: an RPATH naming the host, and one relative to itself.
        greet_program(
            &program,
            &lib,
            &[
                "-Wl,-rpath,/usr/lib/bogus:$ORIGIN/../lib",
                "-Wl,--disable-new-dtags",
            ],
        );
        fs::hard_link(&program, tmp.path().join("out/bin/hello-again")).unwrap();
        let loader = long_loader(tmp.path());
        let options = AutoPatchelfOptions {
            interpreter: Some(loader.clone()),
            search_path: vec![
                decoy.clone(),
                lib.clone(),
                PathBuf::from("/lib/x86_64-linux-gnu"),
            ],
            ignore_missing: Vec::new(),
            exclude: Vec::new(),
        };

        let outcome = auto_patchelf(&[tmp.path().join("out")], &options).unwrap();

        assert_eq!(outcome.changed, [tmp.path().join("out/bin/hello")]);
        assert_eq!(interpreter_of(&program).as_deref(), loader.to_str());
        let runpath = format!("$ORIGIN/../lib:{}:/lib/x86_64-linux-gnu", lib.display());
        assert_eq!(search_paths(&program), (vec![], vec![runpath]));
        // Still one file under two names, and it runs through the new loader.
        let (a, b) = (
            fs::metadata(&program).unwrap(),
            fs::metadata(tmp.path().join("out/bin/hello-again")).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        let output = Command::new(&program).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "hello from greet\n"
        );

        // Done twice, nothing changes.
        let again = auto_patchelf(&[tmp.path().join("out")], &options).unwrap();
        assert!(again.changed.is_empty(), "{:?}", again.changed);
    }

    #[test]
    fn a_library_found_nowhere_is_an_error_unless_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("greet/lib");
        greet_library(&lib);
        let program = tmp.path().join("out/bin/hello");
        greet_program(&program, &lib, &[]);
        let before = fs::read(&program).unwrap();
        let mut options = AutoPatchelfOptions {
            interpreter: None,
            search_path: vec![PathBuf::from("/lib/x86_64-linux-gnu")],
            ignore_missing: Vec::new(),
            exclude: Vec::new(),
        };
        let error = auto_patchelf(std::slice::from_ref(&program), &options).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "1 file need libraries found in no directory of the search path \
                 (`/lib/x86_64-linux-gnu`): `{}` needs `libgreet.so`; add the directory that \
                 holds them to `searchPath`, or list them in `ignoreMissing`",
                program.display()
            )
        );
        // The file was still given what was found (libc's directory), the rest is reported.
        assert_ne!(fs::read(&program).unwrap(), before);

        options.ignore_missing = vec!["libgreet.so".to_owned()];
        auto_patchelf(std::slice::from_ref(&program), &options).unwrap();
        options.ignore_missing = vec!["*".to_owned()];
        auto_patchelf(&[program], &options).unwrap();
    }

    #[test]
    fn objects_static_programs_and_other_files_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let source = tmp.path().join("main.c");
        fs::write(&source, "int main(void) { return 0; }\n").unwrap();
        fs::create_dir_all(&out).unwrap();
        let object = out.join("main.o");
        cc(&[
            "-c",
            "-o",
            object.to_str().unwrap(),
            source.to_str().unwrap(),
        ]);
        let static_program = out.join("static");
        cc(&[
            "-static",
            "-o",
            static_program.to_str().unwrap(),
            source.to_str().unwrap(),
        ]);
        write(&out.join("script"), "#!/bin/sh\n", 0o755);
        let before: Vec<_> = ["main.o", "static", "script"]
            .iter()
            .map(|name| fs::read(out.join(name)).unwrap())
            .collect();
        let options = AutoPatchelfOptions {
            interpreter: Some(long_loader(tmp.path())),
            search_path: vec![],
            ignore_missing: Vec::new(),
            exclude: Vec::new(),
        };
        let outcome = auto_patchelf(std::slice::from_ref(&out), &options).unwrap();
        assert!(outcome.changed.is_empty());
        let after: Vec<_> = ["main.o", "static", "script"]
            .iter()
            .map(|name| fs::read(out.join(name)).unwrap())
            .collect();
        assert_eq!(before, after);
    }

    /// elb's allocator took the ELF header's bytes for free space: a small library's grown
    /// `.dynstr` (glibc's iconv modules) landed at offset 0, over the header, with `DT_STRTAB`
    /// 0. With the guard section it lands elsewhere, the loader finds the RUNPATH, and the
    /// guard does not stay in the section table; `exclude` leaves a file alone.
    #[test]
    fn small_libraries_are_patched_without_clobbering_the_header_and_exclude_skips_files() {
        let tmp = tempfile::tempdir().unwrap();
        let module = tmp.path().join("out/lib/gconv/EUC-JP.so");
        fs::create_dir_all(module.parent().unwrap()).unwrap();
        fs::copy("/usr/lib/x86_64-linux-gnu/gconv/EUC-JP.so", &module).unwrap();
        let before = fs::read(&module).unwrap();
        let sections_before = goblin::elf::Elf::parse(&before)
            .unwrap()
            .section_headers
            .len();
        let mut options = AutoPatchelfOptions {
            interpreter: None,
            search_path: vec![PathBuf::from("/lib/x86_64-linux-gnu")],
            ignore_missing: vec!["*".to_owned()],
            exclude: vec![tmp.path().join("out/lib/gconv")],
        };
        let outcome = auto_patchelf(&[tmp.path().join("out")], &options).unwrap();
        assert!(outcome.changed.is_empty());
        assert_eq!(fs::read(&module).unwrap(), before);

        options.exclude.clear();
        auto_patchelf(&[tmp.path().join("out")], &options).unwrap();
        let after = fs::read(&module).unwrap();
        let parsed = goblin::elf::Elf::parse(&after).unwrap();
        assert_eq!(parsed.runpaths, ["$ORIGIN:/lib/x86_64-linux-gnu"]);
        assert_eq!(parsed.section_headers.len(), sections_before);
        assert_eq!(after[..4], *b"\x7fELF");
    }
}
