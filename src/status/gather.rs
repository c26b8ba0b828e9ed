//! The I/O of `haelk status`: connect to the hosts, then - all hosts at once - one
//! facts round trip per host, one round trip per host with haproxy jails for their
//! `show stat` and the CARP state of their VIP interface (both round trips on the
//! same multiplexed connection, side by side), and the
//! Elasticsearch and Kibana APIs through SSH port forwards.
//!
//! Nothing here judges: what was seen goes into [`Observed`] and
//! [`Estate::build`](super::Estate::build) decides what is wrong. A host that cannot
//! be reached is an `Err` in its entry, never an early return.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;

use super::model::{Observed, ObservedCluster, ObservedHost};
use crate::desired::DesiredState;
use crate::elasticsearch::{self, EsError, locate};
use crate::facts::{self, GatherError};
use crate::haproxy::{self, HostCarp};
use crate::inventory::{Host, Inventory, Jail, Role};
use crate::kibana;
use crate::remote::ssh::{self, HostKeyPolicy, SshRemote};
use crate::remote::{Remote, RemoteError};

/// How long the Elasticsearch calls of one round may take together: a node that
/// accepts connections and never answers must not hold the report back.
const ES_TIMEOUT: Duration = Duration::from_secs(15);

/// The connections to the selected hosts, kept across `--watch` rounds: a host
/// that could not be reached is tried again at the next round. Port forwards
/// are opened once per connection by the connection itself ([`Remote::tunnel`]).
pub struct Connections<'a, R = SshRemote> {
    hosts: Vec<&'a Host>,
    policy: HostKeyPolicy,
    remotes: Vec<Result<R, String>>,
    /// Round trips of connections already closed (a host that dropped).
    closed_round_trips: u64,
}

impl<'a> Connections<'a, SshRemote> {
    /// Connects to every host at once.
    pub async fn open(hosts: Vec<&'a Host>, policy: HostKeyPolicy) -> Self {
        let remotes = ssh::connect_all(&hosts, policy, hosts.len())
            .await
            .into_iter()
            .map(|r| r.map_err(|e| e.reason()))
            .collect();
        Self {
            hosts,
            policy,
            remotes,
            closed_round_trips: 0,
        }
    }

    /// Connects again to the hosts that could not be reached.
    async fn reconnect(&mut self) {
        let retry: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.remotes[i].is_err())
            .collect();
        let hosts: Vec<&Host> = retry.iter().map(|&i| self.hosts[i]).collect();
        let results = ssh::connect_all(&hosts, self.policy, hosts.len()).await;
        for (index, result) in retry.into_iter().zip(results) {
            self.remotes[index] = result.map_err(|e| e.reason());
        }
    }

    /// Closes the master connections.
    pub async fn close(self) {
        for remote in self.remotes.into_iter().flatten() {
            // Status changed nothing on the host: a close that fails loses nothing.
            if let Err(err) = remote.close().await {
                tracing::debug!("closing the connection: {err}");
            }
        }
    }
}

impl<'a, R: Remote> Connections<'a, R> {
    /// Connections made elsewhere (a test's scripted hosts), one per host.
    #[cfg(test)]
    pub fn from_remotes(hosts: Vec<&'a Host>, remotes: Vec<Result<R, String>>) -> Self {
        Self {
            hosts,
            policy: HostKeyPolicy::Strict,
            remotes,
            closed_round_trips: 0,
        }
    }

    /// Round trips made so far, every host together.
    pub fn round_trips(&self) -> u64 {
        self.closed_round_trips
            + self
                .remotes
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(Remote::round_trips)
                .sum::<u64>()
    }

    fn index_of(&self, host: &Host) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == host.name)
    }

    /// A local address that reaches `target` through `host`.
    async fn tunnel(&self, index: usize, target: SocketAddr) -> Result<SocketAddr, String> {
        let remote = self.remotes[index].as_ref().map_err(Clone::clone)?;
        remote.tunnel(target).await.map_err(|e| e.to_string())
    }

    /// Drops a connection that broke, so the next round connects again.
    fn forget(&mut self, index: usize, error: String) {
        // Its forwards go with it.
        if let Ok(remote) = std::mem::replace(&mut self.remotes[index], Err(error)) {
            self.closed_round_trips += remote.round_trips();
        }
    }
}

/// One round: everything `status` reports, hosts and APIs in parallel.
pub async fn gather(
    connections: &mut Connections<'_>,
    inventory: &Inventory,
    desired: &DesiredState,
) -> Observed {
    let started = std::time::Instant::now();
    connections.reconnect().await;
    tracing::debug!(elapsed = ?started.elapsed(), "connections");
    gather_connected(connections, inventory, desired).await
}

/// One round over the connections there are, reaching no host it has no
/// connection to.
pub async fn gather_connected<R: Remote>(
    connections: &mut Connections<'_, R>,
    inventory: &Inventory,
    desired: &DesiredState,
) -> Observed {
    let conns = &*connections;
    let carp_interface = inventory.cluster.carp.interface.as_str();
    let hosts = join_all(
        conns
            .hosts
            .iter()
            .enumerate()
            .map(|(index, host)| observe_host(conns, index, host, desired, carp_interface)),
    );
    let elasticsearch = observe_elasticsearch(conns, inventory);
    let kibana = observe_kibana(conns, inventory);
    let timed = |what: &'static str, started: std::time::Instant| {
        tracing::debug!(elapsed = ?started.elapsed(), "{what}");
    };
    let now = std::time::Instant::now();
    let (hosts, elasticsearch, kibana) = tokio::join!(
        hosts,
        async {
            let cluster = elasticsearch.await;
            timed("elasticsearch", now);
            cluster
        },
        async {
            let kibana = kibana.await;
            timed("kibana", now);
            kibana
        }
    );
    let mut observed = Observed {
        hosts: Vec::new(),
        elasticsearch,
        kibana,
    };
    for (index, (host, broken)) in hosts.into_iter().enumerate() {
        if let Some(error) = broken {
            connections.forget(index, error);
        }
        observed.hosts.push(host);
    }
    observed
}

