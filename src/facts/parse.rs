//! Reading the facts script's records back into [`HostFacts`].
//!
//! The format is line-oriented: each line is a tag and tab-separated fields
//! (the last field keeps any tabs of its own). A `file` record is followed by its
//! content as `od` hex bytes and an `end-file` line. The output must open with
//! the header and close with the trailer, so output cut short is an error, not a
//! host that seems to lack everything after the cut.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::script::{END_OF_FILE, HEADER, TRAILER, database_root_prefix, user_database_root};
use super::{DatasetFacts, FactsError, FileFacts, HostFacts, JailFacts, PoolFacts};
use crate::desired::{HostState, OnChange, PENDING_MARKER};

/// Parses what [`super::script`] printed.
pub fn parse(host: &HostState, stdout: &str) -> Result<HostFacts, FactsError> {
    let mut lines = Lines {
        lines: stdout.lines().enumerate(),
    };
    match lines.next() {
        Some((_, HEADER)) => {}
        Some((number, line)) => return Err(bad_line(number, "not the facts header", line)),
        None => return Err(FactsError("the output is empty".into())),
    }
    let mut facts = HostFacts::default();
    let mut ids = Ids::new();
    let mut ended = false;
    while let Some((number, line)) = lines.next() {
        if ended {
            return Err(bad_line(number, "output after the end record", line));
        }
        let (tag, rest) = line.split_once('\t').unwrap_or((line, ""));
        let record = Record { number, line, rest };
        match tag {
            "version" => facts.freebsd_version = rest.to_owned(),
            "interfaces" => {
                facts.interfaces = rest.split_whitespace().map(str::to_owned).collect();
            }
            "pool" => facts.pool = Some(record.pool()?),
            "dataset" => {
                let (name, dataset) = record.dataset()?;
                facts.datasets.insert(name, dataset);
            }
            "carp" => facts.carp_loaded = record.flag(rest, "loaded", "absent")?,
            "rc" => {
                let (key, value) = record.sysrc()?;
                facts.rc_conf.insert(key.to_owned(), Some(value.to_owned()));
            }
            "loader" => {
                let (key, value) = record.sysrc()?;
                facts
                    .loader_conf
                    .insert(key.to_owned(), Some(value.to_owned()));
            }
            "user" | "group" => {
                let [root, name, id] = record.fields()?;
                let id = record.id(id)?;
                ids.insert((tag.to_owned(), root.to_owned(), name.to_owned()), id);
            }
            "jail" => {
                let (name, jail) = record.jail()?;
                facts.jails.insert(name, jail);
            }
            "package" => {
                let [jail, name, version] = record.fields()?;
                record
                    .jail_of(&mut facts.jails, jail)?
                    .packages
                    .insert(name.to_owned(), version.to_owned());
            }
            "service" => {
                let [jail, service, state] = record.fields()?;
                let running = record.flag(state, "running", "stopped")?;
                record
                    .jail_of(&mut facts.jails, jail)?
                    .services
                    .insert(service.to_owned(), running);
            }
            "pending" => {
                let [jail, word] = record.fields()?;
                let action = OnChange::from_marker(word.trim()).ok_or_else(|| {
                    record.error(&format!(
                        "unknown pending action {word:?} in {jail}'s {PENDING_MARKER} \
                         (expected reload, restart or restart-jail)"
                    ))
                })?;
                record.jail_of(&mut facts.jails, jail)?.pending = action;
            }
            "file" => {
                let (path, file) = record.file(&mut lines)?;
                facts.files.insert(path, file);
            }
            TRAILER => ended = true,
            _ => return Err(record.error("unknown record")),
        }
    }
    if !ended {
        return Err(FactsError(
            "the output ends before its end record: the script was cut short".into(),
        ));
    }
    complete(host, facts, &ids)
}

/// The `user` and `group` records: (tag, user database root, name) -> id.
type Ids = BTreeMap<(String, String, String), u32>;

