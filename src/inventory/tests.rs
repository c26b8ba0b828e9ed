//! Unit tests for inventory loading and validation.

use super::*;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// A small valid inventory the tests below break one rule at a time. Line
/// numbers in the tests refer to this text (they stay put: each test
/// replaces text within one line).
const BASE: &str = "\
cluster:
  name: test
  kibana:
    encryption_key_file: secrets/kibana.key
  vips:
    elasticsearch: { address: 10.0.0.10, vhid: 1 }
    kibana: { address: 10.0.0.20, vhid: 2, port: 5601 }
  carp:
    password_file: secrets/carp.pass
defaults:
  zfs: { dataset: zroot/jails }
  jails:
    release: 14.3-RELEASE
    base: /media/base.txz
    gateway: 10.0.0.1
hosts:
  one:
    address: 192.0.2.11
    jails:
      es1: { role: elasticsearch, ip: 10.0.0.21 }
      lb1: { role: haproxy, fronts: kibana, ip: 10.0.0.22 }
      kb1: { role: kibana, ip: 10.0.0.23 }
  two:
    address: 192.0.2.12
    jails:
      es2: { role: elasticsearch, ip: 10.0.0.31 }
";

/// Writes `yaml` as `inventory.yaml` into a fresh directory that also holds
/// the secret files BASE names.
fn write_tree(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/carp.pass"), "carp-password\n").unwrap();
    std::fs::write(dir.path().join("secrets/kibana.key"), "k".repeat(40)).unwrap();
    let path = dir.path().join("inventory.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

fn load_yaml(yaml: &str) -> Result<Inventory, InventoryError> {
    let (_dir, path) = write_tree(yaml);
    load(&path)
}

/// BASE with `from`, which must occur exactly once, replaced by `to`.
#[track_caller]
fn base_with(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "{from:?} must occur once in BASE"
    );
    BASE.replacen(from, to, 1)
}

/// Loading `yaml` fails with exactly one error, at `line`:`column`, whose
/// message contains `fragment`.
#[track_caller]
fn assert_error(yaml: &str, line: u32, column: u32, fragment: &str) -> InventoryError {
    let err = match load_yaml(yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(err) => err,
    };
    let pointed = yaml
        .lines()
        .nth(err.location.line.saturating_sub(1) as usize);
    assert_eq!(
        (err.location.line, err.location.column),
        (line, column),
        "{err}\npoints at: {pointed:?}"
    );
    assert!(
        err.message.contains(fragment),
        "message {:?} lacks {fragment:?}",
        err.message
    );
    assert!(
        !err.message.contains('\n'),
        "expected one error, got: {err}"
    );
    err
}

fn crate_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

// --- inventories that load ---

#[test]
fn the_example_inventory_loads() {
    let inventory = load(&crate_file("inventories/example.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let hosts: Vec<&str> = inventory.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hosts, ["8f14-jmm", "11e9-jmm", "7c3a-tiebreak"]);
    let first_jails: Vec<&str> = inventory.hosts[0]
        .jails
        .iter()
        .map(|j| j.name.as_str())
        .collect();
    assert_eq!(
        first_jails,
        [
            "11e9-haproxy-kibana",
            "8f15-kibana",
            "9fbb-haproxy-elasticsearch",
            "d12c-elasticsearch"
        ],
        "jails keep their file order"
    );
    let (_, tiebreaker) = inventory.find_jail("7c3a-elasticsearch").unwrap();
    assert!(tiebreaker.is_voting_only());
    assert_eq!(
        inventory.cluster.vips[&Role::Kibana].address,
        Ipv4Addr::new(10, 0, 0, 20)
    );
    assert_eq!(
        inventory.cluster.elasticsearch.settings["action.destructive_requires_name"],
        serde_json::json!(true)
    );
    assert!(inventory.cluster.carp.password_file.is_file());
    assert!(inventory.cluster.kibana.encryption_key_file.is_file());
    assert_eq!(inventory.hosts[2].zfs.dataset, "zroot/jails");
    assert_eq!(
        inventory.hosts[2].location,
        Location {
            line: 58,
            column: 3
        }
    );
}

#[test]
fn the_lab_inventory_loads() {
    let inventory = load(&crate_file("inventories/lab.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let lab2 = &inventory.hosts[1];
    assert_eq!(lab2.name.as_str(), "lab2");
    assert_eq!(lab2.zfs.dataset, "lab2/jails", "host zfs over defaults");
    assert_eq!(lab2.zfs.compression, "on", "defaults.zfs still apply");
    assert_eq!(
        lab2.zfs.mountpoint,
        Path::new("/var/tmp/haelk-lab/mnt/lab2")
    );
    assert_eq!(
        lab2.ssh.identity_file.as_deref(),
        Some(Path::new("/var/tmp/haelk-lab/ssh/id_ed25519"))
    );
    assert_eq!(inventory.jails().count(), 9);
}

#[test]
fn the_minimal_inventory_in_the_docs_loads() {
    let docs = std::fs::read_to_string(crate_file("docs/inventory.md")).unwrap();
    let (_, after) = docs.split_once("## A minimal inventory").unwrap();
    let (_, block) = after.split_once("```yaml\n").unwrap();
    let (yaml, _) = block.split_once("```").unwrap();
    let inventory = load_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inventory.jails().count(), 3);
    assert_eq!(inventory.cluster.vips[&Role::Kibana].port, 5601);
}

#[test]
fn omitted_values_get_their_defaults() {
    let inventory = load_yaml(BASE).unwrap_or_else(|e| panic!("{e}"));
    let cluster = &inventory.cluster;
    assert_eq!(cluster.elasticsearch.package, "elasticsearch8");
    assert_eq!(cluster.elasticsearch.http_port, 9200);
    assert_eq!(cluster.elasticsearch.transport_port, 9300);
    assert_eq!(cluster.elasticsearch.heap, None);
    assert_eq!(cluster.kibana.package, "kibana8");
    assert_eq!(cluster.kibana.port, 5601);
    assert_eq!(cluster.haproxy.package, "haproxy");
    assert_eq!(cluster.carp.interface, "vnet0");
    assert_eq!(
        cluster.vips[&Role::Elasticsearch].port,
        9200,
        "a VIP's port defaults to its service's"
    );
    assert!(cluster.snapshots.is_none());
    let host = &inventory.hosts[0];
    assert_eq!((host.ssh.user.as_str(), host.ssh.port), ("root", 22));
    assert_eq!(host.zfs.mountpoint, Path::new("/usr/local/jails"));
    assert_eq!(host.zfs.compression, "lz4");
    assert_eq!(host.jail_defaults.bridge, "bridge0");
    assert_eq!(host.jail_defaults.netmask, 24);
    let names: Vec<&str> = host.jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["es1", "lb1", "kb1"], "file order, not sorted");
    assert_eq!(host.jails[0].node_roles, [NodeRole::Master, NodeRole::Data]);
    assert_eq!(
        host.jails[0].location,
        Location {
            line: 20,
            column: 7
        }
    );
    assert!(host.jails[2].node_roles.is_empty());
    assert_eq!(host.jails[1].fronts, Some(Role::Kibana));
}

#[test]
fn hosts_override_defaults_field_by_field() {
    let yaml = base_with("  zfs: { dataset: zroot/jails }", "  zfs: { dataset: zroot/jails }\n  ssh: { user: deploy, port: 2200 }")
            .replace(
                "    address: 192.0.2.12\n",
                "    address: 192.0.2.12\n    ssh: { port: 2222 }\n    zfs: { dataset: tank/jails }\n    jail_defaults: { netmask: 16 }\n",
            );
    let inventory = load_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let (one, two) = (&inventory.hosts[0], &inventory.hosts[1]);
    assert_eq!((one.ssh.user.as_str(), one.ssh.port), ("deploy", 2200));
    assert_eq!((two.ssh.user.as_str(), two.ssh.port), ("deploy", 2222));
    assert_eq!(
        (one.zfs.dataset.as_str(), two.zfs.dataset.as_str()),
        ("zroot/jails", "tank/jails")
    );
    assert_eq!(
        (one.jail_defaults.netmask, two.jail_defaults.netmask),
        (24, 16)
    );
    assert_eq!(two.jail_defaults.release, "14.3-RELEASE");
}

#[test]
fn a_host_may_have_no_jails() {
    let yaml = base_with("      es2: { role: elasticsearch, ip: 10.0.0.31 }\n", "").replace(
        "  two:\n    address: 192.0.2.12\n    jails:\n",
        "  two:\n    address: 192.0.2.12\n",
    );
    let inventory = load_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inventory.hosts[1].name.as_str(), "two");
    assert!(inventory.hosts[1].jails.is_empty());
}

// --- reading and parsing ---

#[test]
fn an_unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = load(&missing).unwrap_err();
    assert_eq!(err.location.line, 0);
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read the inventory", missing.display())),
        "{shown}"
    );
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let yaml = base_with("    address: 192.0.2.12", "    address: [192.0.2.12");
    let err = load_yaml(&yaml).unwrap_err();
    assert_eq!(err.location.line, 24, "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("inventory.yaml:24:{}: ", err.location.column)),
        "{shown}"
    );
}

