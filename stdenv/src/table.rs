//! The attribute table: every stdenv attribute kiln knows, what kiln does with it, and why.
//!
//! [`ATTRIBUTES`] is the single source of truth for three things: the translator reads only
//! attributes listed here as translated ([`Status::Supported`], [`Status::Differently`]), refuses
//! the ones marked [`Status::Unsupported`] when they hold a non-empty value, and treats
//! [`Status::Shell`] ones as shell code; and [`render_markdown`] turns it into
//! `docs/stdenv-attributes.md` (a test fails when the checked-in file differs).

/// What kind of value an attribute holds, as Nix writes it into `.attrs.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A boolean switch (stdenv: any non-empty value is true).
    Bool,
    /// A string (numbers are accepted and written out).
    String,
    /// A list of strings (a string is split on whitespace, like stdenv without structured
    /// attributes).
    List,
    /// A store path.
    Path,
    /// A list of store paths.
    Paths,
    /// An object (e.g. `env`, `outputChecks`).
    Object,
    /// Anything: the attribute is never read.
    Any,
}

/// Where an attribute belongs, for the generated documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Nix's own attributes and kiln's.
    Derivation,
    /// Sources and patches.
    Sources,
    /// The phase list and the phase switches.
    Phases,
    /// `configurePhase` and the build-system hooks.
    Configure,
    /// `buildPhase`, `checkPhase`, `installPhase`, `installCheckPhase`, `distPhase`.
    Make,
    /// Outputs.
    Outputs,
    /// Dependencies.
    Dependencies,
    /// `fixupPhase` and output checks.
    Fixup,
    /// Shell code.
    Shell,
}

impl Category {
    /// Every category, in documentation order.
    pub const ALL: &'static [Category] = &[
        Category::Derivation,
        Category::Sources,
        Category::Phases,
        Category::Configure,
        Category::Make,
        Category::Outputs,
        Category::Dependencies,
        Category::Fixup,
        Category::Shell,
    ];

    /// The section title.
    pub fn title(self) -> &'static str {
        match self {
            Category::Derivation => "Derivation and kiln",
            Category::Sources => "Sources and patches",
            Category::Phases => "Phases",
            Category::Configure => "Configure and build-system hooks",
            Category::Make => "Build, check, install",
            Category::Outputs => "Outputs",
            Category::Dependencies => "Dependencies",
            Category::Fixup => "Fixup and output checks",
            Category::Shell => "Shell code",
        }
    }
}

