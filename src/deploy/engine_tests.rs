//! The deploy engine's plays driven against scripted hosts
//! ([`ScriptedRemote`]), no lab: the host_ready gate's wait and timeout,
//! `--forks` over a play, the haproxy play's gates reading each host once, and
//! finding an Elasticsearch node.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::super::{Engine, Options, Progress, Rendered};
use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory, Role};
use crate::plan::{HostPlan, JailPlan, ServiceAction, Step};
use crate::playbook::{Play, Playbook};
use crate::remote::scripted::{InFlight, ScriptedRemote, ok};

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

/// A host play of one step on `host`.
fn one_step(host: &Host) -> HostPlan {
    HostPlan {
        host: host.name.clone(),
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

#[tokio::test]
async fn the_haproxy_play_reads_each_host_once_when_every_batch_was_gated() {
    let world = World::new(
        &format!(
            "{HOSTS_PLAY}  - {{ name: haproxy, target: haproxy, serial: 1, gate: haproxy_backends_up, gate_timeout: 1s }}\n"
        ),
        None,
    );
    let mut engine = world.engine(
        |host| {
            ScriptedRemote::new(host.name.as_str())
                .answer("show stat", ok(&stats_up(host)))
                .answer("reload", ok(""))
        },
        |host| HostPlan {
            jails: host
                .jails
                .iter()
                .filter(|j| j.role == Role::Haproxy)
                .map(|jail| JailPlan {
                    name: jail.name.clone(),
                    role: Role::Haproxy,
                    root: "/jails/x".into(),
                    service: "haproxy".into(),
                    writes: Vec::new(),
                    action: ServiceAction::Reload,
                    was_running: true,
                })
                .collect(),
            prepare: Vec::new(),
            ..one_step(host)
        },
    );
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
