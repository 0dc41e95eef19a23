//! `fixup`: stdenv's fixupPhase for every output, its output roles and output checks. The same
//! type is the preset's `fixup` option.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{for_each_key, NameCheck, StepFields};
use crate::error::{PlanError, PlanErrorKind, Problems};
use crate::path::JsonPath;
use crate::plan::enabled_by_default;
use crate::reference::visit_list;
use crate::roles::REMOVE;
use crate::validate::PlanOutputs;

/// stdenv's fixupPhase, for every output. Every knob defaults to stdenv's behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FixupStep {
    /// Move `man`, `doc`, `info` (or the `forceShare` list) of `out` under `share` (stdenv's
    /// move-docs.sh).
    #[serde(default = "enabled_by_default")]
    pub move_docs: bool,
    /// Move `lib64` into `lib` (`dontMoveLib64` turns it off).
    #[serde(default = "enabled_by_default")]
    pub move_lib64: bool,
    /// Move `sbin` into `bin` (`dontMoveSbin` turns it off).
    #[serde(default = "enabled_by_default")]
    pub move_sbin: bool,
    /// With several outputs, move files to `dev`, `man`, `doc`, … like stdenv's
    /// multiple-outputs.sh.
    #[serde(default = "enabled_by_default")]
    pub split_outputs: bool,
    /// Rewrite `#!` lines to interpreters found on `PATH` (`dontPatchShebangs` turns it off).
    #[serde(default = "enabled_by_default")]
    pub patch_shebangs: bool,
    /// Strip debug symbols from ELF files with the `strip` found on `PATH` (`dontStrip`).
    #[serde(default = "enabled_by_default")]
    pub strip: bool,
    /// Remove RPATH entries that provide no needed library (`patchelf --shrink-rpath`).
    #[serde(default = "enabled_by_default")]
    pub shrink_rpath: bool,
    /// gzip man pages deterministically (`dontGzipMan`).
    #[serde(default = "enabled_by_default")]
    pub compress_man: bool,
    /// Empty `dependency_libs` in libtool `.la` files (`dontPruneLibtoolFiles`).
    #[serde(default = "enabled_by_default")]
    pub prune_libtool_files: bool,
    /// Turn absolute symlinks within an output into relative ones.
    #[serde(default = "enabled_by_default")]
    pub make_symlinks_relative: bool,
    /// Fail on dangling symlinks.
    #[serde(default = "enabled_by_default")]
    pub check_broken_symlinks: bool,
    /// Fail when a file refers to the build directory (stdenv's audit-tmpdir.sh).
    #[serde(default = "enabled_by_default")]
    pub audit_tmpdir: bool,
    /// Per output: allowed / disallowed references and a maximum size (Nix's `outputChecks`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_checks: BTreeMap<String, OutputCheck>,
    /// Directories, relative to each output, whose ELF files lose their debug symbols
    /// (stdenv's `stripDebugList`). Default: `lib lib32 lib64 libexec bin sbin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_debug_list: Option<Vec<String>>,
    /// `strip` flags for them (`stripDebugFlags`). Default: `-S -p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_debug_flags: Option<Vec<String>>,
    /// Directories whose ELF files lose all symbols (`stripAllList`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_all_list: Option<Vec<String>>,
    /// `strip` flags for them (`stripAllFlags`). Default: `-s -p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_all_flags: Option<Vec<String>>,
    /// Shell patterns (`*`, `?`, `[...]`) of files never stripped, matched against a file's base
    /// name or, after the output's path, its whole path (`stripExclude`). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strip_exclude: Vec<String>,
    /// Before stripping, copy the debug info of every ELF file with a build ID to
    /// `lib/debug/.build-id/XX/YYYY.debug` of the `debug` output (`out` when there is none),
    /// as nixpkgs' `separateDebugInfo`. Default: off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub separate_debug_info: bool,
    /// The directories of `out` moved under `share` (`forceShare`). Default: `man doc info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_share: Option<Vec<String>>,
    /// With several outputs, the output each kind of file goes to, where the plan sets it
    /// (stdenv's `outputDev`, `outputBin`, …). Unset roles follow stdenv's defaults, which build
    /// on the roles set here (`man` falls back to `bin`).
    #[serde(default, skip_serializing_if = "OutputRoles::is_empty")]
    pub output_roles: OutputRoles,
    /// With several outputs, move `include`, pkg-config, CMake and aclocal files to the `dev`
    /// role's output (stdenv's `moveToDev`). Default: on.
    #[serde(default = "enabled_by_default")]
    pub move_to_dev: bool,
    /// With several outputs, the outputs the `dev` role's output propagates through
    /// `nix-support/propagated-build-inputs` (`propagatedBuildOutputs`). Default: the `bin`,
    /// `include` and `lib` roles' outputs other than `dev`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagated_build_outputs: Option<Vec<String>>,
}

