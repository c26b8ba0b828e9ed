//! haelk stopped by a signal against the local lab: SIGTERM during a rolling
//! restart stops it promptly with its SSH masters closed and their control
//! directories removed, and the next deploy finishes the work; after SIGKILL,
//! which haelk cannot handle, its masters go away on their own.
//!
//! Each haelk here runs with its own `TMPDIR`, where its masters keep their
//! control directories: the masters of that run are the `ssh` processes whose
//! command line names that directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use haelk::remote::ssh::MASTER_IDLE_TIMEOUT;

use crate::labkit::{ES_VIP, EditedInventory, deploy, http, lab, repo};

/// The pids of the ssh processes whose command line mentions `dir`.
fn masters_under(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_ssh = args
                .first()
                .is_some_and(|a| a == "ssh" || a.ends_with("/ssh"));
            (is_ssh && args.iter().any(|a| a.contains(&needle))).then_some(pid)
        })
        .collect()
}

/// Waits, at most `limit`, until no master of the run using `dir` is left;
/// returns those still there at the end.
fn wait_for_no_masters(dir: &Path, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let left = masters_under(dir);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits, at most `limit`, for `child` to exit.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `haelk deploy INVENTORY` with its own TMPDIR, standard output piped.
fn spawn_deploy(inventory: &str, tmpdir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_haelk"))
        .args(["deploy", inventory, "--no-progress"])
        .env("TMPDIR", tmpdir)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haelk runs")
}

/// Reads `child`'s standard output until a line satisfies `wanted` (bounded by
/// five minutes); returns everything read.
fn read_until(child: &mut Child, wanted: impl Fn(&str) -> bool) -> String {
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = String::new();
    for line in lines {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if wanted(&line) {
            return seen;
        }
        assert!(Instant::now() < deadline, "the line never came: {seen}");
    }
    panic!("haelk ended before the line came: {seen}");
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

/// One Elasticsearch setting more: deploying it is a rolling restart.
fn with_setting() -> EditedInventory {
    EditedInventory::new(|lab| {
        assert!(lab.contains("    package: elasticsearch8\n"));
        lab.replace(
            "    package: elasticsearch8\n",
            "    package: elasticsearch8\n    settings:\n      indices.query.bool.max_clause_count: 2048\n",
        )
    })
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn sigterm_during_a_rolling_restart_closes_the_masters_and_the_next_deploy_finishes() {
    let _lab = lab();
    deploy("inventories/lab.yaml");
    let inventory = with_setting();
    let tmpdir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_deploy(&inventory.path(), tmpdir.path());
    // Stopped between two nodes' restarts: one node has the new setting.
    let seen = read_until(&mut child, |line| line.ends_with("restart (rolling)"));
    assert!(
        !masters_under(tmpdir.path()).is_empty(),
        "the run's masters are found by their control directory: {seen}"
    );
    signal(&child, "TERM");

    let status = wait_for_exit(&mut child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("haelk did not stop within 30 s of SIGTERM: {seen}"));
    let stderr = std::io::read_to_string(child.stderr.take().expect("stderr")).expect("stderr");
    eprintln!("$ haelk deploy (SIGTERM)\n{seen}{stderr}");
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    // The masters were asked to stop before haelk exited; they end as soon as the
    // channels of the interrupted commands are closed.
    let left = wait_for_no_masters(tmpdir.path(), Duration::from_secs(10));
    assert!(left.is_empty(), "masters left after SIGTERM: {left:?}");
    let dirs: Vec<_> = std::fs::read_dir(tmpdir.path())
        .expect("tmpdir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(dirs.is_empty(), "control directories left: {dirs:?}");

    // The run is resumable: the next deploy finishes it, green.
    deploy(&inventory.path());
    let (code, health) = http(ES_VIP, "GET", "/_cluster/health", None).expect("health");
    assert_eq!(code, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).expect("health is JSON");
    assert_eq!(health["status"], "green", "{health}");
    deploy("inventories/lab.yaml");
}

#[test]
#[ignore = "needs the local lab: lab/labctl up"]
fn after_sigkill_the_masters_go_away_on_their_own() {
    let _lab = lab();
    let tmpdir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_deploy("inventories/lab.yaml", tmpdir.path());
    // Killed once every host is connected, before anything is changed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while masters_under(tmpdir.path()).len() < 4 {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "haelk ended before it had connected to every host"
        );
        assert!(
            Instant::now() < deadline,
            "haelk never connected to the four hosts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let limit = MASTER_IDLE_TIMEOUT + Duration::from_secs(10);
    let left = wait_for_no_masters(tmpdir.path(), limit);
    assert!(
        left.is_empty(),
        "masters still there {limit:?} after SIGKILL: {left:?}"
    );
}
