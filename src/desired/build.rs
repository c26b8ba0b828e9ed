//! Building the desired state of every host from the inventory: the resources
//! (datasets, rc.conf keys, packages, services) and every file, rendered from the
//! templates with the secrets in place.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::{
    Apply, ClusterPhase, Dataset, DesiredState, HostBridge, HostState, JailState, ManagedFile,
    OnChange, carp, epair,
};
use crate::inventory::{Host, Inventory, Jail, Role};
use crate::secret::Secrets;
use crate::templates::{TemplateName, Templates};
use crate::{freebsd, haproxy};

/// Where each service's configuration lives inside its jail.
const ELASTICSEARCH_CONFIG_DIR: &str = "/usr/local/etc/elasticsearch";
const KIBANA_YML: &str = "/usr/local/etc/kibana/kibana.yml";
const HAPROXY_CONF: &str = "/usr/local/etc/haproxy.conf";
/// A haproxy jail's sysctl values (its VNET's CARP settings).
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";
/// What rc.d/local runs at a jail's start: a haproxy jail's CARP watch.
const RC_LOCAL: &str = "/etc/rc.local";

/// The resolver configuration, on the host and in every jail.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// `elasticsearch.yml` keys for which haelk writes a default (`false`, with the
/// reason, in the template) unless the inventory's settings decide them. Keys
/// haelk derives outright are refused by the inventory loader, not here.
const ML_ENABLED: &str = "xpack.ml.enabled";
const SECURITY_ENABLED: &str = "xpack.security.enabled";

/// Everything every host of `inventory` should have. Fails when a template does
/// not render or the inventory asks for something contradictory (two jails with
/// one epair).
pub fn build(
    inventory: &Inventory,
    templates: &Templates,
    secrets: &Secrets,
    phase: ClusterPhase,
) -> Result<DesiredState> {
    let builder = Builder {
        inventory,
        templates,
        secrets,
        phase,
    };
    let hosts = inventory
        .hosts
        .iter()
        .map(|host| {
            builder
                .host(host)
                .with_context(|| format!("host {}", host.name))
        })
        .collect::<Result<_>>()?;
    Ok(DesiredState { hosts })
}

/// The jails of `host` in the order they start: Elasticsearch first (Kibana needs
/// it), then Kibana, then the haproxy jails that front them; file order within a
/// role.
pub fn jail_start_order(host: &Host) -> Vec<&Jail> {
    let mut jails: Vec<&Jail> = host.jails.iter().collect();
    // A stable sort keeps file order within a role.
    jails.sort_by_key(|jail| start_rank(jail.role));
    jails
}

fn start_rank(role: Role) -> u8 {
    match role {
        Role::Elasticsearch => 0,
        Role::Kibana => 1,
        Role::Haproxy => 2,
    }
}

struct Builder<'a> {
    inventory: &'a Inventory,
    templates: &'a Templates,
    secrets: &'a Secrets,
    phase: ClusterPhase,
}

