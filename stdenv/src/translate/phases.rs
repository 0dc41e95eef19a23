//! stdenv's phases: the standard ones from kiln's presets adjusted as the generic builder
//! decides (switches, per-phase flags, parallelism), then arranged with `phases` and the
//! `pre…Phases` lists.

use super::*;

impl<'r, 'a> Translator<'r, 'a> {
    pub(super) fn draft(&self, name: &str, stdenv: &str, origin: String) -> Draft {
        Draft {
            phase: Phase {
                name: name.to_owned(),
                enabled: true,
                timeout: None,
                cwd: None,
                steps: Vec::new(),
                origin: Some(origin),
            },
            stdenv: stdenv.to_owned(),
            switch: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// The nine standard phases, in stdenv's order.
    pub(super) fn standard_phases(&mut self, env: &BTreeMap<String, String>) -> Vec<Draft> {
        let r = self.r;
        let system = self.system;
        let make_based = system != BuildSystem::Meson;
        let out = "${outputs.out}".to_owned();

        // Sources.
        let srcs_attr = r.paths("srcs");
        let src_attr = r.paths("src");
        let (srcs, src_from): (Vec<String>, &str) = if !srcs_attr.is_empty() {
            let refs = (0..srcs_attr.len())
                .map(|index| format!("${{inputs.srcs.{index}}}"))
                .collect();
            self.inputs
                .insert("srcs".to_owned(), Input::List(srcs_attr));
            (refs, "srcs")
        } else if let Some(src) = src_attr.into_iter().next() {
            self.inputs.insert("src".to_owned(), Input::Path(src));
            (vec!["${inputs.src}".to_owned()], "src")
        } else {
            (Vec::new(), "")
        };
        let dont_unpack = r.flag("dontUnpack");
        if srcs.is_empty() && !dont_unpack {
            r.error(JsonPath::root().key("src"), TranslateErrorKind::NoSource);
        }
        let source_root = r.string("sourceRoot").map(|root| literal(&root));
        r.flag("dontMakeSourcesWritable");

        // Patches.
        let patches: Vec<String> = r.paths("patches").iter().map(|p| literal(p)).collect();
        let strip = self.patch_strip();

        // Configure.
        let set_output_flags = r.flag_or("setOutputFlags", true);
        let multi = self.outputs.len() > 1 && set_output_flags;
        let roles = match Roles::new(&self.outputs, &self.role_overrides) {
            Ok(roles) => roles,
            Err(error) => {
                r.error(
                    JsonPath::root().key("outputs"),
                    TranslateErrorKind::OutputRole {
                        message: error.to_string(),
                    },
                );
                Roles::all_out()
            }
        };
        let prefix = r.string("prefix").map(|p| literal(&p));
        let prefix_value = prefix.clone().unwrap_or_else(|| out.clone());
        let add_prefix = !r.flag("dontAddPrefix");
        let share_doc = r
            .string("shareDocName")
            .map(|name| literal(&name))
            .unwrap_or_else(|| doc_name(&r.string("name").unwrap_or_default()));
        let dont_configure = r.flag("dontConfigure");
        let configure_flags = r.list("configureFlags").unwrap_or_default();
        let mut all_configure_flags = Vec::new();
        if multi && system == BuildSystem::Autotools {
            all_configure_flags.extend(roles.autotools_flags(&share_doc));
        }
        all_configure_flags.extend(configure_flags.iter().map(|f| literal(f)));

        // Make (and ninja).
        let makefile = r.string("makefile").map(|m| literal(&m));
        let make_flags = literal_list(r.list("makeFlags"));
        let build_flags = literal_list(r.list("buildFlags"));
        let check_flags_attr = literal_list(r.list("checkFlags"));
        let check_flags = if check_flags_attr.is_empty() && make_based {
            vec!["VERBOSE=y".to_owned()]
        } else {
            check_flags_attr.clone()
        };
        let mut install_flags = Vec::new();
        // _multioutConfig is a preConfigure hook: no configure, no install flags.
        if multi && system == BuildSystem::Autotools && !dont_configure {
            install_flags.extend(roles.autotools_install_flags());
        }
        install_flags.extend(literal_list(r.list("installFlags")));
        let install_targets = r
            .list("installTargets")
            .filter(|t| !t.is_empty())
            .map(|t| literal_list(Some(t)));
        let check_target = r.string("checkTarget").map(|t| literal(&t));
        let hook_parallel = system != BuildSystem::Autotools;
        let parallel_building = r.flag_or("enableParallelBuilding", hook_parallel);
        let parallel_attr = r.is_set("enableParallelBuilding") && r.flag("enableParallelBuilding");
        // The ninja and meson hooks read `${enableParallelChecking-1}`: on unless set off.
        let parallel_checking = r.flag_or(
            "enableParallelChecking",
            parallel_attr || system == BuildSystem::Meson,
        );
        let parallel_installing =
            r.flag_or("enableParallelInstalling", parallel_attr || hook_parallel);
        let do_check = r.flag("doCheck");

        let fixup = self.fixup_step();
        let dont_fixup = r.flag("dontFixup");
        let preset = Preset {
            system,
            srcs,
            source_root,
            extra_sources: Vec::new(),
            patches,
            patch_series: None,
            patch_strip: strip,
            configure_script: r.string("configureScript").map(|s| literal(&s)),
            configure_flags: all_configure_flags,
            prefix_key: r.string("prefixKey").map(|k| literal(&k)),
            add_prefix,
            disable_dependency_tracking: !r.flag("dontAddDisableDepTrack"),
            disable_static: !r.flag("dontDisableStatic"),
            cmake_flags: Vec::new(),
            meson_flags: Vec::new(),
            make_flags: make_flags.clone(),
            build_flags,
            check_flags,
            install_flags,
            install_targets,
            check_target: check_target.clone(),
            do_check,
            parallel: parallel_building,
            fixup: Some(fixup),
            dont_fixup,
            // stdenv's phase switches (dontConfigure, …) are applied below, with provenance.
            dont_configure: false,
            dont_build: false,
            dont_install: false,
        };
        r.flag("dontFixLibtool");
        r.raw("NIX_DEBUG");
        let mut phases = preset_phases(&preset, true);
        // CMake and Meson: nixpkgs' hooks, step by step (the native presets are kiln's own).
        let hook_steps = match system {
            BuildSystem::Cmake => {
                Some(self.cmake_steps(&roles, &prefix_value, add_prefix, do_check))
            }
            BuildSystem::Meson => Some(self.meson_steps(
                &roles,
                &prefix_value,
                add_prefix,
                parallel_building,
                parallel_checking,
                env.contains_key("LDFLAGS"),
            )),
            _ => None,
        };
        if let Some(hook_steps) = hook_steps {
            for (name, cwd, steps) in hook_steps {
                if let Some(phase) = phases.iter_mut().find(|phase| phase.name == name) {
                    phase.cwd = cwd;
                    phase.steps = steps;
                }
            }
        }
        let origin = |stdenv: &str| format!("stdenv {stdenv} ({} build)", system.name());

        let mut drafts: Vec<Draft> = Vec::new();
        for (name, stdenv, _) in STANDARD {
            let mut draft = self.draft(name, stdenv, origin(stdenv));
            if let Some(position) = phases.iter().position(|phase| phase.name == *name) {
                let phase = phases.remove(position);
                draft.phase.cwd = phase.cwd;
                for step in phase.steps {
                    draft.push(step, Vec::new());
                }
            }
            drafts.push(draft);
        }
        let [unpack, patch, configure, build, check, install, fixup_phase, install_check, dist] =
            &mut drafts[..]
        else {
            unreachable!("nine standard phases");
        };

        // unpack
        unpack.phase.enabled = !dont_unpack;
        unpack.switch.push(if dont_unpack {
            "dontUnpack".to_owned()
        } else {
            default("unpackPhase runs")
        });
        if dont_unpack {
            unpack.clear();
        } else if let Some(from) = unpack.steps.first_mut() {
            from.push(src_from.to_owned());
            if preset.source_root.is_some() {
                from.push("sourceRoot".to_owned());
            }
            from.push(default("make the source writable, raise SOURCE_DATE_EPOCH"));
        }

        // patch
        let dont_patch = r.flag("dontPatch");
        patch.phase.enabled = !dont_patch;
        patch.switch.push(if dont_patch {
            "dontPatch".to_owned()
        } else {
            default("patchPhase runs (applies nothing without patches)")
        });
        if let Some(from) = patch.steps.first_mut() {
            from.push("patches".to_owned());
            from.push(if r.is_set("patchFlags") {
                "patchFlags".to_owned()
            } else {
                default("patchFlags -p1")
            });
        }

        // configure
        configure.phase.enabled = !dont_configure;
        configure.switch.push(if dont_configure {
            "dontConfigure".to_owned()
        } else {
            default("configurePhase runs")
        });
        let main = configure
            .phase
            .steps
            .iter()
            .position(|step| matches!(step, Step::Configure(_) | Step::Run(_)));
        if let Some(index) = main {
            let mut from = Vec::new();
            match &mut configure.phase.steps[index] {
                Step::Configure(step) => {
                    step.prefix = add_prefix.then(|| prefix_value.clone());
                    from.push(if r.string("configureScript").is_some() {
                        "configureScript".to_owned()
                    } else {
                        default("./configure")
                    });
                    if !r.flag("dontDisableStatic") {
                        from.push(default(
                            "--disable-static when the script mentions enable-static",
                        ));
                    } else {
                        from.push("dontDisableStatic".to_owned());
                    }
                    if !r.flag("dontAddDisableDepTrack") {
                        from.push(default(
                            "--disable-dependency-tracking when the script mentions dependency-tracking",
                        ));
                    } else {
                        from.push("dontAddDisableDepTrack".to_owned());
                    }
                    for (attribute, hook) in [
                        ("dontUseCmakeConfigure", "cmake"),
                        ("dontUseMesonConfigure", "meson"),
                    ] {
                        if r.flag(attribute) {
                            from.push(format!(
                                "{attribute} (the {hook} hook's configurePhase is not used: stdenv's generic one)"
                            ));
                        }
                    }
                }
                Step::Run(_) => {
                    from.push(format!("nixpkgs {} setup hook", system.name()));
                    if system == BuildSystem::Cmake {
                        from.push(if r.is_set("cmakeFlags") {
                            "cmakeFlags".to_owned()
                        } else {
                            "nativeBuildInputs (cmake)".to_owned()
                        });
                        if r.string("cmakeBuildType").is_some() {
                            from.push("cmakeBuildType".to_owned());
                        }
                        from.push(if do_check {
                            "doCheck (no -DBUILD_TESTING=OFF)".to_owned()
                        } else {
                            default("doCheck off: -DBUILD_TESTING=OFF")
                        });
                        if r.string("shareDocName").is_some() {
                            from.push("shareDocName".to_owned());
                        }
                    } else {
                        from.push(if r.is_set("mesonFlags") {
                            "mesonFlags".to_owned()
                        } else {
                            "nativeBuildInputs (meson)".to_owned()
                        });
                        from.push(if r.string("mesonAutoFeatures").is_some() {
                            "mesonAutoFeatures".to_owned()
                        } else {
                            "nixpkgs meson hook default: -Dauto_features=enabled".to_owned()
                        });
                        if r.string("mesonBuildType").is_some() {
                            from.push("mesonBuildType".to_owned());
                        }
                    }
                    from.push(format!(
                        "outputs ({}): the hook's directory flags",
                        self.outputs.join(", ")
                    ));
                }
                _ => {}
            }
            from.push(if !add_prefix {
                "dontAddPrefix".to_owned()
            } else if prefix.is_some() {
                "prefix".to_owned()
            } else {
                default("prefix $out")
            });
            if system == BuildSystem::Autotools {
                if r.string("prefixKey").is_some() {
                    from.push("prefixKey".to_owned());
                }
                if !configure_flags.is_empty() {
                    from.push("configureFlags".to_owned());
                }
                if multi {
                    from.push(format!(
                        "setOutputFlags ({} outputs: {})",
                        self.outputs.len(),
                        self.outputs.join(", ")
                    ));
                }
            }
            configure.steps[index] = from;
            if index > 0 {
                configure.steps[0] = vec![format!("nixpkgs {} setup hook", system.name())];
            }
        }

        // build, check, install: per-phase parallelism, makefile.
        let dont_build = r.flag("dontBuild");
        build.phase.enabled = !dont_build;
        build.switch.push(if dont_build {
            "dontBuild".to_owned()
        } else {
            default("buildPhase runs")
        });
        adjust_make(build, makefile.as_ref(), parallel_building);
        let parallel_from = |attr: &'static str, value: bool, fallback: &str| {
            if r.is_set(attr) {
                attr.to_owned()
            } else if value {
                fallback.to_owned()
            } else {
                default(&format!("{attr} off"))
            }
        };
        if let Some(from) = build.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags", "buildFlags"]));
            from.push(parallel_from(
                "enableParallelBuilding",
                parallel_building,
                &format!("nixpkgs {} hook: enableParallelBuilding", system.name()),
            ));
        }

        check.phase.enabled = do_check;
        check.switch.push(if do_check {
            "doCheck".to_owned()
        } else {
            default("doCheck off")
        });
        adjust_make(check, makefile.as_ref(), parallel_checking);
        if let Some(from) = check.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags"]));
            from.push(if !check_flags_attr.is_empty() {
                "checkFlags".to_owned()
            } else if make_based {
                default("checkFlags VERBOSE=y")
            } else {
                default("no checkFlags")
            });
            from.push(if check_target.is_some() {
                "checkTarget".to_owned()
            } else if make_based {
                default("first of check, test that `make -n` accepts, else nothing")
            } else {
                "preset meson: test".to_owned()
            });
            from.push(parallel_from(
                "enableParallelChecking",
                parallel_checking,
                "enableParallelBuilding",
            ));
        }

