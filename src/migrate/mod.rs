//! `haelk migrate-node`: move a jail and its ZFS dataset to another host with
//! minimal downtime.
//!
//! Two-phase push: phase 1 sends a snapshot while the jail keeps running; phase 2
//! stops the service and the jail, sends only what changed since (`zfs send -i`),
//! and starts the jail on the target with deploy's own host and service plans for
//! the moved inventory. The stream runs through haelk's two SSH sessions. For
//! Elasticsearch the cluster is quiesced first ([`Strategy`]) and always restored
//! afterwards, also after a failure.
//!
//! Every stage that changes something is recorded on the source dataset (the ZFS
//! user property [`RECORD`]), so a re-run after a failure or a kill continues where
//! the last one stopped ([`steps`] decides the next step). Pure parts are in
//! [`plan`], [`record`] and [`steps`]; each other module does one part of the
//! move for [`Mover`].

mod phases;
pub mod plan;
mod preflight;
mod quiesce;
pub mod record;
mod retire;
mod service;
pub mod steps;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

pub use plan::{Migration, Refusal, Strategy};
pub use record::{RECORD, Stage};
use steps::Step;

use crate::deploy::Progress;
use crate::desired::inputs::Inputs;
use crate::desired::{ClusterPhase, HostState};
use crate::elasticsearch;
use crate::inventory::{Inventory, Role};
use crate::remote::Remote;
use crate::remote::ssh::{self, HostKeyPolicy};

/// How to run a migration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub strategy: Strategy,
    /// Print the steps; change nothing.
    pub dry_run: bool,
    /// Destroy the source dataset once the jail runs on the target.
    pub destroy_source: bool,
    pub host_keys: HostKeyPolicy,
    pub progress: bool,
    /// Template override directory, as for render and deploy; when `None`, the
    /// inventory's `templates:`.
    pub templates: Option<PathBuf>,
}

/// What a migration did.
#[derive(Debug, Clone)]
pub struct Report {
    /// From the service's stop on the source to its verified start on the
    /// target; `None` when this run did not stop it (a resumed run).
    pub downtime: Option<Duration>,
    pub elapsed: Duration,
    /// Bytes streamed in each phase.
    pub sent: Vec<u64>,
    /// The inventory file written back, or the edit the operator must make.
    pub inventory: InventoryUpdate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryUpdate {
    /// haelk wrote the moved jail into the inventory file.
    Written,
    /// The operator must edit it (what to do was said).
    Manual,
}

/// Moves `jail` to host `to`. `Ok(None)` for a dry run.
pub async fn migrate(
    inventory: &Inventory,
    jail: &str,
    to: &str,
    options: &Options,
) -> Result<Option<Report>> {
    let started = Instant::now();
    let migration = plan::plan(inventory, jail, to, options.strategy)?;
    let progress = Progress::new(
        [
            migration.source.name.as_str(),
            migration.target.name.as_str(),
        ],
        options.progress,
    );
    if options.dry_run {
        for (number, step) in plan::steps(&migration).iter().enumerate() {
            progress.println(format!("{:>2}. {step}", number + 1));
        }
        progress.finish().await;
        return Ok(None);
    }
    // The target's desired state after the move, rendered before any host is
    // touched; phase 1 needs its parent dataset, the start its jail and files.
    let target_state = Inputs::load(&migration.moved, options.templates.as_deref())?
        .build(&migration.moved, ClusterPhase::Formed)?
        .hosts
        .into_iter()
        .find(|h| h.host == migration.target.name)
        .ok_or_else(|| anyhow!("{} is not in the moved inventory", migration.target.name))?;
    let ends = [
        migration.source.name.as_str(),
        migration.target.name.as_str(),
    ];
    for host in ends {
        progress.started(host, "connecting");
    }
    let hosts: Vec<_> = inventory.hosts.iter().collect();
    let connections = ssh::connect_all(&hosts, options.host_keys, hosts.len()).await;
    let mut remotes = HashMap::new();
    for (host, connection) in hosts.iter().zip(connections) {
        match connection {
            Ok(remote) => {
                remotes.insert(host.name.to_string(), remote);
            }
            // Only the source and the target are needed; the others carry the
            // haproxy jails and nodes used for draining and checks.
            Err(err)
                if host.name == migration.source.name || host.name == migration.target.name =>
            {
                progress.finish().await;
                return Err(err.into());
            }
            Err(err) => progress.warn(&err),
        }
    }
    let mover = Mover {
        inventory,
        migration: &migration,
        remotes: &remotes,
        progress: &progress,
        options,
        target_state: &target_state,
        elasticsearch: None,
    };
    let result = mover.run(started).await;
    for host in ends {
        progress.ended(host, result.is_ok());
    }
    progress.finish().await;
    for (_, remote) in remotes {
        // The work is done or failed already; closing changes nothing remotely.
        let _ = remote.close().await;
    }
    result.map(Some)
}

/// One migration in progress.
struct Mover<'a, R> {
    inventory: &'a Inventory,
    migration: &'a Migration,
    remotes: &'a HashMap<String, R>,
    progress: &'a Progress,
    options: &'a Options,
    target_state: &'a HostState,
    elasticsearch: Option<elasticsearch::Client>,
}

