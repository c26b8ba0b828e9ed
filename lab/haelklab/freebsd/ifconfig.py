"""ifconfig on the real interfaces of the caller's network namespace (a lab host's, or
a VNET jail's under jexec).

Accepted: listing (`ifconfig`, `-a`, `-l`, `IF`) read from the kernel, `epair[N] create
[options]` (a veth pair epairNa/epairNb; prints epairNa and applies the options to it),
`bridge[N] create` (a Linux bridge), `IF destroy`, and on an existing interface any
sequence of `up`, `down`, `descr|description TEXT` (the link's alias), `addm IF`,
`deletem IF`, `name NEW`, `inet ADDR[/LEN] [netmask M] [alias]`, `-alias ADDR`,
`inet vhid N [advskew S] [advbase B] pass P alias VIP/32` (a CARP speaker, carp.py),
`vhid N state backup|master`, `vhid N advskew S`. Anything else fails as ifconfig(8)
would. Linux's `lo` is shown and named as FreeBSD's `lo0`.

Linux quirk hidden here: an address on a bridge port stops receiving, where on FreeBSD
it keeps working on the member. `addm IF` therefore moves IF's addresses (and the
routes through it) onto the bridge, remembered in the host's state, and the listing
still shows them on IF; `deletem` and the bridge's `destroy` put them back.

An epair's two ends get the MACs FreeBSD 14's ether_gen_addr(9) gives them: derived
from the host and the interface name (under the FreeBSD Foundation's 58:9c:fc
prefix), so a host that reboots and re-creates `epairN` answers with the same MACs
and its neighbours' ARP entries stay right, as on FreeBSD.
"""
import hashlib
import ipaddress
import json
import os
import re
import subprocess

from haelklab import paths
from haelklab.freebsd import carp
from haelklab.freebsd.common import Fail, current_jail, locked_state, read_state, run_main, run_dir

USAGE = ("usage: ifconfig [-j jail] [-DkLmn] [-f type:format] interface address_family\n"
         "                [address [dest_address]] [parameters]\n"
         "       ifconfig [-j jail] interface create\n"
         "       ifconfig [-j jail] -a [-dDkLmuv] [-f type:format] [-G groupname]\n"
         "                [-g groupname] [address_family]\n"
         "       ifconfig -C\n"
         "       ifconfig -l [-du] [-g groupname] [address_family]\n"
         "       ifconfig [-j jail] [-dkLmuv] [-f type:format]")


# ----------------------------------------------------------------- kernel ---

def generated_mac(ifname):
    """ether_gen_addr(9): 58:9c:fc and three bytes of a hash of the host and IFNAME."""
    with open(os.path.join(paths.SELF, "hostname")) as f:
        host = f.read().strip()
    digest = hashlib.sha1(f"{host}-{ifname}".encode()).digest()
    return "58:9c:fc:" + ":".join(f"{b:02x}" for b in digest[:3])


