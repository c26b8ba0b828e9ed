"""A real 3-node search-engine cluster (OpenSearch or Elasticsearch, from the lab's run-node
launchers) and the checks every engine must pass: the APIs haelk uses.

Each engine's test module describes its engine with an `Engine`, then takes the fixtures
and the shared tests from here (pytest collects the `test_*` functions a module imports).
Nodes 1 and 2 are manager+data, node 3 a manager-only tie-breaker, on three loopback
addresses outside the lab's ranges, from temporary config directories laid out as haelk
renders them. Every process is one this harness started, stopped by its PID.
"""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTTP_PORT, TRANSPORT_PORT = 9200, 9300
INDEX = "haelk-docs"
DOCS = {str(n): {"n": n, "text": f"document {n}"} for n in range(1, 6)}
# Three JVMs starting at once on two busy cores: generous, but bounded.
FORM_TIMEOUT = 240
STOP_TIMEOUT = 60


@dataclasses.dataclass(frozen=True)
class Engine:
    """What differs between the engines, as haelk renders and asks them."""
    label: str                 # for messages: "OpenSearch"
    launcher: str              # folder under lab/ holding run-node
    config_file: str           # opensearch.yml, elasticsearch.yml
    cluster_name: str
    manager_role: str          # cluster_manager, master
    manager_column: str        # the _cat/nodes column of the elected manager
    initial_managers_key: str  # cluster.initial_cluster_manager_nodes, ...
    nodes: dict                # name -> address: manager+data, manager+data, manager only
    extra_files: tuple = ()    # files of lab/LAUNCHER copied into every config directory
    logs: tuple = ()           # log files (under a node's directory) shown on failure

    @property
    def run_node(self):
        return os.path.join(LAB, self.launcher, "run-node")

    def skip_unless_installed(self):
        check = subprocess.run([self.run_node, "--check"], capture_output=True, text=True)
        if check.returncode == 3:
            pytest.skip(f"{self.label} jars absent: {check.stderr.strip()}", allow_module_level=True)
        assert check.returncode == 0, f"run-node --check failed ({check.returncode}): {check.stderr}"


class Cluster:
    """The three node processes of ENGINE: started here, stopped here by PID."""

    def __init__(self, engine, directory):
        self.engine = engine
        self.directory = directory
        self.processes = {}
        self.stopped = set()
        self.n1, self.n2, self.n3 = engine.nodes

    def roles(self, name):
        manager = self.engine.manager_role
        return [manager] if name == self.n3 else [manager, "data"]

    def http(self, node, method, path, body=None, timeout=30):
        """(status, decoded JSON body) of one request to NODE's HTTP port."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://{self.engine.nodes[node]}:{HTTP_PORT}{path}", data=data,
                                         method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, node, method, path, body=None):
        status, answer = self.http(node, method, path, body)
        assert status == 200, f"{method} {path} on {node}: {status} {answer}"
        return answer

    def render_config(self, name):
        """The engine's config file and a heap option file for NAME, as haelk renders them."""
        engine = self.engine
        config = os.path.join(self.directory, name, "config")
        os.makedirs(os.path.join(config, "jvm.options.d"))
        seeds = ", ".join(f'"{address}:{TRANSPORT_PORT}"' for address in engine.nodes.values())
        with open(os.path.join(config, engine.config_file), "w") as out:
            out.write(f"cluster.name: {engine.cluster_name}\n"
                      f"node.name: {name}\n"
                      f"node.roles: [{', '.join(self.roles(name))}]\n"
                      f"network.host: {engine.nodes[name]}\n"
                      f"http.port: {HTTP_PORT}\n"
                      f"transport.port: {TRANSPORT_PORT}\n"
                      f"discovery.seed_hosts: [{seeds}]\n"
                      f"{engine.initial_managers_key}: [{', '.join(engine.nodes)}]\n"
                      f"path.data: {os.path.join(self.directory, name, 'data')}\n"
                      f"path.logs: {os.path.join(self.directory, name, 'logs')}\n")
        with open(os.path.join(config, "jvm.options.d", "heap.options"), "w") as out:
            out.write("# as haelk renders it\n-Xms256m\n-Xmx256m\n")
        for extra in engine.extra_files:
            shutil.copyfile(os.path.join(LAB, engine.launcher, extra), os.path.join(config, extra))
        return config

    def pidfile(self, name):
        return os.path.join(self.directory, name, "node.pid")

    def start(self, name):
        config = self.render_config(name)
        with open(os.path.join(self.directory, name, "stdout.log"), "w") as stdout, \
                open(os.path.join(self.directory, name, "stderr.log"), "w") as stderr:
            self.processes[name] = subprocess.Popen([self.engine.run_node, config, self.pidfile(name)],
                                                    stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                                    start_new_session=True)

    def diagnostics(self):
        """Each node's exit status and the end of its logs, for a failure message."""
        lines = []
        for name, process in self.processes.items():
            lines.append(f"--- {name}: pid {process.pid}, exit {process.poll()}")
            for log in ("stderr.log",) + self.engine.logs:
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
                status, health = self.http(node, "GET", f"/_cluster/health?wait_for_nodes={nodes}&timeout=5s",
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


def cluster_fixture(engine):
    """The module's `cluster` fixture: ENGINE's three nodes, green, every one answering."""

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory):
        nodes = Cluster(engine, str(tmp_path_factory.mktemp(engine.launcher)))
        try:
            for name in engine.nodes:
                nodes.start(name)
            # A node joins the cluster over transport before its HTTP port is bound:
            # wait until every node answers on its own address, not only the first.
            for name in engine.nodes:
                nodes.wait_for_health(name, 3, ("green",), FORM_TIMEOUT)
            yield nodes
        finally:
            for name in engine.nodes:
                if name in nodes.processes:
                    nodes.stop(name)

    return cluster


