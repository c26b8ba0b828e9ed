"""jail, jls and jexec: jails simulated as mount namespaces over a recorded root.

A running jail is a record (jid, path, hostname, parameters) in the host's state;
jexec runs a command in a new mount namespace where the jail root's directories
are bound over the absolute paths services use (see jailinit.py). There is no
process or network isolation. `jail -c` runs, in jail(8)'s order, exec.prestart,
creates the jail, moves its vnet.interface, runs exec.start in the jail (rc.py's
/etc/rc for `sh /etc/rc`) and exec.poststart; `jail -r` runs exec.prestop,
exec.stop in the jail (/etc/rc.shutdown), kills what is left, then exec.poststop.
"""
import json
import os
import re
import subprocess
import sys

from haelklab import paths, procs
from haelklab.freebsd import ifconfig, jailconf, route
from haelklab.freebsd import rc as rcmod
from haelklab.freebsd.common import (EX_USAGE, Fail, current_jail, find_jail, locked_state,
                                     read_state, run_main, run_dir)

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
    "/sbin/ifconfig": "ifconfig", "/sbin/route": "route", "/sbin/kldload": "kldload", "/sbin/kldstat": "kldstat",
    "/usr/sbin/jail": "jail", "/usr/sbin/jls": "jls", "/usr/sbin/jexec": "jexec",
    "/usr/sbin/service": "service", "/usr/sbin/sysrc": "sysrc", "/usr/sbin/pkg": "pkg",
    "/usr/bin/uname": "uname", "/bin/freebsd-version": "freebsd-version",
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
    if "vnet.interface" in params:
        for ifname in params["vnet.interface"]:
            ifconfig.move_to_jail(name, ifname)
    with locked_state("jails", {"jails": {}, "next_jid": 1}) as state:
        jid = state.setdefault("next_jid", 1)
        state["next_jid"] = jid + 1
        ip4 = [a.split("|", 1)[-1].split("/")[0] for a in params.get("ip4.addr", [])]
        state["jails"][name] = {
            "jid": jid, "path": root, "conf": conf_path,
            "hostname": (params.get("host.hostname") or [""])[0], "ip4": ip4,
            "vnet": "vnet" in params, "params": params, "namespaces": [],
        }
    # jail(8): exec.start runs in the jail once it exists (and has its vnet.interface);
    # if it fails, the jail is not created: it is removed again.
    for cmd in params.get("exec.start", []):
        try:
            in_jail(name, params, cmd, "exec.start")
        except Fail:
            rec = find_jail(name)[1]
            if rec is not None:
                stop_jail_processes(rec)
            ifconfig.release_from_jail(name)
            route.forget(name)
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
    stop_jail_processes(find_jail(jname)[1] or rec)
    ifconfig.release_from_jail(jname)
    route.forget(jname)
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
    sys.stdout.flush()
    os.execvp("unshare", ["unshare", "-m", "-u", "--propagation", "slave",
                          paths.PYTHON, init, spec])
