//! Benchmark: kiln's state archives (`kiln_state::pack` and `kiln_state::restore`) against GNU
//! tar + zstd (`tar -I 'zstd -T0' -cf` and `tar -I 'zstd -d' -xf`) on the same trees, in one run.
//!
//! Run with `cargo bench --bench state`. Two trees, both cached under the target directory
//! (`target/state-bench/`, or `$CARGO_TARGET_DIR/state-bench/`) so that repeated runs do not
//! rebuild them:
//!
//! - **hello**: the build directory of GNU hello 2.10 after `./configure && make -j2` with the
//!   host's gcc (the source comes from `scripts/fetch-debian-source.sh hello`; a failed download
//!   fails the benchmark);
//! - **generated**: 200,000 files of 1–16 KiB of compressible pseudo-text in 400 directories
//!   plus 20 files of 16 MiB, about 2 GB.
//!
//! Every measurement is a child process, so that its peak memory can be read: kiln's side is
//! this benchmark binary re-run as a child (`--kiln-state-child pack|restore ...`), GNU tar's
//! side is `tar` itself; both run under `/usr/bin/time -f %M`, which reports the peak RSS of the
//! largest process (for tar: tar or its zstd). Both sides use zstd level 3 and one compression
//! worker per CPU (`-T0`). kiln's unpack time includes what tar does not do: checking the
//! payload's SHA-256, staging and moving into place. The sides alternate run by run (so slow
//! phases of the machine hit both) and the median is reported, with the ratio kiln / tar
//! (below 1.00 means kiln is faster). `KILN_BENCH_RUNS` sets the number of timed runs
//! (default: 15 for hello, 3 for the generated tree); one untimed run warms the caches first.
//! `KILN_BENCH_DIR` picks the file system the archives are written to and unpacked on (default:
//! the cache directory). On this project's VMs, ext4 makes creating 200,000 files cost over a
//! minute of kernel time for both sides; `KILN_BENCH_DIR=/dev/shm` measures the tools instead
//! of the disk.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "--kiln-state-child";
/// Bump to regenerate the cached generated tree when its recipe changes.
const GENERATED_VERSION: &str = "1";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == CHILD) {
        child(&args[at + 1..]);
        return;
    }
    let base = bench_dir();
    fs::create_dir_all(&base).unwrap();
    let hello = hello_tree(&base);
    let generated = generated_tree(&base);
    // Where archives are written and unpacked: the cache directory, or `KILN_BENCH_DIR`.
    let scratch = std::env::var_os("KILN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| base.clone());
    println!(
        "state benchmark: trees in {}, archives and unpacking in {}",
        base.display(),
        scratch.display()
    );
    let runs = |default| {
        std::env::var("KILN_BENCH_RUNS")
            .ok()
            .and_then(|runs| runs.parse().ok())
            .unwrap_or(default)
    };
    bench(&scratch, "hello-2.10 build directory", &hello, runs(15));
    bench(&scratch, "generated tree", &generated, runs(3));
}

/// The child side of a kiln measurement: `pack TREE DEST` or `restore STATE BUILD`.
fn child(args: &[String]) {
    let outputs = BTreeMap::new();
    match args[0].as_str() {
        "pack" => {
            let input = kiln_state::PackInput::new(Path::new(&args[1]), &outputs);
            let base = kiln_state::ManifestBase {
                plan_hash: "0".repeat(64),
                phase: "build".to_owned(),
                workdir: PathBuf::new(),
                env: BTreeMap::new(),
            };
            kiln_state::pack(&input, base, Path::new(&args[2])).expect("kiln packs");
        }
        "restore" => {
            kiln_state::restore(Path::new(&args[1]), Path::new(&args[2]), &outputs)
                .expect("kiln restores");
        }
        other => panic!("unknown child command `{other}`"),
    }
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("state-bench")
}

fn run_quiet(mut command: Command, what: &str) {
    run(&mut command, what);
}

