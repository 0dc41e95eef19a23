//! Output roles: which output each kind of file goes to, as nixpkgs' `multiple-outputs.sh`
//! decides it (`outputDev`, `outputBin`, …).
//!
//! [`OutputRoles`] holds the roles a plan or a derivation sets itself; [`Roles::new`] completes
//! them for the outputs that exist, exactly as stdenv's `_overrideFirst` chains do, in their
//! order: `outputDev` = `dev` or `out`, `outputBin` = `bin` or `out`, `outputInclude` = the dev
//! output, `outputLib` = `lib` or `out`, `outputDoc` = `doc` or `out`, `outputDevdoc` = `devdoc`
//! or removed, `outputMan` = `man` or the bin output, `outputDevman` = `devman`, `devdoc` or the
//! man output, `outputInfo` = `info` or the bin output. A role that is set replaces its chain,
//! and later chains build on it (`outputBin = "dev"` makes `outputMan` default to `dev` when
//! there is no `man` output).
//!
//! This is the one resolution: the fixup's moves (`kiln-fixup`) and the directory flags of the
//! stdenv translation (`kiln-stdenv`) both use it, so they cannot disagree.
//!
//! ```
//! use kiln_schema::roles::{Destination, Roles};
//! use kiln_schema::OutputRoles;
//!
//! let set = OutputRoles { bin: Some("dev".into()), ..OutputRoles::default() };
//! let roles = Roles::new(["out", "dev"], &set).unwrap();
//! assert_eq!((&roles.bin[..], &roles.man[..], &roles.lib[..]), ("dev", "dev", "out"));
//! assert_eq!(roles.devdoc, Destination::Remove);
//! ```

use thiserror::Error;

use crate::steps::OutputRoles;

/// stdenv's word for "delete it" as an `outputDevdoc`.
pub const REMOVE: &str = "REMOVE";

/// Where the files of a role (or of a `moveToOutput` call) go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Into this output.
    Output(String),
    /// Deleted (stdenv's `REMOVE`).
    Remove,
}

/// Which output each role's files go to, after stdenv's defaults; fields hold output names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// `outputDev`: pkg-config, CMake and aclocal files, and the propagation files.
    pub dev: String,
    /// `outputBin`: programs.
    pub bin: String,
    /// `outputInclude`: `include/`.
    pub include: String,
    /// `outputLib`: libraries.
    pub lib: String,
    /// `outputDoc`: `share/doc`.
    pub doc: String,
    /// `outputDevdoc`: `share/gtk-doc`, `share/devhelp/books`.
    pub devdoc: Destination,
    /// `outputMan`: `share/man`.
    pub man: String,
    /// `outputDevman`: `share/man/man3`.
    pub devman: String,
    /// `outputInfo`: `share/info`.
    pub info: String,
}

/// Why the roles could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoleError {
    /// None of the outputs a role may go to exists (stdenv's `_assignFirst`).
    #[error("no output for `{role}`: none of {} exists", quoted(.candidates))]
    NoOutputForRole {
        /// The role (`outputDev`, `outputBin`, ...).
        role: &'static str,
        /// The outputs tried, in order.
        candidates: Vec<String>,
    },

    /// A role that is set names an output the derivation does not have.
    #[error("`{role}` is `{name}`, which is not an output (outputs: {})", known.join(", "))]
    UnknownRoleOutput {
        /// The role (`outputDev`, `outputBin`, ...).
        role: &'static str,
        /// The output it names.
        name: String,
        /// The derivation's outputs.
        known: Vec<String>,
    },
}

fn quoted(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| format!("`{item}`")).collect();
    items.join(", ")
}

