//! The inventory as written: serde structs that mirror the YAML one to one.
//!
//! Nothing here is validated beyond its YAML shape. Every struct denies unknown
//! fields, and values that a later rule may reject are wrapped in [`Spanned`] so
//! the diagnostic can point at them. Optional values stay `Option` here: whether
//! a default applies, and which one, is decided in `validate`, where host values
//! are merged over `defaults`.

use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use indexmap::map::Entry;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// A string with the place it was written.
pub type Text = Spanned<String>;
/// An integer with the place it was written. Ranges are checked in `validate`
/// so that an out-of-range value gets a message that names the allowed range.
pub type Integer = Spanned<i64>;
/// A value of `settings:`, kept as free-form data until `validate` checks it.
pub type SettingValue = Spanned<serde_json::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub cluster: RawCluster,
    #[serde(default)]
    pub defaults: RawDefaults,
    pub hosts: Spanned<KeyedMap<RawHost>>,
    pub templates: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: Text,
    #[serde(default)]
    pub elasticsearch: RawElasticsearch,
    pub kibana: RawKibana,
    #[serde(default)]
    pub haproxy: RawHaproxy,
    #[serde(default)]
    pub vips: KeyedMap<RawVip>,
    pub carp: RawCarp,
    pub snapshots: Option<RawSnapshots>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawElasticsearch {
    pub package: Option<Text>,
    pub heap: Option<Text>,
    pub http_port: Option<Integer>,
    pub transport_port: Option<Integer>,
    #[serde(default)]
    pub settings: KeyedMap<SettingValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKibana {
    pub package: Option<Text>,
    pub port: Option<Integer>,
    pub encryption_key_file: Text,
    #[serde(default)]
    pub settings: KeyedMap<SettingValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHaproxy {
    pub package: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVip {
    pub address: Text,
    pub vhid: Integer,
    /// Defaults to the port of the service the VIP fronts.
    pub port: Option<Integer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCarp {
    pub interface: Option<Text>,
    pub password_file: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnapshots {
    pub repository: Text,
    pub path: Text,
    pub schedule: Option<Text>,
    #[serde(default)]
    pub retention: RawRetention,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub expire_after: Option<Text>,
    pub min_count: Option<Integer>,
    pub max_count: Option<Integer>,
}

/// `defaults:`: per-host settings every host inherits field by field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    pub ssh: RawSsh,
    #[serde(default)]
    pub zfs: RawZfs,
    #[serde(default)]
    pub jails: RawJailSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    pub user: Option<Text>,
    pub port: Option<Integer>,
    pub identity_file: Option<Text>,
    pub known_hosts: Option<Text>,
    pub jump: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZfs {
    pub dataset: Option<Text>,
    pub mountpoint: Option<Text>,
    pub compression: Option<Text>,
}

/// `defaults.jails` and a host's `jail_defaults`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJailSettings {
    pub release: Option<Text>,
    pub base: Option<Text>,
    pub bridge: Option<Text>,
    pub uplink: Option<Text>,
    pub netmask: Option<Integer>,
    pub gateway: Option<Text>,
    pub nameservers: Option<Spanned<Vec<Text>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub address: Text,
    #[serde(default)]
    pub ssh: RawSsh,
    #[serde(default)]
    pub zfs: RawZfs,
    #[serde(default)]
    pub jail_defaults: RawJailSettings,
    #[serde(default)]
    pub jails: KeyedMap<RawJail>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJail {
    pub role: Text,
    pub ip: Text,
    pub fronts: Option<Text>,
    pub node_roles: Option<Spanned<Vec<Text>>>,
    pub memory: Option<Text>,
    pub epair: Option<Integer>,
    pub advskew: Option<Integer>,
}

/// A YAML mapping with string keys, in file order, each key with its location.
///
/// Hosts, jails, VIPs and settings are mappings whose order matters (it decides
/// epair numbers and CARP advskew) and whose keys are names a diagnostic must be
/// able to point at, which a plain map of `Spanned` values cannot do.
#[derive(Debug)]
pub struct KeyedMap<V>(IndexMap<String, Keyed<V>>);

/// One entry of a [`KeyedMap`]: the value and where its key was written.
#[derive(Debug)]
pub struct Keyed<V> {
    pub key_location: Location,
    pub value: V,
}

impl<V> Default for KeyedMap<V> {
    fn default() -> Self {
        Self(IndexMap::new())
    }
}

impl<V> KeyedMap<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Keyed<V>)> {
        self.0.iter().map(|(key, entry)| (key.as_str(), entry))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for KeyedMap<V> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyedMapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for KeyedMapVisitor<V> {
            type Value = KeyedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = IndexMap::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<V>()?;
                    // The parser already rejects duplicate keys; this keeps the
                    // guarantee even if it is ever configured otherwise.
                    match entries.entry(key.value) {
                        Entry::Occupied(entry) => {
                            return Err(de::Error::custom(format!(
                                "duplicate key `{}`",
                                entry.key()
                            )));
                        }
                        Entry::Vacant(entry) => {
                            entry.insert(Keyed {
                                key_location: key.referenced,
                                value,
                            });
                        }
                    }
                }
                Ok(KeyedMap(entries))
            }
        }

        deserializer.deserialize_map(KeyedMapVisitor(PhantomData))
    }
}
