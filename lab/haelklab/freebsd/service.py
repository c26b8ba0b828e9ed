"""service(8): `service jail ...` on a host, `service -j JAIL NAME CMD`, and the rc
scripts of the ports the lab knows (haproxy, elasticsearch, kibana) inside a jail.

rc.subr behaviour kept: NAME_enable gates start/stop/restart/status/reload unless
the command has the `one` prefix; unknown commands print rc.subr's usage.
"""
import glob
import os
import pwd
import signal
import socket
import subprocess
import sys
import time

import yaml

from haelklab import paths
from haelklab.freebsd import jails as jailmod
from haelklab.freebsd import pkg as pkgmod
from haelklab.freebsd import userdb
from haelklab.freebsd.common import (EX_USAGE, Fail, current_jail, find_jail, parse_rc, rc_yes,
                                     read_state, run_main)

USAGE = "usage: service [-j <jail name or id>] -e\n       service [-j <jail name or id>] -R\n" \
        "       service [-j <jail name or id>] [-v] -l | -r\n" \
        "       service [-j <jail name or id>] [-v] <rc.d script> start|stop|etc.\n" \
        "       service -h"
HAPROXY = "/usr/sbin/haproxy"

# name -> (package, extra commands, user, default config, pidfile): the ports' rc
# scripts' defaults (net/haproxy, textproc/elasticsearch8, textproc/kibana8).
SCRIPTS = {
    "haproxy": ("haproxy", ["reload", "configtest"], "root",
                "/usr/local/etc/haproxy.conf", "/var/run/haproxy.pid"),
    "elasticsearch": ("elasticsearch8", [], "elasticsearch",
                      "/usr/local/etc/elasticsearch", "/var/run/elasticsearch/elasticsearch.pid"),
    "kibana": ("kibana8", ["reload"], "www", "/usr/local/etc/kibana/kibana.yml",
               "/var/run/kibana/kibana.pid"),
}
# Only haproxy's rc script reads NAME_pidfile; the other two fix the path.
PIDFILE_VARIABLE = {"haproxy"}
KIBANA_WWWDIR = "/usr/local/www/kibana8"
KIBANA_LOG = "/var/log/kibana.log"
BASE_COMMANDS = ["start", "stop", "restart", "rcvar", "enable", "disable", "delete",
                 "enabled", "describe", "extracommands", "status", "poll"]


def main(argv):
    return run_main(_main, argv)


def _main(argv):
    if argv[:1] == ["-j"]:
        if len(argv) < 4:
            raise Fail(USAGE, EX_USAGE)
        jail = argv[1]
        record = None if current_jail() else find_jail(jail)[1]
        if record is None:
            raise Fail(f'jexec: jail "{jail}" not found')
        if argv[3:] == ["status"] and argv[2] in SCRIPTS:
            # Read-only: answered from the host through the jail's root, as the
            # jexec'd rc script would answer (pidfile, rc.conf), without the cost
            # of a new namespace - deploy and status ask this of every jail.
            if not pkgmod.installed(record["path"], SCRIPTS[argv[2]][0]):
                raise Fail(not_found(argv[2]))
            return RcScript(argv[2], root=record["path"]).run("status")
        jailmod.exec_in_jail(jail, ["service"] + argv[2:], login=True)
    if len(argv) != 2 and not (argv[:1] == ["jail"] and len(argv) >= 2):
        raise Fail(USAGE, EX_USAGE)
    name, command = argv[0], argv[1]
    if name == "jail":
        if current_jail():
            raise Fail(not_found("jail"))
        return jail_rc(command, argv[2:])
    if name not in SCRIPTS:
        raise Fail(not_found(name))
    root = os.environ.get("HAELK_LAB_JAIL_ROOT") or "/"
    if not pkgmod.installed(root, SCRIPTS[name][0]):
        raise Fail(not_found(name))
    return RcScript(name).run(command)


def not_found(name):
    return (f"{name} does not exist in /etc/rc.d or the local startup\n"
            "directories (/usr/local/etc/rc.d), or is not executable")


def rc_usage(script, commands):
    return (f"{script}: unknown directive '{{}}'.\n"
            f"Usage: {script} [fast|force|one|quiet]({'|'.join(commands)})")


def parse_directive(script, command, commands):
    """rc.subr's reading of COMMAND: (verb, whether NAME_enable is bypassed); an
    unknown directive fails with rc.subr's usage. `one` and `force` bypass it."""
    for prefix in ("one", "fast", "force", "quiet"):
        if command.startswith(prefix) and command[len(prefix):] in commands:
            return command[len(prefix):], prefix in ("one", "force")
    if command not in commands:
        raise Fail(rc_usage(script, commands).format(command))
    return command, False


