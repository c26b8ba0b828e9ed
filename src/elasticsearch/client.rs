//! The HTTP side of the Elasticsearch client: one `reqwest` client per base URL
//! (usually a port forward's `http://127.0.0.1:PORT`), a timeout on every request,
//! ES error bodies turned into [`EsError::Status`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};
use tracing::debug;

use super::EsError;
use super::types::{
    Allocation, AllocationExplain, CatAllocationRow, ClusterSettings, ClusterStateNodes, Health,
    HealthStatus, Membership, Node, NodeStats, NodesInfo, NodesStats, RootInfo, es_time,
    join_node_stats, join_nodes, membership, no_unassigned_shards,
};
use crate::remote::error_chain;

/// Elasticsearch's default `master_timeout`: how long a node holds a request
/// that needs the elected master while there is none.
const MASTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of a request that does not wait on the cluster's health. Longer than
/// [`MASTER_TIMEOUT`], so that a cluster without an elected master answers with
/// its own error (`master_not_discovered_exception`) instead of a timeout.
const REQUEST_TIMEOUT: Duration = MASTER_TIMEOUT.saturating_add(SLACK);
/// Timeout of a liveness probe: a node that is up answers `GET /` from memory.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one `wait_for_status` request asks ES to wait: short enough that a
/// node going away mid-wait costs little, long enough not to poll hard.
const HEALTH_SLICE: Duration = Duration::from_secs(10);
/// Extra time the HTTP request gets over ES's own `timeout`.
const SLACK: Duration = Duration::from_secs(5);
/// Pause after a failed attempt in a bounded wait.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A client for one Elasticsearch node's REST API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
}

