//! A server's state in the haproxies in front of its service: which servers
//! are in MAINT, setting a server's state (every change goes through
//! [`set_server_state`]), and waiting until the sessions open to it end.

use std::time::{Duration, Instant};

use super::{Engine, HostRun, at_most};
use crate::haproxy::{self, AdminState};
use crate::inventory::{Jail, Role};
use crate::remote::Remote;
use crate::units::human_duration;

impl<'a, R: Remote> Engine<'a, R> {
    /// The servers of `service`'s backend in MAINT in some haproxy in front of it
    /// that answers.
    pub(super) async fn servers_in_maintenance(
        &self,
        service: Role,
    ) -> Result<Vec<String>, String> {
        let backend = haproxy::backend(service);
        let mut servers = Vec::new();
        for (run, jails) in self.fronting(service) {
            let Some(remote) = &run.remote else { continue };
            let stats = haproxy::read_stats(remote, jails.iter().map(|j| j.name.as_str()))
                .await
                .map_err(|e| e.to_string())?;
            for (jail, answer) in stats {
                // A haproxy that does not answer holds no MAINT: that state lives
                // in the running process only, and the haproxy play starts it again.
                let Ok(states) = answer else {
                    tracing::debug!(jail, "stats socket does not answer: no server in MAINT");
                    continue;
                };
                servers.extend(
                    states
                        .into_iter()
                        .filter(|s| s.backend == backend && s.status == "MAINT")
                        .map(|s| s.server),
                );
            }
        }
        Ok(servers)
    }

    /// The haproxy jails of the selected hosts that front `service`, by host run.
    fn fronting(&self, service: Role) -> Vec<(&HostRun<'a, R>, Vec<&'a Jail>)> {
        self.hosts
            .iter()
            .filter_map(|run| {
                let jails: Vec<&'a Jail> = run
                    .host
                    .jails
                    .iter()
                    .filter(|j| j.role == Role::Haproxy && j.fronts == Some(service))
                    .collect();
                (!jails.is_empty()).then_some((run, jails))
            })
            .collect()
    }

    /// Sets `server` of `service`'s backend to `state` in every haproxy in front
    /// of it (one round trip per host, hosts in parallel).
    pub(super) async fn set_backend_state(
        &self,
        service: Role,
        server: &str,
        state: AdminState,
    ) -> Result<(), String> {
        let backend = haproxy::backend(service);
        let backend = &backend;
        let work = self
            .fronting(service)
            .into_iter()
            .map(|(run, jails)| async move {
                set_server_state(run, jails, backend, server, state).await
            });
        let results = at_most(self.forks, work).await;
        results.into_iter().collect()
    }

    /// Waits until no haproxy in front of `service` has a session open to `server`.
    pub(super) async fn wait_drained(
        &self,
        service: Role,
        server: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for (run, jails) in self.fronting(service) {
            let Some(remote) = &run.remote else { continue };
            loop {
                let open: u64 = haproxy::read_stats(remote, jails.iter().map(|j| j.name.as_str()))
                    .await
                    .map_err(|e| e.to_string())?
                    .values()
                    .filter_map(|servers| servers.as_ref().ok())
                    .flatten()
                    .filter(|s| s.server == server)
                    .map(|s| s.sessions)
                    .sum();
                if open == 0 {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{open} sessions still open to {server} after {}",
                        human_duration(timeout)
                    ));
                }
                self.progress.waiting(
                    Some(run.name()),
                    &format!("the sessions to {server} to end"),
                    timeout.saturating_sub(deadline.saturating_duration_since(Instant::now())),
                    &format!("{open} open"),
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }
}

/// Sets `server` of `backend` to `state` in `jails`, haproxy jails of `run`'s
/// host: one round trip. Every change of a server's state goes through here.
pub(super) async fn set_server_state<'j, R: Remote>(
    run: &HostRun<'_, R>,
    jails: impl IntoIterator<Item = &'j Jail>,
    backend: &str,
    server: &str,
    state: AdminState,
) -> Result<(), String> {
    let remote = run.connected()?;
    let script = haproxy::set_state_script(
        jails.into_iter().map(|j| j.name.as_str()),
        backend,
        server,
        state,
    );
    remote
        .run(&script)
        .await
        .and_then(|o| o.check(run.name(), &format!("setting {backend}/{server} {state:?}")))
        .map(|_| ())
        .map_err(|e| e.to_string())
}