def enabled(name, rc, verb):
    """rc.subr's NAME_enable gate. When it is not YES, rc.subr says why on stdout
    and returns 0 *without doing anything*: a caller of `service` must check that
    the service really runs, and the lab must not spare it that."""
    if rc_yes(rc.get(f"{name}_enable")):
        return True
    print(f"Cannot '{verb}' {name}. Set {name}_enable to YES in /etc/rc.conf "
          f"or use 'one{verb}' instead of '{verb}'.")
    return False


# ----------------------------------------------------------- rc.d/jail ---

def jail_rc(command, names):
    commands = BASE_COMMANDS + ["config", "console"]
    verb, one = parse_directive("/etc/rc.d/jail", command, commands)
    if verb not in ("start", "stop", "restart", "status"):
        raise Fail(f"/etc/rc.d/jail: {verb} is not simulated by the haelk lab")
    rc = parse_rc("/etc/rc.conf")
    # rc.d/jail has no pidfile, so unlike a port's script it gates stop too.
    if not one and verb != "status" and not enabled("jail", rc, verb):
        return 0
    if not names:
        names = rc.get("jail_list", "").split()
        if not names:
            names = [os.path.basename(p)[:-5] for p in sorted(glob.glob("/etc/jail.conf.d/*.conf"))]
    if verb == "status":
        running = read_state("jails", {"jails": {}})["jails"]
        print(" JID             IP Address      Hostname                      Path")
        status = 0
        for n in names:
            rec = running.get(n)
            if rec is None:
                status = 1
                continue
            print(f" {n:<15} {','.join(rec['ip4']):<15} {rec['hostname']:<29} {rec['path']}")
        return status
    status = 0
    if verb in ("stop", "restart"):
        print("Stopping jails:", end="")
        for n in names:
            if find_jail(n)[1] is None:
                continue
            try:
                out = capture(lambda: jailmod.remove(n))
                print(f" {n}.", end="")
            except Fail as e:
                print(f" cannot stop jail \"{n}\":\n{e.message}", end="")
                status = 1
        print()
    if verb in ("start", "restart"):
        print("Starting jails:", end="")
        for n in names:
            if find_jail(n)[1] is not None:
                print(f" cannot start jail \"{n}\": already running.", end="")
                continue
            try:
                capture(lambda: jailmod.create(n, jailmod.conf_files(n)))
                print(f" {n}.", end="")
            except Fail as e:
                print(f" cannot start jail \"{n}\": ", end="")
                print()
                print(e.message, file=sys.stderr)
                status = 1
        print()
    return status


def capture(func):
    """Run FUNC with its stdout swallowed (rc.d/jail prints only the summary)."""
    saved = sys.stdout
    sys.stdout = open(os.devnull, "w")
    try:
        return func()
    finally:
        sys.stdout.close()
        sys.stdout = saved


# ------------------------------------------------------ port rc scripts ---

