//! Restarting Elasticsearch nodes one at a time without losing availability, as
//! Elastic's rolling-restart procedure and ECK do it: only from green; replicas
//! held in place (`allocation.enable: primaries`) while the node is away, so they
//! are not rebuilt elsewhere; allocation always restored; green again before the
//! next node. [`restart_order`] is the order ECK uses.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};
use tracing::{info, warn};

use super::types::{Allocation, HealthStatus, Node};
use super::{Client, EsError};

/// Pause between two looks at the cluster's node list while a node restarts.
const REJOIN_POLL: Duration = Duration::from_millis(500);
/// Attempts at restoring allocation while a master may be being elected.
const RESTORE_ATTEMPTS: u32 = 5;

/// The order to restart nodes in: nodes that are not master-eligible first, then
/// master-eligible ones, the elected master last, so the cluster re-elects a
/// master once at most. Within each group the input order is kept.
pub fn restart_order(nodes: &[Node], elected_master: &str) -> Vec<String> {
    let rank = |node: &Node| {
        if node.name == elected_master {
            2
        } else if node.is_master_eligible() {
            1
        } else {
            0
        }
    };
    let mut ordered: Vec<&Node> = nodes.iter().collect();
    ordered.sort_by_key(|node| rank(node));
    ordered.into_iter().map(|node| node.name.clone()).collect()
}

/// Restarts the node called `node` safely. `client` must talk to another node;
/// `restart` stops and starts the node (on its host) and returns once the service
/// says it started.
///
/// Refuses unless the cluster is green now; then sets allocation to primaries,
/// flushes (best effort), restarts, waits until the node has rejoined as a new
/// process, restores allocation - also when the restart or the wait failed - and
/// waits for green. The rejoin and green waits are each bounded by `green_timeout`.
pub async fn restart_node<F, Fut>(
    client: &Client,
    node: &str,
    green_timeout: Duration,
    restart: F,
) -> Result<(), EsError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let before = check_preconditions(client, node).await?;

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
        wait_rejoined(client, &before, green_timeout).await
    }
    .await;

    info!(node, "restoring cluster.routing.allocation.enable");
    let restored = restore_allocation(client).await;
    if let Err(err) = &restored {
        warn!(node, "could not restore shard allocation: {err}");
    }
    outcome?;
    restored?;

    info!(node, timeout = %super::human_duration(green_timeout), "waiting for green");
    client
        .wait_for_health(HealthStatus::Green, green_timeout)
        .await?;
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

/// Waits until a node with the same name and a new ephemeral id is in the
/// cluster. The id, not presence, tells a restart: a fast restart may never drop
/// out of the node list.
async fn wait_rejoined(client: &Client, before: &Node, timeout: Duration) -> Result<(), EsError> {
    let deadline = Instant::now() + timeout;
    let last = loop {
        let last = match client.node(&before.name).await {
            Ok(Some(now)) if now.ephemeral_id != before.ephemeral_id => {
                info!(node = %before.name, "rejoined");
                return Ok(());
            }
            Ok(Some(_)) => "the same process is still in the cluster".to_owned(),
            Ok(None) => "not in the cluster".to_owned(),
            Err(err) if err.is_transient() => err.to_string(),
            Err(err) => return Err(err),
        };
        if Instant::now() >= deadline {
            break last;
        }
        sleep(REJOIN_POLL).await;
    };
    Err(EsError::Timeout {
        what: format!("{} rejoining the cluster", before.name),
        waited: timeout,
        last,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, roles: &[&str]) -> Node {
        Node {
            id: format!("id-{name}"),
            name: name.to_owned(),
            ip: "10.0.0.1".to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ephemeral_id: format!("eph-{name}"),
            elected_master: false,
        }
    }

    #[test]
    fn data_only_nodes_go_first_and_the_elected_master_last() {
        let nodes = [
            node("m1", &["master", "data"]),
            node("m2", &["master", "data"]),
            node("d1", &["data"]),
            node("tie", &["master", "voting_only"]),
            node("coord", &[]),
            node("hot", &["data_hot", "ingest"]),
        ];
        assert_eq!(
            restart_order(&nodes, "m1"),
            ["d1", "coord", "hot", "m2", "tie", "m1"]
        );
        assert_eq!(
            restart_order(&nodes, "tie"),
            ["d1", "coord", "hot", "m1", "m2", "tie"]
        );
    }

    #[test]
    fn an_unknown_master_changes_nothing_but_keeps_every_node() {
        let nodes = [node("b", &["master"]), node("a", &["data"])];
        assert_eq!(restart_order(&nodes, "gone"), ["a", "b"]);
        assert!(restart_order(&[], "m1").is_empty());
    }
}
