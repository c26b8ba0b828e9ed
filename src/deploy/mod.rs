//! The deploy engine: connect, gather facts, plan, then run the playbook's plays
//! with a health gate after every batch.
//!
//! Everything remote goes through a [`Remote`]: one round trip for a host's facts,
//! one per host play, one per jail whose service changes, one per haproxy gate
//! poll. The Elasticsearch and Kibana APIs are reached through
//! [`Remote::tunnel`] to the jail's address, as on real hosts.
//!
//! Failure handling: a host whose step fails stops its own work; the other hosts
//! of the same batch finish theirs, and then the run stops - no play proceeds past
//! a failed batch or gate.

mod drain;
mod elasticsearch_play;
#[cfg(test)]
mod engine_tests;
mod es_clients;
mod gates;
mod handover;
mod host_play;
mod plays;
mod report;
mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::{StreamExt, stream};

pub use crate::progress::Progress;
pub use report::{HostSummary, Summary};

use crate::desired::inputs::Inputs;
use crate::desired::{ClusterPhase, DesiredState};
use crate::elasticsearch;
use crate::facts::{self, HostFacts};
use crate::inventory::{Host, Inventory, Role};
use crate::plan::{self, HostPlan};
use crate::playbook::Playbook;
use crate::remote::Remote;
use crate::remote::ssh::{self, HostKeyPolicy};

/// How to run a deploy.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these hosts (empty: all).
    pub limit: Vec<String>,
    /// Gather facts and show the plan; change nothing.
    pub dry_run: bool,
    /// Hosts worked on at once (`None`: all).
    pub forks: Option<usize>,
    pub host_keys: HostKeyPolicy,
    /// Show progress lines (on a terminal).
    pub progress: bool,
}

/// What a deploy writes, rendered once, before any host is reached: a template
/// or secret that does not work stops the command there, reported once.
pub struct Rendered {
    /// The templates and secrets (the secrets mask a dry run's output).
    pub inputs: Inputs,
    /// What a formed cluster gets.
    formed: DesiredState,
    /// What a first deploy writes (with `cluster.initial_master_nodes`); which
    /// of the two applies is known only once the facts are in.
    bootstrap: DesiredState,
}

impl Rendered {
    /// Loads the inputs (`templates` overrides the inventory's `templates:`)
    /// and renders both phases.
    pub fn new(inventory: &Inventory, templates: Option<&Path>) -> Result<Self> {
        let inputs = Inputs::load(inventory, templates)?;
        Ok(Self {
            formed: inputs.build(inventory, ClusterPhase::Formed)?,
            bootstrap: inputs.build(inventory, ClusterPhase::Bootstrap)?,
            inputs,
        })
    }

    /// The desired state of `phase`.
    fn state(&self, phase: ClusterPhase) -> &DesiredState {
        match phase {
            ClusterPhase::Formed => &self.formed,
            ClusterPhase::Bootstrap => &self.bootstrap,
        }
    }
}

/// Deploys `inventory`, as `rendered`, over SSH.
pub async fn deploy(
    inventory: &Inventory,
    playbook: &Playbook,
    rendered: &Rendered,
    options: &Options,
) -> Result<Summary> {
    let started = Instant::now();
    // `--limit` restricts what changes, never what is read or checked: every
    // host is connected to, looked at and gated.
    let (hosts, to_change) = read_and_changed(inventory, &options.limit)?;
    let progress = Progress::new(hosts.iter().map(|h| h.name.as_str()), options.progress);
    let forks = options.forks.unwrap_or(hosts.len()).max(1);
    let mut engine = Engine::new(inventory, playbook, rendered, options, progress, forks);
    for host in &hosts {
        engine.progress.started(host.name.as_str(), "connecting");
    }
    let connected = Instant::now();
    let connections = ssh::connect_all(&hosts, options.host_keys, forks).await;
    tracing::info!("connected in {:.0?}", connected.elapsed());
    for (host, connection) in hosts.into_iter().zip(connections) {
        let changes = to_change.contains(host.name.as_str());
        engine.add_host(host, changes, connection.map_err(|e| e.reason()));
    }
    let mut summary = engine.run().await;
    summary.elapsed = started.elapsed();
    for run in engine.hosts {
        if let Some(remote) = run.remote {
            // The work is done; a failure to close the master connection cleanly
            // changes nothing on the host.
            if let Err(err) = remote.close().await {
                tracing::debug!("closing the connection: {err}");
            }
        }
    }
    Ok(summary)
}

