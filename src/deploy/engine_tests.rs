//! The deploy engine's plays driven against scripted hosts
//! ([`ScriptedRemote`]) and loopback stand-ins of the Elasticsearch API, no
//! lab: the host_ready gate's wait and timeout, `--forks` over a play, the
//! haproxy play's gates reading each host once, finding an Elasticsearch node,
//! the CARP handover before a master's haproxy restarts (and the refusal to
//! restart it when no peer takes its VIP), the Elasticsearch play (refusing a rolling restart when the cluster is not
//! green, the elected master never first, a failing host stopping only its own
//! work in its batch), and a `--limit`ed host play checking every host.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Engine, Options, Progress, Rendered};
use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory, Role};
use crate::plan::{HostPlan, JailPlan, ServiceAction, Step};
use crate::playbook::{Play, Playbook};
use crate::progress::Event;
use crate::remote::scripted::{InFlight, ScriptedRemote, failed, ok};

/// What the engine borrows: built once per test.
struct World {
    inventory: Inventory,
    playbook: Playbook,
    rendered: Rendered,
    options: Options,
}

impl World {
    /// The lab inventory and a playbook of `plays` (YAML list items).
    fn new(plays: &str, forks: Option<usize>) -> Self {
        Self::with_inventory(crate::testing::lab(), plays, forks)
    }

    /// As [`World::new`], with `inventory` instead of the lab's.
    fn with_inventory(inventory: Inventory, plays: &str, forks: Option<usize>) -> Self {
        let playbook = Playbook::parse(&format!("plays:\n{plays}"), Path::new("test.yaml"))
            .expect("a valid playbook");
        let rendered = Rendered::new(&inventory, None).expect("the lab renders");
        Self {
            inventory,
            playbook,
            rendered,
            options: Options {
                forks,
                ..Options::default()
            },
        }
    }

    fn play(&self, name: &str) -> &Play {
        self.playbook
            .plays
            .iter()
            .find(|p| p.name == name)
            .expect("the play")
    }

    /// An engine over every lab host, each with the remote `remote` makes for
    /// it, facts and the plan `plan` makes for it.
    fn engine(
        &self,
        remote: impl Fn(&Host) -> ScriptedRemote,
        plan: impl Fn(&Host) -> HostPlan,
    ) -> Engine<'_, ScriptedRemote> {
        let hosts = self.inventory.hosts.iter().map(|h| h.name.as_str());
        let forks = self.options.forks.unwrap_or(self.inventory.hosts.len());
        let mut engine = Engine::new(
            &self.inventory,
            &self.playbook,
            &self.rendered,
            &self.options,
            Progress::new(hosts, false),
            forks,
        );
        for host in &self.inventory.hosts {
            engine.add_host(host, true, Ok(remote(host)));
            let run = engine.hosts.last_mut().expect("just added");
            run.facts = Some(HostFacts::default());
            run.plan = Some(plan(host));
        }
        engine
    }

    fn remote(engine: &Engine<'_, ScriptedRemote>, host: &str) -> Vec<String> {
        let run = engine
            .hosts
            .iter()
            .find(|r| r.name() == host)
            .expect("the host");
        run.remote.as_ref().expect("connected").ran()
    }
}

/// A host play of one step (the same on every host).
fn one_step(_: &Host) -> HostPlan {
    HostPlan {
        prepare: vec![Step::Command("true".into())],
        jails: Vec::new(),
        unchanged: 0,
    }
}

/// What the host play's listing prints when `jails` run.
fn listing<'j>(jails: impl IntoIterator<Item = &'j str>) -> String {
    let mut out = "@@haelk running jails\n".to_owned();
    for jail in jails {
        out.push_str(jail);
        out.push('\n');
    }
    out
}

fn every_jail(host: &Host) -> String {
    listing(host.jails.iter().map(|j| j.name.as_str()))
}

const HOSTS_PLAY: &str =
    "  - { name: hosts, target: hosts, serial: 4, gate: host_ready, gate_timeout: 1s }\n";

