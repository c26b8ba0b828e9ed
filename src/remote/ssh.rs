//! The production [`Remote`]: one multiplexed OpenSSH master connection per host
//! (the `openssh` crate, native mux), honouring the user's ssh config, agent and
//! known_hosts. Host keys are checked strictly unless the operator opts in to
//! accepting new ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::net::SocketAddr;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use super::{
    Exit, Output, Remote, RemoteError, StreamReader, StreamWriter, Streaming, error_chain,
    stdin_script,
};
use crate::inventory::Host;
use crate::shell::quote;

/// How unknown host keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// The host must already be in known_hosts with this key (`StrictHostKeyChecking=yes`).
    #[default]
    Strict,
    /// A host not in known_hosts is added; a changed key is still refused
    /// (`StrictHostKeyChecking=accept-new`).
    AcceptNew,
}

/// The ssh connection settings of a host, as `SessionBuilder` wants them.
pub fn session_builder(host: &Host, policy: HostKeyPolicy) -> SessionBuilder {
    let mut builder = SessionBuilder::default();
    builder
        .user(host.ssh.user.clone())
        .port(host.ssh.port)
        .known_hosts_check(match policy {
            HostKeyPolicy::Strict => KnownHosts::Strict,
            HostKeyPolicy::AcceptNew => KnownHosts::Add,
        })
        .connect_timeout(Duration::from_secs(10))
        .server_alive_interval(Duration::from_secs(5))
        .control_directory(std::env::temp_dir());
    if let Some(key) = &host.ssh.identity_file {
        builder.keyfile(key);
    }
    if let Some(known_hosts) = &host.ssh.known_hosts {
        builder.user_known_hosts_file(known_hosts);
    }
    if let Some(jump) = &host.ssh.jump {
        builder.jump_hosts([jump]);
    }
    builder
}

/// Connects to `hosts`, at most `forks` at a time; one result per host, in order.
pub async fn connect_all(
    hosts: &[&Host],
    policy: HostKeyPolicy,
    forks: usize,
) -> Vec<Result<SshRemote, RemoteError>> {
    use futures_util::{StreamExt, stream};
    stream::iter(hosts.iter().map(|host| SshRemote::connect(host, policy)))
        .buffered(forks.max(1))
        .collect()
        .await
}

/// A live SSH connection to one host.
pub struct SshRemote {
    name: String,
    session: Session,
    round_trips: AtomicU64,
}

impl SshRemote {
    /// Opens the master connection (one round trip, counted).
    pub async fn connect(host: &Host, policy: HostKeyPolicy) -> Result<Self, RemoteError> {
        let session = session_builder(host, policy)
            .connect_mux(&host.address)
            .await
            .map_err(|err| RemoteError::Transport {
                host: host.name.to_string(),
                message: format!(
                    "cannot connect over ssh to {}: {}",
                    host.address,
                    error_chain(&err)
                ),
            })?;
        Ok(Self {
            name: host.name.to_string(),
            session,
            round_trips: AtomicU64::new(1),
        })
    }

    /// The underlying session, for port forwards and streams.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Closes the master connection.
    pub async fn close(self) -> Result<(), RemoteError> {
        let name = self.name;
        self.session
            .close()
            .await
            .map_err(|err| RemoteError::Transport {
                host: name,
                message: error_chain(&err),
            })
    }

    /// Starts `command` under `/bin/sh -c` with the given standard input and
    /// output, stderr piped: one round trip. The command is quoted as one word for
    /// the login shell (sh or csh), which is why it must be one line: csh cannot
    /// quote a newline.
    async fn spawn(
        &self,
        command: &str,
        stdin: Stdio,
        stdout: Stdio,
    ) -> Result<(openssh::Child<&Session>, openssh::ChildStderr), RemoteError> {
        if command.contains('\n') {
            return Err(self.transport_error(&std::io::Error::other(
                "a streaming command must be one line",
            )));
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut child = self
            .session
            .raw_command(format!("/bin/sh -c {}", quote(command)))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let stderr = child.stderr().take().ok_or_else(|| {
            self.transport_error(&std::io::Error::other("standard error is not piped"))
        })?;
        Ok((child, stderr))
    }

    /// The exit code of a spawned command, once it ends.
    fn exit_of<'a>(&self, child: openssh::Child<&'a Session>) -> Exit<'a> {
        let host = self.name.clone();
        Box::pin(async move {
            child
                .wait()
                .await
                .map(|status| status.code())
                .map_err(|err| RemoteError::Transport {
                    host,
                    message: format!("ssh: {}", error_chain(&err)),
                })
        })
    }

    fn transport_error(&self, err: &dyn std::error::Error) -> RemoteError {
        RemoteError::Transport {
            host: self.name.clone(),
            message: format!("ssh: {}", error_chain(err)),
        }
    }
}

impl Remote for SshRemote {
    fn host(&self) -> &str {
        &self.name
    }

    async fn run(&self, script: &str) -> Result<Output, RemoteError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        // The script travels on standard input: the command line stays trivial, so
        // the login shell (csh or sh) never parses it and ARG_MAX never limits it.
        let mut child = self
            .session
            .raw_command("/bin/sh -s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let mut stdin = child.stdin().take().ok_or_else(|| {
            self.transport_error(&std::io::Error::other("standard input is not piped"))
        })?;
        stdin
            .write_all(stdin_script(script).as_bytes())
            .await
            .map_err(|e| self.transport_error(&e))?;
        drop(stdin);
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| self.transport_error(&e))?;
        Ok(output.into())
    }

    async fn tunnel(&self, target: SocketAddr) -> Result<SocketAddr, RemoteError> {
        // Left open (not closed): it lives as long as the master connection.
        super::forward::forward(self, target)
            .await
            .map(|forward| forward.local())
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn spawn_reader(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamReader>, RemoteError> {
        let (mut child, stderr) = self.spawn(command, Stdio::null(), Stdio::piped()).await?;
        let stdout = child.stdout().take().ok_or_else(|| {
            self.transport_error(&std::io::Error::other("standard output is not piped"))
        })?;
        let exit = self.exit_of(child);
        Ok(Streaming::new(
            &self.name,
            command,
            Box::new(stdout) as StreamReader,
            stderr,
            exit,
        ))
    }

    async fn spawn_writer(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamWriter>, RemoteError> {
        let (mut child, stderr) = self.spawn(command, Stdio::piped(), Stdio::null()).await?;
        let stdin = child.stdin().take().ok_or_else(|| {
            self.transport_error(&std::io::Error::other("standard input is not piped"))
        })?;
        let exit = self.exit_of(child);
        Ok(Streaming::new(
            &self.name,
            command,
            Box::new(stdin) as StreamWriter,
            stderr,
            exit,
        ))
    }
}