impl Builder<'_> {
    fn host(&self, host: &Host) -> Result<HostState> {
        let epairs = epair::allocate(&host.jails)?;
        let mut datasets = vec![Dataset {
            name: host.zfs.dataset.clone(),
            properties: BTreeMap::from([
                (
                    "mountpoint".to_owned(),
                    host.zfs.mountpoint.display().to_string(),
                ),
                ("compression".to_owned(), host.zfs.compression.clone()),
            ]),
        }];
        let mut files = Vec::new();
        let mut jails = Vec::new();
        for (jail, epair) in host.jails.iter().zip(epairs) {
            let state = self
                .jail(host, jail, epair)
                .with_context(|| format!("jail {}", jail.name))?;
            datasets.push(Dataset {
                name: state.dataset.clone(),
                properties: BTreeMap::new(),
            });
            files.push(self.jail_conf(host, jail, &state)?);
            jails.push(state);
        }

        let jail_list: Vec<&str> = jail_start_order(host)
            .into_iter()
            .map(|j| j.name.as_str())
            .collect();
        let mut rc_conf = BTreeMap::from([
            ("jail_enable".to_owned(), "YES".to_owned()),
            // rc.d/jail finds /etc/jail.conf.d/NAME.conf only for the jails it is
            // told about, and starts them in this order.
            ("jail_list".to_owned(), jail_list.join(" ")),
        ]);
        let mut rc_conf_words = BTreeMap::new();
        let bridge = (!host.jails.is_empty()).then(|| HostBridge {
            name: host.jail_defaults.bridge.clone(),
            uplink: host.jail_defaults.uplink.clone(),
        });
        if let Some(HostBridge {
            name,
            uplink: Some(uplink),
        }) = &bridge
        {
            // rc.d/netif creates the cloned interfaces at boot, then runs
            // `ifconfig BRIDGE addm UPLINK up` from ifconfig_BRIDGE.
            rc_conf_words.insert("cloned_interfaces".to_owned(), vec![name.clone()]);
            rc_conf.insert(format!("ifconfig_{name}"), format!("addm {uplink} up"));
        }
        let mut loader_conf = BTreeMap::new();
        if host.jails.iter().any(|j| j.role == Role::Haproxy) {
            // CARP runs inside the haproxy jails' VNET stacks; the module is global.
            loader_conf.insert("carp_load".to_owned(), "YES".to_owned());
        }
        Ok(HostState {
            host: host.name.clone(),
            base: host.jail_defaults.base.clone(),
            release: host.jail_defaults.release.clone(),
            datasets,
            rc_conf,
            rc_conf_words,
            bridge,
            loader_conf,
            files,
            jails,
        })
    }

    fn jail(&self, host: &Host, jail: &Jail, epair: u16) -> Result<JailState> {
        let root = host.zfs.mountpoint.join(jail.name.as_str());
        let dataset = format!("{}/{}", host.zfs.dataset, jail.name);
        let cluster = &self.inventory.cluster;
        let (package, mut files) = match jail.role {
            Role::Elasticsearch => (
                &cluster.elasticsearch.package,
                self.elasticsearch_files(jail, &root)?,
            ),
            Role::Kibana => (&cluster.kibana.package, vec![self.kibana_yml(jail, &root)?]),
            Role::Haproxy => (
                &cluster.haproxy.package,
                vec![
                    self.haproxy_conf(jail, &root)?,
                    self.sysctl_conf(jail, &root)?,
                    self.carp_watch(jail, &root)?,
                    self.rc_local(jail, &root)?,
                ],
            ),
        };
        files.push(self.jail_rc_conf(host, jail, epair, &root)?);
        files.push(self.resolv_conf(host, jail, &root)?);
        Ok(JailState {
            name: jail.name.clone(),
            role: jail.role,
            root,
            dataset,
            epair,
            packages: vec![package.clone()],
            files,
            services: vec![jail.role.as_str().to_owned()],
        })
    }

    fn render(&self, template: TemplateName, context: &impl Serialize) -> Result<String> {
        self.templates.render(template, context)
    }

    fn elasticsearch_files(&self, jail: &Jail, root: &Path) -> Result<Vec<ManagedFile>> {
        let cluster = &self.inventory.cluster;
        let es = &cluster.elasticsearch;
        let mut masters: Vec<&Jail> = self
            .inventory
            .jails()
            .map(|(_, j)| j)
            .filter(|j| j.is_master_eligible())
            .collect();
        // By name, not by host: moving a jail to another host must not change
        // the other nodes' files (and restart them).
        masters.sort_by(|a, b| a.name.cmp(&b.name));
        let context = ElasticsearchYml {
            cluster_name: cluster.name.as_str(),
            node_name: jail.name.as_str(),
            node_roles: jail.node_roles.iter().map(|r| r.as_str()).collect(),
            network_host: jail.ip.to_string(),
            http_port: es.http_port,
            transport_port: es.transport_port,
            seed_hosts: masters
                .iter()
                .map(|m| format!("{}:{}", m.ip, es.transport_port))
                .collect(),
            // Only master-eligible nodes vote in the first election; a data-only
            // node that starts late would join the formed cluster with the setting,
            // which Elasticsearch refuses.
            initial_master_nodes: match self.phase {
                ClusterPhase::Bootstrap if jail.is_master_eligible() => {
                    masters.iter().map(|m| m.name.as_str()).collect()
                }
                ClusterPhase::Bootstrap | ClusterPhase::Formed => Vec::new(),
            },
            path_repo: cluster
                .snapshots
                .as_ref()
                .map(|s| s.path.display().to_string()),
            ml_default: !es.settings.contains_key(ML_ENABLED),
            security_default: !es.settings.contains_key(SECURITY_ENABLED),
            settings: settings_list(&es.settings),
        };
        let config_dir = in_jail(root, ELASTICSEARCH_CONFIG_DIR);
        let heap = self.inventory.heap(jail).jvm();
        Ok(vec![
            ManagedFile {
                path: config_dir.join("elasticsearch.yml"),
                owner: "root".into(),
                group: "elasticsearch".into(),
                mode: 0o640,
                content: self.render(TemplateName::ElasticsearchYml, &context)?,
                on_change: OnChange::Restart,
                first_start_only_keys: vec!["cluster.initial_master_nodes".into()],
                copy_of: None,
                apply: None,
            },
            ManagedFile {
                path: config_dir.join("jvm.options.d/heap.options"),
                owner: "root".into(),
                group: "elasticsearch".into(),
                mode: 0o644,
                content: self.render(
                    TemplateName::HeapOptions,
                    &HeapOptions {
                        node_name: jail.name.as_str(),
                        heap: &heap,
                    },
                )?,
                on_change: OnChange::Restart,
                first_start_only_keys: Vec::new(),
                copy_of: None,
                apply: None,
            },
        ])
    }

    fn kibana_yml(&self, jail: &Jail, root: &Path) -> Result<ManagedFile> {
        let cluster = &self.inventory.cluster;
        let public_base_url = match cluster.vips.get(&Role::Kibana) {
            Some(vip) => format!("http://{}:{}", vip.address, vip.port),
            None => format!("http://{}:{}", jail.ip, cluster.kibana.port),
        };
        // Directly, not through the ES VIP: Kibana fails over between hosts itself,
        // and the haproxy jails come after Kibana in the deploy order.
        let elasticsearch_hosts = client_facing_nodes(self.inventory, Role::Elasticsearch)
            .into_iter()
            .map(|node| format!("http://{}:{}", node.ip, cluster.elasticsearch.http_port))
            .collect();
        let context = KibanaYml {
            cluster_name: cluster.name.as_str(),
            server_host: jail.ip.to_string(),
            server_port: cluster.kibana.port,
            server_name: jail.name.as_str(),
            public_base_url,
            elasticsearch_hosts,
            encryption_key: self.secrets.kibana_encryption_key.expose(),
            data_dir: kibana_data_dir(&cluster.kibana.package),
            settings: settings_list(&cluster.kibana.settings),
        };
        Ok(ManagedFile {
            path: in_jail(root, KIBANA_YML),
            owner: "root".into(),
            group: "www".into(),
            mode: 0o640,
            content: self.render(TemplateName::KibanaYml, &context)?,
            on_change: OnChange::Restart,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: None,
        })
    }

    fn haproxy_conf(&self, jail: &Jail, root: &Path) -> Result<ManagedFile> {
        let cluster = &self.inventory.cluster;
        let Some(fronts) = jail.fronts else {
            bail!("a haproxy jail must say which service it fronts (`fronts:`)");
        };
        let Some(vip) = cluster.vips.get(&fronts) else {
            bail!("it fronts {fronts}, which has no entry in cluster.vips");
        };
        let server_port = match fronts {
            Role::Elasticsearch => cluster.elasticsearch.http_port,
            Role::Kibana => cluster.kibana.port,
            Role::Haproxy => bail!("a haproxy jail cannot front haproxy"),
        };
        let servers = client_facing_nodes(self.inventory, fronts)
            .into_iter()
            .map(|node| Server {
                name: node.name.as_str(),
                address: node.ip,
                port: server_port,
            })
            .collect();
        let context = HaproxyConf {
            jail_name: jail.name.as_str(),
            fronts: fronts.as_str(),
            vip_address: vip.address,
            vip_port: vip.port,
            vhid: vip.vhid,
            servers,
        };
        Ok(ManagedFile {
            path: in_jail(root, HAPROXY_CONF),
            owner: "root".into(),
            group: "wheel".into(),
            mode: 0o644,
            content: self.render(TemplateName::HaproxyConf, &context)?,
            on_change: OnChange::Reload,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: None,
        })
    }

    fn jail_rc_conf(
        &self,
        host: &Host,
        jail: &Jail,
        epair: u16,
        root: &Path,
    ) -> Result<ManagedFile> {
        let cluster = &self.inventory.cluster;
        let carp = match jail.fronts {
            Some(fronts) if jail.role == Role::Haproxy => {
                let Some(vip) = cluster.vips.get(&fronts) else {
                    bail!("it fronts {fronts}, which has no entry in cluster.vips");
                };
                let Some(advskew) = carp::advskew(self.inventory, jail) else {
                    bail!("it is not a member of the {fronts} VIP");
                };
                Some(CarpAlias {
                    interface: &cluster.carp.interface,
                    vhid: vip.vhid,
                    advskew,
                    password: self.secrets.carp_password.expose(),
                    address: vip.address,
                })
            }
            _ => None,
        };
        let service_config = match jail.role {
            // The rc script wants the configuration *directory* (ES_PATH_CONF).
            Role::Elasticsearch => ELASTICSEARCH_CONFIG_DIR,
            Role::Kibana => KIBANA_YML,
            Role::Haproxy => HAPROXY_CONF,
        };
        // The CARP password makes the file a secret.
        let mode = if carp.is_some() { 0o600 } else { 0o644 };
        let context = JailRcConf {
            jail_name: jail.name.as_str(),
            epair,
            ip: jail.ip,
            netmask: host.jail_defaults.netmask,
            gateway: host.jail_defaults.gateway,
            carp,
            service: jail.role.as_str(),
            service_config,
        };
        Ok(ManagedFile {
            path: in_jail(root, "/etc/rc.conf"),
            owner: "root".into(),
            group: "wheel".into(),
            mode,
            content: self.render(TemplateName::JailRcConf, &context)?,
            on_change: OnChange::Restart,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: None,
        })
    }

    /// The jail's `/etc/resolv.conf`: `pkg -j` and the services resolve names in
    /// the jail's own network stack. From `jails.nameservers`, or else a copy of
    /// the host's own file (as bsdinstall does for a new jail).
    fn resolv_conf(&self, host: &Host, jail: &Jail, root: &Path) -> Result<ManagedFile> {
        let nameservers = &host.jail_defaults.nameservers;
        let (content, copy_of) = if nameservers.is_empty() {
            (String::new(), Some(PathBuf::from(RESOLV_CONF)))
        } else {
            let context = ResolvConf {
                jail_name: jail.name.as_str(),
                nameservers: nameservers.clone(),
            };
            (self.render(TemplateName::ResolvConf, &context)?, None)
        };
        Ok(ManagedFile {
            path: in_jail(root, RESOLV_CONF),
            owner: "root".into(),
            group: "wheel".into(),
            mode: 0o644,
            content,
            // Read at each lookup: nothing to restart.
            on_change: OnChange::Nothing,
            first_start_only_keys: Vec::new(),
            copy_of,
            apply: None,
        })
    }

    /// A haproxy jail's CARP watch script (docs/design.md, CARP).
    fn carp_watch(&self, jail: &Jail, root: &Path) -> Result<ManagedFile> {
        let context = CarpWatch {
            jail_name: jail.name.as_str(),
            stats_socket: haproxy::STATS_SOCKET,
            demotion: freebsd::CARP_WATCH_DEMOTION,
            interval: 1,
            misses: 2,
        };
        Ok(self.carp_watch_file(
            in_jail(root, freebsd::CARP_WATCH_SCRIPT),
            self.render(TemplateName::CarpWatch, &context)?,
        ))
    }

    /// A haproxy jail's `/etc/rc.local`, which starts its CARP watch.
    fn rc_local(&self, jail: &Jail, root: &Path) -> Result<ManagedFile> {
        let context = RcLocal {
            jail_name: jail.name.as_str(),
            carp_watch: freebsd::carp_watch_daemon(),
        };
        Ok(self.carp_watch_file(
            in_jail(root, RC_LOCAL),
            self.render(TemplateName::RcLocal, &context)?,
        ))
    }

    /// A file of the CARP watch: read by sh when the watch starts, so a rewrite
    /// restarts the watch (haproxy is not involved).
    fn carp_watch_file(&self, path: PathBuf, content: String) -> ManagedFile {
        ManagedFile {
            path,
            owner: "root".into(),
            group: "wheel".into(),
            mode: 0o644,
            content,
            on_change: OnChange::Nothing,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: Some(Apply::CarpWatch),
        }
    }

    /// A haproxy jail's `/etc/sysctl.conf`: CARP preemption (docs/design.md, CARP).
    fn sysctl_conf(&self, jail: &Jail, root: &Path) -> Result<ManagedFile> {
        let context = SysctlConf {
            jail_name: jail.name.as_str(),
        };
        Ok(ManagedFile {
            path: in_jail(root, SYSCTL_CONF),
            owner: "root".into(),
            group: "wheel".into(),
            mode: 0o644,
            content: self.render(TemplateName::SysctlConf, &context)?,
            // haproxy does not read it; the values are applied where they live.
            on_change: OnChange::Nothing,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: Some(Apply::Sysctl),
        })
    }

    fn jail_conf(&self, host: &Host, jail: &Jail, state: &JailState) -> Result<ManagedFile> {
        let context = JailConf {
            name: jail.name.as_str(),
            role: jail.role.as_str(),
            path: state.root.display().to_string(),
            bridge: &host.jail_defaults.bridge,
            epair: state.epair,
            // The elasticsearch port's pkg-message asks for 1: it reads mounts.
            enforce_statfs: (jail.role == Role::Elasticsearch).then_some(1),
        };
        Ok(ManagedFile {
            path: crate::freebsd::jail_conf_path(jail.name.as_str()),
            owner: "root".into(),
            group: "wheel".into(),
            mode: 0o644,
            content: self.render(TemplateName::JailConf, &context)?,
            on_change: OnChange::RestartJail,
            first_start_only_keys: Vec::new(),
            copy_of: None,
            apply: None,
        })
    }
}

