//! Reference cycles between outputs: Nix registers a derivation's outputs in an order where
//! each output's references are valid before it, so two outputs that refer to each other
//! (directly or around a longer loop) fail only at registration, with "cycle detected in build
//! … in the references of output 'dev' from output 'lib'". kiln knows every output path after
//! the fixup, so it finds such a cycle itself and names the file and byte offset that make each
//! edge.
//!
//! A reference is what Nix counts as one ([`crate::checks::scan_references`]): the hash part of
//! the other output's store path in a file's contents, a symlink's target or an entry's name.
//! An output referring to itself is not a cycle. Outputs outside the store (local builds into
//! `--out-dir`) have no hash part and are not checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::checks::{for_each_window, hash_part, scan_references};
use crate::error::StepError;

/// One reference from an output to another: where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleEdge {
    /// The output that refers.
    pub from: String,
    /// The output referred to.
    pub to: String,
    /// The first file (in walk order) that holds the reference.
    pub file: PathBuf,
    /// Where in that file: the byte offset of the hash in its contents, or `None` when the
    /// hash is in the entry's name or symlink target.
    pub offset: Option<u64>,
}

impl std::fmt::Display for CycleEdge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` → `{}`: `{}`",
            self.from,
            self.to,
            self.file.display()
        )?;
        match self.offset {
            Some(offset) => write!(f, " at byte {offset} (the hash)"),
            None => write!(f, " (its name or symlink target)"),
        }
    }
}

/// Fails with [`StepError::OutputCycle`] when the outputs refer to each other in a loop; the
/// error lists the loop's edges in order (`lib` → `dev` → `lib`).
pub fn check_output_cycles(
    outputs: &BTreeMap<String, PathBuf>,
    store_dir: &Path,
) -> Result<(), StepError> {
    let in_store: Vec<(&String, &PathBuf)> = outputs
        .iter()
        .filter(|(_, path)| hash_part(path, store_dir).is_some() && path.exists())
        .collect();
    if in_store.len() < 2 {
        return Ok(());
    }
    // Output → (other output → first file referring to it).
    let mut edges: BTreeMap<&String, BTreeMap<&String, PathBuf>> = BTreeMap::new();
    for (name, path) in &in_store {
        let others: Vec<PathBuf> = in_store
            .iter()
            .filter(|(other, _)| other != name)
            .map(|(_, path)| (*path).clone())
            .collect();
        let found = scan_references(path, store_dir, &others)?;
        let targets = edges.entry(name).or_default();
        for (reference, file) in found {
            if let Some((other, _)) = in_store.iter().find(|(_, path)| **path == reference) {
                targets.insert(other, file);
            }
        }
    }
    let Some(cycle) = find_cycle(&edges) else {
        return Ok(());
    };
    let mut described = Vec::new();
    for pair in cycle.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let file = edges[from][to].clone();
        let hash = hash_part(&outputs[to], store_dir).expect("a store output");
        described.push(CycleEdge {
            from: from.clone(),
            to: to.clone(),
            offset: first_offset(&file, hash),
            file,
        });
    }
    Err(StepError::OutputCycle { edges: described })
}

/// A loop in the graph, as the list of its nodes with the first repeated at the end, found by
/// depth-first search from each node in order (so the result is deterministic).
fn find_cycle<'a>(
    edges: &BTreeMap<&'a String, BTreeMap<&'a String, PathBuf>>,
) -> Option<Vec<&'a String>> {
    fn visit<'a>(
        node: &'a String,
        edges: &BTreeMap<&'a String, BTreeMap<&'a String, PathBuf>>,
        path: &mut Vec<&'a String>,
        done: &mut Vec<&'a String>,
    ) -> Option<Vec<&'a String>> {
        if let Some(start) = path.iter().position(|on_path| *on_path == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if done.contains(&node) {
            return None;
        }
        path.push(node);
        for next in edges
            .get(node)
            .into_iter()
            .flat_map(|targets| targets.keys())
        {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.push(node);
        None
    }
    let mut done = Vec::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// The byte offset of the first `needle` in the contents of the regular file `path`; `None`
/// for anything else, or when the contents do not hold it (the name or link target does).
fn first_offset(path: &Path, needle: &[u8]) -> Option<u64> {
    if !std::fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    let mut found = None;
    let mut file = std::fs::File::open(path).ok()?;
    for_each_window(&mut file, needle.len() - 1, |window, offset| {
        found = window
            .windows(needle.len())
            .position(|candidate| candidate == needle)
            .map(|at| offset + at as u64);
        found.is_some()
    })
    .ok()?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{symlink, write};

    const LIB: &str = "1bhsmbzvjvxdaslb6bwc4xjaryc7cxmx-pkgconf-1.8.1-lib";
    const DEV: &str = "2k7v1rk13j6d6z1m6d3kx0a5zw7g0kxm-pkgconf-1.8.1-dev";
    const OUT: &str = "3q3g9bs4kz7ymg8h7ng5zq0xybrz9ddr-pkgconf-1.8.1";

    fn outputs(store: &Path) -> BTreeMap<String, PathBuf> {
        BTreeMap::from([
            ("lib".to_owned(), store.join(LIB)),
            ("dev".to_owned(), store.join(DEV)),
            ("out".to_owned(), store.join(OUT)),
        ])
    }

    #[test]
    fn two_outputs_that_refer_to_each_other_are_a_cycle_with_files_and_offsets() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path();
        let outputs = outputs(store);
        // lib embeds dev's include directory (as libpkgconf does), dev points at lib.
        let padding = "x".repeat(100);
        write(
            &store.join(LIB).join("lib/libpkgconf.so.3"),
            format!("{padding}{}/include/pkgconf\0", store.join(DEV).display()),
            0o755,
        );
        write(
            &store.join(DEV).join("lib/pkgconfig/libpkgconf.pc"),
            format!("libdir={}/lib\n", store.join(LIB).display()),
            0o644,
        );
        // out refers to lib only: no cycle through it.
        write(
            &store.join(OUT).join("bin/pkgconf"),
            format!("{}/lib", store.join(LIB).display()),
            0o755,
        );
        let err = check_output_cycles(&outputs, store).unwrap_err();
        let StepError::OutputCycle { edges } = &err else {
            panic!("{err}");
        };
        let store_prefix = store.display().to_string().len() as u64 + 1;
        assert_eq!(
            edges,
            &[
                CycleEdge {
                    from: "dev".to_owned(),
                    to: "lib".to_owned(),
                    file: store.join(DEV).join("lib/pkgconfig/libpkgconf.pc"),
                    offset: Some("libdir=".len() as u64 + store_prefix),
                },
                CycleEdge {
                    from: "lib".to_owned(),
                    to: "dev".to_owned(),
                    file: store.join(LIB).join("lib/libpkgconf.so.3"),
                    offset: Some(100 + store_prefix),
                },
            ]
        );
        let message = err.to_string();
        assert!(
            message.contains("outputs `dev` and `lib` refer to each other"),
            "{message}"
        );
        assert!(
            message.contains("lib/libpkgconf.so.3` at byte"),
            "{message}"
        );
    }

    #[test]
    fn a_longer_loop_is_found_and_symlinks_have_no_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path();
        let outputs = outputs(store);
        symlink(
            format!("{}/lib/x", store.join(LIB).display()),
            &store.join(OUT).join("link"),
        );
        write(
            &store.join(LIB).join("f"),
            store.join(DEV).display().to_string(),
            0o644,
        );
        write(
            &store.join(DEV).join("g"),
            store.join(OUT).display().to_string(),
            0o644,
        );
        let err = check_output_cycles(&outputs, store).unwrap_err();
        let StepError::OutputCycle { edges } = &err else {
            panic!("{err}");
        };
        let path: Vec<(&str, &str)> = edges
            .iter()
            .map(|edge| (edge.from.as_str(), edge.to.as_str()))
            .collect();
        assert_eq!(path, [("dev", "out"), ("out", "lib"), ("lib", "dev")]);
        assert_eq!(edges[1].offset, None);
    }

    #[test]
    fn self_references_and_one_way_references_are_no_cycle() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path();
        let outputs = outputs(store);
        write(
            &store.join(LIB).join("f"),
            store.join(LIB).display().to_string(),
            0o644,
        );
        write(
            &store.join(DEV).join("g"),
            store.join(LIB).display().to_string(),
            0o644,
        );
        write(
            &store.join(OUT).join("h"),
            store.join(DEV).display().to_string(),
            0o644,
        );
        check_output_cycles(&outputs, store).unwrap();
        // Outputs outside the store are not checked.
        let local = BTreeMap::from([
            ("a".to_owned(), store.join("a")),
            ("b".to_owned(), store.join("b")),
        ]);
        check_output_cycles(&local, store).unwrap();
    }
}
