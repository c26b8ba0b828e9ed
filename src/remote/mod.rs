//! Running shell scripts on hosts: the [`Remote`] trait the engine is written
//! against, with [`ssh::SshRemote`] for real hosts (and the lab) and
//! [`local::LocalRemote`] for tests that need no SSH.
//!
//! One call to [`Remote::run`] is one round trip, the cost that matters: the engine
//! batches work into few scripts, and every implementation counts its round trips.

pub mod forward;
pub mod local;
pub mod ssh;

use std::future::Future;
use std::net::SocketAddr;

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

/// Why a remote step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The host could not be reached or the connection broke.
    #[error("{host}: {message}")]
    Transport { host: String, message: String },
    /// The script ran and failed.
    #[error("{host}: {what} failed ({}){}", exit_status(*.code), stderr_suffix(.stderr))]
    Failed {
        host: String,
        what: String,
        code: Option<i32>,
        stderr: String,
    },
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
        assert_eq!(
            killed.check("h1", "facts").unwrap_err().to_string(),
            "h1: facts failed (killed by a signal)"
        );
    }
}
