//! Loading a plan: from a plan file, or from Nix's `.attrs.json` (`__structuredAttrs`).
//!
//! Under Nix the plan is the derivation attribute `kiln`; the output paths come from the
//! attribute `outputs` (name → store path). Nix ≤ 2.14 points `NIX_ATTRS_JSON_FILE` at a path
//! outside the sandbox, so [`attrs_json_path`] falls back to `$NIX_BUILD_TOP/.attrs.json`.
//! A derivation without a `kiln` attribute is a stdenv-style one: its attributes are translated
//! into a plan by [`kiln_stdenv::translate`], and [`LoadedPlan::stdenv`] keeps the report (where
//! each phase and step came from, shell hooks, warnings).
//!
//! Both files are read as bytes and parsed with [`kiln_schema::parse::from_slice`]: text that is
//! not UTF-8 is an invalid plan ([`LoadError::Invalid`], exit code 2) located by line, column and
//! byte offset, not a file kiln cannot read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_schema::{JsonPath, Plan, PlanError, PlanErrorKind};
use thiserror::Error;

/// The attribute of `.attrs.json` that holds the plan.
pub const PLAN_ATTRIBUTE: &str = "kiln";

/// A plan read from disk, before validation.
#[derive(Debug, Clone)]
pub struct LoadedPlan {
    /// The parsed plan.
    pub plan: Plan,
    /// Output name → path, when the source fixes them (`.attrs.json`).
    pub outputs: Option<BTreeMap<String, PathBuf>>,
    /// Where the plan sits in its document (`kiln` in `.attrs.json`, the root in a plan file);
    /// error paths from validation are relative to it.
    pub prefix: JsonPath,
    /// The file it came from.
    pub file: PathBuf,
    /// Which part of a split build this derivation is (`kilnSplit` in `.attrs.json`).
    pub split: Option<kiln_schema::split::SplitPart>,
    /// For a derivation without a `kiln` attribute: how its stdenv attributes were translated
    /// (for `kiln plan` and the build log, see [`kiln_stdenv::Report::messages`]).
    pub stdenv: Option<kiln_stdenv::Report>,
}

/// Why a plan could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A dependency's propagation file or hook is unreadable or invalid.
    #[error(transparent)]
    Dependency(#[from] crate::setup::deps::DepsError),
    /// The file is not a valid plan.
    #[error("invalid plan in `{}`", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Every problem found.
        #[source]
        errors: kiln_schema::PlanErrors,
    },
}

impl LoadError {
    /// The documented exit code: an invalid plan or dependency hook is invalid input (2); a
    /// file that cannot be read is a set-up failure (3).
    pub fn exit_code(&self) -> i32 {
        use kiln_schema::exit_codes;
        match self {
            LoadError::Invalid { .. } => exit_codes::INVALID_INPUT,
            LoadError::Read { .. } => exit_codes::SETUP_FAILED,
            LoadError::Dependency(crate::setup::deps::DepsError::InvalidHook { .. }) => {
                exit_codes::INVALID_INPUT
            }
            LoadError::Dependency(crate::setup::deps::DepsError::Read { .. }) => {
                exit_codes::SETUP_FAILED
            }
        }
    }
}

impl LoadError {
    fn invalid(file: &Path, error: PlanError) -> LoadError {
        LoadError::Invalid {
            file: file.to_owned(),
            errors: error.into(),
        }
    }
}

/// Reads a plan file (JSON).
pub fn load_plan_file(path: &Path) -> Result<LoadedPlan, LoadError> {
    let bytes = read(path)?;
    let plan =
        kiln_schema::plan_from_slice(&bytes).map_err(|error| LoadError::invalid(path, error))?;
    Ok(LoadedPlan {
        plan,
        outputs: None,
        prefix: JsonPath::root(),
        file: path.to_owned(),
        split: None,
        stdenv: None,
    })
}

