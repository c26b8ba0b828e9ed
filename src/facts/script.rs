//! The facts script: one POSIX sh script that probes everything a host's desired
//! state names and prints it as tab-separated records for [`super::parse`].
//!
//! Every probe tolerates absence (no pool, no dataset, no jail, no file, even no
//! `zfs` or `sysrc` command): a failing probe prints an "absent" record or
//! nothing, never stops the script. Only the final `end` record's status decides
//! the script's exit status, so the script fails only if it cannot write.
//!
//! File contents are printed as `od` hex bytes: the transport decodes stdout as
//! lossy UTF-8, and hex survives that unchanged whatever the file holds (no final
//! newline, lines that look like records, bytes that are not UTF-8).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::desired::{HostState, JailState, PENDING_MARKER};
use crate::shell::{join, quote};

/// The first line of the output: the format and its version.
pub(super) const HEADER: &str = "haelk-facts\t3";
/// The last line of the output: anything cut short lacks it.
pub(super) const TRAILER: &str = "end";
/// The line closing a file's hex dump.
pub(super) const END_OF_FILE: &str = "end-file";

/// Shell functions the per-resource lines call. `ENVIRON` rather than `awk -v`
/// passes a name to awk, because `-v` would interpret backslashes in it.
const PRELUDE: &str = r#"# haelk facts: tab-separated records, every probe tolerates absence.
printf 'haelk-facts\t3\n'
haelk_ids() { # ROOT USERS GROUPS: the ids those names have in ROOT's user database
	haelk_root=$1 haelk_users=$2 haelk_groups=$3
	set --
	for haelk_db in "$haelk_root/etc/passwd" "$haelk_root/etc/group"; do
		if [ -f "$haelk_db" ]; then set -- "$@" "$haelk_db"; fi
	done
	if [ $# -eq 0 ]; then return 0; fi
	HAELK_ROOT=$haelk_root HAELK_USERS=$haelk_users HAELK_GROUPS=$haelk_groups awk -F: '
		BEGIN {
			root = ENVIRON["HAELK_ROOT"]
			n = split(ENVIRON["HAELK_USERS"], names, " "); for (i = 1; i <= n; i++) users[names[i]] = 1
			n = split(ENVIRON["HAELK_GROUPS"], names, " "); for (i = 1; i <= n; i++) groups[names[i]] = 1
		}
		FILENAME == root "/etc/passwd" && ($1 in users) { print "user\t" root "\t" $1 "\t" $3 }
		FILENAME == root "/etc/group" && ($1 in groups) { print "group\t" root "\t" $1 "\t" $3 }
	' "$@" 2>/dev/null
}
# One jls for every jail: the names of the running ones, a line each.
haelk_running=$(jls name 2>/dev/null)
haelk_jail() { # NAME ROOT PENDING-MARKER SERVICE...
	haelk_name=$1 haelk_root=$2 haelk_pending=$3
	shift 3
	if printf '%s\n' "$haelk_running" | grep -qxF -- "$haelk_name"; then
		haelk_state=running
	else
		haelk_state=stopped
	fi
	if [ -d "$haelk_root/bin" ]; then haelk_userland=populated; else haelk_userland=empty; fi
	printf 'jail\t%s\t%s\t%s\n' "$haelk_name" "$haelk_state" "$haelk_userland"
	if [ "$haelk_userland" = populated ]; then
		pkg -r "$haelk_root" query '%n %v' 2>/dev/null | while read -r haelk_pkg haelk_version; do
			printf 'package\t%s\t%s\t%s\n' "$haelk_name" "$haelk_pkg" "$haelk_version"
		done
	fi
	if [ "$haelk_state" = running ]; then
		for haelk_service in "$@"; do
			if service -j "$haelk_name" "$haelk_service" status >/dev/null 2>&1; then
				printf 'service\t%s\t%s\trunning\n' "$haelk_name" "$haelk_service"
			else
				printf 'service\t%s\t%s\tstopped\n' "$haelk_name" "$haelk_service"
			fi
		done
	fi
	if [ -f "$haelk_pending" ]; then
		haelk_word=
		IFS= read -r haelk_word <"$haelk_pending" || :
		printf 'pending\t%s\t%s\n' "$haelk_name" "$haelk_word"
	fi
}
haelk_file() { # PATH: its `ls -lnd` line and its content as hex
	if [ ! -f "$1" ] || [ -h "$1" ]; then return 0; fi
	printf 'file\t%s\t' "$1"
	ls -lnd "$1"
	od -An -tx1 -v "$1"
	printf 'end-file\n'
}
"#;

/// The facts script for `host`: one script, one round trip.
pub fn script(host: &HostState) -> String {
    let mut script = String::from(PRELUDE);
    script.push_str("printf 'version\\t%s\\n' \"$(freebsd-version 2>/dev/null)\"\n");
    push_pool_and_datasets(&mut script, host);
    script.push_str(
        "if kldstat -q -m carp >/dev/null 2>&1; then printf 'carp\\tloaded\\n'; \
         else printf 'carp\\tabsent\\n'; fi\n",
    );
    script.push_str("printf 'interfaces\\t%s\\n' \"$(ifconfig -l 2>/dev/null)\"\n");
    push_sysrc(
        &mut script,
        "rc",
        host.rc_conf.keys().chain(host.rc_conf_words.keys()),
        &[],
    );
    push_sysrc(
        &mut script,
        "loader",
        host.loader_conf.keys(),
        &["-f", "/boot/loader.conf"],
    );
    for jail in &host.jails {
        push_jail(&mut script, jail);
    }
    push_ids(&mut script, host);
    for file in host.all_files() {
        push_file(&mut script, &file.path);
    }
    for source in host.copy_sources() {
        push_file(&mut script, source);
    }
    let _ = writeln!(script, "printf '{TRAILER}\\n'");
    script
}

/// The pool of the parent dataset and every desired dataset that exists, in one
/// `zfs list` (it skips a missing name with an error and lists the others).
fn push_pool_and_datasets(script: &mut String, host: &HostState) {
    let Some(parent) = host.datasets.first() else {
        return;
    };
    let pool = parent.name.split('/').next().unwrap_or(&parent.name);
    // `writeln!` into a String cannot fail.
    let _ = writeln!(
        script,
        "zpool list -H -o name,size,alloc,free {} 2>/dev/null | awk '{{ print \"pool\\t\" $0 }}'",
        quote(pool)
    );
    let mut list = vec!["zfs", "list", "-H", "-o"];
    list.push("name,mountpoint,compression,haelk:cluster-uuid");
    list.extend(host.datasets.iter().map(|d| d.name.as_str()));
    let _ = writeln!(
        script,
        "{} 2>/dev/null | awk '{{ print \"dataset\\t\" $0 }}'",
        join(list)
    );
}

/// One `sysrc` for all of `keys`: it prints `KEY: VALUE` for each set key and
/// skips (with a message on stderr) each unset one, so an absent record means
/// unset.
fn push_sysrc<'a>(
    script: &mut String,
    tag: &str,
    keys: impl Iterator<Item = &'a String>,
    options: &[&str],
) {
    let keys: Vec<&str> = keys.map(String::as_str).collect();
    if keys.is_empty() {
        return;
    }
    let mut words = vec!["sysrc"];
    words.extend_from_slice(options);
    words.extend(keys);
    let _ = writeln!(
        script,
        "{} 2>/dev/null | awk '{{ print \"{tag}\\t\" $0 }}'",
        join(words)
    );
}

