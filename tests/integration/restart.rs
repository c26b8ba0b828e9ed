//! Jails whose `/etc/rc` starts their services on its own (issue 12): migrate-node
//! onto a target whose jail starts its service itself (a host that boots again
//! after a power cut is `failover.rs`). (A jail stopped by hand whose config changed is covered by
//! the plan test `a_stopped_jail_with_its_packages_gets_every_file_before_its_rc_starts_the_service`.)
//! Each must end green through `haelk` with no failed step: the files go into
//! the jail root before the jail starts, and the service start tolerates the
//! service rc already started.

use crate::labkit::{ES_VIP, EditedInventory, deploy, haelk, http, lab, on_host, text};

fn assert_green_with(nodes: u64) {
    let (_, body) = http(ES_VIP, "GET", "/_cluster/health", None).expect("health");
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["status"], "green", "{body}");
    assert_eq!(health["number_of_nodes"], nodes, "{body}");
}

/// A deploy that exits 0 and reports no failed step.
pub fn deploy_without_failure(inventory: &str) -> String {
    let output = haelk(&["deploy", inventory]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    // The summary table's header names a `failed` column: look at the outcome
    // line, the hosts' progress lines and the errors instead.
    assert!(printed.contains("deploy ok:"), "{printed}");
    let failure =
        |line: &str| line.trim_end().ends_with(": failed") || line.starts_with("haelk: error");
    assert!(!printed.lines().any(failure), "{printed}");
    assert!(!printed.contains("already running"), "{printed}");
    printed
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn migrate_node_onto_a_target_whose_jail_starts_its_service_itself_succeeds() {
    let _lab = lab();
    crate::labkit::reset_lab();
    deploy("inventories/lab.yaml");
    let inventory = EditedInventory::new(str::to_owned);
    let output = haelk(&[
        "migrate-node",
        "lab3-elasticsearch",
        "--to",
        "lab4",
        "-i",
        &inventory.path(),
    ]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(!printed.contains("already running"), "{printed}");
    assert!(
        printed.contains("rejoined the cluster from lab4"),
        "{printed}"
    );
    let jails = on_host("lab4", "jls name");
    assert!(jails.lines().any(|j| j == "lab3-elasticsearch"), "{jails}");
    assert_green_with(3);
    // The moved inventory agrees with the hosts.
    let dry = haelk(&[
        "deploy",
        &inventory.path(),
        "--dry-run",
        "--detailed-exitcode",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    crate::labkit::reset_lab();
}
