//! Shell code and hooks: which attributes are shell code, the shell that runs them with
//! `kilnAllowShell`, their environment, hooks given as typed steps or as `patchShebangs` lines,
//! and `preHook`/`postHook`/`buildCommand`.

use super::*;

impl<'r, 'a> Translator<'r, 'a> {
    /// Names in `phases` and the `pre…Phases` lists that are not stdenv's own: attributes of
    /// shell code.
    pub(super) fn custom_phase_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let lists = std::iter::once("phases").chain(PHASE_LISTS.iter().map(|(list, _)| *list));
        for list in lists {
            for entry in self.r.list(list).unwrap_or_default() {
                if !STANDARD.iter().any(|(_, stdenv, _)| *stdenv == entry) {
                    names.insert(entry);
                }
            }
        }
        names
    }

    /// Refuses unsupported attributes, collects shell code, warns about unknown stdenv-looking
    /// attributes. Returns each shell-code attribute with its replacement.
    pub(super) fn classify(&mut self, custom: &BTreeSet<String>) -> Vec<(String, &'static str)> {
        let mut shell = Vec::new();
        for (name, value) in self.r.all() {
            match table::lookup(name).map(|row| row.status) {
                Some(Status::Unsupported(why)) if !is_empty(value) => self.r.error(
                    JsonPath::root().key(name.clone()),
                    TranslateErrorKind::Unsupported {
                        attribute: name.clone(),
                        why,
                    },
                ),
                Some(Status::Shell(replacement)) if !is_empty(value) => {
                    if value.as_str().and_then(typed_hook).is_some() {
                        // Only `patchShebangs` lines: typed steps, not shell code.
                    } else if value.is_array() {
                        self.check_typed_steps(name, value);
                    } else if value.is_string() {
                        shell.push((name.clone(), replacement));
                    } else {
                        self.r.wrong_type(
                            JsonPath::root().key(name.clone()),
                            "a string of shell code or a list of typed steps",
                            value,
                        );
                    }
                }
                Some(_) => {}
                None if custom.contains(name) && value.as_str().and_then(typed_hook).is_some() => {}
                None if custom.contains(name) && value.is_array() => {
                    self.check_typed_steps(name, value)
                }
                None if custom.contains(name) => shell.push((
                    name.clone(),
                    "a phase of typed steps, placed with `edits` (`before`/`after`)",
                )),
                None => {
                    if let Some(warning) = unknown_attribute_warning(name) {
                        self.report.warnings.push(warning);
                    }
                }
            }
        }
        shell
    }

    /// `kilnShell`, else the first `bin/bash`, else the first `bin/sh`, of the dependencies.
    pub(super) fn find_shell(&self) -> Option<String> {
        if let Some(shell) = self.r.string("kilnShell") {
            return Some(shell);
        }
        let order = [
            "nativeBuildInputs",
            "propagatedNativeBuildInputs",
            "buildInputs",
            "propagatedBuildInputs",
        ];
        let roots: Vec<&String> = order
            .iter()
            .filter_map(|name| self.inputs.get(*name))
            .flat_map(|input| input.paths())
            .collect();
        ["bin/bash", "bin/sh"].iter().find_map(|program| {
            roots
                .iter()
                .map(|root| format!("{}/{program}", root.trim_end_matches('/')))
                .find(|candidate| (self.options.is_executable)(candidate))
        })
    }

    /// What shell hooks see: string, number and boolean attributes (lists of them joined with
    /// spaces) that are not shell code, plus `prefix`.
    pub(super) fn shell_env(&self, custom: &BTreeSet<String>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (name, value) in self.r.all() {
            let shell_code = table::lookup(name)
                .is_some_and(|row| matches!(row.status, Status::Shell(_)))
                || custom.contains(name);
            if shell_code || !is_env_name(name) || name == "env" || name == "outputs" {
                continue;
            }
            let text = match value {
                Value::Array(items) => {
                    let words: Option<Vec<String>> = items.iter().map(scalar).collect();
                    match words {
                        Some(words) => words.join(" "),
                        None => continue,
                    }
                }
                other => match scalar(other) {
                    Some(text) => text,
                    None => continue,
                },
            };
            env.insert(name.clone(), literal(&text));
        }
        env.entry("prefix".to_owned())
            .or_insert_with(|| "${outputs.out}".to_owned());
        env
    }

    /// A run step of shell code.
    pub(super) fn shell_step(&self, script: &str, phase_script: bool) -> Step {
        let shell = self.report.shell.clone().unwrap_or_else(|| "sh".to_owned());
        let script = if phase_script {
            // kiln runs preX/postX around the phase itself.
            format!("runHook() {{ :; }}\n{script}")
        } else {
            script.to_owned()
        };
        Step::Run(RunStep {
            argv: vec![
                literal(&shell),
                "-e".to_owned(),
                "-c".to_owned(),
                literal(&script),
            ],
            env: self.shell_env.clone(),
            cwd: None,
            stdout: None,
        })
    }

    /// Reports a list-valued hook that is not a list of valid steps.
    pub(super) fn check_typed_steps(&self, attribute: &str, value: &Value) {
        let at = JsonPath::root().key(attribute);
        if let Err(error) = kiln_schema::parse::from_value::<Vec<Step>>(value.clone(), &at) {
            self.r.error(
                error.path.clone(),
                TranslateErrorKind::InvalidPlan {
                    message: error.kind.to_string(),
                    generated: error.path.to_string(),
                },
            );
        }
    }

    /// A hook or phase attribute as steps: a list of typed steps (kiln's typed form of
    /// `postInstall` and the like), else [`Translator::shell_hook`]'s one step.
    pub(super) fn hook_steps(
        &mut self,
        attribute: &str,
        phase: &str,
    ) -> Option<(Vec<Step>, Vec<String>)> {
        let value = self.r.all().get(attribute)?;
        if value.is_array() {
            if is_empty(value) {
                return None;
            }
            let at = JsonPath::root().key(attribute);
            let steps: Vec<Step> = kiln_schema::parse::from_value(value.clone(), &at).ok()?;
            return Some((steps, vec![format!("{attribute} (typed steps)")]));
        }
        self.shell_hook(attribute, phase)
            .map(|(step, from)| (vec![step], from))
    }

    pub(super) fn shell_hook(
        &mut self,
        attribute: &str,
        phase: &str,
    ) -> Option<(Step, Vec<String>)> {
        let value = self.r.all().get(attribute)?.as_str()?;
        if value.is_empty() {
            return None;
        }
        if let Some(step) = typed_hook(value) {
            return Some((step, vec![format!("{attribute} (patchShebangs, typed)")]));
        }
        self.report.shell.as_ref()?;
        let replacement = table::lookup(attribute)
            .map(|row| row.status.text())
            .unwrap_or("a phase of typed steps, placed with `edits` (`before`/`after`)");
        self.report.shell_hooks.push(ShellHook {
            attribute: attribute.to_owned(),
            phase: phase.to_owned(),
            replacement: replacement.to_owned(),
        });
        let phase_script = attribute.ends_with("Phase");
        Some((
            self.shell_step(value, phase_script),
            vec![format!("{attribute} (shell code, kilnAllowShell)")],
        ))
    }

    /// The standard phases' hooks and phase strings: `…Phase` replaces a phase's steps,
    /// `pre…` and `post…` go around them (without a shell, only the typed `patchShebangs` ones:
    /// shell code without the opt-in was refused already).
    pub(super) fn standard_hooks(&mut self, drafts: &mut [Draft]) {
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
    }

    /// `preHook` and `postHook`, in a phase `setup` (stdenv runs them while setting up).
    pub(super) fn setup_phase(&mut self) -> Option<Draft> {
        let mut draft = self.draft("setup", "setup.sh", "stdenv preHook/postHook".to_owned());
        for hook in ["preHook", "postHook"] {
            if let Some((steps, from)) = self.hook_steps(hook, "setup") {
                for step in steps {
                    draft.push(step, from.clone());
                }
            }
        }
        (!draft.phase.steps.is_empty()).then_some(draft)
    }

    /// `buildCommand` / `buildCommandPath`: the whole build.
    pub(super) fn build_command(&mut self) -> Option<Draft> {
        let attribute = ["buildCommand", "buildCommandPath"]
            .into_iter()
            .find(|name| self.r.all().get(*name).is_some_and(|v| !is_empty(v)))?;
        let mut draft = self.draft("build", attribute, format!("stdenv {attribute}"));
        draft
            .switch
            .push(format!("{attribute} (genericBuild runs only it)"));
        if attribute == "buildCommand" {
            let (steps, from) = self.hook_steps(attribute, "build")?;
            for step in steps {
                draft.push(step, from.clone());
            }
        } else {
            let path = self.r.all()[attribute]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.report.shell_hooks.push(ShellHook {
                attribute: attribute.to_owned(),
                phase: "build".to_owned(),
                replacement: table::lookup(attribute)
                    .map(|row| row.status.text())
                    .unwrap_or_default()
                    .to_owned(),
            });
            let shell = self.report.shell.clone().unwrap_or_else(|| "sh".to_owned());
            draft.push(
                Step::Run(RunStep {
                    argv: vec![literal(&shell), "-e".to_owned(), literal(&path)],
                    env: self.shell_env.clone(),
                    cwd: None,
                    stdout: None,
                }),
                vec![format!("{attribute} (shell code, kilnAllowShell)")],
            );
        }
        Some(draft)
    }
}

