//! HAProxy as haelk sees it: the backend servers' states read from each haproxy
//! jail's admin socket (`show stat`), one script per host for all its jails.
//!
//! The socket path is the one `templates/haproxy.conf.tera` declares; `nc -U` is
//! the base system's netcat (FreeBSD's `nc`, like the lab's, is OpenBSD's).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::freebsd::{self, CarpVhid};
use crate::inventory::Role;
use crate::remote::{Remote, RemoteError};
use crate::shell::{join, quote};

/// The admin socket inside every haproxy jail.
pub const STATS_SOCKET: &str = "/var/run/haproxy.sock";

/// Starts a section of a script's output: `@@haelk KIND JAIL`.
const SECTION: &str = "@@haelk";
/// The section kinds: a jail's `show stat`, and its interface's `ifconfig`.
const STATS: &str = "haproxy";
const CARP: &str = "carp";

/// The backend of the service a haproxy jail fronts (`templates/haproxy.conf.tera`).
pub fn backend(service: Role) -> String {
    format!("{}_nodes", service.as_str())
}

/// One backend server as HAProxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    pub backend: String,
    pub server: String,
    /// `UP`, `DOWN`, `UP 1/2` (going down), `MAINT`, `no check`, ...
    pub status: String,
    /// Sessions open to the server now (`scur`).
    pub sessions: u64,
}

impl ServerState {
    /// Whether HAProxy sends traffic to it (`UP`, also while a check is failing
    /// but `fall` is not reached yet).
    pub fn is_up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ")
    }
}

/// The servers of every haproxy jail of a host, by jail; `Err` holds why a
/// jail's socket could not be read.
pub type HostStats = BTreeMap<String, Result<Vec<ServerState>, String>>;

/// The CARP vhids on the VIP interface of every haproxy jail of a host, by jail;
/// `Err` holds why a jail's interface could not be read.
pub type HostCarp = BTreeMap<String, Result<Vec<CarpVhid>, String>>;

/// The script that dumps `show stat` of each jail, and with `carp_interface` also
/// `ifconfig` of that interface in each jail.
pub fn stats_script<'a>(
    jails: impl IntoIterator<Item = &'a str>,
    carp_interface: Option<&str>,
) -> String {
    let mut script = String::new();
    let command = format!("echo 'show stat' | nc -U {STATS_SOCKET}");
    let mut section = |kind: &str, jail: &str, command: &str, failed: &str| {
        let _ = writeln!(
            script,
            "echo {}",
            quote(&format!("{SECTION} {kind} {jail}"))
        );
        let _ = writeln!(script, "{command} 2>&1 || echo {}", quote(failed));
    };
    for jail in jails {
        section(
            STATS,
            jail,
            &join(["jexec", jail, "sh", "-c", &command]),
            "cannot read the haproxy stats socket",
        );
        if let Some(interface) = carp_interface {
            section(
                CARP,
                jail,
                &freebsd::jail_ifconfig(jail, interface),
                &format!("cannot read {interface}"),
            );
        }
    }
    script
}

/// What an administrator may set a server to through the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Takes traffic.
    Ready,
    /// No new traffic; sessions open now finish.
    Maint,
}

/// The script that sets `backend/server` to `state` in each jail's HAProxy.
pub fn set_state_script<'a>(
    jails: impl IntoIterator<Item = &'a str>,
    backend: &str,
    server: &str,
    state: AdminState,
) -> String {
    let word = match state {
        AdminState::Ready => "ready",
        AdminState::Maint => "maint",
    };
    let command = format!(
        "echo {} | nc -U {STATS_SOCKET}",
        quote(&format!("set server {backend}/{server} state {word}"))
    );
    let mut script = String::from("set -e\n");
    for jail in jails {
        // The socket answers an empty line when the command succeeded.
        let _ = writeln!(
            script,
            "answer=$({})\n[ -z \"$(echo \"$answer\" | tr -d '[:space:]')\" ] || {{ echo {}: \"$answer\" >&2; exit 1; }}",
            join(["jexec", jail, "sh", "-c", &command]),
            quote(jail)
        );
    }
    script
}

/// Reads the stats of `jails` on `remote`: one round trip.
pub async fn read_stats<'a>(
    remote: &impl Remote,
    jails: impl IntoIterator<Item = &'a str>,
) -> Result<HostStats, RemoteError> {
    let stdout = run_stats_script(remote, &stats_script(jails, None)).await?;
    Ok(parse_stats(&stdout))
}

/// Reads the stats of `jails` and the CARP vhids on their `carp_interface`, in
/// the same round trip.
pub async fn read_stats_and_carp<'a>(
    remote: &impl Remote,
    jails: impl IntoIterator<Item = &'a str>,
    carp_interface: &str,
) -> Result<(HostStats, HostCarp), RemoteError> {
    let stdout = run_stats_script(remote, &stats_script(jails, Some(carp_interface))).await?;
    Ok((parse_stats(&stdout), parse_carp(&stdout)))
}

async fn run_stats_script(remote: &impl Remote, script: &str) -> Result<String, RemoteError> {
    let output = remote
        .run(script)
        .await?
        .check(remote.host(), "reading the haproxy stats")?;
    Ok(output.stdout)
}

/// The `(kind, jail, body)` sections of what [`stats_script`] printed.
fn sections(stdout: &str) -> Vec<(&str, &str, &str)> {
    let header = format!("{SECTION} ");
    stdout
        .split(header.as_str())
        .skip(1)
        .filter_map(|section| {
            let (title, body) = section.split_once('\n').unwrap_or((section, ""));
            let (kind, jail) = title.trim().split_once(' ')?;
            Some((kind, jail, body))
        })
        .collect()
}