fn run(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// GNU hello 2.10, configured and built with the host's gcc; returns its build directory
/// (the directory holding `hello-2.10/`).
fn hello_tree(base: &Path) -> PathBuf {
    let dir = base.join("hello");
    let build = dir.join("build");
    let done = dir.join("built");
    if done.exists() {
        return build;
    }
    if dir.exists() {
        // A half-built tree from an interrupted run of this benchmark.
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&build).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(root.join("scripts/fetch-debian-source.sh"))
        .arg("hello")
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "\n\nFAILED to download the Debian source package `hello`\n"
    );
    let source = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    let tarball = source.join("hello_2.10.orig.tar.gz");
    assert!(tarball.exists(), "no {}", tarball.display());
    println!("building hello 2.10 once (cached in {})", dir.display());
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .current_dir(&build),
        "tar -xzf hello",
    );
    let src = build.join("hello-2.10");
    run(
        Command::new("./configure")
            .current_dir(&src)
            .stdout(Stdio::null()),
        "hello ./configure",
    );
    run(
        Command::new("make")
            .arg("-j2")
            .current_dir(&src)
            .stdout(Stdio::null()),
        "hello make",
    );
    fs::write(&done, "").unwrap();
    build
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const WORDS: [&str; 32] = [
    "static ",
    "int ",
    "return ",
    "void ",
    "const ",
    "char ",
    "struct ",
    "if (",
    ") {\n",
    "}\n",
    "for (",
    "i++",
    "; ",
    "NULL",
    "size_t ",
    "buffer",
    "length",
    "#include <",
    ">\n",
    "error",
    "x",
    "y",
    " = ",
    " == ",
    "->",
    "->next",
    "printf(\"%s\\n\", ",
    "unsigned ",
    "long ",
    "0x",
    "    ",
    "/* comment */\n",
];

/// Fills `out` with `len` bytes of C-like text with numbers sprinkled in.
fn text(rng: &mut Rng, len: usize, out: &mut Vec<u8>) {
    out.clear();
    while out.len() < len {
        let r = rng.next();
        out.extend_from_slice(WORDS[(r & 31) as usize].as_bytes());
        if r & 0x300 == 0 {
            out.extend_from_slice(format!("{}", (r >> 20) % 100_000).as_bytes());
        }
    }
    out.truncate(len);
}

/// 200,000 files of 1–16 KiB in 20 × 20 directories plus 20 files of 16 MiB; returns the
/// build directory.
fn generated_tree(base: &Path) -> PathBuf {
    let dir = base.join("generated");
    let build = dir.join("build");
    let done = dir.join("generated");
    if fs::read_to_string(&done).ok().as_deref() == Some(GENERATED_VERSION) {
        return build;
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    println!("generating the tree once (cached in {})", dir.display());
    let started = Instant::now();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut content = Vec::new();
    for top in 0..20 {
        for sub in 0..20 {
            let d = build.join(format!("src{top:02}/mod{sub:02}"));
            fs::create_dir_all(&d).unwrap();
            for file in 0..500 {
                let len = 1024 + (rng.next() % (15 * 1024 + 1)) as usize;
                text(&mut rng, len, &mut content);
                fs::write(d.join(format!("file{file:03}.c")), &content).unwrap();
            }
        }
    }
    let large = build.join("large");
    fs::create_dir_all(&large).unwrap();
    for index in 0..20 {
        let mut file =
            BufWriter::new(fs::File::create(large.join(format!("blob{index:02}.o"))).unwrap());
        for _ in 0..16 {
            text(&mut rng, 1 << 20, &mut content);
            file.write_all(&content).unwrap();
        }
        file.flush().unwrap();
    }
    fs::write(&done, GENERATED_VERSION).unwrap();
    println!("  generated in {:.1} s", started.elapsed().as_secs_f64());
    build
}

/// Runs `command` under `/usr/bin/time`; returns the wall time and the peak RSS in KiB.
fn measure(command: &[&std::ffi::OsStr], cwd: Option<&Path>, scratch: &Path) -> (Duration, u64) {
    let rss_file = scratch.join("rss");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .args(command);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let started = Instant::now();
    let status = cmd.status().expect("/usr/bin/time runs");
    let elapsed = started.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    let rss = fs::read_to_string(&rss_file)
        .unwrap()
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .expect("a peak RSS from /usr/bin/time");
    (elapsed, rss)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn du(path: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
                bytes += metadata.len();
            }
        }
    }
    (files, bytes)
}

