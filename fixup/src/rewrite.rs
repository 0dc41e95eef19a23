//! Same-length rewriting of paths in files and trees, and the proof that none is left: the
//! engine behind split mode's placeholder rewrite and the `graft` step.
//!
//! A [`Rewriter`] replaces byte strings by others of the same length, so offsets inside ELF
//! files and other binaries stay valid. It works on streams in chunks of [`CHUNK`] bytes that
//! overlap by the longest pattern's length minus one, so an occurrence split across two reads is
//! found, and memory stays bounded whatever the file's size. Several patterns are matched at
//! once (Aho-Corasick): at each position the leftmost, then longest, occurrence wins and
//! occurrences never overlap, the same result as replacing the longest pattern first when one is
//! a prefix of another.
//!
//! gzip files (man pages the fixup compressed, `.gz` data) are looked into: one whose
//! decompressed contents hold a pattern is decompressed, rewritten and compressed again as the
//! fixup compresses ([`crate::man::gzip_encoder`]), so a rewrite of a kiln-built tree equals a
//! build with the real path from the start.
//!
//! A [`Scanner`] finds the first occurrence of any of its needles; [`check_tree`] walks a tree
//! with it (names, symlink targets, contents and, through a [`Decoder`], decompressed contents)
//! and names the file and byte offset of what is left ([`Left`]).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, Input, MatchKind};
use rayon::prelude::*;
use thiserror::Error;

use crate::checks::for_each_window;
use crate::fsx::{self, Kind};

/// How much of a stream is read at once.
pub const CHUNK: usize = 1 << 20;

/// How many decompressed bytes of one file are looked into, at most: a small compressed file
/// can expand to terabytes.
pub const MAX_DECODED: u64 = 4 << 30;

/// Why a tree could not be rewritten or checked.
#[derive(Debug, Error)]
pub enum RewriteError {
    /// A pattern and its replacement differ in length.
    #[error("`{from}` ({} bytes) and its replacement `{to}` ({} bytes) differ in length", from.len(), to.len())]
    LengthMismatch {
        /// The pattern.
        from: String,
        /// The replacement.
        to: String,
    },
    /// A pattern is empty.
    #[error("a pattern to find is empty")]
    EmptyPattern,
    /// The patterns could not be compiled (too many or too long).
    #[error("cannot build a matcher for {count} patterns")]
    Build {
        /// How many patterns there were.
        count: usize,
        /// Why.
        #[source]
        source: aho_corasick::BuildError,
    },
    /// A file or link could not be read or written.
    #[error("cannot rewrite `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file name holds a pattern, and this rewrite does not rename (split mode).
    #[error("the name of `{}` contains `{pattern}`", path.display())]
    InName {
        /// The path.
        path: PathBuf,
        /// The pattern found.
        pattern: String,
    },
    /// Occurrences remain after rewriting.
    #[error("{0}")]
    Left(Left),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RewriteError + '_ {
    move |source| RewriteError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where a needle was found after a rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the file's contents, at this byte offset.
    Contents {
        /// The offset of the needle's first byte.
        offset: u64,
    },
    /// In the decompressed contents of a compressed file, at this offset of them.
    Decoded {
        /// The compression (`gzip`, `xz`, …).
        format: &'static str,
        /// The offset of the needle's first byte in the decompressed stream.
        offset: u64,
    },
    /// In the entry's name.
    Name,
    /// In the symlink's target.
    LinkTarget,
}

