//! FreeBSD command lines, built by small pure functions.
//!
//! Every value is quoted with [`shell::quote`], whatever validation it passed
//! before. Commands use only flags that both FreeBSD and the local lab's zfs-fuse
//! accept (no `zfs list -p`, no `zfs get -t`).

use std::fmt::Write as _;
use std::path::Path;

use crate::desired::{Dataset, ManagedFile, OnChange, PENDING_MARKER};
use crate::shell::{join, quote};

/// The boot loader's configuration, where `carp_load` goes.
pub const LOADER_CONF: &str = "/boot/loader.conf";

/// The jail.conf(5) file of one jail: rc.d/jail reads `/etc/jail.conf.d/NAME.conf`
/// for every jail of `jail_list`.
pub fn jail_conf_path(jail: &str) -> std::path::PathBuf {
    format!("/etc/jail.conf.d/{jail}.conf").into()
}

/// `kldload -n MODULE`: loads it unless it is already loaded.
pub fn kldload(module: &str) -> String {
    join(["kldload", "-n", module])
}

/// Records in the jail root that `action` is owed to the jail's service
/// ([`PENDING_MARKER`]); nothing for [`OnChange::Nothing`].
pub fn record_pending(root: &Path, action: OnChange) -> Option<String> {
    let word = action.marker()?;
    let marker = root.join(PENDING_MARKER);
    let directory = marker.parent().unwrap_or(root);
    Some(format!(
        "mkdir -p {} && echo {word} > {}",
        quote(&directory.to_string_lossy()),
        quote(&marker.to_string_lossy())
    ))
}

/// Removes the record of an owed action.
pub fn clear_pending(root: &Path) -> String {
    join(["rm", "-f", &root.join(PENDING_MARKER).to_string_lossy()])
}

/// `zfs create -p -o k=v ... NAME`: creates the dataset and its parents, and
/// succeeds if it exists (its properties are then set by [`zfs_set`]).
pub fn zfs_create(dataset: &Dataset) -> String {
    let mut words = vec!["zfs".to_owned(), "create".into(), "-p".into()];
    for (key, value) in &dataset.properties {
        words.push("-o".into());
        words.push(format!("{key}={value}"));
    }
    words.push(dataset.name.clone());
    join(words)
}

/// `zfs set k=v NAME`.
pub fn zfs_set(dataset: &str, key: &str, value: &str) -> String {
    join(["zfs", "set", &format!("{key}={value}"), dataset])
}

/// `sysrc [-f FILE] key=value` on the host.
pub fn sysrc_set(file: Option<&Path>, key: &str, value: &str) -> String {
    let assignment = format!("{key}={value}");
    match file {
        Some(file) => join(["sysrc", "-f", &file.to_string_lossy(), &assignment]),
        None => join(["sysrc", &assignment]),
    }
}

/// `sysrc KEY+=WORD`: adds WORD to the host rc.conf list KEY (sysrc adds a
/// word only once), leaving the list's other words alone.
pub fn sysrc_append(key: &str, word: &str) -> String {
    join(["sysrc", &format!("{key}+={word}")])
}

/// `ifconfig IF create`: a cloned interface (`bridge0`), now.
pub fn ifconfig_create(interface: &str) -> String {
    join(["ifconfig", interface, "create"])
}

/// `ifconfig BRIDGE addm MEMBER up`: MEMBER joins BRIDGE, which comes up.
pub fn bridge_add_member(bridge: &str, member: &str) -> String {
    join(["ifconfig", bridge, "addm", member, "up"])
}

/// `service jail start|stop|restart NAME`.
pub fn jail_service(action: &str, jail: &str) -> String {
    join(["service", "jail", action, jail])
}

/// `tar -xf BASE -C ROOT --unlink`: a jail's userland from `base.txz`.
pub fn extract_base(base: &Path, root: &Path) -> String {
    join([
        "tar",
        "-xf",
        &base.to_string_lossy(),
        "-C",
        &root.to_string_lossy(),
        "--unlink",
    ])
}

