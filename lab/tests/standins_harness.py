"""Test harness for the Elasticsearch and Kibana stand-ins: writes configs into temp dirs,
starts node processes on loopback addresses as the current user, talks to them over HTTP,
and always kills what it started (by PID)."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

STANDINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "haelklab", "standins")
ES = os.path.join(STANDINS, "elasticsearch.py")
KIBANA = os.path.join(STANDINS, "kibana.py")
_subnets = itertools.count(1)
# Second octet from the PID: two test runs at once (CI, another helper) do not share addresses.
_OCTET = 100 + os.getpid() % 150


def next_subnet():
    """A fresh 127.X.N.0/24 per cluster, so a slow-dying process never collides with the next test."""
    return f"127.{_OCTET}.{next(_subnets)}"


def request(method, url, body=None, timeout=40):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode()


def wait_until(predicate, timeout=15.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as err:
            last = err
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def holds_for(predicate, seconds, interval=0.1, what="condition"):
    """Assert that `predicate` stays true for `seconds`, checking all along (not one look at the end)."""
    deadline = time.time() + seconds
    while True:
        assert predicate(), f"{what} stopped holding"
        if time.time() >= deadline:
            return
        time.sleep(interval)


class Processes:
    """Every process a test started; `kill_all` runs in fixture teardown."""

    def __init__(self):
        self.procs = []

    def start(self, args, log_path):
        log = open(log_path, "ab")  # noqa: SIM115 - owned by the process record
        proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def kill_all(self):
        for proc, log in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            log.close()


def run_refused(args, timeout=15, prefix=()):
    """Run a stand-in expected to refuse to start; return (exit code, output)."""
    proc = subprocess.run([*prefix, sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


class EsCluster:
    """A set of ES stand-in nodes named n1..nN on 127.0.X.1..N."""

    def __init__(self, tmp_path, procs, roles=None, count=3, repo=True):
        self.tmp, self.procs = tmp_path, procs
        self.subnet = next_subnet()
        self.names = [f"n{i}" for i in range(1, count + 1)]
        self.roles = roles or {n: ["master", "data"] for n in self.names}
        self.repo = str(tmp_path / "repo")
        self.use_repo = repo
        self.running = {}

    def ip(self, name):
        return f"{self.subnet}.{self.names.index(name) + 1}"

    def url(self, name, path):
        return f"http://{self.ip(name)}:9200{path}"

    def settings(self, name, bootstrap=True):
        s = {
            "cluster.name": "lab-test",
            "node.name": name,
            "node.roles": self.roles[name],
            "network.host": self.ip(name),
            "http.port": 9200,
            "transport.port": 9300,
            "discovery.seed_hosts": [f"{self.ip(n)}:9300" for n in self.names],
            "path.data": str(self.tmp / name / "data"),
            "path.logs": str(self.tmp / name / "logs"),
            "xpack.ml.enabled": False,
            "xpack.security.enabled": False,
        }
        if self.use_repo:
            s["path.repo"] = [self.repo]
        if bootstrap:
            s["cluster.initial_master_nodes"] = [n for n in self.names if "master" in self.roles[n]]
        return s

    def conf_dir(self, name):
        return self.tmp / name / "conf"

    def write_config(self, name, settings, heap=None):
        conf = self.conf_dir(name)
        os.makedirs(conf / "jvm.options.d", exist_ok=True)
        with open(conf / "elasticsearch.yml", "w", encoding="utf-8") as handle:
            yaml.safe_dump(settings, handle)
        if heap:
            with open(conf / "jvm.options.d" / "heap.options", "w", encoding="utf-8") as handle:
                handle.write(heap)

    def start(self, name, bootstrap=True, settings=None):
        self.write_config(name, settings or self.settings(name, bootstrap))
        proc = self.procs.start([ES, "--path-conf", str(self.conf_dir(name))], str(self.tmp / f"{name}.out"))
        self.running[name] = proc
        return proc

    def start_all(self, bootstrap=True):
        for name in self.names:
            self.start(name, bootstrap)
        self.wait_nodes(len(self.names))

    def stop(self, name, sig=signal.SIGTERM):
        proc = self.running.pop(name)
        os.kill(proc.pid, sig)
        return proc.wait(timeout=15)

    def get(self, name, path, **kw):
        return request("GET", self.url(name, path), **kw)

    def put(self, name, path, body=None):
        return request("PUT", self.url(name, path), body)

    def post(self, name, path, body=None):
        return request("POST", self.url(name, path), body)

    def delete(self, name, path):
        return request("DELETE", self.url(name, path))

    def any_up(self):
        return next(iter(self.running))

    def health(self, name=None, params=""):
        return self.get(name or self.any_up(), "/_cluster/health" + params)

    def wait_nodes(self, count, via=None, timeout=20):
        def ok():
            status, body = self.health(via, f"?wait_for_nodes={count}&timeout=1s&master_timeout=1s")
            return status == 200 and body["number_of_nodes"] == count

        wait_until(ok, timeout, what=f"{count} nodes")

    def wait_status(self, status, via=None, timeout=20):
        code, body = self.health(via, f"?wait_for_status={status}&timeout={timeout}s")
        assert code == 200 and body["status"] == status, body
        return body

    def master_name(self, via=None):
        """The elected master's name as `via` sees it, or None while there is none (503)."""
        status, rows = self.get(via or self.any_up(), "/_cat/nodes?format=json&h=name,master&master_timeout=1s")
        if status == 503:
            return None
        assert status == 200, rows
        return next(r["name"] for r in rows if r["master"] == "*")

    def shards(self, via=None, index=""):
        status, rows = self.get(
            via or self.any_up(), f"/_cat/shards/{index}?format=json&h=index,shard,prirep,state,node"
        )
        assert status == 200, rows
        return rows

    def output(self, name):
        return (self.tmp / f"{name}.out").read_text()
