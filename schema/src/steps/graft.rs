//! `graft`: a copy of a store path with some of its dependencies' paths replaced.

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{empty, StepFields};
use crate::error::{PlanError, PlanErrorKind, Problems};
use crate::excerpt::excerpt;
use crate::path::JsonPath;

/// Copy a store path (a file, a directory tree or a symlink) to a new path while replacing the
/// store paths of some of its dependencies by others of the same length, without rebuilding it
/// (nixpkgs' `replaceDependencies`, Guix's grafts). Each old path's base name
/// (`HASH-NAME`) is replaced in file contents at any byte offset (binaries included: the lengths
/// are equal, so offsets stay valid), inside gzip files (decompressed, rewritten, compressed
/// again), in symlink targets and in file and directory names. Modes are kept except setuid and
/// setgid; mtimes are kept (a store path's are already 1, what Nix sets); hard links stay hard
/// links and holes in sparse files stay holes; symlinks are copied, never followed. Afterwards
/// the new tree is checked: if the hash part of an old path is still anywhere in it (contents,
/// names, symlink targets, or the decompressed contents of a gzip, bzip2, xz or zstd file,
/// which kiln cannot rewrite), the step fails naming the file and the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GraftStep {
    /// What to copy: a store path, e.g. `${inputs.app}`.
    pub from: String,
    /// Where to put the copy: the new path itself, e.g. `${outputs.out}`. It MUST NOT exist;
    /// missing parents are created.
    pub to: String,
    /// Old store path → new store path, e.g. `{"/nix/store/…-zlib-1.3.1":
    /// "/nix/store/…-zlib-1.3.2"}`. Each new path MUST be exactly as long as the old one it
    /// replaces (refused when the plan is loaded otherwise, saying how many characters to add or
    /// remove). Both are store paths (`STORE_DIR/HASH-NAME`) in the same store directory. Old
    /// paths are written literally (no `${…}` references, so that they are checked when the plan
    /// is loaded); a new path may be a reference, e.g. `${outputs.out}` to rewrite the copy's
    /// references to itself, and is then checked when the step runs. No two old paths may share
    /// a hash part or contain one another's, and a new path MUST NOT contain an old path's hash
    /// part (replacements are not chained).
    pub replace: BTreeMap<String, String>,
}

/// Why a `graft` replacement is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraftProblem {
    /// An old or new path is not `STORE_DIR/HASH-NAME`.
    #[error("`{}` is not a store path: {why}", excerpt(path))]
    NotAStorePath {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The new path is longer or shorter than the old one.
    #[error(
        "`{}` ({} characters) cannot replace `{}` ({} characters): a graft keeps every path's \
         length, so {} {} character{} {} the new path's name",
        excerpt(new), new.chars().count(), excerpt(old), old.chars().count(),
        if new.len() < old.len() { "add" } else { "remove" },
        old.len().abs_diff(new.len()),
        if old.len().abs_diff(new.len()) == 1 { "" } else { "s" },
        if new.len() < old.len() { "to" } else { "from" },
    )]
    Length {
        /// The old path.
        old: String,
        /// The new path.
        new: String,
    },
    /// A path is in another store directory than the first old path.
    #[error(
        "`{}` is not in `{}`, the store directory of the other replacements",
        excerpt(path),
        excerpt(store_dir)
    )]
    StoreDir {
        /// The path.
        path: String,
        /// The first old path's store directory.
        store_dir: String,
    },
    /// An old path replaced by itself.
    #[error("`{}` is replaced by itself", excerpt(path))]
    Itself {
        /// The path.
        path: String,
    },
    /// Two old paths share a hash part, or one holds the other's: which to replace is ambiguous.
    #[error(
        "`{}` holds the hash part of `{}`, also replaced: the rewrite would be ambiguous",
        excerpt(old),
        excerpt(other)
    )]
    Ambiguous {
        /// The old path.
        old: String,
        /// The other old path.
        other: String,
    },
    /// A new path holds the hash part of an old path.
    #[error(
        "the new path `{}` holds the hash part of `{}`, which is itself replaced: replacements \
         are not chained",
        excerpt(new),
        excerpt(other)
    )]
    Chained {
        /// The new path.
        new: String,
        /// The old path whose hash it holds.
        other: String,
    },
}

