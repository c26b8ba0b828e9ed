//! Editing the inventory *text*: moving a jail from one host to another, for
//! `haelk migrate-node`, so the next `deploy` agrees with where the jail now runs.
//!
//! The YAML library cannot write a document back with its comments and layout, so
//! the edit is textual: the loaded model says where the jail's entry and the
//! target host's last jail are, the entry's lines (with the comments directly
//! above it) are cut out and pasted after that last jail, re-indented. The result
//! is then loaded again and must be the same inventory except for the jail's
//! host. Whatever this cannot do safely (flow-style mappings, a host without
//! jails, a result that does not verify) is an [`EditError`] that carries the
//! exact edit to make by hand.
//!
//! [`move_jail`] is pure apart from the file-existence checks validation makes;
//! the caller writes the result with [`write_atomically`].

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::Path;

use anyhow::Context as _;

use super::{ByteSize, Host, Inventory, Jail, Location, NodeRole, Role, validate};

/// A jail moved to another host, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailMove {
    /// The whole new inventory text.
    pub text: String,
    /// The lines cut from the old text (1-based, inclusive): the jail's entry and
    /// the comments directly above it.
    pub removed: RangeInclusive<usize>,
    /// The first line of the moved block in the new text (1-based).
    pub inserted_at: usize,
    /// The moved lines as they appear in the new text (re-indented).
    pub block: String,
}

/// Why a jail cannot be moved in the text automatically.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("there is no jail `{jail}` in the inventory")]
    UnknownJail { jail: String },
    #[error("there is no host `{host}` in the inventory")]
    UnknownHost { host: String },
    #[error("jail `{jail}` is already on host `{host}`")]
    SameHost { jail: String, host: String },
    /// The move is meaningful but must be made by hand.
    #[error("cannot edit the inventory automatically: {why}; instead, {instruction}")]
    Manual {
        /// What stops the automatic edit.
        why: String,
        /// The edit to make by hand, as one sentence for the operator.
        instruction: String,
    },
}

impl EditError {
    /// The edit to make by hand, when there is one to make.
    pub fn instruction(&self) -> Option<&str> {
        match self {
            EditError::Manual { instruction, .. } => Some(instruction),
            _ => None,
        }
    }
}

/// Moves `jail` to the end of the `jails:` mapping of host `to_host` in `text`,
/// the inventory `inventory` was loaded from (`source` is its path: relative
/// paths in the new text are checked against its directory).
pub fn move_jail(
    text: &str,
    source: &Path,
    inventory: &Inventory,
    jail: &str,
    to_host: &str,
) -> Result<JailMove, EditError> {
    let (from, moved) = inventory
        .find_jail(jail)
        .ok_or_else(|| EditError::UnknownJail {
            jail: jail.to_owned(),
        })?;
    let target = inventory
        .hosts
        .iter()
        .find(|h| h.name.as_str() == to_host)
        .ok_or_else(|| EditError::UnknownHost {
            host: to_host.to_owned(),
        })?;
    if from.name == target.name {
        return Err(EditError::SameHost {
            jail: jail.to_owned(),
            host: to_host.to_owned(),
        });
    }

    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let manual = |why: String, instruction: String| EditError::Manual { why, instruction };
    let by_hand = || {
        format!(
            "move the entry of jail `{jail}` (line {}) of {} into the `jails:` mapping of host {to_host} (line {})",
            moved.location.line,
            source.display(),
            target.location.line
        )
    };

    for host in [from, target] {
        if !is_block_key(&lines, host.location, host.name.as_str(), false) {
            return Err(manual(
                format!(
                    "line {} does not start the block-style entry `{}:` of host `{}` \
                     (flow style, or the text is not what the inventory was loaded from)",
                    host.location.line, host.name, host.name
                ),
                by_hand(),
            ));
        }
    }
    let entry = locate_entry(&lines, moved.location, jail).ok_or_else(|| {
        manual(
            format!(
                "line {} does not start the block-style entry `{jail}:` of jail `{jail}` \
                 (flow style, or the text is not what the inventory was loaded from)",
                moved.location.line
            ),
            by_hand(),
        )
    })?;
    let lines_shown = describe_lines(&lines, &entry, source);

    // Where the block goes: after the target's last jail, or as the first entry
    // of an empty `jails:` / `jails: {}`.
    let (after_line, indent, emptied) = match target.jails.last() {
        Some(last) => {
            let after = locate_entry(&lines, last.location, last.name.as_str()).ok_or_else(|| {
                manual(
                    format!(
                        "line {} does not start the block-style entry `{}:`, the last jail of host \
                         `{to_host}` (flow style, or the text is not what the inventory was loaded from)",
                        last.location.line, last.name
                    ),
                    by_hand(),
                )
            })?;
            (after.last, after.indent, None)
        }
        None => {
            let (line, key_indent, rewritten) = empty_jails_key(&lines, target.location)
                .ok_or_else(|| {
                    manual(
                        format!("host `{to_host}` has no `jails:` key to add this one to"),
                        format!(
                            "give host {to_host} (line {}) a block-style `jails:` mapping and \
                             move {lines_shown} into it",
                            target.location.line
                        ),
                    )
                })?;
            (line, key_indent + 2, Some(rewritten))
        }
    };
    let instruction = format!(
        "move {lines_shown} to the end of the `jails:` mapping of host {to_host} \
         (after line {}), indented by {indent} spaces",
        after_line + 1,
    );

    let block = reindent(&lines[entry.lines()], entry.indent, indent);
    let mut new_text = String::with_capacity(text.len() + block.len());
    let mut inserted_at = 0;
    let mut written = 0;
    for (index, line) in lines.iter().enumerate() {
        if !entry.lines().contains(&index) {
            match (&emptied, index == after_line) {
                (Some(rewritten), true) => new_text.push_str(rewritten),
                _ => new_text.push_str(line),
            }
            written += 1;
        }
        if index == after_line {
            if !new_text.ends_with('\n') {
                new_text.push('\n');
            }
            inserted_at = written + 1;
            new_text.push_str(&block);
        }
    }

    verify(&new_text, source, inventory, jail, to_host).map_err(|why| manual(why, instruction))?;
    Ok(JailMove {
        text: new_text,
        removed: entry.first + 1..=entry.last + 1,
        inserted_at,
        block,
    })
}

