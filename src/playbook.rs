//! Playbooks: the ordered plays of a deploy - what each play converges, how many
//! jails (or hosts) it changes at once, and which health gate must pass after each
//! batch before the next one starts.
//!
//! `playbooks/site.yaml` is built into the binary ([`Playbook::builtin`]); a file
//! can replace it ([`Playbook::load`]). Both go through the same parser
//! (serde-saphyr: unknown fields and duplicate keys are errors) and validation,
//! and every error names the file, line and column. [`Playbook::check`] then
//! checks the playbook against an inventory: every role is deployed by a play, and
//! no batch takes down a quorum, every data node or every VIP carrier at once.
//! The schema is documented in `docs/playbooks.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::inventory::{Host, Inventory, Jail, Location, Role};
use crate::yaml::{self, FileError, Problem, at, shown};

/// The built-in playbook's text.
const BUILTIN: &str = include_str!("../playbooks/site.yaml");
/// How the built-in playbook is named in errors.
const BUILTIN_NAME: &str = "playbooks/site.yaml (built in)";

/// A playbook that cannot be used, with the place in the file to look at;
/// several problems are listed one a line (see [`FileError`]).
pub type PlaybookError = FileError;

/// What a play converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Host preparation: ZFS datasets, jails, host rc.conf and loader.conf.
    Hosts,
    /// The jails of one role.
    Role(Role),
}

impl Target {
    const NAMES: [&'static str; 4] = ["hosts", "elasticsearch", "kibana", "haproxy"];

    /// The one gate that checks what this target changes; the engine runs it,
    /// so a play's `gate:` must name it.
    pub fn gate(self) -> Gate {
        match self {
            Target::Hosts => Gate::HostReady,
            Target::Role(Role::Elasticsearch) => Gate::ElasticsearchGreen,
            Target::Role(Role::Kibana) => Gate::KibanaAvailable,
            Target::Role(Role::Haproxy) => Gate::HaproxyBackendsUp,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "hosts" => Some(Target::Hosts),
            other => Role::parse(other).map(Target::Role),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Hosts => f.write_str("hosts"),
            Target::Role(role) => role.fmt(f),
        }
    }
}

/// The health check that must pass after each batch of a play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// Every jail of the batch's hosts is running.
    HostReady,
    /// `GET /_cluster/health` reports `green` and every node of the inventory joined.
    ElasticsearchGreen,
    /// `GET /api/status` of every Kibana of the batch reports `available`.
    KibanaAvailable,
    /// Every server of every backend of the batch's haproxy jails is `UP`.
    HaproxyBackendsUp,
}

impl Gate {
    const ALL: [Gate; 4] = [
        Gate::HostReady,
        Gate::ElasticsearchGreen,
        Gate::KibanaAvailable,
        Gate::HaproxyBackendsUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Gate::HostReady => "host_ready",
            Gate::ElasticsearchGreen => "elasticsearch_green",
            Gate::KibanaAvailable => "kibana_available",
            Gate::HaproxyBackendsUp => "haproxy_backends_up",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// How long the gate may take when the play does not say.
    pub fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Gate::HostReady | Gate::HaproxyBackendsUp => 5 * 60,
            Gate::KibanaAvailable => 10 * 60,
            // Shard recovery after a node restart can take long on big indices.
            Gate::ElasticsearchGreen => 30 * 60,
        })
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub name: String,
    pub target: Target,
    /// How many units change at once: hosts for [`Target::Hosts`], jails for
    /// Elasticsearch and Kibana, and for haproxy whole hosts' haproxy stacks (every
    /// haproxy jail of a host), as ha-elk changed one stack at a time.
    pub serial: u32,
    pub gate: Gate,
    pub gate_timeout: Duration,
    pub location: Location,
}

/// One batch of a play: what changes together before the gate runs.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    /// The hosts touched (for a hosts play, the hosts prepared).
    pub hosts: Vec<&'a Host>,
    /// The jails changed, with their host; empty for a hosts play.
    pub jails: Vec<(&'a Host, &'a Jail)>,
}

