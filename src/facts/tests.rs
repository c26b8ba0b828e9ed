//! Facts: hand-written outputs through [`parse`], and the real script run by the
//! local shell against a temporary directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::parse::parse_mode;
use super::*;
use crate::desired::{Dataset, HostBridge, JailState, ManagedFile, PENDING_MARKER};
use crate::inventory::{Name, Role};
use crate::remote::local::LocalRemote;

fn managed(path: impl Into<PathBuf>, owner: &str, group: &str, mode: u32) -> ManagedFile {
    ManagedFile {
        path: path.into(),
        owner: owner.into(),
        group: group.into(),
        mode,
        content: "desired\n".into(),
        on_change: OnChange::Reload,
        first_start_only_keys: Vec::new(),
        copy_of: None,
        apply: None,
    }
}

/// A host with one haproxy jail rooted at `jails/j1`, under `base`.
fn desired(base: &Path) -> HostState {
    let root = base.join("jails/j1");
    HostState {
        host: Name::new("h1").unwrap(),
        base: "/media/base.txz".into(),
        release: "14.3-RELEASE".into(),
        datasets: vec![
            Dataset {
                name: "tank/jails".into(),
                properties: BTreeMap::new(),
            },
            Dataset {
                name: "tank/jails/j1".into(),
                properties: BTreeMap::new(),
            },
        ],
        rc_conf: BTreeMap::from([
            ("jail_enable".into(), "YES".into()),
            ("jail_list".into(), "j1".into()),
        ]),
        rc_conf_words: BTreeMap::from([("cloned_interfaces".into(), vec!["bridge0".into()])]),
        bridge: Some(HostBridge {
            name: "bridge0".into(),
            uplink: Some("em0".into()),
        }),
        loader_conf: BTreeMap::from([("carp_load".into(), "YES".into())]),
        files: vec![managed(
            base.join("etc/jail.conf.d/j1.conf"),
            "root",
            "wheel",
            0o644,
        )],
        jails: vec![JailState {
            name: Name::new("j1").unwrap(),
            role: Role::Haproxy,
            dataset: "tank/jails/j1".into(),
            epair: 0,
            packages: vec!["haproxy".into()],
            files: vec![managed(
                root.join("usr/local/etc/haproxy.conf"),
                "root",
                "haproxy",
                0o640,
            )],
            services: vec!["haproxy".into()],
            root,
        }],
    }
}

/// `bytes` as `od -An -tx1 -v` prints them.
fn od(bytes: &[u8]) -> String {
    let mut dump = String::new();
    for chunk in bytes.chunks(16) {
        for byte in chunk {
            let _ = write!(dump, " {byte:02x}");
        }
        dump.push('\n');
    }
    dump
}

/// A `file` record as the script prints it: `ls -lnd`'s line, then the content.
fn file_record(path: &str, ls_mode: &str, uid: u32, gid: u32, content: &[u8]) -> String {
    let size = content.len();
    format!(
        "file\t{path}\t{ls_mode}  1 {uid}  {gid}  {size} Dec  1 12:00 {path}\n{}end-file\n",
        od(content)
    )
}

const FRESH: &str = "haelk-facts\t3
version\t14.3-RELEASE
pool\ttank\t1016M\t400K\t1016M
carp\tabsent
jail\tj1\tstopped\tempty
end
";

#[test]
fn a_fresh_host_has_its_pool_and_nothing_else() {
    let host = desired(Path::new("/"));
    let facts = parse(&host, FRESH).unwrap();
    let expected = HostFacts {
        freebsd_version: "14.3-RELEASE".into(),
        pool: Some(PoolFacts {
            name: "tank".into(),
            size: "1016M".into(),
            allocated: "400K".into(),
            free: "1016M".into(),
        }),
        datasets: BTreeMap::new(),
        carp_loaded: false,
        interfaces: BTreeSet::new(),
        rc_conf: BTreeMap::from([
            ("cloned_interfaces".into(), None),
            ("jail_enable".into(), None),
            ("jail_list".into(), None),
        ]),
        loader_conf: BTreeMap::from([("carp_load".into(), None)]),
        files: BTreeMap::new(),
        jails: BTreeMap::from([(
            "j1".into(),
            JailFacts {
                services: BTreeMap::from([("haproxy".into(), false)]),
                ..JailFacts::default()
            },
        )]),
    };
    assert_eq!(facts, expected);
}

