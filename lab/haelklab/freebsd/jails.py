"""jail, jls and jexec: jails simulated as mount namespaces over a recorded root, and
VNET jails as network namespaces.

A running jail is a record (jid, path, hostname, parameters) in the host's state;
jexec runs a command in a new mount namespace where the jail root's directories
are bound over the absolute paths services use (see jailinit.py). A `vnet` jail has a
network namespace of its own, held by a recorded holder process (`lo` up,
`net.ipv4.ip_nonlocal_bind=1`); `vnet.interface` moves into it, `jail -r` returns it
to the host and stops the holder. Everything run in the jail (jexec, service -j,
pkg -j, rc) enters that namespace: `jail_netns(rec)` and `enter_jail(...)` are the
one place that does it. There is no process isolation. `jail -c` runs, in
jail(8)'s order, exec.prestart, creates the jail, moves its vnet.interface, runs
exec.start in the jail (rc.py's /etc/rc for `sh /etc/rc`) and exec.poststart; `jail -r`
runs exec.prestop, exec.stop in the jail (/etc/rc.shutdown), kills what is left, then
exec.poststop.
"""

import json
import os
import re
import shutil
import subprocess
import sys

from haelklab import paths, procs
from haelklab.freebsd import jailconf
from haelklab.freebsd import rc as rcmod
from haelklab.freebsd.common import (EX_USAGE, Fail, current_jail, find_jail, locked_state,
                                     parse_rc, read_state, run_main, run_dir)

JAIL_USAGE = ("usage: jail [-dhilqv] [-J jid_file] [-u username] [-U username]\n"
              "            -[cmr] param=value ... [command=command ...]\n"
              "       jail [-dqv] [-f file] -[cmr] [jail]\n"
              "       jail [-qv] [-f file] -[rR] ['*' | jail ...]\n"
              "       jail [-dhilqv] [-J jid_file] [-u username] [-U username]\n"
              "            [-n jailname] [-s securelevel]\n"
              "            path hostname ip[,...] command ...")


def conf_files(name):
    """rc.d/jail's order: /etc/jail.NAME.conf, /etc/jail.conf.d/NAME.conf, /etc/jail.conf."""
    for path in (f"/etc/jail.{name}.conf", f"/etc/jail.conf.d/{name}.conf", "/etc/jail.conf"):
        if os.path.isfile(path):
            return path
    return None


# Where FreeBSD keeps the commands the lab stands in for: jail.conf's exec.*
# commands name them by absolute path (`/sbin/ifconfig epair0 create`), which on
# Linux would run Linux's tools.
FREEBSD_PATHS = {
    "/sbin/ifconfig": "ifconfig", "/sbin/kldload": "kldload", "/sbin/kldstat": "kldstat",
    "/usr/sbin/jail": "jail", "/usr/sbin/jls": "jls", "/usr/sbin/jexec": "jexec",
    "/usr/sbin/service": "service", "/usr/sbin/sysrc": "sysrc", "/usr/sbin/pkg": "pkg",
    "/usr/bin/uname": "uname", "/sbin/route": "route", "/bin/freebsd-version": "freebsd-version",
    "/sbin/sysctl": "sysctl", "/usr/sbin/daemon": "daemon",
}
FREEBSD_PATH_RE = re.compile(r"(?<![\w/.-])(" + "|".join(map(re.escape, FREEBSD_PATHS)) + r")(?![\w/.-])")


def standin_paths(command):
    """`command` with FreeBSD's absolute paths of stand-in commands replaced."""
    return FREEBSD_PATH_RE.sub(lambda m: os.path.join(paths.BIN, FREEBSD_PATHS[m.group(1)]), command)