def ip(*args, check=True):
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise Fail(f"ifconfig: haelk lab: ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def ip_json(*args):
    out = ip("-j", *args).stdout.strip()
    return json.loads(out) if out else []


def linux_name(name):
    return "lo" if name == "lo0" else name


def freebsd_name(name):
    return "lo0" if name == "lo" else name


def links():
    """{linux name: link} of this namespace, in kernel order."""
    return {link["ifname"]: link for link in ip_json("-d", "link", "show")}


def addresses(ifname):
    """IPv4 addresses of IFNAME as [(address, prefixlen)], kernel order."""
    found = ip_json("-4", "addr", "show", "dev", ifname)
    return [(a["local"], a["prefixlen"]) for entry in found for a in entry.get("addr_info", [])
            if a.get("family") == "inet"]


def routes(ifname):
    """The routes through IFNAME that someone added (not the kernel's subnet routes)."""
    return [r for r in ip_json("-4", "route", "show", "dev", ifname)
            if r.get("protocol") != "kernel"]


def kind(link):
    info = (link.get("linkinfo") or {}).get("info_kind")
    if link["ifname"] == "lo":
        return "lo"
    if info == "veth" and link["ifname"] != "em0":
        return "epair"  # epairNa/b, or an end renamed (vnet0); em0 is the host's NIC
    return "bridge" if info == "bridge" else "ether"


def state_key():
    return current_jail() or ""


def moved_state():
    """{member: bridge} of this namespace's members whose addresses live on the bridge."""
    return read_state("ifconfig", {}).get("moved", {}).get(state_key(), {})


def set_moved(member, bridge):
    with locked_state("ifconfig", {}) as state:
        table = state.setdefault("moved", {}).setdefault(state_key(), {})
        if bridge is None:
            table.pop(member, None)
        else:
            table[member] = bridge


def carp_state_dir(host=False):
    """Where this namespace's CARP speakers and sysctls are recorded: per jail, under the
    host's run dir (with HOST, the host's own, whatever jail this runs in)."""
    d = os.path.join(run_dir(), "carp-" + ("host" if host else current_jail() or "host"))
    os.makedirs(d, exist_ok=True)
    return d


def move_addresses(source, target):
    """Move SOURCE's addresses and the routes through it to TARGET."""
    saved = routes(source)
    if saved:
        # The kernel takes a route only through a link that is up; on FreeBSD the
        # addresses (and routes) never left the member, which is up.
        ip("link", "set", target, "up")
    for addr, plen in addresses(source):
        ip("addr", "del", f"{addr}/{plen}", "dev", source)
        ip("addr", "add", f"{addr}/{plen}", "dev", target)
    for r in saved:
        argv = ["route", "replace", r["dst"]]
        if r.get("gateway"):
            argv += ["via", r["gateway"]]
        ip(*argv, "dev", target, check=False)


# ------------------------------------------------------------------- main ---

def main(argv):
    return run_main(_main, argv)


def _main(argv):
    if not argv or argv == ["-a"]:
        return show(None)
    if argv == ["-l"]:
        print(" ".join(freebsd_name(n) for n in links()))
        return 0
    if argv[0].startswith("-"):
        raise Fail(USAGE, 1)
    name, rest = argv[0], argv[1:]
    if rest[:1] == ["create"]:
        # As ifconfig(8): what follows `create` configures the new interface.
        name = create(name)
        rest = rest[1:]
        if not rest:
            return 0
    elif linux_name(name) not in links():
        raise Fail(f"ifconfig: interface {name} does not exist")
    if not rest:
        return show(name)
    if rest == ["destroy"]:
        return destroy(name)
    configure(name, rest)
    return 0


def create(name):
    m = re.fullmatch(r"(epair|bridge)(\d*)", name)
    if current_jail() is not None or not m:
        raise Fail("ifconfig: SIOCIFCREATE2: Invalid argument")
    prefix, unit = m.group(1), m.group(2)
    have = links()
    if unit == "":
        unit = 0
        while f"{prefix}{unit}" in have or f"{prefix}{unit}a" in have:
            unit += 1
    if prefix == "epair":
        a, b = f"epair{unit}a", f"epair{unit}b"
        # The unit is taken while its a end exists (its b end may be in a jail).
        if a in have or b in have:
            raise Fail("ifconfig: SIOCIFCREATE2: File exists")
        ip("link", "add", a, "address", generated_mac(a), "type", "veth",
           "peer", "name", b, "address", generated_mac(b))
        print(a)
        return a
    bridge = f"bridge{unit}"
    if bridge in have:
        raise Fail("ifconfig: SIOCIFCREATE2: File exists")
    ip("link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    print(bridge)
    return bridge


def destroy(name):
    link = links()[linux_name(name)]
    k = kind(link)
    if k == "epair":
        if not re.fullmatch(r"epair\d+[ab]", name) and current_jail() is None:
            raise Fail("ifconfig: SIOCIFDESTROY: Invalid argument")
        ip("link", "del", name)  # the other end goes with it, wherever it is
    elif k == "bridge":
        for member, bridge in list(moved_state().items()):
            if bridge == name:
                release(name, member)
        ip("link", "del", name)
    else:
        raise Fail("ifconfig: SIOCIFDESTROY: Invalid argument")
    return 0


def release(bridge, member):
    """Take MEMBER off BRIDGE, its addresses back from the bridge (see the module doc)."""
    ip("link", "set", member, "nomaster")
    if moved_state().get(member) == bridge:
        move_addresses(bridge, member)
        set_moved(member, None)


def prefix_of(words, addr):
    """The prefix length of `inet ADDR[/LEN] [netmask M]`: FreeBSD's classful default."""
    if "/" in addr:
        addr, plen = addr.split("/", 1)
        if not plen.isdigit() or int(plen) > 32:
            raise Fail(f"ifconfig: {addr}/{plen}: bad value")
        return addr, int(plen)
    if "netmask" in words:
        mask = words[words.index("netmask") + 1] if words.index("netmask") + 1 < len(words) else ""
        try:
            value = int(mask, 16) if mask.startswith("0x") else int(ipaddress.IPv4Address(mask))
        except ValueError:
            raise Fail(f"ifconfig: {mask}: bad value") from None
        return addr, bin(value).count("1")
    first = int(addr.split(".")[0]) if addr.split(".")[0].isdigit() else 0
    return addr, 8 if first < 128 else 16 if first < 192 else 24


def address_target(name):
    """The Linux interface NAME's addresses live on (its bridge when moved)."""
    return moved_state().get(name, linux_name(name))


def inet(name, words):
    """`inet ...` (the words after the interface name, starting with inet)."""
    if carp.parse_alias(words) is not None:
        params = carp.parse_alias(words)
        if "carp" not in read_state("kld", {"loaded": []})["loaded"]:
            raise Fail("ifconfig: SIOCAIFADDR: Protocol not supported")
        # Preemption is not a parameter of the vhid: the VNET's net.inet.carp.preempt.
        state_dir = carp_state_dir()
        carp.configure(state_dir, name, params["vhid"], params["advskew"],
                       params["password"], params["vip"], advbase=params["advbase"],
                       preempt=bool(carp.preempt(state_dir)))
        return
    rest = [w for w in words[1:] if w not in ("alias", "up")]
    if "netmask" in rest:
        i = rest.index("netmask")
        rest = rest[:i] + rest[i + 2:]
    if len(rest) != 1:
        raise Fail(f"ifconfig: {' '.join(words[1:]) or 'inet'}: bad value")
    try:
        addr, plen = prefix_of(words, rest[0])
        ipaddress.IPv4Address(addr)
    except ValueError:
        raise Fail(f"ifconfig: {rest[0]}: bad value") from None
    target = address_target(name)
    if "alias" not in words:
        # Without alias, ifconfig replaces the interface's first address.
        current = addresses(target)
        if current:
            ip("addr", "del", f"{current[0][0]}/{current[0][1]}", "dev", target)
    ip("addr", "replace", f"{addr}/{plen}", "dev", target)
    # Configuring an address brings the interface up (ifconfig's SIOCAIFADDR).
    ip("link", "set", linux_name(name), "up")


def configure(name, args):
    if args[0] == "inet":
        return inet(name, args)
    i = 0

    def value(what):
        nonlocal i
        if i + 1 >= len(args):
            raise Fail(f"ifconfig: {what}: missing argument")
        i += 1
        return args[i]

    while i < len(args):
        word = args[i]
        link = links()[linux_name(name)]
        if word in ("up", "down"):
            ip("link", "set", linux_name(name), word)
        elif word in ("descr", "description"):
            ip("link", "set", linux_name(name), "alias", value(word))
        elif word in ("addm", "deletem"):
            member = value(word)
            members = links()
            if kind(link) != "bridge":
                raise Fail(f"ifconfig: {word} {member}: Invalid argument")
            if member not in members:
                raise Fail(f"ifconfig: {word} {member}: No such file or directory")
            if word == "addm":
                if members[member].get("master"):
                    raise Fail(f"ifconfig: BRDGADD {member}: File exists")
                ip("link", "set", member, "master", name)
                if addresses(member):
                    move_addresses(member, name)
                    set_moved(member, name)
            else:
                if members[member].get("master") != name:
                    raise Fail(f"ifconfig: BRDGDEL {member}: Invalid argument")
                release(name, member)
        elif word == "name":
            new = value(word)
            if new in links():
                raise Fail("ifconfig: ioctl SIOCSIFNAME (set name): File exists")
            was_up = "UP" in link.get("flags", [])
            ip("link", "set", name, "down")
            ip("link", "set", name, "name", new)
            if was_up:
                ip("link", "set", new, "up")
            name = new
            print(new)
        elif word == "-alias":
            addr = value(word).partition("/")[0]
            target = address_target(name)
            found = [a for a in addresses(target) if a[0] == addr]
            if not found:
                raise Fail("ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address")
            ip("addr", "del", f"{found[0][0]}/{found[0][1]}", "dev", target)
        elif word == "vhid":
            vhid = value(word)
            if not vhid.isdigit() or not 1 <= int(vhid) <= 255:
                raise Fail("ifconfig: vhid must be greater than 0 and less than 256")
            if "carp" not in read_state("kld", {"loaded": []})["loaded"]:
                raise Fail("ifconfig: SIOCSVH: Protocol not supported")
            param = value("vhid")
            if param == "state":
                carp.set_state(carp_state_dir(), name, int(vhid), value("state"))
            elif param == "advskew":
                skew = value("advskew")
                if not skew.isdigit() or int(skew) > 254:
                    raise Fail("ifconfig: advskew out of range")
                carp.update(carp_state_dir(), name, int(vhid), advskew=int(skew))
            else:
                raise Fail(f"ifconfig: {param}: bad value")
        else:
            raise Fail(f"ifconfig: {word}: bad value")
        i += 1


# ---------------------------------------------------------------- listing ---

def netmask_hex(plen):
    return f"0x{(0xffffffff << (32 - plen)) & 0xffffffff:08x}"


def inet_lines(addrs, vips):
    out = []
    for addr, plen in addrs:
        if addr in vips:
            continue
        net = ipaddress.IPv4Network(f"{addr}/{plen}", strict=False)
        bcast = f" broadcast {net.broadcast_address}" if plen < 31 else ""
        out.append(f"\tinet {addr} netmask {netmask_hex(plen)}{bcast}")
    for vip, vhid in vips.items():
        # FreeBSD configures the VIP on every member (only the master answers for it).
        out.append(f"\tinet {vip} netmask 0xffffffff vhid {vhid}")
    return out


def show(only):
    have = links()
    moved = moved_state()
    carrying = set(moved.values())
    state_dir = carp_state_dir()
    for lname, link in have.items():
        name = freebsd_name(lname)
        if only and name != only and lname != only:
            continue
        k = kind(link)
        flags = link.get("flags", [])
        if k == "lo":
            flag_text = "8049<UP,LOOPBACK,RUNNING,MULTICAST>"
        elif "UP" in flags:
            flag_text = "8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST>"
        else:
            flag_text = "8802<BROADCAST,SIMPLEX,MULTICAST>"
        print(f"{name}: flags={flag_text} metric 0 mtu {16384 if k == 'lo' else link.get('mtu', 1500)}")
        if link.get("ifalias"):
            print(f"\tdescription: {link['ifalias']}")
        if k != "lo" and link.get("address"):
            print(f"\tether {link['address']}")
        entries = carp.status(state_dir, name)
        vips = {e["vip"]: e["vhid"] for e in entries}
        if lname in carrying:
            addrs = []
        else:
            source = moved.get(lname, lname)
            addrs = addresses(source)
        for line in inet_lines(addrs, vips):
            print(line)
        if entries:
            print(carp.format_status(entries), end="")
        for member, mlink in have.items():
            if mlink.get("master") == lname:
                print(f"\tmember: {member} flags=143<LEARNING,DISCOVER,AUTOEDGE,AUTOPTP>")
        group = {"epair": "epair", "bridge": "bridge", "lo": "lo"}.get(k)
        if group:
            print(f"\tgroups: {group}")
    return 0
