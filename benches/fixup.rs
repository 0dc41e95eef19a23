//! Benchmark: kiln's whole fixup of one output (`kiln_fixup::fixup_output`, stdenv's defaults)
//! on a generated package tree, against the same tree processed by the command-line tools a
//! user would reach for (`find` + `patchelf --shrink-rpath`, `strip -S`, `gzip -n -9`,
//! `sed -i` for shebangs and libtool files, `mv` for `lib64`, `ln -snrf` for symlinks).
//!
//! Run with `cargo bench --bench fixup`. The full tree has 200 ELF executables and 200 ELF
//! shared libraries (unstripped, with removable RUNPATH entries: one program and one library are
//! compiled with `cc -g` once and copied under distinct names), 3,000 scripts (`#!/usr/bin/env
//! python3`, `#!/bin/sh`, `#!/usr/bin/perl -w`, `#!/usr/bin/env -S bash -e`), 2,000 man pages
//! plus symlinks to some of them, 10,000 data files of 100 B to 200 KiB (log-uniform sizes,
//! about 270 MB), absolute and relative symlinks, libtool `.la` files and a `lib64/`. The tree
//! is generated once per size; every run works on a fresh `cp -a` copy followed by `sync` (not
//! timed). Both sides run with warm page caches. Interpreters and `strip` come from a fake store directory of
//! symlinks to the host's tools, so every shebang is rewritten.
//!
//! The baseline needs `patchelf` (`apt-get install patchelf`); without it that part is skipped
//! and said so. Set `KILN_BENCH_RUNS` to change the number of timed runs (default 3; the
//! baseline runs once per size). For scale: nixpkgs' bash `fixupPhase` takes about 60 s on the
//! full tree on this machine type; the goal is kiln under 6 s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_fixup::{FixupContext, FixupHook, FixupOptions};

const TOOLS_HASH: &str = "0c6kzph7l0dcbfmjap64f0czdafn3b7x-bench-tools";
const BASH_FIXUP_SECONDS: f64 = 60.0;
const GOAL_SECONDS: f64 = 6.0;

/// Small deterministic generator (xorshift64*), so trees are identical across runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Log-uniform in `[low, high]`.
    fn log_uniform(&mut self, low: f64, high: f64) -> usize {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (low * (high / low).powf(unit)) as usize
    }
}

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

