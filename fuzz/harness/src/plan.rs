//! The `plan` target: a JSON plan through kiln-schema's parser, validator, reference resolver
//! and preset expansion, as `kiln validate` runs them (without the dependency scan, which reads
//! the inputs' directories).
//!
//! Invariants checked:
//!
//! - no panic;
//! - every error names where it is: a syntax error has a line and column inside the text; an
//!   error about the plan as written has a JSON path whose parent exists in the document (the
//!   path itself may be a missing field; a document that repeats a key is not checked, as
//!   serde meets the first occurrence and `serde_json::Value` keeps the last);
//! - a plan that validates serializes and parses back to itself (split mode renders plans into
//!   derivations and reads them back);
//! - a plan whose references resolve as written also resolves once its preset is expanded (the
//!   expansion adds no reference the user cannot see; `prepare` resolves the written plan first
//!   so that errors point into the document).

use std::collections::BTreeMap;

use kiln_schema::path::Segment;
use kiln_schema::{JsonPath, PlanError, PlanErrorKind, PlanErrors, ResolveContext};
use serde_json::Value;

/// Runs the `plan` target on one input.
pub fn plan(data: &[u8]) {
    // `kiln` reads plan files with `read_to_string`: other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let document = document_of(text);
    let plan = match kiln_schema::plan_from_str(text) {
        Ok(plan) => plan,
        Err(error) => {
            check_error(&error, document.as_ref(), text, "parse");
            return;
        }
    };
    if let Err(errors) = kiln_schema::validate(&plan) {
        check_errors(&errors, document.as_ref(), text, "validate");
        return;
    }

    let printed = serde_json::to_string(&plan).expect("a plan serializes");
    let reparsed = kiln_schema::plan_from_str(&printed).unwrap_or_else(|error| {
        panic!("a valid plan printed as {printed} does not parse: {error}")
    });
    assert!(
        reparsed == plan,
        "a valid plan does not survive printing and parsing:\n{plan:?}\nprinted {printed}\nparsed {reparsed:?}"
    );

    let context = context(&plan);
    let written = kiln_schema::resolve(&plan, &context);
    crate::note("plan", || match &written {
        Ok(_) => "resolves".to_owned(),
        Err(errors) => errors.to_string(),
    });
    if let Err(errors) = &written {
        check_errors(errors, document.as_ref(), text, "resolve");
    }
    match kiln_schema::preset::expand(&plan, &[]) {
        Ok(expanded) => {
            let resolved = kiln_schema::resolve(&expanded, &context);
            if written.is_ok() {
                if let Err(errors) = resolved {
                    panic!(
                        "the written plan resolves, its expansion does not (errors that point \
                         into no document): {errors}"
                    );
                }
            }
        }
        Err(errors) => check_errors(&errors, document.as_ref(), text, "expand"),
    }
}

/// What `kiln plan` resolves against: every declared output in the store, the usual sandbox
/// variables.
fn context(plan: &kiln_schema::Plan) -> ResolveContext {
    let outputs = kiln_schema::declared_outputs(plan)
        .into_iter()
        .map(|name| {
            let path = format!("/nix/store/00000000000000000000000000000000-fuzz-{name}");
            (name, path)
        })
        .collect();
    let base_env = BTreeMap::from([
        ("HOME".to_owned(), "/homeless-shelter".to_owned()),
        ("PATH".to_owned(), "/path-not-set".to_owned()),
        ("NIX_BUILD_TOP".to_owned(), "/build".to_owned()),
    ]);
    ResolveContext {
        outputs,
        build_top: "/build".to_owned(),
        build_cores: 4,
        base_env,
    }
}

fn check_errors(errors: &PlanErrors, document: Option<&Value>, text: &str, stage: &str) {
    assert!(!errors.0.is_empty(), "{stage}: an empty error list");
    for error in &errors.0 {
        check_error(error, document, text, stage);
    }
}

/// Checks that `error` says where it is; see the module documentation.
pub(crate) fn check_error(error: &PlanError, document: Option<&Value>, text: &str, stage: &str) {
    let rendered = error.to_string();
    let _ = error.hint();
    if let Some((line, column)) = error.location {
        let lines = text.split('\n').count();
        assert!(
            line >= 1 && line <= lines,
            "{stage}: `{rendered}` is at line {line}, the text has {lines}"
        );
        let _ = column;
    }
    if matches!(error.kind, PlanErrorKind::Syntax { .. }) {
        assert!(
            error.location.is_some(),
            "{stage}: the syntax error `{rendered}` has no line and column"
        );
        return;
    }
    let Some(document) = document else {
        // Not JSON, but not reported as a syntax error: serde_json reports some lexical errors
        // (numbers out of range, bad escapes) as data errors; they still need a location.
        // (JSON with a repeated key has no `Value` to check the path against.)
        let json = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        assert!(
            json || error.location.is_some(),
            "{stage}: `{rendered}` about text that is not JSON has no line and column"
        );
        return;
    };
    assert!(
        parent_exists(document, &error.path),
        "{stage}: `{rendered}` points at `{}`, whose parent is not in the document",
        error.path
    );
}

/// Whether the value at `path` without its last segment exists in `document`.
fn parent_exists(document: &Value, path: &JsonPath) -> bool {
    let segments = path.segments();
    let Some((_, parent)) = segments.split_last() else {
        return true;
    };
    let mut value = document;
    for segment in parent {
        let next = match (segment, value) {
            (Segment::Key(key), Value::Object(map)) => map.get(key),
            (Segment::Index(index), Value::Array(items)) => items.get(*index),
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return false,
        }
    }
    true
}

/// The document as a [`Value`], or `None` when it is not JSON or an object repeats a key (the
/// plan parser meets the first occurrence, `Value` keeps the last, so paths could not be
/// checked against it).
pub(crate) fn document_of(text: &str) -> Option<Value> {
    serde_json::from_str::<UniqueKeys>(text).ok()?;
    serde_json::from_str(text).ok()
}

/// Deserializes any JSON value, failing on an object that repeats a key.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut keys = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key) {
                return Err(serde::de::Error::custom("a repeated key"));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}