/// The inventory's hosts named by `--limit` (all when empty), in inventory order.
pub fn select_hosts<'a>(inventory: &'a Inventory, limit: &[String]) -> Result<Vec<&'a Host>> {
    for name in limit {
        if !inventory.hosts.iter().any(|h| h.name.as_str() == name) {
            let known: Vec<&str> = inventory.hosts.iter().map(|h| h.name.as_str()).collect();
            bail!(
                "--limit names {name}, which is not a host of {} (hosts: {})",
                inventory.source.display(),
                known.join(", ")
            );
        }
    }
    Ok(inventory
        .hosts
        .iter()
        .filter(|h| limit.is_empty() || limit.iter().any(|n| n == h.name.as_str()))
        .collect())
}

/// The hosts a deploy reads and checks - every one, whatever the limit - and
/// the names of those it changes: those `--limit` names, or all.
#[allow(clippy::type_complexity)]
fn read_and_changed<'a>(
    inventory: &'a Inventory,
    limit: &[String],
) -> Result<(Vec<&'a Host>, BTreeSet<&'a str>)> {
    let changed = select_hosts(inventory, limit)?
        .into_iter()
        .map(|h| h.name.as_str())
        .collect();
    Ok((inventory.hosts.iter().collect(), changed))
}

/// One host's run.
struct HostRun<'a, R> {
    host: &'a Host,
    /// Whether its plan is carried out (`--limit`); every host is read.
    changes: bool,
    remote: Option<R>,
    facts: Option<HostFacts>,
    plan: Option<HostPlan>,
    /// Changes made (or, in a dry run, pending).
    changed: usize,
    /// Why the host failed, without its name (the report adds it).
    error: Option<String>,
}

impl<R> HostRun<'_, R> {
    fn name(&self) -> &str {
        self.host.name.as_str()
    }

    fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The connection to the host; an error naming the host when there is none.
    fn connected(&self) -> Result<&R, String> {
        self.remote
            .as_ref()
            .ok_or_else(|| format!("{}: not connected", self.name()))
    }
}

/// The state of one deploy run, generic over the transport so it can be driven
/// without SSH.
struct Engine<'a, R> {
    inventory: &'a Inventory,
    playbook: &'a Playbook,
    options: &'a Options,
    rendered: &'a Rendered,
    progress: Progress,
    /// Hosts worked on at once, in every step.
    forks: usize,
    hosts: Vec<HostRun<'a, R>>,
    phase: ClusterPhase,
    /// The verification line, built gate by gate.
    verified: Vec<String>,
    /// Failures that belong to no single host (a gate).
    failures: Vec<String>,
    /// API clients by jail name, through tunnels.
    elasticsearch: HashMap<String, Arc<elasticsearch::Client>>,
    /// What a haproxy gate of the running play saw on each host it passed on:
    /// the play's closing gate over every host does not read them again.
    backends_seen: BTreeMap<String, gates::HostSeen>,
}

impl<'a, R: Remote> Engine<'a, R> {
    fn new(
        inventory: &'a Inventory,
        playbook: &'a Playbook,
        rendered: &'a Rendered,
        options: &'a Options,
        progress: Progress,
        forks: usize,
    ) -> Self {
        Self {
            inventory,
            playbook,
            options,
            rendered,
            progress,
            forks,
            hosts: Vec::new(),
            phase: ClusterPhase::Formed,
            verified: Vec::new(),
            failures: Vec::new(),
            elasticsearch: HashMap::new(),
            backends_seen: BTreeMap::new(),
        }
    }

    fn add_host(&mut self, host: &'a Host, changes: bool, connection: Result<R, String>) {
        let (remote, error) = match connection {
            Ok(remote) => (Some(remote), None),
            Err(error) => (None, Some(error)),
        };
        self.hosts.push(HostRun {
            host,
            changes,
            remote,
            facts: None,
            plan: None,
            changed: 0,
            error,
        });
    }

    async fn run(&mut self) -> Summary {
        if let Err(stop) = self.converge().await {
            self.failures.extend(stop.0);
        }
        for run in &self.hosts {
            self.progress.ended(run.name(), run.ok());
        }
        self.progress.finish().await;
        self.summary()
    }

    async fn converge(&mut self) -> Result<(), Stop> {
        self.check_hosts("ssh")?;
        self.verified.push("ssh ok".into());
        let started = Instant::now();
        self.gather_facts().await;
        tracing::info!("facts gathered in {:.0?}", started.elapsed());
        self.check_hosts("facts")?;
        self.phase = self.cluster_phase().await.map_err(Stop::because)?;
        self.make_plans();
        if self.options.dry_run {
            self.show_plans();
            return Ok(());
        }
        for play in &self.playbook.plays {
            self.progress.println(format!("play {}", play.name));
            let started = Instant::now();
            self.play(play).await?;
            tracing::info!("play {} took {:.0?}", play.name, started.elapsed());
        }
        Ok(())
    }

