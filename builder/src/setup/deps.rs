//! The dependency environment: what nixpkgs' setup hooks do in bash, as data.
//!
//! Each dependency contributes by convention: build dependencies' `bin` to `PATH` (and host
//! dependencies' after them, unless `deps.strict`, nixpkgs' `strictDeps`); host
//! dependencies' `include` to `CPATH` (and `NIX_CFLAGS_COMPILE` for nixpkgs' cc-wrapper), `lib`
//! to `LIBRARY_PATH`, `LD_RUN_PATH` (an rpath, with `$out/lib` first, like stdenv's self-rpath)
//! and `NIX_LDFLAGS`, `lib/pkgconfig` and `share/pkgconfig` to `PKG_CONFIG_PATH`, the root to
//! `CMAKE_PREFIX_PATH`; both roles' `share/aclocal` to `ACLOCAL_PATH` and `share` to
//! `XDG_DATA_DIRS`. Only directories that exist count. Dependencies are followed through
//! `nix-support/propagated-build-inputs` (host) and `propagated-native-build-inputs` (build)
//! like nixpkgs' `findInputs`; a `nix-support/kiln-hook.json` adds declared variables and
//! phase edits. Every variable records where it came from, for `kiln plan`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kiln_schema::hook::{Hook, HOOK_FILE};
use kiln_schema::preset::ExternalEdit;
use kiln_schema::{JsonPath, Plan, PlanErrors};
use thiserror::Error;

/// File listing the host dependencies a package propagates (nixpkgs-compatible).
pub const PROPAGATED_HOST: &str = "nix-support/propagated-build-inputs";
/// File listing the build dependencies a package propagates (nixpkgs-compatible).
pub const PROPAGATED_BUILD: &str = "nix-support/propagated-native-build-inputs";

/// Variables a hook may not set: Nix's and kiln's own, and the usual output names.
const RESERVED: &[&str] = &[
    "NIX_BUILD_TOP",
    "NIX_BUILD_CORES",
    "NIX_STORE",
    "NIX_LOG_FD",
    "NIX_ATTRS_JSON_FILE",
    "NIX_ATTRS_SH_FILE",
    "TMPDIR",
    "TEMPDIR",
    "TMP",
    "TEMP",
    "HOME",
    "PWD",
    "SOURCE_DATE_EPOCH",
    "out",
    "dev",
    "bin",
    "lib",
    "man",
    "doc",
    "info",
    "devdoc",
    "static",
];

/// A variable's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// The value.
    pub value: String,
    /// Who set it: `kiln`, `nix`, `dependencies: a, b`, `hook of …`, `plan env`.
    pub origin: String,
}

/// The dependency closure and what it contributes.
#[derive(Debug, Clone, Default)]
pub struct DependencyEnv {
    /// Build dependencies, propagation included, in order.
    pub build: Vec<PathBuf>,
    /// Host dependencies, propagation included, in order.
    pub host: Vec<PathBuf>,
    /// Variables by convention and from hooks.
    pub vars: BTreeMap<String, Origin>,
    /// Phase edits from hooks.
    pub edits: Vec<ExternalEdit>,
}

/// A dependency that cannot be read.
#[derive(Debug, Error)]
pub enum DepsError {
    /// A propagation file or hook could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A hook file is not valid.
    #[error("invalid dependency hook `{}`", path.display())]
    InvalidHook {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        errors: PlanErrors,
    },
}

