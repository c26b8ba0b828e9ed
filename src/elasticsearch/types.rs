//! The Elasticsearch responses haelk reads, as serde types holding only the fields
//! it uses, and the pure functions that turn them into answers and one-line
//! messages. No I/O here: everything is tested on captured response bodies.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A cluster's health colour. Ordered from best to worst, so "at least yellow"
/// is `status <= HealthStatus::Yellow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Green,
    Yellow,
    Red,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Red => "red",
        }
    }

    /// Whether a cluster with this status satisfies a wait for `wanted`.
    pub fn satisfies(self, wanted: HealthStatus) -> bool {
        self <= wanted
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /_cluster/health`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    /// True when a `wait_for_*` condition was not met within the request's timeout.
    #[serde(default)]
    pub timed_out: bool,
    pub number_of_nodes: u32,
    pub number_of_data_nodes: u32,
    pub active_shards: u64,
    pub relocating_shards: u64,
    pub initializing_shards: u64,
    pub unassigned_shards: u64,
}

impl Health {
    /// "yellow, 2 unassigned shards, 1 initializing": the colour and whatever
    /// shards are not settled.
    pub fn summary(&self) -> String {
        let mut text = self.status.to_string();
        for (count, what) in [
            (self.unassigned_shards, "unassigned"),
            (self.initializing_shards, "initializing"),
            (self.relocating_shards, "relocating"),
        ] {
            if count > 0 {
                let plural = if count == 1 { "" } else { "s" };
                text.push_str(&format!(", {count} {what} shard{plural}"));
            }
        }
        text
    }
}

/// `GET /`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RootInfo {
    /// The name of the node that answered.
    pub name: String,
    pub cluster_name: String,
    /// `_na_` until the cluster has formed; see [`RootInfo::formed_cluster_uuid`].
    pub cluster_uuid: String,
    pub version: Version,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    pub number: String,
}

impl RootInfo {
    /// The cluster UUID, or `None` while the node has not joined a formed cluster.
    pub fn formed_cluster_uuid(&self) -> Option<&str> {
        (self.cluster_uuid != "_na_" && !self.cluster_uuid.is_empty())
            .then_some(self.cluster_uuid.as_str())
    }
}

/// One node of the cluster, from `GET /_nodes` and `GET /_cluster/state/master_node,nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub ip: String,
    /// ES role names: `master`, `data`, `voting_only`, `data_hot`, `ingest`, ...
    pub roles: Vec<String>,
    /// Changes every time the node process starts: how a restart is told apart
    /// from a node that never left.
    pub ephemeral_id: String,
    /// The node is the elected master.
    pub elected_master: bool,
}

impl Node {
    /// May become master or vote (voting-only nodes are master-eligible too).
    pub fn is_master_eligible(&self) -> bool {
        self.roles.iter().any(|role| role == "master")
    }

    /// Holds shards (`data` or any `data_*` tier role).
    pub fn is_data(&self) -> bool {
        self.roles.iter().any(|role| role.starts_with("data"))
    }
}

