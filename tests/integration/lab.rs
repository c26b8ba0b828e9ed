//! Against the local lab (`lab/labctl up` first; `scripts/test` does it): haelk's
//! SSH transport reaches every simulated FreeBSD host with strict host-key
//! checking, and refuses a host whose key it does not know; facts are gathered in
//! one round trip and see what a host has.

use std::path::Path;

use haelk::desired::{ClusterPhase, HostState};

use crate::labkit;
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
        message.starts_with("lab1: cannot connect over ssh to 198.51.100.101"),
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

#[tokio::test]
#[ignore = "needs the local lab: lab/labctl up"]
// The lock serializes the lab tests, not this test's own tasks.
#[allow(clippy::await_holding_lock)]
async fn facts_see_a_fresh_host_then_what_was_made_on_it() {
    let _lab = labkit::lab();
    labkit::reset_lab();
    let inventory = lab_inventory();
    let desired = haelk::desired::build(
        &inventory,
        &Templates::builtin().expect("builtin templates"),
        &Secrets::load(&inventory).expect("lab secrets"),
        ClusterPhase::Formed,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let (host, state) = (&inventory.hosts[0], &desired.hosts[0]);
    let remote = SshRemote::connect(host, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let fresh = gather(&remote, state).await;
    assert_eq!(remote.round_trips(), 2, "connect + one facts script");
    assert_eq!(fresh.freebsd_version, "14.3-RELEASE");
    let pool = fresh.pool.as_ref().expect("the host's pool");
    assert_eq!(pool.name, "lab1");
    assert!(
        pool.size.ends_with('M') || pool.size.ends_with('G'),
        "{pool:?}"
    );
    assert!(
        fresh.datasets.is_empty(),
        "lab1 is not fresh (is another test using the lab?): {fresh:?}"
    );
    assert!(fresh.files.is_empty(), "{fresh:?}");
    assert_eq!(fresh.jails.len(), state.jails.len());
    assert!(
        fresh.jails.values().all(|j| !j.running && !j.populated),
        "{fresh:?}"
    );
    assert_eq!(fresh.rc_conf.get("jail_enable"), Some(&None));

    let parent = &state.datasets[0];
    let file = &state.files[0];
    run(&remote, &haelk::freebsd::zfs_create(parent)).await;
    run(
        &remote,
        &format!(
            "{}{}",
            haelk::freebsd::write_file_atomically(file, Path::new("/")),
            haelk::freebsd::sysrc_set(None, "jail_enable", "YES")
        ),
    )
    .await;
    let made = gather(&remote, state).await;
    // Back to a fresh lab before asserting, so a failure leaves nothing behind.
    labkit::destroy_lab_dataset(&parent.name);
    run(
        &remote,
        &format!(
            "sysrc -x jail_enable && {}",
            haelk::shell::join(["rm", "-f", &file.path.to_string_lossy()])
        ),
    )
    .await;
    remote.close().await.expect("closes");

    let dataset = &made.datasets[&parent.name];
    assert_eq!(dataset.mountpoint, parent.properties["mountpoint"]);
    assert_eq!(dataset.compression, "on");
    assert_eq!(dataset.cluster_uuid, None);
    assert_eq!(made.datasets.len(), 1, "only the parent exists");
    assert_eq!(made.rc_conf["jail_enable"].as_deref(), Some("YES"));
    let written = &made.files[&file.path];
    assert_eq!(written.content, file.content);
    assert_eq!(written.mode, file.mode);
    assert_eq!(written.uid, 0);
    assert_eq!(written.wanted_uid, Some(0));
}

#[tokio::test]
#[ignore = "needs the local lab: lab/labctl up"]
async fn a_tunnel_to_the_same_target_is_opened_once_per_connection() {
    use haelk::remote::Remote;
    let inventory = lab_inventory();
    let host = &inventory.hosts[0];
    let remote = SshRemote::connect(host, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sshd: std::net::SocketAddr = format!("{}:22", host.address)
        .parse()
        .expect("the lab host address is an IP");
    let first = remote.tunnel(sshd).await.unwrap_or_else(|e| panic!("{e}"));
    let again = remote.tunnel(sshd).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, again, "the open forward is reused");
    tokio::net::TcpStream::connect(first)
        .await
        .expect("the forward listens");
    remote.close().await.expect("closes");
    // The master exits just after it answers the request to stop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::net::TcpStream::connect(first).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the forward still listens 10 s after its connection was closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
