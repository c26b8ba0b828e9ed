//! Refusals before anything changes: a green cluster, a drain the other data
//! nodes can absorb, room on the target's pool and no dataset of that name.

use anyhow::{Context as _, Result, bail};

use super::{Mover, Strategy};
use crate::elasticsearch::{self, HealthStatus};
use crate::freebsd;
use crate::remote::Remote;
use crate::units::human_bytes;

impl<R: Remote> Mover<'_, R> {
    /// Refuses before anything changes: the cluster must be green, the target
    /// must hold the pool, room for `used` bytes (the source dataset's size),
    /// and no dataset of that name.
    pub(super) async fn preflight(&self, used: u64) -> Result<()> {
        let migration = self.migration;
        if let Some(client) = &self.elasticsearch {
            let health = client.health().await?;
            if health.status != HealthStatus::Green {
                let reason = client.allocation_explain().await.ok().flatten();
                bail!(
                    "the cluster is {}: a migration starts only from green{}",
                    health.summary(),
                    reason.map(|r| format!(" (first: {r})")).unwrap_or_default()
                );
            }
        }
        if let (Some(client), Strategy::Drain) = (&self.elasticsearch, migration.strategy) {
            drain_is_possible(client, migration.jail.name.as_str()).await?;
        }
        let target = self.target()?;
        let parent = &migration.target.zfs.dataset;
        let pool = parent.split('/').next().unwrap_or(parent);
        // One round trip: the room in the pool and whether the dataset exists.
        let output = target
            .run(&format!(
                "set -e\n{}\n{}\n",
                freebsd::zfs_available_bytes(pool),
                freebsd::zfs_dataset_exists(&migration.target_dataset)
            ))
            .await?
            .check(target.host(), "reading the room on the target")
            .with_context(|| format!("{} has no pool {pool}", migration.target.name))?;
        let mut lines = output.stdout.lines();
        let available = lines.next().unwrap_or_default().trim();
        let free = freebsd::parse_size(available)
            .with_context(|| format!("{}: available of {pool}: {available:?}", target.host()))?;
        // Room for the data and a margin for what changes during phase 1.
        if free < used + used / 5 {
            bail!(
                "{} has {} free in {pool}; {} needs {} and a margin",
                migration.target.name,
                human_bytes(free),
                migration.source_dataset,
                human_bytes(used)
            );
        }
        if lines.next().map(str::trim) == Some("exists") {
            bail!(
                "{} already exists on {}: refusing to overwrite it",
                migration.target_dataset,
                migration.target.name
            );
        }
        self.say(format!(
            "preflight ok: {} holds {}, {} has {} free",
            migration.source_dataset,
            human_bytes(used),
            migration.target.name,
            human_bytes(free)
        ));
        Ok(())
    }
}

/// A drain moves every copy off the node: each shard on it must have room on the
/// other data nodes (one copy of a shard per node), or the drain never ends.
async fn drain_is_possible(client: &elasticsearch::Client, node: &str) -> Result<()> {
    let others = client
        .nodes()
        .await?
        .iter()
        .filter(|n| n.is_data() && n.name != node)
        .count();
    let copies = client.shard_copies().await?;
    for (index, shard, _) in copies
        .iter()
        .filter(|(_, _, on)| on.as_deref() == Some(node))
    {
        let count = copies
            .iter()
            .filter(|(i, s, _)| i == index && s == shard)
            .count();
        if count > others {
            bail!(
                "cannot drain {node}: shard {shard} of index {index} has {count} copies and only {others} other data node{} can hold one each; --strategy keep moves the node with its shards",
                if others == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}
