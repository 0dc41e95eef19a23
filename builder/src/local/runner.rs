//! Running a range of phases locally: each in a fresh sandbox (or in process with
//! `--no-sandbox`), the state after each packed into the cache, restores from the cache or from a
//! split derivation's state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_sandbox::SandboxConfig;
use kiln_schema::events::{Level, LogEvent};
use sha2::{Digest, Sha256};

use super::{Interrupts, LocalError, LocalReporter, StateCache};
use crate::local::inner::{
    PhaseFailure, PhaseRequest, PhaseResponse, RunnerReport, INNER_SUBCOMMAND, REQUEST_FILE,
    RESPONSE_FILE,
};
use crate::local::relay::{relay_line, PhaseEvents, Relayed};
use crate::run::build::{PreparedBuild, RunError};
use crate::run::executor::{Execution, ExecutorOptions, Resume};
use crate::run::process::{run_child, ChildOutcome, ChildSpec, RunLimits};
use crate::run::signal::SignalEvents;

/// The longest event line read from the sandbox.
const RELAY_MAX_LINE: usize = 16 * 1024 * 1024;

/// The largest response file read back from the sandbox.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// Extra time the sandbox gets after kiln's grace period before it is killed: the runner inside
/// stops its own step first and reports how it ended.
const SANDBOX_EXTRA_GRACE: Duration = Duration::from_secs(3);

/// How a local build runs its phases.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Run each phase in kiln's sandbox (the default); `false` runs on the host.
    pub sandbox: bool,
    /// Host paths lent read-only to the sandbox at the same path.
    pub lend: Vec<PathBuf>,
    /// The binary to re-execute inside the sandbox (kiln itself).
    pub self_exe: PathBuf,
    /// Time between SIGTERM and SIGKILL when a step is stopped.
    pub grace: Duration,
}

/// Where a local build lives on the host.
#[derive(Debug, Clone)]
pub struct HostDirs {
    /// The build directory (bound at `/build` in the sandbox).
    pub build_top: PathBuf,
    /// Output name → where the output is built on the host.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Sandbox only: the host directory bound writable at the outputs' parent inside.
    pub staging: Option<(PathBuf, PathBuf)>,
}

/// One local build of a prepared plan (resolved with the inside paths).
pub struct LocalBuild<'a> {
    /// The plan.
    pub prepared: &'a PreparedBuild,
    /// How to run phases.
    pub options: &'a LocalOptions,
    /// The host side.
    pub host: HostDirs,
    /// The phase state cache, if any.
    pub cache: Option<StateCache>,
    /// The sandbox, worked out once (it asks `nix-store` and reads kiln's ELF header).
    sandbox: std::cell::OnceCell<SandboxConfig>,
}

/// Where a run of phases ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Where the last phase left off.
    pub resume: Resume,
    /// The phases that ran (disabled ones not included).
    pub ran: Vec<String>,
}

