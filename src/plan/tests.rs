use super::*;
use crate::desired::{self, ClusterPhase};
use crate::facts::HostFacts;
use crate::inventory::Role;
use crate::secret::Secrets;
use crate::templates::Templates;

fn lab_host(name: &str) -> HostState {
    let inventory = crate::testing::lab();
    let secrets = Secrets::load(&inventory).unwrap();
    let state = desired::build(
        &inventory,
        &Templates::builtin().unwrap(),
        &secrets,
        ClusterPhase::Formed,
    )
    .unwrap();
    state
        .hosts
        .into_iter()
        .find(|h| h.host.as_str() == name)
        .unwrap()
}

fn commands(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Command(c) => c.clone(),
            Step::Write(w) => format!("write {}", w.file.path.display()),
        })
        .collect()
}

#[test]
fn a_converged_host_has_nothing_to_do() {
    let host = lab_host("lab1");
    let plan = plan_host(&host, &crate::testing::converged_facts(&host)).unwrap();
    assert!(plan.is_empty(), "{plan:#?}");
    assert_eq!(plan.change_count(), 0);
    // 5 datasets, 3 rc keys, 1 rc word (cloned_interfaces), the bridge, 1 loader
    // key, 4 jails + their packages, services and files (4 jail.conf + 9 jail files).
    let files = host.all_files().count();
    assert_eq!(plan.unchanged, 5 + 3 + 1 + 1 + 1 + 4 + 4 + 4 + files);
}

#[test]
fn a_fresh_host_is_prepared_in_order_and_every_service_started() {
    let host = lab_host("lab3");
    let plan = plan_host(&host, &HostFacts::default()).unwrap();
    let root = "/var/tmp/haelk-lab/mnt/lab3/lab3-elasticsearch";
    assert_eq!(
        commands(&plan.prepare),
        [
            "zfs create -p -o compression=on -o mountpoint=/var/tmp/haelk-lab/mnt/lab3 lab3/jails"
                .to_owned(),
            "zfs create -p lab3/jails/lab3-elasticsearch".into(),
            "sysrc 'ifconfig_bridge0=addm em0 up'".into(),
            "sysrc jail_enable=YES".into(),
            "sysrc jail_list=lab3-elasticsearch".into(),
            "sysrc cloned_interfaces+=bridge0".into(),
            "ifconfig bridge0 create".into(),
            "ifconfig bridge0 addm em0 up".into(),
            format!("tar -xf /var/tmp/haelk-lab/media/14.3-RELEASE-base.txz -C {root} --unlink"),
            "write /etc/jail.conf.d/lab3-elasticsearch.conf".into(),
            format!("write {root}/etc/rc.conf"),
            format!("write {root}/etc/resolv.conf"),
            format!(
                "{}; service jail start lab3-elasticsearch",
                crate::freebsd::check_release(root.as_ref(), "14.3-RELEASE")
            ),
            "pkg -j lab3-elasticsearch install -y elasticsearch8".into(),
        ]
    );
    let jail = &plan.jails[0];
    assert_eq!(jail.action, ServiceAction::Start);
    assert!(!jail.was_running);
    let written: Vec<String> = jail
        .writes
        .iter()
        .map(|w| w.file.path.display().to_string())
        .collect();
    assert_eq!(
        written,
        [
            format!("{root}/usr/local/etc/elasticsearch/elasticsearch.yml"),
            format!("{root}/usr/local/etc/elasticsearch/jvm.options.d/heap.options"),
        ]
    );
    assert!(jail.writes.iter().all(|w| w.reasons == ["missing"]));
    assert_eq!(plan.unchanged, 0);
}

#[test]
fn the_host_play_loads_carp_where_haproxy_runs() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    facts.carp_loaded = false;
    facts.loader_conf.clear();
    let plan = plan_host(&host, &facts).unwrap();
    assert_eq!(
        commands(&plan.prepare),
        [
            "sysrc -f /boot/loader.conf carp_load=YES",
            "kldload -n carp"
        ]
    );
}

