//! Restarting Elasticsearch nodes one at a time without losing availability, as
//! Elastic's rolling-restart procedure and ECK do it: only from green; replicas
//! held in place (`allocation.enable: primaries`) while the node is away, so they
//! are not rebuilt elsewhere; allocation always restored; green again before the
//! next node. The order (the elected master last) is deploy's: see the
//! Elasticsearch play.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::{Instant, sleep};
use tracing::{info, warn};

use super::liveness::{self, Observation};
use super::types::{Allocation, HealthStatus, Node};
use super::{Client, EsError};

/// Pause between two looks at the cluster's node list while a node restarts.
const REJOIN_POLL: Duration = Duration::from_millis(500);
/// The longest one look at the cluster's health waits, so the other nodes are
/// looked at (and the wait reported) this often at least.
const GREEN_SLICE: Duration = Duration::from_secs(2);
/// Attempts at restoring allocation while a master may be being elected.
const RESTORE_ATTEMPTS: u32 = 5;

/// What a restart needs from its caller while it runs: the declared nodes as
/// they are now, and a place to say what it is waiting for.
pub trait Watch {
    /// Looks at every declared node now (see [`liveness`]).
    fn observe(&self) -> impl Future<Output = Observation>;
    /// Reports a wait that goes on: what for, for how long so far, what is
    /// still missing.
    fn waiting(&self, what: &str, waited: Duration, missing: &str);
}

/// A [`Watch`] over one API client per declared node, each talking to that
/// node's own address; waits go to the log.
pub struct ClientWatch {
    nodes: Vec<(String, Arc<Client>)>,
}

impl ClientWatch {
    /// `nodes`: every declared node's name and a client for its own address.
    pub fn new(nodes: Vec<(String, Arc<Client>)>) -> Self {
        Self { nodes }
    }
}

impl Watch for ClientWatch {
    async fn observe(&self) -> Observation {
        observe(&self.nodes).await
    }

    fn waiting(&self, what: &str, waited: Duration, missing: &str) {
        info!(
            "waiting {} for {what}: {missing}",
            crate::units::human_duration(waited)
        );
    }
}

/// Asks every node, in parallel, who it is (on its own address) and what its
/// own cluster state says; the membership is the one of the node that is the
/// master in its own state.
pub async fn observe(nodes: &[(String, Arc<Client>)]) -> Observation {
    let seen = join_all(nodes.iter().map(|(_, client)| async move {
        match client.answering_name().await {
            Ok(name) => {
                let membership = client.local_membership().await.map_err(|e| e.to_string());
                (Ok(name), Some(membership))
            }
            Err(err) => (Err(err.to_string()), None),
        }
    }))
    .await;
    let mut views = Vec::new();
    let mut membership = None;
    for ((_, view), (name, _)) in seen.iter().zip(nodes) {
        match view {
            Some(Ok(view)) if view.master.as_deref() == Some(name.as_str()) => {
                membership = Some(view.clone());
            }
            Some(Ok(view)) => views.push(format!(
                "{name} follows {}",
                view.master.as_deref().unwrap_or("no master")
            )),
            Some(Err(err)) => views.push(format!("{name}: {err}")),
            None => {}
        }
    }
    Observation {
        expected: nodes.iter().map(|(name, _)| name.clone()).collect(),
        answers: nodes
            .iter()
            .zip(&seen)
            .map(|((name, _), (answer, _))| (name.clone(), answer.clone()))
            .collect(),
        membership: membership.ok_or_else(|| {
            format!(
                "no node is the master in its own cluster state ({})",
                if views.is_empty() {
                    "none answers".to_owned()
                } else {
                    views.join(", ")
                }
            )
        }),
        stopped: BTreeSet::new(),
    }
}

/// Restarts the node called `node` safely. `client` must talk to another node;
/// `watch` sees every declared node; `restart` stops and starts the node (on
/// its host) and returns once the service says it started.
///
/// Refuses unless the cluster is green now and every node, this one included,
/// is up ([`liveness::may_stop`]); then sets allocation to primaries, flushes
/// (best effort), restarts, waits until the node has rejoined as a new process,
/// restores allocation - also when the restart or the wait failed - and waits
/// for green. While the node is away, another node going away stops the
/// restart, named ([`liveness::others_still_up`]). The rejoin and green waits
/// are each bounded by `green_timeout`, and reported to `watch` as they go.
pub async fn restart_node<W, F, Fut>(
    client: &Client,
    node: &str,
    green_timeout: Duration,
    watch: &W,
    restart: F,
) -> Result<(), EsError>
where
    W: Watch,
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let before = check_preconditions(client, node).await?;
    liveness::may_stop(node, &watch.observe().await).map_err(EsError::Refused)?;

    info!(
        node,
        "setting cluster.routing.allocation.enable to primaries"
    );
    let outcome = async {
        client.set_allocation(Allocation::Primaries).await?;
        info!(node, "flushing");
        if let Err(err) = client.flush().await {
            // A flush only shortens recovery; ES documents it as best effort.
            warn!(node, "flush failed, restarting anyway: {err}");
        }
        info!(node, "restarting");
        restart().await.map_err(|err| EsError::Restart {
            node: node.to_owned(),
            message: format!("{err:#}"),
        })?;
        info!(node, "waiting for the node to rejoin the cluster");
        wait_rejoined(client, &before, green_timeout, watch).await
    }
    .await;

    info!(node, "restoring cluster.routing.allocation.enable");
    let restored = restore_allocation(client).await;
    if let Err(err) = &restored {
        warn!(node, "could not restore shard allocation: {err}");
    }
    outcome?;
    restored?;

    info!(node, timeout = %crate::units::human_duration(green_timeout), "waiting for green");
    wait_green(client, node, green_timeout, watch).await?;
    info!(node, "restarted, cluster green");
    Ok(())
}

