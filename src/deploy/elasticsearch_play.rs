//! The Elasticsearch play: stopped nodes started first, serving ones restarted
//! one at a time (drained from haproxy, the elected master last), the
//! leftovers of a cut-off rolling restart finished, and the cluster UUID
//! recorded on the datasets once the cluster is formed.

use std::time::{Duration, Instant};

use super::plays::describe;
use super::{Engine, Stop, at_most};
use crate::desired::ClusterPhase;
use crate::elasticsearch::locate::Located;
use crate::elasticsearch::rolling::{self, Watch};
use crate::elasticsearch::{self, HealthStatus, liveness};
use crate::freebsd;
use crate::haproxy::AdminState;
use crate::inventory::{Jail, Role};
use crate::plan::ServiceAction;
use crate::playbook::Play;
use crate::remote::Remote;

/// How long one wait for an elected master goes before it is reported.
const MASTER_SLICE: Duration = Duration::from_secs(5);
/// How long requests already sent to a node may take before it is stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

impl<'a, R: Remote> Engine<'a, R> {
    pub(super) async fn elasticsearch_play(&mut self, play: &Play) -> Result<(), Stop> {
        let mut batches: Vec<Vec<&Jail>> = play
            .batches(self.inventory)
            .into_iter()
            .map(|b| b.jails.iter().map(|(_, j)| *j).collect())
            .collect();
        let mut back_into_haproxy = Vec::new();
        if self.phase == ClusterPhase::Formed {
            back_into_haproxy = self.finish_cut_off_restart(play.gate_timeout).await?;
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

    /// Waits, in slices that are each reported, until the cluster `client`
    /// talks to has an elected master: any health answer says so.
    async fn wait_for_master(
        &self,
        client: &elasticsearch::Client,
        timeout: Duration,
    ) -> Result<(), elasticsearch::EsError> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(MASTER_SLICE);
            match client.wait_for_health(HealthStatus::Red, slice).await {
                Err(elasticsearch::EsError::HealthTimeout { last, .. }) => {
                    if Instant::now() >= deadline {
                        return Err(elasticsearch::EsError::Timeout {
                            what: "the election of a master".to_owned(),
                            waited: timeout,
                            last,
                        });
                    }
                    self.progress
                        .waiting(None, "an elected master", started.elapsed(), &last);
                }
                result => return result.map(|_| ()),
            }
        }
    }

    /// A rolling restart cut off part way (haelk killed, the connection to the
    /// API lost) leaves `cluster.routing.allocation.enable` at `primaries` -
    /// replicas unassigned for good - and its node in MAINT in the haproxies in
    /// front of it. Restores allocation now (see [`cut_off_restart`]) and
    /// returns the servers to put back once the cluster is green again.
    ///
    /// A cluster that has just lost a node (a host rebooted) may still be
    /// electing a master, and the settings need one: waits for an elected
    /// master (any health answer) for at most `timeout` first.
    async fn finish_cut_off_restart(&mut self, timeout: Duration) -> Result<Vec<String>, Stop> {
        let Ok(Located { client, .. }) = self.es_client(None).await else {
            // Nobody answers: the gate will say so.
            return Ok(Vec::new());
        };
        self.wait_for_master(&client, timeout)
            .await
            .map_err(|err| Stop::because(err.to_string()))?;
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
        self.check_hosts("recording the cluster UUID")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
