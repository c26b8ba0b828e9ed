"""Tests of the Elasticsearch stand-in, run without the lab: real node processes on
loopback addresses (127.0.5x.1-3) with temp dirs, killed by PID in teardown.

    cd lab && python3 -m pytest -q tests/test_elasticsearch.py
"""

import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

import pytest

# The harness sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standins_harness import (  # noqa: E402
    ES,
    EsCluster,
    Processes,
    holds_for,
    request,
    run_refused,
    wait_until,
)

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone

LAB_ROLES = {"n1": ["master", "data"], "n2": ["master", "data"], "n3": ["master", "voting_only"]}


@pytest.fixture
def procs():
    started = Processes()
    yield started
    started.kill_all()


@pytest.fixture(scope="module")
def module_procs():
    started = Processes()
    yield started
    started.kill_all()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, module_procs):
    """One formed 3-node cluster for the tests that do not stop nodes."""
    cluster = EsCluster(tmp_path_factory.mktemp("shared"), module_procs)
    cluster.start_all()
    return cluster


# ------------------------------------------------------------------ refusals


def refused(tmp_path, mutate, heap=None, prefix=()):
    cluster = EsCluster(tmp_path, Processes(), count=1)
    settings = cluster.settings("n1")
    mutate(settings)
    cluster.write_config("n1", settings, heap=heap)
    code, out = run_refused([ES, "--path-conf", str(cluster.conf_dir("n1"))], prefix=prefix)
    assert code == 1, out
    return out


def test_unknown_setting_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"indices.bogus_knob": 1}))
    assert "unknown setting [indices.bogus_knob] please check that any required plugins are installed" in out


def test_es7_role_setting_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"node.master": True}))
    assert "unknown setting [node.master]" in out


def test_unknown_role_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"node.roles": ["master", "bogus"]}))
    assert "unknown role [bogus]" in out


def test_voting_only_without_master_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"node.roles": ["data", "voting_only"]}))
    assert "voting-only node must be master-eligible" in out


def test_non_integer_port_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"http.port": "92OO"}))
    assert "Failed to parse value [92OO] for setting [http.port]" in out


def test_foreign_network_host_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"network.host": "192.0.2.55"}))
    assert "not an address of this machine" in out


@pytest.mark.parametrize(
    "key", ["cluster.name", "node.name", "path.data", "path.logs", "network.host", "discovery.seed_hosts"]
)
def test_missing_required_setting_refused(tmp_path, key):
    out = refused(tmp_path, lambda s: s.pop(key))
    assert f"setting [{key}] is required" in out


def test_ml_must_be_disabled(tmp_path):
    out = refused(tmp_path, lambda s: s.pop("xpack.ml.enabled"))
    assert "ML is not supported on FreeBSD" in out


def test_security_without_transport_tls_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"xpack.security.enabled": True}))
    assert "Transport SSL must be enabled if security is enabled" in out


def test_unequal_heap_refused(tmp_path):
    out = refused(tmp_path, lambda s: None, heap="-Xms1g\n-Xmx2g\n")
    assert "initial heap size [1g] not equal to maximum heap size [2g]" in out


def test_equal_heap_accepted_and_reported(shared):
    status, body = shared.get("n1", "/_nodes")
    assert status == 200 and len(body["nodes"]) == 3


def test_memory_lock_without_mlock_permission_refused(tmp_path):
    # No CAP_IPC_LOCK (root keeps it unless dropped) and a zero RLIMIT_MEMLOCK: mlockall fails.
    prefix = ["prlimit", "--memlock=0:0"] + (["setpriv", "--bounding-set=-ipc_lock"] if os.geteuid() == 0 else [])
    out = refused(tmp_path, lambda s: s.update({"bootstrap.memory_lock": True}), prefix=prefix)
    assert "memory locking requested for elasticsearch process but memory is not locked" in out


def test_unwritable_path_data_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = refused(tmp_path, lambda s: s.update({"path.data": str(blocker / "data")}))
    assert "java.nio.file.AccessDeniedException" in out and "path.data" in out


