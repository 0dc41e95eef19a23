//! stdenv-compatible attributes under real sandboxed Nix: nixpkgs-style package expressions
//! (`bootstrap/default.nix`'s `stdenvDerivation`, no `kiln` plan attribute) built by kiln from
//! Debian source packages, a follow-up derivation that links and runs them, and shell hooks
//! refused, then run with the opt-in.
//!
//! The corpus is `tests/fixtures/stdenv/` (autotools, plain make, CMake, Meson; three packages
//! with several outputs). Its golden expectations (the phases and flags stdenv would run) are
//! checked by `stdenv/tests/golden.rs` against the attribute sets in
//! `tests/fixtures/stdenv/golden/`; the first test here checks that those attribute sets are
//! the expressions'. `stdenvDerivation` gives every package kiln's stage-0 store toolchain; the
//! CMake, Meson and shell-hook packages name its tools: nothing of the host is lent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::describe;
use crate::nix::{debian_source, nix_build, nonce, root, static_kiln, NIX_OPTIONS};
use crate::nix::{nix_build_on, Nix};

/// The corpus: attribute name, Debian source package.
const CORPUS: &[(&str, &str)] = &[
    ("hello", "hello"),
    ("zlib", "zlib"),
    ("bzip2", "bzip2"),
    ("lz4", "lz4"),
    ("cmark", "cmark"),
    ("cjson", "cjson"),
    ("fribidi", "fribidi"),
    ("patch", "patch"),
];

/// Downloads (once) every source package and returns the cache directory holding them.
fn debian_cache() -> PathBuf {
    // The expressions refer to the stage-0 toolchain, whose .debs must be in the store.
    crate::nix::stage0_debs();
    let mut cache = None;
    for (_, package) in CORPUS {
        let dir = debian_source(package);
        cache = Some(dir.parent().unwrap().to_owned());
    }
    cache.unwrap()
}

fn eval_json(expression: &str) -> serde_json::Value {
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", expression])
        .args(NIX_OPTIONS)
        .output()
        .expect("nix-instantiate runs");
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Store hashes replaced by zeros, as in the golden attribute sets.
fn normalise(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(text) => {
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(at) = rest.find("/nix/store/") {
                out.push_str(&rest[..at + "/nix/store/".len()]);
                rest = &rest[at + "/nix/store/".len()..];
                if rest.len() > 32 && rest.as_bytes()[32] == b'-' {
                    out.push_str(&"0".repeat(32));
                    rest = &rest[32..];
                }
            }
            out.push_str(rest);
            serde_json::Value::String(out)
        }
        serde_json::Value::Array(items) => items.iter().map(normalise).collect(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(key, value)| (key.clone(), normalise(value)))
            .collect(),
        other => other.clone(),
    }
}

#[test]
fn stdenv_golden_attribute_sets_are_the_corpus_expressions() {
    let cache = debian_cache();
    let fixtures = root().join("tests/fixtures/stdenv");
    // `stdenv` is the dev-shell setup (nix-shell, nix develop), which the translation ignores.
    for (name, _) in CORPUS {
        let expression = format!(
            "builtins.removeAttrs (import {}/{name}.nix {{ kiln = {}; debianCache = {}; }}).drvAttrs \
             [ \"builder\" \"nonce\" \"system\" \"stdenv\" ]",
            fixtures.display(),
            static_kiln().display(),
            cache.display()
        );
        let evaluated = normalise(&eval_json(&expression));
        let golden_file = fixtures.join(format!("golden/{name}.attrs.json"));
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&golden_file).unwrap()).unwrap();
        assert_eq!(
            evaluated,
            golden,
            "{name}.nix no longer evaluates to {}: update the golden attribute set AND its \
             hand-written expectation",
            golden_file.display()
        );
    }
}

/// Output name → store path of a corpus attribute (or of `corpus-user`).
fn output_paths(attribute: &str, nonce: &str, cache: &Path) -> serde_json::Value {
    let fixtures = root().join("tests/fixtures/stdenv");
    let file = if attribute == "corpus-user" {
        fixtures.join("corpus-user.nix")
    } else {
        fixtures.join("default.nix")
    };
    let select = if attribute == "corpus-user" {
        String::new()
    } else {
        format!(".{attribute}")
    };
    eval_json(&format!(
        "let drv = (import {} {{ kiln = {}; nonce = \"{nonce}\"; debianCache = {}; }}){select}; \
         in builtins.listToAttrs (map (o: {{ name = o; value = drv.${{o}}.outPath; }}) drv.outputs)",
        file.display(),
        static_kiln().display(),
        cache.display()
    ))
}

