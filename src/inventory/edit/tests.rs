use super::*;
use crate::inventory::load;
use std::path::PathBuf;

fn crate_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The text of a repository inventory, its path and the model loaded from it.
fn repo_inventory(relative: &str) -> (String, PathBuf, Inventory) {
    let path = crate_file(relative);
    let text = fs::read_to_string(&path).unwrap();
    let inventory = load(&path).unwrap_or_else(|e| panic!("{e}"));
    (text, path, inventory)
}

/// The one line of `text` that contains `fragment`.
#[track_caller]
fn line_with(text: &str, fragment: &str) -> String {
    let found: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| l.contains(fragment))
        .collect();
    assert_eq!(found.len(), 1, "{fragment:?} must be on exactly one line");
    found[0].to_owned()
}

/// `text` with `line` (which must occur once) taken out and put back right
/// after `anchor` (which must occur once).
#[track_caller]
fn moved_by_hand(text: &str, line: &str, anchor: &str) -> String {
    assert_eq!(text.matches(line).count(), 1);
    let without = text.replacen(line, "", 1);
    assert_eq!(without.matches(anchor).count(), 1);
    without.replacen(anchor, &format!("{anchor}{line}"), 1)
}

/// The 1-based number of the line of `text` that contains `fragment`.
fn line_number(text: &str, fragment: &str) -> usize {
    text.lines().position(|l| l.contains(fragment)).unwrap() + 1
}

#[test]
fn moves_a_flow_style_jail_in_the_lab_inventory_to_the_end_of_another_host() {
    let (text, path, inventory) = repo_inventory("inventories/lab.yaml");
    let kibana = line_with(&text, "lab1-kibana:");
    let last_of_lab3 = line_with(&text, "lab3-elasticsearch:");

    let moved = move_jail(&text, &path, &inventory, "lab1-kibana", "lab3").unwrap();

    assert_eq!(moved.text, moved_by_hand(&text, &kibana, &last_of_lab3));
    let old_line = line_number(&text, "lab1-kibana:");
    assert_eq!(moved.removed, old_line..=old_line);
    assert_eq!(moved.inserted_at, line_number(&moved.text, "lab1-kibana:"));
    assert_eq!(moved.block, kibana);
    let reloaded = super::super::from_str(&moved.text, &path, &validate::FileSystem).unwrap();
    assert_eq!(
        reloaded.find_jail("lab1-kibana").unwrap().0.name.as_str(),
        "lab3"
    );
}

#[test]
fn moves_a_jail_of_the_last_host_to_the_first_host_of_the_lab_inventory() {
    let (text, path, inventory) = repo_inventory("inventories/lab.yaml");
    let elasticsearch = line_with(&text, "lab3-elasticsearch:");
    let last_of_lab1 = line_with(&text, "lab1-elasticsearch:");

    let moved = move_jail(&text, &path, &inventory, "lab3-elasticsearch", "lab1").unwrap();

    assert_eq!(
        moved.text,
        moved_by_hand(&text, &elasticsearch, &last_of_lab1)
    );
    assert_eq!(
        moved.inserted_at,
        line_number(&text, "lab1-elasticsearch:") + 1
    );
    assert!(
        moved
            .text
            .starts_with("# The example topology on the local lab")
    );
}

#[test]
fn moves_a_jail_between_hosts_of_the_example_inventory() {
    let (text, path, inventory) = repo_inventory("inventories/example.yaml");
    let kibana = line_with(&text, "8f15-kibana:");
    let last_of_tiebreak = line_with(&text, "7c3a-elasticsearch:");

    let moved = move_jail(&text, &path, &inventory, "8f15-kibana", "7c3a-tiebreak").unwrap();

    assert_eq!(moved.text, moved_by_hand(&text, &kibana, &last_of_tiebreak));
    // The comment inside the cluster section is untouched.
    assert!(
        moved
            .text
            .contains("xpack.security.enabled: false   # haelk does not manage TLS")
    );
}

