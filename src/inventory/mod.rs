//! Loading the YAML inventory: parse (unknown fields and duplicate keys are
//! errors), validate every rule of the contract, merge `defaults` into hosts.
//!
//! Every error names the file, line and column of the offending value. The
//! schema and its rules are described in full in `docs/inventory.md`.

mod model;
mod raw;
mod validate;

pub use model::*;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, MessageFormatter};

use validate::Diagnostic;

/// An inventory that cannot be used, with the place in the file to look at.
///
/// When validation finds several problems, `location` and the first line of
/// `message` are the first of them; each further one follows on its own line,
/// as `path:line:column: message`, the way compilers list errors.
#[derive(Debug, thiserror::Error)]
pub struct InventoryError {
    pub path: PathBuf,
    /// Line 0 means the problem is the file as a whole (it cannot be read).
    pub location: Location,
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.location {
            Location { line: 0, .. } => write!(f, "{path}: {}", self.message),
            Location { line, column } => write!(f, "{path}:{line}:{column}: {}", self.message),
        }
    }
}

/// Reads, parses and validates the inventory at `path`.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| InventoryError {
        path: path.to_owned(),
        location: Location::default(),
        message: format!("cannot read the inventory: {e}"),
    })?;
    from_str(&text, path, &validate::FileSystem)
}

/// Parses and validates inventory `text` as if read from `path` (relative paths
/// in it are resolved against the directory of `path`).
fn from_str(
    text: &str,
    path: &Path,
    probe: &dyn validate::PathProbe,
) -> Result<Inventory, InventoryError> {
    let options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::Error,
        // A `<<` merge lets a later key silently override a merged one: exactly
        // the silent merge of two jails the contract forbids.
        merge_keys: MergeKeyPolicy::Error,
    };
    let raw: raw::RawInventory =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| parse_error(path, &e))?;
    validate::validate(&raw, path, probe).map_err(|diagnostics| collect(path, diagnostics))
}

/// A YAML or shape error from the parser, in haelk's words where they help.
fn parse_error(path: &Path, error: &serde_saphyr::Error) -> InventoryError {
    let error = error.without_snippet();
    let location = error
        .location()
        .map(|l| validate::location_of(&l))
        .unwrap_or_default();
    let message = match error {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => validate::unknown("field", field, expected),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => format!(
            "duplicate key{}: every key may appear only once in a mapping \
             (two hosts, jails or settings with one name would silently merge)",
            key.as_deref()
                .map(|k| format!(" `{}`", validate::shown(k)))
                .unwrap_or_default()
        ),
        serde_saphyr::Error::MergeKeyNotAllowed { .. } => {
            "YAML merge keys (`<<`) are not allowed: a merged key could silently override \
             another; write the values out, or use an alias (`*name`) for a whole value"
                .to_owned()
        }
        other => plain_message(other),
    };
    InventoryError {
        path: path.to_owned(),
        location,
        message,
    }
}

/// The parser's own message, without the location it would append.
fn plain_message(error: &serde_saphyr::Error) -> String {
    let message: Cow<'_, str> = serde_saphyr::DefaultMessageFormatter.format_message(error);
    validate::shown(&message)
}

fn collect(path: &Path, diagnostics: Vec<Diagnostic>) -> InventoryError {
    let mut iter = diagnostics.into_iter();
    let Some(first) = iter.next() else {
        // validate() only fails with at least one diagnostic; say so if it ever does not.
        return InventoryError {
            path: path.to_owned(),
            location: Location::default(),
            message: "the inventory is invalid".to_owned(),
        };
    };
    let mut message = first.message;
    for more in iter {
        message.push_str(&format!(
            "\n{}:{}:{}: {}",
            path.display(),
            more.location.line,
            more.location.column,
            more.message
        ));
    }
    InventoryError {
        path: path.to_owned(),
        location: first.location,
        message,
    }
}
