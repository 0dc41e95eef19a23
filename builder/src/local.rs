//! Local mode: a plan's phases run without Nix, each in a fresh sandbox, with the state after
//! each phase cached so that later runs can start at any phase.
//!
//! The plan is resolved with the paths the build sees *inside* the sandbox (the build directory
//! at `/build`, each output at its path), and the sandbox binds the host directories behind
//! them: a fresh build directory, and a staging directory standing in for the outputs' parent.
//! Outputs move to their final place only when every phase succeeded. Each phase is one run of
//! `kiln __run-phases` ([`crate::inner`]) in its own sandbox; its events are relayed to the
//! caller's reporter ([`crate::relay`]), so a build reads as one stream.
//!
//! After each successful phase the build directory and the partial outputs are packed into the
//! [`StateCache`] (a `kiln-state` archive) under a key that hashes the plan up to that phase,
//! the paths it was resolved with and the sandbox's make-up. `--from PHASE` restores the state
//! of the phase before, so a fixed `check` re-runs without rebuilding; changing an earlier
//! phase changes the key and the cached state no longer matches.
//!
//! `--no-sandbox` runs the phases in kiln's own process instead, on host paths, with the same
//! caching.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_sandbox::SandboxConfig;
use kiln_schema::events::{Level, LogEvent};
use kiln_state::{ManifestBase, PackInput, StateError};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::build::{PreparedBuild, RunError};
use crate::executor::{Execution, ExecutorOptions, Resume};
use crate::inner::{
    PhaseFailure, PhaseRequest, PhaseResponse, RunnerReport, INNER_SUBCOMMAND, REQUEST_FILE,
    RESPONSE_FILE,
};
use crate::process::{run_child, ChildOutcome, ChildSpec, RunLimits};
use crate::relay::{relay_line, PhaseEvents, Relayed};
use crate::report::Reporter;
use crate::signal::SignalEvents;

/// Files kiln itself puts into the build directory; never part of a state.
pub const KILN_FILES: &[&str] = &[REQUEST_FILE, RESPONSE_FILE];

/// Where the build directory appears inside the sandbox.
pub const SANDBOX_BUILD_TOP: &str = kiln_sandbox::SANDBOX_BUILD_DIR;

/// The longest event line read from the sandbox.
const RELAY_MAX_LINE: usize = 16 * 1024 * 1024;

/// The largest response file read back from the sandbox.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// Extra time the sandbox gets after kiln's grace period before it is killed: the runner inside
/// stops its own step first and reports how it ended.
const SANDBOX_EXTRA_GRACE: Duration = Duration::from_secs(3);

/// Reporter of a local build: every event, and the phases restored from a cached state instead
/// of being run.
pub trait LocalReporter: Reporter {
    /// `phase` was not run: its result came from a cached state, restored in `seconds`.
    fn phase_restored(&mut self, phase: &str, seconds: f64);
}

/// kiln's termination signals for a whole local command, from before the first directory is
/// created to after the last one is removed: a signal never kills kiln half-way (it would leave
/// staging and build directories behind); it is queued, and the command stops at the next
/// point where it looks ([`Interrupts::pending`], or while a phase runs).
pub struct Interrupts {
    runtime: tokio::runtime::Runtime,
    signals: SignalEvents,
}

