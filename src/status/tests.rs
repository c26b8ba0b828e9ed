//! The status model and its tables, from fixed observations of the lab inventory.

use super::model::*;
use super::render::{Style, render};
use crate::desired::{self, ClusterPhase, DesiredState};
use crate::elasticsearch::{Health, HealthStatus, Node, NodeStats};
use crate::freebsd::{CarpState, CarpVhid};
use crate::haproxy::{HostCarp, HostStats, ServerState};
use crate::inventory::{Inventory, Role};
use crate::kibana::KibanaStatus;
use crate::secret::Secrets;
use crate::templates::Templates;

struct Lab {
    inventory: Inventory,
    desired: DesiredState,
}

fn lab() -> Lab {
    let mut inventory = crate::testing::lab();
    // As the operator typed it: the hints name it, and snapshots stay portable.
    inventory.source = "inventories/lab.yaml".into();
    let secrets = Secrets::load(&inventory).unwrap();
    let desired = desired::build(
        &inventory,
        &Templates::builtin().unwrap(),
        &secrets,
        ClusterPhase::Formed,
    )
    .unwrap();
    Lab { inventory, desired }
}

fn server(backend: &str, server: &str, status: &str) -> ServerState {
    ServerState {
        backend: backend.into(),
        server: server.into(),
        status: status.into(),
        sessions: 0,
    }
}

/// `show stat` of a lab host's two haproxy jails, every server UP.
fn haproxy_up(host: &str) -> HostStats {
    let mut stats = HostStats::new();
    stats.insert(
        format!("{host}-haproxy-es"),
        Ok(vec![
            server("elasticsearch_nodes", "lab1-elasticsearch", "UP"),
            server("elasticsearch_nodes", "lab2-elasticsearch", "UP"),
        ]),
    );
    stats.insert(
        format!("{host}-haproxy-kibana"),
        Ok(vec![
            server("kibana_nodes", "lab1-kibana", "UP"),
            server("kibana_nodes", "lab2-kibana", "UP"),
        ]),
    );
    stats
}

/// The CARP states of a lab host's haproxy jails after a deploy: lab1's (advskew 0)
/// are MASTER, lab2's (advskew 100) BACKUP; lab3 has none.
fn carp_of(host: &str) -> HostCarp {
    let state = match host {
        "lab1" => CarpState::Master,
        "lab2" => CarpState::Backup,
        _ => return HostCarp::new(),
    };
    [("haproxy-es", 1), ("haproxy-kibana", 2)]
        .into_iter()
        .map(|(jail, vhid)| (format!("{host}-{jail}"), Ok(vec![vhid_state(vhid, state)])))
        .collect()
}

fn vhid_state(vhid: u8, state: CarpState) -> CarpVhid {
    CarpVhid {
        state,
        vhid,
        advbase: 1,
        advskew: if state == CarpState::Master { 0 } else { 100 },
    }
}

fn node(name: &str, roles: &[&str], elected: bool) -> Node {
    Node {
        id: format!("id-{name}"),
        name: name.into(),
        ip: "127.0.20.1".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        ephemeral_id: format!("e-{name}"),
        elected_master: elected,
    }
}

fn stats(name: &str, shards: u64) -> NodeStats {
    NodeStats {
        name: name.into(),
        heap_used_percent: 20,
        disk_used_bytes: 3 << 20,
        disk_total_bytes: 1016 << 20,
        shards,
    }
}

fn green() -> Health {
    Health {
        status: HealthStatus::Green,
        timed_out: false,
        number_of_nodes: 3,
        number_of_data_nodes: 2,
        active_shards: 2,
        relocating_shards: 0,
        initializing_shards: 0,
        unassigned_shards: 0,
    }
}

