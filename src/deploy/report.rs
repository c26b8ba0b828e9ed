//! The end of a deploy: per-host counts, the verification line and time (the
//! report, for standard output), and the failures, each naming its host once
//! (for standard error, see [`Summary::errors`]).

use std::fmt;
use std::time::Duration;

use comfy_table::{Table, presets::NOTHING};

/// What a deploy did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub hosts: Vec<HostSummary>,
    pub dry_run: bool,
    /// The gates passed, in order: `ssh ok`, `jails 9/9 running`, ...
    pub verified: Vec<String>,
    /// Failures not tied to one host (a gate that did not pass).
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct HostSummary {
    pub host: String,
    /// Resources already as desired.
    pub unchanged: usize,
    /// Changes made (pending, in a dry run).
    pub changed: usize,
    /// Why the host failed, without its name.
    pub error: Option<String>,
    pub round_trips: u64,
}

impl Summary {
    pub fn failed(&self) -> bool {
        !self.failures.is_empty() || self.hosts.iter().any(|h| h.error.is_some())
    }

    /// Changes made, or pending in a dry run.
    pub fn changes(&self) -> usize {
        self.hosts.iter().map(|h| h.changed).sum()
    }

    pub fn round_trips(&self) -> u64 {
        self.hosts.iter().map(|h| h.round_trips).sum()
    }

    /// Every failure, one line each: `HOST: why` for a host's, then those of
    /// no single host (a gate). Not part of the [`Display`](fmt::Display)
    /// report: errors go to standard error.
    pub fn errors(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter_map(|h| h.error.as_ref().map(|e| format!("{}: {e}", h.host)))
            .chain(self.failures.iter().cloned())
            .collect()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.verified.is_empty() && !self.dry_run {
            writeln!(f, "verified: {}", self.verified.join(" · "))?;
        }
        let mut table = Table::new();
        table.load_style(NOTHING);
        let changed = if self.dry_run { "pending" } else { "changed" };
        table.set_header(["host", "ok", changed, "failed", "round trips"]);
        for host in &self.hosts {
            table.add_row([
                host.host.clone(),
                host.unchanged.to_string(),
                host.changed.to_string(),
                usize::from(host.error.is_some()).to_string(),
                host.round_trips.to_string(),
            ]);
        }
        writeln!(f, "{table}")?;
        let what = match (self.dry_run, self.changes()) {
            (true, 0) => "nothing to do".to_owned(),
            (true, n) => format!("{n} changes pending"),
            (false, 0) => "no changes".to_owned(),
            (false, n) => format!("{n} changes"),
        };
        let verb = if self.dry_run { "dry run" } else { "deploy" };
        let outcome = if self.failed() { "FAILED" } else { "ok" };
        write!(
            f,
            "{verb} {outcome}: {what}, {} round trips, {:.1} s",
            self.round_trips(),
            self.elapsed.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_host_is_named_once_and_its_error_is_not_in_the_report() {
        let error = crate::remote::Output {
            code: Some(1),
            stdout: String::new(),
            stderr: "jail: lab1-kibana: already exists".into(),
        }
        .check("lab1", "the host play")
        .unwrap_err();
        let summary = Summary {
            hosts: vec![HostSummary {
                host: "lab1".into(),
                unchanged: 3,
                changed: 0,
                error: Some(error.reason()),
                round_trips: 2,
            }],
            dry_run: false,
            verified: vec!["ssh ok".into()],
            failures: vec![
                "play kibana: gate kibana_available failed: lab1-kibana is not available".into(),
            ],
            elapsed: Duration::from_millis(1500),
        };
        assert_eq!(
            summary.errors(),
            [
                "lab1: the host play failed (exit status 1): jail: lab1-kibana: already exists",
                "play kibana: gate kibana_available failed: lab1-kibana is not available",
            ]
        );
        let report = summary.to_string();
        assert!(!report.contains("already exists"), "{report}");
        assert!(!report.contains("not available"), "{report}");
        assert!(
            report.ends_with("deploy FAILED: no changes, 2 round trips, 1.5 s"),
            "{report}"
        );
    }
}
