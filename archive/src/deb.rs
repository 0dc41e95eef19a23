//! Debian binary packages (`.deb`): [`undeb`] extracts the files of the package's `data.tar`
//! member; the maintainer scripts and control data are not read.
//!
//! A `.deb` is an `ar` archive (magic `!<arch>\n`, then members with a 60-byte header each,
//! data padded to an even length) holding, in order, `debian-binary` (the format version,
//! `2.0`), `control.tar[.gz|.xz|.zst]` and `data.tar[.gz|.xz|.zst|.bz2|.lzma]`, optionally
//! followed or interleaved by members whose names start with `_` (ignored, as dpkg does). See
//! deb(5). The reader here knows only that common form, which is all dpkg writes and accepts;
//! it is written out rather than taken from the `ar` crate because that crate allocates as many
//! bytes as a member header claims (up to 10 GB) for GNU and BSD name tables, which a hostile
//! package could use to exhaust memory. Nothing here allocates by a size read from the input.
//!
//! The data member is decompressed (by content, like any source) on a helper thread and
//! extracted through the same [`Dest`] safety rules as a tarball.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use kiln_fsio::ThreadedReader;

use crate::dest::Dest;
use crate::detect::Compression;
use crate::{untar, UnpackError};

/// The first bytes of every `ar` archive, and so of every `.deb`.
pub(crate) const AR_MAGIC: &[u8; 8] = b"!<arch>\n";

/// The size of an `ar` member header.
const HEADER_LEN: usize = 60;

/// The largest `debian-binary` member read (it holds `2.0\n`).
const MAX_VERSION_LEN: u64 = 64;

/// Whether `head` starts like a `.deb` (an `ar` archive whose first member is `debian-binary`).
pub(crate) fn is_deb(head: &[u8]) -> bool {
    head.starts_with(AR_MAGIC) && head[AR_MAGIC.len()..].starts_with(b"debian-binary")
}

/// One member header: its name (without GNU's trailing `/`) and the size of its data.
struct Member {
    name: String,
    size: u64,
}

/// Reads the next member header; `None` at the end of the archive.
fn next_member(reader: &mut impl Read) -> io::Result<Option<Member>> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(invalid("the archive ends inside a member header")),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    if &header[58..60] != b"`\n" {
        return Err(invalid("a member header does not end in \"`\\n\""));
    }
    let name = std::str::from_utf8(&header[..16])
        .map_err(|_| invalid("a member name is not text"))?
        .trim_end_matches(' ')
        .trim_end_matches('/');
    let size = std::str::from_utf8(&header[48..58])
        .ok()
        .map(|size| size.trim_end_matches(' '))
        .filter(|size| !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|size| size.parse::<u64>().ok())
        .ok_or_else(|| invalid(&format!("the member `{name}` has no valid size")))?;
    Ok(Some(Member {
        name: name.to_owned(),
        size,
    }))
}

/// Skips a member's data and its padding byte.
fn skip(reader: &mut impl Read, member: &Member) -> io::Result<()> {
    let padded = member.size + member.size % 2;
    let skipped = io::copy(&mut reader.by_ref().take(padded), &mut io::sink())?;
    if skipped < member.size {
        return Err(invalid(&format!(
            "the member `{}` is truncated",
            member.name
        )));
    }
    Ok(())
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// Extracts the `data.tar` member of the `.deb` `reader` (positioned at the start, magic
/// included) into `dest`; returns the number of entries created. `archive` names the package in
/// errors.
pub(crate) fn undeb(
    mut reader: impl Read + Send + 'static,
    archive: &Path,
    dest: Dest,
) -> Result<u64, UnpackError> {
    let not_a_deb = |reason: String| UnpackError::NotADeb {
        archive: archive.to_owned(),
        reason,
    };
    let read_error = |source| UnpackError::Read {
        archive: archive.to_owned(),
        source,
    };
    let mut magic = [0u8; AR_MAGIC.len()];
    reader.read_exact(&mut magic).map_err(read_error)?;
    if &magic != AR_MAGIC {
        return Err(not_a_deb("it is not an ar archive".to_owned()));
    }
    match next_member(&mut reader).map_err(read_error)? {
        Some(member) if member.name == "debian-binary" && member.size <= MAX_VERSION_LEN => {
            let mut version = Vec::new();
            (&mut reader)
                .take(member.size)
                .read_to_end(&mut version)
                .map_err(read_error)?;
            if !version.starts_with(b"2.") {
                return Err(not_a_deb(format!(
                    "its format version is `{}`, not 2.x",
                    String::from_utf8_lossy(&version).trim_end()
                )));
            }
            if version.len() as u64 != member.size {
                return Err(read_error(invalid(
                    "the member `debian-binary` is truncated",
                )));
            }
            skip(
                &mut reader,
                &Member {
                    name: member.name,
                    size: 0,
                },
            )
            .map_err(read_error)?;
            if member.size % 2 == 1 {
                skip(
                    &mut reader,
                    &Member {
                        name: "debian-binary".to_owned(),
                        size: 1,
                    },
                )
                .map_err(read_error)?;
            }
        }
        Some(member) => {
            return Err(not_a_deb(format!(
                "its first member is `{}`, not `debian-binary`",
                member.name
            )))
        }
        None => return Err(not_a_deb("it has no members".to_owned())),
    }
    let mut seen_control = false;
    while let Some(member) = next_member(&mut reader).map_err(read_error)? {
        let name = member.name.as_str();
        if name.starts_with('_') {
            skip(&mut reader, &member).map_err(read_error)?;
        } else if name.starts_with("control.tar") && !seen_control {
            seen_control = true;
            skip(&mut reader, &member).map_err(read_error)?;
        } else if is_data_member(name) && seen_control {
            let data = BufReader::with_capacity(128 * 1024, reader.take(member.size));
            return extract_data(data, name, archive, dest);
        } else {
            return Err(not_a_deb(format!(
                "unexpected member `{name}` (expected {})",
                if seen_control {
                    "`data.tar` with an optional .gz, .xz, .zst, .bz2 or .lzma suffix"
                } else {
                    "`control.tar`"
                }
            )));
        }
    }
    Err(not_a_deb("it has no `data.tar` member".to_owned()))
}

/// `data.tar`, uncompressed or with one of the compressions dpkg knows.
fn is_data_member(name: &str) -> bool {
    matches!(
        name,
        "data.tar"
            | "data.tar.gz"
            | "data.tar.xz"
            | "data.tar.zst"
            | "data.tar.bz2"
            | "data.tar.lzma"
    )
}

/// Decompresses the data member (by content; `.lzma` by name) and extracts its tar stream.
fn extract_data(
    mut data: BufReader<impl Read + Send + 'static>,
    name: &str,
    archive: &Path,
    dest: Dest,
) -> Result<u64, UnpackError> {
    let read_error = |source| UnpackError::Read {
        archive: archive.to_owned(),
        source,
    };
    let head = data.fill_buf().map_err(read_error)?;
    let compression = Compression::detect(head, name);
    if compression == Compression::None {
        return untar::untar(data, archive, dest);
    }
    let reader = ThreadedReader::spawn(crate::DECOMPRESS_THREAD, compression.decoder(data))
        .map_err(read_error)?;
    untar::untar(reader, archive, dest)
}
