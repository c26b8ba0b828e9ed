//! One test per rule proving it fires, one proving every rule stays quiet on the
//! example topology, and tests of the catalogue itself.

use serde_json::json;

use super::*;
use crate::inventory::Location;
use crate::lint::report::SubjectKind;
use crate::lint::testkit::*;

/// Runs the one rule `code` over `inventory`.
fn run(code: &str, inventory: &Inventory) -> Vec<Diagnostic> {
    let rule = RULES
        .iter()
        .find(|r| r.code == code)
        .unwrap_or_else(|| panic!("no rule {code}"));
    let found = (rule.check)(rule, inventory);
    for d in &found {
        assert_eq!(
            (d.code, d.name, d.severity),
            (rule.code, rule.name, rule.severity)
        );
    }
    found
}

/// The single finding of rule `code`; fails when there is not exactly one.
fn one(code: &str, inventory: &Inventory) -> Diagnostic {
    let mut found = run(code, inventory);
    assert_eq!(
        found.len(),
        1,
        "{code}: expected one finding, got {found:#?}"
    );
    found.remove(0)
}

fn subject(d: &Diagnostic) -> (SubjectKind, &str) {
    let s = d.subject.as_ref().expect("a subject");
    (s.kind, s.name.as_str())
}

/// The original ha-elk layout: the example without its tiebreaker host.
fn two_hosts() -> Inventory {
    example().without_host("7c3a-tiebreak").build()
}

#[test]
fn every_rule_is_quiet_on_the_example() {
    // The example is the design lint recommends, and most tests below derive their
    // bad input from it by one change: each rule must stay quiet on it.
    let example = example().build();
    let fired: Vec<Diagnostic> = RULES.iter().flat_map(|r| run(r.code, &example)).collect();
    assert!(fired.is_empty(), "rules fired on the example: {fired:#?}");
}

