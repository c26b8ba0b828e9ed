//! The estate as `haelk status` reports it, built from what was gathered by one
//! pure function ([`Estate::build`]): hosts, jails, Elasticsearch nodes and the
//! cluster line, HAProxy backends per VIP, Kibana instances, and the problems,
//! each with what to do about it.
//!
//! [`Estate`] is also the `--format json` document; its shape is documented in
//! `docs/status.md` and only grows (fields are added, never renamed or removed).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::{self, DesiredState, HostState};
use crate::elasticsearch::{Health, Node, NodeStats};
use crate::facts::HostFacts;
use crate::freebsd::{self, CarpState};
use crate::haproxy::{HostCarp, HostStats};
use crate::inventory::{Host, Inventory, Jail, Role};
use crate::kibana::KibanaStatus;
use crate::plan::{self, Step};
use crate::vip;

/// Everything gathered, before any judgement: the input of [`Estate::build`].
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// One entry per selected host, in inventory order.
    pub hosts: Vec<ObservedHost>,
    /// The cluster as one node saw it; `None` when no Elasticsearch jail was
    /// selected.
    pub elasticsearch: Option<Result<ObservedCluster, String>>,
    /// `/api/status` of each Kibana jail of the selected hosts, by jail name.
    pub kibana: BTreeMap<String, Result<KibanaStatus, String>>,
}

/// One host: its facts and its haproxy jails' stats.
#[derive(Debug, Clone)]
pub struct ObservedHost {
    pub name: String,
    /// `Err`: the host could not be reached or its facts not read.
    pub facts: Result<HostFacts, String>,
    /// `show stat` of its haproxy jails; `None` when it has none (or is unreachable).
    pub haproxy: Option<Result<HostStats, String>>,
    /// The CARP vhids on its haproxy jails' VIP interface, by jail (`Err`: why
    /// a jail's could not be read); empty when the host's script failed
    /// (`haproxy` says why).
    pub carp: HostCarp,
}