def sh(command, what, name):
    env = dict(os.environ, PATH=paths.SESSION_PATH)
    result = subprocess.run(["/bin/sh", "-c", standin_paths(command)], env=env,
                            capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise Fail(f"jail: {name}: {what} {command} failed")


def create(name, conf_path):
    if current_jail():
        raise Fail("jail: jail_set: Operation not permitted")
    if conf_path is None or not os.path.isfile(conf_path):
        raise Fail(f"jail: open {conf_path or '/etc/jail.conf'}: No such file or directory")
    with open(conf_path) as f:
        text = f.read()
    try:
        conf = jailconf.parse(text, conf_path)
        params = conf.params_for(name)
        jailconf.check(name, params, os.path.isdir)
    except jailconf.ConfError as e:
        raise Fail(f"jail: {e}") from None
    if name in read_state("jails", {"jails": {}})["jails"]:
        raise Fail(f"jail: {name}: jail {name} already exists")
    for cmd in params.get("exec.prestart", []):
        sh(cmd, "exec.prestart", name)
    root = params["path"][0]
    rc = {}
    try:
        rc = parse_rc(os.path.join(root, "etc", "rc.conf"))
    except Fail:
        pass
    holder = start_netns_holder(name) if "vnet" in params else None
    vnet_ifaces = []
    try:
        for ifname in params.get("vnet.interface", []):
            move_into(holder, ifname, name)
            vnet_ifaces.append(ifname)
    except Fail:
        procs.stop_pids([holder["pid"]])
        raise
    with locked_state("jails", {"jails": {}, "next_jid": 1}) as state:
        jid = state.setdefault("next_jid", 1)
        state["next_jid"] = jid + 1
        ip4 = [a.split("|", 1)[-1].split("/")[0] for a in params.get("ip4.addr", [])]
        state["jails"][name] = {
            "jid": jid, "path": root, "conf": conf_path,
            "hostname": (params.get("host.hostname") or [""])[0], "ip4": ip4,
            "vnet": "vnet" in params, "params": params, "namespaces": [],
            "netns_holder": holder, "vnet_interfaces": vnet_ifaces,
        }
    if holder and not params.get("exec.start"):
        # Without exec.start nothing in the jail configures its network; the lab
        # still applies its rc.conf network (a convenience FreeBSD does not have).
        rc_network(name, state_rec(name), rc)
    # jail(8): exec.start runs in the jail once it exists (and has its vnet.interface);
    # if it fails, the jail is not created: it is removed again.
    for cmd in params.get("exec.start", []):
        try:
            in_jail(name, params, cmd, "exec.start")
        except Fail:
            rec = find_jail(name)[1]
            if rec is not None:
                stop_jail_processes(rec)
                release_netns(name, rec)
            with locked_state("jails", {"jails": {}, "next_jid": 1}) as state:
                state["jails"].pop(name, None)
            raise
    for cmd in params.get("exec.poststart", []):
        sh(cmd, "exec.poststart", name)
    print(f"{name}: created")


def in_jail(name, params, command, what):
    """An exec.start/exec.stop command run in the jail environment, as jexec would run
    it (a clean login environment with exec.clean), its output to exec.consolelog
    when set. `sh /etc/rc` and `sh /etc/rc.shutdown` run the lab's rc stand-ins."""
    argv = [os.path.join(paths.BIN, "jexec")]
    if "exec.clean" in params:
        argv.append("-l")
    argv += [name, "/bin/sh", "-c", rcmod.jail_command(command, paths.BIN)]
    sys.stdout.flush()
    sys.stderr.flush()
    log = (params.get("exec.consolelog") or [None])[0]
    if log:
        with open(log, "a") as out:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    else:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sys.stdout, stderr=sys.stderr)
    if result.returncode != 0:
        raise Fail(f"jail: {name}: {what} {command} failed")


def jail_pids(rec):
    """PIDs of the jail's processes: in one of its recorded namespaces *and* seeing
    the jail root's directories. The kernel reuses a namespace's id once the
    namespace is gone, so a recorded id alone may name another jail's namespace now
    (or a host session's)."""
    try:
        mine = os.stat(os.path.join(rec["path"], "usr", "local", "etc"))
    except OSError:
        return []
    found = []
    for pid in procs.pids_in_namespaces(set(rec.get("namespaces", []))):
        try:
            # /proc/PID/root resolves in the process's own mount namespace.
            seen = os.stat(f"/proc/{pid}/root/usr/local/etc")
        except OSError:
            continue
        if (seen.st_dev, seen.st_ino) == (mine.st_dev, mine.st_ino):
            found.append(pid)
    return found


def state_rec(name):
    return read_state("jails", {"jails": {}})["jails"][name]


# --------------------------------------------------------------- VNET -------

HOLDER_SCRIPT = ("ip link set lo up && echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind "
                 "&& echo ready && exec sleep infinity")


