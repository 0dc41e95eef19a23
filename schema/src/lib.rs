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
pub mod excerpt;
pub mod exit_codes;
pub mod hook;
pub mod parse;
pub mod path;
pub mod plan;
pub mod preset;
pub mod reference;
pub mod split;
pub mod validate;

pub use error::{PlanError, PlanErrorKind, PlanErrors};
pub use parse::{plan_from_slice, plan_from_str, plan_from_value};
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

#[cfg(test)]
mod tests {
    /// The checked-in `schema/plan.schema.json` is what the types generate. Regenerate with
    /// `KILN_UPDATE_SCHEMA=1 cargo test -p kiln-schema` (or `kiln schema > schema/plan.schema.json`).
    #[test]
    fn checked_in_schema_has_not_drifted() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plan.schema.json");
        let generated = super::plan_json_schema();
        if std::env::var_os("KILN_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schema/plan.schema.json is out of date: run `KILN_UPDATE_SCHEMA=1 cargo test -p kiln-schema`"
        );
    }

    /// Every example plan parses, validates and resolves.
    #[test]
    fn examples_are_valid_plans() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let plan =
                crate::plan_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            crate::validate(&plan).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
        assert!(count >= 3);
    }
}
