//! Deploy's eyes on the Elasticsearch nodes while it waits or restarts one:
//! every declared node asked on its own address (through its own host's
//! tunnel), the elected master's membership, and - for a node that does not
//! answer - whether its service still runs, so a dead node is noticed at once
//! instead of after a gate's timeout. Waits are reported on [`Progress`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::Progress;
use crate::elasticsearch::Client;
use crate::elasticsearch::liveness::Observation;
use crate::elasticsearch::rolling::{self, Watch};
use crate::freebsd;
use crate::remote::Remote;

/// One declared Elasticsearch node: its client and where its service runs.
pub(super) struct NodeProbe<'e, R> {
    pub name: String,
    pub client: Arc<Client>,
    /// The connection to the node's host, when connected.
    pub remote: Option<&'e R>,
}

/// A [`Watch`] over every declared node, reporting waits on `host`'s line.
pub(super) struct DeployWatch<'e, R> {
    pub nodes: Vec<NodeProbe<'e, R>>,
    pub progress: &'e Progress,
    pub host: Option<String>,
}

impl<R: Remote> DeployWatch<'_, R> {
    /// Each node's name and client.
    fn clients(&self) -> Vec<(String, Arc<Client>)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.client.clone()))
            .collect()
    }
}

impl<R: Remote> Watch for DeployWatch<'_, R> {
    async fn observe(&self) -> Observation {
        let mut observation = rolling::observe(&self.clients()).await;
        let silent: Vec<&NodeProbe<'_, R>> = self
            .nodes
            .iter()
            .filter(|n| matches!(observation.answers.get(&n.name), Some(Err(_))))
            .collect();
        let stopped = join_all(silent.iter().map(|node| async move {
            let remote = node.remote?;
            let status = freebsd::jail_service_action(&node.name, "elasticsearch", "status");
            // No answer from the host tells nothing about the service: only a
            // status that ran and said "not running" counts as stopped.
            match remote.run(&status).await {
                Ok(output) if output.code.is_some() && !output.success() => Some(node.name.clone()),
                _ => None,
            }
        }))
        .await;
        observation.stopped.extend(stopped.into_iter().flatten());
        observation
    }

    fn waiting(&self, what: &str, waited: Duration, missing: &str) {
        self.progress
            .waiting(self.host.as_deref(), what, waited, missing);
    }
}
