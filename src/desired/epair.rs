//! Epair numbers: which `epairN` each jail of a host uses.
//!
//! Numbers are allocated per host in file order, lowest free first, skipping every
//! number a jail of that host claims with an explicit `epair:`. The result is
//! deterministic, collision-free on the host, and stable while new jails are
//! appended (design.md, "VNET and epairs").

use std::collections::BTreeMap;

use crate::inventory::{Jail, Name};

/// Two jails of one host claim the same explicit epair number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "jails {first} and {second} both set `epair: {number}`; epair numbers must differ on a host"
)]
pub struct EpairCollision {
    pub number: u16,
    pub first: Name,
    pub second: Name,
}

/// The epair number of every jail of one host, in the order of `jails`.
pub fn allocate(jails: &[Jail]) -> Result<Vec<u16>, EpairCollision> {
    let mut claimed: BTreeMap<u16, &Name> = BTreeMap::new();
    for jail in jails {
        if let Some(number) = jail.epair
            && let Some(first) = claimed.insert(number, &jail.name)
        {
            return Err(EpairCollision {
                number,
                first: first.clone(),
                second: jail.name.clone(),
            });
        }
    }
    let mut next_candidate: u16 = 0;
    let mut numbers = Vec::with_capacity(jails.len());
    for jail in jails {
        let number = match jail.epair {
            Some(explicit) => explicit,
            None => {
                while claimed.contains_key(&next_candidate) {
                    next_candidate += 1;
                }
                claimed.insert(next_candidate, &jail.name);
                next_candidate
            }
        };
        numbers.push(number);
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Name;

    /// Jails `jail0`, `jail1`, ... with the given explicit epair numbers.
    fn jails(epairs: &[Option<u16>]) -> Vec<Jail> {
        let template = crate::testing::example().hosts[0].jails[0].clone();
        epairs
            .iter()
            .enumerate()
            .map(|(i, &epair)| Jail {
                name: Name::new(&format!("jail{i}")).unwrap(),
                epair,
                ..template.clone()
            })
            .collect()
    }

    #[test]
    fn jails_get_numbers_in_file_order() {
        assert_eq!(allocate(&jails(&[None, None, None])).unwrap(), [0, 1, 2]);
    }

    #[test]
    fn explicit_numbers_are_kept_and_skipped_by_the_allocation() {
        // The explicit 1 comes after the jail that would otherwise get 1.
        assert_eq!(
            allocate(&jails(&[None, None, Some(1), None])).unwrap(),
            [0, 2, 1, 3]
        );
        assert_eq!(
            allocate(&jails(&[Some(0), None, Some(2), None])).unwrap(),
            [0, 1, 2, 3]
        );
        assert_eq!(allocate(&jails(&[None, Some(7)])).unwrap(), [0, 7]);
    }

    #[test]
    fn two_jails_claiming_one_number_is_an_error_naming_both() {
        let err = allocate(&jails(&[Some(3), None, Some(3)])).unwrap_err();
        assert_eq!(err.number, 3);
        assert_eq!(err.first.as_str(), "jail0");
        assert_eq!(err.second.as_str(), "jail2");
    }

    #[test]
    fn allocated_numbers_never_collide() {
        let patterns: [&[Option<u16>]; 3] = [
            &[Some(2), None, None, Some(0), None],
            &[None, Some(1), Some(0), None],
            &[Some(5), Some(4), Some(3), None, None, None, None],
        ];
        for pattern in patterns {
            let mut numbers = allocate(&jails(pattern)).unwrap();
            numbers.sort_unstable();
            numbers.dedup();
            assert_eq!(numbers.len(), pattern.len(), "{pattern:?}");
        }
    }
}
