//! The harness: [`Sandbox`] builds a config around a fresh temporary directory, lends the host
//! toolchain and the probe binary, runs the probe inside through the test init binary, and
//! waits for it within [`TIMEOUT`].

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Once;
use std::time::Duration;

use kiln_sandbox::{sandboxed_command, SandboxConfig};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use tempfile::TempDir;

/// Runs inside the sandbox and reports what it sees.
pub const PROBE: &str = env!("CARGO_BIN_EXE_kiln-sandbox-probe");

/// Stands in for `kiln`: the binary re-executed as `__sandbox-init`.
pub const INIT: &str = env!("CARGO_BIN_EXE_kiln-sandbox-test-init");

/// How long any sandbox may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Set on the test process; must never appear inside a sandbox.
pub const SECRET: &str = "KILN_SANDBOX_TEST_SECRET";

/// The host toolchain, lent as Nix's `extra-sandbox-paths` would (impure, for the tests only).
const TOOLCHAIN: [&str; 5] = ["/bin", "/usr", "/lib", "/lib64", "/etc/alternatives"];

/// One sandbox to run commands in.
pub struct Sandbox {
    /// Scratch space on the host; the build directory is `build` in it.
    pub dir: TempDir,
    /// What the sandbox gets; tests add to it.
    pub config: SandboxConfig,
    /// The complete environment inside.
    pub env: Vec<(String, String)>,
    /// The working directory inside.
    pub cwd: PathBuf,
    /// Give the build and writable directories to [`kiln_sandbox::build_owner`] before each
    /// command (off when a test starts the sandbox as another user).
    pub hand_over: bool,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        static SECRET_SET: Once = Once::new();
        SECRET_SET.call_once(|| std::env::set_var(SECRET, "leaked"));

        let dir = tempfile::tempdir().expect("create a temporary directory");
        let build = dir.path().join("build");
        fs_create_dir(&build);
        let mut config = SandboxConfig::new(&build);
        config.lend = TOOLCHAIN
            .iter()
            .map(PathBuf::from)
            .filter(|path| path.exists())
            .chain([PathBuf::from(PROBE)])
            .collect();
        Sandbox {
            dir,
            config,
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("HOME".into(), "/homeless-shelter".into()),
            ],
            cwd: PathBuf::from("/build"),
            hand_over: true,
        }
    }

    /// The build directory on the host.
    pub fn build_dir(&self) -> &Path {
        &self.config.build_dir
    }

    /// A host directory `name` in the scratch space, created.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs_create_dir(&path);
        path
    }

    /// The command that runs `program` with `argv` in this sandbox.
    pub fn command(&self, program: &Path, argv: &[&str]) -> Command {
        // As a caller must: the build user (a host id of its own when the tests run as root)
        // gets the directories it writes to.
        if self.hand_over {
            let (uid, gid) = kiln_sandbox::build_owner();
            let writable = self.config.writable.iter().map(|(host, _)| host);
            for dir in std::iter::once(&self.config.build_dir).chain(writable) {
                kiln_sandbox::hand_over(dir, uid, gid)
                    .expect("hand the directory to the build user");
            }
        }
        let argv: Vec<String> = argv.iter().map(|arg| arg.to_string()).collect();
        let mut command =
            sandboxed_command(Path::new(INIT), &self.config, program, &argv, &self.cwd)
                .expect("a valid sandbox config");
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
        command
    }

    /// Runs `program` with `argv` and collects its output.
    pub fn run(&self, program: &Path, argv: &[&str]) -> Outcome {
        output_bounded(self.command(program, argv))
    }

    /// Runs the probe with `args`.
    pub fn probe(&self, args: &[&str]) -> Outcome {
        self.run(Path::new(PROBE), &probe_argv(args))
    }

    /// Starts the probe with `args` in its own process group, with stdout piped.
    pub fn spawn_probe(&self, args: &[&str]) -> Running {
        let mut command = self.command(Path::new(PROBE), &probe_argv(args));
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("spawn the sandbox");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(Some(line)).is_err() {
                    return;
                }
            }
            // End of file: every process holding the pipe is gone.
            let _ = lines.send(None);
        });
        Running {
            child,
            lines: receiver,
        }
    }
}

