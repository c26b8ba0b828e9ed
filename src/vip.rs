//! Who holds each VIP: the CARP states of its carriers judged into findings
//! (pure), for `haelk status` and deploy's haproxy gates.

use crate::freebsd::{CarpState, CarpVhid};

/// What was read of one carrier's VIP interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen<'a> {
    /// Its state for the VIP's vhid.
    State(CarpState),
    /// The interface has no such vhid.
    NoVhid,
    /// The interface could not be read: why.
    Unreadable(&'a str),
}

impl<'a> Seen<'a> {
    /// What `ifconfig` of the interface said about `vhid`.
    pub fn of(read: &'a Result<Vec<CarpVhid>, String>, vhid: u8) -> Self {
        match read {
            Ok(vhids) => vhids
                .iter()
                .find(|v| v.vhid == vhid)
                .map_or(Self::NoVhid, |v| Self::State(v.state)),
            Err(why) => Self::Unreadable(why),
        }
    }

    /// The state, when one was read.
    pub fn state(self) -> Option<CarpState> {
        match self {
            Self::State(state) => Some(state),
            Self::NoVhid | Self::Unreadable(_) => None,
        }
    }
}

/// One haproxy jail that carries a VIP, as it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carrier<'a> {
    pub jail: &'a str,
    pub host: &'a str,
    pub seen: Seen<'a>,
    /// Whether its haproxy answered on the stats socket.
    pub haproxy_answers: bool,
}

/// What is wrong with one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding<'a> {
    /// Every carrier was read and none is MASTER: nobody answers for the VIP.
    NoMaster,
    /// More than one MASTER: the carriers do not hear each other.
    SplitBrain(Vec<&'a str>),
    /// The MASTER's haproxy does not answer: the VIP is black-holed.
    MasterWithoutHaproxy(Carrier<'a>),
    /// The carrier's interface has no vhid for the VIP.
    MissingVhid(Carrier<'a>),
    /// The carrier's interface could not be read although its haproxy answers.
    Unreadable(Carrier<'a>),
}

impl std::fmt::Display for Finding<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoMaster => f.write_str("no carrier is CARP MASTER: nothing answers for the VIP"),
            Self::SplitBrain(masters) => write!(
                f,
                "{} are all CARP MASTER (split brain): the carriers do not hear each other",
                masters.join(", ")
            ),
            Self::MasterWithoutHaproxy(c) => write!(
                f,
                "the CARP MASTER {} has no haproxy answering: clients of the VIP get no answer",
                c.jail
            ),
            Self::MissingVhid(c) => write!(
                f,
                "{} does not carry it: its interface has no such vhid",
                c.jail
            ),
            Self::Unreadable(c) => {
                let why = match c.seen {
                    Seen::Unreadable(why) => why,
                    _ => "",
                };
                write!(f, "the CARP state of {} cannot be read: {why}", c.jail)
            }
        }
    }
}

/// The one MASTER among the carriers; `None` when there is none, or several.
pub fn the_master<'a>(carriers: &[Carrier<'a>]) -> Option<&'a str> {
    let mut masters = carriers
        .iter()
        .filter(|c| c.seen.state() == Some(CarpState::Master));
    match (masters.next(), masters.next()) {
        (Some(only), None) => Some(only.jail),
        _ => None,
    }
}

