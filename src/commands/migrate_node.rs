//! `haelk migrate-node`: move a jail and its data to another host.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::{GlobalArgs, InventoryOption};
use crate::exit::Outcome;
use crate::migrate::{self, InventoryUpdate, Options, Refusal, Strategy};
use crate::remote::ssh::HostKeyPolicy;
use crate::units::human_bytes;

/// Move a jail (and its ZFS dataset) to another physical host with minimal
/// downtime, then update the inventory. Re-run the same command after a failure:
/// it continues where the last run stopped.
#[derive(Debug, Args)]
pub struct MigrateNodeArgs {
    /// The jail to move.
    pub jail: String,
    /// The physical host to move it to.
    #[arg(long, value_name = "HOST")]
    pub to: String,
    #[command(flatten)]
    pub inventory: InventoryOption,
    /// Print the steps, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Elasticsearch only: keep the node's shards and move them with the dataset
    /// (default), or drain them to the other nodes first.
    #[arg(long, value_enum, default_value_t)]
    pub strategy: Strategy,
    /// Destroy the source dataset once the jail runs on the target (default: keep
    /// it, marked as migrated, and say how to destroy it).
    #[arg(long)]
    pub destroy_source: bool,
    /// Use templates from DIR instead of the built-in ones, as for render and
    /// deploy (overrides `templates:` in the inventory): the target gets the
    /// files deploy would write.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Accept and record the key of a host not yet in known_hosts.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

pub fn run(args: MigrateNodeArgs, global: &GlobalArgs) -> Result<Outcome> {
    let inventory = crate::inventory::load(&args.inventory.path())?;
    let options = Options {
        strategy: args.strategy,
        dry_run: args.dry_run,
        destroy_source: args.destroy_source,
        host_keys: if args.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        progress: !global.no_progress,
        templates: args.templates,
    };
    let result =
        super::runtime()?.block_on(migrate::migrate(&inventory, &args.jail, &args.to, &options));
    let report = match result {
        Ok(report) => report,
        Err(err) => match err.downcast_ref::<Refusal>() {
            // Re-running a finished migration is not an error.
            Some(Refusal::AlreadyThere { jail, host }) => {
                println!("{jail} is already on {host}: nothing to do");
                return Ok(Outcome::Success);
            }
            _ => return Err(err),
        },
    };
    let Some(report) = report else {
        return Ok(Outcome::Success);
    };
    let downtime = report.downtime.map_or_else(
        || "not measured (resumed run)".to_owned(),
        |d| format!("{:.1} s", d.as_secs_f64()),
    );
    println!(
        "migrated {} to {}: downtime {downtime}, total {:.1} s, sent {}",
        args.jail,
        args.to,
        report.elapsed.as_secs_f64(),
        human_bytes(report.sent.iter().sum())
    );
    Ok(match report.inventory {
        InventoryUpdate::Written => Outcome::Success,
        // The move is done but the inventory disagrees until the operator edits it.
        InventoryUpdate::Manual => Outcome::Failed,
    })
}
