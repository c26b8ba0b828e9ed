"""`labctl kill-sessions HOST`: cut a host's SSH connections without "rebooting" it.

Restarting a host's sshd (`labctl up` after a stop) wipes its jails, interfaces and
modules; this instead SIGKILLs what serves the current connections and leaves the
listener running, as when a connection dies mid-deploy on a real host.

What counts as one of the host's sessions (all found from the host's *recorded*
listener, identified by PID and start time, so only processes the lab started):

- every sshd below the listener, through sshd processes only (per-connection,
  privilege-separation and session sshds, authenticated or not);
- what those sshds run: each non-sshd child (sshd makes it a session leader: the
  `/bin/sh -s` script, or the user's command) and its descendants *that stay in its
  session*. A descendant that called setsid(2) has daemonized - `service` starts
  the Elasticsearch and Kibana stand-ins in their own session, haproxy `-D` makes
  its own - and is left running, with everything below it. Jailed commands still
  in the session (`jexec JAIL cmd` in the foreground) are killed with it.

Processes that already left the tree (a daemon re-parented to init) are never
candidates. Candidates are first stopped (SIGSTOP, so nothing forks or daemonizes
behind the scan), the tree is scanned again until no new candidate appears, and
whatever is then still a candidate is SIGKILLed; a stopped process that turned out
to have daemonized just before it was stopped is continued instead.
"""
import os
import signal
import time
from dataclasses import dataclass

from haelklab.procs import alive

# How many stop-and-rescan rounds before giving up on a tree that keeps growing.
MAX_ROUNDS = 20


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    start: int
    state: str
    exe: str
    command: str


def read_proc(pid):
    """One /proc entry as a Proc, or None if it vanished or is a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, IndexError):
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    if fields[0] == "Z":
        return None
    return Proc(pid=pid, ppid=int(fields[1]), sid=int(fields[3]), start=int(fields[19]),
                state=fields[0], exe=exe, command=command)


def process_table():
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = read_proc(int(entry))
            if proc:
                table[proc.pid] = proc
    return table


def session_processes(table, listener):
    """PIDs of LISTENER's sessions in TABLE (pid -> Proc): see the module doc. Pure."""
    children = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    sshd_exe = table[listener].exe
    found = []
    sshds = [listener]
    while sshds:
        parent = sshds.pop()
        for child in children.get(parent, []):
            if child.exe == sshd_exe:
                found.append(child.pid)
                sshds.append(child.pid)
            else:
                found.extend(same_session_subtree(children, child))
    return found


def same_session_subtree(children, top):
    """TOP and its descendants in TOP's session, not descending into those that left it."""
    found, todo = [], [top]
    while todo:
        proc = todo.pop()
        found.append(proc.pid)
        todo.extend(c for c in children.get(proc.pid, []) if c.sid == top.sid)
    return found


def signal_ref(ref, sig):
    if alive(ref):
        try:
            os.kill(ref["pid"], sig)
        except ProcessLookupError:
            pass


def gone(ref):
    """True once REF's process exited (a zombie counts as gone)."""
    proc = read_proc(ref["pid"])
    return proc is None or proc.start != ref["start"]


def kill_sessions(listener_ref, timeout=5.0):
    """SIGKILL every session process below LISTENER_REF; returns the killed Procs.
    Raises RuntimeError if one survives TIMEOUT seconds."""
    listener = listener_ref["pid"]
    stopped = {}  # pid -> Proc, as seen when stopped
    for _ in range(MAX_ROUNDS):
        table = process_table()
        if listener not in table or not alive(listener_ref):
            raise RuntimeError(f"the listener (PID {listener}) is not running")
        new = [table[p] for p in session_processes(table, listener) if p not in stopped]
        if not new:
            break
        for proc in new:
            ref = {"pid": proc.pid, "start": proc.start}
            signal_ref(ref, signal.SIGSTOP)
            stopped[proc.pid] = proc
    else:
        raise RuntimeError(f"the session tree kept growing after {MAX_ROUNDS} rounds")
    # Everything is stopped now: the final scan sees each one's settled session.
    final_table = process_table()
    final = set(session_processes(final_table, listener)) if listener in final_table else set()
    victims = [p for pid, p in sorted(stopped.items()) if pid in final]
    for pid, proc in stopped.items():
        ref = {"pid": pid, "start": proc.start}
        signal_ref(ref, signal.SIGKILL if pid in final else signal.SIGCONT)
    refs = [{"pid": p.pid, "start": p.start} for p in victims]
    deadline = time.time() + timeout
    while time.time() < deadline and not all(gone(r) for r in refs):
        time.sleep(0.05)
    survivors = [str(r["pid"]) for r in refs if not gone(r)]
    if survivors:
        raise RuntimeError(f"still running after SIGKILL: {' '.join(survivors)}")
    return victims