/// Fails unless the userland in jail root ROOT is FreeBSD `release`
/// (`jails.release`) or a patch level of it (`RELEASE-pN`), saying what it is.
/// FreeBSD's `bin/freebsd-version` is a script whose `USERLAND_VERSION="..."`
/// line names the userland it came with; it is read here, not run.
pub fn check_release(root: &Path, release: &str) -> String {
    let script = quote(&root.join("bin/freebsd-version").to_string_lossy());
    let escaped = release.replace('.', "\\.");
    let line = quote(&format!(
        "USERLAND_VERSION=\"{escaped}\\(-p[0-9]\\{{1,\\}}\\)\\{{0,1\\}}\""
    ));
    format!(
        "grep -qx {line} {script} || {{ echo {script}': userland '\"$(sed -n \
         's/^USERLAND_VERSION=//p' {script} 2>/dev/null)\"', not jails.release '{release} >&2; \
         exit 1; }}",
        release = quote(release),
    )
}

/// `service jail start NAME`, once [`check_release`] passed on its root.
pub fn jail_start_checked(root: &Path, release: &str, jail: &str) -> String {
    format!(
        "{}; {}",
        check_release(root, release),
        jail_service("start", jail)
    )
}

/// `pkg -j JAIL install -y PKG...` (the jail must be running).
pub fn pkg_install(jail: &str, packages: &[String]) -> String {
    let mut words = vec!["pkg", "-j", jail, "install", "-y"];
    words.extend(packages.iter().map(String::as_str));
    join(words)
}

/// `service -j JAIL SERVICE ACTION`.
pub fn jail_service_action(jail: &str, service: &str, action: &str) -> String {
    join(["service", "-j", jail, service, action])
}

/// Starts SERVICE in JAIL unless `status` says it runs: the jail's `/etc/rc`
/// starts every enabled service at jail start, and rc.subr answers a second
/// `start` with "already running? (pid=N)" and exit status 1.
pub fn jail_service_start_unless_running(jail: &str, service: &str) -> String {
    format!(
        "{} >/dev/null 2>&1 || {} >&2",
        jail_service_action(jail, service, "status"),
        jail_service_action(jail, service, "start")
    )
}

/// A script fragment that writes `file` atomically: the content goes to a
/// temporary name in the same directory, gets its owner and mode, and only then is
/// renamed over the target, so a reader (or a broken connection) never sees half
/// a file. Owner and group are resolved in `passwd_root`'s `/etc/passwd` and
/// `/etc/group` - the jail's, for a file inside a jail - because the host's user
/// database does not know a jail's users.
pub fn write_file_atomically(file: &ManagedFile, passwd_root: &Path) -> String {
    let path = file.path.to_string_lossy();
    let temporary = format!("{path}.haelk-new");
    let directory = file
        .path
        .parent()
        .map_or_else(|| "/".into(), |p| p.to_string_lossy().into_owned());
    let delimiter = heredoc_delimiter(&file.content);
    let root = passwd_root.to_string_lossy();
    let mut script = String::new();
    // `writeln!` into a String cannot fail.
    let _ = writeln!(script, "mkdir -p {}", quote(&directory));
    let _ = writeln!(script, "cat > {} <<'{delimiter}'", quote(&temporary));
    script.push_str(&file.content);
    if !file.content.ends_with('\n') && !file.content.is_empty() {
        // A heredoc always ends with a newline; only content that has one may use it.
        script.push('\n');
    }
    let _ = writeln!(script, "{delimiter}");
    script.push_str(&owner_lookup(&root, &file.owner, &file.group));
    let _ = writeln!(script, "chown \"$uid:$gid\" {}", quote(&temporary));
    let _ = writeln!(script, "chmod {:o} {}", file.mode, quote(&temporary));
    let _ = writeln!(script, "mv -f {} {}", quote(&temporary), quote(&path));
    script
}

/// Sets `uid` and `gid` to the ids of OWNER and GROUP in ROOT's user database,
/// and fails the script, naming them, when either is missing there.
fn owner_lookup(root: &str, owner: &str, group: &str) -> String {
    let root = root.trim_end_matches('/');
    let lookup = |database: &str, name: &str| {
        format!(
            "$(awk -F: -v n={} '$1 == n {{ print $3; exit }}' {})",
            quote(name),
            quote(&format!("{root}/etc/{database}"))
        )
    };
    let missing = format!(
        "haelk: no user {owner} or no group {group} in {root}/etc/passwd, {root}/etc/group"
    );
    format!(
        "uid={} gid={}\n[ -n \"$uid\" ] && [ -n \"$gid\" ] || {{ echo {} >&2; exit 1; }}\n",
        lookup("passwd", owner),
        lookup("group", group),
        quote(&missing)
    )
}

