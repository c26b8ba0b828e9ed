//! `haelk lint`: resilience and sanity rules, as compiler-style diagnostics.

use anyhow::Result;
use clap::Args;

use crate::cli::{Format, GlobalArgs, InventoryArgs};
use crate::exit::Outcome;
use crate::lint;

/// Check that the design is really highly available.
///
/// Every rule reports a severity, a code, a message, the place in the inventory and
/// a hint. Errors make lint exit 1 (and make deploy refuse to start); warnings do not.
#[derive(Debug, Args)]
pub struct LintArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Output format: compiler-style text (table) or one JSON document.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: LintArgs, _global: &GlobalArgs) -> Result<Outcome> {
    let inventory = crate::inventory::load(&args.inventory.path())?;
    let report = lint::lint(&inventory);
    match args.format {
        Format::Table => eprint!("{}", report.human(&inventory.source)),
        Format::Json => println!("{}", report.json()?),
    }
    Ok(if report.has_errors() {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}
