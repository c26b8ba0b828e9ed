//! Streaming bytes from a command on one host into a command on another through
//! haelk (e.g. `zfs send` into `zfs recv`), so no host needs a key for another
//! and the bytes and the rate can be shown as they pass.
//!
//! Whichever side fails first is the one reported: a receiver that refuses the
//! stream breaks the sender's pipe, and a sender that dies leaves the receiver
//! with a truncated stream - those second failures are consequences, not causes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Remote, RemoteError};

/// Bytes copied per read: large enough that a gigabit stream is a few thousand
/// reads a second.
const BUFFER_SIZE: usize = 256 * 1024;
/// The shortest time between two progress reports.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// How long a sender whose receiver has failed gets to notice its broken pipe
/// before haelk stops waiting for it.
const SENDER_GRACE: Duration = Duration::from_secs(10);

/// What went through a finished stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamStats {
    pub bytes: u64,
    pub elapsed: Duration,
}

impl StreamStats {
    /// The average rate; 0 for an instantaneous stream.
    pub fn bytes_per_sec(&self) -> f64 {
        rate(self.bytes, self.elapsed)
    }
}

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        bytes as f64 / seconds
    } else {
        0.0
    }
}

/// Why a stream did not complete; each names the host, the command and its stderr.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The sending command could not start or failed.
    #[error("{0}")]
    Send(RemoteError),
    /// The receiving command could not start or failed.
    #[error("{0}")]
    Receive(RemoteError),
}

/// Which end of the copy broke first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    Nothing,
    Reading,
    Writing,
}

