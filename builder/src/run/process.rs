//! Running one child process: its own process group, combined output streamed line by line,
//! a deadline, and termination of the whole group.
//!
//! The child gets one pipe as both stdout and stderr, so lines keep the order the child wrote
//! them (as in Nix's PTY) and no second pipe can fill up and deadlock. The child leads a new
//! process group (`setpgid(0, 0)` via [`std::os::unix::process::CommandExt::process_group`]);
//! on a deadline or a signal kiln sends SIGTERM to the group, waits [`RunLimits::grace`], then
//! sends SIGKILL. A second signal kills at once. After the child exits, anything left in its
//! group is killed too, and so is anything that left the group, when kiln adopts orphans
//! ([`crate::run::reaper`]): a step does not leave processes behind.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use crate::run::signal::SignalEvents;

/// What to run.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// The resolved program path.
    pub program: PathBuf,
    /// The argv as written in the plan (`argv[0]` is passed as is).
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: PathBuf,
    /// Where standard output goes instead of the pipe (a file already opened for writing).
    pub stdout: Option<std::sync::Arc<std::fs::File>>,
}

/// Limits for one child.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// When to stop the child, if ever.
    pub deadline: Option<Instant>,
    /// Lines longer than this many bytes are passed on in pieces ([`MAX_LINE`] for steps).
    pub max_line: usize,
    /// How long the group gets between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildOutcome {
    /// It exited with this code.
    Exited(i32),
    /// A signal it did not cause through kiln killed it.
    Signaled(i32),
    /// The deadline passed; the group was terminated.
    TimedOut,
    /// kiln received this signal; the group was terminated.
    Interrupted(Signal),
}

impl ChildOutcome {
    /// Whether the step succeeded.
    pub fn success(self) -> bool {
        self == ChildOutcome::Exited(0)
    }
}

/// Step output lines longer than this are passed on in pieces, so memory stays bounded.
pub const MAX_LINE: usize = 64 * 1024;

/// After the child exits, how long kiln keeps reading output from processes that escaped the
/// group (e.g. with `setsid`) and still hold the pipe.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Spawns `spec`, streams each output line to `on_line`, and returns how it ended.
pub async fn run_child(
    spec: &ChildSpec,
    limits: RunLimits,
    signals: &mut SignalEvents,
    on_line: &mut dyn FnMut(&[u8]),
) -> std::io::Result<ChildOutcome> {
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .arg0(spec.argv.first().map(OsString::from).unwrap_or_default())
        .args(spec.argv.iter().skip(1))
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(match &spec.stdout {
            Some(file) => Stdio::from(file.try_clone()?),
            None => Stdio::from(writer.try_clone()?),
        })
        .stderr(Stdio::from(writer))
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    // Our copies of the write end must go, or the pipe never reaches end-of-file.
    drop(command);
    let pgid = Pid::from_raw(child.id().expect("a just-spawned child has a pid") as i32);
    let mut group = GroupGuard { pgid, live: true };

    let mut lines = BufReader::new(pipe_receiver(reader)?);
    let mut buffer = Vec::with_capacity(256);
    let mut output_open = true;
    let mut outcome = None;
    let mut drain_until: Option<Instant> = None;
    let far_future = Instant::now() + Duration::from_secs(86400 * 365);

    while output_open || outcome.is_none() {
        let deadline = limits.deadline.unwrap_or(far_future);
        tokio::select! {
            read = read_line(&mut lines, &mut buffer, limits.max_line), if output_open => {
                match read {
                    Ok(0) | Err(_) => {
                        if !buffer.is_empty() {
                            on_line(&buffer);
                            buffer.clear();
                        }
                        output_open = false;
                    }
                    Ok(_) => {
                        let line = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
                        on_line(line);
                        buffer.clear();
                    }
                }
            }
            status = child.wait(), if outcome.is_none() => {
                let status = status?;
                outcome = Some(match (status.code(), status.signal()) {
                    (Some(code), _) => ChildOutcome::Exited(code),
                    (None, Some(signal)) => ChildOutcome::Signaled(signal),
                    (None, None) => ChildOutcome::Exited(-1),
                });
                // Whatever the step left running in its group goes with it, and so does what
                // escaped the group (without a sandbox: see `crate::run::reaper`).
                group.kill(Signal::SIGKILL);
                crate::run::reaper::kill_adopted(&[]);
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            }
            _ = tokio::time::sleep_until(deadline), if outcome.is_none() && limits.deadline.is_some() => {
                terminate(&mut child, &mut group, limits.grace, signals).await?;
                crate::run::reaper::kill_adopted(&[]);
                outcome = Some(ChildOutcome::TimedOut);
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            }
            signal = signals.recv(), if outcome.is_none() => {
                terminate(&mut child, &mut group, limits.grace, signals).await?;
                crate::run::reaper::kill_adopted(&[]);
                outcome = Some(ChildOutcome::Interrupted(signal));
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or(far_future)), if drain_until.is_some() => {
                // Escaped processes still hold the pipe: stop reading, keep the outcome.
                output_open = false;
            }
        }
    }
    group.live = false;
    Ok(outcome.expect("the loop ends only with an outcome"))
}