/// The nodes of `service` a load balancer should send clients to, by name (so
/// that moving a jail between hosts changes no other file). For Elasticsearch
/// that leaves out dedicated master-eligible nodes (including voting-only
/// tiebreakers): client load on them would slow elections, and a small
/// tiebreaker is not sized for it. Should that leave nobody, every node.
pub fn client_facing_nodes(inventory: &Inventory, service: Role) -> Vec<&Jail> {
    let mut all: Vec<&Jail> = inventory
        .jails_with_role(service)
        .map(|(_, jail)| jail)
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    if service != Role::Elasticsearch {
        return all;
    }
    let serving: Vec<&Jail> = all
        .iter()
        .copied()
        .filter(|jail| jail.holds_data() || !jail.is_master_eligible())
        .collect();
    if serving.is_empty() { all } else { serving }
}

/// Kibana's data directory as the kibana port lays it out: `WWWDIR/data`, with
/// WWWDIR `/usr/local/www/PACKAGE` (textproc/kibana8: `www/kibana8`), created by
/// the package owned by www, the user Kibana runs as.
fn kibana_data_dir(package: &str) -> String {
    format!("/usr/local/www/{package}/data")
}

/// `path` (absolute inside the jail) as a path on the host.
fn in_jail(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn settings_list(settings: &BTreeMap<String, serde_json::Value>) -> Vec<Setting<'_>> {
    settings
        .iter()
        .map(|(key, value)| Setting { key, value })
        .collect()
}

