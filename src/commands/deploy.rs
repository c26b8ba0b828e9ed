//! `haelk deploy`: converge every host to the inventory, play by play.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::{GlobalArgs, InventoryArgs};
use crate::deploy::{self, Options, Rendered};
use crate::exit::Outcome;
use crate::playbook::Playbook;
use crate::remote::ssh::HostKeyPolicy;

/// Converge every host to the inventory, play by play, verifying health after each
/// batch. Lint runs first and errors stop the deploy before anything is touched.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Only these hosts (comma-separated names).
    #[arg(long, value_name = "HOST[,HOST]", value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Connect and read live state, change nothing: print every command that would
    /// run and a unified diff of every file that would be written (secrets masked).
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: exit 0 when nothing would change, 2 when changes are pending.
    #[arg(long, requires = "dry_run")]
    pub detailed_exitcode: bool,
    /// The plays to run, in order (default: the built-in playbooks/site.yaml).
    #[arg(long, value_name = "FILE")]
    pub playbook: Option<PathBuf>,
    /// Use templates from DIR instead of the built-in ones (see `haelk render --help`).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Work on at most N hosts at once (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: Option<u16>,
    /// Accept and record the key of a host not yet in known_hosts (a changed key
    /// is still refused). Off by default: host keys are checked strictly.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

pub fn run(args: DeployArgs, global: &GlobalArgs) -> Result<Outcome> {
    let inventory = crate::inventory::load(&args.inventory.path())?;
    let report = crate::lint::lint(&inventory);
    if report.has_errors() {
        eprint!("{}", report.human(&inventory.source));
        anyhow::bail!(
            "lint found errors in {}; deploy refuses to start",
            inventory.source.display()
        );
    }
    let playbook = match &args.playbook {
        Some(path) => Playbook::load(path)?,
        None => Playbook::builtin()?,
    };
    playbook.check(&inventory)?;
    // Rendered once, before any host is reached.
    let rendered = Rendered::new(&inventory, args.templates.as_deref())?;
    let options = Options {
        limit: args.limit,
        dry_run: args.dry_run,
        forks: args.forks.map(usize::from),
        host_keys: if args.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        progress: !global.no_progress,
    };
    let summary =
        super::runtime()?.block_on(deploy::deploy(&inventory, &playbook, &rendered, &options))?;
    println!("{summary}");
    for error in summary.errors() {
        super::report_error(error);
    }
    Ok(if summary.failed() {
        Outcome::Failed
    } else if args.detailed_exitcode && summary.changes() > 0 {
        Outcome::Differences
    } else {
        Outcome::Success
    })
}
