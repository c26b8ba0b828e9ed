//! Validation: turns the raw, parsed inventory into the [`model`](super::model),
//! enforcing every rule of the inventory contract and merging `defaults` into
//! each host.
//!
//! Validation goes on after the first problem so one run reports every error it
//! can, but a value that failed its own rule is left out of the checks that
//! compare values (unique IPs, subnets, ...), so one mistake yields one message.
//! The only I/O is asking a [`PathProbe`] whether referenced files exist.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::model::{
    ByteSize, Carp, Cluster, ElasticsearchConfig, HaproxyConfig, Host, Inventory, Jail,
    JailDefaults, KibanaConfig, Location, Name, NodeRole, Retention, Role, Snapshots, Ssh, Vip,
    Zfs,
};
use crate::yaml::{Problem, at, location_of, shown, unknown};
use serde_saphyr::Spanned;

use super::raw::{
    Integer, Keyed, KeyedMap, RawCluster, RawHost, RawInventory, RawJail, RawJailSettings, RawSsh,
    RawZfs, SettingValue, Text,
};

/// What a path on the machine running haelk is, if it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    File,
    Directory,
    Other,
}

/// The I/O validation needs: whether a path exists, and what a small file or a
/// directory the inventory names holds (`None`: cannot be read; the command that
/// uses it reports that with the OS's reason).
pub trait PathProbe {
    fn kind(&self, path: &Path) -> Option<PathKind>;

    /// A file's text (the CARP password, checked for what ifconfig accepts).
    fn read_text(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    /// The names in a directory (the template override directory).
    fn file_names(&self, dir: &Path) -> Option<Vec<String>> {
        let entries = std::fs::read_dir(dir).ok()?;
        entries
            .map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

/// The real file system.
pub struct FileSystem;

impl PathProbe for FileSystem {
    fn kind(&self, path: &Path) -> Option<PathKind> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(if metadata.is_file() {
            PathKind::File
        } else if metadata.is_dir() {
            PathKind::Directory
        } else {
            PathKind::Other
        })
    }
}

/// Default values for everything the inventory may leave out.
pub mod defaults {
    pub const SSH_USER: &str = "root";
    pub const SSH_PORT: u16 = 22;
    pub const ZFS_MOUNTPOINT: &str = "/usr/local/jails";
    pub const ZFS_COMPRESSION: &str = "lz4";
    pub const BRIDGE: &str = "bridge0";
    pub const NETMASK: u8 = 24;
    pub const ELASTICSEARCH_PACKAGE: &str = "elasticsearch8";
    pub const ELASTICSEARCH_HTTP_PORT: u16 = 9200;
    pub const ELASTICSEARCH_TRANSPORT_PORT: u16 = 9300;
    pub const KIBANA_PACKAGE: &str = "kibana8";
    pub const KIBANA_PORT: u16 = 5601;
    pub const HAPROXY_PACKAGE: &str = "haproxy";
    pub const CARP_INTERFACE: &str = "vnet0";
    pub const SNAPSHOT_SCHEDULE: &str = "0 30 1 * * ?";
    pub const SNAPSHOT_EXPIRE_AFTER: &str = "30d";
    pub const SNAPSHOT_MIN_COUNT: u32 = 5;
    pub const SNAPSHOT_MAX_COUNT: u32 = 50;
}

/// `elasticsearch.yml` keys haelk writes itself, with where their value comes from.
pub const ELASTICSEARCH_DERIVED_SETTINGS: &[(&str, &str)] = &[
    ("cluster.name", "cluster.name"),
    ("node.name", "the jail's name"),
    ("node.roles", "the jail's node_roles"),
    ("network.host", "the jail's ip"),
    ("http.port", "cluster.elasticsearch.http_port"),
    ("transport.port", "cluster.elasticsearch.transport_port"),
    ("discovery.seed_hosts", "the master-eligible jails"),
    (
        "cluster.initial_master_nodes",
        "the master-eligible jails, at first bootstrap only",
    ),
    ("path.data", "the jail layout"),
    ("path.logs", "the jail layout"),
    ("path.repo", "cluster.snapshots.path"),
];

/// `kibana.yml` keys haelk writes itself, with where their value comes from.
pub const KIBANA_DERIVED_SETTINGS: &[(&str, &str)] = &[
    ("server.host", "the jail's ip"),
    ("server.port", "cluster.kibana.port"),
    ("server.name", "the jail's name"),
    ("server.publicBaseUrl", "the kibana VIP"),
    ("elasticsearch.hosts", "the elasticsearch VIP"),
    ("path.data", "the jail layout"),
    // The rc script's daemon(8) writes the pidfile; a second writer races it.
    ("pid.file", "the rc script (daemon(8) writes the pidfile)"),
    (
        "xpack.encryptedSavedObjects.encryptionKey",
        "cluster.kibana.encryption_key_file",
    ),
    (
        "xpack.security.encryptionKey",
        "cluster.kibana.encryption_key_file",
    ),
    (
        "xpack.reporting.encryptionKey",
        "cluster.kibana.encryption_key_file",
    ),
];

/// Validates `raw`, read from `source`, into the model; or every problem found,
/// in file order.
pub fn validate(
    raw: &RawInventory,
    source: &Path,
    probe: &dyn PathProbe,
) -> Result<Inventory, Vec<Problem>> {
    let mut validator = Validator {
        base_dir: base_dir_of(source),
        probe,
        problems: Vec::new(),
    };
    let cluster = validator.cluster(&raw.cluster);
    let templates = raw.templates.as_ref().and_then(|dir| {
        let resolved = validator.existing_path("templates", dir, PathKind::Directory)?;
        let names = validator.probe.file_names(&resolved)?;
        let checked = crate::templates::check_override_names(&resolved, &names);
        validator.check(at(dir), checked.map(|()| resolved))
    });
    let fronted_roles = vip_roles(&raw.cluster.vips);
    let hosts = validator.hosts(raw, &fronted_roles);
    if let Some(cluster) = &cluster {
        validator.cross_checks(cluster, &hosts);
    }

    let mut problems = validator.problems;
    problems.sort();
    problems.dedup();
    match cluster {
        Some(cluster) if problems.is_empty() => Ok(Inventory {
            source: source.to_owned(),
            cluster,
            hosts,
            templates,
        }),
        // A missing part always comes with the diagnostic that explains it.
        _ => Err(problems),
    }
}

/// Relative paths in the inventory are relative to the directory of its file.
fn base_dir_of(source: &Path) -> PathBuf {
    match source.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The roles named by the keys of `vips` (valid or not otherwise), so a bad VIP
/// does not also make every jail that fronts it an error.
fn vip_roles(vips: &KeyedMap<super::raw::RawVip>) -> BTreeSet<Role> {
    vips.iter()
        .filter_map(|(key, _)| Role::parse(key))
        .filter(|role| *role != Role::Haproxy)
        .collect()
}

fn key_at<V>(entry: &Keyed<V>) -> Location {
    location_of(&entry.key_location)
}

fn describe(location: Location) -> String {
    format!("line {}, column {}", location.line, location.column)
}

/// A host value over its `defaults` value.
fn merged<'a, T>(host: &'a Option<T>, default: &'a Option<T>) -> Option<&'a T> {
    host.as_ref().or(default.as_ref())
}

/// An optional value, checked by `check` when present: `Some(None)` when absent,
/// `None` when present but invalid (`check` reported why).
fn optional<T, U>(value: Option<&T>, check: impl FnOnce(&T) -> Option<U>) -> Option<Option<U>> {
    value.map_or(Some(None), |value| check(value).map(Some))
}

struct Validator<'a> {
    base_dir: PathBuf,
    probe: &'a dyn PathProbe,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn error(&mut self, location: Location, message: impl Into<String>) {
        self.problems.push(Problem {
            location,
            message: message.into(),
        });
    }

    /// `result`'s value, or `None` after reporting its error at `location`.
    fn check<T>(&mut self, location: Location, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.error(location, message)).ok()
    }