#[test]
fn a_changed_setting_rewrites_one_file_and_restarts_only_that_service() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let es = host
        .jails
        .iter()
        .find(|j| j.role == Role::Elasticsearch)
        .unwrap();
    let yml = &es.files[0];
    facts.files.get_mut(&yml.path).unwrap().content = yml
        .content
        .replace("node.name", "node.attr.x: y\nnode.name");
    let plan = plan_host(&host, &facts).unwrap();
    assert!(plan.prepare.is_empty());
    let changed: Vec<&JailPlan> = plan.jails.iter().filter(|j| !j.is_empty()).collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].name, es.name);
    assert_eq!(changed[0].action, ServiceAction::Restart);
    assert_eq!(changed[0].writes.len(), 1);
    assert_eq!(changed[0].writes[0].reasons, ["content"]);
    assert!(changed[0].was_running);
}

#[test]
fn a_comment_only_change_is_written_without_a_restart() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let kibana = host.jails.iter().find(|j| j.role == Role::Kibana).unwrap();
    let file = &kibana.files[0];
    facts.files.get_mut(&file.path).unwrap().content = format!("# old header\n{}", file.content);
    let plan = plan_host(&host, &facts).unwrap();
    let jail = plan.jail(kibana.name.as_str()).unwrap();
    assert_eq!(jail.writes.len(), 1);
    assert_eq!(jail.action, ServiceAction::None);
    assert_eq!(
        action_commands_of(jail),
        Vec::<String>::new(),
        "nothing but the write"
    );
}

fn action_commands_of(jail: &JailPlan) -> Vec<String> {
    jail.steps()
        .into_iter()
        .filter_map(|s| match s {
            Step::Command(c) => Some(c),
            Step::Write(_) => None,
        })
        .collect()
}

#[test]
fn an_owed_action_is_done_even_when_every_file_is_in_place() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let jail = "lab1-haproxy-es";
    facts.jails.get_mut(jail).unwrap().pending = OnChange::Reload;
    let plan = plan_host(&host, &facts).unwrap();
    let plan = plan.jail(jail).unwrap();
    assert!(plan.writes.is_empty());
    assert_eq!(plan.action, ServiceAction::Reload);
    assert_eq!(
        action_commands_of(plan),
        [
            "service -j lab1-haproxy-es haproxy configtest >&2",
            "service -j lab1-haproxy-es haproxy reload >&2"
        ]
    );
    let script = plan.script();
    let root = "/var/tmp/haelk-lab/mnt/lab1/lab1-haproxy-es";
    assert!(script.starts_with(&format!(
        "set -e\nmkdir -p {root}/var/db/haelk && echo reload > {root}/var/db/haelk/pending\n"
    )));
    assert!(script.ends_with(&format!("rm -f {root}/var/db/haelk/pending\n")));
}

#[test]
fn a_running_jail_with_a_new_jail_conf_is_restarted_in_its_service_play() {
    let host = lab_host("lab2");
    let mut facts = crate::testing::converged_facts(&host);
    let path = freebsd::jail_conf_path("lab2-kibana");
    facts
        .files
        .get_mut(&path)
        .unwrap()
        .content
        .push_str("# edited\nx;\n");
    let plan = plan_host(&host, &facts).unwrap();
    assert!(
        plan.prepare.is_empty(),
        "a running jail is not touched by the host play"
    );
    let jail = plan.jail("lab2-kibana").unwrap();
    assert_eq!(jail.action, ServiceAction::RestartJail);
    assert_eq!(jail.writes[0].file.path, path);
    assert_eq!(
        action_commands_of(jail),
        [
            "service jail restart lab2-kibana >&2".to_owned(),
            "service -j lab2-kibana kibana status >/dev/null 2>&1 || service -j lab2-kibana kibana start >&2".into(),
            "service -j lab2-kibana kibana status >/dev/null 2>&1 || { echo 'kibana is not running in jail lab2-kibana after start' >&2; exit 1; }".into(),
        ]
    );
}

#[test]
fn owner_and_mode_drift_is_rewritten_without_a_restart() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let kibana = host.jails.iter().find(|j| j.role == Role::Kibana).unwrap();
    let current = facts.files.get_mut(&kibana.files[0].path).unwrap();
    current.mode = 0o644;
    current.wanted_gid = Some(80);
    let plan = plan_host(&host, &facts).unwrap();
    let jail = plan.jail(kibana.name.as_str()).unwrap();
    assert_eq!(jail.writes[0].reasons, ["owner", "mode"]);
    assert_eq!(jail.action, ServiceAction::None);
}

