//! The plan: desired state minus facts, per host. Pure.
//!
//! A [`HostPlan`] has two parts, matching the plays: [`HostPlan::prepare`], the
//! host play's steps (datasets, host rc.conf and loader.conf, jail roots, jails that
//! are not running, packages), and one [`JailPlan`] per jail for the service plays
//! (files to write and what the jail's service then needs). A running jail is
//! never touched by the host play: even a changed jail.conf waits for the service
//! play, where restarts are rolling and health-gated.
//!
//! Every step is a script fragment; [`HostPlan::prepare_script`] and
//! [`JailPlan::script`] batch them so each is one round trip.

mod script;

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::desired::{HostState, JailState, ManagedFile, OnChange};
use crate::facts::{FileFacts, HostFacts, JailFacts};
use crate::freebsd;
use crate::inventory::Name;

pub(crate) use script::running_jails;

/// Everything deploy would do on one host.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// The host play, in order.
    pub prepare: Vec<Step>,
    /// The service plays' work, one entry per jail in inventory order (also for
    /// jails with nothing to do, so every play can report on them).
    pub jails: Vec<JailPlan>,
    /// Resources (datasets, rc keys, files, jails, packages, services) that were
    /// already as desired.
    pub unchanged: usize,
}

/// One change, shown by `--dry-run` and run by deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A command line, shown and run as it is.
    Command(String),
    /// A file written in full, atomically.
    Write(FileWrite),
}

/// A file to write, with what is there now (for the diff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    pub file: ManagedFile,
    /// The content on the host; `None` when the file is missing.
    pub old: Option<String>,
    /// Where the owner and group names are looked up: the jail root for a file in
    /// a jail, `/` for a host file.
    pub passwd_root: PathBuf,
    /// Why it is written: "missing", "content", "owner", "mode" (comma-joined).
    pub reasons: Vec<&'static str>,
}

/// What a jail's service needs after its files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServiceAction {
    None,
    /// It is not running: start it.
    Start,
    Reload,
    Restart,
    /// jail.conf(5) or the jail's rc.conf changed: restart the whole jail.
    RestartJail,
}

impl ServiceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Start => "start",
            Self::Reload => "reload",
            Self::Restart => "restart",
            Self::RestartJail => "restart jail",
        }
    }

    /// The marker word recorded while the action is owed (a start needs none:
    /// the facts see a stopped service anyway).
    fn pending(self) -> OnChange {
        match self {
            Self::None | Self::Start => OnChange::Nothing,
            Self::Reload => OnChange::Reload,
            Self::Restart => OnChange::Restart,
            Self::RestartJail => OnChange::RestartJail,
        }
    }
}

/// The service play's work for one jail.
#[derive(Debug, Clone)]
pub struct JailPlan {
    pub name: Name,
    pub root: PathBuf,
    /// The rc.d service the jail runs.
    pub service: String,
    pub writes: Vec<FileWrite>,
    pub action: ServiceAction,
    /// Whether the service ran when the facts were gathered (an Elasticsearch
    /// restart is rolling only for a node that was serving).
    pub was_running: bool,
}

impl JailPlan {
    /// Whether the service play has anything to do here.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.action == ServiceAction::None
    }

    /// Changes: each file written, and the action (its status check is not one).
    pub fn change_count(&self) -> usize {
        self.writes.len() + usize::from(self.action != ServiceAction::None)
    }

    /// The changes, as `--dry-run` lists them.
    pub fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = self.writes.iter().cloned().map(Step::Write).collect();
        steps.extend(
            script::apply_commands(self)
                .into_iter()
                .chain(script::action_commands(self))
                .map(Step::Command),
        );
        steps
    }

    /// One script: record the owed action, write the files, act, verify the service
    /// runs, clear the record. `set -e`: the first failing command stops it, and
    /// the record stays for the next deploy.
    pub fn script(&self) -> String {
        script::jail_script(self)
    }
}

impl HostPlan {
    /// Whether deploy would change anything on the host.
    pub fn is_empty(&self) -> bool {
        self.prepare.is_empty() && self.jails.iter().all(JailPlan::is_empty)
    }

    /// How many changes: prepare steps plus every jail's steps.
    pub fn change_count(&self) -> usize {
        self.prepare.len() + self.jails.iter().map(JailPlan::change_count).sum::<usize>()
    }

