//! The pure half of a migration: which jail moves where, the inventory after the
//! move (linted: a move must not leave the design less than highly available),
//! whether the jail's address can live on the target, and the steps in order.

use std::net::Ipv4Addr;

use crate::inventory::{Host, Inventory, Jail, Role};
use crate::lint::{self, Report};

/// How an Elasticsearch node's data moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Strategy {
    /// Keep the shards on the node: allocation to primaries and a flush, then the
    /// dataset moves with the data and the node comes back with its shards
    /// (recovery replays only what changed). The default: the shortest, with the
    /// node's replicas missing only for the phase-2 downtime.
    #[default]
    Keep,
    /// Move every shard off the node first (`allocation.exclude._name`, and a
    /// voting exclusion for a master-eligible node), then move an empty node:
    /// full redundancy the whole time, at the cost of copying the data twice
    /// within the cluster.
    Drain,
}

/// A migration that passed every offline check.
#[derive(Debug, Clone)]
pub struct Migration {
    pub jail: Jail,
    pub source: Host,
    pub target: Host,
    /// `SOURCE_PARENT/JAIL` and `TARGET_PARENT/JAIL`.
    pub source_dataset: String,
    pub target_dataset: String,
    /// The inventory as it will be after the move.
    pub moved: Inventory,
    pub strategy: Strategy,
}

/// Why a migration is refused before anything is touched.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no jail {0} in the inventory")]
    UnknownJail(String),
    #[error("no host {0} in the inventory")]
    UnknownHost(String),
    #[error("{jail} is already on {host}")]
    AlreadyThere { jail: String, host: String },
    #[error(
        "{jail}'s address {ip} is not in {host}'s jail network {network}/{netmask} (gateway {gateway}): it cannot move there"
    )]
    AddressCannotMove {
        jail: String,
        ip: Ipv4Addr,
        host: String,
        network: Ipv4Addr,
        netmask: u8,
        gateway: Ipv4Addr,
    },
    #[error("moving {jail} to {host} would leave the design not highly available:\n{report}")]
    NotHighlyAvailable {
        jail: String,
        host: String,
        report: String,
    },
}

/// Plans moving `jail` to host `to`.
pub fn plan(
    inventory: &Inventory,
    jail: &str,
    to: &str,
    strategy: Strategy,
) -> Result<Migration, Refusal> {
    let (source, found) = inventory
        .find_jail(jail)
        .ok_or_else(|| Refusal::UnknownJail(jail.to_owned()))?;
    let target = inventory
        .hosts
        .iter()
        .find(|h| h.name.as_str() == to)
        .ok_or_else(|| Refusal::UnknownHost(to.to_owned()))?;
    if source.name == target.name {
        return Err(Refusal::AlreadyThere {
            jail: jail.to_owned(),
            host: to.to_owned(),
        });
    }
    let defaults = &target.jail_defaults;
    if !crate::inventory::in_subnet(found.ip, defaults.gateway, defaults.netmask) {
        return Err(Refusal::AddressCannotMove {
            jail: jail.to_owned(),
            ip: found.ip,
            host: to.to_owned(),
            network: crate::inventory::subnet(defaults.gateway, defaults.netmask).0,
            netmask: defaults.netmask,
            gateway: defaults.gateway,
        });
    }
    let moved = moved_inventory(inventory, jail, to);
    let report: Report = lint::lint(&moved);
    if report.has_errors() {
        return Err(Refusal::NotHighlyAvailable {
            jail: jail.to_owned(),
            host: to.to_owned(),
            report: report.human(&inventory.source),
        });
    }
    Ok(Migration {
        jail: found.clone(),
        source_dataset: format!("{}/{}", source.zfs.dataset, jail),
        target_dataset: format!("{}/{}", target.zfs.dataset, jail),
        source: source.clone(),
        target: target.clone(),
        moved,
        strategy,
    })
}

/// `inventory` with `jail` taken off its host and appended to `to`'s jails.
pub fn moved_inventory(inventory: &Inventory, jail: &str, to: &str) -> Inventory {
    let mut moved = inventory.clone();
    let mut taken = None;
    for host in &mut moved.hosts {
        if let Some(index) = host.jails.iter().position(|j| j.name.as_str() == jail) {
            taken = Some(host.jails.remove(index));
        }
    }
    if let (Some(taken), Some(host)) = (
        taken,
        moved.hosts.iter_mut().find(|h| h.name.as_str() == to),
    ) {
        host.jails.push(taken);
    }
    moved
}

