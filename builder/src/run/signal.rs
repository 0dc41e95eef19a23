//! Termination signals as an event stream.
//!
//! [`SignalEvents::install`] listens for SIGINT, SIGTERM and SIGHUP; the executor selects on
//! [`SignalEvents::recv`] next to the running child, so a signal stops the build between or
//! during steps. [`SignalEvents::none`] never fires (for tests and library callers).

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

/// A stream of termination signals received by kiln.
pub struct SignalEvents {
    receiver: Option<mpsc::UnboundedReceiver<Signal>>,
    /// Signals seen so far (a second one escalates to SIGKILL).
    pub received: Vec<Signal>,
}

impl SignalEvents {
    /// Installs handlers for SIGINT, SIGTERM and SIGHUP. Must be called inside a tokio runtime.
    pub fn install() -> std::io::Result<SignalEvents> {
        use tokio::signal::unix::{signal, SignalKind};
        let (sender, receiver) = mpsc::unbounded_channel();
        for (kind, name) in [
            (SignalKind::interrupt(), Signal::SIGINT),
            (SignalKind::terminate(), Signal::SIGTERM),
            (SignalKind::hangup(), Signal::SIGHUP),
        ] {
            let mut stream = signal(kind)?;
            let sender = sender.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if sender.send(name).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(SignalEvents {
            receiver: Some(receiver),
            received: Vec::new(),
        })
    }

    /// A stream that never yields.
    pub fn none() -> SignalEvents {
        SignalEvents {
            receiver: None,
            received: Vec::new(),
        }
    }

    /// Waits for the next signal (forever for [`SignalEvents::none`]).
    pub async fn recv(&mut self) -> Signal {
        let signal = match &mut self.receiver {
            Some(receiver) => match receiver.recv().await {
                Some(signal) => signal,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        };
        self.received.push(signal);
        signal
    }

    /// A signal that already arrived, without waiting.
    pub fn pending(&mut self) -> Option<Signal> {
        let signal = self.receiver.as_mut()?.try_recv().ok()?;
        self.received.push(signal);
        Some(signal)
    }

    /// The first signal received, which decides kiln's exit code.
    pub fn first(&self) -> Option<Signal> {
        self.received.first().copied()
    }
}
