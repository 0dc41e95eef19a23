//! Compressing man pages: replaces stdenv's `compress-man-pages.sh` (`compressManPages`, skipped
//! with `dontGzipMan`).
//!
//! Every regular file under `share/man/` whose name does not end in `.gz`, `.bz2` or `.xz` is
//! replaced by `NAME.gz`, compressed in-process exactly like `gzip -n -9`'s container: no file
//! name and a zero timestamp in the header, maximum compression, OS byte `3` (Unix), so the same
//! input always gives the same bytes. The `.gz` file keeps the original's mode and modification
//! time, as `gzip` does. Then every symlink under `share/man/` whose fully resolved target now
//! has a `.gz` sibling is replaced by `LINK.gz` pointing at that sibling. Nothing is done if
//! `share` or `share/man` is a symlink, or `share/man` is not a directory.
//!
//! Differences from stdenv: the deflate stream comes from flate2 (miniz_oxide), not GNU gzip,
//! so bytes differ from `gzip`'s while `gunzip` gives back the same page; a re-pointed symlink
//! keeps its own spelling plus `.gz` when that reaches the same page (`dir.1 -> ls.1` becomes
//! `dir.1.gz -> ls.1.gz`), where stdenv writes the absolute resolved path (which `make-symlinks-relative.sh` turns relative again
//! later); pages are compressed in parallel on the current rayon pool.

use std::fs::{self, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};

use crate::error::StepError;
use crate::fsx::{self, Kind};
use crate::Outcome;

/// The `gzip` header OS byte for Unix, which `gzip` itself writes.
const OS_UNIX: u8 = 3;

fn is_compressed(path: &Path) -> bool {
    let name = path.as_os_str().as_bytes();
    [&b".gz"[..], b".bz2", b".xz"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

fn with_gz(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

/// An encoder that compresses what is written to it into `out` as `gzip -n -9` would frame it:
/// deterministic for a given input, whatever the sizes of the writes.
pub fn gzip_encoder<W: Write>(out: W) -> flate2::write::GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(OS_UNIX)
        .write(out, Compression::best())
}

/// Compresses `data` as `gzip -n -9` would frame it: deterministic for a given input.
pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut encoder = gzip_encoder(Vec::with_capacity(data.len() / 3 + 64));
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Compresses one file to `FILE.gz` (mode and modification time kept) and removes `FILE`.
pub fn gzip_file(file: &Path) -> Result<PathBuf, StepError> {
    let meta = fsx::metadata(file)?;
    let compressed = gzip_bytes(&fsx::read(file)?);
    let target = with_gz(file);
    let write_error = |source| StepError::Write {
        path: target.clone(),
        source,
    };
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&target)
        .map_err(write_error)?;
    out.write_all(&compressed).map_err(write_error)?;
    out.set_permissions(fs::Permissions::from_mode(meta.permissions().mode()))
        .map_err(|source| StepError::SetPermissions {
            path: target.clone(),
            source,
        })?;
    let mut times = FileTimes::new();
    if let Ok(modified) = meta.modified() {
        times = times.set_modified(modified);
    }
    if let Ok(accessed) = meta.accessed() {
        times = times.set_accessed(accessed);
    }
    out.set_times(times).map_err(|source| StepError::SetTimes {
        path: target.clone(),
        source,
    })?;
    drop(out);
    fsx::remove_file(file)?;
    Ok(target)
}

/// `readlink -f`: follows symlinks to the end, and resolves the final path's directory
/// physically; the last component need not exist. `None` if a directory on the way is missing
/// or the chain is too long.
fn readlink_f(path: &Path) -> Option<PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..40 {
        match fs::read_link(&current) {
            Ok(target) => current = current.parent()?.join(target),
            Err(_) => {
                let parent = fs::canonicalize(current.parent()?).ok()?;
                return Some(parent.join(current.file_name()?));
            }
        }
    }
    None
}

