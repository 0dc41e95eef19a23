//! The kiln runtime: load a plan (a file or Nix's `.attrs.json`), build the environment from
//! scratch, run the phases with processes in their own groups, and report events in the human,
//! Nix (`@nix`) or JSON format.
//!
//! The CLI calls [`load`], then [`build::prepare`] (no side effects), then
//! [`build::run_build`] with a [`report::Reporter`].
#![warn(missing_docs)]

pub mod build;
pub mod builtin;
pub mod deps;
pub mod env;
pub mod executor;
pub mod inner;
pub mod load;
pub mod local;
pub mod process;
pub mod progress;
pub mod reaper;
pub mod relay;
pub mod report;
pub mod rewrite;
pub mod signal;
pub mod split;
pub mod timings;