    /// The host play as one script (`set -e`), ending with the running jails'
    /// names so the host_ready gate needs no extra round trip.
    pub fn prepare_script(&self) -> String {
        script::prepare_script(&self.prepare)
    }

    pub fn jail(&self, name: &str) -> Option<&JailPlan> {
        self.jails.iter().find(|j| j.name.as_str() == name)
    }
}

impl Step {
    /// The script fragment that makes the change.
    pub fn script(&self) -> String {
        match self {
            Self::Command(command) => format!("{command}\n"),
            Self::Write(write) => freebsd::write_file_atomically(&write.file, &write.passwd_root),
        }
    }
}

impl FileWrite {
    /// `write PATH (owner:group 0640; content)`, the dry-run headline.
    pub fn headline(&self) -> String {
        format!(
            "write {} ({}:{} {:04o}; {})",
            self.file.path.display(),
            self.file.owner,
            self.file.group,
            self.file.mode,
            self.reasons.join(", ")
        )
    }

    /// What rewriting the file asks of the service.
    pub fn on_change(&self) -> OnChange {
        match &self.old {
            None => self.file.on_change,
            Some(old) => self.file.on_change_from(old),
        }
    }
}

/// A host the plan refuses to touch: nothing on it would work, so nothing on
/// it changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The jails' bridge does not exist and haelk is not told how to make it.
    #[error(
        "host {host} has no interface {bridge} (jails.bridge), which its jails' epairs join, \
         and no jails.uplink to create it from: set jails.uplink (in defaults.jails or the \
         host's jail_defaults) to the host's interface on the jails' network, e.g. em0, \
         or create {bridge} in the host's rc.conf"
    )]
    NoBridge { host: String, bridge: String },
}

/// The plan for one host: `desired` minus `facts`. Refused, before any step,
/// when the host lacks what no step can make ([`PlanError`]).
pub fn plan_host(desired: &HostState, facts: &HostFacts) -> Result<HostPlan, PlanError> {
    let desired = &desired.with_copies(&facts.files, |file| file.content.as_str());
    let mut planner = Planner {
        facts,
        steps: Vec::new(),
        unchanged: 0,
    };
    planner.datasets(desired);
    planner.loader_conf(desired);
    planner.rc_conf(desired);
    planner.bridge(desired)?;
    let jails = desired
        .jails
        .iter()
        .map(|jail| planner.jail(desired, jail))
        .collect();
    Ok(HostPlan {
        prepare: planner.steps,
        jails,
        unchanged: planner.unchanged,
    })
}

struct Planner<'a> {
    facts: &'a HostFacts,
    steps: Vec<Step>,
    unchanged: usize,
}

