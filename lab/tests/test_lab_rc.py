"""rc(8) in lab jails: `service jail start` runs the jail's exec.start (/etc/rc) in the
jail - the network from its rc.conf, then its enabled installed services in rcorder
order - and `jail -r` its exec.stop (/etc/rc.shutdown), which stops them in reverse."""
import random
import re

from conftest import GATEWAY, ensure_bridge, make_jail, ssh, write

VNET_CONF = ('path = "/var/tmp/haelk-lab/mnt/HOST/$name";\n  host.hostname = "$name";\n'
             '  vnet;\n  vnet.interface = "epair{n}b";\n'
             '  exec.prestart = "/sbin/ifconfig epair{n} create up";\n'
             '  exec.prestart += "/sbin/ifconfig bridge0 addm epair{n}a up";\n'
             '  exec.poststop = "/sbin/ifconfig epair{n}a destroy";\n'
             '  exec.start = "/bin/sh /etc/rc";\n  exec.stop = "/bin/sh /etc/rc.shutdown";\n'
             '  exec.clean;\n  exec.consolelog = "/var/log/jail_${name}_console.log";\n')


def es_yml(name, ip):
    return (f"cluster.name: rc\nnode.name: {name}\nnode.roles: [master, data]\n"
            f"network.host: {ip}\nhttp.port: 9200\ntransport.port: 9300\n"
            f"discovery.seed_hosts: [\"{ip}:9300\"]\ncluster.initial_master_nodes: [\"{name}\"]\n"
            f"path.data: /var/db/elasticsearch\npath.logs: /var/log/elasticsearch\n"
            f"xpack.ml.enabled: false\nxpack.security.enabled: false\n")


def stack_jail(jail_name, enable):
    """A stopped VNET jail with elasticsearch8, kibana8 and haproxy installed, each
    configured; rc.conf enables those in ENABLE. Returns (name, root, ips)."""
    name = jail_name("lab1", "rc")
    n = random.randint(100, 199)
    ip = f"198.51.100.{200 + n % 50}"
    ensure_bridge("lab1")
    root = make_jail("lab1", name)  # started once (no rc yet) to install the packages
    ssh("lab1", f"pkg -j {name} install -y elasticsearch8 kibana8 haproxy && jail -r {name}",
        check=True)
    write("lab1", f"/etc/jail.conf.d/{name}.conf",
          f"{name} {{\n  {VNET_CONF.replace('{n}', str(n)).replace('HOST', 'lab1')}}}\n")
    es_ip = kb_ip = hap_ip = ip
    write("lab1", f"{root}/usr/local/etc/elasticsearch/elasticsearch.yml", es_yml(name, es_ip))
    write("lab1", f"{root}/usr/local/etc/kibana/kibana.yml",
          f"server.host: {kb_ip}\nserver.name: {name}\nelasticsearch.hosts: [\"http://{es_ip}:9200\"]\n")
    write("lab1", f"{root}/usr/local/etc/haproxy.conf",
          f"defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
          f"listen kb\n  bind {hap_ip}:5602\n  server kb1 {kb_ip}:5601\n")
    rc = (f'ifconfig_epair{n}b_name="vnet0"\nifconfig_vnet0="inet {ip}/24"\n'
          f'defaultrouter="{GATEWAY}"\n')
    rc += "".join(f'{svc}_enable="YES"\n' for svc in enable)
    write("lab1", f"{root}/etc/rc.conf", rc)
    return name, root


def console(name):
    return ssh("lab1", f"cat /var/log/jail_{name}_console.log", check=True).stdout


def status(name, svc):
    return ssh("lab1", f"service -j {name} {svc} status")


