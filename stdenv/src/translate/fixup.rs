//! The fixup: stdenv's fixup knobs as the `fixup` step, and `outputChecks`.

use super::*;

impl<'r, 'a> Translator<'r, 'a> {
    pub(super) fn fixup_step(&self) -> FixupStep {
        let mut fixup = FixupStep::default();
        for (attribute, knob) in FIXUP_KNOBS {
            if self.r.flag(attribute) {
                knob(&mut fixup);
            }
        }
        // stdenv's strip hook reads these as words; an empty list strips nothing there.
        fixup.strip_debug_list = self.r.list("stripDebugList");
        fixup.strip_debug_flags = self.r.list("stripDebugFlags");
        fixup.strip_all_list = self.r.list("stripAllList");
        fixup.strip_all_flags = self.r.list("stripAllFlags");
        fixup.strip_exclude = self.r.list("stripExclude").unwrap_or_default();
        fixup.separate_debug_info = self.r.flag("separateDebugInfo");
        // move-docs.sh: `forceShare=${forceShare:=man doc info}`, so empty means the default.
        fixup.force_share = self.r.list("forceShare").filter(|dirs| !dirs.is_empty());
        fixup.output_roles = self.role_overrides.clone();
        fixup.move_to_dev = self.r.flag_or("moveToDev", true);
        // Set (even to `[]`, which propagates nothing) it replaces stdenv's default list.
        fixup.propagated_build_outputs = self.r.list("propagatedBuildOutputs");
        if let Some(checks) = self.r.raw("outputChecks") {
            match checks {
                Value::Object(outputs) => {
                    for (output, check) in outputs {
                        if let Some(check) = self.output_check(output, check) {
                            fixup.output_checks.insert(output.clone(), check);
                        }
                    }
                }
                other => {
                    self.r
                        .wrong_type(JsonPath::root().key("outputChecks"), "an object", other)
                }
            }
        }
        fixup
    }

    /// The part of Nix's `outputChecks` kiln's fixup checks too; Nix checks the rest.
    pub(super) fn output_check(&self, output: &str, value: &Value) -> Option<OutputCheck> {
        let path = JsonPath::root().key("outputChecks").key(output.to_owned());
        let Value::Object(fields) = value else {
            self.r.wrong_type(path, "an object", value);
            return None;
        };
        let refs = |name: &str| -> Option<Vec<String>> {
            fields
                .get(name)
                .filter(|v| !v.is_null())
                .and_then(|v| self.r.list_value(path.key(name), v))
        };
        let max_size = match fields.get("maxSize") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::Null) | None => None,
            Some(other) => {
                self.r
                    .wrong_type(path.key("maxSize"), "a number of bytes", other);
                None
            }
        };
        Some(OutputCheck {
            allowed_references: refs("allowedReferences"),
            disallowed_references: refs("disallowedReferences").unwrap_or_default(),
            max_size,
        })
    }
}

/// stdenv's fixup switches and the fixup step's knob each turns off.
pub(super) const FIXUP_KNOBS: &[(&str, Knob)] = &[
    ("dontStrip", |f| f.strip = false),
    ("dontPatchShebangs", |f| f.patch_shebangs = false),
    ("dontGzipMan", |f| f.compress_man = false),
    ("dontMoveLib64", |f| f.move_lib64 = false),
    ("dontMoveSbin", |f| f.move_sbin = false),
    ("dontPruneLibtoolFiles", |f| f.prune_libtool_files = false),
    ("dontPatchELF", |f| f.shrink_rpath = false),
    ("dontRewriteSymlinks", |f| f.make_symlinks_relative = false),
    ("dontCheckForBrokenSymlinks", |f| {
        f.check_broken_symlinks = false
    }),
    ("noAuditTmpdir", |f| f.audit_tmpdir = false),
];
