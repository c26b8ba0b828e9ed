//! Test support shared by the unit tests: the repository's inventories, loaded
//! through the real loader (so no test works from a hand-built copy that could
//! drift from the files), and the facts of a host that is exactly as desired.

use std::collections::BTreeMap;
use std::path::Path;

use crate::desired::{HostState, OnChange};
use crate::facts::{DatasetFacts, FileFacts, HostFacts, JailFacts, PoolFacts};
use crate::inventory::Inventory;

/// `inventories/NAME`, loaded and validated.
pub fn inventory(name: &str) -> Inventory {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inventories")
        .join(name);
    crate::inventory::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `inventories/example.yaml`: three hosts, lints clean.
pub fn example() -> Inventory {
    inventory("example.yaml")
}

/// `inventories/lab.yaml`: the example's shape on the lab's loopback addresses.
pub fn lab() -> Inventory {
    inventory("lab.yaml")
}

/// The facts of a host that is exactly as desired.
pub fn converged_facts(host: &HostState) -> HostFacts {
    let datasets = host
        .datasets
        .iter()
        .map(|d| {
            let prop = |k: &str| d.properties.get(k).cloned().unwrap_or_default();
            let facts = DatasetFacts {
                mountpoint: prop("mountpoint"),
                compression: prop("compression"),
                cluster_uuid: Some("uuid".into()),
            };
            (d.name.clone(), facts)
        })
        .collect();
    let files = host
        .all_files()
        .map(|f| {
            let facts = FileFacts {
                content: f.content.clone(),
                mode: f.mode,
                uid: 0,
                gid: 0,
                wanted_uid: Some(0),
                wanted_gid: Some(0),
            };
            (f.path.clone(), facts)
        })
        .collect();
    let jails = host
        .jails
        .iter()
        .map(|j| {
            let facts = JailFacts {
                running: true,
                populated: true,
                packages: j
                    .packages
                    .iter()
                    .map(|p| (p.clone(), "8.17.4".into()))
                    .collect(),
                services: j.services.iter().map(|s| (s.clone(), true)).collect(),
                pending: OnChange::Nothing,
            };
            (j.name.to_string(), facts)
        })
        .collect();
    let some = |map: &BTreeMap<String, String>| -> BTreeMap<String, Option<String>> {
        map.iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect()
    };
    HostFacts {
        freebsd_version: "14.3-RELEASE".into(),
        pool: Some(PoolFacts {
            name: host.host.to_string(),
            size: "1016M".into(),
            allocated: "3.2M".into(),
            free: "1013M".into(),
        }),
        datasets,
        carp_loaded: true,
        interfaces: host
            .bridge
            .iter()
            .flat_map(|b| [Some(b.name.clone()), b.uplink.clone()])
            .flatten()
            .chain(["lo0".to_owned()])
            .collect(),
        rc_conf: some(&host.rc_conf)
            .into_iter()
            .chain(
                host.rc_conf_words
                    .iter()
                    .map(|(k, words)| (k.clone(), Some(words.join(" ")))),
            )
            .collect(),
        loader_conf: some(&host.loader_conf),
        files,
        jails,
    }
}
