//! `haelk lint`: resilience and sanity rules over a validated inventory.
//!
//! The inventory loader guarantees that an inventory is *well-formed* (names,
//! references, unique addresses); lint judges whether the design is *highly
//! available and sane*: enough master-eligible nodes spread so that losing any one
//! physical host keeps the quorum, data and Kibana on two hosts or more, every VIP
//! with failover, heaps the JVM can live with, addresses that can be routed.
//!
//! Lint is pure: it reads only the [`Inventory`]. Every rule lives in [`rules`],
//! has a stable code (`HA001`...) and a slug name, and is documented in
//! `docs/lint.md`. A [`Report`] prints compiler-style text or one JSON document.

mod report;
pub mod rules;
#[cfg(test)]
pub(crate) mod testkit;

pub use report::Report;
pub use rules::RULES;

use crate::inventory::Inventory;

/// Runs every rule over `inventory`, in the order of [`RULES`].
pub fn lint(inventory: &Inventory) -> Report {
    let diagnostics = RULES
        .iter()
        .flat_map(|rule| (rule.check)(rule, inventory))
        .collect();
    Report::new(inventory.source.clone(), diagnostics)
}
