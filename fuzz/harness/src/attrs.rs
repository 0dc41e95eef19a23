//! The `attrs` target: a `.attrs.json` through kiln-builder's loader (`load_attrs_file`: the
//! `kiln` plan attribute, or the stdenv translation of kiln-stdenv when there is none) and
//! `prepare` (validation, output check, dependency environment, reference resolution, preset
//! expansion), as `kiln plan --attrs` runs them.
//!
//! Invariants checked:
//!
//! - no panic;
//! - loading and preparing write nothing (the scratch directory is unchanged);
//! - an invalid document is reported as `LoadError::Invalid` naming the file, each error with a
//!   JSON path whose parent exists in the document (for the stdenv translation too: an error
//!   must point at an attribute the user wrote, not into a plan they never saw), and a syntax
//!   error with a line and column.

use std::collections::BTreeMap;
use std::fs;

use kiln_builder::run::build::prepare;
use kiln_builder::setup::env::BuildPaths;
use kiln_builder::setup::load::{load_attrs_file, LoadError};

use crate::plan::check_error;
use crate::snapshot::Scratch;

/// Runs the `attrs` target on one input.
pub fn attrs(data: &[u8]) {
    // The loader reads the file with `read_to_string`; other bytes are an I/O error.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scratch = Scratch::new();
    let file = scratch.work.join(".attrs.json");
    fs::write(&file, data).expect("the attrs file");
    let before = scratch.snapshot(&[]);
    let document = crate::plan::document_of(text);

    let result = load_attrs_file(&file).and_then(|mut loaded| {
        // As `kiln plan --attrs` does outside Nix: the derivation's output names, kiln's paths.
        if let Some(outputs) = &mut loaded.outputs {
            for (name, path) in outputs.iter_mut() {
                *path = scratch.work.join(format!("out-{name}"));
            }
        }
        let paths = BuildPaths {
            build_top: scratch.work.join("build"),
            outputs: BTreeMap::new(),
            cores: 4,
        };
        prepare(&loaded, paths, &BTreeMap::new())
    });
    crate::note("attrs", || match &result {
        Ok(prepared) => format!("ok: {} phases", prepared.plan.phases.len()),
        Err(error) => format!("{error}: {error:?}"),
    });
    match result {
        Ok(_) => {}
        Err(LoadError::Invalid {
            file: named,
            errors,
        }) => {
            assert_eq!(named, file, "the error names another file");
            assert!(!errors.0.is_empty(), "an empty error list");
            for error in &errors.0 {
                check_error(error, document.as_ref(), text, "attrs");
            }
        }
        Err(other) => {
            let _ = other.to_string();
        }
    }
    scratch
        .snapshot(&[])
        .assert_unchanged(&before, "loading `.attrs.json`: the scratch directory");
}