#[test]
fn a_stopped_service_is_started() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    facts
        .jails
        .get_mut("lab1-kibana")
        .unwrap()
        .services
        .insert("kibana".into(), false);
    let plan = plan_host(&host, &facts).unwrap();
    let jail = plan.jail("lab1-kibana").unwrap();
    assert_eq!(jail.action, ServiceAction::Start);
    assert!(!jail.was_running);
}

#[test]
fn the_dry_run_listing_masks_secrets_and_shows_unified_diffs() {
    let host = lab_host("lab1");
    let plan = plan_host(&host, &HostFacts::default()).unwrap();
    let inventory = crate::testing::lab();
    let secrets = Secrets::load(&inventory).unwrap();
    let listing = describe(&plan, &|text| secrets.mask(text));
    assert!(!listing.contains(secrets.carp_password.expose()));
    assert!(!listing.contains(secrets.kibana_encryption_key.expose()));
    assert!(listing.contains("  zfs create -p lab1/jails/lab1-kibana\n"));
    assert!(listing.contains("    --- /dev/null\n    +++ b/etc/jail.conf.d/lab1-kibana.conf\n"));
    assert!(listing.contains(" lab1-elasticsearch (start):\n"));
}

#[test]
fn the_host_play_script_stops_at_the_first_error_and_lists_running_jails() {
    let script = script::prepare_script(&[Step::Command("false".into())]);
    assert!(script.starts_with("set -e\nfalse\n"));
    let listing = format!("noise\n{}\nj1\nj2\n", script::RUNNING_JAILS);
    assert_eq!(
        script::running_jails(&listing),
        Some(vec!["j1".to_owned(), "j2".into()])
    );
    assert_eq!(script::running_jails("cut short"), None);
}

#[test]
fn a_bridge_is_made_from_its_uplink_for_every_boot_and_now() {
    let host = lab_host("lab3");
    let mut facts = crate::testing::converged_facts(&host);
    // The operator's own cloned interfaces stay; bridge0 is added once.
    facts.interfaces.remove("bridge0");
    facts
        .rc_conf
        .insert("cloned_interfaces".into(), Some("lagg0".into()));
    let plan = plan_host(&host, &facts).unwrap();
    assert_eq!(
        commands(&plan.prepare),
        [
            "sysrc cloned_interfaces+=bridge0",
            "ifconfig bridge0 create",
            "ifconfig bridge0 addm em0 up",
        ]
    );
    // Already listed among others, and existing: nothing to do.
    facts.interfaces.insert("bridge0".into());
    facts
        .rc_conf
        .insert("cloned_interfaces".into(), Some("lagg0 bridge0".into()));
    assert!(plan_host(&host, &facts).unwrap().is_empty());
}

#[test]
fn a_missing_bridge_without_an_uplink_refuses_the_host_naming_the_key() {
    let mut host = lab_host("lab3");
    host.bridge.as_mut().unwrap().uplink = None;
    host.rc_conf.remove("ifconfig_bridge0");
    host.rc_conf_words.clear();
    let mut facts = crate::testing::converged_facts(&host);
    assert!(plan_host(&host, &facts).unwrap().is_empty());
    facts.interfaces.remove("bridge0");
    let refused = plan_host(&host, &HostFacts::default()).unwrap_err();
    assert_eq!(
        refused,
        PlanError::NoBridge {
            host: "lab3".into(),
            bridge: "bridge0".into()
        }
    );
    let message = plan_host(&host, &facts).unwrap_err().to_string();
    for part in ["host lab3", "bridge0", "jails.uplink"] {
        assert!(message.contains(part), "{message}");
    }
}

#[test]
fn a_host_without_jails_needs_no_bridge() {
    let host = lab_host("lab4");
    assert!(host.bridge.is_none());
    assert!(host.rc_conf_words.is_empty() && !host.rc_conf.contains_key("ifconfig_bridge0"));
}

