//! Desired state: from the inventory, every resource `deploy` converges on each
//! host - datasets, jails, rc.conf and loader.conf values, packages, rendered
//! files with owner and mode, and services. Pure: no I/O beyond what the caller
//! passes in (templates and secrets).

mod build;
pub mod carp;
pub mod epair;
pub mod inputs;

pub use build::{build, client_facing_nodes, jail_start_order};

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::inventory::{Name, Role};

/// Whether the Elasticsearch cluster has formed yet. `cluster.initial_master_nodes`
/// is written only while it has not (design.md, "Bootstrap").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterPhase {
    /// No node has ever formed the cluster: bootstrap it.
    Bootstrap,
    /// The cluster exists; never write `cluster.initial_master_nodes`.
    #[default]
    Formed,
}

/// Everything every host should have.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    /// Hosts in inventory order.
    pub hosts: Vec<HostState>,
}

/// Everything one physical host should have.
#[derive(Debug, Clone)]
pub struct HostState {
    pub host: Name,
    /// `base.txz` on the host, extracted into new jail roots.
    pub base: PathBuf,
    /// The FreeBSD release of the jails' userland (`jails.release`), checked in
    /// a jail's root before it is started.
    pub release: String,
    /// Parent dataset first, then one per jail.
    pub datasets: Vec<Dataset>,
    /// Keys haelk owns in the host's `/etc/rc.conf` (set with `sysrc`).
    pub rc_conf: BTreeMap<String, String>,
    /// Host rc.conf lists haelk adds a word to and leaves the rest of to the
    /// operator (`cloned_interfaces`, with `sysrc KEY+=WORD`): key -> words.
    pub rc_conf_words: BTreeMap<String, Vec<String>>,
    /// The bridge the jails' epairs join; `None` for a host without jails.
    pub bridge: Option<HostBridge>,
    /// Keys haelk owns in `/boot/loader.conf` (set with `sysrc -f`).
    pub loader_conf: BTreeMap<String, String>,
    /// Host-side files, e.g. `/etc/jail.conf.d/NAME.conf`.
    pub files: Vec<ManagedFile>,
    /// Jails in inventory order (start order is `rc_conf["jail_list"]`).
    pub jails: Vec<JailState>,
}

/// The host's bridge: created (persistently in rc.conf and live) from its
/// uplink, or, without one, expected to exist already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBridge {
    /// `bridge0`: `jails.bridge`.
    pub name: String,
    /// `em0`: `jails.uplink`, the host's interface on the jails' network.
    pub uplink: Option<String>,
}

impl HostState {
    /// The state with every copied file's content taken from its source in
    /// `files` (the facts' files, by host path); a copy whose source is missing
    /// on the host is dropped: there is nothing to copy.
    pub fn with_copies<T>(
        &self,
        files: &BTreeMap<PathBuf, T>,
        content: impl Fn(&T) -> &str,
    ) -> HostState {
        let mut state = self.clone();
        for jail in &mut state.jails {
            jail.files.retain_mut(|file| match &file.copy_of {
                None => true,
                Some(source) => match files.get(source) {
                    Some(found) => {
                        file.content = content(found).to_owned();
                        true
                    }
                    None => false,
                },
            });
        }
        state
    }

    /// The host files copied into jails ([`ManagedFile::copy_of`]), each once.
    pub fn copy_sources(&self) -> std::collections::BTreeSet<&std::path::Path> {
        self.all_files()
            .filter_map(|file| file.copy_of.as_deref())
            .collect()
    }

    /// Every file of the host: host-side files, then each jail's.
    pub fn all_files(&self) -> impl Iterator<Item = &ManagedFile> {
        self.files
            .iter()
            .chain(self.jails.iter().flat_map(|j| j.files.iter()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    /// Properties set at creation (`zfs create -o`); the others are inherited.
    pub properties: BTreeMap<String, String>,
}

/// One jail on its host.
#[derive(Debug, Clone)]
pub struct JailState {
    pub name: Name,
    pub role: Role,
    /// The jail root on the host (`MOUNTPOINT/NAME`), the mountpoint of `dataset`.
    pub root: PathBuf,
    pub dataset: String,
    /// `epairN`: `epairNa` stays on the host bridge, `epairNb` moves into the jail.
    pub epair: u16,
    pub packages: Vec<String>,
    /// Files inside the jail; paths are absolute *on the host* (under `root`).
    pub files: Vec<ManagedFile>,
    /// rc.d services started inside the jail.
    pub services: Vec<String>,
}

/// A file haelk writes in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFile {
    /// Absolute path on the host.
    pub path: PathBuf,
    pub owner: String,
    pub group: String,
    pub mode: u32,
    /// The real content (may hold secrets: show it only through `Secrets::mask`).
    /// Empty for a copy ([`copy_of`](Self::copy_of)) until [`HostState::with_copies`].
    pub content: String,
    /// A file on the host whose content this one copies (the jail's
    /// `/etc/resolv.conf` from the host's); the facts read it, so the plan is pure.
    pub copy_of: Option<PathBuf>,
    /// What a change to this file asks of the services that read it.
    pub on_change: OnChange,
    /// Top-level keys the service reads only at its very first start
    /// (`cluster.initial_master_nodes`): a change confined to them needs nothing.
    pub first_start_only_keys: Vec<String>,
    /// What makes a rewrite of the file live in a running jail, besides (and
    /// before) the service's action; a stopped jail reads it when it starts.
    pub apply: Option<Apply>,
}

/// A command that applies a rewritten file in its running jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// `sysctl -f FILE` in the jail (its VNET's sysctls, such as carp(4)'s).
    Sysctl,
    /// The jail's CARP watch restarted with its script and command line as written
    /// (`freebsd::jail_carp_watch_restart`).
    CarpWatch,
}

impl ManagedFile {
    /// What replacing `old` (the content on the host) with this file's content
    /// asks of the service. Changes confined to comments, blank lines and
    /// [`first_start_only_keys`](Self::first_start_only_keys) ask nothing: the
    /// service would read the same configuration.
    pub fn on_change_from(&self, old: &str) -> OnChange {
        if self.significant_lines(old) == self.significant_lines(&self.content) {
            OnChange::Nothing
        } else {
            self.on_change
        }
    }