#[test]
fn a_yaml_syntax_error_names_file_line_and_column() {
    let err = assert_error(&base_with("  name: test", "  name: test: again"), 2, 13, "");
    assert!(err.to_string().contains("inventory.yaml:2:13: "), "{err}");
}

#[test]
fn values_of_the_wrong_type_are_errors() {
    assert_error(
        &base_with("vhid: 2", "vhid: two"),
        7,
        41,
        "expected a whole number",
    );
    assert_error(
        &base_with("ip: 10.0.0.23", "ip: [10.0.0.23]"),
        22,
        32,
        "expected a single value",
    );
}

#[test]
fn unknown_fields_are_errors_with_a_suggestion() {
    let err = assert_error(
        &base_with("    address: 192.0.2.11", "    adress: 192.0.2.11"),
        18,
        5,
        "unknown field `adress`",
    );
    assert!(err.message.contains("did you mean `address`?"), "{err}");
    assert!(
        err.message.contains("expected one of `address`, `ssh`"),
        "{err}"
    );
}

#[test]
fn unknown_fields_inside_a_jail_are_errors() {
    assert_error(
        &base_with(
            "kb1: { role: kibana, ip: 10.0.0.23 }",
            "kb1: { role: kibana, ip: 10.0.0.23, colour: red }",
        ),
        22,
        43,
        "unknown field `colour`",
    );
}

