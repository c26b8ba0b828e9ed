//! One file per subcommand: each parses its flags and calls the library.

pub mod deploy;
pub mod lint;
pub mod migrate_node;
pub mod render;
pub mod status;

use std::fmt;
use std::future::Future;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{SignalKind, signal};

/// Prints one error on standard error, the one way haelk reports them:
/// `haelk: error: MESSAGE` (for an `anyhow::Error`, MESSAGE is its whole chain,
/// `{:#}`, once).
pub fn report_error(message: impl fmt::Display) {
    eprintln!("haelk: error: {message}");
}

/// A command stopped by SIGINT or SIGTERM. The command's work was dropped at an
/// await point: every SSH master it opened is closed and its control directory
/// removed (dropping a connection does both), and no local file is half written
/// (haelk writes its local files synchronously, through a temporary file renamed
/// into place, so no await point falls inside a write).
#[derive(Debug, thiserror::Error)]
#[error(
    "interrupted by {name}; the connections are closed, and running the same command again continues the work"
)]
pub struct Interrupted {
    /// The signal's name, for the message.
    pub name: &'static str,
    /// The signal's number: the shell's convention is to exit with 128 + it.
    pub number: u8,
}

/// The async runtime of the commands that talk to hosts.
pub(crate) struct Runtime(tokio::runtime::Runtime);

/// Starts the async runtime of a command that talks to hosts.
fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map(Runtime)
        .context("cannot start the async runtime")
}

impl Runtime {
    /// Runs `work` to its end, or until SIGINT or SIGTERM, which stop it with
    /// [`Interrupted`].
    pub(crate) fn block_on<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.0.block_on(until_signal(work, true))
    }

    /// As [`Runtime::block_on`], but SIGINT is left to `work` (it ends
    /// `status --watch` normally); SIGTERM still stops it.
    pub(crate) fn block_on_leaving_ctrl_c<T>(
        &self,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.0.block_on(until_signal(work, false))
    }
}

/// `work`, or [`Interrupted`] when a signal comes first (SIGINT only when
/// `sigint`). The handlers are installed before `work` starts, so no signal
/// falls between them and the default action (which would kill haelk on the
/// spot, with its masters open).
async fn until_signal<T>(work: impl Future<Output = Result<T>>, sigint: bool) -> Result<T> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = if sigint {
        Some(signal(SignalKind::interrupt()).context("cannot handle SIGINT")?)
    } else {
        None
    };
    let interrupted = async {
        match &mut interrupt {
            Some(interrupt) => tokio::select! {
                _ = terminate.recv() => Interrupted { name: "SIGTERM", number: 15 },
                _ = interrupt.recv() => Interrupted { name: "SIGINT", number: 2 },
            },
            None => {
                terminate.recv().await;
                Interrupted {
                    name: "SIGTERM",
                    number: 15,
                }
            }
        }
    };
    tokio::select! {
        // The work first: a result that is ready wins over a signal that came with it.
        biased;
        result = work => result,
        signal = interrupted => Err(signal.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sigterm_stops_the_work_and_drops_it() {
        struct Dropped(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        // Installed before anything signals: from here SIGTERM never kills the
        // test binary, whichever branch below runs first.
        let _installed = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = Dropped(dropped.clone());
        let work = async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(())
        };
        let run = until_signal(work, true);
        tokio::pin!(run);
        // One poll installs the handlers (and finds nothing to do yet).
        tokio::select! {
            biased;
            _ = &mut run => panic!("the work never ends on its own"),
            () = std::future::ready(()) => {}
        }
        // The standard library cannot raise a signal: kill(1) sends it to this
        // process, by PID.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let result = run.await;
        let err = result.expect_err("interrupted");
        let interrupted = err.downcast_ref::<Interrupted>().expect("an Interrupted");
        assert_eq!(interrupted.number, 15);
        assert!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the work was dropped"
        );
    }
}
