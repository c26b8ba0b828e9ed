//! Is every node really up now? The decisions a rolling restart takes before it
//! stops a node and while the node is away, from observations the caller makes
//! (pure; the I/O that observes is the caller's).
//!
//! A health answer alone is not enough: Elasticsearch notices a dead node only
//! after its fault-detection timeouts, so for a while a cluster with a stopped
//! (or frozen) node still reports green with every node. A node is up when it
//! answers on its own address now *and* is a member in the cluster state the
//! elected master serves.

use std::collections::{BTreeMap, BTreeSet};

use super::Membership;

/// What was seen of the cluster's nodes at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Every node the inventory declares, by name.
    pub expected: Vec<String>,
    /// Each declared node's answer on its own address: the name it answered
    /// with, or why there was no answer.
    pub answers: BTreeMap<String, Result<String, String>>,
    /// The membership the elected master serves (its own cluster state), or why
    /// no elected master could be found.
    pub membership: Result<Membership, String>,
    /// Nodes whose service is known to be stopped (not merely silent).
    pub stopped: BTreeSet<String>,
}

/// A node that is not up, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absent {
    pub node: String,
    pub why: String,
}

impl Observation {
    /// The declared nodes other than `except` that are not up. With `strict`,
    /// the elected master's cluster state must be readable; without, a cluster
    /// electing a master (its old one just stopped) only needs the answers.
    pub fn absent(&self, except: Option<&str>, strict: bool) -> Vec<Absent> {
        let mut absent = Vec::new();
        for node in self.expected.iter().filter(|n| Some(n.as_str()) != except) {
            let why = match self.answers.get(node) {
                _ if self.stopped.contains(node) => Some("its service is not running".to_owned()),
                None => Some("was not asked".to_owned()),
                Some(Err(err)) => Some(format!("does not answer on its address ({err})")),
                Some(Ok(name)) if name != node => {
                    Some(format!("its address is answered by {name}"))
                }
                Some(Ok(_)) => match &self.membership {
                    Ok(membership) if !membership.nodes.contains(node) => Some(format!(
                        "is not in the cluster state of the elected master{}",
                        membership
                            .master
                            .as_deref()
                            .map(|m| format!(" {m}"))
                            .unwrap_or_default()
                    )),
                    _ => None,
                },
            };
            if let Some(why) = why {
                absent.push(Absent {
                    node: node.clone(),
                    why,
                });
            }
        }
        if strict && let Err(err) = &self.membership {
            absent.push(Absent {
                node: "the elected master".to_owned(),
                why: err.clone(),
            });
        }
        absent
    }

    /// Members of the master's state the inventory does not declare.
    fn unexpected(&self) -> Vec<&str> {
        match &self.membership {
            Ok(membership) => membership
                .nodes
                .iter()
                .filter(|n| !self.expected.contains(n))
                .map(String::as_str)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether every declared node is up and the master's state has exactly
    /// them: what a gate waits for.
    pub fn all_up(&self) -> Result<(), String> {
        let absent = self.absent(None, true);
        let unexpected = self.unexpected();
        if absent.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(describe(&absent, &unexpected))
    }
}

/// May `node` be stopped now? Only when every node - it included - is up and the
/// elected master's cluster state has exactly the declared nodes: then stopping
/// it leaves N-1 up. Otherwise the reason, naming the nodes.
pub fn may_stop(node: &str, observation: &Observation) -> Result<(), String> {
    observation
        .all_up()
        .map_err(|why| format!("refusing to stop {node}: {why}"))
}

/// While `node` restarts, every other node must stay up; a node that went away
/// stops the rollout (its name in the message). The cluster may be electing a
/// master meanwhile, so only the answers and a master's state, when there is
/// one, count.
pub fn others_still_up(node: &str, observation: &Observation) -> Result<(), String> {
    let absent = observation.absent(Some(node), false);
    if absent.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} went away while {node} was restarting: {}; stopping the rollout",
        absent
            .iter()
            .map(|a| a.node.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        describe(&absent, &[])
    ))
}

