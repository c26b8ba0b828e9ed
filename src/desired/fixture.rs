//! Test fixtures: [`Inventory`] values that mirror `inventories/example.yaml`,
//! built by hand so desired-state and render tests do not depend on the loader.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::inventory::*;

fn name(value: &str) -> Name {
    Name::new(value).unwrap()
}

/// A jail with no optional setting.
pub fn jail(jail_name: &str, role: Role, ip: [u8; 4]) -> Jail {
    Jail {
        name: name(jail_name),
        role,
        ip: Ipv4Addr::from(ip),
        fronts: None,
        node_roles: if role == Role::Elasticsearch {
            vec![NodeRole::Master, NodeRole::Data]
        } else {
            Vec::new()
        },
        memory: None,
        epair: None,
        advskew: None,
        location: Location::default(),
    }
}

fn haproxy(jail_name: &str, fronts: Role, ip: [u8; 4]) -> Jail {
    Jail {
        fronts: Some(fronts),
        ..jail(jail_name, Role::Haproxy, ip)
    }
}

fn elasticsearch(jail_name: &str, ip: [u8; 4], node_roles: Vec<NodeRole>, memory: &str) -> Jail {
    Jail {
        node_roles,
        memory: Some(ByteSize::parse(memory).unwrap()),
        ..jail(jail_name, Role::Elasticsearch, ip)
    }
}

fn host(host_name: &str, address: &str, jails: Vec<Jail>) -> Host {
    Host {
        name: name(host_name),
        address: address.into(),
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
            netmask: 24,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
        },
        jails,
        location: Location::default(),
    }
}

fn inventories_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories")
}

/// `inventories/example.yaml`, as the loader should produce it.
pub fn example() -> Inventory {
    use NodeRole::*;
    let dir = inventories_dir();
    let vip = |a: [u8; 4], vhid, port| Vip {
        address: Ipv4Addr::from(a),
        vhid,
        port,
        location: Location::default(),
    };
    Inventory {
        source: dir.join("example.yaml"),
        cluster: Cluster {
            name: name("ha-elk"),
            elasticsearch: ElasticsearchConfig {
                package: "elasticsearch8".into(),
                heap: None,
                http_port: 9200,
                transport_port: 9300,
                settings: BTreeMap::from([
                    (
                        "action.destructive_requires_name".to_owned(),
                        serde_json::Value::Bool(true),
                    ),
                    (
                        "xpack.security.enabled".to_owned(),
                        serde_json::Value::Bool(false),
                    ),
                ]),
            },
            kibana: KibanaConfig {
                package: "kibana8".into(),
                port: 5601,
                encryption_key_file: dir.join("secrets/EXAMPLE-kibana.key"),
                settings: BTreeMap::new(),
            },
            haproxy: HaproxyConfig {
                package: "haproxy".into(),
            },
            vips: BTreeMap::from([
                (Role::Elasticsearch, vip([10, 0, 0, 10], 1, 9200)),
                (Role::Kibana, vip([10, 0, 0, 20], 2, 5601)),
            ]),
            carp: Carp {
                interface: "vnet0".into(),
                password_file: dir.join("secrets/EXAMPLE-carp.pass"),
            },
            snapshots: None,
        },
        hosts: vec![
            host(
                "8f14-jmm",
                "192.0.2.11",
                vec![
                    haproxy("11e9-haproxy-kibana", Role::Kibana, [10, 0, 0, 21]),
                    jail("8f15-kibana", Role::Kibana, [10, 0, 0, 22]),
                    haproxy(
                        "9fbb-haproxy-elasticsearch",
                        Role::Elasticsearch,
                        [10, 0, 0, 23],
                    ),
                    elasticsearch(
                        "d12c-elasticsearch",
                        [10, 0, 0, 24],
                        vec![Master, Data],
                        "8g",
                    ),
                ],
            ),
            host(
                "11e9-jmm",
                "192.0.2.12",
                vec![
                    haproxy("2a41-haproxy-kibana", Role::Kibana, [10, 0, 0, 25]),
                    jail("2a42-kibana", Role::Kibana, [10, 0, 0, 26]),
                    haproxy(
                        "2a43-haproxy-elasticsearch",
                        Role::Elasticsearch,
                        [10, 0, 0, 27],
                    ),
                    elasticsearch(
                        "2a44-elasticsearch",
                        [10, 0, 0, 28],
                        vec![Master, Data],
                        "8g",
                    ),
                ],
            ),
            host(
                "7c3a-tiebreak",
                "192.0.2.13",
                vec![elasticsearch(
                    "7c3a-elasticsearch",
                    [10, 0, 0, 34],
                    vec![Master, VotingOnly],
                    "2g",
                )],
            ),
        ],
        templates: None,
    }
}

/// `inventories/lab.yaml`, as the loader should produce it.
pub fn lab() -> Inventory {
    use NodeRole::*;
    let mut inventory = example();
    inventory.source = inventories_dir().join("lab.yaml");
    inventory.cluster.name = name("ha-elk-lab");
    inventory.cluster.elasticsearch.settings.clear();
    for (role, address) in [
        (Role::Elasticsearch, [127, 0, 30, 10]),
        (Role::Kibana, [127, 0, 30, 20]),
    ] {
        if let Some(vip) = inventory.cluster.vips.get_mut(&role) {
            vip.address = Ipv4Addr::from(address);
        }
    }
    let lab_host = |n: u8, jails: Vec<Jail>| {
        let host_name = format!("lab{n}");
        let mut lab = host(&host_name, &format!("127.0.10.{n}"), jails);
        lab.ssh.identity_file = Some("/var/tmp/haelk-lab/ssh/id_ed25519".into());
        lab.ssh.known_hosts = Some("/var/tmp/haelk-lab/ssh/known_hosts".into());
        lab.zfs = Zfs {
            dataset: format!("{host_name}/jails"),
            mountpoint: format!("/var/tmp/haelk-lab/mnt/{host_name}").into(),
            compression: "on".into(),
        };
        lab.jail_defaults.base = "/var/tmp/haelk-lab/media/14.3-RELEASE-base.txz".into();
        lab.jail_defaults.gateway = Ipv4Addr::new(127, 0, 20, 1);
        lab
    };
    let pair = |n: u8| {
        lab_host(
            n,
            vec![
                haproxy(
                    &format!("lab{n}-haproxy-kibana"),
                    Role::Kibana,
                    [127, 0, 20, n * 10 + 1],
                ),
                jail(
                    &format!("lab{n}-kibana"),
                    Role::Kibana,
                    [127, 0, 20, n * 10 + 2],
                ),
                haproxy(
                    &format!("lab{n}-haproxy-es"),
                    Role::Elasticsearch,
                    [127, 0, 20, n * 10 + 3],
                ),
                elasticsearch(
                    &format!("lab{n}-elasticsearch"),
                    [127, 0, 20, n * 10 + 4],
                    vec![Master, Data],
                    "1g",
                ),
            ],
        )
    };
    inventory.hosts = vec![
        pair(1),
        pair(2),
        lab_host(
            3,
            vec![elasticsearch(
                "lab3-elasticsearch",
                [127, 0, 20, 34],
                vec![Master, VotingOnly],
                "512m",
            )],
        ),
    ];
    inventory
}
