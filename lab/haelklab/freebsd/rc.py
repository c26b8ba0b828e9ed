"""/etc/rc and /etc/rc.shutdown of a jail: what a jail's `exec.start = "/bin/sh /etc/rc"`
and `exec.stop = "/bin/sh /etc/rc.shutdown"` do on FreeBSD, run inside the jail.

rc: the rc.d scripts are ordered by rcorder(8) from their `# PROVIDE:`, `# REQUIRE:`,
`# BEFORE:` and `# KEYWORD:` lines - the base system's (a few placeholders, sysctl and
the network scripts, BASE_SCRIPTS) and the ports' in /usr/local/etc/rc.d - skipping
those with the `nojail` keyword (and `nojailvnet` in a jail without VNET), then run
in that order: `sysctl` (early: netif requires it) applies the jail's /etc/sysctl.conf
and /etc/sysctl.conf.local with `sysctl -i -f` (so CARP aliases start with the jail's
net.inet.carp.preempt), `sysctl_lastload` (after LOGIN) applies them again with
`sysctl -f`, as FreeBSD 14's rc.d scripts do; `netif` configures the interfaces from
the jail's /etc/rc.conf as network.subr does (`ifconfig_IF_name` renames, `ifconfig_IF`
and each `ifconfig_IF_aliasN` given to ifconfig with the value expanded unquoted by sh,
then `ifconfig IF up`), `routing` adds `defaultrouter` with route(8), `local` (after DAEMON) sources the jail's
/etc/rc.local, and each port's
script whose NAME_enable is YES starts its service (the lab's rc-script stand-in in
service.py). A failing step prints its error and rc goes on; rc exits 0 as /etc/rc
does. rc.shutdown: the scripts with the `shutdown` keyword, in reverse rcorder
order, each stopping its service if it runs (`local` sources /etc/rc.shutdown.local).

The sysctl and network commands run the lab's `sysctl`, `ifconfig` and `route` stand-ins
by name (PATH), so this works on whatever those stand-ins model.
"""
import os
import re
import subprocess
import sys

from haelklab.freebsd.common import Fail, current_jail, find_jail, parse_rc, rc_yes, run_main

RC_D = "/usr/local/etc/rc.d"
# (name, PROVIDE, REQUIRE, BEFORE, KEYWORD) of the base /etc/rc.d scripts the ports'
# scripts name: the placeholders, sysctl and the network scripts, with their real keywords;
# their REQUIRE lists are cut down to the scripts kept here.
BASE_SCRIPTS = [
    ("FILESYSTEMS", ["FILESYSTEMS"], [], [], []),
    ("sysctl", ["sysctl"], [], [], []),
    ("netif", ["netif"], ["FILESYSTEMS", "sysctl"], [], ["nojailvnet"]),
    ("routing", ["routing"], ["netif"], [], ["nojailvnet"]),
    ("NETWORKING", ["NETWORKING", "NETWORK"], ["netif", "routing"], [], []),
    ("SERVERS", ["SERVERS"], ["NETWORKING"], [], []),
    ("DAEMON", ["DAEMON"], ["NETWORKING", "SERVERS"], [], []),
    ("local", ["local"], ["DAEMON"], ["LOGIN"], ["shutdown"]),
    ("LOGIN", ["LOGIN"], ["DAEMON"], [], []),
    ("sysctl_lastload", ["sysctl_lastload"], ["LOGIN"], ["jail"], []),
]
SYSCTL_FILES = ("etc/sysctl.conf", "etc/sysctl.conf.local")
LOCAL_FILES = {"start": "etc/rc.local", "stop": "etc/rc.shutdown.local"}
HEADER = re.compile(r"^#\s*(PROVIDE|REQUIRE|BEFORE|KEYWORD):(.*)$")


class Script:
    def __init__(self, name, provide, require, before, keywords, path=None):
        self.name, self.provide, self.require = name, provide, require
        self.before, self.keywords, self.path = before, keywords, path