/// Reads the plan and the outputs from a `.attrs.json` file written by Nix.
///
/// The plan's `name` defaults to the derivation's `name`.
pub fn load_attrs_file(path: &Path) -> Result<LoadedPlan, LoadError> {
    let bytes = read(path)?;
    let mut attrs: serde_json::Map<String, serde_json::Value> =
        kiln_schema::parse::from_slice(&bytes).map_err(|error| LoadError::invalid(path, error))?;
    let prefix = JsonPath::root().key(PLAN_ATTRIBUTE);
    let outputs = match attrs.get("outputs") {
        // A derivation's own attributes (`nix show-derivation`'s `__json`) list the names only;
        // outside Nix kiln chooses the paths, so that is enough for `kiln build --attrs`.
        Some(serde_json::Value::Array(names)) if names.iter().all(|n| n.is_string()) => {
            let outputs: BTreeMap<String, PathBuf> = names
                .iter()
                .filter_map(|name| name.as_str())
                .map(|name| (name.to_owned(), PathBuf::new()))
                .collect();
            if let Some(name) = outputs
                .keys()
                .find(|name| !kiln_schema::validate::is_valid_reference_name(name))
            {
                return Err(LoadError::invalid(
                    path,
                    PlanError::new(
                        JsonPath::root().key("outputs"),
                        PlanErrorKind::InvalidName {
                            what: "output name",
                            name: name.clone(),
                        },
                    ),
                ));
            }
            Some(outputs)
        }
        Some(outputs) => {
            let outputs: BTreeMap<String, PathBuf> =
                kiln_schema::parse::from_value(outputs.clone(), &JsonPath::root().key("outputs"))
                    .map_err(|error| LoadError::invalid(path, error))?;
            if let Some(name) = outputs
                .keys()
                .find(|name| !kiln_schema::validate::is_valid_reference_name(name))
            {
                return Err(LoadError::invalid(
                    path,
                    PlanError::new(
                        JsonPath::root().key("outputs").key(name.clone()),
                        PlanErrorKind::InvalidName {
                            what: "output name",
                            name: name.clone(),
                        },
                    ),
                ));
            }
            Some(outputs)
        }
        None => None,
    };
    if outputs.is_none() {
        return Err(LoadError::invalid(
            path,
            PlanError::new(
                JsonPath::root().key("outputs"),
                PlanErrorKind::Shape {
                    message: "`.attrs.json` has no `outputs` (Nix always writes them)".to_owned(),
                },
            ),
        ));
    }
    let split_attribute = kiln_schema::split::SPLIT_ATTRIBUTE;
    let Some(mut plan_value) = attrs.remove(PLAN_ATTRIBUTE) else {
        // No plan: a stdenv-style derivation. Its error paths and plan are the attributes'.
        let without_split: serde_json::Map<String, serde_json::Value> = attrs
            .iter()
            .filter(|(name, _)| *name != split_attribute)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let options = kiln_stdenv::TranslateOptions {
            is_executable: &is_executable,
        };
        let translation =
            kiln_stdenv::translate(&serde_json::Value::Object(without_split), &options).map_err(
                |errors| LoadError::Invalid {
                    file: path.to_owned(),
                    errors: errors.into_plan_errors(),
                },
            )?;
        let split = match attrs.remove(split_attribute) {
            Some(value) => Some(
                kiln_schema::parse::from_value(value, &JsonPath::root().key(split_attribute))
                    .map_err(|error| LoadError::invalid(path, error))?,
            ),
            None => None,
        };
        return Ok(LoadedPlan {
            plan: translation.plan,
            outputs,
            prefix: JsonPath::root(),
            file: path.to_owned(),
            split,
            stdenv: Some(translation.report),
        });
    };
    if let (serde_json::Value::Object(plan), Some(name)) = (&mut plan_value, attrs.get("name")) {
        plan.entry("name").or_insert_with(|| name.clone());
    }
    let plan = kiln_schema::plan_from_value(plan_value, &prefix)
        .map_err(|error| LoadError::invalid(path, error))?;
    let split = match attrs.remove(split_attribute) {
        Some(value) => Some(
            kiln_schema::parse::from_value(value, &JsonPath::root().key(split_attribute))
                .map_err(|error| LoadError::invalid(path, error))?,
        ),
        None => None,
    };
    Ok(LoadedPlan {
        plan,
        outputs,
        prefix,
        file: path.to_owned(),
        split,
        stdenv: None,
    })
}

