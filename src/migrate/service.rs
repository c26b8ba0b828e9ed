//! The service off on the source and on on the target, and the undo of both
//! when phase 2 fails.

use anyhow::{Result, anyhow};

use super::{Mover, Stage};
use crate::facts;
use crate::freebsd;
use crate::plan::plan_host;
use crate::remote::Remote;
use crate::shell::quote;

impl<R: Remote> Mover<'_, R> {
    pub(super) async fn stop_on_source(&self) -> Result<()> {
        let migration = self.migration;
        let jail = migration.jail.name.as_str();
        let service = migration.jail.role.as_str();
        let script = format!(
            "set -e\nif jls -j {jail_q} name >/dev/null 2>&1; then\n{} >&2 || true\n{} >&2\nfi\n",
            freebsd::jail_service_action(jail, service, "stop"),
            freebsd::jail_service("stop", jail),
            jail_q = quote(jail),
        );
        self.source()?
            .run(&script)
            .await?
            .check(migration.source.name.as_str(), &format!("stopping {jail}"))?;
        Ok(())
    }

    /// The jail's host play and service play on the target, for the moved
    /// inventory: jail.conf, rc.conf, jail_list, jail start, service start.
    pub(super) async fn start_on_target(&self) -> Result<()> {
        let migration = self.migration;
        let target = self.target()?;
        let name = migration.target.name.as_str();
        self.say(format!("starting {} on {name}", migration.jail.name));
        let state = self.target_state;
        let facts = facts::gather(target, state).await?;
        let plan = plan_host(state, &facts)?;
        if !plan.prepare.is_empty() {
            target
                .run(&plan.prepare_script())
                .await?
                .check(name, "preparing the jail")?;
        }
        let jail_plan = plan
            .jail(migration.jail.name.as_str())
            .ok_or_else(|| anyhow!("{} has no plan on {name}", migration.jail.name))?;
        if !jail_plan.is_empty() {
            target
                .run(&jail_plan.script())
                .await?
                .check(name, &format!("starting {}", migration.jail.name))?;
        }
        Ok(())
    }

    /// The jail started on the target but does not work there: stop it and make
    /// the target forget it again (its dataset stays for the next attempt).
    /// Failures are reported, not returned: the source restart comes next.
    pub(super) async fn undo_on_target(&self) {
        let migration = self.migration;
        let jail = migration.jail.name.as_str();
        let jail_list: Vec<&str> = crate::desired::jail_start_order(&migration.target)
            .into_iter()
            .map(|j| j.name.as_str())
            .collect();
        let script = format!(
            "{} >&2 || true\nrm -f {}\n{}\n",
            freebsd::jail_service("stop", jail),
            quote(&freebsd::jail_conf_path(jail).to_string_lossy()),
            freebsd::sysrc_set(None, "jail_list", &jail_list.join(" ")),
        );
        let undone = match self.target() {
            Ok(target) => target
                .run(&script)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|o| {
                    o.check(
                        migration.target.name.as_str(),
                        "stopping the jail on the target",
                    )
                    .map_err(anyhow::Error::from)
                }),
            Err(err) => Err(err),
        };
        if let Err(err) = undone {
            self.warn(err);
        }
    }

    /// Phase 2 failed with the service stopped: start it again on the source,
    /// undo the quiescing, and forget phase 2 so a re-run redoes it.
    pub(super) async fn roll_back(&self, error: anyhow::Error) -> anyhow::Error {
        let migration = self.migration;
        let jail = migration.jail.name.as_str();
        self.say(format!(
            "phase 2 failed ({error:#}): starting {jail} on {} again",
            migration.source.name
        ));
        let script = format!(
            "set -e\n{} >&2\n{} >/dev/null 2>&1 || {} >&2\n",
            freebsd::jail_service("start", jail),
            freebsd::jail_service_action(jail, migration.jail.role.as_str(), "status"),
            freebsd::jail_service_action(jail, migration.jail.role.as_str(), "start"),
        );
        let restarted = match self.source() {
            Ok(source) => source
                .run(&script)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|o| {
                    o.check(migration.source.name.as_str(), "restarting on the source")
                        .map_err(anyhow::Error::from)
                }),
            Err(err) => Err(err),
        };
        let recorded = self.write_record(Stage::BaseSent).await;
        self.unquiesce().await;
        match (restarted, recorded) {
            (Ok(_), Ok(())) => error.context(format!(
                "{jail} runs on {} again; re-run to try again",
                migration.source.name
            )),
            (Err(again), _) | (_, Err(again)) => error.context(format!(
                "and restarting {jail} on {} failed too: {again:#}",
                migration.source.name
            )),
        }
    }
}
