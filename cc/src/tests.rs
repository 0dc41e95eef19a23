//! The wrapper's argv, and real programs compiled through it with the host's gcc.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn text(argv: &[OsString]) -> String {
    argv.iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn config(cc: &str) -> Config {
    Config {
        cc: PathBuf::from(cc),
        cxx: PathBuf::from("/tc/bin/g++-12"),
        cpp: PathBuf::from("/tc/bin/cpp-12"),
    }
}

#[test]
fn program_names() {
    assert_eq!(Tool::from_program_name("gcc".as_ref()), Some(Tool::C));
    assert_eq!(Tool::from_program_name("/x/bin/cc".as_ref()), Some(Tool::C));
    assert_eq!(Tool::from_program_name("c++".as_ref()), Some(Tool::Cxx));
    assert_eq!(Tool::from_program_name("g++".as_ref()), Some(Tool::Cxx));
    assert_eq!(Tool::from_program_name("cpp".as_ref()), Some(Tool::Cpp));
    assert_eq!(Tool::from_program_name("kiln".as_ref()), None);
    assert_eq!(Tool::from_program_name("gcc-12".as_ref()), None);
}

#[test]
fn what_links() {
    assert!(links(Tool::C, &os(&["-o", "hello", "hello.c"])));
    assert!(links(Tool::C, &os(&["hello.o", "-lm"])));
    assert!(!links(Tool::C, &os(&["-c", "hello.c"])));
    assert!(!links(Tool::C, &os(&["-E", "hello.c"])));
    assert!(!links(Tool::C, &os(&["-MM", "hello.c"])));
    assert!(!links(Tool::C, &os(&["-x", "c-header", "x.h"])));
    assert!(!links(Tool::C, &os(&["--version"])));
    assert!(!links(Tool::C, &os(&["-v"])));
    assert!(!links(Tool::Cpp, &os(&["x.c"])));
}

#[test]
fn compiling_gets_hardening_before_and_nix_cflags_after_the_arguments() {
    let env = Env {
        cflags_compile: Some("-DFROM_NIX=1  -I/nix/store/aaa-zlib/include\n".into()),
        ldflags: Some("-L/nix/store/aaa-zlib/lib".into()),
        ..Env::default()
    };
    let argv = compiler_argv(
        Tool::C,
        &os(&["-c", "-O0", "x.c"]),
        &env,
        &config("/tc/gcc"),
    );
    assert_eq!(
        text(&argv),
        "/tc/gcc -O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong --param \
         ssp-buffer-size=4 -fPIC -fno-strict-overflow -Wformat -Wformat-security \
         -Werror=format-security -c -O0 x.c -DFROM_NIX=1 -I/nix/store/aaa-zlib/include"
    );
}

#[test]
fn linking_adds_the_link_flags_the_ldflags_and_store_rpaths() {
    let env = Env {
        cflags_link: Some("-static-libgcc".into()),
        ldflags: Some("-L/nix/store/aaa-zlib/lib -lz -L/build/src/.libs -rpath /custom".into()),
        hardening: Some("relro bindnow pie".into()),
        ld_run_path: Some("/nix/store/bbb-out/lib:/nix/store/aaa-zlib/lib::/usr/lib".into()),
        build_top: Some("/build".into()),
        ..Env::default()
    };
    let argv = compiler_argv(
        Tool::Cxx,
        &os(&[
            "-o",
            "prog",
            "prog.o",
            "-L",
            "/nix/store/ccc-fmt/lib",
            "-lfmt",
        ]),
        &env,
        &config("/tc/gcc"),
    );
    assert_eq!(
        text(&argv),
        "/tc/bin/g++-12 -fPIE -o prog prog.o -L /nix/store/ccc-fmt/lib -lfmt -static-libgcc -pie \
         -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now \
         -Xlinker -L/nix/store/aaa-zlib/lib -Xlinker -lz -Xlinker -L/build/src/.libs \
         -Xlinker -rpath -Xlinker /custom \
         -Xlinker -rpath -Xlinker /nix/store/bbb-out/lib \
         -Xlinker -rpath -Xlinker /nix/store/aaa-zlib/lib \
         -Xlinker -rpath -Xlinker /nix/store/ccc-fmt/lib"
    );
    // -shared: no -pie; NIX_DONT_SET_RPATH=1: no rpath; no hardening at all.
    let env = Env {
        hardening: Some("pie".into()),
        ld_run_path: Some("/nix/store/bbb-out/lib".into()),
        dont_set_rpath: Some("1".into()),
        ..Env::default()
    };
    let argv = compiler_argv(
        Tool::C,
        &os(&["-shared", "-o", "libx.so", "x.o"]),
        &env,
        &config("/tc/gcc"),
    );
    assert_eq!(text(&argv), "/tc/gcc -fPIE -shared -o libx.so x.o");
    let env = Env {
        hardening: Some(String::new().into()),
        ..Env::default()
    };
    let argv = compiler_argv(Tool::C, &os(&["x.c"]), &env, &config("/tc/gcc"));
    assert_eq!(text(&argv), "/tc/gcc x.c");
}

