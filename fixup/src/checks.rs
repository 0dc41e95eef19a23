//! Output checks: what Nix does after the builder exits for `outputChecks` (and the legacy
//! `allowedReferences` / `disallowedReferences` attributes), done early so a build fails with a
//! message naming the file that holds the reference.
//!
//! A reference is found the way Nix finds one: the 32-character hash part of a candidate store
//! path appears somewhere in the output's serialisation — a file's contents, a symlink's target
//! or an entry's name. Candidates are the given inputs, every output, and every path named in
//! the checks. Like Nix, a reference specifier is either a store path or an output name, and an
//! output's reference to itself counts (so `allowedReferences = [ ]` fails on a self-reference;
//! allow `"out"` for that). `maxSize` is compared with the output's NAR size, computed exactly
//! without serialising.
//!
//! Not done: `allowedRequisites`, `disallowedRequisites` and `maxClosureSize`, which need the
//! closure of the inputs (the store's database, not the file tree).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;

use crate::error::{FoundReference, StepError};
use crate::fsx::{self, Kind};
use crate::FixupContext;

/// The checks for one output; [`Default`] checks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputChecks {
    /// `allowedReferences`: if set, every reference must be one of these (store paths or output
    /// names).
    pub allowed_references: Option<Vec<String>>,
    /// `disallowedReferences`: none of these may be referenced.
    pub disallowed_references: Vec<String>,
    /// `maxSize`: the largest NAR size allowed, in bytes.
    pub max_size: Option<u64>,
}

/// What [`check_outputs`] found for one output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReferences {
    /// The output name.
    pub output: String,
    /// Each store path referred to, with the first file (in walk order) that refers to it.
    pub references: BTreeMap<PathBuf, PathBuf>,
    /// The output's NAR size in bytes.
    pub nar_size: u64,
}

const NIX_BASE32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The 32-character hash part of `path` if it is `<store_dir>/<hash>-<name>` (or below it).
pub fn hash_part<'a>(path: &'a Path, store_dir: &Path) -> Option<&'a [u8]> {
    let rest = path.strip_prefix(store_dir).ok()?;
    let name = rest.components().next()?.as_os_str().as_bytes();
    let ok =
        name.len() > 33 && name[32] == b'-' && name[..32].iter().all(|b| NIX_BASE32.contains(b));
    ok.then(|| &name[..32])
}

/// Scans the output at `dir` for the hash parts of `candidates`; returns each candidate found
/// with the first file that mentions it. Candidates that are not store paths are ignored.
pub fn scan_references(
    dir: &Path,
    store_dir: &Path,
    candidates: &[PathBuf],
) -> Result<BTreeMap<PathBuf, PathBuf>, StepError> {
    let mut patterns: Vec<&[u8]> = Vec::new();
    let mut owners: Vec<&PathBuf> = Vec::new();
    for candidate in candidates {
        if let Some(hash) = hash_part(candidate, store_dir) {
            if !patterns.contains(&hash) {
                patterns.push(hash);
                owners.push(candidate);
            }
        }
    }
    let mut found = BTreeMap::new();
    if patterns.is_empty() {
        return Ok(found);
    }
    let automaton = AhoCorasick::new(&patterns).expect("32-byte literal patterns always build");
    let entries = fsx::walk_with_root(dir)?;
    let hits = fsx::par_map(&entries, |entry| {
        let mut hits = BTreeSet::new();
        if entry.path != dir {
            if let Some(name) = entry.path.file_name() {
                collect(&automaton, name.as_bytes(), &mut hits);
            }
        }
        match entry.kind {
            Kind::Symlink => {
                let target = fsx::read_link(&entry.path)?;
                collect(&automaton, target.as_os_str().as_bytes(), &mut hits);
            }
            Kind::File => scan_file(&automaton, &entry.path, &mut hits)?,
            Kind::Dir | Kind::Other => {}
        }
        Ok(hits)
    })?;
    for (entry, hits) in entries.iter().zip(hits) {
        for index in hits {
            found
                .entry(owners[index].clone())
                .or_insert_with(|| entry.path.clone());
        }
    }
    Ok(found)
}

fn collect(automaton: &AhoCorasick, haystack: &[u8], hits: &mut BTreeSet<usize>) {
    for found in automaton.find_overlapping_iter(haystack) {
        hits.insert(found.pattern().as_usize());
    }
}

/// Streams a file through the automaton, keeping 31 bytes of overlap between chunks so a hash
/// split across two reads is still found.
fn scan_file(
    automaton: &AhoCorasick,
    path: &Path,
    hits: &mut BTreeSet<usize>,
) -> Result<(), StepError> {
    let read = |source| StepError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read)?;
    for_each_window(&mut file, 31, |window, _| {
        collect(automaton, window, hits);
        false
    })
    .map_err(read)
}

