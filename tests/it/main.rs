//! Integration tests of the real `kiln` binary: the CLI, the executor, bad plans, and builds under
//! real Nix. One test binary, one module per area.

mod bad_plans;
mod build;
mod cli;
mod common;
mod debian;
mod devshell;
mod examples;
mod graft;
mod hardening;
mod local;
mod nix;
mod nonutf8;
mod presets;
mod split;
mod stage0;
mod state;
mod stdenv;
