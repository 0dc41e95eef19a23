//! Replays the fuzz corpora through the harness: every file of `fuzz/corpus/<target>/` and
//! `fuzz/artifacts/<target>/` (crashes that were fixed, kept as regressions) is fed to the
//! target's function, one test per target. `fuzz/open-crashes/` is not replayed: it holds
//! inputs that still crash crates this harness does not own.
//!
//! A panic names the file, so a failure here is reproduced with
//! `cargo +nightly fuzz run <target> <file>` from `fuzz/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// The files to replay for `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for kind in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_file() && !name.to_string_lossy().starts_with('.') {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let run = kiln_fuzz_harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("a known target");
    let files = inputs(target);
    let started = Instant::now();
    for file in &files {
        let data = std::fs::read(file).expect("a corpus file reads");
        let result = std::panic::catch_unwind(|| run(&data));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} fails: {message}", file.display());
        }
    }
    eprintln!(
        "{target}: replayed {} inputs in {:.2?}",
        files.len(),
        started.elapsed()
    );
}

#[test]
fn plan() {
    replay("plan");
}

#[test]
fn attrs() {
    replay("attrs");
}

#[test]
fn archive() {
    replay("archive");
}

#[test]
fn patch() {
    replay("patch");
}

#[test]
fn state() {
    replay("state");
}

#[test]
fn elf() {
    replay("elf");
}

/// The corpora exist and are small: at most 2000 files and 8 MiB per target, no file over
/// 1 MiB.
#[test]
fn corpora_are_small() {
    for (target, _) in kiln_fuzz_harness::TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "{target}: no corpus");
        // The plan corpus passed 1000 files at 50 CPU-minutes (its grammar is wide); a set
        // cover keeps every target well under these bounds.
        assert!(files.len() <= 2000, "{target}: {} files", files.len());
        let mut total = 0;
        for file in files {
            let size = std::fs::metadata(&file).expect("metadata").len();
            assert!(size <= 1 << 20, "{}: {size} bytes", file.display());
            total += size;
        }
        assert!(total <= 8 << 20, "{target}: {total} bytes of corpus");
    }
}