/// A needle left in a tree: which file, which needle, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// The file, directory or symlink.
    pub path: PathBuf,
    /// The needle, as text (lossy).
    pub needle: String,
    /// Where in it.
    pub place: Place,
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` still holds `{}` ",
            self.path.display(),
            self.needle
        )?;
        match &self.place {
            Place::Contents { offset } => write!(f, "at byte {offset}"),
            Place::Decoded { format, offset } => {
                write!(f, "at byte {offset} of its {format}-decompressed contents")
            }
            Place::Name => write!(f, "in its name"),
            Place::LinkTarget => write!(f, "in its symlink target"),
        }
    }
}

/// Finds the first occurrence of any of a set of needles, in bytes or in a stream.
#[derive(Debug, Clone)]
pub struct Scanner {
    automaton: AhoCorasick,
    needles: Vec<Vec<u8>>,
    /// The longest needle's length minus one: the overlap between chunks.
    keep: usize,
}

impl Scanner {
    /// A scanner for `needles`, none of them empty (there may be none: it finds nothing).
    pub fn new<N: AsRef<[u8]>>(
        needles: impl IntoIterator<Item = N>,
    ) -> Result<Scanner, RewriteError> {
        let needles: Vec<Vec<u8>> = needles
            .into_iter()
            .map(|needle| needle.as_ref().to_vec())
            .collect();
        if needles.iter().any(Vec::is_empty) {
            return Err(RewriteError::EmptyPattern);
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
            .map_err(|source| RewriteError::Build {
                count: needles.len(),
                source,
            })?;
        let keep = needles.iter().map(Vec::len).max().unwrap_or(1) - 1;
        Ok(Scanner {
            automaton,
            needles,
            keep,
        })
    }

    /// Needle `index`.
    pub fn needle(&self, index: usize) -> &[u8] {
        &self.needles[index]
    }

    /// The offset and index of the first needle in `bytes`.
    pub fn find_in(&self, bytes: &[u8]) -> Option<(usize, usize)> {
        self.automaton
            .find(bytes)
            .map(|found| (found.start(), found.pattern().as_usize()))
    }

    /// The offset and index of the first needle in the stream `reader`.
    pub fn find_in_reader(&self, reader: &mut dyn Read) -> io::Result<Option<(u64, usize)>> {
        let mut first = None;
        for_each_window(reader, self.keep, |window, offset| {
            first = self
                .find_in(window)
                .map(|(at, index)| (offset + at as u64, index));
            first.is_some()
        })?;
        Ok(first)
    }

    fn left(&self, path: &Path, index: usize, place: Place) -> RewriteError {
        RewriteError::Left(Left {
            path: path.to_owned(),
            needle: String::from_utf8_lossy(&self.needles[index]).into_owned(),
            place,
        })
    }
}

/// What [`Rewriter::rewrite_stream`] hands the rewritten stream to: `(chunk, its offset,
/// whether it changed)`.
pub type Emit<'a> = dyn FnMut(&[u8], u64, bool) -> io::Result<()> + 'a;

/// Replaces byte strings by others of the same length (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Rewriter {
    scanner: Scanner,
    to: Vec<Vec<u8>>,
}

impl Rewriter {
    /// A rewriter of each `(from, to)`; every `to` has the length of its `from`, none is empty.
    pub fn new<A: AsRef<[u8]>, B: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Rewriter, RewriteError> {
        let (from, to): (Vec<Vec<u8>>, Vec<Vec<u8>>) = pairs
            .into_iter()
            .map(|(from, to)| (from.as_ref().to_vec(), to.as_ref().to_vec()))
            .unzip();
        if let Some((from, to)) = from
            .iter()
            .zip(&to)
            .find(|(from, to)| from.len() != to.len())
        {
            return Err(RewriteError::LengthMismatch {
                from: String::from_utf8_lossy(from).into_owned(),
                to: String::from_utf8_lossy(to).into_owned(),
            });
        }
        Ok(Rewriter {
            scanner: Scanner::new(from)?,
            to,
        })
    }

    /// The scanner of the patterns this rewriter replaces.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// Replaces every pattern in `data`; returns how many were replaced.
    pub fn replace_in(&self, data: &mut [u8]) -> usize {
        let found: Vec<_> = self.scanner.automaton.find_iter(&*data).collect();
        for each in &found {
            data[each.range()].copy_from_slice(&self.to[each.pattern().as_usize()]);
        }
        found.len()
    }