#[test]
fn two_jails_with_one_name_on_a_host_are_an_error() {
    assert_error(
        &base_with("      kb1: { role: kibana", "      es1: { role: kibana"),
        22,
        7,
        "duplicate key `es1`",
    );
}

#[test]
fn the_same_host_twice_is_an_error() {
    assert_error(&base_with("  two:", "  one:"), 23, 3, "duplicate key `one`");
}

#[test]
fn a_field_twice_in_a_jail_is_an_error() {
    assert_error(
        &base_with(
            "kb1: { role: kibana, ip: 10.0.0.23 }",
            "kb1: { role: kibana, ip: 10.0.0.23, ip: 10.0.0.24 }",
        ),
        22,
        43,
        "duplicate key `ip`",
    );
}

#[test]
fn one_jail_name_on_two_hosts_is_an_error() {
    let err = assert_error(
        &base_with("      es2:", "      es1:"),
        26,
        7,
        "jail name `es1` is also used on host `one` (line 20, column 7)",
    );
    assert!(err.message.contains("unique across all hosts"), "{err}");
}

#[test]
fn merge_keys_are_rejected() {
    let yaml = base_with(
        "      es2: { role: elasticsearch, ip: 10.0.0.31 }",
        "      <<: { es9: { role: kibana, ip: 10.0.0.39 } }\n      es2: { role: elasticsearch, ip: 10.0.0.31 }",
    );
    assert_error(&yaml, 26, 7, "merge keys (`<<`) are not allowed");
}