def start_netns_holder(name):
    """A new network namespace for jail NAME, held by a sleeping process: its ref."""
    holder = subprocess.Popen(["unshare", "--net", "/bin/sh", "-c", HOLDER_SCRIPT],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    line = holder.stdout.readline()
    holder.stdout.close()
    if line.strip() != b"ready":
        holder.wait()
        raise Fail(f"jail: {name}: haelk lab: cannot make the jail's network namespace")
    return procs.proc_ref(holder.pid)


def jail_netns(rec):
    """The jail's network namespace (a /proc path), or None: not VNET, or its holder gone."""
    holder = (rec or {}).get("netns_holder")
    if not procs.alive(holder):
        return None
    return f"/proc/{holder['pid']}/ns/net"


def enter_jail(name, rec, argv):
    """ARGV prefixed to run in jail NAME's network namespace, as the jail's processes
    (HAELK_LAB_JAIL set; the mount namespace stays the caller's)."""
    netns = jail_netns(rec)
    prefix = ["nsenter", f"--net={netns}"] if netns else []
    return prefix + ["env", f"HAELK_LAB_JAIL={name}", f"HAELK_LAB_JAIL_ROOT={rec['path']}"] + argv


def move_into(holder, ifname, name):
    """vnet.interface: IFNAME leaves the host for the jail's namespace."""
    if holder is None:
        raise Fail(f"jail: {name}: vnet.interface requires vnet")
    result = subprocess.run(["ip", "link", "set", "dev", ifname, "netns", str(holder["pid"])],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise Fail(f"jail: {name}: vnet.interface {ifname}: interface does not exist"
                   if "Cannot find device" in result.stderr else
                   f"jail: {name}: vnet.interface {ifname}: {result.stderr.strip()}")


def rc_network(name, rec, rc):
    """The network part of the jail's /etc/rc: `ifconfig_IF_name` renames, `ifconfig_IF`
    and `ifconfig_IF_aliasN` (CARP aliases start their speakers), `defaultrouter`.
    (exec.start's rc stand-in, when it runs, does this itself.)"""
    cmds = []
    for ifname in rec.get("vnet_interfaces", []):
        new = rc.get(f"ifconfig_{ifname}_name")
        if new:
            cmds.append(["ifconfig", ifname, "name", new])
    names = [rc.get(f"ifconfig_{i}_name", i) for i in rec.get("vnet_interfaces", [])]
    for ifname in names:
        if rc.get(f"ifconfig_{ifname}"):
            cmds.append(["ifconfig", ifname] + rc[f"ifconfig_{ifname}"].split())
        aliases = sorted((int(k.rsplit("alias", 1)[1]), v) for k, v in rc.items()
                         if re.fullmatch(rf"ifconfig_{re.escape(ifname)}_alias\d+", k))
        for _n, value in aliases:
            cmds.append(["ifconfig", ifname] + value.split())
    if rc.get("defaultrouter"):
        cmds.append(["route", "add", "default", rc["defaultrouter"]])
    env = dict(os.environ, PATH=paths.SESSION_PATH)
    for cmd in cmds:
        result = subprocess.run(enter_jail(name, rec, cmd), env=env, capture_output=True,
                                text=True)
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)


def release_netns(name, rec):
    """jail -r of a VNET jail: its CARP speakers stop, every process still in its
    network namespace is stopped, its vnet interfaces return to the host (under the
    names they came in with; addresses are lost on the way) and the holder stops."""
    netns = jail_netns(rec)
    carp_dir = os.path.join(run_dir(), "carp-" + name)
    if os.path.isdir(carp_dir):
        subprocess.run(enter_jail(name, rec, [paths.PYTHON, "-c", CARP_STOP_ALL, paths.LABDIR,
                                              carp_dir]), capture_output=True)
        shutil.rmtree(carp_dir, ignore_errors=True)
    if netns is None:
        return
    holder = rec["netns_holder"]
    target = os.readlink(netns)
    others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != holder["pid"]
              and _netns_of(p) == target]
    if others:
        procs.stop_pids(others)
    listing = subprocess.run(["nsenter", f"--net={netns}", "ip", "-j", "link", "show"],
                             capture_output=True, text=True).stdout
    originals = list(rec.get("vnet_interfaces", []))
    for link in json.loads(listing or "[]"):
        ifname = link["ifname"]
        if ifname == "lo":
            continue
        subprocess.run(["nsenter", f"--net={netns}", "ip", "link", "set", "dev", ifname,
                        "netns", str(os.getpid())], capture_output=True)
        original = originals.pop(0) if originals else ifname
        if original != ifname:
            subprocess.run(["ip", "link", "set", "dev", ifname, "name", original],
                           capture_output=True)
    procs.stop_pids([holder["pid"]])


