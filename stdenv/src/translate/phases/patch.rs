//! The patches and the patch phase: `patches` and the strip level of `patchFlags` go to the
//! preset, `dontPatch` switches patchPhase off.

use super::*;

/// What the preset applies: the patches, and how many leading path components they strip.
pub(super) struct Patches {
    /// `patches`, as literals.
    pub(super) files: Vec<String>,
    /// The `-pN` of `patchFlags` (1 without it).
    pub(super) strip: usize,
}

impl Translator<'_, '_> {
    /// Reads `patches` and `patchFlags`.
    pub(super) fn patches(&self) -> Patches {
        let files: Vec<String> = self.r.paths("patches").iter().map(|p| literal(p)).collect();
        Patches {
            files,
            strip: self.patch_strip(),
        }
    }

    /// The strip level `patchFlags` asks for; a flag other than `-pN`/`--strip=N` is an error.
    fn patch_strip(&self) -> usize {
        let Some(flags) = self.r.list("patchFlags") else {
            return 1;
        };
        let mut strip = 1;
        for (index, flag) in flags.iter().enumerate() {
            let level = flag
                .strip_prefix("-p")
                .or_else(|| flag.strip_prefix("--strip="))
                .and_then(|n| n.parse::<usize>().ok());
            match level {
                Some(level) => strip = level,
                None => self.r.error(
                    JsonPath::root().key("patchFlags").index(index),
                    TranslateErrorKind::PatchFlag { flag: flag.clone() },
                ),
            }
        }
        strip
    }

    /// The patch phase: off with `dontPatch`, else its step's provenance.
    pub(super) fn patch_phase(&self, patch: &mut Draft) {
        let r = self.r;
        read_switch_off(
            r,
            patch,
            "dontPatch",
            "patchPhase runs (applies nothing without patches)",
        );
        if let Some(from) = patch.steps.first_mut() {
            from.push("patches".to_owned());
            from.push(if r.is_set("patchFlags") {
                "patchFlags".to_owned()
            } else {
                default("patchFlags -p1")
            });
        }
    }
}
