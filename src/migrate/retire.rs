//! After the move: the source forgets the jail, the target's migration
//! snapshots go, and the inventory is written with the jail under its new host.

use anyhow::{Result, anyhow};

use super::{InventoryUpdate, Mover, RECORD, Stage, plan, record};
use crate::freebsd;
use crate::remote::Remote;
use crate::shell::quote;

impl<R: Remote> Mover<'_, R> {
    /// The source forgets the jail: its jail.conf and jail_list entry go; the
    /// dataset stays (marked retired) unless `--destroy-source`.
    pub(super) async fn retire_source(&self) -> Result<()> {
        let migration = self.migration;
        let jail = migration.jail.name.as_str();
        let jail_list: Vec<&str> = crate::desired::jail_start_order(
            migration
                .moved
                .hosts
                .iter()
                .find(|h| h.name == migration.source.name)
                .ok_or_else(|| {
                    anyhow!("{} is not in the moved inventory", migration.source.name)
                })?,
        )
        .into_iter()
        .map(|j| j.name.as_str())
        .collect();
        let mut script = format!(
            "set -e\nrm -f {}\n{}\n",
            quote(&freebsd::jail_conf_path(jail).to_string_lossy()),
            freebsd::sysrc_set(None, "jail_list", &jail_list.join(" ")),
        );
        if self.options.destroy_source {
            script.push_str(&format!(
                "{}\n",
                freebsd::zfs_destroy_recursive(&migration.source_dataset)
            ));
        } else {
            script.push_str(&format!(
                "{}\n",
                freebsd::zfs_set(
                    &migration.source_dataset,
                    RECORD,
                    &record::format(Stage::Retired, migration.target.name.as_str())
                )
            ));
        }
        self.source()?.run(&script).await?.check(
            migration.source.name.as_str(),
            "retiring the jail on the source",
        )?;
        // The target's snapshots are only needed while phase 2 may be redone.
        let cleanup: String = [plan::SNAPSHOT_BASE, plan::SNAPSHOT_FINAL]
            .iter()
            .map(|s| {
                format!(
                    "{}\n",
                    freebsd::zfs_destroy_snapshot_if_present(&migration.target_dataset, s)
                )
            })
            .collect();
        self.target()?.run(&cleanup).await?.check(
            migration.target.name.as_str(),
            "removing the migration snapshots",
        )?;
        self.say(if self.options.destroy_source {
            format!(
                "retired on {}: {} destroyed",
                migration.source.name, migration.source_dataset
            )
        } else {
            format!(
                "retired on {}: {} kept (zfs destroy -r {} when you no longer need it)",
                migration.source.name, migration.source_dataset, migration.source_dataset
            )
        });
        Ok(())
    }

    /// Writes the inventory with the jail under its new host, or says how.
    pub(super) fn update_inventory(&self) -> InventoryUpdate {
        let source = &self.inventory.source;
        let migration = self.migration;
        let edit = std::fs::read_to_string(source)
            .map_err(|e| format!("cannot read {}: {e}", source.display()))
            .and_then(|text| {
                crate::inventory::edit::move_jail(
                    &text,
                    source,
                    self.inventory,
                    migration.jail.name.as_str(),
                    migration.target.name.as_str(),
                )
                .map_err(|e| e.to_string())
            })
            .and_then(|moved| {
                crate::inventory::edit::write_atomically(source, &moved.text)
                    .map_err(|e| format!("{e:#}"))
            });
        match edit {
            Ok(()) => {
                self.say(format!(
                    "inventory updated: {} is under {} in {}",
                    migration.jail.name,
                    migration.target.name,
                    source.display()
                ));
                InventoryUpdate::Written
            }
            Err(instruction) => {
                self.say(format!("update the inventory by hand: {instruction}"));
                InventoryUpdate::Manual
            }
        }
    }
}
