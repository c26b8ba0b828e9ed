//! Running shell scripts on hosts: the [`Remote`] trait the engine is written
//! against, with [`ssh::SshRemote`] for real hosts (and the lab) and
//! [`local::LocalRemote`] for tests that need no SSH.
//!
//! One call to [`Remote::run`] is one round trip, the cost that matters: the engine
//! batches work into few scripts, and every implementation counts its round trips.
//!
//! Bulk data (a `zfs send` stream) does not fit a script's captured output: for it
//! [`Remote::spawn_reader`] and [`Remote::spawn_writer`] start one command with its
//! standard output or input piped to haelk ([`stream`] joins two of them).

pub mod forward;
#[cfg(test)]
pub mod local;
#[cfg(test)]
pub mod scripted;
pub mod ssh;
pub mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::task::JoinHandle;

/// What a script printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when the script was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The output of a script that succeeded, or an error with its stderr.
    pub fn check(self, host: &str, what: &str) -> Result<Output, RemoteError> {
        if self.success() {
            return Ok(self);
        }
        Err(RemoteError::Failed {
            host: host.to_owned(),
            what: what.to_owned(),
            code: self.code,
            stderr: self.stderr.trim_end().to_owned(),
        })
    }
}

impl From<std::process::Output> for Output {
    fn from(output: std::process::Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Why a remote step did not happen. Shown as `HOST: REASON`; where the host
/// is already named (a host's row, a host's failure line), [`RemoteError::reason`]
/// gives the reason alone, so the name is printed once.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The host could not be reached or the connection broke.
    #[error("{host}: {}", self.reason())]
    Transport { host: String, message: String },
    /// The script ran and failed.
    #[error("{host}: {}", self.reason())]
    Failed {
        host: String,
        what: String,
        code: Option<i32>,
        stderr: String,
    },
}

impl RemoteError {
    /// What went wrong, without the host's name.
    pub fn reason(&self) -> String {
        match self {
            Self::Transport { message, .. } => message.clone(),
            Self::Failed {
                what, code, stderr, ..
            } => format!(
                "{what} failed ({}){}",
                exit_status(*code),
                stderr_suffix(stderr)
            ),
        }
    }
}

fn exit_status(code: Option<i32>) -> String {
    code.map_or_else(
        || "killed by a signal".to_owned(),
        |c| format!("exit status {c}"),
    )
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// A host that runs POSIX `sh` scripts.
pub trait Remote: Send + Sync {
    /// The inventory name of the host, for messages.
    fn host(&self) -> &str;

    /// Runs `script` with `/bin/sh` on the host: one round trip. The script's
    /// commands get an empty standard input.
    fn run(&self, script: &str) -> impl Future<Output = Result<Output, RemoteError>> + Send;

    /// Makes `target` - an address as the host sees it, e.g. a jail's HTTP port -
    /// reachable from here, and returns the local address to connect to. It stays
    /// open as long as the connection to the host.
    fn tunnel(
        &self,
        target: SocketAddr,
    ) -> impl Future<Output = Result<SocketAddr, RemoteError>> + Send;

    /// Round trips made so far.
    fn round_trips(&self) -> u64;

    /// Starts `command` (one line of `sh`) on the host with its standard output
    /// piped here and an empty standard input: one round trip.
    fn spawn_reader(
        &self,
        command: &str,
    ) -> impl Future<Output = Result<Streaming<'_, StreamReader>, RemoteError>> + Send;

    /// Starts `command` (one line of `sh`) on the host with its standard input
    /// fed from here and its standard output discarded: one round trip.
    fn spawn_writer(
        &self,
        command: &str,
    ) -> impl Future<Output = Result<Streaming<'_, StreamWriter>, RemoteError>> + Send;
}

/// The standard output of a command started by [`Remote::spawn_reader`].
pub type StreamReader = Box<dyn AsyncRead + Send + Unpin>;
/// The standard input of a command started by [`Remote::spawn_writer`].
pub type StreamWriter = Box<dyn AsyncWrite + Send + Unpin>;
/// How a streaming command ended: its exit code, `None` when killed by a signal.
pub(crate) type Exit<'a> =
    Pin<Box<dyn Future<Output = Result<Option<i32>, RemoteError>> + Send + 'a>>;

/// Which standard stream of a streaming command is piped to haelk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Its standard output ([`Remote::spawn_reader`]).
    Read,
    /// Its standard input ([`Remote::spawn_writer`]).
    Write,
}

/// A streaming command as a transport started it: the piped stream of its
/// [`Direction`], stderr and exit. Each transport only starts the process; this
/// turns it into a [`Streaming`], the same way for all of them.
pub(crate) struct Started<'a> {
    pub(crate) stdout: Option<StreamReader>,
    pub(crate) stdin: Option<StreamWriter>,
    pub(crate) stderr: Box<dyn AsyncRead + Send + Unpin>,
    pub(crate) exit: Exit<'a>,
}