/// A heredoc delimiter that does not occur as a line of `content`.
fn heredoc_delimiter(content: &str) -> String {
    let mut delimiter = "HAELK_EOF".to_owned();
    while content.lines().any(|line| line == delimiter) {
        delimiter.push('_');
    }
    delimiter
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::desired::OnChange;

    #[test]
    fn zfs_create_sets_properties_and_tolerates_an_existing_dataset() {
        let dataset = Dataset {
            name: "zroot/jails".into(),
            properties: BTreeMap::from([
                ("compression".into(), "lz4".into()),
                ("mountpoint".into(), "/usr/local/jails".into()),
            ]),
        };
        assert_eq!(
            zfs_create(&dataset),
            "zfs create -p -o compression=lz4 -o mountpoint=/usr/local/jails zroot/jails"
        );
        assert_eq!(
            zfs_set("zroot/jails", "haelk:cluster-uuid", "x y"),
            "zfs set 'haelk:cluster-uuid=x y' zroot/jails"
        );
    }

    #[test]
    fn host_commands_quote_every_value() {
        assert_eq!(
            sysrc_set(None, "jail_enable", "YES"),
            "sysrc jail_enable=YES"
        );
        assert_eq!(
            sysrc_set(Some(Path::new("/boot/loader.conf")), "carp_load", "YES"),
            "sysrc -f /boot/loader.conf carp_load=YES"
        );
        assert_eq!(sysrc_set(None, "jail_list", "a b"), "sysrc 'jail_list=a b'");
        assert_eq!(
            sysrc_append("cloned_interfaces", "bridge0"),
            "sysrc cloned_interfaces+=bridge0"
        );
        assert_eq!(ifconfig_create("bridge0"), "ifconfig bridge0 create");
        assert_eq!(
            bridge_add_member("bridge0", "em0"),
            "ifconfig bridge0 addm em0 up"
        );
        assert_eq!(
            jail_service("start", "d12c-elasticsearch"),
            "service jail start d12c-elasticsearch"
        );
        assert_eq!(
            pkg_install("j1", &["elasticsearch8".into(), "openjdk17".into()]),
            "pkg -j j1 install -y elasticsearch8 openjdk17"
        );
        assert_eq!(
            jail_service_action("j1", "haproxy", "reload"),
            "service -j j1 haproxy reload"
        );
        assert_eq!(
            jail_service_start_unless_running("j 1", "kibana"),
            "service -j 'j 1' kibana status >/dev/null 2>&1 || service -j 'j 1' kibana start >&2"
        );
        assert_eq!(
            extract_base(
                Path::new("/media/base.txz"),
                Path::new("/usr/local/jails/j1")
            ),
            "tar -xf /media/base.txz -C /usr/local/jails/j1 --unlink"
        );
    }

    fn file(content: &str) -> ManagedFile {
        ManagedFile {
            path: PathBuf::from("/usr/local/jails/j1/usr/local/etc/haproxy.conf"),
            owner: "root".into(),
            group: "wheel".into(),
            mode: 0o640,
            content: content.into(),
            on_change: OnChange::Reload,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: None,
        }
    }

    #[test]
    fn a_file_is_written_to_a_temporary_name_owned_and_moded_before_the_rename() {
        let script = write_file_atomically(&file("global\n"), Path::new("/usr/local/jails/j1"));
        let lines: Vec<&str> = script.lines().collect();
        let tmp = "/usr/local/jails/j1/usr/local/etc/haproxy.conf.haelk-new";
        assert_eq!(lines[0], "mkdir -p /usr/local/jails/j1/usr/local/etc");
        assert_eq!(lines[1], format!("cat > {tmp} <<'HAELK_EOF'"));
        assert_eq!(lines[2], "global");
        assert_eq!(lines[3], "HAELK_EOF");
        assert!(
            lines[4].starts_with("uid=$(awk")
                && lines[4].contains("/usr/local/jails/j1/etc/passwd")
        );
        assert!(
            lines[5].contains(
                "haelk: no user root or no group wheel in /usr/local/jails/j1/etc/passwd"
            )
        );
        assert_eq!(lines[6], format!("chown \"$uid:$gid\" {tmp}"));
        assert_eq!(lines[7], format!("chmod 640 {tmp}"));
        assert_eq!(
            lines[8],
            format!("mv -f {tmp} /usr/local/jails/j1/usr/local/etc/haproxy.conf")
        );
    }

    #[test]
    fn content_holding_the_delimiter_gets_another_one() {
        let script = write_file_atomically(&file("HAELK_EOF\n"), Path::new("/"));
        assert!(
            script.contains("<<'HAELK_EOF_'\nHAELK_EOF\nHAELK_EOF_\n"),
            "{script}"
        );
    }

    #[test]
    fn the_release_check_accepts_the_release_and_its_patch_levels_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("it's a jail");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let run = |userland: Option<&str>| {
            let script = root.join("bin/freebsd-version");
            match userland {
                // The shape of FreeBSD's bin/freebsd-version.
                Some(version) => std::fs::write(
                    &script,
                    format!("#!/bin/sh\nset -ef\n\nUSERLAND_VERSION=\"{version}\"\n"),
                )
                .unwrap(),
                None => {
                    let _ = std::fs::remove_file(&script);
                }
            }
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(check_release(&root, "14.3-RELEASE"))
                .output()
                .unwrap();
            (
                output.status.success(),
                String::from_utf8(output.stderr).unwrap(),
            )
        };
        assert_eq!(run(Some("14.3-RELEASE")), (true, String::new()));
        assert_eq!(run(Some("14.3-RELEASE-p2")), (true, String::new()));
        for other in [
            "14.2-RELEASE-p1",
            "14.3-RELEASE-p",
            "14x3-RELEASE",
            "14.3-STABLE",
        ] {
            let (ok, said) = run(Some(other));
            assert!(!ok, "{other} passed");
            assert_eq!(
                said,
                format!(
                    "{}/bin/freebsd-version: userland \"{other}\", not jails.release 14.3-RELEASE\n",
                    root.display()
                )
            );
        }
        let (ok, said) = run(None);
        assert!(!ok, "a root without freebsd-version passed");
        assert!(
            said.ends_with(": userland , not jails.release 14.3-RELEASE\n"),
            "{said}"
        );
        assert_eq!(
            jail_start_checked(Path::new("/j/es"), "14.3-RELEASE", "es")
                .rsplit("; ")
                .next(),
            Some("service jail start es")
        );
    }

    #[test]
    fn the_written_file_round_trips_through_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let uid = current_ids();
        std::fs::write(
            root.join("etc/passwd"),
            format!("svc:*:{}:{}::0:0:x:/:/bin/sh\n", uid.0, uid.1),
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), format!("svcgrp:*:{}:\n", uid.1)).unwrap();
        let content = "a 'quoted' $HOME `line`\nHAELK_EOF\n";
        let target = ManagedFile {
            path: root.join("usr/local/etc/x.conf"),
            owner: "svc".into(),
            group: "svcgrp".into(),
            mode: 0o600,
            content: content.into(),
            on_change: OnChange::Nothing,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: None,
        };
        let script = write_file_atomically(&target, root);
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read_to_string(&target.path).unwrap(), content);
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&target.path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!((meta.uid(), meta.gid()), uid);
        assert!(!root.join("usr/local/etc/x.conf.haelk-new").exists());
    }

    #[test]
    fn an_owner_missing_from_the_user_database_fails_the_write_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:*:0:0::0:0:x:/:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "wheel:*:0:\n").unwrap();
        let mut target = file("new\n");
        target.path = root.join("x.conf");
        target.owner = "elasticsearch".into();
        std::fs::write(&target.path, "old\n").unwrap();
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("set -e\n{}", write_file_atomically(&target, root)))
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("haelk: no user elasticsearch or no group wheel in"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&target.path).unwrap(), "old\n");
    }

    /// The ids new files get here: chown to them works without root.
    fn current_ids() -> (u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let probe = tempfile::NamedTempFile::new().unwrap();
        let meta = probe.as_file().metadata().unwrap();
        (meta.uid(), meta.gid())
    }
}

