//! What deploy shows while it runs: one indicatif line per host with its current
//! step (only on a terminal, and not with `--no-progress`), and the verification
//! lines printed above them as plays and gates finish.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress display of one run.
pub struct Progress {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
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
        Self { multi, bars }
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
