"""A real 3-node OpenSearch 2.19 cluster (lab/opensearch/run-node) answers the APIs haelk uses.

The nodes run on loopback addresses 127.0.40.1-3 (outside the lab's ranges), from temporary
config directories laid out as haelk renders them for the opensearch engine: os1 and os2
are cluster_manager+data, os3 a cluster_manager-only tie-breaker. The lab itself is not
needed. Skipped only when the jars are not fetched (scripts/fetch-opensearch, which
scripts/install-deps runs). Every process is one this module started, stopped by its PID.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_NODE = os.path.join(LAB, "opensearch", "run-node")
LOG4J2 = os.path.join(LAB, "opensearch", "log4j2.properties")

NODES = {"os1": "127.0.40.1", "os2": "127.0.40.2", "os3": "127.0.40.3"}
ROLES = {"os1": ["cluster_manager", "data"], "os2": ["cluster_manager", "data"], "os3": ["cluster_manager"]}
HTTP_PORT, TRANSPORT_PORT = 9200, 9300
INDEX = "haelk-docs"
DOCS = {str(n): {"n": n, "text": f"document {n}"} for n in range(1, 6)}
# Three JVMs starting at once on two busy cores: generous, but bounded.
FORM_TIMEOUT = 240
STOP_TIMEOUT = 60


def _check_installed():
    check = subprocess.run([RUN_NODE, "--check"], capture_output=True, text=True)
    if check.returncode == 3:
        pytest.skip(f"OpenSearch jars absent: {check.stderr.strip()}", allow_module_level=True)
    assert check.returncode == 0, f"run-node --check failed ({check.returncode}): {check.stderr}"


_check_installed()


def http(node, method, path, body=None, timeout=30):
    """(status, decoded JSON body) of one request to NODE's HTTP port."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{NODES[node]}:{HTTP_PORT}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def ok(node, method, path, body=None):
    status, answer = http(node, method, path, body)
    assert status == 200, f"{method} {path} on {node}: {status} {answer}"
    return answer


def render_config(directory, name):
    """opensearch.yml (+ the lab's log4j2.properties) for NAME, as haelk would render it."""
    config = os.path.join(directory, name, "config")
    os.makedirs(os.path.join(config, "jvm.options.d"))
    seeds = ", ".join(f'"{address}:{TRANSPORT_PORT}"' for address in NODES.values())
    with open(os.path.join(config, "opensearch.yml"), "w") as out:
        out.write(f"cluster.name: haelk-lab-opensearch-test\n"
                  f"node.name: {name}\n"
                  f"node.roles: [{', '.join(ROLES[name])}]\n"
                  f"network.host: {NODES[name]}\n"
                  f"http.port: {HTTP_PORT}\n"
                  f"transport.port: {TRANSPORT_PORT}\n"
                  f"discovery.seed_hosts: [{seeds}]\n"
                  f"cluster.initial_cluster_manager_nodes: [{', '.join(NODES)}]\n"
                  f"path.data: {os.path.join(directory, name, 'data')}\n"
                  f"path.logs: {os.path.join(directory, name, 'logs')}\n")
    with open(os.path.join(config, "jvm.options.d", "heap.options"), "w") as out:
        out.write("# as haelk renders it\n-Xms256m\n-Xmx256m\n")
    with open(LOG4J2) as source, open(os.path.join(config, "log4j2.properties"), "w") as out:
        out.write(source.read())
    return config


