//! Outputs and their roles: the output names, stdenv's `outputDev`/`outputBin`/… overrides,
//! and the roles' directory flags for autotools, CMake and Meson.

use super::*;

impl<'r, 'a> Translator<'r, 'a> {
    /// Output names, sorted (Nix writes them as an object; a list is accepted too).
    pub(super) fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.r.raw("outputs") {
            Some(Value::Object(outputs)) => outputs.keys().cloned().collect(),
            Some(value @ Value::Array(_)) => self
                .r
                .list_value(JsonPath::root().key("outputs"), value)
                .unwrap_or_default(),
            Some(other) => {
                self.r.wrong_type(
                    JsonPath::root().key("outputs"),
                    "an object of outputs",
                    other,
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        if names.is_empty() {
            names.push("out".to_owned());
        }
        names.sort();
        names.dedup();
        names
    }

    /// The roles multiple-outputs.sh lets a derivation set (`outputDev = "lib"`, …); each must
    /// name an output (`outputDevdoc` may be `REMOVE`).
    pub(super) fn role_overrides(&self) -> RoleOverrides {
        let mut overrides = RoleOverrides::default();
        let roles: [(&'static str, &mut Option<String>); 9] = [
            ("outputDev", &mut overrides.dev),
            ("outputBin", &mut overrides.bin),
            ("outputInclude", &mut overrides.include),
            ("outputLib", &mut overrides.lib),
            ("outputDoc", &mut overrides.doc),
            ("outputDevdoc", &mut overrides.devdoc),
            ("outputMan", &mut overrides.man),
            ("outputDevman", &mut overrides.devman),
            ("outputInfo", &mut overrides.info),
        ];
        for (attribute, slot) in roles {
            let Some(name) = self.r.string(attribute).filter(|name| !name.is_empty()) else {
                continue;
            };
            let remove = attribute == "outputDevdoc" && name == kiln_fixup::outputs::REMOVE;
            if !remove && !self.outputs.contains(&name) {
                self.r.error(
                    JsonPath::root().key(attribute),
                    TranslateErrorKind::OutputRole {
                        message: format!(
                            "`{attribute}` is `{name}`, which is not an output (outputs: {})",
                            self.outputs.join(", ")
                        ),
                    },
                );
                continue;
            }
            *slot = Some(name);
        }
        overrides
    }
}

/// stdenv's output roles (`_overrideFirst` chains of multiple-outputs.sh, after the roles the
/// derivation sets), taken from `kiln_fixup::outputs::MultipleOutputs::stdenv_with` so that the
/// configure flags and the fixup's moves agree: `outputMan` and `outputInfo` fall back to
/// `outputBin`, never to `doc`.
pub(crate) struct Roles {
    pub(crate) bin: String,
    pub(crate) include: String,
    pub(crate) lib: String,
    pub(crate) doc: String,
    pub(crate) man: String,
    pub(crate) info: String,
    pub(crate) dev: String,
}

impl Roles {
    pub(crate) fn new(
        outputs: &[String],
        overrides: &RoleOverrides,
    ) -> Result<Roles, kiln_fixup::StepError> {
        let roles = MultipleOutputs::stdenv_with(outputs.iter().map(String::as_str), overrides)?;
        Ok(Roles {
            bin: roles.bin,
            include: roles.include,
            lib: roles.lib,
            doc: roles.doc,
            man: roles.man,
            info: roles.info,
            dev: roles.dev,
        })
    }

    /// Every role in `out`: what the translation goes on with after reporting a role error.
    pub(super) fn all_out() -> Roles {
        let out = || "out".to_owned();
        Roles {
            bin: out(),
            include: out(),
            lib: out(),
            doc: out(),
            man: out(),
            info: out(),
            dev: out(),
        }
    }

    pub(super) fn out(name: &str) -> String {
        format!("${{outputs.{name}}}")
    }

    /// `_multioutConfig`'s configure flags.
    pub(super) fn autotools_flags(&self, share_doc: &str) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("--bindir={}/bin", o(&self.bin)),
            format!("--sbindir={}/sbin", o(&self.bin)),
            format!("--includedir={}/include", o(&self.include)),
            format!("--oldincludedir={}/include", o(&self.include)),
            format!("--mandir={}/share/man", o(&self.man)),
            format!("--infodir={}/share/info", o(&self.info)),
            format!("--docdir={}/share/doc/{share_doc}", o(&self.doc)),
            format!("--libdir={}/lib", o(&self.lib)),
            format!("--libexecdir={}/libexec", o(&self.lib)),
            format!("--localedir={}/share/locale", o(&self.lib)),
        ]
    }

    /// `_multioutConfig`'s install flags.
    pub(super) fn autotools_install_flags(&self) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("pkgconfigdir={}/lib/pkgconfig", o(&self.dev)),
            format!("m4datadir={}/share/aclocal", o(&self.dev)),
            format!("aclocaldir={}/share/aclocal", o(&self.dev)),
        ]
    }

    /// nixpkgs' cmake hook's directory flags (always passed: the hook ignores
    /// `setOutputFlags`), in the hook's order; `CMAKE_INSTALL_DOCDIR` comes later.
    pub(super) fn cmake_flags(&self) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("-DCMAKE_INSTALL_NAME_DIR={}/lib", o(&self.lib)),
            format!("-DCMAKE_INSTALL_BINDIR={}/bin", o(&self.bin)),
            format!("-DCMAKE_INSTALL_SBINDIR={}/sbin", o(&self.bin)),
            format!("-DCMAKE_INSTALL_INCLUDEDIR={}/include", o(&self.include)),
            format!("-DCMAKE_INSTALL_MANDIR={}/share/man", o(&self.man)),
            format!("-DCMAKE_INSTALL_INFODIR={}/share/info", o(&self.info)),
            format!("-DCMAKE_INSTALL_LIBDIR={}/lib", o(&self.lib)),
            format!("-DCMAKE_INSTALL_LIBEXECDIR={}/libexec", o(&self.lib)),
            format!("-DCMAKE_INSTALL_LOCALEDIR={}/share/locale", o(&self.lib)),
        ]
    }

    /// nixpkgs' meson hook's directory flags (always passed: the hook ignores `setOutputFlags`).
    pub(super) fn meson_flags(&self) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("--libdir={}/lib", o(&self.lib)),
            format!("--libexecdir={}/libexec", o(&self.lib)),
            format!("--bindir={}/bin", o(&self.bin)),
            format!("--sbindir={}/sbin", o(&self.bin)),
            format!("--includedir={}/include", o(&self.include)),
            format!("--mandir={}/share/man", o(&self.man)),
            format!("--infodir={}/share/info", o(&self.info)),
            format!("--localedir={}/share/locale", o(&self.lib)),
        ]
    }
}
