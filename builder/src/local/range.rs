//! Which phases a local command runs: `--from`, `--until`, `--only` and `--state` turned into a
//! [`PhaseRange`], what `kiln shell` runs first to reach its phase, and the command line that
//! resumes a build where it stopped.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use kiln_schema::events::{Level, LogEvent};

use super::{
    CreatedDirs, Interrupts, LocalBuild, LocalError, LocalReporter, Session, SessionError,
};
use crate::run::executor::Resume;

/// The phases a command runs: indices into the plan's phases, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseRange {
    /// The first phase to run.
    pub start: usize,
    /// The last phase to run.
    pub end: usize,
    /// The build starts by restoring `--state` (it starts right after the state's phase).
    pub restore_state: bool,
    /// The range ends with the plan's last phase: the outputs get installed.
    pub to_the_end: bool,
}

impl Session {
    /// The phases `--from` and `--until` (both given as the phase of `--only`) select, with
    /// `--state`: without `--from` the build starts after the state's phase, and `--from` may
    /// not start before it.
    pub fn phase_range(
        &self,
        from: Option<&str>,
        until: Option<&str>,
    ) -> Result<PhaseRange, SessionError> {
        let phases = &self.prepared.plan.phases;
        let last = phases.len().saturating_sub(1);
        let after_state = match &self.state {
            Some(state) => Some(self.after_state(state)?),
            None => None,
        };
        let start = match (from, &after_state) {
            (Some(name), after) => {
                let start = self.phase_index("--from", name)?;
                if let Some((after, phase)) = after {
                    if start < *after {
                        return Err(SessionError::Request(format!(
                            "`--from {name}`: the state already includes phase `{phase}`; start \
                             at a later phase"
                        )));
                    }
                }
                start
            }
            (None, Some((after, _))) => *after,
            (None, None) => 0,
        };
        let end = match until {
            Some(name) => self.phase_index("--until", name)?,
            None => last,
        };
        if end < start {
            let starts = match from {
                Some(from) => format!("`--from {from}`"),
                None => format!(
                    "where the build starts (phase `{}`, after the state's)",
                    phases.get(start).map_or("?", |p| p.name.as_str())
                ),
            };
            return Err(SessionError::Request(format!(
                "`--until {}` comes before {starts} in the plan",
                until.unwrap_or_default()
            )));
        }
        Ok(PhaseRange {
            start,
            end,
            restore_state: after_state.is_some_and(|(after, _)| after == start),
            to_the_end: end == last,
        })
    }

    /// The index of the phase `--at` names for `shell` and `env`, which must come after the
    /// phase of `--state`.
    pub fn at_index(&self, at: &str) -> Result<usize, SessionError> {
        let index = self.phase_index("--at", at)?;
        if let Some(state) = &self.state {
            let (after, phase) = self.after_state(state)?;
            if index < after {
                return Err(SessionError::Request(format!(
                    "`--at {at}`: the state already includes phase `{phase}`; stand at a later \
                     phase"
                )));
            }
        }
        Ok(index)
    }

    /// Checks, before anything is created, that `range` can start: a build directory that a
    /// state is restored into (from the cache or `--state`) must be empty, and so must the
    /// build directory of a cached build without the sandbox (its states hold it, and a resume
    /// empties it).
    pub fn check_can_start(&self, range: &PhaseRange) -> Result<(), SessionError> {
        if range.restore_state {
            self.check_empty_build_dir()?;
        } else {
            let cached = self
                .build(&CreatedDirs::none())
                .cached_start(range.start)
                .map_err(|error| SessionError::Local {
                    name: self.prepared.plan.name.clone(),
                    error,
                })?;
            if cached.is_some() {
                self.check_empty_build_dir()?;
            }
        }
        if !self.options.sandbox && self.cache.is_some() && range.start == 0 {
            self.check_empty_build_dir()?;
        }
        Ok(())
    }
}

/// How [`resume_command`] treats the range of this command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resuming {
    /// After a failure: the same range, from the failed phase (`--only X` becomes `--until X`).
    Failed,
    /// After `--until`/`--only`: from the next phase to the end.
    Continue,
}

