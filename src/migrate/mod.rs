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
//! the last one stopped. Pure parts are in [`plan`] and [`record`].

pub mod plan;
pub mod record;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

pub use plan::{Migration, Refusal, Strategy};
pub use record::{RECORD, Stage};

use crate::deploy::Progress;
use crate::desired::{self, ClusterPhase, HostState};
use crate::elasticsearch::{self, Allocation, HealthStatus};
use crate::facts;
use crate::freebsd;
use crate::haproxy::{self, AdminState};
use crate::inventory::{Inventory, Role};
use crate::plan::plan_host;
use crate::remote::Remote;
use crate::remote::ssh::{self, HostKeyPolicy, SshRemote};
use crate::remote::stream;
use crate::secret::Secrets;
use crate::shell::quote;
use crate::templates::Templates;

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

#[derive(Debug, Clone)]
pub enum InventoryUpdate {
    Written(PathBuf),
    Manual(String),
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
        return Ok(None);
    }
    // The target's desired state after the move, rendered before any host is
    // touched; phase 1 needs its parent dataset, the start its jail and files.
    let target_state = desired::build(
        &migration.moved,
        &Templates::load(migration.moved.templates.as_deref())?,
        &Secrets::load(&migration.moved)?,
        ClusterPhase::Formed,
    )?
    .hosts
    .into_iter()
    .find(|h| h.host == migration.target.name)
    .ok_or_else(|| anyhow!("{} is not in the moved inventory", migration.target.name))?;
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
                return Err(err.into());
            }
            Err(err) => progress.println(format!("warning: {err}")),
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
    progress.finish();
    for (_, remote) in remotes {
        // The work is done or failed already; closing changes nothing remotely.
        let _ = remote.close().await;
    }
    result.map(Some)
}

/// One migration in progress.
struct Mover<'a> {
    inventory: &'a Inventory,
    migration: &'a Migration,
    remotes: &'a HashMap<String, SshRemote>,
    progress: &'a Progress,
    options: &'a Options,
    target_state: &'a HostState,
    elasticsearch: Option<elasticsearch::Client>,
}

