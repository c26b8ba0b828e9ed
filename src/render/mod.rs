//! Offline rendering: the tree of files `deploy` would write, and diffs against one.
//!
//! A [`RenderedTree`] maps `HOST/absolute/path/on/host` to the file's content with
//! every secret masked: it is a review artefact (and a CI check with `--diff`),
//! never a deploy input. Besides the files deploy writes in full, each host gets
//! `etc/rc.conf` and `boot/loader.conf` holding only the keys haelk sets there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use similar::TextDiff;

use crate::desired::inputs::Inputs;
use crate::desired::{ClusterPhase, DesiredState, HostState};
use crate::inventory::Inventory;
use crate::secret::Secrets;

/// The file that marks a directory as written by `haelk render --out`: only in
/// such a directory does haelk delete files (the stale ones of an earlier render).
pub const MARKER: &str = ".haelk-render";

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Template override directory; when `None`, the inventory's `templates:`.
    pub templates: Option<PathBuf>,
    pub phase: ClusterPhase,
}

/// Renders every file `deploy` would write for `inventory`, secrets masked.
pub fn render(inventory: &Inventory, options: &RenderOptions) -> Result<RenderedTree> {
    let inputs = Inputs::load(inventory, options.templates.as_deref())?;
    let state = inputs.build(inventory, options.phase)?;
    Ok(RenderedTree::from_desired(&state, &inputs.secrets))
}

/// Every rendered file by its path relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderedTree {
    files: BTreeMap<String, String>,
}

impl RenderedTree {
    /// The tree of `state`, every file passed through `secrets.mask`.
    pub fn from_desired(state: &DesiredState, secrets: &Secrets) -> Self {
        let mut files = BTreeMap::new();
        for host in &state.hosts {
            // A copy of a host file (the jails' resolv.conf) is known only on the host.
            for file in host.all_files().filter(|f| f.copy_of.is_none()) {
                files.insert(
                    tree_path(host, &file.path.display().to_string()),
                    secrets.mask(&file.content),
                );
            }
            if !host.rc_conf.is_empty() {
                let mut text = owned_keys_file("/etc/rc.conf", &host.rc_conf);
                text.push_str(&owned_words(&host.rc_conf_words));
                files.insert(tree_path(host, "/etc/rc.conf"), secrets.mask(&text));
            }
            if !host.loader_conf.is_empty() {
                files.insert(
                    tree_path(host, "/boot/loader.conf"),
                    secrets.mask(&owned_keys_file("/boot/loader.conf", &host.loader_conf)),
                );
            }
        }
        Self { files }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Every file: relative path (`HOST/abs/path`) and masked content, sorted.
    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|(p, c)| (p.as_str(), c.as_str()))
    }

    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// Writes the tree under `out`, creating it if needed. When `out` already holds
    /// an earlier render (it has the [`MARKER`]), files no longer rendered are
    /// removed; in any other non-empty directory nothing is removed and no marker
    /// is written, because haelk did not create it.
    pub fn write(&self, out: &Path) -> Result<()> {
        let marker = out.join(MARKER);
        let owned = if marker.is_file() {
            self.remove_stale(out)?;
            true
        } else {
            !out.exists() || is_empty_dir(out)?
        };
        for (relative, content) in &self.files {
            let path = out.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create directory {}", parent.display()))?;
            }
            std::fs::write(&path, content)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        if owned {
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create directory {}", out.display()))?;
            std::fs::write(
                &marker,
                "This directory was written by `haelk render --out`; haelk removes stale files here.\n",
            )
            .with_context(|| format!("cannot write {}", marker.display()))?;
        }
        Ok(())
    }

    fn remove_stale(&self, out: &Path) -> Result<()> {
        for relative in read_tree(out)?.into_keys() {
            if !self.files.contains_key(&relative) {
                let path = out.join(&relative);
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove stale file {}", path.display()))?;
            }
        }
        remove_empty_dirs(out)?;
        Ok(())
    }

    /// The unified diff from the tree in `dir` (`a/`) to this render (`b/`).
    pub fn diff(&self, dir: &Path) -> Result<TreeDiff> {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        let existing = read_tree(dir)?;
        let paths: BTreeSet<&String> = existing.keys().chain(self.files.keys()).collect();
        let mut files = Vec::new();
        for path in paths {
            let old = existing.get(path);
            let new = self.files.get(path);
            if old == new {
                continue;
            }
            let old_header = match old {
                Some(_) => format!("a/{path}"),
                None => "/dev/null".to_owned(),
            };
            let new_header = match new {
                Some(_) => format!("b/{path}"),
                None => "/dev/null".to_owned(),
            };
            let old = old.map_or("", String::as_str);
            let new = new.map_or("", String::as_str);
            let text = TextDiff::from_lines(old, new)
                .unified_diff()
                .context_radius(3)
                .header(&old_header, &new_header)
                .to_string();
            files.push(FileDiff {
                path: path.clone(),
                text,
            });
        }
        Ok(TreeDiff { files })
    }
}