/// Reads `file` in 1 MiB chunks and calls `visit(window, offset)` on each, where `window` also
/// holds the last `keep` bytes of the chunk before (so a pattern up to `keep + 1` bytes long
/// split across two reads is seen whole) and `offset` is the stream offset of `window[0]`.
/// Stops early when `visit` returns true.
pub(crate) fn for_each_window(
    file: &mut dyn Read,
    keep: usize,
    mut visit: impl FnMut(&[u8], u64) -> bool,
) -> std::io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let mut buffer = vec![0u8; CHUNK + keep];
    let mut kept = 0;
    let mut offset: u64 = 0;
    loop {
        let n = match file.read(&mut buffer[kept..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(source),
        };
        let filled = kept + n;
        if visit(&buffer[..filled], offset) {
            return Ok(());
        }
        let next_kept = filled.min(keep);
        offset += (filled - next_kept) as u64;
        buffer.copy_within(filled - next_kept..filled, 0);
        kept = next_kept;
    }
}

fn padded(len: u64) -> u64 {
    len.div_ceil(8) * 8
}

/// The size of a NAR string field holding `len` bytes.
fn nar_str(len: u64) -> u64 {
    8 + padded(len)
}

/// The size in bytes of the NAR serialisation of `path` (Nix's `narSize`).
pub fn nar_size(path: &Path) -> Result<u64, StepError> {
    Ok(nar_str(13) + node_size(path)?) // "nix-archive-1"
}

fn node_size(path: &Path) -> Result<u64, StepError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| StepError::Metadata {
        path: path.to_owned(),
        source,
    })?;
    let open_type = nar_str(1) + nar_str(4); // "(" "type"
    let close = nar_str(1); // ")"
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        let target = fsx::read_link(path)?;
        return Ok(open_type
            + nar_str(7) // "symlink"
            + nar_str(6) // "target"
            + nar_str(target.as_os_str().len() as u64)
            + close);
    }
    if file_type.is_dir() {
        let mut size = open_type + nar_str(9); // "directory"
        let list_error = |source| StepError::ReadDir {
            path: path.to_owned(),
            source,
        };
        for entry in std::fs::read_dir(path).map_err(list_error)? {
            let entry = entry.map_err(list_error)?;
            size += nar_str(5) // "entry"
                + nar_str(1) // "("
                + nar_str(4) // "name"
                + nar_str(entry.file_name().len() as u64)
                + nar_str(4) // "node"
                + node_size(&entry.path())?
                + close;
        }
        return Ok(size + close);
    }
    let executable = if meta.permissions().mode() & 0o100 != 0 {
        nar_str(10) + nar_str(0) // "executable" ""
    } else {
        0
    };
    Ok(open_type
        + nar_str(7) // "regular"
        + executable
        + nar_str(8) // "contents"
        + nar_str(meta.len())
        + close)
}