/// What status sees on the lab right after a deploy.
fn healthy(lab: &Lab) -> Observed {
    let hosts = lab
        .desired
        .hosts
        .iter()
        .map(|state| ObservedHost {
            name: state.host.to_string(),
            facts: Ok(crate::testing::converged_facts(state)),
            haproxy: (state.host.as_str() != "lab3").then(|| Ok(haproxy_up(state.host.as_str()))),
            carp: carp_of(state.host.as_str()),
        })
        .collect();
    let cluster = ObservedCluster {
        via: "lab1-elasticsearch".into(),
        health: green(),
        nodes: vec![
            node("lab1-elasticsearch", &["data", "master"], true),
            node("lab2-elasticsearch", &["data", "master"], false),
            node("lab3-elasticsearch", &["master", "voting_only"], false),
        ],
        stats: Ok(vec![
            stats("lab1-elasticsearch", 1),
            stats("lab2-elasticsearch", 1),
            stats("lab3-elasticsearch", 0),
        ]),
        unassigned_reason: None,
    };
    let available = || {
        Ok(KibanaStatus {
            level: "available".into(),
            summary: "All services are available".into(),
        })
    };
    Observed {
        hosts,
        elasticsearch: Some(Ok(cluster)),
        kibana: [
            ("lab1-kibana".to_owned(), available()),
            ("lab2-kibana".to_owned(), available()),
        ]
        .into_iter()
        .collect(),
    }
}

fn host_mut<'a>(observed: &'a mut Observed, name: &str) -> &'a mut ObservedHost {
    observed.hosts.iter_mut().find(|h| h.name == name).unwrap()
}

fn cluster_mut(observed: &mut Observed) -> &mut ObservedCluster {
    observed.elasticsearch.as_mut().unwrap().as_mut().unwrap()
}

fn problems(estate: &Estate) -> Vec<String> {
    estate
        .problems
        .iter()
        .map(|p| format!("{} => {}", p.what, p.fix))
        .collect()
}

const PLAIN: Style = Style {
    width: Some(120),
    colour: false,
};

#[test]
fn a_converged_estate_is_healthy_in_every_row() {
    let lab = lab();
    let estate = Estate::build(&lab.inventory, &lab.desired, &healthy(&lab));
    assert_eq!(problems(&estate), Vec::<String>::new());
    assert!(estate.healthy);
    assert!(
        estate
            .hosts
            .iter()
            .all(|h| h.reachable && h.jails_running == h.jails_declared)
    );
    assert_eq!(estate.jails.len(), 9);
    assert!(
        estate
            .jails
            .iter()
            .all(|j| j.state == JailState::Running && j.drift.is_empty())
    );
    let es = estate.elasticsearch.as_ref().unwrap();
    assert_eq!(es.cluster.as_ref().unwrap().status, "green");
    assert!(es.nodes.iter().all(|n| n.joined));
    assert_eq!(
        es.nodes
            .iter()
            .filter(|n| n.elected_master)
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["lab1-elasticsearch"]
    );
    // One section per VIP, each with the haproxy jails of both hosts; lab1's is MASTER.
    assert_eq!(estate.haproxy.len(), 2);
    assert!(estate.haproxy.iter().all(|vip| vip.frontends.len() == 2));
    assert_eq!(
        estate
            .haproxy
            .iter()
            .map(|vip| vip.master.as_deref())
            .collect::<Vec<_>>(),
        [Some("lab1-haproxy-es"), Some("lab1-haproxy-kibana")]
    );
    insta::assert_snapshot!(render(&estate, PLAIN));
}

