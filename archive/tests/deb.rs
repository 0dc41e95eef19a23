//! Debian binary packages: packages built by dpkg-deb itself extract as `dpkg-deb -x` extracts
//! them (with and without the merged /usr), and malformed packages are refused with an error
//! that says what is wrong.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_archive::{unpack_one, unpack_one_with, ExtractOptions, UnpackError};

/// A package tree: a binary in /usr/bin, a library in /lib with a relative and an absolute
/// symlink (as libc6 ships them), a program in /bin hard-linked into /usr/bin (as gzip ships
/// zcat and friends), and the DEBIAN/control file dpkg-deb needs.
fn package_tree(root: &Path) {
    let write = |path: &str, content: &[u8], mode: u32| {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        "DEBIAN/control",
        b"Package: kiln-test\nVersion: 1.0\nArchitecture: amd64\nMaintainer: kiln <kiln@invalid>\nDescription: test\n",
        0o644,
    );
    write("usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755);
    write(
        "lib/x86_64-linux-gnu/libfoo.so.1.2",
        b"\x7fELF not really",
        0o644,
    );
    std::os::unix::fs::symlink(
        "libfoo.so.1.2",
        root.join("lib/x86_64-linux-gnu/libfoo.so.1"),
    )
    .unwrap();
    fs::create_dir_all(root.join("lib64")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/x86_64-linux-gnu/libfoo.so.1",
        root.join("lib64/libfoo-abs.so"),
    )
    .unwrap();
    write("bin/gzip", b"gzip program", 0o755);
    fs::hard_link(root.join("bin/gzip"), root.join("usr/bin/gunzip")).unwrap();
    write("usr/share/doc/kiln-test/copyright", b"free\n", 0o644);
}

/// Builds a .deb with dpkg-deb, the data member compressed with `compression`.
fn build_deb(scratch: &Path, compression: &str) -> PathBuf {
    let tree = scratch.join(format!("tree-{compression}"));
    package_tree(&tree);
    let deb = scratch.join(format!("kiln-test-{compression}.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Z", compression, "--build"])
        .arg(&tree)
        .arg(&deb)
        .output()
        .expect("dpkg-deb (Debian's dpkg) must be installed");
    assert!(status.status.success(), "dpkg-deb: {status:?}");
    deb
}

/// Every path under `root`, with what it is: `d`, `f <content>`, `l <target>`.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let metadata = fs::symlink_metadata(&path).unwrap();
            if metadata.is_symlink() {
                out.push(format!(
                    "{relative} -> {}",
                    fs::read_link(&path).unwrap().display()
                ));
            } else if metadata.is_dir() {
                out.push(format!("{relative}/"));
                stack.push(path);
            } else {
                out.push(format!(
                    "{relative} {:o} {}",
                    metadata.mode() & 0o111,
                    String::from_utf8_lossy(&fs::read(&path).unwrap())
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn packages_built_by_dpkg_deb_extract_like_dpkg_deb_x() {
    let scratch = tempfile::tempdir().unwrap();
    for compression in ["xz", "gzip", "zstd", "none"] {
        let deb = build_deb(scratch.path(), compression);
        let ours = scratch.path().join(format!("ours-{compression}"));
        let entries = unpack_one(&deb, &ours).unwrap_or_else(|e| panic!("{compression}: {e}"));
        let theirs = scratch.path().join(format!("theirs-{compression}"));
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&theirs)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(listing(&ours), listing(&theirs), "{compression}");
        assert!(entries >= 12, "{compression}: {entries} entries");
    }
}

#[test]
fn merging_usr_moves_bin_and_lib_under_usr() {
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_deb(scratch.path(), "xz");
    let into = scratch.path().join("root");
    unpack_one_with(&deb, &into, &ExtractOptions::merge_usr(true)).unwrap();
    let top: Vec<_> = fs::read_dir(&into)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(top, ["usr"], "only usr/ at the top");
    let usr = into.join("usr");
    assert_eq!(
        fs::read(usr.join("lib/x86_64-linux-gnu/libfoo.so.1.2")).unwrap(),
        b"\x7fELF not really"
    );
    // Relative symlinks are left alone; absolute ones name a path of the package's root, so
    // they become relative links to where that path is now, and resolve inside the tree.
    assert_eq!(
        fs::read_link(usr.join("lib/x86_64-linux-gnu/libfoo.so.1")).unwrap(),
        Path::new("libfoo.so.1.2")
    );
    assert_eq!(
        fs::read_link(usr.join("lib64/libfoo-abs.so")).unwrap(),
        Path::new("../../usr/lib/x86_64-linux-gnu/libfoo.so.1")
    );
    assert_eq!(
        fs::read(usr.join("lib64/libfoo-abs.so")).unwrap(),
        b"\x7fELF not really"
    );
    // The hard link's target moved too, and the two names are still one file.
    let gzip = fs::metadata(usr.join("bin/gzip")).unwrap();
    let gunzip = fs::metadata(usr.join("bin/gunzip")).unwrap();
    assert_eq!((gzip.ino(), gzip.nlink()), (gunzip.ino(), 2));
    assert_eq!(gzip.mode() & 0o111, 0o111);
}

/// An `ar` archive with the given members, written by hand.
fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        writeln!(
            out,
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`",
            0,
            0,
            0,
            "100644",
            data.len()
        )
        .unwrap();
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

fn tar_with_file(path: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, content).unwrap();
    builder.into_inner().unwrap()
}

fn unpack_bytes(bytes: &[u8]) -> (Result<u64, UnpackError>, tempfile::TempDir) {
    let scratch = tempfile::tempdir().unwrap();
    let deb = scratch.path().join("bad.deb");
    fs::write(&deb, bytes).unwrap();
    let result = unpack_one(&deb, &scratch.path().join("into"));
    (result, scratch)
}

#[test]
fn a_hand_made_package_with_an_odd_sized_member_and_underscore_members() {
    let data = tar_with_file("./usr/share/x", b"odd");
    let (result, scratch) = unpack_bytes(&ar(&[
        ("debian-binary", b"2.0\n"),
        ("_extra", b"ignored!!"),
        ("control.tar", &tar_with_file("./control", b"c")),
        ("data.tar", &data),
    ]));
    assert_eq!(result.unwrap(), 1);
    assert_eq!(
        fs::read(scratch.path().join("into/usr/share/x")).unwrap(),
        b"odd"
    );
}

#[test]
fn malformed_packages_are_refused_with_the_reason() {
    let data = tar_with_file("./x", b"x");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            ar(&[
                ("debian-binary", b"3.0\n"),
                ("control.tar", &data),
                ("data.tar", &data),
            ]),
            "format version is `3.0`",
        ),
        (
            ar(&[("debian-binary", b"2.0\n"), ("data.tar", &data)]),
            "unexpected member `data.tar` (expected `control.tar`)",
        ),
        (
            ar(&[("debian-binary", b"2.0\n"), ("control.tar", &data)]),
            "has no `data.tar` member",
        ),
        (
            ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar", &data),
                ("evil", &data),
            ]),
            "unexpected member `evil`",
        ),
        (
            ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar", &data),
                ("data.tar.rar", &data),
            ]),
            "unexpected member `data.tar.rar`",
        ),
    ];
    for (bytes, expected) in cases {
        let (result, _scratch) = unpack_bytes(&bytes);
        let error = result.unwrap_err();
        assert!(matches!(error, UnpackError::NotADeb { .. }), "{error}");
        assert!(
            error.to_string().contains(expected),
            "{error} (expected {expected})"
        );
    }
    // Truncated: in a header, in a member, in the data member.
    let whole = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &data),
        ("data.tar", &data),
    ]);
    for cut in [70, 140, whole.len() - 600] {
        let (result, _scratch) = unpack_bytes(&whole[..cut]);
        let error = result.unwrap_err();
        assert!(
            matches!(error, UnpackError::Read { .. }),
            "cut at {cut}: {error}"
        );
    }
    // A size that is not a number, and a header without its end marker.
    let mut bad_size = whole.clone();
    bad_size[8 + 48..8 + 58].copy_from_slice(b"12x4      ");
    let mut bad_end = whole.clone();
    bad_end[8 + 58] = b'!';
    for bytes in [bad_size, bad_end] {
        let (result, _scratch) = unpack_bytes(&bytes);
        assert!(matches!(result.unwrap_err(), UnpackError::Read { .. }));
    }
}

#[test]
fn a_package_cannot_write_outside_or_through_a_symlink() {
    let outside = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder
        .append_link(&mut header, "./lib", outside.path())
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "./lib/passwd", &b"evil"[..])
        .unwrap();
    let data = builder.into_inner().unwrap();
    let (result, scratch) = unpack_bytes(&ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &tar_with_file("./control", b"c")),
        ("data.tar", &data),
    ]));
    let error = result.unwrap_err();
    assert!(
        matches!(error, UnpackError::Unsafe { .. }),
        "{error}: {:?}",
        std::error::Error::source(&error)
    );
    assert!(fs::read_link(scratch.path().join("into/lib")).is_ok());
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}
