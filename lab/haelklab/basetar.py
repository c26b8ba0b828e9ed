"""A tiny stand-in for FreeBSD's base.txz: the directory skeleton haelk relies on,
and FreeBSD 14's user database (etc/passwd, etc/master.passwd, etc/group; the
pwd.db/spwd.db hashes are left out, nothing in the lab reads them).

FreeBSD's base has no /etc/rc.conf (only /etc/defaults/rc.conf), so neither does this.
The tarball is cached in the lab's media directory with a digest of its content
beside it, so a lab made by an older version of this module gets the new one.
"""
import hashlib
import io
import json
import os
import tarfile
import time

from haelklab.freebsd import userdb

DIRS = ["bin", "boot", "dev", "etc", "etc/defaults", "root", "tmp", "usr", "usr/local",
        "usr/local/etc", "var", "var/db", "var/db/pkg", "var/log", "var/run"]
# path -> (mode, text)
FILES = {
    "COPYRIGHT": (0o644, "Stand-in for the FreeBSD base system of haelk's local lab.\n"),
    # The shape of FreeBSD's script: the USERLAND_VERSION line is what the
    # release check before a jail's start reads.
    "bin/freebsd-version": (0o755, '#!/bin/sh\nset -ef\n\nUSERLAND_VERSION="14.3-RELEASE"\n\n'
                                   'echo $USERLAND_VERSION\n'),
    "etc/defaults/rc.conf": (0o644, "# stand-in of FreeBSD's /etc/defaults/rc.conf\n"),
    # A jail's exec.start/exec.stop `sh /etc/rc[.shutdown]` runs the lab's stand-ins
    # (freebsd/rc.py); these files only make the jail's base have them.
    "etc/rc": (0o644, "# stand-in of FreeBSD's /etc/rc: the haelk lab runs freebsd/rc.py\n"),
    "etc/rc.shutdown": (0o644, "# stand-in of FreeBSD's /etc/rc.shutdown: the haelk lab runs "
                               "freebsd/rc.py\n"),
    "etc/resolv.conf": (0o644, ""),
    "etc/master.passwd": (0o600, userdb.BASE_MASTER_PASSWD),
    "etc/passwd": (0o644, userdb.BASE_PASSWD),
    "etc/group": (0o644, userdb.BASE_GROUP),
}


def content_digest():
    """Changes whenever what build() puts in the tarball changes."""
    spec = json.dumps({"dirs": DIRS, "files": FILES}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()


def build():
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for d in DIRS:
            info = tarfile.TarInfo("./" + d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, now
            tar.addfile(info)
        for name, (mode, text) in FILES.items():
            data = text.encode()
            info = tarfile.TarInfo("./" + name)
            info.size, info.mtime, info.mode = len(data), now, mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def marker_path(path):
    return path + ".content"


def is_current(path):
    try:
        with open(marker_path(path)) as f:
            return os.path.exists(path) and f.read().strip() == content_digest()
    except FileNotFoundError:
        return False


def ensure(path):
    """Write the tarball at PATH unless the one there has the current content."""
    if is_current(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(build())
    os.replace(path + ".tmp", path)
    with open(marker_path(path) + ".tmp", "w") as f:
        f.write(content_digest() + "\n")
    os.replace(marker_path(path) + ".tmp", marker_path(path))