#[test]
fn a_stopped_elasticsearch_jail_is_stopped_missing_yellow_down_and_hinted() {
    let lab = lab();
    let mut observed = healthy(&lab);
    {
        let lab2 = host_mut(&mut observed, "lab2");
        let facts = lab2.facts.as_mut().unwrap();
        let jail = facts.jails.get_mut("lab2-elasticsearch").unwrap();
        jail.running = false;
        jail.services
            .values_mut()
            .for_each(|running| *running = false);
        for host in ["lab1", "lab2"] {
            let stats = host_mut(&mut observed, host)
                .haproxy
                .as_mut()
                .unwrap()
                .as_mut()
                .unwrap();
            let servers = stats
                .get_mut(&format!("{host}-haproxy-es"))
                .unwrap()
                .as_mut()
                .unwrap();
            servers[1].status = "DOWN".into();
        }
    }
    let cluster = cluster_mut(&mut observed);
    cluster.nodes.retain(|n| n.name != "lab2-elasticsearch");
    if let Ok(stats) = &mut cluster.stats {
        stats.retain(|s| s.name != "lab2-elasticsearch");
    }
    cluster.health = Health {
        status: HealthStatus::Yellow,
        number_of_nodes: 2,
        number_of_data_nodes: 1,
        active_shards: 1,
        unassigned_shards: 1,
        ..green()
    };
    cluster.unassigned_reason =
        Some("index logs shard 0 replica, unassigned (NODE_LEFT): cannot allocate".into());
    let estate = Estate::build(&lab.inventory, &lab.desired, &observed);

    assert!(!estate.healthy);
    let jail = estate
        .jails
        .iter()
        .find(|j| j.name == "lab2-elasticsearch")
        .unwrap();
    assert_eq!(jail.state, JailState::Stopped);
    let es = estate.elasticsearch.as_ref().unwrap();
    let missing = es
        .nodes
        .iter()
        .find(|n| n.name == "lab2-elasticsearch")
        .unwrap();
    assert!(!missing.joined && missing.heap_used_percent.is_none());
    let cluster = es.cluster.as_ref().unwrap();
    assert_eq!(cluster.status, "yellow");
    assert_eq!(
        cluster.reason.as_deref(),
        Some("index logs shard 0 replica, unassigned (NODE_LEFT): cannot allocate")
    );
    let deploy = "haelk deploy";
    assert_eq!(
        problems(&estate),
        [
            format!("lab2-elasticsearch is not running => {deploy} {} --limit lab2", estate.inventory),
            format!("lab2-elasticsearch has not joined the cluster => {deploy} {} --limit lab2", estate.inventory),
            "the cluster is yellow, 1 unassigned shard (index logs shard 0 replica, unassigned (NODE_LEFT): cannot allocate) => start the missing nodes (above); the shards recover once they rejoin".to_owned(),
            format!("lab1-haproxy-es: backend server elasticsearch_nodes/lab2-elasticsearch is DOWN => start lab2-elasticsearch: {deploy} {} --limit lab2", estate.inventory),
            format!("lab2-haproxy-es: backend server elasticsearch_nodes/lab2-elasticsearch is DOWN => start lab2-elasticsearch: {deploy} {} --limit lab2", estate.inventory),
        ]
    );
    insta::assert_snapshot!(render(&estate, PLAIN));
}

#[test]
fn an_unreachable_host_is_a_row_and_the_others_are_still_reported() {
    let lab = lab();
    let mut observed = healthy(&lab);
    let lab3 = host_mut(&mut observed, "lab3");
    lab3.facts = Err("lab3: cannot connect over ssh to 127.0.10.3: Connection refused".into());
    lab3.haproxy = None;
    let estate = Estate::build(&lab.inventory, &lab.desired, &observed);

    assert!(!estate.healthy);
    let row = estate.hosts.iter().find(|h| h.name == "lab3").unwrap();
    assert!(!row.reachable);
    assert!(row.error.as_deref().unwrap().contains("Connection refused"));
    // lab1, lab2 and the spare lab4.
    assert_eq!(estate.hosts.iter().filter(|h| h.reachable).count(), 3);
    let jail = estate
        .jails
        .iter()
        .find(|j| j.name == "lab3-elasticsearch")
        .unwrap();
    assert_eq!(jail.state, JailState::Unknown);
    assert!(
        estate
            .jails
            .iter()
            .filter(|j| j.host != "lab3")
            .all(|j| j.state == JailState::Running)
    );
    assert_eq!(
        problems(&estate),
        [
            "lab3 is unreachable: lab3: cannot connect over ssh to 127.0.10.3: Connection refused => check that the host is up and sshd listens on 198.51.100.103:22, then run haelk status again"
        ]
    );
    let text = render(&estate, PLAIN);
    assert!(text.contains("no: lab3: cannot connect"), "{text}");
    assert!(text.contains("Kibana"), "{text}");
}