// ZFS replication: moving a dataset to another host with `zfs send | zfs recv`
// (through haelk, see `remote::stream`). Only flags both FreeBSD and zfs-fuse
// know: zfs-fuse's `send` has `-i`/`-I`/`-p`/`-R`/`-D` (no `-v`, `-c`, `-e`,
// `-L`), its `receive` has `-F`/`-n`/`-v`/`-d` (no `-u`), and its `zpool list`
// has no `-p`.

/// `zfs snapshot DATASET@SNAPSHOT`.
pub fn zfs_snapshot(dataset: &str, snapshot: &str) -> String {
    join(["zfs", "snapshot", &format!("{dataset}@{snapshot}")])
}

/// `zfs send [-i DATASET@FROM] DATASET@SNAPSHOT`: the whole snapshot, or only
/// what changed since `incremental_from`, which the receiver must already have
/// as its latest snapshot.
pub fn zfs_send(dataset: &str, snapshot: &str, incremental_from: Option<&str>) -> String {
    let mut words = vec!["zfs".to_owned(), "send".into()];
    if let Some(from) = incremental_from {
        words.push("-i".into());
        words.push(format!("{dataset}@{from}"));
    }
    words.push(format!("{dataset}@{snapshot}"));
    join(words)
}

/// `zfs recv [-F] DATASET`: creates the dataset from a full stream (it must not
/// exist), or applies an incremental one. `force` first rolls the dataset back to
/// its latest snapshot, undoing changes made since, e.g. access times written by
/// reading the mounted copy. The received dataset is mounted at its inherited
/// mountpoint (`-u` is not in zfs-fuse). zfs applies a stream whole or not at
/// all: a failed or truncated full stream leaves no dataset, and a failed
/// incremental one leaves the dataset at its previous snapshot.
pub fn zfs_recv(dataset: &str, force: bool) -> String {
    let mut words = vec!["zfs", "recv"];
    if force {
        words.push("-F");
    }
    words.push(dataset);
    join(words)
}