/// The findings for a VIP with `members` carriers, of which `carriers` were
/// reached. "No master" needs every member read: an unread one may hold it.
pub fn judge<'a>(members: usize, carriers: &[Carrier<'a>]) -> Vec<Finding<'a>> {
    let mut findings = Vec::new();
    for carrier in carriers {
        match carrier.seen {
            Seen::NoVhid => findings.push(Finding::MissingVhid(*carrier)),
            // A jail whose haproxy does not answer either is down: said elsewhere.
            Seen::Unreadable(_) if carrier.haproxy_answers => {
                findings.push(Finding::Unreadable(*carrier));
            }
            _ => {}
        }
    }
    let masters: Vec<&Carrier<'a>> = carriers
        .iter()
        .filter(|c| c.seen.state() == Some(CarpState::Master))
        .collect();
    let all_read = carriers.len() == members
        && carriers
            .iter()
            .all(|c| !matches!(c.seen, Seen::Unreadable(_)));
    match masters.as_slice() {
        [] if all_read && members > 0 => findings.push(Finding::NoMaster),
        [] | [_] => {}
        several => findings.push(Finding::SplitBrain(
            several.iter().map(|c| c.jail).collect(),
        )),
    }
    findings.extend(
        masters
            .iter()
            .filter(|c| !c.haproxy_answers)
            .map(|c| Finding::MasterWithoutHaproxy(**c)),
    );
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier(jail: &'static str, seen: Seen<'static>, haproxy_answers: bool) -> Carrier<'static> {
        Carrier {
            jail,
            host: "h",
            seen,
            haproxy_answers,
        }
    }

    const MASTER: Seen<'static> = Seen::State(CarpState::Master);
    const BACKUP: Seen<'static> = Seen::State(CarpState::Backup);

    #[test]
    fn one_master_with_haproxy_and_backups_is_healthy() {
        let carriers = [
            carrier("a", MASTER, true),
            carrier("b", BACKUP, true),
            // A backup's haproxy does not serve the VIP: not a finding.
            carrier("c", BACKUP, false),
        ];
        assert_eq!(judge(3, &carriers), []);
        assert_eq!(the_master(&carriers), Some("a"));
    }

    #[test]
    fn no_master_needs_every_member_read() {
        let carriers = [
            carrier("a", BACKUP, true),
            carrier("b", Seen::State(CarpState::Init), true),
        ];
        assert_eq!(judge(2, &carriers), [Finding::NoMaster]);
        // A third member could not be reached: it may be the master.
        assert_eq!(judge(3, &carriers), []);
        assert_eq!(judge(0, &[]), []);
    }

    #[test]
    fn two_masters_are_a_split_brain_naming_both() {
        let carriers = [carrier("a", MASTER, true), carrier("b", MASTER, true)];
        assert_eq!(judge(2, &carriers), [Finding::SplitBrain(vec!["a", "b"])]);
        assert_eq!(the_master(&carriers), None);
    }

    #[test]
    fn a_master_whose_haproxy_does_not_answer_black_holes_the_vip() {
        let carriers = [carrier("a", MASTER, false), carrier("b", BACKUP, true)];
        assert_eq!(
            judge(2, &carriers),
            [Finding::MasterWithoutHaproxy(carriers[0])]
        );
    }

    #[test]
    fn a_carrier_without_the_vhid_is_named_and_cannot_be_the_master() {
        let carriers = [carrier("a", Seen::NoVhid, true), carrier("b", BACKUP, true)];
        assert_eq!(
            judge(2, &carriers),
            [Finding::MissingVhid(carriers[0]), Finding::NoMaster]
        );
    }

    #[test]
    fn an_interface_that_cannot_be_read_is_a_finding_while_haproxy_answers() {
        let why = "ifconfig: interface vnet0 does not exist";
        let carriers = [
            carrier("a", Seen::Unreadable(why), true),
            carrier("b", BACKUP, true),
        ];
        let found = judge(2, &carriers);
        assert_eq!(found, [Finding::Unreadable(carriers[0])], "and no NoMaster");
        assert_eq!(
            found[0].to_string(),
            format!("the CARP state of a cannot be read: {why}")
        );
        // A stopped jail: its stats fail too, and its own line says so.
        let stopped = [carrier("a", Seen::Unreadable(why), false)];
        assert_eq!(judge(2, &stopped), []);
    }

    #[test]
    fn what_ifconfig_said_about_the_vhid() {
        let read = Ok(vec![CarpVhid {
            state: CarpState::Backup,
            vhid: 2,
            advbase: 1,
            advskew: 100,
        }]);
        assert_eq!(Seen::of(&read, 2), BACKUP);
        assert_eq!(Seen::of(&read, 1), Seen::NoVhid);
        let failed = Err("cannot read vnet0".to_owned());
        assert_eq!(Seen::of(&failed, 1), Seen::Unreadable("cannot read vnet0"));
    }
}