/// Runs the checks of each output in `checks` against its files; `inputs` are the store paths
/// the build could refer to (the input closure). Returns what was found for every checked
/// output, or the first failing check.
pub fn check_outputs(
    ctx: &FixupContext,
    checks: &BTreeMap<String, OutputChecks>,
    inputs: &[PathBuf],
) -> Result<Vec<OutputReferences>, StepError> {
    let resolve = |spec: &String| -> Result<PathBuf, StepError> {
        if let Some(path) = ctx.outputs.get(spec) {
            return Ok(path.clone());
        }
        let path = PathBuf::from(spec);
        if hash_part(&path, &ctx.store_dir).is_some() {
            Ok(path)
        } else {
            Err(StepError::NotAStorePath {
                path: spec.clone(),
                store_dir: ctx.store_dir.clone(),
            })
        }
    };
    let mut reports = Vec::new();
    for (output, check) in checks {
        let dir = ctx
            .outputs
            .get(output)
            .ok_or_else(|| StepError::UnknownOutput {
                name: output.clone(),
                known: ctx.outputs.keys().cloned().collect(),
            })?;
        let allowed = check
            .allowed_references
            .as_ref()
            .map(|specs| specs.iter().map(resolve).collect::<Result<Vec<_>, _>>())
            .transpose()?;
        let disallowed = check
            .disallowed_references
            .iter()
            .map(resolve)
            .collect::<Result<Vec<_>, _>>()?;
        let mut candidates: Vec<PathBuf> = inputs.to_vec();
        candidates.extend(ctx.outputs.values().cloned());
        candidates.extend(allowed.iter().flatten().cloned());
        candidates.extend(disallowed.iter().cloned());
        let references = scan_references(dir, &ctx.store_dir, &candidates)?;
        let found = |keep: &dyn Fn(&PathBuf) -> bool| -> Vec<FoundReference> {
            references
                .iter()
                .filter(|(reference, _)| keep(reference))
                .map(|(reference, file)| FoundReference {
                    reference: reference.clone(),
                    file: file.clone(),
                })
                .collect()
        };
        let bad = found(&|reference| disallowed.contains(reference));
        if !bad.is_empty() {
            return Err(StepError::DisallowedReferences {
                output: output.clone(),
                found: bad,
            });
        }
        if let Some(allowed) = &allowed {
            let bad = found(&|reference| !allowed.contains(reference));
            if !bad.is_empty() {
                return Err(StepError::ReferencesNotAllowed {
                    output: output.clone(),
                    found: bad,
                });
            }
        }
        let size = nar_size(dir)?;
        if let Some(max) = check.max_size {
            if size > max {
                return Err(StepError::MaxSize {
                    output: output.clone(),
                    size,
                    max,
                });
            }
        }
        reports.push(OutputReferences {
            output: output.clone(),
            references,
            nar_size: size,
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{symlink, write};

    const BAD: &str = "q3g9bs4kz7ymg8h7ng5zq0xybrz9ddrc-bad-1.0";
    const GOOD: &str = "7k7v1rk13j6d6z1m6d3kx0a5zw7g0kxm-good-1.0";
    const OUT: &str = "0bhsmbzvjvxdaslb6bwc4xjaryc7cxmx-pkg-1.0";

    fn ctx(store: &Path) -> FixupContext {
        FixupContext {
            outputs: [("out".to_owned(), store.join(OUT))].into(),
            build_top: store.join("build"),
            path_dirs: Vec::new(),
            store_dir: store.to_owned(),
            jobs: 1,
        }
    }

    fn checks(check: OutputChecks) -> BTreeMap<String, OutputChecks> {
        [("out".to_owned(), check)].into()
    }

    #[test]
    fn disallowed_reference_fails_naming_path_and_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path();
        let ctx = ctx(store);
        let out = &ctx.outputs["out"];
        let bad = store.join(BAD);
        let good = store.join(GOOD);
        write(
            &out.join("bin/tool"),
            format!("exec {}/bin/bad\n", bad.display()),
            0o755,
        );
        write(
            &out.join("lib/config"),
            format!("{}/lib", good.display()),
            0o644,
        );
        symlink(bad.join("share"), &out.join("share/bad-link"));

        let err = check_outputs(
            &ctx,
            &checks(OutputChecks {
                disallowed_references: vec![bad.display().to_string()],
                ..OutputChecks::default()
            }),
            std::slice::from_ref(&good),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "output `out` refers to disallowed path(s):\n  `{}` (in `{}`)",
                bad.display(),
                out.join("bin/tool").display()
            )
        );

        let err = check_outputs(
            &ctx,
            &checks(OutputChecks {
                allowed_references: Some(vec![good.display().to_string()]),
                ..OutputChecks::default()
            }),
            &[good.clone(), bad.clone()],
        )
        .unwrap_err();
        let StepError::ReferencesNotAllowed { found, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            found,
            [FoundReference {
                reference: bad.clone(),
                file: out.join("bin/tool")
            }]
        );

        // Allowed: the good path, the bad one, and nothing else referenced.
        let reports = check_outputs(
            &ctx,
            &checks(OutputChecks {
                allowed_references: Some(vec![
                    good.display().to_string(),
                    bad.display().to_string(),
                ]),
                ..OutputChecks::default()
            }),
            &[good.clone(), bad.clone()],
        )
        .unwrap();
        assert_eq!(
            reports[0].references,
            BTreeMap::from([
                (bad.clone(), out.join("bin/tool")),
                (good.clone(), out.join("lib/config")),
            ])
        );
    }

    #[test]
    fn self_references_count_and_output_names_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = ctx(tmp.path());
        let out = &ctx.outputs["out"];
        write(
            &out.join("bin/x"),
            format!("{}/share", out.display()),
            0o755,
        );
        let only = |allowed: Vec<String>| {
            check_outputs(
                &ctx,
                &checks(OutputChecks {
                    allowed_references: Some(allowed),
                    ..OutputChecks::default()
                }),
                &[],
            )
        };
        assert!(matches!(
            only(vec![]),
            Err(StepError::ReferencesNotAllowed { .. })
        ));
        assert!(only(vec!["out".to_owned()]).is_ok());
        assert_eq!(
            only(vec!["/usr/lib".to_owned()]).unwrap_err().to_string(),
            format!(
                "`/usr/lib` is not a store path under `{}` nor the name of an output",
                tmp.path().display()
            )
        );
    }

    #[test]
    fn hashes_split_across_reads_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path();
        let ctx = ctx(store);
        let out = &ctx.outputs["out"];
        let bad = store.join(BAD);
        let mut data = vec![b'x'; (1 << 20) - 10];
        data.extend_from_slice(bad.as_os_str().as_bytes());
        write(&out.join("share/big"), &data, 0o644);
        let found = scan_references(out, store, std::slice::from_ref(&bad)).unwrap();
        assert_eq!(found, BTreeMap::from([(bad, out.join("share/big"))]));
    }

    #[test]
    fn nar_size_matches_nix_and_max_size_is_enforced() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = ctx(tmp.path());
        let out = &ctx.outputs["out"];
        write(&out.join("bin/hello"), "#!/bin/sh\necho hello\n", 0o755);
        write(&out.join("share/a"), "hello", 0o644);
        symlink("../bin/hello", &out.join("share/link"));
        // `nix-store --dump out | wc -c` gives 1064 for this tree.
        assert_eq!(nar_size(out).unwrap(), 1064);
        let err = check_outputs(
            &ctx,
            &checks(OutputChecks {
                max_size: Some(1063),
                ..OutputChecks::default()
            }),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "output `out` is 1064 bytes as a NAR, more than its `maxSize` of 1063 bytes"
        );
    }
}
