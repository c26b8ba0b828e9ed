"""haproxy is real: Debian's haproxy in VNET jails on the lab network; a CARP VIP that
two hosts' haproxies front, answered by the master only and moving with it."""
import time
import urllib.request

from conftest import make_vnet_jail, ssh, write

# The jails' own addresses (lab1 .151, lab2 .152, lab3 .153) and a CARP VIP.
JAIL_IP = {"lab1": "198.51.100.151", "lab2": "198.51.100.152", "lab3": "198.51.100.153"}
CARP_VIP = "198.51.100.99"
PORT = 18080


def haproxy_conf(answer, address="*"):
    return (f"global\n  stats socket /var/run/haproxy.sock mode 600 level admin\n"
            f"defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n"
            f"  timeout server 5s\nfrontend vip\n  bind {address}:{PORT}\n"
            f"  http-request return status 200 content-type text/plain string {answer}\n")


def haproxy_jail(host, name, rc_extra="", address="*"):
    root = make_vnet_jail(host, name, 51, JAIL_IP[host], rc_extra=rc_extra)
    ssh(host, f"pkg -j {name} install -y haproxy && sysrc -j {name} haproxy_enable=YES", check=True)
    write(host, f"{root}/usr/local/etc/haproxy.conf", haproxy_conf(host, address))
    return root


def get(address=None, host="lab1"):
    address = address or JAIL_IP[host]
    with urllib.request.urlopen(f"http://{address}:{PORT}/", timeout=3) as response:
        return response.read().decode()


def carp_states(host, name):
    out = ssh(host, f"jexec {name} ifconfig vnet0", check=True).stdout
    return [line.split()[1] for line in out.splitlines() if line.strip().startswith("carp:")]


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


def test_configtest_rejects_a_broken_config(jail_name):
    name = jail_name("lab1", "hp")
    root = haproxy_jail("lab1", name)
    assert ssh("lab1", f"service -j {name} haproxy configtest").returncode == 0
    write("lab1", f"{root}/usr/local/etc/haproxy.conf", "frontend broken\n  bind :x\n  bogus_kw 1\n")
    result = ssh("lab1", f"service -j {name} haproxy configtest")
    assert result.returncode == 1 and "NOT valid" in result.stderr
    assert ssh("lab1", f"service -j {name} haproxy start").returncode == 1
    assert ssh("lab1", f"service -j {name} haproxy status").returncode == 1


def test_haproxy_config_is_honoured(jail_name):
    name = jail_name("lab1", "hp")
    root = haproxy_jail("lab1", name)
    ssh("lab1", f"mv {root}/usr/local/etc/haproxy.conf {root}/usr/local/etc/other.conf && "
                f"sysrc -j {name} haproxy_config=/usr/local/etc/other.conf", check=True)
    ssh("lab1", f"service -j {name} haproxy start", check=True)
    try:
        assert get() == "lab1"
        ssh("lab1", f"service -j {name} haproxy reload", check=True)
        assert "is running as pid" in ssh("lab1", f"service -j {name} haproxy status", check=True).stdout
        assert get() == "lab1"
    finally:
        ssh("lab1", f"service -j {name} haproxy stop")


