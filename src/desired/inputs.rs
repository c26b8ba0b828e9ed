//! What the desired state is built from besides the inventory: the templates
//! (the `--templates` override, else the inventory's `templates:`, else the
//! built-in ones) and the secrets. Loaded here once, the same way for every
//! command that renders.

use std::path::Path;

use anyhow::Result;

use super::{ClusterPhase, DesiredState};
use crate::inventory::Inventory;
use crate::secret::Secrets;
use crate::templates::Templates;

/// The templates and secrets of one inventory.
pub struct Inputs {
    pub templates: Templates,
    pub secrets: Secrets,
}

impl Inputs {
    /// Loads the templates (`override_dir` wins over the inventory's
    /// `templates:`) and the secrets of `inventory`.
    pub fn load(inventory: &Inventory, override_dir: Option<&Path>) -> Result<Self> {
        let dir = override_dir.or(inventory.templates.as_deref());
        Ok(Self {
            templates: Templates::load(dir)?,
            secrets: Secrets::load(inventory)?,
        })
    }

    /// The desired state of `inventory` rendered from these inputs.
    pub fn build(&self, inventory: &Inventory, phase: ClusterPhase) -> Result<DesiredState> {
        super::build(inventory, &self.templates, &self.secrets, phase)
    }
}
