//! The validated inventory: the typed, defaults-merged model every later stage
//! (desired state, lint, deploy, status) works from.
//!
//! Values here have already passed every rule of the inventory contract, so code
//! that consumes them never re-checks names, addresses or references. Each host
//! and jail keeps the [`Location`] of its key in the YAML file so later stages
//! (lint in particular) can point diagnostics at the line that caused them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// A position in the inventory file, 1-based, as shown in diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

/// A host or jail name: `^[a-z0-9][a-z0-9._-]{0,30}[a-z0-9]$`.
///
/// Such a name is safe to put on a shell command line unquoted, but command
/// builders still quote it: safety should not depend on remembering this rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Checks `value` against the naming rule; the error says what is wrong.
    pub fn new(value: &str) -> Result<Self, String> {
        let bytes = value.as_bytes();
        let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let inner_ok = |b: u8| edge_ok(b) || matches!(b, b'.' | b'_' | b'-');
        if !(2..=32).contains(&bytes.len()) {
            return Err(format!(
                "name {value:?} must be 2 to 32 characters long (it has {})",
                value.chars().count()
            ));
        }
        let (first, last) = (bytes[0], bytes[bytes.len() - 1]);
        if !edge_ok(first) || !edge_ok(last) || !bytes.iter().all(|&b| inner_ok(b)) {
            return Err(format!(
                "name {value:?} must match ^[a-z0-9][a-z0-9._-]{{0,30}}[a-z0-9]$ \
                 (lower-case letters, digits, '.', '_' and '-'; starting and ending with a letter or digit)"
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a jail runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Elasticsearch,
    Kibana,
    Haproxy,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Elasticsearch, Role::Kibana, Role::Haproxy];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Elasticsearch => "elasticsearch",
            Role::Kibana => "kibana",
            Role::Haproxy => "haproxy",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An Elasticsearch node role (`node.roles`), as Elasticsearch 8 spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Master,
    VotingOnly,
    Data,
    DataContent,
    DataHot,
    DataWarm,
    DataCold,
    DataFrozen,
    Ingest,
    RemoteClusterClient,
    Transform,
    Ml,
}

impl NodeRole {
    pub const ALL: [NodeRole; 12] = [
        NodeRole::Master,
        NodeRole::VotingOnly,
        NodeRole::Data,
        NodeRole::DataContent,
        NodeRole::DataHot,
        NodeRole::DataWarm,
        NodeRole::DataCold,
        NodeRole::DataFrozen,
        NodeRole::Ingest,
        NodeRole::RemoteClusterClient,
        NodeRole::Transform,
        NodeRole::Ml,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Master => "master",
            NodeRole::VotingOnly => "voting_only",
            NodeRole::Data => "data",
            NodeRole::DataContent => "data_content",
            NodeRole::DataHot => "data_hot",
            NodeRole::DataWarm => "data_warm",
            NodeRole::DataCold => "data_cold",
            NodeRole::DataFrozen => "data_frozen",
            NodeRole::Ingest => "ingest",
            NodeRole::RemoteClusterClient => "remote_cluster_client",
            NodeRole::Transform => "transform",
            NodeRole::Ml => "ml",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// Whether a node with this role holds shard data.
    pub fn holds_data(self) -> bool {
        matches!(
            self,
            NodeRole::Data
                | NodeRole::DataContent
                | NodeRole::DataHot
                | NodeRole::DataWarm
                | NodeRole::DataCold
                | NodeRole::DataFrozen
        )
    }
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A size in bytes, written in the inventory the way `jvm.options` writes heap
/// sizes: `512m`, `2g`, `31g` (also `k`, `t`; a bare number is bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const MIB: u64 = 1024 * 1024;
    pub const GIB: u64 = 1024 * Self::MIB;

    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let lower = value.to_ascii_lowercase();
        let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => lower.split_at(i),
            None => (lower.as_str(), ""),
        };
        let multiplier: u64 = match unit {
            "" | "b" => 1,
            "k" | "kb" => 1024,
            "m" | "mb" => Self::MIB,
            "g" | "gb" => Self::GIB,
            "t" | "tb" => 1024 * Self::GIB,
            _ => {
                return Err(format!(
                    "size {value:?} has an unknown unit {unit:?} (use k, m, g or t)"
                ));
            }
        };
        let number: u64 = digits.parse().map_err(|_| {
            format!("size {value:?} must be a whole number followed by k, m, g or t")
        })?;
        number
            .checked_mul(multiplier)
            .filter(|&b| b > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("size {value:?} is out of range"))
    }

    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The size in the largest unit that divides it exactly, as the JVM flags want
    /// it: `4g`, `1536m`.
    pub fn jvm(self) -> String {
        for (unit, size) in [
            ("t", 1024 * Self::GIB),
            ("g", Self::GIB),
            ("m", Self::MIB),
            ("k", 1024),
        ] {
            if self.0.is_multiple_of(size) {
                return format!("{}{unit}", self.0 / size);
            }
        }
        self.0.to_string()
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.jvm())
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.jvm())
    }
}

