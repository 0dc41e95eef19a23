//! Real upstream sources from Debian source packages, built by kiln under real sandboxed Nix:
//! GNU hello (autotools), zlib (its own configure) and a second derivation linked against it,
//! cmark (CMake) and FriBidi (Meson). Each test builds its package, runs what it installed and
//! checks the output.
//!
//! The fixtures in `tests/fixtures/debian/` use kiln's presets (unpack, Debian's patch series,
//! configure, build, check, install, fixup) and its dependency environment. The sources come
//! from `scripts/fetch-debian-source.sh` (a cache outside the repository; the first run downloads
//! them with apt) and reach Nix as `--arg debianSrc DIR`; the fixtures name the files they use
//! and check them against the `.dsc`. The toolchain is kiln's stage-0 store toolchain and, for
//! cmark and FriBidi, its tools (cmake, meson, ninja, python3): nothing of the host.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::describe;
use crate::nix::{debian_source, nix_build, nonce, out_path};
use crate::nix::{nix_build_on, Nix};

/// Builds `tests/fixtures/debian/FIXTURE` with the downloaded sources of `package`, asserts it
/// succeeded and returns the output path and Nix's output (its stderr holds the build log).
fn build(fixture: &str, package: &str, nonce: &str, extra: &[&str]) -> (PathBuf, Output) {
    let sources = debian_source(package);
    let sources = sources.to_str().expect("a UTF-8 path");
    let started = std::time::Instant::now();
    let mut args = vec!["--arg", "debianSrc", sources];
    args.extend_from_slice(extra);
    let output = nix_build(&format!("debian/{fixture}"), nonce, &args);
    assert!(output.status.success(), "{}", describe(&output));
    eprintln!(
        "nix-build debian/{fixture} {}: {:.1} s",
        extra.join(" "),
        started.elapsed().as_secs_f64()
    );
    (out_path(&output), output)
}

/// Runs `program` with an empty environment (no `LD_LIBRARY_PATH` to help it) and `stdin`.
fn run(program: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        program.display(),
        describe(&output)
    );
    output
}