#[test]
fn a_missing_or_bad_configuration_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("bin/kiln-cc");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    std::fs::write(&exe, "").unwrap();
    let error = read_config(&exe).unwrap_err();
    assert!(matches!(error, CcError::ReadConfig { .. }), "{error}");
    assert!(
        error.to_string().contains("nix-support/kiln-cc.json"),
        "{error}"
    );
    std::fs::create_dir_all(dir.path().join("nix-support")).unwrap();
    std::fs::write(
        dir.path().join("nix-support/kiln-cc.json"),
        r#"{"cc": "/x", "cxx": "/y", "cpp": "/z", "typo": 1}"#,
    )
    .unwrap();
    let error = read_config(&exe).unwrap_err();
    assert!(matches!(error, CcError::ParseConfig { .. }), "{error}");
    let exe = std::fs::canonicalize(&exe).unwrap();
    std::fs::write(
        dir.path().join("nix-support/kiln-cc.json"),
        format!(r#"{{"cc": "{}", "cxx": "/y", "cpp": "/z"}}"#, exe.display()),
    )
    .unwrap();
    assert!(matches!(
        read_config(&exe).unwrap_err(),
        CcError::Loop { .. }
    ));
}

/// Runs the host's gcc with the wrapper's argv.
fn compile(args: &[&str], env: &Env) {
    let argv = compiler_argv(Tool::C, &os(args), env, &config("/usr/bin/gcc"));
    let output = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&argv),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn readelf(args: &[&str], file: &Path) -> String {
    let output = Command::new("readelf")
        .arg("-W")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A `-D` from `NIX_CFLAGS_COMPILE`, a library from `NIX_LDFLAGS` and the default hardening
/// reach a real program: RELRO and BIND_NOW, PIE, the stack protector, fortified calls.
#[test]
fn real_programs_get_the_flags_and_the_hardening() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("main.c");
    std::fs::write(
        &source,
        "#include <math.h>\n#include <stdio.h>\n#include <string.h>\n\
         int main(int argc, char **argv) { char buf[16]; strcpy(buf, argc > 100 ? argv[1] : \"ok\");\n\
         printf(\"%s %.1f %zu\\n\", GREETING, sqrt((double)argc + 3.0), strlen(buf)); return 0; }\n",
    )
    .unwrap();
    let program = dir.path().join("main");
    let env = Env {
        cflags_compile: Some("-DGREETING=\"hi-from-nix-cflags\"".into()),
        ldflags: Some("-lm".into()),
        ..Env::default()
    };
    compile(
        &["-o", program.to_str().unwrap(), source.to_str().unwrap()],
        &env,
    );
    let output = Command::new(&program).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("hi-from-nix-cflags 2.0 "), "{stdout}");
    let dynamic = readelf(&["-d"], &program);
    assert!(
        dynamic.contains("libm.so.6"),
        "NIX_LDFLAGS' -lm:\n{dynamic}"
    );
    assert!(
        dynamic.contains("BIND_NOW") || dynamic.contains("NOW"),
        "{dynamic}"
    );
    assert!(readelf(&["-l"], &program).contains("GNU_RELRO"));
    assert!(readelf(&["-h"], &program).contains("DYN (Position-Independent Executable"));
    let symbols = readelf(&["--dyn-syms"], &program);
    assert!(symbols.contains("__stack_chk_fail"), "{symbols}");
    assert!(symbols.contains("__printf_chk"), "fortify:\n{symbols}");

    // Without hardening: none of it.
    let plain = dir.path().join("plain");
    let env = Env {
        hardening: Some("".into()),
        ..env
    };
    compile(
        &[
            "-O0",
            "-o",
            plain.to_str().unwrap(),
            source.to_str().unwrap(),
        ],
        &env,
    );
    let symbols = readelf(&["--dyn-syms"], &plain);
    assert!(!symbols.contains("__printf_chk"), "{symbols}");
    assert!(!readelf(&["-d"], &plain).contains("BIND_NOW"));
}