    fn name(&mut self, what: &str, value: &Text) -> Option<Name> {
        self.check(
            at(value),
            Name::new(&value.value).map_err(|e| format!("invalid {what}: {e}")),
        )
    }

    /// A string that must pass `rule`, a check of its characters.
    fn safe(&mut self, what: &str, value: &Text, rule: rules::Rule) -> Option<String> {
        let result = rule(&value.value)
            .map(|()| value.value.clone())
            .map_err(|reason| format!("{what} `{}` is not allowed: {reason}", shown(&value.value)));
        self.check(at(value), result)
    }

    /// `value` if present and passing `rule`, else `default`.
    fn safe_or(
        &mut self,
        what: &str,
        value: Option<&Text>,
        default: &str,
        rule: rules::Rule,
    ) -> Option<String> {
        value.map_or(Some(default.to_owned()), |value| {
            self.safe(what, value, rule)
        })
    }

    /// An integer from `min` to `max`, as the type the model keeps it in.
    fn integer<T>(&mut self, what: &str, value: &Integer, min: T, max: T) -> Option<T>
    where
        T: Copy + Into<i64> + TryFrom<i64> + std::fmt::Display,
    {
        let n = value.value;
        let result = T::try_from(n)
            .ok()
            .filter(|_| (min.into()..=max.into()).contains(&n))
            .ok_or_else(|| format!("{what} {n} is out of range: it must be {min} to {max}"));
        self.check(at(value), result)
    }

    /// `value` checked as a port, or `default` when it is absent.
    fn port(&mut self, what: &str, value: Option<&Integer>, default: u16) -> Option<u16> {
        value.map_or(Some(default), |value| self.port_value(what, value))
    }

    fn port_value(&mut self, what: &str, value: &Integer) -> Option<u16> {
        self.integer(what, value, 1, u16::MAX)
    }

    fn ipv4(&mut self, what: &str, value: &Text) -> Option<Ipv4Addr> {
        let result = value.value.parse::<Ipv4Addr>().map_err(|_| {
            format!(
                "{what} `{}` is not an IPv4 address (write it as four numbers, e.g. 10.0.0.21)",
                shown(&value.value)
            )
        });
        self.check(at(value), result)
    }

