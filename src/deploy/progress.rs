//! What deploy shows while it runs: one indicatif line per host with its current
//! step (only on a terminal, and not with `--no-progress`), and the verification
//! lines printed above them as plays and gates finish.
//!
//! Every wait reports itself through [`Progress::waiting`]: what it waits for,
//! for how long so far, and what is missing - on the progress lines when they
//! show, else as a plain line every [`PLAIN_WAIT_EVERY`].

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a wait prints a plain line when there are no progress lines.
pub const PLAIN_WAIT_EVERY: Duration = Duration::from_secs(5);

/// The progress display of one run.
pub struct Progress {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
    /// When each wait (by what it waits for) last printed a plain line.
    reported: Mutex<BTreeMap<String, Instant>>,
}

impl Progress {
    /// One spinner per host; hidden when `enabled` is false or stdout is not a terminal.
    pub fn new<'a>(hosts: impl IntoIterator<Item = &'a str>, enabled: bool) -> Self {
        let visible = enabled && std::io::stdout().is_terminal();
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template("{spinner} {prefix:<12} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = hosts
            .into_iter()
            .map(|host| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(host.to_owned());
                bar.set_message("waiting");
                if visible {
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
                (host.to_owned(), bar)
            })
            .collect();
        Self {
            multi,
            bars,
            reported: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reports a wait that goes on: `what` it waits for, `waited` so far and
    /// what is `missing`. On `host`'s progress line when the lines show (any
    /// host's name, or none for a cluster-wide wait: then every line shows it);
    /// else a plain line once [`PLAIN_WAIT_EVERY`] has passed since the last one.
    pub fn waiting(&self, host: Option<&str>, what: &str, waited: Duration, missing: &str) {
        let line = wait_line(what, waited, missing);
        if !self.multi.is_hidden() {
            match host.and_then(|h| self.bars.get(h)) {
                Some(bar) => bar.set_message(line),
                None => self
                    .bars
                    .values()
                    .for_each(|bar| bar.set_message(line.clone())),
            }
            return;
        }
        if waited < PLAIN_WAIT_EVERY {
            return;
        }
        // A poisoned lock only means a panic elsewhere; the times are still usable.
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let due = reported
            .get(what)
            .is_none_or(|last| now.duration_since(*last) >= PLAIN_WAIT_EVERY);
        if due {
            reported.insert(what.to_owned(), now);
            drop(reported);
            self.println(format!("  {line}"));
        }
    }

    /// Shows what `host` is doing now.
    pub fn step(&self, host: &str, message: impl Into<String>) {
        if let Some(bar) = self.bars.get(host) {
            bar.set_message(message.into());
        }
    }

    /// Prints a line above the progress lines (or plainly when they are hidden).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.multi.is_hidden() {
            println!("{}", line.as_ref());
        } else {
            // Printing fails only when the terminal is gone; then so is the reader.
            let _ = self.multi.println(line.as_ref());
        }
    }

    /// Removes the progress lines.
    pub fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
    }
}

/// `waiting 12s for X: missing`.
pub fn wait_line(what: &str, waited: Duration, missing: &str) -> String {
    let mut line = format!("waiting {}s for {what}", waited.as_secs());
    if !missing.is_empty() {
        line.push_str(": ");
        line.push_str(missing);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_line_says_what_for_how_long_and_what_is_missing() {
        assert_eq!(
            wait_line(
                "the cluster to turn green",
                Duration::from_millis(12_700),
                "lab2-elasticsearch does not answer"
            ),
            "waiting 12s for the cluster to turn green: lab2-elasticsearch does not answer"
        );
        assert_eq!(wait_line("x", Duration::ZERO, ""), "waiting 0s for x");
    }
}
