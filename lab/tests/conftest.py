"""Helpers of the lab self-tests: they run against a lab that is up (lab/labctl up),
except the modules marked `standalone`, which need no lab (lab/run-selftests --standalone)."""
import os
import shlex
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from haelklab import paths  # noqa: E402

HOSTS = {"lab1": "198.51.100.101", "lab2": "198.51.100.102", "lab3": "198.51.100.103",
         "lab4": "198.51.100.104"}
GATEWAY = "198.51.100.1"
SSH = ["ssh", "-i", paths.CLIENT_KEY, "-o", f"UserKnownHostsFile={paths.KNOWN_HOSTS}",
       "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "standalone: needs no lab (own network namespaces, loopback, temporary "
                   "directories), so it may run beside the lab's tests")


def ssh(host, command, check=False, timeout=60):
    """Run COMMAND (a shell string) on a lab host as root over real ssh."""
    result = subprocess.run(SSH + [f"root@{HOSTS[host]}", command], capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{host}: {command!r} failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}")
    return result


def jail_root(host, name):
    return f"{paths.MNT}/{host}/{name}"


def make_jail(host, name, conf_body=None, start=True):
    """A jail with its own dataset and the lab's base, configured by jail.conf.d."""
    root = jail_root(host, name)
    ssh(host, f"zfs create -p -o mountpoint={paths.MNT}/{host} {host}/jails && "
              f"zfs create {host}/jails/{name} && "
              f"tar -xf {paths.BASE_TXZ} -C {root} --unlink", check=True)
    body = conf_body if conf_body is not None else 'path = "/var/tmp/haelk-lab/mnt/HOST/$name";\n' \
        '  host.hostname = "$name";\n  exec.start = "/bin/sh /etc/rc";\n  mount.devfs;\n'
    write(host, f"/etc/jail.conf.d/{name}.conf", f"{name} {{\n  {body.replace('HOST', host)}}}\n")
    if start:
        ssh(host, f"sysrc jail_enable=YES >/dev/null && service jail start {name}", check=True)
    return root


def ensure_bridge(host):
    """bridge0 with em0 on it, as a host's rc.conf (cloned_interfaces) would make it."""
    ssh(host, "ifconfig bridge0 >/dev/null 2>&1 || "
              "{ ifconfig bridge0 create >/dev/null && ifconfig bridge0 addm em0 up; }", check=True)


def vnet_body(epair):
    """A VNET jail's jail.conf body on bridge0 through epairN, as haelk writes it."""
    return ('path = "/var/tmp/haelk-lab/mnt/HOST/$name";\n  host.hostname = "$name";\n'
            f'  vnet;\n  vnet.interface = "epair{epair}b";\n'
            f'  exec.prestart = "/sbin/ifconfig epair{epair} create up";\n'
            f'  exec.prestart += "/sbin/ifconfig bridge0 addm epair{epair}a up";\n'
            f'  exec.poststop = "/sbin/ifconfig epair{epair}a destroy";\n'
            '  exec.start = "/bin/sh /etc/rc";\n  mount.devfs;\n')


def make_vnet_jail(host, name, epair, ip, rc_extra="", start=True, resolver=True):
    """A VNET jail on the host's bridge0 with IP/24 on vnet0 and the lab gateway as its
    default router (its rc.conf), and a resolv.conf (pkg -j needs one)."""
    ensure_bridge(host)
    root = make_jail(host, name, conf_body=vnet_body(epair), start=False)
    write(host, f"{root}/etc/rc.conf",
          f'ifconfig_epair{epair}b_name="vnet0"\nifconfig_vnet0="inet {ip}/24"\n'
          f'defaultrouter="{GATEWAY}"\n{rc_extra}')
    if resolver:
        write(host, f"{root}/etc/resolv.conf", f"nameserver {GATEWAY}\n")
    if start:
        ssh(host, f"kldload -n carp && sysrc jail_enable=YES >/dev/null && "
                  f"service jail start {name}", check=True)
    return root


def write(host, path, text):
    result = subprocess.run(SSH + [f"root@{HOSTS[host]}", f"cat > {shlex.quote(path)}"],
                            input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def jail_name():
    """A unique jail name; the jail (if started) and its dataset are removed afterwards."""
    made = []

    def new(host, prefix="t"):
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        made.append((host, name))
        return name
    yield new
    for host, name in made:
        # zfs-fuse may call a dataset busy for a few seconds after its jail stopped.
        ssh(host, f"jls -j {name} >/dev/null 2>&1 && jail -r {name}; "
                  f"for i in 1 2 3 4 5 6 7 8 9 10; do "
                  f"zfs list {host}/jails/{name} >/dev/null 2>&1 || break; "
                  f"zfs destroy -r {host}/jails/{name} 2>/dev/null || sleep 1; done; "
                  f"rm -f /etc/jail.conf.d/{name}.conf")
