//! `haelk render`: write every file deploy would write, or diff against such a tree.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::{GlobalArgs, InventoryArgs};
use crate::desired::ClusterPhase;
use crate::exit::Outcome;
use crate::render::{self, RenderOptions};

/// Render every file deploy would write, offline.
///
/// Files land at DIR/<host>/<absolute path on that host>; files inside a jail appear
/// under the jail's root path. Host rc.conf and loader.conf keys haelk manages are
/// written as DIR/<host>/etc/rc.conf and DIR/<host>/boot/loader.conf holding only
/// those keys. Secrets are masked, so the tree is safe to keep in review.
///
/// With --diff, nothing is written: the fresh render is compared with DIR and every
/// difference is printed as a unified diff (exit 2), or nothing (exit 0).
#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Write the rendered tree to DIR (created if needed). Files an earlier render
    /// left there and this one does not write are removed; in a directory haelk
    /// did not render into, nothing is removed.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "diff",
        required_unless_present = "diff"
    )]
    pub out: Option<PathBuf>,
    /// Compare a fresh render with DIR; exit 2 when they differ.
    #[arg(long, value_name = "DIR")]
    pub diff: Option<PathBuf>,
    /// Use templates from DIR instead of the built-in ones (a file missing there
    /// falls back to the built-in template). Overrides `templates:` in the inventory.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Render the files of a first deploy, before the Elasticsearch cluster has
    /// formed (with cluster.initial_master_nodes).
    #[arg(long)]
    pub bootstrap: bool,
}

pub fn run(args: RenderArgs, _global: &GlobalArgs) -> Result<Outcome> {
    let inventory = crate::inventory::load(&args.inventory.path())?;
    let options = RenderOptions {
        templates: args.templates,
        phase: if args.bootstrap {
            ClusterPhase::Bootstrap
        } else {
            ClusterPhase::Formed
        },
    };
    let tree = render::render(&inventory, &options)?;
    if let Some(out) = args.out {
        tree.write(&out)?;
        eprintln!("rendered {} files to {}", tree.len(), out.display());
        return Ok(Outcome::Success);
    }
    let Some(dir) = args.diff else {
        unreachable!("clap requires --out or --diff");
    };
    let diff = tree.diff(&dir)?;
    if diff.is_empty() {
        return Ok(Outcome::Success);
    }
    print!("{diff}");
    Ok(Outcome::Differences)
}
