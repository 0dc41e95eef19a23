//! Reading a plan from JSON text or a JSON value, with errors that carry the JSON path.
//!
//! Deserialization goes through `serde_path_to_error`, so a wrong type or an unknown key is
//! reported at its path. serde describes unknown keys and variants only in its message text, so
//! [`classify`] turns those messages back into typed [`PlanErrorKind`]s that can suggest the
//! closest valid name.

use serde::de::DeserializeOwned;

use crate::error::{PlanError, PlanErrorKind};
use crate::path::JsonPath;
use crate::plan::{Plan, Step};

/// Parses a plan document. Structural checks ([`crate::validate()`]) are separate.
pub fn plan_from_str(text: &str) -> Result<Plan, PlanError> {
    from_str(text)
}

/// Parses a plan nested in another document at `prefix` (e.g. `kiln` in `.attrs.json`).
pub fn plan_from_value(value: serde_json::Value, prefix: &JsonPath) -> Result<Plan, PlanError> {
    from_value(value, prefix)
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

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" messages into typed kinds.
fn classify(message: &str, path: &JsonPath) -> PlanErrorKind {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let mut names = backticked(&format!("`{rest}"));
        let field = names.remove(0);
        return PlanErrorKind::UnknownField {
            field,
            expected: names,
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let mut names = backticked(&format!("`{rest}"));
        let value = names.remove(0);
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
}
