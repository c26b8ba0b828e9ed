//! CARP: which haproxy jails carry which VIP, and with what advskew.
//!
//! Every haproxy jail that `fronts` a service is a member of that service's VIP.
//! The members in file order get advskew 0, 100, 200, ... (capped at 240, CARP's
//! useful maximum below 255), unless a jail sets `advskew:` itself. The lowest
//! advskew is master, so the first member in the file is the preferred master.

use crate::inventory::{Host, Inventory, Jail, Role};

/// The step between members' derived advskews: wide enough that an operator can
/// slot a jail between two others with an explicit value.
pub const ADVSKEW_STEP: u16 = 100;
/// The largest derived advskew.
pub const MAX_DERIVED_ADVSKEW: u8 = 240;

/// The haproxy jails carrying the VIP of `service`, with their hosts, in file order.
pub fn members(inventory: &Inventory, service: Role) -> impl Iterator<Item = (&Host, &Jail)> {
    inventory
        .jails_with_role(Role::Haproxy)
        .filter(move |(_, jail)| jail.fronts == Some(service))
}

/// The advskew of the member at `position` (0-based, file order) of its VIP.
pub fn derived_advskew(position: usize) -> u8 {
    let skew = (position as u64).saturating_mul(u64::from(ADVSKEW_STEP));
    u8::try_from(skew.min(u64::from(MAX_DERIVED_ADVSKEW))).unwrap_or(MAX_DERIVED_ADVSKEW)
}

/// The advskew of haproxy jail `jail`, or `None` when it carries no VIP.
pub fn advskew(inventory: &Inventory, jail: &Jail) -> Option<u8> {
    let service = jail.fronts?;
    let position = members(inventory, service).position(|(_, member)| member.name == jail.name)?;
    Some(jail.advskew.unwrap_or_else(|| derived_advskew(position)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn derived_advskews_step_by_100_and_stop_at_240() {
        let skews: Vec<u8> = (0..5).map(derived_advskew).collect();
        assert_eq!(skews, [0, 100, 200, 240, 240]);
    }

    #[test]
    fn members_of_a_vip_in_file_order_get_increasing_advskews() {
        let inventory = testing::example();
        let kibana_members: Vec<(&str, Option<u8>)> = members(&inventory, Role::Kibana)
            .map(|(_, j)| (j.name.as_str(), advskew(&inventory, j)))
            .collect();
        assert_eq!(
            kibana_members,
            [
                ("11e9-haproxy-kibana", Some(0)),
                ("2a41-haproxy-kibana", Some(100))
            ]
        );
    }

    #[test]
    fn an_explicit_advskew_wins_and_leaves_the_others_alone() {
        let mut inventory = testing::example();
        let first = inventory.hosts[0]
            .jails
            .iter_mut()
            .find(|j| j.name.as_str() == "9fbb-haproxy-elasticsearch")
            .unwrap();
        first.advskew = Some(150);
        let (_, first) = inventory.find_jail("9fbb-haproxy-elasticsearch").unwrap();
        let (_, second) = inventory.find_jail("2a43-haproxy-elasticsearch").unwrap();
        assert_eq!(advskew(&inventory, first), Some(150));
        assert_eq!(advskew(&inventory, second), Some(100));
    }

    #[test]
    fn jails_carrying_no_vip_have_no_advskew() {
        let inventory = testing::example();
        let (_, kibana) = inventory.find_jail("8f15-kibana").unwrap();
        assert_eq!(advskew(&inventory, kibana), None);
    }
}
