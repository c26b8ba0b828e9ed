//! The plays: the host play (datasets, jails, packages) and the service plays
//! (Elasticsearch rolling and health-gated, Kibana, the haproxy stacks), each
//! batch followed by its gate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::{Engine, HostRun, Progress, Stop};
use crate::desired::ClusterPhase;
use crate::elasticsearch::{self, rolling};
use crate::freebsd;
use crate::haproxy::{self, AdminState};
use crate::inventory::{Inventory, Jail, Role};
use crate::kibana;
use crate::plan::{JailPlan, ServiceAction};
use crate::playbook::{Batch, Gate, Play, Target};
use crate::remote::Remote;

/// How often a gate polls while it waits.
const POLL: Duration = Duration::from_millis(500);

/// How long requests already sent to a node may take before it is stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

impl<'a, R: Remote> Engine<'a, R> {
    pub(super) async fn play(&mut self, play: &Play) -> Result<(), Stop> {
        match play.target {
            Target::Hosts => self.host_play(play).await,
            Target::Role(Role::Elasticsearch) => self.elasticsearch_play(play).await,
            Target::Role(role) => self.service_play(play, role).await,
        }
    }

    /// Indexes of the selected hosts among `batch.hosts`, without failed ones.
    fn runs_of(&self, batch: &Batch<'_>) -> Vec<usize> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, run)| batch.hosts.iter().any(|h| h.name == run.host.name))
            .map(|(index, _)| index)
            .collect()
    }

    fn stop_if_failed(&self) -> Result<(), Stop> {
        if self.hosts.iter().all(|run| run.ok()) {
            Ok(())
        } else {
            Err(Stop(Vec::new()))
        }
    }

    // ---------------------------------------------------------------- hosts --

    async fn host_play(&mut self, play: &Play) -> Result<(), Stop> {
        let mut running_total = 0;
        let mut declared_total = 0;
        for batch in play.batches(self.inventory) {
            let indexes = self.runs_of(&batch);
            let progress = &self.progress;
            let hosts = &self.hosts;
            let results = join_all(indexes.iter().map(|&index| async move {
                let run = &hosts[index];
                let (Some(remote), Some(plan), Some(facts)) = (&run.remote, &run.plan, &run.facts)
                else {
                    return Ok(Vec::new());
                };
                if plan.prepare.is_empty() {
                    return Ok(facts
                        .jails
                        .iter()
                        .filter(|(_, j)| j.running)
                        .map(|(name, _)| name.clone())
                        .collect());
                }
                progress.step(
                    run.name(),
                    format!("host play: {} changes", plan.prepare.len()),
                );
                let output = remote
                    .run(&plan.prepare_script())
                    .await
                    .and_then(|o| o.check(run.name(), "the host play"))
                    .map_err(|e| e.to_string())?;
                crate::plan::running_jails(&output.stdout)
                    .ok_or_else(|| format!("{}: the host play's output was cut short", run.name()))
            }))
            .await;
            for (&index, result) in indexes.iter().zip(results) {
                let run = &mut self.hosts[index];
                let prepared = run.plan.as_ref().map_or(0, |p| p.prepare.len());
                match result {
                    Err(error) => run.error = Some(error),
                    Ok(running) => {
                        run.changed += prepared;
                        let declared: Vec<&str> =
                            run.host.jails.iter().map(|j| j.name.as_str()).collect();
                        let up = declared
                            .iter()
                            .filter(|name| running.iter().any(|r| r == *name))
                            .count();
                        running_total += up;
                        declared_total += declared.len();
                        let line = format!(
                            "  {}: {} · jails {up}/{} running",
                            run.host.name,
                            changes(prepared),
                            declared.len()
                        );
                        self.progress.println(line);
                        if up < declared.len() {
                            let missing: Vec<&str> = declared
                                .iter()
                                .filter(|name| !running.iter().any(|r| r == *name))
                                .copied()
                                .collect();
                            run.error = Some(format!(
                                "gate {}: jails not running: {}",
                                Gate::HostReady,
                                missing.join(", ")
                            ));
                        }
                    }
                }
            }
            self.stop_if_failed()?;
        }
        self.verified.push("datasets ok".into());
        self.verified
            .push(format!("jails {running_total}/{declared_total} running"));
        Ok(())
    }

