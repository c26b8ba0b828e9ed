//! End-to-end tests of the `haelk` binary: the command-line contract (inventory
//! resolution, flags, exit codes, messages), driven through one fluent builder.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const EXAMPLE: &str = include_str!("../../inventories/example.yaml");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One run of `haelk` in a scratch directory holding an inventory and its secrets.
struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    expected_status: i32,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
}

impl Test {
    /// A scratch directory with the example secrets in `secrets/`.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = dir.path().join("secrets");
        fs::create_dir(&secrets).expect("mkdir secrets");
        for entry in fs::read_dir(repo().join("inventories/secrets")).expect("read secrets") {
            let entry = entry.expect("dir entry");
            fs::copy(entry.path(), secrets.join(entry.file_name())).expect("copy secret");
        }
        Self::in_dir(dir)
    }

    /// A run in `dir`, expecting success until told otherwise.
    fn in_dir(dir: tempfile::TempDir) -> Self {
        Self {
            dir,
            args: Vec::new(),
            envs: Vec::new(),
            expected_status: 0,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
        }
    }

    /// Writes `inventory.yaml`: the example inventory after `edit`.
    fn example_inventory(self, edit: impl FnOnce(&str) -> String) -> Self {
        self.file("inventory.yaml", &edit(EXAMPLE))
    }

    fn file(self, name: &str, content: &str) -> Self {
        let path = self.dir.path().join(name);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(path, content).expect("write file");
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    fn status(mut self, code: i32) -> Self {
        self.expected_status = code;
        self
    }

    fn stdout_has(mut self, text: &str) -> Self {
        self.stdout_has.push(text.to_owned());
        self
    }

    fn stderr_has(mut self, text: &str) -> Self {
        self.stderr_has.push(text.to_owned());
        self
    }

    /// Runs haelk, checks the expectations, and returns what it printed with the
    /// scratch directory, for further checks or another run there.
    fn run(self) -> Ran {
        let mut cmd = Command::cargo_bin("haelk").expect("haelk binary");
        cmd.current_dir(self.dir.path())
            .args(&self.args)
            .env_remove("HAELK_INVENTORY");
        for (key, value) in &self.envs {
            cmd.env(key, value);
        }
        let output = cmd.output().expect("run haelk");
        let ran = Ran {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            dir: self.dir,
        };
        let context = format!(
            "haelk {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args, ran.stdout, ran.stderr
        );
        assert_eq!(
            output.status.code(),
            Some(self.expected_status),
            "exit status of {context}"
        );
        for text in &self.stdout_has {
            assert!(
                ran.stdout.contains(text.as_str()),
                "stdout lacks {text:?}: {context}"
            );
        }
        for text in &self.stderr_has {
            assert!(
                ran.stderr.contains(text.as_str()),
                "stderr lacks {text:?}: {context}"
            );
        }
        ran
    }
}

