//! haelk: deploy and operate a highly available Elasticsearch + Kibana + HAProxy
//! stack inside FreeBSD jails on ZFS, agentless, over SSH.
//!
//! The pipeline is pure until the last step:
//! [`inventory`] (YAML -> validated model) -> [`desired`] (every resource a host
//! should have) -> plan -> execution over a `Remote`. [`render`] and [`lint`]
//! stop before any I/O beyond reading the inventory, templates and secrets.

pub mod cli;
pub mod commands;
pub mod deploy;
pub mod desired;
pub mod elasticsearch;
pub mod exit;
pub mod facts;
pub mod freebsd;
pub mod haproxy;
pub mod inventory;
pub mod kibana;
pub mod lint;
pub mod migrate;
pub mod plan;
pub mod playbook;
pub mod progress;
pub mod remote;
pub mod render;
pub mod secret;
pub mod shell;
pub mod status;
pub mod templates;
pub mod units;
pub mod vip;
pub mod yaml;

#[cfg(test)]
pub(crate) mod testing;