    // -------------------------------------------------------- service plays --

    /// The plan of `jail` and the index of its host run, when the host is selected.
    fn jail_plan(&self, jail: &Jail) -> Option<(usize, &JailPlan)> {
        self.hosts.iter().enumerate().find_map(|(index, run)| {
            run.plan
                .as_ref()
                .and_then(|plan| plan.jail(jail.name.as_str()))
                .map(|plan| (index, plan))
        })
    }

    /// Runs the service scripts of `jails` (one round trip each), hosts in
    /// parallel and each host's jails in order. Returns whether any ran.
    async fn run_jail_scripts(&mut self, jails: &[&Jail]) -> Result<bool, Stop> {
        let work: Vec<(usize, JailPlan)> = jails
            .iter()
            .filter_map(|jail| self.jail_plan(jail))
            .filter(|(_, plan)| !plan.is_empty())
            .map(|(index, plan)| (index, plan.clone()))
            .collect();
        if work.is_empty() {
            return Ok(false);
        }
        let mut by_host: Vec<(usize, Vec<JailPlan>)> = Vec::new();
        for (index, plan) in work {
            match by_host.iter_mut().find(|(i, _)| *i == index) {
                Some((_, plans)) => plans.push(plan),
                None => by_host.push((index, vec![plan])),
            }
        }
        let progress = &self.progress;
        let hosts = &self.hosts;
        let results = join_all(by_host.iter().map(|(index, plans)| async move {
            let run = &hosts[*index];
            let Some(remote) = &run.remote else {
                return (0, Some(format!("{}: not connected", run.name())));
            };
            let mut done = 0;
            for plan in plans {
                progress.step(run.name(), format!("{}: {}", plan.name, describe(plan)));
                let result = remote.run(&plan.script()).await.and_then(|o| {
                    o.check(run.name(), &format!("{} ({})", plan.name, describe(plan)))
                });
                if let Err(err) = result {
                    return (done, Some(err.to_string()));
                }
                done += plan.change_count();
                progress.println(format!("  {}: {}", plan.name, describe(plan)));
            }
            (done, None)
        }))
        .await;
        for ((index, _), (done, error)) in by_host.iter().zip(results) {
            let run = &mut self.hosts[*index];
            run.changed += done;
            if error.is_some() {
                run.error = error;
            }
        }
        self.stop_if_failed()?;
        Ok(true)
    }

    /// Kibana and haproxy: batches of scripts, each followed by the gate, then
    /// the gate over every instance for the verification line.
    async fn service_play(&mut self, play: &Play, role: Role) -> Result<(), Stop> {
        for batch in play.batches(self.inventory) {
            let jails: Vec<&Jail> = batch.jails.iter().map(|(_, j)| *j).collect();
            if self.run_jail_scripts(&jails).await? {
                self.gate(play, role, &batch).await?;
            }
        }
        let line = self.gate(play, role, &self.whole(role)).await?;
        self.verified.push(line);
        Ok(())
    }