/// The whole inventory, validated, with defaults merged into every host.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file this was loaded from (diagnostics name it; relative paths in the
    /// inventory were resolved against its directory).
    pub source: PathBuf,
    pub cluster: Cluster,
    /// Hosts in file order. Order matters: it decides CARP advskew and epair numbers.
    pub hosts: Vec<Host>,
    /// Template override directory (`templates:` in the inventory), resolved.
    pub templates: Option<PathBuf>,
}

impl Inventory {
    /// Every jail with the host that carries it, in file order.
    pub fn jails(&self) -> impl Iterator<Item = (&Host, &Jail)> {
        self.hosts
            .iter()
            .flat_map(|h| h.jails.iter().map(move |j| (h, j)))
    }

    /// Every jail of one role with its host, in file order.
    pub fn jails_with_role(&self, role: Role) -> impl Iterator<Item = (&Host, &Jail)> {
        self.jails().filter(move |(_, j)| j.role == role)
    }

    pub fn find_jail(&self, name: &str) -> Option<(&Host, &Jail)> {
        self.jails().find(|(_, j)| j.name.as_str() == name)
    }

    /// The heap of an Elasticsearch jail: the cluster's explicit `heap`, else half
    /// the jail's `memory` (whole MiB, at most [`MAX_DEFAULT_HEAP`]), else 1g.
    pub fn heap(&self, jail: &Jail) -> ByteSize {
        if let Some(heap) = self.cluster.elasticsearch.heap {
            return heap;
        }
        match jail.memory {
            Some(memory) => {
                let half_in_mib = memory.bytes() / 2 / ByteSize::MIB * ByteSize::MIB;
                ByteSize(half_in_mib.clamp(ByteSize::MIB, MAX_DEFAULT_HEAP.bytes()))
            }
            None => ByteSize(ByteSize::GIB),
        }
    }
}

/// The largest heap haelk derives by itself: below the ~26-31 GB where the JVM
/// loses compressed object pointers.
pub const MAX_DEFAULT_HEAP: ByteSize = ByteSize(26 * ByteSize::GIB);

#[derive(Debug, Clone)]
pub struct Cluster {
    /// `cluster.name`; also names things on disk.
    pub name: Name,
    pub elasticsearch: ElasticsearchConfig,
    pub kibana: KibanaConfig,
    pub haproxy: HaproxyConfig,
    /// One virtual IP per fronted service, keyed by the service's role.
    pub vips: BTreeMap<Role, Vip>,
    pub carp: Carp,
    pub snapshots: Option<Snapshots>,
}

