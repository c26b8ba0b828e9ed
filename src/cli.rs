//! The command line: global flags, subcommands, and reporting errors once.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;
use crate::exit::Outcome;

const ABOUT: &str = "Deploy and operate a highly available Elasticsearch + Kibana + HAProxy \
stack in FreeBSD jails on ZFS, agentless, over SSH.";

const LONG_ABOUT: &str = "\
haelk reads one YAML inventory of physical FreeBSD hosts and the jails they carry, \
renders every configuration file from templates, and converges the hosts to it over \
SSH: ZFS datasets, VNET jails, packages, rc.conf values, files and services, with a \
health gate after every step. Nothing runs on the hosts but sshd and the base system.

The inventory is taken from the positional INVENTORY argument where a command has \
one, else -i/--inventory, else $HAELK_INVENTORY, else ./inventory.yaml.";

const AFTER_HELP: &str = "\
EXIT STATUS:
    0  success: deployed, healthy, no differences
    1  error or failed check: lint errors, failed deploy, unhealthy status
    2  differences found: render --diff, deploy --dry-run --detailed-exitcode
    130, 143  stopped by SIGINT or SIGTERM: connections closed; run it again to continue

EXAMPLES:
    haelk lint inventories/example.yaml
    haelk render inventories/example.yaml --out /tmp/rendered
    haelk render inventories/example.yaml --diff /tmp/rendered
    haelk deploy inventories/lab.yaml
    haelk status inventories/lab.yaml";

#[derive(Debug, Parser)]
#[command(name = "haelk", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// More detail on standard error; repeat for more (-vv: debug, -vvv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress lines (they are off anyway when standard output is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Deploy(commands::deploy::DeployArgs),
    Status(commands::status::StatusArgs),
    MigrateNode(commands::migrate_node::MigrateNodeArgs),
    Render(commands::render::RenderArgs),
    Lint(commands::lint::LintArgs),
}

/// Where the inventory comes from, for commands with a positional INVENTORY.
#[derive(Debug, Args, Clone)]
pub struct InventoryArgs {
    /// The inventory file (see -i for the fallbacks).
    #[arg(value_name = "INVENTORY")]
    pub positional: Option<PathBuf>,
    #[command(flatten)]
    pub option: InventoryOption,
}

impl InventoryArgs {
    /// The positional argument, else `-i`, else `$HAELK_INVENTORY`, else `./inventory.yaml`.
    pub fn path(&self) -> PathBuf {
        self.positional
            .clone()
            .unwrap_or_else(|| self.option.path())
    }
}

/// `-i/--inventory`, with `$HAELK_INVENTORY` and `./inventory.yaml` as fallbacks.
#[derive(Debug, Args, Clone)]
pub struct InventoryOption {
    /// The inventory file. Falls back to $HAELK_INVENTORY, then ./inventory.yaml.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        env = "HAELK_INVENTORY"
    )]
    pub inventory: Option<PathBuf>,
}

impl InventoryOption {
    pub fn path(&self) -> PathBuf {
        self.inventory
            .clone()
            .unwrap_or_else(|| PathBuf::from("inventory.yaml"))
    }
}

/// Output format of `status` and `lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// For people: tables and compiler-style diagnostics.
    #[default]
    Table,
    /// For programs: one JSON document on standard output.
    Json,
}

/// Parses the command line, runs the command and turns the result into an exit code.
/// Errors are reported here, once, with their whole context chain.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    match run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            commands::report_error(format_args!("{err:#}"));
            match err.downcast_ref::<commands::Interrupted>() {
                // The shell's convention for a command ended by a signal.
                Some(signal) => ExitCode::from(128 + signal.number),
                None => Outcome::Failed.into(),
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let global = cli.global;
    match cli.command {
        Command::Deploy(args) => commands::deploy::run(args, &global),
        Command::Status(args) => commands::status::run(args, &global),
        Command::MigrateNode(args) => commands::migrate_node::run(args, &global),
        Command::Render(args) => commands::render::run(args, &global),
        Command::Lint(args) => commands::lint::run(args, &global),
    }
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HAELK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("haelk={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
