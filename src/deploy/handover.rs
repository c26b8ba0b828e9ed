//! The CARP handover before a haproxy stops (docs/design.md, CARP): a carrier
//! that is MASTER of its VIP is demoted (`net.inet.carp.demotion`), and the
//! haproxy play waits until a peer holds the VIP before it restarts the jail's
//! haproxy or the jail. With preemption (every haproxy jail's sysctl.conf) the
//! peer takes the VIP at the demoted master's next advertisement. The restart
//! script lifts the demotion once haproxy runs again ([`freebsd::jail_carp_undemote`]),
//! so a deploy cut off in between is finished by the next one, whose restart is
//! still owed; a restarted jail starts with a fresh VNET, demotion 0. A reload
//! needs no handover: it is seamless, and a handover would cost a gap.

use std::time::{Duration, Instant};

use super::{Engine, HostRun, Stop};
use crate::desired::carp;
use crate::freebsd::{self, CarpState};
use crate::inventory::{Host, Jail, Role};
use crate::plan::ServiceAction;
use crate::remote::Remote;

/// How long a peer may take to hold the VIP once its master is demoted (or the
/// play's gate timeout, if shorter): with preemption, one advertisement
/// interval; without it (a peer whose sysctl.conf is not applied yet) CARP
/// never hands over, and the play stops.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether `action` stops the jail's haproxy, so that a MASTER carrier must
/// hand its VIP over first.
pub(super) fn stops_haproxy(action: ServiceAction) -> bool {
    matches!(action, ServiceAction::Restart | ServiceAction::RestartJail)
}

/// The state of `vhid` in the `ifconfig` output of a carrier (None: no such vhid).
fn vhid_state(ifconfig: &str, vhid: u8) -> Option<CarpState> {
    freebsd::parse_carp_status(ifconfig)
        .into_iter()
        .find(|v| v.vhid == vhid)
        .map(|v| v.state)
}

impl<'a, R: Remote> Engine<'a, R> {
    /// Hands over the VIP of every haproxy jail of `jails` that this batch
    /// stops and that is its VIP's MASTER, one jail after the other.
    pub(super) async fn hand_over_vips(
        &self,
        jails: &[&'a Jail],
        gate_timeout: Duration,
    ) -> Result<(), Stop> {
        let timeout = HANDOVER_TIMEOUT.min(gate_timeout);
        for jail in jails.iter().filter(|j| j.role == Role::Haproxy) {
            let Some((index, plan)) = self.jail_plan(jail) else {
                continue;
            };
            if stops_haproxy(plan.action) {
                self.hand_over(&self.hosts[index], jail, timeout)
                    .await
                    .map_err(Stop::because)?;
            }
        }
        Ok(())
    }

    /// Demotes `jail` if it is MASTER of its VIP and has a peer, and waits until
    /// a peer is MASTER; on a timeout the demotion is lifted again.
    async fn hand_over(
        &self,
        run: &HostRun<'a, R>,
        jail: &Jail,
        timeout: Duration,
    ) -> Result<(), String> {
        let cluster = &self.inventory.cluster;
        let Some(service) = jail.fronts else {
            return Ok(());
        };
        let Some(vip) = cluster.vips.get(&service) else {
            return Ok(());
        };
        let peers: Vec<(&Host, &Jail)> = carp::members(self.inventory, service)
            .filter(|(_, peer)| peer.name != jail.name)
            .collect();
        if peers.is_empty()
            || self.carp_state(run, jail, vip.vhid).await? != Some(CarpState::Master)
        {
            return Ok(());
        }
        let remote = run.connected()?;
        let demote = freebsd::jail_carp_demote(jail.name.as_str());
        remote
            .run(&demote)
            .await
            .and_then(|o| o.check(run.name(), &demote))
            .map_err(|e| e.reason())?;
        let started = Instant::now();
        loop {
            for (host, peer) in &peers {
                let Some(peer_run) = self.hosts.iter().find(|r| r.host.name == host.name) else {
                    continue;
                };
                if self.carp_state(peer_run, peer, vip.vhid).await? == Some(CarpState::Master) {
                    self.progress.println(format!(
                        "  {}: CARP MASTER handed to {} (VIP {})",
                        jail.name, peer.name, vip.address
                    ));
                    return Ok(());
                }
            }
            if started.elapsed() >= timeout {
                let undemote = freebsd::jail_carp_undemote(jail.name.as_str());
                let lifted = remote.run(&undemote).await.map(|o| o.success());
                return Err(format!(
                    "{}: no other carrier of VIP {} became CARP MASTER within {} of \
                     demoting it{}; not stopping its haproxy (is net.inet.carp.preempt=1 \
                     in its peers?)",
                    jail.name,
                    vip.address,
                    crate::units::human_duration(timeout),
                    if matches!(lifted, Ok(true)) {
                        " (demotion lifted)"
                    } else {
                        " (its demotion could not be lifted)"
                    }
                ));
            }
            self.progress.waiting(
                Some(run.name()),
                &format!("a peer of {} to take VIP {}", jail.name, vip.address),
                started.elapsed(),
                "no other carrier is CARP MASTER",
            );
            tokio::time::sleep(super::gates::POLL).await;
        }
    }

    /// The CARP state of `jail`'s carrier of `vhid`, read with one round trip.
    async fn carp_state(
        &self,
        run: &HostRun<'a, R>,
        jail: &Jail,
        vhid: u8,
    ) -> Result<Option<CarpState>, String> {
        let remote = run.connected()?;
        let interface = self.inventory.cluster.carp.interface.as_str();
        let command = freebsd::jail_ifconfig(jail.name.as_str(), interface);
        let output = remote
            .run(&command)
            .await
            .and_then(|o| o.check(run.name(), &command))
            .map_err(|e| e.reason())?;
        Ok(vhid_state(&output.stdout, vhid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_restart_of_haproxy_or_its_jail_hands_the_vip_over() {
        assert!(stops_haproxy(ServiceAction::Restart));
        assert!(stops_haproxy(ServiceAction::RestartJail));
        // A reload is seamless; a start finds nothing serving.
        for action in [
            ServiceAction::None,
            ServiceAction::Start,
            ServiceAction::Reload,
        ] {
            assert!(!stops_haproxy(action), "{action:?}");
        }
    }

    #[test]
    fn the_state_of_the_vips_vhid_is_read_from_ifconfig() {
        let ifconfig = "vnet0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500\n\
                        \tcarp: BACKUP vhid 1 advbase 1 advskew 100\n\
                        \tcarp: MASTER vhid 2 advbase 1 advskew 0\n";
        assert_eq!(vhid_state(ifconfig, 1), Some(CarpState::Backup));
        assert_eq!(vhid_state(ifconfig, 2), Some(CarpState::Master));
        assert_eq!(vhid_state(ifconfig, 3), None);
    }
}