// Template contexts: one struct per template, so a template's inputs are listed
// in one place (and an override directory's author can read them here).

/// An extra setting from the inventory. A list, not a map: Tera's maps do not
/// keep order, and the file must not change between renders.
#[derive(Serialize)]
struct Setting<'a> {
    key: &'a str,
    value: &'a serde_json::Value,
}

#[derive(Serialize)]
struct ElasticsearchYml<'a> {
    cluster_name: &'a str,
    node_name: &'a str,
    node_roles: Vec<&'a str>,
    network_host: String,
    http_port: u16,
    transport_port: u16,
    seed_hosts: Vec<String>,
    /// Empty once the cluster has formed.
    initial_master_nodes: Vec<&'a str>,
    path_repo: Option<String>,
    /// Whether to write haelk's defaults `xpack.ml.enabled: false` and
    /// `xpack.security.enabled: false`: only where the inventory's settings do not
    /// decide them.
    ml_default: bool,
    security_default: bool,
    settings: Vec<Setting<'a>>,
}

#[derive(Serialize)]
struct HeapOptions<'a> {
    node_name: &'a str,
    heap: &'a str,
}

#[derive(Serialize)]
struct KibanaYml<'a> {
    cluster_name: &'a str,
    server_host: String,
    server_port: u16,
    server_name: &'a str,
    public_base_url: String,
    elasticsearch_hosts: Vec<String>,
    encryption_key: &'a str,
    /// `path.data`: [`kibana_data_dir`].
    data_dir: String,
    settings: Vec<Setting<'a>>,
}

