//! Helpers for the unit tests: writing files with modes, compiling tiny C programs and
//! libraries with the host `cc`, and reading ELF facts back with goblin.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `contents` to `path` (parents created) with `mode`.
pub fn write(path: &Path, contents: impl AsRef<[u8]>, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates the symlink `path` -> `target` (parents created).
pub fn symlink(target: impl AsRef<Path>, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// The first line of a file.
pub fn first_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    text.lines().next().unwrap_or_default().to_owned()
}

/// Runs `cc` with `args`, panicking with its stderr on failure.
pub fn cc(args: &[&str]) {
    let output = Command::new("cc").args(args).output().expect("`cc` runs");
    assert!(
        output.status.success(),
        "cc {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds `dir/libgreet.so` (with debug info) and returns its path.
pub fn greet_library(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let source = dir.join("greet.c");
    fs::write(
        &source,
        "#include <stdio.h>\nvoid greet(void) { puts(\"hello from greet\"); }\n",
    )
    .unwrap();
    let library = dir.join("libgreet.so");
    cc(&[
        "-g",
        "-shared",
        "-fPIC",
        "-o",
        library.to_str().unwrap(),
        source.to_str().unwrap(),
    ]);
    fs::remove_file(source).unwrap();
    library
}

/// Builds an executable at `output` that calls `greet` from `lib_dir/libgreet.so`, linked with
/// `extra` linker arguments (such as `-Wl,-rpath,...`).
pub fn greet_program(output: &Path, lib_dir: &Path, extra: &[&str]) {
    fs::create_dir_all(output.parent().unwrap()).unwrap();
    let source = output.with_extension("c");
    fs::write(
        &source,
        "void greet(void);\nint main(void) { greet(); return 0; }\n",
    )
    .unwrap();
    let lib_flag = format!("-L{}", lib_dir.display());
    let mut args = vec![
        "-g",
        "-o",
        output.to_str().unwrap(),
        source.to_str().unwrap(),
        &lib_flag,
        "-lgreet",
    ];
    args.extend_from_slice(extra);
    cc(&args);
    fs::remove_file(source).unwrap();
}

/// `(RPATH, RUNPATH)` of an ELF file, each joined with `:`.
pub fn search_paths(path: &Path) -> (Vec<String>, Vec<String>) {
    let bytes = fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    (owned(&elf.rpaths), owned(&elf.runpaths))
}

/// Names of the sections of an ELF file.
pub fn section_names(path: &Path) -> Vec<String> {
    let bytes = fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    elf.section_headers
        .iter()
        .filter_map(|sh| elf.shdr_strtab.get_at(sh.sh_name))
        .map(str::to_owned)
        .collect()
}

/// The `.debug_*` section names of an ELF file.
pub fn debug_sections(path: &Path) -> Vec<String> {
    section_names(path)
        .into_iter()
        .filter(|name| name.starts_with(".debug_"))
        .collect()
}

/// The directories holding the host's `strip`, interpreters and so on.
pub fn host_path() -> Vec<PathBuf> {
    vec![PathBuf::from("/usr/bin"), PathBuf::from("/bin")]
}
