"""A tiny stand-in for FreeBSD's base.txz: the directory skeleton haelk relies on.

FreeBSD's base has no /etc/rc.conf (only /etc/defaults/rc.conf), so neither does this.
"""
import io
import os
import tarfile
import time

DIRS = ["bin", "boot", "dev", "etc", "etc/defaults", "root", "tmp", "usr", "usr/local",
        "usr/local/etc", "var", "var/db", "var/db/pkg", "var/log", "var/run"]
FILES = {
    "COPYRIGHT": "Stand-in for the FreeBSD base system of haelk's local lab.\n",
    "bin/freebsd-version": "#!/bin/sh\necho 14.3-RELEASE\n",
    "etc/defaults/rc.conf": "# stand-in of FreeBSD's /etc/defaults/rc.conf\n",
    "etc/resolv.conf": "",
}


def build():
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for d in DIRS:
            info = tarfile.TarInfo("./" + d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, now
            tar.addfile(info)
        for name, text in FILES.items():
            data = text.encode()
            info = tarfile.TarInfo("./" + name)
            info.size, info.mtime = len(data), now
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ensure(path):
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(build())
    os.replace(path + ".tmp", path)