/// A valid inventory whose hosts indent differently and whose jails are
/// written in block style, some with comments; secrets resolve next to it.
const BLOCK_STYLE: &str = "\
cluster:
  name: test
  kibana:
    encryption_key_file: secrets/kibana.key
  vips:
    elasticsearch: { address: 10.0.0.10, vhid: 1 }
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
      lb1: { role: haproxy, fronts: elasticsearch, ip: 10.0.0.22 }
      # The first data node.
      # It keeps two comment lines.
      es1:
        role: elasticsearch
        ip: 10.0.0.21

        # memory is a guess
        memory: 2g
      # About whatever follows es1.
  two:
      address: 192.0.2.12
      jails:
          es2:
              role: elasticsearch
              ip: 10.0.0.31   # trailing comment
          # trailing comment of the jails of two
  three:
    address: 192.0.2.13
";

fn write_tree(yaml: &str) -> (tempfile::TempDir, PathBuf, Inventory) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    fs::write(dir.path().join("secrets/carp.pass"), "carp-password\n").unwrap();
    fs::write(dir.path().join("secrets/kibana.key"), "k".repeat(40)).unwrap();
    let path = dir.path().join("inventory.yaml");
    fs::write(&path, yaml).unwrap();
    let inventory = load(&path).unwrap_or_else(|e| panic!("{e}"));
    (dir, path, inventory)
}

#[test]
fn moves_a_block_style_jail_with_its_comments_and_reindents_it() {
    let (_dir, path, inventory) = write_tree(BLOCK_STYLE);

    let moved = move_jail(BLOCK_STYLE, &path, &inventory, "es1", "two").unwrap();

    let expected_block = "          # The first data node.
          # It keeps two comment lines.
          es1:
            role: elasticsearch
            ip: 10.0.0.21

            # memory is a guess
            memory: 2g
";
    assert_eq!(moved.block, expected_block);
    assert_eq!(moved.removed, 20..=27);
    let expected = BLOCK_STYLE
        .replacen(
            "      # The first data node.
      # It keeps two comment lines.
      es1:
        role: elasticsearch
        ip: 10.0.0.21

        # memory is a guess
        memory: 2g
",
            "",
            1,
        )
        .replacen(
            "ip: 10.0.0.31   # trailing comment\n",
            &format!("ip: 10.0.0.31   # trailing comment\n{expected_block}"),
            1,
        );
    assert_eq!(moved.text, expected);
    assert_eq!(
        moved.inserted_at,
        line_number(&expected, "# The first data node.")
    );
}

#[test]
fn moves_the_last_jail_of_a_host_and_keeps_the_host_valid() {
    let (_dir, path, inventory) = write_tree(BLOCK_STYLE);

    let moved = move_jail(BLOCK_STYLE, &path, &inventory, "es2", "one").unwrap();

    assert_eq!(
        moved.block,
        "      es2:\n          role: elasticsearch\n          ip: 10.0.0.31   # trailing comment\n"
    );
    let reloaded = super::super::from_str(&moved.text, &path, &validate::FileSystem).unwrap();
    assert!(reloaded.hosts[1].jails.is_empty());
}

#[test]
fn a_target_host_without_jails_gets_an_instruction() {
    let (_dir, path, inventory) = write_tree(BLOCK_STYLE);

    let error = move_jail(BLOCK_STYLE, &path, &inventory, "lb1", "three").unwrap_err();

    let instruction = error.instruction().expect("an edit to make by hand");
    assert_eq!(
        instruction,
        format!(
            "give host three (line 36) a block-style `jails:` mapping and move \
             line 19 (`lb1: {{ role: haproxy, fronts: elasticsearch, ip:...`) of {} into it",
            path.display()
        )
    );
    assert!(
        error
            .to_string()
            .contains("host `three` has no `jails:` key"),
        "{error}"
    );
}

#[test]
fn an_empty_jails_mapping_of_the_target_becomes_a_block_holding_the_jail() {
    let yaml = BLOCK_STYLE.replace(
        "    address: 192.0.2.13\n",
        "    address: 192.0.2.13\n    jails: {}   # none yet\n",
    );
    let (_dir, path, inventory) = write_tree(&yaml);

    let moved = move_jail(&yaml, &path, &inventory, "lb1", "three").unwrap();

    assert!(
        moved.text.ends_with(
            "    jails: # none yet\n      lb1: { role: haproxy, fronts: elasticsearch, ip: 10.0.0.22 }\n"
        ),
        "{}",
        moved.text
    );
}