    fn byte_size(&mut self, what: &str, value: &Text) -> Option<ByteSize> {
        let result = ByteSize::parse(&value.value).map_err(|e| format!("invalid {what}: {e}"));
        self.check(at(value), result)
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// A file or directory haelk itself reads, resolved against the inventory's
    /// directory; it must exist.
    fn existing_path(&mut self, what: &str, value: &Text, kind: PathKind) -> Option<PathBuf> {
        if value.value.is_empty() {
            self.error(at(value), format!("{what} is empty: it must name a path"));
            return None;
        }
        let resolved = self.resolve(&value.value);
        let found = self.probe.kind(&resolved);
        let (expected, article) = match kind {
            PathKind::File => ("file", "a file"),
            PathKind::Directory => ("directory", "a directory"),
            PathKind::Other => ("path", "a path"),
        };
        match found {
            Some(found) if found == kind => Some(resolved),
            Some(_) => {
                self.error(
                    at(value),
                    format!(
                        "{what} {} is not {article}",
                        shown(&resolved.display().to_string())
                    ),
                );
                None
            }
            None => {
                self.error(
                    at(value),
                    format!(
                        "{what}: {expected} {} does not exist",
                        shown(&resolved.display().to_string())
                    ),
                );
                None
            }
        }
    }

    fn cluster(&mut self, raw: &RawCluster) -> Option<Cluster> {
        let name = self.name("cluster name", &raw.name);
        let elasticsearch = self.elasticsearch(raw);
        let kibana = self.kibana(raw);
        let haproxy = self
            .safe_or(
                "cluster.haproxy.package",
                raw.haproxy.package.as_ref(),
                defaults::HAPROXY_PACKAGE,
                rules::package,
            )
            .map(|package| HaproxyConfig { package });
        let vips = self.vips(raw, elasticsearch.as_ref(), kibana.as_ref());
        let carp = self.carp(raw);
        let snapshots = optional(raw.snapshots.as_ref(), |snapshots| {
            self.snapshots(snapshots)
        });
        Some(Cluster {
            name: name?,
            elasticsearch: elasticsearch?,
            kibana: kibana?,
            haproxy: haproxy?,
            vips,
            carp: carp?,
            snapshots: snapshots?,
        })
    }

    fn elasticsearch(&mut self, raw: &RawCluster) -> Option<ElasticsearchConfig> {
        let es = &raw.elasticsearch;
        let package = self.safe_or(
            "cluster.elasticsearch.package",
            es.package.as_ref(),
            defaults::ELASTICSEARCH_PACKAGE,
            rules::package,
        );
        let heap = optional(es.heap.as_ref(), |heap| {
            self.byte_size("cluster.elasticsearch.heap", heap)
        });
        let http_port = self.port(
            "cluster.elasticsearch.http_port",
            es.http_port.as_ref(),
            defaults::ELASTICSEARCH_HTTP_PORT,
        );
        let transport_port = self.port(
            "cluster.elasticsearch.transport_port",
            es.transport_port.as_ref(),
            defaults::ELASTICSEARCH_TRANSPORT_PORT,
        );
        if let (Some(http), Some(transport), Some(raw_transport)) =
            (http_port, transport_port, &es.transport_port)
            && http == transport
        {
            self.error(
                at(raw_transport),
                format!("cluster.elasticsearch.transport_port {transport} is also the http_port"),
            );
        }
        let settings = self.settings(
            "cluster.elasticsearch.settings",
            &es.settings,
            ELASTICSEARCH_DERIVED_SETTINGS,
        );
        Some(ElasticsearchConfig {
            package: package?,
            heap: heap?,
            http_port: http_port?,
            transport_port: transport_port?,
            settings: settings?,
        })
    }

    fn kibana(&mut self, raw: &RawCluster) -> Option<KibanaConfig> {
        let kibana = &raw.kibana;
        let package = self.safe_or(
            "cluster.kibana.package",
            kibana.package.as_ref(),
            defaults::KIBANA_PACKAGE,
            rules::package,
        );
        let port = self.port(
            "cluster.kibana.port",
            kibana.port.as_ref(),
            defaults::KIBANA_PORT,
        );
        let encryption_key_file = self.existing_path(
            "cluster.kibana.encryption_key_file",
            &kibana.encryption_key_file,
            PathKind::File,
        );
        let settings = self.settings(
            "cluster.kibana.settings",
            &kibana.settings,
            KIBANA_DERIVED_SETTINGS,
        );
        Some(KibanaConfig {
            package: package?,
            port: port?,
            encryption_key_file: encryption_key_file?,
            settings: settings?,
        })
    }

    /// Every valid VIP; a bad one is reported and left out.
    fn vips(
        &mut self,
        raw: &RawCluster,
        elasticsearch: Option<&ElasticsearchConfig>,
        kibana: Option<&KibanaConfig>,
    ) -> BTreeMap<Role, Vip> {
        let fronted: Vec<&str> = Role::ALL
            .iter()
            .filter(|role| **role != Role::Haproxy)
            .map(|role| role.as_str())
            .collect();
        let mut vips = BTreeMap::new();
        let mut vhids: BTreeMap<u8, (Role, Location)> = BTreeMap::new();
        for (key, entry) in raw.vips.iter() {
            let role = match Role::parse(key) {
                Some(Role::Haproxy) => {
                    self.error(
                        key_at(entry),
                        "cluster.vips: `haproxy` cannot have a VIP: a VIP is keyed by the \
                         service it fronts (elasticsearch or kibana), and haproxy carries it",
                    );
                    None
                }
                Some(role) => Some(role),
                None => {
                    self.error(key_at(entry), unknown("VIP service", key, &fronted));
                    None
                }
            };
            let vip = &entry.value;
            let address = self.ipv4(&format!("cluster.vips.{key}.address"), &vip.address);
            let vhid = self.integer(&format!("cluster.vips.{key}.vhid"), &vip.vhid, 1, u8::MAX);
            let service_port = match role {
                Some(Role::Elasticsearch) => elasticsearch.map(|es| es.http_port),
                Some(Role::Kibana) => kibana.map(|k| k.port),
                _ => None,
            };
            let port = match &vip.port {
                Some(port) => self.port_value(&format!("cluster.vips.{key}.port"), port),
                None => service_port,
            };
            if let (Some(vhid), Some(role)) = (vhid, role) {
                if let Some((other, other_at)) = vhids.get(&vhid) {
                    self.error(
                        at(&vip.vhid),
                        format!(
                            "cluster.vips.{key}.vhid {vhid} is already the vhid of the `{other}` \
                             VIP ({}): every VIP needs its own vhid",
                            describe(*other_at)
                        ),
                    );
                } else {
                    vhids.insert(vhid, (role, at(&vip.vhid)));
                }
            }
            if let (Some(role), Some(address), Some(vhid), Some(port)) = (role, address, vhid, port)
            {
                vips.insert(
                    role,
                    Vip {
                        address,
                        vhid,
                        port,
                        location: key_at(entry),
                    },
                );
            }
        }
        vips
    }

    fn carp(&mut self, raw: &RawCluster) -> Option<Carp> {
        let interface = self.safe_or(
            "cluster.carp.interface",
            raw.carp.interface.as_ref(),
            defaults::CARP_INTERFACE,
            rules::interface,
        );
        let password_file = self
            .existing_path(
                "cluster.carp.password_file",
                &raw.carp.password_file,
                PathKind::File,
            )
            .and_then(|path| {
                let Some(text) = self.probe.read_text(&path) else {
                    return Some(path);
                };
                let checked = rules::carp_password(text.trim()).map_err(|why| {
                    format!(
                        "cluster.carp.password_file: the CARP password in {} {why}",
                        shown(&path.display().to_string())
                    )
                });
                self.check(at(&raw.carp.password_file), checked.map(|()| path))
            });
        Some(Carp {
            interface: interface?,
            password_file: password_file?,
        })
    }

    fn snapshots(&mut self, raw: &super::raw::RawSnapshots) -> Option<Snapshots> {
        let repository = self
            .name("cluster.snapshots.repository", &raw.repository)
            .map(|name| name.as_str().to_owned());
        let path = self
            .safe("cluster.snapshots.path", &raw.path, rules::absolute_path)
            .map(PathBuf::from);
        let schedule = self.safe_or(
            "cluster.snapshots.schedule",
            raw.schedule.as_ref(),
            defaults::SNAPSHOT_SCHEDULE,
            rules::cron,
        );
        let retention = &raw.retention;
        let expire_after = self.safe_or(
            "cluster.snapshots.retention.expire_after",
            retention.expire_after.as_ref(),
            defaults::SNAPSHOT_EXPIRE_AFTER,
            rules::time_value,
        );
        let count = |v: &mut Self, what: &str, value: Option<&Integer>, default: u32| {
            value.map_or(Some(default), |value| v.integer(what, value, 1, u32::MAX))
        };
        let min_count = count(
            self,
            "cluster.snapshots.retention.min_count",
            retention.min_count.as_ref(),
            defaults::SNAPSHOT_MIN_COUNT,
        );
        let max_count = count(
            self,
            "cluster.snapshots.retention.max_count",
            retention.max_count.as_ref(),
            defaults::SNAPSHOT_MAX_COUNT,
        );
        if let (Some(min), Some(max)) = (min_count, max_count)
            && min > max
        {
            let where_ = retention
                .max_count
                .as_ref()
                .or(retention.min_count.as_ref())
                .map(at)
                .unwrap_or_else(|| at(&raw.repository));
            self.error(
                where_,
                format!("cluster.snapshots.retention.max_count {max} is below min_count {min}"),
            );
            return None;
        }
        Some(Snapshots {
            repository: repository?,
            path: path?,
            schedule: schedule?,
            retention: Retention {
                expire_after: expire_after?,
                min_count: min_count?,
                max_count: max_count?,
            },
        })
    }

    /// Flat dotted keys with scalar or list-of-scalar values, none of them a key
    /// haelk sets itself.
    fn settings(
        &mut self,
        what: &str,
        raw: &KeyedMap<SettingValue>,
        derived: &[(&str, &str)],
    ) -> Option<BTreeMap<String, serde_json::Value>> {
        let errors_before = self.problems.len();
        let mut settings = BTreeMap::new();
        let mut seen: Vec<(&str, Location)> = Vec::new();
        for (key, entry) in raw.iter() {
            let key_location = key_at(entry);
            if let Err(reason) = rules::setting_key(key) {
                self.error(
                    key_location,
                    format!("{what}: key `{}` is not allowed: {reason}", shown(key)),
                );
                continue;
            }
            let owned_by_haelk = derived
                .iter()
                .find(|(derived_key, _)| key == *derived_key || overlaps(key, derived_key));
            if let Some((derived_key, source)) = owned_by_haelk {
                self.error(
                    key_location,
                    format!(
                        "{what}: `{key}` cannot be set here: haelk sets `{derived_key}` itself \
                         (from {source})"
                    ),
                );
                continue;
            }
            if let Some((other, other_at)) = seen.iter().find(|(other, _)| overlaps(key, other)) {
                self.error(
                    key_location,
                    format!(
                        "{what}: `{key}` and `{other}` ({}) would set the same setting twice",
                        describe(*other_at)
                    ),
                );
                continue;
            }
            seen.push((key, key_location));
            if let Some(value) = self.setting_value(what, key, &entry.value) {
                settings.insert(key.to_owned(), value);
            }
        }
        (self.problems.len() == errors_before).then_some(settings)
    }

    fn setting_value(
        &mut self,
        what: &str,
        key: &str,
        value: &SettingValue,
    ) -> Option<serde_json::Value> {
        use serde_json::Value;
        let location = at(value);
        let scalar_problem = |v: &Value| match v {
            Value::Null => Some("has no value".to_owned()),
            Value::String(s) if s.chars().any(char::is_control) => {
                Some("contains a control character (such as a line break)".to_owned())
            }
            Value::Array(_) => Some("is a nested list".to_owned()),
            Value::Object(_) => Some("is a mapping".to_owned()),
            _ => None,
        };
        match &value.value {
            Value::Object(map) => {
                let example = map
                    .iter()
                    .next()
                    .map(|(child, _)| format!(" (`{key}.{}: ...`)", shown(child)))
                    .unwrap_or_default();
                self.error(
                    location,
                    format!(
                        "{what}: `{key}` is a nested mapping; write flat dotted keys instead{example}"
                    ),
                );
                None
            }
            Value::Array(items) => {
                if let Some(problem) = items.iter().find_map(scalar_problem) {
                    self.error(
                        location,
                        format!(
                            "{what}: an item of `{key}` {problem}; list items must be strings, \
                             numbers or booleans"
                        ),
                    );
                    return None;
                }
                Some(value.value.clone())
            }
            scalar => match scalar_problem(scalar) {
                Some(problem) => {
                    self.error(location, format!("{what}: `{key}` {problem}"));
                    None
                }
                None => Some(scalar.clone()),
            },
        }
    }

    /// Every host, defaults merged; a host with any error is reported and left out.
    fn hosts(&mut self, raw: &RawInventory, fronted_roles: &BTreeSet<Role>) -> Vec<Host> {
        if raw.hosts.value.is_empty() {
            self.error(
                at(&raw.hosts),
                "hosts: the inventory needs at least one host",
            );
        }
        let mut hosts = Vec::new();
        for (key, entry) in raw.hosts.value.iter() {
            let errors_before = self.problems.len();
            let host = self.host(key, entry, raw, fronted_roles);
            if let Some(host) = host
                && self.problems.len() == errors_before
            {
                hosts.push(host);
            }
        }
        hosts
    }

    fn host(
        &mut self,
        key: &str,
        entry: &Keyed<RawHost>,
        raw: &RawInventory,
        fronted_roles: &BTreeSet<Role>,
    ) -> Option<Host> {
        let location = key_at(entry);
        let name = self.check(
            location,
            Name::new(key).map_err(|e| format!("invalid host name: {e}")),
        );
        let host = &entry.value;
        let address = self.safe("host address", &host.address, rules::address);
        let context = HostContext {
            name: key,
            location,
        };
        let ssh = self.ssh(&host.ssh, &raw.defaults.ssh);
        let zfs = self.zfs(&context, &host.zfs, &raw.defaults.zfs);
        let jail_defaults = self.jail_defaults(&context, &host.jail_defaults, &raw.defaults.jails);
        let mut jails = Vec::new();
        for (jail_key, jail_entry) in host.jails.iter() {
            let jail = self.jail(jail_key, jail_entry, fronted_roles);
            if let (Some(jail), Some((settings, gateway_at))) = (&jail, &jail_defaults) {
                self.check_subnet(jail, &jail_entry.value.ip, settings, *gateway_at);
            }
            jails.extend(jail);
        }
        Some(Host {
            name: name?,
            address: address?,
            ssh: ssh?,
            zfs: zfs?,
            jail_defaults: jail_defaults?.0,
            jails,
            location,
        })
    }

    /// `value`, which the host or `defaults` must set: reported at the host when
    /// neither does.
    fn required<'v, T>(
        &mut self,
        host: &HostContext,
        (field, defaults_section, host_section): (&str, &str, &str),
        value: Option<&'v T>,
    ) -> Option<&'v T> {
        if value.is_none() {
            let leaf = field.rsplit('.').next().unwrap_or(field);
            self.error(
                host.location,
                format!(
                    "host `{}` has no `{field}`: set `{leaf}` under `{defaults_section}` or \
                     under the host's `{host_section}`",
                    host.name
                ),
            );
        }
        value
    }

    fn ssh(&mut self, own: &RawSsh, default: &RawSsh) -> Option<Ssh> {
        let user = self.safe_or(
            "ssh.user",
            merged(&own.user, &default.user),
            defaults::SSH_USER,
            rules::user,
        );
        let port = self.port(
            "ssh.port",
            merged(&own.port, &default.port),
            defaults::SSH_PORT,
        );
        let local_path = |v: &mut Self, what: &str, value: Option<&Text>| {
            optional(value, |value| {
                v.safe(what, value, rules::local_path)
                    .map(|path| v.resolve(&path))
            })
        };
        let identity_file = local_path(
            self,
            "ssh.identity_file",
            merged(&own.identity_file, &default.identity_file),
        );
        let known_hosts = local_path(
            self,
            "ssh.known_hosts",
            merged(&own.known_hosts, &default.known_hosts),
        );
        let jump = optional(merged(&own.jump, &default.jump), |jump| {
            self.safe("ssh.jump", jump, rules::jump)
        });
        Some(Ssh {
            user: user?,
            port: port?,
            identity_file: identity_file?,
            known_hosts: known_hosts?,
            jump: jump?,
        })
    }

    fn zfs(&mut self, host: &HostContext, own: &RawZfs, default: &RawZfs) -> Option<Zfs> {
        let dataset = self
            .required(
                host,
                ("zfs.dataset", "defaults.zfs", "zfs"),
                merged(&own.dataset, &default.dataset),
            )
            .and_then(|dataset| self.safe("zfs.dataset", dataset, rules::dataset));
        let mountpoint = self
            .safe_or(
                "zfs.mountpoint",
                merged(&own.mountpoint, &default.mountpoint),
                defaults::ZFS_MOUNTPOINT,
                rules::absolute_path,
            )
            .map(PathBuf::from);
        let compression = self.safe_or(
            "zfs.compression",
            merged(&own.compression, &default.compression),
            defaults::ZFS_COMPRESSION,
            rules::zfs_property,
        );
        Some(Zfs {
            dataset: dataset?,
            mountpoint: mountpoint?,
            compression: compression?,
        })
    }

    /// The host's jail settings, with where its gateway was written.
    fn jail_defaults(
        &mut self,
        host: &HostContext,
        own: &RawJailSettings,
        default: &RawJailSettings,
    ) -> Option<(JailDefaults, Location)> {
        let release = self
            .required(
                host,
                ("jails.release", "defaults.jails", "jail_defaults"),
                merged(&own.release, &default.release),
            )
            .and_then(|release| self.safe("jail release", release, rules::release));
        let base = self
            .required(
                host,
                ("jails.base", "defaults.jails", "jail_defaults"),
                merged(&own.base, &default.base),
            )
            .and_then(|base| self.safe("jail base", base, rules::absolute_path))
            .map(PathBuf::from);
        let bridge = self.safe_or(
            "jail bridge",
            merged(&own.bridge, &default.bridge),
            defaults::BRIDGE,
            rules::interface,
        );
        let uplink = optional(merged(&own.uplink, &default.uplink), |uplink| {
            self.safe("jail uplink", uplink, rules::interface)
        });
        let nameservers = match merged(&own.nameservers, &default.nameservers) {
            None => Some(Vec::new()),
            Some(list) => self.nameservers(list),
        };
        let netmask = merged(&own.netmask, &default.netmask)
            .map_or(Some(defaults::NETMASK), |netmask| {
                self.integer("jail netmask", netmask, 1, 32)
            });
        let gateway = self.required(
            host,
            ("jails.gateway", "defaults.jails", "jail_defaults"),
            merged(&own.gateway, &default.gateway),
        )?;
        let gateway_at = at(gateway);
        let gateway = self.ipv4("jail gateway", gateway)?;
        Some((
            JailDefaults {
                release: release?,
                base: base?,
                bridge: bridge?,
                uplink: uplink?,
                netmask: netmask?,
                gateway,
                nameservers: nameservers?,
            },
            gateway_at,
        ))
    }

    /// `jails.nameservers`: IPv4 addresses, at least one, each once; at most
    /// three (resolv.conf(5)'s MAXNS: the resolver ignores the others).
    fn nameservers(&mut self, list: &Spanned<Vec<Text>>) -> Option<Vec<Ipv4Addr>> {
        if list.value.is_empty() {
            self.error(
                at(list),
                "jail nameservers is empty: list at least one resolver, or leave the key out \
                 to copy each host's /etc/resolv.conf",
            );
            return None;
        }
        if list.value.len() > 3 {
            self.error(
                at(list),
                format!(
                    "jail nameservers lists {} resolvers; resolv.conf(5) uses at most 3",
                    list.value.len()
                ),
            );
            return None;
        }
        let mut addresses = Vec::new();
        let mut ok = true;
        for item in &list.value {
            match self.ipv4("jail nameserver", item) {
                Some(address) if addresses.contains(&address) => {
                    self.error(at(item), format!("nameserver {address} is listed twice"));
                    ok = false;
                }
                Some(address) => addresses.push(address),
                None => ok = false,
            }
        }
        ok.then_some(addresses)
    }

    fn jail(
        &mut self,
        key: &str,
        entry: &Keyed<RawJail>,
        fronted_roles: &BTreeSet<Role>,
    ) -> Option<Jail> {
        let location = key_at(entry);
        let raw = &entry.value;
        let name = self.check(
            location,
            Name::new(key).map_err(|e| format!("invalid jail name: {e}")),
        );
        let role_names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        let role = Role::parse(&raw.role.value);
        if role.is_none() {
            self.error(at(&raw.role), unknown("role", &raw.role.value, &role_names));
        }
        let ip = self.ipv4("jail ip", &raw.ip);
        let fronts = role.and_then(|role| self.fronts(key, location, role, raw, fronted_roles));
        let node_roles = role.and_then(|role| self.node_roles(role, raw));
        let memory = optional(raw.memory.as_ref(), |memory| {
            self.byte_size("jail memory", memory)
        });
        let epair = optional(raw.epair.as_ref(), |epair| {
            self.integer("epair", epair, 0, u16::MAX)
        });
        let advskew = match (&raw.advskew, role) {
            (Some(advskew), Some(role)) if role != Role::Haproxy => {
                self.error(
                    at(advskew),
                    format!("`advskew` is only for haproxy jails; this jail's role is {role}"),
                );
                None
            }
            (Some(advskew), _) => self.integer("advskew", advskew, 0u8, 254).map(Some),
            (None, _) => Some(None),
        };
        Some(Jail {
            name: name?,
            role: role?,
            ip: ip?,
            fronts: fronts?,
            node_roles: node_roles?,
            memory: memory?,
            epair: epair?,
            advskew: advskew?,
            location,
        })
    }

    /// `fronts`: required for haproxy jails, only for them, naming a key of `vips`.
    fn fronts(
        &mut self,
        jail: &str,
        jail_at: Location,
        role: Role,
        raw: &RawJail,
        fronted_roles: &BTreeSet<Role>,
    ) -> Option<Option<Role>> {
        let vip_keys: Vec<&str> = fronted_roles.iter().map(|r| r.as_str()).collect();
        let Some(fronts) = &raw.fronts else {
            if role == Role::Haproxy {
                self.error(
                    jail_at,
                    format!(
                        "haproxy jail `{jail}` needs `fronts`: the service whose VIP it carries \
                         (a key of cluster.vips: {})",
                        if vip_keys.is_empty() {
                            "none defined".to_owned()
                        } else {
                            vip_keys.join(", ")
                        }
                    ),
                );
                return None;
            }
            return Some(None);
        };
        if role != Role::Haproxy {
            self.error(
                at(fronts),
                format!("`fronts` is only for haproxy jails; this jail's role is {role}"),
            );
            return None;
        }
        match Role::parse(&fronts.value) {
            Some(fronted) if fronted_roles.contains(&fronted) => Some(Some(fronted)),
            _ => {
                let message = if vip_keys.is_empty() {
                    format!(
                        "fronts `{}` names no VIP: cluster.vips defines none",
                        shown(&fronts.value)
                    )
                } else {
                    format!(
                        "fronts `{}` names no VIP: {}",
                        shown(&fronts.value),
                        unknown("VIP", &fronts.value, &vip_keys)
                    )
                };
                self.error(at(fronts), message);
                None
            }
        }
    }

    /// `node_roles`: only for elasticsearch jails; default `[master, data]`.
    fn node_roles(&mut self, role: Role, raw: &RawJail) -> Option<Vec<NodeRole>> {
        let Some(list) = &raw.node_roles else {
            return Some(if role == Role::Elasticsearch {
                vec![NodeRole::Master, NodeRole::Data]
            } else {
                Vec::new()
            });
        };
        if role != Role::Elasticsearch {
            self.error(
                at(list),
                format!("`node_roles` is only for elasticsearch jails; this jail's role is {role}"),
            );
            return None;
        }
        let known: Vec<&str> = NodeRole::ALL.iter().map(|r| r.as_str()).collect();
        let mut roles = Vec::new();
        let mut ok = true;
        for item in &list.value {
            match NodeRole::parse(&item.value) {
                Some(node_role) if roles.contains(&node_role) => {
                    self.error(at(item), format!("node role `{node_role}` is listed twice"));
                    ok = false;
                }
                Some(node_role) => roles.push(node_role),
                None => {
                    self.error(at(item), unknown("node role", &item.value, &known));
                    ok = false;
                }
            }
        }
        if roles.contains(&NodeRole::VotingOnly) && !roles.contains(&NodeRole::Master) {
            self.error(
                at(list),
                "node role `voting_only` requires `master` too (a voting-only node is a \
                 master-eligible node that never becomes master)",
            );
            ok = false;
        }
        ok.then_some(roles)
    }

    /// The jail's ip must be a usable host address on the subnet of its gateway.
    fn check_subnet(
        &mut self,
        jail: &Jail,
        ip: &Text,
        settings: &JailDefaults,
        gateway_at: Location,
    ) {
        let netmask = settings.netmask;
        let mask = u32::MAX.checked_shl(32 - u32::from(netmask)).unwrap_or(0);
        let network = Ipv4Addr::from(u32::from(settings.gateway) & mask);
        let broadcast = Ipv4Addr::from(u32::from(network) | !mask);
        let subnet = format!("{network}/{netmask}");
        let problem = if jail.ip == settings.gateway {
            Some(format!("is the gateway ({})", describe(gateway_at)))
        } else if u32::from(jail.ip) & mask != u32::from(network) {
            Some(format!(
                "is not on the subnet {subnet} of the gateway {} ({})",
                settings.gateway,
                describe(gateway_at)
            ))
        } else if netmask <= 30 && jail.ip == network {
            Some(format!("is the network address of {subnet}"))
        } else if netmask <= 30 && jail.ip == broadcast {
            Some(format!("is the broadcast address of {subnet}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(
                at(ip),
                format!("ip {} of jail `{}` {problem}", jail.ip, jail.name),
            );
        }
    }

    /// Rules across hosts and jails: global jail names, unique addresses, epairs.
    fn cross_checks(&mut self, cluster: &Cluster, hosts: &[Host]) {
        let mut addresses: Vec<(Ipv4Addr, Location, String)> = cluster
            .vips
            .iter()
            .map(|(role, vip)| (vip.address, vip.location, format!("the `{role}` VIP")))
            .collect();
        let mut jail_names: BTreeMap<&str, (&str, Location)> = BTreeMap::new();
        let mut ssh_targets: BTreeMap<(&str, u16), (&str, Location)> = BTreeMap::new();
        for host in hosts {
            if let Some((other, other_at)) = ssh_targets.insert(
                (&host.address, host.ssh.port),
                (host.name.as_str(), host.location),
            ) {
                self.error(
                    host.location,
                    format!(
                        "host `{}` has the address {} and ssh port {} of host `{other}` ({})",
                        host.name,
                        host.address,
                        host.ssh.port,
                        describe(other_at)
                    ),
                );
            }
            let mut epairs: BTreeMap<u16, (&str, Location)> = BTreeMap::new();
            for jail in &host.jails {
                addresses.push((jail.ip, jail.location, format!("jail `{}`", jail.name)));
                if let Some((other_host, other_at)) =
                    jail_names.insert(jail.name.as_str(), (host.name.as_str(), jail.location))
                {
                    self.error(
                        jail.location,
                        format!(
                            "jail name `{}` is also used on host `{other_host}` ({}): jail names \
                             must be unique across all hosts (they become node and host names)",
                            jail.name,
                            describe(other_at)
                        ),
                    );
                }
                if let Some(epair) = jail.epair
                    && let Some((other, other_at)) =
                        epairs.insert(epair, (jail.name.as_str(), jail.location))
                {
                    self.error(
                        jail.location,
                        format!(
                            "jail `{}` has epair {epair}, already the epair of jail `{other}` \
                             ({}) on host `{}`",
                            jail.name,
                            describe(other_at),
                            host.name
                        ),
                    );
                }
            }
        }
        addresses.sort_by_key(|(_, location, _)| *location);
        let mut seen: BTreeMap<Ipv4Addr, (Location, &str)> = BTreeMap::new();
        for (address, location, owner) in &addresses {
            if let Some((other_at, other)) = seen.get(address) {
                self.error(
                    *location,
                    format!(
                        "address {address} of {owner} is already used by {other} ({}): jail IPs \
                         and VIPs must all differ",
                        describe(*other_at)
                    ),
                );
            } else {
                seen.insert(*address, (*location, owner));
            }
        }
    }
}

