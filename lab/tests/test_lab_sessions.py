"""`labctl kill-sessions HOST` cuts a host's ssh sessions but keeps its sshd, its
jails and the services they started."""
import json
import os
import subprocess
import time
import urllib.request

from conftest import HOSTS, SSH, make_vnet_jail, paths, ssh, write
from haelklab.sessions import Proc, session_processes

JAIL_IP = "198.51.100.163"

LABCTL = os.path.join(paths.LABDIR, "labctl")
SSHD = "/usr/sbin/sshd"


def proc(pid, ppid, sid, exe="/bin/sh"):
    return Proc(pid=pid, ppid=ppid, sid=sid, start=1, state="S", exe=exe, command=exe)


def test_session_tree_keeps_daemons_and_unrelated_processes():
    table = {p.pid: p for p in [
        proc(10, 1, 10, SSHD),           # the listener
        proc(20, 10, 20, SSHD),          # per-connection sshd
        proc(21, 20, 20, SSHD),          # its session sshd
        proc(30, 21, 30),                # /bin/sh -s (made session leader by sshd)
        proc(31, 30, 30, "/usr/bin/python3"),   # service ... start, still waiting
        proc(40, 31, 40, "/usr/bin/python3"),   # the stand-in it started with setsid
        proc(41, 40, 40, "/usr/bin/python3"),   # a child of the stand-in
        proc(32, 30, 30, "/usr/bin/unshare"),   # a foreground jexec
        proc(50, 1, 30, "/usr/bin/sleep"),      # left the tree (re-parented to init)
        proc(60, 1, 60, SSHD),           # another sshd, not this host's
        proc(61, 60, 61, "/bin/sh"),
        proc(22, 10, 22, SSHD),          # a connection still authenticating
    ]}
    assert sorted(session_processes(table, 10)) == [20, 21, 22, 30, 31, 32]


def haproxy_conf(port):
    return (f"global\n  stats socket /var/run/haproxy.sock mode 600 level admin\n"
            f"defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n"
            f"  timeout server 5s\nfrontend f\n  bind *:{port}\n"
            f"  http-request return status 200 content-type text/plain string alive\n")


def sshd_listener(host):
    with open(paths.RECORD) as f:
        return json.load(f)["hosts"][host]["sshd"]["pid"]


def running(pid):
    """True while PID runs (a killed process may stay a zombie until init reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def session_id(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[3])


def test_kill_sessions_cuts_connections_and_keeps_the_host(jail_name):
    host = "lab3"
    name = jail_name(host, "ks")
    root = make_vnet_jail(host, name, 61, JAIL_IP)
    ssh(host, f"pkg -j {name} install -y haproxy && sysrc -j {name} haproxy_enable=YES", check=True)
    write(host, f"{root}/usr/local/etc/haproxy.conf", haproxy_conf(18181))
    ssh(host, f"service -j {name} haproxy start", check=True)
    listener = sshd_listener(host)
    # A deploy-like session: a script on stdin that is busy in the foreground, with a
    # child that daemonized (setsid) while the script still waits for it.
    session = subprocess.Popen(SSH + [f"root@{HOSTS[host]}", "/bin/sh -s"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    session.stdin.write("setsid sleep 3001 & echo $!; sleep 3002 & echo $!; wait\n")
    session.stdin.flush()
    daemon_pid, busy_pid = int(session.stdout.readline()), int(session.stdout.readline())
    try:
        deadline = time.time() + 5
        while session_id(daemon_pid) != daemon_pid and time.time() < deadline:
            time.sleep(0.05)  # setsid(1) has not called setsid(2) yet
        result = subprocess.run([LABCTL, "kill-sessions", host], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stderr
        assert f"killed {busy_pid} sleep 3002" in result.stdout
        assert "sshd" in result.stdout and "/bin/sh -s" in result.stdout
        assert str(daemon_pid) not in result.stdout
        session.wait(timeout=10)
        assert session.returncode == 255  # the client saw the connection die
        assert not running(busy_pid)
        assert running(daemon_pid)
        # Not a reboot: same listener, the jail and its haproxy are still there.
        assert sshd_listener(host) == listener and running(listener)
        assert ssh(host, f"jls -j {name} name", check=True).stdout.strip() == name
        with urllib.request.urlopen(f"http://{JAIL_IP}:18181/", timeout=5) as response:
            assert response.read() == b"alive"
        assert "is running" in ssh(host, f"service -j {name} haproxy status", check=True).stdout
        # Nothing left to kill the second time.
        again = subprocess.run([LABCTL, "kill-sessions", host], capture_output=True, text=True)
        assert again.returncode == 0
        assert not [line for line in again.stdout.splitlines() if line.startswith("killed ")]
    finally:
        for pid in (daemon_pid, busy_pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        session.kill()
        ssh(host, f"service -j {name} haproxy onestop")
    assert subprocess.run([LABCTL, "kill-sessions", "nosuchhost"], capture_output=True).returncode == 1
