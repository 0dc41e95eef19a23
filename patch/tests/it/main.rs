//! Integration tests of kiln-patch: real Debian source packages, hostile trees (symlinks) and
//! hostile patches (decompression bombs).

mod debian;
mod limits;
mod symlinks;
