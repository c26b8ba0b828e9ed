//! The VIPs under faults and changes, with clients using them (issue 13).
//!
//! - A power cut of the host whose haproxy jails hold both VIPs: the VIPs move to
//!   the other host on their own (CARP, no haelk involved), the clients are served
//!   again through the same addresses, `status` says where the VIPs went and what
//!   is missing, and after power-on one deploy brings the estate back to healthy.
//! - The VIP host cut off the network (its cable out, everything on it running):
//!   the other side, with the master quorum, takes the VIPs and goes on serving
//!   reads and writes; the cut-off node refuses writes; once the cable is back the
//!   estate is healthy again with every acknowledged document present.
//! - A change that restarts every haproxy, under load: each CARP master hands
//!   its VIP to its peer before its haproxy stops (the deploy says so), and
//!   takes it back once haproxy runs again (preemption, from the jails'
//!   sysctl.conf), so the VIPs end where the inventory prefers them.
//! - A template change that reloads every haproxy, under load: not one failed
//!   request (a reload is seamless and does not move a VIP).
//! - haproxy killed on the master, its host up: the jail's CARP watch demotes it,
//!   the peer takes the VIP and serves; deploy starts haproxy again, the watch
//!   lifts the demotion and preemption brings the VIP back.
//!
//! How long the VIPs were silent is printed, not asserted (figures are the
//! bench's job: `bench/carp-failover`).

use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::labkit::{
    Client, ES_VIP, EditedInventory, KIBANA_VIP, Probe, Samples, document_count, lab, labctl,
    on_console, on_host, repo, try_document_count,
};
use crate::restart::deploy_without_failure;
use crate::status::{assert_healthy, status_json};

const INVENTORY: &str = "inventories/lab.yaml";

