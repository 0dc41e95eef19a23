//! kiln's unpacker: extracts a build's sources safely and as a stream, and finds the source root,
//! replacing nixpkgs stdenv's `unpackPhase`.
//!
//! [`unpack_sources`] is the phase: it unpacks every source into one directory with
//! [`unpack_one`], picks the source root as stdenv does (the one new top-level directory, or an
//! explicit `sourceRoot`), makes it writable and reports the newest file mtime under it, which the
//! runtime uses to raise `SOURCE_DATE_EPOCH`.
//!
//! Sources are recognised by content ([`Compression`], tar, zip and `ar` magic): tar, possibly
//! gzip-, bzip2-, xz- or zstd-compressed; zip; a Debian binary package (`.deb`, whose `data.tar`
//! is extracted: see the `deb` module); a single compressed file (decompressed next to the
//! others); or a directory (copied). [`ExtractOptions::merge_usr`] lays out a root file system
//! (such as a `.deb`'s) as on a merged-/usr system. Archives are read as streams and decompressed on a helper
//! thread, and every entry goes through one set of safety rules (no absolute paths, no `..`, no
//! writing through symlinks, hard links only inside): see the `dest` module. A GNU sparse file
//! keeps its holes and is at most [`MAX_SPARSE_SIZE`] bytes, so that a tiny archive cannot
//! fill the disk.
//!
//! Errors are [`UnpackError`]s that name the archive and the entry. File-system calls use
//! `std::fs` directly rather than `fs_err`: each failure is wrapped in a variant that already
//! names the path, which `fs_err` would repeat in the `caused by:` line.
//!
//! # Example
//!
//! ```
//! use kiln_archive::{unpack_sources, UnpackOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scratch = tempfile::tempdir()?;
//! // A "source" that is a directory, as `src = ./.` gives.
//! let source = scratch.path().join("hello-1.0");
//! std::fs::create_dir(&source)?;
//! std::fs::write(source.join("hello.c"), "int main() { return 0; }\n")?;
//!
//! let build = scratch.path().join("build");
//! std::fs::create_dir(&build)?;
//! std::fs::write(build.join(".attrs.json"), "{}")?; // already there: not a source root
//!
//! let unpacked = unpack_sources(&[source], &build, &UnpackOptions::default())?;
//! assert_eq!(unpacked.source_root, build.join("hello-1.0"));
//! assert_eq!(unpacked.entries, 2);
//! assert!(unpacked.newest_mtime.is_some());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod copy;
mod deb;
mod dest;
mod detect;
mod error;
mod root;
mod untar;
mod unzip;

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

pub use copy::strip_hash;
pub use detect::{open_decompressed, Compression, MAX_DECODER_MEMORY};
pub use error::{UnpackError, UnsafeEntry};
pub use untar::MAX_SPARSE_SIZE;

use dest::Dest;
use kiln_fsio::ThreadedReader;

/// The name of the thread that decompresses an archive.
const DECOMPRESS_THREAD: &str = "kiln-decompress";

/// How [`unpack_sources`] picks the source root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackOptions {
    /// stdenv's `sourceRoot`: the directory to build in, relative to the destination (it may
    /// contain `/`, and `.` means the destination itself). MUST NOT be absolute or contain `..`.
    /// `None` picks the one new top-level directory.
    pub source_root: Option<String>,
}

/// What [`unpack_sources`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The absolute path of the source root; it exists and is a directory inside the
    /// destination.
    pub source_root: PathBuf,
    /// The newest mtime (seconds since the epoch) of a regular file under the source root, or
    /// `None` when it holds no regular file.
    pub newest_mtime: Option<i64>,
    /// How many entries (files, directories, links) were created, over all sources.
    pub entries: u64,
}

/// Unpacks `sources` in order into `into` (created if missing), then finds the source root and
/// makes it writable; see the crate documentation.
///
/// Only top-level entries that were not in `into` before count when looking for the source
/// root, so a build directory that already holds `.attrs.json` or `env-vars` is fine.
pub fn unpack_sources(
    sources: &[PathBuf],
    into: &Path,
    options: &UnpackOptions,
) -> Result<Unpacked, UnpackError> {
    create_into(into)?;
    let before = root::top_level(into)?;
    let mut entries = 0;
    for source in sources {
        entries += unpack_one(source, into)?;
    }
    let source_root = root::find_source_root(into, &before, options.source_root.as_deref())?;
    let newest_mtime = root::make_writable(&source_root)?;
    Ok(Unpacked {
        source_root,
        newest_mtime,
        entries,
    })
}