/// Compresses the man pages of the output at `dir` and re-points symlinks to them.
///
/// [`Outcome::changed`] lists the new `.gz` files and symlinks, in walk order.
pub fn compress_man_pages(dir: &Path) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let share = dir.join("share");
    let man = share.join("man");
    let is_symlink = |path: &Path| {
        fs::symlink_metadata(path)
            .map(|meta| meta.file_type().is_symlink())
            .unwrap_or(false)
    };
    if is_symlink(&share) || is_symlink(&man) || !man.is_dir() {
        return Ok(outcome);
    }
    let entries = fsx::walk(&man)?;
    // Every name of a hard-linked page is compressed on its own, as `gzip -f` does.
    let pages: Vec<_> = entries
        .iter()
        .filter(|entry| entry.kind == Kind::File && !is_compressed(&entry.path))
        .collect();
    outcome
        .changed
        .extend(fsx::par_map(&pages, |entry| gzip_file(&entry.path))?);

    for link in entries
        .iter()
        .filter(|entry| entry.kind == Kind::Symlink && !is_compressed(&entry.path))
    {
        let Some(resolved) = readlink_f(&link.path) else {
            continue;
        };
        let resolved_gz = with_gz(&resolved);
        if !fs::metadata(&resolved_gz).is_ok_and(|meta| meta.is_file()) {
            continue; // not a page (a directory, a dangling link, ...)
        }
        let text = fsx::read_link(&link.path)?;
        let parent = link.path.parent().unwrap_or(dir);
        // The link keeps its own (usually relative) spelling plus `.gz` when that leads to the
        // same page; otherwise it gets the resolved path, as stdenv writes.
        let spelled = parent.join(with_gz(&text));
        let direct = fs::canonicalize(&spelled).is_ok_and(|page| {
            fs::canonicalize(&resolved_gz).is_ok_and(|resolved| resolved == page)
        });
        let target = if direct { with_gz(&text) } else { resolved_gz };
        let new_link = with_gz(&link.path);
        fsx::replace_symlink(&target, &new_link)?;
        fsx::remove_file(&link.path)?;
        outcome.changed.push(new_link);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::testutil::{symlink, write};

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(path).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    const PAGE: &str = ".TH LS 1\n.SH NAME\nls \\- list directory contents\n";

    fn tree(out: &Path) {
        let man1 = out.join("share/man/man1");
        write(&man1.join("ls.1"), PAGE, 0o444);
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_234_567_890);
        fs::File::open(man1.join("ls.1"))
            .unwrap()
            .set_times(FileTimes::new().set_modified(old))
            .unwrap();
        write(&man1.join("cat.1.gz"), gzip_bytes(b"already"), 0o644);
        symlink("ls.1", &man1.join("dir.1"));
        symlink(man1.join("ls.1"), &man1.join("abs.1"));
        symlink("../man1/dir.1", &out.join("share/man/man8/chain.8"));
        symlink("missing.1", &man1.join("dangling.1"));
        symlink("cat.1.gz", &man1.join("kitty.1.gz"));
    }

    #[test]
    fn compresses_pages_and_repoints_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        tree(&out);
        let man1 = out.join("share/man/man1");

        let outcome = compress_man_pages(&out).unwrap();

        let page = man1.join("ls.1.gz");
        assert_eq!(gunzip(&page), PAGE.as_bytes());
        assert!(!fsx::lexists(&man1.join("ls.1")));
        // `gzip -n -9` framing: no name, zero time, maximum compression, Unix.
        assert_eq!(
            fs::read(&page).unwrap()[..10],
            [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]
        );
        let meta = fs::metadata(&page).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o444);
        assert_eq!(meta.mtime(), 1_234_567_890);
        // Already compressed: untouched.
        assert_eq!(gunzip(&man1.join("cat.1.gz")), b"already");
        // Links keep their spelling, plus `.gz`.
        assert_eq!(
            fs::read_link(man1.join("dir.1.gz")).unwrap(),
            Path::new("ls.1.gz")
        );
        assert_eq!(fs::read_link(man1.join("abs.1.gz")).unwrap(), page);
        assert_eq!(
            fs::read_link(out.join("share/man/man8/chain.8.gz")).unwrap(),
            Path::new("../man1/dir.1.gz")
        );
        assert_eq!(
            gunzip(&out.join("share/man/man8/chain.8.gz")),
            PAGE.as_bytes()
        );
        for gone in ["dir.1", "abs.1"] {
            assert!(!fsx::lexists(&man1.join(gone)));
        }
        // Dangling links and links that are already `.gz` are left alone.
        assert_eq!(
            fs::read_link(man1.join("dangling.1")).unwrap(),
            Path::new("missing.1")
        );
        assert!(fsx::lexists(&man1.join("kitty.1.gz")));
        assert_eq!(
            outcome.changed,
            [
                page.clone(),
                man1.join("abs.1.gz"),
                man1.join("dir.1.gz"),
                out.join("share/man/man8/chain.8.gz"),
            ]
        );
    }

    #[test]
    fn output_is_deterministic() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        tree(&a);
        std::thread::sleep(Duration::from_millis(10)); // different creation times
        tree(&b);
        compress_man_pages(&a).unwrap();
        compress_man_pages(&b).unwrap();
        let page = "share/man/man1/ls.1.gz";
        assert_eq!(
            fs::read(a.join(page)).unwrap(),
            fs::read(b.join(page)).unwrap()
        );
        assert_eq!(gzip_bytes(PAGE.as_bytes()), fs::read(a.join(page)).unwrap());
    }

    #[test]
    fn a_symlinked_man_directory_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&tmp.path().join("elsewhere/man1/x.1"), "x", 0o644);
        symlink(tmp.path().join("elsewhere"), &out.join("share/man"));
        assert_eq!(compress_man_pages(&out).unwrap(), Outcome::default());
        assert!(tmp.path().join("elsewhere/man1/x.1").exists());
    }
}