    fn significant_lines<'a>(&self, text: &'a str) -> Vec<&'a str> {
        text.lines()
            .map(str::trim_end)
            .filter(|line| {
                let trimmed = line.trim_start();
                !trimmed.is_empty()
                    && !trimmed.starts_with('#')
                    && !self
                        .first_start_only_keys
                        .iter()
                        .any(|key| is_top_level_key(line, key))
            })
            .collect()
    }
}

/// Whether `line` is the YAML line `KEY: ...` (top level, so not indented).
fn is_top_level_key(line: &str, key: &str) -> bool {
    line.strip_prefix(key)
        .is_some_and(|rest| rest.trim_start().starts_with(':'))
}

/// What to do to a jail's service when a file changes. Ordered by strength: a
/// stronger action includes the weaker ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum OnChange {
    /// Nothing: the file is read only at bootstrap, or by the host itself.
    #[default]
    Nothing,
    /// Reload the service (haproxy, after `configtest`).
    Reload,
    /// Restart the service (rolling, health-gated for Elasticsearch).
    Restart,
    /// Restart the jail: jail.conf(5) parameters apply only when it is created.
    RestartJail,
}

/// Where, relative to a jail's root, deploy records the action it still owes the
/// jail's service: written in the same script as the files that asked for it and
/// removed once the action is done, so a deploy cut off between the two (a lost
/// connection, a failed gate) is finished by the next one.
pub const PENDING_MARKER: &str = "var/db/haelk/pending";

impl OnChange {
    /// The word kept in [`PENDING_MARKER`]; `None` for [`OnChange::Nothing`].
    pub fn marker(self) -> Option<&'static str> {
        match self {
            Self::Nothing => None,
            Self::Reload => Some("reload"),
            Self::Restart => Some("restart"),
            Self::RestartJail => Some("restart-jail"),
        }
    }

    /// The action a [`PENDING_MARKER`] word stands for.
    pub fn from_marker(word: &str) -> Option<Self> {
        [Self::Reload, Self::Restart, Self::RestartJail]
            .into_iter()
            .find(|action| action.marker() == Some(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elasticsearch_yml(content: &str) -> ManagedFile {
        ManagedFile {
            path: "/usr/local/jails/es/usr/local/etc/elasticsearch/elasticsearch.yml".into(),
            owner: "root".into(),
            group: "elasticsearch".into(),
            mode: 0o640,
            content: content.into(),
            on_change: OnChange::Restart,
            first_start_only_keys: vec!["cluster.initial_master_nodes".into()],
            copy_of: None,
            apply: None,
        }
    }

    #[test]
    fn dropping_initial_master_nodes_needs_no_restart() {
        let bootstrap = "cluster.name: \"x\"\n# first start only\ncluster.initial_master_nodes: [\"a\",\"b\"]\nnode.name: \"a\"\n";
        let formed = elasticsearch_yml("cluster.name: \"x\"\nnode.name: \"a\"\n");
        assert_eq!(formed.on_change_from(bootstrap), OnChange::Nothing);
        assert_eq!(formed.on_change_from(&formed.content), OnChange::Nothing);
    }

    #[test]
    fn any_other_change_asks_for_the_files_action() {
        let formed = elasticsearch_yml("cluster.name: \"x\"\nnode.name: \"a\"\n");
        let old = "cluster.name: \"x\"\nnode.name: \"b\"\n";
        assert_eq!(formed.on_change_from(old), OnChange::Restart);
        // A key that merely starts with the first-start-only key is a real setting.
        let old = "cluster.name: \"x\"\ncluster.initial_master_nodes_x: 1\nnode.name: \"a\"\n";
        assert_eq!(formed.on_change_from(old), OnChange::Restart);
    }
}
