//! Loading the YAML inventory: parse (unknown fields and duplicate keys are
//! errors), validate every rule of the contract, merge `defaults` into hosts.
//!
//! Every error names the file, line and column of the offending value. The
//! schema and its rules are described in full in `docs/inventory.md`.

pub mod edit;
mod model;
mod raw;
mod validate;

pub use model::*;

use std::path::Path;

use crate::yaml::{self, FileError};

/// An inventory that cannot be used, with the place in the file to look at;
/// several problems are listed one a line (see [`FileError`]).
pub type InventoryError = FileError;

/// Reads, parses and validates the inventory at `path`.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = yaml::read(path, "the inventory")?;
    from_str(&text, path, &validate::FileSystem)
}

/// Parses and validates inventory `text` as if read from `path` (relative paths
/// in it are resolved against the directory of `path`).
fn from_str(
    text: &str,
    path: &Path,
    probe: &dyn validate::PathProbe,
) -> Result<Inventory, InventoryError> {
    let raw: raw::RawInventory = yaml::parse(text, path)?;
    validate::validate(&raw, path, probe).map_err(|problems| {
        FileError::from_problems(path, problems).unwrap_or_else(|| FileError {
            // validate() only fails with at least one problem; say so if it ever does not.
            path: path.to_owned(),
            location: Location::default(),
            message: "the inventory is invalid".to_owned(),
        })
    })
}

#[cfg(test)]
mod tests;
