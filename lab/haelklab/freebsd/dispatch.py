#!/usr/bin/python3
"""Entry point of every FreeBSD stand-in: dispatches on argv[0] (a symlink name)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

COMMANDS = {
    "jail": "jails:jail_main", "jls": "jails:jls_main", "jexec": "jails:jexec_main",
    "service": "service:main", "sysrc": "sysrc:main", "pkg": "pkg:main",
    "kldload": "misc:kldload_main", "kldstat": "misc:kldstat_main",
    "ifconfig": "ifconfig:main", "freebsd-version": "misc:freebsd_version_main",
    "uname": "misc:uname_main", "zfs": "zfs:main", "route": "route:main",
    "sysctl": "sysctl:main", "daemon": "daemon:main",
    # A jail's /etc/rc and /etc/rc.shutdown (its exec.start / exec.stop), see rc.py.
    "rc": "rc:rc_main", "rc.shutdown": "rc:shutdown_main",
}


def main():
    name = os.path.basename(sys.argv[0])
    if name not in COMMANDS:
        print(f"haelk lab: no stand-in named {name}", file=sys.stderr)
        return 127
    module, func = COMMANDS[name].split(":")
    import importlib
    mod = importlib.import_module(f"haelklab.freebsd.{module}")
    try:
        return getattr(mod, func)(sys.argv[1:]) or 0
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
