"""Processes the lab started: identified by PID *and* start time, found by the mount
namespace they live in, and stopped with SIGTERM then SIGKILL.

Used by `labctl down` (every lab namespace), `jail -r` (one jail's namespaces) and
`labctl power-off` (every process of one host, found by the host directory it sees).
A namespace is recorded by its nsfs identity (`mnt:[INODE]`), and the kernel reuses
those inodes once a namespace is gone, so membership also needs the lab's mark: every
lab namespace (a host's, or a jail's made from it) has the host's state directory
bound at paths.SELF. A foreign namespace that got a recorded inode back never has it.
"""
import os
import signal
import time

from haelklab import paths


def start_time(pid):
    """The kernel start time of PID (field 22 of /proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def proc_ref(pid):
    return {"pid": pid, "start": start_time(pid)}


def alive(ref):
    """True if the recorded process still runs (same PID *and* same start time)."""
    return bool(ref) and ref["start"] is not None and start_time(ref["pid"]) == ref["start"]


def mount_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def has_lab_mark(pid):
    """True if PID's mount namespace has a mount at paths.SELF (see the module doc)."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            return any(line.split()[4] == paths.SELF for line in f)
    except (OSError, IndexError):
        return False


def pids_of_host(host_dir):
    """PIDs (other than ours) of one lab host: its sshd and sessions, its jails'
    processes and their network namespaces' holders - every process that sees
    HOST_DIR bound at paths.SELF (see the module doc)."""
    try:
        mine = os.stat(host_dir)
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                # /proc/PID/root resolves in the process's own mount namespace.
                seen = os.stat(f"/proc/{entry}/root{paths.SELF}")
            except OSError:
                continue
            if (seen.st_dev, seen.st_ino) == (mine.st_dev, mine.st_ino) and has_lab_mark(entry):
                found.append(int(entry))
    return found


def kill_all(find, rounds=5):
    """SIGKILL every PID find() returns, again while new ones appear (a process may
    fork between the listing and the kill); True when find() returns none."""
    for _ in range(rounds):
        pids = find()
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        while time.time() < deadline and any(start_time(p) is not None for p in pids):
            time.sleep(0.02)
    return not find()


def pids_in_namespaces(namespaces):
    """PIDs (other than ours) living in one of the lab's recorded NAMESPACES."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            if mount_ns(entry) in namespaces and has_lab_mark(entry):
                found.append(int(entry))
    return found


def stop_pids(pids, timeout=10.0, kill_timeout=5.0):
    """SIGTERM, then SIGKILL what is still there after TIMEOUT seconds; True when all
    are gone (a process stuck in the kernel may outlive KILL_TIMEOUT)."""
    refs = [r for r in map(proc_ref, pids) if r["start"] is not None]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, kill_timeout)):
        for r in refs:
            if alive(r):
                try:
                    os.kill(r["pid"], sig)
                except ProcessLookupError:
                    pass
        deadline = time.time() + wait
        while time.time() < deadline and any(alive(r) for r in refs):
            time.sleep(0.05)
    return not any(alive(r) for r in refs)


def stop_namespaces(namespaces, rounds=3):
    """Stop every process of NAMESPACES, again if some forked meanwhile; True when
    none is left."""
    for _ in range(rounds):
        pids = pids_in_namespaces(namespaces)
        if not pids:
            return True
        stop_pids(pids)
    return not pids_in_namespaces(namespaces)