// --- names and roles ---

#[test]
fn host_names_follow_the_naming_rule() {
    assert_error(
        &base_with("  two:", "  Two_:"),
        23,
        3,
        "invalid host name: name \"Two_\" must match",
    );
}

#[test]
fn jail_names_follow_the_naming_rule() {
    assert_error(
        &base_with("      kb1:", "      kb1;reboot:"),
        22,
        7,
        "invalid jail name",
    );
}

#[test]
fn the_cluster_name_follows_the_naming_rule() {
    assert_error(
        &base_with("  name: test", "  name: my cluster"),
        2,
        9,
        "invalid cluster name",
    );
}

#[test]
fn roles_are_known() {
    let err = assert_error(
        &base_with("kb1: { role: kibana,", "kb1: { role: kibanna,"),
        22,
        20,
        "unknown role `kibanna`",
    );
    assert!(err.message.contains("did you mean `kibana`?"), "{err}");
}

#[test]
fn haproxy_jails_need_fronts() {
    assert_error(
        &base_with("role: haproxy, fronts: kibana,", "role: haproxy,"),
        21,
        7,
        "haproxy jail `lb1` needs `fronts`",
    );
}

#[test]
fn only_haproxy_jails_have_fronts() {
    assert_error(
        &base_with(
            "kb1: { role: kibana,",
            "kb1: { role: kibana, fronts: kibana,",
        ),
        22,
        36,
        "`fronts` is only for haproxy jails",
    );
}

#[test]
fn fronts_names_a_vip() {
    let yaml = base_with(
        "    kibana: { address: 10.0.0.20, vhid: 2, port: 5601 }\n",
        "",
    );
    // BASE without the kibana VIP: line 21 moves up to 20.
    assert_error(&yaml, 20, 37, "fronts `kibana` names no VIP");
}

#[test]
fn node_roles_are_only_for_elasticsearch() {
    assert_error(
        &base_with(
            "kb1: { role: kibana,",
            "kb1: { role: kibana, node_roles: [data],",
        ),
        22,
        40,
        "`node_roles` is only for elasticsearch jails",
    );
}

#[test]
fn node_roles_are_elasticsearch_roles() {
    let err = assert_error(
        &base_with(
            "es2: { role: elasticsearch,",
            "es2: { role: elasticsearch, node_roles: [master, dta],",
        ),
        26,
        56,
        "unknown node role `dta`",
    );
    assert!(err.message.contains("did you mean `data`?"), "{err}");
}

#[test]
fn node_roles_are_not_repeated() {
    assert_error(
        &base_with(
            "es2: { role: elasticsearch,",
            "es2: { role: elasticsearch, node_roles: [master, master],",
        ),
        26,
        56,
        "node role `master` is listed twice",
    );
}

#[test]
fn voting_only_requires_master() {
    assert_error(
        &base_with(
            "es2: { role: elasticsearch,",
            "es2: { role: elasticsearch, node_roles: [voting_only, data],",
        ),
        26,
        47,
        "`voting_only` requires `master`",
    );
}

#[test]
fn explicit_node_roles_are_kept() {
    let yaml = base_with(
        "es2: { role: elasticsearch,",
        "es2: { role: elasticsearch, node_roles: [master, voting_only],",
    );
    let inventory = load_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let (_, es2) = inventory.find_jail("es2").unwrap();
    assert_eq!(es2.node_roles, [NodeRole::Master, NodeRole::VotingOnly]);
}

// --- addresses ---

#[test]
fn jail_ips_parse() {
    assert_error(
        &base_with("ip: 10.0.0.23", "ip: 10.0.0.256"),
        22,
        32,
        "jail ip `10.0.0.256` is not an IPv4 address",
    );
}

#[test]
fn jail_ips_are_unique_across_hosts() {
    assert_error(
        &base_with("ip: 10.0.0.31", "ip: 10.0.0.21"),
        26,
        7,
        "address 10.0.0.21 of jail `es2` is already used by jail `es1` (line 20, column 7)",
    );
}