impl GraftProblem {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            GraftProblem::Length { .. } => Some(
                "build the replacement under a name of the same length as the old one (e.g. pad \
                 or shorten its `pname` or `version`): binaries hold paths at fixed offsets"
                    .to_owned(),
            ),
            GraftProblem::Chained { .. } => {
                Some("map every old path straight to its final replacement".to_owned())
            }
            _ => None,
        }
    }
}

const NIX_BASE32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The longest name of a store path, after its hash and dash (Nix's limit).
const MAX_STORE_NAME: usize = 211;

/// The store directory and base name (`HASH-NAME`) of the store path `path`, or why it is not
/// one.
pub fn split_store_path(path: &str) -> Result<(&str, &str), &'static str> {
    if !path.starts_with('/') {
        return Err("it is not absolute");
    }
    let (dir, base) = path.rsplit_once('/').expect("it starts with `/`");
    if dir.is_empty() {
        return Err("it is not inside a store directory");
    }
    if dir[1..]
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("its store directory is not a normal absolute path");
    }
    let bytes = base.as_bytes();
    if bytes.len() < 34 || bytes[32] != b'-' || !bytes[..32].iter().all(|b| NIX_BASE32.contains(b))
    {
        return Err("its last component is not `HASH-NAME` with a 32-character base-32 hash");
    }
    let name = &base[33..];
    if name.len() > MAX_STORE_NAME {
        return Err("its name is longer than 211 characters");
    }
    if name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b))
    {
        return Err("its name has characters a store path cannot have (or starts with `.`)");
    }
    Ok((dir, base))
}

/// [`split_store_path`], failing with the problem to report.
fn store_path(path: &str) -> Result<(&str, &str), GraftProblem> {
    split_store_path(path).map_err(|why| GraftProblem::NotAStorePath {
        path: path.to_owned(),
        why,
    })
}

impl GraftStep {
    /// The problems of `replace`, at `path` (the step's): each at `path.replace[OLD]`. A new
    /// path holding a `${…}` reference is only checked when `resolved` (when the step runs).
    pub fn check_replacements(&self, path: &JsonPath, resolved: bool, errors: &mut Problems) {
        let mut report = |old: &str, problem: GraftProblem| {
            errors.push_with(|| {
                PlanError::new(
                    path.key("replace").key(old),
                    PlanErrorKind::Graft { problem },
                )
            });
        };
        let mut store_dir: Option<&str> = None;
        // Hash part → the old path it belongs to.
        let mut hashes: HashMap<&str, &str> = HashMap::new();
        let mut valid = Vec::new();
        for (old, new) in &self.replace {
            let old_parts = match store_path(old) {
                Ok(parts) => parts,
                Err(problem) => {
                    report(old, problem);
                    continue;
                }
            };
            let expected = *store_dir.get_or_insert(old_parts.0);
            if old_parts.0 != expected {
                let (path, store_dir) = (old.clone(), expected.to_owned());
                report(old, GraftProblem::StoreDir { path, store_dir });
                continue;
            }
            if let Some(other) = hashes.insert(&old_parts.1[..32], old) {
                let other = other.to_owned();
                report(
                    old,
                    GraftProblem::Ambiguous {
                        old: old.clone(),
                        other,
                    },
                );
                continue;
            }
            valid.push((old, old_parts.1, new));
        }
        let holder = |text: &str, own: &str| -> Option<String> {
            let bytes = text.as_bytes();
            (0..bytes.len().saturating_sub(31))
                .filter_map(|at| text.get(at..at + 32))
                .filter_map(|window| hashes.get(window))
                .find(|other| **other != own)
                .map(|other| (*other).to_owned())
        };
        for (old, base, new) in valid {
            // The name part: the hash itself is the old path's own.
            if let Some(other) = holder(&base[32..], old) {
                report(
                    old,
                    GraftProblem::Ambiguous {
                        old: old.clone(),
                        other,
                    },
                );
            }
            if !resolved && new.contains("${") {
                continue;
            }
            let new_parts = match store_path(new) {
                Ok(parts) => parts,
                Err(problem) => {
                    report(old, problem);
                    continue;
                }
            };
            if new == old {
                report(old, GraftProblem::Itself { path: old.clone() });
            } else if new.len() != old.len() {
                report(
                    old,
                    GraftProblem::Length {
                        old: old.clone(),
                        new: new.clone(),
                    },
                );
            } else if Some(new_parts.0) != store_dir {
                let store_dir = store_dir.unwrap_or_default().to_owned();
                report(
                    old,
                    GraftProblem::StoreDir {
                        path: new.clone(),
                        store_dir,
                    },
                );
            } else if let Some(other) = holder(new_parts.1, "") {
                report(
                    old,
                    GraftProblem::Chained {
                        new: new.clone(),
                        other,
                    },
                );
            }
        }
    }
}

