"""ifconfig: the interface forms haelk uses, recorded in the host's state.

Accepted: listing (`ifconfig`, `-a`, `-l`, `IF`), `epair[N] create [options]` (prints epairNa
and applies the options to it),
`bridge[N] create`, `IF destroy`, and on an existing interface any sequence of
`up`, `down`, `descr|description TEXT`, `addm IF`, `deletem IF`, `name NEW`,
`vhid N state master|backup`, `vhid N advskew N`, or `inet ADDR[/LEN] [vhid N
advskew N pass P] [alias|-alias]` (the forms a jail's /etc/rc gives it). Anything else fails as
ifconfig(8) would. Interfaces moved into a jail (vnet.interface) live in that
jail's table and are seen from jexec, not from the host.
"""
import re

from haelklab.freebsd.common import Fail, run_main, locked_state, read_state, current_jail

USAGE = ("usage: ifconfig [-j jail] [-DkLmn] [-f type:format] interface address_family\n"
         "                [address [dest_address]] [parameters]\n"
         "       ifconfig [-j jail] interface create\n"
         "       ifconfig [-j jail] -a [-dDkLmuv] [-f type:format] [-G groupname]\n"
         "                [-g groupname] [address_family]\n"
         "       ifconfig -C\n"
         "       ifconfig -l [-du] [-g groupname] [address_family]\n"
         "       ifconfig [-j jail] [-dkLmuv] [-f type:format]")


def default_state():
    return {"host": {"lo0": new_iface("lo"), "bridge0": new_iface("bridge", up=True)},
            "jails": {}}


def new_iface(kind, up=False):
    return {"kind": kind, "up": up, "descr": "", "members": [], "carp": {}, "inet": []}


def table(state, jail):
    if jail is None:
        return state["host"]
    return state["jails"].setdefault(jail, {"lo0": new_iface("lo")})


def main(argv):
    return run_main(_main, argv)


def _main(argv):
    jail = current_jail()
    if not argv or argv == ["-a"]:
        return show(read_state("ifconfig", default_state()), jail, None)
    if argv == ["-l"]:
        print(" ".join(table(read_state("ifconfig", default_state()), jail)))
        return 0
    if argv[0].startswith("-"):
        raise Fail(USAGE, 1)
    name, rest = argv[0], argv[1:]
    with locked_state("ifconfig", default_state()) as state:
        ifaces = table(state, jail)
        if rest[:1] == ["create"]:
            # As ifconfig(8): what follows `create` configures the new interface
            # (for an epair, its `a` side): `ifconfig epair0 create up`.
            created = create(ifaces, name, jail)
            if rest[1:]:
                configure(state, ifaces, created, rest[1:])
            return 0
        if name not in ifaces:
            raise Fail(f"ifconfig: interface {name} does not exist")
        if not rest:
            return show(state, jail, name)
        if rest == ["destroy"]:
            return destroy(state, ifaces, name)
        configure(state, ifaces, name, rest)
    return 0


def create(ifaces, name, jail):
    m = re.fullmatch(r"(epair|bridge)(\d*)", name)
    if jail is not None or not m:
        raise Fail("ifconfig: SIOCIFCREATE2: Invalid argument")
    kind, unit = m.group(1), m.group(2)
    if unit == "":
        unit = 0
        while f"{kind}{unit}" in ifaces or f"{kind}{unit}a" in ifaces:
            unit += 1
    if kind == "epair":
        if f"epair{unit}a" in ifaces or f"epair{unit}b" in ifaces:
            raise Fail("ifconfig: SIOCIFCREATE2: File exists")
        ifaces[f"epair{unit}a"] = new_iface("epair")
        ifaces[f"epair{unit}b"] = new_iface("epair")
        print(f"epair{unit}a")
        return f"epair{unit}a"
    if f"bridge{unit}" in ifaces:
        raise Fail("ifconfig: SIOCIFCREATE2: File exists")
    ifaces[f"bridge{unit}"] = new_iface("bridge")
    print(f"bridge{unit}")
    return f"bridge{unit}"


def destroy(state, ifaces, name):
    kind = ifaces[name]["kind"]
    if kind == "epair":
        m = re.fullmatch(r"epair(\d+)[ab]", name)
        if not m:
            raise Fail("ifconfig: SIOCIFDESTROY: Invalid argument")
        for side in "ab":
            for tbl in [state["host"], *state["jails"].values()]:
                for ifname in list(tbl):
                    if tbl[ifname].get("pair") == f"epair{m.group(1)}{side}" or ifname == f"epair{m.group(1)}{side}":
                        del tbl[ifname]
    elif kind == "bridge":
        del ifaces[name]
    else:
        raise Fail("ifconfig: SIOCIFDESTROY: Invalid argument")
    for tbl in [state["host"], *state["jails"].values()]:
        for iface in tbl.values():
            iface["members"] = [m for m in iface["members"] if m in state["host"]]
    return 0


