//! Desired state: from the inventory, every resource `deploy` converges on each
//! host - datasets, jails, rc.conf and loader.conf values, packages, rendered
//! files with owner and mode, and services. Pure: no I/O beyond what the caller
//! passes in (templates and secrets).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::inventory::{Name, Role};

/// Whether the Elasticsearch cluster has formed yet. `cluster.initial_master_nodes`
/// is written only while it has not (see `docs/bootstrap.md`).
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
    pub hosts: Vec<HostState>,
}

/// Everything one physical host should have.
#[derive(Debug, Clone)]
pub struct HostState {
    pub host: Name,
    /// Parent dataset first, then one per jail.
    pub datasets: Vec<Dataset>,
    /// Keys haelk owns in the host's `/etc/rc.conf` (set with `sysrc`).
    pub rc_conf: BTreeMap<String, String>,
    /// Keys haelk owns in `/boot/loader.conf` (set with `sysrc -f`).
    pub loader_conf: BTreeMap<String, String>,
    /// Host-side files, e.g. `/etc/jail.conf.d/NAME.conf`.
    pub files: Vec<ManagedFile>,
    pub jails: Vec<JailState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
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
    pub content: String,
    /// What a change to this file asks of the services that read it.
    pub on_change: OnChange,
}

/// What to do to a jail's service when a file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Nothing: the file is read only at bootstrap, or by the host itself.
    Nothing,
    /// Reload the service (haproxy).
    Reload,
    /// Restart the service (rolling, health-gated for Elasticsearch).
    Restart,
}
