//! Talking to Elasticsearch: a small typed REST client ([`Client`]), reached
//! through an SSH port forward to a node's jail IP ([`crate::remote::forward`]),
//! and the safe restart of one node of a running cluster ([`rolling`]).
//!
//! The response types and the messages built from them are pure ([`types`]);
//! the client does the HTTP.

mod client;
pub mod liveness;
pub mod locate;
pub mod rolling;
pub mod types;

use std::time::Duration;

pub use client::Client;
pub use types::{Allocation, Health, HealthStatus, Membership, Node, NodeStats, RootInfo};

/// Why an Elasticsearch call or a rolling-restart step did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    /// No HTTP answer: connection refused or reset, or the request timed out.
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    /// Elasticsearch answered with an error status.
    #[error("{method} {path}: HTTP {status}: {}{reason}", error_type.as_deref().map(|t| format!("{t}: ")).unwrap_or_default())]
    Status {
        method: String,
        path: String,
        status: u16,
        /// ES's error type (`index_not_found_exception`), when the body had one.
        error_type: Option<String>,
        reason: String,
    },
    /// A successful answer that was not the JSON expected.
    #[error("{path}: unexpected response: {message}")]
    Decode { path: String, message: String },
    /// The cluster is not green, so a node must not be stopped.
    #[error("the cluster is {}, not green: refusing to stop a node{}", health.summary(), first_shard(reason.as_deref()))]
    NotGreen {
        health: Health,
        /// The allocation-explain line of the first unassigned shard.
        reason: Option<String>,
    },
    /// A bounded wait for a health status ran out.
    #[error("the cluster did not turn {wanted} within {}: {last}{}", crate::units::human_duration(*waited), first_shard(reason.as_deref()))]
    HealthTimeout {
        wanted: HealthStatus,
        waited: Duration,
        /// The last health summary seen, or the last error when none was.
        last: String,
        reason: Option<String>,
    },
    /// Some other bounded wait ran out.
    #[error("{what} did not happen within {}: {last}", crate::units::human_duration(*waited))]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
    /// A precondition of a rolling restart does not hold.
    #[error("{0}")]
    Refused(String),
    /// The caller's restart of a node failed.
    #[error("restarting {node}: {message}")]
    Restart { node: String, message: String },
}

impl EsError {
    /// Worth retrying while a node restarts or a master is being elected: no answer,
    /// or a 503 (no master yet, shards unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EsError::Transport { .. } | EsError::Status { status: 503, .. }
        )
    }
}

fn first_shard(reason: Option<&str>) -> String {
    reason.map(|r| format!(" (first: {r})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yellow() -> Health {
        Health {
            status: HealthStatus::Yellow,
            timed_out: false,
            number_of_nodes: 3,
            number_of_data_nodes: 3,
            active_shards: 4,
            relocating_shards: 0,
            initializing_shards: 0,
            unassigned_shards: 2,
        }
    }

    #[test]
    fn health_errors_say_what_was_wanted_what_was_seen_and_why() {
        let err = EsError::HealthTimeout {
            wanted: HealthStatus::Green,
            waited: Duration::from_secs(1800),
            last: yellow().summary(),
            reason: Some("index logs shard 0 replica, unassigned (NODE_LEFT): no node".into()),
        };
        assert_eq!(
            err.to_string(),
            "the cluster did not turn green within 30m: yellow, 2 unassigned shards \
             (first: index logs shard 0 replica, unassigned (NODE_LEFT): no node)"
        );
        let refused = EsError::NotGreen {
            health: yellow(),
            reason: None,
        };
        assert_eq!(
            refused.to_string(),
            "the cluster is yellow, 2 unassigned shards, not green: refusing to stop a node"
        );
    }

    #[test]
    fn status_errors_show_the_es_error_type_when_there_is_one() {
        let typed = EsError::Status {
            method: "GET".into(),
            path: "/logs".into(),
            status: 404,
            error_type: Some("index_not_found_exception".into()),
            reason: "no such index [logs]".into(),
        };
        assert_eq!(
            typed.to_string(),
            "GET /logs: HTTP 404: index_not_found_exception: no such index [logs]"
        );
        assert!(!typed.is_transient());
        let untyped = EsError::Status {
            method: "GET".into(),
            path: "/".into(),
            status: 503,
            error_type: None,
            reason: "Service Unavailable".into(),
        };
        assert_eq!(untyped.to_string(), "GET /: HTTP 503: Service Unavailable");
        assert!(untyped.is_transient());
    }
}