#[test]
fn a_hand_edited_file_is_drift_on_its_jail_with_the_reason() {
    let lab = lab();
    let mut observed = healthy(&lab);
    let facts = host_mut(&mut observed, "lab1").facts.as_mut().unwrap();
    let (path, file) = facts
        .files
        .iter_mut()
        .find(|(path, _)| path.ends_with("lab1-kibana/usr/local/etc/kibana/kibana.yml"))
        .unwrap();
    let path = path.display().to_string();
    file.content.push_str("# edited by hand\n");
    file.mode = 0o666;
    let estate = Estate::build(&lab.inventory, &lab.desired, &observed);

    assert!(!estate.healthy);
    let jail = estate
        .jails
        .iter()
        .find(|j| j.name == "lab1-kibana")
        .unwrap();
    assert_eq!(jail.state, JailState::Running);
    assert_eq!(
        jail.drift,
        [Drift {
            path: path.clone(),
            reasons: vec!["content".into(), "mode".into()],
        }]
    );
    assert!(
        estate
            .jails
            .iter()
            .filter(|j| j.name != "lab1-kibana")
            .all(|j| j.drift.is_empty())
    );
    assert_eq!(
        problems(&estate),
        [format!(
            "lab1-kibana: {path} differs from the inventory (content, mode) => haelk deploy {} --limit lab1 (--dry-run shows the difference)",
            estate.inventory
        )]
    );
}

#[test]
fn a_yellow_cluster_with_every_node_joined_says_why() {
    let lab = lab();
    let mut observed = healthy(&lab);
    let cluster = cluster_mut(&mut observed);
    cluster.health = Health {
        status: HealthStatus::Yellow,
        unassigned_shards: 2,
        ..green()
    };
    cluster.unassigned_reason = Some("index big shard 0 replica, unassigned (INDEX_CREATED): the node is above the high watermark".into());
    let estate = Estate::build(&lab.inventory, &lab.desired, &observed);
    assert!(!estate.healthy);
    assert_eq!(
        estate
            .elasticsearch
            .as_ref()
            .unwrap()
            .cluster
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some(
            "index big shard 0 replica, unassigned (INDEX_CREATED): the node is above the high watermark"
        )
    );
    assert_eq!(
        problems(&estate),
        [
            "the cluster is yellow, 2 unassigned shards (index big shard 0 replica, unassigned (INDEX_CREATED): the node is above the high watermark) => wait for the recovery, or see GET /_cluster/allocation/explain"
        ]
    );
}

#[test]
fn a_green_cluster_without_node_stats_is_still_healthy() {
    let lab = lab();
    let mut observed = healthy(&lab);
    cluster_mut(&mut observed).stats = Err("GET /_nodes/stats: HTTP 400".into());
    let estate = Estate::build(&lab.inventory, &lab.desired, &observed);
    assert!(estate.healthy, "{:?}", problems(&estate));
    let es = estate.elasticsearch.as_ref().unwrap();
    assert_eq!(
        es.stats_error.as_deref(),
        Some("GET /_nodes/stats: HTTP 400")
    );
    assert!(
        es.nodes
            .iter()
            .all(|n| n.joined && n.heap_used_percent.is_none())
    );
}

