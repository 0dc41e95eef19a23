//! Rewriting a placeholder path to the real output path in a finished tree (split mode).
//!
//! Intermediate derivations of a split build cannot know the final output path (it depends on
//! them), so they build against a placeholder of the same length. The final derivation calls
//! [`rewrite_tree`] on each output: every occurrence in file contents (text and binaries alike:
//! the lengths are equal, so offsets inside ELF files stay valid) and in symlink targets is
//! replaced, and the tree is scanned again to prove none is left. A gzip file (a man page the
//! fixup compressed) is looked into as well: one that holds the placeholder is decompressed,
//! rewritten and compressed again exactly as the fixup compresses, so the result equals what a
//! build with the real path from the start produces.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
#[cfg(test)]
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a tree could not be rewritten.
#[derive(Debug, Error)]
pub enum RewriteError {
    /// The two paths differ in length.
    #[error("placeholder `{from}` and path `{to}` differ in length")]
    LengthMismatch {
        /// The placeholder.
        from: String,
        /// The real path.
        to: String,
    },
    /// A file or link could not be read or written.
    #[error("cannot rewrite `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file name itself holds the placeholder (it cannot be renamed safely).
    #[error("the name of `{}` contains the placeholder", path.display())]
    InName {
        /// The path.
        path: PathBuf,
    },
    /// Occurrences remain after rewriting.
    #[error("the placeholder is still in `{}` after rewriting", path.display())]
    Left {
        /// The first file that still holds it.
        path: PathBuf,
    },
}

/// What a rewrite changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RewriteReport {
    /// Files whose contents changed.
    pub files: usize,
    /// Symlinks whose targets changed.
    pub links: usize,
    /// Occurrences replaced.
    pub occurrences: usize,
}

const CHUNK: usize = 1 << 20;

/// gzip files larger than this are not looked into (man pages are far smaller).
const MAX_GZIP: u64 = 64 << 20;

/// The decompressed contents of a gzip file, or `None` when it is not one (or too large).
fn gunzip(path: &Path, meta: &fs::Metadata) -> std::io::Result<Option<Vec<u8>>> {
    if meta.len() > MAX_GZIP || meta.len() < 18 {
        return Ok(None);
    }
    let mut magic = [0u8; 2];
    File::open(path)?.read_exact(&mut magic)?;
    if magic != [0x1f, 0x8b] {
        return Ok(None);
    }
    let mut data = Vec::new();
    match flate2::read::MultiGzDecoder::new(File::open(path)?).read_to_end(&mut data) {
        Ok(_) => Ok(Some(data)),
        // Not really gzip: treat it as an ordinary file.
        Err(_) => Ok(None),
    }
}

/// Replaces `from` with `to` (same length) everywhere under `root`, then proves none is left.
pub fn rewrite_tree(root: &Path, from: &str, to: &str) -> Result<RewriteReport, RewriteError> {
    if from.len() != to.len() {
        return Err(RewriteError::LengthMismatch {
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }
    let mut report = RewriteReport::default();
    walk(root, &mut |path, meta| {
        let io = |source| RewriteError::Io {
            path: path.to_owned(),
            source,
        };
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().contains(from))
        {
            return Err(RewriteError::InName {
                path: path.to_owned(),
            });
        }
        if meta.file_type().is_symlink() {
            let target = fs::read_link(path).map_err(io)?;
            let text = target.to_string_lossy();
            if text.contains(from) {
                fs::remove_file(path).map_err(io)?;
                std::os::unix::fs::symlink(text.replace(from, to), path).map_err(io)?;
                report.links += 1;
            }
        } else if meta.is_file() {
            if let Some(data) = gunzip(path, meta).map_err(io)? {
                if memchr::memmem::find(&data, from.as_bytes()).is_some() {
                    let text = replace_all(&data, from.as_bytes(), to.as_bytes());
                    let compressed = kiln_fixup::man::gzip_bytes(&text);
                    let mode = meta.permissions().mode();
                    fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o200))
                        .map_err(io)?;
                    fs::write(path, compressed).map_err(io)?;
                    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io)?;
                    report.files += 1;
                    report.occurrences += 1;
                    return Ok(());
                }
            }
            let offsets = find_all(path, from.as_bytes()).map_err(io)?;
            if !offsets.is_empty() {
                let mode = meta.permissions().mode();
                let writable = mode & 0o200 != 0;
                if !writable {
                    fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o200))
                        .map_err(io)?;
                }
                let file = OpenOptions::new().write(true).open(path).map_err(io)?;
                for offset in &offsets {
                    file.write_all_at(to.as_bytes(), *offset).map_err(io)?;
                }
                file.sync_data().map_err(io)?;
                if !writable {
                    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io)?;
                }
                report.files += 1;
                report.occurrences += offsets.len();
            }
        }
        Ok(())
    })?;
    walk(root, &mut |path, meta| {
        let io = |source| RewriteError::Io {
            path: path.to_owned(),
            source,
        };
        let left = if meta.file_type().is_symlink() {
            fs::read_link(path)
                .map_err(io)?
                .to_string_lossy()
                .contains(from)
        } else if meta.is_file() {
            let in_gzip = gunzip(path, meta)
                .map_err(io)?
                .is_some_and(|data| memchr::memmem::find(&data, from.as_bytes()).is_some());
            in_gzip || !find_all(path, from.as_bytes()).map_err(io)?.is_empty()
        } else {
            false
        };
        if left {
            return Err(RewriteError::Left {
                path: path.to_owned(),
            });
        }
        Ok(())
    })?;
    Ok(report)
}