impl<'a> LocalBuild<'a> {
    /// A local build of `prepared` on the host directories `host`.
    pub fn new(
        prepared: &'a PreparedBuild,
        options: &'a LocalOptions,
        host: HostDirs,
        cache: Option<StateCache>,
    ) -> LocalBuild<'a> {
        LocalBuild {
            prepared,
            options,
            host,
            cache,
            sandbox: std::cell::OnceCell::new(),
        }
    }

    /// The plan's phase names in order.
    pub fn phase_names(&self) -> Vec<String> {
        self.prepared
            .plan
            .phases
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    /// The index of `phase`.
    pub fn index_of(&self, phase: &str) -> Option<usize> {
        self.prepared
            .plan
            .phases
            .iter()
            .position(|p| p.name == phase)
    }

    /// The cache key of the state after `phase`: the plan up to that phase (inputs, deps and the
    /// environment they give included) and the paths it was resolved with, byte for byte
    /// ([`kiln_state::bytes_path`]). What the sandbox lends is not part of it: lent host
    /// paths are impure by nature, and their contents could not be hashed anyway.
    pub fn cache_key(&self, phase: &str) -> String {
        let digest = Sha256::digest(self.cache_key_parts(phase).to_string());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// What the cached state after `phase` depends on: kiln's version, the plan up to the
    /// phase, the dependencies, the environment steps start from (not the cores), the build
    /// and output directories, and the sandbox. [`LocalBuild::cache_key`] is its hash.
    pub fn cache_key_parts(&self, phase: &str) -> serde_json::Value {
        use kiln_state::bytes_path::to_value;
        let mut base_env = self.prepared.base_env.clone();
        base_env.remove("NIX_BUILD_CORES");
        serde_json::json!({
            "kiln": env!("CARGO_PKG_VERSION"),
            "prefix": crate::split::prefix_hash(&self.prepared.expanded, phase),
            "deps": self.prepared.expanded.deps,
            "propagate": self.prepared.expanded.propagate,
            "baseEnv": base_env,
            "buildTop": to_value(&self.prepared.paths.build_top),
            "outputs": self
                .prepared
                .paths
                .outputs
                .iter()
                .map(|(name, path)| (name.clone(), to_value(path)))
                .collect::<serde_json::Map<_, _>>(),
            "sandbox": self.options.sandbox,
        })
    }

    /// The last enabled phase before `index`, if any.
    pub fn previous_enabled(&self, index: usize) -> Option<usize> {
        (0..index)
            .rev()
            .find(|&i| self.prepared.plan.phases[i].enabled)
    }

    /// The cached state needed to start at phase `index`: `None` for the first enabled phase.
    pub fn cached_start(&self, index: usize) -> Result<Option<(String, PathBuf)>, LocalError> {
        let Some(previous) = self.previous_enabled(index) else {
            return Ok(None);
        };
        let phases = &self.prepared.plan.phases;
        let name = &phases[previous].name;
        let not_cached = |why: &str| LocalError::NotCached {
            phase: phases[index].name.clone(),
            previous: name.clone(),
            why: why.to_owned(),
        };
        let cache = self.cache.as_ref().ok_or_else(|| not_cached("no cache"))?;
        let entry = cache
            .find(name, &self.cache_key(name), &self.cache_key_parts(name))
            .map_err(|why| not_cached(&why))?;
        Ok(Some((name.clone(), entry)))
    }

    /// Restores the cached state needed to start at phase `index` (none for the first enabled
    /// phase). Reports the restored phases.
    pub fn restore_cached(
        &self,
        index: usize,
        reporter: &mut dyn LocalReporter,
    ) -> Result<Option<Resume>, LocalError> {
        let Some((name, entry)) = self.cached_start(index)? else {
            return Ok(None);
        };
        let started = Instant::now();
        let (resume, _, plan_hash) = self.restore_with_hash(&entry)?;
        if plan_hash != self.cache_key(&name) {
            // Replaced by another build between the look and the restore.
            return Err(LocalError::NotCached {
                phase: self.prepared.plan.phases[index].name.clone(),
                previous: name,
                why: "a cached state of another plan (it changed while kiln read it)".to_owned(),
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        for phase in &self.prepared.plan.phases[..index] {
            if phase.enabled {
                reporter.phase_restored(&phase.name, seconds);
            }
        }
        reporter.report(&LogEvent::Message {
            level: Level::Info,
            text: &format!(
                "restored the state after phase `{name}` from `{}` in {seconds:.2} s",
                entry.display()
            ),
        });
        Ok(Some(resume))
    }

    /// Restores a state archive into the (empty) host directories; returns where it left off
    /// and its manifest's phase.
    pub fn restore(&self, dir: &Path) -> Result<(Resume, String), LocalError> {
        let (resume, phase, _) = self.restore_with_hash(dir)?;
        Ok((resume, phase))
    }

    fn restore_with_hash(&self, dir: &Path) -> Result<(Resume, String, String), LocalError> {
        let manifest = kiln_state::restore(dir, &self.host.build_top, &self.host.outputs).map_err(
            |source| LocalError::Restore {
                path: dir.to_owned(),
                source,
            },
        )?;
        let resume = Resume {
            workdir: self.prepared.paths.build_top.join(&manifest.workdir),
            env: manifest.env,
        };
        Ok((resume, manifest.phase, manifest.plan_hash))
    }

    /// Restores a state made by a split derivation (its plan hash is the plan prefix's).
    pub fn restore_split_state(&self, dir: &Path) -> Result<(Resume, String), LocalError> {
        let manifest = kiln_state::read_manifest(dir).map_err(|source| LocalError::Restore {
            path: dir.to_owned(),
            source,
        })?;
        if self.index_of(&manifest.phase).is_none()
            || manifest.plan_hash
                != crate::split::prefix_hash(&self.prepared.expanded, &manifest.phase)
        {
            return Err(LocalError::PlanMismatch {
                path: dir.to_owned(),
                phase: manifest.phase,
            });
        }
        self.restore(dir)
    }

    /// Runs phases `start..=end` (disabled ones are reported as skipped), caching the state after
    /// each phase that has a phase after it.
    pub fn run(
        &self,
        start: usize,
        end: usize,
        resume: Option<Resume>,
        reporter: &mut dyn LocalReporter,
        interrupts: &mut Interrupts,
    ) -> Result<RunOutcome, LocalError> {
        let Interrupts { runtime, signals } = interrupts;
        runtime.block_on(self.run_async(start, end, resume, reporter, signals))
    }

    async fn run_async(
        &self,
        start: usize,
        end: usize,
        resume: Option<Resume>,
        reporter: &mut dyn LocalReporter,
        signals: &mut SignalEvents,
    ) -> Result<RunOutcome, LocalError> {
        if self.options.sandbox {
            self.hand_over_to_build_user()?;
        }
        let phases = &self.prepared.plan.phases;
        let mut resume = resume.unwrap_or_else(|| Resume {
            workdir: self.prepared.paths.build_top.clone(),
            env: BTreeMap::new(),
        });
        let mut ran = Vec::new();
        let last_enabled = phases.iter().rposition(|phase| phase.enabled);
        for index in start..=end.min(phases.len().saturating_sub(1)) {
            let phase = &phases[index];
            if !phase.enabled {
                reporter.report(&LogEvent::PhaseSkipped { phase: &phase.name });
                continue;
            }
            let finish = Some(index) == last_enabled;
            let response = if self.options.sandbox {
                self.run_sandboxed(&phase.name, finish, &resume, reporter, signals)
                    .await?
            } else {
                self.run_in_process(&phase.name, &resume, reporter, signals)
                    .await
            };
            if let Some(failure) = response.failure {
                return Err(LocalError::Phase { failure });
            }
            resume = response.resume;
            ran.push(phase.name.clone());
            let last = index + 1 == phases.len();
            if let (Some(cache), false) = (&self.cache, last) {
                let started = Instant::now();
                let workdir = resume
                    .workdir
                    .strip_prefix(&self.prepared.paths.build_top)
                    .unwrap_or(Path::new(""))
                    .to_owned();
                let key = self.cache_key(&phase.name);
                let parts = self.cache_key_parts(&phase.name);
                match cache.store(
                    &phase.name,
                    &key,
                    &parts,
                    &self.host,
                    workdir,
                    resume.env.clone(),
                ) {
                    Ok(()) => reporter.report(&LogEvent::Message {
                        level: Level::Talkative,
                        text: &format!(
                            "cached the state after phase `{}` in {:.2} s",
                            phase.name,
                            started.elapsed().as_secs_f64()
                        ),
                    }),
                    // The build itself is fine; only a later `--from` loses its start.
                    Err(error) => reporter.report(&LogEvent::Message {
                        level: Level::Warn,
                        text: &kiln_schema::chain::one_line(&error),
                    }),
                }
            }
        }
        Ok(RunOutcome { resume, ran })
    }

    async fn run_in_process(
        &self,
        phase: &str,
        resume: &Resume,
        reporter: &mut dyn LocalReporter,
        signals: &mut SignalEvents,
    ) -> PhaseResponse {
        // No pid namespace ends with the phase: daemons that leave their step's process group
        // (`setsid`, a double fork) must be adopted to be found and killed.
        if let Err(error) = crate::run::reaper::adopt_orphans() {
            reporter.report(&LogEvent::Message {
                level: Level::Warn,
                text: &format!(
                    "cannot adopt orphaned processes (PR_SET_CHILD_SUBREAPER: {error}); \
                     daemons a step starts with `setsid` may outlive the build"
                ),
            });
        }
        let only = [phase.to_owned()].into_iter().collect();
        let execution = Execution {
            plan: &self.prepared.plan,
            base_env: &self.prepared.base_env,
            build_top: &self.prepared.paths.build_top,
            outputs: &self.prepared.paths.outputs,
            cores: self.prepared.paths.cores,
            store_dir: &self.prepared.store_dir,
            options: ExecutorOptions {
                grace: self.options.grace,
            },
            only: Some(&only),
            resume: Some(resume),
        };
        let mut events = PhaseEvents(reporter);
        let (summary, result) = execution.run(&mut events, signals).await;
        PhaseResponse {
            resume: summary.resume,
            failure: result
                .err()
                .map(|error| PhaseFailure::from_run_error(phase, &RunError::Build(error))),
        }
    }

    /// Gives the build directory and the outputs' staging directory (with what a restored state
    /// put there) to the build user, when it is not the caller: kiln runs as root and the build
    /// runs as [`kiln_sandbox::HOST_BUILD_ID`]. Call before the sandbox runs anything.
    pub fn hand_over_to_build_user(&self) -> Result<(), LocalError> {
        let (uid, gid) = kiln_sandbox::build_owner();
        if (uid, gid)
            == (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        {
            return Ok(());
        }
        let staging = self.host.staging.iter().map(|(host, _)| host);
        for tree in std::iter::once(&self.host.build_top).chain(staging) {
            kiln_sandbox::hand_over(tree, uid, gid).map_err(LocalError::Owner)?;
        }
        Ok(())
    }

    /// The sandbox every phase (and the shell) runs in.
    pub fn sandbox_config(&self) -> &SandboxConfig {
        self.sandbox.get_or_init(|| self.make_sandbox_config())
    }

    fn make_sandbox_config(&self) -> SandboxConfig {
        let mut config = SandboxConfig::new(&self.host.build_top);
        config.sandbox_build_dir = self.prepared.paths.build_top.clone();
        let store = Path::new("/nix/store");
        let (staging_host, staging_inside) = self
            .host
            .staging
            .clone()
            .expect("a sandboxed build has a staging directory");
        if staging_inside == store {
            // Outputs at store paths (a state from Nix): the store is writable scratch, with
            // the inputs' closure (and kiln's own, when it lives in the store) bound read-only
            // inside it, as in Nix's own sandbox.
            config.store_paths = store_closure(&self.prepared.plan, &self.options.self_exe);
        } else if store.is_dir() {
            config.store_paths = vec![store.to_owned()];
        }
        config.writable = vec![(staging_host, staging_inside.clone())];
        let mut lend: Vec<PathBuf> = self.options.lend.clone();
        for input in self.prepared.plan.inputs.values() {
            for path in input.paths() {
                let path = PathBuf::from(path);
                if !path.starts_with(store) && path.exists() && !lend.contains(&path) {
                    lend.push(path);
                }
            }
        }
        if !self.options.self_exe.starts_with(store) || staging_inside == store {
            lend.push(self.options.self_exe.clone());
        }
        if is_dynamic(&self.options.self_exe) {
            // A dynamically linked kiln needs the host's loader and libc to start inside.
            for dir in ["/lib", "/lib64"] {
                let dir = PathBuf::from(dir);
                if dir.exists() && !lend.contains(&dir) {
                    lend.push(dir);
                }
            }
        }
        config.lend = lend;
        config
    }

    async fn run_sandboxed(
        &self,
        phase: &str,
        finish: bool,
        resume: &Resume,
        reporter: &mut dyn LocalReporter,
        signals: &mut SignalEvents,
    ) -> Result<PhaseResponse, LocalError> {
        let request = PhaseRequest {
            plan: self.prepared.plan.clone(),
            base_env: self.prepared.base_env.clone(),
            build_top: self.prepared.paths.build_top.clone(),
            outputs: self.prepared.paths.outputs.clone(),
            cores: self.prepared.paths.cores,
            store_dir: self.prepared.store_dir.clone(),
            phases: vec![phase.to_owned()],
            resume: Some(resume.clone()),
            grace_seconds: self.options.grace.as_secs_f64(),
            finish,
        };
        let request_path = self.host.build_top.join(REQUEST_FILE);
        let response_path = self.host.build_top.join(RESPONSE_FILE);
        let exchange = |path: &Path| {
            let path = path.to_owned();
            move |source| LocalError::Exchange { path, source }
        };
        // The build directory is the build's: its steps may have left anything at these names
        // (a symlink to a host file, a FIFO). Never follow or reuse what is there.
        let request_bytes = serde_json::to_vec(&request)
            .map_err(|error| exchange(&request_path)(std::io::Error::other(error)))?;
        write_new_file(&request_path, &request_bytes).map_err(exchange(&request_path))?;
        remove_if_present(&response_path).map_err(exchange(&response_path))?;

        let config = self.sandbox_config();
        let exe = &self.options.self_exe;
        // argv[0] is only a name; the program is `exe` itself, passed as a path.
        let name = exe.to_str().unwrap_or("kiln").to_owned();
        let inner_argv = [
            name.clone(),
            INNER_SUBCOMMAND.to_owned(),
            utf8_argument(&self.prepared.paths.build_top)?,
        ];
        let command =
            kiln_sandbox::sandboxed_command(exe, config, exe, &inner_argv, Path::new("/"))?;
        let mut argv = vec![name];
        for arg in command.get_args() {
            argv.push(utf8_argument(Path::new(arg))?);
        }
        let spec = ChildSpec {
            program: exe.clone(),
            argv,
            env: BTreeMap::new(),
            cwd: PathBuf::from("/"),
            stdout: None,
        };
        let limits = RunLimits {
            deadline: None,
            grace: self.options.grace + SANDBOX_EXTRA_GRACE,
            // An event holds a step's line of up to 64 KiB, escaped: never cut one in two.
            max_line: RELAY_MAX_LINE,
        };
        let mut relay = PhaseEvents(reporter);
        let (mut reported, mut unwritten) = (None, None);
        let mut on_line = |line: &[u8]| match relay_line(line, &mut relay) {
            Relayed::Runner(RunnerReport::PhaseFailed(failure)) => reported = Some(failure),
            Relayed::Runner(RunnerReport::ResponseUnwritten(why)) => unwritten = Some(why),
            Relayed::Event | Relayed::Other => {}
        };
        let outcome = run_child(&spec, limits, signals, &mut on_line)
            .await
            .map_err(|source| LocalError::Io {
                what: "start the sandbox with",
                path: exe.clone(),
                source,
            })?;
        let _ = remove_if_present(&request_path);
        let response = read_regular_file(&response_path, MAX_RESPONSE)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<PhaseResponse>(&bytes).ok());
        let _ = remove_if_present(&response_path);
        // Without a response (a full disk), the failure the runner reported before writing it
        // still says what went wrong, and the response's own problem is added to it. The phase
        // and the signal are the caller's to say: it ran this one phase, and knows whether it
        // stopped the sandbox.
        let response = response.or_else(|| {
            let mut failure = reported?;
            failure.phase = phase.to_owned();
            failure.signal = match outcome {
                ChildOutcome::Interrupted(signal) => Some(signal as i32),
                _ => None,
            };
            failure
                .message
                .extend(unwritten.as_ref().map(|why| why.to_string()));
            Some(PhaseResponse {
                resume: resume.clone(),
                failure: Some(failure),
            })
        });
        if let (None, Some(why), false) = (
            &response,
            &unwritten,
            matches!(outcome, ChildOutcome::Interrupted(_)),
        ) {
            // The phase went well, but where it left off is lost with the response.
            return Err(LocalError::Exchange {
                path: response_path,
                source: why.io_error(),
            });
        }
        match (response, outcome) {
            // The signal came after the runner's last look: the build still stops.
            (Some(response), ChildOutcome::Interrupted(signal)) if response.failure.is_none() => {
                Ok(PhaseResponse {
                    failure: Some(PhaseFailure {
                        phase: phase.to_owned(),
                        message: vec![format!("phase `{phase}`: stopped by {}", signal.as_str())],
                        hint: None,
                        signal: Some(signal as i32),
                    }),
                    ..response
                })
            }
            // kiln stopped the sandbox with SIGTERM; what stopped the build is kiln's signal.
            (Some(mut response), ChildOutcome::Interrupted(signal)) => {
                if let Some(failure) = &mut response.failure {
                    if let Some(received) = failure.signal {
                        if received != signal as i32 {
                            let inner = nix::sys::signal::Signal::try_from(received)
                                .map(|s| s.as_str())
                                .unwrap_or("a signal");
                            for line in &mut failure.message {
                                *line = line.replace(inner, signal.as_str());
                            }
                            failure.signal = Some(signal as i32);
                        }
                    }
                }
                Ok(response)
            }
            (Some(response), _) => Ok(response),
            (None, ChildOutcome::Interrupted(signal)) => Ok(PhaseResponse {
                resume: resume.clone(),
                failure: Some(PhaseFailure {
                    phase: phase.to_owned(),
                    message: vec![format!("phase `{phase}`: stopped by {}", signal.as_str())],
                    hint: None,
                    signal: Some(signal as i32),
                }),
            }),
            (None, outcome) => Err(LocalError::Sandbox {
                phase: phase.to_owned(),
                // The sandbox, or kiln's own binary inside it, could not start.
                setup: [
                    kiln_sandbox::EXIT_SETUP_FAILED,
                    kiln_sandbox::EXIT_NOT_EXECUTABLE,
                    kiln_sandbox::EXIT_NOT_FOUND,
                ]
                .into_iter()
                .any(|code| outcome == ChildOutcome::Exited(code)),
                outcome: match outcome {
                    ChildOutcome::Exited(code) => format!("exit code {code}"),
                    ChildOutcome::Signaled(signal) => format!("killed by signal {signal}"),
                    other => format!("{other:?}"),
                },
            }),
        }
    }

    /// Writes propagated dependencies and checks that every output exists (after the last
    /// phase).
    pub fn check_outputs(&self) -> Result<(), RunError> {
        let outputs = &self.host.outputs;
        // In the sandbox the runner wrote them after the last phase, inside: here, on the host,
        // a symlink the build made could point anywhere.
        if !self.options.sandbox {
            crate::run::build::write_propagation(&self.prepared.plan, outputs, true)?;
        }
        crate::run::build::check_outputs_exist(outputs, |name, _| {
            self.prepared.paths.outputs[name].clone()
        })
    }

    /// The environment and working directory phase `index` starts with, after `resume`.
    pub fn phase_start(
        &self,
        index: usize,
        resume: Option<&Resume>,
    ) -> (PathBuf, BTreeMap<String, String>) {
        self.prepared.phase_start(index, resume)
    }
}

/// `path` as an argument of the sandbox's command line, which kiln's process runner carries as
/// text: a path that is not UTF-8 is refused rather than converted (a converted one would name
/// another file). The command line checks its paths first; this is for the rest (kiln's own
/// location, say).
fn utf8_argument(path: &Path) -> Result<String, LocalError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| LocalError::Io {
            what: "pass to the sandbox the path",
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it is not valid UTF-8, and kiln passes paths to the sandbox as text; use a \
                 UTF-8 path",
            ),
        })
}

/// Creates `path` anew with `bytes`: whatever was there (a symlink included) is removed first,
/// and the file is created with `O_EXCL | O_NOFOLLOW`, so nothing is followed.
fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    remove_if_present(path)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    file.write_all(bytes)
}

