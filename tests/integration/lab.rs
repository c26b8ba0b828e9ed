//! Against the local lab (`lab/labctl up` first; `scripts/test` does it): haelk's
//! SSH transport reaches every simulated FreeBSD host with strict host-key
//! checking, and refuses a host whose key it does not know; facts are gathered in
//! one round trip and see what a host has.

use std::path::Path;

use haelk::desired::{ClusterPhase, HostState};
use haelk::facts::HostFacts;
use haelk::remote::Remote;
use haelk::remote::ssh::{HostKeyPolicy, SshRemote};
use haelk::secret::Secrets;
use haelk::templates::Templates;

fn lab_inventory() -> haelk::inventory::Inventory {
    haelk::inventory::load(Path::new("inventories/lab.yaml")).expect("the lab inventory loads")
}

#[tokio::test]
#[ignore = "needs the local lab: lab/labctl up"]
async fn every_lab_host_answers_as_freebsd_over_strict_ssh() {
    let inventory = lab_inventory();
    for host in &inventory.hosts {
        let remote = SshRemote::connect(host, HostKeyPolicy::Strict)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let output = remote
            .run("uname -s; freebsd-version; zfs list -H -o name | head -n 1")
            .await
            .expect("script runs");
        assert!(output.success(), "{output:?}");
        let lines: Vec<&str> = output.stdout.lines().collect();
        assert_eq!(
            lines[..2],
            ["FreeBSD", "14.3-RELEASE"],
            "{}: {output:?}",
            host.name
        );
        assert_eq!(remote.round_trips(), 2, "connect + one script");
        let failed = remote
            .run("echo partial; echo 'boom' >&2; exit 7")
            .await
            .expect("runs");
        let err = failed
            .check(host.name.as_str(), "a failing step")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: a failing step failed (exit status 7): boom", host.name)
        );
        remote.close().await.expect("closes");
    }
}

#[tokio::test]
#[ignore = "needs the local lab: lab/labctl up"]
async fn an_unknown_host_key_is_refused_by_default() {
    let mut inventory = lab_inventory();
    let empty = tempfile::NamedTempFile::new().expect("temp known_hosts");
    let host = &mut inventory.hosts[0];
    host.ssh.known_hosts = Some(empty.path().to_owned());
    let err = SshRemote::connect(host, HostKeyPolicy::Strict)
        .await
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        message.starts_with("lab1: cannot connect over ssh to 127.0.10.1"),
        "{message}"
    );
    // Opting in accepts the new key and records it.
    let remote = SshRemote::connect(host, HostKeyPolicy::AcceptNew)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    remote.close().await.expect("closes");
    let recorded = std::fs::read_to_string(empty.path()).expect("read known_hosts");
    assert!(recorded.contains("ssh-ed25519"), "{recorded}");
}

async fn gather(remote: &SshRemote, host: &HostState) -> HostFacts {
    haelk::facts::gather(remote, host)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run(remote: &SshRemote, script: &str) {
    remote
        .run(script)
        .await
        .and_then(|output| output.check(remote.host(), script))
        .unwrap_or_else(|e| panic!("{e}"));
}
