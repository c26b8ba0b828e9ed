//! `haelk status`: the whole estate at a glance.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::cli::{Format, GlobalArgs, InventoryArgs};
use crate::desired::ClusterPhase;
use crate::desired::inputs::Inputs;
use crate::exit::Outcome;
use crate::remote::ssh::HostKeyPolicy;
use crate::status::{self, Connections, Estate, Style, model::Took};

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
    /// Report again every SECONDS until Ctrl-C (redrawn in place on a terminal).
    /// The exit status is the last report's.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub watch: Option<u64>,
    /// Use templates from DIR instead of the built-in ones, as deploy would
    /// (drift is measured against what deploy would write).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<std::path::PathBuf>,
}

pub fn run(args: StatusArgs, _global: &GlobalArgs) -> Result<Outcome> {
    let inventory = crate::inventory::load(&args.inventory.path())?;
    let hosts = crate::deploy::select_hosts(&inventory, &args.limit)?;
    // What deploy would write to a formed cluster: anything else is drift.
    let desired = Inputs::load(&inventory, args.templates.as_deref())?
        .build(&inventory, ClusterPhase::Formed)?;
    let terminal = std::io::stdout().is_terminal();
    let style = Style {
        // comfy-table knows the terminal's width (None when not a terminal).
        width: comfy_table::Table::new().width(),
        colour: terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    super::runtime()?.block_on_leaving_ctrl_c(async {
        // The first report's cost includes connecting (one round trip per host).
        let mut started = Instant::now();
        let mut before = 0;
        let mut connections = Connections::open(hosts, HostKeyPolicy::Strict).await;
        let mut outcome;
        loop {
            let observed = status::gather(&mut connections, &inventory, &desired).await;
            let mut estate = Estate::build(&inventory, &desired, &observed);
            estate.took = Some(Took {
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                round_trips: connections.round_trips() - before,
            });
            outcome = if estate.healthy {
                Outcome::Success
            } else {
                Outcome::Failed
            };
            print(
                &estate,
                args.format,
                style,
                args.watch.is_some() && terminal,
            )?;
            let Some(seconds) = args.watch else { break };
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            started = Instant::now();
            before = connections.round_trips();
        }
        connections.close().await;
        Ok(outcome)
    })
}

/// Prints one report; `redraw` clears the terminal first.
fn print(estate: &Estate, format: Format, style: Style, redraw: bool) -> Result<()> {
    let mut text = match format {
        Format::Json => {
            serde_json::to_string_pretty(estate).context("cannot encode the report")? + "\n"
        }
        Format::Table => {
            let mut text = status::render(estate, style);
            if let Some(took) = estate.took {
                text.push_str(&format!(
                    "\n{} hosts in {:.2} s, {} round trips\n",
                    estate.hosts.len(),
                    took.elapsed_ms as f64 / 1000.0,
                    took.round_trips
                ));
            }
            text
        }
    };
    if redraw {
        // Cursor home and clear the screen, so the report replaces the last one.
        text.insert_str(0, "\x1b[H\x1b[2J");
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write the report")
}
