//! Benchmark: kiln's separation of debug info (`kiln_fixup::debuginfo::separate_debug_info`,
//! what `separateDebugInfo = true` does in stdenv) against the logic of nixpkgs'
//! `separate-debug-info.sh` run by bash over the same tree.
//!
//! Run with `cargo bench --bench debuginfo`. The tree is generated once in a temporary
//! directory: `KILN_BENCH_ELF` ELF files (default 200: half executables `bin/prog-N`, half shared
//! libraries `lib/libv-N.so`), each compiled with `cc -g -O1 -DVARIANT=N` from one C source of
//! 64 functions and structs, so every file has its own build ID and a realistic share of DWARF;
//! plus 2,000 small text files, 200 shell scripts and a symlink per library, which both sides
//! must walk past. Every timed run works on a fresh `cp -a` copy of the tree followed by `sync`
//! and an empty destination output (not timed); the sides alternate run by run and the median
//! of `KILN_BENCH_RUNS` runs (default 3) is reported.
//!
//! kiln reads build IDs from the ELF notes in-process and runs `objcopy --only-keep-debug` on
//! the global rayon pool (one thread per CPU). The baseline is the hook's logic as a bash script
//! (written for this benchmark, not nixpkgs' text): `find -type f | sort`, then per file an ELF
//! magic check with bash's builtin `read -n 4` (as stdenv's `isELF`; forking `head -c 4`
//! instead adds about 1 ms per file, 2.5 s on this tree), `readelf -n | sed` for the build ID,
//! `mkdir -p`, `objcopy --only-keep-debug` and `ln -sfn`, one file after the other as in stdenv.
//! Neither side strips the originals (kiln leaves that to its strip step). Both use the host's
//! binutils from `PATH`.
//! After every run the destination's `lib/debug` is checked: kiln and bash must produce the same
//! paths, the same symlink targets and the same debug file sizes, one non-empty `.debug` file
//! per ELF file, or the benchmark panics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_fixup::debuginfo::{separate_debug_info, DEBUG_DIR};

/// Functions (each with its own struct type) in the generated C source.
const FUNCTIONS: usize = 64;
const TEXT_FILES: usize = 2_000;
const SCRIPTS: usize = 200;

/// The hook's logic as a bash script: `$1` is the output to scan, `$2` the debug output.
const BASELINE: &str = r#"
set -eu
prefix="$1"; dst="$2/lib/debug"
find "$prefix" -type f -print0 | sort -z | while IFS= read -r -d '' file; do
  magic=
  IFS= read -r -n 4 magic < "$file" || true
  [ "$magic" = $'\177ELF' ] || continue
  id="$(readelf -n -- "$file" 2>/dev/null | sed -n 's/^[[:space:]]*Build ID: \([0-9a-f]*\)$/\1/p')"
  if ! [[ "$id" =~ ^[0-9a-f]{40}$ ]]; then
    echo "no build ID in $file" >&2
    continue
  fi
  mkdir -p -- "$dst/.build-id/${id:0:2}"
  if objcopy --only-keep-debug -- "$file" "$dst/.build-id/${id:0:2}/${id:2}.debug"; then
    ln -sfn -- ".build-id/${id:0:2}/${id:2}.debug" "$dst/${file##*/}"
  else
    echo "objcopy failed on $file" >&2
    rm -f -- "$dst/.build-id/${id:0:2}/${id:2}.debug"
  fi
done
"#;

