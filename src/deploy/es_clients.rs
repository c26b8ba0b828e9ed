//! Reaching the Elasticsearch API: a client per declared node through a tunnel
//! from its own host (cached for the run), the first node that answers, and
//! the watch over every node while a gate or a restart waits.

use std::net::SocketAddr;
use std::sync::Arc;

use super::Engine;
use super::watch::{DeployWatch, NodeProbe};
use crate::elasticsearch;
use crate::elasticsearch::locate::{self, Located};
use crate::inventory::{Inventory, Jail, Role};
use crate::remote::Remote;

impl<'a, R: Remote> Engine<'a, R> {
    /// The first Elasticsearch node other than `except` that answers `GET /`
    /// (inventory order), through a tunnel from its host: see [`locate`].
    pub(super) async fn es_client(&self, except: Option<&str>) -> Result<Located, String> {
        let candidates = self
            .es_jails()
            .filter(|(_, j)| Some(j.name.as_str()) != except);
        let port = self.inventory.cluster.elasticsearch.http_port;
        let hosts = &self.hosts;
        locate::first_answering(
            candidates.map(|(index, jail)| (jail, index)),
            port,
            |index, target| async move {
                let remote = hosts[index].connected()?;
                remote.tunnel(target).await.map_err(|e| e.to_string())
            },
        )
        .await
        .map_err(|err| err.to_string())
    }

    /// A client for every declared Elasticsearch node on its own address (a
    /// tunnel from its own host), cached for the run.
    pub(super) async fn connect_every_node(&mut self) -> Result<(), String> {
        let nodes: Vec<(usize, &'a Jail)> = self.es_jails().collect();
        for (index, jail) in nodes {
            self.node_client(index, jail).await?;
        }
        Ok(())
    }

    /// Every declared Elasticsearch jail with the index of its host run.
    fn es_jails(&self) -> impl Iterator<Item = (usize, &'a Jail)> + use<'a, '_, R> {
        let inventory: &'a Inventory = self.inventory;
        self.hosts.iter().enumerate().flat_map(move |(index, run)| {
            inventory
                .hosts
                .iter()
                .filter(move |h| h.name == run.host.name)
                .flat_map(|h| h.jails.iter())
                .filter(|j| j.role == Role::Elasticsearch)
                .map(move |j| (index, j))
        })
    }

    /// The watch over every node (after [`Self::connect_every_node`]), its
    /// waits reported on `host`'s line.
    pub(super) fn watch(&self, host: Option<&str>) -> DeployWatch<'_, R> {
        let nodes = self
            .es_jails()
            .filter_map(|(index, jail)| {
                Some(NodeProbe {
                    name: jail.name.to_string(),
                    client: self.elasticsearch.get(jail.name.as_str())?.clone(),
                    remote: self.hosts[index].remote.as_ref(),
                })
            })
            .collect();
        DeployWatch {
            nodes,
            progress: &self.progress,
            host: host.map(str::to_owned),
        }
    }

    /// The cached client of `jail` on host run `index`, or a new one through a
    /// tunnel from that host. Not probed: the caller asks what it needs.
    async fn node_client(
        &mut self,
        index: usize,
        jail: &Jail,
    ) -> Result<Arc<elasticsearch::Client>, String> {
        if let Some(client) = self.elasticsearch.get(jail.name.as_str()) {
            return Ok(client.clone());
        }
        let port = self.inventory.cluster.elasticsearch.http_port;
        let remote = self.hosts[index].connected()?;
        let local = remote
            .tunnel(SocketAddr::new(jail.ip.into(), port))
            .await
            .map_err(|e| format!("{}: {e}", jail.name))?;
        let client = Arc::new(
            elasticsearch::Client::new(format!("http://{local}")).map_err(|e| e.to_string())?,
        );
        self.elasticsearch
            .insert(jail.name.to_string(), client.clone());
        Ok(client)
    }
}
