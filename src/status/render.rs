//! `haelk status` for people: one table per section (hosts, jails, Elasticsearch,
//! HAProxy, Kibana), then the problems, each with what to do. Pure: the caller
//! says how wide the terminal is and whether to colour.

use crate::freebsd::CarpState;
use crate::units::human_bytes;
use std::fmt::Write as _;

use comfy_table::{
    Attribute, Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED,
};

use super::model::{CarpCell, Estate, JailState};

/// How the report is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Tables are fitted to this many columns (wrapping cells); `None`: as wide as
    /// their content.
    pub width: Option<u16>,
    /// ANSI colours and bold headings (only on a terminal).
    pub colour: bool,
}

/// The whole report as text.
pub fn render(estate: &Estate, style: Style) -> String {
    let painter = Painter { style };
    let mut out = String::new();
    painter.hosts(&mut out, estate);
    painter.jails(&mut out, estate);
    painter.elasticsearch(&mut out, estate);
    painter.haproxy(&mut out, estate);
    painter.kibana(&mut out, estate);
    painter.problems(&mut out, estate);
    out
}

/// The state of a cell: how it is coloured.
#[derive(Clone, Copy)]
enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

struct Painter {
    style: Style,
}

impl Painter {
    fn table(&self, header: &[&str]) -> Table {
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .force_no_tty()
            .set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(width) = self.style.width {
            table.set_width(width);
        }
        if self.style.colour {
            table.enforce_styling();
        }
        table.set_header(
            header
                .iter()
                .map(|h| self.cell(h, Tone::Plain).add_attribute(Attribute::Bold)),
        );
        table
    }

    fn cell(&self, text: impl ToString, tone: Tone) -> Cell {
        let cell = Cell::new(text);
        if !self.style.colour {
            return cell;
        }
        match tone {
            Tone::Plain => cell,
            Tone::Good => cell.fg(Color::Green),
            Tone::Warn => cell.fg(Color::Yellow),
            Tone::Bad => cell.fg(Color::Red),
        }
    }

    fn heading(&self, out: &mut String, text: &str) {
        if !out.is_empty() {
            out.push('\n');
        }
        if self.style.colour {
            let _ = writeln!(out, "\x1b[1m{text}\x1b[0m");
        } else {
            let _ = writeln!(out, "{text}");
        }
    }

