//! kiln's plan data model: types, parsing with JSON-path errors, validation, references,
//! the JSON Schema, and the other wire types (log events, exit codes).
//!
//! This crate does no I/O. The runtime (`kiln-builder`) reads files, builds a
//! [`ResolveContext`] and calls [`resolve`]; the CLI prints [`PlanErrors`].
//!
//! ```
//! let plan = kiln_schema::plan_from_str(r#"{
//!     "version": 1, "name": "demo",
//!     "phases": [{ "name": "install", "steps": [
//!         { "write": { "path": "${outputs.out}/hello", "content": "hi\n" } }
//!     ] }]
//! }"#).unwrap();
//! kiln_schema::validate(&plan).unwrap();
//! let context = kiln_schema::ResolveContext {
//!     outputs: [("out".to_owned(), "/tmp/out".to_owned())].into(),
//!     ..Default::default()
//! };
//! let resolved = kiln_schema::resolve(&plan, &context).unwrap();
//! assert!(matches!(&resolved.phases[0].steps[0],
//!     kiln_schema::Step::Write(w) if w.path == "/tmp/out/hello"));
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod events;
pub mod exit_codes;
pub mod parse;
pub mod path;
pub mod plan;
pub mod reference;
pub mod validate;

pub use error::{PlanError, PlanErrorKind, PlanErrors};
pub use parse::{plan_from_str, plan_from_value};
pub use path::JsonPath;
pub use plan::*;
pub use reference::{resolve, ResolveContext};
pub use validate::{declared_outputs, validate};

/// The JSON Schema of [`Plan`], pretty-printed with a trailing newline. The checked-in
/// `schema/plan.schema.json` MUST equal it (a test fails on drift).
pub fn plan_json_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