impl Planner<'_> {
    fn command(&mut self, command: String) {
        self.steps.push(Step::Command(command));
    }

    fn datasets(&mut self, desired: &HostState) {
        for dataset in &desired.datasets {
            let Some(existing) = self.facts.datasets.get(&dataset.name) else {
                self.command(freebsd::zfs_create(dataset));
                continue;
            };
            let mut in_place = true;
            for (key, value) in &dataset.properties {
                let current = match key.as_str() {
                    "mountpoint" => Some(&existing.mountpoint),
                    "compression" => Some(&existing.compression),
                    _ => None,
                };
                if current != Some(value) {
                    in_place = false;
                    self.command(freebsd::zfs_set(&dataset.name, key, value));
                }
            }
            self.unchanged += usize::from(in_place);
        }
    }

    fn loader_conf(&mut self, desired: &HostState) {
        for (key, value) in &desired.loader_conf {
            if self.facts.loader_conf.get(key).and_then(Option::as_ref) == Some(value) {
                self.unchanged += 1;
            } else {
                self.command(freebsd::sysrc_set(
                    Some(std::path::Path::new(freebsd::LOADER_CONF)),
                    key,
                    value,
                ));
            }
        }
        // loader.conf applies at the next boot; the jails need CARP now.
        if desired.loader_conf.get("carp_load").map(String::as_str) == Some("YES")
            && !self.facts.carp_loaded
        {
            self.command(freebsd::kldload("carp"));
        }
    }

    fn rc_conf(&mut self, desired: &HostState) {
        for (key, value) in &desired.rc_conf {
            if self.facts.rc_conf.get(key).and_then(Option::as_ref) == Some(value) {
                self.unchanged += 1;
            } else {
                self.command(freebsd::sysrc_set(None, key, value));
            }
        }
    }

    /// The rc.conf words (`cloned_interfaces+=bridge0`) that are missing.
    fn rc_conf_words(&mut self, desired: &HostState) {
        for (key, words) in &desired.rc_conf_words {
            let current = self.facts.rc_conf.get(key).and_then(Option::as_ref);
            for word in words {
                if current.is_some_and(|value| value.split_whitespace().any(|w| w == word)) {
                    self.unchanged += 1;
                } else {
                    self.command(freebsd::sysrc_append(key, word));
                }
            }
        }
    }

    /// The jails' bridge now: created from its uplink when absent, refused when
    /// absent with no uplink. Its rc.conf keys make it at boot.
    fn bridge(&mut self, desired: &HostState) -> Result<(), PlanError> {
        self.rc_conf_words(desired);
        let Some(bridge) = &desired.bridge else {
            return Ok(());
        };
        if self.facts.interfaces.contains(&bridge.name) {
            self.unchanged += 1;
            return Ok(());
        }
        let Some(uplink) = &bridge.uplink else {
            return Err(PlanError::NoBridge {
                host: desired.host.to_string(),
                bridge: bridge.name.clone(),
            });
        };
        self.command(freebsd::ifconfig_create(&bridge.name));
        self.command(freebsd::bridge_add_member(&bridge.name, uplink));
        Ok(())
    }

    /// The host play's part for `jail` (only when it is not running) and its
    /// service play.
    fn jail(&mut self, desired: &HostState, jail: &JailState) -> JailPlan {
        let facts = self.facts.jails.get(jail.name.as_str());
        let absent = JailFacts::default();
        let facts = facts.unwrap_or(&absent);
        let jail_conf = desired
            .files
            .iter()
            .find(|f| f.path == freebsd::jail_conf_path(jail.name.as_str()));
        let rc_conf = jail.root.join("etc/rc.conf");
        let sysctl_conf = jail.root.join("etc/sysctl.conf");
        let resolv_conf = jail.root.join("etc/resolv.conf");
        // Files the jail needs before it starts (its jail.conf, rc.conf and
        // sysctl.conf, which its /etc/rc reads) or before `pkg -j` runs in it
        // (its resolv.conf).
        let is_boot_file = |file: &&ManagedFile| {
            file.path == rc_conf || file.path == sysctl_conf || file.path == resolv_conf
        };
        let boot_files = jail_conf
            .into_iter()
            .chain(jail.files.iter().filter(is_boot_file));
        let service_files = jail.files.iter().filter(|file| !is_boot_file(file));
        let installed = facts.populated
            && jail
                .packages
                .iter()
                .all(|package| facts.packages.contains_key(package.as_str()));

        let mut writes = Vec::new();
        let mut action = ServiceAction::None;
        if facts.running {
            self.unchanged += 1;
            // Everything waits for the service play, where restarts are gated,
            // except the resolver: no service needs restarting for it, and a
            // `pkg -j` of this host play needs it.
            for file in boot_files.chain(service_files) {
                if let Some(write) = self.file_write(file, passwd_root(jail, file)) {
                    if write.file.path == resolv_conf {
                        self.steps.push(Step::Write(write));
                        continue;
                    }
                    action = action.max(service_action(write.on_change()));
                    writes.push(write);
                }
            }
            action = action.max(service_action(facts.pending));
        } else {
            if !facts.populated {
                self.command(freebsd::extract_base(&desired.base, &jail.root));
            }
            for file in boot_files {
                if let Some(write) = self.file_write(file, passwd_root(jail, file)) {
                    self.steps.push(Step::Write(write));
                }
            }
            // Starting the jail runs its /etc/rc, which starts every enabled
            // service that is installed, with the files in the jail at that
            // moment: with the packages in place, every file goes in first.
            // Without them the files wait for `pkg -j` (the jail must run).
            let mut deferred = Vec::new();
            for file in service_files {
                if let Some(write) = self.file_write(file, passwd_root(jail, file)) {
                    if installed {
                        self.steps.push(Step::Write(write));
                    } else {
                        deferred.push(write);
                    }
                }
            }
            self.command(freebsd::jail_start_checked(
                &jail.root,
                &desired.release,
                jail.name.as_str(),
            ));
            if facts.pending != OnChange::Nothing {
                // A fresh start owes nothing more.
                self.command(freebsd::clear_pending(&jail.root));
            }
            writes = deferred;
        }
        self.packages(jail, facts);

        let services_running = !jail.services.is_empty()
            && jail
                .services
                .iter()
                .all(|s| facts.services.get(s).copied().unwrap_or(false));
        if facts.running && services_running {
            self.unchanged += jail.services.len();
        } else if action != ServiceAction::RestartJail {
            // Not running (or the jail is about to start, and its /etc/rc may
            // start it): start it unless it runs, whatever else was asked; the
            // new files are read at start.
            action = ServiceAction::Start;
        }
        JailPlan {
            name: jail.name.clone(),
            root: jail.root.clone(),
            service: jail.services.first().cloned().unwrap_or_default(),
            writes,
            action,
            was_running: facts.running && services_running,
        }
    }

    fn packages(&mut self, jail: &JailState, facts: &JailFacts) {
        let missing: Vec<String> = jail
            .packages
            .iter()
            .filter(|p| !facts.packages.contains_key(p.as_str()))
            .cloned()
            .collect();
        self.unchanged += jail.packages.len() - missing.len();
        if !missing.is_empty() {
            self.command(freebsd::pkg_install(jail.name.as_str(), &missing));
        }
    }

    /// The write `file` needs, or `None` (counted unchanged) when it is in place.
    fn file_write(&mut self, file: &ManagedFile, passwd_root: PathBuf) -> Option<FileWrite> {
        let reasons = match self.facts.files.get(&file.path) {
            None => vec!["missing"],
            Some(current) => differences(file, current),
        };
        if reasons.is_empty() {
            self.unchanged += 1;
            return None;
        }
        Some(FileWrite {
            file: file.clone(),
            old: self.facts.files.get(&file.path).map(|f| f.content.clone()),
            passwd_root,
            reasons,
        })
    }
}