/// The steps of `migration`, as `--dry-run` prints them.
pub fn steps(migration: &Migration) -> Vec<String> {
    let jail = migration.jail.name.as_str();
    let (source, target) = (
        migration.source.name.as_str(),
        migration.target.name.as_str(),
    );
    let (from, to) = (&migration.source_dataset, &migration.target_dataset);
    let service = migration.jail.role.as_str();
    let mut steps = vec![
        format!(
            "preflight: {target} reachable, its pool holds {from} with room to spare, no {to} yet{}",
            if migration.jail.role == Role::Elasticsearch {
                ", the cluster green"
            } else {
                ""
            }
        ),
        format!(
            "phase 1 (jail keeps running): zfs snapshot {from}@{SNAPSHOT_BASE}; zfs send | zfs recv {to} on {target}"
        ),
    ];
    match (migration.jail.role, migration.strategy) {
        (Role::Elasticsearch, Strategy::Keep) => steps.push(format!(
            "quiesce: cluster.routing.allocation.enable=primaries, POST _flush; {jail} out of every haproxy"
        )),
        (Role::Elasticsearch, Strategy::Drain) => steps.push(format!(
            "drain: cluster.routing.allocation.exclude._name={jail}, wait until it holds no shard{}; {jail} out of every haproxy",
            if migration.jail.is_master_eligible() { ", voting exclusion" } else { "" }
        )),
        (Role::Kibana, _) => steps.push(format!("quiesce: {jail} out of the kibana haproxy backends")),
        (Role::Haproxy, _) => {}
    }
    steps.extend([
        format!("phase 2 (downtime starts): service -j {jail} {service} stop; service jail stop {jail} on {source}"),
        format!("zfs snapshot {from}@{SNAPSHOT_FINAL}; zfs send -i @{SNAPSHOT_BASE} | zfs recv -F {to} on {target}"),
        format!("on {target}: jail.conf, rc.conf, jail_list; service jail start {jail}; service {service} start"),
        format!("verify on {target} (downtime ends): {}", verification(migration.jail.role)),
        "restore: allocation and exclusions back to default, haproxy takes the node again".to_owned(),
        format!("retire on {source}: remove /etc/jail.conf.d/{jail}.conf and {jail} from jail_list; keep {from} (destroy it with --destroy-source)"),
        format!("update the inventory: {jail} under {target}"),
    ]);
    steps
}

fn verification(role: Role) -> &'static str {
    match role {
        Role::Elasticsearch => "the node rejoined, the cluster green",
        Role::Kibana => "Kibana available",
        Role::Haproxy => "every backend server UP",
    }
}

/// The phase-1 snapshot: everything up to it is sent while the jail runs.
pub const SNAPSHOT_BASE: &str = "haelk-migrate-base";
/// The phase-2 snapshot, taken with the jail stopped.
pub const SNAPSHOT_FINAL: &str = "haelk-migrate-final";

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Inventory {
        crate::testing::lab()
    }

    #[test]
    fn a_move_that_puts_both_kibanas_on_one_host_is_refused_with_the_lint_message() {
        let err = plan(&lab(), "lab1-kibana", "lab2", Strategy::Keep).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(
                "moving lab1-kibana to lab2 would leave the design not highly available:"
            ),
            "{message}"
        );
        assert!(message.contains("error["), "{message}");
    }

    #[test]
    fn unknown_names_and_a_move_to_the_same_host_are_refused() {
        assert!(matches!(
            plan(&lab(), "nope", "lab2", Strategy::Keep),
            Err(Refusal::UnknownJail(_))
        ));
        assert!(matches!(
            plan(&lab(), "lab1-kibana", "lab9", Strategy::Keep),
            Err(Refusal::UnknownHost(_))
        ));
        assert_eq!(
            plan(&lab(), "lab1-kibana", "lab1", Strategy::Keep)
                .unwrap_err()
                .to_string(),
            "lab1-kibana is already on lab1"
        );
    }

    #[test]
    fn an_address_outside_the_targets_jail_network_cannot_move() {
        let mut inventory = lab();
        inventory.hosts[2].jail_defaults.gateway = "10.9.0.1".parse().unwrap();
        let message = plan(&inventory, "lab1-kibana", "lab3", Strategy::Keep)
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "lab1-kibana's address 198.51.100.112 is not in lab3's jail network 10.9.0.0/24 (gateway 10.9.0.1): it cannot move there"
        );
    }

    #[test]
    fn the_moved_inventory_has_the_jail_on_the_target_only() {
        let moved = moved_inventory(&lab(), "lab1-kibana", "lab3");
        let names = |host: usize| -> Vec<&str> {
            moved.hosts[host]
                .jails
                .iter()
                .map(|j| j.name.as_str())
                .collect()
        };
        assert_eq!(
            names(0),
            [
                "lab1-haproxy-kibana",
                "lab1-haproxy-es",
                "lab1-elasticsearch"
            ]
        );
        assert_eq!(names(2), ["lab3-elasticsearch", "lab1-kibana"]);
    }

    #[test]
    fn a_valid_move_lists_its_steps() {
        let migration = plan(&lab(), "lab1-kibana", "lab3", Strategy::Keep).unwrap();
        assert_eq!(migration.source_dataset, "lab1/jails/lab1-kibana");
        assert_eq!(migration.target_dataset, "lab3/jails/lab1-kibana");
        let steps = steps(&migration);
        assert!(
            steps[1].contains("zfs snapshot lab1/jails/lab1-kibana@haelk-migrate-base"),
            "{steps:#?}"
        );
        assert!(
            steps[2].contains("out of the kibana haproxy backends"),
            "{steps:#?}"
        );
        assert_eq!(steps.len(), 10);
    }
}