#[test]
fn the_json_document_has_the_documented_top_level_shape() {
    let lab = lab();
    let mut estate = Estate::build(&lab.inventory, &lab.desired, &healthy(&lab));
    estate.took = Some(Took {
        elapsed_ms: 420,
        round_trips: 8,
    });
    let json = serde_json::to_value(&estate).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        // serde_json sorts keys.
        [
            "elasticsearch",
            "haproxy",
            "healthy",
            "hosts",
            "inventory",
            "jails",
            "kibana",
            "problems",
            "took"
        ]
    );
    assert_eq!(json["jails"][0]["state"], "running");
    assert_eq!(json["jails"][0]["role"], "haproxy");
    assert_eq!(json["haproxy"][0]["service"], "elasticsearch");
    assert_eq!(json["haproxy"][0]["vip"], "198.51.100.10:9200");
    assert_eq!(json["haproxy"][0]["vhid"], 1);
    assert_eq!(json["haproxy"][0]["master"], "lab1-haproxy-es");
    assert_eq!(json["haproxy"][0]["frontends"][0]["carp"], "MASTER");
    assert_eq!(json["haproxy"][0]["frontends"][1]["carp"], "BACKUP");
    assert_eq!(json["elasticsearch"]["cluster"]["status"], "green");
    assert_eq!(json["elasticsearch"]["nodes"][0]["elected_master"], true);
    assert_eq!(json["took"]["round_trips"], 8);
    assert_eq!(json["kibana"][1]["level"], "available");
}

#[test]
fn colour_is_only_drawn_when_asked() {
    let lab = lab();
    let estate = Estate::build(&lab.inventory, &lab.desired, &healthy(&lab));
    assert!(!render(&estate, PLAIN).contains('\x1b'));
    let coloured = render(
        &estate,
        Style {
            colour: true,
            ..PLAIN
        },
    );
    assert!(coloured.contains("\x1b["), "{coloured}");
    // Narrow terminals get narrower tables (text lines are the terminal's to wrap).
    let narrow = render(
        &estate,
        Style {
            width: Some(80),
            colour: false,
        },
    );
    let table_lines = narrow
        .lines()
        .filter(|line| line.starts_with(['┌', '│', '╞', '└']));
    assert!(table_lines.clone().count() > 30, "{narrow}");
    assert!(
        table_lines.clone().all(|line| line.chars().count() <= 80),
        "{narrow}"
    );
}

#[test]
fn role_packages_are_shown_with_their_version() {
    let lab = lab();
    let estate = Estate::build(&lab.inventory, &lab.desired, &healthy(&lab));
    let es = estate
        .jails
        .iter()
        .find(|j| j.role == Role::Elasticsearch)
        .unwrap();
    assert_eq!(es.package.as_deref(), Some("elasticsearch8-8.17.4"));
}