#[tokio::test]
async fn the_host_play_waits_for_a_jail_that_is_not_running_yet() {
    let world = World::new(HOSTS_PLAY, None);
    let mut engine = world.engine(
        |host| {
            let all = every_jail(host);
            if host.name.as_str() != "lab3" {
                return ScriptedRemote::new(host.name.as_str()).answer("jls", ok(&all));
            }
            // lab3's jail shows up at the second listing.
            let listings = AtomicUsize::new(0);
            ScriptedRemote::new("lab3").answer_with(
                |script| script.contains("jls"),
                move |_| match listings.fetch_add(1, Ordering::SeqCst) {
                    0 => ok(&listing([])),
                    _ => ok(&all),
                },
            )
        },
        one_step,
    );
    let result = engine.play(world.play("hosts")).await;
    assert!(result.is_ok(), "{:?}", engine.summary().errors());
    let lab3 = World::remote(&engine, "lab3");
    assert_eq!(lab3.len(), 2, "the host play, then one listing: {lab3:#?}");
    assert!(lab3[0].contains("true"), "{}", lab3[0]);
    assert!(!lab3[1].contains("true"), "the steps ran once: {}", lab3[1]);
    assert_eq!(engine.verified, ["jails 9/9 running"]);
}

#[tokio::test]
async fn the_host_play_fails_a_host_whose_jail_never_runs_after_its_gate_timeout() {
    let world = World::new(HOSTS_PLAY, None);
    let mut engine = world.engine(
        |host| {
            let listed = if host.name.as_str() == "lab3" {
                listing([])
            } else {
                every_jail(host)
            };
            ScriptedRemote::new(host.name.as_str()).answer("jls", ok(&listed))
        },
        one_step,
    );
    assert!(engine.play(world.play("hosts")).await.is_err());
    assert_eq!(
        engine.summary().errors(),
        ["lab3: gate host_ready: jails not running after 1s: lab3-elasticsearch"]
    );
    assert!(
        World::remote(&engine, "lab3").len() > 1,
        "it read the jails again before giving up"
    );
}

#[tokio::test]
async fn forks_limits_how_many_hosts_a_play_works_on_at_once() {
    for (forks, most) in [(Some(1), 1), (Some(2), 2), (None, 4)] {
        let world = World::new(HOSTS_PLAY, forks);
        let in_flight = Arc::new(InFlight::default());
        let mut engine = world.engine(
            |host| {
                ScriptedRemote::new(host.name.as_str())
                    .answer("jls", ok(&every_jail(host)))
                    .with_in_flight(in_flight.clone())
            },
            one_step,
        );
        engine.play(world.play("hosts")).await.unwrap_or_else(|_| {
            panic!("{:?}", engine.summary().errors());
        });
        assert_eq!(in_flight.most(), most, "--forks {forks:?}");
    }
}

/// `show stat` of a lab host's haproxy jails, every server UP.
fn stats_up(host: &Host) -> String {
    let mut out = String::new();
    for jail in host.jails.iter().filter(|j| j.role == Role::Haproxy) {
        let (backend, servers) = match jail.fronts {
            Some(Role::Kibana) => ("kibana_nodes", ["lab1-kibana", "lab2-kibana"]),
            _ => (
                "elasticsearch_nodes",
                ["lab1-elasticsearch", "lab2-elasticsearch"],
            ),
        };
        out.push_str(&format!(
            "@@haelk haproxy {}\n# pxname,svname,scur,status\n",
            jail.name
        ));
        for server in servers {
            out.push_str(&format!("{backend},{server},0,UP\n"));
        }
    }
    out
}

/// [`stats_up`] and the `ifconfig vnet0` of each haproxy jail, CARP `state` on
/// its VIP's vhid.
fn stats_and_carp(host: &Host, state: &str) -> String {
    stats_and_carp_of(host, |_| state.to_owned())
}

/// [`stats_and_carp`] with each jail's own state.
fn stats_and_carp_of(host: &Host, state: impl Fn(&str) -> String) -> String {
    let mut out = stats_up(host);
    for jail in host.jails.iter().filter(|j| j.role == Role::Haproxy) {
        out.push_str(&format!(
            "@@haelk carp {}\n{}",
            jail.name,
            carp_ifconfig(jail, &state(jail.name.as_str()))
        ));
    }
    out
}

/// A haproxy jail's `ifconfig vnet0`: CARP `state` on its VIP's vhid (1:
/// Elasticsearch, 2: Kibana, as in inventories/lab.yaml).
fn carp_ifconfig(jail: &crate::inventory::Jail, state: &str) -> String {
    let vhid = if jail.fronts == Some(Role::Kibana) {
        2
    } else {
        1
    };
    format!(
        "vnet0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500\n\
         \tcarp: {state} vhid {vhid} advbase 1 advskew 0\n"
    )
}