/// Writes `text` to `path` so that a crash leaves either the old or the new
/// file, never half of one: a temporary file in the same directory, flushed to
/// disk, renamed over `path`. The file keeps its permissions; a symbolic link
/// is followed, so the file it points at is the one replaced.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let path = match fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("cannot resolve {}", path.display())),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => ".".into(),
    };
    let permissions = match fs::metadata(&path) {
        Ok(metadata) => Some(metadata.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // Unique enough that a temporary file a crash left behind is never reused.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(format!(
        ".{}.haelk-{}-{nanos}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));

    let written = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        fs::rename(&temp, &path)
    })();
    if let Err(e) = written {
        // The temporary file is ours and useless now; failing to remove it
        // must not hide the error that matters.
        let _ = fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    // The rename is only durable once the directory entry is on disk.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush directory {}", dir.display()))
}

/// The lines of one mapping entry, 0-based and inclusive: `first` is the first
/// comment directly above the key (or the key itself), `last` the last line of
/// its value.
#[derive(Debug, Clone, Copy)]
struct Entry {
    first: usize,
    key: usize,
    last: usize,
    /// Spaces before the key.
    indent: usize,
}

impl Entry {
    fn lines(&self) -> RangeInclusive<usize> {
        self.first..=self.last
    }
}

/// The entry whose key `name` the model put at `location`, if it is a block-style
/// mapping entry there: the key starts its line, and the value is inline on the
/// key line or on deeper-indented lines below.
fn locate_entry(lines: &[&str], location: Location, name: &str) -> Option<Entry> {
    if !is_block_key(lines, location, name, true) {
        return None;
    }
    let key = location.line as usize - 1;
    let indent = location.column as usize - 1;
    let mut last = key;
    for (index, line) in lines.iter().enumerate().skip(key + 1) {
        // Blank and comment lines belong to the entry only if more of its value
        // follows them; otherwise they may describe whatever comes next.
        if is_blank_or_comment(line) {
            continue;
        }
        if indent_of(line) <= indent {
            break;
        }
        last = index;
    }
    let mut first = key;
    while first > 0 && is_comment(lines[first - 1]) && indent_of(lines[first - 1]) == indent {
        first -= 1;
    }
    Some(Entry {
        first,
        key,
        last,
        indent,
    })
}

/// Whether `location` is the start of the key `name` at the beginning of a line,
/// as in a block mapping. With `inline_value_allowed` false the value must start
/// on a later line (`name:` followed by nothing or a comment), so the entries it
/// holds are block-style too.
fn is_block_key(
    lines: &[&str],
    location: Location,
    name: &str,
    inline_value_allowed: bool,
) -> bool {
    let (Some(line_index), Some(indent)) = (
        (location.line as usize).checked_sub(1),
        (location.column as usize).checked_sub(1),
    ) else {
        return false;
    };
    let Some(line) = lines
        .get(line_index)
        .map(|l| l.trim_end_matches(['\n', '\r']))
    else {
        return false;
    };
    let Some((before, from_key)) = line.split_at_checked(indent) else {
        return false;
    };
    if !before.bytes().all(|b| b == b' ') {
        return false;
    }
    let after_key = [format!("\"{name}\""), format!("'{name}'"), name.to_owned()]
        .iter()
        .find_map(|written| from_key.strip_prefix(written.as_str()));
    let Some(after_colon) =
        after_key.and_then(|rest| rest.trim_start_matches(' ').strip_prefix(':'))
    else {
        return false;
    };
    if after_colon.is_empty() {
        return true;
    }
    // `name:x` is a plain scalar, not a key: a key's colon is followed by blank space.
    if !after_colon.starts_with([' ', '\t']) {
        return false;
    }
    let value = after_colon.trim_start();
    value.is_empty() || value.starts_with('#') || inline_value_allowed
}

