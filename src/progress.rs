//! What deploy and migrate show while they run, in colmena's shape: the engine
//! sends [`Event`]s (a host started, its step, done or failed, a wait, a line)
//! over a channel to one task that owns the display. On a terminal (and without
//! `--no-progress`) that task draws one indicatif line per host and prints the
//! verification lines above them; otherwise it prints plain lines, rendered by
//! the pure [`Plain`].
//!
//! Every wait reports itself through [`Progress::waiting`]: what it waits for,
//! for how long so far, and what is missing - on the progress lines when they
//! show, else as a plain line every [`PLAIN_WAIT_EVERY`].

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

/// How often a wait prints a plain line when there are no progress lines.
pub const PLAIN_WAIT_EVERY: Duration = Duration::from_secs(5);

/// What the engine tells the display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Work on `host` begins (its line shows `message`).
    Started { host: String, message: String },
    /// What `host` is doing now.
    Step { host: String, message: String },
    /// `host`'s work is done.
    Done { host: String },
    /// `host` failed; the reason is reported once, at the end, on stderr.
    Failed { host: String },
    /// A wait that goes on: on `host`'s line (none: every line).
    Waiting {
        host: Option<String>,
        what: String,
        waited: Duration,
        missing: String,
    },
    /// A line printed above the progress lines (plainly on stdout without them).
    Line(String),
    /// A problem that does not stop the run, printed on stderr.
    Warning(String),
}

/// Where a rendered line goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(String),
    Stderr(String),
}

/// The plain rendering of events, for when there are no progress lines: the
/// lines and warnings as they come, a wait once it has lasted
/// [`PLAIN_WAIT_EVERY`] and then at most every [`PLAIN_WAIT_EVERY`] per thing
/// waited for; host steps, starts and ends print nothing (a failure's reason
/// is reported at the end).
#[derive(Debug, Default)]
pub struct Plain {
    /// When each wait (by what it waits for) last printed a line.
    reported: BTreeMap<String, Instant>,
}

impl Plain {
    /// What `event`, arriving at `now`, prints.
    pub fn render(&mut self, event: &Event, now: Instant) -> Option<Output> {
        match event {
            Event::Line(line) => Some(Output::Stdout(line.clone())),
            Event::Warning(problem) => Some(Output::Stderr(warning_line(problem))),
            Event::Waiting {
                what,
                waited,
                missing,
                ..
            } => {
                if *waited < PLAIN_WAIT_EVERY {
                    return None;
                }
                let due = self
                    .reported
                    .get(what)
                    .is_none_or(|last| now.duration_since(*last) >= PLAIN_WAIT_EVERY);
                if !due {
                    return None;
                }
                self.reported.insert(what.clone(), now);
                Some(Output::Stdout(format!(
                    "  {}",
                    wait_line(what, *waited, missing)
                )))
            }
            Event::Started { .. }
            | Event::Step { .. }
            | Event::Done { .. }
            | Event::Failed { .. } => None,
        }
    }
}

/// What a host's progress line shows after `event`, when it concerns one host
/// (`None` host: every line).
pub fn bar_message(event: &Event) -> Option<(Option<&str>, String)> {
    match event {
        Event::Started { host, message } | Event::Step { host, message } => {
            Some((Some(host), message.clone()))
        }
        Event::Done { host } => Some((Some(host), "done".to_owned())),
        Event::Failed { host } => Some((Some(host), "failed".to_owned())),
        Event::Waiting {
            host,
            what,
            waited,
            missing,
        } => Some((host.as_deref(), wait_line(what, *waited, missing))),
        Event::Line(_) | Event::Warning(_) => None,
    }
}

/// What the display task receives: an event, or the end of the run.
enum Message {
    Event(Event),
    Finish,
}