#[test]
fn a_deployed_host_reads_back_in_full() {
    let host = desired(Path::new("/"));
    let output = [
        "haelk-facts\t3\n",
        "version\t14.3-RELEASE\n",
        "interfaces\tem0 lo0 bridge0 epair0a\n",
        "pool\ttank\t1016M\t2.1G\t900M\n",
        "dataset\ttank/jails\t/usr/local/jails\tlz4\t-\n",
        "dataset\ttank/jails/j1\t/usr/local/jails/j1\tlz4\t6f1c-uuid\n",
        "carp\tloaded\n",
        "rc\tjail_enable: YES\n",
        "rc\tjail_list: j1\tj2 with\ttabs\n",
        "rc\tcloned_interfaces: lagg0 bridge0\n",
        "loader\tcarp_load: YES\n",
        "jail\tj1\trunning\tpopulated\n",
        "package\tj1\thaproxy\t2.8.5\n",
        "package\tj1\tpkg\t1.21.3\n",
        "service\tj1\thaproxy\trunning\n",
        "user\t\troot\t0\n",
        "group\t\twheel\t0\n",
        "user\t/jails/j1\troot\t0\n",
        "group\t/jails/j1\thaproxy\t80\n",
        &file_record("/etc/jail.conf.d/j1.conf", "-rw-r--r--", 0, 0, b"j1 {\n}\n"),
        &file_record(
            "/jails/j1/usr/local/etc/haproxy.conf",
            "-rw-r-----",
            0,
            80,
            b"global\n",
        ),
        "end\n",
    ]
    .concat();
    let facts = parse(&host, &output).unwrap();
    assert_eq!(facts.pool.as_ref().unwrap().allocated, "2.1G");
    assert_eq!(
        facts.datasets["tank/jails"],
        DatasetFacts {
            mountpoint: "/usr/local/jails".into(),
            compression: "lz4".into(),
            cluster_uuid: None,
        }
    );
    assert_eq!(
        facts.datasets["tank/jails/j1"].cluster_uuid.as_deref(),
        Some("6f1c-uuid")
    );
    assert!(facts.carp_loaded);
    assert_eq!(
        facts.interfaces,
        ["bridge0", "em0", "epair0a", "lo0"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        facts.rc_conf["cloned_interfaces"].as_deref(),
        Some("lagg0 bridge0")
    );
    assert_eq!(facts.rc_conf["jail_enable"].as_deref(), Some("YES"));
    assert_eq!(
        facts.rc_conf["jail_list"].as_deref(),
        Some("j1\tj2 with\ttabs")
    );
    assert_eq!(facts.loader_conf["carp_load"].as_deref(), Some("YES"));
    let jail = &facts.jails["j1"];
    assert!(jail.running && jail.populated);
    assert_eq!(
        jail.packages,
        BTreeMap::from([
            ("haproxy".into(), "2.8.5".into()),
            ("pkg".into(), "1.21.3".into())
        ])
    );
    assert_eq!(jail.services, BTreeMap::from([("haproxy".into(), true)]));
    assert_eq!(jail.pending, OnChange::Nothing);
    assert_eq!(
        facts.files[Path::new("/jails/j1/usr/local/etc/haproxy.conf")],
        FileFacts {
            content: "global\n".into(),
            mode: 0o640,
            uid: 0,
            gid: 80,
            wanted_uid: Some(0),
            wanted_gid: Some(80),
        }
    );
    assert_eq!(facts.files.len(), 2);
}

/// FRESH with `records` in place of the jail record.
fn fresh_with(records: &str) -> String {
    FRESH.replace("jail\tj1\tstopped\tempty\n", records)
}

#[test]
fn file_content_is_exact_whatever_it_holds() {
    let host = desired(Path::new("/"));
    let tricky: &[(&[u8], &str)] = &[
        (b"no final newline", "no final newline"),
        (b"", ""),
        (
            b"end-file\nend\nfile\tx\njail\tj1\n",
            "end-file\nend\nfile\tx\njail\tj1\n",
        ),
        (
            b"\xff\xfe latin-1 caf\xe9\n",
            "\u{fffd}\u{fffd} latin-1 caf\u{fffd}\n",
        ),
    ];
    for (bytes, expected) in tricky {
        let records = format!(
            "jail\tj1\tstopped\tempty\n{}",
            file_record("/x", "-rw-------", 0, 0, bytes)
        );
        let facts = parse(&host, &fresh_with(&records)).unwrap();
        let file = &facts.files[Path::new("/x")];
        assert_eq!(file.content, *expected, "{bytes:?}");
        assert_eq!((file.wanted_uid, file.wanted_gid), (None, None));
        // The records after the file are still read.
        assert_eq!(facts.jails.len(), 1);
    }
}

#[test]
fn a_pending_marker_is_the_action_it_names() {
    let host = desired(Path::new("/"));
    let records = "jail\tj1\tstopped\tpopulated\npending\tj1\trestart-jail\n";
    let facts = parse(&host, &fresh_with(records)).unwrap();
    assert_eq!(facts.jails["j1"].pending, OnChange::RestartJail);

    let records = "jail\tj1\tstopped\tpopulated\npending\tj1\treboot\n";
    let err = parse(&host, &fresh_with(records)).unwrap_err().to_string();
    assert!(
        err.contains("line 6: unknown pending action \"reboot\"")
            && err.contains(PENDING_MARKER)
            && err.contains("pending\\tj1\\treboot"),
        "{err}"
    );
}

#[test]
fn broken_output_is_an_error_naming_the_line() {
    let host = desired(Path::new("/"));
    let cases = [
        (FRESH.replace("end\n", ""), "ends before its end record"),
        (
            fresh_with("jail\tj1\tstopped\tempty\nsurprise\n"),
            "line 6: unknown record: \"surprise\"",
        ),
        (fresh_with(""), "no record for jail j1"),
        (
            fresh_with("jail\tj1\tstopped\tempty\npackage\tj2\tx\t1\n"),
            "line 6: no jail record for j2 before",
        ),
        (
            fresh_with("jail\tj1\twalking\tempty\n"),
            "line 5: running or stopped expected",
        ),
        (
            FRESH.replace("carp\tabsent\n", "carp\n"),
            "loaded or absent",
        ),
        (
            fresh_with("jail\tj1\tstopped\tempty\n").replace(
                "end\n",
                &file_record("/x", "-rw-------", 0, 0, b"ab").replace("end-file\n", ""),
            ),
            "has no end-file line",
        ),
        (
            fresh_with("jail\tj1\tstopped\tempty\nfile\t/x\t-rw------- 1 0 0\n zz\nend-file\n"),
            "line 7: not a line of hex bytes: \" zz\"",
        ),
        (
            fresh_with("jail\tj1\tstopped\tempty\nfile\t/x\tbogus 1 0 0\nend-file\n"),
            "cannot read the mode \"bogus\"",
        ),
        (
            FRESH.replace("haelk-facts\t3", "Welcome!"),
            "line 1: not the facts header",
        ),
        (
            format!("{FRESH}more\n"),
            "line 7: output after the end record",
        ),
    ];
    for (output, expected) in cases {
        let err = parse(&host, &output).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read the facts output: ") && err.contains(expected),
            "{expected}: {err}"
        );
    }
}