    /// Shows each failed host as failed on its progress line, as soon as a step
    /// or batch is over (the reason is reported once, at the end).
    fn show_failed(&self) {
        for run in self.hosts.iter().filter(|run| !run.ok()) {
            self.progress.ended(run.name(), false);
        }
    }

    /// Stops the run when a host failed, naming the step.
    fn check_hosts(&self, step: &str) -> Result<(), Stop> {
        self.show_failed();
        if self.hosts.iter().all(HostRun::ok) {
            Ok(())
        } else {
            tracing::debug!("stopping after {step}");
            Err(Stop(Vec::new()))
        }
    }

    fn desired(&self, phase: ClusterPhase) -> &'a DesiredState {
        self.rendered.state(phase)
    }

    async fn gather_facts(&mut self) {
        let desired = self.desired(ClusterPhase::Formed);
        let progress = &self.progress;
        let results = at_most(
            self.forks,
            self.hosts.iter().map(|run| {
                let state = desired.hosts.iter().find(|h| h.host == run.host.name);
                async move {
                    let (Some(remote), Some(state)) = (&run.remote, state) else {
                        return None;
                    };
                    progress.step(run.name(), "gathering facts");
                    Some(facts::gather(remote, state).await.map_err(|e| e.reason()))
                }
            }),
        )
        .await;
        for (run, result) in self.hosts.iter_mut().zip(results) {
            match result {
                Some(Ok(facts)) => run.facts = Some(facts),
                Some(Err(error)) => run.error = Some(error),
                None => {}
            }
        }
    }

    /// Bootstrap until a cluster UUID is recorded on an Elasticsearch dataset or
    /// a running node reports one (design.md, "Bootstrap"); see [`decide_phase`].
    async fn cluster_phase(&mut self) -> Result<ClusterPhase, String> {
        let recorded = !self.es_datasets_without_uuid(false).1.is_empty();
        let running = self.hosts.iter().any(|run| {
            run.facts.as_ref().is_some_and(|facts| {
                run.host
                    .jails
                    .iter()
                    .filter(|j| j.role == Role::Elasticsearch)
                    .any(|j| {
                        facts
                            .jails
                            .get(j.name.as_str())
                            .is_some_and(|f| f.services.values().any(|running| *running))
                    })
            })
        });
        let answer = if recorded || !running {
            None
        } else {
            // `GET /` names the cluster's UUID: the answer that located the node.
            Some(
                self.es_client(None)
                    .await
                    .map(|node| node.root.formed_cluster_uuid().map(str::to_owned)),
            )
        };
        decide_phase(recorded, running, answer)
    }

    /// Elasticsearch datasets without a recorded cluster UUID (of the hosts
    /// this deploy changes, when `changed_only`), and the UUIDs recorded on the
    /// others.
    fn es_datasets_without_uuid(
        &self,
        changed_only: bool,
    ) -> (Vec<(usize, String)>, BTreeSet<String>) {
        let mut missing = Vec::new();
        let mut recorded = BTreeSet::new();
        for (index, run) in self.hosts.iter().enumerate() {
            if changed_only && !run.changes {
                continue;
            }
            let Some(facts) = &run.facts else { continue };
            for jail in run
                .host
                .jails
                .iter()
                .filter(|j| j.role == Role::Elasticsearch)
            {
                let dataset = format!("{}/{}", run.host.zfs.dataset, jail.name);
                match facts
                    .datasets
                    .get(&dataset)
                    .and_then(|d| d.cluster_uuid.clone())
                {
                    Some(uuid) => {
                        recorded.insert(uuid);
                    }
                    None => missing.push((index, dataset)),
                }
            }
        }
        (missing, recorded)
    }

    fn make_plans(&mut self) {
        let desired = self.desired(self.phase);
        for run in &mut self.hosts {
            let (Some(facts), Some(state)) = (
                &run.facts,
                desired.hosts.iter().find(|h| h.host == run.host.name),
            ) else {
                continue;
            };
            match plan::plan_host(state, facts) {
                Ok(plan) => run.plan = Some(plan),
                Err(refused) => run.error = Some(refused.to_string()),
            }
        }
    }

    fn show_plans(&mut self) {
        let secrets = &self.rendered.inputs.secrets;
        for run in self.hosts.iter_mut().filter(|run| run.changes) {
            let Some(plan) = &run.plan else { continue };
            run.changed = plan.change_count();
            if plan.is_empty() {
                self.progress
                    .println(format!("{}: nothing to do", run.host.name));
            } else {
                self.progress.println(format!(
                    "{}: {} changes\n{}",
                    run.host.name,
                    run.changed,
                    plan::describe(plan, &|text| secrets.mask(text)).trim_end()
                ));
            }
        }
    }

    fn summary(&self) -> Summary {
        Summary {
            hosts: self
                .hosts
                .iter()
                .map(|run| HostSummary {
                    host: run.host.name.to_string(),
                    unchanged: run.plan.as_ref().map_or(0, |p| p.unchanged),
                    changed: run.changed,
                    error: run.error.clone(),
                    round_trips: run.remote.as_ref().map_or(0, Remote::round_trips),
                })
                .collect(),
            dry_run: self.options.dry_run,
            verified: self.verified.clone(),
            failures: self.failures.clone(),
            elapsed: Duration::ZERO,
        }
    }
}