    /// Streams `reader` (whose first byte is at `offset` of whatever it is part of) through the
    /// rewriter: `emit(chunk, chunk_offset, changed)` receives the rewritten stream in order, in
    /// chunks of about [`CHUNK`] bytes, `changed` telling whether the chunk differs from what
    /// was read. Returns how many occurrences were replaced.
    pub fn rewrite_stream(
        &self,
        reader: &mut dyn Read,
        mut offset: u64,
        emit: &mut Emit<'_>,
    ) -> io::Result<usize> {
        let keep = self.scanner.keep;
        let mut buffer = vec![0u8; CHUNK + keep];
        let (mut kept, mut resume, mut count) = (0, 0, 0);
        // Whether the kept bytes at the start of the buffer were changed by the last round.
        let mut kept_changed = false;
        loop {
            let read = kiln_fsio::read_full(&mut &mut *reader, &mut buffer[kept..])?;
            let filled = kept + read;
            let end = read < buffer.len() - kept;
            // Occurrences starting before `boundary` are whole in the buffer (at most `keep + 1`
            // bytes long); later ones wait for the next round, which keeps the bytes after it.
            let boundary = if end { filled } else { filled - keep };
            let input = Input::new(&buffer[..filled]).span(resume..filled);
            let found: Vec<_> = self
                .scanner
                .automaton
                .find_iter(input)
                .take_while(|each| each.start() < boundary)
                .collect();
            let mut last_end = resume;
            for each in &found {
                buffer[each.range()].copy_from_slice(&self.to[each.pattern().as_usize()]);
                last_end = each.end();
            }
            count += found.len();
            emit(
                &buffer[..boundary],
                offset,
                kept_changed || !found.is_empty(),
            )?;
            if end {
                return Ok(count);
            }
            buffer.copy_within(boundary..filled, 0);
            kept = filled - boundary;
            // Matching resumes after the last replacement (occurrences never overlap).
            resume = last_end.saturating_sub(boundary);
            kept_changed = last_end > boundary;
            offset += boundary as u64;
        }
    }

    /// If `file` is a gzip file whose decompressed contents hold a pattern: writes it rewritten
    /// and compressed again to `out` and returns the number of occurrences; `None` (nothing
    /// written) when it is not gzip, is not valid gzip, or holds no pattern. `file` is read
    /// at offsets (its position is not used).
    pub fn rewrite_gzip(&self, file: &File, out: &mut dyn Write) -> io::Result<Option<usize>> {
        let Some(mut decoded) = open_gzip(file)? else {
            return Ok(None);
        };
        match self.scanner.find_in_reader(&mut decoded) {
            Ok(Some(_)) => {}
            // Not really gzip (or truncated): an ordinary file.
            Ok(None) | Err(_) => return Ok(None),
        }
        let mut decoded = open_gzip(file)?.expect("still a gzip file");
        let mut encoder = crate::man::gzip_encoder(out);
        let count =
            self.rewrite_stream(&mut decoded, 0, &mut |chunk, _, _| encoder.write_all(chunk))?;
        encoder.finish()?;
        Ok(Some(count))
    }

    /// Rewrites the regular file `path` in place (a gzip file inside, see
    /// [`Rewriter::rewrite_gzip`]); its mode is kept. Returns the occurrences replaced.
    pub fn rewrite_file_in_place(&self, path: &Path, mode: u32) -> io::Result<usize> {
        let mut reader = File::open(path)?;
        let mut compressed = Vec::new();
        if let Some(count) = self.rewrite_gzip(&reader, &mut compressed)? {
            with_owner_write(path, mode, || fs::write(path, &compressed))?;
            return Ok(count);
        }
        let mut writer: Option<File> = None;
        let mut made_writable = false;
        let result = self.rewrite_stream(&mut reader, 0, &mut |chunk, offset, changed| {
            if !changed {
                return Ok(());
            }
            if writer.is_none() {
                if mode & 0o200 == 0 {
                    fs::set_permissions(path, fs::Permissions::from_mode((mode | 0o200) & 0o7777))?;
                    made_writable = true;
                }
                writer = Some(OpenOptions::new().write(true).open(path)?);
            }
            let file = writer.as_ref().expect("opened above");
            file.write_all_at(chunk, offset)
        });
        if made_writable {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
        }
        result
    }
}