/// The node as it is before the restart, once every precondition holds.
async fn check_preconditions(client: &Client, node: &str) -> Result<Node, EsError> {
    let health = client.health().await?;
    if health.status != HealthStatus::Green {
        let reason = client.allocation_explain().await.ok().flatten();
        return Err(EsError::NotGreen { health, reason });
    }
    let answering = client.root().await?.name;
    if answering == node {
        return Err(EsError::Refused(format!(
            "cannot restart {node} through itself: the client must talk to another node"
        )));
    }
    client.node(node).await?.ok_or_else(|| {
        EsError::Refused(format!(
            "{node} is not in the cluster: a rolling restart only restarts members"
        ))
    })
}

/// Stops a wait when a node other than `node` went away, or `node`'s own
/// service stopped after it had started.
async fn check_the_others<W: Watch>(watch: &W, node: &str) -> Result<(), EsError> {
    let observation = watch.observe().await;
    liveness::others_still_up(node, &observation).map_err(EsError::Refused)?;
    if observation.stopped.contains(node) {
        return Err(EsError::Refused(format!(
            "{node}'s service is not running any more: it stopped after it had started"
        )));
    }
    Ok(())
}

/// Waits until a node with the same name and a new ephemeral id is in the
/// cluster. The id, not presence, tells a restart: a fast restart may never drop
/// out of the node list.
async fn wait_rejoined<W: Watch>(
    client: &Client,
    before: &Node,
    timeout: Duration,
    watch: &W,
) -> Result<(), EsError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let what = format!("{} to rejoin the cluster", before.name);
    let last = loop {
        check_the_others(watch, &before.name).await?;
        let last = match client.node(&before.name).await {
            Ok(Some(now)) if now.ephemeral_id != before.ephemeral_id => {
                info!(node = %before.name, "rejoined");
                return Ok(());
            }
            Ok(Some(_)) => "the same process is still in the cluster".to_owned(),
            Ok(None) => format!("{} is not in the cluster", before.name),
            Err(err) if err.is_transient() => err.to_string(),
            Err(err) => return Err(err),
        };
        if Instant::now() >= deadline {
            break last;
        }
        watch.waiting(&what, started.elapsed(), &last);
        sleep(REJOIN_POLL).await;
    };
    Err(EsError::Timeout {
        what: format!("{} rejoining the cluster", before.name),
        waited: timeout,
        last,
    })
}

/// Waits for green in short slices, looking at the other nodes between them.
async fn wait_green<W: Watch>(
    client: &Client,
    node: &str,
    timeout: Duration,
    watch: &W,
) -> Result<(), EsError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let what = format!("the cluster to turn green after restarting {node}");
    loop {
        check_the_others(watch, node).await?;
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(GREEN_SLICE);
        match client.wait_for_health(HealthStatus::Green, slice).await {
            Ok(_) => return Ok(()),
            Err(EsError::HealthTimeout { last, reason, .. }) => {
                if Instant::now() >= deadline {
                    return Err(EsError::HealthTimeout {
                        wanted: HealthStatus::Green,
                        waited: timeout,
                        last,
                        reason,
                    });
                }
                watch.waiting(&what, started.elapsed(), &last);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Resets allocation to the default, retrying while the cluster has no master
/// (the restarted node may have been it).
async fn restore_allocation(client: &Client) -> Result<(), EsError> {
    let mut attempt = 1;
    loop {
        match client.set_allocation(Allocation::All).await {
            Err(err) if err.is_transient() && attempt < RESTORE_ATTEMPTS => {
                warn!("restoring allocation failed (attempt {attempt}), retrying: {err}");
                attempt += 1;
                sleep(Duration::from_secs(2)).await;
            }
            result => return result,
        }
    }
}
