//! `haelk lint` end to end: real inventory files through the loader, the rules
//! and the command line (exit codes, text on stderr, JSON on stdout).

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

const EXAMPLE: &str = "inventories/example.yaml";
const ORIGINAL: &str = "tests/fixtures/inventories/ha-elk-original.yaml";

fn lint(path: &str) -> haelk::lint::Report {
    let inventory = haelk::inventory::load(Path::new(path)).expect("the inventory loads");
    haelk::lint::lint(&inventory)
}

#[test]
fn the_example_inventory_is_clean() {
    let report = lint(EXAMPLE);
    assert!(report.diagnostics().is_empty(), "{report:#?}");
}

/// Lint leaves to the loader what it already rejects (see the comments in
/// `src/lint/rules.rs`); each of these edits of the example must stay an error.
#[test]
fn the_loader_rejects_what_lint_leaves_to_it() {
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let secrets = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/secrets/");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.yaml");
    let load_edited = |from: &str, to: &str| {
        assert!(example.contains(from), "{from:?} is not in the example");
        let edited = example
            .replacen(from, to, 1)
            .replace("secrets/", &secrets.display().to_string());
        std::fs::write(&path, edited).unwrap();
        haelk::inventory::load(&path)
    };
    // The copy loads as it is: each error below comes from its one edit.
    load_edited("", "").expect("the unedited copy loads");
    let cases = [
        ("ip: 10.0.0.22 }", "ip: 10.0.0.1 }", "is the gateway"),
        ("ip: 10.0.0.22 }", "ip: 10.0.0.255 }", "broadcast address"),
        ("ip: 10.0.0.22 }", "ip: 10.0.0.0 }", "network address"),
        ("ip: 10.0.0.22 }", "ip: 10.0.1.22 }", "is not on the subnet"),
        ("ip: 10.0.0.26 }", "ip: 10.0.0.22 }", "is already used by"),
        ("ip: 10.0.0.22 }", "ip: 10.0.0.20 }", "is already used by"),
        (
            "[master, voting_only]",
            "[voting_only]",
            "requires `master`",
        ),
        (
            "role: haproxy, fronts: kibana,",
            "role: haproxy,",
            "needs `fronts`",
        ),
        (
            "    kibana:        { address",
            "    #kibana:       { address",
            "names no VIP",
        ),
    ];
    for (from, to, complaint) in cases {
        let error =
            load_edited(from, to).expect_err(&format!("the loader accepts {from:?} -> {to:?}"));
        assert!(
            error.message.contains(complaint),
            "{from:?} -> {to:?}: {error}"
        );
    }
}

#[test]
fn the_lab_inventory_has_no_errors() {
    let report = lint("inventories/lab.yaml");
    assert!(!report.has_errors(), "{report:#?}");
}

#[test]
fn the_original_two_host_layout_fails_on_the_quorum() {
    let report = lint(ORIGINAL);
    let found: Vec<_> = report
        .diagnostics()
        .iter()
        .map(|d| (d.code, d.subject.as_ref().map(|s| s.name.as_str())))
        .collect();
    assert_eq!(
        found,
        [
            ("HA001", None),
            ("HA003", Some("8f14-jmm")),
            ("HA003", Some("11e9-jmm")),
        ]
    );
    insta::assert_snapshot!(report.human(Path::new(ORIGINAL)));
}

#[test]
fn lint_command_exits_1_on_errors_and_explains_on_stderr() {
    Command::cargo_bin("haelk")
        .unwrap()
        .args(["lint", ORIGINAL])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error[HA003]: losing host 8f14-jmm loses the master quorum",
        ))
        .stderr(predicate::str::contains(format!("--> {ORIGINAL}:39:3")))
        .stderr(predicate::str::contains("3 errors, no warnings"));
}

#[test]
fn lint_command_exits_0_on_the_example() {
    Command::cargo_bin("haelk")
        .unwrap()
        .args(["lint", EXAMPLE])
        .assert()
        .success()
        .stderr(predicate::str::contains("no errors, no warnings"));
}

#[test]
fn lint_command_prints_the_documented_json() {
    let output = Command::cargo_bin("haelk")
        .unwrap()
        .args(["lint", ORIGINAL, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["errors"], 3);
    assert_eq!(json["warnings"], 0);
    let quorum = &json["diagnostics"][1];
    assert_eq!(quorum["code"], "HA003");
    assert_eq!(quorum["name"], "host-loss-loses-quorum");
    assert_eq!(
        quorum["subject"],
        serde_json::json!({"kind": "host", "name": "8f14-jmm"})
    );
    assert_eq!(
        quorum["location"],
        serde_json::json!({"line": 39, "column": 3})
    );
    assert_documented_shape(&json);
}

/// The shape docs/lint.md documents, every field of every diagnostic: exactly
/// these keys, of these types, and counts that match the diagnostics.
fn assert_documented_shape(json: &serde_json::Value) {
    use serde_json::Value;
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value
            .as_object()
            .unwrap_or_else(|| panic!("an object: {value}"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(json),
        ["diagnostics", "errors", "file", "version", "warnings"]
    );
    assert!(json["file"].is_string(), "{json}");
    let diagnostics = json["diagnostics"].as_array().expect("an array");
    assert!(!diagnostics.is_empty());
    let count = |severity: &str| {
        diagnostics
            .iter()
            .filter(|d| d["severity"] == severity)
            .count()
    };
    assert_eq!(json["errors"], count("error"));
    assert_eq!(json["warnings"], count("warning"));
    for d in diagnostics {
        assert_eq!(
            keys(d),
            [
                "code", "hint", "location", "message", "name", "notes", "severity", "subject"
            ],
            "{d}"
        );
        assert!(
            matches!(d["severity"].as_str(), Some("error" | "warning")),
            "{d}"
        );
        let code = d["code"].as_str().expect("a code");
        assert!(
            code.len() == 5
                && code.starts_with("HA")
                && code[2..].bytes().all(|b| b.is_ascii_digit()),
            "{d}"
        );
        let name = d["name"].as_str().expect("a name");
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "a slug: {d}"
        );
        let message = d["message"].as_str().expect("a message");
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "one line: {d}"
        );
        assert!(
            d["notes"]
                .as_array()
                .expect("notes")
                .iter()
                .all(Value::is_string),
            "{d}"
        );
        assert!(d["hint"].is_string() || d["hint"].is_null(), "{d}");
        match &d["subject"] {
            Value::Null => {}
            subject => {
                assert_eq!(keys(subject), ["kind", "name"], "{d}");
                assert!(
                    matches!(subject["kind"].as_str(), Some("host" | "jail" | "vip")),
                    "{d}"
                );
                assert!(subject["name"].is_string(), "{d}");
            }
        }
        match &d["location"] {
            Value::Null => {}
            location => {
                assert_eq!(keys(location), ["column", "line"], "{d}");
                assert!(location["line"].as_u64().is_some_and(|n| n >= 1), "{d}");
                assert!(location["column"].as_u64().is_some_and(|n| n >= 1), "{d}");
            }
        }
    }
}