#[test]
fn vips_differ_from_jail_ips() {
    assert_error(
        &base_with("ip: 10.0.0.31", "ip: 10.0.0.20"),
        26,
        7,
        "already used by the `kibana` VIP (line 7, column 5)",
    );
}

#[test]
fn vips_differ_from_each_other() {
    assert_error(
        &base_with("address: 10.0.0.20", "address: 10.0.0.10"),
        7,
        5,
        "address 10.0.0.10 of the `kibana` VIP is already used by the `elasticsearch` VIP",
    );
}

#[test]
fn vip_addresses_parse() {
    assert_error(
        &base_with("address: 10.0.0.20", "address: ten"),
        7,
        24,
        "cluster.vips.kibana.address `ten` is not an IPv4 address",
    );
}

#[test]
fn vhids_are_unique() {
    assert_error(
        &base_with("vhid: 2", "vhid: 1"),
        7,
        41,
        "vhid 1 is already the vhid of the `elasticsearch` VIP (line 6, column 48)",
    );
}

#[test]
fn vhids_are_in_range() {
    assert_error(
        &base_with("vhid: 2", "vhid: 256"),
        7,
        41,
        "cluster.vips.kibana.vhid 256 is out of range: it must be 1 to 255",
    );
    assert_error(
        &base_with("vhid: 2", "vhid: 0"),
        7,
        41,
        "it must be 1 to 255",
    );
}

#[test]
fn vip_keys_are_fronted_services() {
    assert_error(
        &base_with("    elasticsearch: {", "    haproxy: {"),
        6,
        5,
        "`haproxy` cannot have a VIP",
    );
    let err = assert_error(
        &base_with("    elasticsearch: {", "    elasticsaerch: {"),
        6,
        5,
        "unknown VIP service `elasticsaerch`",
    );
    assert!(
        err.message.contains("did you mean `elasticsearch`?"),
        "{err}"
    );
}

#[test]
fn netmasks_are_1_to_32() {
    assert_error(
        &base_with(
            "    gateway: 10.0.0.1",
            "    gateway: 10.0.0.1\n    netmask: 33",
        ),
        16,
        14,
        "jail netmask 33 is out of range: it must be 1 to 32",
    );
}

#[test]
fn jails_are_on_the_subnet_of_their_gateway() {
    assert_error(
        &base_with("ip: 10.0.0.23", "ip: 10.0.1.23"),
        22,
        32,
        "ip 10.0.1.23 of jail `kb1` is not on the subnet 10.0.0.0/24 of the gateway 10.0.0.1 (line 15, column 14)",
    );
}

#[test]
fn a_jail_ip_is_not_the_gateway() {
    assert_error(
        &base_with("ip: 10.0.0.23", "ip: 10.0.0.1"),
        22,
        32,
        "ip 10.0.0.1 of jail `kb1` is the gateway",
    );
}

#[test]
fn ports_are_nonzero() {
    assert_error(
        &base_with("port: 5601", "port: 0"),
        7,
        50,
        "cluster.vips.kibana.port 0 is out of range: it must be 1 to 65535",
    );
    assert_error(
        &base_with(
            "  name: test",
            "  name: test\n  elasticsearch: { http_port: 70000 }",
        ),
        3,
        31,
        "cluster.elasticsearch.http_port 70000 is out of range",
    );
    assert_error(
        &base_with(
            "    address: 192.0.2.12",
            "    address: 192.0.2.12\n    ssh: { port: 0 }",
        ),
        25,
        18,
        "ssh.port 0 is out of range",
    );
}

// --- secrets and local paths ---

#[test]
fn a_missing_carp_password_file_names_the_resolved_path() {
    let yaml = base_with("secrets/carp.pass", "secrets/nope.pass");
    let (dir, path) = write_tree(&yaml);
    let err = load(&path).unwrap_err();
    assert_eq!((err.location.line, err.location.column), (9, 20), "{err}");
    let resolved = dir.path().join("secrets/nope.pass");
    assert!(
        err.message
            .contains(&format!("file {} does not exist", resolved.display())),
        "{err}"
    );
    assert!(
        err.message.starts_with("cluster.carp.password_file"),
        "{err}"
    );
}