impl<'a> Started<'a> {
    /// The command's standard output as a [`Streaming`].
    pub(crate) fn reader(
        self,
        host: &str,
        command: &str,
    ) -> Result<Streaming<'a, StreamReader>, RemoteError> {
        let pipe = self.stdout.ok_or_else(|| not_piped(host, "output"))?;
        Ok(Streaming::new(host, command, pipe, self.stderr, self.exit))
    }

    /// The command's standard input as a [`Streaming`].
    pub(crate) fn writer(
        self,
        host: &str,
        command: &str,
    ) -> Result<Streaming<'a, StreamWriter>, RemoteError> {
        let pipe = self.stdin.ok_or_else(|| not_piped(host, "input"))?;
        Ok(Streaming::new(host, command, pipe, self.stderr, self.exit))
    }
}

fn not_piped(host: &str, stream: &str) -> RemoteError {
    RemoteError::Transport {
        host: host.to_owned(),
        message: format!("the streaming command's standard {stream} is not piped"),
    }
}

/// The most of a streaming command's stderr kept for its error message.
const STDERR_LIMIT: u64 = 64 * 1024;

/// A command running on a host with one standard stream piped to haelk
/// (`Pipe`), borrowed from the connection it runs on. Its stderr is collected in
/// the background, so a chatty command never blocks on it.
pub struct Streaming<'a, Pipe> {
    host: String,
    command: String,
    pipe: Option<Pipe>,
    stderr: JoinHandle<String>,
    exit: Exit<'a>,
}

impl<'a, Pipe> Streaming<'a, Pipe> {
    /// Wraps a started command; `stderr` is read to its end in a background task.
    fn new(
        host: &str,
        command: &str,
        pipe: Pipe,
        stderr: impl AsyncRead + Send + Unpin + 'static,
        exit: Exit<'a>,
    ) -> Self {
        let stderr = tokio::spawn(async move {
            let mut text = Vec::new();
            // A read error only shortens the message: the exit status still decides.
            let _ = stderr.take(STDERR_LIMIT).read_to_end(&mut text).await;
            String::from_utf8_lossy(&text).into_owned()
        });
        Self {
            host: host.to_owned(),
            command: command.to_owned(),
            pipe: Some(pipe),
            stderr,
            exit,
        }
    }

    /// The piped stream; `None` once taken.
    pub fn pipe(&mut self) -> Option<&mut Pipe> {
        self.pipe.as_mut()
    }

    /// Closes the pipe (the command sees end of input, or a broken pipe on
    /// output), waits for the command to end, and fails with its stderr unless it
    /// exited with status 0.
    pub async fn finish(mut self) -> Result<(), RemoteError> {
        drop(self.pipe.take());
        let code = self.exit.await?;
        let stderr = self.stderr.await.unwrap_or_default();
        Output {
            code,
            stdout: String::new(),
            stderr,
        }
        .check(&self.host, &format!("`{}`", self.command))
        .map(drop)
    }
}

/// An error with its sources, one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Wraps a script so `sh -s` can read it from standard input without any command
/// in it reading the rest of the script: the shell parses the whole brace group
/// before running it, and the group's standard input is `/dev/null`.
pub(crate) fn stdin_script(script: &str) -> String {
    format!("{{\n{script}\n}} </dev/null\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_script_reports_host_step_status_and_stderr() {
        let output = Output {
            code: Some(3),
            stdout: String::new(),
            stderr: "zfs: no such pool\n".into(),
        };
        let err = output.check("8f14-jmm", "creating datasets").unwrap_err();
        assert_eq!(
            err.to_string(),
            "8f14-jmm: creating datasets failed (exit status 3): zfs: no such pool"
        );
        let killed = Output {
            code: None,
            stdout: String::new(),
            stderr: String::new(),
        };
        let err = killed.check("h1", "facts").unwrap_err();
        assert_eq!(err.to_string(), "h1: facts failed (killed by a signal)");
        assert_eq!(err.reason(), "facts failed (killed by a signal)");
    }
}
