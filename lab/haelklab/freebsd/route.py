"""route(8): the default route of the caller's network namespace (host or VNET jail).

`route add default GW`, `route delete default`, `route [-n] get default`, with route(8)'s
messages; anything else fails. The route itself is the kernel's (`ip route`).
"""
import ipaddress
import json
import subprocess

from haelklab.freebsd.common import EX_USAGE, Fail, run_main

USAGE = "usage: route [-46dnqtv] command [[modifiers] args]"


def default_route():
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "default"],
                         capture_output=True, text=True).stdout.strip()
    found = json.loads(out) if out else []
    return found[0] if found else None


def main(argv):
    return run_main(_main, argv)


def _main(argv):
    args = [a for a in argv if a not in ("-n", "-q", "-4")]
    if any(a.startswith("-") for a in args) or not args:
        raise Fail(USAGE, EX_USAGE)
    cmd, rest = args[0], args[1:]
    if cmd == "add" and len(rest) == 2 and rest[0] == "default":
        gateway = rest[1]
        try:
            ipaddress.IPv4Address(gateway)
        except ValueError:
            raise Fail(f"route: {gateway}: bad address") from None
        if default_route():
            raise Fail("route: writing to routing socket: File exists\n"
                       f"add net default: gateway {gateway} fib 0: route already in table")
        result = subprocess.run(["ip", "route", "add", "default", "via", gateway],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise Fail("route: writing to routing socket: Network is unreachable\n"
                       f"add net default: gateway {gateway} fib 0: Network is unreachable")
        print(f"add net default: gateway {gateway}")
        return 0
    if cmd == "delete" and rest == ["default"]:
        if not default_route():
            raise Fail("route: writing to routing socket: No such process\n"
                       "delete net default: not in table")
        subprocess.run(["ip", "route", "del", "default"], capture_output=True)
        print("delete net default")
        return 0
    if cmd == "get" and rest == ["default"]:
        route = default_route()
        if not route:
            raise Fail("route: route has not been found")
        print(f"   route to: default\ndestination: default\n       mask: default\n"
              f"    gateway: {route.get('gateway', '-')}\n  interface: {route.get('dev')}\n"
              "      flags: <UP,GATEWAY,DONE,STATIC>")
        return 0
    raise Fail(f"route: haelk lab: route {' '.join(argv)} is not simulated")
