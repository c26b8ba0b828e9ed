//! `haelk deploy` against the local lab (`lab/labctl up` first; `scripts/test`
//! does it): a fresh deploy, idempotence, a rolling settings change under client
//! load, a connection killed mid-deploy, and the refusal to restart a node of a
//! cluster that is not green.
//!
//! The tests share the lab, so they take [`LAB`] in turn; each starts from a
//! converged lab (or, for the fresh deploy, from an empty one).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::labkit::{
    Client, ES_VIP, EditedInventory, KIBANA_VIP, deploy, document_count, haelk, http, lab, labctl,
    on_host, repo, reset_lab, stdout, text,
};

const ES_NODES: [(&str, &str); 3] = [
    ("lab1", "lab1-elasticsearch"),
    ("lab2", "lab2-elasticsearch"),
    ("lab3", "lab3-elasticsearch"),
];

/// The ES nodes' process ids, by node name (they change on every restart).
fn es_pids() -> Vec<(String, String)> {
    ES_NODES
        .iter()
        .map(|(host, jail)| {
            let pid = on_host(host, &format!("service -j {jail} elasticsearch status"));
            (jail.to_string(), pid.trim().to_owned())
        })
        .collect()
}

/// One Elasticsearch setting more.
fn with_setting() -> EditedInventory {
    EditedInventory::new(|lab| {
        assert!(lab.contains("    package: elasticsearch8\n"));
        lab.replace(
            "    package: elasticsearch8\n",
            "    package: elasticsearch8\n    settings:\n      http.max_content_length: 200mb\n",
        )
    })
}

