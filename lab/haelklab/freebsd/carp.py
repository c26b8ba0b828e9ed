"""CARP in the lab: one real CARP speaker (Debian's ucarp) per vhid, in a jail's network namespace.

The ifconfig stand-in calls these functions inside the jail's network namespace for an
`inet VIP/32 vhid N advskew S pass P alias` line (preemption from the namespace's
net.inet.carp.preempt), `ifconfig IF vhid N state backup` and jail removal; the sysctl
stand-in for `net.inet.carp.preempt` and `net.inet.carp.demotion`. Each vhid gets one ucarp
daemon, started with exactly the configured vhid, advbase, advskew, password and preemption,
its source address the interface's primary inet address. ucarp speaks the CARP protocol
(IP protocol 112 to 224.0.0.18, HMAC-SHA1 of the password, vhid and VIP), so members of one
vhid elect one master over the lab's bridge, and a wrong password or vhid means they never
hear each other.

Files under STATE_DIR/carp/ (the caller gives a directory private to the jail):
  IF-vhidN.json   the parameters and the daemon (PID + start time; a password digest only)
  IF-vhidN.pass   the password (mode 600; ucarp reads it with --passfile, so it is not in ps)
  IF-vhidN.state  MASTER or BACKUP, written by carp-vip-up / carp-vip-down (ucarp runs them)
  IF-vhidN.log    ucarp's messages
  demotion        the namespace's net.inet.carp.demotion counter
  preempt         the namespace's net.inet.carp.preempt (the integer written; nonzero is on)

Differences from FreeBSD's carp(4), by construction:
- FreeBSD configures the VIP on every member and only the master answers for it; here only
  the master has VIP/32 on the interface (carp-vip-up adds it, carp-vip-down removes it).
  A haproxy on a backup still binds the VIP because every lab jail namespace has
  net.ipv4.ip_nonlocal_bind=1 (or the socket sets IP_FREEBIND).
- `state backup` is ucarp's SIGUSR2: it goes BACKUP, stays silent for 3 s, then listens;
  with preemption and the lower advskew it takes the VIP back, as on FreeBSD.
- `state master` cannot be forced: ucarp has no signal for it (refused with a message).
- The demotion counter has no live equivalent in ucarp: changing it restarts the speakers
  whose effective advskew (advskew + demotion, within 0..240 as FreeBSD's DEMOTE_ADVSKEW)
  changes. A master being demoted first sends the advertisement with its new skew that
  carp(4) sends at once, and keeps the VIP until a preferred master advertises (carpad.py),
  so a preempting peer takes over on it, as on FreeBSD.
  The restarted speaker then starts as BACKUP: without preemption on the peer the VIP still
  moves, after 3 * advbase of silence, where on FreeBSD the demoted master would keep it.
- A dead daemon (killed) shows as INIT: it takes no part in CARP any more.
"""
import fcntl
import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import time

from haelklab import procs
from haelklab.freebsd import carpad
from haelklab.freebsd.common import Fail

HERE = os.path.dirname(os.path.abspath(__file__))
UP_SCRIPT = os.path.join(HERE, "carp-vip-up")
DOWN_SCRIPT = os.path.join(HERE, "carp-vip-down")
KEY_LEN = 20          # CARP_KEY_LEN: FreeBSD keeps 19 characters and a NUL, as does ucarp
MAX_SKEW = 240        # CARP_MAXSKEW: the most a demotion can push advskew
START_TIMEOUT = 5.0   # seconds for a new speaker to report its first state (BACKUP)
STATES = ("INIT", "BACKUP", "MASTER")


def ucarp_path():
    """The ucarp binary (Debian's package installs /usr/sbin/ucarp), or None."""
    return shutil.which("ucarp", path="/usr/sbin:/usr/bin:/sbin:/bin")


def carp_dir(state_dir):
    d = os.path.join(state_dir, "carp")
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def _base(state_dir, ifname, vhid):
    return os.path.join(carp_dir(state_dir), f"{ifname}-vhid{vhid}")


