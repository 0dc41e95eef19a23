//! Splitting files between outputs: replaces stdenv's `multiple-outputs.sh` (`moveToOutput`,
//! `_multioutDocs`, `_multioutDevs` in `preFixupHooks`, `_multioutPropagateDev` in
//! `postFixupHooks`).
//!
//! Which output each role (`outputDev`, `outputBin`, …) goes to is a [`Roles`]: [`Roles::new`],
//! in `kiln-schema` and shared with the stdenv translation's directory flags, resolves it from
//! the outputs and the roles a derivation sets, as stdenv's `_overrideFirst` chains do;
//! [`MultipleOutputs::stdenv_defaults`] and [`MultipleOutputs::stdenv_with`] resolve it for the
//! split. [`split_outputs`] then moves, in stdenv's order, from every other output into the
//! role's output:
//!
//! | path                                  | to          | stdenv          |
//! |---------------------------------------|-------------|-----------------|
//! | `share/info`                          | info        | `_multioutDocs` |
//! | `share/doc`                           | doc         |                 |
//! | `share/gtk-doc`, `share/devhelp/books`| devdoc (or removed) |         |
//! | `share/man`                           | man         |                 |
//! | `share/man/man3`                      | devman      |                 |
//! | `include`                             | include     | `_multioutDevs` (only with more than `out`, and `move_to_dev`) |
//! | `lib/pkgconfig`, `share/pkgconfig`, `lib/cmake`, `share/aclocal` | dev |  |
//!
//! and rewrites `includedir=${prefix}` in the dev output's `.pc` files to the include output.
//! [`MultipleOutputs::extra_moves`] are further `moveToOutput` calls run after those (for example
//! `bin/*-config` to `dev`, which stdenv leaves to packages). stdenv never moves `lib/` itself:
//! `outputLib` acts through `configureFlags` (`--libdir`), not by moving.
//!
//! [`move_to_output`] is `moveToOutput PATTERN OUTPUT`: the pattern is a relative path whose
//! components may use `*`, `?` and `[...]` (a leading `.` must be matched literally, as in bash
//! without `dotglob`). Differences from stdenv: merging into an existing directory recurses
//! (stdenv's `mv -t` fails on a non-empty subdirectory), an existing non-directory destination
//! is a [`StepError::MoveConflict`] instead of being overwritten, and emptied parent directories
//! are removed up to, but never including, the output directory itself.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use kiln_schema::roles::{Destination, Roles};
use kiln_schema::OutputRoles;

use crate::error::StepError;
use crate::fsx;
use crate::{FixupContext, Outcome};

/// Where each role's files go ([`Roles`], resolved by [`Roles::new`]) and the rest of what
/// multiple-outputs.sh's split is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipleOutputs {
    /// The output of each role (`outputDev`, `outputBin`, …).
    pub roles: Roles,
    /// `moveToDev`: whether `_multioutDevs` runs (stdenv default: yes).
    pub move_to_dev: bool,
    /// Further `moveToOutput PATTERN DESTINATION` calls, run in order after the defaults.
    pub extra_moves: Vec<(String, Destination)>,
    /// `propagatedBuildOutputs`: outputs the dev output propagates; `None` gives stdenv's default
    /// (`outputBin`, `outputInclude` and `outputLib` other than `outputDev`).
    pub propagated_build_outputs: Option<Vec<String>>,
}

impl From<Roles> for MultipleOutputs {
    /// These roles, with stdenv's defaults for the rest.
    fn from(roles: Roles) -> MultipleOutputs {
        MultipleOutputs {
            roles,
            move_to_dev: true,
            extra_moves: Vec::new(),
            propagated_build_outputs: None,
        }
    }
}

impl MultipleOutputs {
    /// stdenv's defaults for a derivation with these outputs.
    pub fn stdenv_defaults<'a>(
        outputs: impl IntoIterator<Item = &'a str>,
    ) -> Result<MultipleOutputs, StepError> {
        MultipleOutputs::stdenv_with(outputs, &OutputRoles::default())
    }

    /// stdenv's defaults for a derivation with these outputs that sets the roles in `set`
    /// itself (see [`Roles::new`]).
    pub fn stdenv_with<'a>(
        outputs: impl IntoIterator<Item = &'a str>,
        set: &OutputRoles,
    ) -> Result<MultipleOutputs, StepError> {
        Ok(Roles::new(outputs, set)?.into())
    }
}

fn output_dir<'a>(ctx: &'a FixupContext, name: &str) -> Result<&'a PathBuf, StepError> {
    ctx.outputs
        .get(name)
        .ok_or_else(|| StepError::UnknownOutput {
            name: name.to_owned(),
            known: ctx.outputs.keys().cloned().collect(),
        })
}

