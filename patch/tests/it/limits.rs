//! Bounded memory: a patch larger than the limit once decompressed (a "gzip bomb": a small file
//! that inflates to hundreds of MiB) is refused with a clear error after reading at most the
//! limit. The limit applies to what the decoder yields, so it is the same for gzip, bzip2, xz,
//! zstd and plain files; gzip and plain files are tested here. The bombs are written to disk as
//! they are made, never held in memory, and a child process measures the peak memory.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_patch::{apply_patch_file, PatchError, PatchOptions};

/// How much the bombs inflate to: twice the 64 MiB limit.
const BOMB_SIZE: u64 = 128 * 1024 * 1024;

/// One line of the big patches' only hunk.
const LINE: &str =
    "+the quick brown fox jumps over the lazy dog, the quick brown fox jumps over it\n";

/// Lines per gzip member.
const LINES_PER_MEMBER: u64 = 16 * 1024;

/// Writes to `out` a gzip file (several members, as `cat a.gz b.gz` makes and `gzip -d` reads)
/// holding a well-formed patch that creates `big.txt` with about `size` bytes of lines. The
/// hunk header counts its lines, so without a limit the patch would parse, and apply, whole.
///
/// One member of lines is compressed once and written as often as needed: the test never holds
/// the decompressed patch, and does not spend minutes compressing it in a debug build.
fn write_big_patch(out: &mut dyn Write, size: u64) {
    let members = size / (LINES_PER_MEMBER * LINE.len() as u64);
    let lines = members * LINES_PER_MEMBER;
    let header = format!("--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1,{lines} @@\n");
    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    out.write_all(&gzip(header.as_bytes())).unwrap();
    let member = gzip(LINE.repeat(LINES_PER_MEMBER as usize).as_bytes());
    for _ in 0..members {
        out.write_all(&member).unwrap();
    }
}

/// Writes the gzip patch `name` of about `size` bytes decompressed (see [`write_big_patch`])
/// next to an empty tree `src/`; returns the patch and the tree.
fn big_gzip_patch(dir: &Path, name: &str, size: u64) -> (PathBuf, PathBuf) {
    let tree = dir.join("src");
    fs::create_dir_all(&tree).unwrap();
    let patch = dir.join(name);
    let mut file = BufWriter::new(File::create(&patch).unwrap());
    write_big_patch(&mut file, size);
    file.flush().unwrap();
    (patch, tree)
}

/// A gzip patch that inflates to [`BOMB_SIZE`]; returns the patch and the tree.
fn gzip_bomb(dir: &Path) -> (PathBuf, PathBuf) {
    big_gzip_patch(dir, "bomb.patch.gz", BOMB_SIZE)
}

fn assert_too_large(error: &PatchError, patch: &Path) {
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "`{}` is larger than the limit of 64 MiB once decompressed",
            patch.display()
        )
    );
    let hint = error.hint().expect("a hint says what to do");
    assert!(hint.contains("split"), "{hint}");
}

#[test]
fn gzip_bomb_is_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (patch, tree) = gzip_bomb(dir.path());
    let compressed = fs::metadata(&patch).unwrap().len();
    eprintln!("gzip bomb: {compressed} bytes compressed, {BOMB_SIZE} decompressed");
    assert!(compressed < 1024 * 1024, "{compressed} bytes");
    let error = apply_patch_file(&patch, &tree, &PatchOptions::default()).unwrap_err();
    assert_too_large(&error, &patch);
    assert!(!tree.join("big.txt").exists());
}

#[test]
fn plain_patch_over_the_limit_is_refused() {
    // A sparse file: 100 MiB of zero bytes that take no disk space.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("src")).unwrap();
    let patch = dir.path().join("huge.patch");
    File::create(&patch)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let error =
        apply_patch_file(&patch, &dir.path().join("src"), &PatchOptions::default()).unwrap_err();
    assert_too_large(&error, &patch);
}

#[test]
fn patch_just_under_the_limit_applies() {
    // 60 MiB of added lines, gzip-compressed: under the limit, so it applies (the offsets the
    // parser keeps for its lines are 32-bit; this checks them at scale).
    let dir = tempfile::tempdir().unwrap();
    let (patch, tree) = big_gzip_patch(dir.path(), "large.patch.gz", 60 * 1024 * 1024);
    let report = apply_patch_file(&patch, &tree, &PatchOptions::default()).unwrap();
    assert_eq!(report.files.len(), 1);
    assert!(fs::metadata(tree.join("big.txt")).unwrap().len() > 50 * 1024 * 1024);
}

/// The environment variable that makes [`gzip_bomb_child`] do its work.
const CHILD_ENV: &str = "KILN_PATCH_TEST_BOMB_DIR";

/// The peak resident set size of this process, from `/proc/self/status` (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Runs in a child process started by [`gzip_bomb_peak_memory_is_bounded`]: applies the bomb
/// in the directory named by [`CHILD_ENV`] and prints its peak memory. Does nothing otherwise.
#[test]
fn gzip_bomb_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let before = peak_rss_kib();
    let result = apply_patch_file(
        &dir.join("bomb.patch.gz"),
        &dir.join("src"),
        &PatchOptions::default(),
    );
    // On a line of its own: libtest has printed `test ... ` without a newline.
    println!("\npeak-rss-kib-before: {before}");
    println!("peak-rss-kib: {}", peak_rss_kib());
    println!("result: {:?}", result.map(drop).map_err(|e| e.to_string()));
}

#[test]
fn gzip_bomb_peak_memory_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    gzip_bomb(dir.path());
    // A fresh process, so that the peak is this patch's alone.
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "limits::gzip_bomb_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let value = |key: &str| -> u64 {
        stdout
            .lines()
            .find_map(|line| line.split_once(key).map(|(_, value)| value))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{key}` in the child's output:\n{stdout}"))
    };
    let peak = value("peak-rss-kib:");
    let before = value("peak-rss-kib-before:");
    eprintln!("gzip bomb of {BOMB_SIZE} bytes: peak RSS {peak} KiB ({before} KiB before applying)");
    assert!(stdout.contains("larger than the limit"), "{stdout}");
    // The limit (64 MiB) is read into memory before the error; allow for the decoder and the
    // test harness, but nowhere near the bomb's size.
    assert!(
        peak - before < 96 * 1024,
        "applying the bomb took {} KiB",
        peak - before
    );
}