/// A finished run: what haelk printed, and its scratch directory.
struct Ran {
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

impl Ran {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Another run in the same directory.
    fn again(self) -> Test {
        Test::in_dir(self.dir)
    }
}

fn example_path() -> String {
    repo()
        .join("inventories/example.yaml")
        .display()
        .to_string()
}

#[test]
fn help_reads_like_a_man_page() {
    let help = Test::new().args(["--help"]).run().stdout;
    for word in [
        "deploy",
        "status",
        "migrate-node",
        "render",
        "lint",
        "EXIT STATUS",
        "HAELK_INVENTORY",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    for command in ["deploy", "status", "migrate-node", "render", "lint"] {
        Test::new()
            .args([command, "--help"])
            .stdout_has("Usage: haelk")
            .run();
    }
}

#[test]
fn lint_passes_the_example() {
    Test::new().args(["lint", &example_path()]).run();
}

#[test]
fn lint_rejects_the_original_two_host_layout_and_explains_the_quorum() {
    let original = repo().join("tests/fixtures/inventories/ha-elk-original.yaml");
    let stderr = Test::new()
        .args(["lint", &original.display().to_string()])
        .status(1)
        .run()
        .stderr
        .to_lowercase();
    assert!(stderr.contains("quorum"), "{stderr}");
    assert!(
        stderr.contains("third host"),
        "the hint names the fix: {stderr}"
    );
}

#[test]
fn lint_json_is_one_document() {
    let json = Test::new()
        .args(["lint", "--format", "json", &example_path()])
        .run()
        .stdout;
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    // The documented report of a clean inventory, exactly (docs/lint.md).
    assert_eq!(
        parsed,
        serde_json::json!({
            "version": 1,
            "file": example_path(),
            "errors": 0,
            "warnings": 0,
            "diagnostics": [],
        })
    );
}

#[test]
fn inventory_comes_from_positional_then_option_then_env_then_cwd() {
    // ./inventory.yaml in the working directory.
    Test::new()
        .example_inventory(str::to_owned)
        .args(["lint"])
        .run();
    // $HAELK_INVENTORY wins over ./inventory.yaml.
    Test::new()
        .example_inventory(str::to_owned)
        .env("HAELK_INVENTORY", "missing-from-env.yaml")
        .args(["lint"])
        .status(1)
        .stderr_has("missing-from-env.yaml")
        .run();
    // -i wins over $HAELK_INVENTORY; the positional argument wins over -i.
    Test::new()
        .env("HAELK_INVENTORY", "missing-from-env.yaml")
        .args(["lint", "-i", &example_path()])
        .run();
    Test::new()
        .args(["lint", "-i", "missing-from-option.yaml", &example_path()])
        .run();
}

#[test]
fn bad_inventories_fail_with_file_line_and_column() {
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "typo'd key",
            "    address: 192.0.2.11",
            "    adress: 192.0.2.11",
            "inventory.yaml:45:5",
        ),
        (
            "duplicate jail",
            "      8f15-kibana:                { role: kibana, ip: 10.0.0.22 }",
            "      8f15-kibana:                { role: kibana, ip: 10.0.0.22 }\n      8f15-kibana:                { role: kibana, ip: 10.0.0.29 }",
            "inventory.yaml:49:7",
        ),
        (
            "bad IP",
            "ip: 10.0.0.22 }",
            "ip: 10.0.0.300 }",
            "inventory.yaml:48:",
        ),
        (
            "unknown role",
            "{ role: kibana, ip: 10.0.0.22 }",
            "{ role: kibbana, ip: 10.0.0.22 }",
            "inventory.yaml:48:",
        ),
        (
            "shell metacharacter",
            "      8f15-kibana:",
            "      8f15-kibana$(reboot):",
            "inventory.yaml:48:7",
        ),
        (
            "missing secret",
            "secrets/EXAMPLE-carp.pass",
            "secrets/nope.pass",
            "inventory.yaml:26:",
        ),
    ];
    for (what, from, to, location) in cases {
        assert!(EXAMPLE.contains(from), "{what}: the example has {from:?}");
        Test::new()
            .example_inventory(|s| s.replacen(from, to, 1))
            .args(["lint"])
            .status(1)
            .stderr_has(location)
            .run();
    }
}

#[test]
fn a_missing_secret_names_the_resolved_path() {
    Test::new()
        .example_inventory(|s| s.replace("secrets/EXAMPLE-carp.pass", "secrets/nope.pass"))
        .args(["lint"])
        .status(1)
        .stderr_has("nope.pass")
        .run();
}

#[test]
fn render_writes_every_file_and_a_fresh_render_has_no_differences() {
    let rendered = Test::new()
        .args(["render", &example_path(), "--out", "out"])
        .run();
    let out = rendered.path("out");
    for file in [
        "8f14-jmm/etc/jail.conf.d/d12c-elasticsearch.conf",
        "8f14-jmm/usr/local/jails/d12c-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml",
        "8f14-jmm/usr/local/jails/d12c-elasticsearch/usr/local/etc/elasticsearch/jvm.options.d/heap.options",
        "8f14-jmm/usr/local/jails/8f15-kibana/usr/local/etc/kibana/kibana.yml",
        "8f14-jmm/usr/local/jails/9fbb-haproxy-elasticsearch/usr/local/etc/haproxy.conf",
        "8f14-jmm/usr/local/jails/11e9-haproxy-kibana/etc/rc.conf",
        "8f14-jmm/etc/rc.conf",
        "8f14-jmm/boot/loader.conf",
        "7c3a-tiebreak/usr/local/jails/7c3a-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml",
    ] {
        assert!(out.join(file).is_file(), "render wrote no {file}");
    }
    let diff = rendered
        .again()
        .args(["render", &example_path(), "--diff", "out"])
        .run();
    assert_eq!(diff.stdout, "");
}