/// `lines`, whose first-level indentation is `from` spaces, at `to` spaces; every
/// line ends with a newline.
fn reindent(lines: &[&str], from: usize, to: usize) -> String {
    let mut block = String::new();
    for line in lines {
        if is_blank(line) {
            block.push_str(line);
        } else {
            // Every non-blank line of an entry is indented at least as far as its key.
            block.push_str(&" ".repeat(to));
            block.push_str(&line[from.min(indent_of(line))..]);
        }
        if !block.ends_with('\n') {
            block.push('\n');
        }
    }
    block
}

/// "lines 37-38 (`lab1-kibana: {...}`) of inventories/lab.yaml"
fn describe_lines(lines: &[&str], entry: &Entry, source: &Path) -> String {
    const SHOWN: usize = 48;
    let key_line = lines[entry.key].trim();
    let shown = match key_line.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}...", &key_line[..cut]),
        None => key_line.to_owned(),
    };
    let (first, last) = (entry.first + 1, entry.last + 1);
    let range = if first == last {
        format!("line {first}")
    } else {
        format!("lines {first}-{last}")
    };
    format!("{range} (`{shown}`) of {}", source.display())
}

/// Loads `new_text` and checks it is `inventory` with `jail` moved to the end of
/// `to_host`'s jails, and nothing else changed that hosts and jails say; the
/// error says what differs.
fn verify(
    new_text: &str,
    source: &Path,
    inventory: &Inventory,
    jail: &str,
    to_host: &str,
) -> Result<(), String> {
    let reloaded = super::from_str(new_text, source, &validate::FileSystem)
        .map_err(|e| format!("the edited inventory does not load: {e}"))?;

    let mut expected: Vec<HostSummary> = inventory.hosts.iter().map(summary).collect();
    let mut moved = None;
    for host in &mut expected {
        if let Some(index) = host.jails.iter().position(|(name, ..)| name == jail) {
            moved = Some(host.jails.remove(index));
        }
    }
    let target = expected.iter_mut().find(|h| h.name == to_host);
    match (target, moved) {
        (Some(target), Some(moved)) => target.jails.push(moved),
        _ => return Err(format!("jail `{jail}` or host `{to_host}` is missing")),
    }
    let actual: Vec<HostSummary> = reloaded.hosts.iter().map(summary).collect();
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "the edited inventory differs from the intended one:\n expected {expected:?}\n got      {actual:?}"
        ))
    }
}

/// What a jail is, without where it is written.
type JailSummary = (
    String,
    Role,
    Ipv4Addr,
    Option<Role>,
    Vec<NodeRole>,
    Option<ByteSize>,
    Option<u16>,
    Option<u8>,
);

/// A host's name, address and jails, without where they are written.
#[derive(Debug, PartialEq)]
struct HostSummary {
    name: String,
    address: String,
    jails: Vec<JailSummary>,
}

fn summary(host: &Host) -> HostSummary {
    let jail = |j: &Jail| {
        (
            j.name.to_string(),
            j.role,
            j.ip,
            j.fronts,
            j.node_roles.clone(),
            j.memory,
            j.epair,
            j.advskew,
        )
    };
    HostSummary {
        name: host.name.to_string(),
        address: host.address.clone(),
        jails: host.jails.iter().map(jail).collect(),
    }
}

/// The `jails:` key of a host that has no jails: its line, its indentation and
/// the line rewritten to start a block mapping (`jails: {}` loses its `{}`).
fn empty_jails_key(lines: &[&str], host: Location) -> Option<(usize, usize, String)> {
    let host_line = host.line as usize - 1;
    let host_indent = host.column as usize - 1;
    for (index, line) in lines.iter().enumerate().skip(host_line + 1) {
        if is_blank(line) || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = indent_of(line);
        if indent <= host_indent {
            return None;
        }
        let Some(rest) = line.trim_start().strip_prefix("jails:") else {
            continue;
        };
        let (value, comment) = match rest.split_once('#') {
            Some((value, comment)) => (value.trim(), Some(comment)),
            None => (rest.trim(), None),
        };
        if !(value.is_empty() || value == "{}") {
            return None;
        }
        let mut rewritten = format!("{}jails:", " ".repeat(indent));
        if let Some(comment) = comment {
            rewritten.push_str(&format!(" #{}", comment.trim_end_matches(['\n', '\r'])));
        }
        rewritten.push('\n');
        return Some((index, indent, rewritten));
    }
    None
}

fn indent_of(line: &str) -> usize {
    line.bytes().take_while(|&b| b == b' ').count()
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn is_blank_or_comment(line: &str) -> bool {
    is_blank(line) || is_comment(line)
}

#[cfg(test)]
mod tests;
