//! kiln's compiler wrapper: what nixpkgs' `cc-wrapper` and `ld-wrapper` (bash scripts) do for
//! gcc, as a function of the arguments and the environment, run by the static kiln binary when
//! it is called as `cc`, `gcc`, `c++`, `g++` or `cpp`.
//!
//! [`compiler_argv`] turns the arguments a build gave into the real compiler's argv:
//!
//! - the hardening flags of `NIX_HARDENING_ENABLE` (nixpkgs' defaults when it is unset: see
//!   [`DEFAULT_HARDENING`]) before the user's arguments, as `add-hardening.sh` does: `fortify`
//!   (`-O2 -D_FORTIFY_SOURCE=2`), `stackprotector` (`-fstack-protector-strong --param
//!   ssp-buffer-size=4`), `pic` (`-fPIC`), `pie` (`-fPIE`, and `-pie` when linking an
//!   executable), `strictoverflow` (`-fno-strict-overflow`), `format` (`-Wformat
//!   -Wformat-security -Werror=format-security`), `relro` and `bindnow` (`-z relro`, `-z now`
//!   to the linker);
//! - `NIX_CFLAGS_COMPILE` after them (split at white space, no quoting, like the shell does);
//! - when linking: `NIX_CFLAGS_LINK`, then every word of `NIX_LDFLAGS` handed to the linker
//!   (`-Xlinker`; ld-wrapper puts them after the user's arguments too), then an `-rpath` for every
//!   store directory that `LD_RUN_PATH` or an `-L` names (ld-wrapper adds an rpath per `-L`
//!   directory; kiln's fixup later drops those that provide no library, like
//!   `patchelf --shrink-rpath`). `LD_RUN_PATH` is turned into `-rpath` because ld ignores it as
//!   soon as one `-rpath` is given, and the stage-0 gcc always gives the runtime's.
//!
//! A call links unless it has `-c`, `-S`, `-E`, `-M` or `-MM`, or no input (`gcc --version`):
//! cc-wrapper's rule. `cpp` never links. Response files (`@file`) are passed on unread.
//!
//! Where the real compiler is: [`Config`], read from `nix-support/kiln-cc.json` next to the
//! `bin/` directory that holds the wrapper (found through `/proc/self/exe`, so `gcc` can be a
//! symlink to the wrapper in the same directory).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

/// The hardening flags nixpkgs' stdenv enables by default (`NIX_HARDENING_ENABLE` when no
/// `hardeningDisable` applies). `pie` is left to the compiler's default: Debian's gcc makes
/// position-independent executables already.
pub const DEFAULT_HARDENING: &[&str] = &[
    "fortify",
    "stackprotector",
    "pic",
    "strictoverflow",
    "format",
    "relro",
    "bindnow",
];

/// Which compiler the wrapper was called as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `cc`, `gcc`: the C compiler driver.
    C,
    /// `c++`, `g++`: the C++ compiler driver.
    Cxx,
    /// `cpp`: the preprocessor (never links).
    Cpp,
}

impl Tool {
    /// The tool a program name (`argv[0]`'s file name) stands for, if any.
    pub fn from_program_name(name: &OsStr) -> Option<Tool> {
        let name = Path::new(name).file_name()?;
        match name.as_bytes() {
            b"cc" | b"gcc" => Some(Tool::C),
            b"c++" | b"g++" => Some(Tool::Cxx),
            b"cpp" => Some(Tool::Cpp),
            _ => None,
        }
    }
}

/// Where the real compilers are (`nix-support/kiln-cc.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The C compiler driver, e.g. `<toolchain>/usr/bin/gcc-12`.
    pub cc: PathBuf,
    /// The C++ compiler driver, e.g. `<toolchain>/usr/bin/g++-12`.
    pub cxx: PathBuf,
    /// The preprocessor, e.g. `<toolchain>/usr/bin/cpp-12`.
    pub cpp: PathBuf,
}

impl Config {
    /// The real program for `tool`.
    pub fn program(&self, tool: Tool) -> &Path {
        match tool {
            Tool::C => &self.cc,
            Tool::Cxx => &self.cxx,
            Tool::Cpp => &self.cpp,
        }
    }
}

