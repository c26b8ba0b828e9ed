"""haproxy is real: Debian's haproxy in jail namespaces; a VIP shared by two hosts."""
import urllib.request

from conftest import make_jail, ssh, write

VIP = "127.0.30.99"
PORT = 18080


def haproxy_conf(answer):
    return (f"global\n  stats socket /var/run/haproxy.sock mode 600 level admin\n"
            f"defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n"
            f"  timeout server 5s\nfrontend vip\n  bind {VIP}:{PORT}\n"
            f"  http-request return status 200 content-type text/plain string {answer}\n")


def haproxy_jail(host, name):
    root = make_jail(host, name)
    ssh(host, f"pkg -j {name} install -y haproxy && sysrc -j {name} haproxy_enable=YES", check=True)
    write(host, f"{root}/usr/local/etc/haproxy.conf", haproxy_conf(host))
    return root


def get():
    with urllib.request.urlopen(f"http://{VIP}:{PORT}/", timeout=5) as response:
        return response.read().decode()


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


def test_two_hosts_share_a_vip_and_one_survives_the_other(jail_name):
    first, second = jail_name("lab1", "hp"), jail_name("lab2", "hp")
    haproxy_jail("lab1", first)
    haproxy_jail("lab2", second)
    ssh("lab1", f"service -j {first} haproxy start", check=True)
    try:
        ssh("lab2", f"service -j {second} haproxy start", check=True)
        answers = {get() for _ in range(20)}
        assert answers <= {"lab1", "lab2"} and answers
        ssh("lab1", f"service -j {first} haproxy stop", check=True)
        assert {get() for _ in range(10)} == {"lab2"}
    finally:
        ssh("lab1", f"service -j {first} haproxy onestop")
        ssh("lab2", f"service -j {second} haproxy onestop")


def test_stopping_the_jail_stops_its_haproxy(jail_name):
    name = jail_name("lab3", "hp")
    haproxy_jail("lab3", name)
    ssh("lab3", f"service -j {name} haproxy start", check=True)
    assert get() == "lab3"
    ssh("lab3", f"service jail stop {name}", check=True)
    try:
        get()
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
