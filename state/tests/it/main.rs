//! Integration tests of kiln-state: round trips of a crafted tree, determinism, and damaged or
//! hostile states refused with nothing left behind.

mod damaged;
mod roundtrip;
mod util;