#[test]
fn a_flow_style_jails_mapping_gets_an_instruction() {
    let yaml = BLOCK_STYLE.replace(
        "  three:\n    address: 192.0.2.13\n",
        "  three:\n    address: 192.0.2.13\n    jails: { kb3: { role: kibana, ip: 10.0.0.41 } }\n",
    );
    let yaml = yaml.replace(
        "vhid: 1 }\n",
        "vhid: 1 }\n    kibana: { address: 10.0.0.20, vhid: 2 }\n",
    );
    let (_dir, path, inventory) = write_tree(&yaml);

    let error = move_jail(&yaml, &path, &inventory, "lb1", "three").unwrap_err();

    assert!(
        matches!(&error, EditError::Manual { why, .. } if why.contains("`kb3:`")),
        "{error}"
    );
    assert_eq!(
        error.instruction().unwrap(),
        format!(
            "move the entry of jail `lb1` (line 20) of {} into the `jails:` mapping of host three (line 37)",
            path.display()
        )
    );
}

#[test]
fn a_result_that_does_not_verify_gets_the_exact_instruction() {
    // Once es1 moves after es2, the alias `*es` comes before its anchor `&es`.
    let yaml = BLOCK_STYLE
        .replacen("role: elasticsearch", "role: &es elasticsearch", 1)
        .replace(
            "role: elasticsearch\n              ip",
            "role: *es\n              ip",
        );
    let (_dir, path, inventory) = write_tree(&yaml);

    let error = move_jail(&yaml, &path, &inventory, "es1", "two").unwrap_err();

    let EditError::Manual { why, instruction } = &error else {
        panic!("{error:?}");
    };
    assert!(why.contains("does not load"), "{why}");
    assert_eq!(
        *instruction,
        format!(
            "move lines 20-27 (`es1:`) of {} to the end of the `jails:` mapping of host two \
             (after line 34), indented by 10 spaces",
            path.display()
        )
    );
}

#[test]
fn moving_to_the_same_host_or_an_unknown_place_is_refused() {
    let (text, path, inventory) = repo_inventory("inventories/lab.yaml");
    assert_eq!(
        move_jail(&text, &path, &inventory, "lab1-kibana", "lab1"),
        Err(EditError::SameHost {
            jail: "lab1-kibana".into(),
            host: "lab1".into()
        })
    );
    assert_eq!(
        move_jail(&text, &path, &inventory, "lab9-kibana", "lab2"),
        Err(EditError::UnknownJail {
            jail: "lab9-kibana".into()
        })
    );
    assert_eq!(
        move_jail(&text, &path, &inventory, "lab1-kibana", "lab9"),
        Err(EditError::UnknownHost {
            host: "lab9".into()
        })
    );
}

#[test]
fn text_that_no_longer_matches_the_model_is_not_edited() {
    let (text, path, inventory) = repo_inventory("inventories/lab.yaml");
    let shifted = format!("# a new first line\n{text}");

    let error = move_jail(&shifted, &path, &inventory, "lab1-kibana", "lab3").unwrap_err();

    let EditError::Manual { why, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(
        why.contains("not what the inventory was loaded from"),
        "{why}"
    );
}

#[test]
fn writes_atomically_and_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.yaml");
    fs::write(&path, "old\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

    write_atomically(&path, "new\n").unwrap();

    assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["inventory.yaml"], "no temporary file left behind");
}

#[test]
fn a_file_without_a_final_newline_gets_one_where_lines_are_added() {
    let (text, path, inventory) = repo_inventory("inventories/lab.yaml");
    let unterminated = text.trim_end_matches('\n');
    let kibana = line_with(&text, "lab1-kibana:");

    let moved = move_jail(unterminated, &path, &inventory, "lab1-kibana", "lab4").unwrap();

    // lab4, the last host, has `jails: {}`: the jail becomes its first entry.
    let without = unterminated.replacen(&kibana, "", 1);
    let head = without
        .strip_suffix("jails: {}")
        .expect("lab4 ends the file");
    assert_eq!(moved.text, format!("{head}jails:\n{kibana}"));
}

#[test]
fn quoted_jail_keys_are_found() {
    let yaml = BLOCK_STYLE.replace("          es2:\n", "          \"es2\":\n");
    let (_dir, path, inventory) = write_tree(&yaml);

    let moved = move_jail(&yaml, &path, &inventory, "es2", "one").unwrap();

    assert!(
        moved.block.starts_with("      \"es2\":\n          role"),
        "{}",
        moved.block
    );
}