/// `zfs destroy DATASET@SNAPSHOT`: only ever a snapshot, never the dataset.
pub fn zfs_destroy_snapshot(dataset: &str, snapshot: &str) -> String {
    join(["zfs", "destroy", &format!("{dataset}@{snapshot}")])
}

/// [`zfs_destroy_snapshot`] of a snapshot that may not exist: it succeeds
/// either way (a re-run replaces what an earlier run left).
pub fn zfs_destroy_snapshot_if_present(dataset: &str, snapshot: &str) -> String {
    format!(
        "{} 2>/dev/null || true",
        zfs_destroy_snapshot(dataset, snapshot)
    )
}

/// `zfs destroy -r DATASET`: the dataset with its snapshots and children.
pub fn zfs_destroy_recursive(dataset: &str) -> String {
    join(["zfs", "destroy", "-r", dataset])
}

/// Prints `exists` when DATASET exists, nothing when it does not.
pub fn zfs_dataset_exists(dataset: &str) -> String {
    format!(
        "{} >/dev/null 2>&1 && echo exists || true",
        join(["zfs", "list", "-H", "-o", "name", dataset])
    )
}

/// `zfs get -H -o value,source PROPERTY DATASET`; read the answer with
/// [`parse_user_property`]. Set it with [`zfs_set`].
pub fn zfs_get_user_property(dataset: &str, property: &str) -> String {
    join(["zfs", "get", "-H", "-o", "value,source", property, dataset])
}

/// The value of a property from [`zfs_get_user_property`]'s output; `None` when
/// it is not set (source `-`), so a value of `-` is still a value.
pub fn parse_user_property(output: &str) -> Option<String> {
    let line = output.lines().next()?;
    let (value, source) = line.rsplit_once('\t')?;
    (source != "-").then(|| value.to_owned())
}

/// `zfs get -Hp -o value used DATASET`: the bytes the dataset and its snapshots
/// and children take, a plain number ([`parse_size`] reads it).
pub fn zfs_used_bytes(dataset: &str) -> String {
    join(["zfs", "get", "-Hp", "-o", "value", "used", dataset])
}

/// `zfs get -Hp -o value available DATASET`: the bytes that can still be written
/// under it - for a pool's root dataset, what a received stream can fill.
pub fn zfs_available_bytes(dataset: &str) -> String {
    join(["zfs", "get", "-Hp", "-o", "value", "available", dataset])
}

/// A size as zfs and zpool print it: exact bytes (`2256896`, with `-p`) or
/// human units with powers of 1024 (`512`, `1.5K`, `2.15M`, `1013M`, `1.00T`;
/// OpenZFS adds a `B`: `0B`, `96KB` is not printed but accepted). Human units are
/// rounded to 3 significant digits by zfs, so they are approximate.
pub fn parse_size(text: &str) -> Result<u64, ParseSizeError> {
    let error = || ParseSizeError(text.to_owned());
    let trimmed = text.trim();
    let digits = trimmed.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &trimmed[digits.len()..];
    let exponent = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" => 1,
        "M" | "MB" => 2,
        "G" | "GB" => 3,
        "T" | "TB" => 4,
        "P" | "PB" => 5,
        "E" | "EB" => 6,
        _ => return Err(error()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(error());
    }
    if let (Ok(bytes), 0) = (digits.parse::<u64>(), exponent) {
        return Ok(bytes);
    }
    let number: f64 = digits.parse().map_err(|_| error())?;
    let bytes = (number * 1024f64.powi(exponent)).round();
    // `as` saturates; a size past u64 is not one zfs prints.
    if bytes >= u64::MAX as f64 {
        return Err(error());
    }
    Ok(bytes as u64)
}

