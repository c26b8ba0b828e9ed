//! Around the downtime: the node out of its haproxies, the cluster quiesced or
//! the node drained, and everything restored afterwards.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{DRAIN_TIMEOUT, Mover, Strategy};
use crate::desired;
use crate::elasticsearch::{self, Allocation};
use crate::haproxy::{self, AdminState};
use crate::inventory::Role;
use crate::remote::Remote;

impl<R: Remote> Mover<'_, R> {
    /// Takes the service out of the load balancers, and quiesces or drains an
    /// Elasticsearch node.
    pub(super) async fn quiesce(&self) -> Result<()> {
        let migration = self.migration;
        let node = migration.jail.name.as_str();
        if let Some(client) = &self.elasticsearch {
            match migration.strategy {
                Strategy::Keep => {
                    client.set_allocation(Allocation::Primaries).await?;
                    if let Err(err) = client.flush().await {
                        tracing::warn!("flush failed, moving anyway: {err}");
                    }
                    self.say("quiesced: allocation primaries, flushed");
                }
                Strategy::Drain => self.drain(client, node).await?,
            }
        }
        self.set_backend(AdminState::Maint).await
    }

    pub(super) async fn drain(&self, client: &elasticsearch::Client, node: &str) -> Result<()> {
        client.set_exclusion(Some(node)).await?;
        if self.migration.jail.is_master_eligible() {
            client.add_voting_exclusion(node).await?;
        }
        self.say(format!("draining {node}: waiting until it holds no shard"));
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = client.shards_on(node).await?;
            if left == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{node} still holds {left} shards after {} s",
                    DRAIN_TIMEOUT.as_secs()
                );
            }
            self.progress.step(
                self.migration.source.name.as_str(),
                format!("{left} shards left on {node}"),
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Undoes [`Self::quiesce`]; failures are reported, not returned, because
    /// this runs on the way out of other failures too.
    pub(super) async fn unquiesce(&self) {
        if let Err(err) = self.restore_cluster().await {
            self.warn(format!("restoring the cluster settings: {err:#}"));
        }
        if let Err(err) = self.set_backend(AdminState::Ready).await {
            self.warn(format!("putting the node back into haproxy: {err:#}"));
        }
    }

    /// Allocation back to default, this node's exclusion and voting exclusions
    /// cleared: nothing a migration sets survives it.
    pub(super) async fn restore_cluster(&self) -> Result<()> {
        let Some(client) = &self.elasticsearch else {
            return Ok(());
        };
        let node = self.migration.jail.name.as_str();
        if client.allocation_enable().await?.as_deref() == Some("primaries") {
            client.set_allocation(Allocation::All).await?;
        }
        if client.exclusion().await?.as_deref() == Some(node) {
            client.set_exclusion(None).await?;
        }
        client.clear_voting_exclusions().await?;
        Ok(())
    }

    /// Sets the migrated jail's server in every haproxy that balances its service.
    pub(super) async fn set_backend(&self, state: AdminState) -> Result<()> {
        let migration = self.migration;
        let role = migration.jail.role;
        if role == Role::Haproxy
            || !desired::client_facing_nodes(self.inventory, role)
                .iter()
                .any(|j| j.name == migration.jail.name)
        {
            return Ok(());
        }
        let backend = haproxy::backend(role);
        for host in &self.inventory.hosts {
            let jails: Vec<&str> = host
                .jails
                .iter()
                .filter(|j| j.role == Role::Haproxy && j.fronts == Some(role))
                .map(|j| j.name.as_str())
                .collect();
            if jails.is_empty() {
                continue;
            }
            let script =
                haproxy::set_state_script(jails, &backend, migration.jail.name.as_str(), state);
            self.remote(host.name.as_str())?
                .run(&script)
                .await?
                .check(host.name.as_str(), "setting the haproxy server state")?;
        }
        Ok(())
    }
}