fn symlink(target: impl AsRef<Path>, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// A C source with enough functions and types that `-g` adds a realistic share of debug info.
fn c_source(kind: &str) -> String {
    let mut source = String::from("#include <stdio.h>\n#include <string.h>\n");
    for i in 0..120 {
        let _ = write!(
            source,
            "struct rec{i} {{ int id; double weight; char name[24]; struct rec{i} *next; }};\n\
             {kind}int work{i}(int n) {{ struct rec{i} r; memset(&r, 0, sizeof r); \
             r.id = n * {i}; snprintf(r.name, sizeof r.name, \"r%d\", n); \
             return r.id + (int)strlen(r.name); }}\n",
        );
    }
    source
}

/// Compiles the one program and the one library that the tree copies.
fn compile(scratch: &Path, run_lib: &Path) -> (Vec<u8>, Vec<u8>) {
    let lib_c = scratch.join("mod.c");
    fs::write(&lib_c, c_source("")).unwrap();
    let lib = scratch.join("libbenchmod.so");
    run(Command::new("cc")
        .args(["-g", "-O1", "-shared", "-fPIC"])
        .arg("-Wl,-rpath,/usr/local/lib/useless:/opt/nothing/lib")
        .arg("-o")
        .arg(&lib)
        .arg(&lib_c));
    let exe_c = scratch.join("prog.c");
    let mut source = c_source("static ");
    source.push_str(
        "int work0_lib(int);\nint main(int argc, char **argv) { (void)argv; int t = 0;\n",
    );
    for i in 0..120 {
        let _ = writeln!(source, "t += work{i}(argc);");
    }
    source.push_str("return t == 42; }\n");
    fs::write(&exe_c, source).unwrap();
    let exe = scratch.join("prog");
    // Needs libbenchmod.so, found only in the last RUNPATH entry (the run tree's lib/).
    run(Command::new("cc")
        .args(["-g", "-O1", "-o"])
        .arg(&exe)
        .arg(&exe_c)
        .arg(format!("-L{}", scratch.display()))
        .arg("-Wl,--no-as-needed")
        .arg("-lbenchmod")
        .arg(format!(
            "-Wl,-rpath,/usr/local/lib/useless:/opt/nothing/lib:{}",
            run_lib.display()
        )));
    (fs::read(exe).unwrap(), fs::read(lib).unwrap())
}

const SHEBANGS: [&str; 4] = [
    "#!/usr/bin/env python3\nimport sys\nprint(sys.argv)\n",
    "#!/bin/sh\nset -e\necho \"$@\"\n",
    "#!/usr/bin/perl -w\nuse strict;\nprint \"@ARGV\\n\";\n",
    "#!/usr/bin/env -S bash -e\necho \"$@\"\n",
];

/// Generates the template output at `out`, scaled by `1 / divisor`; `run_out` is where copies
/// will be processed (absolute symlinks point there).
fn generate(out: &Path, run_out: &Path, divisor: usize, exe: &[u8], lib: &[u8]) -> Vec<String> {
    let n = |full: usize| full / divisor;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut summary = Vec::new();
    write(&out.join("lib/libbenchmod.so"), lib, 0o755);
    for i in 0..n(200) {
        write(&out.join(format!("bin/prog-{i:03}")), exe, 0o755);
    }
    for i in 1..n(200) {
        write(&out.join(format!("lib/libmod{i:03}.so")), lib, 0o755);
    }
    summary.push(format!(
        "{} ELF executables, {} ELF libraries",
        n(200),
        n(200)
    ));
    for i in 0..n(3000) {
        let body = SHEBANGS[i % 4];
        let padding = "# padding line to give scripts a realistic size\n".repeat(8);
        write(
            &out.join(format!("libexec/scripts/s{}/script-{i:04}", i % 10)),
            format!("{body}{padding}"),
            0o755,
        );
    }
    summary.push(format!("{} scripts", n(3000)));
    let mut man_links = 0;
    for i in 0..n(2000) {
        let section = 1 + i % 8;
        let dir = out.join(format!("share/man/man{section}"));
        let name = format!("page-{i:04}.{section}");
        let lines = rng.log_uniform(20.0, 400.0);
        let mut page = format!(".TH PAGE-{i} {section}\n.SH NAME\npage-{i} \\- a page\n");
        for line in 0..lines {
            let _ = writeln!(
                page,
                "Line {line} of page {i} describes option -{line} in detail."
            );
        }
        write(&dir.join(&name), page, 0o644);
        if i % 10 == 0 {
            symlink(&name, &dir.join(format!("alias-{i:04}.{section}")));
            symlink(
                run_out.join(format!("share/man/man{section}/{name}")),
                &dir.join(format!("absalias-{i:04}.{section}")),
            );
            man_links += 2;
        }
    }
    summary.push(format!("{} man pages, {man_links} man symlinks", n(2000)));
    let mut bytes = 0;
    for i in 0..n(10_000) {
        let size = rng.log_uniform(100.0, 200.0 * 1024.0);
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            data.extend_from_slice(&rng.next().to_le_bytes());
        }
        data.truncate(size);
        bytes += size;
        write(
            &out.join(format!("share/data/d{:02}/file-{i:05}.dat", i % 50)),
            data,
            0o644,
        );
    }
    summary.push(format!(
        "{} data files ({:.0} MB)",
        n(10_000),
        bytes as f64 / 1e6
    ));
    let mut links = 0;
    for i in 1..n(200) {
        symlink(
            run_out.join(format!("lib/libmod{i:03}.so")),
            &out.join(format!("lib/libmod{i:03}.so.1")),
        );
        symlink(
            format!("libmod{i:03}.so.1"),
            &out.join(format!("lib/libmod{i:03}.so.1.0")),
        );
        links += 2;
        let la = format!(
            "# libmod{i:03}.la - a libtool library file\n\
             # Generated by libtool (GNU libtool) 2.4.7\n\
             dlname='libmod{i:03}.so.1'\nlibrary_names='libmod{i:03}.so.1 libmod{i:03}.so'\n\
             old_library=''\n\
             dependency_libs=' -L/usr/local/lib -lz -lm {}/lib/libother.la'\n\
             libdir='{}/lib'\n",
            run_out.display(),
            run_out.display()
        );
        write(&out.join(format!("lib/libmod{i:03}.la")), la, 0o644);
    }
    symlink(run_out.join("share/data"), &out.join("share/data-link"));
    symlink("/etc/hostname", &out.join("etc/hostname"));
    links += 2;
    summary.push(format!("{links} other symlinks, {} .la files", n(200) - 1));
    for i in 0..10 {
        write(
            &out.join(format!("lib64/extra-{i}.txt")),
            format!("lib64 file {i}\n"),
            0o644,
        );
    }
    symlink("extra-0.txt", &out.join("lib64/extra.txt"));
    summary.push("a lib64/ with 11 entries".to_owned());
    summary
}