fn example_host(name: &str) -> HostState {
    let inventory = crate::testing::example();
    let secrets = Secrets::load(&inventory).unwrap();
    let state = desired::build(
        &inventory,
        &Templates::builtin().unwrap(),
        &secrets,
        ClusterPhase::Formed,
    )
    .unwrap();
    state
        .hosts
        .into_iter()
        .find(|h| h.host.as_str() == name)
        .unwrap()
}

fn host_file(content: &str) -> crate::facts::FileFacts {
    crate::facts::FileFacts {
        content: content.into(),
        mode: 0o644,
        uid: 0,
        gid: 0,
        wanted_uid: None,
        wanted_gid: None,
    }
}

#[test]
fn the_jail_resolver_comes_from_the_nameservers_before_any_pkg() {
    let host = lab_host("lab3");
    let root = "/var/tmp/haelk-lab/mnt/lab3/lab3-elasticsearch";
    let resolv = host.jails[0]
        .files
        .iter()
        .find(|f| f.path == std::path::Path::new(&format!("{root}/etc/resolv.conf")))
        .unwrap();
    assert!(
        resolv.content.contains("\nnameserver 198.51.100.1\n"),
        "{}",
        resolv.content
    );
    assert_eq!(resolv.on_change, OnChange::Nothing);
    // A running jail that lacks its package: the resolver is written in the
    // host play, before `pkg -j`, and restarts nothing.
    let mut facts = crate::testing::converged_facts(&host);
    facts.files.remove(&resolv.path);
    facts
        .jails
        .get_mut("lab3-elasticsearch")
        .unwrap()
        .packages
        .clear();
    let plan = plan_host(&host, &facts).unwrap();
    assert_eq!(
        commands(&plan.prepare),
        [
            format!("write {root}/etc/resolv.conf"),
            "pkg -j lab3-elasticsearch install -y elasticsearch8".into(),
        ]
    );
    assert_eq!(plan.jails[0].action, ServiceAction::None);
}

#[test]
fn without_nameservers_each_jail_gets_a_copy_of_its_hosts_resolver() {
    let host = example_host("7c3a-tiebreak");
    let jail_resolv = host.jails[0].root.join("etc/resolv.conf");
    let mut facts = crate::testing::converged_facts(&host);
    facts.files.remove(&jail_resolv);
    // The host's file is read by the facts script with the managed files.
    assert!(crate::facts::script(&host).contains("haelk_file /etc/resolv.conf\n"));
    // No host file: nothing to copy, nothing written.
    assert!(plan_host(&host, &facts).unwrap().is_empty());
    facts.files.insert(
        "/etc/resolv.conf".into(),
        host_file("search example.org\nnameserver 192.0.2.53\n"),
    );
    let plan = plan_host(&host, &facts).unwrap();
    let [Step::Write(write)] = plan.prepare.as_slice() else {
        panic!("{:#?}", plan.prepare);
    };
    assert_eq!(write.file.path, jail_resolv);
    assert_eq!(
        write.file.content,
        "search example.org\nnameserver 192.0.2.53\n"
    );
    // Copied once: the next deploy has nothing to do.
    facts.files.insert(
        jail_resolv,
        host_file("search example.org\nnameserver 192.0.2.53\n"),
    );
    assert!(plan_host(&host, &facts).unwrap().is_empty());
}

#[test]
fn a_stopped_jail_with_its_packages_gets_every_file_before_its_rc_starts_the_service() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let kibana = host.jails.iter().find(|j| j.role == Role::Kibana).unwrap();
    let yml = &kibana.files[0];
    facts.files.get_mut(&yml.path).unwrap().content = "old: yes\n".into();
    let jail = facts.jails.get_mut(kibana.name.as_str()).unwrap();
    jail.running = false;
    for running in jail.services.values_mut() {
        *running = false;
    }
    let plan = plan_host(&host, &facts).unwrap();
    assert_eq!(
        commands(&plan.prepare),
        [
            format!("write {}", yml.path.display()),
            format!(
                "{}; service jail start {}",
                crate::freebsd::check_release(&kibana.root, "14.3-RELEASE"),
                kibana.name
            ),
        ]
    );
    let jail = plan.jail(kibana.name.as_str()).unwrap();
    assert!(jail.writes.is_empty());
    assert_eq!(jail.action, ServiceAction::Start);
    // The start tolerates the service /etc/rc already started.
    let script = jail.script();
    let start = format!(
        "service -j {0} kibana status >/dev/null 2>&1 || service -j {0} kibana start >&2\n",
        kibana.name
    );
    assert!(script.contains(&start), "{script}");
    assert!(!script.contains(&format!("\nservice -j {} kibana start", kibana.name)));
}