impl StepFields for GraftStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("from"), &mut self.from);
        visit(path.key("to"), &mut self.to);
        for (old, new) in self.replace.iter_mut() {
            visit(path.key("replace").key(old), new);
        }
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.from.is_empty() {
            errors.push(empty(path, "from", "the source path"));
        }
        if self.to.is_empty() {
            errors.push(empty(path, "to", "the destination path"));
        }
        if self.replace.is_empty() {
            errors.push(empty(path, "replace", "the replacements"));
        }
        self.check_replacements(path, false, errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "/nix/store/0c5gwrxsxp9qhdnyqv2qbs4b5m2hzi2w-zlib-1.3.1";
    const NEW: &str = "/nix/store/1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3.2";

    fn graft(pairs: &[(&str, &str)]) -> GraftStep {
        GraftStep {
            from: "${inputs.app}".to_owned(),
            to: "${outputs.out}".to_owned(),
            replace: pairs
                .iter()
                .map(|(old, new)| ((*old).to_owned(), (*new).to_owned()))
                .collect(),
        }
    }

    fn problems(step: &GraftStep, resolved: bool) -> Vec<String> {
        let mut errors = Problems::new();
        step.check_replacements(&JsonPath::root().key("graft"), resolved, &mut errors);
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn same_length_store_paths_are_accepted() {
        assert!(problems(&graft(&[(OLD, NEW)]), true).is_empty());
        // A reference is checked only once resolved.
        assert!(problems(&graft(&[(OLD, "${outputs.out}")]), false).is_empty());
        assert_eq!(problems(&graft(&[(OLD, "${outputs.out}")]), true).len(), 1);
    }

    #[test]
    fn a_length_mismatch_names_both_paths_and_what_to_change() {
        let longer = "/nix/store/1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3.1.1";
        let found = problems(&graft(&[(OLD, longer)]), true);
        assert_eq!(
            found,
            [format!(
                "at `graft.replace[\"{OLD}\"]`: `{longer}` (56 characters) cannot replace \
                 `{OLD}` (54 characters): a graft keeps every path's length, so remove 2 \
                 characters from the new path's name"
            )]
        );
        let shorter = "/nix/store/1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3";
        assert!(problems(&graft(&[(OLD, shorter)]), true)[0]
            .contains("so add 2 characters to the new path's name"));
    }

    #[test]
    fn non_store_paths_and_ambiguous_replacements_are_refused() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("relative/x", NEW)], "is not absolute"),
            (
                &[("/nix/store/short-zlib", NEW)],
                "32-character base-32 hash",
            ),
            (
                &[(
                    OLD,
                    "/nix/store/1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3!2",
                )],
                "characters",
            ),
            (&[(OLD, OLD)], "replaced by itself"),
            (
                &[(
                    OLD,
                    "/nix/stor/1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3.21",
                )],
                "store directory",
            ),
            (
                &[
                    (OLD, NEW),
                    (
                        "/nix/store/0c5gwrxsxp9qhdnyqv2qbs4b5m2hzi2w-zlib-1.3.1-dev",
                        "/nix/store/1d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3.2-dev",
                    ),
                ],
                "ambiguous",
            ),
            (
                &[
                    (OLD, NEW),
                    (
                        NEW,
                        "/nix/store/2d6hxsyzxq9rhfnzrv3rcs5c6n3izj3x-zlib-1.3.3",
                    ),
                ],
                "not chained",
            ),
        ];
        for (pairs, expected) in cases {
            let found = problems(&graft(pairs), true);
            assert!(
                found.iter().any(|problem| problem.contains(expected)),
                "{pairs:?}: {found:?}"
            );
        }
    }
}