#[test]
fn ls_mode_strings_give_every_permission_bit() {
    let cases = [
        ("-rw-r-----", Some(0o640)),
        ("-rwxr-xr-x", Some(0o755)),
        ("-rwsr-xr-x", Some(0o4755)),
        ("-rwSr-----", Some(0o4640)),
        ("-rwxr-sr-x+", Some(0o2755)),
        ("drwxrwxrwt", Some(0o1777)),
        ("-rw-r--r-T", Some(0o1644)),
        ("-rw-r--r--.", Some(0o644)),
        ("----------", Some(0)),
        ("-rw-r--r", None),
        ("-rwxrwxrws", None),
        ("", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_mode(text), expected, "{text}");
    }
}

#[test]
fn every_value_in_the_script_is_quoted() {
    let mut host = desired(Path::new("/srv/it's here"));
    host.rc_conf.insert("x;reboot".into(), String::new());
    let script = script(&host);
    assert!(
        script.contains(
            r"haelk_jail j1 '/srv/it'\''s here/jails/j1' '/srv/it'\''s here/jails/j1/var/db/haelk/pending' haproxy"
        ),
        "{script}"
    );
    assert!(
        script
            .contains("sysrc jail_enable jail_list 'x;reboot' cloned_interfaces 2>/dev/null | awk"),
        "{script}"
    );
    assert!(script.contains("zfs list -H -o name,mountpoint,compression,haelk:cluster-uuid tank/jails tank/jails/j1 2>/dev/null"));
    assert!(script.contains("zpool list -H -o name,size,alloc,free tank 2>/dev/null"));
    assert!(script.contains("sysrc -f /boot/loader.conf carp_load 2>/dev/null | awk"));
    assert!(script.contains("printf 'interfaces\\t%s\\n' \"$(ifconfig -l 2>/dev/null)\"\n"));
}

