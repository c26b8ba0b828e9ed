//! The production [`Remote`]: one multiplexed OpenSSH master connection per host
//! (the `openssh` crate, native mux), honouring the user's ssh config, agent and
//! known_hosts. Host keys are checked strictly unless the operator opts in to
//! accepting new ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use super::{
    Direction, Exit, Output, Remote, RemoteError, Started, StreamReader, StreamWriter, Streaming,
    error_chain, stdin_script,
};
use crate::inventory::Host;
use crate::shell::quote;

/// How long a master connection outlives its last client. haelk holds one client
/// connection open for as long as it uses the master (see [`SshRemote`]), so this
/// is how long a master survives haelk when haelk dies without closing it
/// (SIGKILL, a crash): long enough to bridge the moment between starting the
/// master and holding it, short enough that nothing is left behind for long.
pub const MASTER_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

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
fn session_builder(host: &Host, policy: HostKeyPolicy) -> SessionBuilder {
    let mut builder = SessionBuilder::default();
    builder
        .user(host.ssh.user.clone())
        .port(host.ssh.port)
        .known_hosts_check(match policy {
            HostKeyPolicy::Strict => KnownHosts::Strict,
            HostKeyPolicy::AcceptNew => KnownHosts::Add,
        })
        .connect_timeout(Duration::from_secs(10))
        // A host that stops answering ends its master (3 unanswered probes).
        .server_alive_interval(Duration::from_secs(5))
        .control_persist(ControlPersist::IdleFor(
            NonZeroUsize::new(MASTER_IDLE_TIMEOUT.as_secs() as usize).unwrap_or(NonZeroUsize::MIN),
        ))
        // `openssh` makes a CONTROL_DIR_PREFIX directory there per master.
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

/// Where the `openssh` crate makes a master's control directory, and the prefix
/// of its name there.
const CONTROL_DIR_PREFIX: &str = ".ssh-connection";

/// How old a control directory without a socket must be to count as left over:
/// a master binds its socket within its connect timeout of the directory being
/// made, and removes it when it exits.
const LEFT_OVER_AFTER: Duration = Duration::from_secs(60);

/// Removes the control directories that masters left in `root` when the haelk
/// that started them was killed (SIGKILL): the master has exited (its socket is
/// gone) but nobody removed the directory and its log. A directory is only
/// removed when it has no socket and has not changed for [`LEFT_OVER_AFTER`], so
/// a master being started right now, by this or another program, keeps its own.
/// Returns how many were removed.
fn remove_left_over_control_dirs(root: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(CONTROL_DIR_PREFIX)
        })
        .filter(|entry| {
            let path = entry.path();
            let idle = std::fs::symlink_metadata(&path)
                .ok()
                .filter(std::fs::Metadata::is_dir)
                .and_then(|meta| meta.modified().ok())
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= LEFT_OVER_AFTER);
            idle && std::fs::symlink_metadata(path.join("master")).is_err()
        })
        // Best effort: a directory that cannot be removed is only clutter.
        .filter(|entry| std::fs::remove_dir_all(entry.path()).is_ok())
        .count()
}

/// Connects to `hosts`, at most `forks` at a time; one result per host, in order.
/// Control directories left by a killed earlier run are removed first.
pub async fn connect_all(
    hosts: &[&Host],
    policy: HostKeyPolicy,
    forks: usize,
) -> Vec<Result<SshRemote, RemoteError>> {
    use futures_util::{StreamExt, stream};
    let removed = remove_left_over_control_dirs(&std::env::temp_dir());
    if removed > 0 {
        tracing::debug!("removed {removed} control directories left by killed runs");
    }
    stream::iter(hosts.iter().map(|host| SshRemote::connect(host, policy)))
        .buffered(forks.max(1))
        .collect()
        .await
}

