"""The networked lab: hosts and VNET jails are network namespaces on 198.51.100.0/24,
epairs are veth pairs on the hosts' bridges, traffic between hosts goes over the lab
switch only; pkg -j refuses a jail without address, route or resolver; a host reboots;
a power cut kills a host and its jails at once and power-on boots it from its files; an
unplugged host keeps running where nothing reaches it."""
import json
import socket
import subprocess
import time

from conftest import GATEWAY, HOSTS, make_vnet_jail, paths, ssh, write
from haelklab import procs

LABCTL = f"{paths.LABDIR}/labctl"
PORT = 18300
LISTENER = ("import socket, sys, time; s = socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('', {PORT})); s.listen(8); s.settimeout(60); t = time.time()\n"
            "while time.time() - t < 60:\n"
            "    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()\n")


def listen_in(host, jail, answer):
    """A TCP listener in JAIL answering ANSWER (bounded: 60 s), detached from the session."""
    ssh(host, f"setsid jexec {jail} /usr/bin/python3 -c \"{LISTENER}\" {answer} "
              f"</dev/null >/dev/null 2>&1 &", check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "LISTEN" in ssh(host, f"jexec {jail} ss -ltn").stdout and \
                f":{PORT}" in ssh(host, f"jexec {jail} ss -ltn").stdout:
            return
        time.sleep(0.2)
    raise AssertionError(f"no listener in {jail}")


def ask(address, timeout=3):
    """Connect from here (the root namespace, on the lab switch): the answer or None."""
    try:
        with socket.create_connection((address, PORT), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).decode()
    except OSError:
        return None


def ask_from_jail(host, jail, address):
    script = (f"import socket\ntry:\n    s = socket.create_connection(('{address}', {PORT}), 3)\n"
              "    print(s.recv(64).decode())\nexcept OSError as e:\n    print('ERR', e)\n")
    return ssh(host, f"jexec {jail} /usr/bin/python3 -c \"{script}\"", check=True).stdout.strip()


def packets(host, ifname):
    out = ssh(host, f"ip -j -s link show dev {ifname}", check=True).stdout
    stats = json.loads(out)[0]["stats64"]
    return stats["rx"]["packets"] + stats["tx"]["packets"]


def test_hosts_are_on_the_lab_network_with_their_own_addresses():
    for host, address in HOSTS.items():
        out = ssh(host, "ifconfig em0; route -n get default", check=True).stdout
        assert f"inet {address} netmask 0xffffff00" in out
        assert f"gateway: {GATEWAY}" in out
    # No bridge0 unless rc.conf (or someone) makes it.
    assert ssh("lab4", "ifconfig bridge0").returncode == 1


def test_an_epair_carries_traffic_between_a_jail_and_its_hosts_bridge(jail_name):
    name = jail_name("lab1", "net")
    make_vnet_jail("lab1", name, 71, "198.51.100.171")
    listen_in("lab1", name, "j1")
    before = packets("lab1", "epair71a")
    assert ask("198.51.100.171") == "j1"
    assert packets("lab1", "epair71a") > before
    out = ssh("lab1", "ifconfig bridge0", check=True).stdout
    assert "member: em0" in out and "member: epair71a" in out
    # em0 keeps its address in the listing (FreeBSD's view) and the host still answers.
    assert f"inet {HOSTS['lab1']} " in ssh("lab1", "ifconfig em0", check=True).stdout


def test_jails_on_two_hosts_reach_each_other_only_over_the_lab_network(jail_name):
    a, b = jail_name("lab1", "net"), jail_name("lab2", "net")
    make_vnet_jail("lab1", a, 72, "198.51.100.172")
    make_vnet_jail("lab2", b, 73, "198.51.100.173")
    listen_in("lab1", a, "a")
    assert ask_from_jail("lab2", b, "198.51.100.172") == "a"
    # The jail's epair off lab1's bridge: nothing else carries its traffic.
    ssh("lab1", "ifconfig bridge0 deletem epair72a", check=True)
    try:
        assert ask_from_jail("lab2", b, "198.51.100.172").startswith("ERR")
        assert ask("198.51.100.172") is None
    finally:
        ssh("lab1", "ifconfig bridge0 addm epair72a", check=True)
    deadline = time.monotonic() + 10
    while ask("198.51.100.172") != "a" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ask_from_jail("lab2", b, "198.51.100.172") == "a"


def test_a_stopped_jails_addresses_are_gone(jail_name):
    name = jail_name("lab2", "net")
    make_vnet_jail("lab2", name, 74, "198.51.100.174")
    listen_in("lab2", name, "x")
    assert ask("198.51.100.174") == "x"
    ssh("lab2", f"service jail stop {name}", check=True)
    assert ask("198.51.100.174", timeout=2) is None
    assert "198.51.100.174" not in ssh("lab2", "ip -4 addr", check=True).stdout
    assert "epair74" not in ssh("lab2", "ifconfig -l", check=True).stdout
    assert ssh("lab2", f"jexec {name} true").returncode == 1


def pkg_install(host, name):
    return ssh(host, f"pkg -j {name} install -y curl")


def test_pkg_j_refuses_a_jail_without_address_route_or_resolver(jail_name):
    host = "lab3"
    name = jail_name(host, "pkg")
    root = make_vnet_jail(host, name, 75, "198.51.100.175", start=False, resolver=False)

    def boot(rc_conf, resolver):
        ssh(host, f"jls -j {name} >/dev/null 2>&1 && service jail stop {name} >/dev/null", check=False)
        write(host, f"{root}/etc/rc.conf", rc_conf)
        write(host, f"{root}/etc/resolv.conf", resolver)
        ssh(host, f"sysrc jail_enable=YES >/dev/null && service jail start {name}", check=True)

    boot('ifconfig_epair75b_name="vnet0"\n', f"nameserver {GATEWAY}\n")
    result = pkg_install(host, name)
    assert result.returncode == 1 and "Network is unreachable" in result.stderr
    assert "Unable to update repository FreeBSD" in result.stderr
    boot('ifconfig_epair75b_name="vnet0"\nifconfig_vnet0="inet 198.51.100.175/24"\n',
         f"nameserver {GATEWAY}\n")
    result = pkg_install(host, name)
    assert result.returncode == 1 and "Network is unreachable" in result.stderr
    boot('ifconfig_epair75b_name="vnet0"\nifconfig_vnet0="inet 198.51.100.175/24"\n'
         f'defaultrouter="{GATEWAY}"\n', "# no nameserver\nsearch lab\n")
    result = pkg_install(host, name)
    assert result.returncode == 1 and "No address record" in result.stderr
    assert "curl" not in ssh(host, f"pkg -j {name} info -q").stdout
    boot('ifconfig_epair75b_name="vnet0"\nifconfig_vnet0="inet 198.51.100.175/24"\n'
         f'defaultrouter="{GATEWAY}"\n', f"nameserver {GATEWAY}\n")
    assert pkg_install(host, name).returncode == 0


def test_reboot_runs_the_hosts_rc_network_and_jails(jail_name):
    host = "lab4"
    name = jail_name(host, "boot")
    make_vnet_jail(host, name, 76, "198.51.100.176", start=False)
    before = boots_with_jail(host, name)
    try:
        ssh(host, "ifconfig bridge7 create", check=True)
        ssh(host, "kldload -n carp", check=True)
        result = subprocess.run([LABCTL, "reboot", host], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert ssh(host, f"jls -j {name} name", check=True).stdout.strip() == name
        names = ssh(host, "ifconfig -l", check=True).stdout.split()
        assert "bridge0" in names and "bridge7" not in names
        assert "member: em0" in ssh(host, "ifconfig bridge0", check=True).stdout
        # Modules are gone with the reboot, as on FreeBSD without loader.conf.
        assert ssh(host, "kldstat -q -m carp").returncode == 1
        listen_in(host, name, "booted")
        assert ask("198.51.100.176") == "booted"
    finally:
        write(host, "/etc/rc.conf", before)
        ssh(host, f"jls -j {name} >/dev/null 2>&1 && service jail stop {name}")
        ssh(host, "ifconfig bridge0 >/dev/null 2>&1 && ifconfig bridge0 destroy")


def labctl(*args):
    result = subprocess.run([LABCTL, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def host_pids(host):
    return procs.pids_of_host(f"{paths.STATE}/hosts/{host}")


def sshd_answers(host):
    return subprocess.run(["timeout", "3", "bash", "-c",
                           f"exec 3<>/dev/tcp/{HOSTS[host]}/22"]).returncode == 0


def boots_with_jail(host, name):
    """HOST's rc.conf makes bridge0 and starts jail NAME at boot; the old rc.conf."""
    before = ssh(host, "cat /etc/rc.conf", check=True).stdout
    write(host, "/etc/rc.conf", before + 'cloned_interfaces="bridge0"\n'
          'ifconfig_bridge0="addm em0 up"\njail_enable="YES"\n'
          f'jail_list="{name}"\n')
    return before


def test_a_power_cut_kills_the_host_and_its_jails_at_once_and_power_on_boots_them(jail_name):
    host = "lab4"
    name = jail_name(host, "cut")
    make_vnet_jail(host, name, 78, "198.51.100.178")
    before = boots_with_jail(host, name)
    try:
        listen_in(host, name, "first")
        assert ask("198.51.100.178") == "first"
        others = host_pids("lab3")
        assert host_pids(host) and others
        labctl("power-off", host)
        # Nothing of the host is left: its sshd, sessions, jail, listener, holders.
        assert host_pids(host) == []
        assert ask("198.51.100.178", timeout=2) is None
        assert not sshd_answers(host)
        assert "STOPPED" in subprocess.run([LABCTL, "status"], capture_output=True,
                                           text=True).stdout
        # The other hosts did not notice.
        assert set(others) <= set(host_pids("lab3"))
        labctl("power-on", host)
        # Booted from its files: rc.conf's bridge, and the jail rc.conf lists.
        assert ssh(host, f"jls -j {name} name", check=True).stdout.strip() == name
        assert "member: em0" in ssh(host, "ifconfig bridge0", check=True).stdout
        listen_in(host, name, "again")
        assert ask("198.51.100.178") == "again"
    finally:
        write(host, "/etc/rc.conf", before)
        ssh(host, f"jls -j {name} >/dev/null 2>&1 && service jail stop {name}")
        ssh(host, "ifconfig bridge0 >/dev/null 2>&1 && ifconfig bridge0 destroy")


def test_an_unplugged_host_keeps_running_where_nothing_reaches_it(jail_name):
    host = "lab4"
    name = jail_name(host, "cable")
    make_vnet_jail(host, name, 79, "198.51.100.179")
    listen_in(host, name, "here")
    assert ask("198.51.100.179") == "here"
    running = host_pids(host)
    labctl("unplug", host)
    try:
        assert ask("198.51.100.179", timeout=2) is None
        assert not sshd_answers(host)
        status = subprocess.run([LABCTL, "status"], capture_output=True, text=True)
        assert status.returncode == 1 and "cable UNPLUGGED" in status.stdout
        # A partition, not a crash: every process of the host still runs.
        assert set(running) <= set(host_pids(host))
    finally:
        labctl("plug", host)
    deadline = time.monotonic() + 10
    while ask("198.51.100.179") != "here" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ask("198.51.100.179") == "here"
    assert sshd_answers(host)


def test_a_reboot_leaves_other_hosts_jails_running_whatever_ids_it_recorded(jail_name):
    # The kernel reuses a mount namespace's id once the namespace is gone, so a host's
    # run/namespaces may list ids that now belong to another host's jail: here lab3's
    # live ones, written into lab4's record. Rebooting lab4 must not touch them.
    other = "lab3"
    name = jail_name(other, "stays")
    make_vnet_jail(other, name, 77, "198.51.100.177")
    listen_in(other, name, "alive")
    runs = f"{paths.STATE}/hosts"
    with open(f"{runs}/{other}/run/namespaces") as f:
        theirs = f.read()
    with open(f"{runs}/lab4/run/namespaces", "a") as f:
        f.write(theirs)
    result = subprocess.run([LABCTL, "reboot", "lab4"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert ask("198.51.100.177") == "alive"


def test_an_epair_has_the_same_macs_each_time_it_is_created_as_ether_gen_addr_gives():
    def macs():
        out = ssh("lab4", "ifconfig epair7 create >/dev/null && ip -j link show; "
                          "ifconfig epair7a destroy", check=True).stdout
        found = {link["ifname"]: link["address"] for link in json.loads(out)}
        return found["epair7a"], found["epair7b"]
    first = macs()
    assert first == macs()
    assert first[0] != first[1]
    assert all(mac.startswith("58:9c:fc:") for mac in first)