impl Play {
    /// The batches of this play over `inventory`, in the order they run.
    ///
    /// Elasticsearch batches take nodes that are not master-eligible first, then the
    /// master-eligible ones, so the voting configuration is disturbed last and as
    /// little as possible (ECK's order; deploy may further move the elected master
    /// to the end, which only live state knows).
    pub fn batches<'a>(&self, inventory: &'a Inventory) -> Vec<Batch<'a>> {
        let size = usize::try_from(self.serial).unwrap_or(usize::MAX).max(1);
        match self.target {
            Target::Hosts => inventory
                .hosts
                .chunks(size)
                .map(|hosts| Batch {
                    hosts: hosts.iter().collect(),
                    jails: Vec::new(),
                })
                .collect(),
            Target::Role(Role::Haproxy) => {
                let stacks: Vec<&Host> = inventory
                    .hosts
                    .iter()
                    .filter(|h| h.jails.iter().any(|j| j.role == Role::Haproxy))
                    .collect();
                stacks
                    .chunks(size)
                    .map(|hosts| Batch {
                        hosts: hosts.to_vec(),
                        jails: hosts
                            .iter()
                            .flat_map(|h| {
                                h.jails
                                    .iter()
                                    .filter(|j| j.role == Role::Haproxy)
                                    .map(move |j| (*h, j))
                            })
                            .collect(),
                    })
                    .collect()
            }
            Target::Role(role) => {
                let mut jails: Vec<(&Host, &Jail)> = inventory.jails_with_role(role).collect();
                // Stable: file order within each group.
                jails.sort_by_key(|(_, j)| j.is_master_eligible());
                jails
                    .chunks(size)
                    .map(|chunk| {
                        let mut hosts: Vec<&Host> = Vec::new();
                        for (host, _) in chunk {
                            if !hosts.iter().any(|h| h.name == host.name) {
                                hosts.push(host);
                            }
                        }
                        Batch {
                            hosts,
                            jails: chunk.to_vec(),
                        }
                    })
                    .collect()
            }
        }
    }
}

/// A validated playbook: plays in the order they run.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Where it came from, as errors name it.
    pub source: PathBuf,
    pub plays: Vec<Play>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    plays: Vec<Spanned<RawPlay>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlay {
    name: Spanned<String>,
    target: Spanned<String>,
    #[serde(default)]
    serial: Option<Spanned<u32>>,
    gate: Spanned<String>,
    #[serde(default)]
    gate_timeout: Option<Spanned<String>>,
}

impl Playbook {
    /// The playbook built into haelk (`playbooks/site.yaml`).
    pub fn builtin() -> Result<Self, PlaybookError> {
        Self::parse(BUILTIN, Path::new(BUILTIN_NAME))
    }

    /// Reads, parses and validates the playbook at `path`.
    pub fn load(path: &Path) -> Result<Self, PlaybookError> {
        let text = yaml::read(path, "the playbook")?;
        Self::parse(&text, path)
    }

    /// Parses and validates playbook `text`; `source` names it in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Self, PlaybookError> {
        let raw: RawPlaybook = yaml::parse(text, source)?;
        let mut problems = Problems::default();
        let plays = validate(&raw, &mut problems);
        problems.into_result(source)?;
        Ok(Self {
            source: source.to_owned(),
            plays,
        })
    }

    /// The play that deploys `target`, if any.
    pub fn play_for(&self, target: Target) -> Option<&Play> {
        self.plays.iter().find(|p| p.target == target)
    }

    /// Checks the playbook against `inventory`: every role that has jails is
    /// deployed by a play, and no batch takes down at once a quorum of the
    /// master-eligible nodes, every data node, or every carrier of a VIP.
    pub fn check(&self, inventory: &Inventory) -> Result<(), PlaybookError> {
        let mut problems = Problems::default();
        for role in Role::ALL {
            let jails: Vec<&str> = inventory
                .jails_with_role(role)
                .map(|(_, j)| j.name.as_str())
                .collect();
            if !jails.is_empty() && self.play_for(Target::Role(role)).is_none() {
                problems.push(
                    Location::default(),
                    format!(
                        "no play deploys {role}, but the inventory has {role} jails ({})",
                        jails.join(", ")
                    ),
                );
            }
        }
        for play in &self.plays {
            for batch in play.batches(inventory) {
                if let Some(problem) = batch_problem(play, &batch, inventory) {
                    problems.push(play.location, problem);
                    break; // one finding per play is enough to fix its serial
                }
            }
        }
        problems.into_result(&self.source)
    }
}

