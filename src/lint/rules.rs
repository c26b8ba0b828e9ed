//! The lint rules. Each [`Rule`] has a stable code and slug name, a fixed
//! severity and a pure check over the inventory; `docs/lint.md` documents every
//! one of them (a test keeps the two in step).
//!
//! Quorum arithmetic used throughout: the voting configuration is the set of
//! master-eligible nodes (`voting_only` ones included); a decision needs a strict
//! majority of it, `n / 2 + 1` of `n`. Elasticsearch keeps the configuration odd
//! by leaving one node out when `n` is even and does not let you choose which, so
//! the worst case - which lint assumes - is that losing `k` nodes of `n` is fatal
//! unless `n - k` is still a strict majority of `n`.

use std::collections::BTreeMap;

use crate::desired::carp;
use crate::inventory::{
    ByteSize, Host, Inventory, Jail, MAX_DEFAULT_HEAP, NodeRole, Role, Vip, in_subnet, quorum,
    subnet,
};

use super::report::{Diagnostic, Severity};

/// One lint rule.
pub struct Rule {
    /// Stable code, `HA001`...; never reused for another meaning.
    pub code: &'static str,
    /// Stable slug name.
    pub name: &'static str,
    pub severity: Severity,
    pub(crate) check: fn(&Rule, &Inventory) -> Vec<Diagnostic>,
}

impl Rule {
    fn diagnostic(&self, message: String) -> Diagnostic {
        Diagnostic::new(self.severity, self.code, self.name, message)
    }
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.name)
    }
}

use Severity::{Error, Warning};

/// Every rule, in the order lint runs them and reports their findings.
pub static RULES: &[Rule] = &[
    Rule {
        code: "HA001",
        name: "too-few-master-eligible",
        severity: Error,
        check: too_few_master_eligible,
    },
    Rule {
        code: "HA002",
        name: "even-master-eligible",
        severity: Warning,
        check: even_master_eligible,
    },
    Rule {
        code: "HA003",
        name: "host-loss-loses-quorum",
        severity: Error,
        check: host_loss_loses_quorum,
    },
    Rule {
        code: "HA004",
        name: "no-electable-master",
        severity: Error,
        check: no_electable_master,
    },
    Rule {
        code: "HA005",
        name: "host-loss-leaves-no-electable-master",
        severity: Error,
        check: host_loss_leaves_no_electable_master,
    },
    Rule {
        code: "HA007",
        name: "too-few-data-nodes",
        severity: Error,
        check: too_few_data_nodes,
    },
    Rule {
        code: "HA008",
        name: "data-on-one-host",
        severity: Error,
        check: data_on_one_host,
    },
    Rule {
        code: "HA009",
        name: "data-nodes-share-host",
        severity: Warning,
        check: data_nodes_share_host,
    },
    Rule {
        code: "HA010",
        name: "vip-without-haproxy",
        severity: Error,
        check: vip_without_haproxy,
    },
    Rule {
        code: "HA011",
        name: "vip-single-haproxy",
        severity: Error,
        check: vip_single_haproxy,
    },
    Rule {
        code: "HA012",
        name: "vip-haproxy-on-one-host",
        severity: Error,
        check: vip_haproxy_on_one_host,
    },
    Rule {
        code: "HA014",
        name: "too-few-kibana",
        severity: Error,
        check: too_few_kibana,
    },
    Rule {
        code: "HA015",
        name: "kibana-on-one-host",
        severity: Error,
        check: kibana_on_one_host,
    },
    Rule {
        code: "HA016",
        name: "kibana-without-elasticsearch",
        severity: Error,
        check: kibana_without_elasticsearch,
    },
    Rule {
        code: "HA017",
        name: "service-without-vip",
        severity: Warning,
        check: service_without_vip,
    },
    Rule {
        code: "HA018",
        name: "heap-over-half-memory",
        severity: Error,
        check: heap_over_half_memory,
    },
    Rule {
        code: "HA019",
        name: "heap-over-compressed-oops",
        severity: Error,
        check: heap_over_compressed_oops,
    },
    Rule {
        code: "HA020",
        name: "heap-unchecked",
        severity: Warning,
        check: heap_unchecked,
    },
    Rule {
        code: "HA021",
        name: "address-is-gateway",
        severity: Error,
        check: address_is_gateway,
    },
    Rule {
        code: "HA022",
        name: "address-is-network-or-broadcast",
        severity: Error,
        check: address_is_network_or_broadcast,
    },
    Rule {
        code: "HA024",
        name: "duplicate-host-address",
        severity: Error,
        check: duplicate_host_address,
    },
    Rule {
        code: "HA025",
        name: "vip-outside-subnet",
        severity: Warning,
        check: vip_outside_subnet,
    },
    Rule {
        code: "HA027",
        name: "security-disabled",
        severity: Warning,
        check: security_disabled,
    },
    Rule {
        code: "HA028",
        name: "security-without-transport-tls",
        severity: Error,
        check: security_without_transport_tls,
    },
    Rule {
        code: "HA029",
        name: "snapshot-path-not-verified",
        severity: Warning,
        check: snapshot_path_not_verified,
    },
    Rule {
        code: "HA030",
        name: "carp-advskew-tie",
        severity: Warning,
        check: carp_advskew_tie,
    },
    Rule {
        code: "HA031",
        name: "machine-learning-on-freebsd",
        severity: Error,
        check: machine_learning_on_freebsd,
    },
];