    fn paint(&self, text: &str, tone: Tone) -> String {
        let code = match tone {
            _ if !self.style.colour => return text.to_owned(),
            Tone::Plain => return text.to_owned(),
            Tone::Good => 32,
            Tone::Warn => 33,
            Tone::Bad => 31,
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn push(out: &mut String, table: &Table) {
        let _ = writeln!(out, "{table}");
    }

    fn hosts(&self, out: &mut String, estate: &Estate) {
        self.heading(out, "Hosts");
        let mut table = self.table(&[
            "host",
            "address",
            "reachable",
            "FreeBSD",
            "pool used/free",
            "jails running",
        ]);
        for host in &estate.hosts {
            let reachable = if host.reachable {
                self.cell("yes", Tone::Good)
            } else {
                self.cell(
                    format!("no: {}", host.error.as_deref().unwrap_or("unknown")),
                    Tone::Bad,
                )
            };
            let pool = host.pool.as_ref().map_or_else(String::new, |p| {
                format!("{}: {} / {}", p.name, p.allocated, p.free)
            });
            let jails = if host.reachable {
                let tone = if host.jails_running == host.jails_declared {
                    Tone::Good
                } else {
                    Tone::Bad
                };
                self.cell(
                    format!("{}/{}", host.jails_running, host.jails_declared),
                    tone,
                )
            } else {
                self.cell(format!("?/{}", host.jails_declared), Tone::Plain)
            };
            table.add_row(vec![
                self.cell(&host.name, Tone::Plain),
                self.cell(&host.address, Tone::Plain),
                reachable,
                self.cell(host.freebsd_version.as_deref().unwrap_or(""), Tone::Plain),
                self.cell(pool, Tone::Plain),
                jails,
            ]);
        }
        Self::push(out, &table);
    }

    fn jails(&self, out: &mut String, estate: &Estate) {
        if estate.jails.is_empty() {
            return;
        }
        self.heading(out, "Jails");
        let mut table = self.table(&["host", "jail", "role", "IP", "state", "package", "drift"]);
        for jail in &estate.jails {
            let tone = match jail.state {
                JailState::Running => Tone::Good,
                JailState::Unknown => Tone::Plain,
                JailState::ServiceStopped | JailState::Stopped | JailState::Absent => Tone::Bad,
            };
            let mut drift: Vec<String> = jail
                .drift
                .iter()
                .map(|d| format!("{} ({})", d.path, d.reasons.join(", ")))
                .collect();
            if let Some(owed) = &jail.owed {
                drift.push(format!("owes a {owed}"));
            }
            let drift_cell = match (drift.is_empty(), jail.state) {
                (_, JailState::Unknown | JailState::Stopped | JailState::Absent) => {
                    self.cell("", Tone::Plain)
                }
                (true, _) => self.cell("none", Tone::Good),
                (false, _) => self.cell(drift.join("\n"), Tone::Bad),
            };
            table.add_row(vec![
                self.cell(&jail.host, Tone::Plain),
                self.cell(&jail.name, Tone::Plain),
                self.cell(jail.role.as_str(), Tone::Plain),
                self.cell(&jail.ip, Tone::Plain),
                self.cell(jail.state.as_str(), tone),
                self.cell(jail.package.as_deref().unwrap_or(""), Tone::Plain),
                drift_cell,
            ]);
        }
        Self::push(out, &table);
    }

    fn elasticsearch(&self, out: &mut String, estate: &Estate) {
        let Some(es) = &estate.elasticsearch else {
            return;
        };
        self.heading(out, "Elasticsearch");
        match (&es.cluster, &es.error) {
            (Some(cluster), _) => {
                let tone = match cluster.status.as_str() {
                    "green" => Tone::Good,
                    "yellow" => Tone::Warn,
                    _ => Tone::Bad,
                };
                let _ = writeln!(
                    out,
                    "cluster {} · nodes {}/{} · shards {} active, {} relocating, {} initializing, {} unassigned{}",
                    self.paint(&cluster.status, tone),
                    cluster.nodes,
                    cluster.nodes_expected,
                    cluster.active_shards,
                    cluster.relocating_shards,
                    cluster.initializing_shards,
                    cluster.unassigned_shards,
                    es.via
                        .as_deref()
                        .map(|via| format!(" (asked {via})"))
                        .unwrap_or_default()
                );
                if let Some(reason) = &cluster.reason {
                    let _ = writeln!(out, "why: {reason}");
                }
            }
            (None, Some(error)) => {
                let _ = writeln!(
                    out,
                    "cluster {}",
                    self.paint(&format!("unknown: {error}"), Tone::Bad)
                );
            }
            (None, None) => {}
        }
        let mut table = self.table(&[
            "node",
            "host",
            "roles",
            "master",
            "joined",
            "heap",
            "disk used/total",
            "shards",
        ]);
        for node in &es.nodes {
            let joined = if node.joined {
                self.cell("yes", Tone::Good)
            } else {
                self.cell("no", Tone::Bad)
            };
            let disk = match (node.disk_used_bytes, node.disk_total_bytes) {
                (Some(used), Some(total)) => {
                    format!("{} / {}", human_bytes(used), human_bytes(total))
                }
                _ => String::new(),
            };
            table.add_row(vec![
                self.cell(&node.name, Tone::Plain),
                self.cell(
                    node.host.as_deref().unwrap_or("(not in the inventory)"),
                    Tone::Plain,
                ),
                self.cell(node.roles.join(","), Tone::Plain),
                self.cell(
                    if node.elected_master { "elected" } else { "" },
                    Tone::Plain,
                ),
                joined,
                self.cell(
                    node.heap_used_percent
                        .map(|p| format!("{p}%"))
                        .unwrap_or_default(),
                    Tone::Plain,
                ),
                self.cell(disk, Tone::Plain),
                self.cell(
                    node.shards.map(|s| s.to_string()).unwrap_or_default(),
                    Tone::Plain,
                ),
            ]);
        }
        Self::push(out, &table);
        if let Some(error) = &es.stats_error {
            let _ = writeln!(out, "heap, disk and shards unknown: {error}");
        }
    }

    fn haproxy(&self, out: &mut String, estate: &Estate) {
        if estate.haproxy.is_empty() {
            return;
        }
        self.heading(out, "HAProxy");
        let mut table = self.table(&["VIP", "haproxy", "CARP", "server", "state", "sessions"]);
        for vip in &estate.haproxy {
            let label = format!("{} {} vhid {}", vip.service.as_str(), vip.vip, vip.vhid);
            for frontend in &vip.frontends {
                let carp = match frontend.carp {
                    // The one master, with its haproxy answering, is as it should
                    // be; more than one is a split brain.
                    Some(CarpCell::State(CarpState::Master))
                        if vip.master.is_some() && frontend.error.is_none() =>
                    {
                        self.cell("MASTER", Tone::Good)
                    }
                    Some(CarpCell::State(CarpState::Backup)) => self.cell("BACKUP", Tone::Plain),
                    Some(CarpCell::State(state)) => self.cell(state, Tone::Bad),
                    // Both are problems of their own, with their fix.
                    Some(CarpCell::NoVhid) => self.cell("no vhid", Tone::Bad),
                    Some(CarpCell::Unreadable) => self.cell("unreadable", Tone::Bad),
                    None => self.cell("", Tone::Plain),
                };
                if let Some(error) = &frontend.error {
                    table.add_row(vec![
                        self.cell(&label, Tone::Plain),
                        self.cell(&frontend.jail, Tone::Plain),
                        carp.clone(),
                        self.cell("", Tone::Plain),
                        self.cell(error, Tone::Bad),
                        self.cell("", Tone::Plain),
                    ]);
                }
                for server in &frontend.servers {
                    let tone = if server.up { Tone::Good } else { Tone::Bad };
                    table.add_row(vec![
                        self.cell(&label, Tone::Plain),
                        self.cell(&frontend.jail, Tone::Plain),
                        carp.clone(),
                        self.cell(&server.server, Tone::Plain),
                        self.cell(&server.status, tone),
                        self.cell(server.sessions, Tone::Plain),
                    ]);
                }
            }
        }
        Self::push(out, &table);
    }

    fn kibana(&self, out: &mut String, estate: &Estate) {
        if estate.kibana.is_empty() {
            return;
        }
        self.heading(out, "Kibana");
        let mut table = self.table(&["instance", "host", "level"]);
        for kibana in &estate.kibana {
            let level = match (&kibana.level, &kibana.error) {
                (Some(level), _) => {
                    let tone = if level == "available" {
                        Tone::Good
                    } else {
                        Tone::Bad
                    };
                    let text = match kibana.summary.as_deref() {
                        Some(summary) if level != "available" && !summary.is_empty() => {
                            format!("{level}: {summary}")
                        }
                        _ => level.clone(),
                    };
                    self.cell(text, tone)
                }
                (None, Some(error)) => self.cell(format!("no answer: {error}"), Tone::Bad),
                (None, None) => self.cell("", Tone::Plain),
            };
            table.add_row(vec![
                self.cell(&kibana.jail, Tone::Plain),
                self.cell(&kibana.host, Tone::Plain),
                level,
            ]);
        }
        Self::push(out, &table);
    }

    fn problems(&self, out: &mut String, estate: &Estate) {
        if estate.problems.is_empty() {
            out.push('\n');
            let _ = writeln!(
                out,
                "{}",
                self.paint(
                    "Healthy: everything runs and matches the inventory.",
                    Tone::Good
                )
            );
            return;
        }
        let count = estate.problems.len();
        self.heading(out, &format!("Problems ({count})"));
        for problem in &estate.problems {
            let _ = writeln!(
                out,
                "{} {}\n    {} {}",
                self.paint("✗", Tone::Bad),
                problem.what,
                self.paint("→", Tone::Plain),
                problem.fix
            );
        }
    }
}