/// A haproxy play over both haproxy hosts (a reload each), the hosts answering
/// with `stats`.
fn haproxy_reload_engine<'w>(
    world: &'w World,
    stats: impl Fn(&Host) -> String + 'w,
) -> Engine<'w, ScriptedRemote> {
    world.engine(
        move |host| {
            ScriptedRemote::new(host.name.as_str())
                .answer("show stat", ok(&stats(host)))
                .answer("reload", ok(""))
        },
        |host| haproxy_plays(host, ServiceAction::Reload),
    )
}

/// The scripted CARP of the lab's haproxy jails: lab1's carriers are MASTER
/// unless demoted, lab2's take the VIP while their lab1 peer is demoted (if
/// `peers_preempt`); a haproxy restart lifts its jail's demotion.
#[derive(Clone, Default)]
struct ScriptedCarp {
    demoted: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    peers_preempt: bool,
}

impl ScriptedCarp {
    fn state(&self, jail: &str) -> String {
        let demoted = self.demoted.lock().unwrap();
        let master = match jail.strip_prefix("lab2-") {
            Some(service) => self.peers_preempt && demoted.contains(&format!("lab1-{service}")),
            None => !demoted.contains(jail),
        };
        if master { "MASTER" } else { "BACKUP" }.to_owned()
    }

    /// The JAIL of `jexec JAIL ...` in `script`.
    fn jail_of(script: &str) -> String {
        script
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }

    /// A host whose haproxy jails restart (and lift their demotion) and whose
    /// CARP follows `self`.
    fn remote(&self, host: &Host) -> ScriptedRemote {
        let (stats, single, demote, restart) =
            (self.clone(), self.clone(), self.clone(), self.clone());
        let jails: Vec<crate::inventory::Jail> = host.jails.clone();
        let host = host.clone();
        ScriptedRemote::new(host.name.as_str())
            .answer_with(
                |script| script.contains("show stat"),
                move |_| ok(&stats_and_carp_of(&host, |jail| stats.state(jail))),
            )
            .answer_with(
                |script| script.starts_with("jexec") && script.ends_with("ifconfig vnet0"),
                move |script| {
                    let name = Self::jail_of(script);
                    let jail = jails.iter().find(|j| j.name.as_str() == name).unwrap();
                    ok(&carp_ifconfig(jail, &single.state(&name)))
                },
            )
            .answer_with(
                |script| script.ends_with("sysctl net.inet.carp.demotion=240"),
                move |script| {
                    demote.demoted.lock().unwrap().insert(Self::jail_of(script));
                    ok("")
                },
            )
            .answer_with(
                |script| script.contains("net.inet.carp.demotion=-240"),
                move |script| {
                    let jail = script
                        .split_whitespace()
                        .skip_while(|w| *w != "-j")
                        .nth(1)
                        .map(str::to_owned)
                        .unwrap_or_else(|| Self::jail_of(script.trim_start_matches("if [ \"$(")));
                    restart.demoted.lock().unwrap().remove(&jail);
                    ok("")
                },
            )
    }
}

/// A haproxy play that restarts every haproxy jail, on hosts scripted by `carp`.
fn haproxy_restart_engine<'w>(world: &'w World, carp: &ScriptedCarp) -> Engine<'w, ScriptedRemote> {
    let carp = carp.clone();
    world.engine(
        move |host| carp.remote(host),
        |host| haproxy_plays(host, ServiceAction::Restart),
    )
}