        let dont_install = r.flag("dontInstall");
        install.phase.enabled = !dont_install;
        install.switch.push(if dont_install {
            "dontInstall".to_owned()
        } else {
            default("installPhase runs")
        });
        adjust_make(install, makefile.as_ref(), parallel_installing);
        if let Some(from) = install.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags", "installFlags"]));
            if multi && system == BuildSystem::Autotools {
                from.push(format!("setOutputFlags ({} outputs)", self.outputs.len()));
            }
            from.push(if r.is_set("installTargets") {
                "installTargets".to_owned()
            } else {
                default("installTargets install")
            });
            from.push(parallel_from(
                "enableParallelInstalling",
                parallel_installing,
                "enableParallelBuilding",
            ));
        }
        if make_based && !install.phase.steps.is_empty() {
            install.insert(
                0,
                Step::Mkdir(MkdirStep {
                    path: prefix_value.clone(),
                }),
                vec![
                    default("mkdir -p $prefix"),
                    if prefix.is_some() {
                        "prefix".to_owned()
                    } else {
                        default("prefix $out")
                    },
                ],
            );
        }

        // fixup
        fixup_phase.phase.enabled = !dont_fixup;
        fixup_phase.switch.push(if dont_fixup {
            "dontFixup".to_owned()
        } else {
            default("fixupPhase runs")
        });
        if let Some(from) = fixup_phase.steps.first_mut() {
            let knobs: Vec<&str> = FIXUP_KNOBS
                .iter()
                .map(|(attr, _)| *attr)
                .chain([
                    "outputChecks",
                    "stripDebugList",
                    "stripDebugFlags",
                    "stripAllList",
                    "stripAllFlags",
                    "stripExclude",
                    "separateDebugInfo",
                    "forceShare",
                    "outputDev",
                    "outputBin",
                    "outputInclude",
                    "outputLib",
                    "outputDoc",
                    "outputDevdoc",
                    "outputMan",
                    "outputDevman",
                    "outputInfo",
                    "moveToDev",
                    "propagatedBuildOutputs",
                ])
                .filter(|attr| r.all().get(*attr).is_some_and(|v| !is_empty(v)))
                .collect();
            if knobs.is_empty() {
                from.push(default("every fixup hook"));
            } else {
                from.extend(knobs.iter().map(|k| k.to_string()));
            }
            if self.outputs.len() > 1 {
                from.push(format!(
                    "outputs ({}): multiple-outputs.sh",
                    self.outputs.join(", ")
                ));
            }
            if r.is_set("propagatedBuildInputs") || r.is_set("propagatedNativeBuildInputs") {
                from.push(format!(
                    "propagated*BuildInputs: written to nix-support/ of {} (outputDev)",
                    roles.dev
                ));
            }
        }
        if self.report.shell.is_some() {
            if let Some(Value::String(hook)) = r.all().get("setupHook") {
                // setup.sh: `substituteAll "$setupHook" "${!outputDev}/nix-support/setup-hook"`.
                let dev = &roles.dev;
                self.report.shell_hooks.push(ShellHook {
                    attribute: "setupHook".to_owned(),
                    phase: "fixup".to_owned(),
                    replacement: table::lookup("setupHook")
                        .map(|row| row.status.text())
                        .unwrap_or_default()
                        .to_owned(),
                });
                fixup_phase.push(
                    Step::Mkdir(MkdirStep {
                        path: format!("${{outputs.{dev}}}/nix-support"),
                    }),
                    vec!["setupHook".to_owned()],
                );
                fixup_phase.push(
                    Step::Copy(CopyStep {
                        from: literal(hook),
                        to: format!("${{outputs.{dev}}}/nix-support/setup-hook"),
                    }),
                    vec!["setupHook (copied, no @var@ substitution)".to_owned()],
                );
            }
        }

        // setup.sh's fixupPhase, after the hooks: `printWords $propagatedUserEnvPkgs >
        // "${!outputBin}/nix-support/propagated-user-env-packages"` (each path and a space).
        let user_env = r.paths("propagatedUserEnvPkgs");
        if !user_env.is_empty() {
            let content: String = user_env.iter().map(|path| format!("{path} ")).collect();
            fixup_phase.push(
                Step::Write(WriteStep {
                    path: format!(
                        "${{outputs.{}}}/nix-support/propagated-user-env-packages",
                        roles.bin
                    ),
                    content: literal(&content),
                    mode: None,
                }),
                vec![
                    "propagatedUserEnvPkgs".to_owned(),
                    default("written to nix-support/ of outputBin"),
                ],
            );
        }

        // installCheck
        let do_install_check = r.flag("doInstallCheck");
        install_check.phase.enabled = do_install_check;
        install_check.switch.push(if do_install_check {
            "doInstallCheck".to_owned()
        } else {
            default("doInstallCheck off")
        });
        let install_check_target = r
            .string("installCheckTarget")
            .filter(|t| !t.is_empty())
            .map(|t| literal(&t));
        let mut install_check_flags = make_flags.clone();
        install_check_flags.extend(literal_list(r.list("installCheckFlags")));
        install_check.phase.cwd = build.phase.cwd.clone();
        if make_based {
            let (targets, first_existing_target) = match &install_check_target {
                Some(target) => (vec![target.clone()], Vec::new()),
                None => (Vec::new(), vec!["installcheck".to_owned()]),
            };
            let step = Step::Make(MakeStep {
                flags: install_check_flags,
                targets,
                first_existing_target,
                parallel: parallel_checking,
                makefile: makefile.clone(),
            });
            let mut from = present(r, &["makefile", "makeFlags", "installCheckFlags"]);
            from.push(if install_check_target.is_some() {
                "installCheckTarget".to_owned()
            } else {
                default("installcheck when `make -n` accepts it, else nothing")
            });
            from.push(parallel_from(
                "enableParallelChecking",
                parallel_checking,
                "enableParallelBuilding",
            ));
            install_check.push(step, from);
        } else {
            // stdenv's installCheckPhase is make's, and does nothing when the build phase found
            // no Makefile: with ninja building, it never runs a command.
            install_check.switch.push(default(
                "installCheckPhase does nothing without a Makefile (ninja built)",
            ));
            if do_install_check && install_check_target.is_some() {
                self.report.warnings.push(
                    "`installCheckTarget` has no effect on a Meson build: stdenv's installCheckPhase \
                     runs make only when the build phase found a Makefile (add a phase of `run` \
                     steps instead)"
                        .to_owned(),
                );
            }
        }

        // dist: kiln refuses doDist, so the phase is always off.
        dist.phase.enabled = false;
        dist.switch
            .push(default("doDist off (kiln does not support doDist)"));

        // Shell hooks and phase strings (without a shell, only the typed `patchShebangs` ones:
        // shell code without the opt-in was refused already).
        for draft in drafts.iter_mut() {
            let Some((_, stdenv, stem)) = STANDARD
                .iter()
                .find(|(name, _, _)| *name == draft.phase.name)
            else {
                continue;
            };
            let phase_name = draft.phase.name.clone();
            if let Some((steps, from)) = self.hook_steps(stdenv, &phase_name) {
                draft.clear();
                for step in steps {
                    draft.push(step, from.clone());
                }
            }
            let top = |step: Step| match step {
                Step::Run(mut run) if phase_name == "unpack" => {
                    run.cwd = Some("${build.top}".to_owned());
                    Step::Run(run)
                }
                other => other,
            };
            if let Some((steps, from)) = self.hook_steps(&format!("pre{stem}"), &phase_name) {
                for step in steps.into_iter().rev() {
                    draft.insert(0, top(step), from.clone());
                }
            }
            if let Some((steps, from)) = self.hook_steps(&format!("post{stem}"), &phase_name) {
                for step in steps {
                    draft.push(top(step), from.clone());
                }
            }
        }
        drafts
    }

    /// The phase list: `phases` if given, else stdenv's default order with the `pre…Phases`
    /// lists; `setup` first when `preHook`/`postHook` run.
    pub(super) fn arrange(
        &mut self,
        standard: Vec<Draft>,
        custom: &BTreeSet<String>,
    ) -> Vec<Draft> {
        let r = self.r;
        let mut standard: BTreeMap<String, Draft> = standard
            .into_iter()
            .map(|draft| (draft.stdenv.clone(), draft))
            .collect();
        let mut order: Vec<(String, JsonPath)> = Vec::new();
        if let Some(list) = r.list("phases").filter(|list| !list.is_empty()) {
            for (index, name) in list.into_iter().enumerate() {
                order.push((name, JsonPath::root().key("phases").index(index)));
            }
        } else {
            let lists: BTreeMap<&str, Vec<String>> = PHASE_LISTS
                .iter()
                .map(|(list, _)| (*list, r.list(list).unwrap_or_default()))
                .collect();
            let push_list = |list: &'static str, order: &mut Vec<(String, JsonPath)>| {
                for (index, name) in lists[list].iter().enumerate() {
                    order.push((name.clone(), JsonPath::root().key(list).index(index)));
                }
            };
            for (name, stdenv, _) in STANDARD {
                if let Some((list, _)) = PHASE_LISTS
                    .iter()
                    .find(|(_, before)| *before == Some(*name))
                {
                    push_list(list, &mut order);
                }
                order.push((stdenv.to_string(), JsonPath::root()));
            }
            push_list("postPhases", &mut order);
        }
        let mut drafts: Vec<Draft> = self.setup_phase().into_iter().collect();
        let known: Vec<String> = STANDARD
            .iter()
            .map(|(_, stdenv, _)| stdenv.to_string())
            .collect();
        for (name, path) in order {
            if let Some(draft) = standard.remove(&name) {
                drafts.push(draft);
                continue;
            }
            if !custom.contains(&name) || !r.all().contains_key(&name) {
                r.error(
                    path,
                    TranslateErrorKind::UnknownPhase {
                        name,
                        known: known.clone(),
                    },
                );
                continue;
            }
            let kiln_name = match name.strip_suffix("Phase") {
                Some(stem) if !stem.is_empty() && !drafts.iter().any(|d| d.phase.name == stem) => {
                    stem.to_owned()
                }
                _ => name.clone(),
            };
            let mut draft = self.draft(&kiln_name, &name, format!("stdenv custom phase {name}"));
            draft
                .switch
                .push(format!("{name} (listed in a phase list)"));
            if let Some((steps, from)) = self.hook_steps(&name, &kiln_name) {
                for step in steps {
                    draft.push(step, from.clone());
                }
            }
            drafts.push(draft);
        }
        drafts
    }

    pub(super) fn patch_strip(&self) -> usize {
        let Some(flags) = self.r.list("patchFlags") else {
            return 1;
        };
        let mut strip = 1;
        for (index, flag) in flags.iter().enumerate() {
            let level = flag
                .strip_prefix("-p")
                .or_else(|| flag.strip_prefix("--strip="))
                .and_then(|n| n.parse::<usize>().ok());
            match level {
                Some(level) => strip = level,
                None => self.r.error(
                    JsonPath::root().key("patchFlags").index(index),
                    TranslateErrorKind::PatchFlag { flag: flag.clone() },
                ),
            }
        }
        strip
    }
}

/// Sets `makefile` and `parallel` on every make step (ninja runs are made with theirs).
pub(super) fn adjust_make(draft: &mut Draft, makefile: Option<&String>, parallel: bool) {
    for step in &mut draft.phase.steps {
        if let Step::Make(make) = step {
            make.makefile = makefile.cloned();
            make.parallel = parallel;
        }
    }
}