/// Fills in what the records leave implicit: a desired key without a record is
/// unset, a file's wanted ids come from its user database's records, and the
/// services of a stopped jail (which the script does not probe) are stopped.
/// Checks that every desired jail got its record.
fn complete(host: &HostState, mut facts: HostFacts, ids: &Ids) -> Result<HostFacts, FactsError> {
    for key in host.rc_conf.keys().chain(host.rc_conf_words.keys()) {
        facts.rc_conf.entry(key.clone()).or_insert(None);
    }
    for key in host.loader_conf.keys() {
        facts.loader_conf.entry(key.clone()).or_insert(None);
    }
    for file in host.all_files() {
        let Some(found) = facts.files.get_mut(&file.path) else {
            continue;
        };
        let root = database_root_prefix(user_database_root(host, &file.path));
        let id = |tag: &str, name: &str| {
            ids.get(&(tag.to_owned(), root.clone(), name.to_owned()))
                .copied()
        };
        found.wanted_uid = id("user", &file.owner);
        found.wanted_gid = id("group", &file.group);
    }
    for jail in &host.jails {
        let name = jail.name.as_str();
        let found = facts
            .jails
            .get_mut(name)
            .ok_or_else(|| FactsError(format!("no record for jail {name}")))?;
        for service in &jail.services {
            found.services.entry(service.clone()).or_insert(false);
        }
    }
    Ok(facts)
}

/// The output's lines, numbered from 1 for messages.
struct Lines<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.lines.next().map(|(index, line)| (index + 1, line))
    }
}

/// One record line: its number and text for messages, and its fields after the tag.
struct Record<'a> {
    number: usize,
    line: &'a str,
    rest: &'a str,
}

impl<'a> Record<'a> {
    fn error(&self, message: &str) -> FactsError {
        bad_line(self.number, message, self.line)
    }

    /// Exactly `N` fields; the last one keeps any tabs.
    fn fields<const N: usize>(&self) -> Result<[&'a str; N], FactsError> {
        let mut fields = self.rest.splitn(N, '\t');
        let mut out = [""; N];
        for slot in &mut out {
            *slot = fields
                .next()
                .ok_or_else(|| self.error(&format!("{N} fields expected")))?;
        }
        Ok(out)
    }

    /// `value`, one of two words, as `true` for `yes` and `false` for `no`.
    fn flag(&self, value: &str, yes: &str, no: &str) -> Result<bool, FactsError> {
        match value {
            _ if value == yes => Ok(true),
            _ if value == no => Ok(false),
            _ => Err(self.error(&format!("{yes} or {no} expected"))),
        }
    }

    fn pool(&self) -> Result<PoolFacts, FactsError> {
        let [name, size, allocated, free] = self.fields()?;
        Ok(PoolFacts {
            name: name.to_owned(),
            size: size.to_owned(),
            allocated: allocated.to_owned(),
            free: free.to_owned(),
        })
    }

    fn dataset(&self) -> Result<(String, DatasetFacts), FactsError> {
        let [name, mountpoint, compression, uuid] = self.fields()?;
        let cluster_uuid = (uuid != "-").then(|| uuid.to_owned());
        let dataset = DatasetFacts {
            mountpoint: mountpoint.to_owned(),
            compression: compression.to_owned(),
            cluster_uuid,
        };
        Ok((name.to_owned(), dataset))
    }

    fn jail(&self) -> Result<(String, JailFacts), FactsError> {
        let [name, state, userland] = self.fields()?;
        let running = self.flag(state, "running", "stopped")?;
        let populated = self.flag(userland, "populated", "empty")?;
        let jail = JailFacts {
            running,
            populated,
            ..JailFacts::default()
        };
        Ok((name.to_owned(), jail))
    }