/// The command that resumes at `phase`, from `args` (this command line): `--from` is replaced
/// by `--from PHASE` and `--state` stays. In the sandbox a `--build-dir` is dropped (the state
/// is restored into a fresh one; inside it is `/build` anyway); without the sandbox the build
/// directory (`build_dir`, absolute, one kiln checked was empty when the build started) is part
/// of the state, so the command empties it first.
///
/// The arguments are kept byte for byte (`shell_word`): a plan or a cache directory whose
/// path is not UTF-8 is named exactly, never with U+FFFD in its place.
pub fn resume_command(
    args: &[OsString],
    phase: &str,
    sandbox: bool,
    resuming: Resuming,
    build_dir: Option<&Path>,
) -> String {
    let mut kept: Vec<OsString> = Vec::new();
    let mut iter = args.iter().enumerate();
    while let Some((index, arg)) = iter.next() {
        if index == 0 {
            kept.push(arg.clone());
            continue;
        }
        // Options are UTF-8; any other argument is kept as it is.
        let text = arg.to_str().unwrap_or_default();
        let (option, inline) = match text.split_once('=') {
            Some((option, value)) if option.starts_with("--") => {
                (option, Some(OsString::from(value)))
            }
            _ => (text, None),
        };
        let takes_value = ["--from", "--only", "--until", "--build-dir"].contains(&option);
        if !takes_value {
            kept.push(arg.clone());
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => iter
                .next()
                .map(|(_, value)| value.clone())
                .unwrap_or_default(),
        };
        if let ("--only" | "--until", Resuming::Failed) = (option, resuming) {
            kept.push("--until".into());
            kept.push(value);
        }
    }
    if let (Some(dir), false) = (build_dir, sandbox) {
        kept.push("--build-dir".into());
        kept.push(dir.as_os_str().to_owned());
    }
    kept.push("--from".into());
    kept.push(phase.into());
    let command = kept
        .iter()
        .map(|arg| shell_word(arg))
        .collect::<Vec<_>>()
        .join(" ");
    match (build_dir, sandbox) {
        (Some(dir), false) => format!("rm -rf {} && {command}", shell_word(dir.as_os_str())),
        _ => command,
    }
}

/// One argument as a shell word that gives back its exact bytes: quoted like
/// [`display_argv`](crate::run::executor::display_argv) when it is UTF-8, else in bash's
/// `$'…'` form with `\xHH` escapes (the only way to write such bytes on a terminal).
fn shell_word(arg: &OsStr) -> String {
    if let Some(text) = arg.to_str() {
        return crate::run::executor::display_argv(&[text.to_owned()]);
    }
    let mut word = String::from("$'");
    for &byte in arg.as_bytes() {
        match byte {
            b'\'' | b'\\' => {
                word.push('\\');
                word.push(char::from(byte));
            }
            b' '..=b'~' => word.push(char::from(byte)),
            _ => word.push_str(&format!("\\x{byte:02x}")),
        }
    }
    word.push('\'');
    word
}

/// Restores or builds what phase `at` needs, for `shell`: the nearest cached state before it,
/// then the phases from there.
pub fn reach_phase(
    local: &LocalBuild<'_>,
    session: &Session,
    at: usize,
    sink: &mut dyn LocalReporter,
    interrupts: &mut Interrupts,
) -> Result<Option<Resume>, LocalError> {
    if let Some(state) = &session.state {
        // `shell` checked that `at` comes after the state's phase.
        let (resume, phase) = local.restore_split_state(state)?;
        let start = local.index_of(&phase).map_or(0, |i| i + 1);
        if start >= at {
            return Ok(Some(resume));
        }
        return Ok(Some(
            local
                .run(start, at - 1, Some(resume), sink, interrupts)?
                .resume,
        ));
    }
    for start in (0..=at).rev() {
        let cached = match local.previous_enabled(start) {
            None => true,
            Some(previous) => {
                let name = &local.prepared.plan.phases[previous].name;
                local.cache.as_ref().is_some_and(|cache| {
                    cache
                        .find(name, &local.cache_key(name), &local.cache_key_parts(name))
                        .is_ok()
                })
            }
        };
        if !cached {
            continue;
        }
        let resume = local.restore_cached(start, sink)?;
        stop_if_interrupted(interrupts, &local.prepared.plan.phases[start].name)?;
        if start == at {
            return Ok(resume);
        }
        sink.report(&LogEvent::Message {
            level: Level::Info,
            text: &format!(
                "running phases `{}` to `{}` first",
                local.prepared.plan.phases[start].name,
                local.prepared.plan.phases[at - 1].name
            ),
        });
        return Ok(Some(
            local.run(start, at - 1, resume, sink, interrupts)?.resume,
        ));
    }
    Ok(None)
}

