//! kiln's stage-0 toolchain (`bootstrap/stage0`): programs built with it under sandboxed Nix,
//! with nothing of the host lent to the sandbox, refer only to store paths, and their closure
//! is themselves and the stage-0 runtime.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::describe;
use crate::nix::{nix_build, nonce, out_path, require_nix, root, stage0_debs, static_kiln};

/// Paths that a store-only program must not use at run time.
const HOST_PATHS: &[&str] = &["/usr/lib", "/lib64/ld-linux", "/bin/sh"];

/// Files of the stage-0 runtime allowed to mention [`HOST_PATHS`], and why. The runtime is
/// Debian's glibc as built for Debian; only a glibc rebuilt for the store (a later stage) drops
/// these. Each is a path glibc tries after the store ones, or text no program follows.
const RUNTIME_ALLOWED: &[(&str, &str)] = &[
    (
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "system() and popen() run /bin/sh; locales, iconv modules and getconf are looked for \
         under /usr/lib (a program that uses them needs LOCPATH / GCONV_PATH)",
    ),
    (
        "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "the loader's default directories, searched after every RUNPATH entry, and its \
         --help text",
    ),
    (
        "usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
        "iconv's module directory, as glibc was configured",
    ),
    (
        "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
        "read only by ldconfig, which the runtime does not ship",
    ),
    (
        "usr/share/gdb/auto-load/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30-gdb.py",
        "a gdb pretty-printer script, not run by programs",
    ),
];

/// `readelf ARGS FILE`'s output.
fn readelf(args: &[&str], file: &Path) -> String {
    let output = Command::new("readelf")
        .args(args)
        .arg(file)
        .output()
        .expect("readelf (binutils) runs");
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The program interpreter of an ELF executable (`readelf -l`).
pub(crate) fn interpreter(file: &Path) -> String {
    let text = readelf(&["-l"], file);
    let line = text
        .lines()
        .find_map(|line| line.split("[Requesting program interpreter: ").nth(1))
        .unwrap_or_else(|| panic!("{} has no interpreter:\n{text}", file.display()));
    line.trim_end_matches(']').to_owned()
}

/// The RUNPATH entries of an ELF file (`readelf -d`).
fn runpath(file: &Path) -> Vec<String> {
    let text = readelf(&["-d"], file);
    assert!(
        !text.contains("(RPATH)"),
        "{} has an RPATH:\n{text}",
        file.display()
    );
    text.lines()
        .filter_map(|line| line.split("Library runpath: [").nth(1))
        .flat_map(|list| list.trim_end_matches(']').split(':'))
        .map(str::to_owned)
        .collect()
}

/// The runtime closure of a store path (`nix-store -qR`).
pub(crate) fn closure(path: &Path) -> Vec<PathBuf> {
    let output = Command::new("nix-store")
        .arg("-qR")
        .arg(path)
        .output()
        .expect("nix-store runs");
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Every regular file under `dir` (not through symlinks) that mentions one of [`HOST_PATHS`]
/// outside a store path, with the host paths it mentions.
fn host_path_mentions(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                stack.push(path);
            } else if metadata.is_file() {
                let bytes = without_store_paths(&fs::read(&path).unwrap());
                let hits: Vec<String> = HOST_PATHS
                    .iter()
                    .filter(|host| contains(&bytes, host.as_bytes()))
                    .map(|host| (*host).to_owned())
                    .collect();
                if !hits.is_empty() {
                    found.push((path.strip_prefix(dir).unwrap().to_owned(), hits));
                }
            }
        }
    }
    found.sort();
    found
}