@pytest.fixture(scope="module")
def documents(cluster):
    """INDEX with one primary and one replica (on nodes 1 and 2) holding DOCS, refreshed."""
    c = cluster
    c.ok(c.n1, "PUT", f"/{INDEX}", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    for doc_id, doc in DOCS.items():
        status, answer = c.http(c.n1, "PUT", f"/{INDEX}/_doc/{doc_id}", doc)
        assert status == 201, f"indexing {doc_id}: {status} {answer}"
    c.ok(c.n1, "POST", f"/{INDEX}/_refresh")
    c.wait_for_health(c.n1, 3, ("green",), FORM_TIMEOUT)
    return DOCS


def test_health_is_green_with_three_nodes_two_of_them_data(cluster):
    health = cluster.ok(cluster.n3, "GET", "/_cluster/health")
    assert (health["status"], health["number_of_nodes"], health["number_of_data_nodes"]) == ("green", 3, 2)


def test_cat_nodes_has_the_manager_column_with_one_elected(cluster):
    c, column = cluster, cluster.engine.manager_column
    rows = c.ok(c.n2, "GET", f"/_cat/nodes?format=json&h=name,ip,node.role,{column}")
    assert sorted(row["name"] for row in rows) == sorted(c.engine.nodes)
    assert [row[column] for row in rows].count("*") == 1
    by_name = {row["name"]: row for row in rows}
    assert by_name[c.n3]["node.role"] == "m" and by_name[c.n1]["node.role"] == "dm"
    assert {row["name"]: row["ip"] for row in rows} == c.engine.nodes


def test_allocation_enable_set_to_primaries_then_reset_with_null(cluster):
    c, key = cluster, "cluster.routing.allocation.enable"
    answer = c.ok(c.n1, "PUT", "/_cluster/settings", {"persistent": {key: "primaries"}})
    assert answer["acknowledged"] is True and answer["persistent"] == {"cluster": {"routing": {
        "allocation": {"enable": "primaries"}}}}
    assert c.ok(c.n2, "GET", "/_cluster/settings?flat_settings=true")["persistent"] == {key: "primaries"}
    c.ok(c.n1, "PUT", "/_cluster/settings", {"persistent": {key: None}})
    assert c.ok(c.n3, "GET", "/_cluster/settings?flat_settings=true")["persistent"] == {}


def test_flush_succeeds_on_every_shard(cluster, documents):
    shards = cluster.ok(cluster.n1, "POST", "/_flush")["_shards"]
    assert shards["failed"] == 0 and shards["successful"] == shards["total"] >= 2


def test_voting_config_exclusion_is_added_and_cleared(cluster):
    c = cluster

    def exclusions():
        state = c.ok(c.n1, "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
        return [entry["node_name"] for entry in
                state["metadata"]["cluster_coordination"]["voting_config_exclusions"]]

    assert exclusions() == []
    status, answer = c.http(c.n1, "POST", f"/_cluster/voting_config_exclusions?node_names={c.n3}")
    assert status == 200, answer
    assert exclusions() == [c.n3]
    status, answer = c.http(c.n1, "DELETE", "/_cluster/voting_config_exclusions?wait_for_removal=false")
    assert status == 200, answer
    assert exclusions() == []


def test_documents_are_read_back_and_both_copies_placed_on_the_data_nodes(cluster, documents):
    c = cluster
    for doc_id, doc in documents.items():
        answer = c.ok(c.n3, "GET", f"/{INDEX}/_doc/{doc_id}")
        assert answer["found"] is True and answer["_source"] == doc
    assert c.ok(c.n2, "GET", f"/{INDEX}/_count")["count"] == len(documents)
    shards = c.ok(c.n1, "GET", f"/_cat/shards/{INDEX}?format=json&h=index,shard,node")
    assert sorted(row["node"] for row in shards) == sorted([c.n1, c.n2])


def test_cluster_stays_available_when_one_data_node_is_stopped(cluster, documents):
    """Last in its module: it stops node 2 (SIGTERM to its PID) for good."""
    c, column = cluster, cluster.engine.manager_column
    with open(c.pidfile(c.n2)) as pidfile:
        pid = int(pidfile.read())
    assert pid == c.processes[c.n2].pid
    assert c.stop(c.n2) == 128 + signal.SIGTERM
    assert not os.path.exists(c.pidfile(c.n2)), "the node removes its pidfile on SIGTERM"

    health = c.wait_for_health(c.n1, 2, ("yellow", "green"), FORM_TIMEOUT)
    assert health["number_of_data_nodes"] == 1
    rows = c.ok(c.n3, "GET", f"/_cat/nodes?format=json&h=name,{column}")
    assert sorted(row["name"] for row in rows) == sorted([c.n1, c.n3])
    assert [row[column] for row in rows].count("*") == 1
    for doc_id, doc in documents.items():
        assert c.ok(c.n1, "GET", f"/{INDEX}/_doc/{doc_id}")["_source"] == doc
    status, answer = c.http(c.n3, "PUT", f"/{INDEX}/_doc/after-stop?refresh=true", {"n": 0})
    assert status == 201, f"writing with {c.n2} gone: {status} {answer}"
