"""Shared pieces of the stand-ins: per-host state files, rc.conf files, errors.

Per-host simulated kernel state (jails, interfaces, modules) lives in JSON files
under the host's run directory, which each host's namespace binds at paths.SELF.
"""
import contextlib
import fcntl
import json
import os
import re
import sys

from haelklab import paths

EX_USAGE = 64


class Fail(Exception):
    """Exit with CODE after printing MESSAGE on stderr (message may be empty)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.message, self.code = message, code


def run_main(func, argv):
    try:
        return func(argv) or 0
    except Fail as e:
        if e.message:
            print(e.message, file=sys.stderr)
        return e.code


def in_host():
    """True inside a lab host's namespace (its state directory is bound at SELF)."""
    return os.path.exists(os.path.join(paths.SELF, "hostname"))


def run_dir():
    if not in_host():
        raise Fail("haelk lab: this stand-in only works inside a lab host (ssh into one)")
    d = os.path.join(paths.SELF, "run")
    os.makedirs(d, exist_ok=True)
    return d


def current_jail():
    """Name of the jail this process runs in (set by jexec), or None on the host."""
    return os.environ.get("HAELK_LAB_JAIL") or None


@contextlib.contextmanager
def locked_state(name, default):
    """Read-modify-write of one JSON state file under an exclusive lock."""
    d = run_dir()
    with open(os.path.join(d, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(d, name + ".json")
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            state = default
        yield state
        with open(path + ".tmp", "w") as f:
            json.dump(state, f, indent=1)
        os.replace(path + ".tmp", path)


def read_state(name, default):
    path = os.path.join(run_dir(), name + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


# ---------------------------------------------------------------- rc.conf ---

RC_LINE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)=("([^"\\]*(\\.[^"\\]*)*)"|\'([^\']*)\'|([^\s#"\']*))\s*(#.*)?$')


def parse_rc(path):
    """The variables of an rc.conf-style file (the last assignment wins), strictly:
    a line that is not blank, a comment or VAR=VALUE makes it an error, as sh would."""
    values = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return values
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = RC_LINE.match(line)
        if not m:
            raise Fail(f"{path}: line {number}: not a VAR=VALUE assignment: {line}")
        value = m.group(3) if m.group(3) is not None else (
            m.group(5) if m.group(5) is not None else m.group(6))
        values[m.group(1)] = re.sub(r'\\(.)', r'\1', value) if m.group(3) is not None else value
    return values


def rc_yes(value):
    return (value or "").lower() in ("yes", "true", "on", "1")


def jail_root(name):
    """The root path of a running jail, or None."""
    jail = read_state("jails", {"jails": {}})["jails"].get(name)
    return jail["path"] if jail else None


def find_jail(ref):
    """A running jail by name or jid: (name, record) or (None, None)."""
    jails = read_state("jails", {"jails": {}})["jails"]
    if ref in jails:
        return ref, jails[ref]
    for name, rec in jails.items():
        if str(rec["jid"]) == ref:
            return name, rec
    return None, None