/// Runs `work`, at most `forks` at once (`--forks`: hosts worked on at once,
/// in every step), and returns the results in order.
async fn at_most<T>(
    forks: usize,
    work: impl IntoIterator<Item = impl Future<Output = T>>,
) -> Vec<T> {
    stream::iter(work)
        .buffered(forks.max(1))
        .collect::<Vec<_>>()
        .await
}

/// Is the cluster new? `recorded`: some Elasticsearch dataset has the cluster
/// UUID; `running`: some node's service runs; `answer`: what a node said the
/// cluster UUID is (asked only when recorded is false and a node runs). A node
/// that cannot be asked is an error, not a new cluster: bootstrap settings
/// rendered into a formed cluster would let a restarted node form another.
fn decide_phase(
    recorded: bool,
    running: bool,
    answer: Option<Result<Option<String>, String>>,
) -> Result<ClusterPhase, String> {
    match (recorded, running, answer) {
        (true, _, _) => Ok(ClusterPhase::Formed),
        (false, false, _) => Ok(ClusterPhase::Bootstrap),
        (false, true, Some(Ok(Some(_)))) => Ok(ClusterPhase::Formed),
        (false, true, Some(Ok(None))) => Ok(ClusterPhase::Bootstrap),
        (false, true, Some(Err(err))) => Err(format!(
            "cannot tell whether the Elasticsearch cluster is new: no dataset records its \
             UUID and a node runs, but asking it failed: {err}"
        )),
        (false, true, None) => Err(
            "cannot tell whether the Elasticsearch cluster is new: a node runs and was not asked"
                .to_owned(),
        ),
    }
}

/// The run stops; the strings are failures not already recorded on a host.
#[derive(Debug)]
struct Stop(Vec<String>);

impl Stop {
    fn because(message: impl Into<String>) -> Self {
        Self(vec![message.into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_restricts_what_changes_never_what_is_read() {
        let inventory = crate::testing::lab();
        let names =
            |hosts: &[&Host]| -> Vec<String> { hosts.iter().map(|h| h.name.to_string()).collect() };
        let all = names(&inventory.hosts.iter().collect::<Vec<_>>());
        let (read, changed) = read_and_changed(&inventory, &["lab1".to_owned()]).unwrap();
        assert_eq!(names(&read), all, "every host is read and checked");
        assert_eq!(changed, BTreeSet::from(["lab1"]));
        let (read, changed) = read_and_changed(&inventory, &[]).unwrap();
        assert_eq!(names(&read), all);
        assert_eq!(changed.len(), all.len(), "no limit: every host changes");
        let err = read_and_changed(&inventory, &["nope".to_owned()]).unwrap_err();
        assert!(err.to_string().starts_with("--limit names nope"), "{err}");
    }

    #[test]
    fn an_unanswered_question_about_the_cluster_is_an_error_not_a_new_cluster() {
        let uuid = || Some(Ok(Some("u-1".to_owned())));
        assert_eq!(decide_phase(true, true, None), Ok(ClusterPhase::Formed));
        assert_eq!(
            decide_phase(false, false, None),
            Ok(ClusterPhase::Bootstrap)
        );
        assert_eq!(decide_phase(false, true, uuid()), Ok(ClusterPhase::Formed));
        assert_eq!(
            decide_phase(false, true, Some(Ok(None))),
            Ok(ClusterPhase::Bootstrap)
        );
        let err = decide_phase(false, true, Some(Err("HTTP 500".into()))).unwrap_err();
        assert!(
            err.starts_with("cannot tell whether the Elasticsearch cluster is new")
                && err.ends_with("HTTP 500"),
            "{err}"
        );
        assert!(decide_phase(false, true, None).is_err());
    }
}