/// A size that is not in a form zfs prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ZFS size: {0:?}")]
pub struct ParseSizeError(String);

#[cfg(test)]
mod replication_tests {
    use super::*;

    #[test]
    fn snapshot_send_and_recv_name_the_snapshots_in_full() {
        assert_eq!(
            zfs_snapshot("zroot/jails/es1", "haelk-migrate-1"),
            "zfs snapshot zroot/jails/es1@haelk-migrate-1"
        );
        assert_eq!(
            zfs_send("zroot/jails/es1", "m1", None),
            "zfs send zroot/jails/es1@m1"
        );
        assert_eq!(
            zfs_send("zroot/jails/es1", "m2", Some("m1")),
            "zfs send -i zroot/jails/es1@m1 zroot/jails/es1@m2"
        );
        assert_eq!(zfs_recv("tank/jails/es1", false), "zfs recv tank/jails/es1");
        assert_eq!(
            zfs_recv("tank/jails/es1", true),
            "zfs recv -F tank/jails/es1"
        );
        assert_eq!(
            zfs_destroy_snapshot("zroot/jails/es1", "m1"),
            "zfs destroy zroot/jails/es1@m1"
        );
        assert_eq!(
            zfs_destroy_snapshot_if_present("zroot/jails/es1", "m1"),
            "zfs destroy zroot/jails/es1@m1 2>/dev/null || true"
        );
        assert_eq!(
            zfs_destroy_recursive("pool/a b"),
            "zfs destroy -r 'pool/a b'"
        );
        assert_eq!(
            zfs_dataset_exists("tank/jails/es1"),
            "zfs list -H -o name tank/jails/es1 >/dev/null 2>&1 && echo exists || true"
        );
    }

    #[test]
    fn every_value_is_quoted() {
        assert_eq!(
            zfs_send("pool/a b", "s'1", Some("s 0")),
            r"zfs send -i 'pool/a b@s 0' 'pool/a b@s'\''1'"
        );
        assert_eq!(zfs_recv("pool/$(x)", true), "zfs recv -F 'pool/$(x)'");
        assert_eq!(
            zfs_get_user_property("pool/a b", "haelk:migrating"),
            "zfs get -H -o value,source haelk:migrating 'pool/a b'"
        );
        assert_eq!(
            zfs_used_bytes("pool/a;b"),
            "zfs get -Hp -o value used 'pool/a;b'"
        );
        assert_eq!(
            zfs_available_bytes("lab2"),
            "zfs get -Hp -o value available lab2"
        );
    }

    #[test]
    fn a_user_property_is_unset_only_when_its_source_is_a_dash() {
        assert_eq!(parse_user_property("-\t-\n"), None);
        assert_eq!(
            parse_user_property("lab1->lab2\tlocal\n"),
            Some("lab1->lab2".into())
        );
        assert_eq!(
            parse_user_property("x\tinherited from zroot/jails\n"),
            Some("x".into())
        );
        assert_eq!(parse_user_property("-\tlocal\n"), Some("-".into()));
        assert_eq!(parse_user_property("a\tb\tlocal\n"), Some("a\tb".into()));
        assert_eq!(parse_user_property(""), None);
    }

    #[test]
    fn sizes_parse_as_zfs_prints_them() {
        assert_eq!(parse_size("2256896\n"), Ok(2_256_896));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("0B"), Ok(0));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("2.15M"), Ok(2_254_438));
        assert_eq!(parse_size("1013M"), Ok(1013 * 1024 * 1024));
        assert_eq!(parse_size("1.5G"), Ok(1_610_612_736));
        assert_eq!(parse_size("1.00T"), Ok(1 << 40));
        assert_eq!(
            parse_size("16E").unwrap_err().to_string(),
            "not a ZFS size: \"16E\""
        );
        assert_eq!(parse_size("7.5E"), Ok(15 << 59));
        for bad in ["", "-", "M", "1.5X", "-3K", "1e3", "1..5M", "none"] {
            assert_eq!(parse_size(bad), Err(ParseSizeError(bad.into())), "{bad:?}");
        }
    }
}

