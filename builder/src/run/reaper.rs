//! Processes that escaped a step's process group: kiln adopts them and kills them.
//!
//! A step's processes are killed as a group ([`crate::run::process`]), but a daemon that calls
//! `setsid(2)` or double-forks leaves the group, and without kiln's sandbox (`--no-sandbox`)
//! there is no pid namespace whose end would take it along. [`adopt_orphans`] makes kiln a
//! child subreaper (`PR_SET_CHILD_SUBREAPER`, prctl(2)): every orphan among its descendants is
//! re-parented to kiln instead of to the system's init. [`kill_adopted`] then kills each child
//! of kiln that kiln did not start itself, again and again as their own orphans arrive, and
//! reaps them. Under Nix and in kiln's sandbox, kiln (or the sandbox's init) is already the
//! pid namespace's init, which adopts every orphan by itself.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// Whether this process adopts orphans (and so must kill and reap them).
static ADOPTING: AtomicBool = AtomicBool::new(false);

/// How long [`kill_adopted`] keeps looking for processes still being re-parented to kiln.
const SWEEP_FOR: Duration = Duration::from_secs(2);

/// Makes this process a child subreaper, so that processes escaping a step's group end up as
/// its children, where [`kill_adopted`] finds them.
pub fn adopt_orphans() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)?;
    ADOPTING.store(true, Ordering::SeqCst);
    Ok(())
}

/// Kills (SIGKILL) and reaps every child of this process except `keep`, when
/// [`adopt_orphans`] is in force: after a step, they can only be orphans it left behind.
/// Killing one re-parents its own children to kiln, so this repeats until none has appeared for
/// a moment (at most `SWEEP_FOR`, 2 s). Returns how many processes it killed.
pub fn kill_adopted(keep: &[Pid]) -> usize {
    if !ADOPTING.load(Ordering::SeqCst) {
        return 0;
    }
    let me = Pid::this();
    let started = Instant::now();
    let mut killed = 0;
    let mut quiet_rounds = 0;
    while started.elapsed() < SWEEP_FOR && quiet_rounds < 3 {
        let children: Vec<Pid> = children_of(me)
            .into_iter()
            .filter(|pid| !keep.contains(pid))
            .collect();
        if children.is_empty() {
            quiet_rounds += 1;
        } else {
            quiet_rounds = 0;
        }
        for &child in &children {
            if kill(child, Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
        for &child in &children {
            // A zombie is reaped; one still dying is reaped in a later round.
            let _ = waitpid(child, Some(WaitPidFlag::WNOHANG));
        }
    }
    killed
}

/// The processes whose parent is `parent`, read from `/proc/PID/stat`.
fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| parent_of(&Path::new("/proc").join(pid.to_string())) == Some(parent))
        .map(Pid::from_raw)
        .collect()
}

/// The parent pid in `DIR/stat`: the fourth field, after the command name in parentheses
/// (which may itself hold spaces and parentheses, so the last `)` ends it).
fn parent_of(dir: &Path) -> Option<Pid> {
    let stat = std::fs::read(dir.join("stat")).ok()?;
    let after_name = stat.iter().rposition(|&byte| byte == b')')?;
    let rest = std::str::from_utf8(&stat[after_name + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok().map(Pid::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parent_even_with_parentheses_in_the_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), "42 (a) b) (c) S 7 42 42 0 -1").unwrap();
        assert_eq!(parent_of(dir.path()), Some(Pid::from_raw(7)));
        assert_eq!(parent_of(Path::new("/proc/self")), Some(Pid::parent()));
    }

    #[test]
    fn finds_its_own_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        assert!(children_of(Pid::this()).contains(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
