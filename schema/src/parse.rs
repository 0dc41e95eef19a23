//! Reading a plan from JSON text or a JSON value, with errors that carry the JSON path.
//!
//! Deserialization goes through `serde_path_to_error`, so a wrong type or an unknown key is
//! reported at its path. serde describes unknown keys and variants only in its message text, so
//! `classify` turns those messages back into typed [`PlanErrorKind`]s that can suggest the
//! closest valid name.
//!
//! Files are read as bytes: [`from_slice`] refuses text that is not UTF-8 as an invalid plan, with
//! the line, column and byte offset of the first bad byte.

use serde::de::DeserializeOwned;

use crate::error::{PlanError, PlanErrorKind};
use crate::path::JsonPath;
use crate::plan::Plan;
use crate::steps::Step;

/// Parses a plan document. Structural checks ([`crate::validate()`]) are separate.
pub fn plan_from_str(text: &str) -> Result<Plan, PlanError> {
    from_str(text)
}

/// Parses a plan document read from a file: the bytes must be UTF-8 (see [`from_slice`]).
pub fn plan_from_slice(bytes: &[u8]) -> Result<Plan, PlanError> {
    from_slice(bytes)
}

/// Parses a plan nested in another document at `prefix` (e.g. `kiln` in `.attrs.json`).
pub fn plan_from_value(value: serde_json::Value, prefix: &JsonPath) -> Result<Plan, PlanError> {
    from_value(value, prefix)
}

/// Parses any plan type from the bytes of a file. Bytes that are not UTF-8 are an invalid plan
/// ([`PlanErrorKind::NotUtf8`]) located by line, column (both counted from 1, the column in
/// bytes, as serde_json counts) and byte offset.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PlanError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => from_str(text),
        Err(error) => {
            let offset = error.valid_up_to();
            let before = &bytes[..offset];
            let line = 1 + before.iter().filter(|&&byte| byte == b'\n').count();
            let line_start = before
                .iter()
                .rposition(|&byte| byte == b'\n')
                .map_or(0, |newline| newline + 1);
            let mut plan_error =
                PlanError::new(JsonPath::root(), PlanErrorKind::NotUtf8 { offset });
            plan_error.location = Some((line, offset - line_start + 1));
            Err(plan_error)
        }
    }
}

/// Parses any plan type from text with path-aware errors.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, PlanError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let mut plan_error = from_path_error(error, &JsonPath::root());
        let well_formed = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        if matches!(plan_error.kind, PlanErrorKind::Syntax { .. }) && well_formed {
            // serde_json reports a second key in an enum object as a syntax error; the JSON is
            // fine, the shape is not.
            plan_error.kind = PlanErrorKind::Shape {
                message: "a step object must have exactly one key, its kind".to_owned(),
            };
        }
        plan_error
    })?;
    deserializer.end().map_err(|error| {
        let mut plan_error = PlanError::new(
            JsonPath::root(),
            PlanErrorKind::Syntax {
                message: strip_location(&error.to_string()).to_owned(),
            },
        );
        plan_error.location = Some((error.line(), error.column()));
        plan_error
    })?;
    Ok(value)
}

/// Parses any plan type from a JSON value nested at `prefix`.
pub fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &JsonPath,
) -> Result<T, PlanError> {
    serde_path_to_error::deserialize(value).map_err(|error| from_path_error(error, prefix))
}

fn from_path_error(
    error: serde_path_to_error::Error<serde_json::Error>,
    prefix: &JsonPath,
) -> PlanError {
    let path = JsonPath::from_serde(error.path()).prefixed(prefix);
    let inner = error.inner();
    let message = strip_location(&inner.to_string()).to_owned();
    let kind = if inner.is_syntax() || inner.is_eof() {
        PlanErrorKind::Syntax { message }
    } else {
        classify(&message, &path)
    };
    let mut plan_error = PlanError::new(path, kind);
    if inner.line() > 0 {
        plan_error.location = Some((inner.line(), inner.column()));
    }
    plan_error
}

