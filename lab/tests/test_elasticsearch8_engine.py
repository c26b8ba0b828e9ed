"""A real 3-node Elasticsearch 8.19 cluster (lab/elasticsearch8/run-node) answers the APIs haelk uses.

The nodes run on loopback addresses 127.0.41.1-3 (outside the lab's ranges), from temporary
config directories laid out as haelk renders them for Elasticsearch: es1 and es2 are
master+data, es3 a master-only tie-breaker (`voting_only` is an x-pack plugin that Maven
Central does not publish). GET / is the lab's RootInfoPlugin (the distribution's rest-root
module is not published either); everything else is the server jar's. The lab itself is
not needed. Skipped only when the jars are not fetched (scripts/fetch-elasticsearch8).
Every process is one this module started, stopped by its PID.
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
RUN_NODE = os.path.join(LAB, "elasticsearch8", "run-node")

NODES = {"es1": "127.0.41.1", "es2": "127.0.41.2", "es3": "127.0.41.3"}
ROLES = {"es1": ["master", "data"], "es2": ["master", "data"], "es3": ["master"]}
HTTP_PORT, TRANSPORT_PORT = 9200, 9300
INDEX = "haelk-docs"
DOCS = {str(n): {"n": n, "text": f"document {n}"} for n in range(1, 6)}
# Three JVMs starting at once on two busy cores: generous, but bounded.
FORM_TIMEOUT = 240
STOP_TIMEOUT = 60


def _check_installed():
    check = subprocess.run([RUN_NODE, "--check"], capture_output=True, text=True)
    if check.returncode == 3:
        pytest.skip(f"Elasticsearch 8 jars absent: {check.stderr.strip()}", allow_module_level=True)
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
    """elasticsearch.yml and a heap option file for NAME, as haelk would render them."""
    config = os.path.join(directory, name, "config")
    os.makedirs(os.path.join(config, "jvm.options.d"))
    seeds = ", ".join(f'"{address}:{TRANSPORT_PORT}"' for address in NODES.values())
    with open(os.path.join(config, "elasticsearch.yml"), "w") as out:
        out.write(f"cluster.name: haelk-lab-es8-test\n"
                  f"node.name: {name}\n"
                  f"node.roles: [{', '.join(ROLES[name])}]\n"
                  f"network.host: {NODES[name]}\n"
                  f"http.port: {HTTP_PORT}\n"
                  f"transport.port: {TRANSPORT_PORT}\n"
                  f"discovery.seed_hosts: [{seeds}]\n"
                  f"cluster.initial_master_nodes: [{', '.join(NODES)}]\n"
                  f"path.data: {os.path.join(directory, name, 'data')}\n"
                  f"path.logs: {os.path.join(directory, name, 'logs')}\n")
    with open(os.path.join(config, "jvm.options.d", "heap.options"), "w") as out:
        out.write("# as haelk renders it\n-Xms256m\n-Xmx256m\n")
    return config


class Cluster:
    """The three node processes: started here, stopped here by PID."""

    def __init__(self, directory):
        self.directory = directory
        self.processes = {}
        self.stopped = set()

    def pidfile(self, name):
        return os.path.join(self.directory, name, "elasticsearch.pid")

    def start(self, name):
        config = render_config(self.directory, name)
        with open(os.path.join(self.directory, name, "stdout.log"), "w") as stdout, \
                open(os.path.join(self.directory, name, "stderr.log"), "w") as stderr:
            self.processes[name] = subprocess.Popen([RUN_NODE, config, self.pidfile(name)], stdout=stdout,
                                                    stderr=stderr, stdin=subprocess.DEVNULL,
                                                    start_new_session=True)

    def diagnostics(self):
        """Each node's exit status and the end of its stderr, for a failure message."""
        lines = []
        for name, process in self.processes.items():
            lines.append(f"--- {name}: pid {process.pid}, exit {process.poll()}")
            with open(os.path.join(self.directory, name, "stderr.log"), errors="replace") as source:
                lines += [f"stderr: {line.rstrip()}" for line in source.readlines()[-15:]]
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
    nodes = Cluster(str(tmp_path_factory.mktemp("elasticsearch8")))
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
    """INDEX with one primary and one replica (on es1 and es2) holding DOCS, refreshed."""
    ok("es1", "PUT", f"/{INDEX}", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    for doc_id, doc in DOCS.items():
        status, answer = http("es1", "PUT", f"/{INDEX}/_doc/{doc_id}", doc)
        assert status == 201, f"indexing {doc_id}: {status} {answer}"
    ok("es1", "POST", f"/{INDEX}/_refresh")
    cluster.wait_for_health("es1", 3, ("green",), FORM_TIMEOUT)
    return DOCS


def test_root_reports_elasticsearch_8_and_one_cluster_uuid(cluster):
    answers = {name: ok(name, "GET", "/") for name in NODES}
    for name, root in answers.items():
        assert root["name"] == name and root["cluster_name"] == "haelk-lab-es8-test"
        assert root["version"]["number"].startswith("8.19.")
        assert "distribution" not in root["version"], "only OpenSearch reports a distribution"
    uuids = {root["cluster_uuid"] for root in answers.values()}
    assert len(uuids) == 1 and "_na_" not in uuids


def test_health_is_green_with_three_nodes_two_of_them_data(cluster):
    health = ok("es3", "GET", "/_cluster/health")
    assert (health["status"], health["number_of_nodes"], health["number_of_data_nodes"]) == ("green", 3, 2)


def test_cat_nodes_has_the_master_column_with_one_elected(cluster):
    rows = ok("es2", "GET", "/_cat/nodes?format=json&h=name,ip,node.role,master")
    assert sorted(row["name"] for row in rows) == sorted(NODES)
    assert [row["master"] for row in rows].count("*") == 1
    by_name = {row["name"]: row for row in rows}
    assert by_name["es3"]["node.role"] == "m" and by_name["es1"]["node.role"] == "dm"
    assert {row["name"]: row["ip"] for row in rows} == NODES


def test_allocation_enable_set_to_primaries_then_reset_with_null(cluster):
    key = "cluster.routing.allocation.enable"
    answer = ok("es1", "PUT", "/_cluster/settings", {"persistent": {key: "primaries"}})
    assert answer["acknowledged"] is True and answer["persistent"] == {"cluster": {"routing": {
        "allocation": {"enable": "primaries"}}}}
    assert ok("es2", "GET", "/_cluster/settings?flat_settings=true")["persistent"] == {key: "primaries"}
    ok("es1", "PUT", "/_cluster/settings", {"persistent": {key: None}})
    assert ok("es3", "GET", "/_cluster/settings?flat_settings=true")["persistent"] == {}


def test_flush_succeeds_on_every_shard(cluster, documents):
    shards = ok("es1", "POST", "/_flush")["_shards"]
    assert shards["failed"] == 0 and shards["successful"] == shards["total"] >= 2


def test_voting_config_exclusion_is_added_and_cleared(cluster):
    def exclusions():
        state = ok("es1", "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
        return [entry["node_name"] for entry in
                state["metadata"]["cluster_coordination"]["voting_config_exclusions"]]

    assert exclusions() == []
    status, answer = http("es1", "POST", "/_cluster/voting_config_exclusions?node_names=es3")
    assert status == 200, answer
    assert exclusions() == ["es3"]
    status, answer = http("es1", "DELETE", "/_cluster/voting_config_exclusions?wait_for_removal=false")
    assert status == 200, answer
    assert exclusions() == []


def test_documents_are_read_back_and_both_copies_placed_on_the_data_nodes(cluster, documents):
    for doc_id, doc in documents.items():
        answer = ok("es3", "GET", f"/{INDEX}/_doc/{doc_id}")
        assert answer["found"] is True and answer["_source"] == doc
    assert ok("es2", "GET", f"/{INDEX}/_count")["count"] == len(documents)
    shards = ok("es1", "GET", f"/_cat/shards/{INDEX}?format=json&h=index,shard,node")
    assert sorted(row["node"] for row in shards) == ["es1", "es2"]


def test_cluster_stays_available_when_one_data_node_is_stopped(cluster, documents):
    """Last in the module: it stops es2 (SIGTERM to its PID) for good."""
    with open(cluster.pidfile("es2")) as pidfile:
        pid = int(pidfile.read())
    assert pid == cluster.processes["es2"].pid
    assert cluster.stop("es2") == 128 + signal.SIGTERM
    assert not os.path.exists(cluster.pidfile("es2")), "the node removes its pidfile on SIGTERM"

    health = cluster.wait_for_health("es1", 2, ("yellow", "green"), FORM_TIMEOUT)
    assert health["number_of_data_nodes"] == 1
    rows = ok("es3", "GET", "/_cat/nodes?format=json&h=name,master")
    assert sorted(row["name"] for row in rows) == ["es1", "es3"]
    assert [row["master"] for row in rows].count("*") == 1
    for doc_id, doc in documents.items():
        assert ok("es1", "GET", f"/{INDEX}/_doc/{doc_id}")["_source"] == doc
    status, answer = http("es3", "PUT", f"/{INDEX}/_doc/after-stop?refresh=true", {"n": 0})
    assert status == 201, f"writing with es2 gone: {status} {answer}"
