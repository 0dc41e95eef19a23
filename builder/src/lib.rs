//! The kiln runtime: load a plan (a file or Nix's `.attrs.json`), build the environment from
//! scratch, run the phases with processes in their own groups, and report events in the human,
//! Nix (`@nix`) or JSON format.
//!
//! The modules, by what they are for:
//! - [`setup`]: loading a plan and the environment its steps see;
//! - [`run`]: one build in this process: prepare, run the phases, check the outputs;
//! - [`report`]: the event stream rendered as `@nix` lines, text, JSON, progress or timings;
//! - [`split`]: one part of a split build under Nix, and the placeholder rewrite;
//! - [`local`]: builds without Nix, phase by phase in kiln's sandbox, with a state cache.
//!
//! A Nix build is [`load_attrs_file`], then [`prepare`] (no side effects), then [`run_build`] with a
//! [`Reporter`]; the names a caller needs are re-exported here.
#![warn(missing_docs)]

pub mod local;
pub mod report;
pub mod run;
pub mod setup;
pub mod split;

pub use report::{LogFormat, Reporter, WriterReporter};
pub use run::build::{prepare, run_build, PreparedBuild, RunError, SetupError};
pub use setup::env::BuildPaths;
pub use setup::load::{attrs_json_path, load_attrs_file, load_plan_file, LoadError, LoadedPlan};
