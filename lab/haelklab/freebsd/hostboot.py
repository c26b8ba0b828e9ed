"""A lab host's boot and shutdown, run inside the host's namespaces by `labctl`.

boot: what loader(8) does first - every `NAME_load="YES"` of /boot/loader.conf is
loaded (`kldload -n NAME`) - then what FreeBSD's rc does for the network and jails:
`cloned_interfaces` are
created, each `ifconfig_IF` (and `ifconfig_IF_aliasN`) of /etc/rc.conf is applied to
the interfaces that exist, `defaultrouter` becomes the default route, and with
`jail_enable=YES` `service jail start` starts `jail_list` (or every conf).
shutdown: `service jail stop` (every running jail, newest first).

Usage: hostboot.py boot|shutdown
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from haelklab import paths  # noqa: E402
from haelklab.freebsd.common import parse_rc, rc_yes, read_state  # noqa: E402

ENV = dict(os.environ, PATH=paths.SESSION_PATH)


def sh(argv):
    result = subprocess.run(argv, env=ENV, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def boot():
    failed = 0
    # The kernel starts with what loader.conf loads (carp for the jails' CARP lines).
    for key, value in parse_rc("/boot/loader.conf").items():
        if key.endswith("_load") and rc_yes(value):
            failed |= sh(["kldload", "-n", key[: -len("_load")]]) != 0
    rc = parse_rc("/etc/rc.conf")
    for ifname in rc.get("cloned_interfaces", "").split():
        failed |= sh(["ifconfig", ifname, "create"]) != 0
    names = subprocess.run(["ifconfig", "-l"], env=ENV, capture_output=True,
                           text=True).stdout.split()
    for ifname in names:
        value = rc.get(f"ifconfig_{ifname}")
        if value and value.split()[0].upper() not in ("DHCP", "SYNCDHCP"):
            # The lab already gave em0 its inventory address; `inet` replaces it alike.
            failed |= sh(["ifconfig", ifname] + value.split()) != 0
        aliases = sorted((int(k.rsplit("alias", 1)[1]), v) for k, v in rc.items()
                         if re.fullmatch(rf"ifconfig_{re.escape(ifname)}_alias\d+", k))
        for _n, alias in aliases:
            failed |= sh(["ifconfig", ifname] + alias.split()) != 0
    if rc.get("defaultrouter"):
        subprocess.run(["ip", "route", "replace", "default", "via", rc["defaultrouter"]],
                       capture_output=True)
    if rc_yes(rc.get("jail_enable")):
        failed |= sh(["service", "jail", "start"]) != 0
    return 1 if failed else 0


def shutdown():
    jails = read_state("jails", {"jails": {}})["jails"]
    names = [n for n, _ in sorted(jails.items(), key=lambda kv: -kv[1]["jid"])]
    failed = 0
    for name in names:
        failed |= sh(["jail", "-r", name]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit({"boot": boot, "shutdown": shutdown}[sys.argv[1]]())
