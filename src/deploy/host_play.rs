//! The host play (datasets, jails, packages: one script per host) and its
//! host_ready gate, which waits until every declared jail of the host runs.

use std::time::{Duration, Instant};

use super::gates::POLL;
use super::{Engine, HostRun, Progress, Stop, at_most};
use crate::playbook::{Batch, Gate, Play};
use crate::remote::Remote;
use crate::units::human_duration;

impl<'a, R: Remote> Engine<'a, R> {
    /// Indexes of the selected hosts among `batch.hosts`, without failed ones.
    fn runs_of(&self, batch: &Batch<'_>) -> Vec<usize> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, run)| batch.hosts.iter().any(|h| h.name == run.host.name))
            .map(|(index, _)| index)
            .collect()
    }

    pub(super) async fn host_play(&mut self, play: &Play) -> Result<(), Stop> {
        let mut running_total = 0;
        let mut declared_total = 0;
        for batch in play.batches(self.inventory) {
            let indexes = self.runs_of(&batch);
            let progress = &self.progress;
            let hosts = &self.hosts;
            let work = indexes.iter().map(|&index| async move {
                let run = &hosts[index];
                let (Some(remote), Some(plan), Some(facts)) = (&run.remote, &run.plan, &run.facts)
                else {
                    return Ok(Vec::new());
                };
                // A host this deploy does not change is only checked.
                if plan.prepare.is_empty() || !run.changes {
                    return Ok(facts
                        .jails
                        .iter()
                        .filter(|(_, j)| j.running)
                        .map(|(name, _)| name.clone())
                        .collect());
                }
                progress.step(
                    run.name(),
                    format!("host play: {} changes", plan.prepare.len()),
                );
                let output = remote
                    .run(&plan.prepare_script())
                    .await
                    .and_then(|o| o.check(run.name(), "the host play"))
                    .map_err(|e| e.reason())?;
                let running = crate::plan::running_jails(&output.stdout)
                    .ok_or_else(|| "the host play's output was cut short".to_owned())?;
                wait_for_jails(run, running, play.gate_timeout, progress).await
            });
            let results = at_most(self.forks, work).await;
            for (&index, result) in indexes.iter().zip(results) {
                let run = &mut self.hosts[index];
                let prepared = match &run.plan {
                    Some(plan) if run.changes => plan.prepare.len(),
                    _ => 0,
                };
                match result {
                    Err(error) => run.error = Some(error),
                    Ok(running) => {
                        run.changed += prepared;
                        let declared: Vec<&str> =
                            run.host.jails.iter().map(|j| j.name.as_str()).collect();
                        let up = declared
                            .iter()
                            .filter(|name| running.iter().any(|r| r == *name))
                            .count();
                        running_total += up;
                        declared_total += declared.len();
                        let line = format!(
                            "  {}: {} · jails {up}/{} running",
                            run.host.name,
                            changes(prepared),
                            declared.len()
                        );
                        self.progress.println(line);
                        if up < declared.len() {
                            let missing: Vec<&str> = declared
                                .iter()
                                .filter(|name| !running.iter().any(|r| r == *name))
                                .copied()
                                .collect();
                            run.error = Some(format!(
                                "gate {}: jails not running: {}",
                                Gate::HostReady,
                                missing.join(", ")
                            ));
                        }
                    }
                }
            }
            self.check_hosts("the host play")?;
        }
        // No "datasets ok": nothing here reads the datasets back. A running
        // jail is what the host play checks (its root is its dataset's mount).
        self.verified
            .push(format!("jails {running_total}/{declared_total} running"));
        Ok(())
    }
}

/// The host_ready gate after a host play that ran: until every jail of the
/// host runs (the play's output listed `running`), the running jails are read
/// again (one round trip each time), for at most the play's `gate_timeout`.
async fn wait_for_jails<R: Remote>(
    run: &HostRun<'_, R>,
    mut running: Vec<String>,
    timeout: Duration,
    progress: &Progress,
) -> Result<Vec<String>, String> {
    let (Some(remote), Some(plan)) = (&run.remote, &run.plan) else {
        return Ok(running);
    };
    // A host play without steps: only its listing of the running jails.
    let listing = crate::plan::HostPlan {
        prepare: Vec::new(),
        ..plan.clone()
    }
    .prepare_script();
    let declared: Vec<&str> = run.host.jails.iter().map(|j| j.name.as_str()).collect();
    let started = Instant::now();
    loop {
        let missing = match jails_ready(&declared, &running, started.elapsed(), timeout) {
            Ok(JailsReady::Yes) => return Ok(running),
            Ok(JailsReady::Waiting(missing)) => missing,
            Err(reason) => return Err(reason),
        };
        progress.waiting(
            Some(run.name()),
            "every jail running",
            started.elapsed(),
            &missing.join(", "),
        );
        tokio::time::sleep(POLL).await;
        let output = remote
            .run(&listing)
            .await
            .and_then(|o| o.check(run.name(), "listing the running jails"))
            .map_err(|e| e.reason())?;
        running = crate::plan::running_jails(&output.stdout)
            .ok_or_else(|| "the listing of the running jails was cut short".to_owned())?;
    }
}

/// What the host_ready gate makes of the running jails.
#[derive(Debug, PartialEq, Eq)]
enum JailsReady {
    /// Every declared jail runs.
    Yes,
    /// These do not run yet; the gate's time is not up.
    Waiting(Vec<String>),
}

/// The host_ready gate's decision, `waited` into its `timeout`: an error
/// (naming the jails and the timeout) once the time is up.
fn jails_ready(
    declared: &[&str],
    running: &[String],
    waited: Duration,
    timeout: Duration,
) -> Result<JailsReady, String> {
    let missing: Vec<String> = declared
        .iter()
        .filter(|name| !running.iter().any(|r| r == *name))
        .map(|name| (*name).to_owned())
        .collect();
    if missing.is_empty() {
        Ok(JailsReady::Yes)
    } else if waited >= timeout {
        Err(format!(
            "gate {}: jails not running after {}: {}",
            Gate::HostReady,
            human_duration(timeout),
            missing.join(", ")
        ))
    } else {
        Ok(JailsReady::Waiting(missing))
    }
}

fn changes(count: usize) -> String {
    match count {
        0 => "no changes".into(),
        1 => "1 change".into(),
        n => format!("{n} changes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_ready_gate_waits_for_missing_jails_until_its_timeout() {
        let declared = ["a", "b"];
        let running =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
        let timeout = Duration::from_secs(300);
        assert_eq!(
            jails_ready(&declared, &running(&["b", "x", "a"]), timeout, timeout),
            Ok(JailsReady::Yes),
            "every jail runs: passes even at the deadline"
        );
        assert_eq!(
            jails_ready(
                &declared,
                &running(&["b"]),
                Duration::from_secs(299),
                timeout
            ),
            Ok(JailsReady::Waiting(vec!["a".into()]))
        );
        assert_eq!(
            jails_ready(&declared, &[], timeout, timeout),
            Err("gate host_ready: jails not running after 5m: a, b".into())
        );
    }
}
