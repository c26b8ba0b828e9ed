"""route(8): the default route a host or jail's rc sets, recorded in the host's state.

Accepted: `route [-n] [-q] add [-inet] default GW`, `route [-n] [-q] delete [-inet]
default`, `route -n get default`. The gateway must lie in the subnet of an address
on an interface that is up in the same table (the host's, or the jail's when run in
a jail), else the kernel's answer: Network is unreachable. Anything else is refused
as not simulated. A jail's routes go with the jail (jail -r).
"""
import ipaddress

from haelklab.freebsd import ifconfig
from haelklab.freebsd.common import Fail, current_jail, locked_state, read_state, run_main

USAGE = "usage: route [-46dnqtv] command [[modifiers] args]"


def main(argv):
    return run_main(_main, argv)


def table_name():
    return current_jail() or "-host-"


def connected(jail, gateway):
    """The interface whose subnet holds GATEWAY, or None."""
    state = read_state("ifconfig", ifconfig.default_state())
    ifaces = state["host"] if jail is None else state["jails"].get(jail, {})
    for name, iface in ifaces.items():
        if not iface.get("up"):
            continue
        for addr in iface.get("inet", []):
            try:
                if gateway in ipaddress.ip_interface(addr).network:
                    return name
            except ValueError:
                continue
    return None


def _main(argv):
    args = [a for a in argv if a not in ("-n", "-q", "-inet", "-4")]
    if not args:
        raise Fail(USAGE, 64)
    command, rest = args[0], args[1:]
    if command == "add":
        if len(rest) != 2 or rest[0] != "default":
            raise Fail(f"route: {' '.join(argv)}: not simulated by the haelk lab (only the default route)")
        try:
            gateway = ipaddress.ip_address(rest[1])
        except ValueError:
            raise Fail(f"route: bad address: {rest[1]}") from None
        jail = current_jail()
        iface = connected(jail, gateway)
        if iface is None:
            raise Fail("route: writing to routing socket: Network is unreachable\n"
                       f"add net default: gateway {gateway} fib 0: Network is unreachable")
        with locked_state("routes", {}) as state:
            if table_name() in state:
                raise Fail("route: writing to routing socket: File exists\n"
                           f"add net default: gateway {gateway} fib 0: route already in table")
            state[table_name()] = {"gateway": str(gateway), "interface": iface}
        print(f"add net default: gateway {gateway}")
        return 0
    if command == "delete":
        if rest != ["default"]:
            raise Fail(f"route: {' '.join(argv)}: not simulated by the haelk lab (only the default route)")
        with locked_state("routes", {}) as state:
            old = state.pop(table_name(), None)
        if old is None:
            raise Fail("route: writing to routing socket: No such process\n"
                       "delete net default: not in table")
        print(f"delete net default: gateway {old['gateway']}")
        return 0
    if command == "get":
        if rest != ["default"]:
            raise Fail(f"route: {' '.join(argv)}: not simulated by the haelk lab (only the default route)")
        route = read_state("routes", {}).get(table_name())
        if route is None:
            raise Fail("route: route has not been found")
        print(f"   route to: default\ndestination: default\n       mask: default\n"
              f"    gateway: {route['gateway']}\n  interface: {route['interface']}\n"
              f"      flags: <UP,GATEWAY,DONE,STATIC>")
        return 0
    raise Fail(f"route: {command}: not simulated by the haelk lab\n{USAGE}", 64)


def forget(jail):
    """jail -r: the jail's routing table goes with its VNET."""
    with locked_state("routes", {}) as state:
        state.pop(jail, None)
