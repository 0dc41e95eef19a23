//! Dependencies and the environment: `nativeBuildInputs` and friends as `deps`, and the
//! plan's `env` from `env` and the passed-through attributes.

use super::*;

impl<'r, 'a> Translator<'r, 'a> {
    /// Inputs and dependency roles; returns `(deps, propagate)`.
    pub(super) fn dependencies(&mut self) -> (Deps, Deps) {
        let mut deps = Deps::default();
        let mut propagate = Deps::default();
        let lists: [(&'static str, bool, bool); 4] = [
            ("nativeBuildInputs", true, false),
            ("propagatedNativeBuildInputs", true, true),
            ("buildInputs", false, false),
            ("propagatedBuildInputs", false, true),
        ];
        for (name, build, propagated) in lists {
            let paths = self.r.paths(name);
            if paths.is_empty() {
                continue;
            }
            self.inputs.insert(name.to_owned(), Input::List(paths));
            let role = |deps: &mut Deps| {
                if build {
                    deps.build.push(name.to_owned());
                } else {
                    deps.host.push(name.to_owned());
                }
            };
            role(&mut deps);
            if propagated {
                role(&mut propagate);
            }
        }
        deps.strict = self.r.flag("strictDeps");
        (deps, propagate)
    }

    /// stdenv's exported defaults, then the derivation's `env`.
    pub(super) fn env(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("TZ", "UTC"),
            ("GZIP_NO_TIMESTAMPS", "1"),
            ("SSL_CERT_FILE", "/no-cert-file.crt"),
            ("NIX_SSL_CERT_FILE", "/no-cert-file.crt"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        if self.system == BuildSystem::Cmake {
            // nixpkgs' cmake hook exports them.
            env.insert("CTEST_OUTPUT_ON_FAILURE".to_owned(), "1".to_owned());
            if self.r.flag_or("enableParallelChecking", true) {
                env.insert(
                    "CTEST_PARALLEL_LEVEL".to_owned(),
                    "${build.cores}".to_owned(),
                );
            }
        }
        // cc-wrapper's NIX_HARDENING_ENABLE: nixpkgs' defaults, plus hardeningEnable, minus
        // hardeningDisable (`all` disables every flag). Set only when either is given, so the
        // wrapper's own defaults apply otherwise.
        let disable = self.r.list("hardeningDisable").unwrap_or_default();
        let enable = self.r.list("hardeningEnable").unwrap_or_default();
        if !disable.is_empty() || !enable.is_empty() {
            let mut flags: Vec<String> = kiln_cc::DEFAULT_HARDENING
                .iter()
                .map(|flag| (*flag).to_owned())
                .chain(enable)
                .collect();
            flags.dedup();
            if disable.iter().any(|flag| flag == "all") {
                flags.clear();
            }
            flags.retain(|flag| !disable.contains(flag));
            let mut seen = BTreeSet::new();
            flags.retain(|flag| seen.insert(flag.clone()));
            env.insert("NIX_HARDENING_ENABLE".to_owned(), flags.join(" "));
        }
        match self.r.raw("env") {
            Some(Value::Object(vars)) => {
                for (name, value) in vars {
                    match scalar(value) {
                        Some(text) => {
                            env.insert(name.clone(), literal(&text));
                        }
                        None => self.r.wrong_type(
                            JsonPath::root().key("env").key(name.clone()),
                            "a string",
                            value,
                        ),
                    }
                }
            }
            Some(other) => self
                .r
                .wrong_type(JsonPath::root().key("env"), "an object", other),
            None => {}
        }
        env
    }
}
