//! Real Debian patch series: each source package is fetched with `scripts/fetch-debian-source.sh`
//! (network to Debian's mirror; a failed download fails the test, it is never skipped), its
//! `.orig` tarball and Debian tarball are unpacked with kiln-archive the way `dpkg-source -x` lays
//! them out, and `debian/patches/series` is applied with kiln-patch. The result must be
//! byte-for-byte the tree GNU patch makes from the same series.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_archive::{unpack_one, unpack_sources, UnpackOptions};
use kiln_patch::{apply_patch_file, read_quilt_series, read_quilt_series_under, PatchReport};

/// The cache directory holding the source package's files.
fn fetch(package: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-debian-source.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(package)
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "fetching the Debian source package `{package}` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// The one file in `dir` whose name contains `part`.
fn find(dir: &Path, part: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.contains(part) && !name.ends_with(".asc")
        })
        .collect();
    assert_eq!(found.len(), 1, "{part} in {}: {found:?}", dir.display());
    found.into_iter().next().unwrap()
}

/// Unpacks the package's `.orig` and Debian tarballs into `into`; returns the source root.
fn unpack_package(cache: &Path, into: &Path) -> PathBuf {
    let orig = find(cache, ".orig.tar.");
    let unpacked = unpack_sources(&[orig], into, &UnpackOptions::default()).unwrap();
    // dpkg-source -x: the Debian tarball holds `debian/`, unpacked inside the source root.
    unpack_one(&find(cache, ".debian.tar."), &unpacked.source_root).unwrap();
    unpacked.source_root
}

/// Every file and symlink under `root`, with its content (or target).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().to_owned();
            if metadata.is_dir() {
                walk(root, &path, files);
            } else if metadata.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                files.insert(relative, target.into_os_string().into_encoded_bytes());
            } else {
                files.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

/// Applies the package's series with kiln and with GNU patch to two fresh trees and checks
/// that they end up identical; returns kiln's reports.
fn apply_series(package: &str) -> Vec<PatchReport> {
    let cache = fetch(package);
    let scratch = tempfile::tempdir().unwrap();
    let kiln_root = unpack_package(&cache, &scratch.path().join("kiln"));
    let gnu_root = unpack_package(&cache, &scratch.path().join("gnu"));
    let series = read_quilt_series(&kiln_root.join("debian/patches")).unwrap();
    assert!(!series.is_empty(), "{package} has patches");
    // Named below the source tree (as the builder's patch step does), the same series.
    assert_eq!(
        read_quilt_series_under(&kiln_root, Path::new("debian/patches")).unwrap(),
        Some(series.clone())
    );

    let mut reports = Vec::new();
    for (patch, options) in &series {
        let report = apply_patch_file(patch, &kiln_root, options)
            .unwrap_or_else(|error| panic!("{package}: {error}"));
        reports.push(report);
        let status = Command::new("patch")
            .arg(format!("-p{}", options.strip))
            .args(["--no-backup-if-mismatch", "--batch", "--silent", "-i"])
            .arg(patch)
            .current_dir(&gnu_root)
            .status()
            .expect("GNU patch runs");
        assert!(status.success(), "GNU patch failed on {}", patch.display());
    }
    let kiln = snapshot(&kiln_root);
    let gnu = snapshot(&gnu_root);
    let differing: Vec<_> = kiln
        .keys()
        .chain(gnu.keys())
        .filter(|path| kiln.get(*path) != gnu.get(*path))
        .collect();
    assert!(
        differing.is_empty(),
        "kiln and GNU patch differ on {differing:?}"
    );
    reports
}

#[test]
fn hello_unpacks_and_has_no_patches() {
    // The brief's package: Debian's hello 2.10-3 carries no patches (no debian/patches/series),
    // so the series is empty; the series tests below use packages that have some.
    let cache = fetch("hello");
    let scratch = tempfile::tempdir().unwrap();
    let root = unpack_package(&cache, scratch.path());
    assert_eq!(root, scratch.path().join("hello-2.10"));
    assert!(root.join("debian/control").is_file());
    assert!(root.join("src/hello.c").is_file());
    assert_eq!(
        read_quilt_series(&root.join("debian/patches")).unwrap(),
        vec![]
    );
}

#[test]
fn coreutils_series_matches_gnu_patch() {
    let reports = apply_series("coreutils");
    assert_eq!(reports.len(), 3);
    // Debian's patches were made against an older coreutils: GNU reports offsets (e.g. "Hunk #1
    // succeeded at 1677 (offset 152 lines)" for 63_dd-appenderrors.patch), and so does kiln.
    assert_eq!(reports[1].files[0].hunks[0].offset, 152);
    assert_eq!(reports[2].files[0].hunks[0].offset, -13);
}

#[test]
fn gnu_patch_series_matches_gnu_patch() {
    // GNU patch's own Debian package: 15 patches, git format-patch ones among them (a created
    // file, commit messages and `-- ` trailers), with offsets.
    let reports = apply_series("patch");
    assert_eq!(reports.len(), 15);
    let created = reports
        .iter()
        .flat_map(|report| &report.files)
        .filter(|file| file.change == kiln_patch::FileChange::Created)
        .count();
    assert_eq!(created, 1);
}