#[derive(Debug, Clone)]
pub struct ElasticsearchConfig {
    pub package: String,
    /// Explicit heap; when absent the heap is derived from each jail's memory.
    pub heap: Option<ByteSize>,
    pub http_port: u16,
    pub transport_port: u16,
    /// Extra `elasticsearch.yml` keys (flat dotted keys), merged over haelk's own.
    pub settings: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct KibanaConfig {
    pub package: String,
    pub port: u16,
    /// Secret file with the shared encryption key (>= 32 characters); resolved path.
    pub encryption_key_file: PathBuf,
    /// Extra `kibana.yml` keys (flat dotted keys).
    pub settings: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct HaproxyConfig {
    pub package: String,
}

#[derive(Debug, Clone)]
pub struct Vip {
    pub address: Ipv4Addr,
    pub vhid: u8,
    pub port: u16,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Carp {
    /// Interface inside the haproxy jails that carries the VIPs (`vnet0`).
    pub interface: String,
    /// Secret file with the CARP password; resolved path.
    pub password_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Snapshots {
    pub repository: String,
    /// Absolute path inside the jails, shared by every master and data node.
    pub path: PathBuf,
    pub schedule: String,
    pub retention: Retention,
}

#[derive(Debug, Clone)]
pub struct Retention {
    pub expire_after: String,
    pub min_count: u32,
    pub max_count: u32,
}

/// A physical FreeBSD host with its settings (host values over `defaults`).
#[derive(Debug, Clone)]
pub struct Host {
    pub name: Name,
    /// Where ssh connects: a DNS name or an address.
    pub address: String,
    pub ssh: Ssh,
    pub zfs: Zfs,
    pub jail_defaults: JailDefaults,
    /// Jails in file order.
    pub jails: Vec<Jail>,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Ssh {
    pub user: String,
    pub port: u16,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// `ProxyJump` destination, `[user@]host[:port]`.
    pub jump: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Zfs {
    /// Parent dataset of one dataset per jail, e.g. `zroot/jails`.
    pub dataset: String,
    /// Where the parent is mounted; jail roots are `MOUNTPOINT/JAILNAME`.
    pub mountpoint: PathBuf,
    /// The `compression` property (`lz4` on FreeBSD; zfs-fuse lacks lz4).
    pub compression: String,
}

#[derive(Debug, Clone)]
pub struct JailDefaults {
    pub release: String,
    /// `base.txz` the jail roots are extracted from (a path on the host).
    pub base: PathBuf,
    pub bridge: String,
    /// The host's interface on the jails' network (`em0`), which rc.conf adds to
    /// the bridge; `None`: the bridge must already exist on the host.
    pub uplink: Option<String>,
    pub netmask: u8,
    pub gateway: Ipv4Addr,
    /// The jails' resolvers for their `/etc/resolv.conf`; empty: each jail gets a
    /// copy of its host's `/etc/resolv.conf`.
    pub nameservers: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone)]
pub struct Jail {
    pub name: Name,
    pub role: Role,
    pub ip: Ipv4Addr,
    /// Haproxy jails only: the role whose VIP they serve (a key of `vips`).
    pub fronts: Option<Role>,
    /// Elasticsearch jails only; defaults to `[master, data]`.
    pub node_roles: Vec<NodeRole>,
    /// Memory the jail may use; Elasticsearch heap defaults to half of it.
    pub memory: Option<ByteSize>,
    /// Explicit epair number; otherwise allocated in file order per host.
    pub epair: Option<u16>,
    /// Explicit CARP advskew for a haproxy jail; otherwise derived from file order.
    pub advskew: Option<u8>,
    pub location: Location,
}

impl Jail {
    pub fn is_master_eligible(&self) -> bool {
        self.role == Role::Elasticsearch && self.node_roles.contains(&NodeRole::Master)
    }

    pub fn is_voting_only(&self) -> bool {
        self.is_master_eligible() && self.node_roles.contains(&NodeRole::VotingOnly)
    }

    pub fn holds_data(&self) -> bool {
        self.role == Role::Elasticsearch && self.node_roles.iter().any(|r| r.holds_data())
    }
}

/// The strict majority of `n` voters: the one quorum computation (lint's
/// quorum rules and the playbook's rolling-restart check use it).
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The network and broadcast addresses of `ip`'s subnet with prefix length
/// `netmask` (0 to 32): the one subnet computation.
pub fn subnet(ip: std::net::Ipv4Addr, netmask: u8) -> (std::net::Ipv4Addr, std::net::Ipv4Addr) {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(netmask.min(32)))
        .unwrap_or(0);
    let network = u32::from(ip) & mask;
    (
        std::net::Ipv4Addr::from(network),
        std::net::Ipv4Addr::from(network | !mask),
    )
}

/// Whether `candidate` is in the subnet of `ip` with prefix length `netmask`.
pub fn in_subnet(candidate: std::net::Ipv4Addr, ip: std::net::Ipv4Addr, netmask: u8) -> bool {
    subnet(candidate, netmask).0 == subnet(ip, netmask).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract_pattern() {
        for good in [
            "ab",
            "8f14-jmm",
            "d12c-elasticsearch",
            "a.b_c-d",
            &"a".repeat(32),
        ] {
            assert!(Name::new(good).is_ok(), "{good} should be accepted");
        }
        for bad in [
            "a",
            "-ab",
            "ab-",
            "Ab",
            "a b",
            "a;b",
            "a$(x)",
            "ab\n",
            &"a".repeat(33),
            "",
            "é1",
        ] {
            assert!(Name::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn byte_sizes_parse_and_print_in_jvm_units() {
        assert_eq!(ByteSize::parse("2g").unwrap().bytes(), 2 * ByteSize::GIB);
        assert_eq!(ByteSize::parse("1536M").unwrap().jvm(), "1536m");
        assert_eq!(ByteSize::parse("1024m").unwrap().jvm(), "1g");
        assert!(ByteSize::parse("2x").is_err());
        assert!(ByteSize::parse("g").is_err());
        assert!(ByteSize::parse("0").is_err());
        assert!(ByteSize::parse("99999999999t").is_err());
    }
}
