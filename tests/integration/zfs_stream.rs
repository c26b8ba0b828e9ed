//! Against the local lab (`lab/labctl up` first): a ZFS dataset travels from lab1
//! to lab2 through haelk's two SSH sessions - a full stream, then an incremental
//! one - and arrives byte for byte; a receiver that refuses a stream fails the
//! pipe with its own error. Uses scratch datasets outside `POOL/jails`.

use std::path::Path;
use std::process::{Command, Stdio};

use haelk::freebsd::{zfs_recv, zfs_send, zfs_snapshot};
use haelk::remote::Remote;
use haelk::remote::ssh::{HostKeyPolicy, SshRemote};
use haelk::remote::stream::{StreamError, pipe};

use crate::labkit;

const SOURCE: &str = "lab1/haelk-stream-test";
const TARGET: &str = "lab2/haelk-stream-test";
const SOURCE_MOUNT: &str = "/var/tmp/haelk-stream-test/lab1";
const TARGET_MOUNT: &str = "/var/tmp/haelk-stream-test/lab2";

/// Destroys the scratch datasets when created and when dropped, even after a
/// failed assertion.
struct Scratch;

impl Scratch {
    fn new() -> Self {
        Self::clean();
        Scratch
    }

    fn clean() {
        for dataset in [SOURCE, TARGET] {
            let exists = Command::new("zfs")
                .args(["list", "-H", "-o", "name", dataset])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("runs zfs")
                .success();
            if exists {
                labkit::destroy_lab_dataset(dataset);
            }
        }
        let _ = std::fs::remove_dir_all("/var/tmp/haelk-stream-test");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        Self::clean();
    }
}

async fn connect(name: &str) -> SshRemote {
    let inventory =
        haelk::inventory::load(Path::new("inventories/lab.yaml")).expect("the lab inventory loads");
    let host = inventory
        .hosts
        .iter()
        .find(|host| host.name.as_str() == name)
        .expect("the lab inventory has the host");
    SshRemote::connect(host, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run(remote: &SshRemote, script: &str) -> String {
    remote
        .run(script)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .check(remote.host(), script)
        .unwrap_or_else(|e| panic!("{e}"))
        .stdout
}

/// `sha256sum` of every file under `mountpoint`, by name relative to it.
async fn checksums(remote: &SshRemote, mountpoint: &str) -> String {
    run(remote, &format!("cd {mountpoint} && sha256sum data small")).await
}

#[tokio::test]
#[ignore = "needs the local lab: lab/labctl up"]
async fn a_dataset_streams_from_lab1_to_lab2_in_full_then_incrementally() {
    let _lab = labkit::lab();
    let _scratch = Scratch::new();
    let lab1 = connect("lab1").await;
    let lab2 = connect("lab2").await;

    run(
        &lab1,
        &format!(
            "zfs create -o mountpoint={SOURCE_MOUNT} {SOURCE}
             dd if=/dev/urandom of={SOURCE_MOUNT}/data bs=1M count=20 2>/dev/null
             echo one > {SOURCE_MOUNT}/small
             {}",
            zfs_snapshot(SOURCE, "s1")
        ),
    )
    .await;

    let full = pipe(
        &lab1,
        &zfs_send(SOURCE, "s1", None),
        &lab2,
        &zfs_recv(TARGET, false),
        |_, _| {},
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "full stream: {} bytes in {:.2?}, {:.1} MB/s",
        full.bytes,
        full.elapsed,
        full.bytes_per_sec() / 1e6
    );
    assert!(full.bytes > 20 << 20, "{full:?}");
    run(
        &lab1,
        &format!(
            "dd if=/dev/urandom of={SOURCE_MOUNT}/data bs=1M count=1 seek=5 conv=notrunc 2>/dev/null
             echo two > {SOURCE_MOUNT}/small
             {}",
            zfs_snapshot(SOURCE, "s2")
        ),
    )
    .await;
    let incremental = pipe(
        &lab1,
        &zfs_send(SOURCE, "s2", Some("s1")),
        &lab2,
        &zfs_recv(TARGET, true),
        |_, _| {},
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "incremental stream: {} bytes in {:.2?}",
        incremental.bytes, incremental.elapsed
    );
    assert!(
        (1 << 20..4 << 20).contains(&incremental.bytes),
        "about the one rewritten megabyte: {incremental:?}"
    );
    // Received under lab2, whose mountpoint is `none`, it was never mounted; it
    // must not be while streams arrive: zfs-fuse keeps serving the old contents
    // of a mounted dataset after an incremental `zfs recv` until it is remounted.
    run(
        &lab2,
        &format!("zfs set mountpoint={TARGET_MOUNT} {TARGET}"),
    )
    .await;
    assert_eq!(
        checksums(&lab2, TARGET_MOUNT).await,
        checksums(&lab1, SOURCE_MOUNT).await
    );
    assert_eq!(
        run(&lab2, &format!("cat {TARGET_MOUNT}/small")).await,
        "two\n"
    );
    assert_eq!(
        run(
            &lab2,
            &format!("zfs list -H -o name -t snapshot -r {TARGET}")
        )
        .await,
        format!("{TARGET}@s1\n{TARGET}@s2\n")
    );

    // A full stream to an existing dataset: the receiver's refusal is the error,
    // not the sender it cut off, and the dataset keeps its snapshots.
    let started = std::time::Instant::now();
    let refused = pipe(
        &lab1,
        &zfs_send(SOURCE, "s1", None),
        &lab2,
        &zfs_recv(TARGET, false),
        |_, _| {},
    )
    .await
    .unwrap_err();
    eprintln!("refused stream failed in {:.2?}", started.elapsed());
    assert!(matches!(refused, StreamError::Receive(_)), "{refused:?}");
    let message = refused.to_string();
    assert!(
        message.starts_with(
            "lab2: `zfs recv lab2/haelk-stream-test` failed (exit status 1): cannot receive"
        ),
        "{message}"
    );
    assert_eq!(
        run(
            &lab2,
            &format!("zfs list -H -o name -t snapshot -r {TARGET}")
        )
        .await,
        format!("{TARGET}@s1\n{TARGET}@s2\n")
    );
    // Connecting, two scripts making snapshots, one checksum, and each pipe one.
    assert_eq!(lab1.round_trips(), 1 + 2 + 1 + 3);
    lab1.close().await.expect("closes");
    lab2.close().await.expect("closes");
}