/// One `haelk_ids` per user database the managed files' owners are named in:
/// every file's wanted owner and group in one `awk` per jail, not two per file.
fn push_ids(script: &mut String, host: &HostState) {
    let mut names: BTreeMap<&Path, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for file in host.all_files() {
        let (users, groups) = names
            .entry(user_database_root(host, &file.path))
            .or_default();
        users.insert(&file.owner);
        groups.insert(&file.group);
    }
    for (root, (users, groups)) in names {
        let root = database_root_prefix(root);
        let users = users.into_iter().collect::<Vec<_>>().join(" ");
        let groups = groups.into_iter().collect::<Vec<_>>().join(" ");
        let _ = writeln!(script, "{}", join(["haelk_ids", &root, &users, &groups]));
    }
}

fn push_jail(script: &mut String, jail: &JailState) {
    let root = jail.root.to_string_lossy();
    let pending = jail.root.join(PENDING_MARKER);
    let pending = pending.to_string_lossy();
    let mut words = vec!["haelk_jail", jail.name.as_str(), &root, &pending];
    words.extend(jail.services.iter().map(String::as_str));
    let _ = writeln!(script, "{}", join(words));
}

fn push_file(script: &mut String, path: &Path) {
    let _ = writeln!(script, "{}", join(["haelk_file", &path.to_string_lossy()]));
}

/// `root` as the prefix the script puts before `/etc/passwd`: the host's root
/// becomes the empty string. Also the `ROOT` field of `user` and `group` records.
pub(super) fn database_root_prefix(root: &Path) -> String {
    root.to_string_lossy().trim_end_matches('/').to_owned()
}

/// Where the user database that names `path`'s owner lives: the root of the jail
/// holding `path`, or the host's `/` for a path in no jail.
pub(super) fn user_database_root<'a>(host: &'a HostState, path: &Path) -> &'a Path {
    host.jails
        .iter()
        .map(|jail| jail.root.as_path())
        .find(|root| path.starts_with(root))
        .unwrap_or(Path::new("/"))
}
