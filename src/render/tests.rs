//! Tests of the rendered tree: snapshots of every file of the example inventory,
//! masking, `--out`/`--diff` round trips, and every haproxy.conf against the real
//! `haproxy -c`.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::inventory::{Inventory, NodeRole, Role};
use crate::testing::{example, lab};

fn render_phase(inventory: &Inventory, phase: ClusterPhase) -> RenderedTree {
    let options = RenderOptions {
        templates: None,
        phase,
    };
    render(inventory, &options).unwrap()
}

/// A snapshot name from a tree path: `8f14-jmm/etc/rc.conf` -> `8f14-jmm__etc__rc.conf`.
fn snapshot_name(path: &str) -> String {
    path.replace('/', "__")
}

#[test]
fn every_file_of_the_example_inventory() {
    let tree = render_phase(&example(), ClusterPhase::Formed);
    assert_eq!(tree.len(), 47);
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        for (path, content) in tree.files() {
            insta::assert_snapshot!(snapshot_name(path), content);
        }
    });
}

#[test]
fn elasticsearch_yml_of_the_example_inventory_while_bootstrapping() {
    let tree = render_phase(&example(), ClusterPhase::Bootstrap);
    let formed = render_phase(&example(), ClusterPhase::Formed);
    let mut bootstrap_files = 0;
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        for (path, content) in tree.files() {
            if path.ends_with("/elasticsearch.yml") {
                bootstrap_files += 1;
                let name = format!("bootstrap__{}", snapshot_name(path));
                insta::assert_snapshot!(name, content);
            } else {
                assert_eq!(Some(content), formed.get(path), "{path} depends on the phase");
            }
        }
    });
    assert_eq!(bootstrap_files, 3);
}

#[test]
fn no_secret_reaches_a_rendered_tree() {
    for inventory in [example(), lab()] {
        let secrets = Secrets::load(&inventory).unwrap();
        for phase in [ClusterPhase::Bootstrap, ClusterPhase::Formed] {
            let tree = render_phase(&inventory, phase);
            for (path, content) in tree.files() {
                for secret in [&secrets.carp_password, &secrets.kibana_encryption_key] {
                    assert!(
                        !content.contains(secret.expose()),
                        "{path} shows the secret from {}",
                        secret.source().display()
                    );
                }
            }
            // The secrets are there, masked: otherwise this test proves nothing.
            let masked_carp = tree
                .get("8f14-jmm/usr/local/jails/11e9-haproxy-kibana/etc/rc.conf")
                .or_else(|| {
                    tree.get("lab1/var/tmp/haelk-lab/mnt/lab1/lab1-haproxy-kibana/etc/rc.conf")
                })
                .unwrap();
            assert!(masked_carp.contains(&format!(" pass {} alias ", crate::secret::MASK)));
        }
    }
}

#[test]
fn a_written_tree_diffs_empty_and_a_one_line_change_names_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rendered");
    let inventory = example();
    let tree = render_phase(&inventory, ClusterPhase::Formed);
    tree.write(&out).unwrap();
    assert!(out.join(MARKER).is_file());
    let diff = tree.diff(&out).unwrap();
    assert!(diff.is_empty(), "{diff}");
    assert_eq!(diff.to_string(), "");

    // One line of the inventory: the tiebreaker also ingests.
    let mut changed = inventory.clone();
    changed.hosts[2].jails[0].node_roles.push(NodeRole::Ingest);
    let diff = render_phase(&changed, ClusterPhase::Formed)
        .diff(&out)
        .unwrap();
    let path = "7c3a-tiebreak/usr/local/jails/7c3a-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml";
    let changed_files: Vec<&str> = diff.files().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(changed_files, [path]);
    let text = diff.to_string();
    assert!(
        text.starts_with(&format!("--- a/{path}\n+++ b/{path}\n@@ ")),
        "{text}"
    );
    let changed_lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(
        changed_lines,
        [
            "-node.roles: [\"master\",\"voting_only\"]",
            "+node.roles: [\"master\",\"voting_only\",\"ingest\"]",
        ]
    );
}