fn es_yml(host: &str, jail: &str) -> String {
    on_host(
        host,
        &format!(
            "cat /var/tmp/haelk-lab/mnt/{host}/{jail}/usr/local/etc/elasticsearch/elasticsearch.yml"
        ),
    )
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_fresh_deploy_ends_green_and_a_second_run_changes_nothing() {
    let _lab = lab();
    reset_lab();

    let first = deploy("inventories/lab.yaml");
    assert!(
        first.contains("verified: ssh ok · jails 9/9 running · es 3/3 joined · green"),
        "{first}"
    );
    assert!(first.contains("kibana 2/2 available"), "{first}");
    assert!(
        first.contains("haproxy es 2/2 UP, kibana 2/2 UP"),
        "{first}"
    );

    // Requests through both VIPs reach the services.
    let (status, body) = http(ES_VIP, "GET", "/_cluster/health", None).expect("ES VIP");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["status"], "green", "{body}");
    assert_eq!(health["number_of_nodes"], 3, "{body}");
    let (status, body) = http(KIBANA_VIP, "GET", "/api/status", None).expect("Kibana VIP");
    assert_eq!(status, 200, "{body}");
    let kibana: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(kibana["status"]["overall"]["level"], "available", "{body}");

    // The bootstrap is over: recorded on every ES dataset, and the setting that
    // only a first start reads is gone from the files.
    for (host, jail) in ES_NODES {
        let uuid = on_host(
            host,
            &format!("zfs get -H -o value haelk:cluster-uuid {host}/jails/{jail}"),
        );
        assert_ne!(uuid.trim(), "-", "{jail}");
        assert!(
            !es_yml(host, jail).contains("initial_master_nodes"),
            "{jail}"
        );
    }

    // Nothing to do now: the dry run says so with exit 0.
    let dry = haelk(&[
        "deploy",
        "inventories/lab.yaml",
        "--dry-run",
        "--detailed-exitcode",
    ]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(
        stdout(&dry).contains("dry run ok: nothing to do"),
        "{}",
        text(&dry)
    );

    // A second deploy changes nothing and restarts nothing.
    let pids = es_pids();
    let second = deploy("inventories/lab.yaml");
    assert!(second.contains("deploy ok: no changes"), "{second}");
    assert_eq!(es_pids(), pids, "no Elasticsearch node restarted");
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_setting_change_rolls_through_the_nodes_without_failing_a_client() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    let inventory = with_setting();

    // The dry run shows exactly the three files, and exits 2.
    let dry = haelk(&[
        "deploy",
        &inventory.path(),
        "--dry-run",
        "--detailed-exitcode",
    ]);
    assert_eq!(dry.status.code(), Some(2), "{}", text(&dry));
    let listing = stdout(&dry);
    assert_eq!(
        listing.matches("+http.max_content_length").count(),
        3,
        "{listing}"
    );
    assert_eq!(listing.matches("  write ").count(), 3, "{listing}");
    assert!(
        listing.contains("dry run ok: 6 changes pending"),
        "three files, three restarts: {listing}"
    );

    let pids = es_pids();
    // A new index each run: the lab keeps its data between test runs.
    let index = format!("rollout-{}", std::process::id());
    let client = Client::start(index.clone());
    std::thread::sleep(Duration::from_millis(500));
    let output = deploy(&inventory.path());
    let (written, failures) = client.finish();
    assert!(
        failures.is_empty(),
        "failed requests during the rollout: {failures:#?}"
    );
    assert!(
        written > 10,
        "the client kept writing ({written} documents)"
    );
    assert_eq!(document_count(&index), written, "no document lost");

    // Every node restarted, once each, one after the other with a green gate between.
    let after = es_pids();
    for ((node, before), (_, now)) in pids.iter().zip(&after) {
        assert_ne!(before, now, "{node} restarted");
    }
    let rolling: Vec<&str> = output.lines().filter(|l| l.contains("(rolling)")).collect();
    assert_eq!(rolling.len(), 3, "{output}");
    let gates = output
        .lines()
        .filter(|l| l.contains("gate elasticsearch_green: es 3/3 joined · green"))
        .count();
    assert_eq!(gates, 3, "a gate after every node: {output}");
    for (host, jail) in ES_NODES {
        assert!(
            es_yml(host, jail).contains("http.max_content_length: \"200mb\""),
            "{jail}"
        );
    }
    assert!(
        output.contains("deploy ok: 6 changes"),
        "only the three files and their restarts: {output}"
    );
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_rolling_restart_is_refused_while_the_cluster_is_not_green() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    // Two data nodes cannot hold three copies: yellow for as long as it exists.
    let (status, body) = http(
        ES_VIP,
        "PUT",
        "/three-copies",
        Some(r#"{"settings":{"number_of_shards":1,"number_of_replicas":2}}"#),
    )
    .expect("create index");
    assert_eq!(status, 200, "{body}");
    let pids = es_pids();
    let inventory = with_setting();
    let output = haelk(&["deploy", &inventory.path()]);
    let (_, body) = http(ES_VIP, "DELETE", "/three-copies", None).expect("delete index");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("the cluster is yellow"), "{message}");
    assert!(message.contains("refusing to stop a node"), "{message}");
    assert!(
        message.contains("three-copies"),
        "names the shard: {message}"
    );
    assert_eq!(es_pids(), pids, "no node was stopped: {body}");
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_connection_killed_mid_deploy_fails_that_host_and_the_next_deploy_finishes() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    let inventory = with_setting();
    let mut killed = false;
    let (code, seen) = deploy_watching(&inventory.path(), |line| {
        if !killed && line.starts_with("play elasticsearch") {
            // lab3's node restarts after lab1's and lab2's: cut lab3 off now.
            labctl(&["kill-sessions", "lab3"]);
            killed = true;
        }
    });
    assert!(killed, "never reached the elasticsearch play: {seen}");
    assert_eq!(code, Some(1), "{seen}");
    // No node is stopped while lab3's cannot be seen; the failure names lab3.
    assert!(
        seen.contains("haelk: error: lab3"),
        "the host is named: {seen}"
    );

    // No half-written file: every elasticsearch.yml is either the old or the new one.
    for (host, jail) in ES_NODES {
        let yml = es_yml(host, jail);
        assert!(
            yml.ends_with("\n") && yml.contains("node.name: "),
            "{jail}: {yml}"
        );
    }
    // The next deploy finishes the job and leaves no temporary file behind.
    deploy(&inventory.path());
    for (host, jail) in ES_NODES {
        assert!(
            es_yml(host, jail).contains("http.max_content_length"),
            "{jail}"
        );
        let leftovers = on_host(
            host,
            &format!("find /var/tmp/haelk-lab/mnt/{host}/{jail} -name '*.haelk-new'"),
        );
        assert_eq!(leftovers, "", "{jail}");
    }
    let again = deploy(&inventory.path());
    assert!(again.contains("deploy ok: no changes"), "{again}");
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn allocation_left_at_primaries_by_a_cut_off_rollout_is_restored() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    let (status, body) = http(
        ES_VIP,
        "PUT",
        "/_cluster/settings",
        Some(r#"{"persistent":{"cluster.routing.allocation.enable":"primaries"}}"#),
    )
    .expect("set allocation");
    assert_eq!(status, 200, "{body}");
    let output = deploy("inventories/lab.yaml");
    assert!(
        output.contains("shard allocation was left at `primaries`"),
        "{output}"
    );
    let (_, body) = http(ES_VIP, "GET", "/_cluster/settings", None).expect("settings");
    let settings: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(settings["persistent"], serde_json::json!({}), "{body}");
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_cluster_whose_nodes_are_all_down_is_started_in_one_batch() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    for (host, jail) in ES_NODES {
        on_host(host, &format!("service -j {jail} elasticsearch stop"));
    }
    // One node alone cannot elect a master: started one by one with a green gate
    // after each, the first gate would wait for ever.
    let output = deploy("inventories/lab.yaml");
    let starts = output
        .lines()
        .filter(|l| l.contains("-elasticsearch: start"))
        .count();
    assert_eq!(starts, 3, "{output}");
    assert_eq!(
        output
            .lines()
            .filter(|l| l.contains("gate elasticsearch_green"))
            .count(),
        1,
        "{output}"
    );
    assert!(output.contains("es 3/3 joined · green"), "{output}");
}

/// Runs `haelk deploy INVENTORY` and calls `on_line` with each line of its
/// output as it comes; returns (exit code, everything it printed).
fn deploy_watching(inventory: &str, mut on_line: impl FnMut(&str)) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_haelk"))
        .args(["deploy", inventory, "--no-progress"])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haelk runs");
    let mut seen = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        on_line(&line);
        seen.push_str(&line);
        seen.push('\n');
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("exit status");
    seen.push_str(&stderr);
    eprintln!("$ haelk deploy {inventory}\n{seen}");
    (status.code(), seen)
}

/// Samples, until stopped, how many ES nodes answer on their own address (the
/// jail's HTTP port, straight over the lab's loopback): the fewest seen.
struct Liveness {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Liveness {
    fn start() -> Self {
        use std::sync::atomic::Ordering;
        let addresses: Vec<String> = ES_NODES
            .iter()
            .map(|(host, _)| {
                let n = host.trim_start_matches("lab");
                format!("198.51.100.1{n}4:9200")
            })
            .collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut fewest = addresses.len();
            while !flag.load(Ordering::Relaxed) {
                let alive = addresses
                    .iter()
                    .filter(|a| matches!(http(a, "GET", "/", None), Ok((200, _))))
                    .count();
                fewest = fewest.min(alive);
                std::thread::sleep(Duration::from_millis(100));
            }
            fewest
        });
        Self { stop, thread }
    }

    fn fewest(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("sampler")
    }
}

