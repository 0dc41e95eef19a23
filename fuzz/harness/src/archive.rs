//! The `archive` target: kiln-archive's `unpack_sources` on one source file (tar, tar.gz,
//! tar.bz2, tar.xz, tar.zst, tar.lzma, zip, or a single compressed file) into a build
//! directory that already holds `.attrs.json`, `env-vars` and a symlink leading out of it.
//!
//! The first byte chooses how the rest becomes the source file, so that mutations reach the
//! tar reader behind every decoder and not only the decoders' own checks:
//!
//! | `byte % 8` | source file |
//! | --- | --- |
//! | 0 | the bytes as they are, named `source` |
//! | 1 | the bytes as they are, named `source.tar.lzma` (legacy lzma is told by name) |
//! | 2, 3, 4, 5 | the bytes gzip-, bzip2-, xz-, zstd-compressed by the harness |
//! | 6 | the bytes lzma-compressed, named `source.tar.lzma` |
//! | 7 | the bytes as they are, named `hello-1.0.tar.gz` |
//!
//! and `(byte >> 3) % 4` the `sourceRoot`: none (0, 1), `.` (2) or `pkg` (3). Bit 5 unpacks
//! with `unpack_one_with` and a merged /usr instead (no source root then).
//!
//! A `.deb` (an `ar` archive) is recognised by content like the other formats, through
//! selectors 0 and 7.
//!
//! Invariants checked:
//!
//! - no panic;
//! - nothing outside the build directory changes (sentinels, the source file itself);
//! - on success the source root is a real directory inside the build directory, and every
//!   file and directory under it is writable by its owner;
//! - an error names the source, the build directory or the entry.
//!
//! Work is bounded: an input whose decompressed stream, tar entries or zip entries add up to
//! more than [`MAX_CONTENT`] bytes is skipped before kiln sees it (a fuzzer finds
//! decompression bombs quickly, and writing them out only measures the disk).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use kiln_archive::{
    unpack_one_with, unpack_sources, Compression, ExtractOptions, UnpackError, UnpackOptions,
};

use crate::snapshot::Scratch;

/// The most bytes an input may decompress or unpack to.
pub const MAX_CONTENT: u64 = 8 << 20;

/// Runs the `archive` target on one input.
pub fn archive(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (name, bytes) = match selector % 8 {
        0 => ("source", rest.to_vec()),
        1 => ("source.tar.lzma", rest.to_vec()),
        2 => ("source", gzip(rest)),
        3 => ("source", bzip2(rest)),
        4 => ("source", xz(rest)),
        5 => ("source", zstd(rest)),
        6 => ("source.tar.lzma", lzma(rest)),
        _ => ("hello-1.0.tar.gz", rest.to_vec()),
    };
    let source_root = match (selector >> 3) % 4 {
        2 => Some(".".to_owned()),
        3 => Some("pkg".to_owned()),
        _ => None,
    };
    if !bounded(&bytes, name) {
        return;
    }

    let scratch = Scratch::new();
    let source = scratch.work.join(name);
    fs::write(&source, &bytes).expect("the source file");
    let into = scratch.work.join("build");
    fs::create_dir(&into).expect("the build directory");
    fs::write(into.join(".attrs.json"), b"{}\n").expect("a file in the build directory");
    fs::write(into.join("env-vars"), b"").expect("a file in the build directory");
    std::os::unix::fs::symlink(scratch.root().join("sentinel"), into.join("escape"))
        .expect("a symlink in the build directory");
    let before = scratch.snapshot(&[&into]);

    if selector & 0x20 != 0 {
        let result = unpack_one_with(&source, &into, &ExtractOptions::merge_usr(true));
        crate::note("archive", || format!("{name} (merged /usr): {result:?}"));
        if let Err(error) = &result {
            check_error(error, &source, &into);
        }
        scratch.snapshot(&[&into]).assert_unchanged(
            &before,
            "unpacking with a merged /usr: the scratch directory outside the build directory",
        );
        return;
    }
    let options = UnpackOptions { source_root };
    let result = unpack_sources(std::slice::from_ref(&source), &into, &options);
    crate::note("archive", || format!("{name}: {result:?}"));
    match result {
        Ok(unpacked) => {
            let root = &unpacked.source_root;
            assert!(
                root.starts_with(&into),
                "the source root {} is outside {}",
                root.display(),
                into.display()
            );
            let real = fs::canonicalize(root).expect("the source root exists");
            let real_into = fs::canonicalize(&into).expect("the build directory exists");
            assert!(
                real.starts_with(&real_into) && real.is_dir(),
                "the source root {} resolves to {}, not a directory in the build directory",
                root.display(),
                real.display()
            );
            assert_writable(root);
        }
        Err(error) => check_error(&error, &source, &into),
    }
    scratch.snapshot(&[&into]).assert_unchanged(
        &before,
        "unpacking: the scratch directory outside the build directory",
    );
}

