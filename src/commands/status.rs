//! `haelk status`: the whole estate at a glance.

use anyhow::Result;
use clap::Args;

use crate::cli::{Format, GlobalArgs, InventoryArgs};
use crate::exit::Outcome;

/// Tables of hosts, jails, Elasticsearch nodes and health, HAProxy backends and
/// Kibana; exit 0 only when everything is healthy and matches the inventory.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Only these hosts (comma-separated names).
    #[arg(long, value_name = "HOST[,HOST]", value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: StatusArgs, _global: &GlobalArgs) -> Result<Outcome> {
    crate::inventory::load(&args.inventory.path())?;
    super::not_built_yet("status", "issue #5")
}