/// The progress display of one run: a handle that sends [`Event`]s to the task
/// that owns the display. Sending never blocks; [`Progress::finish`] waits
/// until everything sent is shown.
pub struct Progress {
    messages: UnboundedSender<Message>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    /// One line per host in `hosts`, drawn when `enabled` and stdout is a
    /// terminal; else plain lines. Starts the display task (on the current
    /// tokio runtime).
    pub fn new<'a>(hosts: impl IntoIterator<Item = &'a str>, enabled: bool) -> Self {
        let visible = enabled && std::io::stdout().is_terminal();
        let (messages, receiver) = unbounded_channel();
        let task = if visible {
            let hosts: Vec<String> = hosts.into_iter().map(str::to_owned).collect();
            tokio::spawn(draw(hosts, receiver))
        } else {
            tokio::spawn(print_plain(receiver))
        };
        Self {
            messages,
            task: Mutex::new(Some(task)),
        }
    }

    /// A display that records the events it gets, for tests of what an engine
    /// shows.
    #[cfg(test)]
    pub(crate) fn recording() -> (Self, std::sync::Arc<Mutex<Vec<Event>>>) {
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (messages, mut receiver) = unbounded_channel();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(Message::Event(event)) = receiver.recv().await {
                record
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(event);
            }
        });
        let progress = Self {
            messages,
            task: Mutex::new(Some(task)),
        };
        (progress, seen)
    }

    /// Sends `event` to the display. After [`Progress::finish`] the display is
    /// gone and the event is dropped.
    pub fn send(&self, event: Event) {
        // The receiver lives until finish: a send fails only after it.
        let _ = self.messages.send(Message::Event(event));
    }

    /// Reports a wait that goes on: `what` it waits for, `waited` so far and
    /// what is `missing`, on `host`'s line (none: every line).
    pub fn waiting(&self, host: Option<&str>, what: &str, waited: Duration, missing: &str) {
        self.send(Event::Waiting {
            host: host.map(str::to_owned),
            what: what.to_owned(),
            waited,
            missing: missing.to_owned(),
        });
    }

    /// Work on `host` begins.
    pub fn started(&self, host: &str, message: impl Into<String>) {
        self.send(Event::Started {
            host: host.to_owned(),
            message: message.into(),
        });
    }

    /// Shows what `host` is doing now.
    pub fn step(&self, host: &str, message: impl Into<String>) {
        self.send(Event::Step {
            host: host.to_owned(),
            message: message.into(),
        });
    }

    /// `host` is done (`ok`) or failed.
    pub fn ended(&self, host: &str, ok: bool) {
        let host = host.to_owned();
        self.send(if ok {
            Event::Done { host }
        } else {
            Event::Failed { host }
        });
    }

    /// Prints a line above the progress lines (or plainly when they are hidden).
    pub fn println(&self, line: impl AsRef<str>) {
        self.send(Event::Line(line.as_ref().to_owned()));
    }

    /// Prints `warning: PROBLEM` on stderr, above the progress lines.
    pub fn warn(&self, problem: impl std::fmt::Display) {
        self.send(Event::Warning(format!("{problem:#}")));
    }

    /// Shows everything sent so far, removes the progress lines and stops the
    /// display task. Later events are dropped.
    pub async fn finish(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(task) = task else { return };
        let _ = self.messages.send(Message::Finish);
        if let Err(err) = task.await {
            tracing::debug!("the progress display ended badly: {err}");
        }
    }
}

/// The display task without progress lines: each event's plain rendering.
async fn print_plain(mut receiver: UnboundedReceiver<Message>) {
    let mut plain = Plain::default();
    while let Some(Message::Event(event)) = receiver.recv().await {
        if let Some(output) = plain.render(&event, Instant::now()) {
            emit(&output);
        }
    }
}

/// The display task with progress lines: one spinner per host, lines and
/// warnings printed above them.
async fn draw(hosts: Vec<String>, mut receiver: UnboundedReceiver<Message>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
    let style = ProgressStyle::with_template("{spinner} {prefix:<12} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bars: BTreeMap<String, ProgressBar> = hosts
        .into_iter()
        .map(|host| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(host.clone());
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(120));
            (host, bar)
        })
        .collect();
    while let Some(Message::Event(event)) = receiver.recv().await {
        match &event {
            Event::Line(line) => {
                // Printing fails only when the terminal is gone; then so is the reader.
                let _ = multi.println(line);
            }
            Event::Warning(problem) => {
                multi.suspend(|| emit(&Output::Stderr(warning_line(problem))));
            }
            _ => {
                if let Some((host, message)) = bar_message(&event) {
                    match host.and_then(|h| bars.get(h)) {
                        Some(bar) => bar.set_message(message),
                        None if host.is_none() => bars
                            .values()
                            .for_each(|bar| bar.set_message(message.clone())),
                        None => {}
                    }
                }
            }
        }
    }
    for bar in bars.values() {
        bar.finish_and_clear();
    }
}