#[test]
fn a_missing_kibana_key_file_is_an_error() {
    assert_error(
        &base_with("secrets/kibana.key", "kibana.key"),
        4,
        26,
        "cluster.kibana.encryption_key_file: file",
    );
}

#[test]
fn secret_files_resolve_against_the_inventory_directory() {
    let (dir, path) = write_tree(BASE);
    let inventory = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        inventory.cluster.carp.password_file,
        dir.path().join("secrets/carp.pass")
    );
}

#[test]
fn the_templates_directory_must_exist() {
    let yaml = format!("templates: my-templates\n{BASE}");
    assert_error(&yaml, 1, 12, "templates: directory");
    let (dir, path) = write_tree(&yaml);
    std::fs::create_dir(dir.path().join("my-templates")).unwrap();
    let inventory = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inventory.templates, Some(dir.path().join("my-templates")));
}

#[test]
fn a_templates_folder_of_other_files_is_refused_at_its_line() {
    let yaml = format!("templates: etc\n{BASE}");
    let (dir, path) = write_tree(&yaml);
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    for name in ["passwd", "group", "hosts", "rc.conf", "fstab"] {
        std::fs::write(etc.join(name), "x").unwrap();
    }
    let err = load(&path).unwrap_err();
    assert_eq!((err.location.line, err.location.column), (1, 12), "{err}");
    let message = err.to_string();
    assert!(
        message
            .contains("holds files that are not haelk templates (fstab, group, hosts and 2 more)"),
        "{message}"
    );
}

// --- sizes, ZFS, host paths ---

#[test]
fn heap_is_a_byte_size() {
    let yaml = base_with(
        "  name: test",
        "  name: test\n  elasticsearch: { heap: 2 gigs }",
    );
    assert_error(
        &yaml,
        3,
        26,
        "invalid cluster.elasticsearch.heap: size \"2 gigs\"",
    );
}

#[test]
fn jail_memory_is_a_byte_size() {
    let yaml = base_with("ip: 10.0.0.31 }", "ip: 10.0.0.31, memory: 8q }");
    assert_error(
        &yaml,
        26,
        58,
        "invalid jail memory: size \"8q\" has an unknown unit",
    );
    let yaml = base_with("ip: 10.0.0.31 }", "ip: 10.0.0.31, memory: 8g }");
    let inventory = load_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let (_, es2) = inventory.find_jail("es2").unwrap();
    assert_eq!(inventory.heap(es2).jvm(), "4g");
}

#[test]
fn datasets_are_pool_and_child() {
    assert_error(
        &base_with("dataset: zroot/jails", "dataset: /zroot/jails"),
        11,
        19,
        "zfs.dataset `/zroot/jails` is not allowed",
    );
    assert_error(
        &base_with("dataset: zroot/jails", "dataset: zroot"),
        11,
        19,
        "POOL/CHILD",
    );
    assert_error(
        &base_with("dataset: zroot/jails", "dataset: \"zroot/my jails\""),
        11,
        19,
        "no spaces",
    );
}

#[test]
fn a_required_value_missing_everywhere_names_the_host_and_field() {
    let yaml = base_with("  zfs: { dataset: zroot/jails }\n", "").replace(
        "    address: 192.0.2.11\n",
        "    address: 192.0.2.11\n    zfs: { dataset: zroot/jails }\n",
    );
    // Host `one` sets its own dataset; host `two` (now at line 23) has none.
    assert_error(
        &yaml,
        23,
        3,
        "host `two` has no `zfs.dataset`: set `dataset` under `defaults.zfs` or under the host's `zfs`",
    );
}

#[test]
fn the_mountpoint_is_absolute() {
    assert_error(
        &base_with(
            "{ dataset: zroot/jails }",
            "{ dataset: zroot/jails, mountpoint: jails }",
        ),
        11,
        44,
        "it must be an absolute path",
    );
}

