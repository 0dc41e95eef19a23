//! The local-mode commands: `kiln build`, `kiln shell` and `kiln env` outside Nix.
//!
//! A [`Session`] turns the command line into a prepared plan (resolved with the paths the build
//! sees inside the sandbox) and, once the plan is known to be valid, the host directories
//! behind them. The commands then pick where to start (a cached state, a state from Nix, or the
//! beginning) and run phases through `kiln_builder::local`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_builder::build::{prepare, PreparedBuild, SetupError};
use kiln_builder::env::{find_program, BuildPaths};
use kiln_builder::executor::Resume;
use kiln_builder::load::LoadedPlan;
use kiln_builder::local::{
    HostDirs, Interrupts, LastBuild, LocalBuild, LocalError, LocalOptions, LocalReporter,
    StateCache, SANDBOX_BUILD_TOP,
};
use kiln_builder::report::Reporter;
use kiln_schema::events::{Level, LogEvent};

use crate::cli::{BuildArgs, EnvArgs, EnvFormat, LayoutArgs, LocalArgs, ShellArgs};
use crate::error::CliError;
use crate::report::Sink;
use crate::{absolute, available_cores, load, print_stdout};

/// A local build's plan and paths, before anything is created.
pub struct Session {
    /// The plan as loaded (prepared again once a host build directory exists, without the
    /// sandbox).
    loaded: LoadedPlan,
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
fn text_path(option: &str, path: &Path, why: &str) -> Result<PathBuf, CliError> {
    let absolute = std::path::absolute(path).map_err(|error| {
        CliError::Usage(format!(
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
    Err(CliError::Usage(format!(
        "`{option}`: {shown} is not valid UTF-8, and {why}"
    )))
}

/// The default cache root: $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln/states, ~/.cache/kiln/states.
fn default_cache_root() -> Option<PathBuf> {
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
    pub fn new(
        source: &crate::cli::PlanSource,
        layout: &LayoutArgs,
        local: &LocalArgs,
        grace: Duration,
        directories: Directories,
    ) -> Result<Session, CliError> {
        let mut loaded = load(source)?;
        let cache_root = local
            .cache_dir
            .as_deref()
            .map(absolute)
            .or_else(default_cache_root);
        // `shell` and `env` stand where the last build stood, so its cached states match.
        let remembered = match (directories, &cache_root, local.no_cache) {
            (Directories::LastBuild, Some(root), false) => {
                LastBuild::read(&StateCache::new(root, &loaded.plan.name))
            }
            _ => None,
        };
        let remembered_out = remembered.as_ref().map(|last| last.out_dir.clone());
        let out_dir_arg = layout
            .out_dir
            .clone()
            .or(remembered_out)
            .unwrap_or_else(|| layout.out_dir_or_default());
        let build_dir_arg = layout.build_dir.clone().or_else(|| {
            remembered
                .as_ref()
                .filter(|_| layout.out_dir.is_none())
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
        let sandbox = !local.no_sandbox;
        let state = local.state.as_deref().map(absolute);
        let inside_outputs = match &state {
            Some(state) => {
                if !sandbox {
                    return Err(CliError::Usage(
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
            cores: layout.cores.unwrap_or_else(available_cores),
        };
        let prepared = prepare(&loaded, paths, &BTreeMap::new()).map_err(CliError::Load)?;
        let self_exe = std::env::current_exe().map_err(|source| CliError::Io {
            what: "find kiln's own binary at",
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?;
        if sandbox && self_exe.to_str().is_none() {
            // Checked here, before anything is created, rather than when the first phase
            // starts.
            return Err(CliError::Io {
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
            local.lend.iter().map(lend_path).collect::<Result<_, _>>()?
        } else {
            local.lend.iter().map(|path| absolute(path)).collect()
        };
        if let (true, Some(missing)) = (sandbox, lend.iter().find(|path| !path.exists())) {
            return Err(CliError::Usage(format!(
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
        let cache = if local.no_cache || !cacheable {
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
    pub fn after_state(&self, state: &Path) -> Result<(usize, String), CliError> {
        let manifest = kiln_state::read_manifest(state).map_err(CliError::State)?;
        let index = self
            .prepared
            .plan
            .phases
            .iter()
            .position(|phase| phase.name == manifest.phase);
        let hash = kiln_builder::split::prefix_hash(&self.prepared.expanded, &manifest.phase);
        match index {
            Some(index) if hash == manifest.plan_hash => Ok((index + 1, manifest.phase)),
            _ => Err(CliError::Local {
                name: self.prepared.plan.name.clone(),
                error: LocalError::PlanMismatch {
                    path: state.to_owned(),
                    phase: manifest.phase,
                },
                notes: Vec::new(),
            }),
        }
    }

    /// The index of a phase named on the command line.
    pub fn phase_index(&self, option: &str, name: &str) -> Result<usize, CliError> {
        self.prepared
            .plan
            .phases
            .iter()
            .position(|phase| phase.name == name)
            .ok_or_else(|| CliError::UnknownPhase {
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
    pub fn create_dirs(&mut self) -> Result<CreatedDirs, CliError> {
        let setup = |path: &Path| {
            let path = path.to_owned();
            move |source| CliError::Setup(SetupError::CreateDir { path, source })
        };
        for (name, path) in &self.final_outputs {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(CliError::Setup(SetupError::OutputExists {
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
                prepare(&self.loaded, paths, &BTreeMap::new()).map_err(CliError::Load)?;
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
    pub fn check_isolation(&self, reporter: &mut dyn LocalReporter) -> Result<(), CliError> {
        if self.options.sandbox {
            return kiln_sandbox::probe(&self.options.self_exe).map_err(CliError::Sandbox);
        }
        reporter.report(&LogEvent::Message {
            level: Level::Warn,
            text: "kiln: --no-sandbox: the steps run on this machine as you, with your files, \
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
fn check_inputs_are_lent(plan: &kiln_schema::Plan, lend: &[PathBuf]) -> Result<(), CliError> {
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
            return Err(CliError::Usage(format!(
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

/// Directories a local build created.
pub struct CreatedDirs {
    /// The host side of the build.
    pub host: HostDirs,
    /// Whether the build directory is a fresh temporary one.
    pub temporary: bool,
}

impl CreatedDirs {
    /// No directories: for looking at the plan and the cache only.
    pub fn none() -> CreatedDirs {
        CreatedDirs {
            host: HostDirs {
                build_top: PathBuf::new(),
                outputs: BTreeMap::new(),
                staging: None,
            },
            temporary: false,
        }
    }

    /// Removes partial outputs: the staging directory (with its mount points), or without the
    /// sandbox the outputs themselves.
    pub fn remove_staging(&self) {
        match &self.host.staging {
            Some((staging, _)) => remove_tree(staging),
            None => {
                for path in self.host.outputs.values() {
                    match std::fs::symlink_metadata(path) {
                        Ok(meta) if meta.is_dir() => remove_tree(path),
                        Ok(_) => {
                            let _ = std::fs::remove_file(path);
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Removes the build directory.
    pub fn remove_build_dir(&self) {
        remove_tree(&self.host.build_top);
    }
}

/// Removes a tree, making read-only directories writable first (fixup leaves some).
fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(path)
        .status();
    let _ = std::fs::remove_dir_all(path);
}

/// The one parent directory of every output path.
fn common_parent(outputs: &BTreeMap<String, PathBuf>) -> Option<PathBuf> {
    let mut parents = outputs.values().filter_map(|path| path.parent());
    let first = parents.next()?.to_owned();
    parents.all(|p| p == first).then_some(first)
}

/// Output name → placeholder path of a state made by a split derivation.
fn state_outputs(
    loaded: &LoadedPlan,
    state: &Path,
    names: &[String],
) -> Result<BTreeMap<String, PathBuf>, CliError> {
    let manifest = kiln_state::read_manifest(state).map_err(CliError::State)?;
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
        return Err(CliError::Usage(format!(
            "the state `{}` does not say where output `{missing}` is built; load the plan with \
             `--attrs` from the split derivation that follows it (its `kilnSplit` names every \
             placeholder)",
            state.display()
        )));
    }
    outputs.retain(|name, _| names.contains(name));
    if common_parent(&outputs).is_none() {
        return Err(CliError::Usage(format!(
            "the outputs of the state `{}` are not in one directory",
            state.display()
        )));
    }
    Ok(outputs)
}

/// How [`resume_command`] treats the range of this command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resuming {
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
/// The arguments are kept byte for byte ([`shell_word`]): a plan or a cache directory whose
/// path is not UTF-8 is named exactly, never with U+FFFD in its place.
fn resume_command(
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
/// [`display_argv`](kiln_builder::executor::display_argv) when it is UTF-8, else in bash's
/// `$'…'` form with `\xHH` escapes (the only way to write such bytes on a terminal).
fn shell_word(arg: &OsStr) -> String {
    if let Some(text) = arg.to_str() {
        return kiln_builder::executor::display_argv(&[text.to_owned()]);
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

/// This command line, for [`resume_command`], byte for byte.
fn this_command_line() -> Vec<OsString> {
    std::env::args_os().collect()
}

/// Refuses a non-empty `--build-dir` when a state is to be restored into it.
fn check_empty_build_dir(session: &Session) -> Result<(), CliError> {
    let Some(dir) = &session.build_dir else {
        return Ok(());
    };
    let occupied = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied {
        return Err(CliError::Usage(format!(
            "the build directory `{}` is not empty, and a state can only be restored into an \
             empty one: remove it, or choose another `--build-dir`",
            dir.display()
        )));
    }
    Ok(())
}

/// Which directories a command uses when the command line names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directories {
    /// `kiln-out` and a temporary build directory (`build`).
    Default,
    /// The last `kiln build`'s of the plan (`shell`, `env`), so its cached states match.
    LastBuild,
}

/// `kiln build` outside Nix.
pub fn build(args: &BuildArgs, sink: &mut Sink) -> Result<(), CliError> {
    let grace = Duration::from_secs_f64(args.kill_grace.clamp(0.0, 3600.0));
    let mut session = Session::new(
        &args.source,
        &args.layout,
        &args.local,
        grace,
        Directories::Default,
    )?;
    if let Some(cache) = &session.cache {
        LastBuild {
            out_dir: session.out_dir.clone(),
            build_dir: session.build_dir.clone(),
        }
        .write(cache);
    }
    if let Some(report) = &session.loaded.stdenv {
        for (level, text) in report.messages() {
            sink.report(&LogEvent::Message { level, text: &text });
        }
    }
    let last = session.prepared.plan.phases.len().saturating_sub(1);
    let from = args.from.as_deref().or(args.only.as_deref());
    let until = args.until.as_deref().or(args.only.as_deref());
    // With `--state`, the build starts after the state's phase unless told otherwise.
    let after_state = match &session.state {
        Some(state) => Some(session.after_state(state)?),
        None => None,
    };
    let start = match (from, after_state.clone()) {
        (Some(name), after) => {
            let start = session.phase_index("--from", name)?;
            if let Some((after, phase)) = &after {
                if start < *after {
                    return Err(CliError::Usage(format!(
                        "`--from {name}`: the state already includes phase `{phase}`; start at \
                         a later phase"
                    )));
                }
            }
            start
        }
        (None, Some((after, _))) => after,
        (None, None) => 0,
    };
    let restore_state = after_state
        .as_ref()
        .is_some_and(|(after, _)| *after == start);
    let end = match until {
        Some(name) => session.phase_index("--until", name)?,
        None => last,
    };
    if end < start {
        let starts = match from {
            Some(from) => format!("`--from {from}`"),
            None => format!(
                "where the build starts (phase `{}`, after the state's)",
                session
                    .prepared
                    .plan
                    .phases
                    .get(start)
                    .map_or("?", |p| p.name.as_str())
            ),
        };
        return Err(CliError::Usage(format!(
            "`--until {}` comes before {starts} in the plan",
            until.unwrap_or_default()
        )));
    }
    let name = session.prepared.plan.name.clone();
    if !restore_state {
        // Before anything is created: is there a state to start from?
        let no_dirs = session.build(&CreatedDirs::none());
        let cached = no_dirs
            .cached_start(start)
            .map_err(|error| CliError::Local {
                name: name.clone(),
                error,
                notes: Vec::new(),
            })?;
        if cached.is_some() {
            check_empty_build_dir(&session)?;
        }
    } else {
        check_empty_build_dir(&session)?;
    }
    if !session.options.sandbox && session.cache.is_some() && start == 0 {
        // Its states hold this directory, and a resume empties it: only kiln's own.
        check_empty_build_dir(&session)?;
    }
    session.check_isolation(sink)?;
    let mut interrupts = Interrupts::install().map_err(|error| CliError::Local {
        name: name.clone(),
        error,
        notes: Vec::new(),
    })?;
    let dirs = session.create_dirs()?;
    let local = session.build(&dirs);
    sink.report(&LogEvent::BuildStarted {
        format_version: kiln_schema::events::LOG_FORMAT_VERSION,
        name: &name,
        phases: session
            .prepared
            .plan
            .phases
            .iter()
            .map(|p| p.name.as_str())
            .collect(),
    });
    let started = std::time::Instant::now();
    let result = (|| -> Result<Option<Resume>, LocalError> {
        if let (Some(state), true) = (&session.state, restore_state) {
            let (resume, phase) = local.restore_split_state(state)?;
            sink.report(&LogEvent::Message {
                level: Level::Info,
                text: &format!(
                    "kiln: restored the state after phase `{phase}` from `{}`",
                    state.display()
                ),
            });
            for phase in &session.prepared.plan.phases[..start] {
                if phase.enabled {
                    sink.phase_restored(&phase.name, 0.0);
                }
            }
            return Ok(Some(resume));
        }
        local.restore_cached(start, sink)
    })();
    let result = result.and_then(|resume| {
        stop_if_interrupted(&mut interrupts, &session.prepared.plan.phases[start].name)?;
        local.run(start, end, resume, sink, &mut interrupts)
    });
    let finished = match &result {
        Ok(_) if end == last => local
            .check_outputs()
            .map_err(CliError::from_run(&name))
            .and_then(|()| match interrupts.pending() {
                // Told to stop before the outputs are installed: they are not.
                Some(signal) => Err(CliError::Exit(kiln_schema::exit_codes::for_signal(
                    signal as i32,
                ))),
                None => install_outputs(&session, &dirs, sink),
            }),
        Ok(_) => Ok(()),
        Err(_) => Ok(()),
    };
    let success = result.is_ok() && finished.is_ok();
    let exit_code = match (&result, &finished) {
        (Err(error), _) => error.exit_code(),
        (Ok(_), Err(error)) => error.exit_code(),
        _ => 0,
    };
    sink.report(&LogEvent::BuildFinished {
        success,
        exit_code,
        seconds: started.elapsed().as_secs_f64(),
    });
    sink.finish()?;
    let keep_note = format!(
        "the build directory is kept at `{}`",
        dirs.host.build_top.display()
    );
    let args_now = this_command_line();
    match (result, finished) {
        (Ok(_), Ok(())) if end == last => {
            if dirs.host.staging.is_some() {
                // Only mount points are left in it: the outputs moved out.
                dirs.remove_staging();
            }
            if dirs.temporary && !args.keep_build_dir {
                dirs.remove_build_dir();
            }
            Ok(())
        }
        (Ok(_), Ok(())) => {
            dirs.remove_staging();
            let next = session.prepared.plan.phases[end + 1].name.clone();
            eprintln!(
                "kiln: stopped after phase `{}` as asked; outputs were not installed; {keep_note}",
                session.prepared.plan.phases[end].name
            );
            if session.cache.is_some() {
                eprintln!(
                    "kiln: continue with: {}",
                    resume_command(
                        &args_now,
                        &next,
                        session.options.sandbox,
                        Resuming::Continue,
                        session.build_dir.as_deref(),
                    )
                );
            }
            Ok(())
        }
        (Err(error), _) => {
            dirs.remove_staging();
            let mut notes = vec![format!("{keep_note}; partial outputs were removed")];
            if let Some(failure) = error.phase_failure() {
                if failure.signal.is_none() && session.cache.is_some() {
                    notes.push(format!(
                        "after fixing it, resume at the failed phase with: {}",
                        resume_command(
                            &args_now,
                            &failure.phase,
                            session.options.sandbox,
                            Resuming::Failed,
                            session.build_dir.as_deref(),
                        )
                    ));
                }
            }
            Err(CliError::Local { name, error, notes })
        }
        (Ok(_), Err(error)) => {
            dirs.remove_staging();
            if let CliError::Exit(code) = &error {
                eprintln!(
                    "kiln: stopped (exit {code}) before the outputs were installed; {keep_note}"
                );
            }
            Err(error)
        }
    }
}

/// Moves each finished output from the staging directory to `OUT_DIR/NAME`, never replacing
/// what may have appeared there meanwhile; on a failure, the outputs moved so far go back.
///
/// First each output becomes the caller's (in the sandbox, when kiln runs as root, the build
/// user is another host id) and loses any set-user-ID or set-group-ID bit: a build's result
/// never carries them, as in Nix, whoever runs kiln. Each cleared bit is reported.
fn install_outputs(
    session: &Session,
    dirs: &CreatedDirs,
    reporter: &mut dyn LocalReporter,
) -> Result<(), CliError> {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    for (output, host) in &dirs.host.outputs {
        let cleared = kiln_sandbox::take_back(host, uid, gid).map_err(|error| CliError::Io {
            what: error.what,
            path: error.path,
            source: error.source,
        })?;
        for path in cleared {
            // Named where the output is installed, not in the staging directory.
            let path = match path.strip_prefix(host) {
                Ok(rest) => session.final_outputs[output].join(rest),
                Err(_) => path,
            };
            reporter.report(&LogEvent::Message {
                level: Level::Warn,
                text: &format!(
                    "kiln: cleared the set-user-ID/set-group-ID bits of `{}`: a build's \
                     outputs never keep them",
                    path.display()
                ),
            });
        }
    }
    if dirs.host.staging.is_none() {
        return Ok(());
    }
    let mut moved: Vec<(&PathBuf, &PathBuf)> = Vec::new();
    for (output, host) in &dirs.host.outputs {
        let target = &session.final_outputs[output];
        let renamed = nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            host.as_path(),
            nix::fcntl::AT_FDCWD,
            target.as_path(),
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        );
        if let Err(errno) = renamed {
            for (back_host, back_target) in moved.into_iter().rev() {
                let _ = std::fs::rename(back_target, back_host);
            }
            return Err(CliError::Io {
                what: "move the finished output to",
                path: target.clone(),
                source: std::io::Error::from(errno),
            });
        }
        moved.push((host, target));
    }
    Ok(())
}

/// Restores or builds what phase `at` needs, for `shell`: the nearest cached state before it,
/// then the phases from there.
fn reach_phase(
    local: &LocalBuild<'_>,
    session: &Session,
    at: usize,
    sink: &mut Sink,
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
                "kiln: running phases `{}` to `{}` first",
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

/// `kiln shell --at PHASE`.
pub fn shell(args: &ShellArgs, sink: &mut Sink) -> Result<(), CliError> {
    let mut session = Session::new(
        &args.source,
        &args.layout,
        &args.local,
        Duration::from_secs(5),
        Directories::LastBuild,
    )?;
    let at = session.phase_index("--at", &args.at)?;
    if let Some(state) = &session.state {
        let (after, phase) = session.after_state(state)?;
        if at < after {
            return Err(CliError::Usage(format!(
                "`--at {}`: the state already includes phase `{phase}`; stand at a later phase",
                args.at
            )));
        }
    }
    check_empty_build_dir(&session)?;
    session.check_isolation(sink)?;
    let name = session.prepared.plan.name.clone();
    let mut interrupts = Interrupts::install().map_err(|error| CliError::Local {
        name: name.clone(),
        error,
        notes: Vec::new(),
    })?;
    let dirs = session.create_dirs()?;
    let local = session.build(&dirs);
    let resume = match reach_phase(&local, &session, at, sink, &mut interrupts) {
        Ok(resume) => resume,
        Err(error) => {
            dirs.remove_staging();
            sink.finish()?;
            return Err(CliError::Local {
                name,
                error,
                notes: vec![format!(
                    "the build directory is kept at `{}`",
                    dirs.host.build_top.display()
                )],
            });
        }
    };
    sink.finish()?;
    if session.options.sandbox {
        if let Err(error) = local.hand_over_to_build_user() {
            dirs.remove_staging();
            return Err(CliError::Local {
                name,
                error,
                notes: Vec::new(),
            });
        }
    }
    let (cwd, env) = local.phase_start(at, resume.as_ref());
    let shell = match &args.shell {
        Some(shell) => shell.clone(),
        None => {
            let path = env.get("PATH").map(String::as_str);
            find_program("bash", path, Path::new("/"))
                .or_else(|| find_program("sh", path, Path::new("/")))
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "no `bash` or `sh` on the PATH of phase `{}` ({}); name one with `--shell`",
                        args.at,
                        path.unwrap_or("")
                    ))
                })?
        }
    };
    eprintln!(
        "kiln: shell at the start of phase `{}` of `{name}` in `{}`{}; `exit` leaves it",
        args.at,
        cwd.display(),
        if session.options.sandbox {
            " (sandboxed)"
        } else {
            " (NOT sandboxed)"
        }
    );
    let argv = vec![shell.display().to_string()];
    let mut sandboxed = || -> Result<_, CliError> {
        let mut config = local.sandbox_config().clone();
        config.controlling_terminal = true;
        let mut command = kiln_sandbox::sandboxed_command(
            &session.options.self_exe,
            &config,
            &shell,
            &argv,
            &cwd,
        )
        .map_err(CliError::Sandbox)?;
        // Its own terminal, never the caller's (see `crate::terminal`).
        let pty_error = |source| CliError::Io {
            what: "open a pseudo-terminal for the shell",
            path: PathBuf::from("/dev/ptmx"),
            source,
        };
        let pty = crate::terminal::Pty::open().map_err(pty_error)?;
        let stream = || pty.secondary.try_clone().map(std::process::Stdio::from);
        command
            .envs(&env)
            .stdin(stream().map_err(pty_error)?)
            .stdout(stream().map_err(pty_error)?)
            .stderr(stream().map_err(pty_error)?);
        let relay = pty.relay().map_err(pty_error)?;
        let status = interrupts.wait_interactive(command);
        relay.finish();
        Ok(status)
    };
    let status = if session.options.sandbox {
        match sandboxed() {
            Ok(status) => status,
            Err(error) => {
                dirs.remove_staging();
                return Err(error);
            }
        }
    } else {
        let mut command = std::process::Command::new(&shell);
        command.env_clear().envs(&env).current_dir(&cwd);
        interrupts.wait_interactive(command)
    };
    dirs.remove_staging();
    if dirs.temporary && !args.keep_build_dir {
        dirs.remove_build_dir();
    } else {
        eprintln!(
            "kiln: the build directory is kept at `{}`",
            dirs.host.build_top.display()
        );
    }
    let status = status.map_err(|source| CliError::Io {
        what: "start the shell",
        path: shell.clone(),
        source,
    })?;
    let (status, stopped_by) = status;
    if let Some(signal) = stopped_by {
        // kiln was told to stop and stopped the shell.
        return Err(CliError::Exit(kiln_schema::exit_codes::for_signal(
            signal as i32,
        )));
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) | (None, None) => Ok(()),
        (Some(code), _) => Err(CliError::Exit(code)),
        (None, Some(signal)) => Err(CliError::Exit(kiln_schema::exit_codes::for_signal(signal))),
    }
}

/// Stops before `phase` when kiln received a signal (during a restore, say).
fn stop_if_interrupted(interrupts: &mut Interrupts, phase: &str) -> Result<(), LocalError> {
    match interrupts.pending() {
        Some(signal) => Err(LocalError::Phase {
            failure: kiln_builder::inner::PhaseFailure {
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

/// `kiln env --at PHASE`: from the cached state before the phase, without running anything.
pub fn env(args: &EnvArgs) -> Result<(), CliError> {
    let session = Session::new(
        &args.source,
        &args.layout,
        &args.local,
        Duration::from_secs(5),
        Directories::LastBuild,
    )?;
    let at = session.phase_index("--at", &args.at)?;
    let dirs = CreatedDirs::none();
    let local = session.build(&dirs);
    let mut resume = None;
    let mut state_note = "the start of the build";
    if let Some(previous) = local.previous_enabled(at) {
        let name = &session.prepared.plan.phases[previous].name;
        let from_state = match &session.state {
            Some(state) => {
                let (after, phase) = session.after_state(state)?;
                if at < after {
                    return Err(CliError::Usage(format!(
                        "`--at {}`: the state already includes phase `{phase}`",
                        args.at
                    )));
                }
                // The state is where `at` starts when no enabled phase lies between them.
                (*name == phase).then(|| state.clone())
            }
            None => None,
        };
        let from_state_used = from_state.is_some();
        let found = from_state.or_else(|| {
            session.cache.as_ref().and_then(|cache| {
                cache
                    .find(name, &local.cache_key(name), &local.cache_key_parts(name))
                    .ok()
            })
        });
        match found.map(|entry| kiln_state::read_manifest(&entry)) {
            Some(Ok(manifest)) => {
                state_note = if from_state_used {
                    "the state given with --state"
                } else {
                    "the cached state"
                };
                resume = Some(Resume {
                    workdir: session.prepared.paths.build_top.join(&manifest.workdir),
                    env: manifest.env,
                });
            }
            Some(Err(error)) => return Err(CliError::State(error)),
            None => eprintln!(
                "kiln: warning: phase `{name}` has no cached state: variables that earlier phases \
                 set (SOURCE_DATE_EPOCH, …) and the working directory are as at the start of the \
                 build; run `kiln build --until {name}` first for the exact environment"
            ),
        }
    }
    let (cwd, env) = local.phase_start(at, resume.as_ref());
    let text = match args.format {
        EnvFormat::Json => {
            let shown = serde_json::json!({
                "phase": args.at,
                "cwd": cwd,
                "env": env,
                "from": state_note,
            });
            let mut text = serde_json::to_string_pretty(&shown).expect("env serializes");
            text.push('\n');
            text
        }
        EnvFormat::Sh => {
            let mut text = format!(
                "# the environment of phase `{}` of `{}` (from {state_note}); its working \
                 directory is {}\n",
                args.at,
                session.prepared.plan.name,
                sh_quote(&cwd.display().to_string())
            );
            for (name, value) in &env {
                if kiln_schema::validate::is_valid_env_name(name) {
                    text.push_str(&format!("export {name}={}\n", sh_quote(value)));
                } else {
                    // A state's manifest could carry anything; `eval` must only set variables.
                    eprintln!("kiln: warning: `{name}` is not a shell variable name; left out");
                }
            }
            text
        }
    };
    print_stdout(&text);
    Ok(())
}

/// A POSIX shell single-quoted word.
fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    #[test]
    fn sh_quoting_survives_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(sh_quote(""), "''");
    }

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

    #[test]
    fn outputs_share_one_parent() {
        let outputs = BTreeMap::from([
            ("out".to_owned(), PathBuf::from("/o/out")),
            ("dev".to_owned(), PathBuf::from("/o/dev")),
        ]);
        assert_eq!(common_parent(&outputs), Some(PathBuf::from("/o")));
        let split = BTreeMap::from([
            ("out".to_owned(), PathBuf::from("/o/out")),
            ("dev".to_owned(), PathBuf::from("/p/dev")),
        ]);
        assert_eq!(common_parent(&split), None);
    }
}