def _read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write(path, text, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _records(state_dir):
    """Every configured speaker of this namespace, sorted by interface and vhid."""
    d = carp_dir(state_dir)
    found = [_read_json(os.path.join(d, n)) for n in os.listdir(d) if n.endswith(".json")]
    return sorted((r for r in found if r), key=lambda r: (r["ifname"], r["vhid"]))


def _counter(state_dir, name):
    try:
        with open(os.path.join(carp_dir(state_dir), name)) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def demotion(state_dir):
    """The namespace's net.inet.carp.demotion counter (0 unless demote() changed it)."""
    return _counter(state_dir, "demotion")


def preempt(state_dir):
    """The namespace's net.inet.carp.preempt (0 unless set_preempt() changed it): the
    integer last written, as FreeBSD's SYSCTL_INT keeps it; nonzero means preemption."""
    return _counter(state_dir, "preempt")


def effective_skew(advskew, demoted):
    """The advskew a speaker advertises: FreeBSD's DEMOTE_ADVSKEW (ip_carp.c)."""
    skew = advskew + demoted
    if skew > MAX_SKEW:
        return max(advskew, MAX_SKEW)  # a demotion never lowers a configured skew over 240
    return max(skew, 0)


def validate(vhid, advskew, advbase, vip):
    """Refuse what FreeBSD's ifconfig or carp(4) refuses, with their messages."""
    if not isinstance(vhid, int) or not 1 <= vhid <= 255:
        raise Fail("ifconfig: vhid must be greater than 0 and less than 255")
    if not isinstance(advskew, int) or not 0 <= advskew <= 254:
        raise Fail("ifconfig: SIOCSVH: Invalid argument")
    if not isinstance(advbase, int) or not 1 <= advbase <= 255:
        raise Fail("ifconfig: SIOCSVH: Invalid argument")
    try:
        ipaddress.IPv4Address(vip)
    except ValueError:
        raise Fail(f"ifconfig: {vip}: bad value") from None


def _number(word):
    """atoi(3), as ifconfig reads vhid, advskew and advbase: leading digits, else 0."""
    digits = ""
    for ch in word:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits or 0)


def parse_alias(words):
    """The CARP parameters of `ifconfig IF inet [ADDR] vhid N [advskew S] [advbase B]
    [pass P] [alias] [ADDR]` (an rc.conf ifconfig_IF_aliasN value, split), as configure()'s
    keyword arguments (vip, vhid, advskew, advbase, password), or None without vhid."""
    if words[:1] != ["inet"]:
        return None
    params, vip, i = {}, None, 1
    while i < len(words):
        word = words[i]
        if word in ("vhid", "advskew", "advbase", "pass"):
            if i + 1 >= len(words):
                raise Fail(f"ifconfig: '{word}' requires argument")
            if word != "vhid" and "vhid" not in params:
                raise Fail(f"ifconfig: {'passwd' if word == 'pass' else word} requires vhid")
            value = words[i + 1]
            params["password" if word == "pass" else word] = (
                value if word == "pass" else _number(value))
            i += 2
            continue
        if word not in ("alias", "-alias"):
            if vip is not None:
                raise Fail(f"ifconfig: {word}: bad value")
            vip = word.partition("/")[0]
        i += 1
    if "vhid" not in params:
        return None
    if vip is None:
        raise Fail("ifconfig: haelk lab: a CARP alias needs its address (inet ... alias VIP/32)")
    return {"vip": vip, "advskew": 0, "advbase": 1, "password": "", **params}


def _inet_addresses(ifname):
    """The interface's IPv4 addresses in kernel order, or None if it does not exist."""
    result = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", ifname],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return [line.split()[3] for line in result.stdout.splitlines() if " inet " in line]


def primary_address(ifname, vips=()):
    """The interface's first inet address that is not a CARP VIP (ucarp's --srcip)."""
    addresses = _inet_addresses(ifname)
    if addresses is None:
        raise Fail(f"ifconfig: interface {ifname} does not exist")
    for cidr in addresses:
        addr = cidr.partition("/")[0]
        if addr not in vips:
            return addr
    raise Fail("ifconfig: ioctl (SIOCAIFADDR): Can't assign requested address")