#[test]
fn a_stopped_jail_without_its_packages_gets_its_service_files_after_pkg() {
    let host = lab_host("lab3");
    let mut facts = crate::testing::converged_facts(&host);
    let jail = facts.jails.get_mut("lab3-elasticsearch").unwrap();
    jail.running = false;
    jail.packages.clear();
    for file in &host.jails[0].files {
        facts.files.remove(&file.path);
    }
    let plan = plan_host(&host, &facts).unwrap();
    let root = "/var/tmp/haelk-lab/mnt/lab3/lab3-elasticsearch";
    assert_eq!(
        commands(&plan.prepare),
        [
            format!("write {root}/etc/rc.conf"),
            format!("write {root}/etc/resolv.conf"),
            format!(
                "{}; service jail start lab3-elasticsearch",
                crate::freebsd::check_release(root.as_ref(), "14.3-RELEASE")
            ),
            "pkg -j lab3-elasticsearch install -y elasticsearch8".into(),
        ]
    );
    assert_eq!(plan.jails[0].writes.len(), 2);
}

/// The lab1 haproxy jail fronting Elasticsearch and its file whose path ends with
/// `suffix`.
fn haproxy_file<'a>(
    host: &'a HostState,
    suffix: &str,
) -> (&'a desired::JailState, &'a ManagedFile) {
    let jail = host
        .jails
        .iter()
        .find(|j| j.role == Role::Haproxy && j.name.as_str().ends_with("-es"))
        .unwrap();
    let file = jail
        .files
        .iter()
        .find(|f| f.path.ends_with(suffix))
        .unwrap();
    (jail, file)
}

/// The lab1 haproxy jail fronting Elasticsearch and its `/etc/sysctl.conf`.
fn haproxy_sysctl_conf(host: &HostState) -> (&desired::JailState, &ManagedFile) {
    haproxy_file(host, "etc/sysctl.conf")
}

#[test]
fn a_running_haproxy_jail_restarts_its_carp_watch_once_when_its_files_change() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let (haproxy, script_file) = haproxy_file(&host, "usr/local/etc/haelk/carp-watch.sh");
    let (_, rc_local) = haproxy_file(&host, "etc/rc.local");
    assert!(rc_local.content.contains(&freebsd::carp_watch_daemon()));
    assert!(script_file.content.contains("net.inet.carp.demotion=239"));
    facts.files.remove(&script_file.path);
    facts.files.remove(&rc_local.path);
    let plan = plan_host(&host, &facts).unwrap();
    let jail = plan.jail(haproxy.name.as_str()).unwrap();
    assert_eq!(jail.writes.len(), 2);
    assert_eq!(
        jail.action,
        ServiceAction::None,
        "haproxy does not read them"
    );
    assert_eq!(
        action_commands_of(jail),
        [format!(
            "{} >&2",
            freebsd::jail_carp_watch_restart(haproxy.name.as_str())
        )]
    );
}

#[test]
fn a_stopped_haproxy_jail_gets_its_carp_watch_from_its_rc() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let (haproxy, rc_local) = haproxy_file(&host, "etc/rc.local");
    facts.files.remove(&rc_local.path);
    let jail = facts.jails.get_mut(haproxy.name.as_str()).unwrap();
    jail.running = false;
    let plan = plan_host(&host, &facts).unwrap();
    assert!(commands(&plan.prepare).contains(&format!("write {}", rc_local.path.display())));
    let jail = plan.jail(haproxy.name.as_str()).unwrap();
    let restart = freebsd::jail_carp_watch_restart(haproxy.name.as_str());
    assert!(!jail.script().contains(&restart), "rc.d/local starts it");
}

