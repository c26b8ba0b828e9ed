//! Test-only fluent builder of [`Inventory`] values, so rule tests read like the
//! topology they describe:
//!
//! ```ignore
//! inv()
//!     .host("a", |h| h.es("a-es", [Master, Data]).memory("8g"))
//!     .host("b", |h| h.es("b-es", [Master, Data]))
//!     .build()
//! ```
//!
//! [`example`] starts from `inventories/example.yaml` itself, so a test that edits
//! it describes its change from the real example. Jail IPs are allocated from
//! 10.0.0.100 upwards and host addresses from 192.0.2.1 unless given; every host
//! and jail gets its own line number, so tests can check where a diagnostic points.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::inventory::*;

pub(crate) use crate::inventory::NodeRole::{Data, Master, VotingOnly};

pub(crate) struct InventoryBuilder {
    inventory: Inventory,
    next_line: u32,
    next_jail_ip: u32,
}

pub(crate) struct HostBuilder {
    host: Host,
    next_line: u32,
    next_jail_ip: u32,
}

/// An inventory with a cluster, no VIPs and no hosts.
pub(crate) fn inv() -> InventoryBuilder {
    let cluster = Cluster {
        name: Name::new("ha-elk").unwrap(),
        elasticsearch: ElasticsearchConfig {
            package: "elasticsearch8".into(),
            heap: None,
            http_port: 9200,
            transport_port: 9300,
            settings: BTreeMap::new(),
        },
        kibana: KibanaConfig {
            package: "kibana8".into(),
            port: 5601,
            encryption_key_file: "secrets/kibana.key".into(),
            settings: BTreeMap::new(),
        },
        haproxy: HaproxyConfig {
            package: "haproxy".into(),
        },
        vips: BTreeMap::new(),
        carp: Carp {
            interface: "vnet0".into(),
            password_file: "secrets/carp.pass".into(),
        },
        snapshots: None,
    };
    InventoryBuilder {
        inventory: Inventory {
            source: PathBuf::from("test.yaml"),
            cluster,
            hosts: Vec::new(),
            templates: None,
        },
        next_line: 1,
        next_jail_ip: u32::from(Ipv4Addr::new(10, 0, 0, 100)),
    }
}

/// `inventories/example.yaml` as the loader reads it - two hosts with the ha-elk
/// stack each and a voting-only tiebreaker on a third - ready to be edited.
pub(crate) fn example() -> InventoryBuilder {
    let inventory = crate::testing::example();
    // Whatever a test adds goes after the file's last line.
    let last_line = inventory
        .jails()
        .map(|(_, j)| j.location.line)
        .chain(inventory.hosts.iter().map(|h| h.location.line))
        .chain(inventory.cluster.vips.values().map(|v| v.location.line))
        .max()
        .unwrap_or(0);
    InventoryBuilder {
        inventory,
        next_line: last_line + 1,
        next_jail_ip: u32::from(Ipv4Addr::new(10, 0, 0, 100)),
    }
}

impl InventoryBuilder {
    pub(crate) fn vip(mut self, role: Role, address: &str, vhid: u8, port: u16) -> Self {
        let location = self.line();
        self.inventory.cluster.vips.insert(
            role,
            Vip {
                address: address.parse().unwrap(),
                vhid,
                port,
                location,
            },
        );
        self
    }

    pub(crate) fn without_vip(mut self, role: Role) -> Self {
        self.inventory.cluster.vips.remove(&role);
        self
    }

    pub(crate) fn host(
        mut self,
        name: &str,
        build: impl FnOnce(HostBuilder) -> HostBuilder,
    ) -> Self {
        let location = self.line();
        let number = self.inventory.hosts.len() as u8 + 1;
        let builder = HostBuilder {
            host: Host {
                name: Name::new(name).unwrap(),
                address: Ipv4Addr::new(192, 0, 2, number).to_string(),
                ssh: Ssh {
                    user: "root".into(),
                    port: 22,
                    identity_file: None,
                    known_hosts: None,
                    jump: None,
                },
                zfs: Zfs {
                    dataset: "zroot/jails".into(),
                    mountpoint: "/usr/local/jails".into(),
                    compression: "lz4".into(),
                },
                jail_defaults: JailDefaults {
                    release: "14.3-RELEASE".into(),
                    base: "/usr/local/jails/media/14.3-RELEASE-base.txz".into(),
                    bridge: "bridge0".into(),
                    uplink: Some("em0".into()),
                    netmask: 24,
                    gateway: Ipv4Addr::new(10, 0, 0, 1),
                    nameservers: Vec::new(),
                },
                jails: Vec::new(),
                location,
            },
            next_line: self.next_line,
            next_jail_ip: self.next_jail_ip,
        };
        let built = build(builder);
        self.next_line = built.next_line;
        self.next_jail_ip = built.next_jail_ip;
        self.inventory.hosts.push(built.host);
        self
    }

