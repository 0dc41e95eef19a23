//! Outputs and their roles: the output names, stdenv's `outputDev`/`outputBin`/… overrides,
//! and the roles' directory flags for autotools, CMake and Meson.
//!
//! The roles are resolved by [`kiln_schema::roles::Roles::new`], the resolution the fixup's
//! moves use too, so the configure flags and the moves cannot disagree: `outputMan` and
//! `outputInfo` fall back to `outputBin`, never to `doc`.

pub(crate) use kiln_schema::roles::Roles;
use kiln_schema::roles::{Destination, RoleError, REMOVE};

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
    pub(super) fn role_overrides(&self) -> OutputRoles {
        let mut overrides = OutputRoles::default();
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
            let remove = attribute == "outputDevdoc" && name == REMOVE;
            if !remove && !self.outputs.contains(&name) {
                self.r.error(
                    JsonPath::root().key(attribute),
                    TranslateErrorKind::OutputRole {
                        message: RoleError::UnknownRoleOutput {
                            role: attribute,
                            name,
                            known: self.outputs.clone(),
                        }
                        .to_string(),
                    },
                );
                continue;
            }
            *slot = Some(name);
        }
        overrides
    }
}

/// `${outputs.NAME}`: a reference to an output's path.
pub(super) fn output_ref(name: &str) -> String {
    format!("${{outputs.{name}}}")
}

/// What the translation makes of the resolved roles: the directory flags stdenv's hooks pass, and
/// the roles it goes on with after an error.
pub(crate) trait DirectoryFlags {
    /// Every role in `out`: what the translation goes on with after reporting a role error.
    fn all_out() -> Self;
    /// `_multioutConfig`'s configure flags.
    fn autotools_flags(&self, share_doc: &str) -> Vec<String>;
    /// `_multioutConfig`'s install flags.
    fn autotools_install_flags(&self) -> Vec<String>;
    /// nixpkgs' cmake hook's directory flags (always passed: the hook ignores
    /// `setOutputFlags`), in the hook's order; `CMAKE_INSTALL_DOCDIR` comes later.
    fn cmake_flags(&self) -> Vec<String>;
    /// nixpkgs' meson hook's directory flags (always passed: the hook ignores `setOutputFlags`).
    fn meson_flags(&self) -> Vec<String>;
}

impl DirectoryFlags for Roles {
    fn all_out() -> Roles {
        let out = || "out".to_owned();
        Roles {
            dev: out(),
            bin: out(),
            include: out(),
            lib: out(),
            doc: out(),
            devdoc: Destination::Remove,
            man: out(),
            devman: out(),
            info: out(),
        }
    }

    fn autotools_flags(&self, share_doc: &str) -> Vec<String> {
        let o = output_ref;
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

    fn autotools_install_flags(&self) -> Vec<String> {
        let o = output_ref;
        vec![
            format!("pkgconfigdir={}/lib/pkgconfig", o(&self.dev)),
            format!("m4datadir={}/share/aclocal", o(&self.dev)),
            format!("aclocaldir={}/share/aclocal", o(&self.dev)),
        ]
    }

    fn cmake_flags(&self) -> Vec<String> {
        let o = output_ref;
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

    fn meson_flags(&self) -> Vec<String> {
        let o = output_ref;
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
