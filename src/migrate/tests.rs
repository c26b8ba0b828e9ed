//! The mover against scripted hosts, no lab: what a run does from a recorded
//! stage, in which order, on which host, and how it rolls back.

use std::collections::HashMap;

use super::*;
use crate::remote::scripted::{ScriptedRemote, ok};

/// The lab with `lab1-kibana` moving to the spare host `lab4`.
fn kibana_to_lab4() -> (Inventory, Migration, HostState) {
    let inventory = crate::testing::lab();
    let migration = plan::plan(&inventory, "lab1-kibana", "lab4", Strategy::Keep).unwrap();
    let target_state = Inputs::load(&migration.moved, None)
        .unwrap()
        .build(&migration.moved, ClusterPhase::Formed)
        .unwrap()
        .hosts
        .into_iter()
        .find(|h| h.host == migration.target.name)
        .unwrap();
    (inventory, migration, target_state)
}

/// What a [`Mover`] borrows.
struct Fixture {
    inventory: Inventory,
    migration: Migration,
    target_state: HostState,
    remotes: HashMap<String, ScriptedRemote>,
    progress: Progress,
    options: Options,
}

impl Fixture {
    fn mover(&self) -> Mover<'_, ScriptedRemote> {
        Mover {
            inventory: &self.inventory,
            migration: &self.migration,
            remotes: &self.remotes,
            progress: &self.progress,
            options: &self.options,
            target_state: &self.target_state,
            elasticsearch: None,
        }
    }
}

/// Every host of the inventory, each script answered with success, the
/// source's record read answered with `record` and a dataset of 2048 bytes.
fn hosts(inventory: &Inventory, source: &str, record: &str) -> HashMap<String, ScriptedRemote> {
    inventory
        .hosts
        .iter()
        .map(|host| {
            let name = host.name.as_str();
            let mut remote = ScriptedRemote::new(name);
            if name == source {
                remote = remote.answer(
                    "zfs get -H -o value,source",
                    ok(&format!("{record}\n2048\n")),
                );
            }
            (name.to_owned(), remote.answer_with(|_| true, |_| ok("")))
        })
        .collect()
}

/// The records the scripts run on `remote` wrote, in order.
fn records_written(remote: &ScriptedRemote) -> Vec<String> {
    remote
        .ran()
        .iter()
        .filter_map(|script| {
            let (_, value) = script.split_once(&format!("{RECORD}="))?;
            // `zfs set 'haelk:migrate=STAGE TARGET' DATASET`
            Some(value.split('\'').next()?.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_rerun_after_phase_one_stops_sends_and_rolls_back_when_the_stream_fails() {
    let (inventory, migration, target_state) = kibana_to_lab4();
    let remotes = hosts(&inventory, "lab1", "base-sent lab4\tlocal");
    let fixture = Fixture {
        inventory,
        migration,
        target_state,
        remotes,
        progress: Progress::new([], false),
        options: Options::default(),
    };
    let remotes = &fixture.remotes;
    // The scripted hosts cannot stream: phase 2's send fails after the stop.
    let err = fixture.mover().run(Instant::now()).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("lab1-kibana runs on lab1 again; re-run to try again"),
        "{message}"
    );
    let source = &remotes["lab1"];
    // Phase 1 is not redone: no base snapshot, no preflight on the target.
    assert!(
        !source
            .ran()
            .iter()
            .any(|s| s.contains("@haelk-base") && s.contains("zfs snapshot")),
        "{:?}",
        source.ran()
    );
    // Stopped is recorded, then forgotten again so a re-run redoes phase 2.
    assert_eq!(records_written(source), ["stopped lab4", "base-sent lab4"]);
    assert_eq!(
        steps::next_step(Some(Stage::BaseSent), false),
        Step::Stop,
        "the re-run after this one stops again"
    );
    // Each haproxy in front of Kibana took the server out, then back in.
    for host in ["lab1", "lab2"] {
        let states: Vec<&str> = remotes[host]
            .ran()
            .iter()
            .filter(|s| s.contains("set server"))
            .map(|s| {
                if s.contains("state maint") {
                    "maint"
                } else {
                    "ready"
                }
            })
            .collect();
        assert_eq!(states, ["maint", "ready"], "{host}");
    }
    // The target only cleared an earlier final snapshot before the stream failed.
    let target = remotes["lab4"].ran();
    assert_eq!(target.len(), 1, "{target:?}");
    assert!(target[0].contains("zfs destroy"), "{target:?}");
}

#[tokio::test]
async fn preflight_is_one_round_trip_on_the_target_and_refuses_an_existing_dataset() {
    let (inventory, migration, target_state) = kibana_to_lab4();
    let mut remotes = hosts(&inventory, "lab1", "-\t-");
    remotes.insert(
        "lab4".to_owned(),
        ScriptedRemote::new("lab4").answer("available", ok("1073741824\nexists\n")),
    );
    let fixture = Fixture {
        inventory,
        migration,
        target_state,
        remotes,
        progress: Progress::new([], false),
        options: Options::default(),
    };
    let remotes = &fixture.remotes;
    let err = fixture.mover().run(Instant::now()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("already exists on lab4: refusing to overwrite it"),
        "{err:#}"
    );
    assert_eq!(remotes["lab4"].round_trips(), 1);
    // The source was read once (record and size together) and nothing changed.
    assert_eq!(remotes["lab1"].round_trips(), 1);
}
