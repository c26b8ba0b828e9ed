//! SSH local port forwards: how haelk reaches a service inside a jail (the
//! Elasticsearch REST API on a jail IP) from the operator's machine, over the
//! host's existing master connection - in production and in the lab alike.
//!
//! A forward is a request to the local ssh multiplex master: it listens on a
//! loopback port here and opens a `direct-tcpip` channel per accepted connection.
//! Requesting one involves no exchange with the remote host, so it is not counted
//! as a round trip ([`super::Remote::round_trips`] counts scripts run there).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use openssh::ForwardType;
use tracing::debug;

use super::error_chain;
use super::ssh::SshRemote;
use super::{Remote, RemoteError};

/// How many fresh local ports to try when the one picked was taken before the
/// ssh master could bind it (another process won the race).
const PORT_ATTEMPTS: usize = 4;

/// A live local forward: connections to [`LocalForward::local`] reach `target`
/// from the remote host. It lasts until [`LocalForward::close`] or the end of the
/// master connection.
pub struct LocalForward<'a> {
    remote: &'a SshRemote,
    local: SocketAddr,
    target: SocketAddr,
}

impl std::fmt::Debug for LocalForward<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalForward")
            .field("host", &self.remote.host())
            .field("local", &self.local)
            .field("target", &self.target)
            .finish()
    }
}

impl LocalForward<'_> {
    /// The loopback address to connect to.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Stops listening locally; open connections through the forward end too.
    pub async fn close(self) -> Result<(), RemoteError> {
        self.remote
            .session()
            .close_port_forward(ForwardType::Local, self.local, self.target)
            .await
            .map_err(|err| RemoteError::Transport {
                host: self.remote.host().to_owned(),
                message: format!(
                    "closing the port forward {} -> {}: {}",
                    self.local,
                    self.target,
                    error_chain(&err)
                ),
            })
    }
}

/// Forwards a free loopback port here to `target` as seen from `remote`'s host.
pub async fn forward(
    remote: &SshRemote,
    target: SocketAddr,
) -> Result<LocalForward<'_>, RemoteError> {
    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let local = free_loopback_port().map_err(|err| RemoteError::Transport {
            host: remote.host().to_owned(),
            message: format!("no free local port for a forward to {target}: {err}"),
        })?;
        match remote
            .session()
            .request_port_forward(ForwardType::Local, local, target)
            .await
        {
            Ok(()) => {
                debug!(host = remote.host(), %local, %target, "port forward open");
                return Ok(LocalForward {
                    remote,
                    local,
                    target,
                });
            }
            // The mux protocol answers a failed bind with a bare "Port forwarding
            // failed"; whether the port was taken meanwhile is told by trying it.
            Err(err) if port_is_taken(local) => last_error = error_chain(&err),
            Err(err) => {
                return Err(RemoteError::Transport {
                    host: remote.host().to_owned(),
                    message: format!("port forward {local} -> {target}: {}", error_chain(&err)),
                });
            }
        }
    }
    Err(RemoteError::Transport {
        host: remote.host().to_owned(),
        message: format!(
            "port forward to {target}: every local port tried was taken ({PORT_ATTEMPTS} attempts): {last_error}"
        ),
    })
}

/// A loopback port nobody listens on right now. The listener is dropped before the
/// ssh master binds the port, hence the retry in [`forward`].
fn free_loopback_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

fn port_is_taken(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_err()
}
