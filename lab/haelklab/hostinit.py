"""Runs inside a fresh mount namespace (under `unshare -m --propagation slave`):
binds one host's directories over the FreeBSD paths, then becomes that host's sshd.

Usage: hostinit.py HOST_DIR SSHD_CONFIG
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from haelklab import paths  # noqa: E402


def bind(source, target):
    subprocess.run(["mount", "--bind", source, target], check=True)


def main():
    host_dir, sshd_config = sys.argv[1], sys.argv[2]
    for target, rel, _kind in paths.HOST_BINDS:
        bind(os.path.join(host_dir, "root", rel), target)
    bind(host_dir, paths.SELF)
    # Root's Linux dotfiles would put their own directories ahead of the stand-ins
    # on PATH (bash reads ~/.bashrc even for `ssh host cmd`); a FreeBSD host has none.
    empty = os.path.join(host_dir, "empty-dotfile")
    open(empty, "w").close()
    for dotfile in ("/root/.bashrc", "/root/.profile", "/root/.bash_profile"):
        if os.path.isfile(dotfile):
            bind(empty, dotfile)
    with open(os.path.join(host_dir, "hostname")) as f:
        subprocess.run(["hostname", f.read().strip()], check=True)
    os.execv("/usr/sbin/sshd", ["/usr/sbin/sshd", "-D", "-f", sshd_config,
                                "-E", os.path.join(host_dir, "sshd.log")])


if __name__ == "__main__":
    main()
