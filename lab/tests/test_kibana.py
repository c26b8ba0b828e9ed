"""Tests of the Kibana stand-in: config refusals, and /api/status following the
reachability and health of the Elasticsearch stand-in (with fail-over between hosts).

    cd lab && python3 -m pytest -q tests/test_kibana.py
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

# The harness sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standins_harness import KIBANA, STANDINS, EsCluster, Processes, next_subnet, request, run_refused, wait_until  # noqa: E402

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone

KEY = "k" * 32


@pytest.fixture
def procs():
    started = Processes()
    yield started
    started.kill_all()


def kibana_settings(tmp_path, host, es_hosts):
    return {
        "server.host": host,
        "server.port": 5601,
        "server.name": "kb1",
        "server.publicBaseUrl": "http://127.0.30.20:5601",
        "elasticsearch.hosts": es_hosts,
        "path.data": str(tmp_path / "kbdata"),
        "pid.file": str(tmp_path / "run" / "kibana.pid"),
        "xpack.encryptedSavedObjects.encryptionKey": KEY,
        "xpack.security.encryptionKey": KEY,
        "xpack.reporting.encryptionKey": KEY,
    }


def write(tmp_path, settings):
    path = tmp_path / "kibana.yml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def refusal(tmp_path, mutate):
    settings = kibana_settings(tmp_path, "127.0.0.1", ["http://127.0.0.1:9200"])
    mutate(settings)
    code, out = run_refused([KIBANA, "--config", write(tmp_path, settings)])
    assert code == 1, out
    return out


def test_unknown_key_refused(tmp_path):
    out = refusal(tmp_path, lambda s: s.update({"server.hots": "127.0.0.1"}))
    assert 'Unknown configuration key(s): "server.hots"' in out


def test_kibana7_logging_keys_refused_and_kibana8_logging_accepted(tmp_path):
    out = refusal(tmp_path, lambda s: s.update({"logging.dest": "/var/log/kibana.log", "logging.verbose": True}))
    assert 'Unknown configuration key(s): "logging.dest", "logging.verbose"' in out
    settings = kibana_settings(tmp_path, "127.0.0.1", ["http://127.0.0.1:9200"])
    settings["logging"] = {
        "appenders": {"file": {"type": "file", "fileName": str(tmp_path / "kibana.log"), "layout": {"type": "json"}}},
        "root": {"appenders": ["default", "file"], "level": "info"},
    }
    settings["xpack.security.encryptionKey"] = "short"  # refused later, so the start stops after the logging keys
    code, out = run_refused([KIBANA, "--config", write(tmp_path, settings)])
    assert code == 1 and "Unknown configuration key" not in out and "minimum length of [32]" in out, out


def test_short_encryption_key_refused(tmp_path):
    out = refusal(tmp_path, lambda s: s.update({"xpack.security.encryptionKey": "short"}))
    assert (
        "[config validation of [xpack.security].encryptionKey]: value has length [5] but it must have a "
        "minimum length of [32]." in out
    )


def test_elastic_superuser_refused(tmp_path):
    out = refusal(tmp_path, lambda s: s.update({"elasticsearch.username": "elastic", "elasticsearch.password": "x"}))
    assert 'value of "elastic" is forbidden' in out


def test_missing_server_host_refused(tmp_path):
    out = refusal(tmp_path, lambda s: s.pop("server.host"))
    assert "[server.host] is required" in out


def test_bad_elasticsearch_host_refused(tmp_path):
    out = refusal(tmp_path, lambda s: s.update({"elasticsearch.hosts": ["127.0.0.1:9200"]}))
    assert "expected URI with scheme [http|https]" in out


def test_status_follows_cluster_with_failover(tmp_path, procs):
    cluster = EsCluster(tmp_path / "es", procs, count=1, repo=False)
    cluster.start_all()
    kb_ip = next_subnet() + ".1"
    dead = f"http://{cluster.subnet}.9:9200"  # nothing listens there: Kibana must fail over
    settings = kibana_settings(tmp_path, kb_ip, [dead, f"http://{cluster.ip('n1')}:9200"])
    kibana = procs.start([KIBANA, "--config", write(tmp_path, settings)], str(tmp_path / "kibana.out"))
    url = f"http://{kb_ip}:5601/api/status"

    def level():
        status, body = request("GET", url, timeout=5)
        return status, body["status"]["overall"]["level"] if isinstance(body, dict) else body

    wait_until(lambda: level() == (200, "available"), 15, what="kibana available")
    status, body = request("GET", url)
    assert body["name"] == "kb1"
    pid_file = settings["pid.file"]
    assert int(open(pid_file, encoding="utf-8").read()) == kibana.pid

    cluster.stop("n1")
    wait_until(lambda: level() == (503, "unavailable"), 15, what="kibana unavailable")

    os.kill(kibana.pid, signal.SIGTERM)
    assert kibana.wait(timeout=10) == 0
    assert not os.path.exists(pid_file)


def test_status_unavailable_when_cluster_red(tmp_path, procs):
    cluster = EsCluster(
        tmp_path / "es", procs, roles={"n1": ["master"], "n2": ["master", "data"], "n3": ["master", "data"]}, repo=False
    )
    cluster.start_all()
    cluster.put("n1", "/solo", {"settings": {"number_of_replicas": 0}})
    holder = cluster.shards("n1")[0]["node"]
    cluster.stop(holder)
    cluster.wait_nodes(2, via="n1")
    assert cluster.health("n1")[1]["status"] == "red"
    kb_ip = next_subnet() + ".1"
    settings = kibana_settings(tmp_path, kb_ip, [f"http://{cluster.ip('n1')}:9200"])
    procs.start([KIBANA, "--config", write(tmp_path, settings)], str(tmp_path / "kibana.out"))

    def polled_red():
        status, body = request("GET", f"http://{kb_ip}:5601/api/status", timeout=5)
        if not isinstance(body, dict):
            return False  # still starting
        overall = body["status"]["overall"]
        return "red" in overall["summary"] and (status, overall["level"])

    assert wait_until(polled_red, 10, what="kibana to see the red cluster") == (503, "unavailable")


def test_not_ready_503_during_start_up_then_available(tmp_path, procs):
    cluster = EsCluster(tmp_path / "es", procs, count=1, repo=False)
    cluster.start_all()
    kb_ip = next_subnet() + ".1"
    settings = kibana_settings(tmp_path, kb_ip, [f"http://{cluster.ip('n1')}:9200"])
    started = time.monotonic()
    procs.start([KIBANA, "--config", write(tmp_path, settings)], str(tmp_path / "kibana.out"))
    url = f"http://{kb_ip}:5601/api/status"
    first = wait_until(lambda: request("GET", url, timeout=5), 10, what="kibana listening")
    assert first == (503, "Kibana server is not ready yet")
    assert time.monotonic() - started < 3.0, "the first answer came inside the start-up phase"
    status, body = wait_until(lambda: (lambda r: r[0] == 200 and r)(request("GET", url, timeout=5)),
                              15, what="kibana available")
    assert body["status"]["overall"]["level"] == "available"
    assert body["version"]["number"] == cluster.get("n1", "/")[1]["version"]["number"]


def fake_es(ip, version):
    """A loopback HTTP server answering as a green one-node cluster of VERSION."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path.startswith("/_cluster/health"):
                body = {"cluster_name": "c", "status": "green"}
            elif self.path.startswith("/_nodes"):
                body = {"nodes": {"x1": {"name": "es1", "version": version, "ip": ip,
                                         "http": {"publish_address": f"{ip}:9200"}}}}
            else:
                body = {"version": {"number": version}}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer((ip, 9200), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("es_version, expect", [
    ("8.16.0", (503, "critical")),   # Kibana 8.17 newer than Elasticsearch: refused
    ("8.18.1", (200, "available")),  # a newer Elasticsearch minor is compatible
    ("8.17.0", (200, "available")),  # patch levels may differ
    ("9.0.0", (503, "critical")),    # another major never works
])
def test_version_check_against_the_elasticsearch_nodes(tmp_path, procs, es_version, expect):
    subnet = next_subnet()
    server = fake_es(f"{subnet}.9", es_version)
    try:
        settings = kibana_settings(tmp_path, f"{subnet}.1", [f"http://{subnet}.9:9200"])
        procs.start([KIBANA, "--config", write(tmp_path, settings)], str(tmp_path / "kibana.out"))
        url = f"http://{subnet}.1:5601/api/status"

        def level():
            status, body = request("GET", url, timeout=5)
            return isinstance(body, dict) and (status, body["status"]["overall"]["level"], body)
        got = wait_until(level, 15, what="kibana past its start-up phase")
        assert got[:2] == expect
        if expect[1] == "critical":
            assert f"incompatible with the following Elasticsearch nodes in your cluster: v{es_version}" \
                in got[2]["status"]["overall"]["summary"]
    finally:
        server.shutdown()
        server.server_close()


def test_es_version_compatible_rule():
    sys.path.insert(0, STANDINS)
    from kibana import es_version_compatible
    assert es_version_compatible("8.17.4", "8.17.4")
    assert es_version_compatible("8.18.0", "8.17.4")
    assert not es_version_compatible("8.16.9", "8.17.0")
    assert not es_version_compatible("7.17.0", "8.17.0")
    assert not es_version_compatible("garbage", "8.17.0")
