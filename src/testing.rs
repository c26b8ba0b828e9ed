//! Test support shared by the unit tests: the repository's inventories, loaded
//! through the real loader (so no test works from a hand-built copy that could
//! drift from the files).

use std::path::Path;

use crate::inventory::Inventory;

/// `inventories/NAME`, loaded and validated.
pub fn inventory(name: &str) -> Inventory {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inventories")
        .join(name);
    crate::inventory::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `inventories/example.yaml`: three hosts, lints clean.
pub fn example() -> Inventory {
    inventory("example.yaml")
}

/// `inventories/lab.yaml`: the example's shape on the lab's loopback addresses.
pub fn lab() -> Inventory {
    inventory("lab.yaml")
}