/// The ids files created by this process get.
fn current_ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().unwrap();
    let meta = probe.as_file().metadata().unwrap();
    (meta.uid(), meta.gid())
}

fn write(path: &Path, content: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The script itself, run by this machine's `/bin/sh`: it has none of `jls`,
/// `sysrc`, `kldstat`, `freebsd-version` (and no pool of that name), so this also
/// shows every probe tolerating absence.
#[tokio::test]
async fn the_real_script_reads_files_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("it's a host");
    let mut host = desired(&base);
    host.datasets[0].name = "haelk-facts-test-no-pool/jails".into();
    host.datasets[1].name = "haelk-facts-test-no-pool/jails/j1".into();
    let root = host.jails[0].root.clone();
    let (uid, gid) = current_ids();

    // The jail's user database: names the jail knows, ids the host does not use.
    write(
        &root.join("etc/passwd"),
        b"root:*:0:0::0:0:Charlie &:/root:/bin/sh\nsvc:*:4242:4243::0:0:x:/:/bin/sh\n",
        0o644,
    );
    write(
        &root.join("etc/group"),
        b"wheel:*:0:root\nsvcgrp:*:4243:\n",
        0o644,
    );
    std::fs::create_dir_all(root.join("bin")).unwrap();
    write(&root.join(PENDING_MARKER), b"reload\n", 0o644);

    let haproxy = root.join("usr/local/etc/haproxy.conf");
    let no_newline = b"global\n  maxconn 100\nend-file\nend";
    write(&haproxy, no_newline, 0o4750);
    host.jails[0].files[0].owner = "svc".into();
    host.jails[0].files[0].group = "svcgrp".into();
    let latin1 = root.join("usr/local/etc/it's a \"name\" $HOME.conf");
    write(&latin1, b"caf\xe9\n", 0o600);
    host.jails[0]
        .files
        .push(managed(&latin1, "nobody-here", "wheel", 0o600));
    let missing = root.join("usr/local/etc/missing.conf");
    host.jails[0]
        .files
        .push(managed(&missing, "root", "wheel", 0o644));
    // A host file: its owner is looked up in this machine's /etc/passwd.
    let host_file = host.files[0].path.clone();
    write(&host_file, b"j1 {\n}\n", 0o644);

    let remote = LocalRemote::new("local");
    let facts = gather(&remote, &host)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(remote.round_trips(), 1);

    assert_eq!(
        facts.files[&haproxy],
        FileFacts {
            content: String::from_utf8(no_newline.to_vec()).unwrap(),
            mode: 0o4750,
            uid,
            gid,
            wanted_uid: Some(4242),
            wanted_gid: Some(4243),
        }
    );
    let latin1_facts = &facts.files[&latin1];
    assert_eq!(latin1_facts.content, "caf\u{fffd}\n");
    assert_eq!(latin1_facts.mode, 0o600);
    assert_eq!(
        (latin1_facts.wanted_uid, latin1_facts.wanted_gid),
        (None, Some(0))
    );
    assert_eq!(facts.files[&host_file].content, "j1 {\n}\n");
    assert_eq!(facts.files[&host_file].wanted_uid, Some(0), "host root");
    assert!(!facts.files.contains_key(&missing));
    assert_eq!(facts.files.len(), 3);

    let jail = &facts.jails["j1"];
    assert!(jail.populated && !jail.running);
    assert_eq!(jail.pending, OnChange::Reload);
    assert_eq!(jail.services, BTreeMap::from([("haproxy".into(), false)]));
    assert_eq!(facts.pool, None);
    assert!(facts.datasets.is_empty());
    assert!(facts.rc_conf.values().all(Option::is_none));
    assert_eq!(facts.loader_conf["carp_load"], None);
    assert!(!facts.carp_loaded);
}
