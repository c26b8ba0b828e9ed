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

use std::fmt::Write as _;
use std::path::Path;

use crate::desired::{HostState, JailState, ManagedFile, PENDING_MARKER};
use crate::shell::{join, quote};

/// The first line of the output: the format and its version.
pub(super) const HEADER: &str = "haelk-facts\t1";
/// The last line of the output: anything cut short lacks it.
pub(super) const TRAILER: &str = "end";
/// The line closing a file's hex dump.
pub(super) const END_OF_FILE: &str = "end-file";

/// Shell functions the per-resource lines call. `ENVIRON` rather than `awk -v`
/// passes a name to awk, because `-v` would interpret backslashes in it.
const PRELUDE: &str = r#"# haelk facts: tab-separated records, every probe tolerates absence.
printf 'haelk-facts\t1\n'
haelk_sysrc() { # TAG KEY [SYSRC-OPTION...]
	haelk_tag=$1 haelk_key=$2
	shift 2
	if haelk_value=$(sysrc "$@" -n "$haelk_key" 2>/dev/null); then
		printf '%s\t%s\t%s\n' "$haelk_tag" "$haelk_key" "$haelk_value"
	else
		printf '%s-unset\t%s\n' "$haelk_tag" "$haelk_key"
	fi
}
haelk_id() { # NAME DATABASE: NAME's id in a passwd or group file, or nothing
	HAELK_NAME=$1 awk -F: '$1 == ENVIRON["HAELK_NAME"] { print $3; exit }' "$2" 2>/dev/null
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
haelk_file() { # PATH USER-DATABASE-ROOT OWNER GROUP
	if [ ! -f "$1" ] || [ -h "$1" ]; then return 0; fi
	printf 'file\t%s\t%s\t%s\t%s\n' "$1" \
		"$(ls -lnd "$1" | awk '{ print $1 "\t" $3 "\t" $4 }')" \
		"$(haelk_id "$3" "$2/etc/passwd")" "$(haelk_id "$4" "$2/etc/group")"
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
    push_sysrc(&mut script, "rc", host.rc_conf.keys(), &[]);
    push_sysrc(
        &mut script,
        "loader",
        host.loader_conf.keys(),
        &["-f", "/boot/loader.conf"],
    );
    for jail in &host.jails {
        push_jail(&mut script, jail);
    }
    for file in host.all_files() {
        push_file(&mut script, file, user_database_root(host, &file.path));
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

/// One `haelk_sysrc` line per key: `TAG KEY VALUE` or `TAG-unset KEY`.
fn push_sysrc<'a>(
    script: &mut String,
    tag: &str,
    keys: impl Iterator<Item = &'a String>,
    options: &[&str],
) {
    for key in keys {
        let mut words = vec!["haelk_sysrc", tag, key.as_str()];
        words.extend_from_slice(options);
        let _ = writeln!(script, "{}", join(words));
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

fn push_file(script: &mut String, file: &ManagedFile, user_database_root: &Path) {
    let path = file.path.to_string_lossy();
    let root = user_database_root.to_string_lossy();
    // The function appends `/etc/passwd`: the host's root becomes the empty string.
    let root = root.trim_end_matches('/');
    let words = ["haelk_file", &path, root, &file.owner, &file.group];
    let _ = writeln!(script, "{}", join(words));
}

/// Where the user database that names `path`'s owner lives: the root of the jail
/// holding `path`, or the host's `/` for a path in no jail.
fn user_database_root<'a>(host: &'a HostState, path: &Path) -> &'a Path {
    host.jails
        .iter()
        .map(|jail| jail.root.as_path())
        .find(|root| path.starts_with(root))
        .unwrap_or(Path::new("/"))
}