#[tokio::test]
async fn a_master_haproxy_hands_its_vip_to_a_peer_before_it_restarts_and_takes_it_back() {
    let world = World::new(&format!("{HOSTS_PLAY}{HAPROXY_PLAY}"), None);
    let carp = ScriptedCarp {
        peers_preempt: true,
        ..ScriptedCarp::default()
    };
    let mut engine = haproxy_restart_engine(&world, &carp);
    let result = engine.play(world.play("haproxy")).await;
    assert!(result.is_ok(), "{:?}", engine.summary().errors());
    let lab1 = World::remote(&engine, "lab1");
    for jail in ["lab1-haproxy-es", "lab1-haproxy-kibana"] {
        let demoted = lab1
            .iter()
            .position(|s| *s == format!("jexec {jail} sysctl net.inet.carp.demotion=240"))
            .unwrap_or_else(|| panic!("{jail} was not demoted: {lab1:#?}"));
        let restarted = lab1
            .iter()
            .position(|s| s.contains(&format!("service -j {jail} haproxy restart")))
            .expect("restarted");
        assert!(demoted < restarted, "demoted first: {lab1:#?}");
        // Between the two, the play read the peer's CARP: it held the VIP.
        let peer = jail.replace("lab1", "lab2");
        let lab2 = World::remote(&engine, "lab2");
        assert!(
            lab2.contains(&format!("jexec {peer} ifconfig vnet0")),
            "{lab2:#?}"
        );
    }
    // The restart lifted the demotion: lab1 is MASTER again.
    assert!(carp.demoted.lock().unwrap().is_empty());
    // lab2's carriers were BACKUP: restarted without a handover.
    let lab2 = World::remote(&engine, "lab2");
    assert!(
        !lab2
            .iter()
            .any(|s| s.ends_with("net.inet.carp.demotion=240")),
        "{lab2:#?}"
    );
}

#[tokio::test]
async fn a_master_whose_peer_never_takes_the_vip_is_not_restarted_and_is_undemoted() {
    let world = World::new(&format!("{HOSTS_PLAY}{HAPROXY_PLAY}"), None);
    let carp = ScriptedCarp::default();
    let mut engine = haproxy_restart_engine(&world, &carp);
    let Err(stop) = engine.play(world.play("haproxy")).await else {
        panic!("a restart went ahead without a handover");
    };
    let text = format!("{stop:?}");
    assert!(
        text.contains("no other carrier of VIP")
            && text.contains("not stopping its haproxy")
            && text.contains("(demotion lifted)"),
        "{text}"
    );
    let lab1 = World::remote(&engine, "lab1");
    assert!(
        !lab1.iter().any(|s| s.contains("haproxy restart")),
        "{lab1:#?}"
    );
    assert!(carp.demoted.lock().unwrap().is_empty(), "lifted again");
}

const HAPROXY_PLAY: &str = "  - { name: haproxy, target: haproxy, serial: 1, gate: haproxy_backends_up, gate_timeout: 1s }\n";

#[tokio::test]
async fn the_closing_haproxy_gate_waits_for_one_carp_master_per_vip_then_names_the_vip() {
    let world = World::new(&format!("{HOSTS_PLAY}{HAPROXY_PLAY}"), None);
    let mut engine = haproxy_reload_engine(&world, |host| stats_and_carp(host, "BACKUP"));
    let Err(stop) = engine.play(world.play("haproxy")).await else {
        panic!("a VIP without a CARP master passed the gate");
    };
    let text = format!("{stop:?}");
    assert!(
        text.contains("VIP 198.51.100.10: no carrier is CARP MASTER")
            && text.contains("VIP 198.51.100.20: no carrier is CARP MASTER"),
        "{text}"
    );
    // It waited, reading the carriers again.
    let reads = World::remote(&engine, "lab1")
        .iter()
        .filter(|s| s.contains("ifconfig vnet0"))
        .count();
    assert!(reads > 1, "{reads} reads");
}

#[tokio::test]
async fn the_haproxy_play_reads_each_host_once_when_every_batch_was_gated() {
    let world = World::new(&format!("{HOSTS_PLAY}{HAPROXY_PLAY}"), None);
    // lab1's carriers are MASTER, lab2's BACKUP: one master per VIP.
    let mut engine = haproxy_reload_engine(&world, |host| {
        let state = if host.name.as_str() == "lab1" {
            "MASTER"
        } else {
            "BACKUP"
        };
        stats_and_carp(host, state)
    });
    let result = engine.play(world.play("haproxy")).await;
    assert!(result.is_ok(), "{:?}", engine.summary().errors());
    for host in ["lab1", "lab2"] {
        let reads = World::remote(&engine, host)
            .iter()
            .filter(|s| s.contains("show stat"))
            .count();
        assert_eq!(reads, 1, "{host}: its batch's gate only");
    }
    assert_eq!(
        engine.verified,
        ["haproxy es 2/2 UP, kibana 2/2 UP"],
        "the closing line counts what the batch gates saw"
    );
}

