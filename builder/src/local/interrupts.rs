//! kiln's own signals during a local command: queued, never fatal half-way.

use super::LocalError;
use crate::run::signal::SignalEvents;

/// kiln's termination signals for a whole local command, from before the first directory is
/// created to after the last one is removed: a signal never kills kiln half-way (it would leave
/// staging and build directories behind); it is queued, and the command stops at the next
/// point where it looks ([`Interrupts::pending`], or while a phase runs).
pub struct Interrupts {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) signals: SignalEvents,
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
