"""Runs as the first process of a jail's mount namespace (under unshare): binds the
jail root's directories over the absolute paths, records the namespace so
`jail -r` and `labctl down` can find its processes, then becomes the command.

The jail's own /etc/rc.conf is created empty if missing, so writes to it can
never reach the host's rc.conf; so is its /etc/resolv.conf, which the jail's
processes read as on FreeBSD (not the host's). Its /etc/sysctl.conf (an empty file
if it has none) is bound over the Linux host's, where the host has one, so `sysctl -f
/etc/sysctl.conf` in the jail reads the jail's.
"""
import fcntl
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from haelklab import paths  # noqa: E402
from haelklab.freebsd import userdb  # noqa: E402

BINDS = [("usr/local/etc", "/usr/local/etc"), ("usr/local/www", "/usr/local/www"),
         ("var/db", "/var/db"), ("var/log", "/var/log"),
         ("var/run", "/run"), ("tmp", "/tmp"), ("etc/rc.conf", "/etc/rc.conf"),
         ("etc/resolv.conf", "/etc/resolv.conf"), ("etc/sysctl.conf", "/etc/sysctl.conf")]
# Files the jail may lack: an empty stand-in is bound instead (the jail's resolver then
# has no nameserver, as a FreeBSD jail without /etc/resolv.conf; never the host's).
OPTIONAL_FILES = {"etc/resolv.conf", "etc/sysctl.conf"}
# Bound only where the Linux host has a file to bind over (a Debian may ship none).
IF_TARGET_EXISTS = {"etc/sysctl.conf"}


def record_namespace(spec):
    ns = os.readlink("/proc/self/ns/mnt")
    run_dir = spec["run_dir"]
    with open(os.path.join(run_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(os.path.join(run_dir, "namespaces"), "a") as f:
            f.write(ns + "\n")
        path = os.path.join(run_dir, "jails.json")
        with open(path) as f:
            state = json.load(f)
        rec = state["jails"].get(spec["name"])
        if rec is None:
            print(f'jexec: jail "{spec["name"]}" not found', file=sys.stderr)
            sys.exit(1)
        if ns not in rec["namespaces"]:
            rec["namespaces"].append(ns)
        with open(path + ".tmp", "w") as f:
            json.dump(state, f, indent=1)
        os.replace(path + ".tmp", path)


def lookup_user(root, user, named):
    """(uid, gid, home, groups) of USER as jexec finds it after entering the jail: in
    the jail's own etc/passwd and etc/group. Without -u jexec stays root and needs no
    entry (a jail whose base lacks etc/passwd still runs root commands)."""
    try:
        found = userdb.user(root, user)
    except userdb.UserDbError:
        found = None
    if found is None:
        if not named:
            return 0, 0, "/root", [0]
        print(f"jexec: getpwnam: {user}: no such user", file=sys.stderr)
        sys.exit(1)
    uid, gid, home = found
    return uid, gid, home, sorted({gid, *userdb.member_gids(root, user)})


def main():
    spec = json.loads(sys.argv[1])
    root = spec["root"]
    record_namespace(spec)
    for rel, target in BINDS:
        if rel in IF_TARGET_EXISTS and not os.path.isfile(target):
            continue
        source = os.path.join(root, rel)
        if rel in OPTIONAL_FILES:
            if not os.path.isfile(source):
                source = os.path.join(spec["run_dir"], "empty-file")
                open(source, "a").close()
        elif rel == "etc/rc.conf":
            if not os.path.exists(source):
                os.makedirs(os.path.dirname(source), exist_ok=True)
                open(source, "w").close()
        else:
            os.makedirs(source, exist_ok=True)
        subprocess.run(["mount", "--bind", source, target], check=True)
    if spec["hostname"]:
        subprocess.run(["hostname", spec["hostname"]], check=True)
    env = dict(os.environ) if not spec["login"] else {"TERM": os.environ.get("TERM", "dumb")}
    env["PATH"] = paths.BIN + ":/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"
    env["HAELK_LAB_JAIL"] = spec["name"]
    env["HAELK_LAB_JAIL_ROOT"] = root
    user = spec["user"] or "root"
    uid, gid, home, groups = lookup_user(root, user, named=bool(spec["user"]))
    if spec["login"] or spec["user"]:
        env.update(HOME=home, USER=user, LOGNAME=user, SHELL="/bin/sh")
    os.chdir("/")
    if uid != 0:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    try:
        os.execvpe(spec["command"][0], spec["command"], env)
    except OSError as e:
        print(f"jexec: execvp: {spec['command'][0]}: {e.strerror}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