    /// Changes an existing host (of [`example`], say).
    pub(crate) fn edit_host(
        mut self,
        name: &str,
        edit: impl FnOnce(HostBuilder) -> HostBuilder,
    ) -> Self {
        let index = self
            .inventory
            .hosts
            .iter()
            .position(|h| h.name.as_str() == name)
            .unwrap_or_else(|| panic!("no host {name}"));
        let host = self.inventory.hosts.remove(index);
        let built = edit(HostBuilder {
            host,
            next_line: self.next_line,
            next_jail_ip: self.next_jail_ip,
        });
        self.next_line = built.next_line;
        self.next_jail_ip = built.next_jail_ip;
        self.inventory.hosts.insert(index, built.host);
        self
    }

    /// Changes an existing jail, wherever it is (jail names are unique).
    pub(crate) fn edit_jail(mut self, name: &str, edit: impl FnOnce(&mut Jail)) -> Self {
        let jail = self
            .inventory
            .hosts
            .iter_mut()
            .flat_map(|h| h.jails.iter_mut())
            .find(|j| j.name.as_str() == name)
            .unwrap_or_else(|| panic!("no jail {name}"));
        edit(jail);
        self
    }

    pub(crate) fn without_host(mut self, name: &str) -> Self {
        self.inventory.hosts.retain(|h| h.name.as_str() != name);
        self
    }

    pub(crate) fn heap(mut self, heap: &str) -> Self {
        self.inventory.cluster.elasticsearch.heap = Some(ByteSize::parse(heap).unwrap());
        self
    }

    pub(crate) fn setting(mut self, key: &str, value: serde_json::Value) -> Self {
        self.inventory
            .cluster
            .elasticsearch
            .settings
            .insert(key.into(), value);
        self
    }

    pub(crate) fn without_setting(mut self, key: &str) -> Self {
        self.inventory.cluster.elasticsearch.settings.remove(key);
        self
    }

    pub(crate) fn snapshots(mut self, path: &str) -> Self {
        self.inventory.cluster.snapshots = Some(Snapshots {
            repository: "backups".into(),
            path: path.into(),
            schedule: "0 30 1 * * ?".into(),
            retention: Retention {
                expire_after: "30d".into(),
                min_count: 5,
                max_count: 50,
            },
        });
        self
    }

    pub(crate) fn build(self) -> Inventory {
        self.inventory
    }

    fn line(&mut self) -> Location {
        let location = Location {
            line: self.next_line,
            column: 3,
        };
        self.next_line += 1;
        location
    }
}

impl HostBuilder {
    pub(crate) fn address(mut self, address: &str) -> Self {
        self.host.address = address.into();
        self
    }

    pub(crate) fn ssh_port(mut self, port: u16) -> Self {
        self.host.ssh.port = port;
        self
    }

    pub(crate) fn netmask(mut self, netmask: u8) -> Self {
        self.host.jail_defaults.netmask = netmask;
        self
    }

    pub(crate) fn es<const N: usize>(self, name: &str, roles: [NodeRole; N]) -> Self {
        let mut built = self.jail(name, Role::Elasticsearch);
        built.last().node_roles = roles.to_vec();
        built
    }

    pub(crate) fn kibana(self, name: &str) -> Self {
        self.jail(name, Role::Kibana)
    }

    pub(crate) fn haproxy(self, name: &str, fronts: Role) -> Self {
        let mut built = self.jail(name, Role::Haproxy);
        built.last().fronts = Some(fronts);
        built
    }

    /// Sets the IP of the jail added last.
    pub(crate) fn ip(mut self, ip: &str) -> Self {
        self.last().ip = ip.parse().unwrap();
        self
    }

    /// Sets the memory of the jail added last.
    pub(crate) fn memory(mut self, memory: &str) -> Self {
        self.last().memory = Some(ByteSize::parse(memory).unwrap());
        self
    }

    /// Sets the advskew of the (haproxy) jail added last.
    pub(crate) fn advskew(mut self, advskew: u8) -> Self {
        self.last().advskew = Some(advskew);
        self
    }

    pub(crate) fn without_jail(mut self, name: &str) -> Self {
        self.host.jails.retain(|j| j.name.as_str() != name);
        self
    }

    fn jail(mut self, name: &str, role: Role) -> Self {
        let location = Location {
            line: self.next_line,
            column: 7,
        };
        self.next_line += 1;
        let ip = Ipv4Addr::from(self.next_jail_ip);
        self.next_jail_ip += 1;
        self.host.jails.push(Jail {
            name: Name::new(name).unwrap(),
            role,
            ip,
            fronts: None,
            node_roles: if role == Role::Elasticsearch {
                vec![Master, Data]
            } else {
                Vec::new()
            },
            memory: None,
            epair: None,
            advskew: None,
            location,
        });
        self
    }

    fn last(&mut self) -> &mut Jail {
        self.host.jails.last_mut().expect("add a jail first")
    }
}