/// Why taking `batch` down at once would stop a service, if it would.
fn batch_problem(play: &Play, batch: &Batch<'_>, inventory: &Inventory) -> Option<String> {
    let in_batch = |jail: &Jail| batch.jails.iter().any(|(_, j)| j.name == jail.name);
    let names = |jails: Vec<&Jail>| {
        jails
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match play.target {
        Target::Role(Role::Elasticsearch) => {
            let masters: Vec<&Jail> = inventory
                .jails()
                .map(|(_, j)| j)
                .filter(|j| j.is_master_eligible())
                .collect();
            let n = masters.len();
            let down: Vec<&Jail> = masters.into_iter().filter(|j| in_batch(j)).collect();
            // n / 2 + 1 must stay up; lint reports clusters too small for that at all.
            if n >= 3 && n - down.len() < crate::inventory::quorum(n) {
                return Some(format!(
                    "serial {} restarts {} of {n} master-eligible nodes at once ({}): \
                     the quorum is {}, so the cluster would lose its master",
                    play.serial,
                    down.len(),
                    names(down),
                    crate::inventory::quorum(n)
                ));
            }
            let data: Vec<&Jail> = inventory
                .jails()
                .map(|(_, j)| j)
                .filter(|j| j.holds_data())
                .collect();
            if data.len() >= 2 && data.iter().all(|j| in_batch(j)) {
                return Some(format!(
                    "serial {} restarts every data node at once ({}): the cluster would go red",
                    play.serial,
                    names(data)
                ));
            }
            None
        }
        Target::Role(Role::Haproxy) => inventory.cluster.vips.keys().find_map(|role| {
            let carriers: Vec<&Jail> = crate::desired::carp::members(inventory, *role)
                .map(|(_, j)| j)
                .collect();
            (carriers.len() >= 2 && carriers.iter().all(|j| in_batch(j))).then(|| {
                format!(
                    "serial {} changes every haproxy jail of the {role} VIP at once ({}): \
                         the VIP would have no carrier",
                    play.serial,
                    names(carriers)
                )
            })
        }),
        // Hosts: preparation does not stop running jails. Kibana: an upgrade
        // across versions needs every instance stopped, so all at once is allowed.
        Target::Hosts | Target::Role(Role::Kibana) => None,
    }
}

/// Problems found so far, in the order they were found.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, location: Location, message: String) {
        self.0.push(Problem { location, message });
    }

    fn into_result(self, source: &Path) -> Result<(), PlaybookError> {
        FileError::from_problems(source, self.0).map_or(Ok(()), Err)
    }
}