fn describe(absent: &[Absent], unexpected: &[&str]) -> String {
    let mut parts: Vec<String> = absent
        .iter()
        .map(|a| format!("{} {}", a.node, a.why))
        .collect();
    if !unexpected.is_empty() {
        parts.push(format!(
            "the cluster has nodes the inventory does not declare: {}",
            unexpected.join(", ")
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: [&str; 3] = ["es1", "es2", "es3"];

    /// Every node answers and is in the master's (es1's) state.
    fn healthy() -> Observation {
        Observation {
            expected: NODES.map(String::from).to_vec(),
            answers: NODES
                .iter()
                .map(|n| (n.to_string(), Ok(n.to_string())))
                .collect(),
            membership: Ok(Membership {
                master: Some("es1".into()),
                nodes: NODES.map(String::from).to_vec(),
            }),
            stopped: BTreeSet::new(),
        }
    }

    fn silent(observation: &mut Observation, node: &str) {
        observation
            .answers
            .insert(node.into(), Err("connection refused".into()));
    }

    #[test]
    fn a_node_may_stop_only_when_every_node_answers_and_is_a_member() {
        assert_eq!(may_stop("es2", &healthy()), Ok(()));

        // The master still lists es1, but es1 does not answer: a stale green.
        let mut frozen_master = healthy();
        silent(&mut frozen_master, "es1");
        let refused = may_stop("es3", &frozen_master).unwrap_err();
        assert!(
            refused.starts_with("refusing to stop es3: es1 does not answer on its address"),
            "{refused}"
        );

        // es3 answers but the master's state has dropped it.
        let mut dropped = healthy();
        if let Ok(membership) = &mut dropped.membership {
            membership.nodes.retain(|n| n != "es3");
        }
        let refused = may_stop("es2", &dropped).unwrap_err();
        assert!(
            refused.contains("es3 is not in the cluster state of the elected master es1"),
            "{refused}"
        );

        // The node to stop must itself be up: stopping it must leave N-1.
        let mut target_down = healthy();
        silent(&mut target_down, "es2");
        assert!(may_stop("es2", &target_down).is_err());
    }

    #[test]
    fn no_elected_master_or_a_foreign_member_refuses_too() {
        let mut leaderless = healthy();
        leaderless.membership = Err("no node is the master in its own state".into());
        let refused = may_stop("es2", &leaderless).unwrap_err();
        assert!(
            refused.contains("the elected master no node is the master"),
            "{refused}"
        );

        let mut foreign = healthy();
        if let Ok(membership) = &mut foreign.membership {
            membership.nodes.push("stray".into());
        }
        let refused = may_stop("es2", &foreign).unwrap_err();
        assert!(
            refused.contains("nodes the inventory does not declare: stray"),
            "{refused}"
        );
    }

    #[test]
    fn a_stopped_service_or_a_wrong_answer_counts_as_absent() {
        let mut stopped = healthy();
        stopped.stopped.insert("es3".into());
        let refused = may_stop("es1", &stopped).unwrap_err();
        assert!(
            refused.contains("es3 its service is not running"),
            "{refused}"
        );

        let mut crossed = healthy();
        crossed.answers.insert("es2".into(), Ok("es3".into()));
        let refused = may_stop("es1", &crossed).unwrap_err();
        assert!(
            refused.contains("es2 its address is answered by es3"),
            "{refused}"
        );
    }

    #[test]
    fn while_a_node_restarts_only_the_others_must_stay_up() {
        // The restarting node is gone and the cluster is electing: fine.
        let mut electing = healthy();
        silent(&mut electing, "es1");
        electing.membership = Err("no elected master".into());
        assert_eq!(others_still_up("es1", &electing), Ok(()));

        // Another node going away stops the rollout, named.
        let mut second_down = healthy();
        silent(&mut second_down, "es1");
        silent(&mut second_down, "es3");
        let stop = others_still_up("es1", &second_down).unwrap_err();
        assert!(
            stop.starts_with("es3 went away while es1 was restarting"),
            "{stop}"
        );
        assert!(stop.contains("stopping the rollout"), "{stop}");

        // A member the new master dropped is gone too, though it answers.
        let mut dropped = healthy();
        silent(&mut dropped, "es1");
        dropped.membership = Ok(Membership {
            master: Some("es2".into()),
            nodes: vec!["es2".into()],
        });
        let stop = others_still_up("es1", &dropped).unwrap_err();
        assert!(
            stop.contains("es3 is not in the cluster state of the elected master es2"),
            "{stop}"
        );
    }

    #[test]
    fn all_up_is_what_a_gate_waits_for() {
        assert_eq!(healthy().all_up(), Ok(()));
        let mut one_silent = healthy();
        silent(&mut one_silent, "es2");
        let missing = one_silent.all_up().unwrap_err();
        assert!(missing.starts_with("es2 does not answer"), "{missing}");
    }
}
