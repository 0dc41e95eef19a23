//! stdenv's `fixupPhase` in Rust: the post-install fixes nixpkgs applies to every output —
//! shrinking RPATHs, stripping, patching `#!` lines, compressing man pages, moving `lib64`,
//! `sbin` and docs, pruning libtool files, making symlinks relative — plus the checks that fail
//! a build (broken symlinks, references to the build directory, `outputChecks`).
//!
//! Each step lives in its own module, whose documentation names the nixpkgs hook it replaces
//! and how it differs. [`fixup_output`] runs the per-output steps on one output in stdenv's
//! order; [`fixup`] runs the whole phase over all outputs, including the multiple-outputs split
//! ([`outputs::split_outputs`]). [`checks::check_outputs`] applies `outputChecks` afterwards.
//!
//! The order, as stdenv's hooks are registered (`defaultNativeBuildInputs` sorted by file name,
//! patchelf's hook first):
//!
//! 1. `chmod -R u+w` of every output ([`moves::make_writable`])
//! 2. `preFixupHooks`: `_moveToShare` on `out` ([`moves::move_docs`]), `_multioutDocs` and
//!    `_multioutDevs` ([`outputs::split_outputs`], [`fixup`] only)
//! 3. `fixupOutputHooks`, per output: `_separateDebugInfo` when asked
//!    ([`debuginfo::separate_debug_info`]), `patchELF` ([`rpath::shrink_rpaths`]), `auditTmpdir`
//!    ([`audit::audit_tmpdir`]), `compressManPages` ([`man::compress_man_pages`]), `_moveLib64`
//!    ([`moves::move_lib64`]), `_moveSbin` ([`moves::move_sbin`]), `patchShebangsAuto`
//!    ([`shebangs::patch_shebangs`]), `_pruneLibtoolFiles` ([`libtool::prune_la_files`]),
//!    `_doStrip` ([`strip::strip_dir`])
//! 4. `postFixupHooks`: `noBrokenSymlinks` ([`symlinks::check_broken`]), `_makeSymlinksRelative`
//!    ([`symlinks::make_relative`]), `_multioutPropagateDev` ([`outputs::propagate_dev`],
//!    [`fixup`] only)
//!
//! Per-file work runs on a rayon pool of [`FixupContext::jobs`] threads; directories are walked
//! in bytewise-sorted order and reports list files in that order, so results do not depend on
//! scheduling. A step's public function called on its own uses the current rayon pool.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::os::unix::fs::PermissionsExt;
//!
//! let tmp = tempfile::tempdir().unwrap();
//! let out = tmp.path().join("out");
//! let tools = tmp.path().join("tools/bin");
//! std::fs::create_dir_all(out.join("bin")).unwrap();
//! std::fs::create_dir_all(&tools).unwrap();
//! // An interpreter to find, and a script that needs it.
//! std::fs::write(tools.join("sh"), "").unwrap();
//! std::fs::set_permissions(tools.join("sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
//! std::fs::write(out.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
//! std::fs::set_permissions(out.join("bin/hello"), std::fs::Permissions::from_mode(0o755)).unwrap();
//!
//! let ctx = kiln_fixup::FixupContext {
//!     outputs: BTreeMap::from([("out".to_owned(), out.clone())]),
//!     build_top: tmp.path().join("build"),
//!     path_dirs: vec![tools.clone()],
//!     store_dir: "/nix/store".into(),
//!     jobs: 2,
//! };
//! // This search path has no `strip`, so stripping is turned off (it would only warn).
//! let options = kiln_fixup::FixupOptions { strip: false, ..Default::default() };
//! let report = kiln_fixup::fixup_output("out", &out, &ctx, &options).unwrap();
//! assert!(report.warnings().next().is_none());
//! let script = std::fs::read_to_string(out.join("bin/hello")).unwrap();
//! assert_eq!(script, format!("#!{}/sh\necho hello\n", tools.display()));
//! ```

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod audit;
pub mod checks;
pub mod cycles;
pub mod debuginfo;
mod elf;
mod error;
mod fsx;
pub mod libtool;
pub mod man;
pub mod moves;
pub mod outputs;
pub mod patchelf;
pub mod rewrite;
pub mod rpath;
pub mod shebangs;
pub mod strip;
pub mod symlinks;
#[cfg(test)]
mod testutil;

