//! The `substitute` step: literal search-and-replace in a file, stdenv's `substitute` /
//! `substituteInPlace` ([`SubstituteStep`]).
//!
//! - The file is handled as bytes, so binary files and files in any encoding work; patterns and
//!   values are matched and inserted as their UTF-8 bytes. Nothing is a regular expression.
//! - `replace` items apply first, in order. Each replaces every non-overlapping occurrence, left
//!   to right, and checks for its pattern in the content as the earlier items left it, like a
//!   chain of `--replace-fail` / `--replace-warn`. A pattern that does not occur is
//!   [`FileStepError::PatternNotFound`] with `ifMissing: fail` (the default) and a warning in
//!   [`StepReport::warnings`](crate::StepReport::warnings) with `ifMissing: warn`.
//! - Then `vars`, in name order: each `@NAME@` MUST occur ([`FileStepError::PlaceholderNotFound`]
//!   otherwise) and every occurrence becomes the value (`--subst-var-by`).
//! - The result goes to `out`, or back to `file` when `out` is not given. It keeps `file`'s
//!   permission bits and is written atomically: a temporary file in the destination's directory
//!   is renamed over it, so a failure (a missing pattern included) leaves the destination as it
//!   was. The destination is a new file: a symlink there is replaced rather than written
//!   through, and hard links to the old file keep the old content. Missing parents of `out` are
//!   created.

use std::fs;
use std::path::Path;

use kiln_schema::{IfMissing, SubstituteStep};

use crate::{fsx, FileStepError};

/// Runs a `substitute` step; relative paths resolve against `cwd`. Returns the warnings of
/// `ifMissing: warn` replacements whose pattern was not found.
pub(crate) fn run(step: &SubstituteStep, cwd: &Path) -> Result<Vec<String>, FileStepError> {
    let file = cwd.join(&step.file);
    let metadata = fs::metadata(&file).map_err(|source| FileStepError::Metadata {
        path: file.clone(),
        source,
    })?;
    let mut content = fs::read(&file).map_err(|source| FileStepError::Read {
        path: file.clone(),
        source,
    })?;

    let mut warnings = Vec::new();
    for replacement in &step.replace {
        if replacement.from.is_empty() {
            return Err(FileStepError::EmptyPattern { file });
        }
        match replace_all(
            &content,
            replacement.from.as_bytes(),
            replacement.to.as_bytes(),
        ) {
            Some(replaced) => content = replaced,
            None => match replacement.if_missing {
                IfMissing::Fail => {
                    return Err(FileStepError::PatternNotFound {
                        file,
                        pattern: replacement.from.clone(),
                    });
                }
                IfMissing::Warn => warnings.push(format!(
                    "pattern `{}` not found in `{}`",
                    replacement.from,
                    file.display()
                )),
            },
        }
    }
    for (name, value) in &step.vars {
        let placeholder = format!("@{name}@");
        match replace_all(&content, placeholder.as_bytes(), value.as_bytes()) {
            Some(replaced) => content = replaced,
            None => {
                return Err(FileStepError::PlaceholderNotFound {
                    file,
                    name: name.clone(),
                })
            }
        }
    }

    let out = match &step.out {
        Some(out) => {
            let out = cwd.join(out);
            fsx::create_parents(&out)?;
            out
        }
        None => file,
    };
    fsx::replace_file(&out, &content, fsx::permission_bits(&metadata))
        .map_err(|source| FileStepError::Write { path: out, source })?;
    Ok(warnings)
}

/// `haystack` with every non-overlapping occurrence of `from` (scanning left to right) replaced
/// by `to`, or `None` when `from` does not occur. `from` MUST NOT be empty.
fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    let mut position = find(haystack, from)?;
    let mut result = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    loop {
        result.extend_from_slice(&rest[..position]);
        result.extend_from_slice(to);
        rest = &rest[position + from.len()..];
        match find(rest, from) {
            Some(next) => position = next,
            None => break,
        }
    }
    result.extend_from_slice(rest);
    Some(result)
}