/// What one Elasticsearch node answered about the cluster.
#[derive(Debug, Clone)]
pub struct ObservedCluster {
    /// The node that answered.
    pub via: String,
    pub health: Health,
    pub nodes: Vec<Node>,
    /// Heap, disk and shards per node; `Err` leaves those columns empty.
    pub stats: Result<Vec<NodeStats>, String>,
    /// Why the first unassigned shard is unassigned (allocation explain).
    pub unassigned_reason: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estate {
    /// The inventory file.
    pub inventory: String,
    /// True when every host, jail, node, backend and instance is healthy and
    /// matches the inventory: `problems` is empty and the exit status is 0.
    pub healthy: bool,
    pub hosts: Vec<HostRow>,
    pub jails: Vec<JailRow>,
    pub elasticsearch: Option<ElasticsearchSection>,
    pub haproxy: Vec<VipSection>,
    pub kibana: Vec<KibanaRow>,
    pub problems: Vec<Problem>,
    /// What gathering cost; set by the caller that timed it.
    pub took: Option<Took>,
}

/// The cost of one status round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Took {
    pub elapsed_ms: u64,
    /// Scripts run on hosts (ssh connections included), all hosts together.
    pub round_trips: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostRow {
    pub name: String,
    pub address: String,
    pub reachable: bool,
    /// Why the host could not be reached or read.
    pub error: Option<String>,
    pub freebsd_version: Option<String>,
    pub pool: Option<PoolRow>,
    pub jails_running: usize,
    pub jails_declared: usize,
    /// Host-level changes deploy would make (datasets, rc.conf keys, packages,
    /// jails to start), as `deploy --dry-run` names them.
    pub pending: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolRow {
    pub name: String,
    pub size: String,
    pub allocated: String,
    pub free: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JailRow {
    pub host: String,
    pub name: String,
    pub role: Role,
    pub ip: String,
    pub state: JailState,
    /// `NAME-VERSION` of the role's package, when installed.
    pub package: Option<String>,
    /// Files that differ from what deploy would write.
    pub drift: Vec<Drift>,
    /// An action an interrupted deploy still owes (`restart`, `reload`, ...).
    pub owed: Option<String>,
}

/// The jail and its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JailState {
    /// The jail and its services run.
    Running,
    /// The jail runs, a service in it does not.
    ServiceStopped,
    /// The jail exists and is not running.
    Stopped,
    /// The jail was never created (its root holds no userland).
    Absent,
    /// Its host could not be read.
    Unknown,
}

impl JailState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::ServiceStopped => "service stopped",
            Self::Stopped => "stopped",
            Self::Absent => "absent",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// The file's path on the host.
    pub path: String,
    /// `missing`, `content`, `owner`, `mode`.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElasticsearchSection {
    /// The node whose API answered; `None` when none did.
    pub via: Option<String>,
    /// Why no node answered.
    pub error: Option<String>,
    pub cluster: Option<ClusterLine>,
    /// Why heap, disk and shards per node are missing. Not a problem of the
    /// estate: the columns stay empty.
    pub stats_error: Option<String>,
    /// The inventory's nodes on the selected hosts, then any node in the
    /// cluster that the inventory does not know.
    pub nodes: Vec<NodeRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterLine {
    /// `green`, `yellow` or `red`.
    pub status: String,
    pub nodes: u32,
    /// Elasticsearch jails in the whole inventory.
    pub nodes_expected: usize,
    pub active_shards: u64,
    pub relocating_shards: u64,
    pub initializing_shards: u64,
    pub unassigned_shards: u64,
    /// For a cluster that is not green: why the first unassigned shard is.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRow {
    pub name: String,
    /// The host of its jail; `None` for a node the inventory does not know.
    pub host: Option<String>,
    /// As the cluster reports them, else as the inventory declares them.
    pub roles: Vec<String>,
    pub joined: bool,
    pub elected_master: bool,
    pub heap_used_percent: Option<u8>,
    pub disk_used_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub shards: Option<u64>,
}

/// The haproxy jails in front of one VIP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VipSection {
    /// The service behind the VIP: `elasticsearch` or `kibana`.
    pub service: Role,
    /// `ADDRESS:PORT`.
    pub vip: String,
    /// Its CARP vhid.
    pub vhid: u8,
    /// The haproxy jail that is CARP MASTER, when exactly one is.
    pub master: Option<String>,
    pub frontends: Vec<FrontendRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontendRow {
    /// The haproxy jail.
    pub jail: String,
    pub host: String,
    /// Why its stats could not be read.
    pub error: Option<String>,
    /// What its interface says of the VIP's vhid (`None`: not read).
    pub carp: Option<CarpCell>,
    pub servers: Vec<ServerRow>,
}

/// A carrier's CARP state for the VIP's vhid, as status shows it. In JSON: its
/// state (`MASTER`, `BACKUP`, `INIT`), or `null` when there is none to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarpCell {
    State(CarpState),
    /// The interface has no such vhid.
    NoVhid,
    /// The interface could not be read.
    Unreadable,
}

impl From<vip::Seen<'_>> for CarpCell {
    fn from(seen: vip::Seen<'_>) -> Self {
        match seen {
            vip::Seen::State(state) => Self::State(state),
            vip::Seen::NoVhid => Self::NoVhid,
            vip::Seen::Unreadable(_) => Self::Unreadable,
        }
    }
}

