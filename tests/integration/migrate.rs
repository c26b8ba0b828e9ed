//! `haelk migrate-node` against the local lab: an Elasticsearch node and a Kibana
//! instance move to the spare host lab4 while clients keep using the VIPs; a
//! move that would break the HA design is refused; a move killed at any step
//! finishes when run again and never leaves the cluster with allocation limited
//! or a node excluded.
//!
//! Each test works on a copy of inventories/lab.yaml (migrate-node rewrites it)
//! and ends by taking the lab back to empty hosts, since the lab then no longer
//! matches inventories/lab.yaml.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::labkit::{
    Client, ES_VIP, EditedInventory, KIBANA_VIP, deploy, document_count, haelk, http, lab, on_host,
    repo, reset_lab, stdout, text,
};

/// A copy of the lab inventory that migrate-node may rewrite.
fn inventory_copy() -> EditedInventory {
    EditedInventory::new(str::to_owned)
}

fn migrate(inventory: &EditedInventory, jail: &str, to: &str) -> std::process::Output {
    haelk(&["migrate-node", jail, "--to", to, "-i", &inventory.path()])
}

/// Which host runs `jail` now, by asking every lab host.
fn running_on(jail: &str) -> Vec<String> {
    crate::labkit::HOSTS
        .iter()
        .filter(|host| on_host(host, "jls name").lines().any(|l| l == jail))
        .map(|host| host.to_string())
        .collect()
}

/// Allocation and exclusions as the cluster has them: all must be default.
fn assert_cluster_settings_default() {
    let (_, body) =
        http(ES_VIP, "GET", "/_cluster/settings?flat_settings=true", None).expect("settings");
    let settings: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(settings["persistent"], serde_json::json!({}), "{body}");
    let (_, body) = http(ES_VIP, "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination.voting_config_exclusions", None).expect("state");
    assert!(
        !body.contains("node_name"),
        "a voting exclusion is left: {body}"
    );
}