fn bench(base: &Path, name: &str, tree: &Path, runs: usize) {
    let (files, bytes) = du(tree);
    let scratch = tempfile::tempdir_in(base).unwrap();
    let s = scratch.path();
    let me = std::env::current_exe().unwrap();
    let state = s.join("state");
    let tar_archive = s.join("tree.tar.zst");
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut peaks: BTreeMap<&str, u64> = BTreeMap::new();
    for run in 0..=runs {
        // Run 0 warms the page cache and is not counted. The sides alternate who goes first.
        let kiln_first = run % 2 == 0;
        for side in if kiln_first {
            ["kiln", "tar"]
        } else {
            ["tar", "kiln"]
        } {
            let (pack, pack_rss) = if side == "kiln" {
                if state.exists() {
                    fs::remove_dir_all(&state).unwrap();
                }
                fs::create_dir(&state).unwrap();
                measure(
                    &[
                        me.as_os_str(),
                        CHILD.as_ref(),
                        "pack".as_ref(),
                        tree.as_os_str(),
                        state.as_os_str(),
                    ],
                    None,
                    s,
                )
            } else {
                let _ = fs::remove_file(&tar_archive);
                measure(
                    &[
                        "tar".as_ref(),
                        "-I".as_ref(),
                        "zstd -T0".as_ref(),
                        "-cf".as_ref(),
                        tar_archive.as_os_str(),
                        ".".as_ref(),
                    ],
                    Some(tree),
                    s,
                )
            };
            let into = s.join(format!("unpacked-{side}"));
            fs::create_dir(&into).unwrap();
            let (unpack, unpack_rss) = if side == "kiln" {
                measure(
                    &[
                        me.as_os_str(),
                        CHILD.as_ref(),
                        "restore".as_ref(),
                        state.as_os_str(),
                        into.as_os_str(),
                    ],
                    None,
                    s,
                )
            } else {
                measure(
                    &[
                        "tar".as_ref(),
                        "-I".as_ref(),
                        "zstd -d".as_ref(),
                        "-xf".as_ref(),
                        tar_archive.as_os_str(),
                    ],
                    Some(&into),
                    s,
                )
            };
            fs::remove_dir_all(&into).unwrap();
            // Write back (untimed) what this run left, so that it does not slow the next one.
            run_quiet(Command::new("sync"), "sync");
            if run > 0 {
                let (pack_key, unpack_key) = if side == "kiln" {
                    ("kiln pack", "kiln unpack")
                } else {
                    ("tar pack", "tar unpack")
                };
                times.entry(pack_key).or_default().push(pack);
                times.entry(unpack_key).or_default().push(unpack);
                let peak = peaks.entry(pack_key).or_default();
                *peak = (*peak).max(pack_rss);
                let peak = peaks.entry(unpack_key).or_default();
                *peak = (*peak).max(unpack_rss);
            }
        }
    }
    let kiln_size = fs::metadata(state.join(kiln_state::PAYLOAD_FILE))
        .unwrap()
        .len();
    let tar_size = fs::metadata(&tar_archive).unwrap().len();
    println!();
    println!(
        "{name}: {files} files, {:.1} MB; median of {runs} runs",
        bytes as f64 / 1e6
    );
    println!(
        "  archive size: kiln {:.1} MB, tar+zstd {:.1} MB",
        kiln_size as f64 / 1e6,
        tar_size as f64 / 1e6
    );
    for (operation, tar_command) in [
        ("pack", "tar -I 'zstd -T0' -cf"),
        ("unpack", "tar -I 'zstd -d' -xf"),
    ] {
        let kiln = median(times[format!("kiln {operation}").as_str()].clone());
        let tar = median(times[format!("tar {operation}").as_str()].clone());
        let kiln_peak = peaks[format!("kiln {operation}").as_str()];
        let tar_peak = peaks[format!("tar {operation}").as_str()];
        println!(
            "  {operation:<6} kiln {:>9.1} ms (peak RSS {:>6.1} MiB)   {tar_command:<22} {:>9.1} ms (peak RSS {:>6.1} MiB)",
            kiln.as_secs_f64() * 1000.0,
            kiln_peak as f64 / 1024.0,
            tar.as_secs_f64() * 1000.0,
            tar_peak as f64 / 1024.0,
        );
        println!(
            "         ratio kiln/tar {:.2} ({})",
            kiln.as_secs_f64() / tar.as_secs_f64(),
            if kiln <= tar {
                "goal met: at least as fast as GNU tar + zstd"
            } else {
                "goal NOT met: slower than GNU tar + zstd"
            }
        );
    }
}
