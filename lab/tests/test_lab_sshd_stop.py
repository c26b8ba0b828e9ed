"""`labctl stop-sshd HOST` / `start-sshd HOST`: a host whose sshd is down is still
the same running host - its jails, their services and open sessions stay - and the
listener comes back in that same host (unlike `labctl up`, which reboots it)."""
import fcntl
import json
import os
import subprocess
import uuid

from conftest import HOSTS, SSH, paths, ssh

LABCTL = os.path.join(paths.LABDIR, "labctl")
# The lock the haelk lab tests share (tests/integration/labkit.rs): the deploy tests
# must not find a host without sshd.
TEST_LOCK = "/var/tmp/haelk-lab.test-lock"


def labctl(*args):
    return subprocess.run([LABCTL, *args], capture_output=True, text=True, timeout=60)


def listener(host):
    with open(paths.RECORD) as f:
        return json.load(f)["hosts"][host]["sshd"]["pid"]


def mount_ns(pid):
    return os.readlink(f"/proc/{pid}/ns/mnt")


def test_stopped_sshd_keeps_the_host_and_comes_back_in_it(tmp_path):
    host = "lab3"
    marker = f"{paths.STATE}/self/run/sshd-stop-{uuid.uuid4().hex[:8]}"
    with open(TEST_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jails = ssh(host, f"touch {marker} && jls name", check=True).stdout
        before = listener(host)
        namespace = mount_ns(before)
        mux = SSH + ["-S", str(tmp_path / "mux")]
        subprocess.run(mux + ["-M", "-fN", f"root@{HOSTS[host]}"], check=True, timeout=30)
        try:
            result = labctl("stop-sshd", host)
            assert result.returncode == 0, result.stderr
            refused = ssh(host, "true")
            assert refused.returncode == 255 and "Connection refused" in refused.stderr
            assert labctl("status").returncode == 1
            # A connection made before the stop still works, as on FreeBSD.
            out = subprocess.run(mux + [f"root@{HOSTS[host]}", "hostname"], capture_output=True,
                                 text=True, timeout=30)
            assert out.stdout.strip() == host, out.stderr
            result = labctl("start-sshd", host)
            assert result.returncode == 0, result.stderr
        finally:
            subprocess.run(mux + ["-O", "exit", f"root@{HOSTS[host]}"], capture_output=True)
            if labctl("status").returncode != 0:
                labctl("start-sshd", host)
        after = listener(host)
        assert after != before and mount_ns(after) == namespace
        assert ssh(host, f"test -f {marker} && rm {marker} && jls name", check=True).stdout == jails
        assert labctl("status").returncode == 0
        again = labctl("start-sshd", host)
        assert again.returncode == 1 and "already runs" in again.stderr
