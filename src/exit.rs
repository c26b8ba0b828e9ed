//! Exit codes of the command-line contract.

use std::process::ExitCode;

/// What a command reports to the shell: `0` success, `1` error or failed check,
/// `2` differences found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success, healthy, or no differences.
    Success,
    /// A check failed (lint errors, unhealthy status, failed deploy).
    Failed,
    /// Differences found (`render --diff`, `deploy --dry-run --detailed-exitcode`).
    Differences,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::Differences => ExitCode::from(2),
        }
    }
}
