//! The two ZFS phases: the record of the last finished stage on the source
//! dataset, the base snapshot sent while the jail runs, and the final
//! incremental one sent while it is stopped.

use anyhow::{Context as _, Result, anyhow};

use super::{Mover, RECORD, Stage, plan, record};
use crate::freebsd;
use crate::remote::Remote;
use crate::remote::stream;
use crate::units::human_bytes;

/// What the source dataset says before anything happens.
pub(super) struct SourceSeen {
    /// The last finished stage and its target, when a migration is recorded.
    pub record: Option<(Stage, String)>,
    /// Bytes the dataset and its snapshots take.
    pub used: u64,
}

impl<R: Remote> Mover<'_, R> {
    /// The record on the source dataset, and the bytes the dataset takes (for
    /// the preflight), in one round trip.
    pub(super) async fn read_record(&self) -> Result<SourceSeen> {
        let dataset = &self.migration.source_dataset;
        let host = self.migration.source.name.as_str();
        let output = self
            .source()?
            .run(&format!(
                "set -e\n{}\n{}\n",
                freebsd::zfs_get_user_property(dataset, RECORD),
                freebsd::zfs_used_bytes(dataset)
            ))
            .await?
            .check(host, "reading the migration record")?;
        let record =
            freebsd::parse_user_property(&output.stdout).and_then(|value| record::parse(&value));
        let used = output.stdout.lines().nth(1).unwrap_or_default().trim();
        let used = freebsd::parse_size(used)
            .with_context(|| format!("{host}: used of {dataset}: {used:?}"))?;
        Ok(SourceSeen { record, used })
    }

    pub(super) async fn write_record(&self, stage: Stage) -> Result<()> {
        let value = record::format(stage, self.migration.target.name.as_str());
        self.source()?
            .run(&freebsd::zfs_set(
                &self.migration.source_dataset,
                RECORD,
                &value,
            ))
            .await?
            .check(
                self.migration.source.name.as_str(),
                "recording the migration stage",
            )?;
        Ok(())
    }

    /// Phase 1: the base snapshot, sent in full while the jail runs.
    pub(super) async fn phase_one(&self) -> Result<u64> {
        let migration = self.migration;
        let parent = self.target_state.datasets.first().ok_or_else(|| {
            anyhow!(
                "{} has no datasets in the desired state",
                migration.target.name
            )
        })?;
        self.target()?
            .run(&format!("set -e\n{}\n", freebsd::zfs_create(parent)))
            .await?
            .check(
                migration.target.name.as_str(),
                "creating the parent dataset",
            )?;
        let snapshot = format!("{}@{}", migration.source_dataset, plan::SNAPSHOT_BASE);
        self.source()?
            .run(&format!(
                "set -e\n{}\n{}\n",
                freebsd::zfs_destroy_snapshot_if_present(
                    &migration.source_dataset,
                    plan::SNAPSHOT_BASE
                ),
                freebsd::zfs_snapshot(&migration.source_dataset, plan::SNAPSHOT_BASE)
            ))
            .await?
            .check(migration.source.name.as_str(), "taking the base snapshot")?;
        self.say(format!(
            "phase 1: sending {snapshot} to {} while {} runs",
            migration.target.name, migration.jail.name
        ));
        self.send(None, plan::SNAPSHOT_BASE, false).await
    }

    /// Phase 2's stream: what changed since the base snapshot.
    pub(super) async fn phase_two_send(&self) -> Result<u64> {
        let migration = self.migration;
        // A phase 2 that ran before (then rolled back) left its snapshot there.
        self.target()?
            .run(&freebsd::zfs_destroy_snapshot_if_present(
                &migration.target_dataset,
                plan::SNAPSHOT_FINAL,
            ))
            .await?
            .check(
                migration.target.name.as_str(),
                "clearing an earlier final snapshot",
            )?;
        self.source()?
            .run(&format!(
                "set -e\n{}\n{}\n",
                freebsd::zfs_destroy_snapshot_if_present(
                    &migration.source_dataset,
                    plan::SNAPSHOT_FINAL
                ),
                freebsd::zfs_snapshot(&migration.source_dataset, plan::SNAPSHOT_FINAL)
            ))
            .await?
            .check(migration.source.name.as_str(), "taking the final snapshot")?;
        self.send(Some(plan::SNAPSHOT_BASE), plan::SNAPSHOT_FINAL, true)
            .await
    }

    pub(super) async fn send(
        &self,
        from: Option<&str>,
        snapshot: &str,
        force: bool,
    ) -> Result<u64> {
        let migration = self.migration;
        let send = freebsd::zfs_send(&migration.source_dataset, snapshot, from);
        let recv = freebsd::zfs_recv(&migration.target_dataset, force);
        let target = migration.target.name.as_str();
        let stats = stream::pipe(
            self.source()?,
            &send,
            self.target()?,
            &recv,
            |bytes, rate| {
                self.progress.step(
                    target,
                    format!(
                        "receiving {} ({}/s)",
                        human_bytes(bytes),
                        human_bytes(rate as u64)
                    ),
                );
            },
        )
        .await?;
        self.say(format!(
            "  sent {} in {:.1} s ({}/s)",
            human_bytes(stats.bytes),
            stats.elapsed.as_secs_f64(),
            human_bytes((stats.bytes as f64 / stats.elapsed.as_secs_f64().max(0.001)) as u64)
        ));
        Ok(stats.bytes)
    }
}