/// `data` with every `from` replaced by `to`.
fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut last = 0;
    for found in memchr::memmem::find_iter(data, from) {
        out.extend_from_slice(&data[last..found]);
        out.extend_from_slice(to);
        last = found + from.len();
    }
    out.extend_from_slice(&data[last..]);
    out
}

/// Every offset of `needle` in the file, read in chunks that overlap by `needle.len() - 1`.
fn find_all(path: &Path, needle: &[u8]) -> std::io::Result<Vec<u64>> {
    let finder = memchr::memmem::Finder::new(needle);
    let mut file = File::open(path)?;
    let mut offsets = Vec::new();
    let mut buffer = vec![0u8; CHUNK + needle.len()];
    let mut carried = 0usize;
    let mut base: u64 = 0; // file offset of buffer[0]
    loop {
        let read = file.read(&mut buffer[carried..])?;
        let filled = carried + read;
        for found in finder.find_iter(&buffer[..filled]) {
            offsets.push(base + found as u64);
        }
        if read == 0 {
            break;
        }
        // Keep the last needle.len() - 1 bytes: a match may straddle the boundary, and one that
        // ends inside them cannot start before them without having been found already.
        let keep = (needle.len() - 1).min(filled);
        buffer.copy_within(filled - keep..filled, 0);
        base += (filled - keep) as u64;
        carried = keep;
    }
    offsets.sort_unstable();
    offsets.dedup();
    Ok(offsets)
}

fn walk(
    path: &Path,
    visit: &mut dyn FnMut(&Path, &fs::Metadata) -> Result<(), RewriteError>,
) -> Result<(), RewriteError> {
    let meta = fs::symlink_metadata(path).map_err(|source| RewriteError::Io {
        path: path.to_owned(),
        source,
    })?;
    visit(path, &meta)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .map_err(|source| RewriteError::Io {
                path: path.to_owned(),
                source,
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            walk(&entry, visit)?;
        }
    }
    Ok(())
}

/// Creates a file holding `bytes` (tests).
#[cfg(test)]
fn write_file(path: &Path, bytes: &[u8]) {
    File::create(path).unwrap().write_all(bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "/nix/store/00000000000000000000000000000000-hello";
    const TO: &str = "/nix/store/abcdabcdabcdabcdabcdabcdabcdabcd-hello";

    #[test]
    fn rewrites_contents_links_and_proves_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("bin")).unwrap();
        // A match straddling the chunk boundary, and one at the very end.
        let mut big = vec![b'x'; CHUNK - 10];
        big.extend_from_slice(FROM.as_bytes());
        big.extend_from_slice(b"\0middle\0");
        big.extend_from_slice(FROM.as_bytes());
        write_file(&root.join("bin/big"), &big);
        write_file(
            &root.join("script"),
            format!("#!{FROM}/bin/sh\n").as_bytes(),
        );
        fs::set_permissions(root.join("script"), fs::Permissions::from_mode(0o555)).unwrap();
        std::os::unix::fs::symlink(format!("{FROM}/bin/big"), root.join("link")).unwrap();
        write_file(&root.join("clean"), b"nothing here");

        let report = rewrite_tree(root, FROM, TO).unwrap();
        assert_eq!(
            report,
            RewriteReport {
                files: 2,
                links: 1,
                occurrences: 3
            }
        );
        let big = fs::read(root.join("bin/big")).unwrap();
        assert_eq!(&big[CHUNK - 10..CHUNK - 10 + TO.len()], TO.as_bytes());
        assert!(big.ends_with(TO.as_bytes()));
        assert_eq!(
            fs::read_to_string(root.join("script")).unwrap(),
            format!("#!{TO}/bin/sh\n")
        );
        let mode = fs::metadata(root.join("script"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
        assert_eq!(
            fs::read_link(root.join("link")).unwrap(),
            PathBuf::from(format!("{TO}/bin/big"))
        );
    }

    #[test]
    fn rewrites_inside_gzip_files_as_the_fixup_compresses() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("hello.1.gz");
        let text = format!(".TH HELLO 1\nsee {FROM}/share/doc\n");
        fs::write(&page, kiln_fixup::man::gzip_bytes(text.as_bytes())).unwrap();
        rewrite_tree(dir.path(), FROM, TO).unwrap();
        let expected = kiln_fixup::man::gzip_bytes(text.replace(FROM, TO).as_bytes());
        assert_eq!(fs::read(&page).unwrap(), expected);
    }

    #[test]
    fn refuses_different_lengths_and_names_with_the_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            rewrite_tree(dir.path(), FROM, "/short"),
            Err(RewriteError::LengthMismatch { .. })
        ));
        fs::create_dir(dir.path().join("00000000000000000000000000000000-hello")).unwrap();
        let name_root = dir.path();
        let from = "00000000000000000000000000000000-hello";
        let to = "abcdabcdabcdabcdabcdabcdabcdabcd-hello";
        assert!(matches!(
            rewrite_tree(name_root, from, to),
            Err(RewriteError::InName { .. })
        ));
    }
}