    /// The jail a package, service or pending record is about: its `jail` record
    /// comes first.
    fn jail_of<'j>(
        &self,
        jails: &'j mut BTreeMap<String, JailFacts>,
        name: &str,
    ) -> Result<&'j mut JailFacts, FactsError> {
        jails
            .get_mut(name)
            .ok_or_else(|| self.error(&format!("no jail record for {name} before")))
    }

    /// `KEY: VALUE` as `sysrc KEY` prints it (an empty value may lose its space).
    fn sysrc(&self) -> Result<(&'a str, &'a str), FactsError> {
        self.rest
            .split_once(": ")
            .or_else(|| Some((self.rest.strip_suffix(':')?, "")))
            .ok_or_else(|| self.error("KEY: VALUE expected"))
    }

    /// A numeric user or group id.
    fn id(&self, text: &str) -> Result<u32, FactsError> {
        text.parse::<u32>()
            .map_err(|_| self.error(&format!("{text:?} is not a numeric id")))
    }

    /// A `file` record (its path and `ls -lnd` line) and the hex dump of its
    /// content up to `end-file`. The wanted ids are filled in by [`complete`].
    fn file(&self, lines: &mut Lines<'_>) -> Result<(PathBuf, FileFacts), FactsError> {
        let [path, listing] = self.fields()?;
        // `ls -lnd`: mode, links, numeric owner, numeric group, then more.
        let mut columns = listing.split_whitespace();
        let (Some(mode), Some(_links), Some(uid), Some(gid)) = (
            columns.next(),
            columns.next(),
            columns.next(),
            columns.next(),
        ) else {
            return Err(self.error("an `ls -lnd` line expected"));
        };
        let mode = parse_mode(mode)
            .ok_or_else(|| self.error(&format!("cannot read the mode {mode:?}")))?;
        let mut bytes = Vec::new();
        loop {
            let Some((number, line)) = lines.next() else {
                return Err(self.error("the file's content has no end-file line"));
            };
            if line == END_OF_FILE {
                break;
            }
            for word in line.split_whitespace() {
                let byte = u8::from_str_radix(word, 16)
                    .ok()
                    .filter(|_| word.len() == 2)
                    .ok_or_else(|| bad_line(number, "not a line of hex bytes", line))?;
                bytes.push(byte);
            }
        }
        // A file that is not UTF-8 differs from every desired (UTF-8) content
        // anyway; its lossy text is enough to show and replace it.
        let content = String::from_utf8(bytes)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
        let file = FileFacts {
            content,
            mode,
            uid: self.id(uid)?,
            gid: self.id(gid)?,
            wanted_uid: None,
            wanted_gid: None,
        };
        Ok((PathBuf::from(path), file))
    }
}

fn bad_line(number: usize, message: &str, line: &str) -> FactsError {
    const SHOWN: usize = 200;
    let shown: String = line.chars().take(SHOWN).collect();
    let more = if shown.len() < line.len() { "..." } else { "" };
    FactsError(format!("line {number}: {message}: {shown:?}{more}"))
}

/// The permission bits (with setuid, setgid and sticky) of an `ls -l` mode
/// string such as `-rwsr-x--T`; a trailing ACL or attribute mark is ignored.
pub(super) fn parse_mode(text: &str) -> Option<u32> {
    let symbols: Vec<char> = text.chars().skip(1).take(9).collect();
    if symbols.len() != 9 {
        return None;
    }
    let (mut permissions, mut specials) = (0, 0);
    // Owner, group, other: each a read, write and execute symbol; the execute
    // symbol also carries the triplet's special bit (setuid, setgid, sticky):
    // lower case with execute, upper case without.
    for (triplet, special) in symbols.chunks(3).zip([0o4000, 0o2000, 0o1000]) {
        let special_symbol = if special == 0o1000 { 't' } else { 's' };
        let (read, write, execute) = (triplet[0], triplet[1], triplet[2]);
        permissions <<= 3;
        permissions |= match read {
            'r' => 4,
            '-' => 0,
            _ => return None,
        };
        permissions |= match write {
            'w' => 2,
            '-' => 0,
            _ => return None,
        };
        permissions |= match execute {
            'x' => 1,
            '-' => 0,
            c if c == special_symbol => {
                specials |= special;
                1
            }
            c if c == special_symbol.to_ascii_uppercase() => {
                specials |= special;
                0
            }
            _ => return None,
        };
    }
    Some(permissions | specials)
}
