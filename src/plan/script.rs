//! The scripts a plan runs: steps batched into one `set -e` script per host play
//! and per jail, with the owed action recorded around the jail's changes.
//!
//! Service commands send their output to standard error: only stderr reaches the
//! operator when a script fails, and rc.subr reports a refused start ("Cannot
//! 'start' ...") on standard output with exit status 0, so every start is followed
//! by a `status` check that fails the script.

use std::path::Path;

use super::{JailPlan, ServiceAction, Step};
use crate::desired::Apply;
use crate::freebsd;
use crate::shell::quote;

/// The line after which a host play's script lists the running jails.
pub(crate) const RUNNING_JAILS: &str = "@@haelk running jails";

/// The host play: every step, then the names of the running jails (the
/// host_ready gate reads them from the same round trip).
pub(crate) fn prepare_script(steps: &[Step]) -> String {
    let mut script = String::from("set -e\n");
    for step in steps {
        script.push_str(&step.script());
    }
    script.push_str(&format!("echo {}\njls name\n", quote(RUNNING_JAILS)));
    script
}

/// The running jails a host play's output lists.
pub(crate) fn running_jails(stdout: &str) -> Option<Vec<String>> {
    let (_, listing) = stdout.split_once(&format!("{RUNNING_JAILS}\n"))?;
    Some(
        listing
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// A jail's service play: record what is owed, write, act, clear the record.
pub(crate) fn jail_script(plan: &JailPlan) -> String {
    let mut script = String::from("set -e\n");
    let record = freebsd::record_pending(&plan.root, plan.action.pending());
    if let Some(record) = &record {
        script.push_str(record);
        script.push('\n');
    }
    for write in &plan.writes {
        script.push_str(&freebsd::write_file_atomically(
            &write.file,
            &write.passwd_root,
        ));
    }
    for command in apply_commands(plan)
        .into_iter()
        .chain(action_commands(plan))
    {
        script.push_str(&command);
        script.push('\n');
    }
    if record.is_some() {
        script.push_str(&freebsd::clear_pending(&plan.root));
        script.push('\n');
    }
    script
}

/// The commands that make the rewritten files live in the running jail
/// ([`crate::desired::Apply`]), before its service's action.
/// A command that two rewritten files both need (the CARP watch's script and its
/// rc.local) is run once.
pub(crate) fn apply_commands(plan: &JailPlan) -> Vec<String> {
    let jail = plan.name.as_str();
    let mut commands: Vec<String> = Vec::new();
    for write in &plan.writes {
        let command = match write.file.apply {
            None => continue,
            Some(Apply::Sysctl) => {
                let Ok(in_jail) = write.file.path.strip_prefix(&plan.root) else {
                    continue;
                };
                let in_jail = Path::new("/").join(in_jail);
                freebsd::jail_sysctl_file(jail, &in_jail.to_string_lossy())
            }
            Some(Apply::CarpWatch) => freebsd::jail_carp_watch_restart(jail),
        };
        let command = format!("{command} >&2");
        if !commands.contains(&command) {
            commands.push(command);
        }
    }
    commands
}

/// The commands of the jail's action, each verified.
pub(crate) fn action_commands(plan: &JailPlan) -> Vec<String> {
    let jail = plan.name.as_str();
    let service = plan.service.as_str();
    let run = |verb: &str| format!("{} >&2", freebsd::jail_service_action(jail, service, verb));
    // haproxy's reload replaces the running process only if the new
    // configuration parses; test it first so a bad one fails here, loudly.
    let configtest = (service == "haproxy").then(|| run("configtest"));
    // Whenever deploy (re)starts haproxy it also makes sure the jail's CARP watch
    // runs (a rewrite of its files restarts it: apply_commands).
    let carp_watch =
        (service == "haproxy").then(|| format!("{} >&2", freebsd::jail_carp_watch_ensure(jail)));
    match plan.action {
        ServiceAction::None => Vec::new(),
        // The jail's /etc/rc may have started it already, with the files
        // written before the jail started: rc.subr would refuse a second start.
        ServiceAction::Start => configtest
            .into_iter()
            .chain([
                freebsd::jail_service_start_unless_running(jail, service),
                service_status_check(jail, service),
            ])
            .chain(carp_watch)
            .collect(),
        ServiceAction::Reload => configtest.into_iter().chain([run("reload")]).collect(),
        ServiceAction::Restart => configtest
            .into_iter()
            .chain([run("restart"), service_status_check(jail, service)])
            // The play may have demoted this CARP master before the restart
            // (deploy/handover.rs): haproxy serves again, so it takes its VIP back.
            .chain((service == "haproxy").then(|| freebsd::jail_carp_undemote(jail)))
            .chain(carp_watch)
            .collect(),
        ServiceAction::RestartJail => [
            format!("{} >&2", freebsd::jail_service("restart", jail)),
            // The jail's /etc/rc starts its enabled services; start it if it did not.
            freebsd::jail_service_start_unless_running(jail, service),
            service_status_check(jail, service),
        ]
        .into_iter()
        .chain(carp_watch)
        .collect(),
    }
}

/// Fails the script unless `service` runs in `jail`.
fn service_status_check(jail: &str, service: &str) -> String {
    format!(
        "{} >/dev/null 2>&1 || {{ echo {} >&2; exit 1; }}",
        freebsd::jail_service_action(jail, service, "status"),
        quote(&format!(
            "{service} is not running in jail {jail} after start"
        ))
    )
}