/// Every ES node up again (after a test stopped one), then a converged lab.
fn restart_stopped_nodes() {
    for (host, jail) in ES_NODES {
        on_host(
            host,
            &format!(
                "service -j {jail} elasticsearch status >/dev/null || service -j {jail} elasticsearch start"
            ),
        );
    }
    deploy("inventories/lab.yaml");
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_limited_deploy_restarts_only_its_host_and_checks_every_host() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    let inventory = with_setting();
    let pids = es_pids();
    let output = haelk(&["deploy", &inventory.path(), "--limit", "lab1"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let out = stdout(&output);
    let after = es_pids();
    for ((node, before), (_, now)) in pids.iter().zip(&after) {
        if node == "lab1-elasticsearch" {
            assert_ne!(before, now, "{node} restarted");
        } else {
            assert_eq!(before, now, "{node} is outside the limit: {out}");
        }
    }
    assert!(
        out.contains("lab1-elasticsearch: write 1 file, restart (rolling)"),
        "{out}"
    );
    assert!(
        out.contains("es 3/3 joined · green"),
        "gates see every node: {out}"
    );
    assert!(out.contains("haproxy es 2/2 UP, kibana 2/2 UP"), "{out}");
    assert!(es_yml("lab1", "lab1-elasticsearch").contains("http.max_content_length"));
    assert!(!es_yml("lab2", "lab2-elasticsearch").contains("http.max_content_length"));
    // Put the lab back as the inventory says.
    deploy("inventories/lab.yaml");
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_node_stopped_as_a_rolling_restart_begins_stops_it_naming_the_node() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    let inventory = with_setting();
    let liveness = Liveness::start();
    let mut stopped = false;
    let (code, output) = deploy_watching(&inventory.path(), |line| {
        if !stopped && line.starts_with("play elasticsearch") {
            on_host("lab3", "service -j lab3-elasticsearch elasticsearch stop");
            stopped = true;
        }
    });
    let fewest = liveness.fewest();
    restart_stopped_nodes();
    assert!(stopped, "{output}");
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("lab3-elasticsearch"),
        "names the node: {output}"
    );
    assert!(
        fewest >= 1,
        "never two of three nodes down (fewest alive: {fewest})"
    );
    assert!(
        fewest >= ES_NODES.len() - 1,
        "never fewer than N-1 nodes alive: {fewest}: {output}"
    );
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn haelk_killed_after_a_node_restarted_is_finished_by_the_next_deploy() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    let inventory = with_setting();
    // Killed once the first node's restart script ran (its file written, the
    // node restarting, in MAINT in both haproxies, allocation at primaries).
    let mut child = Command::new(env!("CARGO_BIN_EXE_haelk"))
        .args(["deploy", &inventory.path(), "--no-progress", "-v"])
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haelk runs");
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().expect("stderr")).lines() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("waiting for the node to rejoin the cluster") {
            // SIGKILL to the haelk this test started, by PID.
            child.kill().expect("kill haelk");
            break;
        }
    }
    child.wait().expect("reaped");
    assert!(seen.contains("rejoin"), "never reached a restart: {seen}");

    let (code, output) = deploy_watching(&inventory.path(), |_| {});
    assert_eq!(code, Some(0), "the next deploy finishes: {output}");
    assert!(output.contains("es 3/3 joined · green"), "{output}");
    assert!(
        output.contains("haproxy es 2/2 UP, kibana 2/2 UP"),
        "{output}"
    );
    let (_, body) = http(ES_VIP, "GET", "/_cluster/settings", None).expect("settings");
    let settings: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(settings["persistent"], serde_json::json!({}), "{body}");
    deploy("inventories/lab.yaml");
}