#[test]
fn new_and_removed_files_diff_as_wholly_added_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = example();
    let tree = render_phase(&inventory, ClusterPhase::Formed);
    tree.write(dir.path()).unwrap();
    std::fs::write(dir.path().join("8f14-jmm/leftover.conf"), "old\n").unwrap();
    let kibana_yml = "11e9-jmm/usr/local/jails/2a42-kibana/usr/local/etc/kibana/kibana.yml";
    std::fs::remove_file(dir.path().join(kibana_yml)).unwrap();

    let diff = tree.diff(dir.path()).unwrap();
    let files: Vec<&str> = diff.files().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, [kibana_yml, "8f14-jmm/leftover.conf"]);
    let added = &diff.files()[0].text;
    assert!(
        added.starts_with(&format!("--- /dev/null\n+++ b/{kibana_yml}\n@@ -0,0 +1,")),
        "{added}"
    );
    let content = tree.get(kibana_yml).unwrap();
    assert_eq!(
        added.lines().filter(|l| l.starts_with('+')).count(),
        content.lines().count() + 1
    );
    let removed = &diff.files()[1].text;
    assert_eq!(
        removed,
        "--- a/8f14-jmm/leftover.conf\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n"
    );
}

#[test]
fn stale_files_are_removed_only_where_haelk_rendered_before() {
    let dir = tempfile::tempdir().unwrap();
    let tree = render_phase(&example(), ClusterPhase::Formed);

    // A directory haelk did not create: nothing is deleted, and no marker makes it
    // haelk's.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("notes")).unwrap();
    std::fs::write(foreign.join("notes/keep.txt"), "mine\n").unwrap();
    tree.write(&foreign).unwrap();
    tree.write(&foreign).unwrap();
    assert!(foreign.join("notes/keep.txt").is_file());
    assert!(!foreign.join(MARKER).exists());

    // A render directory: a file no longer rendered disappears, with its now
    // empty directories.
    let rendered = dir.path().join("rendered");
    tree.write(&rendered).unwrap();
    std::fs::create_dir_all(rendered.join("old-host/etc")).unwrap();
    std::fs::write(rendered.join("old-host/etc/rc.conf"), "x\n").unwrap();
    tree.write(&rendered).unwrap();
    assert!(!rendered.join("old-host").exists());
    assert!(rendered.join(MARKER).is_file());
    assert!(tree.diff(&rendered).unwrap().is_empty());
}

#[test]
fn host_keys_files_hold_only_haelks_keys() {
    let tree = render_phase(&example(), ClusterPhase::Formed);
    let rc = tree.get("8f14-jmm/etc/rc.conf").unwrap();
    let keys: Vec<&str> = rc.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        keys,
        [
            "ifconfig_bridge0=\"addm em0 up\"",
            "jail_enable=\"YES\"",
            "jail_list=\"d12c-elasticsearch 8f15-kibana 11e9-haproxy-kibana 9fbb-haproxy-elasticsearch\"",
            "cloned_interfaces+=\"bridge0\"",
        ]
    );
    assert!(rc.starts_with("# managed by haelk"));
    assert!(
        tree.get("8f14-jmm/boot/loader.conf")
            .unwrap()
            .ends_with("\ncarp_load=\"YES\"\n")
    );
    assert!(tree.get("7c3a-tiebreak/boot/loader.conf").is_none());
}

/// `haproxy -c` parses and checks a configuration without binding its
/// addresses, so the VIPs need not exist here and the file is checked as is.
fn haproxy_check(name: &str, content: &str) {
    let haproxy = Path::new("/usr/sbin/haproxy");
    assert!(
        haproxy.is_file(),
        "this test needs the real HAProxy at {} (Debian: apt-get install haproxy)",
        haproxy.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.conf");
    std::fs::write(&file, content).unwrap();
    let output = Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "haproxy -c rejects {name}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_rendered_haproxy_conf_passes_haproxy_check() {
    for inventory in [example(), lab()] {
        let inputs = Inputs::load(&inventory, None).unwrap();
        let secrets = &inputs.secrets;
        let state = inputs.build(&inventory, ClusterPhase::Formed).unwrap();
        let mut checked = 0;
        for host in &state.hosts {
            for jail in host.jails.iter().filter(|j| j.role == Role::Haproxy) {
                for file in jail
                    .files
                    .iter()
                    .filter(|f| f.path.ends_with("haproxy.conf"))
                {
                    // The real content: it must hold no secret to be checked as is.
                    assert_eq!(secrets.mask(&file.content), file.content);
                    haproxy_check(&file.path.display().to_string(), &file.content);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 4, "{}", inventory.source.display());
    }
}

#[test]
fn a_broken_haproxy_conf_fails_the_check() {
    // The check itself must be able to fail - because haproxy rejects the file,
    // not because haproxy is missing (that panics with another message).
    let result = std::panic::catch_unwind(|| {
        haproxy_check(
            "broken",
            "frontend x\n    bind 127.0.0.1:1\n    no-such-keyword\n",
        )
    });
    let panic = result.expect_err("haproxy -c accepted a broken file");
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        message.starts_with("haproxy -c rejects broken:") && message.contains("no-such-keyword"),
        "{message}"
    );
}