def test_master_node_missing_from_initial_master_nodes_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"cluster.initial_master_nodes": ["n1.example.org"]}))
    assert "is not listed in [cluster.initial_master_nodes]" in out


def test_initial_master_nodes_naming_unknown_node_stops_bootstrap(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs)
    for name in cluster.names:
        settings = cluster.settings(name)
        settings["cluster.initial_master_nodes"] = ["n1", "n2", "n3", "n4"]
        cluster.start(name, settings=settings)
    for name in cluster.names:
        assert cluster.running[name].wait(timeout=15) == 1
    assert "names ['n4'], which is not a master-eligible node" in cluster.output("n1")


def test_second_process_on_same_data_path_refused(shared):
    code, out = run_refused([ES, "--path-conf", str(shared.conf_dir("n1"))])
    assert code == 1
    assert "failed to obtain node locks" in out or "Address already in use" in out or "BindException" in out


# ------------------------------------------------------------------ formed cluster, shared


def test_node_of_another_cluster_is_not_joined(shared, tmp_path):
    intruder = EsCluster(tmp_path, shared.procs, count=1)
    settings = intruder.settings("n1")
    settings.update(
        {
            "cluster.name": "other-cluster",
            "node.name": "intruder",
            "cluster.initial_master_nodes": ["intruder"],
            "discovery.seed_hosts": [f"{shared.ip(n)}:9300" for n in shared.names],
        }
    )
    proc = intruder.start("n1", settings=settings)
    wait_until(lambda: "handshake failed" in intruder.output("n1"), 10, what="handshake failure")
    assert proc.poll() is None
    assert shared.health("n1")[1]["number_of_nodes"] == 3
    intruder.stop("n1")


def test_formation(shared):
    status, root = shared.get("n2", "/")
    assert status == 200 and root["cluster_uuid"] != "_na_" and root["version"]["number"].startswith("8.")
    status, state = shared.get("n3", "/_cluster/state")
    assert state["metadata"]["cluster_uuid"] == root["cluster_uuid"]
    assert len(state["metadata"]["cluster_coordination"]["last_committed_config"]) == 3
    masters = [shared.master_name(n) for n in shared.names]
    assert len(set(masters)) == 1
    status, body = shared.get("n1", "/_cluster/state?filter_path=metadata.cluster_uuid")
    assert body == {"metadata": {"cluster_uuid": root["cluster_uuid"]}}
    status, text = shared.get("n1", "/_cat/nodes?v")
    assert text.count("\n") == 4 and text.count("*") == 1