fn run(command: &mut Command) {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write(path: &Path, contents: impl AsRef<[u8]>, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// One C source for every variant: `-DVARIANT=N` changes constants in each function (and so
/// the build ID), `-DSHARED` makes it a library without `main`.
fn c_source() -> String {
    let mut source = String::from(
        "#include <stdio.h>\n#include <string.h>\n\
         #ifdef SHARED\n#define SCOPE\n#else\n#define SCOPE static\n#endif\n\
         #define DEFINE(i) \\\n\
         struct rec##i { int id; double weight; char name[24]; struct rec##i *next; }; \\\n\
         SCOPE int work##i(int n) { struct rec##i r; memset(&r, 0, sizeof r); \\\n\
         r.id = n * i + VARIANT; r.weight = r.id / 3.0; \\\n\
         snprintf(r.name, sizeof r.name, \"r%d-%d\", n, VARIANT); \\\n\
         return r.id + (int)strlen(r.name) + (int)r.weight; }\n",
    );
    for i in 0..FUNCTIONS {
        let _ = writeln!(source, "DEFINE({i})");
    }
    source.push_str("#ifndef SHARED\nint main(int argc, char **argv) { (void)argv; int t = 0;\n");
    for i in 0..FUNCTIONS {
        let _ = writeln!(source, "t += work{i}(argc);");
    }
    source.push_str("return t == 42; }\n#endif\n");
    source
}

/// Generates the template output at `out` with `elves` ELF files; returns a summary line.
fn generate(scratch: &Path, out: &Path, elves: usize, cores: usize) -> String {
    let source = scratch.join("variant.c");
    fs::write(&source, c_source()).unwrap();
    fs::create_dir_all(out.join("bin")).unwrap();
    fs::create_dir_all(out.join("lib")).unwrap();
    // Half executables, half libraries, compiled `cores` at a time.
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= elves {
                    break;
                }
                let mut cc = Command::new("cc");
                cc.args(["-g", "-O1", "-Wl,--build-id"])
                    .arg(format!("-DVARIANT={i}"));
                if i % 2 == 0 {
                    cc.arg("-o").arg(out.join(format!("bin/prog-{:03}", i / 2)));
                } else {
                    cc.args(["-DSHARED", "-shared", "-fPIC", "-o"])
                        .arg(out.join(format!("lib/libv-{:03}.so", i / 2)));
                }
                run(cc.arg(&source));
            });
        }
    });
    for i in (1..elves).step_by(2) {
        let name = format!("libv-{:03}.so", i / 2);
        std::os::unix::fs::symlink(&name, out.join(format!("lib/{name}.1"))).unwrap();
    }
    for i in 0..TEXT_FILES {
        let mut text = format!("Note {i}\n");
        for line in 0..(i % 20) {
            let _ = writeln!(
                text,
                "line {line} of note {i}, plain text the walk must skip"
            );
        }
        write(
            &out.join(format!("share/doc/d{:02}/note-{i:04}.txt", i % 40)),
            text,
            0o644,
        );
    }
    for i in 0..SCRIPTS {
        write(
            &out.join(format!("libexec/script-{i:03}")),
            format!("#!/bin/sh\nset -e\necho script {i} \"$@\"\n"),
            0o755,
        );
    }
    let bytes: u64 = ["bin", "lib"]
        .iter()
        .flat_map(|dir| fs::read_dir(out.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path().symlink_metadata().unwrap())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum();
    format!(
        "{} executables + {} shared libraries ({:.1} MB, unstripped), {TEXT_FILES} text files, \
         {SCRIPTS} scripts, {} symlinks",
        elves.div_ceil(2),
        elves / 2,
        bytes as f64 / 1e6,
        elves / 2
    )
}

/// What is under a `lib/debug`: directories, symlinks with their targets, files with sizes.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir,
    Link(PathBuf),
    File(u64),
}

fn list(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, dir: &Path, nodes: &mut BTreeMap<PathBuf, Node>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = path.symlink_metadata().unwrap();
            let relative = path.strip_prefix(root).unwrap().to_owned();
            if meta.is_dir() {
                nodes.insert(relative, Node::Dir);
                walk(root, &path, nodes);
            } else if meta.file_type().is_symlink() {
                nodes.insert(relative, Node::Link(fs::read_link(&path).unwrap()));
            } else {
                nodes.insert(relative, Node::File(meta.len()));
            }
        }
    }
    let mut nodes = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut nodes);
    }
    nodes
}

/// Checks one side's result: one non-empty debug file and one symlink per ELF file, every
/// symlink resolving to a debug file. Returns the listing.
fn check(side: &str, debug: &Path, elves: usize) -> BTreeMap<PathBuf, Node> {
    let nodes = list(debug);
    let files: Vec<_> = nodes
        .iter()
        .filter(|(_, node)| matches!(node, Node::File(_)))
        .collect();
    assert_eq!(files.len(), elves, "{side}: debug files under {debug:?}");
    for (path, node) in &files {
        assert!(
            path.extension().is_some_and(|ext| ext == "debug") && **node != Node::File(0),
            "{side}: bad debug file {path:?} ({node:?})"
        );
    }
    let links = nodes
        .iter()
        .filter(|(_, node)| matches!(node, Node::Link(_)))
        .inspect(|(path, node)| {
            let Node::Link(target) = node else {
                unreachable!()
            };
            assert!(
                matches!(nodes.get(target), Some(Node::File(_))),
                "{side}: {path:?} -> {target:?} is not a debug file"
            );
        })
        .count();
    assert_eq!(links, elves, "{side}: symlinks under {debug:?}");
    nodes
}

struct Bench {
    template: PathBuf,
    run_out: PathBuf,
    debug_out: PathBuf,
    path_dirs: Vec<PathBuf>,
    elves: usize,
}

