//! stdenv-compatible attributes: a nixpkgs-style derivation (`src`, `configureFlags`,
//! `doCheck`, `outputs`, …) becomes a kiln plan, with no bash.
//!
//! When a derivation's `.attrs.json` has no `kiln` plan attribute, kiln's loader calls
//! [`translate`] on the whole attribute set. The result is a [`Translation`]: the
//! [`kiln_schema::Plan`] (explicit phases made by kiln's build-system presets and adjusted the
//! way stdenv's generic builder decides), and a [`Report`] that says, per phase and per step,
//! which attribute or stdenv default it came from, which shell hooks run, and what was ignored.
//! [`table::ATTRIBUTES`] lists every attribute kiln knows and what it does with it; it is
//! rendered to `docs/stdenv-attributes.md`.
//!
//! Shell code (`preConfigure`, `buildPhase = "…"`, `buildCommand`, …) is refused with one
//! error listing each attribute and the typed step that replaces it, unless the derivation sets
//! `kilnAllowShell = true`.
//!
//! ```
//! let attrs = serde_json::json!({
//!     "name": "hello-2.10",
//!     "outputs": { "out": "/nix/store/00000000000000000000000000000000-hello-2.10" },
//!     "src": "/nix/store/00000000000000000000000000000000-hello-2.10.tar.gz",
//!     "configureFlags": ["--disable-nls"],
//!     "doCheck": true,
//! });
//! let never = |_: &str| false;
//! let options = kiln_stdenv::TranslateOptions { is_executable: &never };
//! let translation = kiln_stdenv::translate(&attrs, &options).unwrap();
//! let phases: Vec<&str> = translation.plan.phases.iter().map(|p| p.name.as_str()).collect();
//! assert_eq!(phases, ["unpack", "patch", "configure", "build", "check", "install", "fixup",
//!                     "installCheck", "dist"]);
//! assert_eq!(translation.report.build_system, "autotools");
//! ```
#![warn(missing_docs)]

pub mod error;
mod reader;
pub mod table;
#[cfg(test)]
mod tests;
mod translate;

pub use error::{TranslateError, TranslateErrorKind, TranslateErrors};
pub use translate::{translate, PhaseProvenance, Report, ShellHook, TranslateOptions, Translation};
