//! A [`Remote`] that runs scripts on this machine: for engine tests without SSH,
//! through exactly the same script path (`sh -s` fed on standard input).

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{
    Direction, Exit, Output, Remote, RemoteError, Started, StreamReader, StreamWriter, Streaming,
    stdin_script,
};

/// Runs scripts with the local `/bin/sh`.
#[derive(Debug)]
pub struct LocalRemote {
    name: String,
    round_trips: AtomicU64,
}

impl LocalRemote {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            round_trips: AtomicU64::new(0),
        }
    }

    /// Starts `sh -c COMMAND` with the stream of `direction` piped, the other
    /// one null and stderr piped: one round trip.
    fn spawn(&self, command: &str, direction: Direction) -> Result<Started<'static>, RemoteError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let (stdin, stdout) = match direction {
            Direction::Read => (Stdio::null(), Stdio::piped()),
            Direction::Write => (Stdio::piped(), Stdio::null()),
        };
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            // Dropping an unfinished stream ends its command, as a closed ssh
            // channel would.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.transport_error(e))?;
        let stderr = child.stderr.take().ok_or_else(|| {
            self.transport_error(std::io::Error::other("standard error is not piped"))
        })?;
        Ok(Started {
            stdout: child.stdout.take().map(|s| Box::new(s) as StreamReader),
            stdin: child.stdin.take().map(|s| Box::new(s) as StreamWriter),
            stderr: Box::new(stderr),
            exit: exit_of(self.name.clone(), child),
        })
    }

    fn transport_error(&self, err: std::io::Error) -> RemoteError {
        RemoteError::Transport {
            host: self.name.clone(),
            message: format!("cannot run /bin/sh: {err}"),
        }
    }
}

impl Remote for LocalRemote {
    fn host(&self) -> &str {
        &self.name
    }

    async fn run(&self, script: &str) -> Result<Output, RemoteError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut child = Command::new("/bin/sh")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.transport_error(e))?;
        let mut stdin = child.stdin.take().ok_or_else(|| {
            self.transport_error(std::io::Error::other(
                "the shell's standard input is not piped",
            ))
        })?;
        stdin
            .write_all(stdin_script(script).as_bytes())
            .await
            .map_err(|e| self.transport_error(e))?;
        drop(stdin);
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| self.transport_error(e))?;
        Ok(output.into())
    }

    /// This machine reaches `target` itself.
    async fn tunnel(
        &self,
        target: std::net::SocketAddr,
    ) -> Result<std::net::SocketAddr, RemoteError> {
        Ok(target)
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn spawn_reader(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamReader>, RemoteError> {
        self.spawn(command, Direction::Read)?
            .reader(&self.name, command)
    }

    async fn spawn_writer(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamWriter>, RemoteError> {
        self.spawn(command, Direction::Write)?
            .writer(&self.name, command)
    }
}

/// The exit code of a spawned `sh`, once it ends.
fn exit_of(host: String, mut child: tokio::process::Child) -> Exit<'static> {
    Box::pin(async move {
        child
            .wait()
            .await
            .map(|status| status.code())
            .map_err(|e| RemoteError::Transport {
                host,
                message: format!("waiting for sh: {e}"),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_a_script_and_counts_the_round_trip() {
        let remote = LocalRemote::new("local");
        let output = remote.run("echo out; echo err >&2; exit 4").await.unwrap();
        assert_eq!(output.code, Some(4));
        assert_eq!(output.stdout, "out\n");
        assert_eq!(output.stderr, "err\n");
        assert_eq!(remote.round_trips(), 1);
    }

    #[tokio::test]
    async fn a_command_reading_stdin_cannot_eat_the_rest_of_the_script() {
        let remote = LocalRemote::new("local");
        let output = remote.run("cat\necho still-running").await.unwrap();
        assert_eq!(output.stdout, "still-running\n");
    }
}