/// Status gathering against scripted hosts, no lab: an unreachable host is an
/// entry, not an early return; each reached host costs one facts round trip
/// (and one haproxy round trip when it has haproxy jails); Elasticsearch is
/// asked through the first node whose forward works.
#[tokio::test]
async fn gathering_reports_every_host_and_finds_the_node_that_answers() {
    use crate::remote::scripted::{ScriptedRemote, http_server};
    use crate::status::gather::{Connections, gather_connected};

    let lab = lab();
    let root = r#"{"name":"lab3-elasticsearch","cluster_name":"c","cluster_uuid":"u","version":{"number":"8.15.0"}}"#;
    let api = http_server(vec![
        ("/", 200, root.to_owned()),
        (
            "/_cluster/health",
            503,
            r#"{"error":{"type":"master_not_discovered_exception","reason":"no master"},"status":503}"#.to_owned(),
        ),
    ])
    .await;
    let hosts: Vec<_> = lab.inventory.hosts.iter().collect();
    let remotes: Vec<Result<ScriptedRemote, String>> = hosts
        .iter()
        .map(|host| match host.name.as_str() {
            "lab1" => Err("connection refused".to_owned()),
            // Reached, but its forwards fail and its scripts have no answer.
            "lab2" => Ok(ScriptedRemote::new("lab2")),
            name => Ok(ScriptedRemote::new(name).with_tunnel(api)),
        })
        .collect();
    let expected_round_trips: u64 = hosts
        .iter()
        .filter(|h| h.name.as_str() != "lab1")
        .map(|h| 1 + u64::from(h.jails.iter().any(|j| j.role == Role::Haproxy)))
        .sum();
    let mut connections = Connections::from_remotes(hosts.clone(), remotes);
    let observed = gather_connected(&mut connections, &lab.inventory, &lab.desired).await;

    assert_eq!(observed.hosts.len(), hosts.len());
    let lab1 = observed.hosts.iter().find(|h| h.name == "lab1").unwrap();
    assert_eq!(lab1.facts.as_ref().unwrap_err(), "connection refused");
    let lab2 = observed.hosts.iter().find(|h| h.name == "lab2").unwrap();
    let facts_error = lab2.facts.as_ref().unwrap_err();
    assert!(
        facts_error.contains("gathering facts failed"),
        "{facts_error}"
    );
    assert!(matches!(lab2.haproxy, Some(Err(_))), "{:?}", lab2.haproxy);
    assert_eq!(connections.round_trips(), expected_round_trips);

    // lab2's node could not be forwarded to; lab3's answered `GET /`, and its
    // health error is reported as the cluster's.
    let cluster = observed.elasticsearch.expect("ES jails are selected");
    let error = cluster.unwrap_err();
    assert!(
        error.contains("/_cluster/health: HTTP 503: master_not_discovered_exception"),
        "{error}"
    );
    let kibana = &observed.kibana;
    assert!(!kibana.contains_key("lab1-kibana"), "{kibana:?}");
    let lab2_kibana = kibana["lab2-kibana"].as_ref().unwrap_err();
    assert!(lab2_kibana.contains("no tunnel"), "{lab2_kibana}");
}

/// The problems of `observed` that are about a VIP.
fn vip_problems(lab: &Lab, observed: &Observed) -> Vec<String> {
    let estate = Estate::build(&lab.inventory, &lab.desired, observed);
    assert_eq!(estate.healthy, estate.problems.is_empty());
    problems(&estate)
        .into_iter()
        .filter(|p| p.starts_with("VIP "))
        .collect()
}

fn set_carp(observed: &mut Observed, jail: &str, vhids: Vec<CarpVhid>) {
    let host = jail.split('-').next().unwrap().to_owned();
    host_mut(observed, &host)
        .carp
        .insert(jail.to_owned(), Ok(vhids));
}

#[test]
fn a_vip_whose_carriers_are_all_backup_has_no_master() {
    let lab = lab();
    let mut observed = healthy(&lab);
    set_carp(
        &mut observed,
        "lab1-haproxy-es",
        vec![vhid_state(1, CarpState::Backup)],
    );
    assert_eq!(
        vip_problems(&lab, &observed),
        [
            "VIP 198.51.100.10 (vhid 1): no carrier is CARP MASTER: nothing answers for the VIP \
          => check that vnet0 is up in the carriers and that they share the password and vhid: \
          haelk deploy inventories/lab.yaml"
        ]
    );
}

#[test]
fn two_masters_of_one_vip_are_a_split_brain() {
    let lab = lab();
    let mut observed = healthy(&lab);
    set_carp(
        &mut observed,
        "lab2-haproxy-kibana",
        vec![vhid_state(2, CarpState::Master)],
    );
    let estate = Estate::build(&lab.inventory, &lab.desired, &observed);
    assert_eq!(estate.haproxy[1].master, None);
    let found = vip_problems(&lab, &observed);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "VIP 198.51.100.20 (vhid 2): lab1-haproxy-kibana, lab2-haproxy-kibana are all CARP MASTER (split brain)"
        ),
        "{found:?}"
    );
}