/// `HOST/abs/path`: where a host's file lands in the rendered tree.
fn tree_path(host: &HostState, absolute: &str) -> String {
    format!("{}/{}", host.host, absolute.trim_start_matches('/'))
}

/// The keys haelk owns in a file the operator shares with it, as `sysrc` writes
/// them.
fn owned_keys_file(path: &str, keys: &BTreeMap<String, String>) -> String {
    let mut text = format!(
        "# managed by haelk: only these keys of {path}, set with sysrc;\n\
         # every other line of the host's {path} is the operator's.\n"
    );
    for (key, value) in keys {
        text.push_str(key);
        text.push('=');
        text.push_str(&crate::shell::double_quote(value));
        text.push('\n');
    }
    text
}

/// The words haelk adds to the operator's rc.conf lists, as `sysrc KEY+=WORD`
/// arguments (sysrc keeps the list's other words).
fn owned_words(words: &BTreeMap<String, Vec<String>>) -> String {
    let mut text = String::new();
    for (key, words) in words {
        text.push_str(&format!(
            "# {key}: haelk adds these words with `sysrc {key}+=WORD`; the rest is the operator's.\n"
        ));
        for word in words {
            text.push_str(&format!("{key}+={}\n", crate::shell::double_quote(word)));
        }
    }
    text
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    Ok(entries.next().is_none())
}

/// Every regular file under `root` (except the marker) by its `/`-separated
/// relative path. Symbolic links are not followed.
fn read_tree(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot read directory {}", dir.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if relative == MARKER {
                continue;
            }
            let content = if kind.is_file() {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?
            } else {
                // A symlink or device is never something haelk rendered: show it
                // as a file that should not be there.
                format!("(not a regular file: {})\n", path.display())
            };
            files.insert(relative, content);
        }
    }
    Ok(files)
}

/// Removes directories under `root` left empty by stale-file removal.
fn remove_empty_dirs(root: &Path) -> Result<()> {
    fn walk(dir: &Path) -> Result<bool> {
        let mut empty = true;
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?
        {
            let entry =
                entry.with_context(|| format!("cannot read directory {}", dir.display()))?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && walk(&path)? {
                std::fs::remove_dir(&path)
                    .with_context(|| format!("cannot remove directory {}", path.display()))?;
            } else {
                empty = false;
            }
        }
        Ok(empty)
    }
    walk(root).map(|_| ())
}

/// The differences between a directory and a fresh render, file by file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeDiff {
    files: Vec<FileDiff>,
}

/// The unified diff of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// `HOST/abs/path`.
    pub path: String,
    /// Unified diff with `--- a/PATH` / `+++ b/PATH` headers (`/dev/null` for a
    /// file on one side only).
    pub text: String,
}

impl TreeDiff {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn files(&self) -> &[FileDiff] {
        &self.files
    }
}

impl fmt::Display for TreeDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            f.write_str(&file.text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
