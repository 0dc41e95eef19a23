//! `patch`: unified diffs (possibly compressed) and quilt series applied by `kiln-patch`,
//! never through a symlink; a line per patch applied.

use std::path::{Component, Path, PathBuf};

use kiln_schema::events::Level;
use kiln_schema::PatchStep;

use crate::{StepContext, StepEffects, StepError};

/// Applies the patches; the effects are a message per patch.
pub fn run(step: &PatchStep, ctx: &StepContext<'_>) -> Result<StepEffects, StepError> {
    let mut effects = StepEffects::default();
    for text in patch(step, ctx.cwd)? {
        effects.message(Level::Info, text);
    }
    Ok(effects)
}

/// Applies the step's patches in `cwd`, then the patches of its quilt `series`; returns a line
/// per patch applied.
///
/// # The series and the source tree
///
/// The plan names the series (`debian/patches/series`) and is trusted; the directories between
/// the working directory and the series come with the source and are not: a tree whose
/// `debian` is a symlink must not hand kiln a series and patches from wherever it points. So
/// the series path is split into a base the plan chose and the rest, which
/// [`kiln_patch::read_quilt_series_under`] walks from the base one component at a time without
/// following any symlink (a refusal names the symlink, relative to the base):
///
/// - A relative path is below `cwd` (the source root once `unpack` ran): the base is `cwd`.
///   Leading `..` components are the plan's choice to leave the working directory (a `debian/`
///   unpacked next to the source root: `../debian/patches/series`), so the base is `cwd/..`
///   (once per `..`) and the rest is checked as above. A `..` after a name cancels the name
///   lexically (`debian/../debian/patches/series` is `debian/patches/series`), so it never
///   walks through what the tree put there.
/// - An absolute path below `cwd` (`${build.top}/hello-2.10/debian/patches/series` while in
///   `hello-2.10`) is taken as the relative path after `cwd`, with the same checks.
/// - Any other absolute path names something outside the working directory (typically an
///   input: `${inputs.debian}/patches/series`). It is the plan's and trusted whole, like a
///   path in `patches`: symlinks on it (a `result` link) are followed, and its directory is
///   the base.
///
/// In every case the series' entries are confined to its directory by kiln-patch (relative,
/// no `..`, no symlink, regular files). A series file that does not exist, or whose directory
/// does not, means no patches from it and is said in the returned lines; only a file named
/// `series` is read.
fn patch(step: &PatchStep, cwd: &Path) -> Result<Vec<String>, StepError> {
    let mut patches: Vec<(PathBuf, kiln_patch::PatchOptions)> = step
        .patches
        .iter()
        .map(|patch| {
            let options = kiln_patch::PatchOptions { strip: step.strip };
            (cwd.join(patch), options)
        })
        .collect();
    let mut messages = Vec::new();
    if let Some(series) = &step.series {
        let named = cwd.join(series);
        let Some((base, patches_dir)) = series_place(Path::new(series), cwd) else {
            return Err(StepError::SeriesName { path: named });
        };
        match kiln_patch::read_quilt_series_under(&base, &patches_dir)? {
            Some(listed) => patches.extend(listed),
            None => messages.push(format!(
                "no series file `{}`: no patches from it",
                named.display()
            )),
        }
    }
    for (patch, options) in patches {
        let report = kiln_patch::apply_patch_file(&patch, cwd, &options)?;
        let files: Vec<String> = report
            .files
            .iter()
            .map(|file| file.path.display().to_string())
            .collect();
        messages.push(format!(
            "applied `{}` (-p{}): {}",
            patch.display(),
            options.strip,
            files.join(", ")
        ));
    }
    Ok(messages)
}

/// Where the quilt series `series` (as the plan names it, relative to `cwd` or absolute) lies:
/// the base directory the plan chose and the series' directory relative to it, to be walked
/// without following symlinks; see [`patch`]. `None` when its last component is not `series`.
fn series_place(series: &Path, cwd: &Path) -> Option<(PathBuf, PathBuf)> {
    let (base, rest) = if series.is_absolute() {
        match series.strip_prefix(cwd) {
            Ok(below) => lexical(below, cwd),
            // Outside the working directory: the plan's path, trusted whole.
            Err(_) => (
                series.parent()?.to_owned(),
                PathBuf::from(series.file_name()?),
            ),
        }
    } else {
        lexical(series, cwd)
    };
    if rest.file_name()? != "series" {
        return None;
    }
    Some((base, rest.parent()?.to_owned()))
}

/// `relative` under `cwd` as a base and a path of names only: each leading `..` moves the base
/// up (`cwd/..`), a `..` after a name cancels the name, `.` is dropped.
fn lexical(relative: &Path, cwd: &Path) -> (PathBuf, PathBuf) {
    let mut base = cwd.to_owned();
    let mut names: Vec<&std::ffi::OsStr> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::ParentDir => {
                if names.pop().is_none() {
                    base.push("..");
                }
            }
            // `relative` is relative: neither appears.
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (base, names.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_paths_split_into_the_plans_base_and_the_trees_part() {
        let cwd = Path::new("/build/src");
        let place = |series: &str| series_place(Path::new(series), cwd);
        let split = |base: &str, dir: &str| Some((PathBuf::from(base), PathBuf::from(dir)));
        assert_eq!(
            place("debian/patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(
            place("./debian/./patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(place("series"), split("/build/src", ""));
        assert_eq!(
            place("debian/../debian/patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(
            place("../../debian/patches/series"),
            split("/build/src/../..", "debian/patches")
        );
        assert_eq!(
            place("/build/src/debian/patches/series"),
            split("/build/src", "debian/patches")
        );
        assert_eq!(
            place("/build/src/../debian/patches/series"),
            split("/build/src/..", "debian/patches")
        );
        assert_eq!(
            place("/nix/store/x-debian/patches/series"),
            split("/nix/store/x-debian/patches", "")
        );
        for bad in [
            "debian/patches/00list",
            "debian/patches/series/..",
            "..",
            "",
            "/",
        ] {
            assert_eq!(place(bad), None, "{bad}");
        }
    }
}