#[test]
fn a_master_whose_haproxy_is_down_black_holes_the_vip_and_the_fix_hands_it_over() {
    let lab = lab();
    let mut observed = healthy(&lab);
    if let Some(Ok(stats)) = &mut host_mut(&mut observed, "lab1").haproxy {
        stats.insert(
            "lab1-haproxy-es".to_owned(),
            Err("cannot read the haproxy stats socket".to_owned()),
        );
    }
    let found = vip_problems(&lab, &observed);
    assert_eq!(
        found,
        [
            "VIP 198.51.100.10 (vhid 1): the CARP MASTER lab1-haproxy-es has no haproxy answering: \
          clients of the VIP get no answer => start its haproxy: haelk deploy inventories/lab.yaml \
          --limit lab1; its CARP watch hands the VIP over within seconds (is it running? \
          pgrep -f carp-watch in the jail); by hand, on lab1: jexec lab1-haproxy-es sysctl \
          net.inet.carp.demotion=240"
        ]
    );
}

#[test]
fn a_carrier_without_the_vip_vhid_is_named_with_its_host_deploy() {
    let lab = lab();
    let mut observed = healthy(&lab);
    set_carp(&mut observed, "lab2-haproxy-es", vec![]);
    assert_eq!(
        vip_problems(&lab, &observed),
        [
            "VIP 198.51.100.10 (vhid 1): lab2-haproxy-es does not carry it: its interface has no such vhid \
          => give vnet0 vhid 1: haelk deploy inventories/lab.yaml --limit lab2"
        ]
    );
}

#[test]
fn a_carrier_whose_interface_cannot_be_read_is_named_and_no_master_is_not_claimed() {
    let lab = lab();
    let mut observed = healthy(&lab);
    host_mut(&mut observed, "lab1").carp.insert(
        "lab1-haproxy-es".to_owned(),
        Err("ifconfig: interface vnet0 does not exist".to_owned()),
    );
    assert_eq!(
        vip_problems(&lab, &observed),
        [
            "VIP 198.51.100.10 (vhid 1): the CARP state of lab1-haproxy-es cannot be read: \
          ifconfig: interface vnet0 does not exist => check that lab1-haproxy-es has the \
          interface vnet0 (cluster.carp.interface): haelk deploy inventories/lab.yaml --limit lab1"
        ]
    );
}

#[test]
fn the_carp_cell_says_no_vhid_or_unreadable_and_json_has_null_for_both() {
    let lab = lab();
    let mut observed = healthy(&lab);
    set_carp(&mut observed, "lab2-haproxy-es", vec![]);
    host_mut(&mut observed, "lab2").carp.insert(
        "lab2-haproxy-kibana".to_owned(),
        Err("ifconfig: interface vnet0 does not exist".to_owned()),
    );
    let estate = Estate::build(&lab.inventory, &lab.desired, &observed);
    let table = render(&estate, PLAIN);
    let haproxy = &table[table.find("HAProxy\n").expect("the HAProxy section")..];
    let row = |jail: &str| {
        haproxy
            .lines()
            .find(|l| l.contains(jail))
            .unwrap_or_else(|| panic!("{jail} in {table}"))
            .to_owned()
    };
    assert!(row("lab2-haproxy-es").contains("no vhid"), "{table}");
    assert!(row("lab2-haproxy-kibana").contains("unreadable"), "{table}");
    let json = serde_json::to_value(&estate).unwrap();
    let carp_of = |vip: usize, jail: &str| {
        json["haproxy"][vip]["frontends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["jail"] == jail)
            .unwrap()["carp"]
            .clone()
    };
    assert_eq!(carp_of(0, "lab2-haproxy-es"), serde_json::Value::Null);
    assert_eq!(carp_of(1, "lab2-haproxy-kibana"), serde_json::Value::Null);
    assert_eq!(carp_of(0, "lab1-haproxy-es"), "MASTER");
}

#[test]
fn without_every_carrier_reached_no_master_is_not_claimed() {
    let lab = lab();
    let mut observed = healthy(&lab);
    // lab1, which holds both VIPs, cannot be reached; lab2's carriers are BACKUP.
    host_mut(&mut observed, "lab1").facts = Err("connection refused".to_owned());
    assert_eq!(vip_problems(&lab, &observed), Vec::<String>::new());
}