#[tokio::test]
async fn the_engine_finds_an_elasticsearch_node_with_locate_skipping_the_one_it_restarts() {
    use crate::remote::scripted::http_once;
    let world = World::new(HOSTS_PLAY, None);
    let root = |name: &str| {
        format!(
            r#"{{"name":"{name}","cluster_name":"c","cluster_uuid":"u-1","version":{{"number":"8.15.0"}}}}"#
        )
    };
    let lab1 = http_once(200, &root("lab1-elasticsearch")).await;
    let lab2 = http_once(200, &root("lab2-elasticsearch")).await;
    let engine = world.engine(
        |host| {
            let remote = ScriptedRemote::new(host.name.as_str());
            match host.name.as_str() {
                "lab1" => remote.with_tunnel(lab1),
                "lab2" => remote.with_tunnel(lab2),
                // lab3's node cannot be reached: no tunnel.
                _ => remote,
            }
        },
        one_step,
    );
    let first = engine.es_client(None).await.expect("a node answers");
    assert_eq!(
        (first.jail.as_str(), first.root.name.as_str()),
        ("lab1-elasticsearch", "lab1-elasticsearch")
    );
    let other = engine
        .es_client(Some("lab1-elasticsearch"))
        .await
        .expect("another node answers");
    assert_eq!(other.jail, "lab2-elasticsearch");
    assert_eq!(
        first.root.formed_cluster_uuid(),
        Some("u-1"),
        "the answer that located the node says whether the cluster formed"
    );
}

#[tokio::test]
async fn a_host_whose_bridge_is_missing_without_an_uplink_is_refused_before_any_change() {
    let mut inventory = crate::testing::lab();
    for host in &mut inventory.hosts {
        if host.name.as_str() == "lab3" {
            host.jail_defaults.uplink = None;
        }
    }
    let world = World::with_inventory(inventory, HOSTS_PLAY, None);
    let mut engine = world.engine(|host| ScriptedRemote::new(host.name.as_str()), one_step);
    let desired = world.rendered.state(crate::desired::ClusterPhase::Formed);
    for run in &mut engine.hosts {
        let state = desired
            .hosts
            .iter()
            .find(|h| h.host == run.host.name)
            .expect("desired");
        let mut facts = crate::testing::converged_facts(state);
        if run.name() == "lab3" {
            facts.interfaces.remove("bridge0");
        }
        run.facts = Some(facts);
        run.plan = None;
    }
    engine.make_plans();
    for run in &engine.hosts {
        if run.name() == "lab3" {
            assert!(run.plan.is_none(), "lab3 is refused, not planned");
            let error = run.error.as_deref().expect("lab3 failed");
            for part in ["host lab3", "bridge0", "jails.uplink"] {
                assert!(error.contains(part), "{error}");
            }
        } else {
            assert!(run.error.is_none(), "{}: {:?}", run.name(), run.error);
            assert!(run.plan.as_ref().is_some_and(HostPlan::is_empty));
        }
        assert!(run.remote.as_ref().expect("connected").ran().is_empty());
    }
}

// ---------------------------------------------------- the Elasticsearch play --

const ES_PLAY: &str = "  - { name: elasticsearch, target: elasticsearch, serial: 1, gate: elasticsearch_green, gate_timeout: 1s }\n";

/// The lab's Elasticsearch jails, in file order.
const ES_JAILS: [&str; 3] = [
    "lab1-elasticsearch",
    "lab2-elasticsearch",
    "lab3-elasticsearch",
];

/// `host`'s jails of `role` (rc service `service`), each with `action` to do
/// (`was_running`: it serves), and nothing else.
fn role_plan(
    host: &Host,
    role: Role,
    service: &str,
    action: ServiceAction,
    was_running: bool,
) -> HostPlan {
    HostPlan {
        jails: host
            .jails
            .iter()
            .filter(|j| j.role == role)
            .map(|jail| JailPlan {
                name: jail.name.clone(),
                root: format!("/jails/{}", jail.name).into(),
                service: service.into(),
                writes: Vec::new(),
                action,
                was_running,
            })
            .collect(),
        prepare: Vec::new(),
        ..one_step(host)
    }
}