impl Serialize for CarpCell {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::State(state) => state.serialize(serializer),
            Self::NoVhid | Self::Unreadable => serializer.serialize_none(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerRow {
    pub server: String,
    /// As HAProxy says it: `UP`, `DOWN`, `UP 1/3`, `MAINT`, ...
    pub status: String,
    pub up: bool,
    pub sessions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KibanaRow {
    pub jail: String,
    pub host: String,
    /// `available`, `degraded`, `unavailable`, `critical`; `None` when it did
    /// not answer.
    pub level: Option<String>,
    pub summary: Option<String>,
    pub error: Option<String>,
}

/// Something that is not healthy or not as the inventory says, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong, one line.
    pub what: String,
    /// What to do about it, usually a command.
    pub fix: String,
}

impl Estate {
    /// Judges what was gathered against the inventory. `desired` is the formed
    /// cluster's desired state (what deploy would write now).
    pub fn build(inventory: &Inventory, desired: &DesiredState, observed: &Observed) -> Self {
        let mut builder = Builder {
            inventory,
            problems: Vec::new(),
        };
        let selected: Vec<(&Host, &ObservedHost)> = observed
            .hosts
            .iter()
            .filter_map(|o| {
                let host = inventory.hosts.iter().find(|h| h.name.as_str() == o.name)?;
                Some((host, o))
            })
            .collect();
        let mut hosts = Vec::new();
        let mut jails = Vec::new();
        for (host, seen) in &selected {
            let state = desired.hosts.iter().find(|h| h.host == host.name);
            let (row, jail_rows) = builder.host(host, seen, state);
            hosts.push(row);
            jails.extend(jail_rows);
        }
        let elasticsearch = observed
            .elasticsearch
            .as_ref()
            .map(|cluster| builder.elasticsearch(&selected, &jails, cluster));
        let haproxy = builder.haproxy(&selected);
        let kibana = builder.kibana(&selected, &observed.kibana);
        let problems = builder.problems;
        Estate {
            inventory: inventory.source.display().to_string(),
            healthy: problems.is_empty(),
            hosts,
            jails,
            elasticsearch,
            haproxy,
            kibana,
            problems,
            took: None,
        }
    }
}

struct Builder<'a> {
    inventory: &'a Inventory,
    problems: Vec<Problem>,
}

impl Builder<'_> {
    fn problem(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem {
            what: what.into(),
            fix: fix.into(),
        });
    }

    fn deploy(&self, host: &str) -> String {
        format!(
            "haelk deploy {} --limit {host}",
            self.inventory.source.display()
        )
    }

    fn host(
        &mut self,
        host: &Host,
        seen: &ObservedHost,
        state: Option<&HostState>,
    ) -> (HostRow, Vec<JailRow>) {
        let name = host.name.as_str();
        let facts = match &seen.facts {
            Ok(facts) => facts,
            Err(error) => {
                self.problem(
                    format!("{name} is unreachable: {error}"),
                    format!(
                        "check that the host is up and sshd listens on {}:{}, then run haelk status again",
                        host.address, host.ssh.port
                    ),
                );
                let jails = host
                    .jails
                    .iter()
                    .map(|jail| jail_row(host, jail, JailState::Unknown))
                    .collect();
                return (
                    HostRow {
                        name: name.to_owned(),
                        address: host.address.clone(),
                        reachable: false,
                        error: Some(error.clone()),
                        freebsd_version: None,
                        pool: None,
                        jails_running: 0,
                        jails_declared: host.jails.len(),
                        pending: Vec::new(),
                    },
                    jails,
                );
            }
        };
        let plan = match state.map(|state| plan::plan_host(state, facts)) {
            Some(Ok(plan)) => Some(plan),
            Some(Err(refused)) => {
                self.problem(
                    refused.to_string(),
                    format!(
                        "set jails.uplink in {}, then {}",
                        self.inventory.source.display(),
                        self.deploy(name)
                    ),
                );
                None
            }
            None => None,
        };
        let problems_before = self.problems.len();
        let mut jails = Vec::new();
        for jail in &host.jails {
            let row = self.jail(host, jail, facts, plan.as_ref());
            jails.push(row);
        }
        let pending: Vec<String> = plan
            .iter()
            .flat_map(|plan| plan.prepare.iter())
            .map(|step| match step {
                Step::Command(command) => command.clone(),
                Step::Write(write) => write.headline(),
            })
            .collect();
        // A stopped jail or a missing package already names the fix; the host
        // line covers only what no jail line does (datasets, rc.conf, ...).
        if !pending.is_empty() && self.problems.len() == problems_before {
            self.problem(
                format!(
                    "{name} differs from the inventory: {} host change{} pending (first: {})",
                    pending.len(),
                    plural(pending.len()),
                    pending[0]
                ),
                self.deploy(name),
            );
        }
        let row = HostRow {
            name: name.to_owned(),
            address: host.address.clone(),
            reachable: true,
            error: None,
            freebsd_version: Some(facts.freebsd_version.clone()),
            pool: facts.pool.as_ref().map(|pool| PoolRow {
                name: pool.name.clone(),
                size: pool.size.clone(),
                allocated: pool.allocated.clone(),
                free: pool.free.clone(),
            }),
            jails_running: jails
                .iter()
                .filter(|j| matches!(j.state, JailState::Running | JailState::ServiceStopped))
                .count(),
            jails_declared: host.jails.len(),
            pending,
        };
        (row, jails)
    }

    fn jail(
        &mut self,
        host: &Host,
        jail: &Jail,
        facts: &HostFacts,
        plan: Option<&plan::HostPlan>,
    ) -> JailRow {
        let name = jail.name.as_str();
        let fix = self.deploy(host.name.as_str());
        let jail_facts = facts.jails.get(name);
        let state = match jail_facts {
            None => JailState::Absent,
            Some(f) if f.running && f.services.values().all(|running| *running) => {
                JailState::Running
            }
            Some(f) if f.running => JailState::ServiceStopped,
            Some(f) if f.populated => JailState::Stopped,
            Some(_) => JailState::Absent,
        };
        let mut row = jail_row(host, jail, state);
        match state {
            JailState::Running => {}
            JailState::ServiceStopped => {
                let stopped: Vec<&str> = jail_facts
                    .into_iter()
                    .flat_map(|f| f.services.iter())
                    .filter(|(_, running)| !**running)
                    .map(|(service, _)| service.as_str())
                    .collect();
                self.problem(
                    format!("{name}: {} is not running", stopped.join(", ")),
                    fix.clone(),
                );
            }
            JailState::Stopped => self.problem(format!("{name} is not running"), fix.clone()),
            JailState::Absent | JailState::Unknown => {
                self.problem(format!("{name} does not exist"), fix.clone());
            }
        }
        let cluster = &self.inventory.cluster;
        let package = match jail.role {
            Role::Elasticsearch => &cluster.elasticsearch.package,
            Role::Kibana => &cluster.kibana.package,
            Role::Haproxy => &cluster.haproxy.package,
        };
        if let Some(f) = jail_facts {
            row.package = f
                .packages
                .get(package)
                .map(|version| format!("{package}-{version}"));
            if f.populated && row.package.is_none() {
                self.problem(
                    format!("{name}: package {package} is not installed"),
                    fix.clone(),
                );
            }
            if let Some(owed) = f.pending.marker() {
                row.owed = Some(owed.to_owned());
                self.problem(
                    format!("{name}: an interrupted deploy still owes a {owed}"),
                    fix.clone(),
                );
            }
        }
        if state == JailState::Running
            && let Some(jail_plan) = plan.and_then(|p| p.jail(name))
        {
            row.drift = jail_plan
                .writes
                .iter()
                .map(|write| Drift {
                    path: write.file.path.display().to_string(),
                    reasons: write.reasons.iter().map(|r| (*r).to_owned()).collect(),
                })
                .collect();
            for drift in &row.drift {
                self.problem(
                    format!(
                        "{name}: {} differs from the inventory ({})",
                        drift.path,
                        drift.reasons.join(", ")
                    ),
                    format!("{fix} (--dry-run shows the difference)"),
                );
            }
        }
        row
    }

    fn elasticsearch(
        &mut self,
        selected: &[(&Host, &ObservedHost)],
        jails: &[JailRow],
        observed: &Result<ObservedCluster, String>,
    ) -> ElasticsearchSection {
        let declared: Vec<(&Host, &Jail)> = selected
            .iter()
            .flat_map(|(host, _)| {
                host.jails
                    .iter()
                    .filter(|j| j.role == Role::Elasticsearch)
                    .map(move |j| (*host, j))
            })
            .collect();
        let declared_rows = |cluster: Option<&ObservedCluster>| -> Vec<NodeRow> {
            declared
                .iter()
                .map(|(host, jail)| {
                    let node =
                        cluster.and_then(|c| c.nodes.iter().find(|n| n.name == jail.name.as_str()));
                    let stats = cluster
                        .and_then(|c| c.stats.as_ref().ok())
                        .and_then(|s| s.iter().find(|s| s.name == jail.name.as_str()));
                    node_row(
                        jail.name.as_str(),
                        Some(host.name.as_str()),
                        node,
                        stats,
                        jail.node_roles
                            .iter()
                            .map(|r| r.as_str().to_owned())
                            .collect(),
                    )
                })
                .collect()
        };
        let cluster = match observed {
            Ok(cluster) => cluster,
            Err(error) => {
                // A jail that is not running already has its line and its fix.
                let all_stopped = jails
                    .iter()
                    .filter(|j| j.role == Role::Elasticsearch)
                    .all(|j| j.state != JailState::Running);
                if !all_stopped || declared.is_empty() {
                    self.problem(
                        format!("no Elasticsearch node answers: {error}"),
                        "check the Elasticsearch jails' logs (/var/log/elasticsearch in the jails), then haelk deploy",
                    );
                }
                return ElasticsearchSection {
                    via: None,
                    error: Some(error.clone()),
                    cluster: None,
                    stats_error: None,
                    nodes: declared_rows(None),
                };
            }
        };
        let mut nodes = declared_rows(Some(cluster));
        for row in nodes.iter().filter(|n| !n.joined) {
            let host = row.host.as_deref().unwrap_or_default();
            let running = jails
                .iter()
                .any(|j| j.name == row.name && j.state == JailState::Running);
            let fix = if running {
                format!(
                    "the jail runs but the node did not join: read /var/log/elasticsearch in {}",
                    row.name
                )
            } else {
                self.deploy(host)
            };
            self.problem(format!("{} has not joined the cluster", row.name), fix);
        }
        for node in &cluster.nodes {
            if self.inventory.find_jail(&node.name).is_none() {
                let stats = cluster
                    .stats
                    .as_ref()
                    .ok()
                    .and_then(|s| s.iter().find(|s| s.name == node.name));
                nodes.push(node_row(&node.name, None, Some(node), stats, Vec::new()));
                self.problem(
                    format!("{} is in the cluster but not in the inventory", node.name),
                    "add it to the inventory, or stop it",
                );
            }
        }
        let health = &cluster.health;
        let nodes_expected = self.inventory.jails_with_role(Role::Elasticsearch).count();
        let not_green = health.status != crate::elasticsearch::HealthStatus::Green;
        let reason = if not_green {
            cluster.unassigned_reason.clone()
        } else {
            None
        };
        if not_green {
            let why = reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            self.problem(
                format!("the cluster is {}{why}", health.summary()),
                if nodes.iter().any(|n| !n.joined) {
                    "start the missing nodes (above); the shards recover once they rejoin"
                        .to_owned()
                } else {
                    "wait for the recovery, or see GET /_cluster/allocation/explain".to_owned()
                },
            );
        }
        ElasticsearchSection {
            via: Some(cluster.via.clone()),
            error: None,
            stats_error: cluster.stats.as_ref().err().cloned(),
            cluster: Some(ClusterLine {
                status: health.status.as_str().to_owned(),
                nodes: health.number_of_nodes,
                nodes_expected,
                active_shards: health.active_shards,
                relocating_shards: health.relocating_shards,
                initializing_shards: health.initializing_shards,
                unassigned_shards: health.unassigned_shards,
                reason,
            }),
            nodes,
        }
    }

    fn haproxy(&mut self, selected: &[(&Host, &ObservedHost)]) -> Vec<VipSection> {
        let mut sections = Vec::new();
        for (service, vip) in &self.inventory.cluster.vips {
            let mut frontends = Vec::new();
            let mut carriers = Vec::new();
            for (host, seen) in selected {
                let Ok(_) = &seen.facts else { continue };
                for jail in host
                    .jails
                    .iter()
                    .filter(|j| j.role == Role::Haproxy && j.fronts == Some(*service))
                {
                    let mut row = self.frontend(host, jail, seen);
                    if let Some(read) = seen.carp.get(jail.name.as_str()) {
                        let carp = vip::Seen::of(read, vip.vhid);
                        row.carp = Some(carp.into());
                        carriers.push(vip::Carrier {
                            jail: jail.name.as_str(),
                            host: host.name.as_str(),
                            seen: carp,
                            haproxy_answers: row.error.is_none(),
                        });
                    }
                    frontends.push(row);
                }
            }
            if frontends.is_empty() {
                continue;
            }
            let label = format!("VIP {} (vhid {})", vip.address, vip.vhid);
            let members = desired::carp::members(self.inventory, *service).count();
            for finding in vip::judge(members, &carriers) {
                self.carp_problem(&label, vip.vhid, finding);
            }
            let master = vip::the_master(&carriers).map(str::to_owned);
            sections.push(VipSection {
                service: *service,
                vip: format!("{}:{}", vip.address, vip.port),
                vhid: vip.vhid,
                master,
                frontends,
            });
        }
        sections
    }

    fn carp_problem(&mut self, vip: &str, vhid: u8, finding: vip::Finding<'_>) {
        let interface = &self.inventory.cluster.carp.interface;
        let fix = match &finding {
            vip::Finding::NoMaster => format!(
                "check that {interface} is up in the carriers and that they share the password and vhid: haelk deploy {}",
                self.inventory.source.display()
            ),
            vip::Finding::SplitBrain(_) => "check the network between the carriers (one bridge, one subnet, multicast 224.0.0.18) and that they share the CARP password and vhid".to_owned(),
            // With preemption `state backup` would not last: a demotion does.
            vip::Finding::MasterWithoutHaproxy(carrier) => format!(
                "start its haproxy: {}; its CARP watch hands the VIP over within seconds \
                 (is it running? pgrep -f carp-watch in the jail); by hand, on {}: {}",
                self.deploy(carrier.host),
                carrier.host,
                freebsd::jail_carp_demote(carrier.jail)
            ),
            vip::Finding::MissingVhid(carrier) => format!(
                "give {interface} vhid {vhid}: {}",
                self.deploy(carrier.host)
            ),
            vip::Finding::Unreadable(carrier) => format!(
                "check that {} has the interface {interface} (cluster.carp.interface): {}",
                carrier.jail,
                self.deploy(carrier.host)
            ),
        };
        self.problem(format!("{vip}: {finding}"), fix);
    }

    fn frontend(&mut self, host: &Host, jail: &Jail, seen: &ObservedHost) -> FrontendRow {
        let name = jail.name.as_str();
        let mut row = FrontendRow {
            jail: name.to_owned(),
            host: host.name.to_string(),
            error: None,
            carp: None,
            servers: Vec::new(),
        };
        let stats = match &seen.haproxy {
            Some(Ok(stats)) => stats.get(name).cloned(),
            Some(Err(error)) => Some(Err(error.clone())),
            None => None,
        };
        match stats {
            Some(Ok(servers)) => {
                for server in servers {
                    let up = server.is_up();
                    if !up {
                        let fix = match self.inventory.find_jail(&server.server) {
                            Some((server_host, _)) => format!(
                                "start {}: {}",
                                server.server,
                                self.deploy(server_host.name.as_str())
                            ),
                            None => "check the server's health".to_owned(),
                        };
                        self.problem(
                            format!(
                                "{name}: backend server {}/{} is {}",
                                server.backend, server.server, server.status
                            ),
                            fix,
                        );
                    }
                    row.servers.push(ServerRow {
                        up,
                        server: server.server,
                        status: server.status,
                        sessions: server.sessions,
                    });
                }
            }
            Some(Err(error)) => {
                // A stopped haproxy jail has its own line already.
                let running = seen
                    .facts
                    .as_ref()
                    .ok()
                    .and_then(|f| f.jails.get(name))
                    .is_some_and(|f| f.running);
                if running {
                    self.problem(
                        format!("{name}: cannot read the HAProxy stats: {error}"),
                        self.deploy(host.name.as_str()),
                    );
                }
                row.error = Some(error);
            }
            None => row.error = Some("no answer".to_owned()),
        }
        row
    }

    fn kibana(
        &mut self,
        selected: &[(&Host, &ObservedHost)],
        observed: &BTreeMap<String, Result<KibanaStatus, String>>,
    ) -> Vec<KibanaRow> {
        let mut rows = Vec::new();
        for (host, seen) in selected {
            let Ok(facts) = &seen.facts else { continue };
            for jail in host.jails.iter().filter(|j| j.role == Role::Kibana) {
                let name = jail.name.as_str();
                let running = facts.jails.get(name).is_some_and(|f| f.running);
                let mut row = KibanaRow {
                    jail: name.to_owned(),
                    host: host.name.to_string(),
                    level: None,
                    summary: None,
                    error: None,
                };
                match observed.get(name) {
                    Some(Ok(status)) => {
                        row.level = Some(status.level.clone());
                        row.summary = Some(status.summary.clone());
                        if !status.is_available() {
                            self.problem(
                                format!("{name}: Kibana is {}: {}", status.level, status.summary),
                                "check that Elasticsearch is green and read the Kibana log in the jail",
                            );
                        }
                    }
                    Some(Err(error)) => {
                        if running {
                            self.problem(
                                format!("{name}: Kibana does not answer: {error}"),
                                self.deploy(host.name.as_str()),
                            );
                        }
                        row.error = Some(error.clone());
                    }
                    None => row.error = Some("not asked".to_owned()),
                }
                rows.push(row);
            }
        }
        rows
    }
}

fn jail_row(host: &Host, jail: &Jail, state: JailState) -> JailRow {
    JailRow {
        host: host.name.to_string(),
        name: jail.name.to_string(),
        role: jail.role,
        ip: jail.ip.to_string(),
        state,
        package: None,
        drift: Vec::new(),
        owed: None,
    }
}

fn node_row(
    name: &str,
    host: Option<&str>,
    node: Option<&Node>,
    stats: Option<&NodeStats>,
    declared_roles: Vec<String>,
) -> NodeRow {
    NodeRow {
        name: name.to_owned(),
        host: host.map(str::to_owned),
        roles: node.map_or(declared_roles, |n| n.roles.clone()),
        joined: node.is_some(),
        elected_master: node.is_some_and(|n| n.elected_master),
        heap_used_percent: stats.map(|s| s.heap_used_percent),
        disk_used_bytes: stats.map(|s| s.disk_used_bytes),
        disk_total_bytes: stats.map(|s| s.disk_total_bytes),
        shards: stats.map(|s| s.shards),
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