#[derive(Serialize)]
struct Server<'a> {
    name: &'a str,
    address: Ipv4Addr,
    port: u16,
}

#[derive(Serialize)]
struct HaproxyConf<'a> {
    jail_name: &'a str,
    fronts: &'a str,
    vip_address: Ipv4Addr,
    vip_port: u16,
    vhid: u8,
    servers: Vec<Server<'a>>,
}

#[derive(Serialize)]
struct CarpAlias<'a> {
    interface: &'a str,
    vhid: u8,
    advskew: u8,
    password: &'a str,
    address: Ipv4Addr,
}

#[derive(Serialize)]
struct JailRcConf<'a> {
    jail_name: &'a str,
    epair: u16,
    ip: Ipv4Addr,
    netmask: u8,
    gateway: Ipv4Addr,
    carp: Option<CarpAlias<'a>>,
    service: &'a str,
    service_config: &'a str,
}

#[derive(Serialize)]
struct ResolvConf<'a> {
    jail_name: &'a str,
    nameservers: Vec<Ipv4Addr>,
}

#[derive(Serialize)]
struct SysctlConf<'a> {
    jail_name: &'a str,
}

#[derive(Serialize)]
struct CarpWatch<'a> {
    jail_name: &'a str,
    stats_socket: &'a str,
    demotion: u8,
    /// Seconds between two checks of haproxy.
    interval: u32,
    /// Failed checks in a row before the jail is demoted.
    misses: u32,
}

