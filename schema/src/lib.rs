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

pub mod chain;
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
pub mod roles;
pub mod split;
pub mod steps;
pub mod validate;

pub use error::{PlanError, PlanErrorKind, PlanErrors};
pub use parse::{plan_from_slice, plan_from_str, plan_from_value};
pub use path::JsonPath;
pub use plan::*;
pub use reference::{resolve, ResolveContext};
pub use steps::*;
pub use validate::{declared_outputs, validate};

/// The JSON Schema of [`Plan`], pretty-printed with a trailing newline. The checked-in
/// `schema/plan.schema.json` MUST equal it (a test fails on drift).
pub fn plan_json_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// The preset options as a markdown table (option, type, default, what it does), generated
/// from the JSON Schema's `Preset` definition: `docs/plan.md` holds it between markers (a test
/// fails when it differs).
pub fn preset_options_markdown() -> String {
    let schema: serde_json::Value =
        serde_json::from_str(&plan_json_schema()).expect("the schema is JSON");
    let defs = &schema["$defs"];
    let preset = &defs["Preset"];
    let required: Vec<&str> = preset["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str())
        .collect();
    let type_name = |value: &serde_json::Value| -> String {
        let reference = |value: &serde_json::Value| {
            value["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .map(str::to_owned)
        };
        if let Some(name) = reference(value) {
            if name == "BuildSystem" {
                let systems: Vec<String> = defs[&name]["oneOf"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|one| one["const"].as_str().map(|c| format!("`{c}`")))
                    .collect();
                return systems.join(", ");
            }
            return name;
        }
        if let Some(any) = value["anyOf"].as_array() {
            if let Some(name) = any.iter().find_map(reference) {
                return name;
            }
        }
        let kinds: Vec<&str> = match &value["type"] {
            serde_json::Value::String(kind) => vec![kind.as_str()],
            serde_json::Value::Array(kinds) => kinds
                .iter()
                .filter_map(|kind| kind.as_str())
                .filter(|kind| *kind != "null")
                .collect(),
            _ => Vec::new(),
        };
        match kinds.first().copied() {
            Some("array") => match reference(&value["items"]) {
                Some(name) => format!("list of {name}"),
                None => "list of strings".to_owned(),
            },
            Some(kind) => kind.to_owned(),
            None => "any".to_owned(),
        }
    };
    let mut out =
        String::from("| option | type | default | what it does |\n| --- | --- | --- | --- |\n");
    if let Some(properties) = preset["properties"].as_object() {
        for (name, value) in properties {
            let default = if required.contains(&name.as_str()) {
                "required".to_owned()
            } else {
                match &value["default"] {
                    // A flag that is left out of the JSON when off has no schema default.
                    serde_json::Value::Null if value["type"] == "boolean" => "`false`".to_owned(),
                    serde_json::Value::Null => "—".to_owned(),
                    other => format!("`{other}`"),
                }
            };
            let description = value["description"]
                .as_str()
                .unwrap_or_default()
                .replace('\n', " ")
                .replace('|', "\\|");
            out.push_str(&format!(
                "| `{name}` | {} | {default} | {description} |\n",
                type_name(value)
            ));
        }
    }
    out
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

    /// The JSON Schema's phase-name pattern accepts exactly the names `kiln validate` does.
    #[test]
    fn the_schemas_phase_name_pattern_is_validates_rule() {
        let schema: serde_json::Value = serde_json::from_str(&super::plan_json_schema()).unwrap();
        let pattern = schema["$defs"]["Phase"]["properties"]["name"]["pattern"]
            .as_str()
            .expect("a pattern for phase names");
        let regex = regex::Regex::new(pattern).unwrap();
        let long = "a".repeat(crate::error::MAX_NAME);
        let too_long = "a".repeat(crate::error::MAX_NAME + 1);
        for name in [
            "build",
            "post-install",
            "c++",
            "gtk+3",
            "v1.2",
            "_x",
            "-x",
            "a.b",
            ".hidden",
            "",
            "a b",
            "a/b",
            "é",
            "a\n",
            &long,
            &too_long,
        ] {
            assert_eq!(
                regex.is_match(name),
                crate::validate::is_valid_name(name),
                "`{name}`: the schema and kiln validate disagree"
            );
        }
    }

    /// `docs/plan.md`'s table of preset options is the schema's. Regenerate with
    /// `KILN_UPDATE_DOCS=1 cargo test -p kiln-schema`.
    #[test]
    fn docs_list_every_preset_option() {
        const BEGIN: &str = "<!-- BEGIN preset options: GENERATED from the schema by `KILN_UPDATE_DOCS=1 cargo test -p kiln-schema` -->\n";
        const END: &str = "<!-- END preset options -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/plan.md");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find(BEGIN).expect("docs/plan.md has the BEGIN marker") + BEGIN.len();
        let end = text[start..]
            .find(END)
            .expect("docs/plan.md has the END marker")
            + start;
        let table = super::preset_options_markdown();
        if std::env::var_os("KILN_UPDATE_DOCS").is_some() {
            let updated = format!("{}{table}{}", &text[..start], &text[end..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        assert!(
            text[start..end] == table,
            "docs/plan.md's preset options are out of date: run `KILN_UPDATE_DOCS=1 cargo test -p kiln-schema`"
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
