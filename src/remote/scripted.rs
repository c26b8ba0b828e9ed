//! A scripted fake [`Remote`] for tests that need no host: it answers each
//! script with the first answer whose matcher accepts it, records what ran, and
//! counts round trips. Its tunnel leads to a loopback address the test chose,
//! typically a [`http_server`] standing in for a jail's HTTP API. An
//! [`InFlight`] shared by several hosts tells how many of their scripts ran at
//! once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Output, Remote, RemoteError, StreamReader, StreamWriter, Streaming};

type Matcher = Box<dyn Fn(&str) -> bool + Send + Sync>;
type Answer = Box<dyn Fn(&str) -> Output + Send + Sync>;

/// A host whose answers the test wrote.
pub struct ScriptedRemote {
    host: String,
    answers: Vec<(Matcher, Answer)>,
    /// Local ends by the target they reach; `any_tunnel` for every other target.
    tunnels: HashMap<SocketAddr, SocketAddr>,
    any_tunnel: Option<SocketAddr>,
    ran: Mutex<Vec<String>>,
    round_trips: AtomicU64,
    in_flight: Option<Arc<InFlight>>,
}

/// Scripts running at once, over every host that shares it: each script is
/// in flight from its start until the runtime next polls it (it yields once),
/// so scripts started together overlap, whatever the machine's speed.
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlight {
    /// The most scripts that ran at once so far.
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

/// A script that succeeded and printed `stdout`.
pub fn ok(stdout: &str) -> Output {
    Output {
        code: Some(0),
        stdout: stdout.to_owned(),
        stderr: String::new(),
    }
}

/// A script that failed with `code` and printed `stderr`.
pub fn failed(code: i32, stderr: &str) -> Output {
    Output {
        code: Some(code),
        stdout: String::new(),
        stderr: stderr.to_owned(),
    }
}

impl ScriptedRemote {
    pub fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
            answers: Vec::new(),
            tunnels: HashMap::new(),
            any_tunnel: None,
            ran: Mutex::new(Vec::new()),
            round_trips: AtomicU64::new(0),
            in_flight: None,
        }
    }

    /// Counts this host's scripts in `in_flight`.
    pub fn with_in_flight(mut self, in_flight: Arc<InFlight>) -> Self {
        self.in_flight = Some(in_flight);
        self
    }

    /// Scripts containing `fragment` get `output`.
    pub fn answer(self, fragment: &str, output: Output) -> Self {
        let fragment = fragment.to_owned();
        self.answer_with(
            move |script| script.contains(&fragment),
            move |_| output.clone(),
        )
    }

    /// Scripts `matches` accepts get what `answer` makes of them.
    pub fn answer_with(
        mut self,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
        answer: impl Fn(&str) -> Output + Send + Sync + 'static,
    ) -> Self {
        self.answers.push((Box::new(matches), Box::new(answer)));
        self
    }

    /// Every tunnel leads to `local`.
    pub fn with_tunnel(mut self, local: SocketAddr) -> Self {
        self.any_tunnel = Some(local);
        self
    }

    /// A tunnel to `target` leads to `local`.
    pub fn with_tunnel_to(mut self, target: SocketAddr, local: SocketAddr) -> Self {
        self.tunnels.insert(target, local);
        self
    }

    /// The scripts run so far, in order.
    pub fn ran(&self) -> Vec<String> {
        self.ran
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn round_trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    fn not_scripted(&self, what: &str) -> RemoteError {
        RemoteError::Transport {
            host: self.host.clone(),
            message: format!("not scripted: {what}"),
        }
    }
}

impl Remote for ScriptedRemote {
    fn host(&self) -> &str {
        &self.host
    }

    async fn run(&self, script: &str) -> Result<Output, RemoteError> {
        self.round_trip();
        self.ran
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(script.to_owned());
        if let Some(in_flight) = &self.in_flight {
            let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            in_flight.most.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            in_flight.now.fetch_sub(1, Ordering::SeqCst);
        }
        let answer = self.answers.iter().find(|(matches, _)| matches(script));
        Ok(match answer {
            Some((_, answer)) => answer(script),
            None => failed(127, &format!("no scripted answer for: {script}")),
        })
    }

    async fn tunnel(&self, target: SocketAddr) -> Result<SocketAddr, RemoteError> {
        self.tunnels
            .get(&target)
            .copied()
            .or(self.any_tunnel)
            .ok_or_else(|| RemoteError::Transport {
                host: self.host.clone(),
                message: format!("no tunnel to {target}"),
            })
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn spawn_reader(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamReader>, RemoteError> {
        self.round_trip();
        Err(self.not_scripted(command))
    }

    async fn spawn_writer(
        &self,
        command: &str,
    ) -> Result<Streaming<'_, StreamWriter>, RemoteError> {
        self.round_trip();
        Err(self.not_scripted(command))
    }
}

/// A loopback HTTP server answering every request whose path (without the
/// query) is a key of `routes` with that status and JSON body, and 404
/// otherwise; it runs until the test's runtime ends. Each answer closes its
/// connection.
pub async fn http_server(routes: Vec<(&'static str, u16, String)>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .split('?')
                    .next()
                    .unwrap_or("/");
                let (status, body) = routes
                    .iter()
                    .find(|(route, _, _)| *route == path)
                    .map_or((404, "{}".to_owned()), |(_, s, b)| (*s, b.clone()));
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    address
}

/// A server answering only `GET /` with `body`.
pub async fn http_once(status: u16, body: &str) -> SocketAddr {
    http_server(vec![("/", status, body.to_owned())]).await
}
