"""The daemon(8) stand-in (haelklab.freebsd.daemon), no lab needed: its options, and a
supervised command run on this machine - detached, restarted with -r, stopped with its
supervisor, refused while its pidfile's process runs. Every process is stopped by PID."""
import os
import signal
import subprocess
import sys
import time

import pytest

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, LAB)
from haelklab import procs  # noqa: E402
from haelklab.freebsd import daemon  # noqa: E402
from haelklab.freebsd.common import EX_USAGE, Fail  # noqa: E402

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone


def run_daemon(*args):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from haelklab.freebsd import daemon;"
            " sys.exit(daemon.main(sys.argv[2:]))")
    return subprocess.run([sys.executable, "-c", code, LAB, *args], capture_output=True,
                          text=True, timeout=30)


def read_pid(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # waits for the supervisor to write it
        try:
            with open(path) as f:
                return int(f.read())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # waits for the process to exit
        if not procs.alive(procs.proc_ref(pid)):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pidfiles(tmp_path):
    sup, child = str(tmp_path / "sup.pid"), str(tmp_path / "child.pid")
    yield sup, child
    for path in (child, sup):
        if os.path.exists(path):
            procs.stop_pids([read_pid(path)], timeout=2.0)


def test_options_are_parsed_and_unknown_ones_refused():
    opts, command = daemon.parse(["-fr", "-P", "/a", "-t", "title", "-R5", "sh", "-c", "x"])
    assert opts == {"f": True, "r": True, "P": "/a", "t": "title", "R": 5}
    assert command == ["sh", "-c", "x"]
    for argv, message in ((["-x", "sh"], "illegal option -- x"), (["-P"], "requires an argument"),
                          (["-f"], "usage: daemon"), (["-R", "0", "sh"], "restart delay")):
        with pytest.raises(Fail) as e:
            daemon.parse(argv)
        assert message in e.value.message and e.value.code == EX_USAGE


def test_a_supervised_command_is_restarted_and_stops_with_its_supervisor(pidfiles):
    sup, child = pidfiles
    started = time.monotonic()
    result = run_daemon("-f", "-r", "-P", sup, "-p", child, "sleep", "600")
    assert result.returncode == 0 and time.monotonic() - started < 10, result.stderr
    first = read_pid(child)
    supervisor = read_pid(sup)
    os.kill(first, signal.SIGKILL)
    assert gone(first)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and read_pid(child) == first:  # the restart delay
        time.sleep(0.1)
    second = read_pid(child)
    assert second != first and procs.alive(procs.proc_ref(second))
    os.kill(supervisor, signal.SIGTERM)
    assert gone(second) and gone(supervisor)
    assert not os.path.exists(sup) and not os.path.exists(child)


def test_a_running_pidfile_is_refused_and_a_stale_one_is_not(pidfiles):
    sup, child = pidfiles
    assert run_daemon("-f", "-P", sup, "sleep", "600").returncode == 0
    supervisor = read_pid(sup)
    again = run_daemon("-f", "-P", sup, "sleep", "600")
    assert again.returncode == 3
    assert f"daemon: process already running, pid: {supervisor}" in again.stderr
    os.kill(supervisor, signal.SIGTERM)
    assert gone(supervisor)
    with open(sup, "w") as f:
        f.write(f"{supervisor}\n")  # left behind by a supervisor killed with SIGKILL
    assert run_daemon("-f", "-P", sup, "sleep", "600").returncode == 0
    assert read_pid(sup) != supervisor