#[test]
fn a_running_haproxy_jail_gets_its_changed_sysctl_values_live_without_touching_haproxy() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let (haproxy, sysctl_conf) = haproxy_sysctl_conf(&host);
    assert!(sysctl_conf.content.contains("\nnet.inet.carp.preempt=1\n"));
    facts.files.remove(&sysctl_conf.path);
    let plan = plan_host(&host, &facts).unwrap();
    assert!(plan.prepare.is_empty(), "{:?}", commands(&plan.prepare));
    let jail = plan.jail(haproxy.name.as_str()).unwrap();
    assert_eq!(jail.writes.len(), 1);
    assert_eq!(jail.action, ServiceAction::None, "haproxy does not read it");
    assert_eq!(
        action_commands_of(jail),
        [format!(
            "jexec {} sysctl -f /etc/sysctl.conf >&2",
            haproxy.name
        )]
    );
    let script = jail.script();
    let written = script.find("mv -f").unwrap();
    let applied = script.find("sysctl -f").unwrap();
    assert!(written < applied, "{script}");
}

#[test]
fn a_stopped_haproxy_jail_gets_its_sysctl_values_before_its_rc_reads_them() {
    let host = lab_host("lab1");
    let mut facts = crate::testing::converged_facts(&host);
    let (haproxy, sysctl_conf) = haproxy_sysctl_conf(&host);
    facts.files.remove(&sysctl_conf.path);
    let jail = facts.jails.get_mut(haproxy.name.as_str()).unwrap();
    jail.running = false;
    for running in jail.services.values_mut() {
        *running = false;
    }
    let plan = plan_host(&host, &facts).unwrap();
    let prepare = commands(&plan.prepare);
    let written = prepare
        .iter()
        .position(|c| *c == format!("write {}", sysctl_conf.path.display()))
        .unwrap();
    let started = prepare
        .iter()
        .position(|c| c.ends_with(&format!("service jail start {}", haproxy.name)))
        .unwrap();
    assert!(written < started, "{prepare:?}");
    let jail = plan.jail(haproxy.name.as_str()).unwrap();
    assert!(!jail.script().contains("sysctl"), "its /etc/rc applies it");
}

/// Jail j1's plan: `action` for `service`, nothing written.
fn action_plan(service: &str, action: ServiceAction) -> JailPlan {
    JailPlan {
        name: Name::new("j1").unwrap(),
        root: "/jails/j1".into(),
        service: service.into(),
        writes: Vec::new(),
        action,
        was_running: true,
    }
}

#[test]
fn a_haproxy_restart_lifts_the_handover_demotion_once_haproxy_runs_and_a_jail_restart_does_not() {
    let haproxy = action_commands_of(&action_plan("haproxy", ServiceAction::Restart));
    let undemote = crate::freebsd::jail_carp_undemote("j1");
    let at = haproxy.iter().position(|c| *c == undemote).unwrap();
    assert!(haproxy[at - 1].contains("haproxy status"), "{haproxy:#?}");
    for (service, action) in [
        ("haproxy", ServiceAction::RestartJail),
        ("haproxy", ServiceAction::Reload),
        ("kibana", ServiceAction::Restart),
    ] {
        let commands = action_commands_of(&action_plan(service, action));
        assert!(!commands.contains(&undemote), "{service} {action:?}");
    }
}

#[test]
fn whenever_deploy_starts_haproxy_it_makes_sure_the_carp_watch_runs() {
    let ensure = format!("{} >&2", crate::freebsd::jail_carp_watch_ensure("j1"));
    for action in [
        ServiceAction::Start,
        ServiceAction::Restart,
        ServiceAction::RestartJail,
    ] {
        let commands = action_commands_of(&action_plan("haproxy", action));
        assert_eq!(commands.last(), Some(&ensure), "{action:?}: {commands:#?}");
    }
    for (service, action) in [
        ("haproxy", ServiceAction::Reload),
        ("kibana", ServiceAction::Start),
    ] {
        let commands = action_commands_of(&action_plan(service, action));
        assert!(!commands.contains(&ensure), "{service} {action:?}");
    }
}
