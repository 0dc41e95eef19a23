//! What a source file is, by its first bytes: [`Compression`] of the outer stream, and whether
//! the (decompressed) content is a tar archive.
//!
//! Formats are recognised by content, not by file name, because Nix store paths often lose or
//! change the extension (`fetchurl` names, `.tgz`, a download without a suffix). The one
//! exception is the legacy `.lzma` format, which has no reliable magic number: it is recognised
//! only when the name ends in `.lzma`, `.tlz` or `.tar.lzma`, as stdenv does.
//!
//! # Format
//!
//! | format | first bytes |
//! | --- | --- |
//! | gzip | `1f 8b` |
//! | bzip2 | `42 5a 68` (`BZh`) |
//! | xz | `fd 37 7a 58 5a 00` |
//! | zstd | `28 b5 2f fd` |
//! | zip | `50 4b 03 04` (`PK\3\4`), or `50 4b 05 06` for an empty archive |
//! | tar | `ustar` at offset 257, or a v7 header whose checksum matches |

use std::io::{self, BufRead, BufReader, Read};

/// The compression of a stream, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (one or more members, like `gzip -d`).
    Gzip,
    /// bzip2 (one or more streams, like `bzip2 -d`).
    Bzip2,
    /// xz (one or more streams, like `xz -d`).
    Xz,
    /// Legacy `.lzma` (LZMA-alone), only recognised by name.
    Lzma,
    /// zstd (one or more frames).
    Zstd,
}

impl Compression {
    /// The compression whose magic number starts `head`; `name` is consulted only for the
    /// legacy `.lzma` format, which has none.
    pub fn detect(head: &[u8], name: &str) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.first() == Some(&0x5d)
            && [".lzma", ".tlz"].iter().any(|ext| name.ends_with(ext))
        {
            Compression::Lzma
        } else {
            Compression::None
        }
    }

    /// The file name extensions that this compression conventionally adds, longest first.
    pub(crate) fn extensions(self) -> &'static [&'static str] {
        match self {
            Compression::None => &[],
            Compression::Gzip => &[".gz", ".z"],
            Compression::Bzip2 => &[".bz2", ".bz"],
            Compression::Xz => &[".xz"],
            Compression::Lzma => &[".lzma"],
            Compression::Zstd => &[".zst", ".zstd"],
        }
    }

    /// A reader that decompresses `reader` as a stream.
    pub fn decoder<'a, R: BufRead + Send + 'a>(self, reader: R) -> Box<dyn Read + Send + 'a> {
        match self {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
            Compression::Xz => match liblzma::stream::Stream::new_stream_decoder(
                MAX_DECODER_MEMORY,
                liblzma::stream::CONCATENATED,
            ) {
                Ok(stream) => Box::new(liblzma::bufread::XzDecoder::new_stream(reader, stream)),
                Err(error) => Box::new(FailingReader(Some(io::Error::other(error)))),
            },
            Compression::Lzma => {
                match liblzma::stream::Stream::new_lzma_decoder(MAX_DECODER_MEMORY) {
                    Ok(stream) => Box::new(liblzma::bufread::XzDecoder::new_stream(reader, stream)),
                    Err(error) => Box::new(FailingReader(Some(io::Error::other(error)))),
                }
            }
            Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(reader) {
                Ok(decoder) => Box::new(decoder),
                Err(error) => Box::new(FailingReader(Some(error))),
            },
        }
    }
}

/// The most memory an xz or lzma decoder may take: its header names its dictionary size, and a
/// hostile one asks for gigabytes (found by the `archive` fuzz target). `xz -9` needs 65 MiB and
/// `xz --extreme` no more; past the limit the stream fails with liblzma's "memory usage limit"
/// error. (zstd's decoder already refuses windows over 128 MiB by default.)
pub const MAX_DECODER_MEMORY: u64 = 256 * 1024 * 1024;

/// A reader whose first read fails with the error it holds (a decoder that could not start).
struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("the decoder could not start")))
    }
}

/// Whether `head` (the first bytes of a stream, at least one 512-byte block to say yes) starts
/// with a tar header: POSIX/GNU `ustar` magic, or a v7 header with a valid checksum.
pub(crate) fn is_tar(head: &[u8]) -> bool {
    let Some(block) = head.get(..512) else {
        return false;
    };
    if &block[257..262] == b"ustar" {
        return true;
    }
    // v7 tar: the checksum field is octal, and equals the sum of the header's bytes with the
    // checksum field itself counted as spaces.
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|byte| *byte == b' ')
        .take_while(|byte| (b'0'..=b'7').contains(byte))
        .collect();
    if digits.is_empty() || block[0] == 0 {
        return false;
    }
    let recorded = digits
        .iter()
        .fold(0u32, |sum, digit| sum * 8 + u32::from(digit - b'0'));
    let actual: u32 = block
        .iter()
        .enumerate()
        .map(|(index, byte)| {
            if (148..156).contains(&index) {
                u32::from(b' ')
            } else {
                u32::from(*byte)
            }
        })
        .sum();
    recorded == actual
}

/// Whether `head` starts a zip archive.
pub(crate) fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// Opens `path` and returns a reader of its content, decompressed if its first bytes say it is
/// gzip, bzip2, xz or zstd (or legacy lzma by name), together with the compression found.
///
/// This is what `patch` needs for `foo.patch.gz`; the unpacker itself decompresses on a
/// separate thread.
pub fn open_decompressed(
    path: &std::path::Path,
) -> io::Result<(Compression, Box<dyn Read + Send>)> {
    let mut file = BufReader::with_capacity(128 * 1024, std::fs::File::open(path)?);
    let head = file.fill_buf()?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let compression = Compression::detect(head, &name);
    Ok((compression, compression.decoder(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lzma_header_asking_for_gigabytes_fails_instead_of_allocating() {
        // LZMA-alone: properties 0x5d, a 3.1 GB dictionary, unknown size, then some data (the
        // fuzzer's input made liblzma allocate 3,163,534,336 bytes).
        let mut bytes = vec![0x5d, 0xb6, 0xb1, 0x8f, 0xbc];
        bytes.extend_from_slice(&[0xff; 8]);
        bytes.extend_from_slice(&[0x00, 0x12, 0x34, 0x56, 0x78, 0x9a]);
        let mut out = Vec::new();
        let result = Compression::Lzma
            .decoder(io::BufReader::new(bytes.as_slice()))
            .read_to_end(&mut out);
        let error = result.unwrap_err();
        assert!(
            error.to_string().to_lowercase().contains("memory"),
            "{error}"
        );
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8], "x"),
            Compression::Gzip
        );
        assert_eq!(Compression::detect(b"BZh91AY", "x"), Compression::Bzip2);
        assert_eq!(
            Compression::detect(b"\xfd7zXZ\x00\x00", "x"),
            Compression::Xz
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd], "x"),
            Compression::Zstd
        );
        assert_eq!(
            Compression::detect(&[0x5d, 0, 0], "a.tar.lzma"),
            Compression::Lzma
        );
        assert_eq!(
            Compression::detect(&[0x5d, 0, 0], "a.tar"),
            Compression::None
        );
        assert_eq!(Compression::detect(b"hello", "a.gz"), Compression::None);
        assert!(is_zip(b"PK\x03\x04rest"));
        assert!(!is_tar(&[0u8; 512]));
        assert!(!is_tar(b"short"));
    }
}