/// Facts, haproxy stats and CARP states of one host; the second value is set
/// when the connection broke.
async fn observe_host<R: Remote>(
    conns: &Connections<'_, R>,
    index: usize,
    host: &Host,
    desired: &DesiredState,
    carp_interface: &str,
) -> (ObservedHost, Option<String>) {
    let name = host.name.to_string();
    let remote = match &conns.remotes[index] {
        Ok(remote) => remote,
        Err(error) => {
            let seen = ObservedHost {
                name,
                facts: Err(error.clone()),
                haproxy: None,
                carp: HostCarp::new(),
            };
            return (seen, None);
        }
    };
    let Some(state) = desired.hosts.iter().find(|h| h.host == host.name) else {
        let seen = ObservedHost {
            name,
            facts: Err("no desired state for this host".to_owned()),
            haproxy: None,
            carp: HostCarp::new(),
        };
        return (seen, None);
    };
    let haproxy_jails: Vec<&str> = host
        .jails
        .iter()
        .filter(|j| j.role == Role::Haproxy)
        .map(|j| j.name.as_str())
        .collect();
    let stats = async {
        if haproxy_jails.is_empty() {
            return None;
        }
        Some(
            haproxy::read_stats_and_carp(remote, haproxy_jails.iter().copied(), carp_interface)
                .await
                .map_err(|e| e.to_string()),
        )
    };
    let started = std::time::Instant::now();
    let (facts, haproxy) = tokio::join!(facts::gather(remote, state), stats);
    tracing::debug!(host = %host.name, elapsed = ?started.elapsed(), "facts, haproxy stats and CARP");
    let broken = match &facts {
        Err(GatherError::Remote(err @ RemoteError::Transport { .. })) => Some(err.reason()),
        _ => None,
    };
    let (haproxy, carp) = match haproxy {
        Some(Ok((stats, carp))) if broken.is_none() => (Some(Ok(stats)), carp),
        Some(Err(error)) if broken.is_none() => (Some(Err(error)), HostCarp::new()),
        _ => (None, HostCarp::new()),
    };
    let seen = ObservedHost {
        name,
        // The row names the host: the reason alone.
        facts: facts.map_err(|e| e.reason()),
        haproxy,
        carp,
    };
    (seen, broken)
}

/// The Elasticsearch jails of the connected hosts, in inventory order.
fn es_candidates<'h, R>(conns: &Connections<'h, R>) -> Vec<(&'h Jail, usize)> {
    conns
        .hosts
        .iter()
        .enumerate()
        .filter(|(index, _)| conns.remotes[*index].is_ok())
        .flat_map(|(index, host)| {
            host.jails
                .iter()
                .filter(|j| j.role == Role::Elasticsearch)
                .map(move |j| (j, index))
        })
        .collect()
}

/// The cluster as the first node that answers sees it; `None` when no
/// Elasticsearch jail is on a selected host.
async fn observe_elasticsearch<R: Remote>(
    conns: &Connections<'_, R>,
    inventory: &Inventory,
) -> Option<Result<ObservedCluster, String>> {
    let selected = conns
        .hosts
        .iter()
        .any(|h| h.jails.iter().any(|j| j.role == Role::Elasticsearch));
    if !selected {
        return None;
    }
    let port = inventory.cluster.elasticsearch.http_port;
    let work = async {
        let located = locate::first_answering(es_candidates(conns), port, |index, target| {
            conns.tunnel(index, target)
        })
        .await
        .map_err(|err| err.reasons())?;
        cluster(&located.client, located.root.name).await
    };
    Some(
        tokio::time::timeout(ES_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {}s", ES_TIMEOUT.as_secs()))),
    )
}

async fn cluster(client: &elasticsearch::Client, via: String) -> Result<ObservedCluster, String> {
    let text = |e: EsError| e.to_string();
    let (health, nodes, stats) = tokio::join!(client.health(), client.nodes(), client.node_stats());
    let health = health.map_err(text)?;
    let unassigned_reason = if health.unassigned_shards > 0 {
        // Best effort: the reason enriches the cluster line, its absence hides nothing.
        client.allocation_explain().await.ok().flatten()
    } else {
        None
    };
    Ok(ObservedCluster {
        via,
        health,
        nodes: nodes.map_err(text)?,
        stats: stats.map_err(text),
        unassigned_reason,
    })
}

/// `/api/status` of every Kibana jail on the connected hosts, all at once.
async fn observe_kibana<R: Remote>(
    conns: &Connections<'_, R>,
    inventory: &Inventory,
) -> BTreeMap<String, Result<kibana::KibanaStatus, String>> {
    let port = inventory.cluster.kibana.port;
    let jails: Vec<(usize, &Jail)> = conns
        .hosts
        .iter()
        .flat_map(|host| {
            host.jails
                .iter()
                .filter(|j| j.role == Role::Kibana)
                .map(move |j| (host, j))
        })
        .filter_map(|(host, jail)| Some((conns.index_of(host)?, jail)))
        .filter(|(index, _)| conns.remotes[*index].is_ok())
        .collect();
    let results = join_all(jails.iter().map(|(index, jail)| async move {
        let local = conns
            .tunnel(*index, SocketAddr::new(jail.ip.into(), port))
            .await?;
        kibana::status(&format!("http://{local}")).await
    }))
    .await;
    jails
        .iter()
        .map(|(_, jail)| jail.name.to_string())
        .zip(results)
        .collect()
}