/// Parses the `show stat` sections of what [`stats_script`] printed.
pub fn parse_stats(stdout: &str) -> HostStats {
    sections(stdout)
        .into_iter()
        .filter(|(kind, _, _)| *kind == STATS)
        .map(|(_, jail, body)| (jail.to_owned(), parse_csv(body)))
        .collect()
}

/// Parses the `ifconfig` sections of what [`stats_script`] printed: a jail
/// whose interface could not be read has the error text.
pub fn parse_carp(stdout: &str) -> HostCarp {
    sections(stdout)
        .into_iter()
        .filter(|(kind, _, _)| *kind == CARP)
        .map(|(_, jail, body)| {
            let seen = if body.contains(": flags=") {
                Ok(freebsd::parse_carp_status(body))
            } else {
                Err(body.trim().to_owned())
            };
            (jail.to_owned(), seen)
        })
        .collect()
}

/// The server rows of one `show stat` CSV dump.
fn parse_csv(body: &str) -> Result<Vec<ServerState>, String> {
    let mut lines = body.lines();
    let header = lines
        .next()
        .and_then(|line| line.strip_prefix("# "))
        .ok_or_else(|| body.trim().to_owned())?;
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("no {name} column in `show stat`"))
    };
    let (backend, server, status, sessions) = (
        column("pxname")?,
        column("svname")?,
        column("status")?,
        column("scur")?,
    );
    Ok(lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields.len() > status)
        .filter(|fields| !matches!(fields[server], "FRONTEND" | "BACKEND"))
        .map(|fields| ServerState {
            backend: fields[backend].to_owned(),
            server: fields[server].to_owned(),
            status: fields[status].to_owned(),
            sessions: fields[sessions].parse().unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW_STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
elasticsearch,FRONTEND,,,0,1,4096,3,0,0,0,0,0,,,,,OPEN,\n\
elasticsearch_nodes,lab1-elasticsearch,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP,1\n\
elasticsearch_nodes,lab2-elasticsearch,0,0,0,1,,3,0,0,,0,,0,0,0,0,DOWN 1/2,1\n\
elasticsearch_nodes,BACKEND,0,0,0,1,410,3,0,0,0,0,,0,0,0,0,UP,2\n\n";

    #[test]
    fn server_rows_are_read_by_column_name() {
        let output = format!(
            "@@haelk haproxy lab1-haproxy-es\n{SHOW_STAT}@@haelk haproxy lab1-haproxy-kibana\ncannot read the haproxy stats socket\n"
        );
        let stats = parse_stats(&output);
        let servers = stats["lab1-haproxy-es"].as_ref().unwrap();
        assert_eq!(
            servers,
            &[
                ServerState {
                    backend: "elasticsearch_nodes".into(),
                    server: "lab1-elasticsearch".into(),
                    status: "UP".into(),
                    sessions: 0,
                },
                ServerState {
                    backend: "elasticsearch_nodes".into(),
                    server: "lab2-elasticsearch".into(),
                    status: "DOWN 1/2".into(),
                    sessions: 0,
                },
            ]
        );
        assert!(servers[0].is_up() && !servers[1].is_up());
        assert_eq!(
            stats["lab1-haproxy-kibana"],
            Err("cannot read the haproxy stats socket".to_owned())
        );
    }

    #[test]
    fn a_server_is_put_in_maintenance_through_every_jails_socket() {
        let script = set_state_script(
            ["j1", "j2"],
            &backend(Role::Elasticsearch),
            "es1",
            AdminState::Maint,
        );
        assert!(script.contains(
            "jexec j1 sh -c 'echo '\\''set server elasticsearch_nodes/es1 state maint'\\'' | nc -U /var/run/haproxy.sock'"
        ), "{script}");
        assert!(script.contains("jexec j2 "), "{script}");
    }

    #[test]
    fn the_script_reads_each_jails_socket_through_jexec() {
        assert_eq!(
            stats_script(["j1"], None),
            "echo '@@haelk haproxy j1'\n\
             jexec j1 sh -c 'echo '\\''show stat'\\'' | nc -U /var/run/haproxy.sock' 2>&1 || echo 'cannot read the haproxy stats socket'\n"
        );
    }

    #[test]
    fn with_an_interface_the_script_also_reads_each_jails_carp_and_both_are_parsed() {
        let script = stats_script(["j1", "j2"], Some("vnet0"));
        assert!(
            script.contains(
                "echo '@@haelk carp j1'\njexec j1 ifconfig vnet0 2>&1 || echo 'cannot read vnet0'\n"
            ),
            "{script}"
        );
        let output = format!(
            "@@haelk haproxy j1\n{SHOW_STAT}@@haelk carp j1\n\
             vnet0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500\n\
             \tcarp: BACKUP vhid 2 advbase 1 advskew 100\n\
             @@haelk haproxy j2\n{SHOW_STAT}@@haelk carp j2\n\
             jexec: jail \"j2\" not found\ncannot read vnet0\n"
        );
        let stats = parse_stats(&output);
        assert_eq!(stats["j1"].as_ref().unwrap().len(), 2);
        assert_eq!(stats["j2"].as_ref().unwrap().len(), 2);
        let carp = parse_carp(&output);
        let j1 = carp["j1"].as_ref().unwrap();
        assert_eq!((j1[0].state, j1[0].vhid), (freebsd::CarpState::Backup, 2));
        assert_eq!(
            carp["j2"],
            Err("jexec: jail \"j2\" not found\ncannot read vnet0".to_owned())
        );
    }
}
