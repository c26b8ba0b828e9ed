//! `haelk migrate-node`: move a jail and its data to another host.

use anyhow::Result;
use clap::Args;

use crate::cli::{GlobalArgs, InventoryOption};
use crate::exit::Outcome;

/// Move a jail (and its ZFS dataset) to another physical host with minimal
/// downtime, then update the inventory.
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
}

pub fn run(args: MigrateNodeArgs, _global: &GlobalArgs) -> Result<Outcome> {
    crate::inventory::load(&args.inventory.path())?;
    super::not_built_yet("migrate-node", "issue #6")
}
