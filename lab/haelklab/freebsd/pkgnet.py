"""What `pkg -j JAIL install|update` needs from the jail's network, as pkg finds it: it
runs inside the jail's network stack (jail_attach), so it needs an address on an
interface other than lo0, a default route, and a `nameserver` line in the jail's
/etc/resolv.conf. Read from the jail's real network namespace and its root.
"""
import json
import os
import re
import subprocess

REPO_URL = "pkg+https://pkg.FreeBSD.org/FreeBSD:14:amd64/quarterly"


def _ip_json(netns, *args):
    prefix = ["nsenter", f"--net={netns}"] if netns else []
    out = subprocess.run(prefix + ["ip", "-j", *args], capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def problem(netns, root):
    """The fetch error pkg would hit in this jail (libfetch's wording), or None.
    NETNS: the jail's network namespace path (None: the caller's own)."""
    addrs = [a for entry in _ip_json(netns, "-4", "addr", "show") if entry["ifname"] != "lo"
             for a in entry.get("addr_info", []) if a.get("family") == "inet"]
    if not addrs:
        return "Network is unreachable"
    if not _ip_json(netns, "-4", "route", "show", "default"):
        return "Network is unreachable"
    try:
        with open(os.path.join(root, "etc", "resolv.conf")) as f:
            servers = [line for line in f if re.match(r"\s*nameserver\s+\S", line)]
    except OSError:
        servers = []
    if not servers:
        return "No address record"
    return None


def refusal(reason):
    """pkg's output when the catalogue cannot be fetched (stdout part, stderr part)."""
    out = "Updating FreeBSD repository catalogue...\n" \
          "repository FreeBSD has no meta file, using default settings\n"
    err = (f"pkg: Failed to fetch {REPO_URL}/meta.conf: {reason}\n"
           f"pkg: Failed to fetch {REPO_URL}/packagesite.pkg: {reason}\n"
           "Unable to update repository FreeBSD\nError updating repositories!")
    return out, err