#[test]
fn snapshots_get_defaults_and_need_an_absolute_path() {
    let yaml = base_with(
        "  carp:",
        "  snapshots: { repository: backups, path: /var/db/es-snapshots }\n  carp:",
    );
    let inventory = load_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let snapshots = inventory.cluster.snapshots.unwrap();
    assert_eq!(snapshots.path, Path::new("/var/db/es-snapshots"));
    assert_eq!(snapshots.schedule, "0 30 1 * * ?");
    assert_eq!(
        (
            snapshots.retention.expire_after.as_str(),
            snapshots.retention.min_count,
            snapshots.retention.max_count
        ),
        ("30d", 5, 50)
    );
    let yaml = base_with(
        "  carp:",
        "  snapshots: { repository: backups, path: es-snapshots }\n  carp:",
    );
    assert_error(
        &yaml,
        8,
        43,
        "cluster.snapshots.path `es-snapshots` is not allowed: it must be an absolute path",
    );
}

// --- settings ---

#[test]
fn settings_are_flat_scalars_or_lists() {
    let yaml = base_with(
        "  kibana:\n",
        "  elasticsearch:\n    settings:\n      xpack.ml.enabled: false\n      node.attr.zone: a\n      thread_pool.write.queue_size: 1000\n      action.auto_create_index: [\"+logs-*\", \"-*\"]\n  kibana:\n",
    );
    let inventory = load_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let settings = &inventory.cluster.elasticsearch.settings;
    assert_eq!(settings["xpack.ml.enabled"], serde_json::json!(false));
    assert_eq!(settings["node.attr.zone"], serde_json::json!("a"));
    assert_eq!(
        settings["thread_pool.write.queue_size"],
        serde_json::json!(1000)
    );
    assert_eq!(
        settings["action.auto_create_index"],
        serde_json::json!(["+logs-*", "-*"])
    );
}

#[test]
fn nested_settings_must_use_dotted_keys() {
    let yaml = base_with(
        "  kibana:\n",
        "  elasticsearch:\n    settings:\n      xpack: { ml: { enabled: false } }\n  kibana:\n",
    );
    assert_error(
        &yaml,
        5,
        14,
        "`xpack` is a nested mapping; write flat dotted keys instead (`xpack.ml: ...`)",
    );
}

#[test]
fn setting_lists_hold_only_scalars() {
    let yaml = base_with(
        "  kibana:\n",
        "  elasticsearch:\n    settings:\n      a.b: [x, { c: d }]\n  kibana:\n",
    );
    assert_error(&yaml, 5, 12, "an item of `a.b` is a mapping");
}

#[test]
fn elasticsearch_settings_haelk_derives_are_rejected() {
    let yaml = base_with(
        "  kibana:\n",
        "  elasticsearch:\n    settings:\n      network.host: 0.0.0.0\n  kibana:\n",
    );
    assert_error(
        &yaml,
        5,
        7,
        "cluster.elasticsearch.settings: `network.host` cannot be set here: haelk sets `network.host` itself (from the jail's ip)",
    );
}

#[test]
fn kibana_settings_haelk_derives_are_rejected() {
    let yaml = base_with(
        "    encryption_key_file: secrets/kibana.key\n",
        "    encryption_key_file: secrets/kibana.key\n    settings: { xpack.security.encryptionKey: abc }\n",
    );
    assert_error(
        &yaml,
        5,
        17,
        "haelk sets `xpack.security.encryptionKey` itself",
    );
}

#[test]
fn settings_may_not_overlap() {
    let yaml = base_with(
        "  kibana:\n",
        "  elasticsearch:\n    settings:\n      xpack.ml: x\n      xpack.ml.enabled: false\n  kibana:\n",
    );
    assert_error(
        &yaml,
        6,
        7,
        "`xpack.ml.enabled` and `xpack.ml` (line 5, column 7) would set the same setting twice",
    );
}

// --- host-level rules ---

#[test]
fn at_least_one_host() {
    let yaml = BASE.split("hosts:").next().unwrap().to_owned() + "hosts: {}\n";
    assert_error(&yaml, 16, 8, "at least one host");
}