class RcScript:
    def __init__(self, name, root="/"):
        """The rc script of NAME; `root` reads a jail's files from the host."""
        self.name = name
        self.package, self.extra, self.user, default_config, pidfile = SCRIPTS[name]
        self.script = f"/usr/local/etc/rc.d/{name}"
        self.rc = parse_rc(os.path.join(root, "etc/rc.conf"))
        self.config = self.rc.get(f"{name}_config", default_config)
        if name in PIDFILE_VARIABLE:
            pidfile = self.rc.get(f"{name}_pidfile", pidfile)
        self.pidfile = os.path.join(root, pidfile.lstrip("/"))
        self.user = self.rc.get(f"{name}_user", self.user)

    def run(self, command):
        commands = BASE_COMMANDS + self.extra
        verb, one = parse_directive(self.script, command, commands)
        if verb in ("enable", "disable", "rcvar", "enabled"):
            return self.rcvar_command(verb)
        # rc.subr: status, and stop of a running service, need no NAME_enable.
        gated = verb in ("start", "restart", "reload", "configtest") or (
            verb == "stop" and self.pid() is None)
        if gated and not one and not enabled(self.name, self.rc, verb):
            return 0
        if verb == "configtest":
            return self.configtest()
        if verb == "status":
            pid = self.pid()
            if pid is None:
                print(f"{self.name} is not running.")  # rc.subr: stdout, exit 1
                raise Fail("")
            print(f"{self.name} is running as pid {pid}.")
            return 0
        if verb == "stop":
            return self.stop()
        if verb == "start":
            return self.start()
        if verb == "restart":
            if self.pid() is not None:
                self.stop()
            return self.start()
        if verb == "reload":
            return self.reload()
        raise Fail(f"{self.script}: {verb} is not simulated by the haelk lab")

    def rcvar_command(self, verb):
        var = f"{self.name}_enable"
        if verb == "rcvar":
            print(f"# {self.name}\n#\n{var}=\"NO\"")
            return 0
        if verb == "enabled":
            return 0 if rc_yes(self.rc.get(var)) else 1
        value = "YES" if verb == "enable" else "NO"
        subprocess.run([os.path.join(paths.BIN, "sysrc"), "-q", f"{var}={value}"], check=True)
        print(f"{self.name} {verb}d in /etc/rc.conf")
        return 0

    def pid(self):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    # haproxy --------------------------------------------------------------
    def configtest(self):
        result = subprocess.run([HAPROXY, "-c", "-f", self.config], capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise Fail(f"Performing sanity check on {self.name} configuration:\n"
                       f"{self.name} configuration is NOT valid", 1)
        print(f"Performing sanity check on {self.name} configuration:\nConfiguration file is valid")
        return 0

    def start(self):
        pid = self.pid()
        if pid is not None:
            # rc.subr's answer to a second start: on stderr, exit 1.
            raise Fail(f"{self.name} already running? (pid={pid}).")
        if self.name == "haproxy":
            self.configtest_quiet()
            print(f"Starting {self.name}.")
            result = subprocess.run([HAPROXY, "-q", "-f", self.config, "-p", self.pidfile, "-D"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.stderr.write(result.stdout + result.stderr)
                raise Fail(f"/usr/local/etc/rc.d/{self.name}: WARNING: failed to start {self.name}")
            return 0
        return self.start_standin()

    def configtest_quiet(self):
        result = subprocess.run([HAPROXY, "-c", "-f", self.config], capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise Fail(f"/usr/local/etc/rc.d/{self.name}: WARNING: failed precmd routine for {self.name}")

    def reload(self):
        pid = self.pid()
        if pid is None:
            raise Fail(f"{self.name} not running? (check {self.pidfile}).")
        if self.name != "haproxy":
            raise Fail(f"{self.script}: reload is not simulated by the haelk lab")
        self.configtest_quiet()
        print(f"Reloading {self.name} config files.")
        result = subprocess.run([HAPROXY, "-q", "-f", self.config, "-p", self.pidfile, "-D",
                                 "-sf", str(pid)], capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise Fail("")
        return 0

    def stop(self):
        pid = self.pid()
        if pid is None:
            raise Fail(f"{self.name} not running? (check {self.pidfile}).")
        print(f"Stopping {self.name}.")
        os.kill(pid, signal.SIGTERM if self.name != "haproxy" else signal.SIGUSR1)
        print(f"Waiting for PIDS: {pid}.")
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if self.name == "haproxy" and time.time() > deadline - 55:
                os.kill(pid, signal.SIGTERM)
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass
        return 0

    # elasticsearch / kibana stand-ins --------------------------------------
    def standin_command(self):
        script = os.path.join(paths.LABDIR, "haelklab", "standins", f"{self.name}.py")
        if self.name == "elasticsearch":
            return [paths.PYTHON, script, "--path-conf", self.config]
        return [paths.PYTHON, script, "--config", self.config]

    def listen_address(self):
        try:
            if self.name == "elasticsearch":
                with open(os.path.join(self.config, "elasticsearch.yml")) as f:
                    doc = yaml.safe_load(f) or {}
                host, port = doc.get("network.host", "127.0.0.1"), doc.get("http.port", 9200)
            else:
                with open(self.config) as f:
                    doc = yaml.safe_load(f) or {}
                host, port = doc.get("server.host", "localhost"), doc.get("server.port", 5601)
        except (OSError, yaml.YAMLError):
            return None
        if isinstance(host, list):
            host = host[0] if host else "127.0.0.1"
        host = str(host)
        if host in ("0.0.0.0", "_local_", "localhost", "::") or host.startswith("_"):
            host = "127.0.0.1"
        try:
            return host, int(port)
        except (TypeError, ValueError):
            return None

    def start_precmd(self, uid, gid):
        """The ports' start_precmd: the directories and files their rc scripts make."""
        if self.name == "elasticsearch":
            # install -d -o USER -g GROUP -m 755, for the pidfile's, data and log dirs
            for path in (os.path.dirname(self.pidfile), "/var/db/elasticsearch",
                         "/var/log/elasticsearch"):
                os.makedirs(path, exist_ok=True)
                os.chown(path, uid, gid)
                os.chmod(path, 0o755)
            return
        piddir = os.path.dirname(self.pidfile)
        if not os.path.exists(piddir):
            os.makedirs(piddir)
            os.chown(piddir, uid, gid)
            os.chmod(piddir, 0o750)
        log = self.rc.get("kibana_log", KIBANA_LOG)
        if not os.path.isfile(log):
            open(log, "a").close()
            os.chown(log, uid, gid)
            os.chmod(log, 0o640)
        optimize = os.path.join(KIBANA_WWWDIR, "optimize")
        os.makedirs(optimize, exist_ok=True)
        for top, dirs, files in os.walk(optimize):
            for entry in [top] + [os.path.join(top, n) for n in dirs + files]:
                os.chown(entry, uid, gid)

    def start_standin(self):
        required = (os.path.join(self.config, "elasticsearch.yml")
                    if self.name == "elasticsearch" else self.config)
        if not os.path.isfile(required):
            # rc.subr's required_files check
            raise Fail(f"/usr/local/etc/rc.d/{self.name}: WARNING: {required} is not readable.")
        uid, gid = self.uid_gid()
        self.start_precmd(uid, gid)
        print(f"Starting {self.name}.")
        if self.name == "kibana":
            return self.start_kibana(uid, gid)
        logdir = f"/var/log/{self.name}"
        os.makedirs(logdir, exist_ok=True)
        stdout_log = os.path.join(logdir, f"{self.name}.stdout.log")
        stderr_log = os.path.join(logdir, f"{self.name}.stderr.log")
        for path in (stdout_log, stderr_log):
            open(path, "a").close()
            os.chown(path, uid, gid)
        err_offset = os.path.getsize(stderr_log)
        proc = subprocess.Popen(
            self.standin_command(), cwd="/", stdin=subprocess.DEVNULL,
            stdout=open(stdout_log, "ab"), stderr=open(stderr_log, "ab"),
            start_new_session=True, user=uid, group=gid, extra_groups=[],
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"})
        self.write_pidfile(proc.pid, uid, gid)
        # `elasticsearch -d` returns once the node has started (its HTTP port bound).
        address = self.listen_address()
        deadline = time.time() + 10
        while time.time() < deadline:
            if proc.poll() is not None:
                with open(stderr_log) as f:
                    f.seek(err_offset)
                    sys.stderr.write(f.read())
                os.unlink(self.pidfile)
                raise Fail(f"/usr/local/etc/rc.d/{self.name}: WARNING: failed to start "
                           f"{self.name} (exit {proc.returncode})")
            if address:
                try:
                    socket.create_connection(address, timeout=0.5).close()
                    return 0
                except OSError:
                    pass
            time.sleep(0.2)
        if address is None:
            return 0
        proc.terminate()
        os.unlink(self.pidfile)
        raise Fail(f"/usr/local/etc/rc.d/{self.name}: WARNING: {self.name} did not listen on "
                   f"{address[0]}:{address[1]} within 10 s")

    def start_kibana(self, uid, gid):
        """daemon(8) -f -p PIDFILE: returns at once; Kibana's output goes to its
        --log-file, and a Kibana that refuses its config is seen only there (and as
        a dead pid)."""
        log = self.rc.get("kibana_log", KIBANA_LOG)
        proc = subprocess.Popen(
            self.standin_command() + ["--log-file", log],
            cwd=os.path.join(KIBANA_WWWDIR, "data"), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, user=uid, group=gid, extra_groups=[],
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
                 "NODE_ENV": "production"})
        self.write_pidfile(proc.pid, uid, gid)
        return 0

    def write_pidfile(self, pid, uid, gid):
        tmp = self.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{pid}\n")
        os.chown(tmp, uid, gid)
        os.replace(tmp, self.pidfile)

    def uid_gid(self):
        """The service user's ids as su(1) finds them in a jail: in the jail's own
        etc/passwd (the lab's Linux users have the same numbers, see `labctl up`)."""
        root = os.environ.get("HAELK_LAB_JAIL_ROOT")
        if not root:
            pw = pwd.getpwnam(self.user)
            return pw.pw_uid, pw.pw_gid
        try:
            found = userdb.user(root, self.user)
        except userdb.UserDbError:
            found = None
        if found is None:
            raise Fail(f"su: unknown login: {self.user}\n"
                       f"/usr/local/etc/rc.d/{self.name}: WARNING: failed to start {self.name}")
        return found[0], found[1]