/// The environment the wrapper reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `NIX_CFLAGS_COMPILE`.
    pub cflags_compile: Option<OsString>,
    /// `NIX_CFLAGS_LINK`.
    pub cflags_link: Option<OsString>,
    /// `NIX_LDFLAGS`.
    pub ldflags: Option<OsString>,
    /// `NIX_HARDENING_ENABLE`; `None` means [`DEFAULT_HARDENING`].
    pub hardening: Option<OsString>,
    /// `LD_RUN_PATH`.
    pub ld_run_path: Option<OsString>,
    /// `NIX_STORE`, default `/nix/store`.
    pub store: Option<OsString>,
    /// `NIX_BUILD_TOP`: directories under it never become rpaths.
    pub build_top: Option<OsString>,
    /// `NIX_DONT_SET_RPATH`: when `1`, no rpath is added.
    pub dont_set_rpath: Option<OsString>,
}

impl Env {
    /// The wrapper's variables from the process environment.
    pub fn from_process() -> Env {
        let var = |name| std::env::var_os(name);
        Env {
            cflags_compile: var("NIX_CFLAGS_COMPILE"),
            cflags_link: var("NIX_CFLAGS_LINK"),
            ldflags: var("NIX_LDFLAGS"),
            hardening: var("NIX_HARDENING_ENABLE"),
            ld_run_path: var("LD_RUN_PATH"),
            store: var("NIX_STORE"),
            build_top: var("NIX_BUILD_TOP"),
            dont_set_rpath: var("NIX_DONT_SET_RPATH"),
        }
    }
}

