//! The build system (autotools, CMake, Meson) and nixpkgs' cmake and meson setup hooks'
//! commands, step by step.

use super::*;

impl<'r, 'a> Translator<'r, 'a> {
    /// nixpkgs' cmake setup hook's configurePhase: `mkdir -p build`, then `cmake ..` there with
    /// the hook's default flags (kiln's stated differences: no compiler flags, which point at
    /// nixpkgs' cc-wrapper; `-DCMAKE_SKIP_BUILD_RPATH=ON` before `cmakeFlags`, see
    /// `docs/stdenv-attributes.md`; `shareDocName` not read from `project()`).
    pub(super) fn cmake_steps(
        &self,
        roles: &Roles,
        prefix: &str,
        add_prefix: bool,
        do_check: bool,
    ) -> Vec<(&'static str, Option<String>, Vec<Step>)> {
        let r = self.r;
        let mut argv: Vec<String> = vec![
            "cmake".to_owned(),
            "..".to_owned(),
            "-DCMAKE_FIND_FRAMEWORK=LAST".to_owned(),
            "-DCMAKE_POLICY_DEFAULT_CMP0025=NEW".to_owned(),
        ];
        argv.extend(roles.cmake_flags());
        let build_type = r
            .string("cmakeBuildType")
            .unwrap_or_else(|| "Release".to_owned());
        argv.push(format!("-DCMAKE_BUILD_TYPE={}", literal(&build_type)));
        argv.extend(
            [
                "-DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON",
                "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
                "-DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF",
            ]
            .map(str::to_owned),
        );
        if add_prefix {
            argv.push(format!("-DCMAKE_INSTALL_PREFIX={prefix}"));
        }
        if !do_check {
            argv.push("-DBUILD_TESTING=OFF".to_owned());
        }
        let share_doc = r
            .string("shareDocName")
            .or_else(|| r.string("pname"))
            .map(|name| literal(&name))
            .unwrap_or_else(|| doc_name(&r.string("name").unwrap_or_default()));
        argv.push(format!(
            "-DCMAKE_INSTALL_DOCDIR={}/share/doc/{share_doc}",
            output_ref(&roles.doc)
        ));
        // kiln: no linker wrapper adds `-rpath $out/lib`, so the build-tree rpath is skipped
        // and ld takes LD_RUN_PATH (outputs' lib first) instead.
        argv.push("-DCMAKE_SKIP_BUILD_RPATH=ON".to_owned());
        argv.extend(literal_list(r.list("cmakeFlags")));
        let configure = vec![
            Step::Mkdir(MkdirStep {
                path: "build".to_owned(),
            }),
            Step::Run(RunStep {
                argv,
                env: BTreeMap::new(),
                cwd: Some("build".to_owned()),
                stdout: None,
            }),
        ];
        vec![("configure", None, configure)]
    }

    /// nixpkgs' meson setup hook (configure, check, install) and ninja setup hook (build), with
    /// `LDFLAGS=-Wl,-rpath,$lib/lib` on `meson setup` (kiln's stand-in for the linker wrapper,
    /// unless `env` sets `LDFLAGS`).
    pub(super) fn meson_steps(
        &self,
        roles: &Roles,
        prefix: &str,
        add_prefix: bool,
        parallel_building: bool,
        parallel_checking: bool,
        env_ldflags: bool,
    ) -> Vec<(&'static str, Option<String>, Vec<Step>)> {
        let r = self.r;
        let mut argv: Vec<String> = ["meson", "setup", "build"].map(str::to_owned).to_vec();
        if add_prefix {
            argv.push(format!("--prefix={prefix}"));
        }
        argv.extend(roles.meson_flags());
        let auto = r
            .string("mesonAutoFeatures")
            .unwrap_or_else(|| "enabled".to_owned());
        argv.push(format!("-Dauto_features={}", literal(&auto)));
        argv.push("-Dwrap_mode=nodownload".to_owned());
        let build_type = r
            .string("mesonBuildType")
            .unwrap_or_else(|| "plain".to_owned());
        argv.push(format!("--buildtype={}", literal(&build_type)));
        argv.extend(literal_list(r.list("mesonFlags")));
        let mut env = BTreeMap::new();
        if !env_ldflags {
            env.insert(
                "LDFLAGS".to_owned(),
                format!("-Wl,-rpath,{}/lib", output_ref(&roles.lib)),
            );
        }
        let configure = vec![Step::Run(RunStep {
            argv,
            env,
            cwd: None,
            stdout: None,
        })];
        let ninja_flags = literal_list(r.list("ninjaFlags"));
        let ninja = |parallel: bool, targets: &[&str]| {
            let mut argv = vec![
                "ninja".to_owned(),
                if parallel {
                    "-j${build.cores}".to_owned()
                } else {
                    "-j1".to_owned()
                },
            ];
            argv.extend(ninja_flags.iter().cloned());
            argv.extend(targets.iter().map(|t| t.to_string()));
            Step::Run(RunStep {
                argv,
                env: [("TERM".to_owned(), "dumb".to_owned())].into(),
                cwd: None,
                stdout: None,
            })
        };
        let mut test = ["meson", "test", "--no-rebuild", "--print-errorlogs"]
            .map(str::to_owned)
            .to_vec();
        test.extend(literal_list(r.list("mesonCheckFlags")));
        test.push("--timeout-multiplier=0".to_owned());
        let mut install = ["meson", "install", "--no-rebuild"]
            .map(str::to_owned)
            .to_vec();
        install.extend(literal_list(r.list("mesonInstallFlags")));
        let in_build = Some("build".to_owned());
        vec![
            ("configure", None, configure),
            (
                "build",
                in_build.clone(),
                vec![ninja(parallel_building, &[])],
            ),
            (
                "check",
                in_build.clone(),
                vec![
                    ninja(parallel_checking, &["meson-test-prereq"]),
                    Step::run(test),
                ],
            ),
            ("install", in_build, vec![Step::run(install)]),
        ]
    }

    pub(super) fn build_system(&self) -> BuildSystem {
        let named = |tool: &str| {
            ["nativeBuildInputs", "propagatedNativeBuildInputs"]
                .iter()
                .filter_map(|name| self.inputs.get(*name))
                .flat_map(|input| input.paths())
                .any(|path| store_name(path).starts_with(&format!("{tool}-")))
        };
        // `dontUseCmakeConfigure`/`dontUseMesonConfigure`: the hook leaves configurePhase alone,
        // so stdenv's generic configure and make phases run, in the source root.
        if (self.r.is_set("cmakeFlags") || named("cmake")) && !self.r.flag("dontUseCmakeConfigure")
        {
            BuildSystem::Cmake
        } else if (self.r.is_set("mesonFlags") || named("meson"))
            && !self.r.flag("dontUseMesonConfigure")
        {
            BuildSystem::Meson
        } else {
            BuildSystem::Autotools
        }
    }
}