#[test]
fn render_never_writes_a_secret() {
    let rendered = Test::new()
        .args(["render", &example_path(), "--out", "out"])
        .run();
    let secrets: Vec<String> = ["EXAMPLE-carp.pass", "EXAMPLE-kibana.key"]
        .iter()
        .map(|f| {
            fs::read_to_string(repo().join("inventories/secrets").join(f))
                .expect("secret")
                .trim()
                .to_owned()
        })
        .collect();
    for file in walk(&rendered.path("out")) {
        let content = fs::read_to_string(&file).expect("read rendered file");
        for secret in &secrets {
            assert!(
                !content.contains(secret.as_str()),
                "{} holds a secret",
                file.display()
            );
        }
    }
}

#[test]
fn render_diff_shows_a_one_line_change_and_exits_2() {
    let test = Test::new().example_inventory(str::to_owned);
    let inventory = test.path("inventory.yaml");
    let rendered = test.args(["render", "--out", "out"]).run();
    let changed = fs::read_to_string(&inventory).expect("read").replace(
        "action.destructive_requires_name: true",
        "action.destructive_requires_name: false",
    );
    fs::write(&inventory, changed).expect("write");
    let diff = rendered
        .again()
        .args(["render", "--diff", "out"])
        .status(2)
        .run()
        .stdout;
    assert!(
        diff.contains("-action.destructive_requires_name: true"),
        "{diff}"
    );
    assert!(
        diff.contains("+action.destructive_requires_name: false"),
        "{diff}"
    );
    assert!(
        diff.contains("d12c-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml"),
        "{diff}"
    );
    let changed_lines = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .count();
    assert_eq!(
        changed_lines, 3,
        "one line in each of the three elasticsearch.yml:\n{diff}"
    );
}

#[test]
fn render_diff_shows_new_and_removed_files() {
    let rendered = Test::new()
        .args(["render", &example_path(), "--out", "out"])
        .run();
    let out = rendered.path("out");
    fs::remove_file(out.join("8f14-jmm/boot/loader.conf")).expect("remove");
    fs::write(out.join("8f14-jmm/stale.conf"), "stale\n").expect("write");
    let diff = rendered
        .again()
        .args(["render", &example_path(), "--diff", "out"])
        .status(2)
        .run()
        .stdout;
    assert!(diff.contains("8f14-jmm/boot/loader.conf"), "{diff}");
    assert!(diff.contains("+carp_load=\"YES\""), "{diff}");
    assert!(diff.contains("8f14-jmm/stale.conf"), "{diff}");
    assert!(diff.contains("-stale"), "{diff}");
}

#[test]
fn migrate_node_dry_run_lists_the_steps_without_connecting() {
    let ran = Test::new()
        .args([
            "migrate-node",
            "8f15-kibana",
            "--to",
            "7c3a-tiebreak",
            "--dry-run",
            "-i",
            &example_path(),
        ])
        .stdout_has(" 2. phase 1 (jail keeps running): zfs snapshot zroot/jails/8f15-kibana@haelk-migrate-base")
        .stdout_has("10. update the inventory: 8f15-kibana under 7c3a-tiebreak")
        .run();
    assert_eq!(ran.stdout.lines().count(), 10, "{}", ran.stdout);
}

#[test]
fn migrate_node_refuses_a_move_that_loses_the_quorum_with_the_lint_message() {
    Test::new()
        .args([
            "migrate-node",
            "d12c-elasticsearch",
            "--to",
            "7c3a-tiebreak",
            "-i",
            &example_path(),
        ])
        .status(1)
        .stderr_has("moving d12c-elasticsearch to 7c3a-tiebreak would leave the design not highly available")
        .stderr_has("error[HA003]: losing host 7c3a-tiebreak loses the master quorum")
        .run();
}