pub use error::{BrokenSymlink, FixupError, FoundReference, StepError, TmpdirReference};
pub use outputs::{Destination, MultipleOutputs, Roles};
pub use strip::StripOptions;

/// Which fixup steps run, and their settings. [`Default`] is stdenv's default for each knob;
/// the stdenv attribute that turns a step off is named on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixupOptions {
    /// Add the owner's write bit everywhere first (`fixupPhase`'s `chmod -R u+w`).
    pub make_writable: bool,
    /// Move `man`, `doc`, `info` to `share/` in `out` (`move-docs.sh`).
    pub move_docs: bool,
    /// The directories [`Self::move_docs`] moves (`forceShare`, default `man doc info`).
    pub force_share: Vec<String>,
    /// Shrink RPATHs of ELF files (not `dontPatchELF`).
    pub shrink_rpath: bool,
    /// Fail on references to the build directory (not `noAuditTmpdir`).
    pub audit_tmpdir: bool,
    /// Check every script for the build directory, not only wrappers (stricter than stdenv;
    /// default off).
    pub audit_tmpdir_all_scripts: bool,
    /// Compress man pages (not `dontGzipMan`).
    pub compress_man: bool,
    /// Move `lib64/` into `lib/` (not `dontMoveLib64`).
    pub move_lib64: bool,
    /// Move `sbin/` into `bin/` (not `dontMoveSbin`).
    pub move_sbin: bool,
    /// Patch `#!` lines (not `dontPatchShebangs`).
    pub patch_shebangs: bool,
    /// Clear `dependency_libs` of libtool files (not `dontPruneLibtoolFiles`).
    pub prune_libtool_files: bool,
    /// Copy the debug info of ELF files into the `debug` output (`out` when there is none)
    /// before stripping (`separateDebugInfo`; default off).
    pub separate_debug_info: bool,
    /// Strip binaries (not `dontStrip`).
    pub strip: bool,
    /// What to strip and how (`stripDebugList`, `stripDebugFlags`, `stripAllList`,
    /// `stripAllFlags`).
    pub strip_options: StripOptions,
    /// Fail on dangling or reflexive symlinks (not `dontCheckForBrokenSymlinks`).
    pub check_broken_symlinks: bool,
    /// Make absolute symlinks into the output relative (not `dontRewriteSymlinks`).
    pub make_symlinks_relative: bool,
}

impl Default for FixupOptions {
    fn default() -> Self {
        FixupOptions {
            make_writable: true,
            move_docs: true,
            force_share: ["man", "doc", "info"].map(str::to_owned).to_vec(),
            shrink_rpath: true,
            audit_tmpdir: true,
            audit_tmpdir_all_scripts: false,
            compress_man: true,
            move_lib64: true,
            move_sbin: true,
            patch_shebangs: true,
            prune_libtool_files: true,
            separate_debug_info: false,
            strip: true,
            strip_options: StripOptions::default(),
            check_broken_symlinks: true,
            make_symlinks_relative: true,
        }
    }
}

/// Where the build is and what it can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixupContext {
    /// Every output of the derivation, name to directory (`$out`, `$dev`, ...). Directories MUST
    /// be absolute.
    pub outputs: BTreeMap<String, PathBuf>,
    /// The build directory (`$NIX_BUILD_TOP`, which is `$TMPDIR` under Nix).
    pub build_top: PathBuf,
    /// Where to look for interpreters and for `strip` / `ranlib`, in order (stdenv: `HOST_PATH`).
    pub path_dirs: Vec<PathBuf>,
    /// The store directory, usually `/nix/store`; interpreters below it are left alone.
    pub store_dir: PathBuf,
    /// Worker threads for per-file work; `0` means one per available core.
    pub jobs: usize,
}