def _netns_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


CARP_STOP_ALL = ("import sys; sys.path.insert(0, sys.argv[1]); "
                 "from haelklab.freebsd import carp; carp.stop_all(sys.argv[2])")


def stop_jail_processes(rec, rounds=3):
    """Stops every process of the jail, again if some forked meanwhile."""
    for _ in range(rounds):
        pids = jail_pids(rec)
        if not pids:
            return
        procs.stop_pids(pids)


def remove(name):
    jname, rec = find_jail(name)
    if rec is None:
        raise Fail(f'jail: "{name}" not found')
    params = rec["params"]
    for cmd in params.get("exec.prestop", []):
        sh(cmd, "exec.prestop", jname)
    # jail(8): exec.stop runs in the jail after exec.prestop; if it fails the jail stays.
    for cmd in params.get("exec.stop", []):
        in_jail(jname, params, cmd, "exec.stop")
    # jail -r kills every process of the jail: here, of its namespaces.
    rec = find_jail(jname)[1] or rec
    stop_jail_processes(rec)
    release_netns(jname, rec)
    with locked_state("jails", {"jails": {}, "next_jid": 1}) as state:
        state["jails"].pop(jname, None)
    for cmd in params.get("exec.poststop", []):
        sh(cmd, "exec.poststop", jname)
    print(f"{jname}: removed")


def jail_main(argv):
    return run_main(_jail, argv)


def _jail(argv):
    conf_path, action, names = "/etc/jail.conf", None, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-f":
            if i + 1 >= len(argv):
                raise Fail(f"jail: option requires an argument -- f\n{JAIL_USAGE}", EX_USAGE)
            conf_path = argv[i + 1]
            i += 2
            continue
        if arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            if any(c not in "crmqv" for c in letters):
                bad = next(c for c in letters if c not in "crmqv")
                raise Fail(f"jail: illegal option -- {bad}\n{JAIL_USAGE}", EX_USAGE)
            act = "".join(sorted(c for c in letters if c in "crm"))
            if act:
                if action:
                    raise Fail(JAIL_USAGE, EX_USAGE)
                action = act
        elif "=" in arg:
            raise Fail("jail: command-line parameters are not supported by the haelk lab "
                       "(use a jail.conf file)")
        else:
            names.append(arg)
        i += 1
    if action not in ("c", "r", "cr") or len(names) != 1:
        raise Fail(JAIL_USAGE, EX_USAGE)
    name = names[0]
    if action == "c":
        create(name, conf_path)
    elif action == "r":
        remove(name)
    else:
        rec = find_jail(name)[1]
        conf = rec["conf"] if rec else conf_path
        if rec:
            remove(name)
        create(name, conf)
    return 0


# ------------------------------------------------------------------- jls ---

JLS_USAGE = "usage: jls [-dhNnqsv] [-j jail] [param ...]"


def param_value(name, rec, key):
    return {"jid": str(rec["jid"]), "name": name, "path": rec["path"],
            "host.hostname": rec["hostname"], "ip4.addr": ",".join(rec["ip4"]) or "-",
            "vnet": "new" if rec["vnet"] else "inherit", "osrelease": "14.3-RELEASE",
            "dying": "false", "persist": "true"}.get(
        key, ",".join(rec["params"].get(key, [])) if key in rec["params"] else None)


def jls_main(argv):
    return run_main(_jls, argv)