def test_jail_start_runs_rc_network_then_enabled_services_and_rc_shutdown_stops_them(jail_name):
    name, root = stack_jail(jail_name, ["elasticsearch", "kibana", "haproxy"])
    try:
        ssh("lab1", f"service jail start {name}", check=True, timeout=120)
        # The network from the jail's rc.conf, through ifconfig and route.
        out = ssh("lab1", f"jexec {name} ifconfig vnet0; jexec {name} route -n get default",
                  check=True).stdout
        assert "<UP," in out and f"inet 198.51.100." in out and f"gateway: {GATEWAY}" in out
        # Every enabled installed service runs, from the ports' pidfiles.
        for svc in ("elasticsearch", "kibana", "haproxy"):
            assert status(name, svc).returncode == 0, svc
        assert ssh("lab1", f"test -s {root}/var/run/elasticsearch/elasticsearch.pid && "
                           f"test -s {root}/var/run/kibana/kibana.pid && "
                           f"stat -c '%u %a' {root}/var/run/kibana", check=True).stdout == "80 750\n"
        started = re.findall(r"Starting (\w+)\.", console(name))
        assert started == ["elasticsearch", "kibana", "haproxy"]  # rcorder: REQUIRE/BEFORE

        # A second start is refused as rc.subr refuses it.
        pid = status(name, "elasticsearch").stdout.split()[-1].rstrip(".")
        again = ssh("lab1", f"service -j {name} elasticsearch start")
        assert again.returncode == 1
        assert f"elasticsearch already running? (pid={pid})." in again.stderr

        ssh("lab1", f"service jail stop {name}", check=True, timeout=120)
        stopped = re.findall(r"Stopping (\w+)\.", console(name))
        assert stopped == ["haproxy", "kibana", "elasticsearch"]  # rc.shutdown: reverse
        assert ssh("lab1", f"ps -p {pid}").returncode == 1
    finally:
        ssh("lab1", f"jls -j {name} >/dev/null 2>&1 && jail -r {name}", timeout=120)


def test_rc_starts_only_enabled_services(jail_name):
    name, root = stack_jail(jail_name, ["haproxy"])
    try:
        ssh("lab1", f"service jail start {name}", check=True, timeout=120)
        assert status(name, "haproxy").returncode == 0
        for svc in ("elasticsearch", "kibana"):
            result = status(name, svc)
            assert result.returncode == 1 and f"{svc} is not running." in result.stdout
        assert re.findall(r"Starting (\w+)\.", console(name)) == ["haproxy"]
    finally:
        ssh("lab1", f"jls -j {name} >/dev/null 2>&1 && jail -r {name}", timeout=120)


def test_rc_skips_an_enabled_service_whose_package_is_not_installed(jail_name):
    name = jail_name("lab1")
    root = make_jail("lab1", name, start=False)
    write("lab1", f"{root}/etc/rc.conf", 'elasticsearch_enable="YES"\n')
    ssh("lab1", f"service jail start {name}", check=True)
    assert name in ssh("lab1", "jls -N").stdout
    result = status(name, "elasticsearch")
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_a_failing_exec_start_leaves_no_jail(jail_name):
    name = jail_name("lab1")
    make_jail("lab1", name, start=False, conf_body='path = "/var/tmp/haelk-lab/mnt/HOST/$name";\n'
              '  exec.start = "/bin/sh -c \'exit 3\'";\n')
    result = ssh("lab1", f"sysrc jail_enable=YES >/dev/null; service jail start {name}")
    assert result.returncode == 1
    assert "exec.start" in result.stderr and "failed" in result.stderr
    assert name not in ssh("lab1", "jls -N").stdout


def test_rc_needs_the_jails_etc_rc(jail_name):
    name = jail_name("lab1")
    root = make_jail("lab1", name, start=False)
    ssh("lab1", f"rm {root}/etc/rc", check=True)
    result = ssh("lab1", f"sysrc jail_enable=YES >/dev/null; service jail start {name}")
    assert result.returncode == 1 and "cannot open /etc/rc" in result.stderr
    assert name not in ssh("lab1", "jls -N").stdout


def test_route_refuses_a_gateway_off_the_jails_networks(jail_name):
    name, root = stack_jail(jail_name, [])
    try:
        ssh("lab1", f"sed -i 's/^defaultrouter=.*/defaultrouter=\"203.0.113.1\"/' {root}/etc/rc.conf",
            check=True)
        ssh("lab1", f"service jail start {name}", check=True, timeout=120)
        assert "Network is unreachable" in console(name)
        assert ssh("lab1", f"jexec {name} route -n get default").returncode == 1
    finally:
        ssh("lab1", f"jls -j {name} >/dev/null 2>&1 && jail -r {name}", timeout=120)