/// `host`'s Elasticsearch jail with `action` to do (`was_running`: it serves).
fn es_plan(host: &Host, action: ServiceAction, was_running: bool) -> HostPlan {
    role_plan(
        host,
        Role::Elasticsearch,
        "elasticsearch",
        action,
        was_running,
    )
}

/// `host`'s haproxy jails, each with `action` to do.
fn haproxy_plays(host: &Host, action: ServiceAction) -> HostPlan {
    role_plan(host, Role::Haproxy, "haproxy", action, true)
}

/// One node of a formed three-node cluster whose elected master is `master`
/// and whose health is `health`, answering as `name`.
async fn es_node(name: &str, master: &str, health: &str) -> std::net::SocketAddr {
    use crate::remote::scripted::http_server;
    let id = |node: &str| format!("id-{node}");
    let info: Vec<String> = ES_JAILS
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                r#""{}":{{"name":"{n}","ip":"127.0.20.{}4","roles":["master","data"]}}"#,
                id(n),
                i + 1
            )
        })
        .collect();
    let state: Vec<String> = ES_JAILS
        .iter()
        .map(|n| format!(r#""{}":{{"name":"{n}","ephemeral_id":"e-{n}"}}"#, id(n)))
        .collect();
    http_server(vec![
        (
            "/",
            200,
            format!(
                r#"{{"name":"{name}","cluster_name":"lab","cluster_uuid":"u-1","version":{{"number":"8.15.0"}}}}"#
            ),
        ),
        (
            "/_cluster/health",
            200,
            format!(
                r#"{{"cluster_name":"lab","status":"{health}","timed_out":false,"number_of_nodes":3,"number_of_data_nodes":3,"active_primary_shards":1,"active_shards":1,"relocating_shards":0,"initializing_shards":0,"unassigned_shards":1,"delayed_unassigned_shards":0,"number_of_pending_tasks":0,"number_of_in_flight_fetch":0,"task_max_waiting_in_queue_millis":0,"active_shards_percent_as_number":50.0}}"#
            ),
        ),
        ("/_cluster/settings", 200, r#"{"persistent":{},"transient":{}}"#.to_owned()),
        ("/_nodes", 200, format!(r#"{{"nodes":{{{}}}}}"#, info.join(","))),
        (
            "/_cluster/state/master_node,nodes",
            200,
            format!(
                r#"{{"cluster_name":"lab","master_node":"{}","nodes":{{{}}}}}"#,
                id(master),
                state.join(",")
            ),
        ),
    ])
    .await
}

/// An engine whose every Elasticsearch node must restart, over a cluster of
/// `health` whose elected master is `master`.
async fn restarting_engine<'w>(
    world: &'w World,
    master: &str,
    health: &str,
) -> Engine<'w, ScriptedRemote> {
    es_engine(world, master, health, ServiceAction::Restart, stats_up).await
}

/// An engine whose every Elasticsearch node has `action` to do, over a cluster
/// of `health` whose elected master is `master`; hosts answer `show stat` with
/// `stats`.
async fn es_engine<'w>(
    world: &'w World,
    master: &str,
    health: &str,
    action: ServiceAction,
    stats: fn(&Host) -> String,
) -> Engine<'w, ScriptedRemote> {
    let mut nodes = std::collections::BTreeMap::new();
    for jail in ES_JAILS {
        nodes.insert(jail, es_node(jail, master, health).await);
    }
    world.engine(
        move |host| {
            let jail = format!("{}-elasticsearch", host.name);
            let remote = ScriptedRemote::new(host.name.as_str())
                .answer("show stat", ok(&stats(host)))
                .answer("haelk:cluster-uuid", ok(""));
            match nodes.get(jail.as_str()) {
                Some(node) => remote.with_tunnel(*node),
                None => remote,
            }
        },
        move |host| es_plan(host, action, true),
    )
}

