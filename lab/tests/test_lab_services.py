"""The Elasticsearch and Kibana stand-ins started the FreeBSD way, inside lab jails:
`service -j JAIL NAME start` as the service user, on the config in the jail's dataset."""
import json
import time
import urllib.request

from conftest import make_vnet_jail, ssh, write


def es_yml(name, ip, extra=""):
    return (f"cluster.name: selftest\nnode.name: {name}\nnode.roles: [master, data]\n"
            f"network.host: {ip}\nhttp.port: 9200\ntransport.port: 9300\n"
            f"discovery.seed_hosts: [\"{ip}:9300\"]\ncluster.initial_master_nodes: [\"{name}\"]\n"
            f"path.data: /var/db/elasticsearch\npath.logs: /var/log/elasticsearch\n"
            f"xpack.ml.enabled: false\nxpack.security.enabled: false\n{extra}")


def es_jail(jail_name, extra=""):
    name = jail_name("lab1", "es")
    ip = "198.51.100.181"
    root = make_vnet_jail("lab1", name, 81, ip)
    ssh("lab1", f"pkg -j {name} install -y elasticsearch8 && sysrc -j {name} elasticsearch_enable=YES",
        check=True)
    write("lab1", f"{root}/usr/local/etc/elasticsearch/elasticsearch.yml", es_yml(name, ip, extra))
    return name, ip


def test_elasticsearch_starts_in_a_jail_and_answers(jail_name):
    name, ip = es_jail(jail_name)
    try:
        ssh("lab1", f"service -j {name} elasticsearch start", check=True, timeout=90)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{ip}:9200/_cluster/health", timeout=2) as r:
                    health = json.load(r)
                if health.get("status") == "green":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the node never became green"
            time.sleep(0.3)
        assert health["number_of_nodes"] == 1
        assert ssh("lab1", f"service -j {name} elasticsearch status").returncode == 0
    finally:
        ssh("lab1", f"service -j {name} elasticsearch stop", timeout=60)


def test_elasticsearch_refuses_an_unknown_setting_and_the_start_fails(jail_name):
    name, _ = es_jail(jail_name, extra="no.such.setting: 1\n")
    result = ssh("lab1", f"service -j {name} elasticsearch start", timeout=90)
    assert result.returncode == 1
    assert "unknown setting [no.such.setting]" in result.stdout + result.stderr
