//! The environment steps run in, built from scratch.
//!
//! Nothing is inherited from kiln's caller except the variables Nix itself defines for a builder
//! ([`NIX_DEFINED`]). kiln adds `HOME`, `TMPDIR`, `NIX_BUILD_TOP`, `NIX_BUILD_CORES`,
//! `SOURCE_DATE_EPOCH`, one variable per output (`out`, `dev`, … like stdenv) and a `PATH` made
//! of the inputs' `bin` directories; the plan's `env` and each step's `env` come on top.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_schema::Plan;

use crate::setup::deps::{DependencyEnv, Origin};

/// Variables that Nix sets for a builder and that steps see unchanged when kiln runs under Nix.
pub const NIX_DEFINED: &[&str] = &[
    "NIX_BUILD_TOP",
    "NIX_BUILD_CORES",
    "NIX_STORE",
    "NIX_LOG_FD",
    "TMPDIR",
    "TEMPDIR",
    "TMP",
    "TEMP",
    "TERM",
    "HOME",
    "NIX_ATTRS_JSON_FILE",
    "NIX_ATTRS_SH_FILE",
];

/// `HOME` in Nix's sandbox: a directory that does not exist.
pub const HOMELESS: &str = "/homeless-shelter";

/// stdenv's default `SOURCE_DATE_EPOCH` (1980-01-01), for reproducible timestamps.
pub const DEFAULT_SOURCE_DATE_EPOCH: &str = "315532800";

/// Where the build runs and what it produces.
#[derive(Debug, Clone)]
pub struct BuildPaths {
    /// The build directory (`NIX_BUILD_TOP`).
    pub build_top: PathBuf,
    /// Output name → path.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Cores the build may use (`NIX_BUILD_CORES`), at least 1.
    pub cores: u32,
}

/// The environment before the plan's own `env`: Nix's variables (when given), kiln's, then the
/// dependency environment, each with its origin.
///
/// `nix_env` is the caller's environment filtered to [`NIX_DEFINED`]; pass an empty map outside
/// Nix so the result depends on nothing but the plan, `paths` and the dependencies.
pub fn base_env(
    plan: &Plan,
    paths: &BuildPaths,
    nix_env: &BTreeMap<String, String>,
    deps: &DependencyEnv,
) -> BTreeMap<String, Origin> {
    let mut env: BTreeMap<String, Origin> = BTreeMap::new();
    let mut set = |name: &str, value: String, origin: &str| {
        env.insert(
            name.to_owned(),
            Origin {
                value,
                origin: origin.to_owned(),
            },
        );
    };
    for (name, value) in nix_env {
        if NIX_DEFINED.contains(&name.as_str()) {
            set(name, value.clone(), "nix");
        }
    }
    let top = paths.build_top.display().to_string();
    set("NIX_BUILD_TOP", top.clone(), "kiln");
    set("NIX_BUILD_CORES", paths.cores.to_string(), "kiln");
    for name in ["TMPDIR", "TEMPDIR", "TMP", "TEMP"] {
        if !nix_env.contains_key(name) {
            set(name, top.clone(), "kiln");
        }
    }
    if !nix_env.contains_key("HOME") {
        set("HOME", HOMELESS.to_owned(), "kiln");
    }
    set(
        "SOURCE_DATE_EPOCH",
        DEFAULT_SOURCE_DATE_EPOCH.to_owned(),
        "kiln (stdenv's default; raised to the newest source file by `unpack`)",
    );
    for (name, path) in &paths.outputs {
        if kiln_schema::validate::is_valid_env_name(name) {
            set(name, path.display().to_string(), "kiln (output path)");
        }
    }
    for (name, origin) in &deps.vars {
        env.insert(name.clone(), origin.clone());
    }
    // PATH: the dependencies' `bin` first, then every other input's `bin`.
    let mut path: Vec<String> = deps
        .vars
        .get("PATH")
        .map(|origin| origin.value.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut from_inputs = false;
    for dir in input_bin_dirs(plan) {
        if !path.contains(&dir) {
            path.push(dir);
            from_inputs = true;
        }
    }
    let origin = match (deps.vars.get("PATH"), from_inputs) {
        (Some(deps), true) => format!("{}; other inputs' bin", deps.origin),
        (Some(deps), false) => deps.origin.clone(),
        (None, _) => "kiln (the inputs' bin directories)".to_owned(),
    };
    env.insert(
        "PATH".to_owned(),
        Origin {
            value: path.join(":"),
            origin,
        },
    );
    env
}

/// Each input path's `bin` directory that exists, in plan order; with `deps.strict`, not the
/// host dependencies'.
fn input_bin_dirs(plan: &Plan) -> Vec<String> {
    plan.inputs
        .iter()
        .filter(|(name, _)| !(plan.deps.strict && plan.deps.host.contains(*name)))
        .map(|(_, input)| input)
        .flat_map(|input| input.paths())
        .map(|path| Path::new(path).join("bin"))
        .filter(|bin| bin.is_dir())
        .map(|bin| bin.display().to_string())
        .collect()
}

/// Only the values of an environment with origins.
pub fn values(env: &BTreeMap<String, Origin>) -> BTreeMap<String, String> {
    env.iter()
        .map(|(name, origin)| (name.clone(), origin.value.clone()))
        .collect()
}

/// The variables of `caller` that Nix defines (see [`NIX_DEFINED`]).
pub fn nix_defined(caller: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
    caller
        .filter(|(name, _)| NIX_DEFINED.contains(&name.as_str()))
        .collect()
}

/// Finds `program` like `execvp` would, but with the step's `PATH` and `cwd`, so a missing
/// program is reported before anything runs. Names with a `/` resolve against `cwd`.
pub fn find_program(program: &str, path_var: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_executable = |candidate: &Path| {
        candidate
            .metadata()
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let candidate = cwd.join(program);
        return is_executable(&candidate).then_some(candidate);
    }
    path_var?
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(inputs: &str) -> Plan {
        kiln_schema::plan_from_str(&format!(
            r#"{{"version":1,"name":"x","inputs":{inputs},"phases":[{{"name":"a","steps":[]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn base_env_is_clean_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("bin")).unwrap();
        let input = dir.path().display().to_string();
        let plan = plan(&format!(r#"{{"tool":"{input}","nobin":"/nonexistent"}}"#));
        let paths = BuildPaths {
            build_top: "/build".into(),
            outputs: BTreeMap::from([("out".into(), "/o".into())]),
            cores: 3,
        };
        let caller = BTreeMap::from([
            ("SECRET".to_owned(), "x".to_owned()),
            ("TMPDIR".to_owned(), "/tmp/nix".to_owned()),
        ]);
        let env = values(&base_env(&plan, &paths, &caller, &DependencyEnv::default()));
        assert_eq!(env.get("SECRET"), None);
        assert_eq!(env["TMPDIR"], "/tmp/nix");
        assert_eq!(env["TEMP"], "/build");
        assert_eq!(env["HOME"], HOMELESS);
        assert_eq!(env["NIX_BUILD_CORES"], "3");
        assert_eq!(env["out"], "/o");
        assert_eq!(env["PATH"], format!("{input}/bin"));
    }

    #[test]
    fn finds_programs_on_path_only_when_executable() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        fs_err::write(&tool, "").unwrap();
        let path_var = dir.path().display().to_string();
        assert_eq!(find_program("tool", Some(&path_var), Path::new("/")), None);
        fs_err::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find_program("tool", Some(&path_var), Path::new("/")),
            Some(tool)
        );
        assert_eq!(find_program("tool", None, Path::new("/")), None);
        use std::os::unix::fs::PermissionsExt;
    }
}
