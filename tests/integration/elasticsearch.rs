//! The Elasticsearch client and the one-node rolling restart against real
//! multi-process clusters of the lab's Elasticsearch stand-in (plain Python, so
//! these run in every `cargo test`), on loopback addresses 127.0.40.x with free
//! ports. Every node process is killed by PID when its test ends.
//!
//! The SSH port forward needs the lab (`lab/labctl up`) and is `#[ignore]`d.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use haelk::elasticsearch::rolling::{ClientWatch, restart_node};
use haelk::elasticsearch::{Client, EsError, HealthStatus};
use serde_json::{Value, json};

const STANDIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/lab/haelklab/standins/elasticsearch.py"
);
const NAMES: [&str; 3] = ["n1", "n2", "n3"];

/// One stand-in node: its address, ports, directories and (while running) process.
struct StandinNode {
    name: &'static str,
    ip: Ipv4Addr,
    http_port: u16,
    transport_port: u16,
    process: Option<Child>,
}

/// A 3-node stand-in cluster (`n1..n3`, master+data) in a temp dir. Dropping it
/// kills the node processes it started, by PID, and only those.
struct StandinCluster {
    dir: tempfile::TempDir,
    nodes: Vec<StandinNode>,
}

impl StandinCluster {
    /// Starts the nodes on 127.0.40.(first_octet + 0..2) and waits until they
    /// formed one cluster.
    async fn start(first_octet: u8) -> Self {
        let nodes = NAMES
            .iter()
            .zip(first_octet..)
            .map(|(name, octet)| {
                let ip = Ipv4Addr::new(127, 0, 40, octet);
                StandinNode {
                    name,
                    ip,
                    http_port: free_port(ip),
                    transport_port: free_port(ip),
                    process: None,
                }
            })
            .collect();
        let mut cluster = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            nodes,
        };
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index, true);
        }
        cluster.wait_formed().await;
        cluster
    }

    /// Waits until n1 sees three nodes under an elected master. Until then its HTTP
    /// port may refuse connections, or answer 503 without a master.
    async fn wait_formed(&self) {
        let url = format!(
            "{}/_cluster/health?wait_for_nodes=3&timeout=5s",
            self.url(0)
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let last = match try_raw("GET", &url, None).await {
                Ok((200, body)) if body["number_of_nodes"] == 3 => return,
                Ok((status, body)) => format!("{status}: {body}"),
                Err(err) => err.to_string(),
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cluster did not form: {last}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn url(&self, index: usize) -> String {
        let node = &self.nodes[index];
        format!("http://{}:{}", node.ip, node.http_port)
    }

    fn client(&self, index: usize) -> Client {
        Client::new(self.url(index)).expect("client")
    }

    /// A watch over every node, each on its own address.
    fn watch(&self) -> ClientWatch {
        ClientWatch::new(
            NAMES
                .iter()
                .enumerate()
                .map(|(index, name)| (name.to_string(), Arc::new(self.client(index))))
                .collect(),
        )
    }

    /// Sends `signal` (`-STOP`, `-CONT`, `-TERM`) to the node's process, by PID.
    fn signal(&self, index: usize, signal: &str) {
        let pid = self.pid(index).expect("the node runs").to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    fn index_of(&self, name: &str) -> usize {
        NAMES.iter().position(|n| *n == name).expect("a node name")
    }

    /// Writes the node's elasticsearch.yml and starts it. `bootstrap` only for the
    /// first start: ES refuses `cluster.initial_master_nodes` once the cluster formed.
    fn spawn(&mut self, index: usize, bootstrap: bool) {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("\"{}:{}\"", n.ip, n.transport_port))
            .collect();
        let node = &self.nodes[index];
        let home = self.dir.path().join(node.name);
        let conf = home.join("conf");
        fs::create_dir_all(conf.join("jvm.options.d")).expect("conf dir");
        let mut yml = format!(
            "cluster.name: haelk-it\n\
             node.name: {name}\n\
             node.roles: [master, data]\n\
             network.host: {ip}\n\
             http.port: {http}\n\
             transport.port: {transport}\n\
             discovery.seed_hosts: [{seeds}]\n\
             path.data: {data}\n\
             path.logs: {logs}\n\
             xpack.ml.enabled: false\n\
             xpack.security.enabled: false\n",
            name = node.name,
            ip = node.ip,
            http = node.http_port,
            transport = node.transport_port,
            seeds = seeds.join(", "),
            data = home.join("data").display(),
            logs = home.join("logs").display(),
        );
        if bootstrap {
            yml.push_str("cluster.initial_master_nodes: [n1, n2, n3]\n");
        }
        fs::write(conf.join("elasticsearch.yml"), yml).expect("write elasticsearch.yml");
        let output = File::options()
            .create(true)
            .append(true)
            .open(self.output_path(index))
            .expect("output file");
        let process = Command::new("/usr/bin/python3")
            .arg(STANDIN)
            .arg("--path-conf")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("dup output"))
            .stderr(output)
            .spawn()
            .expect("start the stand-in");
        self.nodes[index].process = Some(process);
    }

    /// Stops the node as its rc.d script would (SIGTERM) and starts it again.
    async fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        let mut process = self.nodes[index]
            .process
            .take()
            .ok_or_else(|| anyhow::anyhow!("node {index} is not running"))?;
        let status = Command::new("kill")
            .args(["-TERM", &process.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while process.try_wait()?.is_none() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "node did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.spawn(index, false);
        Ok(())
    }

    fn pid(&self, index: usize) -> Option<u32> {
        self.nodes[index].process.as_ref().map(Child::id)
    }

    fn output_path(&self, index: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.out", self.nodes[index].name))
    }

    /// Every node's output, for failure messages.
    fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let text = fs::read_to_string(self.output_path(i)).unwrap_or_default();
                format!("--- {} ---\n{text}", self.nodes[i].name)
            })
            .collect()
    }
}

