//! Who holds each VIP: the CARP states of its carriers judged into findings
//! (pure), for `haelk status` and for deploy's closing haproxy gate. Only carriers
//! whose interface was read take part; a host or jail that could not be read is
//! reported on its own.

use crate::freebsd::CarpState;

/// One haproxy jail that carries a VIP, as status saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carrier<'a> {
    pub jail: &'a str,
    /// Its state for the VIP's vhid; `None` when its interface has no such vhid.
    pub state: Option<CarpState>,
    /// Whether its haproxy answered on the stats socket.
    pub haproxy_answers: bool,
}

/// What is wrong with one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding<'a> {
    /// No carrier is MASTER: nobody answers for the VIP.
    NoMaster,
    /// More than one MASTER: the carriers do not hear each other.
    SplitBrain(Vec<&'a str>),
    /// The MASTER's haproxy does not answer: the VIP is black-holed.
    MasterWithoutHaproxy(&'a str),
    /// The carrier's interface has no vhid for the VIP.
    MissingVhid(&'a str),
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
            Self::MasterWithoutHaproxy(jail) => write!(
                f,
                "the CARP MASTER {jail} has no haproxy answering: clients of the VIP get no answer"
            ),
            Self::MissingVhid(jail) => {
                write!(f, "{jail} has no vhid for the VIP: it does not carry it")
            }
        }
    }
}

/// The one MASTER among the carriers; `None` when there is none, or several.
pub fn the_master<'a>(carriers: &[Carrier<'a>]) -> Option<&'a str> {
    let mut masters = carriers
        .iter()
        .filter(|c| c.state == Some(CarpState::Master));
    match (masters.next(), masters.next()) {
        (Some(only), None) => Some(only.jail),
        _ => None,
    }
}

/// The findings for one VIP's carriers (those whose interface was read).
pub fn judge<'a>(carriers: &[Carrier<'a>]) -> Vec<Finding<'a>> {
    let mut findings: Vec<Finding<'a>> = carriers
        .iter()
        .filter(|c| c.state.is_none())
        .map(|c| Finding::MissingVhid(c.jail))
        .collect();
    let masters: Vec<&Carrier<'a>> = carriers
        .iter()
        .filter(|c| c.state == Some(CarpState::Master))
        .collect();
    match masters.as_slice() {
        [] if !carriers.is_empty() => findings.push(Finding::NoMaster),
        [] => {}
        [_] => {}
        several => findings.push(Finding::SplitBrain(
            several.iter().map(|c| c.jail).collect(),
        )),
    }
    findings.extend(
        masters
            .iter()
            .filter(|c| !c.haproxy_answers)
            .map(|c| Finding::MasterWithoutHaproxy(c.jail)),
    );
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier(jail: &str, state: Option<CarpState>, haproxy_answers: bool) -> Carrier<'_> {
        Carrier {
            jail,
            state,
            haproxy_answers,
        }
    }

    #[test]
    fn one_master_with_haproxy_and_backups_is_healthy() {
        let carriers = [
            carrier("a", Some(CarpState::Master), true),
            carrier("b", Some(CarpState::Backup), true),
            // A backup's haproxy does not serve the VIP: not a finding.
            carrier("c", Some(CarpState::Backup), false),
        ];
        assert_eq!(judge(&carriers), []);
        assert_eq!(the_master(&carriers), Some("a"));
    }

    #[test]
    fn no_master_among_the_carriers_read_is_a_finding_and_none_read_is_none() {
        let carriers = [
            carrier("a", Some(CarpState::Backup), true),
            carrier("b", Some(CarpState::Init), true),
        ];
        assert_eq!(judge(&carriers), [Finding::NoMaster]);
        assert_eq!(judge(&[]), []);
    }

    #[test]
    fn two_masters_are_a_split_brain_naming_both() {
        let carriers = [
            carrier("a", Some(CarpState::Master), true),
            carrier("b", Some(CarpState::Master), true),
        ];
        assert_eq!(judge(&carriers), [Finding::SplitBrain(vec!["a", "b"])]);
        assert_eq!(the_master(&carriers), None);
    }

    #[test]
    fn a_master_whose_haproxy_does_not_answer_black_holes_the_vip() {
        let carriers = [
            carrier("a", Some(CarpState::Master), false),
            carrier("b", Some(CarpState::Backup), true),
        ];
        assert_eq!(judge(&carriers), [Finding::MasterWithoutHaproxy("a")]);
    }

    #[test]
    fn a_carrier_without_the_vhid_is_named_and_cannot_be_the_master() {
        let carriers = [
            carrier("a", None, true),
            carrier("b", Some(CarpState::Backup), true),
        ];
        assert_eq!(
            judge(&carriers),
            [Finding::MissingVhid("a"), Finding::NoMaster]
        );
    }
}