/// Removes a file or symlink (never what it points at); a directory in its place is an error.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Reads a regular file without following a symlink, refusing more than `max` bytes.
fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other("too large"));
    }
    Ok(bytes)
}

/// The inputs' store paths and, when `nix-store` can tell, their closure.
fn store_closure(plan: &kiln_schema::Plan, self_exe: &Path) -> Vec<PathBuf> {
    let store = Path::new("/nix/store");
    let mut paths: Vec<PathBuf> = plan
        .inputs
        .values()
        .flat_map(|input| input.paths())
        .map(PathBuf::from)
        .chain([self_exe.to_owned()])
        .filter(|path| path.starts_with(store))
        .filter_map(|path| {
            // The top-level store path of anything inside one.
            let relative = path.strip_prefix(store).ok()?;
            Some(store.join(relative.components().next()?))
        })
        .collect();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return paths;
    }
    let closure = std::process::Command::new("nix-store")
        .arg("--query")
        .arg("--requisites")
        .args(&paths)
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(output) = closure {
        if output.status.success() {
            let mut all: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(PathBuf::from)
                .collect();
            all.extend(paths);
            all.sort();
            all.dedup();
            return all;
        }
    }
    paths
}

/// Whether `exe` is a dynamically linked ELF file (it has an interpreter). Reads only the
/// start of the file, where the program headers are.
fn is_dynamic(exe: &Path) -> bool {
    use goblin::elf::program_header::{ProgramHeader, PT_INTERP};
    use std::io::Read;
    let mut start = Vec::with_capacity(64 * 1024);
    let read =
        std::fs::File::open(exe).and_then(|file| file.take(64 * 1024).read_to_end(&mut start));
    if read.is_err() {
        return false;
    }
    let Ok(header) = goblin::elf::Elf::parse_header(&start) else {
        return false;
    };
    let (Ok(container), Ok(endianness)) = (header.container(), header.endianness()) else {
        return false;
    };
    let ctx = goblin::container::Ctx::new(container, endianness);
    ProgramHeader::parse(
        &start,
        header.e_phoff as usize,
        header.e_phnum as usize,
        ctx,
    )
    .map(|headers| headers.iter().any(|h| h.p_type == PT_INTERP))
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_files_are_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // A symlink at the name: replaced, the target untouched.
        let request = dir.path().join("request");
        std::os::unix::fs::symlink(&victim, &request).unwrap();
        write_new_file(&request, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read(&request).unwrap(), b"{}");
        assert!(!std::fs::symlink_metadata(&request).unwrap().is_symlink());
        // A FIFO: replaced without blocking.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        write_new_file(&fifo, b"x").unwrap();
        assert_eq!(std::fs::read(&fifo).unwrap(), b"x");
        // A directory is an error, not something to delete.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(write_new_file(&sub, b"x").is_err());
        assert!(sub.is_dir());
    }

    #[test]
    fn responses_are_read_only_from_bounded_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "{}").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(read_regular_file(&link, 100).is_err());
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert!(
            read_regular_file(&fifo, 100).is_err(),
            "a FIFO must neither block nor pass"
        );
        assert!(read_regular_file(dir.path(), 100).is_err());
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 101]).unwrap();
        assert!(read_regular_file(&big, 100).is_err());
        assert_eq!(read_regular_file(&victim, 100).unwrap(), b"{}");
    }

    #[test]
    fn the_test_binary_is_dynamic_and_a_script_is_not() {
        assert!(is_dynamic(&std::env::current_exe().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert!(!is_dynamic(&script));
    }
}
