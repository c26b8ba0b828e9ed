"""Throw-away networks for the CARP self-tests and bench/carp-failover (no lab needed).

A Linux bridge in a network namespace of its own stands in for the switch; each member is
another namespace with `vnet0`, a veth whose peer is a port of that bridge, and an address
from 192.0.2.200-230/24. Members run the lab's CARP speaker (haelklab.freebsd.carp) inside
their namespace, a TCP listener bound to the VIP that answers its own name, and a client
probe (a bounded loop of connections) from a member without CARP. Nothing touches the root
namespace's networking; close() stops what was started by PID and deletes the namespaces.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from haelklab import procs

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
IFNAME = "vnet0"

CALL = """
import json, sys
sys.path.insert(0, sys.argv[1])
from haelklab.freebsd import carp
from haelklab.freebsd.common import Fail
try:
    func = getattr(carp, sys.argv[2])
    print(json.dumps(func(*json.loads(sys.argv[3]), **json.loads(sys.argv[4]))))
except Fail as e:
    print(e.message, file=sys.stderr)
    sys.exit(1)
"""

LISTENER = """
import socket, sys
vip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: bind the VIP even while not holding it
s.bind((vip, port))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall((name + "\\n").encode())
    except OSError:
        pass
    c.close()
"""

PROBE = """
import json, socket, sys, time
vip, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
interval, timeout = float(sys.argv[4]), float(sys.argv[5])
out, t0 = [], time.monotonic()
for _ in range(count):
    t = time.monotonic()
    try:
        with socket.create_connection((vip, port), timeout=timeout) as s:
            s.settimeout(timeout)
            answer = s.recv(64).decode().strip() or None
    except OSError:
        answer = None
    out.append([round(t - t0, 3), answer])
    time.sleep(max(0.0, interval - (time.monotonic() - t)))