#[test]
fn status_of_hosts_that_cannot_be_reached_is_a_row_each_and_exit_1() {
    // The example's addresses are documentation addresses (192.0.2.0/24): nothing answers.
    let ran = Test::new()
        .args(["status", &example_path(), "--format", "json"])
        .status(1)
        .run();
    let estate: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON on stdout");
    assert_eq!(estate["healthy"], false);
    let hosts = estate["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 3);
    assert!(
        hosts
            .iter()
            .all(|h| h["reachable"] == false && h["error"].is_string())
    );
    assert!(
        estate["jails"]
            .as_array()
            .expect("jails")
            .iter()
            .all(|j| j["state"] == "unknown")
    );
}

#[test]
fn deploy_refuses_a_design_that_fails_lint() {
    let original = repo().join("tests/fixtures/inventories/ha-elk-original.yaml");
    Test::new()
        .args(["deploy", &original.display().to_string()])
        .status(1)
        .stderr_has("deploy refuses to start")
        .run();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn deploy_validates_the_playbook_before_anything_else() {
    Test::new()
        .file(
            "site.yaml",
            "plays:\n  - name: hosts\n    target: hosts\n    bogus: 1\n",
        )
        .args(["deploy", &example_path(), "--playbook", "site.yaml"])
        .status(1)
        .stderr_has("site.yaml:4:5: unknown field `bogus`")
        .run();
}

#[test]
fn settings_haelk_writes_itself_are_refused_where_they_are_written() {
    Test::new()
        .example_inventory(|s| s.replace("      action.destructive_requires_name: true", "      network.host: 0.0.0.0"))
        .args(["render", "--out", "out"])
        .status(1)
        .stderr_has("inventory.yaml:14:7: cluster.elasticsearch.settings: `network.host` cannot be set here")
        .run();
    Test::new()
        .example_inventory(|s| {
            s.replace(
                "    encryption_key_file: secrets/EXAMPLE-kibana.key",
                "    encryption_key_file: secrets/EXAMPLE-kibana.key\n    settings: { xpack.security: x }",
            )
        })
        .args(["render", "--out", "out"])
        .status(1)
        .stderr_has("`xpack.security` cannot be set here: haelk sets `xpack.security.encryptionKey` itself")
        .run();
}

#[test]
fn deploy_reports_a_template_that_does_not_render_once_and_before_connecting() {
    // The example's hosts are documentation addresses (192.0.2.0/24): had
    // deploy tried to connect, it would say it cannot.
    let ran = Test::new()
        .file(
            "tpl/kibana.yml.tera",
            "server.name: {{ no_such_variable }}\n",
        )
        .args(["deploy", &example_path(), "--templates", "tpl"])
        .status(1)
        .stderr_has("cannot render template tpl/kibana.yml.tera")
        .run();
    assert!(ran.stderr.starts_with("haelk: error: "), "{}", ran.stderr);
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert_eq!(
        all.matches("cannot render template").count(),
        1,
        "reported once: {all}"
    );
    assert!(!all.contains("ssh"), "nothing was connected to: {all}");
    assert!(
        ran.stdout.is_empty(),
        "no report of a deploy: {}",
        ran.stdout
    );
}

#[test]
fn deploy_failures_go_to_stderr_naming_each_host_once() {
    let ran = Test::new()
        .args(["deploy", &example_path(), "--no-progress"])
        .status(1)
        .stdout_has("deploy FAILED")
        .stderr_has("haelk: error: 8f14-jmm: cannot connect over ssh to 192.0.2.11")
        .run();
    assert!(
        !ran.stdout.contains("cannot connect"),
        "errors are not in the report: {}",
        ran.stdout
    );
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("error:"))
        .collect();
    assert_eq!(lines.len(), 3, "one line per host: {}", ran.stderr);
    for (line, host) in lines.iter().zip(["8f14-jmm", "11e9-jmm", "7c3a-tiebreak"]) {
        assert!(
            line.starts_with(&format!("haelk: error: {host}: ")),
            "{line}"
        );
        assert_eq!(line.matches(host).count(), 1, "the host named once: {line}");
    }
}
