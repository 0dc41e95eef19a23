//! Benchmark: kiln's unpacker (`kiln_archive::unpack_sources`, in process) against GNU tar
//! (`tar -xzf`, `tar -xJf`) on real Debian source tarballs, each into a fresh directory.
//!
//! Run with `cargo bench --bench unpack`. The tarballs come from `scripts/fetch-debian-source.sh`
//! (a cache outside the repository; the first run downloads them): cmake's `.orig.tar.gz`
//! (~24,000 files) and coreutils' `.orig.tar.xz` (~3,100 files). A download that fails makes the
//! benchmark fail: it never quietly measures something else.
//!
//! kiln's time includes everything `unpackPhase` does: extraction, finding the source root,
//! `chmod -R u+w` and the newest mtime. The two tools alternate run by run, each after a `sync`,
//! so slow phases of the machine (page-cache writeback, ...) hit both alike; the median of
//! [`RUNS`] runs is reported, with the ratio kiln / tar (below 1.00 means kiln is faster). It
//! runs on the system temp directory (a disk) and on `/dev/shm` (memory: the unpacker's own cost,
//! without the disk's); `KILN_BENCH_DIR` picks one directory instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_archive::{unpack_sources, UnpackOptions};

const RUNS: usize = 5;

/// Downloads (or finds in the cache) a Debian source package; returns its `.orig.tar.*`.
fn fetch(package: &str, suffix: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(root.join("scripts/fetch-debian-source.sh"))
        .arg(package)
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "\n\nFAILED to download the Debian source package `{package}`; pick another package\n"
    );
    let dir = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.contains(".orig.tar.") && name.ends_with(suffix)
        })
        .unwrap_or_else(|| panic!("no .orig{suffix} in {}", dir.display()))
}

fn sync() {
    let status = Command::new("sync").status().expect("sync runs");
    assert!(status.success(), "sync failed: {status}");
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn bench(base: &Path, tarball: &Path, tar_flag: &str) {
    let name = tarball.file_name().unwrap().to_string_lossy();
    // Every run unpacks into a directory of its own, all removed at the end: removing 24,000
    // files between runs makes the next run's file creation on ext4 up to ten times slower.
    let scratch = tempfile::tempdir_in(base).unwrap();
    let scratch = scratch.path();
    let mut kiln_times = Vec::new();
    let mut tar_times = Vec::new();
    let mut files = 0;
    for run in 0..=RUNS {
        // Run 0 warms the page cache and is not counted. Before each timed run, `sync` writes
        // back what the previous run left dirty, so neither tool pays for the other's writes.
        sync();
        let into = scratch.join(format!("kiln-{run}"));
        std::fs::create_dir(&into).unwrap();
        let started = Instant::now();
        let unpacked = unpack_sources(&[tarball.to_owned()], &into, &UnpackOptions::default())
            .expect("kiln unpacks");
        let kiln_time = started.elapsed();
        files = unpacked.entries;

        sync();
        let into = scratch.join(format!("tar-{run}"));
        std::fs::create_dir(&into).unwrap();
        let started = Instant::now();
        let status = Command::new("tar")
            .arg(tar_flag)
            .arg(tarball)
            .current_dir(&into)
            .status()
            .expect("GNU tar runs");
        let tar_time = started.elapsed();
        assert!(status.success(), "tar {tar_flag} failed: {status}");

        if run > 0 {
            kiln_times.push(kiln_time);
            tar_times.push(tar_time);
        }
    }
    let kiln = median(kiln_times);
    let tar = median(tar_times);
    println!("{name} ({files} entries), median of {RUNS} runs:");
    println!("  GNU tar {tar_flag:<5} {:>9.1} ms", millis(tar));
    println!("  kiln unpack   {:>9.1} ms", millis(kiln));
    println!(
        "  ratio kiln/tar {:>8.2}  ({})",
        kiln.as_secs_f64() / tar.as_secs_f64(),
        if kiln <= tar {
            "goal met: at least as fast as GNU tar"
        } else {
            "goal NOT met: slower than GNU tar"
        }
    );
}

fn main() {
    let gz = fetch("cmake", ".tar.gz");
    let xz = fetch("coreutils", ".tar.xz");
    let bases: Vec<PathBuf> = match std::env::var_os("KILN_BENCH_DIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => [std::env::temp_dir(), PathBuf::from("/dev/shm")]
            .into_iter()
            .filter(|dir| dir.is_dir())
            .collect(),
    };
    for base in &bases {
        println!("\nunpacking into {}", base.display());
        bench(base, &gz, "-xzf");
        bench(base, &xz, "-xJf");
    }
}