    /// Every selected host and every jail of `role` on them, as one batch.
    fn whole(&self, role: Role) -> Batch<'a> {
        let inventory: &'a Inventory = self.inventory;
        Batch {
            hosts: inventory.hosts.iter().collect(),
            jails: inventory.jails_with_role(role).collect(),
        }
    }

    /// Runs the play's gate over `batch` and prints its line.
    async fn gate(&mut self, play: &Play, role: Role, batch: &Batch<'_>) -> Result<String, Stop> {
        let line = match role {
            Role::Kibana => self.kibana_gate(batch, play.gate_timeout).await,
            Role::Haproxy => self.haproxy_gate(batch, play.gate_timeout).await,
            Role::Elasticsearch => self.elasticsearch_gate(play.gate_timeout).await,
        };
        match line {
            Ok(line) => {
                self.progress
                    .println(format!("  gate {}: {line}", play.gate));
                Ok(line)
            }
            Err(reason) => Err(Stop::because(format!(
                "play {}: gate {} failed: {reason}",
                play.name, play.gate
            ))),
        }
    }

    async fn kibana_gate(
        &mut self,
        batch: &Batch<'_>,
        timeout: Duration,
    ) -> Result<String, String> {
        let port = self.inventory.cluster.kibana.port;
        let deadline = Instant::now() + timeout;
        let mut available = 0;
        for (host, jail) in &batch.jails {
            let Some(run) = self.hosts.iter().find(|r| r.host.name == host.name) else {
                continue;
            };
            let Some(remote) = &run.remote else { continue };
            let local = remote
                .tunnel(SocketAddr::new(jail.ip.into(), port))
                .await
                .map_err(|e| e.to_string())?;
            let base = format!("http://{local}");
            loop {
                let status = kibana::status(&base).await;
                match status {
                    Ok(status) if status.is_available() => break,
                    other if Instant::now() >= deadline => {
                        let why = match other {
                            Ok(status) => format!("{}: {}", status.level, status.summary),
                            Err(err) => err,
                        };
                        return Err(format!(
                            "{} is not available after {}: {why}",
                            jail.name,
                            humantime(timeout)
                        ));
                    }
                    _ => tokio::time::sleep(POLL).await,
                }
            }
            available += 1;
        }
        Ok(format!(
            "kibana {available}/{} available",
            batch.jails.len()
        ))
    }

    /// Waits until every backend server of every haproxy jail in the batch is UP,
    /// hosts in parallel; the line counts each service's servers (UP in every
    /// haproxy jail that fronts it).
    async fn haproxy_gate(
        &mut self,
        batch: &Batch<'_>,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let stacks: Vec<(&HostRun<'a, R>, Vec<&Jail>)> = batch
            .hosts
            .iter()
            .filter_map(|host| {
                let run = self.hosts.iter().find(|r| r.host.name == host.name)?;
                let jails: Vec<&Jail> = host
                    .jails
                    .iter()
                    .filter(|j| j.role == Role::Haproxy)
                    .collect();
                (!jails.is_empty()).then_some((run, jails))
            })
            .collect();
        let results = join_all(
            stacks
                .iter()
                .map(|(run, jails)| wait_for_backends(run, jails, deadline, &self.progress)),
        )
        .await;
        // service -> server -> UP in every jail that fronts the service.
        let mut servers: BTreeMap<&str, BTreeMap<String, bool>> = BTreeMap::new();
        for result in results {
            for (service, server, up) in result? {
                let entry = servers
                    .entry(service)
                    .or_default()
                    .entry(server)
                    .or_insert(true);
                *entry &= up;
            }
        }
        let parts: Vec<String> = servers
            .iter()
            .map(|(service, servers)| {
                let up = servers.values().filter(|up| **up).count();
                format!("{} {up}/{} UP", short(service), servers.len())
            })
            .collect();
        Ok(format!("haproxy {}", parts.join(", ")))
    }

    // -------------------------------------------------------- elasticsearch --

    async fn elasticsearch_play(&mut self, play: &Play) -> Result<(), Stop> {
        let mut batches: Vec<Vec<&Jail>> = play
            .batches(self.inventory)
            .into_iter()
            .map(|b| b.jails.iter().map(|(_, j)| *j).collect())
            .collect();
        if self.phase == ClusterPhase::Formed {
            self.restore_allocation().await?;
        }
        let work = batches.iter().flatten().any(|jail| {
            self.jail_plan(jail)
                .is_some_and(|(_, plan)| !plan.is_empty())
        });
        // Nodes that are not serving start together, before any gate: starting a
        // node never endangers the cluster, and a cluster whose nodes are all down
        // (a bootstrap, a power cut) forms only once a majority of its masters run.
        let stopped: Vec<&Jail> = batches
            .iter()
            .flatten()
            .copied()
            .filter(|jail| {
                self.jail_plan(jail)
                    .is_some_and(|(_, plan)| !plan.is_empty() && !plan.was_running)
            })
            .collect();
        for jails in &mut batches {
            jails.retain(|jail| !stopped.iter().any(|s| s.name == jail.name));
        }
        batches.retain(|jails| !jails.is_empty());
        if !stopped.is_empty() {
            batches.insert(0, stopped);
        }
        if !work {
            batches.clear();
        } else if self.phase == ClusterPhase::Formed
            && let Some(master) = self.elected_master().await
        {
            // ECK: the elected master restarts last, so the cluster elects once.
            batches.sort_by_key(|jails| jails.iter().any(|j| j.name.as_str() == master));
        }
        let mut last_gate = None;
        for jails in batches {
            let (rolling, plain): (Vec<&Jail>, Vec<&Jail>) = jails.iter().partition(|jail| {
                self.phase == ClusterPhase::Formed
                    && self.jail_plan(jail).is_some_and(|(_, plan)| {
                        plan.was_running && plan.action >= ServiceAction::Restart
                    })
            });
            let mut ran = self.run_jail_scripts(&plain).await?;
            for jail in rolling {
                self.rolling_restart(jail, play.gate_timeout).await?;
                ran = true;
            }
            last_gate = None;
            if ran {
                // The gate is cluster-wide: no batch to name.
                let all = self.whole(Role::Elasticsearch);
                last_gate = Some(self.gate(play, Role::Elasticsearch, &all).await?);
            }
        }
        let line = match last_gate {
            Some(line) => line,
            None => {
                let all = self.whole(Role::Elasticsearch);
                self.gate(play, Role::Elasticsearch, &all).await?
            }
        };
        self.verified.push(line);
        self.record_cluster_uuid().await
    }

    /// A rolling restart cut off between its allocation steps (haelk killed, the
    /// connection to the API lost) leaves `cluster.routing.allocation.enable` at
    /// `primaries`, and replicas unassigned for good. That value is haelk's
    /// mark: put it back to the default before anything else. Another value is
    /// the operator's and stays.
    async fn restore_allocation(&mut self) -> Result<(), Stop> {
        let Ok(client) = self.es_client(None).await else {
            // Nobody answers: the gate will say so.
            return Ok(());
        };
        match client.allocation_enable().await {
            Ok(Some(value)) if value == "primaries" => {
                client
                    .set_allocation(elasticsearch::Allocation::All)
                    .await
                    .map_err(|e| Stop::because(format!("restoring shard allocation: {e}")))?;
                self.progress.println(
                    "  shard allocation was left at `primaries` (an interrupted rolling restart): restored",
                );
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(err) => Err(Stop::because(format!(
                "reading the cluster settings: {err}"
            ))),
        }
    }

    /// Restarts one serving node the safe way (see [`rolling::restart_node`]).
    async fn rolling_restart(&mut self, jail: &Jail, timeout: Duration) -> Result<(), Stop> {
        let Some((index, plan)) = self.jail_plan(jail).map(|(i, p)| (i, p.clone())) else {
            return Ok(());
        };
        let client = self
            .es_client(Some(jail.name.as_str()))
            .await
            .map_err(|e| Stop::because(format!("{}: {e}", jail.name)))?;
        let run = &self.hosts[index];
        let Some(remote) = &run.remote else {
            return Err(Stop(Vec::new()));
        };
        self.progress
            .step(run.name(), format!("{}: rolling restart", jail.name));
        let what = format!("{} ({})", plan.name, plan.action.as_str());
        // Clients through the ES VIP must not reach a stopping node: every
        // haproxy in front of it stops sending it requests and lets the open ones
        // finish first, and takes it back once the cluster is green again.
        let balanced = crate::desired::client_facing_nodes(self.inventory, Role::Elasticsearch)
            .iter()
            .any(|node| node.name == jail.name);
        let server = jail.name.as_str();
        let result = rolling::restart_node(&client, server, timeout, || async {
            if balanced {
                self.set_backend_state(Role::Elasticsearch, server, AdminState::Maint)
                    .await
                    .map_err(anyhow::Error::msg)?;
                self.wait_drained(Role::Elasticsearch, server, DRAIN_TIMEOUT)
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
            remote
                .run(&plan.script())
                .await
                .and_then(|o| o.check(run.name(), &what))
                .map(|_| ())
                .map_err(anyhow::Error::from)
        })
        .await;
        let result = match (result, balanced) {
            (result, false) => result.map_err(|e| e.to_string()),
            (result, true) => {
                let ready = self
                    .set_backend_state(Role::Elasticsearch, server, AdminState::Ready)
                    .await;
                match (result, ready) {
                    (Err(err), _) => Err(err.to_string()),
                    (Ok(()), Err(err)) => Err(format!("putting {server} back into haproxy: {err}")),
                    (Ok(()), Ok(())) => Ok(()),
                }
            }
        };
        match result {
            Ok(()) => {
                self.progress
                    .println(format!("  {}: {} (rolling)", plan.name, describe(&plan)));
                self.hosts[index].changed += plan.change_count();
                Ok(())
            }
            Err(err) => {
                self.hosts[index].error = Some(format!("{}: {err}", jail.name));
                Err(Stop(Vec::new()))
            }
        }
    }

    /// The haproxy jails of the selected hosts that front `service`, by host run.
    fn fronting(&self, service: Role) -> Vec<(&HostRun<'a, R>, Vec<&'a Jail>)> {
        self.hosts
            .iter()
            .filter_map(|run| {
                let jails: Vec<&'a Jail> = run
                    .host
                    .jails
                    .iter()
                    .filter(|j| j.role == Role::Haproxy && j.fronts == Some(service))
                    .collect();
                (!jails.is_empty()).then_some((run, jails))
            })
            .collect()
    }

    /// Sets `server` of `service`'s backend to `state` in every haproxy in front
    /// of it (one round trip per host, hosts in parallel).
    async fn set_backend_state(
        &self,
        service: Role,
        server: &str,
        state: AdminState,
    ) -> Result<(), String> {
        let backend = haproxy::backend(service);
        let results = join_all(self.fronting(service).into_iter().map(|(run, jails)| {
            let script = haproxy::set_state_script(
                jails.iter().map(|j| j.name.as_str()),
                &backend,
                server,
                state,
            );
            let backend = &backend;
            async move {
                let Some(remote) = &run.remote else {
                    return Err(format!("{}: not connected", run.name()));
                };
                remote
                    .run(&script)
                    .await
                    .and_then(|o| {
                        o.check(run.name(), &format!("setting {backend}/{server} {state:?}"))
                    })
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }))
        .await;
        results.into_iter().collect()
    }

    /// Waits until no haproxy in front of `service` has a session open to `server`.
    async fn wait_drained(
        &self,
        service: Role,
        server: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for (run, jails) in self.fronting(service) {
            let Some(remote) = &run.remote else { continue };
            loop {
                let open: u64 = haproxy::read_stats(remote, jails.iter().map(|j| j.name.as_str()))
                    .await
                    .map_err(|e| e.to_string())?
                    .values()
                    .filter_map(|servers| servers.as_ref().ok())
                    .flatten()
                    .filter(|s| s.server == server)
                    .map(|s| s.sessions)
                    .sum();
                if open == 0 {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{open} sessions still open to {server} after {}",
                        humantime(timeout)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    async fn elasticsearch_gate(&mut self, timeout: Duration) -> Result<String, String> {
        let client = self.es_client(None).await?;
        let expected: Vec<&str> = self
            .inventory
            .jails_with_role(Role::Elasticsearch)
            .map(|(_, j)| j.name.as_str())
            .collect();
        let deadline = Instant::now() + timeout;
        let health = client
            .wait_for_health(elasticsearch::HealthStatus::Green, timeout)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let nodes = client.nodes().await.map_err(|e| e.to_string())?;
            let joined = expected
                .iter()
                .filter(|name| nodes.iter().any(|n| n.name == **name))
                .count();
            if joined == expected.len() {
                return Ok(format!(
                    "es {joined}/{} joined · {}",
                    expected.len(),
                    health.status.as_str()
                ));
            }
            if Instant::now() >= deadline {
                let missing: Vec<&str> = expected
                    .iter()
                    .filter(|name| !nodes.iter().any(|n| n.name == **name))
                    .copied()
                    .collect();
                return Err(format!(
                    "es {joined}/{} joined after {}; missing: {}",
                    expected.len(),
                    humantime(timeout),
                    missing.join(", ")
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn elected_master(&mut self) -> Option<String> {
        let client = self.es_client(None).await.ok()?;
        let nodes = client.nodes().await.ok()?;
        nodes.into_iter().find(|n| n.elected_master).map(|n| n.name)
    }

    /// Records the cluster UUID on every Elasticsearch dataset that lacks it, and
    /// after a bootstrap rewrites elasticsearch.yml without
    /// `cluster.initial_master_nodes` (no restart: it is read at first start only).
    async fn record_cluster_uuid(&mut self) -> Result<(), Stop> {
        let (missing, _) = self.es_datasets_without_uuid();
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.es_client(None).await.map_err(Stop::because)?;
        let uuid = match client.cluster_uuid().await {
            Ok(Some(uuid)) => uuid,
            Ok(None) => return Err(Stop::because("the Elasticsearch cluster has no UUID yet")),
            Err(err) => return Err(Stop::because(err.to_string())),
        };
        let formed = self
            .desired(ClusterPhase::Formed)
            .map_err(|e| Stop::because(format!("{e:#}")))?;
        let rewrite = self.phase == ClusterPhase::Bootstrap;
        let mut scripts: Vec<(usize, String)> = Vec::new();
        for (index, dataset) in missing {
            let mut script = freebsd::zfs_set(&dataset, "haelk:cluster-uuid", &uuid);
            script.push('\n');
            if rewrite {
                let run = &self.hosts[index];
                let jail = dataset.rsplit('/').next().unwrap_or_default();
                let state = formed
                    .hosts
                    .iter()
                    .find(|h| h.host == run.host.name)
                    .and_then(|h| h.jails.iter().find(|j| j.name.as_str() == jail));
                if let Some(state) = state {
                    for file in state
                        .files
                        .iter()
                        .filter(|f| !f.first_start_only_keys.is_empty())
                    {
                        script.push_str(&freebsd::write_file_atomically(file, &state.root));
                    }
                }
            }
            match scripts.iter_mut().find(|(i, _)| *i == index) {
                Some((_, all)) => all.push_str(&script),
                None => scripts.push((index, format!("set -e\n{script}"))),
            }
        }
        let hosts = &self.hosts;
        let results = join_all(scripts.iter().map(|(index, script)| async move {
            let run = &hosts[*index];
            let Some(remote) = &run.remote else {
                return Ok(());
            };
            remote
                .run(script)
                .await
                .and_then(|o| o.check(run.name(), "recording the cluster UUID"))
                .map(|_| ())
                .map_err(|e| e.to_string())
        }))
        .await;
        for ((index, _), result) in scripts.iter().zip(results) {
            if let Err(err) = result {
                self.hosts[*index].error = Some(err);
            }
        }
        self.phase = ClusterPhase::Formed;
        self.stop_if_failed()
    }

    /// An API client for an Elasticsearch node other than `except`, through a
    /// tunnel from its host. Nodes are tried in inventory order.
    pub(super) async fn es_client(
        &mut self,
        except: Option<&str>,
    ) -> Result<Arc<elasticsearch::Client>, String> {
        let port = self.inventory.cluster.elasticsearch.http_port;
        let mut problems = Vec::new();
        let candidates: Vec<(usize, &Jail)> = self
            .hosts
            .iter()
            .enumerate()
            .flat_map(|(index, run)| {
                run.host
                    .jails
                    .iter()
                    .filter(|j| j.role == Role::Elasticsearch)
                    .map(move |j| (index, j))
            })
            .filter(|(_, j)| Some(j.name.as_str()) != except)
            .collect();
        for (index, jail) in candidates {
            if let Some(client) = self.elasticsearch.get(jail.name.as_str()) {
                if client.root().await.is_ok() {
                    return Ok(client.clone());
                }
                continue;
            }
            let Some(remote) = &self.hosts[index].remote else {
                continue;
            };
            let local = match remote.tunnel(SocketAddr::new(jail.ip.into(), port)).await {
                Ok(local) => local,
                Err(err) => {
                    problems.push(err.to_string());
                    continue;
                }
            };
            let client = Arc::new(
                elasticsearch::Client::new(format!("http://{local}")).map_err(|e| e.to_string())?,
            );
            self.elasticsearch
                .insert(jail.name.to_string(), client.clone());
            // `GET /` answers even before a master is elected.
            match client.root().await {
                Ok(_) => return Ok(client),
                Err(err) => problems.push(format!("{}: {err}", jail.name)),
            }
        }
        Err(format!(
            "no Elasticsearch node answers{}",
            if problems.is_empty() {
                String::new()
            } else {
                format!(": {}", problems.join("; "))
            }
        ))
    }
}

/// Polls the stats of a host's haproxy jails (one round trip each time) until
/// every backend server is UP or `deadline` passes: (service, server, up).
async fn wait_for_backends<R: Remote>(
    run: &HostRun<'_, R>,
    jails: &[&Jail],
    deadline: Instant,
    progress: &Progress,
) -> Result<Vec<(&'static str, String, bool)>, String> {
    let Some(remote) = &run.remote else {
        return Err(format!("{}: not connected", run.name()));
    };
    loop {
        let stats = haproxy::read_stats(remote, jails.iter().map(|j| j.name.as_str()))
            .await
            .map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        let mut problems = Vec::new();
        let mut in_maintenance = Vec::new();
        for jail in jails {
            let service = jail.fronts.map_or("?", Role::as_str);
            match stats.get(jail.name.as_str()) {
                Some(Ok(servers)) => {
                    for server in servers {
                        if server.status == "MAINT" {
                            in_maintenance.push((jail.name.as_str(), server));
                        }
                        if !server.is_up() {
                            problems
                                .push(format!("{}/{} {}", jail.name, server.server, server.status));
                        }
                        seen.push((service, server.server.clone(), server.is_up()));
                    }
                }
                Some(Err(err)) => problems.push(format!("{}: {err}", jail.name)),
                None => problems.push(format!("{}: no answer", jail.name)),
            }
        }
        if problems.is_empty() {
            return Ok(seen);
        }
        // haelk's configuration never disables a server: MAINT is an
        // administrator's or an interrupted drain's. The inventory says the node
        // serves, so it serves again (its health check still decides UP).
        for (jail, server) in in_maintenance {
            let script = haproxy::set_state_script(
                [jail],
                &server.backend,
                &server.server,
                AdminState::Ready,
            );
            remote
                .run(&script)
                .await
                .and_then(|o| o.check(run.name(), "taking a server out of MAINT"))
                .map_err(|e| e.to_string())?;
            progress.println(format!(
                "  {jail}: {} was in MAINT (an interrupted drain?): set ready",
                server.server
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!("backends not UP in time: {}", problems.join(", ")));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `start`, `write 2 files, restart`, ...
fn describe(plan: &JailPlan) -> String {
    let writes = match plan.writes.len() {
        0 => None,
        1 => Some("write 1 file".to_owned()),
        n => Some(format!("write {n} files")),
    };
    let action = (plan.action != ServiceAction::None).then(|| plan.action.as_str().to_owned());
    writes
        .into_iter()
        .chain(action)
        .collect::<Vec<_>>()
        .join(", ")
}

fn changes(count: usize) -> String {
    match count {
        0 => "no changes".into(),
        1 => "1 change".into(),
        n => format!("{n} changes"),
    }
}

fn short(service: &str) -> &str {
    match service {
        "elasticsearch" => "es",
        other => other,
    }
}

fn humantime(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}
