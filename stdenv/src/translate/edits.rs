//! Typed additions to a stdenv-style derivation: `kilnEdits`, a plan's `edits` applied to
//! the translated phases, with provenance `kilnEdits[i]` and errors pointing into the attribute.

use super::*;

impl<'r, 'a> Translator<'r, 'a> {
    /// `kilnEdits`: the plan's `edits` (insert a phase of typed steps before or after a phase,
    /// replace or delete one), applied to the translated phases. An inserted or replacing phase
    /// gets the provenance `kilnEdits[i]`; errors point into `kilnEdits`.
    pub(super) fn apply_kiln_edits(&mut self, phases: Vec<Phase>) -> Vec<Phase> {
        let Some(value) = self.r.raw("kilnEdits") else {
            return phases;
        };
        let at = JsonPath::root().key("kilnEdits");
        let edits: Vec<kiln_schema::Edit> = match kiln_schema::parse::from_value(value.clone(), &at)
        {
            Ok(edits) => edits,
            Err(error) => {
                self.r.error(
                    error.path.clone(),
                    TranslateErrorKind::InvalidPlan {
                        message: error.kind.to_string(),
                        generated: error.path.to_string(),
                    },
                );
                return phases;
            }
        };
        if edits.is_empty() {
            return phases;
        }
        let scratch = Plan {
            version: PLAN_VERSION,
            name: "kiln-edits".to_owned(),
            outputs: None,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            deps: Deps::default(),
            propagate: Propagate::default(),
            preset: None,
            edits: edits.clone(),
            phases: phases.clone(),
        };
        let expanded = match kiln_schema::preset::expand(&scratch, &[]) {
            Ok(expanded) => expanded,
            Err(errors) => {
                for error in errors.0 {
                    // `edits[i]…` of the scratch plan is `kilnEdits[i]…` of the attributes.
                    use kiln_schema::path::Segment;
                    let generated = error.path.to_string();
                    let path = match error.path.segments() {
                        [Segment::Key(edits), rest @ ..] if edits == "edits" => {
                            rest.iter().fold(at.clone(), |path, segment| match segment {
                                Segment::Key(key) => path.key(key.clone()),
                                Segment::Index(index) => path.index(*index),
                            })
                        }
                        _ => at.clone(),
                    };
                    self.r.error(
                        path,
                        TranslateErrorKind::InvalidPlan {
                            message: error.kind.to_string(),
                            generated,
                        },
                    );
                }
                return phases;
            }
        };
        // Which edit made each new phase: the last edit inserting (or replacing with) its name.
        let made_by = |name: &str| -> Option<usize> {
            edits.iter().rposition(|edit| match edit {
                kiln_schema::Edit::Before(insert) | kiln_schema::Edit::After(insert) => {
                    insert.insert.name == name
                }
                kiln_schema::Edit::Replace(replace) => replace.with.name == name,
                kiln_schema::Edit::Delete(_) => false,
            })
        };
        let old: Vec<PhaseProvenance> = std::mem::take(&mut self.report.provenance);
        let mut out = Vec::new();
        for mut phase in expanded.phases {
            let provenance = match made_by(&phase.name) {
                Some(index) => {
                    let origin = format!("kilnEdits[{index}]");
                    phase.origin = Some(origin.clone());
                    PhaseProvenance {
                        phase: phase.name.clone(),
                        stdenv: origin.clone(),
                        enabled: phase.enabled,
                        switch: vec![origin.clone()],
                        steps: phase.steps.iter().map(|_| vec![origin.clone()]).collect(),
                    }
                }
                None => old
                    .iter()
                    .find(|provenance| provenance.phase == phase.name)
                    .cloned()
                    .expect("a phase the edits did not make was translated"),
            };
            self.report.provenance.push(provenance);
            out.push(phase);
        }
        out
    }
}