/// One of stdenv's fixup hooks as kiln runs it, named after what it does (`Display` gives the name used in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FixupHook {
    /// [`moves::make_writable`].
    MakeWritable,
    /// [`moves::move_docs`].
    MoveDocs,
    /// [`outputs::split_outputs`].
    SplitOutputs,
    /// [`debuginfo::separate_debug_info`].
    SeparateDebugInfo,
    /// [`rpath::shrink_rpaths`].
    ShrinkRpath,
    /// [`audit::audit_tmpdir`].
    AuditTmpdir,
    /// [`man::compress_man_pages`].
    CompressManPages,
    /// [`moves::move_lib64`].
    MoveLib64,
    /// [`moves::move_sbin`].
    MoveSbin,
    /// [`shebangs::patch_shebangs`].
    PatchShebangs,
    /// [`libtool::prune_la_files`].
    PruneLibtoolFiles,
    /// [`strip::strip_dir`].
    Strip,
    /// [`symlinks::check_broken`].
    CheckBrokenSymlinks,
    /// [`symlinks::make_relative`].
    MakeSymlinksRelative,
    /// [`outputs::propagate_dev`].
    PropagateDev,
}

impl std::fmt::Display for FixupHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FixupHook::MakeWritable => "make-writable",
            FixupHook::MoveDocs => "move-docs",
            FixupHook::SplitOutputs => "split-outputs",
            FixupHook::SeparateDebugInfo => "separate-debug-info",
            FixupHook::ShrinkRpath => "shrink-rpath",
            FixupHook::AuditTmpdir => "audit-tmpdir",
            FixupHook::CompressManPages => "compress-man-pages",
            FixupHook::MoveLib64 => "move-lib64",
            FixupHook::MoveSbin => "move-sbin",
            FixupHook::PatchShebangs => "patch-shebangs",
            FixupHook::PruneLibtoolFiles => "prune-libtool-files",
            FixupHook::Strip => "strip",
            FixupHook::CheckBrokenSymlinks => "check-broken-symlinks",
            FixupHook::MakeSymlinksRelative => "make-symlinks-relative",
            FixupHook::PropagateDev => "propagate-dev",
        })
    }
}

/// Something a step noticed but did not fail on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file (or output) concerned.
    pub path: PathBuf,
    /// What happened, lowercase, values in backticks.
    pub message: String,
}

/// What a step did: the paths it created or changed, in walk order, and its warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Paths created or changed.
    pub changed: Vec<PathBuf>,
    /// Warnings.
    pub warnings: Vec<Warning>,
}

impl Outcome {
    /// Appends another outcome's paths and warnings.
    pub fn extend(&mut self, other: Outcome) {
        self.changed.extend(other.changed);
        self.warnings.extend(other.warnings);
    }
}

/// One step that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The step.
    pub step: FixupHook,
    /// How long it took.
    pub elapsed: Duration,
    /// What it did.
    pub outcome: Outcome,
}

/// The steps run on one output, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixupReport {
    /// The output name.
    pub output: String,
    /// Each step that ran (steps turned off are absent).
    pub steps: Vec<StepReport>,
}

impl FixupReport {
    /// Every warning of every step, in order.
    pub fn warnings(&self) -> impl Iterator<Item = (FixupHook, &Warning)> {
        self.steps
            .iter()
            .flat_map(|step| step.outcome.warnings.iter().map(move |w| (step.step, w)))
    }

    /// The outcome of `step`, if it ran.
    pub fn outcome(&self, step: FixupHook) -> Option<&Outcome> {
        self.steps
            .iter()
            .find(|report| report.step == step)
            .map(|report| &report.outcome)
    }
}

fn pool(ctx: &FixupContext) -> Result<rayon::ThreadPool, FixupError> {
    let jobs = if ctx.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        ctx.jobs
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|index| format!("kiln-fixup-{index}"))
        .build()
        .map_err(|source| FixupError::ThreadPool { jobs, source })
}

