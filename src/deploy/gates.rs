//! The gates after a batch: Kibana available, every haproxy backend server UP
//! (a server left in MAINT is set ready) and one CARP MASTER per VIP, every
//! Elasticsearch node up and the cluster green. Each prints its line for the verification summary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::drain::set_server_state;
use super::watch::DeployWatch;
use super::{Engine, HostRun, Progress, Stop, at_most};
use crate::desired::carp;
use crate::elasticsearch::rolling::Watch;
use crate::elasticsearch::{self, liveness};
use crate::haproxy::{self, AdminState, HostCarp};
use crate::inventory::{Host, Inventory, Jail, Role};
use crate::kibana;
use crate::playbook::{Batch, Play};
use crate::remote::Remote;
use crate::units::human_duration;
use crate::vip;

/// How often a gate polls while it waits.
pub(super) const POLL: Duration = Duration::from_millis(500);

impl<'a, R: Remote> Engine<'a, R> {
    /// Runs the play's gate over `batch` and prints its line.
    pub(super) async fn gate(
        &mut self,
        play: &Play,
        role: Role,
        batch: &Batch<'_>,
    ) -> Result<String, Stop> {
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
    /// hosts in parallel, and each VIP whose carriers have all been read has one
    /// CARP MASTER with its haproxy answering; the line counts each service's
    /// servers (UP in every haproxy jail that fronts it). A host a gate of this
    /// play already passed on is not read again ([`Engine::backends_seen`]), so
    /// the play's closing gate judges every VIP at no extra round trip.
    async fn haproxy_gate(
        &mut self,
        batch: &Batch<'_>,
        timeout: Duration,
    ) -> Result<String, String> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut again: Vec<String> = Vec::new();
        loop {
            self.read_haproxy_hosts(batch, &again, deadline).await?;
            let (findings, carriers_hosts) = self.vip_findings();
            if findings.is_empty() {
                break;
            }
            let findings = findings.join("; ");
            if Instant::now() >= deadline {
                return Err(findings);
            }
            self.progress.waiting(
                None,
                "one CARP MASTER per VIP",
                started.elapsed(),
                &findings,
            );
            // Every carrier of those VIPs is read again, in the batch or not.
            for host in &carriers_hosts {
                self.backends_seen.remove(host);
            }
            again = carriers_hosts;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(backends_line(
            batch
                .hosts
                .iter()
                .filter_map(|host| self.backends_seen.get(host.name.as_str()))
                .flat_map(|seen| &seen.backends),
        ))
    }

    /// Reads the hosts with haproxy jails of the batch, and those named in
    /// `also`, that are not read yet.
    async fn read_haproxy_hosts(
        &mut self,
        batch: &Batch<'_>,
        also: &[String],
        deadline: Instant,
    ) -> Result<(), String> {
        let seen = &self.backends_seen;
        let carp_interface = self.inventory.cluster.carp.interface.as_str();
        let inventory: &'a Inventory = self.inventory;
        let extra = inventory.hosts.iter().filter(|h| {
            also.iter().any(|name| h.name.as_str() == name)
                && !batch.hosts.iter().any(|b| b.name == h.name)
        });
        let stacks: Vec<(&HostRun<'a, R>, Vec<&Jail>)> = batch
            .hosts
            .iter()
            .copied()
            .chain(extra)
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
        let work = stacks.iter().map(|(run, jails)| {
            wait_for_backends(run, jails, carp_interface, deadline, &self.progress)
        });
        let results = at_most(self.forks, work).await;
        for (name, result) in names.into_iter().zip(results) {
            self.backends_seen.insert(name, result?);
        }
        Ok(())
    }

    /// What is wrong with the VIPs whose carriers' hosts have all been read, as
    /// `VIP ADDRESS: finding` lines, and those hosts (to read them again).
    fn vip_findings(&self) -> (Vec<String>, Vec<String>) {
        let mut findings = Vec::new();
        let mut hosts = Vec::new();
        for (service, vip) in &self.inventory.cluster.vips {
            let members: Vec<(&Host, &Jail)> = carp::members(self.inventory, *service).collect();
            let carriers: Option<Vec<vip::Carrier<'_>>> = members
                .iter()
                .map(|(host, jail)| {
                    let seen = self.backends_seen.get(host.name.as_str())?;
                    let read = seen.carp.get(jail.name.as_str())?;
                    Some(vip::Carrier {
                        jail: jail.name.as_str(),
                        host: host.name.as_str(),
                        seen: vip::Seen::of(read, vip.vhid),
                        // The backends wait read its stats socket.
                        haproxy_answers: true,
                    })
                })
                .collect();
            // Judged once every carrier has been read in this play.
            let Some(carriers) = carriers else { continue };
            let found = vip::judge(members.len(), &carriers);
            if !found.is_empty() {
                findings.extend(found.iter().map(|f| format!("VIP {}: {f}", vip.address)));
                hosts.extend(carriers.iter().map(|c| c.host.to_owned()));
            }
        }
        hosts.sort();
        hosts.dedup();
        (findings, hosts)
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

/// What a haproxy gate read on one host: its backend servers and the CARP
/// vhids of its haproxy jails.
pub(super) struct HostSeen {
    /// Every backend server of its haproxy jails.
    pub backends: Vec<Backend>,
    /// The CARP vhids of its haproxy jails' VIP interface.
    pub carp: HostCarp,
}

/// Polls the stats and CARP states of a host's haproxy jails (one round trip
/// each time) until every backend server is UP or `deadline` passes.
async fn wait_for_backends<R: Remote>(
    run: &HostRun<'_, R>,
    jails: &[&Jail],
    carp_interface: &str,
    deadline: Instant,
    progress: &Progress,
) -> Result<HostSeen, String> {
    let remote = run.connected()?;
    let started = Instant::now();
    loop {
        let (stats, carp) = haproxy::read_stats_and_carp(
            remote,
            jails.iter().map(|j| j.name.as_str()),
            carp_interface,
        )
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
            return Ok(HostSeen {
                backends: seen,
                carp,
            });
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
}