/// Where a host is, for messages about values it lacks.
struct HostContext<'a> {
    name: &'a str,
    location: Location,
}

/// Whether one dotted key is a proper prefix of the other (`a` and `a.b`): both
/// would set the same subtree of the generated YAML.
fn overlaps(a: &str, b: &str) -> bool {
    let prefix_of = |short: &str, long: &str| {
        long.len() > short.len() && long.starts_with(short) && long.as_bytes()[short.len()] == b'.'
    };
    prefix_of(a, b) || prefix_of(b, a)
}

/// Character rules for values that end up on a command line or in a config
/// file on a host. Each returns why a value breaks the rule.
pub mod rules {
    use std::path::{Component, Path};

    /// A check of one value: `Err` says which rule it breaks.
    pub type Rule = fn(&str) -> Result<(), String>;

    fn chars(
        value: &str,
        max_len: usize,
        first: fn(char) -> bool,
        rest: fn(char) -> bool,
        description: &str,
    ) -> Result<(), String> {
        let mut iter = value.chars();
        let ok = match iter.next() {
            None => false,
            Some(c) => first(c) && iter.all(rest) && value.len() <= max_len,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "it must be {description} (at most {max_len} characters)"
            ))
        }
    }

    fn alnum(c: char) -> bool {
        c.is_ascii_alphanumeric()
    }

    /// Where ssh connects: a DNS name, an IPv4 or an IPv6 address.
    pub fn address(value: &str) -> Result<(), String> {
        chars(
            value,
            253,
            |c| alnum(c) || c == ':',
            |c| alnum(c) || matches!(c, '.' | '-' | ':'),
            "a host name or IP address: letters, digits, `.`, `-` and `:`, not starting with `-` or `.`",
        )
    }

    /// A login name on the host.
    pub fn user(value: &str) -> Result<(), String> {
        chars(
            value,
            32,
            |c| c.is_ascii_alphabetic() || c == '_',
            |c| alnum(c) || matches!(c, '.' | '_' | '-'),
            "a user name: letters, digits, `.`, `_` and `-`, starting with a letter or `_`",
        )
    }

    /// `ProxyJump`: `[user@]host[:port]`.
    pub fn jump(value: &str) -> Result<(), String> {
        let (user, rest) = match value.split_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, value),
        };
        if let Some(user) = user {
            self::user(user).map_err(|e| format!("its user part is not valid: {e}"))?;
        }
        let host = match rest.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
                match port.parse::<u16>() {
                    Ok(n) if n > 0 => host,
                    _ => return Err(format!("its port {port} must be 1 to 65535")),
                }
            }
            _ => rest,
        };
        address(host)
            .map_err(|e| format!("it must be [user@]host[:port]; its host part is not valid: {e}"))
    }

    /// A ZFS dataset: `pool/child[/...]`.
    pub fn dataset(value: &str) -> Result<(), String> {
        const RULE: &str = "a ZFS dataset POOL/CHILD[/...]: no leading or trailing `/`, no spaces, \
                            each part letters, digits, `_`, `-`, `.` or `:`, the pool starting with a letter";
        let parts: Vec<&str> = value.split('/').collect();
        let part_ok = |part: &&str| {
            !part.is_empty()
                && *part != "."
                && *part != ".."
                && part
                    .chars()
                    .all(|c| alnum(c) || matches!(c, '_' | '-' | '.' | ':'))
        };
        let pool_ok = parts[0].starts_with(|c: char| c.is_ascii_alphabetic());
        if parts.len() >= 2 && parts.iter().all(part_ok) && pool_ok && value.len() <= 200 {
            Ok(())
        } else {
            Err(format!("it must be {RULE}"))
        }
    }

    const PATH_CHARS: &str = "letters, digits, `/`, `.`, `_`, `-` and `+`";

    fn path_chars(value: &str) -> Result<(), String> {
        let ok_char = |c: char| alnum(c) || matches!(c, '/' | '.' | '_' | '-' | '+');
        if value.is_empty() || value.len() > 1024 || !value.chars().all(ok_char) {
            return Err(format!("a path may contain only {PATH_CHARS}"));
        }
        if Path::new(value)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err("a path may not contain `..`".to_owned());
        }
        Ok(())
    }

    /// An absolute path on a host.
    pub fn absolute_path(value: &str) -> Result<(), String> {
        path_chars(value)?;
        if !value.starts_with('/') {
            return Err("it must be an absolute path (starting with `/`)".to_owned());
        }
        if value.len() > 1 && value.ends_with('/') {
            return Err("it must not end with `/`".to_owned());
        }
        Ok(())
    }

    /// A path on the machine running haelk, absolute or relative to the inventory.
    pub fn local_path(value: &str) -> Result<(), String> {
        path_chars(value)
    }

    /// A package name for `pkg install`.
    pub fn package(value: &str) -> Result<(), String> {
        chars(
            value,
            100,
            alnum,
            |c| alnum(c) || matches!(c, '.' | '_' | '-' | '+'),
            "a package name: letters, digits, `.`, `_`, `-` and `+`, starting with a letter or digit",
        )
    }

    /// A network interface name (`vnet0`, `bridge0`). It becomes part of rc.conf
    /// variable names (`ifconfig_vnet0_alias0`), which are sh names: no `.` (a
    /// VLAN such as `vlan0.5` can be renamed with `ifconfig_vlan0_5_name`). At most 15
    /// characters: IFNAMSIZ is 16 with the final NUL.
    pub fn interface(value: &str) -> Result<(), String> {
        chars(
            value,
            15,
            |c| c.is_ascii_lowercase(),
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
            "an interface name: lower-case letters, digits and `_`, starting with a letter \
             (it becomes part of sh variable names in rc.conf, such as ifconfig_vnet0_alias0)",
        )
    }

    /// The longest CARP password FreeBSD's ifconfig accepts (`CARP_KEY_LEN` in
    /// `netinet/ip_carp.h`; longer ones are refused with "Too long password").
    pub const CARP_PASSWORD_MAX: usize = 20;

    /// A CARP password as it must be to survive rc.conf: network.subr expands
    /// `ifconfig_IF_aliasN` unquoted, so whitespace would split the ifconfig
    /// command and `*?[` would glob. The message never shows the password.
    pub fn carp_password(value: &str) -> Result<(), String> {
        const PUNCTUATION: &str = "!#%+,-./:=@^_~";
        let len = value.chars().count();
        if value.is_empty() {
            return Err("is empty".to_owned());
        }
        if len > CARP_PASSWORD_MAX {
            return Err(format!(
                "has {len} characters; ifconfig accepts at most {CARP_PASSWORD_MAX}"
            ));
        }
        if let Some(position) = value
            .chars()
            .position(|c| !c.is_ascii_alphanumeric() && !PUNCTUATION.contains(c))
        {
            return Err(format!(
                "has a character (the {}) that rc.conf's unquoted expansion would split, \
                 glob or mangle: use letters, digits and {PUNCTUATION}",
                ordinal(position + 1)
            ));
        }
        Ok(())
    }

    /// `1st`, `2nd`, `3rd`, `4th`...
    fn ordinal(n: usize) -> String {
        let suffix = match (n % 10, n % 100) {
            (_, 11..=13) => "th",
            (1, _) => "st",
            (2, _) => "nd",
            (3, _) => "rd",
            _ => "th",
        };
        format!("{n}{suffix}")
    }

    /// A FreeBSD release name (`14.3-RELEASE`).
    pub fn release(value: &str) -> Result<(), String> {
        chars(
            value,
            64,
            alnum,
            |c| alnum(c) || matches!(c, '.' | '_' | '-'),
            "a release name such as 14.3-RELEASE: letters, digits, `.`, `_` and `-`",
        )
    }

    /// A ZFS property value such as the compression (`lz4`, `on`, `gzip-9`).
    pub fn zfs_property(value: &str) -> Result<(), String> {
        chars(
            value,
            32,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            "a ZFS property value: lower-case letters, digits and `-`",
        )
    }

    /// An Elasticsearch cron expression: 6 or 7 fields.
    pub fn cron(value: &str) -> Result<(), String> {
        let ok_char = |c: char| alnum(c) || matches!(c, ' ' | '*' | '?' | '/' | ',' | '-' | '#');
        let fields = value.split_whitespace().count();
        if value.chars().all(ok_char) && (6..=7).contains(&fields) {
            Ok(())
        } else {
            Err(
                "it must be an Elasticsearch cron expression of 6 or 7 fields \
                 (seconds minutes hours day-of-month month day-of-week [year]), e.g. `0 30 1 * * ?`"
                    .to_owned(),
            )
        }
    }

    /// An Elasticsearch time value (`30d`, `12h`).
    pub fn time_value(value: &str) -> Result<(), String> {
        let digits = value.chars().take_while(char::is_ascii_digit).count();
        let unit = &value[digits..];
        if digits > 0 && matches!(unit, "d" | "h" | "m" | "s" | "ms" | "micros" | "nanos") {
            Ok(())
        } else {
            Err(
                "it must be a number and a unit (d, h, m, s, ms, micros, nanos), e.g. `30d`"
                    .to_owned(),
            )
        }
    }

    /// A flat, dotted settings key (`action.destructive_requires_name`).
    pub fn setting_key(value: &str) -> Result<(), String> {
        let part_ok = |part: &str| {
            !part.is_empty() && part.chars().all(|c| alnum(c) || matches!(c, '_' | '-'))
        };
        if value.split('.').all(part_ok) {
            Ok(())
        } else {
            Err(
                "a settings key is words of letters, digits, `_` and `-` joined by single dots"
                    .to_owned(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_list_every_setting_haelk_derives() {
        let docs = include_str!("../../docs/inventory.md");
        let (_, section) = docs.split_once("Keys haelk sets itself").unwrap();
        let (elasticsearch, kibana) = section.split_once("  - Kibana:").unwrap();
        let (kibana, _) = kibana.split_once("\n\n").unwrap();
        for (list, listed) in [
            (ELASTICSEARCH_DERIVED_SETTINGS, elasticsearch),
            (KIBANA_DERIVED_SETTINGS, kibana),
        ] {
            let documented = listed.matches('`').count() / 2;
            assert_eq!(documented, list.len(), "{listed}");
            for (key, _) in list {
                assert!(
                    listed.contains(&format!("`{key}`")),
                    "{key} is not documented"
                );
            }
        }
    }

    #[test]
    fn dotted_keys_overlap_only_at_dots() {
        assert!(overlaps("path", "path.data"));
        assert!(overlaps("path.data.x", "path.data"));
        assert!(!overlaps("path.database", "path.data"));
        assert!(!overlaps("path.data", "path.data"));
    }

    #[test]
    fn shell_bound_values_follow_their_rules() {
        let accepted: &[(rules::Rule, &str)] = &[
            (rules::address, "192.0.2.11"),
            (rules::address, "host-1.example.org"),
            (rules::address, "fe80::1"),
            (rules::user, "root"),
            (rules::user, "_deploy.user-1"),
            (rules::jump, "bastion"),
            (rules::jump, "admin@bastion.example.org:2222"),
            (rules::dataset, "zroot/jails"),
            (rules::dataset, "tank/a/b_c-d.e:f"),
            (rules::absolute_path, "/usr/local/jails"),
            (rules::absolute_path, "/"),
            (rules::local_path, "ssh/id_ed25519"),
            (rules::package, "elasticsearch8"),
            (rules::package, "py311-foo+bar"),
            (rules::interface, "vnet0"),
            (rules::release, "14.3-RELEASE"),
            (rules::zfs_property, "gzip-9"),
            (rules::cron, "0 30 1 * * ?"),
            (rules::time_value, "30d"),
            (rules::setting_key, "xpack.security.authc.token.enabled"),
        ];
        for (rule, value) in accepted {
            assert_eq!(rule(value), Ok(()), "{value:?} should be accepted");
        }
        let rejected: &[(rules::Rule, &str)] = &[
            (rules::address, "-oProxyCommand=x"),
            (rules::address, "host name"),
            (rules::address, ""),
            (rules::user, "1root"),
            (rules::user, "root;id"),
            (rules::jump, "admin@bastion:0"),
            (rules::jump, "-J@x"),
            (rules::dataset, "/zroot/jails"),
            (rules::dataset, "zroot/jails/"),
            (rules::dataset, "zroot"),
            (rules::dataset, "zroot/my jails"),
            (rules::dataset, "zroot/jails@snap"),
            (rules::dataset, "1pool/jails"),
            (rules::absolute_path, "usr/local"),
            (rules::absolute_path, "/usr/local/"),
            (rules::absolute_path, "/usr/../etc"),
            (rules::absolute_path, "/usr/lo cal"),
            (rules::absolute_path, "/usr/$(id)"),
            (rules::local_path, "a'b"),
            (rules::package, "-haproxy"),
            (rules::package, "haproxy;id"),
            (rules::interface, "Vnet0"),
            (rules::interface, "averyveryverylongname0"),
            (rules::release, "14.3 RELEASE"),
            (rules::zfs_property, "LZ4"),
            (rules::cron, "0 30 1 * *"),
            (rules::cron, "0 30 1 * * ?; id"),
            (rules::time_value, "30"),
            (rules::time_value, "d"),
            (rules::time_value, "30 days"),
            (rules::setting_key, "a..b"),
            (rules::setting_key, ".a"),
            (rules::setting_key, "a b"),
        ];
        for (rule, value) in rejected {
            assert!(rule(value).is_err(), "{value:?} should be rejected");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_inventory_directory() {
        assert_eq!(base_dir_of(Path::new("inventory.yaml")), Path::new("."));
        assert_eq!(
            base_dir_of(Path::new("inventories/lab.yaml")),
            Path::new("inventories")
        );
    }

    /// A file system where only the listed files exist.
    struct OnlyFiles(Vec<PathBuf>);

    impl PathProbe for OnlyFiles {
        fn kind(&self, path: &Path) -> Option<PathKind> {
            self.0.contains(&path.to_owned()).then_some(PathKind::File)
        }
    }

    #[test]
    fn secret_files_are_checked_through_the_probe() {
        let yaml = "\
cluster:
  name: test
  kibana: { encryption_key_file: /secrets/kibana.key }
  carp: { password_file: carp.pass }
defaults:
  zfs: { dataset: zroot/jails }
  jails: { release: 14.3-RELEASE, base: /base.txz, gateway: 10.0.0.1 }
hosts:
  one: { address: 192.0.2.1 }
";
        let raw: RawInventory = serde_saphyr::from_str(yaml).unwrap();
        let source = Path::new("/etc/haelk/inventory.yaml");
        let probe = OnlyFiles(vec![PathBuf::from("/secrets/kibana.key")]);
        let problems = validate(&raw, source, &probe).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].location,
            Location {
                line: 4,
                column: 26
            }
        );
        assert_eq!(
            problems[0].message,
            "cluster.carp.password_file: file /etc/haelk/carp.pass does not exist"
        );
        let probe = OnlyFiles(vec![
            PathBuf::from("/secrets/kibana.key"),
            PathBuf::from("/etc/haelk/carp.pass"),
        ]);
        let inventory = validate(&raw, source, &probe).unwrap();
        assert_eq!(
            inventory.cluster.carp.password_file,
            Path::new("/etc/haelk/carp.pass")
        );
    }

    /// A file system of the given files (with their text) and directories (with
    /// their names).
    struct Fake {
        files: Vec<(&'static str, &'static str)>,
        dirs: Vec<(&'static str, Vec<&'static str>)>,
    }

    impl PathProbe for Fake {
        fn kind(&self, path: &Path) -> Option<PathKind> {
            if self.files.iter().any(|(p, _)| Path::new(p) == path) {
                Some(PathKind::File)
            } else if self.dirs.iter().any(|(p, _)| Path::new(p) == path) {
                Some(PathKind::Directory)
            } else {
                None
            }
        }

        fn read_text(&self, path: &Path) -> Option<String> {
            let (_, text) = self.files.iter().find(|(p, _)| Path::new(p) == path)?;
            Some((*text).to_owned())
        }

        fn file_names(&self, dir: &Path) -> Option<Vec<String>> {
            let (_, names) = self.dirs.iter().find(|(p, _)| Path::new(p) == dir)?;
            Some(names.iter().map(|n| (*n).to_owned()).collect())
        }
    }

    const SMALL: &str = "\
templates: /etc
cluster:
  name: test
  kibana: { encryption_key_file: /secrets/kibana.key }
  carp: { password_file: /secrets/carp.pass }
defaults:
  zfs: { dataset: zroot/jails }
  jails: { release: 14.3-RELEASE, base: /base.txz, gateway: 10.0.0.1 }
hosts:
  one: { address: 192.0.2.1 }
";

    fn problems_with(password: &'static str, templates: Vec<&'static str>) -> Vec<Problem> {
        let raw: RawInventory = serde_saphyr::from_str(SMALL).unwrap();
        let probe = Fake {
            files: vec![
                ("/secrets/kibana.key", "k"),
                ("/secrets/carp.pass", password),
            ],
            dirs: vec![("/etc", templates)],
        };
        match validate(&raw, Path::new("/inv/inventory.yaml"), &probe) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    #[test]
    fn a_folder_that_is_not_a_templates_folder_is_refused_at_its_line() {
        let names = vec![
            "passwd",
            "group",
            "rc.conf",
            "hosts",
            "fstab",
            ".hidden",
            "haproxy.conf.tera",
        ];
        let problems = problems_with("s3cret-pass", names);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].location.line, 1);
        let message = &problems[0].message;
        assert!(
            message.starts_with(
                "/etc holds files that are not haelk templates (fstab, group, hosts and 2 more)"
            ),
            "{message}"
        );
        assert!(message.len() < 300, "short: {message}");
        assert!(problems_with("s3cret-pass", vec!["haproxy.conf.tera", ".git"]).is_empty());
    }

    #[test]
    fn a_carp_password_ifconfig_would_split_glob_or_refuse_is_an_error() {
        assert!(problems_with("s3cret+pass/=", Vec::new()).is_empty());
        let secret = "hunter2";
        for (password, expected) in [
            (
                "hunter2 x",
                "has a character (the 8th) that rc.conf's unquoted expansion",
            ),
            ("hunter2*", "the 8th"),
            ("hunter2[a]", "the 8th"),
            ("hunter2\"$(id)", "the 8th"),
            (
                "hunter2hunter2hunter2",
                "has 21 characters; ifconfig accepts at most 20",
            ),
            ("  \n", "is empty"),
        ] {
            let problems = problems_with(password, Vec::new());
            assert_eq!(problems.len(), 1, "{password:?}: {problems:?}");
            let message = &problems[0].message;
            assert!(
                message.starts_with(
                    "cluster.carp.password_file: the CARP password in /secrets/carp.pass "
                ) && message.contains(expected),
                "{password:?}: {message}"
            );
            assert!(
                !message.contains(secret),
                "the password is never shown: {message}"
            );
            assert_eq!(problems[0].location.line, 5);
        }
    }

    #[test]
    fn an_interface_name_must_fit_in_an_rc_variable_name() {
        assert_eq!(rules::interface("vlan0_5"), Ok(()));
        let err = rules::interface("vlan0.5").unwrap_err();
        assert!(err.contains("sh variable names"), "{err}");
    }
}