/// Writes one rendered line where it goes.
fn emit(output: &Output) {
    // A closed stdout or stderr leaves nobody to tell.
    let _ = match output {
        Output::Stdout(line) => writeln!(std::io::stdout().lock(), "{line}"),
        Output::Stderr(line) => writeln!(std::io::stderr().lock(), "{line}"),
    };
}

/// `warning: PROBLEM`.
pub fn warning_line(problem: &str) -> String {
    format!("warning: {problem}")
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

    fn wait(what: &str, secs: u64) -> Event {
        Event::Waiting {
            host: Some("lab1".into()),
            what: what.into(),
            waited: Duration::from_secs(secs),
            missing: "lab2 down".into(),
        }
    }

    #[test]
    fn plain_lines_print_lines_and_warnings_and_nothing_for_host_steps() {
        let mut plain = Plain::default();
        let now = Instant::now();
        assert_eq!(
            plain.render(&Event::Line("play hosts".into()), now),
            Some(Output::Stdout("play hosts".into()))
        );
        assert_eq!(
            plain.render(&Event::Warning("lab3 is not connected".into()), now),
            Some(Output::Stderr("warning: lab3 is not connected".into()))
        );
        let host = || "lab1".to_owned();
        for quiet in [
            Event::Started {
                host: host(),
                message: "connecting".into(),
            },
            Event::Step {
                host: host(),
                message: "gathering facts".into(),
            },
            Event::Done { host: host() },
            Event::Failed { host: host() },
        ] {
            assert_eq!(plain.render(&quiet, now), None, "{quiet:?}");
        }
    }

    #[test]
    fn a_plain_wait_prints_after_five_seconds_then_at_most_every_five_per_thing() {
        let mut plain = Plain::default();
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(plain.render(&wait("green", 4), at(4)), None, "too early");
        assert_eq!(
            plain.render(&wait("green", 5), at(5)),
            Some(Output::Stdout("  waiting 5s for green: lab2 down".into()))
        );
        assert_eq!(plain.render(&wait("green", 9), at(9)), None, "throttled");
        assert!(
            plain.render(&wait("drained", 6), at(9)).is_some(),
            "another wait has its own clock"
        );
        assert_eq!(
            plain.render(&wait("green", 10), at(10)),
            Some(Output::Stdout("  waiting 10s for green: lab2 down".into()))
        );
    }

    #[test]
    fn the_bar_of_a_host_shows_its_step_wait_and_end_and_a_cluster_wait_shows_on_all() {
        assert_eq!(
            bar_message(&Event::Step {
                host: "lab1".into(),
                message: "gathering facts".into()
            }),
            Some((Some("lab1"), "gathering facts".into()))
        );
        assert_eq!(
            bar_message(&Event::Failed {
                host: "lab2".into()
            }),
            Some((Some("lab2"), "failed".into()))
        );
        assert_eq!(
            bar_message(&Event::Done {
                host: "lab2".into()
            }),
            Some((Some("lab2"), "done".into()))
        );
        let Event::Waiting { waited, .. } = wait("green", 3) else {
            unreachable!()
        };
        let cluster = Event::Waiting {
            host: None,
            what: "green".into(),
            waited,
            missing: String::new(),
        };
        assert_eq!(
            bar_message(&cluster),
            Some((None, "waiting 3s for green".into()))
        );
        assert_eq!(bar_message(&Event::Line("x".into())), None);
    }

    #[tokio::test]
    async fn finish_waits_for_the_display_and_later_events_are_dropped() {
        let progress = Progress::new(["lab1"], false);
        progress.println("one");
        progress.finish().await;
        assert!(
            progress.task.lock().unwrap().is_none(),
            "the display task is gone"
        );
        progress.println("after");
        progress.finish().await;
    }
}
