//! Integration tests of kiln-patch: real Debian source packages, hostile trees (symlinks),
//! hostile patches (decompression bombs, modes), hostile quilt series and patch files that are
//! not regular files.

mod debian;
mod limits;
mod modes;
mod patch_files;
mod series;
mod symlinks;