fn validate(raw: &RawPlaybook, problems: &mut Problems) -> Vec<Play> {
    if raw.plays.is_empty() {
        problems.push(
            Location::default(),
            "`plays` is empty: a playbook needs at least a `hosts` play".into(),
        );
    }
    let mut names: BTreeMap<&str, Location> = BTreeMap::new();
    let mut targets: BTreeMap<Target, (&str, Location)> = BTreeMap::new();
    let mut plays = Vec::new();
    for (index, spanned) in raw.plays.iter().enumerate() {
        let play = &spanned.value;
        let name = play.name.value.trim();
        if name.is_empty() {
            problems.push(at(&play.name), "a play's `name` must not be empty".into());
        } else if let Some(first) = names.insert(name, at(&play.name)) {
            problems.push(
                at(&play.name),
                format!(
                    "duplicate play name `{}` (first at line {}): play names must be unique",
                    shown(name),
                    first.line
                ),
            );
        }
        let target = Target::parse(&play.target.value);
        match target {
            None => problems.push(
                at(&play.target),
                format!(
                    "unknown target `{}`: expected one of {}",
                    shown(&play.target.value),
                    Target::NAMES.join(", ")
                ),
            ),
            Some(target) => {
                if let Some((first, line_of)) = targets.insert(target, (name, at(&play.target))) {
                    problems.push(
                        at(&play.target),
                        format!(
                            "{target} is already the target of play `{first}` (line {}): \
                             each target is deployed by one play",
                            line_of.line
                        ),
                    );
                }
                let is_hosts = target == Target::Hosts;
                if index == 0 && !is_hosts {
                    problems.push(
                        at(&play.target),
                        "the first play must prepare the hosts (`target: hosts`): jails \
                         need their datasets and jail.conf before anything runs in them"
                            .into(),
                    );
                } else if index > 0 && is_hosts {
                    problems.push(
                        at(&play.target),
                        "host preparation (`target: hosts`) must be the first play".into(),
                    );
                }
            }
        }
        let gate = Gate::parse(&play.gate.value);
        if gate.is_none() {
            problems.push(
                at(&play.gate),
                format!(
                    "unknown gate `{}`: expected one of {}",
                    shown(&play.gate.value),
                    Gate::ALL.map(Gate::as_str).join(", ")
                ),
            );
        }
        if let (Some(target), Some(chosen)) = (target, gate)
            && chosen != target.gate()
        {
            problems.push(
                at(&play.gate),
                format!(
                    "gate `{chosen}` does not check `target: {}`: that play's gate is `{}` \
                         (each target has one gate, the one that checks what it changes)",
                    play.target.value,
                    target.gate()
                ),
            );
        }
        let serial = match &play.serial {
            Some(serial) if serial.value == 0 => {
                problems.push(
                    at(serial),
                    "`serial` must be at least 1 (it is how many change at once)".into(),
                );
                None
            }
            Some(serial) => Some(serial.value),
            None => Some(1),
        };
        let timeout = match &play.gate_timeout {
            Some(text) => match parse_duration(&text.value) {
                Ok(duration) => Some(Some(duration)),
                Err(message) => {
                    problems.push(at(text), message);
                    None
                }
            },
            None => Some(None),
        };
        if let (Some(target), Some(gate), Some(serial), Some(timeout)) =
            (target, gate, serial, timeout)
        {
            plays.push(Play {
                name: name.to_owned(),
                target,
                serial,
                gate,
                gate_timeout: timeout.unwrap_or_else(|| gate.default_timeout()),
                location: at(spanned),
            });
        }
    }
    plays
}