/// The baseline: the tools a user would run by hand on the same tree.
const BASELINE: &str = r#"
set -u
out="$1"; tools="$2"; cores="$3"; have_patchelf="$4"
elf_candidates() { find "$out" -type f \( -name '*.so*' -o -perm -0100 \) -print0; }
if [ "$have_patchelf" = 1 ]; then
  # patchelf stops at the first non-ELF file of a batch: one file per call.
  elf_candidates | xargs -0 -r -n1 -P"$cores" patchelf --shrink-rpath 2>/dev/null
fi
find "$out/share/man" -type f ! -name '*.gz' -print0 | xargs -0 -r -n64 -P"$cores" gzip -n -9 -f
find "$out/share/man" -type l ! -name '*.gz' -print0 | sort -z | while IFS= read -r -d '' f; do
  target="$(readlink -f "$f")"
  if [ -f "$target.gz" ]; then ln -sf "$target.gz" "$f.gz" && rm "$f"; fi
done
shopt -s dotglob
mv "$out"/lib64/* "$out/lib/" && rmdir "$out/lib64" && ln -s lib "$out/lib64"
shopt -u dotglob
find "$out" -type f -perm -0100 -print0 | xargs -0 -r grep -lZ -m1 '^#!' \
  | xargs -0 -r -n64 -P"$cores" sed -i \
    -e "1s|^#!/usr/bin/env -S bash|#!$tools/env -S $tools/bash|" \
    -e "1s|^#!/usr/bin/env python3|#!$tools/python3|" \
    -e "1s|^#!/bin/sh|#!$tools/sh|" \
    -e "1s|^#!/usr/bin/perl|#!$tools/perl|"
find "$out" -type f -name '*.la' -print0 \
  | xargs -0 -r sed -i "/^dependency_libs='[^']/ c dependency_libs='' #pruned"
for d in lib lib64 libexec bin sbin; do [ -e "$out/$d" ] && printf '%s\0' "$out/$d"; done \
  | xargs -0 -I{} find {} -type f -print0 | xargs -0 -r -n64 -P"$cores" strip -S -p 2>/dev/null
find "$out" -type l -print0 | while IFS= read -r -d '' f; do
  t="$(readlink "$f")"
  case "$t/" in "$out"/*) ln -snrf "$t" "$f" ;; esac
done
exit 0
"#;

struct Bench {
    template: PathBuf,
    run_out: PathBuf,
    tools: PathBuf,
    store: PathBuf,
    build: PathBuf,
}

impl Bench {
    /// A fresh copy of the template at the run path (not timed).
    fn fresh(&self) {
        if self.run_out.exists() {
            run(Command::new("chmod")
                .arg("-R")
                .arg("u+w")
                .arg(&self.run_out));
            fs::remove_dir_all(&self.run_out).unwrap();
        }
        fs::create_dir_all(self.run_out.parent().unwrap()).unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(&self.template)
            .arg(&self.run_out));
        // Let the copy reach the disk so write-back does not land inside a timed run.
        run(&mut Command::new("sync"));
    }

    fn kiln(&self, jobs: usize) -> (Duration, kiln_fixup::FixupReport) {
        self.fresh();
        let ctx = FixupContext {
            outputs: BTreeMap::from([("out".to_owned(), self.run_out.clone())]),
            build_top: self.build.clone(),
            path_dirs: vec![self.tools.clone()],
            store_dir: self.store.clone(),
            jobs,
        };
        let started = Instant::now();
        let report = kiln_fixup::fixup_output("out", &self.run_out, &ctx, &FixupOptions::default())
            .unwrap_or_else(|err| {
                panic!("kiln fixup failed: {}", kiln_schema::chain::one_line(&err))
            });
        (started.elapsed(), report)
    }

    fn baseline(&self, cores: usize, have_patchelf: bool) -> Duration {
        self.fresh();
        let started = Instant::now();
        run(Command::new("bash")
            .arg("-c")
            .arg(BASELINE)
            .arg("baseline")
            .arg(&self.run_out)
            .arg(&self.tools)
            .arg(cores.to_string())
            .arg(if have_patchelf { "1" } else { "0" }));
        started.elapsed()
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Checks that kiln's run did the work the baseline does, so the comparison is fair.
fn verify(bench: &Bench, report: &kiln_fixup::FixupReport) {
    let out = &bench.run_out;
    let changed = |step| report.outcome(step).map_or(0, |o| o.changed.len());
    assert!(changed(FixupHook::ShrinkRpath) > 0);
    assert!(changed(FixupHook::Strip) > 0);
    assert!(changed(FixupHook::PatchShebangs) > 0);
    assert!(out.join("share/man/man1/page-0000.1.gz").is_file());
    let script = fs::read_to_string(out.join("libexec/scripts/s3/script-0003")).unwrap();
    assert!(script.starts_with(&format!(
        "#!{}/env -S {}/bash -e\n",
        bench.tools.display(),
        bench.tools.display()
    )));
    assert_eq!(fs::read_link(out.join("lib64")).unwrap(), Path::new("lib"));
    assert_eq!(
        fs::read_link(out.join("lib/libmod001.so.1")).unwrap(),
        Path::new("libmod001.so")
    );
    assert_eq!(
        report.warnings().count(),
        0,
        "{:?}",
        report.warnings().next()
    );
}

fn main() {
    let runs: usize = std::env::var("KILN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let have_patchelf = Command::new("patchelf").arg("--version").output().is_ok();
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let store = root.join("store");
    let tools = store.join(TOOLS_HASH).join("bin");
    fs::create_dir_all(&tools).unwrap();
    for tool in ["python3", "sh", "perl", "bash", "env", "strip", "ranlib"] {
        let host = ["/usr/bin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(tool))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("the host has no `{tool}`"));
        symlink(host, &tools.join(tool));
    }
    let run_out = root.join("run/out");
    let (exe, lib) = compile(root, &run_out.join("lib"));

    println!("kiln fixup benchmark ({cores} cores, {runs} timed kiln runs per variant)");
    if !have_patchelf {
        println!("note: `patchelf` is not installed (apt-get install patchelf); the baseline skips RPATH shrinking");
    }
    let mut full_kiln = None;
    for (label, divisor) in [("full", 1), ("1/4", 4)] {
        let template = root.join(format!("template-{divisor}/out"));
        let started = Instant::now();
        let summary = generate(&template, &run_out, divisor, &exe, &lib);
        println!(
            "\n== {label} tree: {} (generated in {:.1} s)",
            summary.join(", "),
            started.elapsed().as_secs_f64()
        );
        let bench = Bench {
            template,
            run_out: run_out.clone(),
            tools: tools.clone(),
            store: store.clone(),
            build: root.join("build"),
        };
        let mut all = Vec::new();
        let mut last_report = None;
        for _ in 0..runs {
            let (time, report) = bench.kiln(0);
            verify(&bench, &report);
            all.push(time);
            last_report = Some(report);
        }
        let one: Vec<_> = (0..runs).map(|_| bench.kiln(1).0).collect();
        let baseline = bench.baseline(cores, have_patchelf);
        let (all, one) = (median(all), median(one));
        println!("kiln, {cores} threads       {:>8.3} s (median)", secs(all));
        println!("kiln, 1 thread         {:>8.3} s (median)", secs(one));
        println!(
            "command-line tools     {:>8.3} s  ({cores} parallel jobs where the tool allows)",
            secs(baseline)
        );
        println!(
            "ratio                  kiln is {:.1}x faster than the tools; {cores} threads are {:.2}x faster than 1",
            secs(baseline) / secs(all),
            secs(one) / secs(all)
        );
        if let Some(report) = last_report {
            let steps: Vec<String> = report
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{} {:.0} ms ({} changed)",
                        s.step,
                        s.elapsed.as_secs_f64() * 1e3,
                        s.outcome.changed.len()
                    )
                })
                .collect();
            println!("kiln steps             {}", steps.join(", "));
        }
        if divisor == 1 {
            full_kiln = Some(all);
        }
        fs::remove_dir_all(bench.template.parent().unwrap()).unwrap();
    }
    if let Some(full) = full_kiln {
        println!(
            "\nfull tree: nixpkgs' bash fixupPhase ~{BASH_FIXUP_SECONDS:.0} s on this machine type (reported, not measured here); \
             kiln {:.2} s; goal under {GOAL_SECONDS:.0} s: {}",
            secs(full),
            if secs(full) < GOAL_SECONDS { "met" } else { "NOT met" }
        );
    }
}
