//! Integration tests of kiln-patch against real Debian source packages.

mod debian;