/// How `current` differs from `file`. An owner the user database does not know
/// (yet) is not a difference: the write would not fix it either.
fn differences(file: &ManagedFile, current: &FileFacts) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if current.content != file.content {
        reasons.push("content");
    }
    let owner_differs = current.wanted_uid.is_some_and(|uid| uid != current.uid)
        || current.wanted_gid.is_some_and(|gid| gid != current.gid);
    if owner_differs {
        reasons.push("owner");
    }
    if current.mode != file.mode {
        reasons.push("mode");
    }
    reasons
}

fn service_action(change: OnChange) -> ServiceAction {
    match change {
        OnChange::Nothing => ServiceAction::None,
        OnChange::Reload => ServiceAction::Reload,
        OnChange::Restart => ServiceAction::Restart,
        OnChange::RestartJail => ServiceAction::RestartJail,
    }
}

/// A jail's files resolve owners in the jail's user database, host files in the host's.
fn passwd_root(jail: &JailState, file: &ManagedFile) -> PathBuf {
    if file.path.starts_with(&jail.root) {
        jail.root.clone()
    } else {
        PathBuf::from("/")
    }
}

/// The dry-run listing of a host's plan: every command and every file diff, with
/// `mask` applied to everything shown.
pub fn describe(plan: &HostPlan, mask: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let show = |step: &Step, out: &mut String| match step {
        Step::Command(command) => {
            let _ = writeln!(out, "  {}", mask(command));
        }
        Step::Write(write) => {
            let _ = writeln!(out, "  {}", write.headline());
            let old = mask(write.old.as_deref().unwrap_or(""));
            let new = mask(&write.file.content);
            let path = write.file.path.display().to_string();
            let diff = similar::TextDiff::from_lines(&old, &new);
            let (a, b) = match write.old {
                Some(_) => (format!("a{path}"), format!("b{path}")),
                None => ("/dev/null".to_owned(), format!("b{path}")),
            };
            for line in diff
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string()
                .lines()
            {
                let _ = writeln!(out, "    {line}");
            }
        }
    };
    if !plan.prepare.is_empty() {
        let _ = writeln!(out, " host play:");
        for step in &plan.prepare {
            show(step, &mut out);
        }
    }
    for jail in plan.jails.iter().filter(|j| !j.is_empty()) {
        let _ = writeln!(out, " {} ({}):", jail.name, jail.action.as_str());
        for step in jail.steps() {
            show(&step, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests;