/// Runs steps, recording each in a report and wrapping errors with the step and output.
struct Runner<'a> {
    report: FixupReport,
    output: &'a str,
}

impl Runner<'_> {
    fn run(
        &mut self,
        enabled: bool,
        step: FixupHook,
        f: impl FnOnce() -> Result<Outcome, StepError>,
    ) -> Result<(), FixupError> {
        if !enabled {
            return Ok(());
        }
        let started = Instant::now();
        let outcome = f().map_err(|source| FixupError::Hook {
            output: self.output.to_owned(),
            step,
            source,
        })?;
        self.report.steps.push(StepReport {
            step,
            elapsed: started.elapsed(),
            outcome,
        });
        Ok(())
    }
}

fn runner(output: &str) -> Runner<'_> {
    Runner {
        report: FixupReport {
            output: output.to_owned(),
            steps: Vec::new(),
        },
        output,
    }
}

/// Fixes up one output at `dir` (named `name`): every per-output step in stdenv's order (see
/// the crate documentation), including the write-bit fix first, `move-docs` when `name` is
/// `out`, and the post-fixup symlink steps last. Stops at the first failing step.
pub fn fixup_output(
    name: &str,
    dir: &Path,
    ctx: &FixupContext,
    options: &FixupOptions,
) -> Result<FixupReport, FixupError> {
    pool(ctx)?.install(|| {
        let mut run = runner(name);
        run.run(options.make_writable, FixupHook::MakeWritable, || {
            moves::make_writable(dir)
        })?;
        run.run(
            options.move_docs && name == "out",
            FixupHook::MoveDocs,
            || moves::move_docs(dir, &options.force_share),
        )?;
        fixup_output_hooks(&mut run, dir, ctx, options)?;
        post_fixup_hooks(&mut run, dir, options)?;
        Ok(run.report)
    })
}

/// `fixupOutputHooks`, in stdenv's order.
fn fixup_output_hooks(
    run: &mut Runner<'_>,
    dir: &Path,
    ctx: &FixupContext,
    options: &FixupOptions,
) -> Result<(), FixupError> {
    if !dir.exists() {
        return Ok(()); // stdenv's hooks check `-e "$prefix"`
    }
    // separate-debug-info.sh comes from the derivation's nativeBuildInputs, whose hooks stdenv
    // registers before those of its default inputs (setup.sh: "Default inputs must be
    // processed last").
    if options.separate_debug_info {
        let dest = ctx.outputs.get("debug").or_else(|| ctx.outputs.get("out"));
        if let Some(dest) = dest {
            run.run(true, FixupHook::SeparateDebugInfo, || {
                debuginfo::separate_debug_info(dir, dest, &ctx.path_dirs)
            })?;
        }
    }
    run.run(options.shrink_rpath, FixupHook::ShrinkRpath, || {
        rpath::shrink_rpaths(dir)
    })?;
    run.run(options.audit_tmpdir, FixupHook::AuditTmpdir, || {
        audit::audit_tmpdir(dir, &ctx.build_top, options.audit_tmpdir_all_scripts)
    })?;
    run.run(options.compress_man, FixupHook::CompressManPages, || {
        man::compress_man_pages(dir)
    })?;
    run.run(options.move_lib64, FixupHook::MoveLib64, || {
        moves::move_lib64(dir)
    })?;
    run.run(options.move_sbin, FixupHook::MoveSbin, || {
        moves::move_sbin(dir)
    })?;
    run.run(options.patch_shebangs, FixupHook::PatchShebangs, || {
        shebangs::patch_shebangs(dir, &ctx.path_dirs, &ctx.store_dir)
    })?;
    run.run(
        options.prune_libtool_files,
        FixupHook::PruneLibtoolFiles,
        || libtool::prune_la_files(dir),
    )?;
    run.run(options.strip, FixupHook::Strip, || {
        strip::strip_dir(dir, &options.strip_options, &ctx.path_dirs)
    })
}