/// A hook that only calls stdenv's `patchShebangs` (the commonest `postPatch` in nixpkgs:
/// `patchShebangs tests`), as one typed `patchShebangs` step: lines of `patchShebangs
/// [--build] PATH...` with plain paths (letters, digits, `._/+-@=,`; no `$`, quotes, globs or
/// options other than `--build`), blank lines and `#` comments. Anything else is shell code.
pub(super) fn typed_hook(script: &str) -> Option<Step> {
    let plain = |word: &str| {
        !word.starts_with('-')
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/+-@=,".contains(&b))
    };
    let mut paths = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("patchShebangs") {
            return None;
        }
        let mut named = 0;
        for word in words {
            match word {
                "--build" if named == 0 => {}
                word if plain(word) => {
                    paths.push(word.to_owned());
                    named += 1;
                }
                _ => return None,
            }
        }
        if named == 0 {
            return None;
        }
    }
    (!paths.is_empty()).then_some(Step::PatchShebangs(PatchShebangsStep { paths }))
}

/// A warning for an attribute kiln does not know, when it looks like stdenv vocabulary.
pub(super) fn unknown_attribute_warning(name: &str) -> Option<String> {
    let upper_after = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
    };
    let looks = ["dont", "do", "pre", "post"].iter().any(|p| upper_after(p))
        || [
            "Flags", "Phase", "Phases", "Inputs", "Hook", "Hooks", "Array",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix) && name.len() > suffix.len());
    if !looks {
        return None;
    }
    let known: Vec<String> = table::ATTRIBUTES
        .iter()
        .map(|a| a.name.to_owned())
        .collect();
    let suggestion = kiln_schema::error::suggest(name, &known, "attributes");
    let suggestion = if suggestion.starts_with("did you mean") {
        format!(" ({suggestion})")
    } else {
        String::new()
    };
    Some(format!(
        "attribute `{}` looks like stdenv vocabulary but kiln does not know it: ignored, as stdenv with __structuredAttrs ignores unknown attributes{suggestion}",
        kiln_schema::excerpt::excerpt(name)
    ))
}