/// Each VIP's master jail as `status` names it (None: no single master seen).
fn vip_masters(estate: &Value) -> Vec<(String, Option<String>)> {
    estate["haproxy"]
        .as_array()
        .expect("haproxy rows")
        .iter()
        .map(|vip| {
            (
                vip["vip"].as_str().expect("vip").to_owned(),
                vip["master"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The lab host a jail runs on: its name's first part (`lab1-haproxy-es`).
fn host_of(jail: &str) -> &str {
    jail.split('-').next().expect("a jail name has a host part")
}

/// Waits (at most `within`) until `status` names a master for every VIP on a
/// host other than `gone`; the last status read.
fn wait_for_masters_off(gone: &str, within: Duration) -> (Option<i32>, Value) {
    let deadline = Instant::now() + within;
    loop {
        let (code, estate) = status_json(&[]);
        let moved = vip_masters(&estate)
            .iter()
            .all(|(_, master)| master.as_deref().is_some_and(|m| host_of(m) != gone));
        if moved {
            return (code, estate);
        }
        assert!(
            Instant::now() < deadline,
            "the VIPs did not move off {gone} within {within:?}: {:?}",
            vip_masters(&estate)
        );
        sleep(Duration::from_secs(1));
    }
}

/// Clients on both VIPs during an event: one writing and reading documents
/// through the ES VIP, and a probe on each VIP.
struct Load {
    index: String,
    client: Client,
    es: Probe,
    kibana: Probe,
}

/// What a [`Load`] saw.
struct Seen {
    index: String,
    es: Samples,
    kibana: Samples,
    written: usize,
    failures: Vec<String>,
}

impl Load {
    fn start(event: &str) -> Self {
        let index = format!("{event}-{}", std::process::id());
        Self {
            client: Client::start(index.clone()),
            es: Probe::start(ES_VIP, "/"),
            kibana: Probe::start(KIBANA_VIP, "/api/status"),
            index,
        }
    }

    /// Stops the clients and prints their figures as `EVENT figures: ...`.
    fn finish(self, event: &str) -> Seen {
        let es = self.es.finish();
        let kibana = self.kibana.finish();
        let (written, failures) = self.client.finish();
        eprintln!(
            "{event} figures: ES VIP gaps {:.1?} ({} failed), Kibana VIP gaps {:.1?} \
             ({} failed); client: {written} writes, {} failed requests",
            es.gaps(),
            es.failed(),
            kibana.gaps(),
            kibana.failed(),
            failures.len()
        );
        Seen {
            index: self.index,
            es,
            kibana,
            written,
            failures,
        }
    }
}

impl Seen {
    /// Both VIPs answer again, and every write the client saw acknowledged is there.
    fn assert_served_again_with_every_write(&self) {
        assert!(self.es.answers_at_the_end(10), "the ES VIP answers again");
        assert!(
            self.kibana.answers_at_the_end(10),
            "the Kibana VIP answers again"
        );
        assert_eq!(
            document_count(&self.index),
            self.written,
            "every acknowledged write is there"
        );
    }
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_power_cut_of_the_host_holding_the_vips_moves_them_and_deploy_brings_the_host_back() {
    let _lab = lab();
    deploy_without_failure(INVENTORY);
    let holder = vip_host();

    let load = Load::start("power-cut");
    sleep(Duration::from_secs(2));
    labctl(&["power-off", &holder]);
    let cut = Instant::now();

    let (code, estate) = wait_for_masters_off(&holder, Duration::from_secs(60));
    let moved_after = cut.elapsed();
    assert_eq!(code, Some(1), "a host is down: status is not healthy");
    let problems = estate["problems"].to_string();
    assert!(
        problems.contains(&format!("{holder} is unreachable")),
        "{problems}"
    );
    // The clients are served again through the same addresses.
    let before = wait_for("the ES VIP answers", Duration::from_secs(60), || {
        try_document_count(&load.index)
    });
    sleep(Duration::from_secs(3));
    eprintln!(
        "power-cut figures: status named the VIPs off {holder} {moved_after:.1?} after the cut"
    );
    let seen = load.finish("power-cut");
    assert!(
        seen.written > before,
        "writes go on after the cut ({before} -> {})",
        seen.written
    );
    seen.assert_served_again_with_every_write();

    labctl(&["power-on", &holder]);
    deploy_without_failure(INVENTORY);
    assert_healthy();
}

/// The master-eligible data nodes of inventories/lab.yaml and their addresses.
const ES_ADDRESSES: [(&str, &str); 2] = [
    ("lab1-elasticsearch", "198.51.100.114"),
    ("lab2-elasticsearch", "198.51.100.124"),
];

/// The VIPs' host (both VIPs on one host, as after every deploy).
fn vip_host() -> String {
    let (_, estate) = status_json(&[]);
    let masters = vip_masters(&estate);
    let holder = host_of(masters[0].1.as_deref().expect("the ES VIP has a master")).to_owned();
    assert!(
        masters
            .iter()
            .all(|(_, m)| m.as_deref().map(host_of) == Some(holder.as_str())),
        "one host holds both VIPs after a deploy: {masters:?}"
    );
    holder
}

/// Waits (at most `within`) for `probe()` to return Some.
fn wait_for<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_host_cut_off_the_network_loses_the_vips_refuses_writes_and_heals_with_every_document() {
    let _lab = lab();
    deploy_without_failure(INVENTORY);
    let holder = vip_host();
    let load = Load::start("partition");
    let index = load.index.clone();
    sleep(Duration::from_secs(2));
    labctl(&["unplug", &holder]);

    // The side with the master quorum serves writes through the VIP.
    let during = wait_for(
        "the ES VIP answers from the other side",
        Duration::from_secs(60),
        || try_document_count(&index),
    );
    wait_for(
        "writes go on after the cut",
        Duration::from_secs(60),
        || try_document_count(&index).filter(|&n| n > during),
    );
    // The cut-off node refuses a write, once it knows it has lost the master.
    let node = format!("{holder}-elasticsearch");
    let address = ES_ADDRESSES
        .iter()
        .find(|(jail, _)| *jail == node)
        .map(|(_, address)| *address)
        .expect("the VIP host has an Elasticsearch node");
    let write = format!(
        "jexec {node} curl -s -m 15 -X PUT -H 'Content-Type: application/json' \
         'http://{address}:9200/{index}/_doc/cut-off?timeout=2s' -d '{{\"n\":0}}'"
    );
    let mut answers = Vec::new();
    let refused = wait_for(
        "the cut-off node refuses writes",
        Duration::from_secs(60),
        || {
            let answer = on_console(&holder, &write);
            answers.push(answer.clone());
            answer.contains("no master").then_some(answer)
        },
    );
    assert!(
        !answers.iter().any(|a| a.contains(r#""result":"created""#)),
        "the cut-off node accepted a write: {answers:?}"
    );

    labctl(&["plug", &holder]);
    wait_for(
        "a healthy estate after the cable is back",
        Duration::from_secs(120),
        || (status_json(&[]).0 == Some(0)).then_some(()),
    );
    sleep(Duration::from_secs(2));
    eprintln!(
        "partition figures: the cut-off node answered {}",
        refused.trim()
    );
    load.finish("partition")
        .assert_served_again_with_every_write();
    let (status, body) =
        crate::labkit::http(ES_VIP, "GET", &format!("/{index}/_doc/cut-off"), None).expect("get");
    assert_eq!(status, 404, "the refused write is nowhere: {body}");
    assert_healthy();
}

const HAPROXY_JAILS: [(&str, &str); 4] = [
    ("lab1", "lab1-haproxy-es"),
    ("lab1", "lab1-haproxy-kibana"),
    ("lab2", "lab2-haproxy-es"),
    ("lab2", "lab2-haproxy-kibana"),
];

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_template_change_reloads_every_haproxy_under_load_without_a_failed_request() {
    let _lab = lab();
    deploy_without_failure(INVENTORY);
    let (_, estate) = status_json(&[]);
    let masters_before = vip_masters(&estate);
    let builtin = std::fs::read_to_string(repo().join("templates/haproxy.conf.tera"))
        .expect("the built-in haproxy template");
    let changed = builtin.replace("timeout http-keep-alive 10s", "timeout http-keep-alive 9s");
    assert_ne!(
        changed, builtin,
        "the template has the line this test changes"
    );
    let inventory = EditedInventory::new(|text| format!("templates: templates\n{text}"));
    inventory.write("templates/haproxy.conf.tera", &changed);

    let load = Load::start("reload");
    let printed = deploy_without_failure(&inventory.path());
    sleep(Duration::from_secs(2));
    let seen = load.finish("reload");
    for (host, jail) in HAPROXY_JAILS {
        let conf = on_host(
            host,
            &format!("cat /var/tmp/haelk-lab/mnt/{host}/{jail}/usr/local/etc/haproxy.conf"),
        );
        assert!(
            conf.contains("timeout http-keep-alive 9s"),
            "{jail}: {printed}"
        );
    }
    assert_eq!(
        seen.es.failed(),
        0,
        "ES VIP requests failed during the reloads"
    );
    assert_eq!(
        seen.kibana.failed(),
        0,
        "Kibana VIP requests failed during the reloads"
    );
    assert_eq!(
        seen.failures,
        Vec::<String>::new(),
        "the client saw failures"
    );
    seen.assert_served_again_with_every_write();
    // A reload moves no VIP.
    let (_, estate) = status_json(&[]);
    assert_eq!(vip_masters(&estate), masters_before);
    deploy_without_failure(INVENTORY);
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_change_that_restarts_every_haproxy_hands_each_vip_over_first_and_back_after() {
    let _lab = lab();
    deploy_without_failure(INVENTORY);
    let (_, estate) = status_json(&[]);
    let preferred = vip_masters(&estate);
    let holder = vip_host();
    let builtin = std::fs::read_to_string(repo().join("templates/rc.conf.tera"))
        .expect("the built-in rc.conf template");
    let changed = format!(
        "{builtin}{{% if service == \"haproxy\" %}}\nhaproxy_flags_note=\"rolled\"\n{{% endif %}}"
    );
    let inventory = EditedInventory::new(|text| format!("templates: templates\n{text}"));
    inventory.write("templates/rc.conf.tera", &changed);

    let load = Load::start("handover");
    let printed = deploy_without_failure(&inventory.path());
    sleep(Duration::from_secs(2));
    let seen = load.finish("handover");
    for (host, jail) in HAPROXY_JAILS {
        let restarted = format!("  {jail}: write 1 file, restart");
        assert!(printed.contains(&restarted), "{jail} restarted: {printed}");
        // The VIPs' host is MASTER when its turn comes; the other may be too, if its
        // turn comes before preemption gave the VIP back (timing), and then it hands over.
        let handed = printed.contains(&format!("  {jail}: CARP MASTER handed to"));
        if host == holder {
            assert!(handed, "{jail} handed over first: {printed}");
        }
    }
    for line in printed
        .lines()
        .filter(|l| l.contains("CARP MASTER handed to"))
    {
        let (jail, peer) = line
            .trim()
            .split_once(": CARP MASTER handed to ")
            .expect("a handover line names the jail and its peer");
        assert_ne!(
            host_of(jail),
            host_of(peer),
            "handed to another host: {line}"
        );
    }
    seen.assert_served_again_with_every_write();
    // Preemption gave every VIP back to its preferred carrier.
    let (_, estate) = status_json(&[]);
    assert_eq!(vip_masters(&estate), preferred);
    deploy_without_failure(INVENTORY);
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn a_haproxy_killed_on_the_master_hands_its_vip_over_and_gets_it_back_once_deployed() {
    let _lab = lab();
    deploy_without_failure(INVENTORY);
    let (_, estate) = status_json(&[]);
    let preferred = vip_masters(&estate);
    let holder = vip_host();
    let jail = format!("{holder}-haproxy-es");
    let es_master = |estate: &Value| vip_masters(estate)[0].1.clone();

    let load = Load::start("haproxy-killed");
    sleep(Duration::from_secs(2));
    // A crash: haproxy killed (the lab started it) by the PID in its pidfile.
    on_host(
        &holder,
        &format!("jexec {jail} sh -c 'kill -9 $(cat /var/run/haproxy.pid)'"),
    );
    let (code, estate) = wait_for(
        "the ES VIP moves off the dead haproxy",
        Duration::from_secs(30),
        || {
            let (code, estate) = status_json(&[]);
            es_master(&estate)
                .is_some_and(|m| host_of(&m) != holder)
                .then_some((code, estate))
        },
    );
    assert_eq!(code, Some(1), "a haproxy is down");
    let problems = estate["problems"].to_string();
    assert!(
        problems.contains(&format!("{jail}: haproxy is not running")),
        "{problems}"
    );
    sleep(Duration::from_secs(3));
    let seen = load.finish("haproxy-killed");
    seen.assert_served_again_with_every_write();

    deploy_without_failure(INVENTORY);
    // The watch lifts its demotion once haproxy answers; preemption does the rest.
    wait_for(
        "the VIPs are back where the inventory prefers them",
        Duration::from_secs(30),
        || {
            let (_, estate) = status_json(&[]);
            (vip_masters(&estate) == preferred).then_some(())
        },
    );
    assert_healthy();
}