impl<R: Remote> Mover<'_, R> {
    fn remote(&self, host: &str) -> Result<&R> {
        self.remotes
            .get(host)
            .ok_or_else(|| anyhow!("{host} is not connected"))
    }

    fn source(&self) -> Result<&R> {
        self.remote(self.migration.source.name.as_str())
    }

    fn target(&self) -> Result<&R> {
        self.remote(self.migration.target.name.as_str())
    }

    fn say(&self, line: impl AsRef<str>) {
        self.progress.println(line);
    }

    /// A problem that does not stop the move: on stderr, like every diagnostic.
    fn warn(&self, problem: impl std::fmt::Display) {
        self.progress.warn(problem);
    }

    async fn run(mut self, started: Instant) -> Result<Report> {
        let migration = self.migration;
        let target_name = migration.target.name.to_string();
        let seen = self.read_record().await?;
        if let Some((_, to)) = &seen.record
            && *to != target_name
        {
            bail!(
                "a migration of {} to {to} is in progress (ZFS property {RECORD} on {}): finish it with --to {to}",
                migration.jail.name,
                migration.source_dataset
            );
        }
        let mut done = seen.record.map(|(stage, _)| stage);
        if migration.jail.role == Role::Elasticsearch {
            self.elasticsearch = Some(self.es_client().await?);
            // A run killed while the cluster was quiesced left it so.
            self.restore_cluster().await?;
        }
        let mut sent = Vec::new();
        let mut downtime_start = None;
        let mut downtime = None;
        let mut verified = false;
        loop {
            let step = steps::next_step(done, verified);
            match step {
                Step::SendBase => {
                    self.preflight(seen.used).await?;
                    sent.push(self.phase_one().await?);
                }
                Step::Stop => {
                    self.quiesce().await?;
                    self.say(format!(
                        "phase 2: stopping {} on {}",
                        migration.jail.name, migration.source.name
                    ));
                    downtime_start = Some(Instant::now());
                    if let Err(err) = self.stop_on_source().await {
                        self.unquiesce().await;
                        return Err(err);
                    }
                }
                Step::SendFinal => match self.phase_two_send().await {
                    Ok(bytes) => sent.push(bytes),
                    Err(err) => return Err(self.roll_back(err).await),
                },
                Step::Start => {
                    if let Err(err) = self.start_on_target().await {
                        return Err(self.roll_back(err).await);
                    }
                }
                Step::Verify => {
                    if let Err(err) = self.verify_on_target().await {
                        self.undo_on_target().await;
                        return Err(self.roll_back(err).await);
                    }
                    verified = true;
                    downtime = downtime_start.map(|start: Instant| start.elapsed());
                    if let Some(downtime) = downtime {
                        self.say(format!("downtime: {:.1} s", downtime.as_secs_f64()));
                    }
                }
                Step::Retire => {
                    self.unquiesce().await;
                    // The retire script records the stage itself (or destroys the dataset).
                    self.retire_source().await?;
                    break;
                }
                Step::Finish => {
                    self.unquiesce().await;
                    break;
                }
            }
            if let Some(stage) = steps::records(step).filter(|s| *s != Stage::Retired) {
                self.write_record(stage).await?;
                done = Some(stage);
            }
        }
        let inventory = self.update_inventory();
        Ok(Report {
            downtime,
            elapsed: started.elapsed(),
            sent,
            inventory,
        })
    }

    /// A client for a node other than the one moving, through a tunnel.
    async fn es_client(&self) -> Result<elasticsearch::Client> {
        let candidates = self
            .inventory
            .jails_with_role(Role::Elasticsearch)
            .filter(|(_, jail)| jail.name != self.migration.jail.name)
            .filter_map(|(host, jail)| Some((jail, self.remotes.get(host.name.as_str())?)));
        let port = self.inventory.cluster.elasticsearch.http_port;
        let located = elasticsearch::locate::through_remotes(candidates, port).await?;
        Ok(located.client)
    }
}

/// How long a drain may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long the moved service may take to work on the target.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

#[cfg(test)]
mod tests;