/// Runs `write` with the owner's write bit set on `path`, restoring `mode` after.
fn with_owner_write(
    path: &Path,
    mode: u32,
    write: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    if mode & 0o200 != 0 {
        return write();
    }
    fs::set_permissions(path, fs::Permissions::from_mode((mode | 0o200) & 0o7777))?;
    let result = write();
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
    result
}

/// `true` if `head` starts with gzip's magic number.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// The decompressed stream of `file` if it starts like a gzip file (members in sequence, like
/// `gzip -d`), at most [`MAX_DECODED`] bytes of it.
fn open_gzip(file: &File) -> io::Result<Option<impl Read + '_>> {
    let mut head = [0u8; 2];
    if kiln_fsio::read_full(&mut FileRange::new(file, 0..2), &mut head)? < 2 || !is_gzip(&head) {
        return Ok(None);
    }
    let whole = FileRange::new(file, 0..u64::MAX);
    let decoder = flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(CHUNK, whole));
    Ok(Some(decoder.take(MAX_DECODED)))
}

/// A [`Read`] of the bytes `range` of a file, read at offsets (`pread`): several can read one
/// open file at once, and the file's own position is left alone.
#[derive(Debug)]
pub struct FileRange<'a> {
    file: &'a File,
    range: std::ops::Range<u64>,
}

impl<'a> FileRange<'a> {
    /// The bytes `range` of `file` (reading stops early at the end of the file).
    pub fn new(file: &'a File, range: std::ops::Range<u64>) -> FileRange<'a> {
        FileRange { file, range }
    }
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.range.end.saturating_sub(self.range.start);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buf[..want], self.range.start)?;
        self.range.start += read as u64;
        Ok(read)
    }
}

/// Opens the decompressed contents of a file: given its path and first bytes, the name of its
/// compression and a reader of at most [`MAX_DECODED`] decompressed bytes, or `None` when it is
/// not compressed (or not in a format the decoder knows).
pub type Decoder = dyn Fn(&Path, &[u8]) -> Option<(&'static str, Box<dyn Read + Send>)> + Sync;

/// A [`Decoder`] of gzip only (what [`Rewriter`] can rewrite inside).
pub fn gzip_decoder(path: &Path, head: &[u8]) -> Option<(&'static str, Box<dyn Read + Send>)> {
    if !is_gzip(head) {
        return None;
    }
    let file = File::open(path).ok()?;
    let decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
    Some(("gzip", Box::new(decoder.take(MAX_DECODED))))
}

/// How many bytes of a file's start a [`Decoder`] sees.
const HEAD: usize = 16;

/// Fails with [`RewriteError::Left`] naming the first place (in walk order: entries in
/// bytewise order, depth first) under `root` that holds a needle of `scanner`: an entry's name
/// (not `root`'s own), a symlink's target, a regular file's contents, or the decompressed
/// contents `decode` opens. A decompressed stream that turns out corrupt is looked into up to
/// the corruption. Runs on the current rayon pool; symlinks are never followed.
pub fn check_tree(root: &Path, scanner: &Scanner, decode: &Decoder) -> Result<(), RewriteError> {
    let entries = fsx::walk_with_root(root).map_err(|error| RewriteError::Io {
        path: root.to_owned(),
        source: io::Error::other(error),
    })?;
    let found: Vec<Option<RewriteError>> = entries
        .par_iter()
        .map(|entry| {
            let path = &entry.path;
            if entry.path != root {
                let name = path.file_name().map_or(&[][..], |name| name.as_bytes());
                if let Some((_, index)) = scanner.find_in(name) {
                    return Some(scanner.left(path, index, Place::Name));
                }
            }
            match entry.kind {
                Kind::Symlink => match fs::read_link(path) {
                    Err(source) => Some(io_error(path)(source)),
                    Ok(target) => scanner
                        .find_in(target.as_os_str().as_bytes())
                        .map(|(_, index)| scanner.left(path, index, Place::LinkTarget)),
                },
                Kind::File => check_file(path, scanner, decode).err(),
                Kind::Dir | Kind::Other => None,
            }
        })
        .collect();
    match found.into_iter().flatten().next() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn check_file(path: &Path, scanner: &Scanner, decode: &Decoder) -> Result<(), RewriteError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    if let Some((offset, index)) = scanner.find_in_reader(&mut file).map_err(io_error(path))? {
        return Err(scanner.left(path, index, Place::Contents { offset }));
    }
    let mut head = [0u8; HEAD];
    let read = file.read_at(&mut head, 0).map_err(io_error(path))?;
    if let Some((format, mut decoded)) = decode(path, &head[..read]) {
        // A corrupt stream ends the search; what came before it was looked into.
        let mut checked = PartialReader {
            inner: &mut decoded,
        };
        if let Ok(Some((offset, index))) = scanner.find_in_reader(&mut checked) {
            return Err(scanner.left(path, index, Place::Decoded { format, offset }));
        }
    }
    Ok(())
}

/// A reader that ends (rather than fails) at its inner reader's first error.
struct PartialReader<'a> {
    inner: &'a mut dyn Read,
}