/// `GET /_nodes?filter_path=nodes.*.name,nodes.*.ip,nodes.*.roles`.
#[derive(Debug, Deserialize)]
pub(crate) struct NodesInfo {
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeInfo>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NodeInfo {
    pub name: String,
    pub ip: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `GET /_cluster/state/master_node,nodes`.
#[derive(Debug, Deserialize)]
pub(crate) struct ClusterStateNodes {
    pub master_node: Option<String>,
    #[serde(default)]
    pub nodes: BTreeMap<String, StateNode>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StateNode {
    pub ephemeral_id: String,
    #[serde(default)]
    pub name: String,
}

/// Who is in the cluster according to one node's cluster state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The elected master's name, when the state names one that is a member.
    pub master: Option<String>,
    /// Every member's name, sorted.
    pub nodes: Vec<String>,
}

pub(crate) fn membership(state: &ClusterStateNodes) -> Membership {
    let mut nodes: Vec<String> = state.nodes.values().map(|n| n.name.clone()).collect();
    nodes.sort();
    Membership {
        master: state
            .master_node
            .as_ref()
            .and_then(|id| state.nodes.get(id))
            .map(|n| n.name.clone()),
        nodes,
    }
}

/// Joins node info (addresses, roles) with the cluster state (master, ephemeral
/// ids). A node in one answer and not the other joined or left between the two
/// requests; only nodes in both are returned, sorted by name.
pub(crate) fn join_nodes(info: NodesInfo, state: ClusterStateNodes) -> Vec<Node> {
    let mut nodes: Vec<Node> = info
        .nodes
        .into_iter()
        .filter_map(|(id, node)| {
            let in_state = state.nodes.get(&id)?;
            Some(Node {
                elected_master: state.master_node.as_deref() == Some(id.as_str()),
                ephemeral_id: in_state.ephemeral_id.clone(),
                id,
                name: node.name,
                ip: node.ip,
                roles: node.roles,
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    nodes
}

/// Where `cluster.routing.allocation.enable` is set to during a rolling restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Only primaries are allocated: replicas of a stopped node wait for it
    /// instead of being rebuilt elsewhere.
    Primaries,
    /// The default (the persistent setting removed).
    All,
}

impl Allocation {
    /// The persistent setting's value; `None` resets it to the default, `all`.
    pub fn setting_value(self) -> Option<&'static str> {
        match self {
            Self::Primaries => Some("primaries"),
            Self::All => None,
        }
    }
}

/// `GET /_cluster/settings?flat_settings=true`.
#[derive(Debug, Deserialize)]
pub(crate) struct ClusterSettings {
    #[serde(default)]
    pub persistent: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub transient: BTreeMap<String, serde_json::Value>,
}

impl ClusterSettings {
    /// The effective `cluster.routing.allocation.enable` when it is set (transient
    /// wins over persistent, as in ES); `None` means the default, `all`.
    pub fn allocation_enable(&self) -> Option<String> {
        const KEY: &str = "cluster.routing.allocation.enable";
        self.transient
            .get(KEY)
            .or_else(|| self.persistent.get(KEY))
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    }
}

/// `GET /_cluster/allocation/explain` for an unassigned shard.
#[derive(Debug, Deserialize)]
pub(crate) struct AllocationExplain {
    pub index: String,
    pub shard: u32,
    pub primary: bool,
    pub unassigned_info: Option<UnassignedInfo>,
    pub allocate_explanation: Option<String>,
    #[serde(default)]
    pub node_allocation_decisions: Vec<NodeDecision>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UnassignedInfo {
    pub reason: String,
    #[serde(default)]
    pub delayed: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NodeDecision {
    pub node_name: String,
    #[serde(default)]
    pub deciders: Vec<Decider>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Decider {
    pub decision: String,
    pub explanation: String,
}

impl AllocationExplain {
    /// "index logs shard 0 replica, unassigned (NODE_LEFT): replica allocations
    /// are forbidden due to cluster setting [...]": the shard and the distinct
    /// reasons nodes refused it (each once, with the nodes that gave it), else
    /// ES's own explanation.
    pub fn one_line(&self) -> String {
        let kind = if self.primary { "primary" } else { "replica" };
        let mut line = format!("index {} shard {} {kind}", self.index, self.shard);
        if let Some(info) = &self.unassigned_info {
            line.push_str(&format!(", unassigned ({})", info.reason));
        }
        // A delayed replica is waiting on purpose; the deciders are beside the point.
        let delayed = self.unassigned_info.as_ref().is_some_and(|i| i.delayed);
        let mut refusals: Vec<(&str, Vec<&str>)> = Vec::new();
        if !delayed {
            for node in &self.node_allocation_decisions {
                for decider in node.deciders.iter().filter(|d| d.decision == "NO") {
                    match refusals
                        .iter_mut()
                        .find(|(why, _)| *why == decider.explanation)
                    {
                        Some((_, nodes)) => nodes.push(&node.node_name),
                        None => refusals.push((&decider.explanation, vec![&node.node_name])),
                    }
                }
            }
        }
        if refusals.is_empty() {
            if let Some(explanation) = &self.allocate_explanation {
                line.push_str(": ");
                line.push_str(explanation);
            }
        } else {
            let reasons: Vec<String> = refusals
                .iter()
                .map(|(why, nodes)| format!("{why} [{}]", nodes.join(", ")))
                .collect();
            line.push_str(": ");
            line.push_str(&reasons.join("; "));
        }
        line
    }
}

/// Whether an allocation-explain error means "there is nothing to explain". ES 8
/// says "There are no unassigned shards in this cluster"; ES 7 said "unable to
/// find any unassigned shards to explain".
pub(crate) fn no_unassigned_shards(reason: &str) -> bool {
    reason.contains("no unassigned shards") || reason.contains("unable to find any unassigned")
}

/// `GET /_nodes/stats/jvm,fs`.
#[derive(Debug, Deserialize)]
pub(crate) struct NodesStats {
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeStatsBody>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NodeStatsBody {
    pub name: String,
    pub jvm: JvmStats,
    pub fs: FsStats,
}

#[derive(Debug, Deserialize)]
pub(crate) struct JvmStats {
    pub mem: JvmMem,
}

#[derive(Debug, Deserialize)]
pub(crate) struct JvmMem {
    pub heap_used_percent: u8,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FsStats {
    pub total: FsTotal,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FsTotal {
    pub total_in_bytes: u64,
    pub available_in_bytes: u64,
}

/// One row of `GET /_cat/allocation?format=json&h=node,shards`; `_cat` numbers
/// are strings. The row of node `UNASSIGNED` counts unassigned shards.
#[derive(Debug, Deserialize)]
pub(crate) struct CatAllocationRow {
    pub node: String,
    pub shards: Option<String>,
}

/// What `haelk status` shows per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStats {
    pub name: String,
    pub heap_used_percent: u8,
    pub disk_used_bytes: u64,
    pub disk_total_bytes: u64,
    /// Shard copies on the node (started, initializing or relocating).
    pub shards: u64,
}

/// Node stats joined with the shard counts by node name, sorted by name.
pub(crate) fn join_node_stats(
    stats: NodesStats,
    allocation: &[CatAllocationRow],
) -> Vec<NodeStats> {
    let mut out: Vec<NodeStats> = stats
        .nodes
        .into_values()
        .map(|node| {
            let shards = allocation
                .iter()
                .find(|row| row.node == node.name)
                .and_then(|row| row.shards.as_deref())
                .and_then(|count| count.parse().ok())
                .unwrap_or(0);
            let fs = &node.fs.total;
            NodeStats {
                heap_used_percent: node.jvm.mem.heap_used_percent,
                disk_used_bytes: fs.total_in_bytes.saturating_sub(fs.available_in_bytes),
                disk_total_bytes: fs.total_in_bytes,
                shards,
                name: node.name,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// An ES error body: `{"error": {"type", "reason", ...}, "status"}`, or
/// `{"error": "text", "status"}` for routing errors, or anything else (a proxy's
/// HTML page, an empty body).
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(Deserialize)]
    struct Wrapper {
        error: ErrorField,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ErrorField {
        Typed {
            #[serde(rename = "type")]
            kind: String,
            reason: Option<String>,
        },
        Text(String),
    }
    match serde_json::from_slice::<Wrapper>(body) {
        Ok(Wrapper {
            error: ErrorField::Typed { kind, reason },
        }) => (Some(kind), reason.unwrap_or_default()),
        Ok(Wrapper {
            error: ErrorField::Text(text),
        }) => (None, text),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            const LIMIT: usize = 200;
            let shown: String = text.chars().take(LIMIT).collect();
            let cut = if text.chars().count() > LIMIT {
                "..."
            } else {
                ""
            };
            (None, format!("{shown}{cut}"))
        }
    }
}

/// A duration as an ES time parameter (`timeout=...`).
pub(crate) fn es_time(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_parses_a_real_body_and_summarises_unsettled_shards() {
        let body = r#"{"cluster_name":"prod","status":"yellow","timed_out":true,
            "number_of_nodes":3,"number_of_data_nodes":2,"active_primary_shards":5,
            "active_shards":8,"relocating_shards":0,"initializing_shards":1,
            "unassigned_shards":2,"unassigned_primary_shards":0,"delayed_unassigned_shards":0,
            "number_of_pending_tasks":0,"number_of_in_flight_fetch":0,
            "task_max_waiting_in_queue_millis":0,"active_shards_percent_as_number":72.7}"#;
        let health: Health = serde_json::from_str(body).unwrap();
        assert_eq!(health.status, HealthStatus::Yellow);
        assert!(health.timed_out);
        assert_eq!(
            (health.number_of_nodes, health.number_of_data_nodes),
            (3, 2)
        );
        assert_eq!(
            health.summary(),
            "yellow, 2 unassigned shards, 1 initializing shard"
        );
        let green = Health {
            status: HealthStatus::Green,
            unassigned_shards: 0,
            initializing_shards: 0,
            ..health
        };
        assert_eq!(green.summary(), "green");
    }

    #[test]
    fn a_better_status_satisfies_a_wait_for_a_worse_one() {
        use HealthStatus::*;
        assert!(Green.satisfies(Yellow));
        assert!(Yellow.satisfies(Yellow));
        assert!(!Yellow.satisfies(Green));
        assert!(!Red.satisfies(Yellow));
    }

    #[test]
    fn root_info_reports_no_uuid_before_formation() {
        let formed: RootInfo = serde_json::from_str(
            r#"{"name":"es1","cluster_name":"prod","cluster_uuid":"pq1bmhj0Qo-UdYAh0x0YQw",
               "version":{"number":"8.15.0","build_flavor":"default"},"tagline":"You Know, for Search"}"#,
        )
        .unwrap();
        assert_eq!(formed.formed_cluster_uuid(), Some("pq1bmhj0Qo-UdYAh0x0YQw"));
        assert_eq!(formed.version.number, "8.15.0");
        let unformed = RootInfo {
            cluster_uuid: "_na_".into(),
            ..formed
        };
        assert_eq!(unformed.formed_cluster_uuid(), None);
    }

    #[test]
    fn nodes_join_info_and_state_and_mark_the_master() {
        let info: NodesInfo = serde_json::from_str(
            r#"{"nodes":{
                "aaa":{"name":"es2","ip":"10.0.0.2","roles":["data","master"]},
                "bbb":{"name":"es1","ip":"10.0.0.1","roles":["master","data"]},
                "ccc":{"name":"tie","ip":"10.0.0.3","roles":["master","voting_only"]},
                "ddd":{"name":"new","ip":"10.0.0.4","roles":["data_hot"]}}}"#,
        )
        .unwrap();
        let state: ClusterStateNodes = serde_json::from_str(
            r#"{"cluster_name":"prod","cluster_uuid":"u","master_node":"bbb","nodes":{
                "aaa":{"name":"es2","ephemeral_id":"e-a","transport_address":"10.0.0.2:9300","attributes":{}},
                "bbb":{"name":"es1","ephemeral_id":"e-b","transport_address":"10.0.0.1:9300","attributes":{}},
                "ccc":{"name":"tie","ephemeral_id":"e-c","transport_address":"10.0.0.3:9300","attributes":{}}}}"#,
        )
        .unwrap();
        let nodes = join_nodes(info, state);
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["es1", "es2", "tie"],
            "sorted; `new` not in the state yet"
        );
        assert!(nodes[0].elected_master && !nodes[1].elected_master);
        assert_eq!(nodes[0].ephemeral_id, "e-b");
        assert_eq!(nodes[2].ip, "10.0.0.3");
        assert!(nodes[2].is_master_eligible() && !nodes[2].is_data());
        assert!(nodes[1].is_data());
    }

    #[test]
    fn allocation_enable_reads_transient_over_persistent() {
        let settings: ClusterSettings = serde_json::from_str(
            r#"{"persistent":{"cluster.routing.allocation.enable":"primaries"},"transient":{}}"#,
        )
        .unwrap();
        assert_eq!(settings.allocation_enable().as_deref(), Some("primaries"));
        let both: ClusterSettings = serde_json::from_str(
            r#"{"persistent":{"cluster.routing.allocation.enable":"primaries"},
                "transient":{"cluster.routing.allocation.enable":"none"}}"#,
        )
        .unwrap();
        assert_eq!(both.allocation_enable().as_deref(), Some("none"));
        let default: ClusterSettings =
            serde_json::from_str(r#"{"persistent":{},"transient":{}}"#).unwrap();
        assert_eq!(default.allocation_enable(), None);
    }

    #[test]
    fn allocation_explain_names_the_shard_and_each_distinct_refusal_once() {
        let body = r#"{"index":"logs","shard":0,"primary":false,"current_state":"unassigned",
            "unassigned_info":{"reason":"NODE_LEFT","at":"2024-01-01T00:00:00.000Z",
                "last_allocation_status":"no_attempt"},
            "can_allocate":"no",
            "allocate_explanation":"Elasticsearch isn't allowed to allocate this shard to any of the nodes in the cluster.",
            "node_allocation_decisions":[
              {"node_id":"a","node_name":"es1","transport_address":"10.0.0.1:9300","node_decision":"no",
               "deciders":[{"decider":"enable","decision":"NO","explanation":"replica allocations are forbidden due to cluster setting [cluster.routing.allocation.enable=primaries]"}]},
              {"node_id":"b","node_name":"es2","transport_address":"10.0.0.2:9300","node_decision":"no",
               "deciders":[{"decider":"enable","decision":"NO","explanation":"replica allocations are forbidden due to cluster setting [cluster.routing.allocation.enable=primaries]"},
                           {"decider":"same_shard","decision":"NO","explanation":"a copy of this shard is already allocated to this node"}]}]}"#;
        let explain: AllocationExplain = serde_json::from_str(body).unwrap();
        assert_eq!(
            explain.one_line(),
            "index logs shard 0 replica, unassigned (NODE_LEFT): replica allocations are \
             forbidden due to cluster setting [cluster.routing.allocation.enable=primaries] \
             [es1, es2]; a copy of this shard is already allocated to this node [es2]"
        );
    }

    #[test]
    fn a_delayed_replica_is_explained_by_the_delay() {
        let body = r#"{"index":"logs","shard":2,"primary":false,"current_state":"unassigned",
            "unassigned_info":{"reason":"NODE_LEFT","delayed":true},
            "can_allocate":"allocation_delayed",
            "allocate_explanation":"The node containing this shard copy recently left the cluster.",
            "node_allocation_decisions":[{"node_name":"es1","deciders":[
                {"decider":"same_shard","decision":"NO","explanation":"already there"}]}]}"#;
        let explain: AllocationExplain = serde_json::from_str(body).unwrap();
        assert_eq!(
            explain.one_line(),
            "index logs shard 2 replica, unassigned (NODE_LEFT): The node containing this \
             shard copy recently left the cluster."
        );
    }

    #[test]
    fn nothing_to_explain_is_recognised_in_es7_and_es8_wording() {
        assert!(no_unassigned_shards(
            "No shard was specified in the explain API request, so this request explains a \
             randomly chosen unassigned shard. There are no unassigned shards in this cluster, \
             so this request cannot explain anything."
        ));
        assert!(no_unassigned_shards(
            "unable to find any unassigned shards to explain [ClusterAllocationExplainRequest[useAnyUnassignedShard=true]]"
        ));
        assert!(!no_unassigned_shards("no such index [logs]"));
    }

    #[test]
    fn node_stats_join_heap_disk_and_shard_counts() {
        let stats: NodesStats = serde_json::from_str(
            r#"{"_nodes":{"total":2,"successful":2,"failed":0},"cluster_name":"prod","nodes":{
              "x":{"timestamp":1,"name":"es2","transport_address":"10.0.0.2:9300","roles":["data"],
                   "jvm":{"timestamp":1,"uptime_in_millis":5,"mem":{"heap_used_in_bytes":100,"heap_used_percent":41,"heap_max_in_bytes":1000}},
                   "fs":{"timestamp":1,"total":{"total_in_bytes":1000,"free_in_bytes":400,"available_in_bytes":300}}},
              "y":{"name":"es1",
                   "jvm":{"mem":{"heap_used_percent":7}},
                   "fs":{"total":{"total_in_bytes":2000,"free_in_bytes":2000,"available_in_bytes":2000}}}}}"#,
        )
        .unwrap();
        let rows: Vec<CatAllocationRow> = serde_json::from_str(
            r#"[{"node":"es2","shards":"12"},{"node":"UNASSIGNED","shards":"3"},{"node":"es1","shards":"0"}]"#,
        )
        .unwrap();
        let joined = join_node_stats(stats, &rows);
        assert_eq!(
            joined,
            [
                NodeStats {
                    name: "es1".into(),
                    heap_used_percent: 7,
                    disk_used_bytes: 0,
                    disk_total_bytes: 2000,
                    shards: 0
                },
                NodeStats {
                    name: "es2".into(),
                    heap_used_percent: 41,
                    disk_used_bytes: 700,
                    disk_total_bytes: 1000,
                    shards: 12
                },
            ]
        );
    }