/// SIGTERM to the group, then SIGKILL after `grace` (or at once on a further signal).
async fn terminate(
    child: &mut tokio::process::Child,
    group: &mut GroupGuard,
    grace: Duration,
    signals: &mut SignalEvents,
) -> std::io::Result<()> {
    group.kill(Signal::SIGTERM);
    tokio::select! {
        status = child.wait() => { status?; }
        _ = tokio::time::sleep(grace) => {}
        _ = signals.recv() => {}
    }
    group.kill(Signal::SIGKILL);
    child.wait().await?;
    Ok(())
}

/// Reads up to and including `\n`, or at most `max_line` bytes.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    max_line: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let room = max_line.saturating_sub(buffer.len());
        let (take, done) = match memchr(b'\n', available) {
            Some(newline) if newline < room => (newline + 1, true),
            _ if available.len() >= room => (room, true),
            _ => (available.len(), false),
        };
        buffer.extend_from_slice(&available[..take]);
        reader.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

fn pipe_receiver(fd: OwnedFd) -> std::io::Result<tokio::net::unix::pipe::Receiver> {
    tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
}

/// Kills the child's process group when dropped early (an error or a panic): the last line of
/// defence against leaked processes.
struct GroupGuard {
    pgid: Pid,
    live: bool,
}

impl GroupGuard {
    fn kill(&mut self, signal: Signal) {
        // ESRCH means the group is already gone, which is the goal.
        let _ = killpg(self.pgid, signal);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.live {
            self.kill(Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str]) -> ChildSpec {
        ChildSpec {
            program: argv[0].into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]),
            cwd: "/".into(),
            stdout: None,
        }
    }

    fn run(argv: &[&str], deadline: Option<Duration>) -> (ChildOutcome, Vec<String>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut lines = Vec::new();
            let limits = RunLimits {
                deadline: deadline.map(|d| Instant::now() + d),
                grace: Duration::from_millis(200),
                max_line: MAX_LINE,
            };
            let outcome = run_child(
                &spec(argv),
                limits,
                &mut SignalEvents::none(),
                &mut |line| lines.push(String::from_utf8_lossy(line).into_owned()),
            )
            .await
            .unwrap();
            (outcome, lines)
        })
    }

    #[test]
    fn streams_both_streams_in_order_with_a_clean_env() {
        let (outcome, lines) = run(
            &[
                "/bin/sh",
                "-c",
                "echo one; echo two >&2; printf three; echo \"[$HOME]\" >&2",
            ],
            None,
        );
        assert_eq!(outcome, ChildOutcome::Exited(0));
        assert_eq!(lines, ["one", "two", "three[]"]);
    }

    #[test]
    fn reports_exit_codes_and_signals() {
        assert_eq!(
            run(&["/bin/sh", "-c", "exit 3"], None).0,
            ChildOutcome::Exited(3)
        );
        assert_eq!(
            run(&["/bin/sh", "-c", "kill -SEGV $$"], None).0,
            ChildOutcome::Signaled(libc_sigsegv())
        );
    }

    fn libc_sigsegv() -> i32 {
        Signal::SIGSEGV as i32
    }

    #[test]
    fn a_deadline_kills_the_whole_group() {
        let (outcome, _) = run(
            &["/bin/sh", "-c", "sleep 30 & sleep 30; echo never"],
            Some(Duration::from_millis(300)),
        );
        assert_eq!(outcome, ChildOutcome::TimedOut);
    }

    #[test]
    fn background_processes_do_not_hold_the_step() {
        // The backgrounded sleep keeps the pipe open; kiln kills the group when the step exits.
        let started = std::time::Instant::now();
        let (outcome, lines) = run(&["/bin/sh", "-c", "sleep 30 & echo done"], None);
        assert_eq!(outcome, ChildOutcome::Exited(0));
        assert_eq!(lines, ["done"]);
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn long_lines_are_split() {
        let (_, lines) = run(
            &["/bin/sh", "-c", "head -c 150000 /dev/zero | tr '\\0' x"],
            None,
        );
        assert_eq!(lines.iter().map(String::len).sum::<usize>(), 150000);
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE));
    }
}