/// Whether `log` has a line made of exactly these words (whatever the spacing between them).
fn has_line(log: &str, words: &[&str]) -> bool {
    log.lines()
        .any(|line| line.split_whitespace().eq(words.iter().copied()))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Where the dynamic loader finds `library` for `program` (from the host's `ldd`).
fn resolved_library(program: &Path, library: &str) -> PathBuf {
    let ldd = Command::new("ldd").arg(program).output().expect("ldd runs");
    assert!(ldd.status.success(), "{}", describe(&ldd));
    let listing = stdout(&ldd);
    let line = listing
        .lines()
        .find(|line| line.trim_start().starts_with(&format!("{library} => ")))
        .unwrap_or_else(|| panic!("{} does not load {library}:\n{listing}", program.display()));
    let path = line.split(" => ").nth(1).unwrap();
    PathBuf::from(path.split(" (").next().unwrap().trim())
}

#[test]
fn debian_hello_builds_runs_and_rebuilds_bit_for_bit() {
    let nonce = nonce();
    let (out, build_log) = build("hello.nix", "hello", &nonce, &[]);
    let hello = out.join("bin/hello");
    // Built with the stage-0 toolchain and nothing of the host (configure and make ran the
    // stage-0 dash as /bin/sh): the runtime's loader, store RUNPATHs, a closure of hello and
    // the runtime.
    crate::stage0::assert_store_only(&out, &hello);
    // Portable: its closure, imported into a fresh store under a new root, runs there with
    // nothing of the host around it.
    assert_eq!(
        crate::stage0::run_in_a_fresh_store(&out, &hello, &[]),
        "Hello, world!\n"
    );
    assert_eq!(stdout(&run(&hello, &[], "")), "Hello, world!\n");
    let version = stdout(&run(&hello, &["--version"], ""));
    assert!(version.starts_with("hello (GNU Hello) 2.10\n"), "{version}");
    assert_eq!(
        stdout(&run(&hello, &["--greeting=built by kiln"], "")),
        "built by kiln\n"
    );
    // The check phase ran hello's own test suite in the sandbox.
    let log = String::from_utf8_lossy(&build_log.stderr);
    assert!(log.contains("PASS: tests/hello-1"), "{log}");
    assert!(has_line(&log, &["#", "FAIL:", "0"]), "{log}");

    // Nix builds it again and compares: the same bytes.
    let (again, _) = build("hello.nix", "hello", &nonce, &["--check"]);
    assert_eq!(again, out);
}

#[test]
fn debian_zlib_is_linked_by_a_second_derivation_through_the_dependency_environment() {
    let (out, build_log) = build("zlib-user.nix", "zlib", &nonce(), &[]);
    let program = out.join("bin/zlib-user");
    // Both built with the stage-0 toolchain: the program's closure is itself, the stage-0
    // runtime and the zlib (assert_store_only checks the first two; zlib is checked below).
    let mut closure_names: Vec<String> = crate::stage0::closure(&out)
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.split_once('-')
                .map(|(_, name)| name.to_owned())
                .unwrap_or_default()
        })
        .collect();
    closure_names.sort();
    assert_eq!(
        closure_names,
        ["kiln-stage0-runtime", "zlib-1.2.13", "zlib-user"]
    );
    let interpreter = crate::stage0::interpreter(&program);
    assert!(
        interpreter.ends_with("-kiln-stage0-runtime/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        "{interpreter}"
    );
    let output = stdout(&run(&program, &[], ""));
    assert_eq!(
        output,
        "zlib 1.2.13 (header 1.2.13): 1300 bytes -> 49 bytes -> 1300 bytes, round trip ok\n"
    );

    // At run time: the zlib kiln built, found through the rpath the link recorded.
    let libz = resolved_library(&program, "libz.so.1");
    let zlib = libz.parent().unwrap().parent().unwrap();
    assert!(
        zlib.starts_with("/nix/store") && zlib.to_string_lossy().ends_with("-zlib-1.2.13"),
        "libz.so.1 comes from {}, not from the zlib derivation",
        libz.display()
    );
    // zlib.nix installed the shared and the static library, the headers and the .pc file.
    for file in [
        "lib/libz.so.1.2.13",
        "lib/libz.a",
        "include/zlib.h",
        "lib/pkgconfig/zlib.pc",
    ] {
        assert!(zlib.join(file).exists(), "{} lacks {file}", zlib.display());
    }

    // At build time: `gcc -H` read zlib.h from that zlib (not the host's /usr/include), and
    // pkg-config found its zlib.pc; zlib's own tests ran in its check phase.
    let log = String::from_utf8_lossy(&build_log.stderr);
    let header = format!(". {}/include/zlib.h", zlib.display());
    assert!(log.contains(&header), "no `{header}` in the log:\n{log}");
    assert!(log.contains(&format!("\n{}\n", zlib.display())), "{log}");
    assert!(log.contains("*** zlib shared test OK ***"), "{log}");
    // zlib.nix applied Debian's series with kiln's own patch step.
    for patch in ["cflags-for-minizip", "use-dso-really"] {
        let applied = format!("debian/patches/{patch}` (-p1): contrib/minizip/Makefile");
        assert!(log.contains(&applied), "no `{applied}` in the log:\n{log}");
    }
}

#[test]
fn debian_cmark_builds_with_cmake_and_renders_markdown() {
    let (out, _) = build("cmark.nix", "cmark", &nonce(), &[]);
    let cmark = out.join("bin/cmark");
    let html = stdout(&run(
        &cmark,
        &[],
        "# Built by *kiln*\n\nFrom [Debian](https://debian.org) sources:\n\n- cmake\n- make\n",
    ));
    assert_eq!(
        html,
        "<h1>Built by <em>kiln</em></h1>\n\
         <p>From <a href=\"https://debian.org\">Debian</a> sources:</p>\n\
         <ul>\n<li>cmake</li>\n<li>make</li>\n</ul>\n"
    );
    let version = stdout(&run(&cmark, &["--version"], ""));
    assert!(version.starts_with("cmark 0.30.2"), "{version}");
    // The library and its CMake package are installed under lib/, not lib64/.
    assert!(out.join("lib/libcmark.so.0.30.2").exists());
    assert!(out.join("lib/cmake/cmark/cmark-config.cmake").exists());
    assert!(out.join("include/cmark.h").exists());
}

#[test]
fn debian_fribidi_builds_with_meson_and_reorders_text() {
    let (out, build_log) = build("fribidi.nix", "fribidi", &nonce(), &[]);
    let fribidi = out.join("bin/fribidi");
    // CapRTL: capital letters stand for right-to-left characters.
    let reordered = stdout(&run(
        &fribidi,
        &["--charset", "CapRTL", "--nopad"],
        "car is THE CAR in arabic\nDIT IS kiln\n",
    ));
    assert_eq!(reordered, "car is RAC EHT in arabic\nkiln SI TID\n");
    // The program uses the libfribidi it was built with, not one the host may have.
    let library = resolved_library(&fribidi, "libfribidi.so.0");
    assert!(library.starts_with(&out), "{}", library.display());
    // kiln applied Debian's five patches (its own patch step) and FriBidi's own test suite
    // passed in the check phase.
    let log = String::from_utf8_lossy(&build_log.stderr);
    for (patch, file) in [
        (
            "revert_log2vis_get_embedding_levels.diff",
            "lib/fribidi-deprecated.c",
        ),
        ("manpages.diff", "doc/fribidi_remove_bidi_marks.3"),
        ("CVE-2022-25308.patch", "bin/fribidi-main.c"),
        ("CVE-2022-25309.patch", "lib/fribidi-char-sets-cap-rtl.c"),
        ("CVE-2022-25310.patch", "lib/fribidi.c"),
    ] {
        let applied = format!("debian/patches/{patch}` (-p1): {file}");
        assert!(log.contains(&applied), "no `{applied}` in the log:\n{log}");
    }
    assert!(log.contains("8/8 BidiTest"), "{log}");
    assert!(has_line(&log, &["Ok:", "8"]), "{log}");
    assert!(has_line(&log, &["Fail:", "0"]), "{log}");
}

/// Every `.dsc` a fixture names is the version `scripts/debian-sources.txt` pins, which is the one
/// `fetch-debian-source.sh` downloads: a fixture and the fetch cannot drift apart when the
/// mirror's newest version changes.
#[test]
fn every_dsc_a_fixture_names_is_pinned_for_the_fetch() {
    let root = crate::nix::root();
    let pins = std::fs::read_to_string(root.join("scripts/debian-sources.txt")).unwrap();
    let pinned: Vec<String> = pins
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (package, version) = line.split_once(' ').expect("PACKAGE VERSION");
            format!("{package}_{}.dsc", version.trim())
        })
        .collect();
    let mut named = std::collections::BTreeSet::new();
    let mut dirs = vec![root.join("tests/fixtures")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "nix") {
                let text = std::fs::read_to_string(&path).unwrap();
                for quoted in text.split('"').skip(1).step_by(2) {
                    if quoted.ends_with(".dsc") && !quoted.contains(['$', '{', ' ']) {
                        named.insert((quoted.to_owned(), path.clone()));
                    }
                }
            }
        }
    }
    assert!(named.len() >= 8, "found only {named:?}");
    for (dsc, file) in &named {
        assert!(
            pinned.contains(dsc),
            "{} names `{dsc}`, which scripts/debian-sources.txt does not pin",
            file.display()
        );
    }
}

/// A Debian package built with a preset (GNU hello, autotools) on both Nix versions: its
/// test suite runs in the check phase, and the program runs where its store is.
fn debian_hello_with_the_autotools_preset_builds_and_runs(nix: Nix) {
    let sources = debian_source("hello");
    let output = nix_build_on(
        nix,
        "debian/hello.nix",
        &nonce(),
        &[
            "--arg",
            "debianSrc",
            sources.to_str().expect("a UTF-8 path"),
        ],
    );
    crate::nix::assert_success(nix, &output);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("PASS: tests/hello-1"), "{}: {log}", nix.name());
    let hello = out_path(&output).join("bin/hello");
    let run = nix.command(&hello).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&run.stdout);
    assert!(
        version.starts_with("hello (GNU Hello) 2.10\n"),
        "{}: {}",
        nix.name(),
        describe(&run)
    );
    eprintln!(
        "{}: Debian hello (autotools preset) built and ran",
        nix.name()
    );
}
crate::nix::on_both_nix!(debian_hello_with_the_autotools_preset_builds_and_runs);