#[derive(Serialize)]
struct RcLocal<'a> {
    jail_name: &'a str,
    carp_watch: String,
}

#[derive(Serialize)]
struct JailConf<'a> {
    name: &'a str,
    role: &'a str,
    path: String,
    bridge: &'a str,
    epair: u16,
    enforce_statfs: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn build_example(phase: ClusterPhase) -> DesiredState {
        build_with(&testing::example(), phase).unwrap()
    }

    /// `build` with the built-in templates and the inventory's own secrets.
    fn build_with(inventory: &Inventory, phase: ClusterPhase) -> Result<DesiredState> {
        let secrets = Secrets::load(inventory).unwrap();
        build(inventory, &Templates::builtin().unwrap(), &secrets, phase)
    }

    fn host<'a>(state: &'a DesiredState, name: &str) -> &'a HostState {
        state
            .hosts
            .iter()
            .find(|h| h.host.as_str() == name)
            .unwrap()
    }

    fn file<'a>(state: &'a DesiredState, path: &str) -> &'a ManagedFile {
        state
            .hosts
            .iter()
            .flat_map(|h| h.all_files())
            .find(|f| f.path == Path::new(path))
            .unwrap_or_else(|| panic!("no file {path}"))
    }

    #[test]
    fn kibana_keeps_its_data_where_the_port_puts_it_and_leaves_the_pidfile_to_daemon() {
        let state = build_example(ClusterPhase::Formed);
        let yml = file(
            &state,
            "/usr/local/jails/8f15-kibana/usr/local/etc/kibana/kibana.yml",
        );
        let lines: Vec<&str> = yml.content.lines().collect();
        assert!(
            lines.contains(&"path.data: \"/usr/local/www/kibana8/data\""),
            "{}",
            yml.content
        );
        // daemon(8) of the rc script writes the pidfile; Kibana must not rewrite it.
        assert!(
            !lines.iter().any(|line| line.starts_with("pid.file")),
            "{}",
            yml.content
        );
        assert!(!yml.content.contains("/var/db/kibana"));
    }

    #[test]
    fn datasets_are_the_parent_then_one_per_jail() {
        let state = build_example(ClusterPhase::Formed);
        let datasets = &host(&state, "8f14-jmm").datasets;
        let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "zroot/jails",
                "zroot/jails/11e9-haproxy-kibana",
                "zroot/jails/8f15-kibana",
                "zroot/jails/9fbb-haproxy-elasticsearch",
                "zroot/jails/d12c-elasticsearch",
            ]
        );
        assert_eq!(datasets[0].properties["mountpoint"], "/usr/local/jails");
        assert_eq!(datasets[0].properties["compression"], "lz4");
        assert!(datasets[1..].iter().all(|d| d.properties.is_empty()));
    }

    #[test]
    fn jail_list_starts_elasticsearch_then_kibana_then_haproxy() {
        let state = build_example(ClusterPhase::Formed);
        let rc = &host(&state, "8f14-jmm").rc_conf;
        assert_eq!(rc["jail_enable"], "YES");
        assert_eq!(
            rc["jail_list"],
            "d12c-elasticsearch 8f15-kibana 11e9-haproxy-kibana 9fbb-haproxy-elasticsearch"
        );
        assert_eq!(
            host(&state, "7c3a-tiebreak").rc_conf["jail_list"],
            "7c3a-elasticsearch"
        );
    }

    #[test]
    fn carp_is_loaded_only_on_hosts_with_haproxy_jails() {
        let state = build_example(ClusterPhase::Formed);
        assert_eq!(host(&state, "8f14-jmm").loader_conf["carp_load"], "YES");
        assert!(host(&state, "7c3a-tiebreak").loader_conf.is_empty());
    }

    #[test]
    fn each_jail_has_its_package_service_epair_and_jail_conf() {
        let state = build_example(ClusterPhase::Formed);
        let jmm = host(&state, "8f14-jmm");
        let summary: Vec<(&str, u16, &str, &str)> = jmm
            .jails
            .iter()
            .map(|j| {
                (
                    j.name.as_str(),
                    j.epair,
                    j.packages[0].as_str(),
                    j.services[0].as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("11e9-haproxy-kibana", 0, "haproxy", "haproxy"),
                ("8f15-kibana", 1, "kibana8", "kibana"),
                ("9fbb-haproxy-elasticsearch", 2, "haproxy", "haproxy"),
                ("d12c-elasticsearch", 3, "elasticsearch8", "elasticsearch"),
            ]
        );
        let es = &jmm.jails[3];
        assert_eq!(es.root, Path::new("/usr/local/jails/d12c-elasticsearch"));
        assert_eq!(es.dataset, "zroot/jails/d12c-elasticsearch");
        let host_files: Vec<&Path> = jmm.files.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(
            host_files[3],
            Path::new("/etc/jail.conf.d/d12c-elasticsearch.conf")
        );
        assert!(
            jmm.files[3]
                .content
                .contains("vnet.interface = \"epair3b\";")
        );
    }

    #[test]
    fn owners_and_modes_keep_secrets_from_other_users() {
        let state = build_example(ClusterPhase::Formed);
        let jails = "/usr/local/jails";
        let expect = [
            (
                "d12c-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml",
                "root",
                "elasticsearch",
                0o640,
                OnChange::Restart,
            ),
            (
                "d12c-elasticsearch/usr/local/etc/elasticsearch/jvm.options.d/heap.options",
                "root",
                "elasticsearch",
                0o644,
                OnChange::Restart,
            ),
            (
                "8f15-kibana/usr/local/etc/kibana/kibana.yml",
                "root",
                "www",
                0o640,
                OnChange::Restart,
            ),
            (
                "11e9-haproxy-kibana/usr/local/etc/haproxy.conf",
                "root",
                "wheel",
                0o644,
                OnChange::Reload,
            ),
            (
                "11e9-haproxy-kibana/etc/rc.conf",
                "root",
                "wheel",
                0o600,
                OnChange::Restart,
            ),
            (
                "8f15-kibana/etc/rc.conf",
                "root",
                "wheel",
                0o644,
                OnChange::Restart,
            ),
        ];
        for (path, owner, group, mode, on_change) in expect {
            let f = file(&state, &format!("{jails}/{path}"));
            assert_eq!(
                (f.owner.as_str(), f.group.as_str(), f.mode, f.on_change),
                (owner, group, mode, on_change),
                "{path}"
            );
        }
        let jail_conf = file(&state, "/etc/jail.conf.d/8f15-kibana.conf");
        assert_eq!(
            (jail_conf.mode, jail_conf.on_change),
            (0o644, OnChange::RestartJail)
        );
    }

    #[test]
    fn a_data_only_node_never_gets_initial_master_nodes() {
        let mut inventory = testing::example();
        let jail = &mut inventory.hosts[0].jails[3];
        assert_eq!(jail.name.as_str(), "d12c-elasticsearch");
        jail.node_roles = vec![crate::inventory::NodeRole::Data];
        let secrets = Secrets::load(&inventory).unwrap();
        let state = build(
            &inventory,
            &Templates::builtin().unwrap(),
            &secrets,
            ClusterPhase::Bootstrap,
        )
        .unwrap();
        let yml = |path: &str| file(&state, path).content.clone();
        assert!(
            !yml(
                "/usr/local/jails/d12c-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml"
            )
            .contains("initial_master_nodes")
        );
        assert!(
            yml(
                "/usr/local/jails/2a44-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml"
            )
            .contains(
                "cluster.initial_master_nodes: [\"2a44-elasticsearch\",\"7c3a-elasticsearch\"]"
            )
        );
    }

    #[test]
    fn initial_master_nodes_only_while_bootstrapping_and_its_removal_needs_no_restart() {
        let path =
            "/usr/local/jails/d12c-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml";
        let bootstrap = build_example(ClusterPhase::Bootstrap);
        let formed = build_example(ClusterPhase::Formed);
        let bootstrap_yml = &file(&bootstrap, path).content;
        assert!(bootstrap_yml.contains(
            "cluster.initial_master_nodes: [\"2a44-elasticsearch\",\"7c3a-elasticsearch\",\"d12c-elasticsearch\"]"
        ));
        let formed_file = file(&formed, path);
        assert!(!formed_file.content.contains("initial_master_nodes"));
        assert_eq!(formed_file.on_change_from(bootstrap_yml), OnChange::Nothing);
    }

    #[test]
    fn settings_may_decide_the_keys_haelk_only_defaults() {
        let path =
            "/usr/local/jails/d12c-elasticsearch/usr/local/etc/elasticsearch/elasticsearch.yml";
        let yml = |inventory: &Inventory| {
            let state = build_with(inventory, ClusterPhase::Formed).unwrap();
            file(&state, path).content.clone()
        };
        let mut inventory = testing::example();
        inventory.cluster.elasticsearch.settings.clear();
        let defaults = yml(&inventory);
        for key in [ML_ENABLED, SECURITY_ENABLED] {
            inventory
                .cluster
                .elasticsearch
                .settings
                .insert(key.into(), true.into());
        }
        let decided = yml(&inventory);
        assert!(!decided.contains(": false"), "{decided}");
        for (yml, value) in [(&defaults, false), (&decided, true)] {
            for key in [ML_ENABLED, SECURITY_ENABLED] {
                let line = format!("{key}: {value}");
                assert_eq!(yml.matches(&line).count(), 1, "{line} once in:\n{yml}");
            }
        }
    }

    #[test]
    fn colliding_explicit_epairs_fail_naming_host_and_jails() {
        let mut inventory = testing::example();
        inventory.hosts[1].jails[0].epair = Some(5);
        inventory.hosts[1].jails[2].epair = Some(5);
        let err = build_with(&inventory, ClusterPhase::Formed).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("host 11e9-jmm"), "{message}");
        assert!(
            message.contains("2a41-haproxy-kibana and 2a43-haproxy-elasticsearch"),
            "{message}"
        );
    }

    #[test]
    fn haproxy_sends_clients_to_data_nodes_not_to_the_tiebreaker() {
        let inventory = testing::example();
        let names = |role| -> Vec<&str> {
            client_facing_nodes(&inventory, role)
                .iter()
                .map(|j| j.name.as_str())
                .collect()
        };
        assert_eq!(
            names(Role::Elasticsearch),
            ["2a44-elasticsearch", "d12c-elasticsearch"]
        );
        assert_eq!(names(Role::Kibana), ["2a42-kibana", "8f15-kibana"]);

        let mut masters_only = testing::example();
        for host in &mut masters_only.hosts {
            for jail in &mut host.jails {
                jail.node_roles.retain(|r| !r.holds_data());
            }
        }
        assert_eq!(
            client_facing_nodes(&masters_only, Role::Elasticsearch).len(),
            3
        );
    }
}
