//! The plays: each play to its runner (the host play, the Elasticsearch play,
//! the Kibana and haproxy service plays), and what the service plays share -
//! a jail's plan, and running a batch's jail scripts.

use super::{Engine, Stop, at_most};
use crate::inventory::{Inventory, Jail, Role};
use crate::plan::{JailPlan, ServiceAction};
use crate::playbook::{Batch, Play, Target};
use crate::remote::Remote;

impl<'a, R: Remote> Engine<'a, R> {
    /// Runs `play` with the runner of its target.
    pub(super) async fn play(&mut self, play: &Play) -> Result<(), Stop> {
        match play.target {
            Target::Hosts => self.host_play(play).await,
            Target::Role(Role::Elasticsearch) => self.elasticsearch_play(play).await,
            Target::Role(role) => self.service_play(play, role).await,
        }
    }

    /// The plan of `jail` and the index of its host run, when this deploy
    /// changes the host (`--limit`).
    pub(super) fn jail_plan(&self, jail: &Jail) -> Option<(usize, &JailPlan)> {
        self.hosts.iter().enumerate().find_map(|(index, run)| {
            if !run.changes {
                return None;
            }
            run.plan
                .as_ref()
                .and_then(|plan| plan.jail(jail.name.as_str()))
                .map(|plan| (index, plan))
        })
    }

    /// Runs the service scripts of `jails` (one round trip each), hosts in
    /// parallel and each host's jails in order. Returns whether any ran.
    pub(super) async fn run_jail_scripts(&mut self, jails: &[&Jail]) -> Result<bool, Stop> {
        let work: Vec<(usize, JailPlan)> = jails
            .iter()
            .filter_map(|jail| self.jail_plan(jail))
            .filter(|(_, plan)| !plan.is_empty())
            .map(|(index, plan)| (index, plan.clone()))
            .collect();
        if work.is_empty() {
            return Ok(false);
        }
        let mut by_host: Vec<(usize, Vec<JailPlan>)> = Vec::new();
        for (index, plan) in work {
            match by_host.iter_mut().find(|(i, _)| *i == index) {
                Some((_, plans)) => plans.push(plan),
                None => by_host.push((index, vec![plan])),
            }
        }
        let progress = &self.progress;
        let hosts = &self.hosts;
        let work = by_host.iter().map(|(index, plans)| async move {
            let run = &hosts[*index];
            let Some(remote) = &run.remote else {
                return (0, Some("not connected".to_owned()));
            };
            let mut done = 0;
            for plan in plans {
                progress.step(run.name(), format!("{}: {}", plan.name, describe(plan)));
                let result = remote.run(&plan.script()).await.and_then(|o| {
                    o.check(run.name(), &format!("{} ({})", plan.name, describe(plan)))
                });
                if let Err(err) = result {
                    return (done, Some(err.reason()));
                }
                done += plan.change_count();
                progress.println(format!("  {}: {}", plan.name, describe(plan)));
            }
            (done, None)
        });
        let results = at_most(self.forks, work).await;
        for ((index, _), (done, error)) in by_host.iter().zip(results) {
            let run = &mut self.hosts[*index];
            run.changed += done;
            if error.is_some() {
                run.error = error;
            }
        }
        self.check_hosts("the service scripts")?;
        Ok(true)
    }

    /// Kibana and haproxy: batches of scripts, each followed by the gate, then
    /// the gate over every instance for the verification line.
    async fn service_play(&mut self, play: &Play, role: Role) -> Result<(), Stop> {
        self.backends_seen.clear();
        for batch in play.batches(self.inventory) {
            let jails: Vec<&Jail> = batch.jails.iter().map(|(_, j)| *j).collect();
            if role == Role::Haproxy {
                self.hand_over_vips(&jails, play.gate_timeout).await?;
            }
            if self.run_jail_scripts(&jails).await? {
                // The batch's hosts just changed: read them, whatever was seen before.
                for host in &batch.hosts {
                    self.backends_seen.remove(host.name.as_str());
                }
                self.gate(play, role, &batch).await?;
            }
        }
        let line = self.gate(play, role, &self.whole(role)).await;
        self.backends_seen.clear();
        self.verified.push(line?);
        Ok(())
    }

    /// Every selected host and every jail of `role` on them, as one batch.
    pub(super) fn whole(&self, role: Role) -> Batch<'a> {
        let inventory: &'a Inventory = self.inventory;
        Batch {
            hosts: inventory.hosts.iter().collect(),
            jails: inventory.jails_with_role(role).collect(),
        }
    }
}

/// `start`, `write 2 files, restart`, ...
pub(super) fn describe(plan: &JailPlan) -> String {
    let writes = match plan.writes.len() {
        0 => None,
        1 => Some("write 1 file".to_owned()),
        n => Some(format!("write {n} files")),
    };
    let action = (plan.action != ServiceAction::None).then(|| plan.action.as_str().to_owned());
    writes
        .into_iter()
        .chain(action)
        .collect::<Vec<_>>()
        .join(", ")
}