/// The per-output `postFixupHooks`, in stdenv's order.
fn post_fixup_hooks(
    run: &mut Runner<'_>,
    dir: &Path,
    options: &FixupOptions,
) -> Result<(), FixupError> {
    if !dir.exists() {
        return Ok(());
    }
    run.run(
        options.check_broken_symlinks,
        FixupHook::CheckBrokenSymlinks,
        || symlinks::check_broken(dir),
    )?;
    run.run(
        options.make_symlinks_relative,
        FixupHook::MakeSymlinksRelative,
        || symlinks::make_relative(dir),
    )
}

/// The whole fixup phase over every output of `ctx`: write bits, `move-docs` on `out`, the
/// multiple-outputs split (if `multiple` is given), the per-output hooks on each output, then
/// the post-fixup steps on each output and the dev output's propagation file.
///
/// The split and propagation steps are recorded in the report of the first output (by name).
pub fn fixup(
    ctx: &FixupContext,
    options: &FixupOptions,
    multiple: Option<&MultipleOutputs>,
) -> Result<Vec<FixupReport>, FixupError> {
    pool(ctx)?.install(|| {
        let mut runs: Vec<(Runner<'_>, &PathBuf)> = ctx
            .outputs
            .iter()
            .map(|(name, dir)| (runner(name), dir))
            .collect();
        for (run, dir) in &mut runs {
            run.run(options.make_writable, FixupHook::MakeWritable, || {
                moves::make_writable(dir)
            })?;
        }
        for (run, dir) in &mut runs {
            run.run(
                options.move_docs && run.output == "out",
                FixupHook::MoveDocs,
                || moves::move_docs(dir, &options.force_share),
            )?;
        }
        if let (Some(multiple), Some((run, _))) = (multiple, runs.first_mut()) {
            run.run(true, FixupHook::SplitOutputs, || {
                outputs::split_outputs(ctx, multiple)
            })?;
        }
        for (run, dir) in &mut runs {
            fixup_output_hooks(run, dir, ctx, options)?;
        }
        for (run, dir) in &mut runs {
            post_fixup_hooks(run, dir, options)?;
        }
        if let (Some(multiple), Some((run, _))) = (multiple, runs.first_mut()) {
            run.run(true, FixupHook::PropagateDev, || {
                outputs::propagate_dev(ctx, multiple)
            })?;
        }
        Ok(runs.into_iter().map(|(run, _)| run.report).collect())
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::testutil::{
        greet_library, greet_program, search_paths, section_names, symlink, write,
    };

    fn context(root: &Path, outputs: &[&str]) -> FixupContext {
        let tools = root.join("tools/bin");
        for name in ["bash", "env", "sh"] {
            write(&tools.join(name), "", 0o755);
        }
        FixupContext {
            outputs: outputs
                .iter()
                .map(|name| ((*name).to_owned(), root.join(name)))
                .collect(),
            build_top: root.join("build"),
            path_dirs: vec![tools, PathBuf::from("/usr/bin")],
            store_dir: root.join("store"),
            jobs: 2,
        }
    }

    #[test]
    fn fixup_output_runs_every_step_in_stdenv_order() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path(), &["out"]);
        let out = ctx.outputs["out"].clone();
        let lib = out.join("lib");
        greet_library(&lib);
        let rpath = format!("-Wl,-rpath,/useless:{}", lib.display());
        greet_program(&out.join("bin/hello"), &lib, &[&rpath]);
        write(
            &out.join("sbin/tool"),
            "#!/usr/bin/env -S bash -e\ntrue\n",
            0o555,
        );
        write(
            &out.join("lib64/libx.la"),
            "# Generated by libtool\nold_library=''\ndependency_libs='-lz'\n",
            0o644,
        );
        write(&out.join("man/man1/hello.1"), ".TH HELLO 1\n", 0o644);
        symlink(lib.join("libgreet.so"), &out.join("lib/libgreet.so.1"));

        let report = fixup_output("out", &out, &ctx, &FixupOptions::default()).unwrap();

        let steps: Vec<FixupHook> = report.steps.iter().map(|s| s.step).collect();
        assert_eq!(
            steps,
            [
                FixupHook::MakeWritable,
                FixupHook::MoveDocs,
                FixupHook::ShrinkRpath,
                FixupHook::AuditTmpdir,
                FixupHook::CompressManPages,
                FixupHook::MoveLib64,
                FixupHook::MoveSbin,
                FixupHook::PatchShebangs,
                FixupHook::PruneLibtoolFiles,
                FixupHook::Strip,
                FixupHook::CheckBrokenSymlinks,
                FixupHook::MakeSymlinksRelative,
            ]
        );
        assert_eq!(
            report.warnings().count(),
            0,
            "{:?}",
            report.warnings().collect::<Vec<_>>()
        );
        assert_eq!(
            search_paths(&out.join("bin/hello")).1,
            [lib.display().to_string()]
        );
        assert!(!section_names(&out.join("bin/hello"))
            .iter()
            .any(|name| name.starts_with(".debug_")));
        let tools = ctx.path_dirs[0].display();
        assert_eq!(
            fs::read_to_string(out.join("bin/tool")).unwrap(),
            format!("#!{tools}/env -S {tools}/bash -e\ntrue\n")
        );
        assert_eq!(fs::read_link(out.join("sbin")).unwrap(), Path::new("bin"));
        assert_eq!(
            fs::read_to_string(out.join("lib/libx.la")).unwrap(),
            "# Generated by libtool\nold_library=''\ndependency_libs='' #pruned\n"
        );
        assert!(out.join("share/man/man1/hello.1.gz").is_file());
        assert_eq!(
            fs::read_link(out.join("lib/libgreet.so.1")).unwrap(),
            Path::new("libgreet.so")
        );
        assert_eq!(
            report.outcome(FixupHook::MoveSbin).unwrap().changed,
            [out.join("bin/tool"), out.join("sbin")]
        );
    }

    #[test]
    fn a_failing_step_names_itself_and_the_output() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path(), &["out"]);
        let out = ctx.outputs["out"].clone();
        symlink("nowhere", &out.join("bin/dangling"));
        let err = fixup_output("out", &out, &ctx, &FixupOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fixup step `check-broken-symlinks` failed for output `out`"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.starts_with("1 broken symlink(s) in "), "{source}");
        let options = FixupOptions {
            check_broken_symlinks: false,
            ..FixupOptions::default()
        };
        fixup_output("out", &out, &ctx, &options).unwrap();
    }

    #[test]
    fn fixup_splits_outputs_then_fixes_each() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path(), &["dev", "man", "out"]);
        let (out, dev, man) = (
            &ctx.outputs["out"],
            &ctx.outputs["dev"],
            &ctx.outputs["man"],
        );
        write(&out.join("include/x.h"), "", 0o644);
        write(&out.join("share/man/man1/x.1"), ".TH X 1\n", 0o644);
        write(&out.join("bin/x-config"), "#!/bin/sh\necho\n", 0o755);
        let mut multiple = MultipleOutputs::stdenv_defaults(["dev", "man", "out"]).unwrap();
        multiple
            .extra_moves
            .push(("bin/*-config".into(), Destination::Output("dev".into())));

        let reports = fixup(&ctx, &FixupOptions::default(), Some(&multiple)).unwrap();

        let names: Vec<_> = reports.iter().map(|r| &r.output[..]).collect();
        assert_eq!(names, ["dev", "man", "out"]);
        assert!(reports[0].outcome(FixupHook::SplitOutputs).is_some());
        assert!(dev.join("include/x.h").is_file());
        assert!(man.join("share/man/man1/x.1.gz").is_file());
        assert_eq!(
            crate::testutil::first_line(&dev.join("bin/x-config")),
            format!("#!{}/sh", ctx.path_dirs[0].display())
        );
        assert_eq!(
            fs::read_to_string(dev.join("nix-support/propagated-build-inputs")).unwrap(),
            format!(" {}", out.display())
        );
        assert!(!out.join("include").exists());
    }
}