#[test]
fn rule_codes_ascend_and_names_are_unique() {
    // Codes are never reused, so a retired rule leaves a gap.
    for pair in RULES.windows(2) {
        assert!(
            pair[0].code < pair[1].code,
            "{:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
    for rule in RULES {
        assert!(
            rule.code.len() == 5
                && rule.code.starts_with("HA")
                && rule.code[2..].bytes().all(|b| b.is_ascii_digit()),
            "{rule:?}: codes are HA and three digits"
        );
        assert!(
            RULES.iter().filter(|r| r.name == rule.name).count() == 1,
            "{} is not unique",
            rule.name
        );
    }
}

#[test]
fn docs_describe_every_rule() {
    let docs = include_str!("../../../docs/lint.md");
    for rule in RULES {
        let heading = format!("### {} {}", rule.code, rule.name);
        assert!(docs.contains(&heading), "docs/lint.md lacks `{heading}`");
        let severity = format!("Severity: {}", rule.severity.as_str());
        let section = docs.split(&heading).nth(1).unwrap();
        let section = section.split("\n### ").next().unwrap();
        assert!(
            section.contains(&severity),
            "docs/lint.md: {} should say `{severity}`",
            rule.code
        );
    }
}

// ---------------------------------------------------------------- quorum

#[test]
fn ha001_fires_below_three_master_eligible_nodes() {
    let d = one("HA001", &two_hosts());
    assert_eq!(
        d.message,
        "only 2 master-eligible nodes: a cluster that survives losing one needs at least 3"
    );
    assert!(d.notes[0].contains("d12c-elasticsearch (8f14-jmm), 2a44-elasticsearch (11e9-jmm)"));
    assert!(d.hint.unwrap().contains("voting_only"));

    let none = inv().host("ha", |h| h.es("a-es", [Data])).build();
    assert!(one("HA001", &none).message.contains("never form"));
}

#[test]
fn ha002_fires_on_an_even_count_of_four_or_more() {
    let four = example()
        .host("d-host", |h| {
            h.es("d-es", [Master, VotingOnly]).memory("2g")
        })
        .build();
    let d = one("HA002", &four);
    assert!(d.message.starts_with("4 master-eligible nodes"));
    assert!(d.notes[0].contains("tolerate the loss of 1, exactly as 3 do"));
    // Two is even as well, but HA001 owns that case.
    assert!(run("HA002", &two_hosts()).is_empty());
}

#[test]
fn ha003_fires_for_each_host_whose_loss_loses_the_quorum() {
    let found = run("HA003", &two_hosts());
    let hosts: Vec<_> = found.iter().map(subject).collect();
    assert_eq!(
        hosts,
        [
            (SubjectKind::Host, "8f14-jmm"),
            (SubjectKind::Host, "11e9-jmm")
        ]
    );
    let d = &found[0];
    assert_eq!(d.message, "losing host 8f14-jmm loses the master quorum");
    assert!(
        d.notes[0]
            .contains("2 master-eligible (voting) nodes: the quorum is a strict majority, 2 of 2")
    );
    assert!(
        d.notes[1]
            .contains("8f14-jmm carries 1 of them (d12c-elasticsearch); without it 1 of 2 remain")
    );
    assert!(d.hint.as_ref().unwrap().contains("third host"));
    assert_eq!(d.location, Some(two_hosts().hosts[0].location));
}

#[test]
fn ha003_counts_nodes_per_physical_host_not_per_jail() {
    // Three master-eligible nodes, but two of them share a host: losing it leaves 1 of 3.
    let crowded = inv()
        .host("ha", |h| {
            h.es("a-es1", [Master, Data])
                .es("a-es2", [Master, VotingOnly])
        })
        .host("hb", |h| h.es("b-es", [Master, Data]))
        .build();
    let d = one("HA003", &crowded);
    assert_eq!(subject(&d), (SubjectKind::Host, "ha"));
    assert!(d.notes[1].contains("ha carries 2 of them (a-es1, a-es2); without it 1 of 3 remain"));

    // Five nodes on three hosts, 2+2+1: any host's loss leaves at least 3 of 5.
    let spread = inv()
        .host("ha", |h| h.es("a1", [Master]).es("a2", [Master]))
        .host("hb", |h| h.es("b1", [Master]).es("b2", [Master]))
        .host("hc", |h| h.es("c1", [Master]))
        .build();
    assert!(run("HA003", &spread).is_empty());
}

#[test]
fn ha004_fires_when_every_master_eligible_node_is_voting_only() {
    let nobody = example()
        .edit_jail("d12c-elasticsearch", |j| {
            j.node_roles = vec![Master, VotingOnly, Data]
        })
        .edit_jail("2a44-elasticsearch", |j| {
            j.node_roles = vec![Master, VotingOnly, Data]
        })
        .build();
    let d = one("HA004", &nobody);
    assert!(d.message.contains("no node can be elected master"));
    assert!(run("HA005", &nobody).is_empty(), "HA004 owns this case");
}

#[test]
fn ha005_fires_when_one_host_carries_every_electable_node() {
    let one_electable = example()
        .edit_jail("2a44-elasticsearch", |j| {
            j.node_roles = vec![Master, VotingOnly, Data]
        })
        .build();
    let d = one("HA005", &one_electable);
    assert_eq!(
        d.message,
        "losing host 8f14-jmm leaves no node that can be elected master"
    );
    assert!(
        run("HA003", &one_electable).is_empty(),
        "the quorum itself survives"
    );
}

// ---------------------------------------------------------------- data

#[test]
fn ha007_fires_below_two_data_nodes() {
    let single = example()
        .edit_jail("2a44-elasticsearch", |j| j.node_roles = vec![Master])
        .build();
    let d = one("HA007", &single);
    assert_eq!(
        d.message,
        "only one data node (d12c-elasticsearch): losing it loses the data"
    );

    let none = inv().host("ha", |h| h.es("a-es", [Master])).build();
    assert_eq!(
        one("HA007", &none).message,
        "no Elasticsearch node holds data"
    );
}

#[test]
fn ha008_fires_when_every_data_node_is_on_one_host() {
    let one_host = inv()
        .host("ha", |h| {
            h.es("a1", [Master, Data]).es("a2", [Master, Data])
        })
        .host("hb", |h| h.es("b1", [Master]))
        .build();
    let d = one("HA008", &one_host);
    assert_eq!(d.message, "every data node is on host ha");
    assert!(run("HA009", &one_host).is_empty(), "HA008 owns this case");
}

#[test]
fn ha009_fires_when_a_host_carries_two_data_nodes() {
    let crowded = example()
        .edit_host("8f14-jmm", |h| {
            h.es("8f16-elasticsearch", [Data]).memory("8g")
        })
        .build();
    let d = one("HA009", &crowded);
    assert_eq!(d.message, "host 8f14-jmm carries 2 data nodes");
    let aware = example()
        .edit_host("8f14-jmm", |h| {
            h.es("8f16-elasticsearch", [Data]).memory("8g")
        })
        .setting(
            "cluster.routing.allocation.awareness.attributes",
            json!("host"),
        )
        .build();
    assert!(run("HA009", &aware).is_empty());
}

// ---------------------------------------------------------------- VIPs and haproxy

#[test]
fn ha010_fires_on_a_vip_without_haproxy() {
    let bare = example()
        .edit_host("8f14-jmm", |h| h.without_jail("11e9-haproxy-kibana"))
        .edit_host("11e9-jmm", |h| h.without_jail("2a41-haproxy-kibana"))
        .build();
    let d = one("HA010", &bare);
    assert_eq!(subject(&d), (SubjectKind::Vip, "kibana"));
    assert_eq!(d.message, "no haproxy jail fronts the kibana VIP 10.0.0.20");
}

#[test]
fn ha011_fires_on_a_vip_with_one_haproxy() {
    let single = example()
        .edit_host("11e9-jmm", |h| h.without_jail("2a43-haproxy-elasticsearch"))
        .build();
    let d = one("HA011", &single);
    assert_eq!(subject(&d), (SubjectKind::Vip, "elasticsearch"));
    assert!(d.notes[0].contains("9fbb-haproxy-elasticsearch on 8f14-jmm"));
}

#[test]
fn ha012_fires_when_a_vips_haproxy_jails_share_a_host() {
    let same_host = example()
        .edit_host("11e9-jmm", |h| h.without_jail("2a41-haproxy-kibana"))
        .edit_host("8f14-jmm", |h| {
            h.haproxy("8f17-haproxy-kibana", Role::Kibana)
        })
        .build();
    let d = one("HA012", &same_host);
    assert_eq!(
        d.message,
        "every haproxy jail of the kibana VIP 10.0.0.20 is on host 8f14-jmm"
    );
}

// ---------------------------------------------------------------- Kibana

#[test]
fn ha014_fires_on_fewer_than_two_kibana_instances() {
    let single = example()
        .edit_host("11e9-jmm", |h| h.without_jail("2a42-kibana"))
        .build();
    let d = one("HA014", &single);
    assert_eq!(
        d.message,
        "only one Kibana instance (8f15-kibana): no failover"
    );

    let none_but_vip = example()
        .edit_host("11e9-jmm", |h| h.without_jail("2a42-kibana"))
        .edit_host("8f14-jmm", |h| h.without_jail("8f15-kibana"))
        .build();
    assert_eq!(
        subject(&one("HA014", &none_but_vip)),
        (SubjectKind::Vip, "kibana")
    );

    // An Elasticsearch-only stack (no Kibana, no kibana VIP) is a valid design.
    let es_only = example()
        .without_vip(Role::Kibana)
        .edit_host("11e9-jmm", |h| {
            h.without_jail("2a42-kibana")
                .without_jail("2a41-haproxy-kibana")
        })
        .edit_host("8f14-jmm", |h| {
            h.without_jail("8f15-kibana")
                .without_jail("11e9-haproxy-kibana")
        })
        .build();
    assert!(run("HA014", &es_only).is_empty());
}

#[test]
fn ha015_fires_when_every_kibana_is_on_one_host() {
    let one_host = example()
        .edit_host("11e9-jmm", |h| h.without_jail("2a42-kibana"))
        .edit_host("8f14-jmm", |h| h.kibana("8f19-kibana"))
        .build();
    assert_eq!(
        one("HA015", &one_host).message,
        "every Kibana instance is on host 8f14-jmm"
    );
}

#[test]
fn ha016_fires_on_kibana_without_elasticsearch() {
    let lonely = inv()
        .host("ha", |h| h.kibana("a-kibana"))
        .host("hb", |h| h.kibana("b-kibana"))
        .build();
    let d = one("HA016", &lonely);
    assert_eq!(subject(&d), (SubjectKind::Jail, "a-kibana"));
}

#[test]
fn ha017_fires_on_a_service_without_vip() {
    let no_vip = example().without_vip(Role::Elasticsearch).build();
    let d = one("HA017", &no_vip);
    assert_eq!(d.message, "elasticsearch has jails but no VIP");
}

// ---------------------------------------------------------------- heap

#[test]
fn ha018_fires_on_heap_above_half_the_jail_memory() {
    let big_heap = example().heap("5g").build();
    let found = run("HA018", &big_heap);
    let jails: Vec<_> = found.iter().map(|d| subject(d).1).collect();
    // 5g is more than half of 8g and of 2g.
    assert_eq!(
        jails,
        [
            "d12c-elasticsearch",
            "2a44-elasticsearch",
            "7c3a-elasticsearch"
        ]
    );
    assert_eq!(
        found[2].message,
        "heap 5g of 7c3a-elasticsearch is more than half of its memory 2g"
    );
    assert!(
        found[2]
            .hint
            .as_ref()
            .unwrap()
            .contains("at most 1g or give the jail at least 10g")
    );
    // Exactly half is fine.
    assert!(run("HA018", &example().heap("1g").build()).is_empty());
}

#[test]
fn ha019_fires_on_heap_above_26g() {
    let d = one("HA019", &example().heap("30g").build());
    assert_eq!(
        d.message,
        "heap 30g is above 26g: the JVM loses compressed object pointers"
    );
    assert!(run("HA019", &example().heap("26g").build()).is_empty());
}

#[test]
fn ha020_warns_when_heap_is_set_and_memory_unknown() {
    let unknown = example()
        .heap("1g")
        .edit_jail("7c3a-elasticsearch", |j| j.memory = None)
        .build();
    let d = one("HA020", &unknown);
    assert_eq!(
        d.message,
        "heap 1g is set but the memory of 7c3a-elasticsearch is unknown: the 50% rule cannot be checked"
    );
    // Without an explicit heap haelk derives 1g itself: nothing to check.
    let derived = example()
        .edit_jail("7c3a-elasticsearch", |j| j.memory = None)
        .build();
    assert!(run("HA020", &derived).is_empty());
}

// ---------------------------------------------------------------- addresses

#[test]
fn ha021_fires_on_a_vip_equal_to_the_gateway() {
    let clash = example()
        .vip(Role::Elasticsearch, "10.0.0.1", 1, 9200)
        .build();
    let d = one("HA021", &clash);
    assert_eq!(subject(&d), (SubjectKind::Vip, "elasticsearch"));
    assert_eq!(
        d.message,
        "the elasticsearch VIP 10.0.0.1 is the default gateway of the jails on 8f14-jmm"
    );
}

#[test]
fn ha022_fires_on_network_and_broadcast_addresses() {
    let edge = example()
        .vip(Role::Elasticsearch, "10.0.0.255", 1, 9200)
        .vip(Role::Kibana, "10.0.0.0", 2, 5601)
        .build();
    let messages: Vec<_> = run("HA022", &edge).into_iter().map(|d| d.message).collect();
    assert_eq!(
        messages,
        [
            "the elasticsearch VIP 10.0.0.255 is the broadcast address of 10.0.0.0/24",
            "the kibana VIP 10.0.0.0 is the network address of 10.0.0.0/24",
        ]
    );
    // /31 has neither (RFC 3021): the kibana VIP 10.0.0.20 and its member
    // 11e9-haproxy-kibana 10.0.0.21 make up 10.0.0.20/31.
    let point_to_point = example().edit_host("8f14-jmm", |h| h.netmask(31)).build();
    assert!(run("HA022", &point_to_point).is_empty());
}

#[test]
fn ha024_fires_on_two_hosts_with_one_address() {
    // The loader rejects one address written twice; one address written two
    // ways is left to lint.
    let same = example()
        .edit_host("8f14-jmm", |h| h.address("2001:db8::11"))
        .edit_host("11e9-jmm", |h| h.address("2001:DB8:0:0::11"))
        .build();
    let d = one("HA024", &same);
    assert_eq!(
        d.message,
        "hosts 8f14-jmm and 11e9-jmm have the same address 2001:db8::11 (ssh port 22)"
    );
    assert_eq!(subject(&d), (SubjectKind::Host, "11e9-jmm"));
    let names = example()
        .edit_host("8f14-jmm", |h| h.address("Node-A.example.org"))
        .edit_host("11e9-jmm", |h| h.address("node-a.example.org."))
        .build();
    assert_eq!(run("HA024", &names).len(), 1);
    // One NAT address, two ssh ports: two machines.
    let nat = example()
        .edit_host("8f14-jmm", |h| h.address("198.51.100.7").ssh_port(2201))
        .edit_host("11e9-jmm", |h| h.address("198.51.100.7").ssh_port(2202))
        .build();
    assert!(run("HA024", &nat).is_empty());
}

#[test]
fn ha025_warns_on_a_vip_outside_the_jail_subnet() {
    let far = example().vip(Role::Kibana, "10.9.0.20", 2, 5601).build();
    let d = one("HA025", &far);
    assert_eq!(
        d.message,
        "the kibana VIP 10.9.0.20 is outside the subnet 10.0.0.0/24 of 11e9-haproxy-kibana, 2a41-haproxy-kibana"
    );
}

// ---------------------------------------------------------------- security, snapshots, CARP, ML

#[test]
fn ha027_warns_until_security_off_is_acknowledged() {
    let d = one(
        "HA027",
        &example().without_setting("xpack.security.enabled").build(),
    );
    assert!(d.message.starts_with("Elasticsearch security is off"));
    assert!(d.hint.unwrap().contains("xpack.security.enabled: false"));
    // YAML may quote it; an explicit value either way silences the warning.
    for value in [json!(false), json!("false"), json!(true)] {
        let explicit = example().setting("xpack.security.enabled", value).build();
        assert!(run("HA027", &explicit).is_empty());
    }
}

#[test]
fn ha028_fires_on_security_without_transport_tls() {
    let on = example()
        .setting("xpack.security.enabled", json!(true))
        .build();
    let d = one("HA028", &on);
    assert!(d.notes[0].contains("cluster of 3 nodes"));
    let with_tls = example()
        .setting("xpack.security.enabled", json!(true))
        .setting("xpack.security.transport.ssl.enabled", json!(true))
        .build();
    assert!(run("HA028", &with_tls).is_empty());
}

#[test]
fn ha029_warns_that_the_snapshot_path_cannot_be_verified() {
    let d = one(
        "HA029",
        &example().snapshots("/var/db/es-snapshots").build(),
    );
    assert_eq!(
        d.message,
        "snapshot path /var/db/es-snapshots must be one shared filesystem; haelk cannot verify that"
    );
    assert!(d.notes[0].contains("7c3a-elasticsearch (7c3a-tiebreak) on 3 hosts"));
}

#[test]
fn ha030_warns_on_an_advskew_tie() {
    let tie = example()
        .edit_jail("2a41-haproxy-kibana", |j| j.advskew = Some(0))
        .build();
    let d = one("HA030", &tie);
    assert_eq!(
        d.message,
        "11e9-haproxy-kibana, 2a41-haproxy-kibana carry the kibana VIP with the same advskew 0"
    );
    // Derived values are 0, 100, 200, 240 (capped): the explicit 240 collides.
    let crowd = example()
        .host("h3", |h| {
            h.haproxy("h3-haproxy-kibana", Role::Kibana).ip("10.0.0.40")
        })
        .host("h4", |h| {
            h.haproxy("h4-haproxy-kibana", Role::Kibana).ip("10.0.0.41")
        })
        .host("h5", |h| {
            h.haproxy("h5-haproxy-kibana", Role::Kibana)
                .advskew(240)
                .ip("10.0.0.42")
        })
        .build();
    assert!(one("HA030", &crowd).message.contains("advskew 240"));
}

#[test]
fn ha031_fires_on_machine_learning() {
    let ml = example()
        .edit_jail("d12c-elasticsearch", |j| j.node_roles.push(NodeRole::Ml))
        .setting("xpack.ml.enabled", json!(true))
        .build();
    let found = run("HA031", &ml);
    assert_eq!(found.len(), 2);
    assert_eq!(
        subject(&found[0]),
        (SubjectKind::Jail, "d12c-elasticsearch")
    );
    assert_eq!(found[1].message, "xpack.ml.enabled is true");
}

// ---------------------------------------------------------------- whole reports

#[test]
fn the_two_host_layout_fails_on_the_quorum() {
    let report = crate::lint::lint(&two_hosts());
    assert!(report.has_errors());
    let codes: Vec<_> = report.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, ["HA001", "HA003", "HA003"]);
    let located = &report.diagnostics()[1];
    assert_ne!(located.location, None::<Location>);
}
