//! The migration record: the last stage a migration finished, kept as a ZFS user
//! property on the source dataset (`STAGE TARGET`), so a re-run knows where to
//! go on. ZFS prints `-` for an unset property.

/// The ZFS user property holding the record.
pub const RECORD: &str = "haelk:migrate";

/// The stages, in the order they finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Phase 1: the base snapshot is on the target.
    BaseSent,
    /// The service and the jail are stopped on the source.
    Stopped,
    /// Phase 2: the final snapshot is on the target.
    FinalSent,
    /// The jail and its service run on the target.
    Started,
    /// The source no longer knows the jail.
    Retired,
}

const WORDS: [(Stage, &str); 5] = [
    (Stage::BaseSent, "base-sent"),
    (Stage::Stopped, "stopped"),
    (Stage::FinalSent, "final-sent"),
    (Stage::Started, "started"),
    (Stage::Retired, "retired"),
];

/// `STAGE TARGET`.
pub fn format(stage: Stage, target: &str) -> String {
    let word = WORDS
        .iter()
        .find(|(s, _)| *s == stage)
        .map_or("base-sent", |(_, w)| w);
    format!("{word} {target}")
}

/// The record in a property value; `None` when unset (`-`) or not a record.
pub fn parse(value: &str) -> Option<(Stage, String)> {
    let (word, target) = value.trim().split_once(' ')?;
    let stage = WORDS.iter().find(|(_, w)| *w == word)?.0;
    Some((stage, target.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_round_trips_and_unset_is_none() {
        for (stage, _) in WORDS {
            assert_eq!(
                parse(&format(stage, "lab4")),
                Some((stage, "lab4".to_owned()))
            );
        }
        assert_eq!(parse("-"), None);
        assert_eq!(parse("launched lab4"), None);
        assert!(Stage::BaseSent < Stage::Retired);
        assert!(
            None < Some(Stage::BaseSent),
            "no record comes before every stage"
        );
    }
}