#[tokio::test]
async fn a_stopped_haproxy_does_not_stop_the_elasticsearch_play_the_haproxy_play_starts_it() {
    // lab1-haproxy-es's haproxy is stopped: its socket refuses. It holds no
    // server in MAINT, so the Elasticsearch play goes on (the haproxy play,
    // later, starts it again).
    fn lab1_haproxy_stopped(host: &Host) -> String {
        let stats = stats_up(host);
        let Some((before, after)) = stats.split_once("@@haelk haproxy lab1-haproxy-es\n") else {
            return stats;
        };
        // Its rows end where the next jail's section begins.
        let rest = after.find("@@haelk").map_or("", |i| &after[i..]);
        format!(
            "{before}@@haelk haproxy lab1-haproxy-es\n\
             nc: /var/run/haproxy.sock: Connection refused\ncannot read the haproxy stats socket\n{rest}"
        )
    }
    let world = World::new(&format!("{HOSTS_PLAY}{ES_PLAY}"), None);
    let mut engine = es_engine(
        &world,
        "lab1-elasticsearch",
        "green",
        ServiceAction::None,
        lab1_haproxy_stopped,
    )
    .await;
    let result = engine.play(world.play("elasticsearch")).await;
    assert!(result.is_ok(), "{:?}", engine.summary().errors());
}

#[tokio::test]
async fn a_rolling_restart_is_refused_when_the_cluster_is_not_green_and_nothing_stops() {
    let world = World::new(&format!("{HOSTS_PLAY}{ES_PLAY}"), None);
    let mut engine = restarting_engine(&world, "lab1-elasticsearch", "yellow").await;
    assert!(engine.play(world.play("elasticsearch")).await.is_err());
    let errors = engine.summary().errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("the cluster is yellow")
            && errors[0].contains("refusing to stop a node"),
        "{errors:?}"
    );
    for host in ["lab1", "lab2", "lab3", "lab4"] {
        let ran = World::remote(&engine, host);
        // Read, and its server (never drained) left ready; no node stopped.
        assert!(
            ran.iter()
                .all(|s| s.contains("show stat") || s.contains("state ready'")),
            "{host}: {ran:#?}"
        );
        assert!(
            !ran.iter()
                .any(|s| s.contains("restart") || s.contains("maint")),
            "{host}: {ran:#?}"
        );
    }
    assert!(engine.verified.is_empty(), "no gate passed");
}

/// A node of a cluster that has no elected master: it answers `GET /`, and
/// holds every request that needs the master until ES gives up (503).
async fn es_node_without_master(name: &str) -> std::net::SocketAddr {
    use crate::remote::scripted::http_server;
    let no_master =
        r#"{"error":{"type":"master_not_discovered_exception","reason":null},"status":503}"#;
    http_server(vec![
        (
            "/",
            200,
            format!(
                r#"{{"name":"{name}","cluster_name":"lab","cluster_uuid":"u-1","version":{{"number":"8.15.0"}}}}"#
            ),
        ),
        ("/_cluster/health", 503, no_master.to_owned()),
        ("/_cluster/settings", 503, no_master.to_owned()),
    ])
    .await
}

#[tokio::test]
async fn a_formed_cluster_without_an_elected_master_stops_the_play_before_any_node_is_touched() {
    // A host just rebooted: the cluster may still be electing. The play waits
    // for a master (gate_timeout, 1 s here), then stops, saying why.
    let world = World::new(&format!("{HOSTS_PLAY}{ES_PLAY}"), None);
    let mut nodes = std::collections::BTreeMap::new();
    for jail in ES_JAILS {
        nodes.insert(jail, es_node_without_master(jail).await);
    }
    let mut engine = world.engine(
        |host| {
            let jail = format!("{}-elasticsearch", host.name);
            let remote =
                ScriptedRemote::new(host.name.as_str()).answer("show stat", ok(&stats_up(host)));
            match nodes.get(jail.as_str()) {
                Some(node) => remote.with_tunnel(*node),
                None => remote,
            }
        },
        |host| es_plan(host, ServiceAction::Restart, true),
    );
    let stop = engine
        .play(world.play("elasticsearch"))
        .await
        .expect_err("no master: the play stops");
    let why = format!("{stop:?}");
    assert!(
        why.contains("the election of a master did not happen within 1s")
            && why.contains("master_not_discovered_exception"),
        "{why}"
    );
    for host in ["lab1", "lab2", "lab3", "lab4"] {
        let ran = World::remote(&engine, host);
        assert!(
            ran.is_empty(),
            "{host}: nothing runs on the hosts: {ran:#?}"
        );
    }
}