/// `jexec JAIL ifconfig INTERFACE`: the interface as the jail sees it, with a
/// `carp:` line per vhid configured on it.
pub fn jail_ifconfig(jail: &str, interface: &str) -> String {
    join(["jexec", jail, "ifconfig", interface])
}

/// A CARP member's state, as carp(4) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CarpState {
    /// Not taking part (the interface is down, or the vhid was just added).
    Init,
    Backup,
    /// Answers for the VIP.
    Master,
}

impl CarpState {
    /// The word ifconfig(8) prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Backup => "BACKUP",
            Self::Master => "MASTER",
        }
    }
}

impl std::fmt::Display for CarpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `carp: STATE vhid N advbase B advskew S` line of ifconfig(8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarpVhid {
    pub state: CarpState,
    pub vhid: u8,
    pub advbase: u8,
    pub advskew: u8,
}

/// The CARP vhids in what [`jail_ifconfig`] printed (sbin/ifconfig/carp.c);
/// lines that are not `carp:` lines are skipped.
pub fn parse_carp_status(ifconfig: &str) -> Vec<CarpVhid> {
    ifconfig
        .lines()
        .filter_map(|line| {
            let mut words = line.trim().strip_prefix("carp: ")?.split_whitespace();
            let state = match words.next()? {
                "INIT" => CarpState::Init,
                "BACKUP" => CarpState::Backup,
                "MASTER" => CarpState::Master,
                _ => return None,
            };
            let mut value = |key: &str| -> Option<u8> {
                (words.next()? == key).then_some(())?;
                words.next()?.parse().ok()
            };
            Some(CarpVhid {
                state,
                vhid: value("vhid")?,
                advbase: value("advbase")?,
                advskew: value("advskew")?,
            })
        })
        .collect()
}

/// `jexec JAIL sysctl -f FILE`: the sysctl values of FILE (a path inside the
/// jail) set in the jail's VNET, as its `/etc/rc` sets them at start.
pub fn jail_sysctl_file(jail: &str, file: &str) -> String {
    join(["jexec", jail, "sysctl", "-f", file])
}

/// What deploy adds to a CARP master's demotion to hand its VIPs over:
/// carp(4)'s most (CARP_MAXSKEW), so any peer advertises better.
pub const CARP_HANDOVER_DEMOTION: u8 = 240;

/// `jexec JAIL sysctl net.inet.carp.demotion=240`: carp(4) adds it to the jail's
/// VNET demotion, which each of its vhids adds to its advskew; a preempting
/// peer then takes the VIP at once.
pub fn jail_carp_demote(jail: &str) -> String {
    join([
        "jexec",
        jail,
        "sysctl",
        &format!("net.inet.carp.demotion={CARP_HANDOVER_DEMOTION}"),
    ])
}

/// Lifts [`jail_carp_demote`]'s demotion while it is in force (the jail's
/// demotion is at least that much; a restarted jail's VNET starts at 0), so a
/// deploy that demoted and was cut off is finished by the next one.
pub fn jail_carp_undemote(jail: &str) -> String {
    let read = join(["jexec", jail, "sysctl", "-n", "net.inet.carp.demotion"]);
    let lift = join([
        "jexec",
        jail,
        "sysctl",
        &format!("net.inet.carp.demotion=-{CARP_HANDOVER_DEMOTION}"),
    ]);
    format!(
        "if [ \"$({read} 2>/dev/null || echo 0)\" -ge {CARP_HANDOVER_DEMOTION} ]; then {lift} >&2; fi"
    )
}

/// What a haproxy jail's CARP watch adds to the demotion while its haproxy does not
/// answer: one less than [`CARP_HANDOVER_DEMOTION`], so [`jail_carp_undemote`]'s
/// lift (at least 240 in force) never takes the watch's demotion away; a demoted
/// carrier still advertises worse than every peer with a derived advskew below 240.
pub const CARP_WATCH_DEMOTION: u8 = CARP_HANDOVER_DEMOTION - 1;

/// The CARP watch script in a haproxy jail (`templates/carp-watch.sh.tera`).
pub const CARP_WATCH_SCRIPT: &str = "/usr/local/etc/haelk/carp-watch.sh";

/// The pidfile of the watch's daemon(8) supervisor.
const CARP_WATCH_PIDFILE: &str = "/var/run/haelk_carpwatch.pid";

/// `daemon -f -r -P PIDFILE -t haelk-carpwatch sh SCRIPT`, as the jail's
/// `/etc/rc.local` runs it: detached, its output dropped, restarted a second after
/// it exits, stopped (with its child) by a SIGTERM to the supervisor.
pub fn carp_watch_daemon() -> String {
    join([
        "daemon",
        "-f",
        "-r",
        "-P",
        CARP_WATCH_PIDFILE,
        "-t",
        "haelk-carpwatch",
        "sh",
        CARP_WATCH_SCRIPT,
    ])
}

/// Starts the CARP watch in a running jail unless its supervisor runs.
pub fn jail_carp_watch_ensure(jail: &str) -> String {
    let ensure = format!(
        "pgrep -F {} >/dev/null 2>&1 || {}",
        quote(CARP_WATCH_PIDFILE),
        carp_watch_daemon()
    );
    join(["jexec", jail, "sh", "-c", &ensure])
}

/// Restarts the CARP watch in a running jail, with the script as it is now: stops
/// the supervisor if one runs (its child lifts a demotion it holds), waits for it to
/// exit (bounded: 10 s), and starts [`carp_watch_daemon`].
pub fn jail_carp_watch_restart(jail: &str) -> String {
    let pidfile = quote(CARP_WATCH_PIDFILE);
    let restart = format!(
        "pkill -F {pidfile} 2>/dev/null; n=0; \
         while pgrep -F {pidfile} >/dev/null 2>&1 && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done; \
         {}",
        carp_watch_daemon()
    );
    join(["jexec", jail, "sh", "-c", &restart])
}

#[cfg(test)]
mod carp_tests {
    use super::*;

    #[test]
    fn a_handover_demotes_by_the_most_and_lifts_only_while_that_is_in_force() {
        assert_eq!(
            jail_carp_demote("j1"),
            "jexec j1 sysctl net.inet.carp.demotion=240"
        );
        assert_eq!(
            jail_carp_undemote("j1"),
            "if [ \"$(jexec j1 sysctl -n net.inet.carp.demotion 2>/dev/null || echo 0)\" -ge 240 ]; \
             then jexec j1 sysctl net.inet.carp.demotion=-240 >&2; fi"
        );
        assert_eq!(
            jail_sysctl_file("j1", "/etc/sysctl.conf"),
            "jexec j1 sysctl -f /etc/sysctl.conf"
        );
    }

    /// What FreeBSD 14's ifconfig prints for a VNET jail's interface with one vhid.
    const VNET0: &str = "vnet0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500\n\
\tether 02:5c:3e:a1:0b:0b\n\
\tinet 10.0.0.31 netmask 0xffffff00 broadcast 10.0.0.255\n\
\tinet 10.0.0.10 netmask 0xffffffff vhid 1\n\
\tcarp: MASTER vhid 1 advbase 1 advskew 100\n\
\t      peer 224.0.0.18 peer6 ff02::12\n\
\tcarp: BACKUP vhid 7 advbase 2 advskew 0\n\
\t      peer 224.0.0.18 peer6 ff02::12\n\
\tgroups: epair\n";

    #[test]
    fn ifconfig_in_a_jail_is_one_quoted_command() {
        assert_eq!(
            jail_ifconfig("9fbb-haproxy", "vnet0"),
            "jexec 9fbb-haproxy ifconfig vnet0"
        );
        assert_eq!(jail_ifconfig("a b", "vnet0"), "jexec 'a b' ifconfig vnet0");
    }

    #[test]
    fn every_carp_line_is_read_and_nothing_else() {
        assert_eq!(
            parse_carp_status(VNET0),
            [
                CarpVhid {
                    state: CarpState::Master,
                    vhid: 1,
                    advbase: 1,
                    advskew: 100
                },
                CarpVhid {
                    state: CarpState::Backup,
                    vhid: 7,
                    advbase: 2,
                    advskew: 0
                },
            ]
        );
    }

    #[test]
    fn an_interface_without_carp_or_with_a_garbled_line_has_no_vhid() {
        assert!(parse_carp_status("lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST>\n").is_empty());
        assert!(parse_carp_status("\tcarp: MASTER vhid x advbase 1 advskew 0\n").is_empty());
        assert!(parse_carp_status("\tcarp: DEMOTED vhid 1 advbase 1 advskew 0\n").is_empty());
        assert!(parse_carp_status("\tcarp: MASTER vhid 1\n").is_empty());
    }
}
