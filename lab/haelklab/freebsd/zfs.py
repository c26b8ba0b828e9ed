"""zfs: the real zfs-fuse `zfs`, run where zfs-fuse mounts datasets.

zfs-fuse mounts every dataset in its own mount namespace (the lab's root one); a
host's sshd lives in a namespace that only receives those mounts. Run from a host,
`zfs destroy` or `zfs unmount` would unmount the host's copy only and zfs-fuse would
find the dataset busy. So every zfs command runs in zfs-fuse's namespace, as on
FreeBSD where there is one mount table.

One zfs-fuse defect is corrected to FreeBSD's behaviour: after an incremental
`zfs recv` into a mounted dataset, zfs-fuse keeps serving the old file contents
until the dataset is mounted again; FreeBSD's `zfs recv` remounts it itself. So
after a successful receive, a mounted target is unmounted and mounted again.
And zfs-fuse releases an unmounted dataset asynchronously: a `zfs destroy` right
after its own unmount can find it "busy" for a moment, which FreeBSD's never does,
so a busy destroy is retried for up to 3 s.
"""
import json
import os
import subprocess
import sys
import time

from haelklab import paths

REAL = "/usr/sbin/zfs"


def zfs_fuse_namespace():
    """The mount namespace of the zfs-fuse `labctl up` started (lab.json)."""
    with open(os.path.join(paths.STATE, "lab.json")) as f:
        pid = json.load(f)["zfs_fuse"]["pid"]
    return f"/proc/{pid}/ns/mnt"


def real(args):
    return ["nsenter", f"--mount={zfs_fuse_namespace()}", "--", REAL, *args]


def main(argv):
    if argv[:1] == ["destroy"]:
        return destroy(argv)
    if argv[:1] not in (["recv"], ["receive"]):
        os.execvp("nsenter", real(argv))
    status = subprocess.run(real(argv)).returncode
    dataset = next((a for a in reversed(argv[1:]) if not a.startswith("-")), None)
    if status == 0 and dataset:
        mounted = subprocess.run(real(["get", "-H", "-o", "value", "mounted", dataset]),
                                 capture_output=True, text=True).stdout.strip()
        if mounted == "yes":
            subprocess.run(real(["unmount", dataset]), check=True)
            subprocess.run(real(["mount", dataset]), check=True)
    return status


def destroy(argv):
    for _ in range(10):
        result = subprocess.run(real(argv), capture_output=True, text=True)
        if result.returncode == 0 or "dataset is busy" not in result.stderr:
            break
        time.sleep(0.3)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode
