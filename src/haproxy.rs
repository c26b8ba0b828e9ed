//! HAProxy as haelk sees it: the backend servers' states read from each haproxy
//! jail's admin socket (`show stat`), one script per host for all its jails.
//!
//! The socket path is the one `templates/haproxy.conf.tera` declares; `nc -U` is
//! the base system's netcat (FreeBSD's `nc`, like the lab's, is OpenBSD's).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::inventory::Role;
use crate::remote::{Remote, RemoteError};
use crate::shell::{join, quote};

/// The admin socket inside every haproxy jail.
pub const STATS_SOCKET: &str = "/var/run/haproxy.sock";

const JAIL_HEADER: &str = "@@haelk haproxy";

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

/// The script that dumps `show stat` of each jail.
pub fn stats_script<'a>(jails: impl IntoIterator<Item = &'a str>) -> String {
    let mut script = String::new();
    let command = format!("echo 'show stat' | nc -U {STATS_SOCKET}");
    for jail in jails {
        let _ = writeln!(script, "echo {}", quote(&format!("{JAIL_HEADER} {jail}")));
        let _ = writeln!(
            script,
            "{} 2>&1 || echo 'cannot read the haproxy stats socket'",
            join(["jexec", jail, "sh", "-c", &command])
        );
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
    let output = remote
        .run(&stats_script(jails))
        .await?
        .check(remote.host(), "reading the haproxy stats")?;
    Ok(parse_stats(&output.stdout))
}

/// Parses what [`stats_script`] printed.
pub fn parse_stats(stdout: &str) -> HostStats {
    let mut stats = HostStats::new();
    let header = format!("{JAIL_HEADER} ");
    for section in stdout.split(&header).skip(1) {
        let (jail, body) = section.split_once('\n').unwrap_or((section, ""));
        stats.insert(jail.trim().to_owned(), parse_csv(body));
    }
    stats
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
            "{JAIL_HEADER} lab1-haproxy-es\n{SHOW_STAT}{JAIL_HEADER} lab1-haproxy-kibana\ncannot read the haproxy stats socket\n"
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
            stats_script(["j1"]),
            "echo '@@haelk haproxy j1'\n\
             jexec j1 sh -c 'echo '\\''show stat'\\'' | nc -U /var/run/haproxy.sock' 2>&1 || echo 'cannot read the haproxy stats socket'\n"
        );
    }
}