impl Roles {
    /// stdenv's roles for a derivation with these outputs that sets the roles in `set` itself:
    /// multiple-outputs.sh's `_overrideFirst` chains, in its order, each skipped when its role
    /// is set. A set role MUST name one of the outputs, except that `devdoc` may be [`REMOVE`].
    pub fn new(
        outputs: impl IntoIterator<Item = impl AsRef<str>>,
        set: &OutputRoles,
    ) -> Result<Roles, RoleError> {
        let outputs: Vec<String> = outputs
            .into_iter()
            .map(|name| name.as_ref().to_owned())
            .collect();
        let first = |role: &'static str, set: &Option<String>, candidates: &[&str]| {
            if let Some(name) = set {
                return if outputs.contains(name) {
                    Ok(name.clone())
                } else {
                    Err(RoleError::UnknownRoleOutput {
                        role,
                        name: name.clone(),
                        known: outputs.clone(),
                    })
                };
            }
            candidates
                .iter()
                .find(|candidate| outputs.iter().any(|output| output == *candidate))
                .map(|found| (*found).to_owned())
                .ok_or_else(|| RoleError::NoOutputForRole {
                    role,
                    candidates: candidates.iter().map(|c| (*c).to_owned()).collect(),
                })
        };
        let dev = first("outputDev", &set.dev, &["dev", "out"])?;
        let bin = first("outputBin", &set.bin, &["bin", "out"])?;
        let include = first("outputInclude", &set.include, &[&dev])?;
        let lib = first("outputLib", &set.lib, &["lib", "out"])?;
        let doc = first("outputDoc", &set.doc, &["doc", "out"])?;
        let devdoc = match &set.devdoc {
            Some(remove) if remove == REMOVE => Destination::Remove,
            devdoc => match first("outputDevdoc", devdoc, &["devdoc"]) {
                Ok(name) => Destination::Output(name),
                Err(RoleError::NoOutputForRole { .. }) => Destination::Remove,
                Err(other) => return Err(other),
            },
        };
        let man = first("outputMan", &set.man, &["man", &bin])?;
        let devman = first("outputDevman", &set.devman, &["devman", "devdoc", &man])?;
        let info = first("outputInfo", &set.info, &["info", &bin])?;
        Ok(Roles {
            dev,
            bin,
            include,
            lib,
            doc,
            devdoc,
            man,
            devman,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults<'a>(outputs: impl IntoIterator<Item = &'a str>) -> Result<Roles, RoleError> {
        Roles::new(outputs, &OutputRoles::default())
    }

    #[test]
    fn defaults_follow_stdenv_chains() {
        let single = defaults(["out"]).unwrap();
        assert_eq!(
            (
                &single.dev[..],
                &single.bin[..],
                &single.man[..],
                &single.devman[..]
            ),
            ("out", "out", "out", "out")
        );
        assert_eq!(single.devdoc, Destination::Remove);
        let many = defaults(["out", "dev", "lib", "man", "doc", "devdoc"]).unwrap();
        assert_eq!(many.dev, "dev");
        assert_eq!(many.include, "dev");
        assert_eq!(many.bin, "out");
        assert_eq!(many.lib, "lib");
        assert_eq!(many.doc, "doc");
        assert_eq!(many.devdoc, Destination::Output("devdoc".into()));
        assert_eq!(many.man, "man");
        assert_eq!(many.devman, "devdoc");
        assert_eq!(many.info, "out");
        let with_bin = defaults(["out", "bin", "dev"]).unwrap();
        assert_eq!((&with_bin.man[..], &with_bin.info[..]), ("bin", "bin"));
        // A role the derivation sets moves the defaults that build on it.
        let overrides = OutputRoles {
            bin: Some("dev".into()),
            include: Some("out".into()),
            devdoc: Some(REMOVE.into()),
            ..OutputRoles::default()
        };
        let set = Roles::new(["out", "dev", "devdoc"], &overrides).unwrap();
        assert_eq!(set.bin, "dev");
        assert_eq!((&set.man[..], &set.info[..]), ("dev", "dev"));
        assert_eq!(set.devman, "devdoc");
        assert_eq!(set.include, "out");
        assert_eq!(set.dev, "dev");
        assert_eq!(set.devdoc, Destination::Remove);
        let unknown = OutputRoles {
            lib: Some("lib".into()),
            ..OutputRoles::default()
        };
        assert_eq!(
            Roles::new(["out", "dev"], &unknown)
                .unwrap_err()
                .to_string(),
            "`outputLib` is `lib`, which is not an output (outputs: out, dev)"
        );
        assert_eq!(
            defaults(["lib"]).unwrap_err().to_string(),
            "no output for `outputDev`: none of `dev`, `out` exists"
        );
    }
}