class Cluster:
    """The three node processes: started here, stopped here by PID."""

    def __init__(self, directory):
        self.directory = directory
        self.processes = {}
        self.stopped = set()

    def pidfile(self, name):
        return os.path.join(self.directory, name, "opensearch.pid")

    def start(self, name):
        config = render_config(self.directory, name)
        with open(os.path.join(self.directory, name, "stdout.log"), "w") as stdout, \
                open(os.path.join(self.directory, name, "stderr.log"), "w") as stderr:
            self.processes[name] = subprocess.Popen([RUN_NODE, config, self.pidfile(name)], stdout=stdout,
                                                    stderr=stderr, stdin=subprocess.DEVNULL,
                                                    start_new_session=True)

    def diagnostics(self):
        """Each node's exit status and the end of its logs, for a failure message."""
        lines = []
        for name, process in self.processes.items():
            lines.append(f"--- {name}: pid {process.pid}, exit {process.poll()}")
            for log in ("stderr.log", "logs/haelk-lab-opensearch-test.log"):
                path = os.path.join(self.directory, name, log)
                if os.path.exists(path):
                    with open(path, errors="replace") as source:
                        lines += [f"{log}: {line.rstrip()}" for line in source.readlines()[-15:]]
        return "\n".join(lines)

    def wait_for_health(self, node, nodes, statuses, timeout):
        """Wait (bounded) until NODE reports NODES nodes and a status in STATUSES."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            dead = [name for name, process in self.processes.items()
                    if name not in self.stopped and process.poll() is not None]
            assert not dead, f"node(s) {dead} exited while waiting for the cluster\n{self.diagnostics()}"
            try:
                status, health = http(node, "GET", f"/_cluster/health?wait_for_nodes={nodes}&timeout=5s",
                                      timeout=15)
                last = f"{status} {health}"
                if status == 200 and health["number_of_nodes"] == nodes and health["status"] in statuses:
                    return health
            except (OSError, ValueError) as error:
                last = repr(error)
            time.sleep(1)
        raise AssertionError(f"waited {timeout} s for {node} to see {nodes} nodes with status in "
                             f"{statuses}; last answer: {last}\n{self.diagnostics()}")

    def stop(self, name):
        """SIGTERM the node's PID (the one in its pidfile); SIGKILL if it outlives STOP_TIMEOUT."""
        process = self.processes[name]
        self.stopped.add(name)
        if process.poll() is not None:
            return process.returncode
        os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
            raise AssertionError(f"{name} (pid {process.pid}) ignored SIGTERM for {STOP_TIMEOUT} s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = Cluster(str(tmp_path_factory.mktemp("opensearch")))
    try:
        for name in NODES:
            nodes.start(name)
        # A node joins the cluster over transport before its HTTP port is bound:
        # wait until every node answers on its own address, not only the first.
        for name in NODES:
            nodes.wait_for_health(name, 3, ("green",), FORM_TIMEOUT)
        yield nodes
    finally:
        for name in NODES:
            if name in nodes.processes:
                nodes.stop(name)


@pytest.fixture(scope="module")
def documents(cluster):
    """INDEX with one primary and one replica (on os1 and os2) holding DOCS, refreshed."""
    ok("os1", "PUT", f"/{INDEX}", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    for doc_id, doc in DOCS.items():
        status, answer = http("os1", "PUT", f"/{INDEX}/_doc/{doc_id}", doc)
        assert status == 201, f"indexing {doc_id}: {status} {answer}"
    ok("os1", "POST", f"/{INDEX}/_refresh")
    cluster.wait_for_health("os1", 3, ("green",), FORM_TIMEOUT)
    return DOCS


def test_root_reports_the_opensearch_distribution(cluster):
    for name in NODES:
        root = ok(name, "GET", "/")
        assert root["name"] == name
        assert root["version"]["distribution"] == "opensearch"
        assert root["version"]["number"].startswith("2.19.")


def test_health_is_green_with_three_nodes_two_of_them_data(cluster):
    health = ok("os3", "GET", "/_cluster/health")
    assert (health["status"], health["number_of_nodes"], health["number_of_data_nodes"]) == ("green", 3, 2)


def test_cat_nodes_has_the_cluster_manager_column_with_one_elected(cluster):
    rows = ok("os2", "GET", "/_cat/nodes?format=json&h=name,ip,node.role,cluster_manager")
    assert sorted(row["name"] for row in rows) == sorted(NODES)
    assert [row["cluster_manager"] for row in rows].count("*") == 1
    by_name = {row["name"]: row for row in rows}
    assert by_name["os3"]["node.role"] == "m" and by_name["os1"]["node.role"] == "dm"
    assert {row["name"]: row["ip"] for row in rows} == NODES


def test_allocation_enable_set_to_primaries_then_reset_with_null(cluster):
    key = "cluster.routing.allocation.enable"
    answer = ok("os1", "PUT", "/_cluster/settings", {"persistent": {key: "primaries"}})
    assert answer["acknowledged"] is True and answer["persistent"] == {"cluster": {"routing": {
        "allocation": {"enable": "primaries"}}}}
    assert ok("os2", "GET", "/_cluster/settings?flat_settings=true")["persistent"] == {key: "primaries"}
    ok("os1", "PUT", "/_cluster/settings", {"persistent": {key: None}})
    assert ok("os3", "GET", "/_cluster/settings?flat_settings=true")["persistent"] == {}


def test_flush_succeeds_on_every_shard(cluster, documents):
    shards = ok("os1", "POST", "/_flush")["_shards"]
    assert shards["failed"] == 0 and shards["successful"] == shards["total"] >= 2


def test_voting_config_exclusion_is_added_and_cleared(cluster):
    def exclusions():
        state = ok("os1", "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
        return [entry["node_name"] for entry in
                state["metadata"]["cluster_coordination"]["voting_config_exclusions"]]

    assert exclusions() == []
    status, answer = http("os1", "POST", "/_cluster/voting_config_exclusions?node_names=os3")
    assert status == 200, answer
    assert exclusions() == ["os3"]
    status, answer = http("os1", "DELETE", "/_cluster/voting_config_exclusions?wait_for_removal=false")
    assert status == 200, answer
    assert exclusions() == []


def test_documents_are_read_back_and_both_copies_placed_on_the_data_nodes(cluster, documents):
    for doc_id, doc in documents.items():
        answer = ok("os3", "GET", f"/{INDEX}/_doc/{doc_id}")
        assert answer["found"] is True and answer["_source"] == doc
    assert ok("os2", "GET", f"/{INDEX}/_count")["count"] == len(documents)
    shards = ok("os1", "GET", f"/_cat/shards/{INDEX}?format=json&h=index,shard,node")
    assert sorted(row["node"] for row in shards) == ["os1", "os2"]


def test_cluster_stays_available_when_one_data_node_is_stopped(cluster, documents):
    """Last in the module: it stops os2 (SIGTERM to its PID) for good."""
    with open(cluster.pidfile("os2")) as pidfile:
        pid = int(pidfile.read())
    assert pid == cluster.processes["os2"].pid
    assert cluster.stop("os2") == 128 + signal.SIGTERM
    assert not os.path.exists(cluster.pidfile("os2")), "the node removes its pidfile on SIGTERM"

    health = cluster.wait_for_health("os1", 2, ("yellow", "green"), FORM_TIMEOUT)
    assert health["number_of_data_nodes"] == 1
    rows = ok("os3", "GET", "/_cat/nodes?format=json&h=name,cluster_manager")
    assert sorted(row["name"] for row in rows) == ["os1", "os3"]
    assert [row["cluster_manager"] for row in rows].count("*") == 1
    for doc_id, doc in documents.items():
        assert ok("os1", "GET", f"/{INDEX}/_doc/{doc_id}")["_source"] == doc
    status, answer = http("os3", "PUT", f"/{INDEX}/_doc/after-stop?refresh=true", {"n": 0})
    assert status == 201, f"writing with os2 gone: {status} {answer}"