/// Output roles a plan sets (see [`FixupStep::output_roles`]). Each value MUST name one of the
/// plan's outputs; `devdoc` may also be `REMOVE` (delete what it would receive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputRoles {
    /// pkg-config, CMake and aclocal files, and the propagation files (`outputDev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Programs (`outputBin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Headers (`outputInclude`; default: the `dev` role's output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    /// Libraries (`outputLib`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lib: Option<String>,
    /// `share/doc` (`outputDoc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// `share/gtk-doc`, `share/devhelp/books` (`outputDevdoc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devdoc: Option<String>,
    /// `share/man` (`outputMan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub man: Option<String>,
    /// `share/man/man3` (`outputDevman`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devman: Option<String>,
    /// `share/info` (`outputInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

impl OutputRoles {
    /// Whether no role is set.
    pub fn is_empty(&self) -> bool {
        *self == OutputRoles::default()
    }

    /// The roles that are set: (field name, output name), in declaration order.
    pub fn set(&self) -> Vec<(&'static str, &str)> {
        [
            ("dev", &self.dev),
            ("bin", &self.bin),
            ("include", &self.include),
            ("lib", &self.lib),
            ("doc", &self.doc),
            ("devdoc", &self.devdoc),
            ("man", &self.man),
            ("devman", &self.devman),
            ("info", &self.info),
        ]
        .into_iter()
        .filter_map(|(role, name)| name.as_deref().map(|name| (role, name)))
        .collect()
    }
}

impl Default for FixupStep {
    fn default() -> Self {
        FixupStep {
            move_docs: true,
            move_lib64: true,
            move_sbin: true,
            split_outputs: true,
            patch_shebangs: true,
            strip: true,
            shrink_rpath: true,
            compress_man: true,
            prune_libtool_files: true,
            make_symlinks_relative: true,
            check_broken_symlinks: true,
            audit_tmpdir: true,
            output_checks: BTreeMap::new(),
            strip_debug_list: None,
            strip_debug_flags: None,
            strip_all_list: None,
            strip_all_flags: None,
            strip_exclude: Vec::new(),
            separate_debug_info: false,
            force_share: None,
            output_roles: OutputRoles::default(),
            move_to_dev: true,
            propagated_build_outputs: None,
        }
    }
}

/// Checks on one output, after fixup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputCheck {
    /// Store paths the output may refer to (all others fail); absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_references: Option<Vec<String>>,
    /// Store paths the output must not refer to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disallowed_references: Vec<String>,
    /// Largest allowed total size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

impl StepFields for FixupStep {
    fn for_each_name(&self, path: &dyn Fn() -> JsonPath, check: &mut NameCheck<'_>) {
        for_each_key(
            &self.output_checks,
            "output name",
            "outputChecks",
            path,
            check,
        );
    }

    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        for (output, check) in self.output_checks.iter_mut() {
            let item = path.key("outputChecks").key(output);
            if let Some(allowed) = &mut check.allowed_references {
                visit_list(allowed, &item.key("allowedReferences"), visit);
            }
            visit_list(
                &mut check.disallowed_references,
                &item.key("disallowedReferences"),
                visit,
            );
        }
    }

    /// The output roles and `propagatedBuildOutputs` name outputs of the plan; the `dev` role,
    /// when set, is where `propagate` records (setup.sh writes the propagated inputs and the dev
    /// output's siblings into one file of `${!outputDev}`).
    fn check_outputs(&self, path: &JsonPath, outputs: &PlanOutputs<'_>, errors: &mut Problems) {
        for (role, name) in self.output_roles.set() {
            let remove = role == "devdoc" && name == REMOVE;
            if !remove && !outputs.has(name) {
                errors.push_with(|| outputs.unknown(name, path.key("outputRoles").key(role)));
            }
        }
        for (index, name) in self.propagated_build_outputs.iter().flatten().enumerate() {
            if !outputs.has(name) {
                errors.push_with(|| {
                    outputs.unknown(name, path.key("propagatedBuildOutputs").index(index))
                });
            }
        }
        if let (Some(dev), true) = (&self.output_roles.dev, outputs.propagates) {
            if outputs.has(dev) && outputs.propagated_to != Some(dev.as_str()) {
                errors.push(PlanError::new(
                    path.key("outputRoles").key("dev"),
                    PlanErrorKind::PropagateElsewhere {
                        dev: dev.clone(),
                        output: outputs.propagated_to.unwrap_or_default().to_owned(),
                    },
                ));
            }
        }
    }
}