/// Runs `send_command` on `source` and `recv_command` on `target`, copying the
/// first's standard output into the second's standard input. `progress` gets the
/// bytes so far and the average rate at most every 200 ms, and once more at the
/// end. Succeeds only if both commands exit with status 0.
pub async fn pipe(
    source: &impl Remote,
    send_command: &str,
    target: &impl Remote,
    recv_command: &str,
    progress: impl Fn(u64, f64),
) -> Result<StreamStats, StreamError> {
    // The receiver starts first: a target that cannot receive is found before
    // the source does any work.
    let mut receiver = target
        .spawn_writer(recv_command)
        .await
        .map_err(StreamError::Receive)?;
    let mut sender = match source.spawn_reader(send_command).await {
        Ok(sender) => sender,
        Err(err) => {
            // Ends the receiver on an empty stream, which it rejects.
            let _ = receiver.finish().await;
            return Err(StreamError::Send(err));
        }
    };

    let started = Instant::now();
    let mut bytes = 0u64;
    let mut last_report = started;
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let broken = match (sender.pipe(), receiver.pipe()) {
        (Some(reader), Some(writer)) => loop {
            let read = match reader.read(&mut buffer).await {
                Ok(0) => {
                    break writer
                        .shutdown()
                        .await
                        .map_or(Broken::Writing, |()| Broken::Nothing);
                }
                Ok(read) => read,
                Err(_) => break Broken::Reading,
            };
            if writer.write_all(&buffer[..read]).await.is_err() {
                break Broken::Writing;
            }
            bytes += read as u64;
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                progress(bytes, rate(bytes, started.elapsed()));
            }
        },
        // Only a stream whose pipe was taken before; `spawn_*` never hands one out.
        _ => Broken::Reading,
    };
    let elapsed = started.elapsed();

    let (sent, received) = if broken == Broken::Writing {
        // The receiver is gone: let it report why, then give the sender time to
        // see its broken pipe (over ssh that takes a channel close) and no more.
        let received = receiver.finish().await;
        let sent = tokio::time::timeout(SENDER_GRACE, sender.finish())
            .await
            .unwrap_or(Ok(()));
        (sent, received)
    } else {
        // The receiver's input is closed: both end on their own.
        tokio::join!(sender.finish(), receiver.finish())
    };
    match (broken, sent, received) {
        // The sender's failure, if any, is its broken pipe.
        (Broken::Writing, _, Err(err)) => Err(StreamError::Receive(err)),
        (Broken::Writing, _, Ok(())) => Err(StreamError::Receive(RemoteError::Transport {
            host: target.host().to_owned(),
            message: format!("`{recv_command}` stopped reading its input"),
        })),
        (_, Err(err), _) => Err(StreamError::Send(err)),
        (_, Ok(()), Err(err)) => Err(StreamError::Receive(err)),
        (Broken::Reading, Ok(()), Ok(())) => Err(StreamError::Send(RemoteError::Transport {
            host: source.host().to_owned(),
            message: format!("reading the output of `{send_command}` failed"),
        })),
        (Broken::Nothing, Ok(()), Ok(())) => {
            progress(bytes, rate(bytes, elapsed));
            Ok(StreamStats { bytes, elapsed })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::remote::local::LocalRemote;

    const MEGABYTE: u64 = 1024 * 1024;

    #[tokio::test]
    async fn copies_every_byte_and_counts_one_round_trip_per_side() {
        let source = LocalRemote::new("lab1");
        let target = LocalRemote::new("lab2");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("received");
        let reports = Mutex::new(Vec::new());
        let stats = pipe(
            &source,
            &format!(
                "head -c {MEGABYTE} /dev/urandom | tee {}",
                dir.path().join("sent").display()
            ),
            &target,
            &format!("cat > {}", file.display()),
            |bytes, rate| reports.lock().unwrap().push((bytes, rate)),
        )
        .await
        .unwrap();
        assert_eq!(stats.bytes, MEGABYTE);
        let sent = std::fs::read(dir.path().join("sent")).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), sent);
        let reports = reports.into_inner().unwrap();
        assert_eq!(
            reports.last().unwrap().0,
            MEGABYTE,
            "a final report with the total"
        );
        assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!((source.round_trips(), target.round_trips()), (1, 1));
    }

    #[tokio::test]
    async fn progress_is_reported_at_most_every_200_ms() {
        let source = LocalRemote::new("lab1");
        let target = LocalRemote::new("lab2");
        let reports = Mutex::new(Vec::new());
        // Ten chunks a tenth of a second apart: about five reports, not ten.
        let stats = pipe(
            &source,
            "for i in 1 2 3 4 5 6 7 8 9 10; do head -c 1000 /dev/zero; sleep 0.1; done",
            &target,
            "wc -c >/dev/null",
            |bytes, rate| reports.lock().unwrap().push((bytes, rate)),
        )
        .await
        .unwrap();
        assert_eq!(stats.bytes, 10_000);
        assert!(stats.elapsed >= Duration::from_millis(900), "{stats:?}");
        let reports = reports.into_inner().unwrap();
        // One report per 200 ms, plus the final one; unthrottled it would be 11.
        let allowed = stats.elapsed.as_millis() / 200 + 1;
        assert!(
            (2..=allowed).contains(&(reports.len() as u128)),
            "{} reports in {:?}: {reports:?}",
            reports.len(),
            stats.elapsed
        );
        assert!(reports.iter().all(|&(_, rate)| rate > 0.0), "{reports:?}");
    }

    #[tokio::test]
    async fn a_receiver_that_refuses_the_stream_is_the_error_not_the_sender_it_cut_off() {
        let source = LocalRemote::new("lab1");
        let target = LocalRemote::new("lab2");
        let err = pipe(
            &source,
            "cat /dev/zero",
            &target,
            "head -c 10 >/dev/null; echo 'cannot receive: destination exists' >&2; exit 1",
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StreamError::Receive(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "lab2: `head -c 10 >/dev/null; echo 'cannot receive: destination exists' >&2; exit 1` \
             failed (exit status 1): cannot receive: destination exists"
        );
    }

    #[tokio::test]
    async fn a_sender_that_fails_midway_is_the_error_and_the_receiver_sees_a_short_stream() {
        let source = LocalRemote::new("lab1");
        let target = LocalRemote::new("lab2");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("received");
        let err = pipe(
            &source,
            "head -c 5000 /dev/zero; echo 'cannot open lab1/x@s1: dataset does not exist' >&2; exit 2",
            &target,
            // Like zfs recv: a stream that does not end as promised is rejected.
            &format!("cat > {}; test $(wc -c < {}) -eq 10000", file.display(), file.display()),
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StreamError::Send(_)), "{err:?}");
        assert!(
            err.to_string()
                .ends_with("failed (exit status 2): cannot open lab1/x@s1: dataset does not exist"),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 5000);
    }

    #[tokio::test]
    async fn a_receiver_that_exits_0_without_reading_everything_is_an_error() {
        let source = LocalRemote::new("lab1");
        let target = LocalRemote::new("lab2");
        let err = pipe(
            &source,
            "cat /dev/zero",
            &target,
            "head -c 10 >/dev/null",
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StreamError::Receive(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "lab2: `head -c 10 >/dev/null` stopped reading its input"
        );
    }
}
