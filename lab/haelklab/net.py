"""The lab network: a Linux bridge as the switch, a gateway namespace and one network
namespace per host, all on 198.51.100.0/24 (RFC 5737 TEST-NET-2).

- `haelk-sw`, a bridge in the root namespace, is the switch; the root namespace (where
  haelk and the tests run) has 198.51.100.254/24 on it.
- `hl-gw` holds 198.51.100.1, the jails' gateway; forwarding is off (a new namespace's
  default), so nothing leaves the lab network.
- `hl-HOST` is a host: a veth whose end inside is `em0` (the inventory address, a
  default route via the gateway), the other end `hl-HOST-p`, a port of the switch.

Nothing is added to the root namespace's other interfaces, and every name made here is
recorded (lab.json `net`) before it is made, so `down` removes exactly that.
"""
import json
import os
import subprocess

SWITCH = "haelk-sw"
NETWORK_PREFIX = 24
ROOT_ADDRESS = "198.51.100.254"
GATEWAY = "198.51.100.1"
GATEWAY_NS = "hl-gw"
UPLINK = "em0"


class NetError(Exception):
    """An `ip` command failed."""


def ip(*args, netns=None, check=True):
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


def host_netns(host):
    return f"hl-{host}"


def netns_path(host):
    return f"/run/netns/{host_netns(host)}"


def _port(name):
    return f"{name}-p"[:15]


def netns_exists(name):
    return os.path.exists(f"/run/netns/{name}")


def link_exists(name, netns=None):
    return ip("link", "show", "dev", name, netns=netns, check=False).returncode == 0


def ensure_switch(record, save):
    net = record.setdefault("net", {"links": [], "netns": []})
    if not link_exists(SWITCH):
        net["links"].append(SWITCH)
        save(record)
        ip("link", "add", SWITCH, "type", "bridge")
        ip("addr", "add", f"{ROOT_ADDRESS}/{NETWORK_PREFIX}", "dev", SWITCH)
        ip("link", "set", SWITCH, "up")
    if not netns_exists(GATEWAY_NS):
        _add_member(record, save, GATEWAY_NS, "eth0", GATEWAY, gateway=None)


def _add_member(record, save, ns, inside, address, gateway):
    """A namespace NS whose interface INSIDE (ADDRESS) is plugged into the switch."""
    net = record["net"]
    port = _port(ns)
    if ns not in net["netns"]:
        net["netns"].append(ns)
    if port not in net["links"]:
        net["links"].append(port)
    save(record)
    ip("netns", "add", ns)
    ip("link", "set", "lo", "up", netns=ns)
    # A host keeps its MAC across reboots (and the switch's neighbours stay right).
    mac = "02:00:" + ":".join(f"{int(o):02x}" for o in address.split("."))
    ip("link", "add", port, "type", "veth", "peer", "name", inside, "address", mac,
       "netns", ns)
    ip("link", "set", port, "master", SWITCH, "up")
    ip("addr", "add", f"{address}/{NETWORK_PREFIX}", "dev", inside, netns=ns)
    ip("link", "set", inside, "up", netns=ns)
    if gateway:
        ip("route", "add", "default", "via", gateway, netns=ns)


def fresh_host(record, save, host, address):
    """HOST's namespace as a host that has just booted: em0 with its address and the
    default route, `lo` up, nothing else (interfaces of a previous boot are gone)."""
    ns = host_netns(host)
    if netns_exists(ns):
        remove_netns(ns)
    _add_member(record, save, ns, UPLINK, address, GATEWAY)


def set_cable(host, plugged):
    """HOST's cable into the switch: its switch port down is a cable pulled out (em0
    loses its carrier, nothing the host or its jails send reaches anyone), up plugs
    it back in. Addresses and routes stay, as on a real host."""
    ip("link", "set", _port(host_netns(host)), "up" if plugged else "down")


def cable_plugged(host):
    """False while HOST's cable is pulled out (its switch port administratively down)."""
    link = json.loads(ip("-j", "link", "show", "dev", _port(host_netns(host))).stdout)[0]
    return "UP" in link["flags"]


def remove_netns(ns):
    """Delete NS and its switch port (the veth pair dies with its namespace end)."""
    if netns_exists(ns):
        ip("netns", "del", ns, check=False)
    if link_exists(_port(ns)):
        ip("link", "del", _port(ns), check=False)


def down(record):
    """Remove what ensure_switch/fresh_host made; the problems found, as text."""
    net = record.get("net") or {}
    problems = []
    for ns in reversed(net.get("netns", [])):
        remove_netns(ns)
        if netns_exists(ns):
            problems.append(f"network namespace {ns} is still there")
    for link in reversed(net.get("links", [])):
        if link_exists(link):
            ip("link", "del", link, check=False)
        if link_exists(link):
            problems.append(f"interface {link} is still there")
    return problems