fn path_of(outputs: &serde_json::Value, output: &str) -> PathBuf {
    PathBuf::from(outputs[output].as_str().expect("an output path"))
}

fn run(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()));
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn build(fixture: &str, attribute: Option<&str>, nonce: &str, cache: &Path) -> Output {
    let cache = cache.to_str().unwrap();
    let mut args = vec!["--arg", "debianCache", cache];
    if let Some(attribute) = attribute {
        args.extend(["-A", attribute]);
    }
    let started = std::time::Instant::now();
    let output = nix_build(fixture, nonce, &args);
    assert!(output.status.success(), "{}", describe(&output));
    eprintln!(
        "nix-build {fixture} {}: {:.1} s",
        attribute.unwrap_or(""),
        started.elapsed().as_secs_f64()
    );
    output
}

#[test]
fn stdenv_corpus_builds_and_a_follow_up_links_and_runs_every_package() {
    let cache = debian_cache();
    let nonce = nonce();
    let started = std::time::Instant::now();
    for (name, _) in CORPUS {
        build("stdenv/default.nix", Some(name), &nonce, &cache);
    }
    let user_log = build("stdenv/corpus-user.nix", None, &nonce, &cache);
    eprintln!(
        "stdenv corpus and follow-up: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The follow-up linked six of the libraries and ran the programs in its check phase.
    let user = path_of(&output_paths("corpus-user", &nonce, &cache), "out");
    let hello_out = path_of(&output_paths("hello", &nonce, &cache), "out");
    assert_eq!(
        std::fs::read_to_string(user.join("nix-support/propagated-user-env-packages")).unwrap(),
        format!("{} ", hello_out.display())
    );
    let versions = run(&user.join("bin/corpus-user"), &[]);
    assert_eq!(
        versions,
        "zlib 1.2.13\ncjson 1.7.15\ncmark 0.30.2\nbzip2 1.0.8\nlz4 1.9.4\nfribidi (GNU FriBidi) 1.0.8\n"
    );
    let log = String::from_utf8_lossy(&user_log.stderr);
    for expected in [
        "hello from the stdenv corpus",
        "(patched by kiln-stdenv)",
        "car is RAC EHT",
        "<h1>kiln <em>stdenv</em></h1>",
        "GNU patch 2.7.6",
    ] {
        assert!(log.contains(expected), "no `{expected}` in:\n{log}");
    }
    // Inside the follow-up, each program is the corpus package's, not the host's /usr/bin one
    // (which has its own bzip2, lz4 and patch): `command -v` in its check phase.
    for (program, package, output) in [
        ("hello", "hello", "out"),
        ("bzip2", "bzip2", "out"),
        ("lz4", "lz4", "out"),
        ("cmark", "cmark", "out"),
        ("fribidi", "fribidi", "bin"),
        ("patch", "patch", "out"),
    ] {
        let expected = path_of(&output_paths(package, &nonce, &cache), output).join("bin");
        let prefix = format!("resolved {program} -> ");
        let resolved = log
            .lines()
            .find_map(|line| line.trim_end().strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{log}"));
        assert_eq!(
            Path::new(resolved),
            expected.join(program),
            "{program} inside the follow-up is not the corpus package's"
        );
    }
    // ldd inside the sandbox: zlib and bzip2 (and every other library) from the store.
    let inner_ldd: Vec<&str> = log
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("ldd: "))
        .collect();
    assert!(
        inner_ldd.iter().any(|line| line.contains("libz.so")),
        "no ldd output in:\n{log}"
    );
    for line in &inner_ldd {
        let host = line.contains("=> /lib") || line.contains("=> /usr/lib");
        for library in [
            "libz.so",
            "libbz2.so",
            "liblz4.so",
            "libcjson",
            "libcmark",
            "libfribidi",
        ] {
            assert!(
                !(line.contains(library) && host),
                "the follow-up links the host's {library}: {line}"
            );
        }
    }
    let lz4_out = path_of(&output_paths("lz4", &nonce, &cache), "out");
    assert!(
        inner_ldd
            .iter()
            .any(|line| line.contains("liblz4.so") && line.contains(lz4_out.to_str().unwrap())),
        "liblz4 is not the lz4 package's ({}):\n{}",
        lz4_out.display(),
        inner_ldd.join("\n")
    );

    // Each library comes from the store, not from the host's copy.
    let ldd = Command::new("ldd")
        .arg(user.join("bin/corpus-user"))
        .output()
        .unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    for library in [
        "libz.so",
        "libcjson.so",
        "libcmark.so",
        "libfribidi.so",
        "liblz4.so",
    ] {
        let line = ldd
            .lines()
            .find(|line| line.trim_start().starts_with(library))
            .unwrap_or_else(|| panic!("no {library} in:\n{ldd}"));
        assert!(line.contains("=> /nix/store/"), "{line}");
    }
    for line in ldd
        .lines()
        .filter(|line| line.contains("libbz2") || line.contains("libz.so"))
    {
        assert!(line.contains("/nix/store/"), "a host library: {line}");
    }

    // Multiple outputs, as stdenv splits them.
    let hello = output_paths("hello", &nonce, &cache);
    assert!(path_of(&hello, "out").join("bin/hello").is_file());
    assert!(path_of(&hello, "man")
        .join("share/man/man1/hello.1.gz")
        .is_file());
    assert!(path_of(&hello, "info")
        .join("share/info/hello.info")
        .is_file());
    assert!(!path_of(&hello, "out").join("share/man").exists());
    // separateDebugInfo: bin/hello's debug info is in `debug` under its build ID (where gdb
    // looks it up), and bin/hello itself was stripped afterwards.
    let program = path_of(&hello, "out").join("bin/hello");
    let notes = readelf(&["-n"], &program);
    let id = notes
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build ID in:\n{notes}"))
        .to_owned();
    let debug_dir = path_of(&hello, "debug").join("lib/debug");
    let debug_file = debug_dir.join(format!(".build-id/{}/{}.debug", &id[..2], &id[2..]));
    assert!(
        readelf(&["-S", "-W"], &debug_file).contains(".debug_info"),
        "{}",
        debug_file.display()
    );
    assert!(!readelf(&["-S", "-W"], &program).contains(".debug_info"));
    assert_eq!(
        std::fs::canonicalize(debug_dir.join("hello")).unwrap(),
        debug_file
    );
    let zlib = output_paths("zlib", &nonce, &cache);
    let zlib_out = path_of(&zlib, "out");
    let zlib_dev = path_of(&zlib, "dev");
    assert!(zlib_dev.join("include/zlib.h").is_file());
    assert!(zlib_dev.join("lib/pkgconfig/zlib.pc").is_file());
    assert!(zlib_out.join("lib/libz.so.1.2.13").is_file());
    assert!(!zlib_out.join("include").exists());
    // outputMan = "dev": the man3 page went with the headers, not to `out`.
    assert!(zlib_dev.join("share/man/man3/zlib.3.gz").is_file());
    assert!(!zlib_out.join("share/man").exists());
    let propagated =
        std::fs::read_to_string(zlib_dev.join("nix-support/propagated-build-inputs")).unwrap();
    assert!(
        propagated.contains(zlib_out.to_str().unwrap()),
        "{propagated}"
    );
    let fribidi = output_paths("fribidi", &nonce, &cache);
    assert!(path_of(&fribidi, "bin").join("bin/fribidi").is_file());
    assert!(path_of(&fribidi, "dev")
        .join("include/fribidi/fribidi.h")
        .is_file());
    assert!(path_of(&fribidi, "out")
        .join("lib/libfribidi.so.0")
        .exists());
    // The patch of lz4.nix was applied.
    let lz4 = path_of(&output_paths("lz4", &nonce, &cache), "out");
    assert!(run(&lz4.join("bin/lz4"), &["--version"]).contains("(patched by kiln-stdenv)"));
}

#[test]
fn stdenv_shell_hooks_are_refused_with_their_replacements_then_run_with_the_opt_in() {
    let refused = nix_build("stdenv/shell-hooks.nix", &nonce(), &[]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    let log = String::from_utf8_lossy(&refused.stderr);
    for expected in [
        "2 attributes are shell code, which kiln does not run by default:",
        "`postInstall`: use `copy`, `symlink`, `write`, `mkdir` or `remove` steps in a phase inserted after `install`",
        "`preBuild`: use a phase of typed steps inserted with `edits` before or after the phase",
        "set `kilnAllowShell = true;`",
    ] {
        assert!(log.contains(expected), "no `{expected}` in:\n{log}");
    }

    let allowed = nix_build(
        "stdenv/shell-hooks.nix",
        &nonce(),
        &["--arg", "allowShell", "true"],
    );
    assert!(allowed.status.success(), "{}", describe(&allowed));
    let out = crate::nix::out_path(&allowed);
    assert_eq!(
        std::fs::read_to_string(out.join("share/greeting.txt")).unwrap(),
        "generated by preBuild\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("share/name.txt")).unwrap(),
        "shell-hooks 1\n"
    );
    let log = String::from_utf8_lossy(&allowed.stderr);
    // The stage-0 tools' bash, the first `bin/bash` of nativeBuildInputs.
    let bash = log
        .split("2 shell hooks run through `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no shell-hook count in:\n{log}"));
    assert!(
        bash.starts_with("/nix/store/") && bash.ends_with("-kiln-stage0-tools/bin/bash"),
        "{bash}"
    );
    assert!(
        log.contains(&format!(
            "2 shell hooks run through `{bash}` (kilnAllowShell): preBuild, postInstall"
        )),
        "{log}"
    );
}

/// The same package as `shell-hooks.nix` with its hooks as lists of typed steps and a phase
/// added with `kilnEdits`: it builds without `kilnAllowShell`, and the log names the phase's
/// origin.
#[test]
fn stdenv_hooks_as_typed_steps_and_kiln_edits_build_without_shell() {
    let output = nix_build("stdenv/typed-hooks.nix", &nonce(), &["-vv"]);
    assert!(output.status.success(), "{}", describe(&output));
    let out = crate::nix::out_path(&output);
    for (file, content) in [
        ("share/greeting.txt", "generated by preBuild\n"),
        ("share/name.txt", "typed-hooks 1\n"),
        ("share/doc/typed-hooks/LICENSE", "public domain\n"),
    ] {
        assert_eq!(
            std::fs::read_to_string(out.join(file)).unwrap(),
            content,
            "{file}"
        );
    }
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!log.contains("shell hooks run"), "{log}");
    assert!(
        log.contains("phase `license` comes from kilnEdits[0]"),
        "{log}"
    );
}

