//! A pseudo-terminal of its own for `kiln shell` in the sandbox.
//!
//! The sandboxed shell must not get the caller's terminal: a process with a file descriptor on
//! it (or the caller's terminal as its controlling one) can push characters into its input
//! queue with `TIOCSTI`, and the caller's own shell would run them on the host once kiln exits.
//! So kiln opens a new pseudo-terminal, gives the sandbox its secondary side as standard input,
//! output and error (and as controlling terminal, see
//! [`SandboxConfig::controlling_terminal`](kiln_sandbox::SandboxConfig)), and relays bytes
//! between the caller's terminal and the primary side, like script(1), ssh or `docker run -t`:
//! the caller's terminal in raw mode, so that every key (Ctrl-C included) reaches the shell's
//! line discipline, and the window size copied over whenever it changes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, Termios};

/// How often the caller's window size is compared with the shell's.
const WINDOW_POLL: Duration = Duration::from_millis(250);

/// How long kiln waits for the shell's last output once it has exited.
const DRAIN: Duration = Duration::from_secs(2);

/// A new pseudo-terminal: the primary side stays with kiln, the secondary goes to the shell.
pub struct Pty {
    primary: OwnedFd,
    /// The shell's side; give a clone to each of its standard streams, then drop this one.
    pub secondary: OwnedFd,
}

impl Pty {
    /// Opens a pseudo-terminal with the caller's window size (when standard output is a
    /// terminal) and terminal settings (when standard input is one).
    pub fn open() -> io::Result<Pty> {
        let primary =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&primary)?;
        rustix::pty::unlockpt(&primary)?;
        // TIOCGPTPEER: the secondary side from the primary, with no path looked up.
        let secondary = rustix::pty::ioctl_tiocgptpeer(
            &primary,
            OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
        )?;
        // The shell's own terminal, as Nix gives its builder's to the build user: programs in
        // the shell may reopen it (`/dev/stdout`, `/proc/self/fd/0`).
        let (uid, gid) = kiln_sandbox::build_owner();
        rustix::fs::fchown(
            &secondary,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )?;
        if let Ok(settings) = rustix::termios::tcgetattr(io::stdin()) {
            let _ = rustix::termios::tcsetattr(&secondary, OptionalActions::Now, &settings);
        }
        if let Ok(size) = rustix::termios::tcgetwinsize(io::stdout()) {
            let _ = rustix::termios::tcsetwinsize(&primary, size);
        }
        Ok(Pty { primary, secondary })
    }

    /// Starts relaying between the caller's standard streams and the shell; call once the
    /// shell has started and every copy of [`Pty::secondary`] kiln held is closed.
    pub fn relay(self) -> io::Result<Relay> {
        let Pty { primary, secondary } = self;
        drop(secondary);
        let raw = RawMode::enter()?;
        let input = File::from(primary.try_clone()?);
        let output = File::from(primary.try_clone()?);
        let resize = primary;
        // Keys to the shell. This thread may stay blocked in read(2) after the shell exits;
        // it ends with kiln.
        let end_of_input = !rustix::termios::isatty(io::stdin().as_fd());
        thread::spawn(move || {
            let mut input = input;
            copy(io::stdin().lock(), &mut input);
            if end_of_input {
                // Piped input ended: the terminal's end-of-file key, as script(1) sends.
                let _ = input.write_all(&[0x04]);
            }
        });
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            copy(output, io::stdout().lock());
            let _ = done.send(());
        });
        let (stop, stopped) = mpsc::channel::<()>();
        thread::spawn(move || follow_window_size(&resize, &stopped));
        Ok(Relay {
            raw,
            finished,
            _stop: stop,
        })
    }
}

/// A running relay; [`Relay::finish`] after the shell has exited.
pub struct Relay {
    raw: Option<RawMode>,
    finished: mpsc::Receiver<()>,
    /// Dropped to stop following the window size.
    _stop: mpsc::Sender<()>,
}

impl Relay {
    /// Waits (briefly) for the shell's last output, then gives the caller's terminal its
    /// settings back.
    pub fn finish(self) {
        // The primary side reads end-of-file (EIO) once the sandbox, which holds every copy
        // of the secondary, is gone.
        let _ = self.finished.recv_timeout(DRAIN);
        drop(self.raw);
    }
}

/// Copies until either side ends.
fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buffer = [0u8; 8192];
    loop {
        match from.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => {
                if to.write_all(&buffer[..read]).is_err() || to.flush().is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Copies the caller's window size to the shell's terminal when it changes (the kernel then
/// sends the shell SIGWINCH), until `stop` hangs up.
fn follow_window_size(primary: &OwnedFd, stop: &mpsc::Receiver<()>) {
    let mut last = None;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(WINDOW_POLL) {
        let Ok(size) = rustix::termios::tcgetwinsize(io::stdout()) else {
            return;
        };
        let key = (size.ws_row, size.ws_col);
        if last != Some(key) {
            if last.is_some() {
                let _ = rustix::termios::tcsetwinsize(primary, size);
            }
            last = Some(key);
        }
    }
}

/// The caller's terminal in raw mode, restored on drop. Nothing when standard input is not a
/// terminal.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> io::Result<Option<RawMode>> {
        let stdin = io::stdin();
        if !rustix::termios::isatty(stdin.as_fd()) {
            return Ok(None);
        }
        let saved = rustix::termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        // TCSANOW: keys typed before the shell started (or by a script) are kept for it.
        rustix::termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}
