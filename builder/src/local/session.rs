//! A local command's session: what it was asked (a [`SessionRequest`]) turned into a prepared
//! plan resolved with the paths the build sees, and, once the plan is known to be valid, the
//! host directories behind them ([`CreatedDirs`]). `kiln build`, `kiln shell` and `kiln env`
//! all start here; nothing is created before the plan and every path are checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_schema::events::{Level, LogEvent};

use super::dirs::{common_parent, CreatedDirs};
use super::{
    HostDirs, LastBuild, LocalBuild, LocalError, LocalOptions, LocalReporter, SessionError,
    StateCache, SANDBOX_BUILD_TOP,
};
use crate::run::build::{prepare, PreparedBuild, SetupError};
use crate::run::executor::Resume;
use crate::setup::env::BuildPaths;
use crate::setup::load::LoadedPlan;

/// The output directory when the command names none and no build is remembered.
pub const DEFAULT_OUT_DIR: &str = "kiln-out";

/// Which directories a command uses when the command line names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directories {
    /// `kiln-out` and a temporary build directory (`build`).
    Default,
    /// The last `kiln build`'s of the plan (`shell`, `env`), so its cached states match.
    LastBuild,
}

/// What a local command asks for, from its command line.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// `--out-dir`: receives one subdirectory per output.
    pub out_dir: Option<PathBuf>,
    /// `--build-dir`.
    pub build_dir: Option<PathBuf>,
    /// Cores for the build (`${build.cores}`).
    pub cores: u32,
    /// Run each phase in kiln's sandbox (`false`: `--no-sandbox`).
    pub sandbox: bool,
    /// Host paths lent read-only to the sandbox.
    pub lend: Vec<PathBuf>,
    /// `--cache-dir`; `None`: the default ([`default_cache_root`]).
    pub cache_dir: Option<PathBuf>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--state`: a split derivation's state to start from.
    pub state: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL when a step is stopped.
    pub grace: Duration,
    /// The directories to use when none are named.
    pub directories: Directories,
}

/// A local build's plan and paths, before anything is created.
pub struct Session {
    /// The plan as loaded (prepared again once a host build directory exists, without the
    /// sandbox).
    pub loaded: LoadedPlan,
    /// The plan, resolved with inside paths.
    pub prepared: PreparedBuild,
    /// How phases run.
    pub options: LocalOptions,
    /// The phase cache.
    pub cache: Option<StateCache>,
    /// Where outputs go at the end: name → `out_dir/NAME`.
    pub final_outputs: BTreeMap<String, PathBuf>,
    /// The output directory.
    pub out_dir: PathBuf,
    /// `--build-dir`, if given.
    pub build_dir: Option<PathBuf>,
    /// `--state`, if given.
    pub state: Option<PathBuf>,
}

/// `path`, given with `option`, made absolute and checked to be UTF-8: the directories a local
/// build creates or lends end up as text (`why`), in the plan (`${outputs.out}`) or on the
/// sandbox's command line, and a path converted to text lossily names another directory. So
/// such a path is refused before anything is created. A relative path needs the current
/// directory, which may be anything: absolute paths work from any directory.
fn text_path(option: &str, path: &Path, why: &str) -> Result<PathBuf, SessionError> {
    let absolute = std::path::absolute(path).map_err(|error| {
        SessionError::Request(format!(
            "`{option}`: cannot make `{}` absolute: {error}; give an absolute path",
            path.display()
        ))
    })?;
    if absolute.to_str().is_some() {
        return Ok(absolute);
    }
    let shown = if path.is_absolute() {
        format!("`{}`", path.display())
    } else {
        format!("`{}` (that is `{}`)", path.display(), absolute.display())
    };
    Err(SessionError::Request(format!(
        "`{option}`: {shown} is not valid UTF-8, and {why}"
    )))
}

/// `path` made absolute against the current directory (as it is when that fails).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The default cache root: $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln/states, ~/.cache/kiln/states.
pub fn default_cache_root() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = var("KILN_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("kiln/states"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache/kiln/states"))
}

impl Session {
    /// Loads and prepares the plan; validates it before anything is created.
    pub fn new(mut loaded: LoadedPlan, request: SessionRequest) -> Result<Session, SessionError> {
        let SessionRequest {
            out_dir,
            build_dir,
            cores,
            sandbox,
            lend,
            cache_dir,
            no_cache,
            state,
            grace,
            directories,
        } = request;
        let cache_root = cache_dir
            .as_deref()
            .map(absolute)
            .or_else(default_cache_root);
        // `shell` and `env` stand where the last build stood, so its cached states match.
        let remembered = match (directories, &cache_root, no_cache) {
            (Directories::LastBuild, Some(root), false) => {
                LastBuild::read(&StateCache::new(root, &loaded.plan.name))
            }
            _ => None,
        };
        let remembered_out = remembered.as_ref().map(|last| last.out_dir.clone());
        let out_dir_given = out_dir.is_some();
        let out_dir_arg = out_dir
            .or(remembered_out)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT_DIR));
        let build_dir_arg = build_dir.or_else(|| {
            remembered
                .as_ref()
                .filter(|_| !out_dir_given)
                .and_then(|last| last.build_dir.clone())
        });
        let out_dir = text_path(
            "--out-dir",
            &out_dir_arg,
            "output paths are substituted into the plan (`${outputs.out}`) as text; choose an \
             output directory whose path is UTF-8",
        )?;
        let names: Vec<String> = match &loaded.outputs {
            Some(outputs) => outputs.keys().cloned().collect(),
            None => kiln_schema::declared_outputs(&loaded.plan),
        };
        let final_outputs: BTreeMap<String, PathBuf> = names
            .iter()
            .map(|name| (name.clone(), out_dir.join(name)))
            .collect();
        let state = state.as_deref().map(absolute);
        let inside_outputs = match &state {
            Some(state) => {
                if !sandbox {
                    return Err(SessionError::Request(
                        "`--state` needs the sandbox: its outputs live at store paths".to_owned(),
                    ));
                }
                state_outputs(&loaded, state, &names)?
            }
            None => final_outputs.clone(),
        };
        // The build directory is substituted into the plan (without the sandbox) or passed to
        // the sandbox as text.
        let build_dir = match &build_dir_arg {
            Some(dir) => Some(text_path(
                "--build-dir",
                dir,
                "kiln uses the build directory as text (in the plan, or for the sandbox); \
                 choose one whose path is UTF-8",
            )?),
            None => {
                text_path(
                    "TMPDIR",
                    &std::env::temp_dir(),
                    "the build directory is made in it and used as text; set `TMPDIR` to a \
                     UTF-8 directory, or give `--build-dir`",
                )?;
                None
            }
        };
        let build_top = if sandbox {
            PathBuf::from(SANDBOX_BUILD_TOP)
        } else {
            build_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("kiln-build"))
        };
        if loaded.outputs.is_some() {
            loaded.outputs = Some(inside_outputs.clone());
        }
        let paths = BuildPaths {
            build_top,
            outputs: inside_outputs,
            cores,
        };
        let prepared = prepare(&loaded, paths, &BTreeMap::new()).map_err(SessionError::Load)?;
        let self_exe = std::env::current_exe().map_err(|source| SessionError::Io {
            what: "find kiln's own binary at",
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?;
        if sandbox && self_exe.to_str().is_none() {
            // Checked here, before anything is created, rather than when the first phase
            // starts.
            return Err(SessionError::Io {
                what: "run kiln's sandbox from",
                path: self_exe,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "kiln's own path is not valid UTF-8, and kiln passes it to its sandbox as \
                     text; put the kiln binary at a UTF-8 path",
                ),
            });
        }
        let lend: Vec<PathBuf> = if sandbox {
            let lend_path = |path: &PathBuf| {
                text_path(
                    "--lend",
                    path,
                    "kiln passes lent paths to the sandbox as text; lend UTF-8 paths only \
                     (with `--lend` or `KILN_LEND`)",
                )
            };
            lend.iter().map(lend_path).collect::<Result<_, _>>()?
        } else {
            lend.iter().map(|path| absolute(path)).collect()
        };
        if let (true, Some(missing)) = (sandbox, lend.iter().find(|path| !path.exists())) {
            return Err(SessionError::Request(format!(
                "`--lend {}`: no such path on this machine (lent paths come from --lend and \
                 KILN_LEND)",
                missing.display()
            )));
        }
        if sandbox {
            check_inputs_are_lent(&prepared.plan, &lend)?;
        }
        // Without the sandbox a state holds host paths of its build directory: only a build
        // directory that stays the same (`--build-dir`) can be cached and resumed.
        let cacheable = sandbox || build_dir.is_some();
        let cache = if no_cache || !cacheable {
            None
        } else {
            cache_root.map(|root| StateCache::new(&root, &prepared.plan.name))
        };
        Ok(Session {
            loaded,
            options: LocalOptions {
                sandbox,
                lend,
                self_exe,
                grace,
            },
            prepared,
            cache,
            final_outputs,
            out_dir,
            build_dir,
            state,
        })
    }

    /// For `--state`: the index of the phase after the state's, and the state's phase. Refuses a
    /// state of another plan before anything is created.
    pub fn after_state(&self, state: &Path) -> Result<(usize, String), SessionError> {
        let manifest = kiln_state::read_manifest(state).map_err(SessionError::State)?;
        let index = self
            .prepared
            .plan
            .phases
            .iter()
            .position(|phase| phase.name == manifest.phase);
        let hash = crate::split::prefix_hash(&self.prepared.expanded, &manifest.phase);
        match index {
            Some(index) if hash == manifest.plan_hash => Ok((index + 1, manifest.phase)),
            _ => Err(SessionError::Local {
                name: self.prepared.plan.name.clone(),
                error: LocalError::PlanMismatch {
                    path: state.to_owned(),
                    phase: manifest.phase,
                },
            }),
        }
    }

    /// The index of a phase named on the command line.
    pub fn phase_index(&self, option: &str, name: &str) -> Result<usize, SessionError> {
        self.prepared
            .plan
            .phases
            .iter()
            .position(|phase| phase.name == name)
            .ok_or_else(|| SessionError::UnknownPhase {
                option: option.to_owned(),
                name: name.to_owned(),
                existing: self
                    .prepared
                    .plan
                    .phases
                    .iter()
                    .map(|p| p.name.clone())
                    .collect(),
            })
    }

    /// Creates the build directory and, in the sandbox, the staging directory for the outputs.
    /// Refuses outputs that exist already.
    pub fn create_dirs(&mut self) -> Result<CreatedDirs, SessionError> {
        let setup = |path: &Path| {
            let path = path.to_owned();
            move |source| SessionError::Setup(SetupError::CreateDir { path, source })
        };
        for (name, path) in &self.final_outputs {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(SessionError::Setup(SetupError::OutputExists {
                    name: name.clone(),
                    path: path.clone(),
                }));
            }
        }
        std::fs::create_dir_all(&self.out_dir).map_err(setup(&self.out_dir))?;
        let (build_top, temporary) = match &self.build_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(setup(dir))?;
                // Like a temporary one: only its owner may look inside, since a failed build
                // keeps it, with whatever the build left there.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(setup(dir))?;
                (dir.clone(), false)
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix(&format!("kiln-build-{}-", self.prepared.plan.name))
                    .tempdir()
                    .map_err(setup(&std::env::temp_dir()))?;
                (dir.keep(), true)
            }
        };
        if !self.options.sandbox && self.prepared.paths.build_top != build_top {
            // Without the sandbox the steps see the host's build directory itself.
            let mut paths = self.prepared.paths.clone();
            paths.build_top = build_top.clone();
            self.prepared =
                prepare(&self.loaded, paths, &BTreeMap::new()).map_err(SessionError::Load)?;
        }
        let (outputs, staging) = if self.options.sandbox {
            let staging = tempfile::Builder::new()
                .prefix(".kiln-staging-")
                .tempdir_in(&self.out_dir)
                .map_err(setup(&self.out_dir))?
                .keep();
            let inside_parent =
                common_parent(&self.prepared.paths.outputs).unwrap_or_else(|| self.out_dir.clone());
            let outputs = self
                .prepared
                .paths
                .outputs
                .iter()
                .map(|(name, inside)| {
                    let base = inside.file_name().map(PathBuf::from).unwrap_or_default();
                    (name.clone(), staging.join(base))
                })
                .collect();
            (outputs, Some((staging, inside_parent)))
        } else {
            (self.prepared.paths.outputs.clone(), None)
        };
        Ok(CreatedDirs {
            host: HostDirs {
                build_top,
                outputs,
                staging,
            },
            temporary,
        })
    }

    /// The local build over `dirs`.
    pub fn build<'a>(&'a self, dirs: &CreatedDirs) -> LocalBuild<'a> {
        LocalBuild::new(
            &self.prepared,
            &self.options,
            dirs.host.clone(),
            self.cache.clone(),
        )
    }

    /// Says loudly that there is no sandbox, or checks that sandboxes work here.
    pub fn check_isolation(&self, reporter: &mut dyn LocalReporter) -> Result<(), SessionError> {
        if self.options.sandbox {
            return kiln_sandbox::probe(&self.options.self_exe).map_err(SessionError::Sandbox);
        }
        reporter.report(&LogEvent::Message {
            level: Level::Warn,
            text: "--no-sandbox: the steps run on this machine as you, with your files, \
                   your processes and the network in reach; the result may depend on them",
        });
        Ok(())
    }
}

/// Refuses a plan input outside the store that the caller did not lend.
///
/// The sandbox shows each input at its path, so an input is a way into the host: a plan someone
/// else wrote could name `/etc/shadow` or `~/.ssh` and copy it into an output. Outside
/// `/nix/store` an input must lie under a path lent with `--lend`/`KILN_LEND`; both sides are
/// compared with symlinks resolved, as the sandbox's bind mount follows them. Inputs that do not
/// exist are not lent at all and pass.
fn check_inputs_are_lent(plan: &kiln_schema::Plan, lend: &[PathBuf]) -> Result<(), SessionError> {
    let store = Path::new("/nix/store");
    let lent: Vec<PathBuf> = lend
        .iter()
        .filter_map(|path| std::fs::canonicalize(path).ok())
        .collect();
    for (name, input) in &plan.inputs {
        for (index, path) in input.paths().iter().enumerate() {
            let path = Path::new(path);
            let Ok(real) = std::fs::canonicalize(path) else {
                continue;
            };
            if real.starts_with(store) || lent.iter().any(|dir| real.starts_with(dir)) {
                continue;
            }
            let where_ = match input {
                kiln_schema::Input::List(_) => format!("inputs.{name}[{index}]"),
                kiln_schema::Input::Path(_) => format!("inputs.{name}"),
            };
            let shown = if real == path {
                format!("`{}`", path.display())
            } else {
                format!("`{}` (really `{}`)", path.display(), real.display())
            };
            return Err(SessionError::Request(format!(
                "{where_}: {shown} is outside /nix/store and not lent to the sandbox; a plan \
                 cannot lend host paths by itself. If you trust the plan with it, lend it: \
                 `--lend {}` (repeat `--lend` for every path, since it replaces KILN_LEND), \
                 or add it to KILN_LEND (`:`-separated)",
                real.display()
            )));
        }
    }
    Ok(())
}

/// Output name → placeholder path of a state made by a split derivation.
fn state_outputs(
    loaded: &LoadedPlan,
    state: &Path,
    names: &[String],
) -> Result<BTreeMap<String, PathBuf>, SessionError> {
    let manifest = kiln_state::read_manifest(state).map_err(SessionError::State)?;
    let mut outputs: BTreeMap<String, PathBuf> = match &loaded.split {
        Some(part) => part
            .placeholders
            .iter()
            .map(|(name, path)| (name.clone(), PathBuf::from(path)))
            .collect(),
        None => BTreeMap::new(),
    };
    for (name, path) in &manifest.outputs {
        outputs.insert(name.clone(), PathBuf::from(path));
    }
    if let Some(missing) = names.iter().find(|name| !outputs.contains_key(*name)) {
        return Err(SessionError::Request(format!(
            "the state `{}` does not say where output `{missing}` is built; load the plan with \
             `--attrs` from the split derivation that follows it (its `kilnSplit` names every \
             placeholder)",
            state.display()
        )));
    }
    outputs.retain(|name, _| names.contains(name));
    if common_parent(&outputs).is_none() {
        return Err(SessionError::Request(format!(
            "the outputs of the state `{}` are not in one directory",
            state.display()
        )));
    }
    Ok(outputs)
}

impl Session {
    /// Refuses a non-empty `--build-dir` when a state is to be restored into it.
    pub fn check_empty_build_dir(&self) -> Result<(), SessionError> {
        let Some(dir) = &self.build_dir else {
            return Ok(());
        };
        let occupied = std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false);
        if occupied {
            return Err(SessionError::Request(format!(
                "the build directory `{}` is not empty, and a state can only be restored into an \
             empty one: remove it, or choose another `--build-dir`",
                dir.display()
            )));
        }
        Ok(())
    }
}

/// Where the environment of [`Session::environment_at`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentSource {
    /// The phase is the first enabled one: the start of the build.
    BuildStart,
    /// The state given with `--state`.
    GivenState,
    /// The cached state of the phase before.
    CachedState,
    /// The phase before (named) has no cached state: variables earlier phases set and the
    /// working directory are as at the start of the build.
    NoState {
        /// The phase whose state is missing.
        before: String,
    },
}

impl EnvironmentSource {
    /// Words for the source, as `kiln env` prints them (`from the cached state`).
    pub fn describe(&self) -> &'static str {
        match self {
            EnvironmentSource::BuildStart | EnvironmentSource::NoState { .. } => {
                "the start of the build"
            }
            EnvironmentSource::GivenState => "the state given with --state",
            EnvironmentSource::CachedState => "the cached state",
        }
    }
}

/// The working directory and environment a phase starts with.
#[derive(Debug, Clone)]
pub struct PhaseEnvironment {
    /// The working directory (an inside path in the sandbox).
    pub cwd: PathBuf,
    /// Every variable.
    pub env: BTreeMap<String, String>,
    /// Where it comes from.
    pub source: EnvironmentSource,
}

impl Session {
    /// The environment phase `at` starts with, from the state before it (`--state` or the
    /// cache), without running or creating anything (`kiln env`).
    pub fn environment_at(&self, at: usize) -> Result<PhaseEnvironment, SessionError> {
        let dirs = CreatedDirs::none();
        let local = self.build(&dirs);
        let mut resume = None;
        let mut source = EnvironmentSource::BuildStart;
        if let Some(previous) = local.previous_enabled(at) {
            let name = &self.prepared.plan.phases[previous].name;
            let from_state = match &self.state {
                // The state is where `at` starts when no enabled phase lies between them.
                Some(state) => {
                    let (_, phase) = self.after_state(state)?;
                    (*name == phase).then(|| state.clone())
                }
                None => None,
            };
            let from_state_used = from_state.is_some();
            let found = from_state.or_else(|| {
                self.cache.as_ref().and_then(|cache| {
                    cache
                        .find(name, &local.cache_key(name), &local.cache_key_parts(name))
                        .ok()
                })
            });
            match found.map(|entry| kiln_state::read_manifest(&entry)) {
                Some(Ok(manifest)) => {
                    source = if from_state_used {
                        EnvironmentSource::GivenState
                    } else {
                        EnvironmentSource::CachedState
                    };
                    resume = Some(Resume {
                        workdir: self.prepared.paths.build_top.join(&manifest.workdir),
                        env: manifest.env,
                    });
                }
                Some(Err(error)) => return Err(SessionError::State(error)),
                None => {
                    source = EnvironmentSource::NoState {
                        before: name.clone(),
                    }
                }
            }
        }
        let (cwd, env) = local.phase_start(at, resume.as_ref());
        Ok(PhaseEnvironment { cwd, env, source })
    }
}