impl Interrupts {
    /// Installs the handlers for SIGINT, SIGTERM and SIGHUP.
    pub fn install() -> Result<Interrupts, LocalError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LocalError::Runtime)?;
        let signals = runtime
            .block_on(async { SignalEvents::install() })
            .map_err(LocalError::Runtime)?;
        Ok(Interrupts { runtime, signals })
    }

    /// A signal received since the last look, if any.
    pub fn pending(&mut self) -> Option<nix::sys::signal::Signal> {
        let Interrupts { runtime, signals } = self;
        runtime.block_on(async {
            // Let the forwarding tasks move what the handlers queued.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            signals.pending()
        })
    }

    /// Waits for `child` (an interactive command on kiln's terminal). SIGINT is left to the
    /// command, which shares the terminal; SIGTERM or SIGHUP to kiln kills the child (for a
    /// sandbox: its init, and with it everything inside).
    ///
    /// Returns the command's status and the signal (not SIGINT) that made kiln stop it, if any.
    pub fn wait_interactive(
        &mut self,
        command: std::process::Command,
    ) -> std::io::Result<(std::process::ExitStatus, Option<nix::sys::signal::Signal>)> {
        let Interrupts { runtime, signals } = self;
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            // SIGQUIT too is the terminal's, for the command.
            let _quit = signal(SignalKind::quit())?;
            let mut child = tokio::process::Command::from(command)
                .kill_on_drop(true)
                .spawn()?;
            let mut stopped_by = None;
            loop {
                tokio::select! {
                    status = child.wait() => return Ok((status?, stopped_by)),
                    signal = signals.recv() => {
                        if signal != nix::sys::signal::Signal::SIGINT {
                            stopped_by.get_or_insert(signal);
                            let _ = child.start_kill();
                        }
                    }
                }
            }
        })
    }

    /// The first signal received, which decides the exit code.
    pub fn first(&self) -> Option<nix::sys::signal::Signal> {
        self.signals.first()
    }
}

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

