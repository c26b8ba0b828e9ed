//! Shared by the tests against the local lab: one test at a time ([`lab`]), shell
//! on a lab host, `labctl` faults, plain HTTP to the VIPs, clients and probes that
//! use them under a fault, and taking the lab back to empty hosts.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const HOSTS: [&str; 4] = ["lab1", "lab2", "lab3", "lab4"];
pub const ES_VIP: &str = "198.51.100.10:9200";
pub const KIBANA_VIP: &str = "198.51.100.20:5601";

static LAB: Mutex<()> = Mutex::new(());

/// The lab, held by one test at a time: of this process (a mutex; a failed test
/// must not block the others) and of any other test process on the machine (an
/// exclusive lock on a file next to the lab's state, released when dropped).
pub struct LabGuard {
    _file: std::fs::File,
    _thread: MutexGuard<'static, ()>,
}

pub fn lab() -> LabGuard {
    let thread = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let file = std::fs::File::create("/var/tmp/haelk-lab.test-lock").expect("lab test lock file");
    file.lock().expect("lab test lock");
    recover_a_broken_lab();
    LabGuard {
        _file: file,
        _thread: thread,
    }
}

/// zfs-fuse, the lab's ZFS, can die under load (a segfault in its own code,
/// seen twice in long sessions): every dataset then hangs or fails. That breaks
/// the simulated hosts, not haelk, so a test that finds the lab broken brings it
/// down and up again (empty hosts) instead of failing on an earlier test's
/// casualty. The test that was running when it died still fails.
fn recover_a_broken_lab() {
    let labctl = repo().join("lab/labctl");
    let healthy = Command::new(&labctl)
        .arg("status")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("labctl runs")
        .success();
    if healthy {
        return;
    }
    eprintln!("the lab is broken (lab/labctl status failed): bringing it down and up again");
    let down = Command::new(&labctl)
        .arg("down")
        .status()
        .expect("labctl runs");
    assert!(down.success(), "labctl down failed");
    let up = Command::new(&labctl)
        .args(["up", "inventories/lab.yaml"])
        .current_dir(repo())
        .status()
        .expect("labctl runs");
    assert!(up.success(), "labctl up failed");
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `haelk ARGS` in the repository, without progress lines.
pub fn haelk(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_haelk"))
        .args(args)
        .arg("--no-progress")
        .current_dir(repo())
        .output()
        .expect("haelk runs");
    eprintln!(
        "$ haelk {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Deploys `inventory` and insists it succeeds.
pub fn deploy(inventory: &str) -> String {
    let output = haelk(&["deploy", inventory]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    stdout(&output)
}

/// Runs a shell script on a lab host.
pub fn on_host(host: &str, script: &str) -> String {
    let output = Command::new(repo().join("lab/labctl"))
        .args(["ssh", host, script])
        .output()
        .expect("labctl ssh runs");
    assert!(
        output.status.success(),
        "{host}: {script}: {}",
        text(&output)
    );
    stdout(&output)
}

/// Runs `lab/labctl ARGS` (a fault: `power-off HOST`, `unplug HOST`, ...) and
/// insists it succeeds.
pub fn labctl(args: &[&str]) {
    let output = Command::new(repo().join("lab/labctl"))
        .args(args)
        .output()
        .expect("labctl runs");
    assert!(
        output.status.success(),
        "labctl {args:?}: {}",
        text(&output)
    );
}

/// Runs a shell script on a lab host's console (`labctl console`: in the host's
/// namespaces, not over the network, so it reaches an unplugged host): its stdout.
pub fn on_console(host: &str, script: &str) -> String {
    let output = Command::new(repo().join("lab/labctl"))
        .args(["console", host, script])
        .output()
        .expect("labctl console runs");
    assert!(
        output.status.success(),
        "{host}: {script}: {}",
        text(&output)
    );
    stdout(&output)
}

/// An HTTP/1.1 request with `Connection: close`: (status, body).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    http_within(address, method, path, body, Duration::from_secs(10))
}

/// [`http`] that gives up on connecting, and on each read, after `timeout`.
fn http_within(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let socket: SocketAddr = address
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Takes the lab back to empty hosts: every jail stopped, datasets destroyed,
/// haelk's host files and rc values removed.
pub fn reset_lab() {
    for host in HOSTS {
        on_host(
            host,
            "for j in $(jls name); do service jail stop $j >/dev/null 2>&1 || jail -r $j; done
             rm -f /etc/jail.conf.d/*.conf
             sysrc -x jail_enable jail_list >/dev/null 2>&1 || true
             sysrc -f /boot/loader.conf -x carp_load >/dev/null 2>&1 || true",
        );
        let dataset = format!("{host}/jails");
        let exists = Command::new("zfs")
            .args(["list", "-H", "-o", "name", &dataset])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("runs zfs")
            .success();
        if exists {
            destroy_lab_dataset(&dataset);
        }
    }
}

/// `zfs destroy -r NAME`, run here rather than in the lab host: a host session
/// unmounts only its own copy of the mount (its namespace is a propagation slave
/// of the one zfs-fuse mounted in), so zfs-fuse finds the dataset busy. Here the
/// first attempt unmounts and the next one destroys.
pub fn destroy_lab_dataset(name: &str) {
    for _ in 0..10 {
        let status = Command::new("zfs")
            .args(["destroy", "-r", name])
            .stderr(Stdio::null())
            .status()
            .expect("runs zfs");
        if status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("cannot destroy {name}: destroy it with `zfs destroy -r {name}`");
}

/// The lab inventory with `edit` applied, next to a copy of its secrets.
pub struct EditedInventory {
    dir: tempfile::TempDir,
}

impl EditedInventory {
    pub fn new(edit: impl FnOnce(&str) -> String) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = fs::read_to_string(repo().join("inventories/lab.yaml")).expect("lab.yaml");
        let edited = edit(&original);
        fs::write(dir.path().join("lab.yaml"), edited).expect("write inventory");
        fs::create_dir(dir.path().join("secrets")).expect("mkdir");
        for entry in fs::read_dir(repo().join("inventories/secrets")).expect("secrets") {
            let entry = entry.expect("entry");
            fs::copy(
                entry.path(),
                dir.path().join("secrets").join(entry.file_name()),
            )
            .expect("copy secret");
        }
        Self { dir }
    }

    pub fn path(&self) -> String {
        self.dir.path().join("lab.yaml").display().to_string()
    }

    /// Writes a file next to the inventory (a template override, ...).
    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.dir.path().join(relative);
        fs::create_dir_all(
            path.parent()
                .expect("a file under the inventory's directory"),
        )
        .expect("mkdir");
        fs::write(path, contents).expect("write next to the inventory");
    }
}

/// A client that indexes a document and reads it back through the ES VIP, again
/// and again, until stopped; it records every failed request.
pub struct Client {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Client {
    pub fn start(index: String) -> Self {
        let (status, body) = http(
            ES_VIP,
            "PUT",
            &format!("/{index}"),
            Some(r#"{"settings":{"number_of_shards":1,"number_of_replicas":1}}"#),
        )
        .expect("create index");
        assert_eq!(status, 200, "{body}");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut written = 0;
            let mut failures = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let id = written + 1;
                let doc = format!(r#"{{"n":{id}}}"#);
                match http(
                    ES_VIP,
                    "PUT",
                    &format!("/{index}/_doc/{id}?refresh=true"),
                    Some(&doc),
                ) {
                    Ok((200 | 201, _)) => written = id,
                    other => {
                        failures.push(format!("write {id}: {other:?}"));
                        // A refused connection fails at once: keep the pace.
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                }
                match http(ES_VIP, "GET", &format!("/{index}/_doc/{id}"), None) {
                    Ok((200, body)) if source_n(&body) == Some(id) => {}
                    other => failures.push(format!("read {id}: {other:?}")),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (written, failures)
        });
        Self { stop, thread }
    }

    /// Stops the client: (documents written, failures).
    pub fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread")
    }
}

/// `_source.n` of a get response.
pub fn source_n(body: &str) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["_source"]["n"].as_u64().map(|n| n as usize)
}

pub fn document_count(index: &str) -> usize {
    try_document_count(index)
        .unwrap_or_else(|| panic!("GET /{index}/_count through the ES VIP failed"))
}

/// The index's document count through the ES VIP, or None if it did not answer.
pub fn try_document_count(index: &str) -> Option<usize> {
    let (status, body) = http(ES_VIP, "GET", &format!("/{index}/_count"), None).ok()?;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    (status == 200)
        .then(|| value["count"].as_u64())
        .flatten()
        .map(|n| n as usize)
}

/// Asks a VIP for one path every 100 ms until finished (for ten minutes at most),
/// recording when each answer came and whether it was a 200.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Samples>,
}

impl Probe {
    const EVERY: Duration = Duration::from_millis(100);
    const TIMEOUT: Duration = Duration::from_secs(1);
    const AT_MOST: Duration = Duration::from_secs(600);

    pub fn start(address: &'static str, path: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) && started.elapsed() < Self::AT_MOST {
                let answered = http_within(address, "GET", path, None, Self::TIMEOUT)
                    .is_ok_and(|(status, _)| status == 200);
                samples.push((Instant::now(), answered));
                std::thread::sleep(Self::EVERY);
            }
            Samples(samples)
        });
        Self { stop, thread }
    }

    pub fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("probe thread")
    }
}

/// What a [`Probe`] saw: (when, answered with a 200) in order.
pub struct Samples(Vec<(Instant, bool)>);

impl Samples {
    pub fn failed(&self) -> usize {
        self.0.iter().filter(|(_, ok)| !ok).count()
    }

    /// Every time without an answer, in order: from the last answer before a
    /// run of failures to the first answer after it.
    pub fn gaps(&self) -> Vec<Duration> {
        let mut gaps = Vec::new();
        let mut last_answer: Option<Instant> = None;
        let mut failing = false;
        for &(at, ok) in &self.0 {
            if ok {
                if let Some(before) = last_answer.filter(|_| failing) {
                    gaps.push(at - before);
                }
                last_answer = Some(at);
            }
            failing = !ok;
        }
        gaps
    }

    /// True when the last `n` requests were all answered.
    pub fn answers_at_the_end(&self, n: usize) -> bool {
        self.0.len() >= n && self.0[self.0.len() - n..].iter().all(|(_, ok)| *ok)
    }
}