/// Follows `deps` through propagation and collects the environment they contribute.
///
/// `out_lib` is the main output's `lib` directory, put first on the rpath.
pub fn dependency_env(plan: &Plan, out_lib: Option<&Path>) -> Result<DependencyEnv, DepsError> {
    let paths_of = |names: &[String]| -> Vec<PathBuf> {
        names
            .iter()
            .filter_map(|name| plan.inputs.get(name))
            .flat_map(|input| input.paths().iter().map(PathBuf::from))
            .collect()
    };
    let mut seen = BTreeSet::new();
    let mut env = DependencyEnv::default();
    for root in paths_of(&plan.deps.build) {
        visit(&root, Role::Build, &mut seen, &mut env)?;
    }
    for root in paths_of(&plan.deps.host) {
        visit(&root, Role::Host, &mut seen, &mut env)?;
    }

    let existing = |deps: &[PathBuf], sub: &str| -> Vec<String> {
        deps.iter()
            .map(|dep| dep.join(sub))
            .filter(|dir| dir.is_dir())
            .map(|dir| dir.display().to_string())
            .collect()
    };
    let both: Vec<PathBuf> = env.build.iter().chain(&env.host).cloned().collect();
    let names = |deps: &[PathBuf]| -> String {
        let list: Vec<String> = deps.iter().map(|d| short(d)).collect();
        if list.is_empty() {
            "kiln".to_owned()
        } else {
            format!("dependencies: {}", list.join(", "))
        }
    };
    let mut set = |name: &str, values: Vec<String>, separator: &str, origin: String| {
        if !values.is_empty() {
            env.vars.insert(
                name.to_owned(),
                Origin {
                    value: values.join(separator),
                    origin,
                },
            );
        }
    };
    let includes = existing(&env.host, "include");
    let libs = existing(&env.host, "lib");
    set("CPATH", includes.clone(), ":", names(&env.host));
    set(
        "NIX_CFLAGS_COMPILE",
        includes
            .iter()
            .map(|dir| format!("-isystem {dir}"))
            .collect(),
        " ",
        names(&env.host),
    );
    set("LIBRARY_PATH", libs.clone(), ":", names(&env.host));
    let mut rpath: Vec<String> = out_lib
        .map(|lib| lib.display().to_string())
        .into_iter()
        .collect();
    rpath.extend(libs.iter().cloned());
    set(
        "LD_RUN_PATH",
        rpath.clone(),
        ":",
        if env.host.is_empty() {
            "kiln (the `out` output's lib)".to_owned()
        } else {
            format!("kiln (the `out` output's lib), {}", names(&env.host))
        },
    );
    let mut ldflags: Vec<String> = rpath.iter().map(|dir| format!("-rpath {dir}")).collect();
    ldflags.extend(libs.iter().map(|dir| format!("-L{dir}")));
    set("NIX_LDFLAGS", ldflags, " ", names(&env.host));
    let mut pkg_config = existing(&env.host, "lib/pkgconfig");
    pkg_config.extend(existing(&env.host, "share/pkgconfig"));
    set("PKG_CONFIG_PATH", pkg_config, ":", names(&env.host));
    let cmake: Vec<String> = env
        .host
        .iter()
        .chain(&env.build)
        .map(|dep| dep.display().to_string())
        .collect();
    set("CMAKE_PREFIX_PATH", cmake, ":", names(&both));
    set(
        "ACLOCAL_PATH",
        existing(&both, "share/aclocal"),
        ":",
        names(&both),
    );
    set("XDG_DATA_DIRS", existing(&both, "share"), ":", names(&both));
    let mut path = existing(&env.build, "bin");
    if plan.deps.strict {
        set("PATH", path, ":", names(&env.build));
    } else {
        path.extend(existing(&env.host, "bin"));
        set("PATH", path, ":", names(&both));
    }

    // A dependency in both roles contributes its hook once.
    let mut hooked = BTreeSet::new();
    for dep in both {
        if hooked.insert(dep.clone()) {
            read_hook(&dep, &mut env)?;
        }
    }
    Ok(env)
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Build,
    Host,
}

fn visit(
    dep: &Path,
    role: Role,
    seen: &mut BTreeSet<(PathBuf, bool)>,
    env: &mut DependencyEnv,
) -> Result<(), DepsError> {
    if !seen.insert((dep.to_owned(), role == Role::Build)) {
        return Ok(());
    }
    match role {
        Role::Build => env.build.push(dep.to_owned()),
        Role::Host => env.host.push(dep.to_owned()),
    }
    for (file, next) in [(PROPAGATED_HOST, role), (PROPAGATED_BUILD, Role::Build)] {
        for propagated in read_list(&dep.join(file))? {
            visit(&propagated, next, seen, env)?;
        }
    }
    Ok(())
}

