//! `haelk status`: the whole estate at a glance, and an exit status that says
//! whether it is healthy and as the inventory says.
//!
//! [`gather`] does the I/O (facts, haproxy stats and CARP states, Elasticsearch and
//! Kibana APIs, all hosts at once); [`model`] judges what was seen against the
//! inventory into an [`Estate`] (pure; [`crate::vip`] judges who holds each VIP); [`render`] draws it as tables (pure). `--format json`
//! prints the [`Estate`] itself (docs/status.md documents its shape).

pub mod gather;
pub mod model;
pub mod render;

#[cfg(test)]
mod tests;

pub use gather::{Connections, gather};
pub use model::Estate;
pub use render::{Style, render};
