//! kiln's fuzz targets as plain functions over `&[u8]`: cargo-fuzz runs them under libFuzzer
//! (`fuzz/fuzz_targets/<name>.rs`, one line each), and `cargo test -p kiln-fuzz-harness`
//! replays every file of `fuzz/corpus/<name>/` and `fuzz/artifacts/<name>/` through the same
//! functions.
//!
//! Each target feeds its input to kiln's public API the way kiln itself would, and panics only
//! when an invariant that matters is broken: a panic inside kiln, a write outside the target
//! directory, an error that does not say where, or a result that contradicts itself. Each
//! module documents its input format and its invariants. Work per input is bounded (small
//! trees, capped decompression) so that the fuzzer stays fast.
//!
//! | target | entry point | crate |
//! | --- | --- | --- |
//! | [`mod@plan`] | `plan_from_str`, `validate`, `resolve`, `preset::expand` | kiln-schema |
//! | [`mod@attrs`] | `load::load_attrs_file`, `build::prepare` | kiln-builder, kiln-stdenv |
//! | [`mod@archive`] | `unpack_sources` | kiln-archive |
//! | [`mod@patch`] | `apply_patch_file` | kiln-patch |
//! | [`mod@state`] | `list`, `restore`, `extract` | kiln-state |
//! | [`mod@elf`] | `rpath::shrink_rpath`, `audit::audit_tmpdir`, `debuginfo::separate_debug_info` | kiln-fixup |

pub mod archive;
pub mod attrs;
pub mod elf;
pub mod patch;
pub mod plan;
pub mod snapshot;
pub mod state;

pub use archive::archive;
pub use attrs::attrs;
pub use elf::elf;
pub use patch::patch;
pub use plan::plan;
pub use state::state;

/// A target's entry point.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and tools.
pub const TARGETS: [(&str, Target); 6] = [
    ("plan", plan),
    ("attrs", attrs),
    ("archive", archive),
    ("patch", patch),
    ("state", state),
    ("elf", elf),
];

/// Prints what a target's input led to when `KILN_FUZZ_VERBOSE` is set (for looking at what a
/// corpus reaches: `KILN_FUZZ_VERBOSE=1 cargo test -p kiln-fuzz-harness -- --nocapture`).
pub(crate) fn note(target: &str, outcome: impl FnOnce() -> String) {
    if std::env::var_os("KILN_FUZZ_VERBOSE").is_some() {
        eprintln!("{target}: {}", outcome());
    }
}