/// Splits a flags variable at ASCII white space, as an unquoted shell expansion does.
fn words(value: Option<&OsStr>) -> Vec<OsString> {
    value
        .map(|value| {
            value
                .as_bytes()
                .split(|b| b.is_ascii_whitespace())
                .filter(|word| !word.is_empty())
                .map(|word| OsString::from_vec(word.to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a call with `args` links, by cc-wrapper's rule.
pub fn links(tool: Tool, args: &[OsString]) -> bool {
    if tool == Tool::Cpp {
        return false;
    }
    let mut has_input = false;
    let mut previous: Option<&[u8]> = None;
    for arg in args {
        let arg = arg.as_bytes();
        match arg {
            b"-c" | b"-S" | b"-E" | b"-M" | b"-MM" => return false,
            _ if previous == Some(b"-x") && arg.ends_with(b"-header") => return false,
            _ if !arg.starts_with(b"-") || arg == b"-" => has_input = true,
            _ => {}
        }
        previous = Some(arg);
    }
    has_input
}

/// The `-L` directories among `args` (`-Ldir` and `-L dir`).
fn library_dirs(args: &[OsString]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let bytes = arg.as_bytes();
        if bytes == b"-L" {
            if let Some(dir) = iter.next() {
                dirs.push(PathBuf::from(dir));
            }
        } else if let Some(dir) = bytes.strip_prefix(b"-L") {
            dirs.push(PathBuf::from(OsStr::from_bytes(dir)));
        }
    }
    dirs
}

/// The real compiler's argv (its path first) for a call as `tool` with `args`.
pub fn compiler_argv(tool: Tool, args: &[OsString], env: &Env, config: &Config) -> Vec<OsString> {
    let linking = links(tool, args);
    let enabled: Vec<OsString> = match &env.hardening {
        Some(value) => words(Some(value)),
        None => DEFAULT_HARDENING.iter().map(OsString::from).collect(),
    };
    let on = |flag: &str| enabled.iter().any(|enabled| enabled == flag);
    let shared_or_static = args.iter().any(|arg| {
        matches!(
            arg.as_bytes(),
            b"-shared" | b"-static" | b"-r" | b"-nostartfiles" | b"-static-pie"
        )
    });

    let mut before: Vec<OsString> = Vec::new();
    let push = |list: &mut Vec<OsString>, flags: &[&str]| {
        list.extend(flags.iter().map(OsString::from));
    };
    if on("fortify") {
        push(
            &mut before,
            &["-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=2"],
        );
    }
    if on("stackprotector") {
        push(
            &mut before,
            &["-fstack-protector-strong", "--param", "ssp-buffer-size=4"],
        );
    }
    if on("pic") {
        push(&mut before, &["-fPIC"]);
    }
    if on("pie") {
        push(&mut before, &["-fPIE"]);
    }
    if on("strictoverflow") {
        push(&mut before, &["-fno-strict-overflow"]);
    }
    if on("format") && tool != Tool::Cpp {
        push(
            &mut before,
            &["-Wformat", "-Wformat-security", "-Werror=format-security"],
        );
    }

    let mut after: Vec<OsString> = words(env.cflags_compile.as_deref());
    if linking {
        after.extend(words(env.cflags_link.as_deref()));
        if on("pie") && !shared_or_static {
            after.push("-pie".into());
        }
        let linker = |after: &mut Vec<OsString>, arg: &OsStr| {
            after.push("-Xlinker".into());
            after.push(arg.to_owned());
        };
        if on("relro") {
            linker(&mut after, OsStr::new("-z"));
            linker(&mut after, OsStr::new("relro"));
        }
        if on("bindnow") {
            linker(&mut after, OsStr::new("-z"));
            linker(&mut after, OsStr::new("now"));
        }
        let ldflags = words(env.ldflags.as_deref());
        for word in &ldflags {
            linker(&mut after, word);
        }
        if env.dont_set_rpath.as_deref() != Some(OsStr::new("1")) {
            let store = env
                .store
                .as_deref()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/nix/store"));
            let build_top = env.build_top.as_deref().map(PathBuf::from);
            let run_path: Vec<PathBuf> = env
                .ld_run_path
                .as_deref()
                .map(|value| {
                    value
                        .as_bytes()
                        .split(|&b| b == b':')
                        .filter(|dir| !dir.is_empty())
                        .map(|dir| PathBuf::from(OsStr::from_bytes(dir)))
                        .collect()
                })
                .unwrap_or_default();
            let mut rpaths: Vec<PathBuf> = Vec::new();
            for dir in run_path
                .into_iter()
                .chain(library_dirs(args))
                .chain(library_dirs(&ldflags))
            {
                let in_store = dir.starts_with(&store);
                let in_build = build_top.as_ref().is_some_and(|top| dir.starts_with(top));
                if in_store && !in_build && !rpaths.contains(&dir) {
                    rpaths.push(dir);
                }
            }
            for dir in rpaths {
                linker(&mut after, OsStr::new("-rpath"));
                linker(&mut after, dir.as_os_str());
            }
        }
    }

    let mut argv = vec![config.program(tool).as_os_str().to_owned()];
    argv.extend(before);
    argv.extend(args.iter().cloned());
    argv.extend(after);
    argv
}

/// Why the wrapper could not start the compiler.
#[derive(Debug, thiserror::Error)]
pub enum CcError {
    /// The wrapper's own path could not be read.
    #[error("cannot find where the wrapper is (/proc/self/exe)")]
    SelfPath(#[source] std::io::Error),
    /// The configuration file is missing or unreadable.
    #[error("cannot read `{}`", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not what the wrapper expects.
    #[error("`{}` is not a valid kiln-cc configuration", path.display())]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The configuration names the wrapper itself as the compiler.
    #[error("`{}` names the wrapper itself as the compiler", path.display())]
    Loop {
        /// The configuration file.
        path: PathBuf,
    },
    /// The compiler could not be executed.
    #[error("cannot run `{}`", program.display())]
    Exec {
        /// The compiler.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The configuration file for a wrapper at `exe`: `<exe's dir>/../nix-support/kiln-cc.json`.
pub fn config_path(exe: &Path) -> PathBuf {
    let bin = exe.parent().unwrap_or_else(|| Path::new("/"));
    bin.join("../nix-support/kiln-cc.json")
}

/// Reads the configuration of the wrapper at `exe`.
pub fn read_config(exe: &Path) -> Result<Config, CcError> {
    let path = config_path(exe);
    let text = std::fs::read(&path).map_err(|source| CcError::ReadConfig {
        path: path.clone(),
        source,
    })?;
    let config: Config = serde_json::from_slice(&text).map_err(|source| CcError::ParseConfig {
        path: path.clone(),
        source,
    })?;
    for program in [&config.cc, &config.cxx, &config.cpp] {
        if std::fs::canonicalize(program).ok().as_deref() == Some(exe) {
            return Err(CcError::Loop { path });
        }
    }
    Ok(config)
}

/// Runs the wrapper as `tool` with the process's arguments (without `argv[0]`) and
/// environment: replaces this process with the real compiler. Returns only on failure.
pub fn exec(tool: Tool, args: &[OsString]) -> CcError {
    use std::os::unix::process::CommandExt as _;
    let exe = match std::fs::read_link("/proc/self/exe") {
        Ok(exe) => exe,
        Err(source) => return CcError::SelfPath(source),
    };
    let config = match read_config(&exe) {
        Ok(config) => config,
        Err(error) => return error,
    };
    let argv = compiler_argv(tool, args, &Env::from_process(), &config);
    let program = PathBuf::from(&argv[0]);
    let source = std::process::Command::new(&program)
        .arg0(&argv[0])
        .args(&argv[1..])
        .exec();
    CcError::Exec { program, source }
}

#[cfg(test)]
mod tests;
