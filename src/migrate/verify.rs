//! Waiting until the moved service works on the target.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::{Mover, VERIFY_TIMEOUT};
use crate::elasticsearch::{EsError, HealthStatus};
use crate::haproxy;
use crate::inventory::Role;
use crate::remote::Remote;

impl<R: Remote> Mover<'_, R> {
    /// Waits until the moved service works on the target.
    pub(super) async fn verify_on_target(&self) -> Result<()> {
        let migration = self.migration;
        let jail = &migration.jail;
        let deadline = Instant::now() + VERIFY_TIMEOUT;
        match jail.role {
            Role::Elasticsearch => {
                let client = self
                    .elasticsearch
                    .as_ref()
                    .ok_or_else(|| anyhow!("no Elasticsearch client"))?;
                loop {
                    let seen = client.node_joined(jail.name.as_str()).await;
                    if joined(seen)? {
                        break;
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "{} did not rejoin the cluster within {} s",
                            jail.name,
                            VERIFY_TIMEOUT.as_secs()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                self.say(format!(
                    "{} rejoined the cluster from {}",
                    jail.name, migration.target.name
                ));
                self.restore_cluster().await?;
                let health = client
                    .wait_for_health(HealthStatus::Green, VERIFY_TIMEOUT)
                    .await?;
                self.say(format!("cluster {}", health.summary()));
            }
            Role::Kibana => {
                let local = self
                    .target()?
                    .tunnel(SocketAddr::new(
                        jail.ip.into(),
                        self.inventory.cluster.kibana.port,
                    ))
                    .await?;
                loop {
                    match crate::kibana::status(&format!("http://{local}")).await {
                        Ok(status) if status.is_available() => break,
                        other if Instant::now() >= deadline => {
                            bail!(
                                "{} is not available on {}: {other:?}",
                                jail.name,
                                migration.target.name
                            )
                        }
                        _ => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
                self.say(format!(
                    "{} available on {}",
                    jail.name, migration.target.name
                ));
            }
            Role::Haproxy => {
                loop {
                    let stats = haproxy::read_stats(self.target()?, [jail.name.as_str()]).await?;
                    let up = stats
                        .get(jail.name.as_str())
                        .and_then(|s| s.as_ref().ok())
                        .is_some_and(|servers| {
                            !servers.is_empty() && servers.iter().all(|s| s.is_up())
                        });
                    if up {
                        break;
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "{} on {}: backends not UP: {stats:?}",
                            jail.name,
                            migration.target.name
                        );
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                self.say(format!(
                    "{} serves on {}: every backend UP",
                    jail.name, migration.target.name
                ));
            }
        }
        Ok(())
    }
}

/// Whether the node has joined, from one look at the cluster: an error while the
/// node restarts or a master is being elected (no answer, a 503) means "not
/// yet"; any other error is a real one and ends the wait.
fn joined(seen: Result<bool, EsError>) -> Result<bool, EsError> {
    match seen {
        Ok(joined) => Ok(joined),
        Err(err) if err.is_transient() => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_errors_count_as_not_joined_yet() {
        assert!(joined(Ok(true)).unwrap());
        assert!(!joined(Ok(false)).unwrap());
        let no_answer = EsError::Transport {
            url: "http://127.0.0.1:1".into(),
            message: "connection refused".into(),
        };
        assert!(!joined(Err(no_answer)).unwrap());
        let forbidden = EsError::Status {
            method: "GET".into(),
            path: "/_nodes".into(),
            status: 403,
            error_type: Some("security_exception".into()),
            reason: "action is unauthorized".into(),
        };
        let err = joined(Err(forbidden)).unwrap_err();
        assert!(err.to_string().contains("HTTP 403"), "{err}");
    }
}