/// Why a local build did not complete.
#[derive(Debug, Error)]
pub enum LocalError {
    /// A phase failed (inside the sandbox or in process).
    #[error("{}", failure.message.first().map(String::as_str).unwrap_or("a phase failed"))]
    Phase {
        /// What failed.
        failure: PhaseFailure,
    },
    /// The sandbox could not run the phase.
    #[error("the sandbox for phase `{phase}` ended without a result ({outcome})")]
    Sandbox {
        /// The phase.
        phase: String,
        /// Whether the sandbox could not be set up (else the runner inside died).
        setup: bool,
        /// How the sandbox ended.
        outcome: String,
    },
    /// The sandbox cannot be set up at all.
    #[error(transparent)]
    SandboxUnavailable(#[from] kiln_sandbox::SandboxError),
    /// Writing the request or reading the response failed.
    #[error("cannot exchange the phase request with the sandbox through `{}`", path.display())]
    Exchange {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A state could not be restored.
    #[error("cannot restore the state `{}`", path.display())]
    Restore {
        /// The state directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: StateError,
    },
    /// A state archive belongs to another plan.
    #[error("the state `{}` was made by a different plan (up to phase `{phase}`)", path.display())]
    PlanMismatch {
        /// The state directory.
        path: PathBuf,
        /// Its last phase.
        phase: String,
    },
    /// The cache holds no usable state to start at a phase.
    #[error("no cached state to start at phase `{phase}`: phase `{previous}` has {why}")]
    NotCached {
        /// Where the build was asked to start.
        phase: String,
        /// The phase whose state is needed.
        previous: String,
        /// `no cached state` or `a cached state of another plan`.
        why: String,
    },
    /// A state could not be cached.
    #[error("cannot cache the state after phase `{phase}` in `{}`", path.display())]
    Cache {
        /// The phase.
        phase: String,
        /// The cache entry.
        path: PathBuf,
        /// Why.
        #[source]
        source: StateError,
    },
    /// A directory could not be set up or an output could not be moved into place.
    #[error("cannot {what} `{}`", path.display())]
    Io {
        /// What kiln was doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    /// A tree could not be handed to the build user (kiln runs as root).
    #[error(transparent)]
    Owner(kiln_sandbox::OwnerError),
}

impl LocalError {
    /// The documented exit code of a failed local build: a failed phase 1 (or `128 + n` when
    /// kiln was stopped by signal `n`), a missing or mismatched state 2, the runner dying during
    /// a phase 1, any other set-up problem 3.
    pub fn exit_code(&self) -> i32 {
        use kiln_schema::exit_codes;
        match self {
            LocalError::Phase { failure } => match failure.signal {
                Some(signal) => exit_codes::for_signal(signal),
                None => exit_codes::BUILD_FAILED,
            },
            LocalError::Restore { .. }
            | LocalError::PlanMismatch { .. }
            | LocalError::NotCached { .. } => exit_codes::INVALID_INPUT,
            // The runner inside died during the phase (killed by a step, out of memory).
            LocalError::Sandbox { setup: false, .. } => exit_codes::BUILD_FAILED,
            _ => exit_codes::SETUP_FAILED,
        }
    }

    /// The failure of a phase, when that is what happened.
    pub fn phase_failure(&self) -> Option<&PhaseFailure> {
        match self {
            LocalError::Phase { failure } => Some(failure),
            _ => None,
        }
    }
}

/// The local cache of phase states: `DIR/PLAN-NAME/PHASE/KEY/{manifest.json,state.tar.zst,
/// key.json}`, up to [`StateCache::KEEP`] states per phase of each plan name (the newest; older
/// ones are evicted when a new one is stored). `KEY` is the hash of what the state depends on
/// ([`LocalBuild::cache_key_parts`]); `key.json` keeps those parts, so a miss can say which one
/// differs from the newest state there is.
#[derive(Debug, Clone)]
pub struct StateCache {
    dir: PathBuf,
}

impl StateCache {
    /// States kept per phase: a build, a `kiln shell` with other directories and a couple of
    /// variants stay side by side.
    pub const KEEP: usize = 4;

    /// The cache of plan `name` under `root`.
    pub fn new(root: &Path, name: &str) -> StateCache {
        StateCache {
            dir: root.join(file_name(name)),
        }
    }

    /// The directory of the plan's states.
    pub fn plan_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The directory of `phase`'s states.
    pub fn phase_dir(&self, phase: &str) -> PathBuf {
        self.dir.join(file_name(phase))
    }

    /// The directory of `phase`'s state made with `key`.
    pub fn entry(&self, phase: &str, key: &str) -> PathBuf {
        self.phase_dir(phase).join(file_name(key))
    }

    /// The cached state of `phase` made with `key` (whose parts are `parts`); otherwise why not,
    /// naming what differs from the newest state of the phase.
    pub fn find(
        &self,
        phase: &str,
        key: &str,
        parts: &serde_json::Value,
    ) -> Result<PathBuf, String> {
        let entry = self.entry(phase, key);
        match kiln_state::read_manifest(&entry) {
            Ok(manifest) if manifest.plan_hash == key && manifest.phase == phase => {
                return Ok(entry)
            }
            Ok(_) | Err(_) => {}
        }
        let newest = self.entries(phase).into_iter().next();
        let Some((newest, _)) = newest else {
            return Err("no cached state".to_owned());
        };
        let theirs: Option<serde_json::Value> = std::fs::read(newest.join(KEY_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let differences = theirs
            .map(|theirs| key_differences(parts, &theirs))
            .unwrap_or_default();
        if differences.is_empty() {
            Err("no cached state made with these settings".to_owned())
        } else {
            Err(format!(
                "no cached state made with these settings; the newest one differs: {}",
                differences.join("; ")
            ))
        }
    }

    /// `phase`'s states, newest first (by their manifest's modification time).
    fn entries(&self, phase: &str) -> Vec<(PathBuf, std::time::SystemTime)> {
        let Ok(read) = std::fs::read_dir(self.phase_dir(phase)) else {
            return Vec::new();
        };
        let mut entries: Vec<(PathBuf, std::time::SystemTime)> = read
            .filter_map(Result::ok)
            .filter(|entry| !entry.file_name().as_encoded_bytes().starts_with(b"."))
            .filter_map(|entry| {
                let path = entry.path();
                let modified = std::fs::metadata(path.join(kiln_state::MANIFEST_FILE))
                    .and_then(|meta| meta.modified())
                    .ok()?;
                Some((path, modified))
            })
            .collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries
    }

    /// Packs the state after `phase` as its entry for `key` (replacing one with the same key),
    /// then evicts the oldest beyond [`StateCache::KEEP`]. A failure leaves the old entries.
    fn store(
        &self,
        phase: &str,
        key: &str,
        parts: &serde_json::Value,
        host: &HostDirs,
        workdir: PathBuf,
        env: BTreeMap<String, String>,
    ) -> Result<(), LocalError> {
        let phase_dir = self.phase_dir(phase);
        let entry = self.entry(phase, key);
        let error = |source| LocalError::Cache {
            phase: phase.to_owned(),
            path: entry.clone(),
            source,
        };
        // A cache of the earlier layout (one state directly in the phase's directory) goes.
        if phase_dir.join(kiln_state::MANIFEST_FILE).exists() {
            let _ = std::fs::remove_dir_all(&phase_dir);
        }
        std::fs::create_dir_all(&phase_dir).map_err(|source| LocalError::Io {
            what: "create the state cache",
            path: phase_dir.clone(),
            source,
        })?;
        let temp = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&phase_dir)
            .map_err(|source| LocalError::Io {
                what: "create a cache entry in",
                path: phase_dir.clone(),
                source,
            })?;
        let existing: BTreeMap<String, PathBuf> = host
            .outputs
            .iter()
            .filter(|(_, path)| std::fs::symlink_metadata(path).is_ok())
            .map(|(name, path)| (name.clone(), path.clone()))
            .collect();
        let mut input = PackInput::new(&host.build_top, &existing);
        input.exclude = KILN_FILES;
        let base = ManifestBase {
            plan_hash: key.to_owned(),
            phase: phase.to_owned(),
            workdir,
            env,
        };
        kiln_state::pack(&input, base, temp.path()).map_err(error)?;
        std::fs::write(temp.path().join(KEY_FILE), parts.to_string()).map_err(|source| {
            LocalError::Io {
                what: "write the cache key into",
                path: temp.path().to_owned(),
                source,
            }
        })?;
        // The old entry moves aside first, so that a concurrent reader sees either whole.
        let old = phase_dir.join(format!(".old-{}", std::process::id()));
        let had_old = std::fs::rename(&entry, &old).is_ok();
        std::fs::rename(temp.path(), &entry).map_err(|source| LocalError::Io {
            what: "store the cache entry",
            path: entry.clone(),
            source,
        })?;
        // The directory was renamed away; nothing is left to delete.
        let _ = temp.keep();
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        for (evicted, _) in self.entries(phase).into_iter().skip(Self::KEEP) {
            if evicted != entry {
                let _ = std::fs::remove_dir_all(evicted);
            }
        }
        Ok(())
    }
}

/// Where the last `kiln build` of a plan put its outputs and build directory, kept next to the
/// plan's cached states (`DIR/PLAN-NAME/last-build.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastBuild {
    /// `--out-dir`, absolute (always UTF-8: kiln refuses others).
    pub out_dir: PathBuf,
    /// `--build-dir`, absolute, when one was given.
    #[serde(default)]
    pub build_dir: Option<PathBuf>,
}

impl LastBuild {
    const FILE: &'static str = "last-build.json";

    /// The record of `cache`'s plan, if there is a readable one.
    pub fn read(cache: &StateCache) -> Option<LastBuild> {
        let bytes = std::fs::read(cache.plan_dir().join(Self::FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records this build (best effort: a `shell` then merely starts without it).
    pub fn write(&self, cache: &StateCache) {
        let dir = cache.plan_dir();
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        if let Ok(text) = serde_json::to_vec(self) {
            let temp = dir.join(format!(".{}.{}", Self::FILE, std::process::id()));
            if std::fs::write(&temp, text).is_ok() {
                let _ = std::fs::rename(&temp, dir.join(Self::FILE));
            }
        }
    }
}

/// The file in a cache entry that keeps the parts of its key.
const KEY_FILE: &str = "key.json";

/// What differs between two cache keys' parts, in words: the output or build directory, an
/// earlier phase, the dependencies, the environment (the variables named), kiln's version, the
/// sandbox.
fn key_differences(ours: &serde_json::Value, theirs: &serde_json::Value) -> Vec<String> {
    let show = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => format!("`{text}`"),
        other => format!("`{other}`"),
    };
    // The keys of two JSON objects whose values differ.
    let differing = |a: &'_ serde_json::Value, b: &'_ serde_json::Value| -> Vec<String> {
        let names: BTreeSet<&String> = a
            .as_object()
            .into_iter()
            .chain(b.as_object())
            .flat_map(|map| map.keys())
            .filter(|name| a[name.as_str()] != b[name.as_str()])
            .collect();
        names.into_iter().cloned().collect()
    };
    let mut out = Vec::new();
    let field = |name: &str| (&ours[name], &theirs[name]);
    let (a, b) = field("outputs");
    for name in differing(a, b) {
        out.push(format!(
            "the output directory of `{name}` differs: {} here, {} there",
            show(&a[name.as_str()]),
            show(&b[name.as_str()])
        ));
    }
    let (a, b) = field("buildTop");
    if a != b {
        out.push(format!(
            "the build directory differs: {} here, {} there",
            show(a),
            show(b)
        ));
    }
    if field("prefix").0 != field("prefix").1 {
        out.push("the plan up to this phase changed (a phase, an input or a source)".to_owned());
    }
    if field("deps").0 != field("deps").1 || field("propagate").0 != field("propagate").1 {
        out.push("the dependencies changed".to_owned());
    }
    let (a, b) = field("baseEnv");
    let names = differing(a, b);
    if !names.is_empty() {
        let shown: Vec<String> = names
            .iter()
            .take(5)
            .map(|name| format!("`{name}`"))
            .collect();
        out.push(format!("the environment differs ({})", shown.join(", ")));
    }
    let (a, b) = field("kiln");
    if a != b {
        out.push(format!(
            "kiln's version differs: {} here, {} there",
            show(a),
            show(b)
        ));
    }
    let (a, b) = field("sandbox");
    if a != b {
        out.push(if a == &serde_json::Value::Bool(true) {
            "that state was made with `--no-sandbox`".to_owned()
        } else {
            "that state was made in the sandbox, this run is `--no-sandbox`".to_owned()
        });
    }
    out
}

/// A name that is one safe path component.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
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
                "kiln: restored the state after phase `{name}` from `{}` in {seconds:.2} s",
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
                            "kiln: cached the state after phase `{}` in {:.2} s",
                            phase.name,
                            started.elapsed().as_secs_f64()
                        ),
                    }),
                    // The build itself is fine; only a later `--from` loses its start.
                    Err(error) => reporter.report(&LogEvent::Message {
                        level: Level::Warn,
                        text: &format!("kiln: {}", error_chain(&error)),
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
        if let Err(error) = crate::reaper::adopt_orphans() {
            reporter.report(&LogEvent::Message {
                level: Level::Warn,
                text: &format!(
                    "kiln: cannot adopt orphaned processes (PR_SET_CHILD_SUBREAPER: {error}); \
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
            crate::build::write_propagation(&self.prepared.plan, outputs, true)?;
        }
        crate::build::check_outputs_exist(outputs, |name, _| {
            self.prepared.paths.outputs[name].clone()
        })
    }

    /// The environment and working directory phase `index` starts with, after `resume`.
    pub fn phase_start(
        &self,
        index: usize,
        resume: Option<&Resume>,
    ) -> (PathBuf, BTreeMap<String, String>) {
        let plan = &self.prepared.plan;
        let mut env = self.prepared.base_env.clone();
        env.extend(plan.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut workdir = self.prepared.paths.build_top.clone();
        if let Some(resume) = resume {
            env.extend(resume.env.clone());
            workdir = resume.workdir.clone();
        }
        if let Some(cwd) = &plan.phases[index].cwd {
            workdir = workdir.join(cwd);
        }
        (workdir, env)
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

/// An error and its causes on one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    crate::inner::causes(error).join(": ")
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
    fn cache_names_are_single_components() {
        assert_eq!(file_name("hello-2.10"), "hello-2.10");
        assert_eq!(file_name("a/b"), "a_b");
        assert_eq!(file_name(".."), "_..");
        assert_eq!(file_name(""), "_");
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
