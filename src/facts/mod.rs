//! Facts: what a host has now, gathered in one round trip per host.
//!
//! [`script`] builds one shell script from a host's desired state that prints
//! everything deploy and status need to plan it (datasets, jails, packages, rc
//! values, every managed file with owner and mode, service status, pending
//! actions); [`parse`] turns its output into [`HostFacts`]. Both are pure;
//! [`gather`] runs the script through a [`Remote`].
//!
//! The output is one record per line, a tag then tab-separated fields (the last
//! field keeps any tab of its own); a probe that finds nothing prints nothing.
//! Each command runs once per host, or once per jail, never once per file or
//! key: on FreeBSD every process costs little, but a host runs dozens of them.
//!
//! ```text
//! haelk-facts 3                            the format and its version
//! version  14.3-RELEASE                    freebsd-version
//! interfaces  em0 lo0 bridge0              ifconfig -l: the host's interfaces
//! pool     NAME SIZE ALLOC FREE            zpool list -H
//! dataset  NAME MOUNTPOINT COMPRESSION UUID   zfs list -H; UUID "-" is unset
//! carp     loaded|absent                   kldstat -q -m carp
//! rc       KEY: VALUE                      one `sysrc KEY...` (no record: unset)
//! loader   KEY: VALUE                      one `sysrc -f /boot/loader.conf KEY...`
//! jail     NAME running|stopped populated|empty
//! package  JAIL NAME VERSION               pkg -r ROOT query (populated jails)
//! service  JAIL SERVICE running|stopped    service -j (running jails)
//! pending  JAIL WORD                       first line of ROOT/var/db/haelk/pending
//! user     ROOT NAME UID                   one awk over ROOT/etc/passwd and group
//! group    ROOT NAME GID                   per jail: the managed files' owners
//! file     PATH LS-LINE                    `ls -lnd PATH`, then the content as
//!  68 65 6c 6c 6f 0a                       `od -An -tx1 -v` lines, closed by
//! end-file                                 this line
//! end                                      the last line: output was not cut short
//! ```

mod parse;
mod script;
#[cfg(test)]
mod tests;

pub use parse::parse;
pub use script::script;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::desired::{HostState, OnChange};
use crate::remote::{Remote, RemoteError};

/// Everything known about one host after the facts round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `freebsd-version` of the host.
    pub freebsd_version: String,
    /// The pool holding the host's jail dataset, as `zpool list` prints it.
    pub pool: Option<PoolFacts>,
    /// Every desired dataset that exists, by name.
    pub datasets: BTreeMap<String, DatasetFacts>,
    /// Whether the `carp` kernel module is loaded now.
    pub carp_loaded: bool,
    /// The host's network interfaces (`ifconfig -l`).
    pub interfaces: BTreeSet<String>,
    /// Each desired host `/etc/rc.conf` key (of `rc_conf` and `rc_conf_words`)
    /// and its value (`None`: unset).
    pub rc_conf: BTreeMap<String, Option<String>>,
    /// Each desired `/boot/loader.conf` key and its value (`None`: unset).
    pub loader_conf: BTreeMap<String, Option<String>>,
    /// Every desired file (host-side and inside jails) that exists, by host path.
    pub files: BTreeMap<PathBuf, FileFacts>,
    /// Every desired jail, by name.
    pub jails: BTreeMap<String, JailFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFacts {
    pub name: String,
    /// Human-readable sizes as `zpool list -H -o size,alloc,free` prints them.
    pub size: String,
    pub allocated: String,
    pub free: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFacts {
    pub mountpoint: String,
    pub compression: String,
    /// The `haelk:cluster-uuid` user property (design.md, "Bootstrap").
    pub cluster_uuid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub content: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The ids the desired owner and group have in the file's user database
    /// (the jail's `/etc/passwd` and `/etc/group`); `None` when unknown there.
    pub wanted_uid: Option<u32>,
    pub wanted_gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JailFacts {
    pub running: bool,
    /// The root holds a userland (`ROOT/bin` exists).
    pub populated: bool,
    /// Installed packages: name -> version.
    pub packages: BTreeMap<String, String>,
    /// Each desired service and whether it runs (all `false` when the jail is stopped).
    pub services: BTreeMap<String, bool>,
    /// The action a previous deploy recorded and did not finish
    /// ([`crate::desired::PENDING_MARKER`]); `Nothing` when none.
    pub pending: OnChange,
}

/// Runs the facts script on `remote` and parses its output.
pub async fn gather(remote: &impl Remote, host: &HostState) -> Result<HostFacts, GatherError> {
    let output = remote
        .run(&script(host))
        .await?
        .check(remote.host(), "gathering facts")?;
    Ok(parse(host, &output.stdout)?)
}

/// The facts output could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the facts output: {0}")]
pub struct FactsError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Parse(#[from] FactsError),
}

impl GatherError {
    /// What went wrong, without the host's name (for a line that names it).
    pub fn reason(&self) -> String {
        match self {
            Self::Remote(err) => err.reason(),
            Self::Parse(err) => err.to_string(),
        }
    }
}