def _jls(argv):
    header = names = libxo = False
    only = None
    params = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--libxo"):
            fmt = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            if "=" not in arg:
                i += 1
            if fmt.split(",")[0] != "json":
                raise Fail(f"jls: the haelk lab supports only --libxo json (got {fmt!r})")
            libxo = True
        elif arg == "-j":
            if i + 1 >= len(argv):
                raise Fail(f"jls: option requires an argument -- j\n{JLS_USAGE}", EX_USAGE)
            only = argv[i + 1]
            i += 1
        elif arg.startswith("-") and len(arg) > 1:
            for c in arg[1:]:
                if c == "h":
                    header = True
                elif c == "N":
                    names = True
                elif c in "dqsvn":
                    if c in "svn":
                        raise Fail(f"jls: -{c} is not simulated by the haelk lab")
                else:
                    raise Fail(f"jls: illegal option -- {c}\n{JLS_USAGE}", EX_USAGE)
        else:
            params.append(arg)
        i += 1
    if current_jail():
        jails = {}
    else:
        jails = read_state("jails", {"jails": {}})["jails"]
    if only is not None:
        name, rec = find_jail(only)
        if rec is None:
            raise Fail(f"jls: jail \"{only}\" not found")
        jails = {name: rec}
    rows = sorted(jails.items(), key=lambda kv: kv[1]["jid"])
    for p in params:
        if not jailconf.known_param(p) or p.startswith("$"):
            raise Fail(f"jls: unknown parameter: {p}")
    if libxo:
        out = []
        for name, rec in rows:
            if params:
                out.append({p: param_value(name, rec, p) for p in params})
            else:
                entry = {"jid": rec["jid"], "ipv4": ",".join(rec["ip4"]),
                         "hostname": rec["hostname"], "path": rec["path"]}
                if names:
                    entry["name"] = name
                out.append(entry)
        print(json.dumps({"__version": "2", "jail-information": {"jail": out}}))
        return 0
    if params:
        if header:
            print(" ".join(params))
        for name, rec in rows:
            print(" ".join(param_value(name, rec, p) or "-" for p in params))
        return 0
    print(f"   JID  IP Address      Hostname                      Path")
    for name, rec in rows:
        ident = name if names else str(rec["jid"])
        print(f"{ident:>6}  {','.join(rec['ip4'])[:15]:<15} {rec['hostname'][:29]:<29} {rec['path']}")
    return 0


# ----------------------------------------------------------------- jexec ---

JEXEC_USAGE = "usage: jexec [-l] [-u username | -U username] jail [command ...]"


def jexec_main(argv):
    return run_main(_jexec, argv)


def parse_jexec(argv):
    login, user = False, None
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        arg = argv[i]
        if arg == "-l":
            login = True
        elif arg in ("-u", "-U"):
            if i + 1 >= len(argv):
                raise Fail(f"jexec: option requires an argument -- {arg[1]}\n{JEXEC_USAGE}", EX_USAGE)
            user = argv[i + 1]
            i += 1
        else:
            raise Fail(f"jexec: illegal option -- {arg[1:2]}\n{JEXEC_USAGE}", EX_USAGE)
        i += 1
    if i < len(argv) and argv[i] == "--":
        i += 1
    if i >= len(argv):
        raise Fail(JEXEC_USAGE, EX_USAGE)
    return login, user, argv[i], argv[i + 1:]


def _jexec(argv):
    login, user, jail, command = parse_jexec(argv)
    exec_in_jail(jail, command or ["/bin/sh"], login=login, user=user)


def exec_in_jail(jail, command, login=False, user=None, check_only=False):
    """Replace this process by COMMAND inside JAIL's namespace (never returns)."""
    if current_jail():
        raise Fail(f'jexec: jail "{jail}" not found')
    name, rec = find_jail(jail)
    if rec is None:
        raise Fail(f'jexec: jail "{jail}" not found')
    if not os.path.isdir(os.path.join(rec["path"], "bin")):
        raise Fail(f"jexec: execvp: {command[0]}: No such file or directory")
    init = os.path.join(paths.LABDIR, "haelklab", "freebsd", "jailinit.py")
    spec = json.dumps({"name": name, "root": rec["path"], "hostname": rec["hostname"],
                       "login": login, "user": user, "command": command,
                       "run_dir": run_dir()})
    argv = ["unshare", "-m", "-u", "--propagation", "slave", paths.PYTHON, init, spec]
    netns = jail_netns(rec)
    if rec.get("netns_holder") and netns is None:
        raise Fail(f'jexec: jail "{jail}": haelk lab: its network namespace is gone')
    if netns:
        argv = ["nsenter", f"--net={netns}"] + argv
    sys.stdout.flush()
    os.execvp(argv[0], argv)