/// The index of the first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{symlink, PermissionsExt as _};

    use kiln_schema::Replacement;

    use super::*;

    fn fail(from: &str, to: &str) -> Replacement {
        Replacement {
            from: from.to_owned(),
            to: to.to_owned(),
            if_missing: IfMissing::Fail,
        }
    }

    fn warn(from: &str, to: &str) -> Replacement {
        Replacement {
            from: from.to_owned(),
            to: to.to_owned(),
            if_missing: IfMissing::Warn,
        }
    }

    fn substitute(file: &str, replace: Vec<Replacement>, vars: &[(&str, &str)]) -> SubstituteStep {
        SubstituteStep {
            file: file.to_owned(),
            out: None,
            replace,
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn replace_all_replaces_every_non_overlapping_occurrence() {
        assert_eq!(replace_all(b"a-a-a", b"a", b"bb").unwrap(), b"bb-bb-bb");
        assert_eq!(replace_all(b"aaa", b"aa", b"x").unwrap(), b"xa");
        assert_eq!(replace_all(b"abc", b"abc", b"").unwrap(), b"");
        assert_eq!(replace_all(b"abc", b"abcd", b"x"), None);
        assert_eq!(replace_all(b"", b"a", b"x"), None);
    }

    #[test]
    fn replaces_in_place_in_order_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("configure");
        fs::write(&file, "#!/bin/sh\nCC=gcc\n/usr/bin/env gcc\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o751)).unwrap();

        let step = substitute(
            "configure",
            // The second item sees what the first one produced.
            vec![
                fail("gcc", "cc"),
                fail("CC=cc", "CC=clang"),
                fail("/bin/sh", "@shell@"),
            ],
            &[("shell", "/nix/store/x-bash/bin/bash")],
        );
        let warnings = run(&step, dir.path()).unwrap();

        assert!(warnings.is_empty());
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "#!/nix/store/x-bash/bin/bash\nCC=clang\n/usr/bin/env cc\n"
        );
        assert_eq!(mode_of(&file), 0o751);
        assert_eq!(fsx::read_dir_sorted(dir.path()).unwrap(), ["configure"]);
    }

    #[test]
    fn a_pattern_removed_by_an_earlier_item_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "foo").unwrap();
        let error = run(
            &substitute("f", vec![fail("foo", "bar"), fail("foo", "baz")], &[]),
            dir.path(),
        )
        .unwrap_err();
        assert!(
            matches!(&error, FileStepError::PatternNotFound { file, pattern }
                if *file == dir.path().join("f") && pattern == "foo"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "pattern `foo` not found in `{}`",
                dir.path().join("f").display()
            )
        );
        // The file is untouched: the first replacement was not written.
        assert_eq!(fs::read_to_string(dir.path().join("f")).unwrap(), "foo");
    }

    #[test]
    fn a_missing_pattern_with_warn_is_reported_and_the_rest_applies() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "hello world").unwrap();
        let warnings = run(
            &substitute("f", vec![warn("absent", "x"), fail("world", "kiln")], &[]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            warnings,
            [format!(
                "pattern `absent` not found in `{}`",
                dir.path().join("f").display()
            )]
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("f")).unwrap(),
            "hello kiln"
        );
    }

    #[test]
    fn vars_replace_every_placeholder_and_each_must_occur() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "@out@/bin:@out@/sbin @version@").unwrap();
        run(
            &substitute("f", vec![], &[("out", "/nix/store/o"), ("version", "1.2")]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("f")).unwrap(),
            "/nix/store/o/bin:/nix/store/o/sbin 1.2"
        );

        let error = run(&substitute("f", vec![], &[("missing", "x")]), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::PlaceholderNotFound { file, name }
                if *file == dir.path().join("f") && name == "missing"),
            "{error:?}"
        );
    }

    #[test]
    fn works_on_binary_content() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"\x7fELF\x00\xff/usr/lib/ld.so\x00\xfe";
        fs::write(dir.path().join("bin"), content).unwrap();
        run(
            &substitute("bin", vec![fail("/usr/lib", "/opt/lib")], &[]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            fs::read(dir.path().join("bin")).unwrap(),
            b"\x7fELF\x00\xff/opt/lib/ld.so\x00\xfe"
        );
    }

    #[test]
    fn writes_to_out_with_the_mode_of_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.sh");
        fs::write(&file, "exec @bash@").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();

        let mut step = substitute("in.sh", vec![], &[("bash", "/bin/bash")]);
        step.out = Some("bin/out.sh".to_owned());
        run(&step, dir.path()).unwrap();

        let out = dir.path().join("bin/out.sh");
        assert_eq!(fs::read_to_string(&out).unwrap(), "exec /bin/bash");
        assert_eq!(mode_of(&out), 0o755);
        assert_eq!(fs::read_to_string(&file).unwrap(), "exec @bash@");
    }

    #[test]
    fn in_place_replaces_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("target"), "a").unwrap();
        fs::set_permissions(dir.path().join("target"), fs::Permissions::from_mode(0o444)).unwrap();
        symlink("target", dir.path().join("link")).unwrap();
        run(&substitute("link", vec![fail("a", "b")], &[]), dir.path()).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("target")).unwrap(), "a");
        let link = dir.path().join("link");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(fs::read_to_string(&link).unwrap(), "b");
        assert_eq!(mode_of(&link), 0o444);
    }

    #[test]
    fn a_missing_file_and_an_empty_pattern_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let error = run(
            &substitute("missing", vec![fail("a", "b")], &[]),
            dir.path(),
        )
        .unwrap_err();
        assert!(
            matches!(&error, FileStepError::Metadata { path, .. } if *path == dir.path().join("missing")),
            "{error:?}"
        );
        fs::write(dir.path().join("f"), "abc").unwrap();
        let error = run(&substitute("f", vec![fail("", "x")], &[]), dir.path()).unwrap_err();
        assert!(
            matches!(error, FileStepError::EmptyPattern { .. }),
            "{error:?}"
        );
        assert_eq!(fs::read_to_string(dir.path().join("f")).unwrap(), "abc");
    }
}
