"""`labctl up` over a lab that went down without `labctl down`: every lab process
killed at once and every mount gone, as when the machine loses power. These tests
start from a lab that is down and leave it down (run-selftests runs them first)."""
import json
import os
import signal
import subprocess
import time

from conftest import paths, ssh

LABCTL = os.path.join(paths.LABDIR, "labctl")
INVENTORY = os.path.join(paths.REPO, "inventories", "lab.yaml")
DATASET = "lab1/kept"
MOUNTPOINT = f"{paths.MNT}/lab1-kept"


def labctl(*args):
    return subprocess.run([LABCTL, *args], capture_output=True, text=True, timeout=300)


def up():
    result = labctl("up", INVENTORY)
    assert result.returncode == 0, result.stderr
    return result


def crash():
    """SIGKILL every process the lab started, then lose every mount under its state."""
    pids = [int(line.split()[0]) for line in labctl("pids").stdout.splitlines()]
    assert pids, "the lab runs no process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    # Until a killed zfs-fuse is reaped, a new one dies importing its pools; after a
    # power cut there is no old one, so wait for them all to be gone.
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.1)
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    for target in reversed(targets):
        if target == paths.STATE or target.startswith(paths.STATE + "/"):
            subprocess.run(["umount", "-l", target], check=True)


def make_a_dataset():
    # `zfs create` returns once its transaction group is on disk, as on FreeBSD, so
    # the dataset outlives the crash (a file's data might still be in memory).
    ssh("lab1", f"zfs create -o mountpoint={MOUNTPOINT} {DATASET}", check=True)


def test_after_a_crash_up_imports_the_pools_again_with_their_datasets():
    up()
    try:
        make_a_dataset()
        crash()
        up()
        mounted = ssh("lab1", f"zfs get -H -o value mounted {DATASET}", check=True).stdout
        assert mounted == "yes\n"
    finally:
        assert labctl("down").returncode == 0


def test_after_the_machine_went_down_with_the_lab_up_up_starts_a_fresh_lab():
    up()
    try:
        make_a_dataset()
        crash()
        with open(paths.RECORD) as f:
            record = json.load(f)
        record["boot_id"] = "an-earlier-boot"
        with open(paths.RECORD, "w") as f:
            json.dump(record, f)
        result = up()
        assert "clearing the lab left by an earlier boot" in result.stderr
        assert ssh("lab1", f"zfs list {DATASET}").returncode != 0
        for host in ("lab1", "lab2", "lab3", "lab4"):
            assert ssh(host, "uname -s", check=True).stdout == "FreeBSD\n"
    finally:
        assert labctl("down").returncode == 0