/// Every directory and regular file under `dir` (not through symlinks) has `u+w`.
fn assert_writable(dir: &Path) {
    let metadata = fs::symlink_metadata(dir).expect("a walked path exists");
    if metadata.is_symlink() {
        return;
    }
    if metadata.is_dir() || metadata.is_file() {
        assert!(
            metadata.permissions().mode() & 0o200 != 0,
            "{} is not writable after unpacking",
            dir.display()
        );
    }
    if metadata.is_dir() {
        for entry in fs::read_dir(dir).expect("a directory lists").flatten() {
            assert_writable(&entry.path());
        }
    }
}

/// An error names the source, the destination or (for `sourceRoot` problems) the value.
fn check_error(error: &UnpackError, source: &Path, into: &Path) {
    let text = error.to_string();
    let _ = error.hint();
    let mut chain = String::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(inner) = cause {
        chain.push_str(&inner.to_string());
        cause = inner.source();
    }
    let names = [source, into]
        .iter()
        .any(|path| text.contains(&path.display().to_string()));
    let about_root = matches!(
        error,
        UnpackError::SeveralSourceRoots { .. } | UnpackError::InvalidSourceRoot { .. }
    );
    assert!(
        names || about_root,
        "the error `{text}` ({chain}) names neither the source nor the build directory"
    );
}

/// Whether unpacking `bytes` (named `name`) stays under [`MAX_CONTENT`], read the way kiln
/// reads it: the decompressed stream, then the content of each tar or zip entry.
fn bounded(bytes: &[u8], name: &str) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let compression = Compression::detect(head, name);
    let mut decompressed = Vec::new();
    let mut decoder = compression
        .decoder(io::BufReader::new(bytes))
        .take(MAX_CONTENT + 1);
    // A decoder error ends the stream here as it does in kiln.
    let _ = decoder.read_to_end(&mut decompressed);
    if decompressed.len() as u64 > MAX_CONTENT {
        return false;
    }
    if compression == Compression::None && bytes.starts_with(b"PK") {
        return zip_bounded(bytes);
    }
    if compression == Compression::None && bytes.starts_with(b"!<arch>\n") {
        return ar_bounded(bytes);
    }
    tar_bounded(&decompressed)
}

pub(crate) fn tar_bounded(bytes: &[u8]) -> bool {
    let mut archive = tar::Archive::new(bytes);
    let Ok(entries) = archive.entries() else {
        return true;
    };
    let mut total = 0u64;
    for entry in entries {
        let Ok(entry) = entry else {
            return true;
        };
        total += io::copy(&mut entry.take(MAX_CONTENT + 1), &mut io::sink()).unwrap_or(0);
        if total > MAX_CONTENT {
            return false;
        }
    }
    true
}

/// Every member of an `ar` archive (a `.deb`), decompressed by content, is a bounded tar.
fn ar_bounded(bytes: &[u8]) -> bool {
    let mut rest = &bytes[8..];
    while rest.len() >= 60 {
        let size = std::str::from_utf8(&rest[48..58])
            .ok()
            .and_then(|size| size.trim_end().parse::<usize>().ok());
        let Some(size) = size else {
            return true;
        };
        let name = String::from_utf8_lossy(&rest[..16]).trim_end().to_owned();
        let data = &rest[60..];
        let member = &data[..size.min(data.len())];
        if !bounded(member, &name) {
            return false;
        }
        rest = &data[(size + size % 2).min(data.len())..];
    }
    true
}

fn zip_bounded(bytes: &[u8]) -> bool {
    let Ok(mut archive) = zip::ZipArchive::new(io::Cursor::new(bytes)) else {
        return true;
    };
    let mut total = 0u64;
    for index in 0..archive.len() {
        let Ok(entry) = archive.by_index(index) else {
            return true;
        };
        total += io::copy(&mut entry.take(MAX_CONTENT + 1), &mut io::sink()).unwrap_or(0);
        if total > MAX_CONTENT {
            return false;
        }
    }
    true
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// `bytes` bzip2-compressed.
pub fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// `bytes` xz-compressed.
pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 0);
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// `bytes` zstd-compressed.
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 1).expect("compressing in memory")
}

/// `bytes` in the legacy lzma ("lzma-alone") format.
pub fn lzma(bytes: &[u8]) -> Vec<u8> {
    let options = liblzma::stream::LzmaOptions::new_preset(0).expect("preset 0 exists");
    let stream = liblzma::stream::Stream::new_lzma_encoder(&options).expect("an lzma encoder");
    let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}