impl Mover<'_> {
    fn remote(&self, host: &str) -> Result<&SshRemote> {
        self.remotes
            .get(host)
            .ok_or_else(|| anyhow!("{host} is not connected"))
    }

    fn source(&self) -> Result<&SshRemote> {
        self.remote(self.migration.source.name.as_str())
    }

    fn target(&self) -> Result<&SshRemote> {
        self.remote(self.migration.target.name.as_str())
    }

    fn say(&self, line: impl AsRef<str>) {
        self.progress.println(line);
    }

    async fn run(mut self, started: Instant) -> Result<Report> {
        let migration = self.migration;
        let target_name = migration.target.name.to_string();
        let recorded = self.read_record().await?;
        if let Some((_, to)) = &recorded
            && *to != target_name
        {
            bail!(
                "a migration of {} to {to} is in progress (ZFS property {RECORD} on {}): finish it with --to {to}",
                migration.jail.name,
                migration.source_dataset
            );
        }
        let stage = recorded.map(|(stage, _)| stage);
        if migration.jail.role == Role::Elasticsearch {
            self.elasticsearch = Some(self.es_client().await?);
            // A run killed while the cluster was quiesced left it so.
            self.restore_cluster().await?;
        }
        let mut sent = Vec::new();
        let mut downtime_start = None;

        if stage < Some(Stage::BaseSent) {
            self.preflight().await?;
            sent.push(self.phase_one().await?);
            self.write_record(Stage::BaseSent).await?;
        }
        if stage < Some(Stage::Stopped) {
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
            self.write_record(Stage::Stopped).await?;
        }
        if stage < Some(Stage::FinalSent) {
            match self.phase_two_send().await {
                Ok(bytes) => sent.push(bytes),
                Err(err) => return Err(self.roll_back(err).await),
            }
            self.write_record(Stage::FinalSent).await?;
        }
        if stage < Some(Stage::Started) {
            if let Err(err) = self.start_on_target().await {
                return Err(self.roll_back(err).await);
            }
            self.write_record(Stage::Started).await?;
        }
        if let Err(err) = self.verify_on_target().await {
            self.undo_on_target().await;
            return Err(self.roll_back(err).await);
        }
        let downtime = downtime_start.map(|start| start.elapsed());
        if let Some(downtime) = downtime {
            self.say(format!("downtime: {:.1} s", downtime.as_secs_f64()));
        }
        self.unquiesce().await;
        if stage < Some(Stage::Retired) {
            self.retire_source().await?;
        }
        let inventory = self.update_inventory();
        Ok(Report {
            downtime,
            elapsed: started.elapsed(),
            sent,
            inventory,
        })
    }

    // ------------------------------------------------------------ record --

    async fn read_record(&self) -> Result<Option<(Stage, String)>> {
        let output = self
            .source()?
            .run(&freebsd::zfs_get_user_property(
                &self.migration.source_dataset,
                RECORD,
            ))
            .await?
            .check(
                self.migration.source.name.as_str(),
                "reading the migration record",
            )?;
        Ok(freebsd::parse_user_property(&output.stdout).and_then(|value| record::parse(&value)))
    }

    async fn write_record(&self, stage: Stage) -> Result<()> {
        let value = record::format(stage, self.migration.target.name.as_str());
        self.source()?
            .run(&freebsd::zfs_set(
                &self.migration.source_dataset,
                RECORD,
                &value,
            ))
            .await?
            .check(
                self.migration.source.name.as_str(),
                "recording the migration stage",
            )?;
        Ok(())
    }

    // --------------------------------------------------------- preflight --

    /// Refuses before anything changes: the cluster must be green, the target
    /// must hold the pool, room for the data, and no dataset of that name.
    async fn preflight(&self) -> Result<()> {
        let migration = self.migration;
        if let Some(client) = &self.elasticsearch {
            let health = client.health().await?;
            if health.status != HealthStatus::Green {
                let reason = client.allocation_explain().await.ok().flatten();
                bail!(
                    "the cluster is {}: a migration starts only from green{}",
                    health.summary(),
                    reason.map(|r| format!(" (first: {r})")).unwrap_or_default()
                );
            }
        }
        if let (Some(client), Strategy::Drain) = (&self.elasticsearch, migration.strategy) {
            drain_is_possible(client, migration.jail.name.as_str()).await?;
        }
        let used = self
            .bytes(self.source()?, &migration.source_dataset, "used")
            .await?;
        let target = self.target()?;
        let parent = &migration.target.zfs.dataset;
        let pool = parent.split('/').next().unwrap_or(parent);
        let free = self
            .bytes(target, pool, "available")
            .await
            .with_context(|| format!("{} has no pool {pool}", migration.target.name))?;
        // Room for the data and a margin for what changes during phase 1.
        if free < used + used / 5 {
            bail!(
                "{} has {} free in {pool}; {} needs {} and a margin",
                migration.target.name,
                human(free),
                migration.source_dataset,
                human(used)
            );
        }
        let exists = target
            .run(&format!(
                "zfs list -H -o name {} >/dev/null 2>&1 && echo exists || true",
                quote(&migration.target_dataset)
            ))
            .await?
            .check(
                migration.target.name.as_str(),
                "looking for the target dataset",
            )?;
        if exists.stdout.trim() == "exists" {
            bail!(
                "{} already exists on {}: refusing to overwrite it",
                migration.target_dataset,
                migration.target.name
            );
        }
        self.say(format!(
            "preflight ok: {} holds {}, {} has {} free",
            migration.source_dataset,
            human(used),
            migration.target.name,
            human(free)
        ));
        Ok(())
    }

    async fn bytes(&self, remote: &SshRemote, dataset: &str, property: &str) -> Result<u64> {
        let command = match property {
            "used" => freebsd::zfs_used_bytes(dataset),
            _ => freebsd::zfs_available_bytes(dataset),
        };
        let output = remote
            .run(&command)
            .await?
            .check(remote.host(), &format!("reading {property} of {dataset}"))?;
        freebsd::parse_size(output.stdout.trim())
            .with_context(|| format!("{}: {property} of {dataset}", remote.host()))
    }

    // ------------------------------------------------------------ phases --

    /// Phase 1: the base snapshot, sent in full while the jail runs.
    async fn phase_one(&self) -> Result<u64> {
        let migration = self.migration;
        let parent = self.target_state.datasets.first().ok_or_else(|| {
            anyhow!(
                "{} has no datasets in the desired state",
                migration.target.name
            )
        })?;
        self.target()?
            .run(&format!("set -e\n{}\n", freebsd::zfs_create(parent)))
            .await?
            .check(
                migration.target.name.as_str(),
                "creating the parent dataset",
            )?;
        let snapshot = format!("{}@{}", migration.source_dataset, plan::SNAPSHOT_BASE);
        self.source()?
            .run(&format!(
                "set -e\nzfs destroy {} 2>/dev/null || true\n{}\n",
                quote(&snapshot),
                freebsd::zfs_snapshot(&migration.source_dataset, plan::SNAPSHOT_BASE)
            ))
            .await?
            .check(migration.source.name.as_str(), "taking the base snapshot")?;
        self.say(format!(
            "phase 1: sending {snapshot} to {} while {} runs",
            migration.target.name, migration.jail.name
        ));
        self.send(None, plan::SNAPSHOT_BASE, false).await
    }

    /// Phase 2's stream: what changed since the base snapshot.
    async fn phase_two_send(&self) -> Result<u64> {
        let migration = self.migration;
        let target_final = format!("{}@{}", migration.target_dataset, plan::SNAPSHOT_FINAL);
        // A phase 2 that ran before (then rolled back) left its snapshot there.
        self.target()?
            .run(&format!(
                "zfs destroy {} 2>/dev/null || true\n",
                quote(&target_final)
            ))
            .await?
            .check(
                migration.target.name.as_str(),
                "clearing an earlier final snapshot",
            )?;
        self.source()?
            .run(&format!(
                "set -e\nzfs destroy {} 2>/dev/null || true\n{}\n",
                quote(&format!(
                    "{}@{}",
                    migration.source_dataset,
                    plan::SNAPSHOT_FINAL
                )),
                freebsd::zfs_snapshot(&migration.source_dataset, plan::SNAPSHOT_FINAL)
            ))
            .await?
            .check(migration.source.name.as_str(), "taking the final snapshot")?;
        self.send(Some(plan::SNAPSHOT_BASE), plan::SNAPSHOT_FINAL, true)
            .await
    }

    async fn send(&self, from: Option<&str>, snapshot: &str, force: bool) -> Result<u64> {
        let migration = self.migration;
        let send = freebsd::zfs_send(&migration.source_dataset, snapshot, from);
        let recv = freebsd::zfs_recv(&migration.target_dataset, force);
        let target = migration.target.name.as_str();
        let stats = stream::pipe(
            self.source()?,
            &send,
            self.target()?,
            &recv,
            |bytes, rate| {
                self.progress.step(
                    target,
                    format!("receiving {} ({}/s)", human(bytes), human(rate as u64)),
                );
            },
        )
        .await?;
        self.say(format!(
            "  sent {} in {:.1} s ({}/s)",
            human(stats.bytes),
            stats.elapsed.as_secs_f64(),
            human((stats.bytes as f64 / stats.elapsed.as_secs_f64().max(0.001)) as u64)
        ));
        Ok(stats.bytes)
    }

    // ------------------------------------------------- service on/off --

    async fn stop_on_source(&self) -> Result<()> {
        let migration = self.migration;
        let jail = migration.jail.name.as_str();
        let service = migration.jail.role.as_str();
        let script = format!(
            "set -e\nif jls -j {jail_q} name >/dev/null 2>&1; then\n{} >&2 || true\n{} >&2\nfi\n",
            freebsd::jail_service_action(jail, service, "stop"),
            freebsd::jail_service("stop", jail),
            jail_q = quote(jail),
        );
        self.source()?
            .run(&script)
            .await?
            .check(migration.source.name.as_str(), &format!("stopping {jail}"))?;
        Ok(())
    }

    /// The jail's host play and service play on the target, for the moved
    /// inventory: jail.conf, rc.conf, jail_list, jail start, service start.
    async fn start_on_target(&self) -> Result<()> {
        let migration = self.migration;
        let target = self.target()?;
        let name = migration.target.name.as_str();
        self.say(format!("starting {} on {name}", migration.jail.name));
        let state = self.target_state;
        let facts = facts::gather(target, state).await?;
        let plan = plan_host(state, &facts);
        if !plan.prepare.is_empty() {
            target
                .run(&plan.prepare_script())
                .await?
                .check(name, "preparing the jail")?;
        }
        let jail_plan = plan
            .jail(migration.jail.name.as_str())
            .ok_or_else(|| anyhow!("{} has no plan on {name}", migration.jail.name))?;
        if !jail_plan.is_empty() {
            target
                .run(&jail_plan.script())
                .await?
                .check(name, &format!("starting {}", migration.jail.name))?;
        }
        Ok(())
    }

    /// The jail started on the target but does not work there: stop it and make
    /// the target forget it again (its dataset stays for the next attempt).
    /// Failures are reported, not returned: the source restart comes next.
    async fn undo_on_target(&self) {
        let migration = self.migration;
        let jail = migration.jail.name.as_str();
        let jail_list: Vec<&str> = crate::desired::jail_start_order(&migration.target)
            .into_iter()
            .map(|j| j.name.as_str())
            .collect();
        let script = format!(
            "{} >&2 || true\nrm -f {}\n{}\n",
            freebsd::jail_service("stop", jail),
            quote(&freebsd::jail_conf_path(jail).to_string_lossy()),
            freebsd::sysrc_set(None, "jail_list", &jail_list.join(" ")),
        );
        let undone = match self.target() {
            Ok(target) => target
                .run(&script)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|o| {
                    o.check(
                        migration.target.name.as_str(),
                        "stopping the jail on the target",
                    )
                    .map_err(anyhow::Error::from)
                }),
            Err(err) => Err(err),
        };
        if let Err(err) = undone {
            self.say(format!("warning: {err:#}"));
        }
    }

    /// Phase 2 failed with the service stopped: start it again on the source,
    /// undo the quiescing, and forget phase 2 so a re-run redoes it.
    async fn roll_back(&self, error: anyhow::Error) -> anyhow::Error {
        let migration = self.migration;
        let jail = migration.jail.name.as_str();
        self.say(format!(
            "phase 2 failed ({error:#}): starting {jail} on {} again",
            migration.source.name
        ));
        let script = format!(
            "set -e\n{} >&2\n{} >/dev/null 2>&1 || {} >&2\n",
            freebsd::jail_service("start", jail),
            freebsd::jail_service_action(jail, migration.jail.role.as_str(), "status"),
            freebsd::jail_service_action(jail, migration.jail.role.as_str(), "start"),
        );
        let restarted = match self.source() {
            Ok(source) => source
                .run(&script)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|o| {
                    o.check(migration.source.name.as_str(), "restarting on the source")
                        .map_err(anyhow::Error::from)
                }),
            Err(err) => Err(err),
        };
        let recorded = self.write_record(Stage::BaseSent).await;
        self.unquiesce().await;
        match (restarted, recorded) {
            (Ok(_), Ok(())) => error.context(format!(
                "{jail} runs on {} again; re-run to try again",
                migration.source.name
            )),
            (Err(again), _) | (_, Err(again)) => error.context(format!(
                "and restarting {jail} on {} failed too: {again:#}",
                migration.source.name
            )),
        }
    }

    // ------------------------------------------- quiesce and restore --

    /// Takes the service out of the load balancers, and quiesces or drains an
    /// Elasticsearch node.
    async fn quiesce(&self) -> Result<()> {
        let migration = self.migration;
        let node = migration.jail.name.as_str();
        if let Some(client) = &self.elasticsearch {
            match migration.strategy {
                Strategy::Keep => {
                    client.set_allocation(Allocation::Primaries).await?;
                    if let Err(err) = client.flush().await {
                        tracing::warn!("flush failed, moving anyway: {err}");
                    }
                    self.say("quiesced: allocation primaries, flushed");
                }
                Strategy::Drain => self.drain(client, node).await?,
            }
        }
        self.set_backend(AdminState::Maint).await
    }

    async fn drain(&self, client: &elasticsearch::Client, node: &str) -> Result<()> {
        client.set_exclusion(Some(node)).await?;
        if self.migration.jail.is_master_eligible() {
            client.add_voting_exclusion(node).await?;
        }
        self.say(format!("draining {node}: waiting until it holds no shard"));
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = client.shards_on(node).await?;
            if left == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{node} still holds {left} shards after {} s",
                    DRAIN_TIMEOUT.as_secs()
                );
            }
            self.progress.step(
                self.migration.source.name.as_str(),
                format!("{left} shards left on {node}"),
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Undoes [`Self::quiesce`]; failures are reported, not returned, because
    /// this runs on the way out of other failures too.
    async fn unquiesce(&self) {
        if let Err(err) = self.restore_cluster().await {
            self.say(format!("warning: restoring the cluster settings: {err:#}"));
        }
        if let Err(err) = self.set_backend(AdminState::Ready).await {
            self.say(format!(
                "warning: putting the node back into haproxy: {err:#}"
            ));
        }
    }

    /// Allocation back to default, this node's exclusion and voting exclusions
    /// cleared: nothing a migration sets survives it.
    async fn restore_cluster(&self) -> Result<()> {
        let Some(client) = &self.elasticsearch else {
            return Ok(());
        };
        let node = self.migration.jail.name.as_str();
        if client.allocation_enable().await?.as_deref() == Some("primaries") {
            client.set_allocation(Allocation::All).await?;
        }
        if client.exclusion().await?.as_deref() == Some(node) {
            client.set_exclusion(None).await?;
        }
        client.clear_voting_exclusions().await?;
        Ok(())
    }

    /// Sets the migrated jail's server in every haproxy that balances its service.
    async fn set_backend(&self, state: AdminState) -> Result<()> {
        let migration = self.migration;
        let role = migration.jail.role;
        if role == Role::Haproxy
            || !desired::client_facing_nodes(self.inventory, role)
                .iter()
                .any(|j| j.name == migration.jail.name)
        {
            return Ok(());
        }
        let backend = haproxy::backend(role);
        for host in &self.inventory.hosts {
            let jails: Vec<&str> = host
                .jails
                .iter()
                .filter(|j| j.role == Role::Haproxy && j.fronts == Some(role))
                .map(|j| j.name.as_str())
                .collect();
            if jails.is_empty() {
                continue;
            }
            let script =
                haproxy::set_state_script(jails, &backend, migration.jail.name.as_str(), state);
            self.remote(host.name.as_str())?
                .run(&script)
                .await?
                .check(host.name.as_str(), "setting the haproxy server state")?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ verify --

    /// Waits until the moved service works on the target.
    async fn verify_on_target(&self) -> Result<()> {
        let migration = self.migration;
        let jail = &migration.jail;
        let deadline = Instant::now() + VERIFY_TIMEOUT;
        match jail.role {
            Role::Elasticsearch => {
                let client = self
                    .elasticsearch
                    .as_ref()
                    .ok_or_else(|| anyhow!("no Elasticsearch client"))?;
                while !client
                    .node_joined(jail.name.as_str())
                    .await
                    .unwrap_or(false)
                {
                    if Instant::now() >= deadline {
                        bail!(
                            "{} did not rejoin the cluster within {} s",
                            jail.name,
                            VERIFY_TIMEOUT.as_secs()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                self.say(format!(
                    "{} rejoined the cluster from {}",
                    jail.name, migration.target.name
                ));
                self.restore_cluster().await?;
                let health = client
                    .wait_for_health(HealthStatus::Green, VERIFY_TIMEOUT)
                    .await?;
                self.say(format!("cluster {}", health.summary()));
            }
            Role::Kibana => {
                let local = self
                    .target()?
                    .tunnel(SocketAddr::new(
                        jail.ip.into(),
                        self.inventory.cluster.kibana.port,
                    ))
                    .await?;
                loop {
                    match crate::kibana::status(&format!("http://{local}")).await {
                        Ok(status) if status.is_available() => break,
                        other if Instant::now() >= deadline => {
                            bail!(
                                "{} is not available on {}: {other:?}",
                                jail.name,
                                migration.target.name
                            )
                        }
                        _ => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
                self.say(format!(
                    "{} available on {}",
                    jail.name, migration.target.name
                ));
            }
            Role::Haproxy => {
                loop {
                    let stats = haproxy::read_stats(self.target()?, [jail.name.as_str()]).await?;
                    let up = stats
                        .get(jail.name.as_str())
                        .and_then(|s| s.as_ref().ok())
                        .is_some_and(|servers| {
                            !servers.is_empty() && servers.iter().all(|s| s.is_up())
                        });
                    if up {
                        break;
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "{} on {}: backends not UP: {stats:?}",
                            jail.name,
                            migration.target.name
                        );
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                self.say(format!(
                    "{} serves on {}: every backend UP",
                    jail.name, migration.target.name
                ));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ retire --

    /// The source forgets the jail: its jail.conf and jail_list entry go; the
    /// dataset stays (marked retired) unless `--destroy-source`.
    async fn retire_source(&self) -> Result<()> {
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
                "zfs destroy -r {}\n",
                quote(&migration.source_dataset)
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
                    "zfs destroy {} 2>/dev/null || true\n",
                    quote(&format!("{}@{s}", migration.target_dataset))
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
    fn update_inventory(&self) -> InventoryUpdate {
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
                InventoryUpdate::Written(source.clone())
            }
            Err(instruction) => {
                self.say(format!("update the inventory by hand: {instruction}"));
                InventoryUpdate::Manual(instruction)
            }
        }
    }

    // --------------------------------------------------------------- API --

    /// A client for a node other than the one moving, through a tunnel.
    async fn es_client(&self) -> Result<elasticsearch::Client> {
        let port = self.inventory.cluster.elasticsearch.http_port;
        let mut problems = Vec::new();
        for (host, jail) in self.inventory.jails_with_role(Role::Elasticsearch) {
            if jail.name == self.migration.jail.name {
                continue;
            }
            let Some(remote) = self.remotes.get(host.name.as_str()) else {
                continue;
            };
            let attempt = async {
                let local = remote.tunnel(SocketAddr::new(jail.ip.into(), port)).await?;
                let client = elasticsearch::Client::new(format!("http://{local}"))?;
                client.root().await?;
                anyhow::Ok(client)
            };
            match attempt.await {
                Ok(client) => return Ok(client),
                Err(err) => problems.push(format!("{}: {err:#}", jail.name)),
            }
        }
        bail!(
            "no other Elasticsearch node answers: {}",
            problems.join("; ")
        )
    }
}

/// A drain moves every copy off the node: each shard on it must have room on the
/// other data nodes (one copy of a shard per node), or the drain never ends.
async fn drain_is_possible(client: &elasticsearch::Client, node: &str) -> Result<()> {
    let others = client
        .nodes()
        .await?
        .iter()
        .filter(|n| n.is_data() && n.name != node)
        .count();
    let copies = client.shard_copies().await?;
    for (index, shard, _) in copies
        .iter()
        .filter(|(_, _, on)| on.as_deref() == Some(node))
    {
        let count = copies
            .iter()
            .filter(|(i, s, _)| i == index && s == shard)
            .count();
        if count > others {
            bail!(
                "cannot drain {node}: shard {shard} of index {index} has {count} copies and only {others} other data node{} can hold one each; --strategy keep moves the node with its shards",
                if others == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}

/// How long a drain may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long the moved service may take to work on the target.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Bytes for people: `1.5 GiB`, `200 MiB`, `512 B`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