/// A live SSH connection to one host.
///
/// Its master process (`ssh -M`, started by the `openssh` crate, detached from
/// haelk) lives exactly as long as haelk uses it: [`SshRemote::close`] and dropping
/// the remote (an interrupted run drops it) stop it, and when haelk dies without
/// doing either, the connection it holds to the master's control socket closes
/// with it, and the master exits [`MASTER_IDLE_TIMEOUT`] later (its
/// `ControlPersist`). An open mux client counts as a use of the master, so the
/// master never idles out while haelk runs, however long a gate waits.
pub struct SshRemote {
    name: String,
    /// Declared before `session`, so it is closed before the session's own drop
    /// asks the master to stop (fields drop in declaration order).
    hold: UnixStream,
    session: Session,
    round_trips: AtomicU64,
    /// Forwards opened by [`Remote::tunnel`], by target: one per target for the
    /// life of the connection, closed with the master.
    tunnels: Mutex<HashMap<SocketAddr, SocketAddr>>,
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
        // A local socket connection: no exchange with the host. If it fails the
        // session is dropped, which stops the master.
        let hold = UnixStream::connect(session.control_socket()).map_err(|err| {
            RemoteError::Transport {
                host: host.name.to_string(),
                message: format!(
                    "cannot hold the ssh master's control socket {}: {err}",
                    session.control_socket().display()
                ),
            }
        })?;
        Ok(Self {
            name: host.name.to_string(),
            hold,
            session,
            round_trips: AtomicU64::new(1),
            tunnels: Mutex::new(HashMap::new()),
        })
    }

    /// The underlying session, for port forwards.
    pub(super) fn session(&self) -> &Session {
        &self.session
    }

    /// Closes the master connection, its forwards and its control directory.
    pub async fn close(self) -> Result<(), RemoteError> {
        let Self {
            name,
            hold,
            session,
            ..
        } = self;
        // The master exits once it has no client left: let go of ours first.
        drop(hold);
        session.close().await.map_err(|err| RemoteError::Transport {
            host: name,
            message: error_chain(&err),
        })
    }

    /// Starts `command` under `/bin/sh -c` with the stream of `direction` piped,
    /// the other one null and stderr piped: one round trip. The command is quoted
    /// as one word for the login shell (sh or csh), which is why it must be one
    /// line: csh cannot quote a newline.
    async fn spawn(&self, command: &str, direction: Direction) -> Result<Started<'_>, RemoteError> {
        if command.contains('\n') {
            return Err(self.transport_error(&std::io::Error::other(
                "a streaming command must be one line",
            )));
        }
        let (stdin, stdout) = match direction {
            Direction::Read => (Stdio::null(), Stdio::piped()),
            Direction::Write => (Stdio::piped(), Stdio::null()),
        };
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
        Ok(Started {
            stdout: child.stdout().take().map(|s| Box::new(s) as StreamReader),
            stdin: child.stdin().take().map(|s| Box::new(s) as StreamWriter),
            stderr: Box::new(stderr),
            exit: self.exit_of(child),
        })
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
        let open = self
            .tunnels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&target)
            .copied();
        if let Some(local) = open {
            return Ok(local);
        }
        // Left open (not closed): it lives as long as the master connection, and
        // every later call for this target reuses it.
        let local = super::forward::forward(self, target).await?.local();
        self.tunnels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(target, local);
        Ok(local)
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn spawn_reader(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamReader>, RemoteError> {
        self.spawn(command, Direction::Read)
            .await?
            .reader(&self.name, command)
    }

    async fn spawn_writer(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamWriter>, RemoteError> {
        self.spawn(command, Direction::Write)
            .await?
            .writer(&self.name, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &std::path::Path, by: Duration) {
        let then = std::time::SystemTime::now() - by;
        std::fs::File::open(path)
            .and_then(|dir| dir.set_modified(then))
            .expect("set mtime");
    }

    #[test]
    fn only_old_control_dirs_without_a_socket_are_removed() {
        let root = tempfile::tempdir().expect("tempdir");
        let make = |name: &str, socket: bool, old: bool| {
            let dir = root.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            std::fs::write(dir.join("log"), "").expect("log");
            if socket {
                // A live master's socket; any file of that name stands for it.
                std::fs::write(dir.join("master"), "").expect("socket");
            }
            if old {
                age(&dir, LEFT_OVER_AFTER + Duration::from_secs(5));
            }
            dir
        };
        let left_over = make(".ssh-connectionAAAA", false, true);
        let live = make(".ssh-connectionBBBB", true, true);
        let starting = make(".ssh-connectionCCCC", false, false);
        let other = make("something-else", false, true);
        assert_eq!(remove_left_over_control_dirs(root.path()), 1);
        assert!(!left_over.exists());
        assert!(live.exists() && starting.exists() && other.exists());
    }
}
