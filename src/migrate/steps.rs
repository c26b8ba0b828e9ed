//! The migrate stage machine, pure: from the stage the record says finished
//! and what this run has seen, the next step. A re-run after a failure or a
//! kill starts from the record, so it continues where the last run stopped.

use super::Stage;

/// What the mover does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Preflight, then phase 1: the base snapshot while the jail runs.
    SendBase,
    /// Quiesce, then stop the service and the jail on the source.
    Stop,
    /// Phase 2: the final incremental snapshot.
    SendFinal,
    /// The jail and its service on the target.
    Start,
    /// Wait until the service works on the target (every run checks this once).
    Verify,
    /// Undo the quiescing, and make the source forget the jail.
    Retire,
    /// Undo the quiescing; the source was retired by an earlier run.
    Finish,
}

/// The next step after `done` (the last stage recorded as finished; `None`
/// before the first), given whether this run has `verified` the target yet.
pub fn next_step(done: Option<Stage>, verified: bool) -> Step {
    match done {
        None => Step::SendBase,
        Some(Stage::BaseSent) => Step::Stop,
        Some(Stage::Stopped) => Step::SendFinal,
        Some(Stage::FinalSent) => Step::Start,
        Some(Stage::Started | Stage::Retired) if !verified => Step::Verify,
        Some(Stage::Started) => Step::Retire,
        Some(Stage::Retired) => Step::Finish,
    }
}

/// The stage a step records when it succeeds; `None` for steps that record nothing.
pub fn records(step: Step) -> Option<Stage> {
    match step {
        Step::SendBase => Some(Stage::BaseSent),
        Step::Stop => Some(Stage::Stopped),
        Step::SendFinal => Some(Stage::FinalSent),
        Step::Start => Some(Stage::Started),
        Step::Retire => Some(Stage::Retired),
        Step::Verify | Step::Finish => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps a run takes from `done` to the end, each recording its stage.
    fn run_from(mut done: Option<Stage>) -> Vec<Step> {
        let mut verified = false;
        let mut steps = Vec::new();
        loop {
            let step = next_step(done, verified);
            steps.push(step);
            match step {
                Step::Finish => return steps,
                Step::Verify => verified = true,
                // Retire is the last step that changes a host; the run ends after it.
                Step::Retire => return steps,
                other => done = records(other).or(done),
            }
        }
    }

    #[test]
    fn a_first_run_takes_every_step_once_in_order() {
        use Step::*;
        assert_eq!(
            run_from(None),
            [SendBase, Stop, SendFinal, Start, Verify, Retire]
        );
    }

    #[test]
    fn a_rerun_after_each_stage_continues_with_the_next_one_and_verifies_again() {
        use Step::*;
        assert_eq!(
            run_from(Some(Stage::BaseSent)),
            [Stop, SendFinal, Start, Verify, Retire]
        );
        assert_eq!(
            run_from(Some(Stage::Stopped)),
            [SendFinal, Start, Verify, Retire]
        );
        assert_eq!(run_from(Some(Stage::FinalSent)), [Start, Verify, Retire]);
        assert_eq!(run_from(Some(Stage::Started)), [Verify, Retire]);
        // Retired already: the target is checked, nothing is changed again.
        assert_eq!(run_from(Some(Stage::Retired)), [Verify, Finish]);
    }

    #[test]
    fn only_steps_that_change_a_host_record_a_stage() {
        assert_eq!(records(Step::Verify), None);
        assert_eq!(records(Step::Finish), None);
        assert_eq!(records(Step::Stop), Some(Stage::Stopped));
    }
}