/// Whether `path` is a file someone may execute (for finding a shell among the inputs).
fn is_executable(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Where `.attrs.json` is: `NIX_ATTRS_JSON_FILE` when that file exists, else
/// `$NIX_BUILD_TOP/.attrs.json` (Nix ≤ 2.14 sets the variable to a host path).
pub fn attrs_json_path(attrs_file_var: Option<&str>, build_top: &Path) -> PathBuf {
    if let Some(path) = attrs_file_var.map(PathBuf::from) {
        if path.is_file() {
            return path;
        }
    }
    build_top.join(".attrs.json")
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_may_list_output_names_as_a_derivation_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attrs.json");
        std::fs::write(
            &path,
            r#"{"name":"h","outputs":["out","dev"],"kiln":{"version":1,"outputs":["out","dev"],"phases":[]}}"#,
        )
        .unwrap();
        let loaded = load_attrs_file(&path).unwrap();
        let outputs = loaded.outputs.unwrap();
        assert_eq!(outputs.keys().collect::<Vec<_>>(), ["dev", "out"]);
        assert!(outputs.values().all(|path| path.as_os_str().is_empty()));
    }

    #[test]
    fn attrs_give_plan_outputs_and_default_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".attrs.json");
        fs_err::write(
            &file,
            r#"{"name":"hello","outputs":{"out":"/nix/store/x-hello"},
                "kiln":{"version":1,"phases":[{"name":"b","steps":[]}]}}"#,
        )
        .unwrap();
        let loaded = load_attrs_file(&file).unwrap();
        assert_eq!(loaded.plan.name, "hello");
        assert_eq!(
            loaded.outputs.unwrap()["out"],
            PathBuf::from("/nix/store/x-hello")
        );
    }

    #[test]
    fn attrs_errors_are_prefixed_with_the_attribute() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".attrs.json");
        fs_err::write(
            &file,
            r#"{"name":"h","outputs":{"out":"/nix/store/x-h"},"kiln":{"version":1,"phase":[]}}"#,
        )
        .unwrap();
        let LoadError::Invalid { errors, .. } = load_attrs_file(&file).unwrap_err() else {
            panic!("expected an invalid plan");
        };
        assert_eq!(errors.0[0].path.to_string(), "kiln.phase");
    }

    #[test]
    fn attrs_without_a_plan_are_translated_from_stdenv_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".attrs.json");
        fs_err::write(
            &file,
            r#"{"name":"hello-2.10","outputs":{"out":"/nix/store/x-hello"},
                "src":"/nix/store/y-hello.tar.gz","doCheck":true}"#,
        )
        .unwrap();
        let loaded = load_attrs_file(&file).unwrap();
        assert_eq!(loaded.plan.name, "hello-2.10");
        let check = loaded
            .plan
            .phases
            .iter()
            .find(|p| p.name == "check")
            .unwrap();
        assert!(check.enabled);
        let report = loaded.stdenv.unwrap();
        assert_eq!(report.build_system, "autotools");
        assert_eq!(report.provenance[4].switch, ["doCheck"]);
    }

    #[test]
    fn stdenv_shell_code_is_an_invalid_plan_naming_the_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".attrs.json");
        fs_err::write(
            &file,
            r#"{"name":"h","outputs":{"out":"/nix/store/x-h"},"src":"/nix/store/y",
                "preConfigure":"autoreconf","postInstall":"rm x"}"#,
        )
        .unwrap();
        let LoadError::Invalid { errors, .. } = load_attrs_file(&file).unwrap_err() else {
            panic!("expected an invalid plan");
        };
        assert_eq!(errors.0.len(), 1);
        let message = errors.0[0].to_string();
        assert!(message.contains("`postInstall`"), "{message}");
        assert!(message.contains("`preConfigure`"), "{message}");
        assert!(errors.0[0].hint().unwrap().contains("kilnAllowShell"));
    }

    #[test]
    fn text_that_is_not_utf8_is_an_invalid_plan_with_its_location() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        fs_err::write(&plan, b"{\"version\":1,\n \"name\":\"h\xe9llo\"}").unwrap();
        let attrs = dir.path().join(".attrs.json");
        fs_err::write(&attrs, b"{\"name\":\"\xff\"}").unwrap();
        for (file, loaded, location, offset) in [
            (&plan, load_plan_file(&plan), (2, 11), 24),
            (&attrs, load_attrs_file(&attrs), (1, 10), 9),
        ] {
            let Err(LoadError::Invalid { errors, .. }) = loaded else {
                panic!("{}: expected an invalid plan", file.display());
            };
            assert_eq!(errors.0[0].location, Some(location));
            assert_eq!(errors.0[0].kind, PlanErrorKind::NotUtf8 { offset });
        }
    }

    #[test]
    fn attrs_path_falls_back_to_build_top() {
        let top = Path::new("/build");
        assert_eq!(
            attrs_json_path(Some("/does/not/exist"), top),
            PathBuf::from("/build/.attrs.json")
        );
        assert_eq!(
            attrs_json_path(None, top),
            PathBuf::from("/build/.attrs.json")
        );
    }
}