    #[test]
    fn error_bodies_give_type_and_reason_whatever_their_shape() {
        let typed = br#"{"error":{"root_cause":[{"type":"index_not_found_exception","reason":"no such index [x]"}],
            "type":"index_not_found_exception","reason":"no such index [x]","index":"x"},"status":404}"#;
        assert_eq!(
            parse_error_body(typed),
            (
                Some("index_not_found_exception".into()),
                "no such index [x]".into()
            )
        );
        let text =
            br#"{"error":"no handler found for uri [/_bogus] and method [GET]","status":400}"#;
        assert_eq!(
            parse_error_body(text),
            (
                None,
                "no handler found for uri [/_bogus] and method [GET]".into()
            )
        );
        let no_reason =
            br#"{"error":{"type":"master_not_discovered_exception","reason":null},"status":503}"#;
        assert_eq!(
            parse_error_body(no_reason),
            (
                Some("master_not_discovered_exception".into()),
                String::new()
            )
        );
        assert_eq!(
            parse_error_body(b"<html>502 Bad Gateway</html>\n"),
            (None, "<html>502 Bad Gateway</html>".into())
        );
    }

    #[test]
    fn es_time_parameters_are_milliseconds() {
        assert_eq!(es_time(Duration::from_secs(2)), "2000ms");
    }
}