#[test]
fn stdenv_plan_shows_the_translation_with_its_provenance() {
    let attrs = root().join("tests/fixtures/stdenv/golden/hello.attrs.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(attrs).unwrap()).unwrap();
    // Nix writes outputs as name → path.
    value["outputs"] = serde_json::json!({
        "out": "/nix/store/00000000000000000000000000000000-hello-2.10",
        "man": "/nix/store/00000000000000000000000000000000-hello-2.10-man",
        "info": "/nix/store/00000000000000000000000000000000-hello-2.10-info",
    });
    let scratch = crate::common::Scratch::new();
    let file = scratch.write(".attrs.json", &value.to_string());
    let output = scratch
        .kiln()
        .args(["plan", "--attrs"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let phases = shown["plan"]["phases"].as_array().unwrap();
    assert_eq!(
        phases[2]["origin"],
        "stdenv configurePhase (autotools build)"
    );
    let stdenv = &shown["stdenv"];
    assert_eq!(stdenv["buildSystem"], "autotools");
    assert_eq!(stdenv["provenance"][4]["switch"][0], "doCheck");
    assert_eq!(stdenv["shellHooks"].as_array().unwrap().len(), 0);
}

/// What `readelf ARGS FILE` prints (the host's binutils).
fn readelf(args: &[&str], file: &Path) -> String {
    let output = Command::new("readelf")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "readelf {args:?} {}",
        file.display()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A stdenv-style derivation (GNU hello with `outputs`, `doCheck` and `separateDebugInfo`)
/// on both Nix versions: kiln translates its attributes, runs its tests and splits its
/// outputs.
fn stdenv_style_hello_builds_on_both_nix_versions(nix: Nix) {
    let cache = debian_cache();
    crate::nix::stage0_debs_on(nix);
    let output = nix_build_on(
        nix,
        "stdenv/hello.nix",
        &nonce(),
        &["--arg", "debianCache", cache.to_str().unwrap()],
    );
    crate::nix::assert_success(nix, &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let paths: Vec<PathBuf> = stdout.lines().map(PathBuf::from).collect();
    let out = paths
        .iter()
        .find(|path| path.to_string_lossy().ends_with("-hello-2.10"))
        .unwrap_or_else(|| panic!("{}: no `out` among {paths:?}", nix.name()));
    // The man page went to the `man` output (stdenv's --mandir= and the fixup's move).
    assert!(
        nix.host_path(out).join("bin/hello").is_file()
            && !nix.host_path(out).join("share/man").exists(),
        "{}: {}",
        nix.name(),
        out.display()
    );
    let run = nix.command(out.join("bin/hello")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "Hello, world!\n",
        "{}: {}",
        nix.name(),
        describe(&run)
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("PASS: tests/hello-1"), "{}: {log}", nix.name());
    eprintln!("{}: stdenv-style hello built, tested and ran", nix.name());
}
crate::nix::on_both_nix!(stdenv_style_hello_builds_on_both_nix_versions);