fn inventory_host_of(inventory: &EditedInventory, jail: &str) -> String {
    let loaded = haelk::inventory::load(std::path::Path::new(&inventory.path()))
        .expect("the rewritten inventory loads");
    let (host, _) = loaded
        .find_jail(jail)
        .expect("the jail is still in the inventory");
    host.name.to_string()
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn an_elasticsearch_node_moves_to_another_host_without_losing_a_document() {
    let _lab = lab();
    // From empty hosts: an earlier failed run may have left a moved jail behind.
    reset_lab();
    deploy("inventories/lab.yaml");
    let inventory = inventory_copy();
    let index = format!("migrate-{}", std::process::id());
    let client = Client::start(index.clone());
    std::thread::sleep(Duration::from_secs(1));
    let output = migrate(&inventory, "lab1-elasticsearch", "lab4");
    let (written, failures) = client.finish();
    let message = text(&output);
    assert_eq!(output.status.code(), Some(0), "{message}");
    assert!(
        failures.is_empty(),
        "failed requests during the move: {failures:#?}"
    );
    assert!(
        written > 10,
        "the client kept writing ({written} documents)"
    );
    assert_eq!(document_count(&index), written, "no document lost");
    assert!(
        message.contains("phase 1: sending lab1/jails/lab1-elasticsearch@haelk-migrate-base"),
        "{message}"
    );
    assert!(message.contains("downtime: "), "{message}");
    assert!(
        message.contains("rejoined the cluster from lab4"),
        "{message}"
    );
    assert_eq!(running_on("lab1-elasticsearch"), ["lab4"]);
    let (_, health) = http(ES_VIP, "GET", "/_cluster/health", None).expect("health");
    let health: serde_json::Value = serde_json::from_str(&health).expect("json");
    assert_eq!(health["status"], "green");
    assert_eq!(health["number_of_nodes"], 3);
    assert_cluster_settings_default();
    assert_eq!(inventory_host_of(&inventory, "lab1-elasticsearch"), "lab4");
    // The rewritten inventory agrees with the hosts: deploy has nothing to do.
    let dry = haelk(&[
        "deploy",
        &inventory.path(),
        "--dry-run",
        "--detailed-exitcode",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    // And a second run is a no-op.
    let again = migrate(&inventory, "lab1-elasticsearch", "lab4");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(stdout(&again).contains("already on lab4: nothing to do"));
    reset_lab();
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_kibana_instance_moves_while_the_kibana_vip_keeps_answering() {
    let _lab = lab();
    // From empty hosts: an earlier failed run may have left a moved jail behind.
    reset_lab();
    deploy("inventories/lab.yaml");
    let inventory = inventory_copy();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let poller = std::thread::spawn(move || {
        let mut failures = Vec::new();
        let mut requests = 0;
        while !flag.load(Ordering::Relaxed) {
            requests += 1;
            match http(KIBANA_VIP, "GET", "/api/status", None) {
                Ok((200, _)) => {}
                other => failures.push(format!("{other:?}")),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (requests, failures)
    });
    let output = haelk(&[
        "migrate-node",
        "lab1-kibana",
        "--to",
        "lab4",
        "-i",
        &inventory.path(),
        "--destroy-source",
    ]);
    stop.store(true, Ordering::Relaxed);
    let (requests, failures) = poller.join().expect("poller");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {failures:#?}",
        failures.len()
    );
    assert_eq!(running_on("lab1-kibana"), ["lab4"]);
    assert!(text(&output).contains("lab1-kibana available on lab4"));
    // --destroy-source: the source dataset is gone.
    assert!(text(&output).contains("lab1/jails/lab1-kibana destroyed"));
    let datasets = on_host("lab1", "zfs list -H -o name -r lab1/jails");
    assert!(!datasets.contains("lab1-kibana"), "{datasets}");
    assert_eq!(inventory_host_of(&inventory, "lab1-kibana"), "lab4");
    reset_lab();
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_move_that_breaks_high_availability_is_refused_with_the_lint_message() {
    let _lab = lab();
    // From empty hosts: an earlier failed run may have left a moved jail behind.
    reset_lab();
    deploy("inventories/lab.yaml");
    let inventory = inventory_copy();
    let before = std::fs::read_to_string(inventory.path()).expect("inventory");
    let output = migrate(&inventory, "lab1-kibana", "lab2");
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("moving lab1-kibana to lab2 would leave the design not highly available"),
        "{message}"
    );
    assert!(
        message.contains("error[HA"),
        "the lint diagnostics are shown: {message}"
    );
    assert_eq!(running_on("lab1-kibana"), ["lab1"], "nothing moved");
    assert_eq!(
        std::fs::read_to_string(inventory.path()).expect("inventory"),
        before
    );
}

/// Lines migrate-node prints as it passes each stage (TARGET: the host it moves
/// to): the test kills it at each.
const STAGES: [&str; 5] = [
    "phase 1: sending",
    "quiesced:",
    "phase 2: stopping",
    "starting lab1-elasticsearch on TARGET",
    "rejoined the cluster",
];

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_move_killed_at_any_stage_finishes_when_run_again() {
    let _lab = lab();
    reset_lab();
    deploy("inventories/lab.yaml");
    let inventory = inventory_copy();
    // Back and forth between lab1 and the spare lab4, one stage per move: each move
    // starts from the state the finished one left (its source destroyed), as an
    // operator's next move would, and no fresh deploy is needed in between.
    for (round, stage) in STAGES.iter().enumerate() {
        let to = if round % 2 == 0 { "lab4" } else { "lab1" };
        let stage = stage.replace("TARGET", to);
        let move_args = [
            "migrate-node",
            "lab1-elasticsearch",
            "--to",
            to,
            "-i",
            &inventory.path(),
            "--destroy-source",
        ];
        let index = format!("killed-{round}");
        let client = Client::start(index.clone());
        let mut child = Command::new(env!("CARGO_BIN_EXE_haelk"))
            .args(move_args)
            .arg("--no-progress")
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("haelk runs");
        let mut seen = String::new();
        for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
            let line = line.expect("line");
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(&stage) {
                child.kill().expect("kill");
                break;
            }
        }
        let _ = child.wait();
        assert!(seen.contains(&stage), "never reached `{stage}`: {seen}");

        let output = haelk(&move_args);
        let (written, failures) = client.finish();
        assert_eq!(
            output.status.code(),
            Some(0),
            "after a kill at `{stage}`: {}",
            text(&output)
        );
        assert_eq!(
            running_on("lab1-elasticsearch"),
            [to],
            "after a kill at `{stage}`"
        );
        assert_cluster_settings_default();
        assert_eq!(
            document_count(&index),
            written,
            "after a kill at `{stage}`: no document lost"
        );
        // Killed with the node stopped, the client sees failures only while
        // nothing serves its shard copies: that is the downtime, not a loss.
        let _ = failures;
    }
    reset_lab();
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_drain_the_other_data_nodes_cannot_absorb_is_refused_before_anything_moves() {
    let _lab = lab();
    reset_lab();
    deploy("inventories/lab.yaml");
    // Two data nodes, one replica: lab1's copies have nowhere else to go.
    let (status, body) = http(
        ES_VIP,
        "PUT",
        "/two-copies",
        Some(r#"{"settings":{"number_of_shards":1,"number_of_replicas":1}}"#),
    )
    .expect("create index");
    assert_eq!(status, 200, "{body}");
    let inventory = inventory_copy();
    let output = haelk(&[
        "migrate-node",
        "lab1-elasticsearch",
        "--to",
        "lab4",
        "-i",
        &inventory.path(),
        "--strategy",
        "drain",
    ]);
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("cannot drain lab1-elasticsearch: shard 0 of index two-copies has 2 copies and only 1 other data node can hold one each"),
        "{message}"
    );
    assert_eq!(running_on("lab1-elasticsearch"), ["lab1"], "nothing moved");
    assert_cluster_settings_default();
    reset_lab();
}

/// No lab: migrate-node renders the target with `--templates` as deploy does, so
/// a broken override is refused - naming the file - before any host is touched.
#[test]
fn migrate_node_renders_the_target_with_the_templates_given() {
    let templates = tempfile::tempdir().unwrap();
    let broken = templates.path().join("kibana.yml.tera");
    std::fs::write(&broken, "server.name: {{ jail.name\n").unwrap();
    let output = haelk(&[
        "migrate-node",
        "lab1-kibana",
        "--to",
        "lab4",
        "-i",
        "inventories/lab.yaml",
        "--templates",
        &templates.path().display().to_string(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&broken.display().to_string()),
        "the error names the template: {stderr}"
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
}
