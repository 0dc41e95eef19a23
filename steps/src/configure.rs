//! `configure`: run a `configure` script with stdenv's automatic flags. The script is read to
//! see which flags it understands; the process runs like a `run` step.

use std::path::Path;

use kiln_schema::ConfigureStep;

use crate::{Invocation, ProcessPlan, StepContext, StepError};

/// The process of a `configure` step: its script in the working directory, with its `env`.
pub fn plan(step: &ConfigureStep, ctx: &StepContext<'_>) -> Result<ProcessPlan, StepError> {
    let script = ctx.cwd.join(&step.script);
    let argv = configure_argv(step, &script)?;
    Ok(ProcessPlan::one(Invocation {
        argv,
        cwd: ctx.cwd.to_owned(),
        env: step.env.clone(),
        stdout: None,
    }))
}

/// The argv of a `configure` step, with stdenv's automatic flags in stdenv's order:
/// `--disable-static` and `--disable-dependency-tracking` when the script mentions them, then
/// the prefix flag, then the step's flags.
pub fn configure_argv(step: &ConfigureStep, script: &Path) -> Result<Vec<String>, StepError> {
    if !script.is_file() {
        return Err(StepError::MissingConfigureScript {
            path: script.to_owned(),
        });
    }
    let text = std::fs::read(script).map_err(|source| StepError::ReadConfigureScript {
        path: script.to_owned(),
        source,
    })?;
    let mentions = |needle: &[u8]| text.windows(needle.len()).any(|window| window == needle);
    let mut argv = vec![step.script.clone()];
    if step.disable_static && mentions(b"enable-static") {
        argv.push("--disable-static".to_owned());
    }
    if step.disable_dependency_tracking && mentions(b"dependency-tracking") {
        argv.push("--disable-dependency-tracking".to_owned());
    }
    if let Some(prefix) = &step.prefix {
        argv.push(format!("{}{prefix}", step.prefix_key));
    }
    argv.extend(step.flags.iter().cloned());
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_flags_follow_stdenv() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("configure");
        std::fs::write(&script, "--enable-static --disable-dependency-tracking").unwrap();
        let step: ConfigureStep =
            serde_json::from_str(r#"{"prefix":"/out","flags":["--with-x"]}"#).unwrap();
        assert_eq!(
            configure_argv(&step, &script).unwrap(),
            [
                "./configure",
                "--disable-static",
                "--disable-dependency-tracking",
                "--prefix=/out",
                "--with-x"
            ]
        );
        std::fs::write(&script, "plain").unwrap();
        assert_eq!(
            configure_argv(&step, &script).unwrap(),
            ["./configure", "--prefix=/out", "--with-x"]
        );
    }
}