fn probe_argv<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["kiln-sandbox-probe"];
    argv.extend_from_slice(args);
    argv
}

fn fs_create_dir(path: &Path) {
    fs_err::create_dir_all(path).unwrap();
}

/// How a sandbox ended and what it printed.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code; the sandbox's own process always exits rather than dies by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("the sandbox process was killed: {self:?}"))
    }

    /// Stdout of a probe that succeeded.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code(), 0, "the probe failed: {self:?}");
        &self.stdout
    }

    /// The errno name a probe failed with.
    pub fn errno(&self) -> &str {
        assert_eq!(
            self.code(),
            1,
            "the probe did not fail as expected: {self:?}"
        );
        self.stdout
            .trim()
            .strip_prefix("errno=")
            .unwrap_or_else(|| panic!("no errno in {self:?}"))
    }
}

/// Spawns `command` and collects its output, failing the test after [`TIMEOUT`]. Returns only
/// once stdout and stderr reach end of file, i.e. once every process holding them is gone.
pub fn output_bounded(mut command: Command) -> Outcome {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("spawn the sandbox");
    let pid = Pid::from_raw(child.id() as i32);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(TIMEOUT) {
        Ok(output) => {
            let output = output.expect("wait for the sandbox");
            Outcome {
                status: output.status,
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        }
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("the sandbox did not finish within {TIMEOUT:?}");
        }
    }
}

/// A sandbox started by [`Sandbox::spawn_probe`].
pub struct Running {
    pub child: Child,
    /// Stdout lines; `None` at end of file.
    lines: mpsc::Receiver<Option<String>>,
}

impl Running {
    /// The next stdout line, or `None` at end of file; fails the test after [`TIMEOUT`].
    pub fn next_line(&mut self) -> Option<String> {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(error) => {
                let _ = self.child.kill();
                panic!("no output from the sandbox: {error}");
            }
        }
    }

    /// Waits for the end of stdout, i.e. for every process that holds it to be gone.
    pub fn wait_for_eof(&mut self) {
        while self.next_line().is_some() {}
    }

    /// Waits for the sandbox's process, bounded by [`Running::wait_for_eof`] having returned.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait for the sandbox")
    }
}

/// Live host processes (zombies are dead) in the pid namespace `namespace` (a `pid:[N]` link).
pub fn processes_in(namespace: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs_err::read_dir("/proc").unwrap() {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes come and go while we look: errors mean "gone".
        let link = std::fs::read_link(entry.path().join("ns/pid"));
        if !link.is_ok_and(|link| link.as_os_str() == namespace) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses (proc_pid_stat(5)).
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if matches!(state, Some(state) if state != 'Z' && state != 'X') {
            pids.push(pid);
        }
    }
    pids
}

/// The host pid of the init of the pid namespace `namespace`.
pub fn namespace_init(namespace: &str) -> Pid {
    processes_in(namespace)
        .into_iter()
        .find(|pid| {
            let status = fs_err::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            // `NSpid:` lists the pid in each namespace, the innermost last.
            status
                .lines()
                .find_map(|line| line.strip_prefix("NSpid:"))
                .and_then(|pids| pids.split_whitespace().last())
                == Some("1")
        })
        .map(|pid| Pid::from_raw(pid as i32))
        .expect("the namespace has an init")
}

/// Waits for the child `pid`, failing the test after [`TIMEOUT`].
pub fn wait_bounded(pid: Pid) -> WaitStatus {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(waitpid(pid, None));
    });
    match receiver.recv_timeout(TIMEOUT) {
        Ok(status) => status.expect("waitpid"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("{pid} did not exit within {TIMEOUT:?}");
        }
    }
}

/// The contents of a host file.
pub fn read(path: &Path) -> String {
    fs_err::read_to_string(path).unwrap()
}