/// `90s`, `10m`, `1h`: a whole number and a unit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "gate_timeout `{}` must be a whole number of seconds, minutes or hours: 90s, 10m, 1h",
            shown(text)
        )
    };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => number,
        "m" => number.checked_mul(60).ok_or_else(bad)?,
        "h" => number.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if seconds == 0 {
        return Err(format!(
            "gate_timeout `{}` must be longer than zero",
            shown(text)
        ));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testkit::*;

    fn parse(text: &str) -> Result<Playbook, PlaybookError> {
        Playbook::parse(text, Path::new("p.yaml"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const HOSTS: &str = "  - { name: prepare, target: hosts, gate: host_ready }\n";

    #[test]
    fn a_gate_that_does_not_check_its_target_is_refused() {
        let message =
            error("plays:\n  - { name: prepare, target: hosts, gate: kibana_available }\n");
        assert!(
            message.contains("gate `kibana_available` does not check `target: hosts`"),
            "{message}"
        );
        assert!(message.contains("`host_ready`"), "{message}");
    }

    #[test]
    fn the_builtin_playbook_is_the_site_order() {
        let playbook = Playbook::builtin().unwrap();
        let order: Vec<_> = playbook
            .plays
            .iter()
            .map(|p| (p.target.to_string(), p.serial, p.gate))
            .collect();
        assert_eq!(
            order,
            [
                ("hosts".to_owned(), 1, Gate::HostReady),
                ("elasticsearch".to_owned(), 1, Gate::ElasticsearchGreen),
                ("kibana".to_owned(), 1, Gate::KibanaAvailable),
                ("haproxy".to_owned(), 1, Gate::HaproxyBackendsUp),
            ]
        );
        assert_eq!(playbook.plays[1].gate_timeout, Duration::from_secs(30 * 60));
        playbook.check(&example().build()).unwrap();
    }

    #[test]
    fn docs_describe_every_gate_and_target() {
        let docs = include_str!("../docs/playbooks.md");
        for gate in Gate::ALL {
            let row = format!("| `{gate}` |");
            assert!(docs.contains(&row), "docs/playbooks.md lacks {row}");
            let default = gate.default_timeout().as_secs() / 60;
            let line = docs.lines().find(|l| l.starts_with(&row)).unwrap();
            assert!(line.ends_with(&format!("| {default}m |")), "{gate}: {line}");
        }
        for target in Target::NAMES {
            assert!(docs.contains(&format!("`{target}`")), "{target}");
        }
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.yaml");
        std::fs::write(&path, format!("plays:\n{HOSTS}")).unwrap();
        assert_eq!(Playbook::load(&path).unwrap().plays.len(), 1);
        std::fs::write(
            &path,
            "plays:\n  - { name: x, target: hosts, gate: nope }\n",
        )
        .unwrap();
        let message = Playbook::load(&path).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{}:2:", path.display())),
            "{message}"
        );
        let missing = Playbook::load(&dir.path().join("absent.yaml")).unwrap_err();
        assert!(missing.to_string().contains("cannot read the playbook"));
    }

    #[test]
    fn unknown_fields_are_errors_with_their_location() {
        let message =
            error("plays:\n  - name: a\n    target: hosts\n    gate: host_ready\n    serail: 2\n");
        assert!(
            message.starts_with("p.yaml:5:5: unknown field `serail`"),
            "{message}"
        );
        assert!(error("plays: []\nextra: 1\n").starts_with("p.yaml:2:1: unknown field `extra`"));
        assert!(message.contains("did you mean `serial`?"), "{message}");
    }

    #[test]
    fn merge_keys_and_control_characters_are_kept_out() {
        let message = error(&format!(
            "plays:\n{HOSTS}  - <<: {{ name: es, gate: elasticsearch_green }}\n    target: elasticsearch\n"
        ));
        assert!(
            message.starts_with("p.yaml:3:5: YAML merge keys (`<<`) are not allowed"),
            "{message}"
        );
        let message = error(&format!(
            "plays:\n{HOSTS}  - {{ name: x, target: \"kibana\\nx\", gate: kibana_available }}\n"
        ));
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains("unknown target `kibana\\nx`"), "{message}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let message = error(
            "plays:\n  - name: a\n    target: hosts\n    target: kibana\n    gate: host_ready\n",
        );
        assert!(message.starts_with("p.yaml:4:5:"), "{message}");
        assert!(message.contains("duplicate"), "{message}");
    }

    #[test]
    fn unknown_targets_and_gates_are_named_with_the_allowed_ones() {
        let message = error(&format!(
            "plays:\n{HOSTS}  - name: db\n    target: postgres\n    gate: elasticsearch_yellow\n"
        ));
        let lines: Vec<_> = message.lines().collect();
        assert_eq!(
            lines,
            [
                "p.yaml:4:13: unknown target `postgres`: expected one of hosts, elasticsearch, kibana, haproxy",
                "p.yaml:5:11: unknown gate `elasticsearch_yellow`: expected one of host_ready, elasticsearch_green, kibana_available, haproxy_backends_up",
            ]
        );
    }

    #[test]
    fn serial_zero_and_bad_timeouts_are_rejected() {
        let message = error(&format!(
            "plays:\n{HOSTS}  - {{ name: es, target: elasticsearch, serial: 0, gate: elasticsearch_green, gate_timeout: soon }}\n"
        ));
        assert!(
            message.contains("p.yaml:3:48: `serial` must be at least 1"),
            "{message}"
        );
        assert!(message.contains("gate_timeout `soon` must be"), "{message}");
        assert!(error(&format!("plays:\n{HOSTS}  - {{ name: es, target: kibana, gate: kibana_available, gate_timeout: 0s }}\n")).contains("longer than zero"));
        let ok = parse(&format!("plays:\n{HOSTS}  - {{ name: es, target: kibana, gate: kibana_available, gate_timeout: 90s }}\n")).unwrap();
        assert_eq!(ok.plays[1].gate_timeout, Duration::from_secs(90));
        assert_eq!(ok.plays[1].serial, 1, "serial defaults to 1");
    }

    #[test]
    fn duplicate_play_names_and_targets_are_rejected() {
        let message = error(&format!(
            "plays:\n{HOSTS}  - {{ name: prepare, target: kibana, gate: kibana_available }}\n  - {{ name: k2, target: kibana, gate: kibana_available }}\n"
        ));
        assert!(
            message.contains("duplicate play name `prepare` (first at line 2)"),
            "{message}"
        );
        assert!(
            message.contains("kibana is already the target of play `prepare` (line 3)"),
            "{message}"
        );
    }

    #[test]
    fn host_preparation_comes_first() {
        let message = error(&format!(
            "plays:\n  - {{ name: es, target: elasticsearch, gate: elasticsearch_green }}\n{HOSTS}"
        ));
        assert!(
            message.contains("p.yaml:2:25: the first play must prepare the hosts"),
            "{message}"
        );
        assert!(
            message
                .contains("p.yaml:3:30: host preparation (`target: hosts`) must be the first play"),
            "{message}"
        );
        assert!(error("plays: []\n").contains("`plays` is empty"));
    }

    #[test]
    fn check_requires_a_play_for_every_role_of_the_inventory() {
        let playbook = parse(&format!(
            "plays:\n{HOSTS}  - {{ name: es, target: elasticsearch, gate: elasticsearch_green }}\n"
        ))
        .unwrap();
        let message = playbook.check(&example().build()).unwrap_err().to_string();
        let lines: Vec<_> = message.lines().collect();
        assert_eq!(
            lines,
            [
                "p.yaml: no play deploys kibana, but the inventory has kibana jails (8f15-kibana, 2a42-kibana)",
                "p.yaml: no play deploys haproxy, but the inventory has haproxy jails (11e9-haproxy-kibana, 9fbb-haproxy-elasticsearch, 2a41-haproxy-kibana, 2a43-haproxy-elasticsearch)",
            ]
        );
        // An inventory without those roles needs no play for them.
        let es_only = inv()
            .host("ha", |h| h.es("ha-es", [Master, Data]))
            .host("hb", |h| h.es("hb-es", [Master, Data]))
            .host("hc", |h| h.es("hc-es", [Master, VotingOnly]))
            .build();
        playbook.check(&es_only).unwrap();
    }

    #[test]
    fn check_rejects_batches_that_stop_a_service() {
        let playbook = parse(&format!(
            "plays:\n{HOSTS}  - {{ name: es, target: elasticsearch, serial: 2, gate: elasticsearch_green }}\n  - {{ name: kb, target: kibana, serial: 2, gate: kibana_available }}\n  - {{ name: lb, target: haproxy, serial: 2, gate: haproxy_backends_up }}\n"
        ))
        .unwrap();
        let message = playbook.check(&example().build()).unwrap_err().to_string();
        let lines: Vec<_> = message.lines().collect();
        assert_eq!(
            lines,
            [
                "p.yaml:3:5: serial 2 restarts 2 of 3 master-eligible nodes at once (d12c-elasticsearch, 2a44-elasticsearch): the quorum is 2, so the cluster would lose its master",
                "p.yaml:5:5: serial 2 changes every haproxy jail of the elasticsearch VIP at once (9fbb-haproxy-elasticsearch, 2a43-haproxy-elasticsearch): the VIP would have no carrier",
            ]
        );
    }

    #[test]
    fn batches_follow_serial_and_group_haproxy_by_host() {
        let inventory = example()
            .host("hd", |h| h.es("hd-coordinator", []).es("hd-data", [Data]))
            .build();
        let play = |target, serial| Play {
            name: "p".into(),
            target,
            serial,
            gate: Gate::HostReady,
            gate_timeout: Duration::from_secs(1),
            location: Location::default(),
        };
        let jail_names = |batches: Vec<Batch<'_>>| -> Vec<Vec<String>> {
            batches
                .iter()
                .map(|b| b.jails.iter().map(|(_, j)| j.name.to_string()).collect())
                .collect()
        };
        // Nodes that are not master-eligible go first, in file order.
        assert_eq!(
            jail_names(play(Target::Role(Role::Elasticsearch), 2).batches(&inventory)),
            [
                vec!["hd-coordinator", "hd-data"],
                vec!["d12c-elasticsearch", "2a44-elasticsearch"],
                vec!["7c3a-elasticsearch"],
            ]
        );
        // One host's haproxy stack at a time.
        assert_eq!(
            jail_names(play(Target::Role(Role::Haproxy), 1).batches(&inventory)),
            [
                vec!["11e9-haproxy-kibana", "9fbb-haproxy-elasticsearch"],
                vec!["2a41-haproxy-kibana", "2a43-haproxy-elasticsearch"],
            ]
        );
        let hosts = play(Target::Hosts, 3).batches(&inventory);
        assert_eq!(
            hosts.iter().map(|b| b.hosts.len()).collect::<Vec<_>>(),
            [3, 1]
        );
    }
}