fn only_out(ctx: &FixupContext) -> bool {
    ctx.outputs.len() == 1 && ctx.outputs.contains_key("out")
}

/// Runs `_multioutDocs`, `_multioutDevs` and `extra_moves`, in that order.
pub fn split_outputs(ctx: &FixupContext, options: &MultipleOutputs) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let roles = &options.roles;
    let to = |name: &String| Destination::Output(name.clone());
    let mut moves: Vec<(&str, Destination)> = vec![
        ("share/info", to(&roles.info)),
        ("share/doc", to(&roles.doc)),
        ("share/gtk-doc", roles.devdoc.clone()),
        ("share/devhelp/books", roles.devdoc.clone()),
        ("share/man", to(&roles.man)),
        ("share/man/man3", to(&roles.devman)),
    ];
    let devs = !only_out(ctx) && options.move_to_dev;
    if devs {
        moves.push(("include", to(&roles.include)));
        for pattern in [
            "lib/pkgconfig",
            "share/pkgconfig",
            "lib/cmake",
            "share/aclocal",
        ] {
            moves.push((pattern, to(&roles.dev)));
        }
    }
    for (pattern, destination) in &moves {
        outcome.extend(move_to_output(ctx, pattern, destination)?);
    }
    if devs {
        outcome.extend(patch_pkgconfig_includedir(
            output_dir(ctx, &roles.dev)?,
            output_dir(ctx, &roles.include)?,
        )?);
    }
    for (pattern, destination) in &options.extra_moves {
        outcome.extend(move_to_output(ctx, pattern, destination)?);
    }
    Ok(outcome)
}

/// `sed -i "/^includedir=/s,=\${prefix},=$include,"` over `dev/{lib,share}/pkgconfig/*.pc`.
fn patch_pkgconfig_includedir(dev: &Path, include: &Path) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let replacement = [b"=", include.as_os_str().as_bytes()].concat();
    for sub in ["lib/pkgconfig", "share/pkgconfig"] {
        for file in glob(dev, &format!("{sub}/*.pc"))? {
            if !file.is_file() {
                continue;
            }
            let contents = fsx::read(&file)?;
            let mut changed = false;
            let mut out = Vec::with_capacity(contents.len());
            for (index, line) in contents.split(|&b| b == b'\n').enumerate() {
                if index > 0 {
                    out.push(b'\n');
                }
                let hit = line
                    .starts_with(b"includedir=")
                    .then(|| memchr::memmem::find(line, b"=${prefix}"))
                    .flatten();
                match hit {
                    Some(at) => {
                        out.extend_from_slice(&line[..at]);
                        out.extend_from_slice(&replacement);
                        out.extend_from_slice(&line[at + 10..]);
                        changed = true;
                    }
                    None => out.extend_from_slice(line),
                }
            }
            if changed {
                let write_error = |source| StepError::Write {
                    path: file.clone(),
                    source,
                };
                OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&file)
                    .and_then(|mut handle| handle.write_all(&out))
                    .map_err(write_error)?;
                outcome.changed.push(file);
            }
        }
    }
    Ok(outcome)
}

/// stdenv's `moveToOutput PATTERN DESTINATION`: moves what matches `pattern` in every other
/// output into the same relative place in `destination`, or deletes it.
pub fn move_to_output(
    ctx: &FixupContext,
    pattern: &str,
    destination: &Destination,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let dst_root = match destination {
        Destination::Output(name) => Some(output_dir(ctx, name)?),
        Destination::Remove => None,
    };
    for src_root in ctx.outputs.values() {
        if Some(src_root) == dst_root {
            continue;
        }
        for src in glob(src_root, pattern)? {
            let relative = src.strip_prefix(src_root).unwrap_or(&src).to_owned();
            match dst_root {
                None => {
                    remove_all(&src)?;
                    outcome.changed.push(src.clone());
                }
                Some(dst_root) => {
                    let dst = dst_root.join(&relative);
                    if dst.is_dir() && src.is_dir() && !is_symlink(&src) {
                        merge_dir(&src, &dst, &mut outcome)?;
                    } else {
                        if fsx::lexists(&dst) {
                            return Err(StepError::MoveConflict { from: src, to: dst });
                        }
                        if let Some(parent) = dst.parent() {
                            fsx::create_dir_all(parent)?;
                        }
                        fsx::rename(&src, &dst)?;
                        outcome.changed.push(dst);
                    }
                }
            }
            remove_empty_parents(&src, src_root);
        }
    }
    Ok(outcome)
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink())
}