/// Stops before `phase` when kiln received a signal (during a restore, say).
pub fn stop_if_interrupted(interrupts: &mut Interrupts, phase: &str) -> Result<(), LocalError> {
    match interrupts.pending() {
        Some(signal) => Err(LocalError::Phase {
            failure: super::inner::PhaseFailure {
                phase: phase.to_owned(),
                message: vec![format!(
                    "stopped by {} before phase `{phase}`",
                    signal.as_str()
                )],
                hint: None,
                signal: Some(signal as i32),
            },
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_resume_command_starts_at_the_failed_phase() {
        let failed = |line: &str, phase: &str| {
            resume_command(&args(line), phase, true, Resuming::Failed, None)
        };
        assert_eq!(
            failed("kiln build p.json --from configure --lend /usr", "check"),
            "kiln build p.json --lend /usr --from check"
        );
        assert_eq!(
            failed("kiln build p.json --from=configure", "check"),
            "kiln build p.json --from check"
        );
        // --only X keeps its end; --state stays (the outputs live at its placeholders).
        assert_eq!(
            failed(
                "kiln build p.json --state /nix/store/s --only check",
                "check"
            ),
            "kiln build p.json --state /nix/store/s --until check --from check"
        );
        assert_eq!(
            failed("kiln build p.json --until=build", "build"),
            "kiln build p.json --until build --from build"
        );
        // In the sandbox the build directory is fresh.
        assert_eq!(
            resume_command(
                &args("kiln build --build-dir b p.json"),
                "check",
                true,
                Resuming::Failed,
                Some(Path::new("/tmp/b"))
            ),
            "kiln build p.json --from check"
        );
        // Without it, the (absolute) build directory is emptied first.
        assert_eq!(
            resume_command(
                &args("kiln build --no-sandbox --build-dir=b p.json"),
                "check",
                false,
                Resuming::Failed,
                Some(Path::new("/tmp/b"))
            ),
            "rm -rf /tmp/b && kiln build --no-sandbox p.json --build-dir /tmp/b --from check"
        );
    }

    #[test]
    fn after_until_the_command_continues_to_the_end() {
        let continuing = |line: &str, phase: &str| {
            resume_command(&args(line), phase, true, Resuming::Continue, None)
        };
        assert_eq!(
            continuing("kiln build p.json --until build", "check"),
            "kiln build p.json --from check"
        );
        assert_eq!(
            continuing("kiln build p.json --only=build --out-dir o", "check"),
            "kiln build p.json --out-dir o --from check"
        );
    }

    #[test]
    fn the_resume_command_names_non_utf8_paths_exactly() {
        let mut line = args("kiln build --cache-dir");
        line.push(OsString::from_vec(b"/tmp/c\xff'd\\".to_vec()));
        line.push(OsString::from_vec(b"/tmp/p\xfe.json".to_vec()));
        let command = resume_command(&line, "check", true, Resuming::Failed, None);
        assert_eq!(
            command,
            r"kiln build --cache-dir $'/tmp/c\xff\'d\\' $'/tmp/p\xfe.json' --from check"
        );
        // bash reads the words back as the same bytes.
        let echoed = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s\\0' {command}"))
            .output()
            .unwrap();
        assert!(echoed.status.success());
        let words: Vec<&[u8]> = echoed.stdout.split(|&b| b == 0).collect();
        assert_eq!(words[3], line[3].as_bytes());
        assert_eq!(words[4], line[4].as_bytes());
    }
}