#[test]
fn explicit_epairs_are_unique_per_host() {
    let yaml = base_with("ip: 10.0.0.21 }", "ip: 10.0.0.21, epair: 3 }")
        .replace("ip: 10.0.0.23 }", "ip: 10.0.0.23, epair: 3 }");
    assert_error(
        &yaml,
        22,
        7,
        "jail `kb1` has epair 3, already the epair of jail `es1`",
    );
    let yaml = base_with("ip: 10.0.0.21 }", "ip: 10.0.0.21, epair: 3 }")
        .replace("ip: 10.0.0.31 }", "ip: 10.0.0.31, epair: 3 }");
    assert!(
        load_yaml(&yaml).is_ok(),
        "the same epair on two hosts is fine"
    );
}

#[test]
fn advskew_is_0_to_254_and_only_for_haproxy() {
    assert_error(
        &base_with("ip: 10.0.0.22 }", "ip: 10.0.0.22, advskew: 255 }"),
        21,
        69,
        "advskew 255 is out of range: it must be 0 to 254",
    );
    assert_error(
        &base_with("ip: 10.0.0.23 }", "ip: 10.0.0.23, advskew: 10 }"),
        22,
        52,
        "`advskew` is only for haproxy jails",
    );
}

#[test]
fn values_that_reach_a_shell_are_checked() {
    let cases = [
        (
            "    address: 192.0.2.12",
            "    address: -oProxyCommand=reboot",
            24,
            14,
            "host address `-oProxyCommand=reboot` is not allowed",
        ),
        (
            "    address: 192.0.2.12",
            "    address: 192.0.2.12\n    ssh: { user: \"root;reboot\" }",
            25,
            18,
            "ssh.user `root;reboot` is not allowed",
        ),
        (
            "    address: 192.0.2.12",
            "    address: 192.0.2.12\n    ssh: { jump: \"admin@bastion:22 x\" }",
            25,
            18,
            "ssh.jump",
        ),
        (
            "    base: /media/base.txz",
            "    base: \"/media/$(reboot).txz\"",
            14,
            11,
            "jail base `/media/$(reboot).txz` is not allowed",
        ),
        (
            "    gateway: 10.0.0.1",
            "    gateway: 10.0.0.1\n    bridge: \"bridge0 x\"",
            16,
            13,
            "jail bridge `bridge0 x` is not allowed",
        ),
        (
            "    gateway: 10.0.0.1",
            "    gateway: 10.0.0.1\n    uplink: \"em0;reboot\"",
            16,
            13,
            "jail uplink `em0;reboot` is not allowed",
        ),
        (
            "    gateway: 10.0.0.1",
            "    gateway: 10.0.0.1\n    nameservers: [10.0.0.1, \"$(reboot)\"]",
            16,
            29,
            "jail nameserver `$(reboot)` is not an IPv4 address",
        ),
        (
            "    password_file: secrets/carp.pass",
            "    password_file: secrets/carp.pass\n    interface: \"vnet0;x\"",
            10,
            16,
            "cluster.carp.interface",
        ),
        (
            "  name: test",
            "  name: test\n  haproxy: { package: \"haproxy reboot\" }",
            3,
            23,
            "cluster.haproxy.package `haproxy reboot` is not allowed",
        ),
        (
            "{ dataset: zroot/jails }",
            "{ dataset: zroot/jails, compression: \"lz4 -o x\" }",
            11,
            45,
            "zfs.compression",
        ),
        (
            "    release: 14.3-RELEASE",
            "    release: \"14.3;x\"",
            13,
            14,
            "jail release",
        ),
    ];
    for (from, to, line, column, fragment) in cases {
        assert_error(&base_with(from, to), line, column, fragment);
    }
}

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let yaml = base_with("ip: 10.0.0.31", "ip: bad").replace("vhid: 2", "vhid: 0");
    let err = load_yaml(&yaml).unwrap_err();
    assert_eq!(
        err.location,
        Location {
            line: 7,
            column: 41
        }
    );
    let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[1].contains("inventory.yaml:26:39: jail ip `bad`"),
        "{err}"
    );
}