/// `bytes` with every store path (from `/nix/store/` to the next NUL, space, `:` or quote)
/// removed, so that `/nix/store/...-runtime/usr/lib` is not taken for `/usr/lib`.
fn without_store_paths(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, b"/nix/store/") {
        out.extend_from_slice(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .iter()
            .position(|b| matches!(b, 0 | b' ' | b'\n' | b'\t' | b':' | b'"' | b'\''))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// Checks a program built with the stage-0 toolchain: the runtime's loader, store-only
/// RUNPATHs, a closure of the program and the runtime, and no host path in the program's own
/// files or (beyond the explained allow-list) the runtime's. Returns the runtime.
pub(crate) fn assert_store_only(out: &Path, program: &Path) -> PathBuf {
    let interpreter = interpreter(program);
    assert!(
        interpreter.starts_with("/nix/store/")
            && interpreter
                .ends_with("-kiln-stage0-runtime/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        "{}: interpreter {interpreter}",
        program.display()
    );
    let runpath = runpath(program);
    assert!(!runpath.is_empty(), "{}: no RUNPATH", program.display());
    for entry in &runpath {
        assert!(
            entry.starts_with("/nix/store/"),
            "{}: RUNPATH {runpath:?}",
            program.display()
        );
    }
    let runtime = PathBuf::from(
        interpreter
            .strip_suffix("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
            .unwrap(),
    );
    let mut expected = vec![out.to_owned(), runtime.clone()];
    expected.sort();
    let mut actual = closure(out);
    actual.sort();
    assert_eq!(actual, expected, "the closure of {}", out.display());

    assert_eq!(
        host_path_mentions(out),
        [],
        "host paths in {}",
        out.display()
    );
    let allowed: Vec<&str> = RUNTIME_ALLOWED.iter().map(|(file, _)| *file).collect();
    let unexplained: Vec<_> = host_path_mentions(&runtime)
        .into_iter()
        .filter(|(file, _)| !allowed.iter().any(|allowed| Path::new(allowed) == file))
        .collect();
    assert_eq!(
        unexplained,
        [],
        "host paths in the runtime {}",
        runtime.display()
    );
    runtime
}

#[test]
fn hello_c_needs_nothing_of_the_host() {
    let output = nix_build("hello-c", &nonce(), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let out = out_path(&output);
    let program = out.join("bin/hello-kiln");
    assert_store_only(&out, &program);
    let run = Command::new(&program).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hello-kiln (built by kiln, with the stage-0 store toolchain)\n"
    );
    assert_eq!(
        run_in_a_fresh_store(&out, &program, &["Nix"]),
        "Hello from kiln!\nHello, Nix!\n"
    );
}

#[test]
fn a_cpp_program_takes_libstdcxx_from_the_runtime() {
    let output = nix_build("stage0/cpp.nix", &nonce(), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let out = out_path(&output);
    let program = out.join("bin/sum");
    let runtime = assert_store_only(&out, &program);
    assert!(readelf(&["-d"], &program).contains("Shared library: [libstdc++.so.6]"));
    // The runtime's libraries first (the specs' -rpath); then the output's own lib/, which
    // the wrapper adds from LD_RUN_PATH like stdenv's self-rpath (this plan has no fixup to
    // shrink it away).
    assert_eq!(
        runpath(&program),
        [
            runtime
                .join("usr/lib/x86_64-linux-gnu")
                .display()
                .to_string(),
            out.join("lib").display().to_string()
        ]
    );
    let run = Command::new(&program).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "sum 10\n");
}

/// The stage-0 tools' autotools (autoconf, automake, libtool on the tools' perl and m4) work
/// in a pure sandbox: `autoreconf -fi` of a configure.ac and Makefile.am of our own, then
/// configure, a libtool shared library and a program linked against it, installed and run.
#[test]
fn autoreconf_and_libtool_from_the_stage0_tools_build_a_shared_library() {
    let output = nix_build("stage0/autoreconf.nix", &nonce(), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let log = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "autoreconf: running: aclocal --force -I m4",
        "libtoolize: copying file 'build-aux/ltmain.sh'",
        "hello from kiln-greet 1.0, autoreconf'd by kiln",
    ] {
        assert!(log.contains(expected), "no `{expected}` in:\n{log}");
    }
    let out = out_path(&output);
    let program = out.join("bin/greet");
    let runtime = assert_store_only(&out, &program);
    assert_eq!(
        runpath(&program),
        [
            runtime
                .join("usr/lib/x86_64-linux-gnu")
                .display()
                .to_string(),
            out.join("lib").display().to_string()
        ]
    );
    assert!(readelf(&["-d"], &program).contains("Shared library: [libgreet.so.0]"));
    let run = Command::new(&program).env_clear().output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hello from kiln-greet 1.0, autoreconf'd by kiln\n"
    );
}

/// nixpkgs' compiler variables take effect through kiln's wrapper, as cc-wrapper makes them:
/// a `-D` from `NIX_CFLAGS_COMPILE`, `-lm` from `NIX_LDFLAGS`, and the default hardening
/// (RELRO, BIND_NOW, PIE, stack protector, fortified calls), which `NIX_HARDENING_ENABLE=""`
/// turns off.
#[test]
fn nix_cflags_ldflags_and_hardening_reach_the_store_gcc() {
    let output = nix_build("stage0/flags.nix", &nonce(), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let out = out_path(&output);
    let program = out.join("bin/flags");
    assert_store_only(&out, &program);
    let run = Command::new(&program).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "from-nix-cflags 2.0 ok\n"
    );
    let dynamic = readelf(&["-W", "-d"], &program);
    assert!(dynamic.contains("Shared library: [libm.so.6]"), "{dynamic}");
    assert!(
        dynamic.contains("(BIND_NOW)") || dynamic.contains("Flags: NOW"),
        "{dynamic}"
    );
    assert!(readelf(&["-W", "-l"], &program).contains("GNU_RELRO"));
    assert!(readelf(&["-W", "-h"], &program).contains("DYN (Position-Independent Executable"));
    let symbols = readelf(&["-W", "--dyn-syms"], &program);
    assert!(symbols.contains("__stack_chk_fail"), "{symbols}");
    assert!(symbols.contains("__printf_chk"), "{symbols}");

    let output = nix_build("stage0/flags.nix", &nonce(), &["--argstr", "hardening", ""]);
    assert!(output.status.success(), "{}", describe(&output));
    let plain = out_path(&output).join("bin/flags");
    let dynamic = readelf(&["-W", "-d"], &plain);
    assert!(
        !dynamic.contains("BIND_NOW") && !dynamic.contains("NOW"),
        "{dynamic}"
    );
    let symbols = readelf(&["-W", "--dyn-syms"], &plain);
    assert!(
        !symbols.contains("__stack_chk_fail") && !symbols.contains("__printf_chk"),
        "{symbols}"
    );
}

#[test]
fn a_deb_missing_from_the_store_fails_evaluation_naming_the_script() {
    require_nix();
    stage0_debs();
    let scratch = tempfile::tempdir().unwrap();
    let lock = scratch.path().join("debs.lock");
    fs::write(
        &lock,
        "# one package that is not in the store\n\
         runtime  libc6  9.99-1  amd64  0000000000000000000000000000000000000000000000000000000000000000\n",
    )
    .unwrap();
    let expression = format!(
        "(import {}/bootstrap/stage0 {{ kiln = {}; lock = {}; }}).runtime.drvPath",
        root().display(),
        static_kiln().display(),
        lock.display()
    );
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--expr", &expression])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "kiln stage 0: libc6_9.99-1_amd64.deb (libc6 9.99-1, pinned in \
             bootstrap/stage0/debs.lock) is not in the Nix store: run `bash \
             scripts/fetch-stage0-debs.sh`"
        ),
        "{stderr}"
    );
}

/// Exports the closure of `out` (`nix-store --export`), imports it into a fresh store under a
/// new root (`nix-store --store ROOT --import`), and runs `program` there with `chroot`, where
/// nothing but that store exists: no `/usr`, `/lib`, `/lib64` or `/bin` of the host. Returns
/// the program's standard output.
pub(crate) fn run_in_a_fresh_store(out: &Path, program: &Path, args: &[&str]) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let export = scratch.path().join("closure.export");
    let paths = closure(out);
    let exported = Command::new("nix-store")
        .arg("--export")
        .args(&paths)
        .stdout(fs::File::create(&export).unwrap())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", describe(&exported));
    let root = scratch.path().join("root");
    let imported = Command::new("nix-store")
        .arg("--store")
        .arg(&root)
        .arg("--import")
        .stdin(fs::File::open(&export).unwrap())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", describe(&imported));
    // The new root holds the store and nothing else.
    let top: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(top, ["nix"]);
    let mut in_store: Vec<PathBuf> = fs::read_dir(root.join("nix/store"))
        .unwrap()
        .map(|entry| PathBuf::from("/nix/store").join(entry.unwrap().file_name()))
        // `.links` is the store's hard-link pool for optimised files.
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| !name.to_string_lossy().starts_with('.'))
        })
        .collect();
    in_store.sort();
    let mut expected = paths.clone();
    expected.sort();
    assert_eq!(in_store, expected, "the fresh store holds the closure");
    let ran = Command::new("/usr/sbin/chroot")
        .arg(&root)
        .arg(program)
        .args(args)
        .env_clear()
        .output()
        .expect("chroot runs (the tests run as root)");
    assert!(ran.status.success(), "{}", describe(&ran));
    String::from_utf8_lossy(&ran.stdout).into_owned()
}