print(json.dumps(out))
"""


class CarpError(Exception):
    """A carp.py call inside a namespace failed (its ifconfig-style message)."""


def sh(argv, check=True, timeout=30):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return result


class Net:
    """A bridge namespace and member namespaces; use as a context manager."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.prefix = f"hcarp-{tag}"
        self.bridge = f"{self.prefix}-sw"
        self.members = {}  # name -> {"ns", "addr", "state_dir"}
        self.listeners = []
        self.namespaces = []

    def __enter__(self):
        try:
            self._netns(self.bridge)
            sh(["ip", "-n", self.bridge, "link", "add", "br0", "type", "bridge"])
            sh(["ip", "-n", self.bridge, "link", "set", "br0", "up"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _netns(self, ns):
        sh(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])

    def add(self, name, addr):
        """A member NAME with vnet0 at ADDR/24 on the bridge."""
        ns = f"{self.prefix}-{name}"
        self._netns(ns)
        port = f"p{len(self.members)}"
        sh(["ip", "-n", ns, "link", "add", IFNAME, "type", "veth", "peer", "name", port,
            "netns", self.bridge])
        sh(["ip", "-n", self.bridge, "link", "set", port, "master", "br0", "up"])
        sh(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", IFNAME])
        sh(["ip", "-n", ns, "link", "set", IFNAME, "up"])
        self.members[name] = {"ns": ns, "addr": addr,
                              "state_dir": tempfile.mkdtemp(prefix=f"{ns}-")}
        return ns

    def add_members(self):
        """The usual cast: a and b (the CARP members) and c (their client)."""
        for i, name in enumerate("abc", start=1):
            self.add(name, f"192.0.2.{200 + i}")
        return self

    def call(self, name, func, *args, **kwargs):
        """carp.FUNC(state_dir, *ARGS, **KWARGS) run inside member NAME's namespace."""
        m = self.members[name]
        result = subprocess.run(
            ["ip", "netns", "exec", m["ns"], PYTHON, "-c", CALL, LAB, func,
             json.dumps([m["state_dir"], *args]), json.dumps(kwargs)],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise CarpError(result.stderr.strip())
        return json.loads(result.stdout)

    def carp(self, name, vhid, advskew, password, vip, **kwargs):
        return self.call(name, "configure", IFNAME, vhid, advskew, password, vip, **kwargs)

    def pair(self, vip, advbase=1, preempt=False, password_b="s3cret", vhid_b=1):
        """Members a (advskew 0) and b (advskew 100) speak CARP for VIP (password s3cret);
        returns once a is MASTER (bounded: a master-down interval, plus slack)."""
        assert self.carp("a", 1, 0, "s3cret", vip, advbase=advbase, preempt=preempt) == "started"
        assert self.carp("b", vhid_b, 100, password_b, vip, advbase=advbase,
                         preempt=preempt) == "started"
        if self.wait_state("a", 1, "MASTER", master_down_bound(advbase)) is None:
            raise AssertionError("a never became CARP MASTER")

    def state(self, name, vhid):
        """NAME's state for VHID as its ifconfig would print it (INIT if not configured)."""
        for entry in self.call(name, "status", IFNAME):
            if entry["vhid"] == vhid:
                return entry["state"]
        return "INIT"

    def holds(self, name, vip):
        """True if member NAME has VIP on vnet0."""
        out = sh(["ip", "-n", self.members[name]["ns"], "-4", "-o", "addr", "show", "dev",
                  IFNAME]).stdout
        return f" {vip}/32 " in out

    def wait_state(self, name, vhid, state, timeout):
        """Seconds until NAME reports STATE for VHID, or None after TIMEOUT seconds."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:  # waits for a CARP state change
            if self.state(name, vhid) == state:
                return time.monotonic() - start
            time.sleep(0.1)
        return None

    def listen(self, name, vip, port):
        """A TCP listener in NAME's namespace bound to VIP:PORT that answers NAME."""
        p = subprocess.Popen(["ip", "netns", "exec", self.members[name]["ns"], PYTHON, "-c",
                              LISTENER, vip, str(port), name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.listeners.append(p)
        ready, _, _ = select.select([p.stdout], [], [], 10)  # waits for the bind
        if not ready or p.stdout.readline().strip() != "ready":
            raise AssertionError(f"listener in {name} did not start: {p.stderr.read()}")

    def probe(self, client, vip, port, count, interval=0.1, timeout=0.5, background=False):
        """COUNT connections to VIP:PORT from CLIENT: [[seconds, answer or None], ...]."""
        argv = ["ip", "netns", "exec", self.members[client]["ns"], PYTHON, "-c", PROBE, vip,
                str(port), str(count), str(interval), str(timeout)]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if background:
            return p
        return finish_probe(p, count, interval, timeout)

    def changed_at(self, name, vhid):
        """When NAME's speaker last changed state (wall clock: its up/down script wrote it)."""
        return os.stat(os.path.join(self.members[name]["state_dir"], "carp",
                                    f"{IFNAME}-vhid{vhid}.state")).st_mtime

    def speaker(self, name, vhid):
        path = os.path.join(self.members[name]["state_dir"], "carp", f"{IFNAME}-vhid{vhid}.json")
        with open(path) as f:
            return json.load(f)["daemon"]

    def log(self, name, vhid):
        """What NAME's ucarp for VHID has logged."""
        with open(os.path.join(self.members[name]["state_dir"], "carp",
                               f"{IFNAME}-vhid{vhid}.log")) as f:
            return f.read()

    def power_cut(self, name, vhid):
        """NAME's speaker killed with SIGKILL and its link down, like a host losing power."""
        ref = self.speaker(name, vhid)
        if procs.alive(ref):
            os.kill(ref["pid"], signal.SIGKILL)
        sh(["ip", "-n", self.members[name]["ns"], "link", "set", IFNAME, "down"])

    def power_on(self, name):
        sh(["ip", "-n", self.members[name]["ns"], "link", "set", IFNAME, "up"])

    def close(self):
        for name, m in self.members.items():
            try:
                self.call(name, "stop_all")
            except (CarpError, subprocess.TimeoutExpired, ValueError):
                pass
            # Whatever stop_all could not stop (by recorded PID and start time).
            carp_dir = os.path.join(m["state_dir"], "carp")
            if os.path.isdir(carp_dir):
                refs = []
                for n in os.listdir(carp_dir):
                    if n.endswith(".json"):
                        with open(os.path.join(carp_dir, n)) as f:
                            refs.append(json.load(f).get("daemon"))
                procs.stop_pids([r["pid"] for r in refs if procs.alive(r)])
        for p in self.listeners:
            p.kill()
            p.communicate()
        for ns in reversed(self.namespaces):
            sh(["ip", "netns", "del", ns], check=False)
        for m in self.members.values():
            shutil.rmtree(m["state_dir"], ignore_errors=True)


def master_down_bound(advbase):
    """How long to wait for a backup to take over: ucarp does after 3 advertisements
    missed (3 * advbase + advskew/256 s); one second more, and slack for a loaded machine."""
    return 3 * advbase + 1 + 5


def finish_probe(p, count, interval, timeout):
    """The answers of a probe started with background=True (bounded wait)."""
    try:
        out, err = p.communicate(timeout=count * (interval + 2 * timeout) + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    if p.returncode != 0:
        raise AssertionError(f"probe failed: {err}")
    return json.loads(out)


def gap(samples):
    """(failed requests, longest time in seconds between two answered requests)."""
    failed = sum(1 for _, answer in samples if answer is None)
    answered = [t for t, answer in samples if answer is not None]
    longest = max((b - a for a, b in zip(answered, answered[1:])), default=0.0)
    return failed, round(longest, 3)