/// An HTTP answer, whatever its status.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Client {
    /// A client for `base_url` (`http://HOST:PORT`, no path). Nothing is sent yet.
    pub fn new(base_url: impl Into<String>) -> Result<Self, EsError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| EsError::Transport {
                url: base_url.clone(),
                message: format!("cannot build an HTTP client: {}", error_chain(&err)),
            })?;
        Ok(Self { http, base_url })
    }

    /// `GET /`: the answering node's name, the cluster name and UUID, the version.
    pub async fn root(&self) -> Result<RootInfo, EsError> {
        self.json(Method::GET, "/", None).await
    }

    /// The cluster UUID, or `None` while the cluster has not formed (`_na_`).
    pub async fn cluster_uuid(&self) -> Result<Option<String>, EsError> {
        Ok(self.root().await?.formed_cluster_uuid().map(str::to_owned))
    }

    /// `GET /_cluster/health` now, without waiting.
    pub async fn health(&self) -> Result<Health, EsError> {
        self.json(Method::GET, "/_cluster/health", None).await
    }

    /// Waits until the cluster is at least `wanted` (green also satisfies yellow),
    /// for at most `timeout`. While a node restarts or a master is elected, the
    /// node asked may not answer or answer 503: such errors are retried until the
    /// deadline. On timeout the error gives the last health seen and why the first
    /// unassigned shard stays unassigned.
    pub async fn wait_for_health(
        &self,
        wanted: HealthStatus,
        timeout: Duration,
    ) -> Result<Health, EsError> {
        let deadline = Instant::now() + timeout;
        let mut last_health: Option<Health> = None;
        let mut last_error: Option<EsError>;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(HEALTH_SLICE);
            let path = format!(
                "/_cluster/health?wait_for_status={wanted}&timeout={}",
                es_time(slice)
            );
            last_error = match self.send(Method::GET, &path, None, slice + SLACK).await {
                // 408 is ES's answer to a wait that timed out; the body is the health.
                Ok(answer)
                    if answer.status.is_success()
                        || answer.status == StatusCode::REQUEST_TIMEOUT =>
                {
                    let health: Health = decode(&path, &answer.body)?;
                    if !health.timed_out && health.status.satisfies(wanted) {
                        return Ok(health);
                    }
                    last_health = Some(health);
                    None
                }
                Ok(answer) => {
                    let err = status_error(&Method::GET, &path, &answer);
                    if !err.is_transient() {
                        return Err(err);
                    }
                    Some(err)
                }
                Err(err) => Some(err),
            };
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if last_error.is_some() {
                // ES did not wait for us: pause so a refused connection is not a busy loop.
                sleep(RETRY_PAUSE.min(deadline - now)).await;
            }
        }
        let (last, reason) = match last_health {
            Some(health) => {
                // Best effort: the explanation enriches the message, its failure must not hide it.
                let reason = if health.unassigned_shards > 0 {
                    self.allocation_explain().await.ok().flatten()
                } else {
                    None
                };
                (health.summary(), reason)
            }
            None => (
                last_error.map_or_else(|| "no answer".to_owned(), |e| e.to_string()),
                None,
            ),
        };
        Err(EsError::HealthTimeout {
            wanted,
            waited: timeout,
            last,
            reason,
        })
    }

    /// Every node in the cluster, sorted by name, the elected master marked.
    pub async fn nodes(&self) -> Result<Vec<Node>, EsError> {
        let info: NodesInfo = self
            .json(
                Method::GET,
                "/_nodes?filter_path=nodes.*.name,nodes.*.ip,nodes.*.roles",
                None,
            )
            .await?;
        let state: ClusterStateNodes = self
            .json(Method::GET, "/_cluster/state/master_node,nodes", None)
            .await?;
        Ok(join_nodes(info, state))
    }

    /// The node called `name`, if it is in the cluster now.
    pub async fn node(&self, name: &str) -> Result<Option<Node>, EsError> {
        Ok(self.nodes().await?.into_iter().find(|n| n.name == name))
    }

    /// Whether a node called `name` is in the cluster now.
    pub async fn node_joined(&self, name: &str) -> Result<bool, EsError> {
        Ok(self.node(name).await?.is_some())
    }

    /// Sets the persistent `cluster.routing.allocation.enable`.
    pub async fn set_allocation(&self, allocation: Allocation) -> Result<(), EsError> {
        let body = json!({
            "persistent": { "cluster.routing.allocation.enable": allocation.setting_value() }
        });
        self.json::<Value>(Method::PUT, "/_cluster/settings", Some(&body))
            .await?;
        Ok(())
    }

    /// The effective `cluster.routing.allocation.enable`; `None` is the default, `all`.
    pub async fn allocation_enable(&self) -> Result<Option<String>, EsError> {
        let settings: ClusterSettings = self
            .json(Method::GET, "/_cluster/settings?flat_settings=true", None)
            .await?;
        Ok(settings.allocation_enable())
    }

    /// Sets (or, with `None`, clears) `cluster.routing.allocation.exclude._name`:
    /// the named nodes lose their shards to the others.
    pub async fn set_exclusion(&self, nodes: Option<&str>) -> Result<(), EsError> {
        let body = json!({
            "persistent": { "cluster.routing.allocation.exclude._name": nodes }
        });
        self.json::<Value>(Method::PUT, "/_cluster/settings", Some(&body))
            .await?;
        Ok(())
    }

    /// The persistent `cluster.routing.allocation.exclude._name`, when set.
    pub async fn exclusion(&self) -> Result<Option<String>, EsError> {
        let settings: Value = self
            .json(Method::GET, "/_cluster/settings?flat_settings=true", None)
            .await?;
        Ok(
            settings["persistent"]["cluster.routing.allocation.exclude._name"]
                .as_str()
                .map(str::to_owned),
        )
    }

    /// How many shard copies (started, relocating or initializing) `node` holds.
    pub async fn shards_on(&self, node: &str) -> Result<usize, EsError> {
        let rows: Vec<Value> = self
            .json(
                Method::GET,
                "/_cat/shards?format=json&h=index,shard,node",
                None,
            )
            .await?;
        Ok(rows
            .iter()
            .filter(|row| {
                // A relocating copy reads `FROM -> ADDRESS ID TO`.
                row["node"]
                    .as_str()
                    .is_some_and(|n| n.split_whitespace().any(|word| word == node))
            })
            .count())
    }

    /// Every shard copy: (index, shard number, node; `None` while unassigned).
    pub async fn shard_copies(&self) -> Result<Vec<(String, String, Option<String>)>, EsError> {
        let rows: Vec<Value> = self
            .json(
                Method::GET,
                "/_cat/shards?format=json&h=index,shard,node",
                None,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let text = |key: &str| match &row[key] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                // A relocating copy reads `FROM -> ADDRESS ID TO`: it is on FROM.
                let node = row["node"]
                    .as_str()
                    .and_then(|n| n.split_whitespace().next())
                    .map(str::to_owned);
                (text("index"), text("shard"), node)
            })
            .collect())
    }

    /// Excludes a master-eligible node from the voting configuration, so the
    /// cluster keeps its quorum without it.
    pub async fn add_voting_exclusion(&self, node: &str) -> Result<(), EsError> {
        self.send_checked(
            Method::POST,
            &format!("/_cluster/voting_config_exclusions?node_names={node}"),
        )
        .await
    }

    /// Clears every voting exclusion (`wait_for_removal=false`: the excluded node
    /// is back in the cluster).
    pub async fn clear_voting_exclusions(&self) -> Result<(), EsError> {
        self.send_checked(
            Method::DELETE,
            "/_cluster/voting_config_exclusions?wait_for_removal=false",
        )
        .await
    }

    /// A request whose answer has no body worth decoding.
    async fn send_checked(&self, method: Method, path: &str) -> Result<(), EsError> {
        let answer = self
            .send(method.clone(), path, None, REQUEST_TIMEOUT)
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(status_error(&method, path, &answer))
        }
    }

    /// `POST /_flush`: writes in-memory operations to disk so recovery after a
    /// restart has less to replay.
    pub async fn flush(&self) -> Result<(), EsError> {
        self.json::<Value>(Method::POST, "/_flush", None).await?;
        Ok(())
    }

    /// One line saying why the first unassigned shard is unassigned, or `None`
    /// when every shard is assigned.
    pub async fn allocation_explain(&self) -> Result<Option<String>, EsError> {
        match self
            .json::<AllocationExplain>(Method::GET, "/_cluster/allocation/explain", None)
            .await
        {
            Ok(explain) => Ok(Some(explain.one_line())),
            Err(EsError::Status {
                status: 400,
                ref reason,
                ..
            }) if no_unassigned_shards(reason) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Heap, disk and shard count of every node, sorted by name.
    pub async fn node_stats(&self) -> Result<Vec<NodeStats>, EsError> {
        let stats: NodesStats = self.json(Method::GET, "/_nodes/stats/jvm,fs", None).await?;
        let allocation: Vec<CatAllocationRow> = self
            .json(
                Method::GET,
                "/_cat/allocation?format=json&h=node,shards",
                None,
            )
            .await?;
        Ok(join_node_stats(stats, &allocation))
    }

    /// `GET /` with a short timeout: the name of the node this client talks to,
    /// as it answers now. A stopped or frozen process gives no answer within
    /// [`LIVENESS_TIMEOUT`], which is the point: a liveness probe must not wait.
    pub async fn answering_name(&self) -> Result<String, EsError> {
        let info: RootInfo = self
            .json_within(Method::GET, "/", None, LIVENESS_TIMEOUT)
            .await?;
        Ok(info.name)
    }

    /// The cluster state this node holds itself (`local=true`): the elected
    /// master's name and every member's, with a short timeout. Asked of the
    /// elected master, it is the membership the master serves.
    pub async fn local_membership(&self) -> Result<Membership, EsError> {
        let state: ClusterStateNodes = self
            .json_within(
                Method::GET,
                "/_cluster/state/master_node,nodes?local=true",
                None,
                LIVENESS_TIMEOUT,
            )
            .await?;
        Ok(membership(&state))
    }

    /// Sends a request and decodes a successful JSON answer.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, EsError> {
        self.json_within(method, path, body, REQUEST_TIMEOUT).await
    }

    /// [`Self::json`] with its own timeout.
    async fn json_within<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<T, EsError> {
        let answer = self.send(method.clone(), path, body, timeout).await?;
        if !answer.status.is_success() {
            return Err(status_error(&method, path, &answer));
        }
        decode(path, &answer.body)
    }

    /// Sends a request; only a missing answer is an error here.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Answer, EsError> {
        let url = format!("{}{path}", self.base_url);
        debug!(%method, %url, "elasticsearch request");
        let mut request = self.http.request(method, &url).timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |err: reqwest::Error| EsError::Transport {
            url: url.clone(),
            message: error_chain(&err),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer { status, body })
    }
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, EsError> {
    serde_json::from_slice(body).map_err(|err| EsError::Decode {
        path: path.to_owned(),
        message: err.to_string(),
    })
}

fn status_error(method: &Method, path: &str, answer: &Answer) -> EsError {
    let (error_type, reason) = super::types::parse_error_body(&answer.body);
    EsError::Status {
        method: method.to_string(),
        path: path.to_owned(),
        status: answer.status.as_u16(),
        error_type,
        reason,
    }
}
