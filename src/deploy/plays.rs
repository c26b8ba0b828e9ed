//! The plays: the host play (datasets, jails, packages) and the service plays
//! (Elasticsearch rolling and health-gated, Kibana, the haproxy stacks), each
//! batch followed by its gate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::watch::{DeployWatch, NodeProbe};
use super::{Engine, HostRun, Progress, Stop, at_most};
use crate::desired::ClusterPhase;
use crate::elasticsearch::locate::{self, Located};
use crate::elasticsearch::rolling::{self, Watch};
use crate::elasticsearch::{self, liveness};
use crate::freebsd;
use crate::haproxy::{self, AdminState};
use crate::inventory::{Inventory, Jail, Role};
use crate::kibana;
use crate::plan::{JailPlan, ServiceAction};
use crate::playbook::{Batch, Gate, Play, Target};
use crate::remote::Remote;
use crate::units::human_duration;

#[cfg(test)]
#[path = "engine_tests.rs"]
mod engine_tests;

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
        self.show_failed();
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
            let work = indexes.iter().map(|&index| async move {
                let run = &hosts[index];
                let (Some(remote), Some(plan), Some(facts)) = (&run.remote, &run.plan, &run.facts)
                else {
                    return Ok(Vec::new());
                };
                // A host this deploy does not change is only checked.
                if plan.prepare.is_empty() || !run.changes {
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
                    .map_err(|e| e.reason())?;
                let running = crate::plan::running_jails(&output.stdout)
                    .ok_or_else(|| "the host play's output was cut short".to_owned())?;
                wait_for_jails(run, running, play.gate_timeout, progress).await
            });
            let results = at_most(self.forks, work).await;
            for (&index, result) in indexes.iter().zip(results) {
                let run = &mut self.hosts[index];
                let prepared = match &run.plan {
                    Some(plan) if run.changes => plan.prepare.len(),
                    _ => 0,
                };
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
        // No "datasets ok": nothing here reads the datasets back. A running
        // jail is what the host play checks (its root is its dataset's mount).
        self.verified
            .push(format!("jails {running_total}/{declared_total} running"));
        Ok(())
    }

    // -------------------------------------------------------- service plays --

    /// The plan of `jail` and the index of its host run, when this deploy
    /// changes the host (`--limit`).
    fn jail_plan(&self, jail: &Jail) -> Option<(usize, &JailPlan)> {
        self.hosts.iter().enumerate().find_map(|(index, run)| {
            if !run.changes {
                return None;
            }
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
        let work = by_host.iter().map(|(index, plans)| async move {
            let run = &hosts[*index];
            let Some(remote) = &run.remote else {
                return (0, Some("not connected".to_owned()));
            };
            let mut done = 0;
            for plan in plans {
                progress.step(run.name(), format!("{}: {}", plan.name, describe(plan)));
                let result = remote.run(&plan.script()).await.and_then(|o| {
                    o.check(run.name(), &format!("{} ({})", plan.name, describe(plan)))
                });
                if let Err(err) = result {
                    return (done, Some(err.reason()));
                }
                done += plan.change_count();
                progress.println(format!("  {}: {}", plan.name, describe(plan)));
            }
            (done, None)
        });
        let results = at_most(self.forks, work).await;
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
        self.backends_seen.clear();
        for batch in play.batches(self.inventory) {
            let jails: Vec<&Jail> = batch.jails.iter().map(|(_, j)| *j).collect();
            if self.run_jail_scripts(&jails).await? {
                // The batch's hosts just changed: read them, whatever was seen before.
                for host in &batch.hosts {
                    self.backends_seen.remove(host.name.as_str());
                }
                self.gate(play, role, &batch).await?;
            }
        }
        let line = self.gate(play, role, &self.whole(role)).await;
        self.backends_seen.clear();
        self.verified.push(line?);
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
                            human_duration(timeout)
                        ));
                    }
                    other => {
                        let why = match other {
                            Ok(status) => format!("{}: {}", status.level, status.summary),
                            Err(err) => err,
                        };
                        self.progress.waiting(
                            Some(run.name()),
                            &format!("{} to be available", jail.name),
                            timeout
                                .saturating_sub(deadline.saturating_duration_since(Instant::now())),
                            &why,
                        );
                        tokio::time::sleep(POLL).await;
                    }
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
    /// haproxy jail that fronts it). A host a gate of this play already passed
    /// on is not read again ([`Engine::backends_seen`]).
    async fn haproxy_gate(
        &mut self,
        batch: &Batch<'_>,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let seen = &self.backends_seen;
        let stacks: Vec<(&HostRun<'a, R>, Vec<&Jail>)> = batch
            .hosts
            .iter()
            .filter(|host| !seen.contains_key(host.name.as_str()))
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
        let names: Vec<String> = stacks
            .iter()
            .map(|(run, _)| run.name().to_owned())
            .collect();
        let work = stacks
            .iter()
            .map(|(run, jails)| wait_for_backends(run, jails, deadline, &self.progress));
        let results = at_most(self.forks, work).await;
        for (name, result) in names.into_iter().zip(results) {
            self.backends_seen.insert(name, result?);
        }
        Ok(backends_line(
            batch
                .hosts
                .iter()
                .filter_map(|host| self.backends_seen.get(host.name.as_str()))
                .flatten(),
        ))
    }

    // -------------------------------------------------------- elasticsearch --

    async fn elasticsearch_play(&mut self, play: &Play) -> Result<(), Stop> {
        let mut batches: Vec<Vec<&Jail>> = play
            .batches(self.inventory)
            .into_iter()
            .map(|b| b.jails.iter().map(|(_, j)| *j).collect())
            .collect();
        let mut back_into_haproxy = Vec::new();
        if self.phase == ClusterPhase::Formed {
            back_into_haproxy = self.finish_cut_off_restart().await?;
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
        let starting = !stopped.is_empty();
        if starting {
            batches.insert(0, stopped);
        }
        if !back_into_haproxy.is_empty() && !starting {
            // What a cut-off restart left: the recovery the restore started,
            // then the node back into every haproxy - before any other node stops.
            let all = self.whole(Role::Elasticsearch);
            self.gate(play, Role::Elasticsearch, &all).await?;
            self.back_into_haproxy(&mut back_into_haproxy).await?;
        }
        let rolling_work = batches.iter().flatten().any(|jail| {
            self.jail_plan(jail)
                .is_some_and(|(_, plan)| plan.was_running && plan.action >= ServiceAction::Restart)
        });
        if !work {
            batches.clear();
        } else if self.phase == ClusterPhase::Formed && rolling_work {
            // Only a restart of a serving node needs the order; nodes that are
            // all being started have no master yet to put last.
            let master = self.elected_master().await.map_err(|e| {
                Stop::because(format!(
                    "finding the elected master (it restarts last): {e}"
                ))
            })?;
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
                self.back_into_haproxy(&mut back_into_haproxy).await?;
            }
        }
        let line = match last_gate {
            Some(line) => line,
            None => {
                let all = self.whole(Role::Elasticsearch);
                self.gate(play, Role::Elasticsearch, &all).await?
            }
        };
        self.back_into_haproxy(&mut back_into_haproxy).await?;
        self.verified.push(line);
        self.record_cluster_uuid().await
    }

    /// A rolling restart cut off part way (haelk killed, the connection to the
    /// API lost) leaves `cluster.routing.allocation.enable` at `primaries` -
    /// replicas unassigned for good - and its node in MAINT in the haproxies in
    /// front of it. Restores allocation now (see [`cut_off_restart`]) and
    /// returns the servers to put back once the cluster is green again.
    async fn finish_cut_off_restart(&mut self) -> Result<Vec<String>, Stop> {
        let Ok(Located { client, .. }) = self.es_client(None).await else {
            // Nobody answers: the gate will say so.
            return Ok(Vec::new());
        };
        let allocation = client
            .allocation_enable()
            .await
            .map_err(|err| Stop::because(format!("reading the cluster settings: {err}")))?;
        let in_maintenance = self
            .servers_in_maintenance(Role::Elasticsearch)
            .await
            .map_err(Stop::because)?;
        let left = cut_off_restart(allocation.as_deref(), &in_maintenance);
        if left.restore_allocation {
            client
                .set_allocation(elasticsearch::Allocation::All)
                .await
                .map_err(|e| Stop::because(format!("restoring shard allocation: {e}")))?;
            self.progress.println(
                "  shard allocation was left at `primaries` (an interrupted rolling restart): restored",
            );
        }
        if !left.back_into_haproxy.is_empty() {
            self.progress.println(format!(
                "  {} in MAINT (an interrupted rolling restart): back into haproxy once the cluster is green",
                left.back_into_haproxy.join(", ")
            ));
        }
        Ok(left.back_into_haproxy)
    }

    /// The servers of `service`'s backend in MAINT in some haproxy in front of it.
    async fn servers_in_maintenance(&self, service: Role) -> Result<Vec<String>, String> {
        let backend = haproxy::backend(service);
        let mut servers = Vec::new();
        for (run, jails) in self.fronting(service) {
            let Some(remote) = &run.remote else { continue };
            let stats = haproxy::read_stats(remote, jails.iter().map(|j| j.name.as_str()))
                .await
                .map_err(|e| e.to_string())?;
            for (jail, answer) in stats {
                let states = answer.map_err(|e| format!("{jail}: {e}"))?;
                servers.extend(
                    states
                        .into_iter()
                        .filter(|s| s.backend == backend && s.status == "MAINT")
                        .map(|s| s.server),
                );
            }
        }
        Ok(servers)
    }

    /// Puts `servers` (left in MAINT by a cut-off restart) back into every
    /// haproxy in front of Elasticsearch; called once the cluster is green.
    async fn back_into_haproxy(&mut self, servers: &mut Vec<String>) -> Result<(), Stop> {
        for server in std::mem::take(servers) {
            self.set_backend_state(Role::Elasticsearch, &server, AdminState::Ready)
                .await
                .map_err(|e| Stop::because(format!("putting {server} back into haproxy: {e}")))?;
            self.progress
                .println(format!("  {server}: back into haproxy (ready)"));
        }
        Ok(())
    }

    /// Restarts one serving node the safe way (see [`rolling::restart_node`]).
    async fn rolling_restart(&mut self, jail: &Jail, timeout: Duration) -> Result<(), Stop> {
        let Some((index, plan)) = self.jail_plan(jail).map(|(i, p)| (i, p.clone())) else {
            return Ok(());
        };
        let Located { client, .. } = self
            .es_client(Some(jail.name.as_str()))
            .await
            .map_err(|e| Stop::because(format!("{}: {e}", jail.name)))?;
        self.connect_every_node().await.map_err(Stop::because)?;
        let watch = self.watch(Some(self.hosts[index].name()));
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
        let result = rolling::restart_node(&client, server, timeout, &watch, || async {
            if balanced {
                self.set_backend_state(Role::Elasticsearch, server, AdminState::Maint)
                    .await
                    .map_err(anyhow::Error::msg)?;
                self.wait_drained(Role::Elasticsearch, server, DRAIN_TIMEOUT)
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
            // The drain took time: every node must still be up the moment
            // this one stops.
            liveness::may_stop(server, &watch.observe().await).map_err(anyhow::Error::msg)?;
            remote
                .run(&plan.script())
                .await
                .and_then(|o| o.check(run.name(), &what))
                .map(|_| ())
                // The host's failure line names the host.
                .map_err(|e| anyhow::Error::msg(e.reason()))
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
        let backend = &backend;
        let work = self
            .fronting(service)
            .into_iter()
            .map(|(run, jails)| async move {
                set_server_state(run, jails, backend, server, state).await
            });
        let results = at_most(self.forks, work).await;
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
                        human_duration(timeout)
                    ));
                }
                self.progress.waiting(
                    Some(run.name()),
                    &format!("the sessions to {server} to end"),
                    timeout.saturating_sub(deadline.saturating_duration_since(Instant::now())),
                    &format!("{open} open"),
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Waits until every declared node is up (answers on its own address and is
    /// in the elected master's state) and the cluster is green. A node whose
    /// service stopped ends the wait at once.
    async fn elasticsearch_gate(&mut self, timeout: Duration) -> Result<String, String> {
        self.connect_every_node().await?;
        let watch = self.watch(None);
        let expected = watch.nodes.len();
        let started = Instant::now();
        loop {
            let observation = watch.observe().await;
            if !observation.stopped.is_empty() {
                let stopped: Vec<&str> = observation.stopped.iter().map(String::as_str).collect();
                return Err(format!(
                    "{} not running (service status): not waiting for {}",
                    stopped.join(", "),
                    if stopped.len() == 1 { "it" } else { "them" }
                ));
            }
            let missing = match (
                observation.all_up(),
                cluster_health(&watch, &observation).await,
            ) {
                (Ok(()), Ok(health)) if health.status == elasticsearch::HealthStatus::Green => {
                    return Ok(format!("es {expected}/{expected} joined · green"));
                }
                (Ok(()), Ok(health)) => health.summary(),
                (Ok(()), Err(err)) => err,
                (Err(absent), _) => absent,
            };
            if started.elapsed() >= timeout {
                return Err(format!(
                    "not every Elasticsearch node up and green after {}: {missing}",
                    human_duration(timeout)
                ));
            }
            watch.waiting(
                "every Elasticsearch node up and the cluster green",
                started.elapsed(),
                &missing,
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The elected master's name; not finding it is an error, not "no master".
    async fn elected_master(&self) -> Result<String, String> {
        let node = self.es_client(None).await?;
        let nodes = node.client.nodes().await.map_err(|e| e.to_string())?;
        nodes
            .into_iter()
            .find(|n| n.elected_master)
            .map(|n| n.name)
            .ok_or_else(|| "no node of the cluster is the elected master".to_owned())
    }

    /// A client for every declared Elasticsearch node on its own address (a
    /// tunnel from its own host), cached for the run.
    async fn connect_every_node(&mut self) -> Result<(), String> {
        let nodes: Vec<(usize, &'a Jail)> = self.es_jails().collect();
        for (index, jail) in nodes {
            self.node_client(index, jail).await?;
        }
        Ok(())
    }

    /// Every declared Elasticsearch jail with the index of its host run.
    fn es_jails(&self) -> impl Iterator<Item = (usize, &'a Jail)> + use<'a, '_, R> {
        let inventory: &'a Inventory = self.inventory;
        self.hosts.iter().enumerate().flat_map(move |(index, run)| {
            inventory
                .hosts
                .iter()
                .filter(move |h| h.name == run.host.name)
                .flat_map(|h| h.jails.iter())
                .filter(|j| j.role == Role::Elasticsearch)
                .map(move |j| (index, j))
        })
    }

    /// The watch over every node (after [`Self::connect_every_node`]), its
    /// waits reported on `host`'s line.
    fn watch(&self, host: Option<&str>) -> DeployWatch<'_, R> {
        let nodes = self
            .es_jails()
            .filter_map(|(index, jail)| {
                Some(NodeProbe {
                    name: jail.name.to_string(),
                    client: self.elasticsearch.get(jail.name.as_str())?.clone(),
                    remote: self.hosts[index].remote.as_ref(),
                })
            })
            .collect();
        DeployWatch {
            nodes,
            progress: &self.progress,
            host: host.map(str::to_owned),
        }
    }

    /// The cached client of `jail` on host run `index`, or a new one through a
    /// tunnel from that host. Not probed: the caller asks what it needs.
    async fn node_client(
        &mut self,
        index: usize,
        jail: &Jail,
    ) -> Result<Arc<elasticsearch::Client>, String> {
        if let Some(client) = self.elasticsearch.get(jail.name.as_str()) {
            return Ok(client.clone());
        }
        let port = self.inventory.cluster.elasticsearch.http_port;
        let Some(remote) = &self.hosts[index].remote else {
            return Err(format!("{}: not connected", self.hosts[index].name()));
        };
        let local = remote
            .tunnel(SocketAddr::new(jail.ip.into(), port))
            .await
            .map_err(|e| format!("{}: {e}", jail.name))?;
        let client = Arc::new(
            elasticsearch::Client::new(format!("http://{local}")).map_err(|e| e.to_string())?,
        );
        self.elasticsearch
            .insert(jail.name.to_string(), client.clone());
        Ok(client)
    }

    /// Records the cluster UUID on every Elasticsearch dataset that lacks it, and
    /// after a bootstrap rewrites elasticsearch.yml without
    /// `cluster.initial_master_nodes` (no restart: it is read at first start only).
    async fn record_cluster_uuid(&mut self) -> Result<(), Stop> {
        let (missing, _) = self.es_datasets_without_uuid(true);
        if missing.is_empty() {
            return Ok(());
        }
        let node = self.es_client(None).await.map_err(Stop::because)?;
        let uuid = node
            .root
            .formed_cluster_uuid()
            .ok_or_else(|| Stop::because("the Elasticsearch cluster has no UUID yet"))?
            .to_owned();
        let formed = self.desired(ClusterPhase::Formed);
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
        let work = scripts.iter().map(|(index, script)| async move {
            let run = &hosts[*index];
            let Some(remote) = &run.remote else {
                return Ok(());
            };
            remote
                .run(script)
                .await
                .and_then(|o| o.check(run.name(), "recording the cluster UUID"))
                .map(|_| ())
                .map_err(|e| e.reason())
        });
        let results = at_most(self.forks, work).await;
        for ((index, _), result) in scripts.iter().zip(results) {
            if let Err(err) = result {
                self.hosts[*index].error = Some(err);
            }
        }
        self.phase = ClusterPhase::Formed;
        self.stop_if_failed()
    }

    /// The first Elasticsearch node other than `except` that answers `GET /`
    /// (inventory order), through a tunnel from its host: see [`locate`].
    pub(super) async fn es_client(&self, except: Option<&str>) -> Result<Located, String> {
        let candidates = self
            .es_jails()
            .filter(|(_, j)| Some(j.name.as_str()) != except);
        let port = self.inventory.cluster.elasticsearch.http_port;
        let hosts = &self.hosts;
        locate::first_answering(
            candidates.map(|(index, jail)| (jail, index)),
            port,
            |index, target| async move {
                let Some(remote) = &hosts[index].remote else {
                    return Err(format!("{}: not connected", hosts[index].name()));
                };
                remote.tunnel(target).await.map_err(|e| e.to_string())
            },
        )
        .await
        .map_err(|err| err.to_string())
    }
}

/// Polls the stats of a host's haproxy jails (one round trip each time) until
/// every backend server is UP or `deadline` passes: (service, server, up).
async fn wait_for_backends<R: Remote>(
    run: &HostRun<'_, R>,
    jails: &[&Jail],
    deadline: Instant,
    progress: &Progress,
) -> Result<Vec<Backend>, String> {
    let Some(remote) = &run.remote else {
        return Err(format!("{}: not connected", run.name()));
    };
    let started = Instant::now();
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
                            in_maintenance.push((*jail, server));
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
            set_server_state(
                run,
                [jail],
                &server.backend,
                &server.server,
                AdminState::Ready,
            )
            .await?;
            progress.println(format!(
                "  {}: {} was in MAINT (an interrupted drain?): set ready",
                jail.name, server.server
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!("backends not UP in time: {}", problems.join(", ")));
        }
        progress.waiting(
            Some(run.name()),
            "every backend server UP",
            started.elapsed(),
            &problems.join(", "),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One backend server as a haproxy gate saw it: the service it belongs to,
/// its name, and whether it is UP.
pub(super) type Backend = (&'static str, String, bool);

/// `haproxy es 2/2 UP, kibana 2/2 UP`: each service's servers, a server
/// counting as UP when it is UP in every haproxy jail that fronts the service.
fn backends_line<'b>(seen: impl IntoIterator<Item = &'b Backend>) -> String {
    let mut servers: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    for (service, server, up) in seen {
        let entry = servers
            .entry(service)
            .or_default()
            .entry(server.as_str())
            .or_insert(true);
        *entry &= *up;
    }
    let parts: Vec<String> = servers
        .iter()
        .map(|(service, servers)| {
            let up = servers.values().filter(|up| **up).count();
            format!("{} {up}/{} UP", short(service), servers.len())
        })
        .collect();
    format!("haproxy {}", parts.join(", "))
}

/// Sets `server` of `backend` to `state` in `jails`, haproxy jails of `run`'s
/// host: one round trip. Every change of a server's state goes through here.
async fn set_server_state<'j, R: Remote>(
    run: &HostRun<'_, R>,
    jails: impl IntoIterator<Item = &'j Jail>,
    backend: &str,
    server: &str,
    state: AdminState,
) -> Result<(), String> {
    let Some(remote) = &run.remote else {
        return Err(format!("{}: not connected", run.name()));
    };
    let script = haproxy::set_state_script(
        jails.into_iter().map(|j| j.name.as_str()),
        backend,
        server,
        state,
    );
    remote
        .run(&script)
        .await
        .and_then(|o| o.check(run.name(), &format!("setting {backend}/{server} {state:?}")))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The host_ready gate after a host play that ran: until every jail of the
/// host runs (the play's output listed `running`), the running jails are read
/// again (one round trip each time), for at most the play's `gate_timeout`.
async fn wait_for_jails<R: Remote>(
    run: &HostRun<'_, R>,
    mut running: Vec<String>,
    timeout: Duration,
    progress: &Progress,
) -> Result<Vec<String>, String> {
    let (Some(remote), Some(plan)) = (&run.remote, &run.plan) else {
        return Ok(running);
    };
    // A host play without steps: only its listing of the running jails.
    let listing = crate::plan::HostPlan {
        prepare: Vec::new(),
        ..plan.clone()
    }
    .prepare_script();
    let declared: Vec<&str> = run.host.jails.iter().map(|j| j.name.as_str()).collect();
    let started = Instant::now();
    loop {
        let missing = match jails_ready(&declared, &running, started.elapsed(), timeout) {
            Ok(JailsReady::Yes) => return Ok(running),
            Ok(JailsReady::Waiting(missing)) => missing,
            Err(reason) => return Err(reason),
        };
        progress.waiting(
            Some(run.name()),
            "every jail running",
            started.elapsed(),
            &missing.join(", "),
        );
        tokio::time::sleep(POLL).await;
        let output = remote
            .run(&listing)
            .await
            .and_then(|o| o.check(run.name(), "listing the running jails"))
            .map_err(|e| e.reason())?;
        running = crate::plan::running_jails(&output.stdout)
            .ok_or_else(|| "the listing of the running jails was cut short".to_owned())?;
    }
}

/// What the host_ready gate makes of the running jails.
#[derive(Debug, PartialEq, Eq)]
enum JailsReady {
    /// Every declared jail runs.
    Yes,
    /// These do not run yet; the gate's time is not up.
    Waiting(Vec<String>),
}

/// The host_ready gate's decision, `waited` into its `timeout`: an error
/// (naming the jails and the timeout) once the time is up.
fn jails_ready(
    declared: &[&str],
    running: &[String],
    waited: Duration,
    timeout: Duration,
) -> Result<JailsReady, String> {
    let missing: Vec<String> = declared
        .iter()
        .filter(|name| !running.iter().any(|r| r == *name))
        .map(|name| (*name).to_owned())
        .collect();
    if missing.is_empty() {
        Ok(JailsReady::Yes)
    } else if waited >= timeout {
        Err(format!(
            "gate {}: jails not running after {}: {}",
            Gate::HostReady,
            human_duration(timeout),
            missing.join(", ")
        ))
    } else {
        Ok(JailsReady::Waiting(missing))
    }
}

/// The health of the cluster, asked of the elected master (else of any node
/// that answered).
async fn cluster_health<R: Remote>(
    watch: &DeployWatch<'_, R>,
    observation: &liveness::Observation,
) -> Result<elasticsearch::Health, String> {
    let master = observation
        .membership
        .as_ref()
        .ok()
        .and_then(|m| m.master.clone());
    let node = watch
        .nodes
        .iter()
        .find(|n| Some(&n.name) == master.as_ref())
        .or_else(|| {
            watch
                .nodes
                .iter()
                .find(|n| matches!(observation.answers.get(&n.name), Some(Ok(_))))
        })
        .ok_or_else(|| "no Elasticsearch node answers".to_owned())?;
    node.client
        .health()
        .await
        .map_err(|e| format!("{}: {e}", node.name))
}

/// What a rolling restart cut off part way left behind, and what to do about it.
#[derive(Debug, PartialEq, Eq)]
struct CutOffRestart {
    /// Allocation is at `primaries`, haelk's mark: set it back to the default.
    /// Another value is the operator's and stays.
    restore_allocation: bool,
    /// Elasticsearch servers in MAINT, each once: back into haproxy once green.
    back_into_haproxy: Vec<String>,
}

/// From the allocation setting and the Elasticsearch servers in MAINT (one
/// entry per haproxy that has it so).
fn cut_off_restart(allocation: Option<&str>, in_maintenance: &[String]) -> CutOffRestart {
    let mut servers: Vec<String> = in_maintenance.to_vec();
    servers.sort();
    servers.dedup();
    CutOffRestart {
        restore_allocation: allocation == Some("primaries"),
        back_into_haproxy: servers,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_ready_gate_waits_for_missing_jails_until_its_timeout() {
        let declared = ["a", "b"];
        let running =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
        let timeout = Duration::from_secs(300);
        assert_eq!(
            jails_ready(&declared, &running(&["b", "x", "a"]), timeout, timeout),
            Ok(JailsReady::Yes),
            "every jail runs: passes even at the deadline"
        );
        assert_eq!(
            jails_ready(
                &declared,
                &running(&["b"]),
                Duration::from_secs(299),
                timeout
            ),
            Ok(JailsReady::Waiting(vec!["a".into()]))
        );
        assert_eq!(
            jails_ready(&declared, &[], timeout, timeout),
            Err("gate host_ready: jails not running after 5m: a, b".into())
        );
    }

    #[test]
    fn a_server_counts_as_up_only_when_every_haproxy_in_front_has_it_up() {
        let seen: Vec<Backend> = vec![
            ("elasticsearch", "n1".into(), true),
            ("elasticsearch", "n2".into(), true),
            ("kibana", "k1".into(), true),
            // The other haproxy in front of Elasticsearch has n2 down.
            ("elasticsearch", "n1".into(), true),
            ("elasticsearch", "n2".into(), false),
        ];
        assert_eq!(backends_line(&seen), "haproxy es 1/2 UP, kibana 1/1 UP");
    }

    #[test]
    fn a_cut_off_restart_restores_haelks_allocation_mark_and_names_each_server_once() {
        let maint = [
            "lab2-elasticsearch".to_owned(),
            "lab2-elasticsearch".to_owned(),
        ];
        assert_eq!(
            cut_off_restart(Some("primaries"), &maint),
            CutOffRestart {
                restore_allocation: true,
                back_into_haproxy: vec!["lab2-elasticsearch".into()],
            }
        );
        // `none` is an operator's choice, not haelk's mark.
        assert!(!cut_off_restart(Some("none"), &[]).restore_allocation);
        assert_eq!(
            cut_off_restart(None, &[]),
            CutOffRestart {
                restore_allocation: false,
                back_into_haproxy: Vec::new(),
            }
        );
    }
}