impl Drop for StandinCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                // Child::kill signals exactly this PID (SIGKILL); wait reaps it.
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}

/// A port free on `ip` right now (bound, read, released).
fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A request outside the client under test, to set up and to check independently.
async fn raw(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    try_raw(method, url, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

async fn try_raw(method: &str, url: &str, body: Option<Value>) -> reqwest::Result<(u16, Value)> {
    let http = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http.request(method, url).timeout(Duration::from_secs(60));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, value))
}

async fn create_index(url: &str, name: &str, replicas: u32) {
    let (status, body) = raw(
        "PUT",
        &format!("{url}/{name}"),
        Some(json!({"settings": {"number_of_shards": 1, "number_of_replicas": replicas}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn persistent_settings(url: &str) -> Value {
    let (status, body) = raw("GET", &format!("{url}/_cluster/settings"), None).await;
    assert_eq!(status, 200, "{body}");
    body["persistent"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_health_nodes_uuid_and_explains_nothing_when_all_is_assigned() {
    let cluster = StandinCluster::start(1).await;
    let client = cluster.client(0);

    let health = client.health().await.expect("health");
    assert_eq!(health.status, HealthStatus::Green);
    assert_eq!(
        (health.number_of_nodes, health.number_of_data_nodes),
        (3, 3)
    );

    let nodes = client.nodes().await.expect("nodes");
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, NAMES);
    assert_eq!(nodes.iter().filter(|n| n.elected_master).count(), 1);
    for node in &nodes {
        let expected = cluster.nodes[cluster.index_of(&node.name)].ip;
        assert_eq!(node.ip, expected.to_string());
        assert!(node.is_master_eligible() && node.is_data(), "{node:?}");
        assert!(!node.ephemeral_id.is_empty());
    }
    assert!(client.node_joined("n3").await.expect("nodes"));
    assert!(!client.node_joined("n4").await.expect("nodes"));

    let uuid = client.cluster_uuid().await.expect("root").expect("formed");
    for index in 1..3 {
        let other = cluster.client(index).cluster_uuid().await.expect("root");
        assert_eq!(other.as_deref(), Some(uuid.as_str()), "every node agrees");
    }

    create_index(&cluster.url(0), "logs", 1).await;
    let health = client
        .wait_for_health(HealthStatus::Green, Duration::from_secs(30))
        .await
        .expect("green with the replica assigned");
    assert_eq!(health.active_shards, 2);
    assert_eq!(client.allocation_explain().await.expect("explain"), None);
    assert_eq!(client.allocation_enable().await.expect("settings"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restart_still_restores_allocation_and_bad_targets_are_refused() {
    let cluster = StandinCluster::start(31).await;
    let watch = cluster.watch();
    let client = cluster.client(0);
    create_index(&cluster.url(0), "logs", 1).await;
    client
        .wait_for_health(HealthStatus::Green, Duration::from_secs(30))
        .await
        .expect("green");

    let err = restart_node(&client, "n2", Duration::from_secs(10), &watch, || async {
        anyhow::bail!("service elasticsearch start: exit status 1")
    })
    .await
    .expect_err("the restart failed");
    assert_eq!(
        err.to_string(),
        "restarting n2: service elasticsearch start: exit status 1"
    );
    assert_eq!(
        persistent_settings(&cluster.url(0)).await,
        json!({}),
        "allocation restored after the failure"
    );

    for (node, expected) in [
        (
            "n1",
            "cannot restart n1 through itself: the client must talk to another node",
        ),
        (
            "n9",
            "n9 is not in the cluster: a rolling restart only restarts members",
        ),
    ] {
        let mut called = false;
        let err = restart_node(&client, node, Duration::from_secs(10), &watch, || async {
            called = true;
            Ok(())
        })
        .await
        .expect_err("refused");
        assert!(matches!(err, EsError::Refused(_)), "{err:?}");
        assert_eq!(err.to_string(), expected);
        assert!(!called);
    }
    assert_eq!(persistent_settings(&cluster.url(0)).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_a_data_node_holds_replicas_then_restores_allocation_and_green() {
    let mut cluster = StandinCluster::start(11).await;
    let watch = cluster.watch();
    let client = cluster.client(0);
    create_index(&cluster.url(0), "logs", 1).await;
    for id in 0..20 {
        let (status, body) = raw(
            "PUT",
            &format!("{}/logs/_doc/{id}", cluster.url(0)),
            Some(json!({"n": id})),
        )
        .await;
        assert!(status == 200 || status == 201, "{body}");
    }
    client
        .wait_for_health(HealthStatus::Green, Duration::from_secs(30))
        .await
        .expect("green before");

    // Restart a node that is neither the one the client talks to nor the master,
    // so the test does not wait out an election.
    let nodes = client.nodes().await.expect("nodes");
    let target = nodes
        .iter()
        .find(|n| n.name != "n1" && !n.elected_master)
        .expect("a node to restart")
        .clone();
    let index = cluster.index_of(&target.name);
    let old_pid = cluster.pid(index);

    let settings_url = cluster.url(0);
    let mut allocation_during_restart = None;
    let started = std::time::Instant::now();
    let cluster_ref = &mut cluster;
    let seen = &mut allocation_during_restart;
    restart_node(
        &client,
        &target.name,
        Duration::from_secs(60),
        &watch,
        move || async move {
            *seen = Some(persistent_settings(&settings_url).await);
            cluster_ref.restart(index).await
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("restart_node took {:?}", started.elapsed());

    assert_eq!(
        allocation_during_restart.expect("restart was called"),
        json!({"cluster": {"routing": {"allocation": {"enable": "primaries"}}}}),
        "replicas held while the node was away"
    );
    assert_ne!(cluster.pid(index), old_pid, "a new process");
    let health = client.health().await.expect("health");
    assert_eq!(health.status, HealthStatus::Green);
    assert_eq!(health.number_of_nodes, 3);
    assert_eq!(
        persistent_settings(&cluster.url(0)).await,
        json!({}),
        "allocation back to the default"
    );
    let rejoined = client
        .node(&target.name)
        .await
        .expect("nodes")
        .expect("rejoined");
    assert_ne!(rejoined.ephemeral_id, target.ephemeral_id);
    let (_, count) = raw("GET", &format!("{}/logs/_count", cluster.url(0)), None).await;
    assert_eq!(count["count"], 20, "no document lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_in_eck_order_ends_with_the_master() {
    let mut cluster = StandinCluster::start(41).await;
    let watch = cluster.watch();
    create_index(&cluster.url(0), "logs", 1).await;
    let client = cluster.client(0);
    client
        .wait_for_health(HealthStatus::Green, Duration::from_secs(30))
        .await
        .expect("green before");
    let nodes = client.nodes().await.expect("nodes");
    let master = nodes
        .iter()
        .find(|n| n.elected_master)
        .expect("a master")
        .name
        .clone();
    // The elected master last, as deploy's Elasticsearch play orders its batches.
    let mut order: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    order.sort_by_key(|name| *name == master);
    assert_eq!(order.last(), Some(&master));

    let started = std::time::Instant::now();
    for name in &order {
        let index = cluster.index_of(name);
        // The client talks to another node than the one restarted.
        let client = cluster.client((index + 1) % NAMES.len());
        let old_pid = cluster.pid(index);
        let cluster_ref = &mut cluster;
        restart_node(
            &client,
            name,
            Duration::from_secs(60),
            &watch,
            move || async move { cluster_ref.restart(index).await },
        )
        .await
        .unwrap_or_else(|e| panic!("restarting {name}: {e}"));
        assert_ne!(cluster.pid(index), old_pid);
    }
    eprintln!("rolling restart of 3 nodes took {:?}", started.elapsed());

    let client = cluster.client(0);
    let after = client.nodes().await.expect("nodes");
    assert_eq!(after.len(), 3);
    for (before, now) in nodes.iter().zip(&after) {
        assert_eq!(before.name, now.name);
        assert_ne!(
            before.ephemeral_id, now.ephemeral_id,
            "{} restarted",
            now.name
        );
    }
    assert_eq!(
        client.health().await.expect("health").status,
        HealthStatus::Green
    );
    assert_eq!(client.allocation_enable().await.expect("settings"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yellow_cluster_is_never_restarted_and_says_why() {
    let cluster = StandinCluster::start(21).await;
    let watch = cluster.watch();
    let client = cluster.client(0);
    // Three data nodes cannot hold a primary and five replicas.
    create_index(&cluster.url(0), "crowded", 5).await;
    // Let the two replicas that fit finish recovering, so the counts below are settled.
    let (status, body) = raw(
        "GET",
        &format!(
            "{}/_cluster/health?wait_for_no_initializing_shards=true&timeout=30s",
            cluster.url(0)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let health = client
        .wait_for_health(HealthStatus::Yellow, Duration::from_secs(30))
        .await
        .expect("yellow");
    assert_eq!(health.status, HealthStatus::Yellow);
    assert_eq!(health.unassigned_shards, 3);

    let mut restarted = false;
    let err = restart_node(&client, "n2", Duration::from_secs(5), &watch, || async {
        restarted = true;
        Ok(())
    })
    .await
    .expect_err("refused");
    assert!(!restarted, "restart must not be called");
    let EsError::NotGreen { health, reason } = &err else {
        panic!("not a NotGreen refusal: {err}");
    };
    assert_eq!(health.status, HealthStatus::Yellow);
    let reason = reason.as_deref().expect("an explanation");
    assert!(
        reason.starts_with("index crowded shard 0 replica, unassigned")
            && reason.contains("a copy of this shard is already allocated to this node"),
        "{reason}"
    );
    assert!(
        err.to_string()
            .starts_with("the cluster is yellow, 3 unassigned shards, not green: refusing to stop a node (first: index crowded shard 0 replica"),
        "{err}"
    );
    assert_eq!(
        persistent_settings(&cluster.url(0)).await,
        json!({}),
        "allocation untouched"
    );

    let timeout = client
        .wait_for_health(HealthStatus::Green, Duration::from_secs(2))
        .await
        .expect_err("never green");
    assert!(
        timeout.to_string().starts_with(
            "the cluster did not turn green within 2s: yellow, 3 unassigned shards (first: index crowded shard 0 replica"
        ),
        "{timeout}"
    );
}

#[tokio::test]
#[ignore = "needs the local lab: lab/labctl up"]
async fn a_local_forward_reaches_a_port_as_seen_from_the_host() {
    use haelk::remote::Remote;
    use haelk::remote::forward::forward;
    use haelk::remote::ssh::{HostKeyPolicy, SshRemote};
    use tokio::io::AsyncReadExt;

    let inventory = haelk::inventory::load(std::path::Path::new("inventories/lab.yaml"))
        .expect("the lab inventory loads");
    let host = &inventory.hosts[0];
    let remote = SshRemote::connect(host, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // lab1's own sshd, reached from lab1: its banner proves the bytes went through.
    let target: SocketAddr = format!("{}:22", host.address)
        .parse()
        .expect("the lab host address is an IP");
    let tunnel = forward(&remote, target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tunnel.local().ip().is_loopback());
    let mut stream = tokio::net::TcpStream::connect(tunnel.local())
        .await
        .expect("connect to the forward");
    let mut banner = [0u8; 8];
    stream
        .read_exact(&mut banner)
        .await
        .expect("read the banner");
    assert_eq!(&banner, b"SSH-2.0-");
    drop(stream);
    assert_eq!(remote.round_trips(), 1, "a forward is not a round trip");

    let local = tunnel.local();
    tunnel.close().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        tokio::net::TcpStream::connect(local).await.is_err(),
        "nothing listens after close"
    );
    remote.close().await.expect("closes");
}

/// A client of `n1` once an index `logs` (1 replica) exists and is green.
async fn green_with_logs(cluster: &StandinCluster) -> Client {
    let client = cluster.client(0);
    create_index(&cluster.url(0), "logs", 1).await;
    client
        .wait_for_health(HealthStatus::Green, Duration::from_secs(30))
        .await
        .expect("green");
    client
}

/// The two nodes other than `n1` (the client's): (the one to restart, the other
/// one), the other one never the elected master, so taking it away needs no
/// election.
async fn target_and_bystander(client: &Client) -> (String, String) {
    let nodes = client.nodes().await.expect("nodes");
    let master = nodes
        .iter()
        .find(|n| n.elected_master)
        .map(|n| n.name.clone())
        .expect("an elected master");
    let bystander = if master == "n3" { "n2" } else { "n3" };
    let target = if bystander == "n3" { "n2" } else { "n3" };
    (target.to_owned(), bystander.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_seen_behind_a_green_health_and_nothing_is_stopped() {
    let cluster = StandinCluster::start(51).await;
    let watch = cluster.watch();
    let client = green_with_logs(&cluster).await;
    let (target, frozen) = target_and_bystander(&client).await;

    // A frozen process still counts as a member (and the cluster as green)
    // until the master's fault detection gives up on it.
    cluster.signal(cluster.index_of(&frozen), "-STOP");
    let mut restarted = false;
    let result = restart_node(
        &client,
        &target,
        Duration::from_secs(10),
        &watch,
        || async {
            restarted = true;
            Ok(())
        },
    )
    .await;
    cluster.signal(cluster.index_of(&frozen), "-CONT");
    let err = result.expect_err("refused");
    assert!(!restarted, "no node stopped");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("refusing to stop {target}: ")) && message.contains(&frozen),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_goes_away_while_another_restarts_stops_the_restart_naming_it() {
    let mut cluster = StandinCluster::start(61).await;
    let watch = cluster.watch();
    let client = green_with_logs(&cluster).await;
    let (target, bystander) = target_and_bystander(&client).await;
    let target_index = cluster.index_of(&target);
    let bystander_index = cluster.index_of(&bystander);

    let cluster_ref = &mut cluster;
    let err = restart_node(
        &client,
        &target,
        Duration::from_secs(30),
        &watch,
        move || async move {
            cluster_ref.signal(bystander_index, "-TERM");
            cluster_ref.restart(target_index).await
        },
    )
    .await
    .expect_err("stopped");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{bystander} went away while {target} was restarting"
        )),
        "{message}\n{}",
        cluster.logs()
    );
    assert_eq!(
        persistent_settings(&cluster.url(0)).await,
        json!({}),
        "allocation restored after the stop"
    );
}
