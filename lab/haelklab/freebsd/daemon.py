"""daemon(8) as FreeBSD 14 runs a command: detached from the caller, optionally supervised.

    daemon [-cfr] [-p child_pidfile] [-P supervisor_pidfile] [-t title] [-R secs] [-o file]
           command [arguments ...]

The caller gets exit status 0 as soon as the command is detached (daemon(3): a fork and a
new session). Without -p, -P, -r, -R or -o the detached process becomes the command. With
any of them a supervisor stays: it writes its PID to -P's file, runs the command (its PID in
-p's file), and with -r (or -R SECS) starts it again 1 (SECS) s after it exits; a SIGTERM to
the supervisor is passed to the command, and once the command exits the supervisor removes
its pidfiles and exits. A pidfile whose process still runs makes daemon refuse, as
pidfile_open(3) does: `daemon: process already running, pid: N`, exit 3. -f sends the
command's standard input, output and error to /dev/null; -o appends its output and errors
to FILE. -c (chdir /) and -t (the process title) are accepted; the lab keeps no titles.
Any other option is refused with daemon's usage, exit 64 (EX_USAGE).
"""
import os
import signal
import subprocess
import sys
import time

from haelklab.freebsd.common import EX_USAGE, Fail, run_main

USAGE = ("usage: daemon [-cfHrS] [-p child_pidfile] [-P supervisor_pidfile]\n"
         "              [-u user] [-o output_file] [-t title]\n"
         "              [-l syslog_facility] [-s syslog_priority]\n"
         "              [-T syslog_tag] [-m output_mask] [-R restart_delay_secs]\n"
         "command arguments ...")
FLAGS, VALUED = set("cfr"), set("pPtRo")


def parse(argv):
    """The options (a dict) and the command; Fail with the usage on anything else."""
    opts, i = {}, 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        word = argv[i]
        i += 1
        if word == "--":
            break
        j = 1
        while j < len(word):
            ch = word[j]
            if ch in FLAGS:
                opts[ch] = True
                j += 1
            elif ch in VALUED:
                value = word[j + 1:] or (argv[i] if i < len(argv) else None)
                if value is None:
                    raise Fail(f"daemon: option requires an argument -- {ch}\n{USAGE}", EX_USAGE)
                if not word[j + 1:]:
                    i += 1
                opts[ch] = value
                break
            else:
                raise Fail(f"daemon: illegal option -- {ch}\n{USAGE}", EX_USAGE)
    command = argv[i:]
    if not command:
        raise Fail(USAGE, EX_USAGE)
    if "R" in opts:
        try:
            opts["R"] = int(opts["R"])
        except ValueError:
            raise Fail(f"daemon: invalid restart delay: {opts['R']}", EX_USAGE) from None
        if opts["R"] < 1:
            raise Fail(f"daemon: invalid restart delay: {opts['R']}", EX_USAGE)
        opts["r"] = True
    return opts, command


def _running_pid(path):
    """The PID in pidfile PATH if that process still runs, else None."""
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _write_pid(path, pid):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def _remove(path):
    if path and os.path.exists(path):
        os.unlink(path)


def _detach_stdio(opts):
    """-f: standard input, output and error to /dev/null (daemon(3) without noclose),
    for the supervisor and so for the command; without it both keep the caller's."""
    if opts.get("f"):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)


def supervise(opts, command):
    """The supervisor: run COMMAND (again, with -r), pass SIGTERM on, clean up, exit."""
    stopping = False
    child = None

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    if "P" in opts:
        _write_pid(opts["P"], os.getpid())
    out = open(opts["o"], "a") if "o" in opts else None
    try:
        while not stopping:
            child = subprocess.Popen(command, stdout=out, stderr=out)
            if "p" in opts:
                _write_pid(opts["p"], child.pid)
            child.wait()  # the command runs until it exits or is stopped
            _remove(opts.get("p"))
            if not opts.get("r"):
                break
            deadline = time.monotonic() + opts.get("R", 1)
            while not stopping and time.monotonic() < deadline:  # the restart delay
                time.sleep(0.1)
    finally:
        _remove(opts.get("p"))
        _remove(opts.get("P"))
    return 0


def main(argv):
    return run_main(_main, argv)


def _main(argv):
    opts, command = parse(argv)
    for key in ("P", "p"):
        pid = _running_pid(opts[key]) if key in opts else None
        if pid is not None:
            raise Fail(f"daemon: process already running, pid: {pid}", 3)
    if os.fork() != 0:
        return 0  # the caller: the command is detached
    os.setsid()
    if opts.get("c"):
        os.chdir("/")
    _detach_stdio(opts)
    if not any(k in opts for k in "pPrRo"):
        try:
            os.execvp(command[0], command)
        except OSError as e:
            print(f"daemon: execvp: {command[0]}: {e.strerror}", file=sys.stderr)
            os._exit(1)
    os._exit(supervise(opts, command))