/// Reads a whitespace-separated list of paths; a missing file is an empty list.
fn read_list(path: &Path) -> Result<Vec<PathBuf>, DepsError> {
    // Paths are bytes: a non-UTF-8 one is kept exactly, not refused or converted.
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes
            .split(u8::is_ascii_whitespace)
            .filter(|word| !word.is_empty())
            .map(|word| PathBuf::from(std::ffi::OsStr::from_bytes(word)))
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(DepsError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_hook(dep: &Path, env: &mut DependencyEnv) -> Result<(), DepsError> {
    let path = dep.join(HOOK_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(DepsError::Read { path, source }),
    };
    let invalid = |errors: PlanErrors| DepsError::InvalidHook {
        path: path.clone(),
        errors,
    };
    // Not UTF-8 is an invalid hook (with where), not a read error.
    let hook: Hook = kiln_schema::parse::from_slice(&bytes).map_err(|e| invalid(e.into()))?;
    if hook.version != 1 {
        return Err(invalid(
            kiln_schema::PlanError::new(
                JsonPath::root().key("version"),
                kiln_schema::PlanErrorKind::UnsupportedVersion {
                    found: hook.version,
                },
            )
            .into(),
        ));
    }
    let origin = format!("hook of {}", short(dep));
    let own = dep.display().to_string();
    for name in hook.env.keys() {
        let reserved = RESERVED.contains(&name.as_str());
        if reserved || !kiln_schema::validate::is_valid_env_name(name) {
            return Err(invalid(
                kiln_schema::PlanError::new(
                    JsonPath::root().key("env").key(name.clone()),
                    kiln_schema::PlanErrorKind::InvalidEnvName { name: name.clone() },
                )
                .with_context(if reserved {
                    "kiln and Nix set this variable; a hook may not"
                } else {
                    "not a variable name"
                })
                .into(),
            ));
        }
    }
    for (name, value) in hook.env {
        env.vars.insert(
            name,
            Origin {
                value: value.replace("@self@", &own),
                origin: origin.clone(),
            },
        );
    }
    for edit in hook.edits {
        env.edits.push(ExternalEdit {
            origin: origin.clone(),
            edit,
        });
    }
    Ok(())
}

/// A store path without its hash, for messages: `/nix/store/abc…-zlib-1.3` → `zlib-1.3`.
pub fn short(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    match name.split_once('-') {
        Some((hash, rest)) if hash.len() == 32 && path.starts_with("/nix/store") => rest.to_owned(),
        _ => path.display().to_string(),
    }
}

/// Writes `nix-support/propagated-build-inputs` and `propagated-native-build-inputs` into
/// `output` for the plan's `propagate` lists (nothing when both are empty).
///
/// This runs after the last phase, so a file may already be there: the fixup's
/// `_multioutPropagateDev` appends the dev output's siblings (`out`, `lib`, …) to it. stdenv
/// writes the plan's list first and that hook appends after it; to end with the same words,
/// the plan's paths come first and every word already in the file follows, once.
pub fn write_propagated(plan: &Plan, output: &Path) -> std::io::Result<()> {
    let paths_of = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter_map(|name| plan.inputs.get(name))
            .flat_map(|input| input.paths().iter().cloned())
            .collect()
    };
    for (file, names) in [
        (PROPAGATED_HOST, &plan.propagate.host),
        (PROPAGATED_BUILD, &plan.propagate.build),
    ] {
        let mut paths = paths_of(names);
        if paths.is_empty() {
            continue;
        }
        let path = output.join(file);
        match std::fs::read_to_string(&path) {
            Ok(existing) => {
                for word in existing.split_whitespace() {
                    if !paths.iter().any(|path| path == word) {
                        paths.push(word.to_owned());
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        std::fs::create_dir_all(path.parent().expect("the file is in nix-support"))?;
        std::fs::write(&path, format!("{}\n", paths.join(" ")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hook_that_is_not_utf8_is_invalid_and_propagated_paths_are_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(super::HOOK_FILE).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join(super::HOOK_FILE), b"{\"version\": 1, \xff}").unwrap();
        let error = super::read_hook(dir.path(), &mut super::DependencyEnv::default()).unwrap_err();
        assert!(
            matches!(error, super::DepsError::InvalidHook { .. }),
            "{error:?}"
        );
        let list = dir.path().join("propagated");
        std::fs::write(&list, b"/nix/store/a-x\n /nix/store/b-\xff\t").unwrap();
        let paths = super::read_list(&list).unwrap();
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[1].as_os_str().as_bytes(), b"/nix/store/b-\xff");
    }

    #[test]
    fn strict_deps_keep_host_tools_off_path() {
        let dir = tempfile::tempdir().unwrap();
        for dep in ["tool", "lib"] {
            std::fs::create_dir_all(dir.path().join(dep).join("bin")).unwrap();
        }
        let plan_text = |strict: bool| {
            format!(
                r#"{{"version":1,"name":"x","inputs":{{"tool":"{0}/tool","lib":"{0}/lib"}},
                "deps":{{"build":["tool"],"host":["lib"],"strict":{strict}}},
                "phases":[{{"name":"a","steps":[]}}]}}"#,
                dir.path().display()
            )
        };
        let path_of = |strict: bool| {
            let plan = kiln_schema::plan_from_str(&plan_text(strict)).unwrap();
            dependency_env(&plan, None).unwrap().vars["PATH"]
                .value
                .clone()
        };
        let tool = dir.path().join("tool/bin").display().to_string();
        let lib = dir.path().join("lib/bin").display().to_string();
        assert_eq!(path_of(false), format!("{tool}:{lib}"));
        assert_eq!(path_of(true), tool);
    }

    use super::*;

    fn dir_with(root: &Path, name: &str, subdirs: &[&str]) -> PathBuf {
        let dep = root.join(name);
        for sub in subdirs {
            std::fs::create_dir_all(dep.join(sub)).unwrap();
        }
        std::fs::create_dir_all(&dep).unwrap();
        dep
    }

    #[test]
    fn conventions_propagation_and_hooks() {
        let tmp = tempfile::tempdir().unwrap();
        let tool = dir_with(tmp.path(), "tool", &["bin", "share/aclocal"]);
        let zlib = dir_with(tmp.path(), "zlib", &["include", "lib/pkgconfig"]);
        let libpng = dir_with(tmp.path(), "libpng", &["include", "lib", "nix-support"]);
        std::fs::write(
            libpng.join(PROPAGATED_HOST),
            format!("{}\n", zlib.display()),
        )
        .unwrap();
        std::fs::write(
            libpng.join(HOOK_FILE),
            r#"{"version":1,"env":{"PNG_HOME":"@self@/share"},
                "edits":[{"delete":{"phase":"check"}}]}"#,
        )
        .unwrap();
        let plan = kiln_schema::plan_from_str(&format!(
            r#"{{"version":1,"name":"x","inputs":{{"tool":"{}","png":"{}"}},
                "deps":{{"build":["tool"],"host":["png"]}},"phases":[{{"name":"a","steps":[]}}]}}"#,
            tool.display(),
            libpng.display()
        ))
        .unwrap();
        let env = dependency_env(&plan, Some(Path::new("/out/lib"))).unwrap();
        assert_eq!(env.host, [libpng.clone(), zlib.clone()]);
        let var = |name: &str| env.vars[name].value.clone();
        assert_eq!(var("PATH"), tool.join("bin").display().to_string());
        assert_eq!(
            var("CPATH"),
            format!("{}/include:{}/include", libpng.display(), zlib.display())
        );
        assert_eq!(
            var("LD_RUN_PATH"),
            format!("/out/lib:{}/lib:{}/lib", libpng.display(), zlib.display())
        );
        assert_eq!(
            var("PKG_CONFIG_PATH"),
            format!("{}/lib/pkgconfig", zlib.display())
        );
        assert_eq!(
            var("ACLOCAL_PATH"),
            format!("{}/share/aclocal", tool.display())
        );
        assert_eq!(var("PNG_HOME"), format!("{}/share", libpng.display()));
        assert!(env.vars["PNG_HOME"].origin.starts_with("hook of"));
        assert_eq!(env.edits.len(), 1);
    }

    #[test]
    fn propagated_files_are_written_for_our_outputs() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = kiln_schema::plan_from_str(
            r#"{"version":1,"name":"x","inputs":{"z":"/nix/store/z"},
                "propagate":{"host":["z"]},"phases":[{"name":"a","steps":[]}]}"#,
        )
        .unwrap();
        write_propagated(&plan, tmp.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(PROPAGATED_HOST)).unwrap(),
            "/nix/store/z\n"
        );
        assert!(!tmp.path().join(PROPAGATED_BUILD).exists());
        // What the fixup's _multioutPropagateDev appended stays, after the plan's own list;
        // writing again changes nothing.
        std::fs::write(
            tmp.path().join(PROPAGATED_HOST),
            " /nix/store/out /nix/store/z",
        )
        .unwrap();
        for _ in 0..2 {
            write_propagated(&plan, tmp.path()).unwrap();
            assert_eq!(
                std::fs::read_to_string(tmp.path().join(PROPAGATED_HOST)).unwrap(),
                "/nix/store/z /nix/store/out\n"
            );
        }
    }
}
