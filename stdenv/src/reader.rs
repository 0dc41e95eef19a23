//! Typed access to the attributes of `.attrs.json`, with stdenv's value conventions and errors
//! at the attribute's JSON path.
//!
//! [`Reader`] records every attribute the translator reads, so a test can check that the
//! translator reads exactly the attributes the table marks as translated; reading one the table
//! does not mark is a bug caught by a debug assertion.

use std::cell::RefCell;
use std::collections::BTreeSet;

use kiln_schema::JsonPath;
use serde_json::{Map, Value};

use crate::error::{TranslateError, TranslateErrorKind};
use crate::table;

/// Reads attributes and collects the problems found.
pub(crate) struct Reader<'a> {
    attrs: &'a Map<String, Value>,
    errors: RefCell<Vec<TranslateError>>,
    read: RefCell<BTreeSet<&'static str>>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(attrs: &'a Map<String, Value>) -> Reader<'a> {
        Reader {
            attrs,
            errors: RefCell::new(Vec::new()),
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// Every attribute, in `.attrs.json` order.
    pub(crate) fn all(&self) -> &'a Map<String, Value> {
        self.attrs
    }

    /// The attributes read so far.
    pub(crate) fn read(&self) -> BTreeSet<&'static str> {
        self.read.borrow().clone()
    }

    pub(crate) fn error(&self, path: JsonPath, kind: TranslateErrorKind) {
        self.errors
            .borrow_mut()
            .push(TranslateError::new(path, kind));
    }

    pub(crate) fn take_errors(&self) -> Vec<TranslateError> {
        std::mem::take(&mut self.errors.borrow_mut())
    }

    /// The value of a translated attribute; `null` counts as absent.
    pub(crate) fn raw(&self, name: &'static str) -> Option<&'a Value> {
        debug_assert!(
            table::lookup(name).is_some_and(|row| row.status.is_translated()),
            "the translator reads `{name}`, which the attribute table does not mark as translated"
        );
        self.read.borrow_mut().insert(name);
        self.attrs.get(name).filter(|value| !value.is_null())
    }

    /// Whether an attribute is present (not `null`).
    pub(crate) fn is_set(&self, name: &'static str) -> bool {
        self.raw(name).is_some()
    }

    /// A switch, true the way stdenv's `[ -n "$x" ]` is: `true`, a number, a non-empty string.
    pub(crate) fn flag(&self, name: &'static str) -> bool {
        match self.raw(name) {
            None => false,
            Some(Value::Bool(value)) => *value,
            Some(Value::Number(_)) => true,
            Some(Value::String(text)) => !text.is_empty(),
            Some(other) => {
                self.wrong_type(JsonPath::root().key(name), "a boolean", other);
                false
            }
        }
    }

    /// A switch with a default for when it is absent.
    pub(crate) fn flag_or(&self, name: &'static str, default: bool) -> bool {
        if self.is_set(name) {
            self.flag(name)
        } else {
            default
        }
    }

    /// A string; numbers are written out. An empty string counts as unset, as in stdenv
    /// (`${x:-default}`, `[ -n "$x" ]`).
    pub(crate) fn string(&self, name: &'static str) -> Option<String> {
        let value = self.raw(name)?;
        match scalar(value) {
            Some(text) if text.is_empty() => None,
            Some(text) => Some(text),
            None => {
                self.wrong_type(JsonPath::root().key(name), "a string", value);
                None
            }
        }
    }

    /// A list of strings; a string is split on whitespace (stdenv without structured attributes
    /// does the same).
    pub(crate) fn list(&self, name: &'static str) -> Option<Vec<String>> {
        let value = self.raw(name)?;
        self.list_value(JsonPath::root().key(name), value)
    }

    /// Like [`Reader::list`], for a value found elsewhere.
    pub(crate) fn list_value(&self, path: JsonPath, value: &Value) -> Option<Vec<String>> {
        match value {
            Value::String(text) => Some(text.split_whitespace().map(str::to_owned).collect()),
            Value::Array(items) => {
                let mut list = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    match scalar(item) {
                        Some(text) => list.push(text),
                        None => self.wrong_type(path.index(index), "a string", item),
                    }
                }
                Some(list)
            }
            other => {
                self.wrong_type(path, "a list of strings", other);
                None
            }
        }
    }

    /// Store paths (a list, or one path); `null` entries are dropped, each path MUST be
    /// absolute.
    pub(crate) fn paths(&self, name: &'static str) -> Vec<String> {
        let Some(value) = self.raw(name) else {
            return Vec::new();
        };
        let path = JsonPath::root().key(name);
        let items: Vec<(JsonPath, &Value)> = match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| (path.index(index), item))
                .collect(),
            other => vec![(path.clone(), other)],
        };
        let mut paths = Vec::new();
        for (at, item) in items {
            match item {
                Value::Null => {}
                Value::String(text) if text.starts_with('/') => paths.push(text.clone()),
                Value::String(text) => {
                    self.error(at, TranslateErrorKind::RelativePath { path: text.clone() })
                }
                other => self.wrong_type(at, "a store path", other),
            }
        }
        paths
    }

    pub(crate) fn wrong_type(&self, path: JsonPath, expected: &'static str, found: &Value) {
        self.error(
            path,
            TranslateErrorKind::WrongType {
                expected,
                found: describe(found),
            },
        );
    }
}

/// A string, number or boolean as text (`true` is `1`, `false` is empty, as in stdenv).
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(true) => Some("1".to_owned()),
        Value::Bool(false) => Some(String::new()),
        _ => None,
    }
}

/// Whether stdenv would see no value: `null`, `false`, `""`, `[]`, `{}`.
pub(crate) fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// A short description of a JSON value for messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(value) => format!("the boolean `{value}`"),
        Value::Number(number) => format!("the number `{number}`"),
        Value::String(text) => format!("the string {}", Value::from(text.as_str())),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A string taken literally in a plan: `${` becomes `$${`, so it is not a kiln reference.
pub(crate) fn literal(text: &str) -> String {
    text.replace("${", "$${")
}