fn merge_dir(src: &Path, dst: &Path, outcome: &mut Outcome) -> Result<(), StepError> {
    for name in fsx::read_dir_sorted(src)? {
        let (from, to) = (src.join(&name), dst.join(&name));
        if to.is_dir() && from.is_dir() && !is_symlink(&from) && !is_symlink(&to) {
            merge_dir(&from, &to, outcome)?;
        } else if fsx::lexists(&to) {
            return Err(StepError::MoveConflict { from, to });
        } else {
            fsx::rename(&from, &to)?;
            outcome.changed.push(to);
        }
    }
    fsx::remove_dir(src)
}

fn remove_all(path: &Path) -> Result<(), StepError> {
    let result = if path.is_dir() && !is_symlink(path) {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    result.map_err(|source| StepError::Remove {
        path: path.to_owned(),
        source,
    })
}

/// Removes `path`'s parent directories while they are empty, stopping below `root`.
fn remove_empty_parents(path: &Path, root: &Path) {
    let mut current = path.parent();
    while let Some(dir) = current {
        if dir == root || !dir.starts_with(root) || fs::remove_dir(dir).is_err() {
            break;
        }
        current = dir.parent();
    }
}

/// Paths under `root` matching the relative glob `pattern`, in sorted order. Like bash with
/// `nullglob`: no match gives nothing; the last component also matches dangling symlinks.
pub fn glob(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, StepError> {
    let mut current = vec![root.to_owned()];
    let components: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for (index, component) in components.iter().enumerate() {
        let last = index + 1 == components.len();
        let mut next = Vec::new();
        for base in &current {
            if !component.contains(['*', '?', '[']) {
                let candidate = base.join(component);
                if (last && fsx::lexists(&candidate)) || candidate.is_dir() {
                    next.push(candidate);
                }
                continue;
            }
            if !base.is_dir() {
                continue;
            }
            for name in fsx::read_dir_sorted(base)? {
                let bytes = name.as_bytes();
                if bytes.starts_with(b".") && !component.starts_with('.') {
                    continue;
                }
                if glob_match(component.as_bytes(), bytes) {
                    let candidate = base.join(&name);
                    if last || candidate.is_dir() {
                        next.push(candidate);
                    }
                }
            }
        }
        current = next;
    }
    if components.is_empty() {
        return Ok(Vec::new());
    }
    Ok(current)
}

/// Shell pattern matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`/`[^x]`, and
/// `\` making the next character literal (fnmatch(3) without flags; a trailing `\` is itself).
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                // An escaped character that differs: no match here (never the `\` itself).
                b'\\' if p + 1 < pattern.len() => {}
                b'[' => {
                    if let Some((matched, len)) = class_match(&pattern[p..], name[n]) {
                        if matched {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                byte if byte == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_n)) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Matches `byte` against the bracket expression at the start of `pattern`; returns whether it
/// matched and the expression's length, or `None` if the bracket is not closed.
fn class_match(pattern: &[u8], byte: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        let c = pattern[i];
        if c == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
            if (c..=pattern[i + 2]).contains(&byte) {
                matched = true;
            }
            i += 3;
        } else {
            if c == byte {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// stdenv's `_multioutPropagateDev`: appends ` PATH` of each propagated output to the dev
/// output's `nix-support/propagated-build-inputs`. Nothing for a single `out` output.
pub fn propagate_dev(ctx: &FixupContext, options: &MultipleOutputs) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let roles = &options.roles;
    if only_out(ctx) {
        return Ok(outcome);
    }
    let names: Vec<String> = match &options.propagated_build_outputs {
        Some(names) => names.clone(),
        None => {
            let mut names: Vec<String> = [&roles.bin, &roles.include, &roles.lib]
                .into_iter()
                .filter(|name| **name != roles.dev)
                .cloned()
                .collect();
            names.sort();
            names.dedup();
            names
        }
    };
    if names.is_empty() {
        return Ok(outcome);
    }
    let mut line = Vec::new();
    for name in &names {
        line.push(b' ');
        line.extend_from_slice(output_dir(ctx, name)?.as_os_str().as_bytes());
    }
    let support = output_dir(ctx, &roles.dev)?.join("nix-support");
    fsx::create_dir_all(&support)?;
    let file = support.join("propagated-build-inputs");
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut handle| handle.write_all(&line))
        .map_err(|source| StepError::Write {
            path: file.clone(),
            source,
        })?;
    outcome.changed.push(file);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::testutil::write;

    fn ctx(root: &Path, names: &[&str]) -> FixupContext {
        FixupContext {
            outputs: names
                .iter()
                .map(|name| ((*name).to_owned(), root.join(name)))
                .collect::<BTreeMap<_, _>>(),
            build_top: root.join("build"),
            path_dirs: Vec::new(),
            store_dir: "/nix/store".into(),
            jobs: 1,
        }
    }

    #[test]
    fn splits_like_multiple_outputs_sh() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = ctx(tmp.path(), &["out", "dev", "man"]);
        let (out, dev, man) = (
            &ctx.outputs["out"],
            &ctx.outputs["dev"],
            &ctx.outputs["man"],
        );
        for file in [
            "include/foo.h",
            "include/sub/bar.h",
            "lib/libfoo.so",
            "lib/cmake/Foo/FooConfig.cmake",
            "share/aclocal/foo.m4",
            "share/man/man1/foo.1",
            "share/man/man3/foo.3",
            "share/doc/foo/README",
            "share/gtk-doc/html/foo/index.html",
            "bin/foo",
            "bin/foo-config",
        ] {
            write(&out.join(file), file, 0o644);
        }
        write(
            &out.join("lib/pkgconfig/foo.pc"),
            "prefix=/x\nincludedir=${prefix}/include\nlibdir=${prefix}/lib\n",
            0o644,
        );
        write(&dev.join("include/already.h"), "", 0o644);
        let mut options =
            MultipleOutputs::stdenv_defaults(ctx.outputs.keys().map(|k| &k[..])).unwrap();
        options
            .extra_moves
            .push(("bin/*-config".to_owned(), Destination::Output("dev".into())));

        split_outputs(&ctx, &options).unwrap();

        let files = |root: &Path| -> Vec<String> {
            crate::fsx::walk(root)
                .unwrap()
                .into_iter()
                .filter(|e| e.kind != crate::fsx::Kind::Dir)
                .map(|e| e.path.strip_prefix(root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            files(out),
            ["bin/foo", "lib/libfoo.so", "share/doc/foo/README"]
        );
        assert_eq!(
            files(dev),
            [
                "bin/foo-config",
                "include/already.h",
                "include/foo.h",
                "include/sub/bar.h",
                "lib/cmake/Foo/FooConfig.cmake",
                "lib/pkgconfig/foo.pc",
                "share/aclocal/foo.m4",
            ]
        );
        assert_eq!(files(man), ["share/man/man1/foo.1", "share/man/man3/foo.3"]);
        assert_eq!(
            fs::read_to_string(dev.join("lib/pkgconfig/foo.pc")).unwrap(),
            format!(
                "prefix=/x\nincludedir={}/include\nlibdir=${{prefix}}/lib\n",
                dev.display()
            )
        );

        propagate_dev(&ctx, &options).unwrap();
        assert_eq!(
            fs::read_to_string(dev.join("nix-support/propagated-build-inputs")).unwrap(),
            format!(" {}", out.display())
        );
    }

    #[test]
    fn single_output_moves_nothing_to_dev() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = ctx(tmp.path(), &["out"]);
        let out = &ctx.outputs["out"];
        write(&out.join("include/foo.h"), "", 0o644);
        write(&out.join("share/gtk-doc/x"), "", 0o644);
        let options = MultipleOutputs::stdenv_defaults(["out"]).unwrap();
        split_outputs(&ctx, &options).unwrap();
        assert!(out.join("include/foo.h").is_file());
        // No devdoc output: gtk-doc is removed, as stdenv's `REMOVE`.
        assert!(!out.join("share").exists());
        assert_eq!(propagate_dev(&ctx, &options).unwrap(), Outcome::default());
    }

    #[test]
    fn glob_patterns() {
        assert!(glob_match(b"*-config", b"foo-config"));
        assert!(!glob_match(b"*-config", b"foo-config2"));
        assert!(glob_match(b"lib?.so", b"libx.so"));
        assert!(glob_match(b"[a-c]*", b"bar"));
        assert!(!glob_match(b"[!a-c]*", b"bar"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        // A backslash makes the next character literal.
        assert!(glob_match(b"a\\*", b"a*"));
        assert!(!glob_match(b"a\\*", b"ab"));
        assert!(glob_match(b"\\[x]", b"[x]"));
        assert!(glob_match(b"a\\", b"a\\"));
        assert!(!glob_match(b"\\a", b"\\a"));
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join("bin/a-config"), "", 0o644);
        write(&tmp.path().join("bin/.b-config"), "", 0o644);
        write(&tmp.path().join("bin/c"), "", 0o644);
        assert_eq!(
            glob(tmp.path(), "bin/*-config").unwrap(),
            [tmp.path().join("bin/a-config")]
        );
        assert_eq!(glob(tmp.path(), "*/c").unwrap(), [tmp.path().join("bin/c")]);
        assert!(glob(tmp.path(), "nothing/*").unwrap().is_empty());
    }
}