def configure(state, ifaces, name, args):
    iface = ifaces[name]
    i = 0

    def value(what):
        nonlocal i
        if i + 1 >= len(args):
            raise Fail(f"ifconfig: {what}: missing argument")
        i += 1
        return args[i]

    while i < len(args):
        word = args[i]
        if word == "inet":
            inet(iface, args[i + 1:])
            return
        if word == "up":
            iface["up"] = True
        elif word == "down":
            iface["up"] = False
        elif word in ("descr", "description"):
            iface["descr"] = value(word)
        elif word in ("addm", "deletem"):
            member = value(word)
            if iface["kind"] != "bridge":
                raise Fail(f"ifconfig: {word} {member}: Invalid argument")
            if member not in ifaces:
                raise Fail(f"ifconfig: {word} {member}: No such file or directory")
            if word == "addm":
                if member in iface["members"]:
                    raise Fail(f"ifconfig: BRDGADD {member}: File exists")
                iface["members"].append(member)
            else:
                if member not in iface["members"]:
                    raise Fail(f"ifconfig: BRDGDEL {member}: Invalid argument")
                iface["members"].remove(member)
        elif word == "name":
            new = value(word)
            if new in ifaces:
                raise Fail("ifconfig: ioctl SIOCSIFNAME (set name): File exists")
            ifaces[new] = ifaces.pop(name)
            ifaces[new].setdefault("pair", name)
            name, iface = new, ifaces[new]
            print(new)
        elif word == "vhid":
            vhid = value(word)
            if not vhid.isdigit() or not 1 <= int(vhid) <= 255:
                raise Fail(f"ifconfig: vhid must be greater than 0 and less than 256")
            if "carp" not in read_state("kld", {"loaded": []})["loaded"]:
                raise Fail("ifconfig: SIOCSVH: Protocol not supported")
            param = value("vhid")
            if param == "state":
                new_state = value("state")
                if new_state.lower() not in ("master", "backup"):
                    raise Fail(f"ifconfig: unknown state")
                if vhid not in iface["carp"]:
                    raise Fail("ifconfig: SIOCSVH: Invalid argument")
                iface["carp"][vhid]["state"] = new_state.upper()
            elif param == "advskew":
                skew = value("advskew")
                if not skew.isdigit() or int(skew) > 254:
                    raise Fail("ifconfig: advskew out of range")
                iface["carp"].setdefault(vhid, {"state": "BACKUP", "advskew": 0})["advskew"] = int(skew)
            else:
                raise Fail(f"ifconfig: {param}: bad value")
        else:
            raise Fail(f"ifconfig: {word}: bad value")
        i += 1


def show(state, jail, only):
    ifaces = table(state, jail)
    for name, iface in ifaces.items():
        if only and name != only:
            continue
        flags = "8049<UP,LOOPBACK,RUNNING,MULTICAST>" if iface["kind"] == "lo" else (
            "8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST>" if iface["up"]
            else "8802<BROADCAST,SIMPLEX,MULTICAST>")
        print(f"{name}: flags={flags} metric 0 mtu {16384 if iface['kind'] == 'lo' else 1500}")
        if iface["descr"]:
            print(f"\tdescription: {iface['descr']}")
        for addr in iface.get("inet", []):
            print(f"\tinet {addr}")
        for vhid, carp in sorted(iface["carp"].items(), key=lambda kv: int(kv[0])):
            print(f"\tcarp: {carp['state']} vhid {vhid} advbase 1 advskew {carp['advskew']}")
        for member in iface["members"]:
            print(f"\tmember: {member} flags=143<LEARNING,DISCOVER,AUTOEDGE,AUTOPTP>")
        print(f"\tgroups: {iface['kind']}")
    return 0


def move_to_jail(jail, ifname):
    """Jail start with vnet.interface: IF moves into the jail's table as it is (down,
    no address); the jail's /etc/rc (rc.py) renames and configures it."""
    with locked_state("ifconfig", default_state()) as state:
        if ifname not in state["host"]:
            raise Fail(f"jail: {jail}: vnet.interface {ifname}: interface does not exist")
        iface = state["host"].pop(ifname)
        state["jails"][jail] = {"lo0": new_iface("lo")}
        iface["pair"] = ifname
        iface["up"] = False
        state["jails"][jail][ifname] = iface


def inet(iface, words):
    """`ifconfig IF inet ADDR[/LEN] [netmask M] [vhid N advskew N advbase N pass P]
    [alias|-alias]`: the address (a CARP VIP with vhid) is recorded on IF."""
    addr, alias, remove, carp = None, False, False, {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("alias", "add"):
            alias = True
        elif word in ("-alias", "delete"):
            remove = True
        elif word in ("vhid", "advskew", "advbase", "pass", "netmask", "broadcast"):
            if i + 1 >= len(words):
                raise Fail(f"ifconfig: {word}: missing argument")
            carp[word] = words[i + 1]
            i += 1
        elif addr is None and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?", word):
            addr = word
        else:
            raise Fail(f"ifconfig: {word}: bad value")
        i += 1
    if addr is None:
        raise Fail("ifconfig: inet: missing address")
    if "/" not in addr:
        addr += "/32" if "vhid" in carp else "/8"
    if remove:
        if addr not in iface["inet"]:
            raise Fail("ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address")
        iface["inet"].remove(addr)
        return
    if "vhid" in carp:
        vhid = carp["vhid"]
        if not vhid.isdigit() or not 1 <= int(vhid) <= 255:
            raise Fail("ifconfig: vhid must be greater than 0 and less than 256")
        if "carp" not in read_state("kld", {"loaded": []})["loaded"]:
            raise Fail("ifconfig: SIOCSVH: Protocol not supported")
        skew = carp.get("advskew", "0")
        if not skew.isdigit() or int(skew) > 254:
            raise Fail("ifconfig: advskew out of range")
        iface["carp"][vhid] = {"state": "MASTER" if int(skew) == 0 else "BACKUP",
                               "advskew": int(skew)}
    if alias or not iface["inet"]:
        if addr not in iface["inet"]:
            iface["inet"].append(addr)
    else:
        iface["inet"][0] = addr  # without `alias`, the first address is replaced


def release_from_jail(jail):
    with locked_state("ifconfig", default_state()) as state:
        jtable = state["jails"].pop(jail, {})
        for iface in jtable.values():
            if iface["kind"] == "epair" and iface.get("pair"):
                iface["carp"], iface["inet"] = {}, []
                state["host"][iface["pair"]] = iface