#[tokio::test]
async fn the_elected_master_is_never_the_first_node_a_rolling_restart_stops() {
    // The refusal (yellow) names the first node the play went for: never the
    // master, whichever node that is; the others keep their file order.
    for (master, first) in [
        ("lab1-elasticsearch", "lab2-elasticsearch"),
        ("lab2-elasticsearch", "lab1-elasticsearch"),
        ("lab3-elasticsearch", "lab1-elasticsearch"),
    ] {
        let world = World::new(&format!("{HOSTS_PLAY}{ES_PLAY}"), None);
        let mut engine = restarting_engine(&world, master, "yellow").await;
        assert!(engine.play(world.play("elasticsearch")).await.is_err());
        let errors = engine.summary().errors();
        let host = &first[..4];
        assert!(
            errors.len() == 1 && errors[0].starts_with(&format!("{host}: {first}: ")),
            "master {master}: {errors:?}"
        );
    }
}

#[tokio::test]
async fn a_host_whose_node_fails_to_start_stops_only_its_own_work_and_the_batch_finishes() {
    let world = World::new(&format!("{HOSTS_PLAY}{ES_PLAY}"), None);
    let mut engine = world.engine(
        |host| {
            let remote = ScriptedRemote::new(host.name.as_str());
            if host.name.as_str() == "lab1" {
                remote.answer("", failed(1, "jail: lab1-elasticsearch: failed to start"))
            } else {
                remote.answer("", ok(""))
            }
        },
        |host| es_plan(host, ServiceAction::Start, false),
    );
    // A first deploy: nothing is asked of a cluster that has not formed.
    engine.phase = crate::desired::ClusterPhase::Bootstrap;
    let (progress, shown) = Progress::recording();
    engine.progress = progress;
    assert!(engine.play(world.play("elasticsearch")).await.is_err());
    engine.progress.finish().await;
    let shown = shown.lock().unwrap().clone();
    let failed: Vec<&Event> = shown
        .iter()
        .filter(|e| matches!(e, Event::Failed { .. }))
        .collect();
    assert!(
        !failed.is_empty()
            && failed.iter().all(|e| **e
                == Event::Failed {
                    host: "lab1".into()
                }),
        "lab1's line shows it failed as soon as its batch is over: {shown:#?}"
    );
    assert!(
        shown.contains(&Event::Line("  lab2-elasticsearch: start".into())),
        "{shown:#?}"
    );
    let errors = engine.summary().errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("lab1: "), "{errors:?}");
    for host in ["lab2", "lab3"] {
        let ran = World::remote(&engine, host);
        assert_eq!(ran.len(), 1, "{host} started its node: {ran:#?}");
        assert!(
            ran[0].contains(&format!("{host}-elasticsearch")),
            "{}",
            ran[0]
        );
    }
    assert_eq!(
        engine
            .summary()
            .hosts
            .iter()
            .map(|h| h.changed)
            .collect::<Vec<_>>(),
        [0, 1, 1, 0],
        "the others' starts count; the failed one does not"
    );
    assert!(engine.verified.is_empty(), "no gate after a failed batch");
}

// ------------------------------------------------------------------ --limit --

#[tokio::test]
async fn a_limited_host_play_changes_only_its_host_and_checks_every_host() {
    let world = World::new(HOSTS_PLAY, None);
    let mut engine = world.engine(
        |host| ScriptedRemote::new(host.name.as_str()).answer("jls", ok(&every_jail(host))),
        one_step,
    );
    for run in &mut engine.hosts {
        run.changes = run.name() == "lab2";
        let running = crate::facts::JailFacts {
            running: true,
            ..Default::default()
        };
        let facts = run.facts.as_mut().expect("set by the world");
        for jail in &run.host.jails {
            facts.jails.insert(jail.name.to_string(), running.clone());
        }
    }
    // lab3's facts say a jail is stopped: the check covers hosts not changed.
    engine.hosts[2]
        .facts
        .as_mut()
        .expect("set")
        .jails
        .values_mut()
        .for_each(|j| j.running = false);
    assert!(engine.play(world.play("hosts")).await.is_err());
    assert_eq!(World::remote(&engine, "lab1"), Vec::<String>::new());
    assert_eq!(World::remote(&engine, "lab3"), Vec::<String>::new());
    assert_eq!(World::remote(&engine, "lab4"), Vec::<String>::new());
    assert_eq!(World::remote(&engine, "lab2").len(), 1, "lab2's host play");
    assert_eq!(
        engine.summary().errors(),
        ["lab3: gate host_ready: jails not running: lab3-elasticsearch"],
        "a host the limit leaves alone is still checked"
    );
}