impl Bench {
    /// A fresh copy of the template and an empty destination (not timed).
    fn fresh(&self) {
        let run = self.run_out.parent().unwrap();
        if run.exists() {
            fs::remove_dir_all(run).unwrap();
        }
        fs::create_dir_all(run).unwrap();
        self::run(
            Command::new("cp")
                .arg("-a")
                .arg(&self.template)
                .arg(&self.run_out),
        );
        fs::create_dir_all(&self.debug_out).unwrap();
        // Let the copy reach the disk so write-back does not land inside a timed run.
        self::run(&mut Command::new("sync"));
    }

    fn kiln(&self) -> (Duration, BTreeMap<PathBuf, Node>) {
        self.fresh();
        let started = Instant::now();
        let outcome = separate_debug_info(&self.run_out, &self.debug_out, &self.path_dirs)
            .unwrap_or_else(|err| panic!("kiln failed: {err}"));
        let elapsed = started.elapsed();
        assert!(
            outcome.warnings.is_empty(),
            "kiln warned: {:?}",
            outcome.warnings
        );
        assert_eq!(outcome.changed.len(), 2 * self.elves);
        (
            elapsed,
            check("kiln", &self.debug_out.join(DEBUG_DIR), self.elves),
        )
    }

    fn bash(&self) -> (Duration, BTreeMap<PathBuf, Node>) {
        self.fresh();
        let started = Instant::now();
        run(Command::new("bash")
            .arg("-c")
            .arg(BASELINE)
            .arg("separate-debug-info")
            .arg(&self.run_out)
            .arg(&self.debug_out));
        let elapsed = started.elapsed();
        (
            elapsed,
            check("bash", &self.debug_out.join(DEBUG_DIR), self.elves),
        )
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn main() {
    let elves = env_count("KILN_BENCH_ELF", 200);
    let runs = env_count("KILN_BENCH_RUNS", 3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let path_dirs: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    for tool in ["objcopy", "readelf", "cc"] {
        assert!(
            path_dirs.iter().any(|dir| dir.join(tool).is_file()),
            "the host has no `{tool}` on PATH (binutils and a C compiler are needed)"
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let template = root.join("template/out");
    let started = Instant::now();
    let summary = generate(root, &template, elves, cores);
    println!(
        "debuginfo benchmark ({cores} cores, {runs} timed runs per side)\n\
         tree: {summary} (generated in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let bench = Bench {
        template,
        run_out: root.join("run/out"),
        debug_out: root.join("run/debug"),
        path_dirs,
        elves,
    };
    let (mut kiln, mut bash) = (Vec::new(), Vec::new());
    let mut reference = None;
    for _ in 0..runs {
        let (time, kiln_nodes) = bench.kiln();
        kiln.push(time);
        let (time, bash_nodes) = bench.bash();
        bash.push(time);
        if kiln_nodes != bash_nodes {
            let only = |a: &BTreeMap<PathBuf, Node>, b: &BTreeMap<PathBuf, Node>| {
                a.iter()
                    .filter(|(path, node)| b.get(*path) != Some(node))
                    .take(5)
                    .map(|(path, node)| format!("{} ({node:?})", path.display()))
                    .collect::<Vec<_>>()
            };
            panic!(
                "kiln and bash differ: kiln only {:?}; bash only {:?}",
                only(&kiln_nodes, &bash_nodes),
                only(&bash_nodes, &kiln_nodes)
            );
        }
        reference = Some(kiln_nodes);
    }
    let nodes = reference.unwrap();
    let debug_bytes: u64 = nodes
        .values()
        .map(|node| if let Node::File(len) = node { *len } else { 0 })
        .sum();
    let ids = nodes
        .values()
        .filter(|node| matches!(node, Node::File(_)))
        .count();
    let (kiln, bash) = (median(kiln), median(bash));
    let ratio = kiln.as_secs_f64() / bash.as_secs_f64();
    println!(
        "ELF files / build IDs  {elves} / {ids} ({:.1} MB of debug files, identical on both sides)",
        debug_bytes as f64 / 1e6
    );
    println!("kiln ({cores} threads)       {:>8.0} ms (median)", ms(kiln));
    println!(
        "bash hook logic        {:>8.0} ms (median, sequential)",
        ms(bash)
    );
    println!("ratio kiln/bash        {ratio:>8.2}");
    println!(
        "conclusion: kiln separates debug info {:.1}x {} than the bash hook ({elves} ELF files)",
        if ratio <= 1.0 { 1.0 / ratio } else { ratio },
        if ratio <= 1.0 { "faster" } else { "slower" }
    );
}