// ---------------------------------------------------------------- helpers

type Placed<'a> = (&'a Host, &'a Jail);

fn master_eligible(inventory: &Inventory) -> Vec<Placed<'_>> {
    inventory
        .jails()
        .filter(|(_, j)| j.is_master_eligible())
        .collect()
}

fn data_nodes(inventory: &Inventory) -> Vec<Placed<'_>> {
    inventory.jails().filter(|(_, j)| j.holds_data()).collect()
}

/// `a (host-a), b (host-b)`.
fn placed_list(placed: &[Placed<'_>]) -> String {
    placed
        .iter()
        .map(|(host, jail)| format!("{} ({})", jail.name, host.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(jails: &[&Jail]) -> String {
    jails
        .iter()
        .map(|j| j.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The distinct hosts of `placed`, in file order.
fn hosts_of<'a>(placed: &[Placed<'a>]) -> Vec<&'a Host> {
    let mut hosts: Vec<&Host> = Vec::new();
    for (host, _) in placed {
        if !hosts.iter().any(|h| h.name == host.name) {
            hosts.push(host);
        }
    }
    hosts
}

/// The haproxy jails that front `role`, i.e. carry its VIP, in file order.
fn vip_members(inventory: &Inventory, role: Role) -> Vec<Placed<'_>> {
    carp::members(inventory, role).collect()
}

/// An `elasticsearch.yml` boolean from `cluster.elasticsearch.settings`, which
/// YAML may give as a boolean or as the string `"true"`/`"false"`.
fn setting_bool(inventory: &Inventory, key: &str) -> Option<bool> {
    match inventory.cluster.elasticsearch.settings.get(key)? {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn vips(inventory: &Inventory) -> impl Iterator<Item = (Role, &Vip)> {
    inventory
        .cluster
        .vips
        .iter()
        .map(|(role, vip)| (*role, vip))
}

// ---------------------------------------------------------------- quorum

fn too_few_master_eligible(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let masters = master_eligible(inventory);
    let n = masters.len();
    if n >= 3 {
        return Vec::new();
    }
    let hint = "have 3 master-eligible nodes on 3 different hosts; on a third host a small \
                jail with `node_roles: [master, voting_only]` is enough";
    let diagnostic = if n == 0 {
        rule.diagnostic("no master-eligible Elasticsearch node: the cluster can never form".into())
            .note("a node is master-eligible when its node_roles include master")
    } else {
        rule.diagnostic(format!(
            "only {n} master-eligible {}: a cluster that survives losing one needs at least 3",
            if n == 1 { "node" } else { "nodes" }
        ))
        .note(format!("master-eligible: {}", placed_list(&masters)))
        .note(format!(
            "the quorum of {n} voting {} is {}: with {n}, every master-eligible node must stay up \
             for the cluster to elect a master and accept changes",
            if n == 1 { "node" } else { "nodes" },
            quorum(n)
        ))
    };
    vec![diagnostic.hint(hint)]
}

fn even_master_eligible(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let masters = master_eligible(inventory);
    let n = masters.len();
    // Two is even too, but too-few-master-eligible already says what matters.
    if n < 4 || n % 2 == 1 {
        return Vec::new();
    }
    vec![
        rule.diagnostic(format!(
            "{n} master-eligible nodes: an even count adds no fault tolerance"
        ))
        .note(format!(
            "{n} voting nodes tolerate the loss of {}, exactly as {} do; Elasticsearch even \
             leaves one out of the voting configuration to keep it odd",
            (n - 1) / 2,
            n - 1
        ))
        .note(format!("master-eligible: {}", placed_list(&masters)))
        .hint(format!(
            "use {} or {} master-eligible nodes (a voting_only node is enough to add one)",
            n - 1,
            n + 1
        )),
    ]
}

fn host_loss_loses_quorum(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let masters = master_eligible(inventory);
    let n = masters.len();
    let hosts_with_masters = hosts_of(&masters).len();
    let mut found = Vec::new();
    for host in &inventory.hosts {
        let on_host: Vec<&Jail> = masters
            .iter()
            .filter(|(h, _)| h.name == host.name)
            .map(|(_, j)| *j)
            .collect();
        let lost = on_host.len();
        let left = n - lost;
        if lost == 0 || left >= quorum(n) {
            continue;
        }
        let mut diagnostic = rule
            .diagnostic(format!("losing host {} loses the master quorum", host.name))
            .at_host(host)
            .note(format!(
                "{n} master-eligible (voting) {}: the quorum is a strict majority, {} of {n}",
                if n == 1 { "node" } else { "nodes" },
                quorum(n)
            ))
            .note(format!(
                "{} carries {lost} of them ({}); without it {left} of {n} remain, fewer than {}, \
                 so no master can be elected and the cluster stops accepting writes",
                host.name,
                names(&on_host),
                quorum(n)
            ));
        if n == 2 {
            diagnostic = diagnostic.note(
                "with 2 master-eligible nodes Elasticsearch keeps only one of them in the voting \
                 configuration (it keeps it odd), and it chooses which: either host may be the \
                 one the cluster cannot lose",
            );
        }
        let hint = if hosts_with_masters < 3 {
            "add a master-eligible node on a third host - `node_roles: [master, voting_only]` \
             is enough - so that no host carries half or more of the votes"
                .to_owned()
        } else {
            format!(
                "spread the master-eligible nodes so that no host carries more than {} of the {n}",
                (n - 1) / 2
            )
        };
        found.push(diagnostic.hint(hint));
    }
    found
}

fn no_electable_master(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let masters = master_eligible(inventory);
    if masters.is_empty() || masters.iter().any(|(_, j)| !j.is_voting_only()) {
        return Vec::new();
    }
    vec![
        rule.diagnostic(
            "every master-eligible node is voting_only: no node can be elected master".into(),
        )
        .note(format!(
            "voting_only nodes vote in elections but never become master: {}",
            placed_list(&masters)
        ))
        .hint("drop voting_only from at least two master-eligible nodes on different hosts"),
    ]
}

fn host_loss_leaves_no_electable_master(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let masters = master_eligible(inventory);
    let n = masters.len();
    let electable: Vec<Placed<'_>> = masters
        .iter()
        .copied()
        .filter(|(_, j)| !j.is_voting_only())
        .collect();
    let [(host, _), ..] = electable.as_slice() else {
        return Vec::new(); // none electable: no-electable-master reports it
    };
    let all_on_one_host = electable.iter().all(|(h, _)| h.name == host.name);
    let lost = masters.iter().filter(|(h, _)| h.name == host.name).count();
    // When the quorum goes too, host-loss-loses-quorum already reports this host.
    if !all_on_one_host || n - lost < quorum(n) {
        return Vec::new();
    }
    let jails: Vec<&Jail> = electable.iter().map(|(_, j)| *j).collect();
    let voting_only: Vec<Placed<'_>> = masters
        .iter()
        .copied()
        .filter(|(_, j)| j.is_voting_only())
        .collect();
    vec![
        rule.diagnostic(format!(
            "losing host {} leaves no node that can be elected master",
            host.name
        ))
        .at_host(host)
        .note(format!(
            "{} carries every master-eligible node that is not voting_only ({})",
            host.name,
            names(&jails)
        ))
        .note(format!(
            "the others keep the quorum but, being voting_only, can never become master: {}",
            placed_list(&voting_only)
        ))
        .hint(
            "make a master-eligible node on another host electable (drop voting_only): at least \
             two master-eligible nodes on different hosts must not be voting_only",
        ),
    ]
}

// ---------------------------------------------------------------- data

fn too_few_data_nodes(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let data = data_nodes(inventory);
    let diagnostic = match data.as_slice() {
        [] => rule.diagnostic("no Elasticsearch node holds data".into()),
        [(host, jail)] => rule
            .diagnostic(format!(
                "only one data node ({}): losing it loses the data",
                jail.name
            ))
            .at_jail(jail)
            .note(format!(
                "a replica is never allocated to the node of its primary, so with one data node \
                 every index is unreplicated and {} going down takes the data with it",
                host.name
            )),
        _ => return Vec::new(),
    };
    vec![diagnostic.hint(
        "give the data role to at least two Elasticsearch jails on different hosts \
         (node_roles: [master, data])",
    )]
}

fn data_on_one_host(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let data = data_nodes(inventory);
    let hosts = hosts_of(&data);
    match hosts.as_slice() {
        [host] if data.len() >= 2 => vec![
            rule.diagnostic(format!("every data node is on host {}", host.name))
                .at_host(host)
                .note(format!("data nodes: {}", placed_list(&data)))
                .note(format!(
                    "primaries and replicas are on different nodes but the same machine: losing \
                     {} loses every copy of every shard",
                    host.name
                ))
                .hint("put data nodes on at least two physical hosts"),
        ],
        _ => Vec::new(),
    }
}

fn data_nodes_share_host(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let data = data_nodes(inventory);
    let hosts = hosts_of(&data);
    let aware = inventory
        .cluster
        .elasticsearch
        .settings
        .contains_key("cluster.routing.allocation.awareness.attributes");
    // With one host, data-on-one-host reports the worse problem.
    if hosts.len() < 2 || aware {
        return Vec::new();
    }
    hosts
        .into_iter()
        .filter_map(|host| {
            let on_host: Vec<&Jail> = data
                .iter()
                .filter(|(h, _)| h.name == host.name)
                .map(|(_, j)| *j)
                .collect();
            (on_host.len() > 1).then(|| {
                rule.diagnostic(format!(
                    "host {} carries {} data nodes",
                    host.name,
                    on_host.len()
                ))
                .at_host(host)
                .note(format!(
                    "Elasticsearch sees {} as different nodes and may put a primary and its only \
                     replica on them: losing {} then loses that shard",
                    names(&on_host),
                    host.name
                ))
                .hint(
                    "run one data node per host, or set shard allocation awareness \
                     (cluster.routing.allocation.awareness.attributes with a node attribute \
                     naming the physical host)",
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------- VIPs and haproxy

fn vip_without_haproxy(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    vips(inventory)
        .filter(|(role, _)| vip_members(inventory, *role).is_empty())
        .map(|(role, vip)| {
            rule.diagnostic(format!(
                "no haproxy jail fronts the {role} VIP {}",
                vip.address
            ))
            .at_vip(role, vip)
            .note(format!(
                "CARP carries the VIP inside the haproxy jails with `fronts: {role}`; without \
                 one, nothing answers on {}:{}",
                vip.address, vip.port
            ))
            .hint(format!(
                "add a haproxy jail with `fronts: {role}` on each of at least two hosts"
            ))
        })
        .collect()
}

fn vip_single_haproxy(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    vips(inventory)
        .filter_map(|(role, vip)| {
            let [(host, jail)] = vip_members(inventory, role)[..] else {
                return None;
            };
            Some(
                rule.diagnostic(format!(
                    "the {role} VIP {} has a single haproxy jail: no failover",
                    vip.address
                ))
                .at_vip(role, vip)
                .note(format!(
                    "only {} on {} carries it: when that host goes down, the address goes with it",
                    jail.name, host.name
                ))
                .hint(format!(
                    "add a haproxy jail with `fronts: {role}` on another host"
                )),
            )
        })
        .collect()
}

fn vip_haproxy_on_one_host(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    vips(inventory)
        .filter_map(|(role, vip)| {
            let members = vip_members(inventory, role);
            match hosts_of(&members).as_slice() {
                [host] if members.len() >= 2 => Some(
                    rule.diagnostic(format!(
                        "every haproxy jail of the {role} VIP {} is on host {}",
                        vip.address, host.name
                    ))
                    .at_vip(role, vip)
                    .note(format!(
                        "members: {}; CARP fails over between them, but they all go down with {}",
                        placed_list(&members),
                        host.name
                    ))
                    .hint(format!(
                        "move one haproxy jail with `fronts: {role}` to another host"
                    )),
                ),
                _ => None,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- Kibana

fn too_few_kibana(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let kibana: Vec<Placed<'_>> = inventory.jails_with_role(Role::Kibana).collect();
    let vip = inventory.cluster.vips.get(&Role::Kibana);
    let hint = "run Kibana in at least two jails on different hosts, behind the kibana VIP";
    match (kibana.as_slice(), vip) {
        ([], Some(vip)) => vec![
            rule.diagnostic(format!(
                "the kibana VIP {} exists but no Kibana jail does",
                vip.address
            ))
            .at_vip(Role::Kibana, vip)
            .note("haproxy would front an empty backend")
            .hint(hint),
        ],
        ([(host, jail)], _) => vec![
            rule.diagnostic(format!(
                "only one Kibana instance ({}): no failover",
                jail.name
            ))
            .at_jail(jail)
            .note(format!("losing {} loses Kibana", host.name))
            .hint(hint),
        ],
        _ => Vec::new(),
    }
}

fn kibana_on_one_host(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let kibana: Vec<Placed<'_>> = inventory.jails_with_role(Role::Kibana).collect();
    match hosts_of(&kibana).as_slice() {
        [host] if kibana.len() >= 2 => vec![
            rule.diagnostic(format!("every Kibana instance is on host {}", host.name))
                .at_host(host)
                .note(format!(
                    "instances: {}; losing {} loses Kibana",
                    placed_list(&kibana),
                    host.name
                ))
                .hint("move one Kibana jail to another host"),
        ],
        _ => Vec::new(),
    }
}

fn kibana_without_elasticsearch(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let first_kibana = inventory.jails_with_role(Role::Kibana).next();
    let has_elasticsearch = inventory
        .jails_with_role(Role::Elasticsearch)
        .next()
        .is_some();
    match first_kibana {
        Some((_, jail)) if !has_elasticsearch => vec![
            rule.diagnostic("Kibana jails but no Elasticsearch node".into())
                .at_jail(jail)
                .note("Kibana keeps all its state in Elasticsearch and does not start without it")
                .hint("add Elasticsearch jails (at least three master-eligible, on three hosts)"),
        ],
        _ => Vec::new(),
    }
}

fn service_without_vip(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    [Role::Elasticsearch, Role::Kibana]
        .into_iter()
        .filter(|role| !inventory.cluster.vips.contains_key(role))
        .filter_map(|role| {
            let (_, jail) = inventory.jails_with_role(role).next()?;
            Some(
                rule.diagnostic(format!("{role} has jails but no VIP"))
                    .at_jail(jail)
                    .note(format!(
                        "clients (and, for elasticsearch, Kibana) must then address {role} \
                         jails directly, and an address dies with its host"
                    ))
                    .hint(format!(
                        "add cluster.vips.{role} and haproxy jails with `fronts: {role}` on two hosts"
                    )),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- heap

fn heap_over_half_memory(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    inventory
        .jails_with_role(Role::Elasticsearch)
        .filter_map(|(_, jail)| {
            let memory = jail.memory?;
            let heap = inventory.heap(jail);
            (heap.bytes().saturating_mul(2) > memory.bytes()).then(|| {
                rule.diagnostic(format!(
                    "heap {heap} of {} is more than half of its memory {memory}",
                    jail.name
                ))
                .at_jail(jail)
                .note(
                    "Elasticsearch needs the other half for the filesystem cache and off-heap \
                     buffers (Lucene reads through the OS cache)",
                )
                .hint(format!(
                    "lower cluster.elasticsearch.heap to at most {} or give the jail at least {} \
                     of memory",
                    ByteSize(memory.bytes() / 2),
                    ByteSize(heap.bytes().saturating_mul(2))
                ))
            })
        })
        .collect()
}

fn heap_over_compressed_oops(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    // A derived heap is capped at MAX_DEFAULT_HEAP, so only an explicit one can be
    // too large - and it applies to every node, hence one cluster-wide finding.
    match inventory.cluster.elasticsearch.heap {
        Some(heap) if heap > MAX_DEFAULT_HEAP => vec![
            rule.diagnostic(format!(
                "heap {heap} is above {MAX_DEFAULT_HEAP}: the JVM loses compressed object pointers"
            ))
            .note(
                "above roughly 26-31 GB (the exact limit depends on the JVM) object pointers \
                 double in size, so a heap just above the limit holds less than one below it",
            )
            .hint(format!(
                "set cluster.elasticsearch.heap to {MAX_DEFAULT_HEAP} or less and scale out \
                 with more nodes instead"
            )),
        ],
        _ => Vec::new(),
    }
}

fn heap_unchecked(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let Some(heap) = inventory.cluster.elasticsearch.heap else {
        return Vec::new();
    };
    let unknown: Vec<&Jail> = inventory
        .jails_with_role(Role::Elasticsearch)
        .map(|(_, j)| j)
        .filter(|j| j.memory.is_none())
        .collect();
    let [first, ..] = unknown.as_slice() else {
        return Vec::new();
    };
    vec![
        rule.diagnostic(format!(
            "heap {heap} is set but the memory of {} is unknown: the 50% rule cannot be checked",
            if unknown.len() == 1 {
                first.name.to_string()
            } else {
                format!("{} Elasticsearch jails", unknown.len())
            }
        ))
        .at_jail(first)
        .note(format!("jails without memory: {}", names(&unknown)))
        .hint("set `memory:` on these jails (the heap must be at most half of it)"),
    ]
}

// ---------------------------------------------------------------- addresses
//
// The loader already holds every jail IP to its host's network (on the gateway's
// subnet, not the gateway, not the network or broadcast address) and every jail
// IP and VIP to be unique. A VIP is not tied to a network there: it lives in the
// subnets of the haproxy jails that carry it, which is what these rules check.

fn address_is_gateway(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    vips(inventory)
        .filter_map(|(role, vip)| {
            let (host, _) = vip_members(inventory, role)
                .into_iter()
                .find(|(h, _)| h.jail_defaults.gateway == vip.address)?;
            Some(
                rule.diagnostic(format!(
                    "the {role} VIP {} is the default gateway of the jails on {}",
                    vip.address, host.name
                ))
                .at_vip(role, vip)
                .note("the router answers on that address; the two would fight over it in ARP")
                .hint("choose a free address in the jail subnet"),
            )
        })
        .collect()
}

fn address_is_network_or_broadcast(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    vips(inventory)
        .filter_map(|(role, vip)| {
            vip_members(inventory, role)
                .into_iter()
                .find_map(|(host, jail)| {
                    let netmask = host.jail_defaults.netmask;
                    // /31 and /32 have no network or broadcast address (RFC 3021).
                    if netmask >= 31 {
                        return None;
                    }
                    let (network, broadcast) = subnet(jail.ip, netmask);
                    let what = if vip.address == network {
                        "network"
                    } else if vip.address == broadcast {
                        "broadcast"
                    } else {
                        return None;
                    };
                    Some(
                        rule.diagnostic(format!(
                            "the {role} VIP {} is the {what} address of {network}/{netmask}",
                            vip.address
                        ))
                        .at_vip(role, vip)
                        .note("no host may use the network or broadcast address of its subnet")
                        .hint("choose a host address inside the subnet"),
                    )
                })
        })
        .collect()
}

fn duplicate_host_address(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    // The loader rejects two hosts with the same address and ssh port as written;
    // this catches the same machine written two ways: addresses compare as parsed
    // IPs (`2001:db8::1` is `2001:DB8:0::1`), names without case or the trailing
    // dot of a fully qualified name. Another port (NAT) or another jump host may
    // reach another machine behind one address, so those stay apart.
    let normal = |address: &str| -> String {
        let name = address.trim_end_matches('.');
        match name.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => name.to_ascii_lowercase(),
        }
    };
    let mut seen: BTreeMap<(String, u16, Option<String>), &Host> = BTreeMap::new();
    let mut found = Vec::new();
    for host in &inventory.hosts {
        let key = (
            normal(&host.address),
            host.ssh.port,
            host.ssh.jump.as_deref().map(normal),
        );
        match seen.get(&key) {
            Some(first) => found.push(
                rule.diagnostic(format!(
                    "hosts {} and {} have the same address {} (ssh port {})",
                    first.name, host.name, key.0, host.ssh.port
                ))
                .at_host(host)
                .note(
                    "they are one machine: losing it loses both, and deploy would write both \
                     hosts' jails to it",
                )
                .hint("give each physical host its own address"),
            ),
            None => {
                seen.insert(key, host);
            }
        }
    }
    found
}

fn vip_outside_subnet(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    vips(inventory)
        .filter_map(|(role, vip)| {
            let outside: Vec<&Jail> = vip_members(inventory, role)
                .into_iter()
                .filter(|(host, jail)| !in_subnet(vip.address, jail.ip, host.jail_defaults.netmask))
                .map(|(_, j)| j)
                .collect();
            let [first, ..] = outside.as_slice() else {
                return None;
            };
            let netmask = inventory
                .jails()
                .find(|(_, j)| j.name == first.name)
                .map_or(0, |(h, _)| h.jail_defaults.netmask);
            Some(
                rule.diagnostic(format!(
                    "the {role} VIP {} is outside the subnet {}/{netmask} of {}",
                    vip.address,
                    subnet(first.ip, netmask).0,
                    names(&outside)
                ))
                .at_vip(role, vip)
                .note(
                    "CARP announces the VIP on the haproxy jails' interface; clients on the \
                     jail network reach it only through an extra route",
                )
                .hint("put the VIP in the jails' subnet, or make sure it is routed to them"),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- security, snapshots, CARP, ML

fn security_disabled(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    // An explicit `false` is the operator's recorded decision: quiet. Only an
    // inventory that says nothing gets the warning, so it is seen once and can be
    // answered in the file rather than ignored on every run.
    if setting_bool(inventory, "xpack.security.enabled").is_some() {
        return Vec::new();
    }
    vec![
        rule.diagnostic(
            "Elasticsearch security is off: anyone who reaches a node or the VIP has full access"
                .into(),
        )
        .note(
            "haelk does not manage TLS certificates yet, and a multi-node Elasticsearch 8 \
             cluster with security on needs transport TLS, so haelk runs it without security",
        )
        .hint(
            "keep the jail network and VIPs on a trusted network, then record that decision with \
             `xpack.security.enabled: false` in cluster.elasticsearch.settings",
        ),
    ]
}

fn security_without_transport_tls(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let security = setting_bool(inventory, "xpack.security.enabled") == Some(true);
    let transport_tls =
        setting_bool(inventory, "xpack.security.transport.ssl.enabled") == Some(true);
    let nodes = inventory.jails_with_role(Role::Elasticsearch).count();
    if !security || transport_tls || nodes < 2 {
        return Vec::new();
    }
    vec![
        rule.diagnostic(
            "xpack.security.enabled is true but transport TLS is not configured".into(),
        )
        .note(format!(
            "Elasticsearch 8 refuses to form a cluster of {nodes} nodes with security on and \
             xpack.security.transport.ssl.enabled unset (a bootstrap check)"
        ))
        .hint(
            "set xpack.security.transport.ssl.* (key, certificate, certificate_authorities, \
             verification_mode: certificate) and put the PEM files in every Elasticsearch \
             jail, or set xpack.security.enabled: false",
        ),
    ]
}

fn snapshot_path_not_verified(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let Some(snapshots) = &inventory.cluster.snapshots else {
        return Vec::new();
    };
    let sharing: Vec<Placed<'_>> = inventory
        .jails()
        .filter(|(_, j)| j.is_master_eligible() || j.holds_data())
        .collect();
    vec![
        rule.diagnostic(format!(
            "snapshot path {} must be one shared filesystem; haelk cannot verify that",
            snapshots.path.display()
        ))
        .note(format!(
            "every master and data node must see the same files at {}, or the repository \
             cannot be registered and snapshots fail: {} on {} hosts",
            snapshots.path.display(),
            placed_list(&sharing),
            hosts_of(&sharing).len()
        ))
        .hint(format!(
            "mount one shared filesystem (NFS, for example) at {} inside each of these jails \
             before deploying",
            snapshots.path.display()
        )),
    ]
}

fn carp_advskew_tie(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    vips(inventory)
        .filter_map(|(role, vip)| {
            let mut by_skew: BTreeMap<u8, Vec<&Jail>> = BTreeMap::new();
            // The advskew deploy gives each member: explicit, else derived from
            // its place in the file.
            for (position, (_, jail)) in carp::members(inventory, role).enumerate() {
                let skew = jail
                    .advskew
                    .unwrap_or_else(|| carp::derived_advskew(position));
                by_skew.entry(skew).or_default().push(jail);
            }
            let (skew, tied) = by_skew.into_iter().find(|(_, jails)| jails.len() > 1)?;
            Some(
                rule.diagnostic(format!(
                    "{} carry the {role} VIP with the same advskew {skew}",
                    names(&tied)
                ))
                .at_vip(role, vip)
                .note(
                    "with equal advskew (and advbase) CARP's choice of master is not \
                     predictable, and which one takes over after a failure is not either",
                )
                .hint("give each member its own `advskew`, or remove the explicit ones"),
            )
        })
        .collect()
}

fn machine_learning_on_freebsd(rule: &Rule, inventory: &Inventory) -> Vec<Diagnostic> {
    let ml_nodes: Vec<&Jail> = inventory
        .jails_with_role(Role::Elasticsearch)
        .map(|(_, j)| j)
        .filter(|j| j.node_roles.contains(&NodeRole::Ml))
        .collect();
    let ml_setting = setting_bool(inventory, "xpack.ml.enabled") == Some(true);
    let mut found: Vec<Diagnostic> = ml_nodes
        .iter()
        .map(|jail| {
            rule.diagnostic(format!("{} has the node role ml", jail.name))
                .at_jail(jail)
                .note("Elasticsearch's machine learning has no native build for FreeBSD")
                .hint("remove ml from node_roles")
        })
        .collect();
    if ml_setting {
        found.push(
            rule.diagnostic("xpack.ml.enabled is true".into())
                .note("Elasticsearch's machine learning has no native build for FreeBSD; the node fails to start")
                .hint("remove xpack.ml.enabled from cluster.elasticsearch.settings"),
        );
    }
    found
}

#[cfg(test)]
mod tests;
