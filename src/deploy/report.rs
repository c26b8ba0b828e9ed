//! The end of a deploy: per-host counts, the verification line, failures, time.

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
    /// Why the host failed.
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
        for host in &self.hosts {
            if let Some(error) = &host.error {
                writeln!(f, "failed: {}: {error}", host.host)?;
            }
        }
        for failure in &self.failures {
            writeln!(f, "failed: {failure}")?;
        }
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
