//! The sources and the unpack phase: `srcs` or `src` become the plan's inputs, `sourceRoot`
//! goes to the preset, and `dontUnpack` switches unpackPhase off.

use super::*;

/// What the sources decided, for the preset and the unpack phase.
pub(super) struct Sources {
    /// What the preset unpacks: `${inputs.srcs.N}` or `${inputs.src}`.
    pub(super) refs: Vec<String>,
    /// The attribute they came from: `srcs`, `src`, or empty without sources.
    pub(super) from: &'static str,
    /// `sourceRoot`, as a literal.
    pub(super) root: Option<String>,
    /// `dontUnpack`.
    pub(super) dont_unpack: bool,
}

impl Translator<'_, '_> {
    /// Reads `srcs` (else `src`) into the inputs, `dontUnpack` and `sourceRoot`; no source
    /// without `dontUnpack` is an error.
    pub(super) fn sources(&mut self) -> Sources {
        let r = self.r;
        let srcs_attr = r.paths("srcs");
        let src_attr = r.paths("src");
        let (refs, from): (Vec<String>, &'static str) = if !srcs_attr.is_empty() {
            let refs = (0..srcs_attr.len())
                .map(|index| format!("${{inputs.srcs.{index}}}"))
                .collect();
            self.inputs
                .insert("srcs".to_owned(), Input::List(srcs_attr));
            (refs, "srcs")
        } else if let Some(src) = src_attr.into_iter().next() {
            self.inputs.insert("src".to_owned(), Input::Path(src));
            (vec!["${inputs.src}".to_owned()], "src")
        } else {
            (Vec::new(), "")
        };
        let dont_unpack = r.flag("dontUnpack");
        if refs.is_empty() && !dont_unpack {
            r.error(JsonPath::root().key("src"), TranslateErrorKind::NoSource);
        }
        let root = r.string("sourceRoot").map(|root| literal(&root));
        r.flag("dontMakeSourcesWritable");
        Sources {
            refs,
            from,
            root,
            dont_unpack,
        }
    }
}

/// The unpack phase: off with `dontUnpack` (and then empty), else its step's provenance.
pub(super) fn unpack_phase(unpack: &mut Draft, sources: &Sources) {
    switched_off_by(
        unpack,
        "dontUnpack",
        sources.dont_unpack,
        "unpackPhase runs",
    );
    if sources.dont_unpack {
        unpack.clear();
    } else if let Some(from) = unpack.steps.first_mut() {
        from.push(sources.from.to_owned());
        if sources.root.is_some() {
            from.push("sourceRoot".to_owned());
        }
        from.push(default("make the source writable, raise SOURCE_DATE_EPOCH"));
    }
}