def _lock(state_dir):
    f = open(os.path.join(carp_dir(state_dir), ".lock"), "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def configure(state_dir, ifname, vhid, advskew, password, vip, advbase=1, preempt=False):
    """Run one CARP speaker for VHID on IFNAME with exactly these parameters.

    Returns "unchanged" (same parameters, speaker alive), "started" or "restarted"."""
    validate(vhid, advskew, advbase, vip)
    key = password[:KEY_LEN - 1]
    if not key:
        raise Fail("ifconfig: haelk lab: a CARP vhid needs a pass (ucarp has no unsigned mode)")
    with _lock(state_dir):
        vips = {r["vip"] for r in _records(state_dir)} | {vip}
        wanted = {"ifname": ifname, "vhid": vhid, "advbase": advbase, "advskew": advskew,
                  "preempt": bool(preempt), "vip": vip,
                  "srcip": primary_address(ifname, vips),
                  "key": hashlib.sha256(key.encode()).hexdigest()}
        base = _base(state_dir, ifname, vhid)
        old = _read_json(base + ".json")
        skew = effective_skew(advskew, demotion(state_dir))
        if old and procs.alive(old.get("daemon")):
            if {k: old.get(k) for k in wanted} == wanted and old.get("skew") == skew:
                return "unchanged"
            _stop(old, base)
            outcome = "restarted"
        else:
            outcome = "started"
        _write(base + ".pass", key + "\n", mode=0o600)
        _start(dict(wanted, skew=skew), base)
    return outcome


def _start(record, base):
    """Start ucarp detached (own session, not our child) and wait for its first state."""
    ucarp = ucarp_path()
    if ucarp is None:
        raise Fail("haelk lab: ucarp is not installed (apt-get install ucarp): no CARP")
    for stale in (base + ".state",):
        if os.path.exists(stale):
            os.unlink(stale)
    argv = [ucarp, "--interface", record["ifname"], "--srcip", record["srcip"],
            "--vhid", str(record["vhid"]), "--passfile", base + ".pass",
            "--addr", record["vip"], "--advbase", str(record["advbase"]),
            "--advskew", str(record["skew"]), "--upscript", UP_SCRIPT,
            "--downscript", DOWN_SCRIPT, "--xparam", base + ".state", "--facility", "none"]
    if record["preempt"]:
        argv.append("--preempt")
    # `CMD &` in sh: the child execs ucarp and sh exits, so ucarp is nobody's child here
    # (no zombie that would look alive) and lives in the session sh started.
    shell = f"{shlex.join(argv)} </dev/null >>{shlex.quote(base + '.log')} 2>&1 & echo $!"
    out = subprocess.run(["/bin/sh", "-c", shell], capture_output=True, text=True,
                         start_new_session=True, timeout=10)
    pid = int(out.stdout.strip())
    record["daemon"] = procs.proc_ref(pid)
    _write(base + ".json", json.dumps(record, indent=1) + "\n")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:  # waits for the downscript ucarp runs at start
        if not procs.alive(record["daemon"]):
            break
        if _state_file(base) is not None:
            return
        time.sleep(0.05)
    raise Fail(f"ifconfig: CARP vhid {record['vhid']} on {record['ifname']} did not start:\n"
               + _log_tail(base))


def _log_tail(base, lines=5):
    try:
        with open(base + ".log") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _state_file(base):
    try:
        with open(base + ".state") as f:
            state = f.read().strip()
    except OSError:
        return None
    return state if state in STATES else None


def _stop(record, base):
    """Stop one speaker by PID and take its VIP off the interface."""
    ref = record.get("daemon")
    if ref and procs.alive(ref):
        procs.stop_pids([ref["pid"]], timeout=5.0)
    # ucarp leaves the VIP where it is when it is killed; the address goes with CARP.
    subprocess.run(["ip", "-4", "addr", "del", f"{record['vip']}/32", "dev", record["ifname"]],
                   capture_output=True)
    for suffix in (".state", ".state.tmp"):
        if os.path.exists(base + suffix):
            os.unlink(base + suffix)


def _entry(record, base):
    alive = procs.alive(record.get("daemon"))
    return {"ifname": record["ifname"], "vhid": record["vhid"], "advbase": record["advbase"],
            "advskew": record["advskew"], "vip": record["vip"], "preempt": record["preempt"],
            "state": (_state_file(base) or "INIT") if alive else "INIT",
            "pid": record["daemon"]["pid"] if alive else None}


def status(state_dir, ifname):
    """The CARP vhids of IFNAME: vhid, state (MASTER/BACKUP/INIT), advbase, advskew, vip."""
    return [_entry(r, _base(state_dir, r["ifname"], r["vhid"]))
            for r in _records(state_dir) if r["ifname"] == ifname]


def format_status(entries):
    """The lines FreeBSD 14's ifconfig (sbin/ifconfig/carp.c) prints for these vhids."""
    return "".join(f"\tcarp: {e['state']} vhid {e['vhid']} advbase {e['advbase']} "
                   f"advskew {e['advskew']}\n\t      peer 224.0.0.18 peer6 ff02::12\n"
                   for e in entries)


def show(state_dir, ifname):
    """`ifconfig IF`'s carp lines for IFNAME."""
    return format_status(status(state_dir, ifname))


def set_state(state_dir, ifname, vhid, state):
    """`ifconfig IF vhid N state backup`: demote a master (ucarp's SIGUSR2); the new state."""
    base = _base(state_dir, ifname, vhid)
    record = _read_json(base + ".json")
    if record is None or not procs.alive(record.get("daemon")):
        raise Fail(f"ifconfig: SIOCSVH: No such file or directory (no CARP vhid {vhid} "
                   f"running on {ifname})")
    if state.lower() == "master":
        if _state_file(base) == "MASTER":
            return "MASTER"
        raise Fail("ifconfig: haelk lab: ucarp cannot be forced to MASTER "
                   "(use preemption and advskew)")
    if state.lower() != "backup":
        raise Fail("ifconfig: unknown state")
    if _state_file(base) != "MASTER":
        return _state_file(base) or "INIT"
    os.kill(record["daemon"]["pid"], signal.SIGUSR2)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:  # waits for ucarp's downscript
        if _state_file(base) == "BACKUP":
            return "BACKUP"
        time.sleep(0.05)
    raise Fail(f"ifconfig: CARP vhid {vhid} on {ifname} did not go BACKUP")


def demote(state_dir, delta):
    """`sysctl net.inet.carp.demotion=DELTA` (FreeBSD adds DELTA to the counter): restart the
    speakers whose effective advskew changes. Returns the new counter."""
    with _lock(state_dir):
        new = demotion(state_dir) + int(delta)
        _write(os.path.join(carp_dir(state_dir), "demotion"), f"{new}\n")
        for record in _records(state_dir):
            skew = effective_skew(record["advskew"], new)
            base = _base(state_dir, record["ifname"], record["vhid"])
            if skew != record["skew"] and procs.alive(record.get("daemon")):
                if skew > record["skew"] and _state_file(base) == "MASTER":
                    _advertise_demoted(record, base, skew)
                _stop(record, base)
                _start(dict(record, skew=skew), base)
    return new


def _advertise_demoted(record, base, skew):
    """What carp(4) does the moment a MASTER is demoted: it advertises the new skew at once
    and stays MASTER, holding the VIP, until a preferred master advertises (a preempting
    peer takes over on that advertisement). The speaker is stopped first so that it cannot
    answer the peer's takeover by reasserting itself; _stop() then removes the VIP. Without
    such a peer the wait ends after a master-down interval."""
    procs.stop_pids([record["daemon"]["pid"]], timeout=5.0)
    with open(base + ".pass") as f:
        password = f.read().rstrip("\n")
    args = (record["srcip"], record["vhid"], record["advbase"], skew, password, record["vip"])
    carpad.send(*args)
    carpad.wait_for_preferred(*args, timeout=3 * record["advbase"] + 1)


def update(state_dir, ifname, vhid, **changes):
    """`ifconfig IF vhid N advskew S` (or advbase, pass): configure() again with CHANGES
    over what VHID has now (its password from its file unless `password` is given)."""
    base = _base(state_dir, ifname, vhid)
    record = _read_json(base + ".json")
    if record is None:
        raise Fail(f"ifconfig: SIOCSVH: No such file or directory (no CARP vhid {vhid} "
                   f"on {ifname})")
    with open(base + ".pass") as f:
        password = f.read().rstrip("\n")
    params = {"advskew": record["advskew"], "password": password, "vip": record["vip"],
              "advbase": record["advbase"], "preempt": record["preempt"], **changes}
    return configure(state_dir, ifname, vhid, **params)


def set_preempt(state_dir, value):
    """`sysctl net.inet.carp.preempt=VALUE` in this namespace: VALUE is kept (preempt()
    reads it back) and every speaker follows it, on for any nonzero VALUE."""
    with _lock(state_dir):
        _write(os.path.join(carp_dir(state_dir), "preempt"), f"{int(value)}\n")
    return {f"{r['ifname']} vhid {r['vhid']}": update(state_dir, r["ifname"], r["vhid"],
                                                      preempt=bool(int(value)))
            for r in _records(state_dir)}


def stop(state_dir, ifname, vhid):
    """Remove one vhid (its alias deleted): stop its speaker, forget it."""
    with _lock(state_dir):
        base = _base(state_dir, ifname, vhid)
        record = _read_json(base + ".json")
        if record:
            _stop(record, base)
            for suffix in (".json", ".pass"):
                if os.path.exists(base + suffix):
                    os.unlink(base + suffix)


def stop_all(state_dir):
    """Stop every speaker of this namespace by PID (the jail is being removed)."""
    if not os.path.isdir(os.path.join(state_dir, "carp")):
        return
    for record in _records(state_dir):
        stop(state_dir, record["ifname"], record["vhid"])
