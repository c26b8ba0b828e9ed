//! Offline rendering: the tree of files `deploy` would write, and diffs against one.
//! (Being written: see the foundation issue.)

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::desired::ClusterPhase;
use crate::inventory::Inventory;

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub templates: Option<PathBuf>,
    pub phase: ClusterPhase,
}

pub struct RenderedTree;

impl RenderedTree {
    pub fn len(&self) -> usize {
        0
    }
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn write(&self, _out: &Path) -> Result<()> {
        bail!("render is being written")
    }
    pub fn diff(&self, _dir: &Path) -> Result<TreeDiff> {
        bail!("render is being written")
    }
}

pub struct TreeDiff;

impl TreeDiff {
    pub fn is_empty(&self) -> bool {
        true
    }
}

impl fmt::Display for TreeDiff {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

pub fn render(_inventory: &Inventory, _options: &RenderOptions) -> Result<RenderedTree> {
    bail!("render is being written")
}