/// How [`unpack_one_with`] lays out what it extracts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtractOptions {
    /// Put the entries under the top-level `bin`, `sbin`, `lib`, `lib32`, `lib64`, `libx32` and
    /// `libo32` under `usr/` instead (hard link targets too), as Debian's merged /usr does: a
    /// `.deb`'s `./lib/x86_64-linux-gnu/libc.so.6` becomes `usr/lib/x86_64-linux-gnu/libc.so.6`.
    /// The sources are taken as root file systems: an absolute symlink target names a path of
    /// that root, so it becomes a relative link to where that path is now (`lib64/ld.so ->
    /// /lib/x86_64-linux-gnu/ld.so` becomes `usr/lib64/ld.so -> ../lib/x86_64-linux-gnu/ld.so`),
    /// and the tree can be moved anywhere (into the store). Relative targets are left as they are.
    pub merge_usr: bool,
}

impl ExtractOptions {
    /// Options with [`ExtractOptions::merge_usr`] set to `merge`.
    pub fn merge_usr(merge: bool) -> ExtractOptions {
        ExtractOptions { merge_usr: merge }
    }
}

/// Extracts one source into `into` (created if missing) and returns how many entries it
/// created; [`unpack_one_with`] with the default options.
///
/// A directory is copied to `into/<name>` and a single compressed file decompressed to
/// `into/<name without the compression's extension>`, `<name>` without a store hash in both
/// cases. The result is not made writable beyond what extraction does (`u+w` on everything it
/// creates); [`unpack_sources`] does that for the whole source root.
pub fn unpack_one(source: &Path, into: &Path) -> Result<u64, UnpackError> {
    unpack_one_with(source, into, &ExtractOptions::default())
}

/// Extracts one source into `into` (created if missing), laid out as `options` say, and
/// returns how many entries it created; see [`unpack_one`].
pub fn unpack_one_with(
    source: &Path,
    into: &Path,
    options: &ExtractOptions,
) -> Result<u64, UnpackError> {
    let make_dest = |source: &Path| {
        Ok::<_, UnpackError>(Dest::new(into, source)?.merging_usr(options.merge_usr))
    };
    let open_error = |error| UnpackError::Open {
        source_path: source.to_owned(),
        source: error,
    };
    create_into(into)?;
    let metadata = fs::metadata(source).map_err(open_error)?;
    if metadata.is_dir() {
        return copy::copy_dir(source, into);
    }
    let mut file = File::open(source).map_err(open_error)?;
    let mut head = [0u8; 512];
    let filled = kiln_fsio::read_full(&mut file, &mut head).map_err(open_error)?;
    let head = &head[..filled];
    let name = source
        .file_name()
        .map(|name| strip_hash(name).to_string_lossy().into_owned())
        .unwrap_or_default();
    let compression = Compression::detect(head, &name);
    let stream = BufReader::with_capacity(128 * 1024, io::Cursor::new(head.to_vec()).chain(file));
    if compression == Compression::None {
        if detect::is_tar(head) {
            return untar::untar(stream, source, make_dest(source)?);
        }
        if detect::is_zip(head) {
            let file = File::open(source).map_err(open_error)?;
            return unzip::unzip(file, source, make_dest(source)?);
        }
        if deb::is_deb(head) {
            return deb::undeb(stream, source, make_dest(source)?);
        }
        return Err(UnpackError::UnknownFormat {
            source_path: source.to_owned(),
        });
    }
    let mut reader = ThreadedReader::spawn(DECOMPRESS_THREAD, compression.decoder(stream))
        .map_err(open_error)?;
    let decompressed_head = reader.fill_buf().map_err(|error| UnpackError::Read {
        archive: source.to_owned(),
        source: error,
    })?;
    if detect::is_tar(decompressed_head) {
        return untar::untar(reader, source, make_dest(source)?);
    }
    // A single compressed file: `foo.gz` becomes `foo`.
    let stem = compression
        .extensions()
        .iter()
        .find_map(|extension| name.strip_suffix(extension))
        .filter(|stem| !stem.is_empty())
        .unwrap_or(&name);
    let relative = Path::new(stem);
    let destination = into.join(relative);
    if fs::symlink_metadata(&destination).is_ok() {
        return Err(UnpackError::DestinationExists {
            source_path: source.to_owned(),
            destination,
        });
    }
    let mut dest = make_dest(source)?;
    let relative = dest.relative(relative)?;
    let mtime = metadata_mtime(&metadata);
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
    dest.file(relative.as_ref(), &relative, mode, Some(mtime), &mut reader)?;
    dest.finish()
}

