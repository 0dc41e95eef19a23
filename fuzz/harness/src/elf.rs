//! The `elf` target: kiln-fixup's ELF code on one file in an output: RPATH shrinking
//! (`rpath::shrink_rpath`, which reads the dynamic section and edits `.dynstr` in place), the
//! build-directory audit (`audit::audit_tmpdir`, which reads the RPATH) and build-ID reading
//! (`debuginfo::separate_debug_info` with no `objcopy` on the search path: it reads every
//! file's notes, then only warns), and `patchelf::auto_patchelf` (the `autoPatchelf` step,
//! which grows the file with the elb crate) on a copy. The ELF readers themselves are private
//! to kiln-fixup; these are their nearest public entry points.
//!
//! The file is read-only (mode 0555) like a file in an output after `chmod`, so the in-place
//! edit has to make it writable and restore the mode.
//!
//! Invariants checked:
//!
//! - no panic;
//! - nothing but the file changes; the build-ID scan and the audit change nothing at all;
//! - the file keeps its size and mode, and only the rewritten RPATH strings change: each new
//!   value is the old one with entries dropped, and at most as many bytes differ as the old
//!   values were long;
//! - shrinking again changes nothing (an RPATH is shrunk to what is needed in one go);
//! - a failure leaves the file as it was and names it;
//! - `auto_patchelf` changes nothing but its file, leaves the file as it was when it fails
//!   (naming it), and a second run after a successful one changes nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use kiln_fixup::rpath::shrink_rpath;

use crate::snapshot::Scratch;

/// Runs the `elf` target on one input.
pub fn elf(data: &[u8]) {
    let scratch = Scratch::new();
    let out = scratch.work.join("out");
    let lib = out.join("lib");
    fs::create_dir_all(&lib).expect("the output's lib directory");
    let file = lib.join("libfuzz.so");
    fs::write(&file, data).expect("the ELF file");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o555)).expect("chmod");

    let before = scratch.snapshot(&[&file]);
    let shrunk = shrink_rpath(&file);
    crate::note("elf", || format!("{shrunk:?}"));
    match shrunk {
        Ok(result) => {
            let after = fs::read(&file).expect("the file is still there");
            assert_eq!(after.len(), data.len(), "shrinking changed the file's size");
            let mode = fs::metadata(&file).expect("metadata").permissions().mode() & 0o7777;
            assert_eq!(mode, 0o555, "shrinking left the mode {mode:o}");
            if result.changes.is_empty() {
                assert!(
                    after == data,
                    "the file changed, but no change was reported"
                );
            }
            let mut budget = 0;
            for change in &result.changes {
                assert!(
                    kept_in_order(&change.old, &change.new),
                    "{} `{}` became `{}`, which is not a subset of its entries",
                    change.kind,
                    change.old,
                    change.new
                );
                budget += change.old.len();
            }
            let differing = data.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert!(
                differing <= budget,
                "{differing} bytes changed for RPATH strings of {budget} bytes"
            );
            if !result.changes.is_empty() {
                let again = shrink_rpath(&file).expect("a file that was shrunk parses again");
                assert!(
                    again.changes.is_empty(),
                    "shrinking twice changed {:?} after {:?}",
                    again.changes,
                    result.changes
                );
            }
        }
        Err(error) => {
            let rendered = error.to_string();
            assert!(
                rendered.contains(&file.display().to_string()),
                "the error `{rendered}` does not name the file"
            );
            assert!(
                fs::read(&file).expect("the file is still there") == data,
                "a failed shrink (`{rendered}`) changed the file"
            );
        }
    }
    scratch
        .snapshot(&[&file])
        .assert_unchanged(&before, "shrinking: the scratch directory besides the file");

    let untouched = scratch.snapshot(&[]);
    let _ = kiln_fixup::audit::audit_tmpdir(&out, Path::new("/build"), false);
    let no_tools = scratch.work.join("no-tools");
    let debug = scratch.work.join("debug");
    if let Ok(outcome) = kiln_fixup::debuginfo::separate_debug_info(&out, &debug, &[no_tools]) {
        assert!(
            outcome.changed.is_empty(),
            "debug info was separated without objcopy"
        );
    }
    scratch.snapshot(&[]).assert_unchanged(
        &untouched,
        "the audit and the build-ID scan: the scratch directory",
    );
    auto_patchelf(&scratch, data, &lib);
}

/// `auto_patchelf` on a copy of the input in `bin/`, with a store-like interpreter path (longer
/// than any Debian one, so the file must grow) and the output's `lib` as search path.
fn auto_patchelf(scratch: &Scratch, data: &[u8], lib: &Path) {
    use kiln_fixup::patchelf::{auto_patchelf, AutoPatchelfOptions};
    let program = scratch.work.join("out/bin/prog");
    fs::create_dir_all(program.parent().expect("a parent")).expect("the bin directory");
    fs::write(&program, data).expect("the program");
    let options =
        AutoPatchelfOptions {
            interpreter: Some(scratch.work.join(
                "nix/store/0123456789abcdefghijklmnopqrstuv-runtime/lib/ld-linux-x86-64.so.2",
            )),
            search_path: vec![lib.to_owned()],
            ignore_missing: vec!["*".to_owned()],
            exclude: Vec::new(),
        };
    let before = scratch.snapshot(&[&program]);
    let result = auto_patchelf(std::slice::from_ref(&program), &options);
    crate::note("elf", || format!("auto_patchelf: {result:?}"));
    match result {
        Ok(outcome) if !outcome.changed.is_empty() => {
            let again = auto_patchelf(std::slice::from_ref(&program), &options)
                .expect("a file that was patched patches again");
            assert!(
                again.changed.is_empty(),
                "patching twice changed the file again"
            );
        }
        Ok(_) => assert!(
            fs::read(&program).expect("the program") == data,
            "the file changed, but no change was reported"
        ),
        Err(error) => {
            let rendered = error.to_string();
            assert!(
                rendered.contains(&program.display().to_string()),
                "the error `{rendered}` does not name the file"
            );
            assert!(
                fs::read(&program).expect("the program") == data,
                "a failed autoPatchelf (`{rendered}`) changed the file"
            );
        }
    }
    scratch.snapshot(&[&program]).assert_unchanged(
        &before,
        "autoPatchelf: the scratch directory besides the file",
    );
}

/// Whether the `:`-separated entries of `new` are entries of `old`, in order.
fn kept_in_order(old: &str, new: &str) -> bool {
    if new.is_empty() {
        return true;
    }
    let mut old_entries = old.split(':');
    new.split(':')
        .all(|entry| old_entries.any(|candidate| candidate == entry))
}