/// What kiln does with an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Translated to the same behaviour; the text says into what.
    Supported(&'static str),
    /// Translated, with a difference the text states.
    Differently(&'static str),
    /// Accepted and without effect on the build; the text says why that is right.
    Ignored(&'static str),
    /// Refused when it holds a non-empty value (an empty list or string, `false` and `null`
    /// are accepted); the text says why and what to write instead.
    Unsupported(&'static str),
    /// Shell code: refused unless `kilnAllowShell = true`; the text names the typed step that
    /// replaces it.
    Shell(&'static str),
}

impl Status {
    /// The word shown in the table.
    pub fn label(self) -> &'static str {
        match self {
            Status::Supported(_) => "supported",
            Status::Differently(_) => "supported differently",
            Status::Ignored(_) => "ignored",
            Status::Unsupported(_) => "not supported",
            Status::Shell(_) => "shell code",
        }
    }

    /// The explanation.
    pub fn text(self) -> &'static str {
        match self {
            Status::Supported(text)
            | Status::Differently(text)
            | Status::Ignored(text)
            | Status::Unsupported(text)
            | Status::Shell(text) => text,
        }
    }

    /// Whether the translator reads the attribute.
    pub fn is_translated(self) -> bool {
        matches!(self, Status::Supported(_) | Status::Differently(_))
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    /// The attribute name, as in nixpkgs.
    pub name: &'static str,
    /// Its section.
    pub category: Category,
    /// The value it holds.
    pub kind: Kind,
    /// What kiln does with it.
    pub status: Status,
}

const fn row(name: &'static str, category: Category, kind: Kind, status: Status) -> Attribute {
    Attribute {
        name,
        category,
        kind,
        status,
    }
}

use Category as C;
use Kind as K;
use Status as S;

const HOOK: &str = "a phase of typed steps inserted with `edits` before or after the phase \
                    (`run`, `substitute`, `write`, …)";
const CROSS: &str = "a cross-compilation dependency kind; kiln builds natively: use \
                     `nativeBuildInputs` or `buildInputs`";

/// Every attribute kiln knows, by category.
pub const ATTRIBUTES: &[Attribute] = &[
    // --- Derivation and kiln -------------------------------------------------------------------
    row("name", C::Derivation, K::String, S::Supported("the plan's `name`")),
    row("pname", C::Derivation, K::String, S::Supported("given to shell hooks as `$pname`; the plan's name is `name`")),
    row("version", C::Derivation, K::String, S::Supported("given to shell hooks as `$version`; the plan's name is `name`")),
    row("system", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("builder", C::Derivation, K::Any, S::Ignored("read by Nix: the kiln binary")),
    row("args", C::Derivation, K::Any, S::Ignored("read by Nix: kiln takes no arguments as a builder")),
    row("__structuredAttrs", C::Derivation, K::Any, S::Ignored("read by Nix; MUST be true, or there is no `.attrs.json`")),
    row("env", C::Derivation, K::Object, S::Supported("the plan's `env` (strings taken literally: a `${` is not a kiln reference); it overrides kiln's stdenv defaults")),
    row("kilnAllowShell", C::Derivation, K::Bool, S::Supported("kiln's opt-in: run shell-code attributes through a shell from the inputs (see *Shell code*)")),
    row("kilnShell", C::Derivation, K::String, S::Supported("kiln's: the shell for shell-code attributes (an absolute path); default the first `bin/bash`, else `bin/sh`, of `nativeBuildInputs`, `propagatedNativeBuildInputs`, `buildInputs`, `propagatedBuildInputs`")),
    row("kilnEdits", C::Derivation, K::Any, S::Supported("kiln's typed additions: a plan's `edits` (`before`/`after` a phase insert a phase of typed steps, `replace` or `delete` one), applied to the translated phases (`unpack`, `patch`, `configure`, `build`, `check`, `install`, `fixup`, `installCheck`, `dist`) and validated like a plan's; `kiln plan` shows the phases they add with the provenance `kilnEdits[i]`")),
    row("kilnSplit", C::Derivation, K::Any, S::Ignored("kiln's split-mode attribute, read by the loader")),
    row("meta", C::Derivation, K::Any, S::Ignored("metadata; never part of a build")),
    row("passthru", C::Derivation, K::Any, S::Ignored("evaluation-time only")),
    row("shellHook", C::Derivation, K::Any, S::Ignored("run by `nix-shell` only, never by a build (as in stdenv)")),
    row("preferLocalBuild", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("allowSubstitutes", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("requiredSystemFeatures", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("impureEnvVars", C::Derivation, K::Any, S::Ignored("read by Nix (fixed-output derivations)")),
    row("outputHash", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("outputHashAlgo", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("outputHashMode", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("exportReferencesGraph", C::Derivation, K::Any, S::Ignored("read by Nix, which writes the files into the build directory")),
    row("__ignoreNulls", C::Derivation, K::Any, S::Ignored("read by Nix")),
    row("strictDeps", C::Derivation, K::Bool, S::Supported("`deps.strict`: only `nativeBuildInputs` put their `bin` on `PATH`")),
    row("passAsFile", C::Derivation, K::List, S::Unsupported("with `__structuredAttrs` Nix writes no such files; read the value from `env` or an input")),
    row("hardeningDisable", C::Derivation, K::List, S::Supported("removed from `NIX_HARDENING_ENABLE` (nixpkgs' default set; `all` removes every flag), which kiln's compiler wrapper applies (the stage-0 toolchain's `cc`, see docs/toolchain.md)")),
    row("hardeningEnable", C::Derivation, K::List, S::Supported("added to `NIX_HARDENING_ENABLE` (e.g. `pie`)")),
    row("NIX_DEBUG", C::Derivation, K::Any, S::Differently("ignored: use `nix-build -vv` (kiln's steps at level 5) or `kiln plan`")),
    // --- Sources and patches ------------------------------------------------------------------
    row("src", C::Sources, K::Path, S::Supported("input `src`; the `unpack` step of phase `unpack`")),
    row("srcs", C::Sources, K::Paths, S::Supported("input `srcs` (a list); the `unpack` step unpacks each in order (used instead of `src`, as in stdenv)")),
    row("sourceRoot", C::Sources, K::String, S::Supported("the `unpack` step's `sourceRoot`")),
    row("dontUnpack", C::Sources, K::Bool, S::Supported("phase `unpack` disabled")),
    row("dontMakeSourcesWritable", C::Sources, K::Bool, S::Differently("accepted; kiln's `unpack` always makes the sources writable")),
    row("setSourceRoot", C::Sources, K::String, S::Unsupported("shell code run inside stdenv's unpack phase; set `sourceRoot` instead")),
    row("unpackCmd", C::Sources, K::String, S::Unsupported("shell code run for each source; kiln's `unpack` reads tar (gz, bz2, xz, zst), zip, compressed files and directories itself: set `dontUnpack` and unpack in a phase of `run` steps")),
    row("patches", C::Sources, K::Paths, S::Supported("the `patch` step (plain, gzip, bzip2 or xz, applied in-process in order)")),
    row("patchFlags", C::Sources, K::List, S::Differently("only `-pN` (default `-p1`) is understood, as the `patch` step's `strip`; any other flag is refused")),
    row("dontPatch", C::Sources, K::Bool, S::Supported("phase `patch` disabled")),
    // --- Phases -------------------------------------------------------------------------------
    row("phases", C::Phases, K::List, S::Supported("the phase list, in order (`unpackPhase` is phase `unpack`, …; other names are shell-code attributes)")),
    row("prePhases", C::Phases, K::List, S::Supported("phases (shell-code attributes) before `unpack`")),
    row("preConfigurePhases", C::Phases, K::List, S::Supported("phases (shell-code attributes) before `configure`")),
    row("preBuildPhases", C::Phases, K::List, S::Supported("phases (shell-code attributes) before `build`")),
    row("preInstallPhases", C::Phases, K::List, S::Supported("phases (shell-code attributes) before `install`")),
    row("preFixupPhases", C::Phases, K::List, S::Supported("phases (shell-code attributes) before `fixup`")),
    row("preDistPhases", C::Phases, K::List, S::Supported("phases (shell-code attributes) before `dist`")),
    row("postPhases", C::Phases, K::List, S::Supported("phases (shell-code attributes) at the end")),
    row("dontConfigure", C::Phases, K::Bool, S::Supported("phase `configure` disabled")),
    row("dontBuild", C::Phases, K::Bool, S::Supported("phase `build` disabled")),
    row("doCheck", C::Phases, K::Bool, S::Supported("phase `check` enabled (off by default, as in stdenv)")),
    row("dontInstall", C::Phases, K::Bool, S::Supported("phase `install` disabled")),
    row("dontFixup", C::Phases, K::Bool, S::Supported("phase `fixup` disabled")),
    row("doInstallCheck", C::Phases, K::Bool, S::Supported("phase `installCheck` enabled (after `fixup`, as in stdenv)")),
    row("doDist", C::Phases, K::Bool, S::Unsupported("stdenv's distPhase copies `*.tar.gz` by glob, which kiln's `copy` step does not do: add a phase with a `make` step and `copy` steps naming the tarballs")),
    row("distTarget", C::Phases, K::String, S::Unsupported("used by distPhase only (see `doDist`)")),
    row("distFlags", C::Phases, K::List, S::Unsupported("used by distPhase only (see `doDist`)")),
    row("tarballs", C::Phases, K::List, S::Unsupported("used by distPhase only (see `doDist`)")),
    row("dontCopyDist", C::Phases, K::Bool, S::Unsupported("used by distPhase only (see `doDist`)")),
    // --- Configure ----------------------------------------------------------------------------
    row("configureScript", C::Configure, K::String, S::Supported("the `configure` step's `script`")),
    row("configureFlags", C::Configure, K::List, S::Supported("the `configure` step's `flags`, after the automatic ones (`--disable-static`, `--disable-dependency-tracking` when the script mentions them, `--prefix=`, the output directories), in stdenv's order")),
    row("prefix", C::Configure, K::String, S::Supported("the `configure` step's `prefix` and the directory the install phase creates; default `$out`")),
    row("prefixKey", C::Configure, K::String, S::Supported("the `configure` step's `prefixKey` (default `--prefix=`)")),
    row("dontAddPrefix", C::Configure, K::Bool, S::Supported("no prefix flag (`configure` step without `prefix`; no `-DCMAKE_INSTALL_PREFIX`/`--prefix` for CMake and Meson)")),
    row("dontAddDisableDepTrack", C::Configure, K::Bool, S::Supported("the `configure` step's `disableDependencyTracking: false`")),
    row("dontDisableStatic", C::Configure, K::Bool, S::Supported("the `configure` step's `disableStatic: false`")),
    row("dontFixLibtool", C::Configure, K::Bool, S::Differently("accepted; kiln never edits `ltmain.sh` or `/usr/bin/file` in configure scripts (stdenv's fixLibtool)")),
    row("configurePlatforms", C::Configure, K::List, S::Unsupported("`--build`/`--host`/`--target` flags are for cross-compilation; kiln builds natively (the empty default is accepted)")),
    row("cmakeFlags", C::Configure, K::List, S::Differently("selects the CMake build (as `cmake` in `nativeBuildInputs` does in nixpkgs): phase `configure` is nixpkgs' cmake hook (`mkdir -p build`, `cmake ..` in it with the hook's flags, then `cmakeFlags`); build, check and install are stdenv's make phases in `build/`. Stated differences: no `-DCMAKE_C_COMPILER=`/`CXX`/`AR`/`RANLIB`/`STRIP` (they name nixpkgs' cc-wrapper; CMake finds the tools on `PATH`), `-DCMAKE_SKIP_BUILD_RPATH=ON` before `cmakeFlags` (no linker wrapper adds `-rpath $out/lib`, so ld takes `LD_RUN_PATH`), the doc directory's name is `shareDocName`, else `pname` (the hook first reads `project()` from CMakeLists.txt), no `fixCmakeFiles` rewriting of `/usr` and `/opt`")),
    row("mesonFlags", C::Configure, K::List, S::Differently("selects the Meson build (as `meson` in `nativeBuildInputs` does in nixpkgs): nixpkgs' meson hook (`meson setup build` with `--prefix`, the output directory flags, `-Dauto_features`, `-Dwrap_mode=nodownload`, `--buildtype`, then `mesonFlags`; `meson test`, `meson install`) and ninja hook (`ninja -jN`). Stated differences: `LDFLAGS=-Wl,-rpath,$lib/lib` on `meson setup` unless `env` sets `LDFLAGS` (kiln's stand-in for the linker wrapper's self-rpath), and no `--max-lines=1000000` on `meson test` (newer hooks pass it; Meson before 1.5 refuses it)")),
    row("mesonAutoFeatures", C::Configure, K::String, S::Supported("`-Dauto_features=` (default `enabled`, also for an empty string, as nixpkgs' meson hook)")),
    row("dontUseCmakeConfigure", C::Configure, K::Bool, S::Supported("the cmake hook's configurePhase is not used, even with `cmake` in `nativeBuildInputs` or `cmakeFlags`: stdenv's generic configure (the `configure` step) and make phases, in the source root")),
    row("dontUseMesonConfigure", C::Configure, K::Bool, S::Differently("the meson hook's phases are not used: stdenv's generic configure (the `configure` step) and make phases, in the source root (with `ninja` in `nativeBuildInputs`, nixpkgs' ninja hook would still build with ninja)")),
    row("cmakeBuildType", C::Configure, K::String, S::Supported("`-DCMAKE_BUILD_TYPE=` (default `Release`, as nixpkgs' cmake hook)")),
    row("mesonBuildType", C::Configure, K::String, S::Supported("`--buildtype=` (default `plain`, as nixpkgs' meson hook)")),
    row("configureFlagsArray", C::Configure, K::Any, S::Unsupported("a bash array set by shell hooks; use `configureFlags`")),
    // --- Build, check, install ----------------------------------------------------------------
    row("makefile", C::Make, K::String, S::Supported("`make -f FILE` in every `make` step")),
    row("makeFlags", C::Make, K::List, S::Supported("flags of every `make` step (build, check, install, installCheck); not given to ninja or meson (their hooks do not read it)")),
    row("buildFlags", C::Make, K::List, S::Supported("flags of the build `make` step, after `makeFlags` (not given to ninja: use `ninjaFlags`)")),
    row("enableParallelBuilding", C::Make, K::Bool, S::Differently("the build step's `parallel`: kiln passes `-jN -lN` to make where stdenv passes `-jN`; off by default, on for CMake and Meson builds (as their nixpkgs hooks do); ninja gets `-jN` or `-j1`")),
    row("checkFlags", C::Make, K::List, S::Supported("flags of the check `make` step, after `makeFlags`; default `VERBOSE=y` (stdenv's default); not given to `meson test` (use `mesonCheckFlags`)")),
    row("checkTarget", C::Make, K::String, S::Supported("the check `make` step's target; without it, the first of `check`, `test` that `make -n` accepts, else the phase does nothing (stdenv's detection); the meson hook's check phase ignores it")),
    row("enableParallelChecking", C::Make, K::Bool, S::Supported("the check and installCheck steps' `parallel`; default `enableParallelBuilding` (as make-derivation.nix); for Meson's `ninja meson-test-prereq` and CMake's `CTEST_PARALLEL_LEVEL` default on (the hooks' `${enableParallelChecking-1}`)")),
    row("installFlags", C::Make, K::List, S::Supported("flags of the install `make` step, after `makeFlags` (and, with several outputs and configure running, stdenv's `pkgconfigdir=`/`m4datadir=`/`aclocaldir=` flags first); not given to `meson install` (use `mesonInstallFlags`)")),
    row("installTargets", C::Make, K::List, S::Supported("the install `make` step's targets; default `install` (`meson install` takes none)")),
    row("enableParallelInstalling", C::Make, K::Bool, S::Supported("the install step's `parallel`; default `enableParallelBuilding` (as make-derivation.nix)")),
    row("installCheckTarget", C::Make, K::String, S::Supported("the installCheck step's target; without it `installcheck` when `make -n` accepts it, else nothing (stdenv's detection); with Meson (ninja built, no Makefile) stdenv's installCheckPhase runs nothing, so neither does kiln's")),
    row("installCheckFlags", C::Make, K::List, S::Supported("flags of the installCheck step, after `makeFlags`")),
    row("ninjaFlags", C::Make, K::List, S::Supported("flags of every ninja call of a Meson build (build, `meson-test-prereq`), after `-jN`, as nixpkgs' ninja hook")),
    row("mesonCheckFlags", C::Make, K::List, S::Supported("flags of `meson test`, before `--timeout-multiplier=0`, as nixpkgs' meson hook")),
    row("mesonInstallFlags", C::Make, K::List, S::Supported("flags of `meson install --no-rebuild`, as nixpkgs' meson hook")),
    row("makeFlagsArray", C::Make, K::Any, S::Unsupported("a bash array set by shell hooks; use `makeFlags`")),
    row("buildFlagsArray", C::Make, K::Any, S::Unsupported("a bash array set by shell hooks; use `buildFlags`")),
    row("checkFlagsArray", C::Make, K::Any, S::Unsupported("a bash array set by shell hooks; use `checkFlags`")),
    row("installFlagsArray", C::Make, K::Any, S::Unsupported("a bash array set by shell hooks; use `installFlags`")),
    // --- Outputs ------------------------------------------------------------------------------
    row("outputs", C::Outputs, K::Any, S::Supported("the plan's outputs (Nix writes their paths); with several, the fixup moves files between them like multiple-outputs.sh")),
    row("setOutputFlags", C::Outputs, K::Bool, S::Differently("with several outputs (default on) and configure running, autotools gets stdenv's `--bindir=`, `--includedir=`, `--libdir=`, … flags and install flags (the CMake and Meson hooks ignore it and always pass their directory flags); `--docdir` uses `shareDocName` or the name without its version (stdenv first reads `PACKAGE_TARNAME` from the configure script)")),
    row("shareDocName", C::Outputs, K::String, S::Supported("the directory under `share/doc` in `--docdir=`")),
    row("outputDev", C::Outputs, K::String, S::Supported("fixup `outputRoles.dev` and the directory flags: pkg-config, CMake and aclocal files, and `nix-support/propagated-*` (`propagate.output`); MUST name an output")),
    row("outputBin", C::Outputs, K::String, S::Supported("fixup `outputRoles.bin` and the directory flags: `--bindir`/`--sbindir`, the default of `outputMan` and `outputInfo`; MUST name an output")),
    row("outputInclude", C::Outputs, K::String, S::Supported("fixup `outputRoles.include` and the directory flags: `include/` and `--includedir`; MUST name an output")),
    row("outputLib", C::Outputs, K::String, S::Supported("fixup `outputRoles.lib` and the directory flags: `--libdir`, `--libexecdir`, `--localedir`; MUST name an output")),
    row("outputDoc", C::Outputs, K::String, S::Supported("fixup `outputRoles.doc` and the directory flags: `share/doc` and `--docdir`; MUST name an output")),
    row("outputDevdoc", C::Outputs, K::String, S::Supported("fixup `outputRoles.devdoc` and the directory flags: `share/gtk-doc`, `share/devhelp/books` (`REMOVE` deletes them); MUST name an output")),
    row("outputMan", C::Outputs, K::String, S::Supported("fixup `outputRoles.man` and the directory flags: `share/man` and `--mandir`; MUST name an output")),
    row("outputDevman", C::Outputs, K::String, S::Supported("fixup `outputRoles.devman` and the directory flags: `share/man/man3`; MUST name an output")),
    row("outputInfo", C::Outputs, K::String, S::Supported("fixup `outputRoles.info` and the directory flags: `share/info` and `--infodir`; MUST name an output")),
    row("moveToDev", C::Outputs, K::Bool, S::Supported("fixup `moveToDev`")),
    row("propagatedBuildOutputs", C::Outputs, K::List, S::Supported("fixup `propagatedBuildOutputs` (`[]` propagates none)")),
    // --- Dependencies -------------------------------------------------------------------------
    row("nativeBuildInputs", C::Dependencies, K::Paths, S::Supported("input `nativeBuildInputs`, `deps.build` (their `bin` on `PATH`, `share/aclocal`, …; `nix-support/propagated-native-build-inputs` followed)")),
    row("buildInputs", C::Dependencies, K::Paths, S::Supported("input `buildInputs`, `deps.host` (include and library paths, rpath, pkg-config, CMake prefixes; `nix-support/propagated-build-inputs` followed)")),
    row("propagatedBuildInputs", C::Dependencies, K::Paths, S::Supported("input `propagatedBuildInputs`: `deps.host` and `propagate.host` (written to `nix-support/propagated-build-inputs` of `outputDev`: `dev`, else `out`)")),
    row("propagatedNativeBuildInputs", C::Dependencies, K::Paths, S::Supported("input `propagatedNativeBuildInputs`: `deps.build` and `propagate.build` (`nix-support/propagated-native-build-inputs`)")),
    row("depsBuildBuild", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("depsBuildBuildPropagated", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("depsBuildTarget", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("depsBuildTargetPropagated", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("depsHostHost", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("depsHostHostPropagated", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("depsTargetTarget", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("depsTargetTargetPropagated", C::Dependencies, K::Paths, S::Unsupported(CROSS)),
    row("propagatedUserEnvPkgs", C::Dependencies, K::Paths, S::Supported("a `write` step at the end of phase `fixup`: `nix-support/propagated-user-env-packages` of the `outputBin` output, each path followed by a space as stdenv's `printWords`")),
    // --- Fixup --------------------------------------------------------------------------------
    row("dontStrip", C::Fixup, K::Bool, S::Supported("fixup `strip: false`")),
    row("dontPatchShebangs", C::Fixup, K::Bool, S::Supported("fixup `patchShebangs: false`")),
    row("dontGzipMan", C::Fixup, K::Bool, S::Supported("fixup `compressMan: false`")),
    row("dontMoveLib64", C::Fixup, K::Bool, S::Supported("fixup `moveLib64: false`")),
    row("dontMoveSbin", C::Fixup, K::Bool, S::Supported("fixup `moveSbin: false`")),
    row("dontPruneLibtoolFiles", C::Fixup, K::Bool, S::Supported("fixup `pruneLibtoolFiles: false`")),
    row("dontPatchELF", C::Fixup, K::Bool, S::Supported("fixup `shrinkRpath: false`")),
    row("dontRewriteSymlinks", C::Fixup, K::Bool, S::Supported("fixup `makeSymlinksRelative: false`")),
    row("dontCheckForBrokenSymlinks", C::Fixup, K::Bool, S::Supported("fixup `checkBrokenSymlinks: false`")),
    row("noAuditTmpdir", C::Fixup, K::Bool, S::Supported("fixup `auditTmpdir: false`")),
    row("outputChecks", C::Fixup, K::Object, S::Differently("read by Nix, which enforces every check; kiln also checks `allowedReferences`, `disallowedReferences` and `maxSize` at the end of its fixup (the fixup step's `outputChecks`)")),
    row("stripDebugList", C::Fixup, K::List, S::Supported("fixup `stripDebugList`")),
    row("stripAllList", C::Fixup, K::List, S::Supported("fixup `stripAllList`")),
    row("stripDebugFlags", C::Fixup, K::List, S::Supported("fixup `stripDebugFlags`")),
    row("stripAllFlags", C::Fixup, K::List, S::Supported("fixup `stripAllFlags`")),
    row("stripExclude", C::Fixup, K::List, S::Supported("fixup `stripExclude`: each pattern matches a base name or, after the output's path, a whole path, as stdenv's `find -name`/`-wholename`")),
    row("separateDebugInfo", C::Fixup, K::Bool, S::Differently("fixup `separateDebugInfo`: `objcopy --only-keep-debug` into `lib/debug/.build-id/` of `debug` (the Nix side adds that output, as `stdenvDerivation` does); there is no compiler wrapper, so `-ggdb` and `--build-id` are not added: the debug info is what the build's own flags produce")),
    row("forceShare", C::Fixup, K::List, S::Supported("fixup `forceShare`")),
    row("allowedReferences", C::Fixup, K::Any, S::Unsupported("with `__structuredAttrs` Nix reads only `outputChecks`: write `outputChecks.out.allowedReferences`")),
    row("disallowedReferences", C::Fixup, K::Any, S::Unsupported("with `__structuredAttrs` Nix reads only `outputChecks`: write `outputChecks.out.disallowedReferences`")),
    row("allowedRequisites", C::Fixup, K::Any, S::Unsupported("with `__structuredAttrs` Nix reads only `outputChecks`: write `outputChecks.out.allowedRequisites`")),
    row("disallowedRequisites", C::Fixup, K::Any, S::Unsupported("with `__structuredAttrs` Nix reads only `outputChecks`: write `outputChecks.out.disallowedRequisites`")),
    // --- Shell code ---------------------------------------------------------------------------
    row("preHook", C::Shell, K::String, S::Shell("variables: `env`; steps: a phase inserted before `unpack`")),
    row("postHook", C::Shell, K::String, S::Shell("variables: `env`; steps: a phase inserted before `unpack`")),
    row("preUnpack", C::Shell, K::String, S::Shell(HOOK)),
    row("postUnpack", C::Shell, K::String, S::Shell(HOOK)),
    row("prePatch", C::Shell, K::String, S::Shell(HOOK)),
    row("postPatch", C::Shell, K::String, S::Shell("`substitute` steps (stdenv's `substituteInPlace`) in a phase inserted after `patch`, or more `patches`")),
    row("preConfigure", C::Shell, K::String, S::Shell(HOOK)),
    row("postConfigure", C::Shell, K::String, S::Shell(HOOK)),
    row("preBuild", C::Shell, K::String, S::Shell(HOOK)),
    row("postBuild", C::Shell, K::String, S::Shell(HOOK)),
    row("preCheck", C::Shell, K::String, S::Shell(HOOK)),
    row("postCheck", C::Shell, K::String, S::Shell(HOOK)),
    row("preInstall", C::Shell, K::String, S::Shell(HOOK)),
    row("postInstall", C::Shell, K::String, S::Shell("`copy`, `symlink`, `write`, `mkdir` or `remove` steps in a phase inserted after `install`")),
    row("preFixup", C::Shell, K::String, S::Shell(HOOK)),
    row("postFixup", C::Shell, K::String, S::Shell(HOOK)),
    row("preInstallCheck", C::Shell, K::String, S::Shell(HOOK)),
    row("postInstallCheck", C::Shell, K::String, S::Shell(HOOK)),
    row("preDist", C::Shell, K::String, S::Shell(HOOK)),
    row("postDist", C::Shell, K::String, S::Shell(HOOK)),
    row("unpackPhase", C::Shell, K::String, S::Shell("a `replace` edit of phase `unpack` (`unpack` steps)")),
    row("patchPhase", C::Shell, K::String, S::Shell("a `replace` edit of phase `patch` (`patch` steps)")),
    row("configurePhase", C::Shell, K::String, S::Shell("a `replace` edit of phase `configure` (`configure` or `run` steps)")),
    row("buildPhase", C::Shell, K::String, S::Shell("a `replace` edit of phase `build` (`make` or `run` steps)")),
    row("checkPhase", C::Shell, K::String, S::Shell("a `replace` edit of phase `check` (`make` or `run` steps)")),
    row("installPhase", C::Shell, K::String, S::Shell("a `replace` edit of phase `install` (`make`, `copy`, `mkdir` steps)")),
    row("fixupPhase", C::Shell, K::String, S::Shell("the `fixup` step's knobs, or a `replace` edit of phase `fixup`")),
    row("installCheckPhase", C::Shell, K::String, S::Shell("a `replace` edit of phase `installCheck` (`run` steps)")),
    row("distPhase", C::Shell, K::String, S::Shell("a phase of `make` and `copy` steps")),
    row("buildCommand", C::Shell, K::String, S::Shell("a kiln plan (`kiln` attribute) with `phases` of typed steps")),
    row("buildCommandPath", C::Shell, K::Path, S::Shell("a kiln plan (`kiln` attribute) with `phases` of typed steps")),
    row("setupHook", C::Shell, K::Path, S::Shell("`nix-support/kiln-hook.json` (declared `env` and `edits`) written by a `write` step; with `kilnAllowShell` the file is copied to `nix-support/setup-hook` of `outputDev` (`dev`, else `out`) without `@var@` substitution")),
];

/// The row for `name`, if kiln knows it.
pub fn lookup(name: &str) -> Option<&'static Attribute> {
    ATTRIBUTES.iter().find(|attribute| attribute.name == name)
}

/// `docs/stdenv-attributes.md`: the table as markdown, one section per [`Category`].
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# stdenv attributes in kiln\n\n\
         <!-- GENERATED from stdenv/src/table.rs by `KILN_UPDATE_DOCS=1 cargo test -p kiln-stdenv`; \
         do not edit by hand. -->\n\n\
         When a derivation's `.attrs.json` has no `kiln` plan, kiln translates nixpkgs stdenv's \
         attributes into one (crate `kiln-stdenv`; `bootstrap/default.nix`'s `stdenvDerivation` \
         writes such derivations). This table is generated from the translator's own table, and a \
         test fails when they disagree.\n\n\
         - **supported**: translated to the same behaviour.\n\
         - **supported differently**: translated; the difference is stated.\n\
         - **ignored**: accepted, no effect on the build, and that is what stdenv does too.\n\
         - **not supported**: refused (exit code 2, nothing runs) when it holds a non-empty value; \
         `false`, `null`, `\"\"` and `[]` are accepted.\n\
         - **shell code**: refused unless `kilnAllowShell = true`, with one message listing every \
         such attribute and the typed step that replaces it. With the opt-in, each runs as \
         `SHELL -e -c SCRIPT` (a `run` step) where stdenv runs it; see below.\n\n\
         Attributes not in this table are ignored, as stdenv with `__structuredAttrs` ignores them \
         (only `env` is exported to the build); kiln warns about the ones that look like stdenv \
         vocabulary (`dont…`, `do…`, `…Flags`, `…Phase`, `…Phases`, `…Inputs`, `pre…`, `post…`), \
         with a suggestion when one is close to a known name.\n\n\
         A string attribute holding `\"\"` counts as unset, as in stdenv (`${x:-default}`): an \
         empty `sourceRoot`, `prefix`, `makefile`, `configureScript`, `prefixKey`, \
         `shareDocName` or `mesonAutoFeatures` gives the default. A translated plan that fails \
         kiln's validation is reported at the stdenv attribute that made the failing step.\n\n",
    );
    out.push_str(DEFAULTS_SECTION);
    for category in Category::ALL {
        out.push_str(&format!("\n## {}\n\n", category.title()));
        out.push_str("| attribute | status | what kiln does |\n| --- | --- | --- |\n");
        for attribute in ATTRIBUTES.iter().filter(|a| a.category == *category) {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                attribute.name,
                attribute.status.label(),
                attribute.status.text().replace('|', "\\|")
            ));
        }
        if *category == Category::Shell {
            out.push_str(SHELL_SECTION);
        }
    }
    out
}

const DEFAULTS_SECTION: &str = "## Defaults\n\n\
| stdenv | kiln's translation |\n| --- | --- |\n\
| phase list: `prePhases`, unpack, patch, `preConfigurePhases`, configure, `preBuildPhases`, build, check, `preInstallPhases`, install, `preFixupPhases`, fixup, installCheck, `preDistPhases`, dist, `postPhases` | the same phases, named `unpack`, `patch`, `configure`, `build`, `check`, `install`, `fixup`, `installCheck`, `dist`; switched-off phases are present and disabled |\n\
| `TZ=UTC`, `GZIP_NO_TIMESTAMPS=1`, `SSL_CERT_FILE` and `NIX_SSL_CERT_FILE` = `/no-cert-file.crt` | the same, in the plan's `env` (the derivation's `env` wins) |\n\
| `SOURCE_DATE_EPOCH=315532800`, raised to the newest source file after unpacking | the same (kiln's own default and `unpack` step) |\n\
| configurePhase: no `./configure` → does nothing | decided when the plan is made, before the sources exist: set `dontConfigure = true` for a source without a configure script (or `configureScript`) |\n\
| buildPhase / installPhase: no Makefile → do nothing | decided when the plan is made: set `dontBuild` / `dontInstall` (kiln's `make` fails without a makefile) |\n\
| checkPhase: `make -n check`, else `make -n test`, else nothing | the same (`make` step `firstExistingTarget: [check, test]`) |\n\
| `make SHELL=$SHELL …` | no `SHELL=` (kiln has no bash; make uses its default `/bin/sh`) |\n\
| `enableParallelBuilding`: `-jN` | `-jN -lN` |\n\
| installPhase: `mkdir -p $prefix` first | the same (a `mkdir` step; not for Meson, whose install is `meson install`) |\n\
| nixpkgs' cmake hook exports `CTEST_OUTPUT_ON_FAILURE=1` and `CTEST_PARALLEL_LEVEL=$NIX_BUILD_CORES` | the same, in the plan's `env`, for CMake builds |\n\
| build system chosen by setup hooks of `nativeBuildInputs` (`cmake`, `meson` + `ninja`) | chosen by `cmakeFlags` / `mesonFlags` being present, or a `nativeBuildInputs` store path named `cmake-…` / `meson-…` (unless `dontUseCmakeConfigure` / `dontUseMesonConfigure`); the translator writes the hooks' commands itself (not kiln's native `cmake`/`meson` presets), with the differences stated at `cmakeFlags` and `mesonFlags` |\n\
| Meson: `ninja -jN $ninjaFlags`, `ninja meson-test-prereq` then `meson test --no-rebuild --print-errorlogs`, `meson install --no-rebuild` in `build/` (nixpkgs' ninja and meson hooks) | the same; `makeFlags`, `buildFlags`, `checkFlags`, `installFlags` are not given to ninja or meson |\n";

const SHELL_SECTION: &str =
    "\nTyped instead of shell code, with no opt-in: a hook or phase attribute given as a **list of \
steps** (the plan's step objects, e.g. `postInstall = [ { write = { path = \"${refs.out}/share/x\"; \
content = \"…\"; }; } ]` with `refs` from kiln's `bootstrap`) runs those steps where stdenv runs the hook (an `xPhase` list replaces \
the phase's steps), validated like a plan's; and `kilnEdits` adds, replaces or deletes whole \
phases as a plan's `edits` do.\n\n\
A shell-code attribute that only calls `patchShebangs` (lines `patchShebangs [--build] \
PATH...` with plain relative or absolute paths: no `$`, quotes or globs; blank lines and `#` \
comments allowed), nixpkgs' commonest `postPatch`, is not shell code: it becomes a typed \
`patchShebangs` step where the hook would run, and needs no opt-in.\n\n\
With `kilnAllowShell = true`, each shell-code attribute becomes a `run` step \
`[SHELL, \"-e\", \"-c\", SCRIPT]`, where `SHELL` is `kilnShell` or the first `bin/bash` (else \
`bin/sh`) among the dependencies. `preX` runs first in phase X and `postX` last (so they are \
skipped with the phase, as in stdenv); `preUnpack`/`postUnpack` run in the build directory; a \
`xPhase` string replaces the phase's steps, with `runHook` defined as a no-op because kiln runs \
`preX`/`postX` around it itself; `preHook`/`postHook` run in a phase `setup` before everything; \
`buildCommand` (or `buildCommandPath`) is the only phase; a custom phase named in `phases` or a \
`pre…Phases` list is a phase of its own. The script sees kiln's environment plus every string, \
number and boolean attribute (lists joined with spaces) that is not itself shell code, as stdenv's \
bash would have them as variables; stdenv's shell functions (`substituteInPlace`, `patchShebangs`, \
`moveToOutput`, …) do not exist. kiln reports how many ran (`kiln plan` shows them under \
`stdenv.shellHooks`, and the build logs `N shell hooks run through SHELL`).\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (index, attribute) in ATTRIBUTES.iter().enumerate() {
            assert!(
                ATTRIBUTES[..index].iter().all(|a| a.name != attribute.name),
                "`{}` is listed twice",
                attribute.name
            );
        }
    }

    /// `docs/stdenv-attributes.md` is what the table generates. Regenerate with
    /// `KILN_UPDATE_DOCS=1 cargo test -p kiln-stdenv`.
    #[test]
    fn checked_in_docs_have_not_drifted() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/stdenv-attributes.md");
        let generated = render_markdown();
        if std::env::var_os("KILN_UPDATE_DOCS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/stdenv-attributes.md is out of date: run `KILN_UPDATE_DOCS=1 cargo test -p kiln-stdenv`"
        );
    }
}