/// The mtime of `metadata`, as seconds and nanoseconds.
fn metadata_mtime(metadata: &fs::Metadata) -> (i64, u32) {
    use std::os::unix::fs::MetadataExt as _;
    (
        metadata.mtime(),
        u32::try_from(metadata.mtime_nsec()).unwrap_or(0),
    )
}

fn create_into(into: &Path) -> Result<(), UnpackError> {
    fs::create_dir_all(into).map_err(|source| UnpackError::CreateDestination {
        into: into.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::io::Write as _;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::path::{Path, PathBuf};

    use super::*;

    /// One entry of a test tar archive; paths and link targets are written as given, unchecked.
    enum Spec<'a> {
        Dir(&'a str, u32, u64),
        File(&'a str, u32, u64, &'a [u8]),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
        Char(&'a str),
    }

    fn tar_bytes(specs: &[Spec<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for spec in specs {
            let mut header = tar::Header::new_gnu();
            let (name, data): (&str, &[u8]) = match spec {
                Spec::Dir(name, mode, mtime) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_mtime(*mtime);
                    (name, b"")
                }
                Spec::File(name, mode, mtime, data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_mtime(*mtime);
                    (name, data)
                }
                Spec::Symlink(name, target) | Spec::HardLink(name, target) => {
                    header.set_entry_type(if matches!(spec, Spec::Symlink(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    header.set_mode(0o777);
                    header.set_mtime(1_200_000_000);
                    header.set_link_name_literal(target).unwrap();
                    (name, b"")
                }
                Spec::Char(name) => {
                    header.set_entry_type(tar::EntryType::Char);
                    header.set_mode(0o600);
                    (name, b"")
                }
            };
            header.set_size(data.len() as u64);
            if name.len() < 100 {
                // Written raw, so that `../x` and `/abs` reach the unpacker unchanged.
                let field = &mut header.as_old_mut().name;
                field.fill(0);
                field[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, data).unwrap();
            } else {
                builder.append_data(&mut header, name, data).unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    /// A typical source tarball: `pkg-1.0/` with a file, an executable, a symlink, a hard link.
    fn sample_tar() -> Vec<u8> {
        tar_bytes(&[
            Spec::Dir("pkg-1.0/", 0o755, 1_000_000_000),
            Spec::File("pkg-1.0/README", 0o644, 1_000_000_100, b"read me\n"),
            Spec::Dir("pkg-1.0/bin/", 0o755, 1_000_000_000),
            Spec::File("pkg-1.0/bin/run", 0o755, 1_100_000_000, b"#!/bin/sh\n"),
            Spec::Symlink("pkg-1.0/link", "README"),
            Spec::HardLink("pkg-1.0/hard", "pkg-1.0/README"),
        ])
    }

    fn umask() -> u32 {
        dest::process_umask()
    }

    fn file_mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn mtime(path: &Path) -> i64 {
        fs::symlink_metadata(path).unwrap().mtime()
    }

    /// Checks what [`sample_tar`] unpacks to.
    fn assert_sample(unpacked: &Unpacked, into: &Path) {
        let root = into.join("pkg-1.0");
        assert_eq!(unpacked.source_root, root);
        assert_eq!(unpacked.entries, 6);
        assert_eq!(unpacked.newest_mtime, Some(1_100_000_000));
        assert_eq!(fs::read(root.join("README")).unwrap(), b"read me\n");
        assert_eq!(fs::read(root.join("bin/run")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(file_mode(&root.join("README")), 0o644 & !umask() | 0o200);
        assert_eq!(file_mode(&root.join("bin/run")), 0o755 & !umask() | 0o200);
        assert_eq!(
            fs::read_link(root.join("link")).unwrap(),
            Path::new("README")
        );
        let readme = fs::metadata(root.join("README")).unwrap();
        let hard = fs::metadata(root.join("hard")).unwrap();
        assert_eq!((readme.ino(), readme.nlink()), (hard.ino(), 2));
        assert_eq!(mtime(&root.join("README")), 1_000_000_100);
        assert_eq!(mtime(&root.join("bin/run")), 1_100_000_000);
        assert_eq!(mtime(&root.join("link")), 1_200_000_000);
        assert_eq!(mtime(&root), 1_000_000_000);
        assert_eq!(mtime(&root.join("bin")), 1_000_000_000);
    }

    fn write(path: &Path, data: &[u8]) -> PathBuf {
        fs::write(path, data).unwrap();
        path.to_owned()
    }

    fn unpack(source: &Path, into: &Path) -> Result<Unpacked, UnpackError> {
        unpack_sources(&[source.to_owned()], into, &UnpackOptions::default())
    }

    /// The error and its causes on one line, as the CLI shows them.
    fn chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    fn listing(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn plain_tar() {
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(&scratch.path().join("pkg.tar"), &sample_tar());
        let into = scratch.path().join("build");
        let unpacked = unpack(&tarball, &into).unwrap();
        assert_sample(&unpacked, &into);
    }

    #[test]
    fn compressed_tars_by_content() {
        let tar = sample_tar();
        let gzip = {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&tar).unwrap();
            encoder.finish().unwrap()
        };
        let bzip2 = {
            let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            encoder.write_all(&tar).unwrap();
            encoder.finish().unwrap()
        };
        let xz = {
            let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
            encoder.write_all(&tar).unwrap();
            encoder.finish().unwrap()
        };
        let zstd = zstd::stream::encode_all(tar.as_slice(), 1).unwrap();
        // Names that do not tell the format: detection is by content.
        for (name, bytes) in [
            ("pkg.tgz", gzip.clone()),
            ("source", gzip),
            ("pkg.tar.bz2", bzip2),
            ("pkg.download", xz),
            ("pkg.tar.zst", zstd),
        ] {
            let scratch = tempfile::tempdir().unwrap();
            let tarball = write(&scratch.path().join(name), &bytes);
            let into = scratch.path().join("build");
            let unpacked =
                unpack(&tarball, &into).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_sample(&unpacked, &into);
        }
    }

    #[test]
    fn zip_archive() {
        let scratch = tempfile::tempdir().unwrap();
        let archive = scratch.path().join("pkg.zip");
        let mut zip = zip::ZipWriter::new(fs::File::create(&archive).unwrap());
        let time = zip::DateTime::from_date_and_time(2020, 5, 17, 12, 30, 10).unwrap();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(time);
        zip.add_directory("pkg-2.0/", options.unix_permissions(0o755))
            .unwrap();
        zip.start_file("pkg-2.0/main.c", options.unix_permissions(0o644))
            .unwrap();
        zip.write_all(b"int main(void) { return 0; }\n").unwrap();
        zip.start_file("pkg-2.0/configure", options.unix_permissions(0o755))
            .unwrap();
        zip.write_all(b"#!/bin/sh\n").unwrap();
        zip.add_symlink("pkg-2.0/link", "main.c", options).unwrap();
        zip.finish().unwrap();

        let into = scratch.path().join("build");
        let unpacked = unpack(&archive, &into).unwrap();
        let root = into.join("pkg-2.0");
        // 2020-05-17 12:30:10 UTC
        assert_eq!(
            unpacked,
            Unpacked {
                source_root: root.clone(),
                newest_mtime: Some(1_589_718_610),
                entries: 4,
            }
        );
        assert_eq!(
            fs::read(root.join("main.c")).unwrap(),
            b"int main(void) { return 0; }\n"
        );
        assert_eq!(file_mode(&root.join("configure")), 0o755 & !umask() | 0o200);
        assert_eq!(file_mode(&root.join("main.c")), 0o644 & !umask() | 0o200);
        assert_eq!(
            fs::read_link(root.join("link")).unwrap(),
            Path::new("main.c")
        );
        assert_eq!(mtime(&root.join("main.c")), 1_589_718_610);
    }

    #[test]
    fn single_compressed_file() {
        let scratch = tempfile::tempdir().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"just some notes\n").unwrap();
        let source = write(
            &scratch
                .path()
                .join("0c0bvqyzm2qcw7lfx4khw5ckxdsbj7p4-notes.txt.gz"),
            &encoder.finish().unwrap(),
        );
        let into = scratch.path().join("build");
        assert_eq!(unpack_one(&source, &into).unwrap(), 1);
        assert_eq!(
            fs::read(into.join("notes.txt")).unwrap(),
            b"just some notes\n"
        );
        assert_eq!(mtime(&into.join("notes.txt")), mtime(&source));
    }

    #[test]
    fn a_single_file_needs_an_explicit_source_root() {
        let scratch = tempfile::tempdir().unwrap();
        let source = write(
            &scratch.path().join("notes.zst"),
            &zstd::stream::encode_all(&b"notes\n"[..], 1).unwrap(),
        );
        let into = scratch.path().join("build");
        let error = unpack(&source, &into).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("unpacker produced no directory in `{}`", into.display())
        );
        assert_eq!(
            error.hint().unwrap(),
            "set `sourceRoot` to the directory to build in (`.` for the destination itself)"
        );

        let into = scratch.path().join("build2");
        let options = UnpackOptions {
            source_root: Some(".".to_owned()),
        };
        let unpacked = unpack_sources(&[source], &into, &options).unwrap();
        assert_eq!(unpacked.source_root, into);
        assert_eq!(fs::read(into.join("notes")).unwrap(), b"notes\n");
    }

    #[test]
    fn directory_source_is_copied() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("0c0bvqyzm2qcw7lfx4khw5ckxdsbj7p4-src");
        fs::create_dir_all(source.join("lib")).unwrap();
        let file = write(&source.join("lib/util.c"), b"/* util */\n");
        std::os::unix::fs::symlink("lib/util.c", source.join("util-link")).unwrap();
        let time =
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890);
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(time)
            .unwrap();
        // Read-only, as everything in the Nix store is.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();
        fs::set_permissions(source.join("lib"), fs::Permissions::from_mode(0o555)).unwrap();

        let into = scratch.path().join("build");
        let unpacked = unpack(&source, &into).unwrap();
        fs::set_permissions(source.join("lib"), fs::Permissions::from_mode(0o755)).unwrap();
        let root = into.join("src");
        assert_eq!(
            unpacked,
            Unpacked {
                source_root: root.clone(),
                newest_mtime: Some(1_234_567_890),
                entries: 4,
            }
        );
        assert_eq!(fs::read(root.join("lib/util.c")).unwrap(), b"/* util */\n");
        assert_eq!(
            file_mode(&root.join("lib/util.c")),
            0o644 & !umask() | 0o200
        );
        assert_eq!(file_mode(&root.join("lib")) & 0o700, 0o700);
        assert_eq!(
            fs::read_link(root.join("util-link")).unwrap(),
            Path::new("lib/util.c")
        );

        // Copying the same source again would overwrite it: refused, as stdenv does.
        let error = unpack_one(&source, &into).unwrap_err();
        assert!(
            matches!(error, UnpackError::DestinationExists { .. }),
            "{error}"
        );
    }

    #[test]
    fn only_new_directories_count() {
        let scratch = tempfile::tempdir().unwrap();
        let into = scratch.path().join("build");
        fs::create_dir(&into).unwrap();
        write(&into.join(".attrs.json"), b"{}");
        write(&into.join("env-vars"), b"");
        fs::create_dir(into.join("old")).unwrap();
        let tarball = write(&scratch.path().join("pkg.tar"), &sample_tar());
        let unpacked = unpack(&tarball, &into).unwrap();
        assert_eq!(unpacked.source_root, into.join("pkg-1.0"));
    }

    #[test]
    fn several_new_directories_need_a_source_root() {
        let scratch = tempfile::tempdir().unwrap();
        let first = write(
            &scratch.path().join("a.tar"),
            &tar_bytes(&[Spec::File("a-1/x", 0o644, 1, b"a")]),
        );
        let second = write(
            &scratch.path().join("b.tar"),
            &tar_bytes(&[
                Spec::File("b-1/sub/y", 0o644, 2, b"b"),
                Spec::File("top-level-file", 0o644, 9, b"c"),
            ]),
        );
        let sources = [first, second];
        let into = scratch.path().join("build");
        let error = unpack_sources(&sources, &into, &UnpackOptions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unpacker produced several directories: `a-1`, `b-1`"
        );
        assert_eq!(
            error.hint().unwrap(),
            "set `sourceRoot` to the one to build in, e.g. `a-1`"
        );

        for (source_root, expected, newest) in [("a-1", "a-1", 1), ("b-1/sub", "b-1/sub", 2)] {
            let into = scratch.path().join(format!("build-{newest}"));
            let options = UnpackOptions {
                source_root: Some(source_root.to_owned()),
            };
            let unpacked = unpack_sources(&sources, &into, &options).unwrap();
            assert_eq!(unpacked.source_root, into.join(expected));
            assert_eq!(unpacked.newest_mtime, Some(newest));
            assert_eq!(unpacked.entries, 3);
        }
    }

    #[test]
    fn explicit_source_root_must_exist_inside() {
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(&scratch.path().join("pkg.tar"), &sample_tar());
        let into = scratch.path().join("build");
        let with = |source_root: &str| {
            let options = UnpackOptions {
                source_root: Some(source_root.to_owned()),
            };
            let _ = fs::remove_dir_all(&into);
            unpack_sources(std::slice::from_ref(&tarball), &into, &options)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            with("missing"),
            format!(
                "`sourceRoot` `missing` is not a directory in `{}`",
                into.display()
            )
        );
        assert_eq!(
            with("pkg-1.0/README"),
            format!(
                "`sourceRoot` `pkg-1.0/README` is not a directory in `{}`",
                into.display()
            )
        );
        assert_eq!(
            with("../elsewhere"),
            "`sourceRoot` `../elsewhere` must be a relative path without `..`"
        );
        assert_eq!(
            with("/abs"),
            "`sourceRoot` `/abs` must be a relative path without `..`"
        );
    }

    #[test]
    fn sources_are_made_writable_and_special_bits_dropped() {
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(
            &scratch.path().join("ro.tar"),
            &tar_bytes(&[
                Spec::Dir("ro/", 0o555, 5),
                Spec::File("ro/readonly", 0o444, 6, b"r"),
                Spec::File("ro/setuid", 0o4755, 7, b"s"),
                Spec::Dir("ro/sticky/", 0o1777, 8),
            ]),
        );
        let into = scratch.path().join("build");
        let unpacked = unpack(&tarball, &into).unwrap();
        let root = into.join("ro");
        assert_eq!(file_mode(&root), 0o755 & !umask() | 0o700);
        assert_eq!(file_mode(&root.join("readonly")), 0o644 & !umask());
        assert_eq!(file_mode(&root.join("setuid")), 0o755 & !umask() | 0o200);
        assert_eq!(file_mode(&root.join("sticky")), 0o777 & !umask() | 0o700);
        assert_eq!(unpacked.newest_mtime, Some(7));
        assert_eq!(mtime(&root), 5);
    }

    #[test]
    fn long_names_are_kept() {
        let long = format!("pkg/{}/file.txt", "d".repeat(120));
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(
            &scratch.path().join("long.tar"),
            &tar_bytes(&[Spec::File(&long, 0o644, 3, b"deep")]),
        );
        let into = scratch.path().join("build");
        let unpacked = unpack(&tarball, &into).unwrap();
        assert_eq!(fs::read(into.join(&long)).unwrap(), b"deep");
        assert_eq!(unpacked.entries, 1);
    }

    /// Unpacks an evil archive into `parent/build` and checks that it is refused with `expected`
    /// and that `parent` holds nothing new besides `build` (and the archive itself).
    fn assert_refused(specs: &[Spec<'_>], expected: &str, setup: impl Fn(&Path)) {
        let scratch = tempfile::tempdir().unwrap();
        let parent = scratch.path();
        setup(parent);
        let tarball = write(&parent.join("evil.tar"), &tar_bytes(specs));
        let before = listing(parent);
        let outside_before = listing(&parent.join("outside"));
        let into = parent.join("build");
        let error = unpack(&tarball, &into).unwrap_err();
        let expected = expected
            .replace("{archive}", &tarball.display().to_string())
            .replace("{parent}", &parent.display().to_string());
        assert_eq!(chain(&error), expected);
        assert!(matches!(error, UnpackError::Unsafe { .. }));
        let mut after = listing(parent);
        assert!(after.remove("build"), "the destination was created");
        assert_eq!(after, before, "something appeared next to the destination");
        assert_eq!(listing(&parent.join("outside")), outside_before);
        assert_eq!(
            fs::read(parent.join("outside/secret")).unwrap(),
            b"secret",
            "a file outside was changed"
        );
    }

    fn outside(parent: &Path) {
        fs::create_dir(parent.join("outside")).unwrap();
        write(&parent.join("outside/secret"), b"secret");
    }

    #[test]
    fn refuses_parent_components() {
        assert_refused(
            &[
                Spec::Dir("pkg/", 0o755, 1),
                Spec::File("../x", 0o644, 1, b"escaped"),
            ],
            "refusing the entry `../x` of `{archive}`: it has a `..` component",
            outside,
        );
        assert_refused(
            &[Spec::File("pkg/../../outside/secret", 0o644, 1, b"escaped")],
            "refusing the entry `pkg/../../outside/secret` of `{archive}`: it has a `..` \
             component",
            outside,
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("outside/abs");
        let name = target.to_str().unwrap().to_owned();
        assert_refused(
            &[Spec::File(&name, 0o644, 1, b"escaped")],
            &format!("refusing the entry `{name}` of `{{archive}}`: it is an absolute path"),
            outside,
        );
        assert!(!target.exists());
    }

    #[test]
    fn refuses_writing_through_a_symlink() {
        let scratch = tempfile::tempdir().unwrap();
        let parent = scratch.path();
        outside(parent);
        let link_target = parent.join("outside");
        let link_target = link_target.to_str().unwrap();
        let tarball = write(
            &parent.join("evil.tar"),
            &tar_bytes(&[
                Spec::Dir("pkg/", 0o755, 1),
                Spec::Symlink("pkg/link", link_target),
                Spec::File("pkg/link/file", 0o644, 1, b"escaped"),
            ]),
        );
        let into = parent.join("build");
        let error = unpack(&tarball, &into).unwrap_err();
        assert_eq!(
            chain(&error),
            format!(
                "refusing the entry `pkg/link/file` of `{}`: it would be written through the \
                 symlink `pkg/link`",
                tarball.display()
            )
        );
        // The symlink itself may exist; nothing went through it.
        assert_eq!(
            fs::read_link(into.join("pkg/link")).unwrap(),
            Path::new(link_target)
        );
        assert_eq!(
            listing(&parent.join("outside")),
            BTreeSet::from(["secret".to_owned()])
        );

        // The same through the same name as a directory entry, and replacing the link's
        // target file by way of the link.
        assert_refused(
            &[
                Spec::Symlink("pkg", "../outside"),
                Spec::File("pkg/secret", 0o644, 1, b"overwritten"),
            ],
            "refusing the entry `pkg/secret` of `{archive}`: it would be written through the \
             symlink `pkg`",
            outside,
        );
        assert_refused(
            &[
                Spec::Symlink("pkg", "../outside"),
                Spec::Dir("pkg/", 0o777, 1),
            ],
            "refusing the entry `pkg/` of `{archive}`: it would be written through the \
             symlink `pkg`",
            outside,
        );
    }

    #[test]
    fn refuses_hard_links_outside() {
        assert_refused(
            &[
                Spec::Dir("pkg/", 0o755, 1),
                Spec::HardLink("pkg/hard", "../outside/secret"),
            ],
            "refusing the entry `pkg/hard` of `{archive}`: its hard link target \
             `../outside/secret` is outside the destination",
            outside,
        );
        assert_refused(
            &[
                Spec::Dir("pkg/", 0o755, 1),
                Spec::HardLink("pkg/hard", "/etc/passwd"),
            ],
            "refusing the entry `pkg/hard` of `{archive}`: its hard link target `/etc/passwd` \
             is outside the destination",
            outside,
        );
        // A target reached through a symlink that points outside.
        assert_refused(
            &[
                Spec::Symlink("pkg", "../outside"),
                Spec::HardLink("hard", "pkg/secret"),
                Spec::File("hard", 0o644, 1, b"overwritten"),
            ],
            "refusing the entry `hard` of `{archive}`: its hard link target `pkg/secret` is \
             outside the destination",
            outside,
        );
    }

    #[test]
    fn refuses_device_nodes() {
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(
            &scratch.path().join("dev.tar"),
            &tar_bytes(&[Spec::Dir("pkg/", 0o755, 1), Spec::Char("pkg/null")]),
        );
        let error = unpack(&tarball, &scratch.path().join("build")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the entry `pkg/null` of `{}` is a character device, which kiln does not unpack",
                tarball.display()
            )
        );
    }

    /// A GNU sparse tar (type `S`) holding `pkg/sparse`: `real_size` bytes, a hole and then one
    /// 512-byte data block that ends with `data`.
    fn sparse_tar(real_size: u64, data: &[u8]) -> Vec<u8> {
        // Octal when it fits, else GNU's base-256 (a leading 0x80).
        let number = |field: &mut [u8], value: u64| {
            let last = field.len() - 1;
            let text = format!("{value:0last$o}");
            if text.len() == last {
                field[..last].copy_from_slice(text.as_bytes());
                field[last] = 0;
            } else {
                field.fill(0);
                field[0] = 0x80;
                let start = field.len() - 8;
                field[start..].copy_from_slice(&value.to_be_bytes());
            }
        };
        let mut header = tar::Header::new_gnu();
        header.set_path("pkg/sparse").unwrap();
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_mode(0o644);
        header.set_mtime(1_000_000_000);
        header.set_size(512);
        let gnu = header.as_gnu_mut().unwrap();
        number(&mut gnu.realsize, real_size);
        number(&mut gnu.sparse[0].offset, real_size - 512);
        number(&mut gnu.sparse[0].numbytes, 512);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(&vec![0; 512 - data.len()]);
        tar.extend_from_slice(data);
        tar.extend_from_slice(&[0; 1024]);
        tar
    }

    /// Found while bounding the fuzz harness: a 2 KiB sparse tar made kiln write its holes as
    /// zeros, any size on disk for free. Holes stay holes now, and absurd sizes are refused.
    #[test]
    fn sparse_files_keep_their_holes() {
        let scratch = tempfile::tempdir().unwrap();
        let size = 64 << 20;
        let tarball = write(
            &scratch.path().join("sparse.tar"),
            &sparse_tar(size, b"the end"),
        );
        let into = scratch.path().join("build");
        unpack(&tarball, &into).unwrap();
        let file = into.join("pkg/sparse");
        let metadata = fs::metadata(&file).unwrap();
        assert_eq!(metadata.len(), size);
        assert!(
            metadata.blocks() * 512 < 1 << 20,
            "{} bytes allocated",
            metadata.blocks() * 512
        );
        let content = fs::read(&file).unwrap();
        assert!(content.ends_with(b"the end"));
        assert!(content[..content.len() - 7].iter().all(|byte| *byte == 0));

        // A hole at the end (the data block is all zeros) still gives the length.
        let tarball = write(
            &scratch.path().join("tail.tar"),
            &sparse_tar(size, &[0; 512]),
        );
        let into = scratch.path().join("tail");
        unpack(&tarball, &into).unwrap();
        assert_eq!(fs::metadata(into.join("pkg/sparse")).unwrap().len(), size);
    }

    #[test]
    fn refuses_huge_sparse_files() {
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(&scratch.path().join("bomb.tar"), &sparse_tar(1 << 50, b"x"));
        let into = scratch.path().join("build");
        let error = unpack(&tarball, &into).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the entry `pkg/sparse` of `{}` is a sparse file of {} bytes (larger than 16 \
                 GiB), which kiln does not unpack",
                tarball.display(),
                1u64 << 50
            )
        );
        assert!(!into.join("pkg/sparse").exists());
    }

    #[test]
    fn refuses_replacing_a_directory() {
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(
            &scratch.path().join("clash.tar"),
            &tar_bytes(&[
                Spec::File("pkg/dir/file", 0o644, 1, b"x"),
                Spec::File("pkg/dir", 0o644, 1, b"y"),
            ]),
        );
        let into = scratch.path().join("build");
        let error = unpack(&tarball, &into).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the entry `pkg/dir` of `{}` would replace the directory `{}`",
                tarball.display(),
                fs::canonicalize(&into).unwrap().join("pkg/dir").display()
            )
        );
    }

    #[test]
    fn later_entries_replace_files_and_links() {
        let scratch = tempfile::tempdir().unwrap();
        let tarball = write(
            &scratch.path().join("dup.tar"),
            &tar_bytes(&[
                Spec::File("pkg/a", 0o644, 1, b"first"),
                Spec::Symlink("pkg/b", "/etc/passwd"),
                Spec::File("pkg/a", 0o644, 2, b"second"),
                Spec::File("pkg/b", 0o644, 3, b"not through the link"),
            ]),
        );
        let into = scratch.path().join("build");
        unpack(&tarball, &into).unwrap();
        assert_eq!(fs::read(into.join("pkg/a")).unwrap(), b"second");
        assert_eq!(
            fs::read(into.join("pkg/b")).unwrap(),
            b"not through the link"
        );
        assert!(!fs::symlink_metadata(into.join("pkg/b"))
            .unwrap()
            .is_symlink());
    }

    #[test]
    fn corrupt_and_unknown_sources() {
        let scratch = tempfile::tempdir().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&sample_tar()).unwrap();
        let gzip = encoder.finish().unwrap();
        let truncated = write(&scratch.path().join("cut.tar.gz"), &gzip[..gzip.len() - 20]);
        let error = unpack(&truncated, &scratch.path().join("a")).unwrap_err();
        assert!(
            matches!(
                error,
                UnpackError::Read { .. } | UnpackError::ReadEntry { .. }
            ),
            "{error:?}"
        );

        let text = write(&scratch.path().join("notes.txt"), b"not an archive\n");
        let error = unpack(&text, &scratch.path().join("b")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot unpack `{}`: not a tar, zip, .deb, gzip, bzip2, xz or zstd file",
                text.display()
            )
        );

        let missing = scratch.path().join("missing.tar");
        let error = unpack(&missing, &scratch.path().join("c")).unwrap_err();
        assert_eq!(
            chain(&error),
            format!(
                "cannot open the source `{}`: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }
}
