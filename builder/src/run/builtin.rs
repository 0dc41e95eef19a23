//! Built-in steps that need the runtime: `configure` and `make` argv construction (stdenv's
//! automatic flags), and the bridges to `kiln-archive` (unpack), `kiln-patch` and `kiln-fixup`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use kiln_schema::{
    AutoPatchelfStep, ConfigureStep, FixupStep, MakeStep, PatchShebangsStep, PatchStep, UnpackStep,
};
use thiserror::Error;

/// Why a built-in step failed.
#[derive(Debug, Error)]
pub enum BuiltinError {
    /// The configure script is missing.
    #[error("configure script `{}` does not exist", path.display())]
    MissingConfigureScript {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The configure script could not be read (to detect its options).
    #[error("cannot read configure script `{}`", path.display())]
    ReadConfigureScript {
        /// The script.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Unpacking failed.
    #[error(transparent)]
    Unpack(#[from] kiln_archive::UnpackError),
    /// Patching failed.
    #[error(transparent)]
    Patch(#[from] kiln_patch::PatchError),
    /// Fixup failed.
    #[error(transparent)]
    Fixup(#[from] kiln_fixup::FixupError),
    /// A quilt series file not named `series` (quilt and dpkg-source read only that name), once
    /// `.` and `..` are resolved.
    #[error("quilt series file `{}` is not named `series`", path.display())]
    SeriesName {
        /// The file.
        path: PathBuf,
    },
    /// An output directory could not be created for splitting.
    #[error("cannot create output directory `{}`", path.display())]
    CreateOutput {
        /// The output.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An output failed its checks (references or size).
    #[error("output checks failed")]
    OutputChecks(#[source] kiln_fixup::StepError),
    /// Patching ELF files (`autoPatchelf`) failed.
    #[error(transparent)]
    AutoPatchelf(kiln_fixup::StepError),
    /// The outputs refer to each other in a loop (Nix could not register them).
    #[error(transparent)]
    OutputCycle(kiln_fixup::StepError),
    /// Patching `#!` lines (`patchShebangs`) failed.
    #[error(transparent)]
    PatchShebangs(kiln_fixup::StepError),
}

impl BuiltinError {
    /// What the user can do about it, when the step can tell.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuiltinError::Unpack(error) => error.hint(),
            BuiltinError::Patch(error) => error.hint(),
            BuiltinError::OutputCycle(_) => Some(
                "move the file that makes one of these references to the other output (in a \
                 stdenv-style derivation: `outputDev`, `outputLib`, …; in a plan: the fixup \
                 step's `outputRoles` or a `copy`/`remove` step), or merge the two outputs"
                    .to_owned(),
            ),
            BuiltinError::MissingConfigureScript { .. } => Some(
                "set the preset's `configureScript`, or generate it in a phase before (e.g. `autoreconf`)"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// The argv of a `configure` step, with stdenv's automatic flags in stdenv's order:
/// `--disable-static` and `--disable-dependency-tracking` when the script mentions them, then
/// the prefix flag, then the step's flags.
pub fn configure_argv(step: &ConfigureStep, script: &Path) -> Result<Vec<String>, BuiltinError> {
    if !script.is_file() {
        return Err(BuiltinError::MissingConfigureScript {
            path: script.to_owned(),
        });
    }
    let text = std::fs::read(script).map_err(|source| BuiltinError::ReadConfigureScript {
        path: script.to_owned(),
        source,
    })?;
    let mentions = |needle: &[u8]| text.windows(needle.len()).any(|window| window == needle);
    let mut argv = vec![step.script.clone()];
    if step.disable_static && mentions(b"enable-static") {
        argv.push("--disable-static".to_owned());
    }
    if step.disable_dependency_tracking && mentions(b"dependency-tracking") {
        argv.push("--disable-dependency-tracking".to_owned());
    }
    if let Some(prefix) = &step.prefix {
        argv.push(format!("{}{prefix}", step.prefix_key));
    }
    argv.extend(step.flags.iter().cloned());
    Ok(argv)
}

/// `make [-f FILE] [-jN -lN] EXTRA... FLAGS... TARGETS...`, as stdenv's build, check and install
/// phases call it.
pub fn make_argv(
    step: &MakeStep,
    cores: &str,
    extra: &[String],
    targets: &[String],
) -> Vec<String> {
    let mut argv = vec!["make".to_owned()];
    if let Some(makefile) = &step.makefile {
        argv.push("-f".to_owned());
        argv.push(makefile.clone());
    }
    if step.parallel {
        argv.push(format!("-j{cores}"));
        argv.push(format!("-l{cores}"));
    }
    argv.extend(extra.iter().cloned());
    argv.extend(step.flags.iter().cloned());
    argv.extend(targets.iter().cloned());
    argv
}

/// What an unpack changed.
#[derive(Debug, Default)]
pub struct UnpackOutcome {
    /// The new working directory (the source root), when the step set one.
    pub source_root: Option<PathBuf>,
    /// The newest mtime among the sources, to raise `SOURCE_DATE_EPOCH` to.
    pub newest_mtime: Option<i64>,
}

/// Unpacks the step's sources relative to `cwd`: into `cwd` with stdenv's source-root rule, or
/// into `into` as they are.
pub fn unpack(step: &UnpackStep, cwd: &Path) -> Result<UnpackOutcome, BuiltinError> {
    let sources: Vec<PathBuf> = step.srcs.iter().map(|src| cwd.join(src)).collect();
    match &step.into {
        Some(into) => {
            let into = cwd.join(into);
            let options = kiln_archive::ExtractOptions::merge_usr(step.merge_usr);
            for source in &sources {
                kiln_archive::unpack_one_with(source, &into, &options)?;
            }
            Ok(UnpackOutcome::default())
        }
        None => {
            let options = kiln_archive::UnpackOptions {
                source_root: step.source_root.clone(),
            };
            let unpacked = kiln_archive::unpack_sources(&sources, cwd, &options)?;
            Ok(UnpackOutcome {
                source_root: Some(unpacked.source_root),
                newest_mtime: unpacked.newest_mtime,
            })
        }
    }
}

/// Runs an `autoPatchelf` step (paths relative to `cwd`); returns a line saying how many files
/// it rewrote.
pub fn auto_patchelf(step: &AutoPatchelfStep, cwd: &Path) -> Result<String, BuiltinError> {
    let paths: Vec<PathBuf> = step.paths.iter().map(|path| cwd.join(path)).collect();
    let options = kiln_fixup::patchelf::AutoPatchelfOptions {
        interpreter: step.interpreter.as_ref().map(|path| cwd.join(path)),
        search_path: step.search_path.iter().map(|dir| cwd.join(dir)).collect(),
        ignore_missing: step.ignore_missing.clone(),
        exclude: step.exclude.iter().map(|path| cwd.join(path)).collect(),
    };
    let outcome = kiln_fixup::patchelf::auto_patchelf(&paths, &options)
        .map_err(BuiltinError::AutoPatchelf)?;
    Ok(format!(
        "patched the interpreter or RUNPATH of {} ELF file{}",
        outcome.changed.len(),
        if outcome.changed.len() == 1 { "" } else { "s" }
    ))
}

/// Runs a `patchShebangs` step (paths relative to `cwd`, interpreters from the step
/// environment's `PATH`); returns a line saying how many scripts it rewrote, and the warnings
/// (interpreters found nowhere).
pub fn patch_shebangs(
    step: &PatchShebangsStep,
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<(String, Vec<String>), BuiltinError> {
    let paths: Vec<PathBuf> = step.paths.iter().map(|path| cwd.join(path)).collect();
    let path_dirs = search_path(env);
    let store_dir = store_dir(env);
    let outcome = kiln_fixup::shebangs::patch_shebangs_paths(&paths, &path_dirs, &store_dir)
        .map_err(BuiltinError::PatchShebangs)?;
    let warnings = outcome
        .warnings
        .iter()
        .map(|warning| format!("{}: {}", warning.path.display(), warning.message))
        .collect();
    Ok((
        format!(
            "patched the interpreter of {} script{}",
            outcome.changed.len(),
            if outcome.changed.len() == 1 { "" } else { "s" }
        ),
        warnings,
    ))
}

/// The directories of `PATH` in the build environment.
fn search_path(env: &BTreeMap<String, String>) -> Vec<PathBuf> {
    env.get("PATH")
        .map(|path| {
            path.split(':')
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The store directory (`NIX_STORE`, default `/nix/store`).
fn store_dir(env: &BTreeMap<String, String>) -> PathBuf {
    env.get("NIX_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/nix/store"))
}

/// Applies the step's patches in `cwd`, then the patches of its quilt `series`; returns a line
/// per patch applied.
///
/// # The series and the source tree
///
/// The plan names the series (`debian/patches/series`) and is trusted; the directories between
/// the working directory and the series come with the source and are not: a tree whose
/// `debian` is a symlink must not hand kiln a series and patches from wherever it points. So
/// the series path is split into a base the plan chose and the rest, which
/// [`kiln_patch::read_quilt_series_under`] walks from the base one component at a time without
/// following any symlink (a refusal names the symlink, relative to the base):
///
/// - A relative path is below `cwd` (the source root once `unpack` ran): the base is `cwd`.
///   Leading `..` components are the plan's choice to leave the working directory (a `debian/`
///   unpacked next to the source root: `../debian/patches/series`), so the base is `cwd/..`
///   (once per `..`) and the rest is checked as above. A `..` after a name cancels the name
///   lexically (`debian/../debian/patches/series` is `debian/patches/series`), so it never
///   walks through what the tree put there.
/// - An absolute path below `cwd` (`${build.top}/hello-2.10/debian/patches/series` while in
///   `hello-2.10`) is taken as the relative path after `cwd`, with the same checks.
/// - Any other absolute path names something outside the working directory (typically an
///   input: `${inputs.debian}/patches/series`). It is the plan's and trusted whole, like a
///   path in `patches`: symlinks on it (a `result` link) are followed, and its directory is
///   the base.
///
/// In every case the series' entries are confined to its directory by kiln-patch (relative,
/// no `..`, no symlink, regular files). A series file that does not exist, or whose directory
/// does not, means no patches from it and is said in the returned lines; only a file named
/// `series` is read.
pub fn patch(step: &PatchStep, cwd: &Path) -> Result<Vec<String>, BuiltinError> {
    let mut patches: Vec<(PathBuf, kiln_patch::PatchOptions)> = step
        .patches
        .iter()
        .map(|patch| {
            let options = kiln_patch::PatchOptions { strip: step.strip };
            (cwd.join(patch), options)
        })
        .collect();
    let mut messages = Vec::new();
    if let Some(series) = &step.series {
        let named = cwd.join(series);
        let Some((base, patches_dir)) = series_place(Path::new(series), cwd) else {
            return Err(BuiltinError::SeriesName { path: named });
        };
        match kiln_patch::read_quilt_series_under(&base, &patches_dir)? {
            Some(listed) => patches.extend(listed),
            None => messages.push(format!(
                "no series file `{}`: no patches from it",
                named.display()
            )),
        }
    }
    for (patch, options) in patches {
        let report = kiln_patch::apply_patch_file(&patch, cwd, &options)?;
        let files: Vec<String> = report
            .files
            .iter()
            .map(|file| file.path.display().to_string())
            .collect();
        messages.push(format!(
            "applied `{}` (-p{}): {}",
            patch.display(),
            options.strip,
            files.join(", ")
        ));
    }
    Ok(messages)
}

/// Where the quilt series `series` (as the plan names it, relative to `cwd` or absolute) lies:
/// the base directory the plan chose and the series' directory relative to it, to be walked
/// without following symlinks; see [`patch`]. `None` when its last component is not `series`.
fn series_place(series: &Path, cwd: &Path) -> Option<(PathBuf, PathBuf)> {
    let (base, rest) = if series.is_absolute() {
        match series.strip_prefix(cwd) {
            Ok(below) => lexical(below, cwd),
            // Outside the working directory: the plan's path, trusted whole.
            Err(_) => (
                series.parent()?.to_owned(),
                PathBuf::from(series.file_name()?),
            ),
        }
    } else {
        lexical(series, cwd)
    };
    if rest.file_name()? != "series" {
        return None;
    }
    Some((base, rest.parent()?.to_owned()))
}

/// `relative` under `cwd` as a base and a path of names only: each leading `..` moves the base
/// up (`cwd/..`), a `..` after a name cancels the name, `.` is dropped.
fn lexical(relative: &Path, cwd: &Path) -> (PathBuf, PathBuf) {
    let mut base = cwd.to_owned();
    let mut names: Vec<&std::ffi::OsStr> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::ParentDir => {
                if names.pop().is_none() {
                    base.push("..");
                }
            }
            // `relative` is relative: neither appears.
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (base, names.iter().collect())
}

/// What the fixup of the outputs needs from the build.
pub struct FixupInputs<'a> {
    /// Output name → path.
    pub outputs: &'a BTreeMap<String, PathBuf>,
    /// The build directory (audited for references).
    pub build_top: &'a Path,
    /// The build environment (`PATH` for interpreters and `strip`, `NIX_BUILD_CORES`).
    pub env: &'a BTreeMap<String, String>,
    /// The plan's input paths: the references output checks can recognise.
    pub inputs: &'a [PathBuf],
}

/// Runs stdenv's fixup on every output, then the output checks; returns warnings and a
/// summary line per output.
pub fn fixup(step: &FixupStep, inputs: &FixupInputs<'_>) -> Result<Vec<String>, BuiltinError> {
    let path_dirs = search_path(inputs.env);
    let jobs = inputs
        .env
        .get("NIX_BUILD_CORES")
        .and_then(|cores| cores.parse().ok())
        .unwrap_or(1);
    let store_dir = store_dir(inputs.env);
    // Splitting moves files into outputs the install did not create (`dev`, `man`, …), so with
    // several outputs each missing one starts empty; one still empty afterwards is removed again
    // and reported missing later, as Nix would. With one output, a missing one is not fixed up.
    let splitting = step.split_outputs && inputs.outputs.len() > 1;
    // The roles first: a plan whose roles name no output fails before any output is made.
    let multiple = if splitting {
        let names = inputs.outputs.keys().map(String::as_str);
        let mut multiple = kiln_fixup::MultipleOutputs::stdenv_with(names, &step.output_roles)
            .map_err(|source| {
                BuiltinError::Fixup(kiln_fixup::FixupError::Hook {
                    output: String::new(),
                    step: kiln_fixup::FixupHook::SplitOutputs,
                    source,
                })
            })?;
        multiple.move_to_dev = step.move_to_dev;
        multiple
            .propagated_build_outputs
            .clone_from(&step.propagated_build_outputs);
        Some(multiple)
    } else {
        None
    };
    let mut created = Vec::new();
    if splitting {
        for path in inputs.outputs.values() {
            if std::fs::symlink_metadata(path).is_err() {
                std::fs::create_dir_all(path).map_err(|source| BuiltinError::CreateOutput {
                    path: path.clone(),
                    source,
                })?;
                created.push(path.clone());
            }
        }
    }
    // separate-debug-info.sh makes its destination even when there is nothing to separate
    // ("in case there is nothing to strip, don't fail the build"): it stays, empty or not.
    if step.separate_debug_info {
        if let Some(path) = inputs.outputs.get("debug") {
            std::fs::create_dir_all(path).map_err(|source| BuiltinError::CreateOutput {
                path: path.clone(),
                source,
            })?;
            created.retain(|made| made != path);
        }
    }
    let outputs: BTreeMap<String, PathBuf> = inputs
        .outputs
        .iter()
        .filter(|(_, path)| std::fs::symlink_metadata(path).is_ok())
        .map(|(name, path)| (name.clone(), path.clone()))
        .collect();
    let context = kiln_fixup::FixupContext {
        outputs,
        build_top: inputs.build_top.to_owned(),
        path_dirs,
        store_dir,
        jobs,
    };
    let defaults = kiln_fixup::FixupOptions::default();
    let options = kiln_fixup::FixupOptions {
        move_docs: step.move_docs,
        force_share: step.force_share.clone().unwrap_or(defaults.force_share),
        shrink_rpath: step.shrink_rpath,
        audit_tmpdir: step.audit_tmpdir,
        compress_man: step.compress_man,
        move_lib64: step.move_lib64,
        move_sbin: step.move_sbin,
        patch_shebangs: step.patch_shebangs,
        prune_libtool_files: step.prune_libtool_files,
        separate_debug_info: step.separate_debug_info,
        strip: step.strip,
        strip_options: strip_options(step),
        check_broken_symlinks: step.check_broken_symlinks,
        make_symlinks_relative: step.make_symlinks_relative,
        ..defaults
    };
    let reports = kiln_fixup::fixup(&context, &options, multiple.as_ref());
    for path in &created {
        // `remove_dir` only removes an empty directory: one that received files stays.
        let _ = std::fs::remove_dir(path);
    }
    let reports = reports?;
    let mut messages = Vec::new();
    for report in &reports {
        for (step, warning) in report.warnings() {
            messages.push(format!(
                "fixup of `{}`: {step}: {}: {}",
                report.output,
                warning.path.display(),
                warning.message
            ));
        }
    }
    if !step.output_checks.is_empty() {
        let checks: BTreeMap<String, kiln_fixup::checks::OutputChecks> = step
            .output_checks
            .iter()
            .map(|(name, check)| {
                let converted = kiln_fixup::checks::OutputChecks {
                    allowed_references: check.allowed_references.clone(),
                    disallowed_references: check.disallowed_references.clone(),
                    max_size: check.max_size,
                };
                (name.clone(), converted)
            })
            .collect();
        kiln_fixup::checks::check_outputs(&context, &checks, inputs.inputs)
            .map_err(BuiltinError::OutputChecks)?;
    }
    kiln_fixup::cycles::check_output_cycles(&context.outputs, &context.store_dir)
        .map_err(BuiltinError::OutputCycle)?;
    Ok(messages)
}

/// What the fixup strips and how: stdenv's defaults, with the step's lists and flags on top.
fn strip_options(step: &kiln_schema::FixupStep) -> kiln_fixup::StripOptions {
    let defaults = kiln_fixup::StripOptions::default();
    kiln_fixup::StripOptions {
        debug_list: step.strip_debug_list.clone().unwrap_or(defaults.debug_list),
        debug_flags: step
            .strip_debug_flags
            .clone()
            .unwrap_or(defaults.debug_flags),
        all_list: step.strip_all_list.clone().unwrap_or(defaults.all_list),
        all_flags: step.strip_all_flags.clone().unwrap_or(defaults.all_flags),
        exclude: step.strip_exclude.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strip_lists_default_to_stdenvs_and_take_the_steps() {
        let defaults = super::strip_options(&kiln_schema::FixupStep::default());
        assert_eq!(defaults, kiln_fixup::StripOptions::default());
        let step = kiln_schema::FixupStep {
            strip_debug_list: Some(vec!["bin".to_owned()]),
            strip_all_list: Some(vec!["libexec".to_owned()]),
            ..kiln_schema::FixupStep::default()
        };
        let options = super::strip_options(&step);
        assert_eq!(options.debug_list, ["bin"]);
        assert_eq!(options.all_list, ["libexec"]);
        assert_eq!(options.debug_flags, defaults.debug_flags);
    }

    use super::*;

    #[test]
    fn configure_flags_follow_stdenv() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("configure");
        std::fs::write(&script, "--enable-static --disable-dependency-tracking").unwrap();
        let step: ConfigureStep =
            serde_json::from_str(r#"{"prefix":"/out","flags":["--with-x"]}"#).unwrap();
        assert_eq!(
            configure_argv(&step, &script).unwrap(),
            [
                "./configure",
                "--disable-static",
                "--disable-dependency-tracking",
                "--prefix=/out",
                "--with-x"
            ]
        );
        std::fs::write(&script, "plain").unwrap();
        assert_eq!(
            configure_argv(&step, &script).unwrap(),
            ["./configure", "--prefix=/out", "--with-x"]
        );
    }

    #[test]
    fn series_paths_split_into_the_plans_base_and_the_trees_part() {
        let cwd = Path::new("/build/src");
        let place = |series: &str| series_place(Path::new(series), cwd);
        let split = |base: &str, dir: &str| Some((PathBuf::from(base), PathBuf::from(dir)));
        assert_eq!(
            place("debian/patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(
            place("./debian/./patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(place("series"), split("/build/src", ""));
        assert_eq!(
            place("debian/../debian/patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(
            place("../../debian/patches/series"),
            split("/build/src/../..", "debian/patches")
        );
        assert_eq!(
            place("/build/src/debian/patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(
            place("/build/src/../debian/patches/series"),
            split("/build/src/..", "debian/patches")
        );
        assert_eq!(
            place("/nix/store/x-debian/patches/series"),
            split("/nix/store/x-debian/patches", "")
        );
        for bad in [
            "debian/patches/00list",
            "debian/patches/series/..",
            "..",
            "",
            "/",
        ] {
            assert_eq!(place(bad), None, "{bad}");
        }
    }

    #[test]
    fn make_argv_has_parallelism_and_targets() {
        let step: MakeStep = serde_json::from_str(r#"{"flags":["V=1"]}"#).unwrap();
        assert_eq!(
            make_argv(&step, "4", &[], &["install".to_owned()]),
            ["make", "-j4", "-l4", "V=1", "install"]
        );
    }
}