/// serde_json appends " at line L column C" to its messages; the location is kept separately.
fn strip_location(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

/// The names between backticks in `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Splits the rest of serde's "unknown field `NAME`, expected one of `a`, `b`" (or "`NAME`,
/// there are no fields") after the first backtick into the name as written and the names
/// expected. The name is the plan's and may hold backticks itself; the expected names are
/// kiln's, so the last "`, expected " or "`, there are no " ends the name.
fn unknown_and_expected(rest: &str) -> (String, Vec<String>) {
    let end = ["`, expected ", "`, there are no "]
        .iter()
        .filter_map(|marker| rest.rfind(marker))
        .max();
    match end {
        Some(end) => (rest[..end].to_owned(), backticked(&rest[end + 1..])),
        None => (rest.trim_end_matches('`').to_owned(), Vec::new()),
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" messages into typed kinds.
fn classify(message: &str, path: &JsonPath) -> PlanErrorKind {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = unknown_and_expected(rest);
        return PlanErrorKind::UnknownField { field, expected };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, names) = unknown_and_expected(rest);
        // A step's kind is its only key; the path then ends at the step's index.
        let is_step =
            names.len() == Step::KINDS.len() && names.iter().zip(Step::KINDS).all(|(a, b)| a == b);
        return if is_step {
            PlanErrorKind::UnknownStepKind {
                kind: value,
                expected: names,
            }
        } else {
            PlanErrorKind::UnknownValue {
                value,
                expected: names,
            }
        };
    }
    let _ = path;
    // serde lets a JSON array stand for a struct; a plan never means that, so say what is wrong.
    if message.starts_with("invalid length") && message.contains("expected struct") {
        return PlanErrorKind::Shape {
            message: "invalid type: array, expected an object".to_owned(),
        };
    }
    PlanErrorKind::Shape {
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> PlanError {
        plan_from_str(text).unwrap_err()
    }

    #[test]
    fn unknown_field_names_path_and_suggests() {
        let e = error(r#"{"version":1,"name":"x","phases":[{"name":"a","stesp":[]}]}"#);
        assert_eq!(e.path.to_string(), "phases[0].stesp");
        assert!(matches!(&e.kind, PlanErrorKind::UnknownField { field, .. } if field == "stesp"));
        assert_eq!(e.hint().unwrap(), "did you mean `steps`?");
    }

    #[test]
    fn unknown_step_kind_suggests() {
        let e = error(
            r#"{"version":1,"name":"x","phases":[{"name":"a","steps":[{"rnu":{"argv":["x"]}}]}]}"#,
        );
        assert!(matches!(&e.kind, PlanErrorKind::UnknownStepKind { kind, .. } if kind == "rnu"));
        assert_eq!(e.hint().unwrap(), "did you mean `run`?");
        assert!(
            e.path.to_string().starts_with("phases[0].steps[0]"),
            "{}",
            e.path
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = error(
            r#"{"version":1,"name":"x","phases":[{"name":"a","steps":[{"run":{"argv":"make"}}]}]}"#,
        );
        assert_eq!(e.path.to_string(), "phases[0].steps[0].run.argv");
        assert!(matches!(e.kind, PlanErrorKind::Shape { .. }));
        assert!(e.location.is_some());
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let e = error("{\"version\": 1,\n \"name\": }");
        assert!(matches!(e.kind, PlanErrorKind::Syntax { .. }), "{e:?}");
        assert_eq!(e.location.map(|l| l.0), Some(2));
    }

    #[test]
    fn nested_values_are_prefixed() {
        let value = serde_json::json!({"version": 1, "name": 3, "phases": []});
        let e = plan_from_value(value, &JsonPath::root().key("kiln")).unwrap_err();
        assert_eq!(e.path.to_string(), "kiln.name");
    }

    #[test]
    fn text_that_is_not_utf8_is_located() {
        let e = plan_from_slice(b"{\"version\":1,\n\"name\":\"caf\xe9\"}").unwrap_err();
        assert_eq!(e.kind, PlanErrorKind::NotUtf8 { offset: 25 });
        assert_eq!(e.location, Some((2, 12)));
        assert!(e.to_string().contains("(line 2, column 12)"), "{e}");
        assert!(e.hint().unwrap().contains("UTF-8"));
        // Valid UTF-8 goes on to the JSON parser.
        assert!(plan_from_slice(b"{").is_err());
    }

    #[test]
    fn an_unknown_field_with_backticks_keeps_its_name_and_the_expected_ones() {
        let e = error(r#"{"version":1,"name":"x","a`, expected `b":1,"phases":[]}"#);
        let PlanErrorKind::UnknownField { field, expected } = &e.kind else {
            panic!("{e:?}");
        };
        assert_eq!(field, "a`, expected `b");
        assert_eq!(expected[0], "version");
    }

    #[test]
    fn a_huge_unknown_key_is_reported_briefly() {
        let huge = "k".repeat(4 << 20);
        for text in [
            format!(r#"{{"version":1,"name":"x","{huge}":1,"phases":[]}}"#),
            format!(
                r#"{{"version":1,"name":"x","phases":[{{"name":"a","steps":[{{"{huge}":{{}}}}]}}]}}"#
            ),
        ] {
            let e = error(&text);
            assert!(
                matches!(
                    e.kind,
                    PlanErrorKind::UnknownField { .. } | PlanErrorKind::UnknownStepKind { .. }
                ),
                "{:?}",
                e.kind.to_string().get(..100)
            );
            let shown = e.to_string();
            assert!(shown.len() < 1024, "{}", shown.len());
            assert!(e.hint().unwrap().len() < 1024);
        }
    }
}