def read_header(path):
    """rcorder's reading of an rc script: the PROVIDE/REQUIRE/BEFORE/KEYWORD lines."""
    fields = {"PROVIDE": [], "REQUIRE": [], "BEFORE": [], "KEYWORD": []}
    with open(path, errors="replace") as f:
        for line in f:
            m = HEADER.match(line.strip())
            if m:
                fields[m.group(1)].extend(m.group(2).split())
    name = os.path.basename(path)
    return Script(name, fields["PROVIDE"] or [name], fields["REQUIRE"], fields["BEFORE"],
                  fields["KEYWORD"], path)


def local_scripts(rc_d):
    """The executable rc scripts of a directory, in name order (as the shell's glob)."""
    try:
        names = sorted(os.listdir(rc_d))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = os.path.join(rc_d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            found.append(read_header(path))
    return found


def rcorder(scripts, keep=(), skip=(), warn=None):
    """rcorder(8): SCRIPTS ordered so that every script comes after the providers of
    what it REQUIREs and before the providers of what it names in BEFORE. Ties keep
    the input order. `keep`: only scripts with one of these keywords (-k); `skip`:
    none with one of these (-s). A missing provider or a cycle is warned about."""
    warn = warn or (lambda message: print(f"rcorder: {message}", file=sys.stderr))
    providers = {}
    for s in scripts:
        for p in s.provide:
            providers.setdefault(p, []).append(s)
    needs = {id(s): [] for s in scripts}
    for s in scripts:
        for r in s.require:
            if r not in providers:
                warn(f"requirement `{r}' in file `{s.path or s.name}' has no providers.")
            needs[id(s)].extend(providers.get(r, []))
        for b in s.before:
            for target in providers.get(b, []):
                needs[id(target)].append(s)
    order, done, visiting = [], set(), set()

    def visit(s):
        if id(s) in done:
            return
        if id(s) in visiting:
            warn(f"Circular dependency on provision `{s.provide[0]}' in file `{s.path or s.name}'.")
            return
        visiting.add(id(s))
        for dep in needs[id(s)]:
            visit(dep)
        visiting.discard(id(s))
        done.add(id(s))
        order.append(s)

    for s in scripts:
        visit(s)
    return [s for s in order
            if (not keep or set(s.keywords) & set(keep)) and not set(s.keywords) & set(skip)]


def all_scripts(rc_d=RC_D):
    return [Script(*entry) for entry in BASE_SCRIPTS] + local_scripts(rc_d)


def jail_is_vnet():
    name, rec = find_jail(current_jail() or "")
    return bool(rec and rec.get("vnet"))


def skip_keywords(vnet):
    return ["nojail", "nostart"] + ([] if vnet else ["nojailvnet"])


# --------------------------------------------------------------- network ---

def sh_run(script, *args):
    """Run SCRIPT with sh, positional ARGS; the lab's stand-ins come first in PATH."""
    result = subprocess.run(["/bin/sh", "-c", script, "sh", *args], text=True,
                            capture_output=True)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result


def interfaces():
    result = subprocess.run(["ifconfig", "-l"], capture_output=True, text=True)
    return result.stdout.split()


def alias_values(rc, ifname):
    """ifconfig_IF_alias0, _alias1, ... up to the first missing one (network.subr)."""
    values = []
    n = 0
    while f"ifconfig_{ifname}_alias{n}" in rc:
        values.append(rc[f"ifconfig_{ifname}_alias{n}"])
        n += 1
    return values


def netif_start(rc):
    """network.subr's `netif start`: renames, then each interface's address and aliases."""
    for ifname in interfaces():
        new = rc.get(f"ifconfig_{ifname}_name")
        if new:
            sh_run('ifconfig "$1" name "$2" >/dev/null', ifname, new)
    for ifname in interfaces():
        if ifname == "lo0":
            continue
        value = rc.get(f"ifconfig_{ifname}", "")
        aliases = alias_values(rc, ifname)
        if not value and not aliases:
            continue
        if value:
            # Unquoted, as network.subr expands it: sh splits and globs the value.
            sh_run('ifconfig "$1" $2', ifname, value)
        for alias in aliases:
            words = alias.split(None, 1)
            if not words:
                continue
            # ifalias: `ifconfig IF AF ARGS alias` for each alias of the family.
            if words[0] in ("inet", "inet6"):
                sh_run('ifconfig "$1" $2 $3 alias', ifname, words[0],
                       words[1] if len(words) > 1 else "")
        sh_run('ifconfig "$1" up', ifname)


def sysctl_start(last=False):
    """rc.d/sysctl (and, LAST, rc.d/sysctl_lastload): `sysctl -i -f` (`-f` in the last
    pass) of the jail's /etc/sysctl.conf and /etc/sysctl.conf.local, those readable, its
    output dropped and its errors shown - by the lab's sysctl stand-in."""
    root = os.environ.get("HAELK_LAB_JAIL_ROOT") or "/"
    for rel in SYSCTL_FILES:
        path = os.path.join(root, rel)
        if os.access(path, os.R_OK):
            sh_run(f'sysctl {"-f" if last else "-i -f"} "$1" >/dev/null', path)


def local_run(command):
    """rc.d/local: `. /etc/rc.local` at start (`. /etc/rc.shutdown.local` at stop), when
    the jail has the file, in a sh whose output rc shows."""
    root = os.environ.get("HAELK_LAB_JAIL_ROOT") or "/"
    path = os.path.join(root, LOCAL_FILES[command])
    if os.path.isfile(path):
        sh_run('. "$1"', path)


def routing_start(rc):
    gateway = rc.get("defaultrouter", "NO")
    if gateway and gateway.upper() != "NO":
        sh_run('route add default "$1"', gateway)


# ------------------------------------------------------------ services ---

def port_script(script):
    """The lab's rc-script stand-in for SCRIPT, or None (not a port the lab knows)."""
    from haelklab.freebsd import service
    if script.path is None or script.name not in service.SCRIPTS:
        return None
    return service.RcScript(script.name)


def start_services(order, rc):
    for script in order:
        if script.name in ("sysctl", "sysctl_lastload") and script.path is None:
            sysctl_start(last=script.name == "sysctl_lastload")
            continue
        if script.name == "netif":
            netif_start(rc)
            continue
        if script.name == "routing":
            routing_start(rc)
            continue
        if script.name == "local" and script.path is None:
            local_run("start")
            continue
        rc_script = port_script(script)
        if rc_script is None or not rc_yes(rc.get(f"{script.name}_enable")):
            continue
        try:
            rc_script.run("quietstart")
        except Fail as e:
            if e.message:
                print(e.message, file=sys.stderr)
        sys.stdout.flush()


def stop_services(order):
    for script in reversed(order):
        if script.name == "local" and script.path is None:
            local_run("stop")
            continue
        rc_script = port_script(script)
        if rc_script is None or rc_script.pid() is None:
            continue
        try:
            rc_script.run("faststop")
        except Fail as e:
            if e.message:
                print(e.message, file=sys.stderr)
        sys.stdout.flush()


def check_jail(script):
    root = os.environ.get("HAELK_LAB_JAIL_ROOT")
    if not current_jail() or not root:
        raise Fail(f"haelk lab: {script} runs only inside a jail (the jail's exec.start/exec.stop)")
    if not os.path.isfile(os.path.join(root, script.lstrip("/"))):
        raise Fail(f"/bin/sh: cannot open {script}: No such file or directory", 2)


def rc_main(argv):
    return run_main(_rc, argv)


def _rc(argv):
    check_jail("/etc/rc")
    rc = parse_rc("/etc/rc.conf")
    order = rcorder(all_scripts(), skip=skip_keywords(jail_is_vnet()))
    start_services(order, rc)
    return 0


def shutdown_main(argv):
    return run_main(_shutdown, argv)


def _shutdown(argv):
    check_jail("/etc/rc.shutdown")
    order = rcorder(all_scripts(), keep=["shutdown"], skip=skip_keywords(jail_is_vnet()))
    stop_services(order)
    return 0


# ------------------------------------------------- jail.conf's exec.* ---

RC_COMMAND = re.compile(r"^\s*(?:/bin/)?sh\s+/etc/(rc|rc\.shutdown)(?=\s|$)")


def jail_command(command, bindir):
    """An exec.start/exec.stop command line as the lab runs it in the jail: `sh /etc/rc`
    and `sh /etc/rc.shutdown` become the lab's stand-ins (in BINDIR); the rest as is."""
    return RC_COMMAND.sub(lambda m: os.path.join(bindir, m.group(1)), command)