impl Read for PartialReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(_) => Ok(0),
            ok => ok,
        }
    }
}

/// What [`rewrite_tree`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RewriteReport {
    /// Files whose contents changed.
    pub files: usize,
    /// Symlinks whose targets changed.
    pub links: usize,
    /// Occurrences replaced.
    pub occurrences: usize,
}

/// Rewrites the tree at `root` in place (split mode's placeholders): every pattern in file
/// contents (inside gzip files too) and symlink targets, hard-linked files once, then proves
/// with [`check_tree`] that none is left (gzip contents included). A name holding a pattern is
/// [`RewriteError::InName`]: this rewrite does not rename.
pub fn rewrite_tree(root: &Path, rewriter: &Rewriter) -> Result<RewriteReport, RewriteError> {
    let entries = fsx::walk_with_root(root).map_err(|error| RewriteError::Io {
        path: root.to_owned(),
        source: io::Error::other(error),
    })?;
    let scanner = rewriter.scanner();
    let mut report = RewriteReport::default();
    for entry in &entries {
        let name = entry
            .path
            .file_name()
            .map_or(&[][..], |name| name.as_bytes());
        if let Some((_, index)) = scanner.find_in(name).filter(|_| entry.path != root) {
            return Err(RewriteError::InName {
                path: entry.path.clone(),
                pattern: String::from_utf8_lossy(scanner.needle(index)).into_owned(),
            });
        }
        if entry.kind == Kind::Symlink {
            let path = &entry.path;
            let target = fs::read_link(path).map_err(io_error(path))?;
            let mut bytes = target.as_os_str().as_bytes().to_vec();
            if rewriter.replace_in(&mut bytes) > 0 {
                let target = Path::new(std::ffi::OsStr::from_bytes(&bytes));
                kiln_fsio::replace_symlink(target, path).map_err(io_error(path))?;
                report.links += 1;
            }
        }
    }
    let files = fsx::unique_files(&entries);
    let counts: Vec<usize> = files
        .par_iter()
        .map(|entry| {
            rewriter
                .rewrite_file_in_place(&entry.path, entry.mode)
                .map_err(io_error(&entry.path))
        })
        .collect::<Result<_, _>>()?;
    for count in counts.into_iter().filter(|count| *count > 0) {
        report.files += 1;
        report.occurrences += count;
    }
    check_tree(root, scanner, &gzip_decoder)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{symlink, write};

    const FROM: &str = "/nix/store/00000000000000000000000000000000-hello";
    const TO: &str = "/nix/store/abcdabcdabcdabcdabcdabcdabcdabcd-hello";

    fn rewriter() -> Rewriter {
        Rewriter::new([(FROM, TO)]).unwrap()
    }

    #[test]
    fn rewrites_contents_links_and_proves_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // A match straddling the chunk boundary, and one at the very end.
        let mut big = vec![b'x'; CHUNK - 10];
        big.extend_from_slice(FROM.as_bytes());
        big.extend_from_slice(b"\0middle\0");
        big.extend_from_slice(FROM.as_bytes());
        write(&root.join("bin/big"), &big, 0o644);
        write(&root.join("script"), format!("#!{FROM}/bin/sh\n"), 0o555);
        symlink(format!("{FROM}/bin/big"), &root.join("link"));
        write(&root.join("clean"), b"nothing here", 0o644);

        let report = rewrite_tree(root, &rewriter()).unwrap();
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
        fs::write(&page, crate::man::gzip_bytes(text.as_bytes())).unwrap();
        rewrite_tree(dir.path(), &rewriter()).unwrap();
        let expected = crate::man::gzip_bytes(text.replace(FROM, TO).as_bytes());
        assert_eq!(fs::read(&page).unwrap(), expected);
    }

    #[test]
    fn refuses_different_lengths_and_names_with_the_pattern() {
        assert!(matches!(
            Rewriter::new([(FROM, "/short")]),
            Err(RewriteError::LengthMismatch { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("00000000000000000000000000000000-hello")).unwrap();
        let rewriter = Rewriter::new([(&FROM[11..], &TO[11..])]).unwrap();
        assert!(matches!(
            rewrite_tree(dir.path(), &rewriter),
            Err(RewriteError::InName { .. })
        ));
    }

    /// The streaming rewrite equals a whole-buffer rewrite, whatever the chunk boundaries: many
    /// occurrences of overlapping and prefix patterns around every boundary.
    #[test]
    fn streaming_equals_rewriting_the_whole_buffer() {
        let rewriter = Rewriter::new([("abcab", "XYZXY"), ("abc", "123"), ("cab", "789")]).unwrap();
        let unit = b"abcabcab-ab-c-";
        let mut data = Vec::new();
        while data.len() < 3 * CHUNK {
            data.extend_from_slice(unit);
        }
        let mut expected = data.clone();
        let count = rewriter.replace_in(&mut expected);
        for skip in [0, 1, 2, 3, 5, 7] {
            let input = &data[skip..];
            let mut whole = input.to_vec();
            let whole_count = rewriter.replace_in(&mut whole);
            let mut streamed = Vec::new();
            let streamed_count = rewriter
                .rewrite_stream(&mut &input[..], 0, &mut |chunk, offset, _| {
                    assert_eq!(offset, streamed.len() as u64);
                    streamed.extend_from_slice(chunk);
                    Ok(())
                })
                .unwrap();
            assert_eq!(streamed_count, whole_count);
            assert!(streamed == whole, "skip {skip}");
        }
        assert!(count > 0);
    }

    #[test]
    fn the_check_names_the_file_and_offset_in_contents_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let scanner = Scanner::new([&FROM[11..43]]).unwrap();
        write(&root.join("a/plain"), format!("0123{FROM}"), 0o644);
        let error = check_tree(root, &scanner, &gzip_decoder).unwrap_err();
        let RewriteError::Left(left) = &error else {
            panic!("{error}")
        };
        assert_eq!(left.place, Place::Contents { offset: 4 + 11 });
        assert!(error.to_string().ends_with("at byte 15"), "{error}");
        fs::remove_file(root.join("a/plain")).unwrap();
        write(
            &root.join("a/page.gz"),
            crate::man::gzip_bytes(format!("xx{FROM}").as_bytes()),
            0o644,
        );
        let RewriteError::Left(left) = check_tree(root, &scanner, &gzip_decoder).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(
            left.place,
            Place::Decoded {
                format: "gzip",
                offset: 13
            }
        );
    }
}