def test_index_get_count_through_any_node(shared):
    status, body = shared.put("n1", "/docs", {"settings": {"number_of_shards": 2, "number_of_replicas": 1}})
    assert status == 200 and body["acknowledged"], body
    for i in range(30):
        status, body = request("PUT", shared.url(shared.names[i % 3], f"/docs/_doc/d{i}"), {"n": i})
        assert status == 201, body
        assert body["_shards"]["failed"] == 0
    status, body = shared.post("n3", "/docs/_doc", {"auto": True})
    assert status == 201 and body["result"] == "created"
    for name in shared.names:
        assert shared.get(name, "/docs/_count")[1]["count"] == 31
        status, doc = shared.get(name, "/docs/_doc/d7")
        assert status == 200 and doc["_source"] == {"n": 7}
    status, body = shared.put("n2", "/docs/_doc/d7", {"n": 70})
    assert status == 200 and body["result"] == "updated" and body["_version"] == 2
    assert shared.get("n3", "/docs/_doc/missing")[0] == 404
    status, body = shared.get("n1", "/nosuchindex/_doc/1")
    assert status == 404 and body["error"]["type"] == "index_not_found_exception"
    shared.wait_status("green")
    bulk = "".join(f'{{"index": {{"_id": "b{i}"}}}}\n{{"b": {i}}}\n' for i in range(50))
    bulk_req = urllib.request.Request(
        shared.url("n2", "/docs/_bulk"),
        data=bulk.encode(),
        method="POST",
        headers={"Content-Type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(bulk_req, timeout=30) as resp:
        result = json.loads(resp.read())
    assert result["errors"] is False and len(result["items"]) == 50
    assert shared.get("n1", "/docs/_count")[1]["count"] == 81
    status, body = shared.get("n1", "/_cluster/health?level=indices")
    assert body["indices"]["docs"]["number_of_shards"] == 2 and body["indices"]["docs"]["active_shards"] == 4


def test_strict_rest_surface(shared):
    status, body = shared.get("n1", "/_cluster/health?wait_for_colour=green")
    assert status == 400 and "unrecognized parameter: [wait_for_colour]" in body["error"]["reason"]
    status, body = shared.get("n1", "/_no_such_api")
    assert status == 400 and "no handler found" in body["error"]
    status, body = shared.post("n1", "/_cluster/health")
    assert status == 405
    status, body = shared.put("n1", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": "some"}})
    assert status == 400 and "Illegal allocation.enable value [SOME]" in body["error"]["reason"]
    status, body = shared.put("n1", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enabled": "all"}})
    assert status == 400 and "not recognized" in body["error"]["reason"]
    status, body = shared.put("n1", "/_cluster/settings", {"persistent": {"cluster.name": "other"}})
    assert status == 400 and "not dynamically updateable" in body["error"]["reason"]
    status, body = shared.delete("n1", "/*")
    assert status == 400 and "Wildcard expressions or all indices are not allowed" in body["error"]["reason"]
    status, body = shared.put("n1", "/BadName", {})
    assert status == 400 and body["error"]["type"] == "invalid_index_name_exception"
    for bad in ({"refresh_interval": "soon"}, {"max_result_window": 0}, {"codec": "snappy"}):
        status, body = shared.put("n1", "/badsettings", {"settings": bad})
        assert status == 400 and body["error"]["type"] == "illegal_argument_exception", (bad, body)
    assert shared.get("n1", "/badsettings")[0] == 404
    twice = {
        "persistent": {"cluster.routing.allocation.enable": "all", "cluster": {"routing.allocation.enable": "none"}}
    }
    status, body = shared.put("n1", "/_cluster/settings", twice)
    assert status == 400 and "duplicate settings key" in body["error"]["reason"], body
    form = urllib.request.Request(
        shared.url("n1", "/formdocs/_doc/1"),
        data=b'{"a": 1}',
        method="PUT",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused_form:
        urllib.request.urlopen(form, timeout=10)
    assert refused_form.value.code == 406


def test_health_wait_for_status_and_408(shared):
    status, body = shared.get("n1", "/_cluster/health?wait_for_status=yellow&timeout=5s")
    assert status == 200 and body["status"] in ("green", "yellow")
    status, body = shared.put("n2", "/toomany", {"settings": {"number_of_replicas": 4}})
    assert status == 200
    started = time.time()
    status, body = shared.get("n3", "/_cluster/health?wait_for_status=green&timeout=1s")
    assert status == 408 and body["timed_out"] is True and body["status"] == "yellow"
    assert time.time() - started >= 1.0
    assert body["unassigned_shards"] == 2
    status, explain = shared.get("n1", "/_cluster/allocation/explain")
    assert status == 200 and explain["index"] == "toomany" and explain["can_allocate"] == "no"
    deciders = {d["decider"] for n in explain["node_allocation_decisions"] for d in n["deciders"]}
    assert "same_shard" in deciders
    # Writes honour wait_for_active_shards: 3 of the 5 copies can be active on 3 nodes, never all.
    status, body = shared.put("n1", "/toomany/_doc/1?wait_for_active_shards=3&timeout=10s", {"a": 1})
    assert status == 201, body
    status, body = shared.put("n3", "/toomany/_doc/2?wait_for_active_shards=all&timeout=1s", {"a": 2})
    assert status == 503 and body["error"]["type"] == "unavailable_shards_exception", body
    assert "Not enough active copies to meet shard count of [ALL] (have 3, needed 5)" in body["error"]["reason"]
    status, body = shared.put("n1", "/toomany/_doc/1?if_seq_no=0&if_primary_term=1", {"a": 3})
    assert status == 400 and "stand-in limitation" in body["error"]["reason"], body
    assert shared.delete("n1", "/toomany")[0] == 200
    shared.wait_status("green")


def test_snapshot_repository_must_be_under_path_repo(shared, tmp_path):
    status, body = shared.put("n1", "/_snapshot/outside", {"type": "fs", "settings": {"location": str(tmp_path)}})
    assert status == 500 and body["error"]["type"] == "repository_exception"
    assert "doesn't match any of the locations specified by path.repo" in body["error"]["reason"]
    status, body = shared.put("n1", "/_snapshot/s3repo", {"type": "s3", "settings": {"bucket": "x"}})
    assert status == 500 and "repository type [s3] does not exist" in body["error"]["reason"]
    location = os.path.join(shared.repo, "backups")
    assert shared.put("n2", "/_snapshot/backups", {"type": "fs", "settings": {"location": location}})[0] == 200
    assert shared.get("n3", "/_snapshot/backups")[1]["backups"]["settings"]["location"] == location
    shared.put("n1", "/snapme/_doc/1", {"a": 1})
    status, body = shared.put("n1", "/_snapshot/backups/first?wait_for_completion=true", {"indices": "snapme"})
    assert status == 200 and body["snapshot"]["state"] == "SUCCESS", body
    assert os.path.exists(os.path.join(location, f"snap-{body['snapshot']['uuid']}", "snapme", "0.json"))
    policy = {
        "schedule": "0 30 1 * * ?",
        "name": "<nightly-{now/d}>",
        "repository": "backups",
        "config": {"indices": ["*"]},
        "retention": {"expire_after": "30d", "min_count": 5, "max_count": 50},
    }
    assert shared.put("n2", "/_slm/policy/nightly", policy)[0] == 200
    status, body = shared.put("n2", "/_slm/policy/bad", {**policy, "repository": "nope"})
    assert status == 400 and "no such repository [nope]" in body["error"]["reason"]
    status, body = shared.put("n2", "/_slm/policy/bad", {**policy, "schedule": "every day"})
    assert status == 400
    status, body = shared.post("n3", "/_slm/policy/nightly/_execute")
    assert status == 200 and body["snapshot_name"].startswith("nightly-")
    status, listing = shared.get("n1", "/_snapshot/backups/_all")
    assert {s["snapshot"] for s in listing["snapshots"]} == {"first", body["snapshot_name"]}
    assert "nightly" in shared.get("n1", "/_slm/policy/nightly")[1]


# ------------------------------------------------------------------ nodes leaving and returning


def test_node_loss_yellow_writes_continue_restart_green_and_state_kept(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs, roles=LAB_ROLES)
    cluster.start_all()
    uuid = cluster.get("n1", "/")[1]["cluster_uuid"]
    cluster.put("n1", "/logs", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    for i in range(20):
        assert cluster.put("n3", f"/logs/_doc/{i}", {"i": i})[0] == 201
    cluster.wait_status("green")

    assert cluster.stop("n2") == 0  # SIGTERM is a clean shutdown
    cluster.wait_nodes(2, via="n1")
    body = cluster.wait_status("yellow", via="n1")
    assert body["unassigned_shards"] == 1 and body["active_primary_shards"] == 1
    for i in range(20, 30):
        status, resp = request("PUT", cluster.url(["n1", "n3"][i % 2], f"/logs/_doc/{i}"), {"i": i})
        assert status == 201, resp

    # Restarting with cluster.initial_master_nodes still set: real Elasticsearch warns
    # (ClusterBootstrapService) and rejoins; so does the stand-in.
    cluster.start("n2", bootstrap=True)
    cluster.wait_nodes(3, via="n2")
    warning = re.search(r"\[WARNING\].* this node is locked into cluster UUID \[(\S+)\] but "
                        r"\[cluster.initial_master_nodes\] is set to \[n1, [^]]*\]; remove this setting "
                        r"to avoid possible data loss", cluster.output("n2"))
    assert warning and warning.group(1) == uuid, cluster.output("n2")
    cluster.wait_status("green", via="n2")
    assert cluster.get("n2", "/logs/_count")[1]["count"] == 30
    assert cluster.get("n2", "/logs/_doc/25")[1]["_source"] == {"i": 25}

    # Full cluster restart: same UUID, same documents.
    for name in ["n3", "n2", "n1"]:
        assert cluster.stop(name) == 0
    for name in cluster.names:
        cluster.start(name, bootstrap=False)
    cluster.wait_nodes(3, via="n1")
    cluster.wait_status("green", via="n3")
    assert cluster.get("n3", "/")[1]["cluster_uuid"] == uuid
    assert cluster.get("n1", "/logs/_count")[1]["count"] == 30


def test_master_loss_reelection_and_voting_only_never_master(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs, roles=LAB_ROLES)
    cluster.start_all()
    first = wait_until(cluster.master_name, 10, what="a master")
    assert first in ("n1", "n2")
    cluster.stop(first, signal.SIGKILL)
    survivor = "n2" if first == "n1" else "n1"

    def new_master():
        status, rows = cluster.get("n3", "/_cat/nodes?format=json&h=name,master&master_timeout=500ms")
        return status == 200 and len(rows) == 2 and next((r["name"] for r in rows if r["master"] == "*"), None)

    assert wait_until(new_master, 15, what="re-election") == survivor
    status, body = cluster.put("n3", "/after/_doc/1", {"ok": True})
    assert status == 201, body
    # With only the voting-only node and one master left out of three voters, killing the
    # master leaves no quorum: the voting-only node must not take over.
    cluster.stop(survivor, signal.SIGKILL)

    def no_master():
        status, body = cluster.get("n3", "/_cluster/health?master_timeout=200ms")
        return status == 503 and body["error"]["type"] == "master_not_discovered_exception"

    # n3 drops the dead master after its 2 s leader timeout; from then on it must stay without one.
    wait_until(no_master, 10, what="n3 to notice the master is gone")
    holds_for(no_master, 3, what="no master on the voting-only node")
    status, body = cluster.get("n3", "/_cluster/health?local=true")
    assert status == 200


def test_allocation_exclude_drains_node(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs)
    cluster.start_all()
    cluster.put("n1", "/big", {"settings": {"number_of_shards": 2, "number_of_replicas": 1}})
    for i in range(120):
        cluster.put(cluster.names[i % 3], f"/big/_doc/{i}", {"i": i})
    cluster.wait_status("green")
    victim = next(r["node"] for r in cluster.shards())
    started = time.time()
    status, body = cluster.put(
        "n1", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": victim}}
    )
    assert status == 200 and body["persistent"]["cluster"]["routing"]["allocation"]["exclude"]["_name"] == victim
    seen_states = set()

    def drained():
        rows = cluster.shards()
        seen_states.update(r["state"] for r in rows)
        return all(r["node"] != victim and r["state"] == "STARTED" for r in rows)

    # Every look during the drain counts: a loaded machine may answer the first one late.
    wait_until(drained, 20, interval=0.05, what="drain")
    assert "RELOCATING" in seen_states and time.time() - started >= 0.3
    assert cluster.get("n1", "/_cluster/health")[1]["relocating_shards"] == 0
    assert cluster.get(victim, "/big/_count")[1]["count"] == 120
    status, body = cluster.put(
        "n1", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": None}}
    )
    assert status == 200
    assert "exclude" not in str(cluster.get("n2", "/_cluster/settings")[1])


def test_allocation_enable_primaries_blocks_replica_recovery_until_reset(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs, roles=LAB_ROLES)
    cluster.start_all()
    cluster.put("n1", "/roll", {"settings": {"number_of_replicas": 1}})
    cluster.put("n1", "/roll/_doc/1", {"x": 1})
    cluster.wait_status("green")
    assert (
        cluster.put("n1", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": "primaries"}})[0]
        == 200
    )
    assert cluster.post("n1", "/_flush")[0] == 200
    assert cluster.stop("n2") == 0
    cluster.start("n2", bootstrap=False)
    cluster.wait_nodes(3, via="n2")

    def replica_held_back():
        body = cluster.health("n1")[1]
        return body["status"] == "yellow" and body["unassigned_shards"] == 1

    # If the restarted n2 wins an election, it recovers the routing from disk (as ES's gateway
    # does): red until the primary is re-initialised. Then the replica must stay held back.
    wait_until(replica_held_back, 10, what="primary active, replica unassigned")
    holds_for(replica_held_back, 1.5, what="replica held back by allocation.enable=primaries")
    explain = cluster.get("n1", "/_cluster/allocation/explain")[1]
    assert any(d["decider"] == "enable" for n in explain["node_allocation_decisions"] for d in n["deciders"])
    assert (
        cluster.put("n1", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": None}})[0] == 200
    )
    cluster.wait_status("green", via="n2")


def test_voting_config_exclusions(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs)
    cluster.start_all()
    status, body = cluster.post("n1", "/_cluster/voting_config_exclusions")
    assert status == 400
    master = wait_until(cluster.master_name, 10, what="a master")
    state = cluster.get("n1", "/_cluster/state")[1]
    master_id = next(nid for nid, n in state["nodes"].items() if n["name"] == master)
    status, _ = cluster.post("n1", f"/_cluster/voting_config_exclusions?node_names={master}")
    assert status == 200
    coord = cluster.get("n1", "/_cluster/state")[1]["metadata"]["cluster_coordination"]
    assert master_id not in coord["last_committed_config"]
    assert coord["voting_config_exclusions"] == [{"node_id": master_id, "node_name": master}]
    others = [n for n in cluster.names if n != master]
    wait_until(lambda: cluster.master_name(others[0]) not in (None, master), 15, what="master hand-over")
    assert cluster.stop(master) == 0
    cluster.wait_nodes(2, via=others[0])
    assert cluster.put(others[1], "/still/_doc/1", {"ok": 1})[0] == 201
    status, _ = cluster.delete(others[0], "/_cluster/voting_config_exclusions")
    assert status == 200
    coord = cluster.get(others[1], "/_cluster/state")[1]["metadata"]["cluster_coordination"]
    assert coord["voting_config_exclusions"] == []


def test_replica_of_departed_node_waits_for_delayed_timeout(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs)
    cluster.start_all()
    # 4 s: long enough that noticing the departure under CPU load still falls inside the delay.
    settings = {"number_of_replicas": 1, "unassigned.node_left.delayed_timeout": "4s"}
    assert cluster.put("n1", "/delayed", {"settings": settings})[0] == 200
    cluster.put("n1", "/delayed/_doc/1", {"x": 1})
    cluster.wait_status("green")
    master = wait_until(cluster.master_name, 10, what="a master")
    holder = (
        next(r["node"] for r in cluster.shards() if r["prirep"] == "r" and r["node"] != master)
        if any(r["prirep"] == "r" and r["node"] != master for r in cluster.shards())
        else next(r["node"] for r in cluster.shards() if r["node"] != master)
    )
    left_at = time.time()
    assert cluster.stop(holder) == 0
    via = master
    cluster.wait_nodes(2, via=via)
    body = cluster.health(via)[1]
    assert body["status"] == "yellow" and body["delayed_unassigned_shards"] == 1, body
    explain = cluster.get(via, "/_cluster/allocation/explain")[1]
    assert explain["can_allocate"] == "allocation_delayed", explain
    cluster.wait_status("green", via=via)
    assert time.time() - left_at >= 4.0
    assert holder not in {r["node"] for r in cluster.shards(via)}


def test_allocation_settings_validated_like_es(shared):
    def put(settings):
        return shared.put("n1", "/_cluster/settings", {"transient": settings})

    # ES upper-cases allocation.enable before parsing it: any case is valid, and honoured.
    status, body = put({"cluster.routing.allocation.enable": "NONE"})
    assert status == 200, body
    try:
        status, body = shared.put("n2", "/blocked?timeout=1s", {"settings": {"number_of_replicas": 0}})
        assert status == 200 and body["shards_acknowledged"] is False, body
    finally:
        assert put({"cluster.routing.allocation.enable": None})[0] == 200
    shared.wait_status("green")
    assert shared.delete("n1", "/blocked")[0] == 200
    status, body = put({"cluster.routing.allocation.exclude._ip": "10.0.0.1,not-an-ip"})
    assert status == 400 and "invalid IP address [not-an-ip]" in body["error"]["reason"], body
    assert put({"cluster.routing.allocation.exclude._ip": "10.0.0.*"})[0] == 200
    assert put({"cluster.routing.allocation.exclude._ip": None})[0] == 200
    status, body = put({"action.auto_create_index": "+logs-*,-"})
    assert status == 400 and "must contain an index name after [-]" in body["error"]["reason"], body
    status, body = shared.get("n1", "/_cluster/state/metadata,bogus")
    assert status == 400 and "unrecognized metric: [bogus]" in body["error"]["reason"], body
    status, body = shared.get("n1", "/_cluster/health?wait_for_active_shards=some")
    assert status == 400, body
    status, body = shared.get("n1", "/_cluster/health?wait_for_events=soonish")
    assert status == 400, body
    assert shared.get("n1", "/_cluster/health?wait_for_events=languid")[0] == 200


def test_require_filter_needs_every_attribute_to_match(shared):
    # require is an AND of all its filters: no node is both n1 and n2, so nothing can go anywhere.
    settings = {"cluster.routing.allocation.require._name": "n1,n2"}
    assert shared.put("n1", "/_cluster/settings", {"transient": settings})[0] == 200
    try:
        status, body = shared.put("n1", "/required?timeout=1s", {"settings": {"number_of_replicas": 0}})
        assert status == 200 and body["shards_acknowledged"] is False, body
        explain = shared.get("n1", "/_cluster/allocation/explain")[1]
        assert explain["index"] == "required" and explain["can_allocate"] == "no", explain
    finally:
        assert (
            shared.put("n1", "/_cluster/settings", {"transient": {"cluster.routing.allocation.require._name": None}})[0]
            == 200
        )
    shared.wait_status("green")
    assert shared.delete("n1", "/required")[0] == 200


def test_auto_create_index_patterns(shared):
    rules = {"action.auto_create_index": "+logs-*,-*"}
    assert shared.put("n1", "/_cluster/settings", {"transient": rules})[0] == 200
    try:
        assert shared.put("n2", "/logs-app/_doc/1", {"a": 1})[0] == 201
        status, body = shared.put("n2", "/metrics/_doc/1", {"a": 1})
        assert status == 404 and body["error"]["type"] == "index_not_found_exception", body
        assert "contains [-*] which forbids automatic creation" in body["error"]["reason"]
        only = {"action.auto_create_index": "logs-*"}
        assert shared.put("n1", "/_cluster/settings", {"transient": only})[0] == 200
        status, body = shared.put("n3", "/metrics/_doc/1", {"a": 1})
        assert status == 404 and "([logs-*]) doesn't match" in body["error"]["reason"], body
    finally:
        assert shared.put("n1", "/_cluster/settings", {"transient": {"action.auto_create_index": None}})[0] == 200
    assert shared.delete("n1", "/logs-app")[0] == 200


def test_auto_create_index_as_yaml_list_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"action.auto_create_index": ["+logs-*", "-*"]}))
    assert "[action.auto_create_index] is a YAML list" in out


def test_auto_create_index_invalid_refused(tmp_path):
    out = refused(tmp_path, lambda s: s.update({"action.auto_create_index": "+"}))
    assert "must contain an index name after [+]" in out


def test_voting_exclusion_of_non_master_node_is_skipped_and_absent_node_recorded(tmp_path, procs):
    cluster = EsCluster(tmp_path, procs, roles={"n1": ["master", "data"], "n2": ["data"]}, count=2)
    cluster.start_all()
    assert cluster.post("n2", "/_cluster/voting_config_exclusions?node_names=n2")[0] == 200
    coord = cluster.get("n1", "/_cluster/state")[1]["metadata"]["cluster_coordination"]
    assert coord["voting_config_exclusions"] == []
    assert cluster.post("n2", "/_cluster/voting_config_exclusions?node_names=ghost")[0] == 200
    coord = cluster.get("n1", "/_cluster/state")[1]["metadata"]["cluster_coordination"]
    assert coord["voting_config_exclusions"] == [{"node_id": "_absent_", "node_name": "ghost"}]
    assert cluster.master_name("n2") == "n1"


def test_node_filters_follow_es_semantics():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "haelklab", "standins"))
    import es_cluster  # noqa: PLC0415 - the stand-in's pure cluster logic, importable only from its directory

    node = {"name": "n1", "host": "127.0.0.1", "attributes": {"zone": "a"}}

    def decision(filters):
        settings = {f"cluster.routing.allocation.{key}": value for key, value in filters.items()}
        return es_cluster.node_filter_decision(settings, node, "id-1")

    assert decision({"require._name": "n1,n2"}) is not None  # require: every value must match
    assert decision({"require._name": "n*", "require.zone": "a"}) is None
    assert decision({"exclude.zone": "b,a"}) is not None  # exclude/include: any value matches
    assert decision({"include.zone": "b"}) is not None
    assert decision({"include.rack": "r1"}) is not None  # a node without the attribute does not match
    assert decision({"exclude._id": "id-*"}) is None  # _id is compared exactly, no wildcards
    assert decision({"exclude._id": "id-1"}) is not None


def test_nodes_stats_and_cat_allocation_answer_like_es(shared):
    """The two calls `haelk status` makes for heap, disk and shards per node."""
    status, body = shared.put("n1", "/alloc", {"settings": {"number_of_shards": 2, "number_of_replicas": 1}})
    assert status == 200, body
    shared.wait_status("green")
    status, stats = shared.get("n2", "/_nodes/stats/jvm,fs")
    assert status == 200, stats
    assert stats["_nodes"]["successful"] == 3
    names = sorted(node["name"] for node in stats["nodes"].values())
    assert names == sorted(shared.names)
    for node in stats["nodes"].values():
        mem = node["jvm"]["mem"]
        assert 0 <= mem["heap_used_percent"] <= 100
        assert mem["heap_used_in_bytes"] <= mem["heap_max_in_bytes"]
        total = node["fs"]["total"]
        assert total["total_in_bytes"] > 0
        assert total["available_in_bytes"] <= total["free_in_bytes"] <= total["total_in_bytes"]
    status, only_jvm = shared.get("n1", "/_nodes/stats/jvm")
    assert status == 200 and all("fs" not in n and "jvm" in n for n in only_jvm["nodes"].values())
    status, body = shared.get("n1", "/_nodes/stats/nosuch")
    assert status == 400 and body["error"]["type"] == "illegal_argument_exception", body

    status, rows = shared.get("n3", "/_cat/allocation?format=json&h=node,shards")
    assert status == 200, rows
    assert all(set(row) == {"node", "shards"} and isinstance(row["shards"], str) for row in rows)
    by_node = {row["node"]: int(row["shards"]) for row in rows}
    assert set(by_node) == set(shared.names)
    # Every active copy is counted on its node; a replica never shares its primary's node.
    _, health = shared.get("n1", "/_cluster/health")
    assert sum(by_node.values()) == health["active_shards"]
    assert len([n for n in by_node.values() if n > 0]) >= 2