def test_a_carp_vip_is_answered_by_the_master_only_and_moves_when_its_jail_stops(jail_name):
    first, second = jail_name("lab1", "hp"), jail_name("lab2", "hp")
    alias = 'ifconfig_vnet0_alias0="inet vhid 9 advskew {} pass labvip alias %s/32"\n' % CARP_VIP
    haproxy_jail("lab1", first, alias.format(0), CARP_VIP)
    haproxy_jail("lab2", second, alias.format(100), CARP_VIP)
    # Both bind the VIP (the backup too: FreeBSD has it configured on every member).
    ssh("lab1", f"service -j {first} haproxy start", check=True)
    ssh("lab2", f"service -j {second} haproxy start", check=True)
    try:
        assert wait_for(lambda: sorted(carp_states("lab1", first) + carp_states("lab2", second))
                        == ["BACKUP", "MASTER"], 15)
        master = "lab1" if carp_states("lab1", first) == ["MASTER"] else "lab2"
        assert {get(CARP_VIP) for _ in range(10)} == {master}
        # Only the master holds the address in its kernel.
        held = [h for h, n in (("lab1", first), ("lab2", second))
                if CARP_VIP in ssh(h, f"jexec {n} ip -4 addr show dev vnet0", check=True).stdout]
        assert held == [master]
        ssh(master, f"service jail stop {first if master == 'lab1' else second}", check=True)
        other = "lab2" if master == "lab1" else "lab1"

        def answered_by_other():
            try:
                return get(CARP_VIP) == other
            except OSError:
                return False
        assert wait_for(answered_by_other, 15)
    finally:
        ssh("lab1", f"jls -j {first} >/dev/null 2>&1 && service -j {first} haproxy onestop")
        ssh("lab2", f"jls -j {second} >/dev/null 2>&1 && service -j {second} haproxy onestop")


def test_stopping_the_jail_stops_its_haproxy(jail_name):
    name = jail_name("lab3", "hp")
    haproxy_jail("lab3", name)
    ssh("lab3", f"service -j {name} haproxy start", check=True)
    assert get(host="lab3") == "lab3"
    ssh("lab3", f"service jail stop {name}", check=True)
    try:
        get(host="lab3")
        raise AssertionError("haproxy still answers after its jail stopped")
    except OSError:
        pass


def test_rc_subr_gates_what_it_gates(jail_name):
    """status is never gated; stop of a running service is not; configtest is."""
    name = jail_name("lab1", "hp")
    root = haproxy_jail("lab1", name)
    write("lab1", f"{root}/usr/local/etc/haproxy.conf", haproxy_conf("gate"))
    ssh("lab1", f"service -j {name} haproxy start", check=True)
    ssh("lab1", f"sysrc -j {name} haproxy_enable=NO", check=True)
    status = ssh("lab1", f"service -j {name} haproxy status")
    assert status.returncode == 0 and "haproxy is running as pid" in status.stdout
    # rc.subr's gate says why on stdout and exits 0 without doing anything.
    result = ssh("lab1", f"service -j {name} haproxy configtest")
    assert result.returncode == 0 and "Cannot 'configtest' haproxy" in result.stdout
    ssh("lab1", f"service -j {name} haproxy stop", check=True)
    status = ssh("lab1", f"service -j {name} haproxy status")
    assert status.returncode == 1 and "haproxy is not running." in status.stdout
    result = ssh("lab1", f"service -j {name} haproxy stop")
    assert result.returncode == 0 and "Cannot 'stop' haproxy" in result.stdout


def test_stats_socket_answers_nc_inside_the_jail(jail_name):
    """haelk reads HAProxy's state with FreeBSD's nc -U inside the jail."""
    name = jail_name("lab1", "hp")
    root = haproxy_jail("lab1", name)
    write("lab1", f"{root}/usr/local/etc/haproxy.conf", haproxy_conf("stats") + (
        "backend es_http\n  balance roundrobin\n"
        "  server es1 127.0.31.1:19200\n  server es2 127.0.31.2:19200\n"))
    ssh("lab1", f"service -j {name} haproxy start", check=True)
    try:
        out = ssh("lab1", f"jexec {name} sh -c 'echo \"show stat\" | nc -U /var/run/haproxy.sock'",
                  check=True).stdout
        lines = out.splitlines()
        assert lines[0].startswith("# pxname,svname,qcur,qmax,scur,smax,slim,stot,")
        rows = {tuple(line.split(",")[:2]) for line in lines[1:] if line}
        assert {("es_http", "es1"), ("es_http", "es2"), ("es_http", "BACKEND"),
                ("vip", "FRONTEND")} <= rows
        # The socket is the jail's: the host has none at that path.
        assert ssh("lab1", "test -S /var/run/haproxy.sock").returncode == 1
        assert ssh("lab1", f"test -S {root}/var/run/haproxy.sock").returncode == 0
    finally:
        ssh("lab1", f"service -j {name} haproxy stop")
