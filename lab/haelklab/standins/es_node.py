"""The running Elasticsearch stand-in node: discovery, elections, state publication,
shard recovery and replication, over a JSON-over-HTTP transport on transport.port.

Coordination follows ES 8 in outline: a master is elected with votes from a majority of
the voting configuration (bootstrapped from cluster.initial_master_nodes, persisted);
voting_only nodes vote but never stand; the master publishes the whole cluster state and
needs acknowledgements from a majority of the old and new configuration; followers
and master check each other every 0.4 s and drop the other after missed checks.
"""

import copy as copymod
import json
import os
import random
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

try:
    from . import es_cluster as cl
    from .common import Server, STACK_VERSION, EsError, StartupError, http_json
    from .es_store import NodeLock, ShardCopy, list_stores, read_json, write_json_atomic
except ImportError:
    import es_cluster as cl
    from common import Server, STACK_VERSION, EsError, StartupError, http_json
    from es_store import NodeLock, ShardCopy, list_stores, read_json, write_json_atomic

VERSION = STACK_VERSION
HEARTBEAT = 0.4
LEADER_TIMEOUT = 2.0


class NotMaster(Exception):
    pass


class HandshakeError(OSError):
    """The peer belongs to another cluster (ES: transport handshake failure)."""


class Fatal(Exception):
    """A condition under which the node must stop with exit code 1."""


def raise_remote_error(resp):
    """Re-raise, as the same EsError, an error a peer answered with over the transport."""
    if "es_error" in resp:
        err = resp["es_error"]["error"]
        extra = {k: v for k, v in err.items() if k not in ("type", "reason", "root_cause")}
        raise EsError(resp["es_error"]["status"], err["type"], err["reason"], **extra)


def shard_for(doc_id, shards):
    return str(zlib.crc32(doc_id.encode()) % shards)


class Node:
    def __init__(self, cfg, log):
        self.cfg, self.log = cfg, log
        self.lock = threading.RLock()
        self.master_lock = threading.Lock()
        self.apply_lock = threading.Lock()
        self.stop = threading.Event()
        # Fan-out RPCs only: tasks in this pool never wait on the pool themselves.
        self.pool = ThreadPoolExecutor(max_workers=32)
        # Background work (shard application, leave handling), which may fan out via self.pool.
        self.background = ThreadPoolExecutor(max_workers=4)
        state_dir = os.path.join(cfg.path_data, "_state")
        os.makedirs(state_dir, exist_ok=True)
        self.state_dir = state_dir
        self.node_lock = NodeLock(cfg.path_data)
        node_meta = read_json(os.path.join(state_dir, "node.json"))
        if node_meta is None:
            node_meta = {"node_id": cl.new_id()}
            write_json_atomic(os.path.join(state_dir, "node.json"), node_meta)
        self.id = node_meta["node_id"]
        coord = read_json(os.path.join(state_dir, "coord.json"), {"term": 0, "voted_for": None})
        self.current_term, self.voted_for = coord["term"], coord["voted_for"]
        self.voted_at = 0.0
        self.state = read_json(os.path.join(state_dir, "cluster.json"))
        self.routing_stale = self.state is not None
        if self.state is not None:
            self.state["settings"]["transient"] = {}  # transient settings do not survive a restart
        if self.state and self.state.get("cluster_uuid_committed") and cfg.initial_master_nodes:
            # ClusterBootstrapService.logBootstrapState: real Elasticsearch only warns.
            minor = ".".join(VERSION.split(".")[:2])
            self.log.warning(
                "this node is locked into cluster UUID [%s] but [cluster.initial_master_nodes] is set to "
                "[%s]; remove this setting to avoid possible data loss caused by subsequent cluster "
                "bootstrap attempts; for further information see https://www.elastic.co/guide/en/"
                "elasticsearch/reference/%s/important-settings.html#initial_master_nodes",
                self.state["cluster_uuid"], ", ".join(cfg.initial_master_nodes), minor)
        self.master_id = None
        self.is_master = False
        self.last_contact = 0.0
        self.peers = {}
        self.shards = {}
        self.recovering = set()
        self.node_stores = {}
        self.failures = {}
        self.quorum_misses = 0
        self.election_after = time.time() + random.uniform(0.1, 0.6)
        self.fatal_error = None
        self.warned = set()
        self.info = {
            "name": cfg.node_name,
            "roles": cfg.roles,
            "host": cfg.host,
            "ephemeral_id": cl.new_id(),
            "transport_address": f"{cfg.host}:{cfg.transport_port}",
            "http_address": f"{cfg.host}:{cfg.http_port}",
            "heap": cfg.heap,
            # Not in any API answer as such: `_nodes/stats` and `_cat/allocation`
            # read the node's disk usage from it.
            "data_path": cfg.path_data,
            "attributes": {
                key[len("node.attr.") :]: str(value)
                for key, value in cfg.settings.items()
                if key.startswith("node.attr.")
            },
        }
        self.started = time.time()

    # ---------------------------------------------------------------- persistence
    def persist_coord(self):
        write_json_atomic(
            os.path.join(self.state_dir, "coord.json"), {"term": self.current_term, "voted_for": self.voted_for}
        )

    def persist_state(self, state):
        write_json_atomic(os.path.join(self.state_dir, "cluster.json"), state)

    # ---------------------------------------------------------------- transport
    def rpc(self, address, action, body, timeout=2.0):
        host, port = address.rsplit(":", 1)
        status, data = http_json(
            host,
            int(port),
            "POST",
            f"/internal/{action}",
            body,
            timeout=timeout,
            headers={"X-Cluster-Name": self.cfg.cluster_name},
        )
        if status == 403:
            raise HandshakeError(data.get("reason") if isinstance(data, dict) else str(data))
        if status != 200:
            raise OSError(f"{action} to {address} failed: {status} {data}")
        return data

    def node_address(self, node_id):
        with self.lock:
            info = (self.state or {}).get("nodes", {}).get(node_id)
        return info["transport_address"] if info else None

    def transport_server(self):
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                result, status = self.answer(body)
                raw = json.dumps(result).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def answer(self, body):
                remote = self.headers.get("X-Cluster-Name")
                if remote != node.cfg.cluster_name:
                    reason = (
                        f"handshake failed: remote cluster name [{node.cfg.cluster_name}] "
                        f"does not match local cluster name [{remote}]"
                    )
                    return {"reason": reason}, 403
                action = self.path.rsplit("/", 1)[-1]
                handler = getattr(node, "t_" + action, None)
                try:
                    if handler is None:
                        raise EsError(400, "action_not_found_transport_exception", f"No handler for action [{action}]")
                    return handler(body), 200
                except EsError as err:
                    return {"es_error": err.body()}, 200
                except NotMaster as err:
                    return {"not_master": str(err)}, 200
                except Exception as err:  # noqa: BLE001 - report any failure to the caller
                    node.log.exception("transport action [%s] failed", action)
                    return {"failure": repr(err)}, 500

        server = Server((self.cfg.host, self.cfg.transport_port), Handler)
        server.daemon_threads = True
        return server

    # ---------------------------------------------------------------- peer info / votes / joins
    def t_peer_info(self, _body):
        with self.lock:
            master = None
            if self.master_id and (self.is_master or time.time() - self.last_contact < LEADER_TIMEOUT):
                master = self.node_address(self.master_id)
            st = self.state or {}
            return {
                "id": self.id,
                "info": self.info,
                "cluster_uuid": st.get("cluster_uuid"),
                "master": master,
                "term": self.current_term,
                "accepted": [st.get("term", 0), st.get("version", 0)],
            }

    def t_request_vote(self, body):
        with self.lock:
            if body["term"] < self.current_term or self.is_master:
                return {"granted": False, "term": self.current_term}
            if (
                self.master_id
                and self.master_id != body["candidate"]
                and time.time() - self.last_contact < LEADER_TIMEOUT
            ):
                return {"granted": False, "term": self.current_term}
            if body["term"] > self.current_term:
                self.current_term, self.voted_for = body["term"], None
                self.persist_coord()
            mine = [self.state["term"], self.state["version"]] if self.state else [0, 0]
            if self.voted_for not in (None, body["candidate"]) or list(body["accepted"]) < mine:
                return {"granted": False, "term": self.current_term}
            self.voted_for = body["candidate"]
            self.voted_at = time.time()
            self.persist_coord()
            self.master_id = None
            return {
                "granted": True,
                "term": self.current_term,
                "id": self.id,
                "info": self.info,
                "stores": list_stores(self.cfg.path_data),
            }

    def t_join(self, body):
        if not self.is_master:
            raise NotMaster("not the master")
        with self.lock:
            uuid = self.state["cluster_uuid"]
            bootstrap = self.state.get("bootstrap_names", [])
        if body["cluster_uuid"] and body.get("cluster_uuid_committed") and body["cluster_uuid"] != uuid:
            raise EsError(
                400,
                "coordination_state_rejected_exception",
                f"This node previously joined a cluster with UUID [{body['cluster_uuid']}] and is now trying "
                f"to join a different cluster with UUID [{uuid}]. This is forbidden and usually indicates an "
                "incorrect discovery or cluster bootstrapping configuration.",
                fatal=False,
            )
        initial = body.get("initial_master_nodes") or []
        if (
            initial
            and not body.get("cluster_uuid_committed")
            and (sorted(initial) != sorted(bootstrap) or body["info"]["name"] not in bootstrap)
        ):
            raise EsError(
                400,
                "illegal_state_exception",
                f"node [{body['info']['name']}] has [cluster.initial_master_nodes] {initial} set but is joining "
                f"the already formed cluster [{uuid}] (bootstrapped by {bootstrap}); remove "
                "cluster.initial_master_nodes from its elasticsearch.yml: it must never be set on a node "
                "joining an existing cluster",
                fatal=True,
            )
        self.node_stores[body["id"]] = body["stores"]

        def add(state):
            old = state["nodes"].get(body["id"])
            if old and old["ephemeral_id"] != body["info"]["ephemeral_id"]:
                cl.remove_nodes(state, [body["id"]], "NODE_RESTARTING")
            state["nodes"][body["id"]] = body["info"]

        self.submit(add, f"node-join[{body['info']['name']}]")
        return {"ok": True}

    # ---------------------------------------------------------------- publication
    def accept_leader(self, term, master, why):
        """A message from a master in `term`: False if the term is stale, else adopt the term
        (a newer one counts as a vote for that master) and step down if we thought we led."""
        with self.lock:
            if term < self.current_term:
                return False
            if term > self.current_term:
                self.current_term, self.voted_for = term, master
                self.persist_coord()
            if self.is_master and master != self.id:
                self.step_down(why)
            return True

    def t_publish(self, body):
        new = body["state"]
        with self.lock:
            if not self.accept_leader(new["term"], new["master"], "another master published a state"):
                return {"ok": False, "term": self.current_term}
            if (
                self.state
                and not self.routing_stale
                and new["term"] == self.state["term"]
                and new["version"] <= self.state["version"]
            ):
                self.master_id, self.last_contact = new["master"], time.time()
                return {"ok": True, "id": self.id}
            if self.master_id != new["master"]:
                self.log.info(
                    "master node changed {previous [%s], current [%s]}",
                    self.master_id,
                    new["nodes"].get(new["master"], {}).get("name"),
                )
            self.master_id, self.last_contact = new["master"], time.time()
            self.set_state(new)
        self.background.submit(self.apply_shards)
        return {"ok": True, "id": self.id}

    def set_state(self, new):
        with self.lock:
            self.state = new
            self.routing_stale = False
            self.persist_state(new)

    def t_heartbeat(self, body):
        with self.lock:
            if not self.accept_leader(body["term"], body["master"], "heartbeat from another master"):
                return {"ok": False, "term": self.current_term}
            self.master_id, self.last_contact = body["master"], time.time()
            version = self.state["version"] if self.state and not self.routing_stale else -1
            term = self.state["term"] if self.state else -1
        return {
            "ok": True,
            "version": version,
            "term": term,
            "stores": list_stores(self.cfg.path_data),
            "ephemeral_id": self.info["ephemeral_id"],
        }

    def step_down(self, why):
        with self.lock:
            if self.is_master:
                self.log.warning("stepping down as master: %s", why)
                # Tell the followers at once instead of letting them time out (a faster hand-over).
                addresses = [
                    i["transport_address"] for nid, i in (self.state or {}).get("nodes", {}).items() if nid != self.id
                ]
                notice = {"master": self.id, "term": self.current_term}
                for address in addresses:
                    self.background.submit(self._ask, address, "master_leaving", notice)
            self.is_master = False
            self.master_id = None
            self.last_contact = 0.0
            self.election_after = time.time() + random.uniform(0.3, 1.0)

    def publish(self, new, old_config):
        targets = [(nid, info["transport_address"]) for nid, info in new["nodes"].items() if nid != self.id]
        acks = {self.id}
        higher_term = []

        def send(target):
            nid, address = target
            try:
                resp = self.rpc(address, "publish", {"state": new}, timeout=3.0)
            except OSError:
                self.failures[nid] = self.failures.get(nid, 0) + 3
                return
            if resp.get("ok"):
                acks.add(nid)
            elif resp.get("term", 0) > new["term"]:
                higher_term.append(resp["term"])

        list(self.pool.map(send, targets)) if targets else None
        if higher_term:
            with self.lock:
                self.current_term = max(self.current_term, max(higher_term))
                self.persist_coord()
            return False
        if not (cl.has_quorum(new["voting_config"], acks) and cl.has_quorum(old_config, acks)):
            self.log.warning(
                "publication of cluster state version [%s] failed: acks from %s, voting config %s",
                new["version"],
                sorted(acks),
                new["voting_config"],
            )
            return False
        with self.lock:
            self.set_state(new)
        self.background.submit(self.apply_shards)
        return True

    def submit(self, fn, source="update"):
        """Run a cluster-state update on the master, reroute, reconfigure, publish; return fn's result."""
        with self.master_lock:
            if not self.is_master:
                raise NotMaster("not the master")
            with self.lock:
                new = copymod.deepcopy(self.state)
                old_config = list(self.state["voting_config"])
            result = fn(new)
            cl.reroute(new, self.node_stores)
            cl.reconfigure(new)
            new["version"] += 1
            new["term"], new["master"] = self.current_term, self.id
            # The previous state was published to a quorum, so its cluster UUID is committed.
            new["cluster_uuid_committed"] = True
            if not self.publish(new, old_config):
                self.step_down(f"failed to publish [{source}]")
                raise NotMaster("failed to publish the cluster state: no quorum")
        if self.id not in new["voting_config"]:
            self.step_down("this node is no longer in the voting configuration (voting config exclusion)")
        return result

    # ---------------------------------------------------------------- election and discovery
    def may_win_election(self):
        if not self.cfg.master_eligible or self.cfg.voting_only or not self.state:
            return False
        excluded = {e["node_id"] for e in self.state.get("exclusions", [])}
        return self.id in self.state["voting_config"] and self.id not in excluded

    def discovery_round(self):
        addresses = {f"{h}:{p}" for h, p in self.cfg.seed_hosts}
        with self.lock:
            if self.state:
                addresses |= {i["transport_address"] for i in self.state["nodes"].values()}
        addresses.discard(self.info["transport_address"])

        def probe(address):
            try:
                return address, self.rpc(address, "peer_info", {}, timeout=0.5)
            except HandshakeError as err:
                if address not in self.warned:
                    self.warned.add(address)
                    self.log.warning("address [%s], node [null], requests [0] - %s", address, err)
                return address, None
            except OSError:
                return address, None

        results = dict(self.pool.map(probe, sorted(addresses)))
        self.peers = {a: r for a, r in results.items() if r}
        seeds_all_up = all(
            results.get(f"{h}:{p}") for h, p in self.cfg.seed_hosts if f"{h}:{p}" != self.info["transport_address"]
        )
        masters = {r["master"] for r in self.peers.values() if r["master"]}
        if masters:
            self.try_join(sorted(masters)[0])
            return
        with self.lock:
            has_config = bool(self.state and self.state["voting_config"])
        if not has_config:
            self.maybe_bootstrap(seeds_all_up)
        if self.may_win_election() and time.time() >= self.election_after:
            self.run_election()

    def maybe_bootstrap(self, seeds_all_up):
        initial = self.cfg.initial_master_nodes
        if not initial or not self.cfg.master_eligible:
            return
        found = {self.cfg.node_name: self.id}
        for peer in self.peers.values():
            if "master" in peer["info"]["roles"] and peer["info"]["name"] in initial and not peer["cluster_uuid"]:
                found[peer["info"]["name"]] = peer["id"]
        if seeds_all_up:
            names = {p["info"]["name"] for p in self.peers.values() if "master" in p["info"]["roles"]} | {
                self.cfg.node_name
            }
            missing = [n for n in initial if n not in names]
            if missing:
                raise Fatal(
                    f"[cluster.initial_master_nodes] names {missing}, which is not a master-eligible node "
                    f"found through [discovery.seed_hosts] (all seed hosts answered; found {sorted(names)}); "
                    "the names must match node.name exactly"
                )
        if len([n for n in initial if n in found]) * 2 <= len(initial):
            return
        config = [found.get(n, cl.PLACEHOLDER + n) for n in initial]
        with self.lock:
            if self.state and self.state["voting_config"]:
                return
            self.log.info("setting initial configuration to %s", config)
            self.state = {
                "cluster_uuid": None,
                "term": 0,
                "version": 0,
                "master": None,
                "nodes": {},
                "voting_config": config,
                "exclusions": [],
                "bootstrap_names": list(initial),
                "settings": {"persistent": {}, "transient": {}},
                "indices": {},
                "routing": {},
                "repositories": {},
                "slm": {},
                "snapshots": {},
            }
            self.routing_stale = True
            self.persist_state(self.state)

    def try_join(self, master_address):
        body = {
            "id": self.id,
            "info": self.info,
            "stores": list_stores(self.cfg.path_data),
            "cluster_uuid": (self.state or {}).get("cluster_uuid"),
            "cluster_uuid_committed": bool((self.state or {}).get("cluster_uuid_committed")),
            "initial_master_nodes": self.cfg.initial_master_nodes,
        }
        try:
            resp = self.rpc(master_address, "join", body, timeout=5.0)
        except OSError as err:
            self.log.info("failed to join %s: %s", master_address, err)
            return
        if "es_error" in resp:
            err = resp["es_error"]["error"]
            if err.get("fatal"):
                raise Fatal(err["reason"])
            self.log.warning("join rejected by %s: %s", master_address, err["reason"])
            time.sleep(1.0)

    def t_pre_vote(self, body):
        """Would this node vote for the candidate? No state changes (ES's pre-voting round)."""
        with self.lock:
            if self.is_master:
                return {"granted": False, "term": self.current_term}
            if self.master_id and time.time() - self.last_contact < LEADER_TIMEOUT:
                return {"granted": False, "term": self.current_term}
            if self.voted_for not in (None, body["candidate"]) and time.time() - self.voted_at < LEADER_TIMEOUT:
                # We just voted for another candidate that is probably publishing its first state:
                # backing a rival now would only bump the term under it (an election storm).
                return {"granted": False, "term": self.current_term}
            mine = [self.state["term"], self.state["version"]] if self.state else [0, 0]
            return {"granted": list(body["accepted"]) >= mine, "term": self.current_term, "id": self.id}

    def run_election(self):
        with self.lock:
            accepted = [self.state["term"], self.state["version"]]
            config = list(self.state["voting_config"])
        # Pre-vote first, so a node that cannot win never bumps the term and unseats a healthy master.
        pre_votes = {self.id}
        for resp in self.pool.map(
            lambda a: self._ask(a, "pre_vote", {"candidate": self.id, "accepted": accepted}), list(self.peers)
        ):
            if resp and resp.get("granted"):
                pre_votes.add(resp["id"])
        if not cl.has_quorum(config, pre_votes):
            self.election_after = time.time() + random.uniform(0.3, 1.0)
            return
        with self.lock:
            if self.master_id is not None:
                return  # a master was found while pre-voting: bumping the term now would unseat it
            peer_terms = [p["term"] for p in self.peers.values()]
            term = max([self.current_term] + peer_terms) + 1
            self.current_term, self.voted_for = term, self.id
            self.persist_coord()
            accepted = [self.state["term"], self.state["version"]]
            config = list(self.state["voting_config"])
        self.election_after = time.time() + random.uniform(0.5, 1.5)
        request = {"term": term, "candidate": self.id, "accepted": accepted}
        votes = {self.id: {"info": self.info, "stores": list_stores(self.cfg.path_data)}}
        for resp in self.pool.map(lambda a: self._ask(a, "request_vote", request), list(self.peers)):
            if resp and resp.get("granted"):
                votes[resp["id"]] = resp
            elif resp and resp.get("term", 0) > term:
                with self.lock:
                    self.current_term = max(self.current_term, resp["term"])
                    self.persist_coord()
        if not cl.has_quorum(config, votes):
            return
        self.become_master(term, votes, config)

    def _ask(self, address, action, body):
        try:
            return self.rpc(address, action, body, timeout=1.0)
        except OSError:
            return None

    def become_master(self, term, votes, old_config):
        with self.master_lock:
            with self.lock:
                if self.current_term != term:
                    return
                new = copymod.deepcopy(self.state)
                stale = self.routing_stale
                self.is_master, self.master_id, self.last_contact = True, self.id, time.time()
            if stale:
                new["nodes"] = {}
                cl.rebuild_routing(new)
            restarted = [
                nid
                for nid, vote in votes.items()
                if nid in new["nodes"] and new["nodes"][nid]["ephemeral_id"] != vote["info"]["ephemeral_id"]
            ]
            cl.remove_nodes(new, restarted, "NODE_RESTARTING")
            for nid, vote in votes.items():
                new["nodes"][nid] = vote["info"]
                self.node_stores[nid] = vote["stores"]
            if not new["cluster_uuid"] or not new.get("cluster_uuid_committed"):
                # A UUID this node only accepted from a master that never committed it is not binding.
                new["cluster_uuid"] = new["cluster_uuid"] or cl.new_id()
                new["cluster_uuid_committed"] = False
            new["term"], new["master"] = term, self.id
            self.failures = {}
            cl.reroute(new, self.node_stores)
            cl.reconfigure(new)
            new["version"] += 1
            self.log.info(
                "elected-as-master ([%d] nodes joined), term: %d, version: %d, cluster uuid [%s]",
                len(votes),
                term,
                new["version"],
                new["cluster_uuid"],
            )
            if not self.publish(new, old_config):
                self.step_down("failed to publish the first state")
                return
        if not new.get("cluster_uuid_committed"):
            try:
                self.submit(lambda s: None, "commit-cluster-uuid")
            except NotMaster:
                pass

    # ---------------------------------------------------------------- master duties
    def master_round(self):
        with self.lock:
            nodes = {nid: i["transport_address"] for nid, i in self.state["nodes"].items() if nid != self.id}
            ephemeral = {nid: i["ephemeral_id"] for nid, i in self.state["nodes"].items()}
            version, term, config = self.state["version"], self.current_term, list(self.state["voting_config"])
        body = {"term": term, "master": self.id, "version": version}

        def beat(item):
            nid, address = item
            try:
                return nid, self.rpc(address, "heartbeat", body, timeout=1.0), None
            except ConnectionRefusedError as err:
                return nid, None, err
            except OSError as err:
                return nid, None, err

        alive = {self.id}
        gone = []
        for nid, resp, err in self.pool.map(beat, list(nodes.items())):
            if resp is None:
                self.failures[nid] = self.failures.get(nid, 0) + (3 if isinstance(err, ConnectionRefusedError) else 1)
                if self.failures[nid] >= 3:
                    gone.append(nid)
                continue
            if not resp.get("ok"):
                self.step_down(f"node [{nid}] has a higher term [{resp.get('term')}]")
                return
            if resp.get("ephemeral_id") != ephemeral[nid]:
                gone.append(nid)  # the node restarted: the old incarnation has left
                continue
            self.failures[nid] = 0
            alive.add(nid)
            self.node_stores[nid] = resp["stores"]
            if resp["version"] < version:
                with self.lock:
                    snapshot = self.state
                try:
                    self.rpc(nodes[nid], "publish", {"state": snapshot}, timeout=3.0)
                except OSError:
                    pass
        self.node_stores[self.id] = list_stores(self.cfg.path_data)
        if not cl.has_quorum(config, alive):
            self.quorum_misses += 1
            if self.quorum_misses >= 3:
                self.step_down(f"lost quorum: only {sorted(alive)} of voting config {config} respond")
            return
        self.quorum_misses = 0
        if gone:
            with self.lock:
                names = [self.state["nodes"].get(n, {}).get("name", n) for n in gone]
            self.log.info("node-left %s, reason: disconnected", names)
            for nid in gone:
                self.failures.pop(nid, None)
            self.submit(lambda s: cl.remove_nodes(s, gone), "node-left")
            return
        with self.lock:
            probe = copymod.deepcopy(self.state)
        if cl.reroute(probe, self.node_stores) | cl.reconfigure(probe):
            self.submit(lambda s: None, "reroute")

    def t_shard_started(self, body):
        self.submit(lambda s: cl.start_shard(s, body["index"], body["shard"], body["alloc"]), "shard-started")
        return {"ok": True}

    def t_shard_failed(self, body):
        self.log.warning(
            "shard failed [%s][%s] allocation [%s]: %s", body["index"], body["shard"], body["alloc"], body.get("why")
        )
        self.submit(lambda s: cl.fail_shard(s, body["index"], body["shard"], body["alloc"]), "shard-failed")
        return {"ok": True}

    def t_master_op(self, body):
        if not self.is_master:
            raise NotMaster("not the master")
        return {"result": self.master_ops.run(body["op"], body["args"])}

    def call_master(self, op, args, master_timeout=30.0):
        """Run a master operation through whichever node is master, waiting for one to exist."""
        deadline = time.time() + (master_timeout if master_timeout is not None else 1e9)
        while True:
            address = None
            with self.lock:
                master = self.master_id
                if master and not self.is_master:
                    address = self.node_address(master)
            try:
                if master == self.id and self.is_master:
                    return self.master_ops.run(op, args)
                if address:
                    resp = self.rpc(address, "master_op", {"op": op, "args": args}, timeout=60.0)
                    raise_remote_error(resp)
                    if "result" in resp:
                        return resp["result"]
            except (NotMaster, OSError):
                pass
            if time.time() >= deadline:
                raise EsError(503, "master_not_discovered_exception", None)
            time.sleep(0.1)

    # ---------------------------------------------------------------- shards
    def my_copies(self, state):
        for name, shards in state["routing"].items():
            meta = state["indices"][name]
            for shard, copies in shards.items():
                for c in copies:
                    if c["node"] == self.id:
                        yield name, meta, shard, c

    def apply_shards(self):
        with self.apply_lock:
            with self.lock:
                state = self.state
                if state is None or self.routing_stale:
                    return
            mine = set()
            for name, meta, shard, c in self.my_copies(state):
                key = (meta["uuid"], shard)
                mine.add(key)
                if c["state"] in cl.ACTIVE:
                    with self.lock:
                        current = self.shards.get(key)
                    if current is None or current.alloc != c["alloc"]:
                        loaded = ShardCopy.load(self.cfg.path_data, meta["uuid"], shard)
                        if loaded is not None and loaded.alloc == c["alloc"]:
                            with self.lock:
                                self.shards[key] = loaded
                elif c["state"] == "INITIALIZING":
                    with self.lock:
                        if c["alloc"] in self.recovering:
                            continue
                        self.recovering.add(c["alloc"])
                    threading.Thread(target=self.recover, args=(name, meta, shard, dict(c)), daemon=True).start()
            if not state.get("master"):
                return
            uuids = {meta["uuid"]: name for name, meta in state["indices"].items()}
            for store_key in list_stores(self.cfg.path_data):
                index_uuid, shard = store_key.split("/")
                key = (index_uuid, shard)
                if key in mine:
                    continue
                name = uuids.get(index_uuid)
                delete = name is None
                if name is not None:
                    copies = state["routing"][name].get(shard, [])
                    started = [c for c in copies if c["state"] == "STARTED"]
                    delete = len(started) == 1 + state["indices"][name]["replicas"]
                if delete:
                    with self.lock:
                        self.shards.pop(key, None)
                    ShardCopy(self.cfg.path_data, index_uuid, shard, None, name).destroy()
                    self.log.info("deleted shard copy [%s][%s] (no longer allocated here)", name or index_uuid, shard)

    def target_copy(self, index_uuid, shard, alloc, name):
        """The local copy a recovery or replication writes into, created empty if needed."""
        with self.lock:
            current = self.shards.get((index_uuid, shard))
            if current is not None and current.alloc == alloc:
                return current
            created = ShardCopy.create_empty(self.cfg.path_data, index_uuid, shard, alloc, name)
            self.shards[(index_uuid, shard)] = created
            return created

    def find_primary_address(self, name, shard):
        with self.lock:
            state = self.state
        copies = state["routing"].get(name, {}).get(shard, [])
        primary = next((c for c in copies if c["primary"] and c["state"] in cl.ACTIVE), None)
        if primary is None:
            return None, None
        return primary["node"], state["nodes"].get(primary["node"], {}).get("transport_address")

    def recover(self, name, meta, shard, copy):
        alloc = copy["alloc"]
        try:
            if copy["recovery"] == "empty":
                self.target_copy(meta["uuid"], shard, alloc, name)
                time.sleep(0.05)
            elif copy["recovery"] == "existing_store":
                loaded = ShardCopy.load(self.cfg.path_data, meta["uuid"], shard)
                if loaded is None or loaded.alloc != alloc:
                    raise OSError("the shard copy on disk is gone or stale")
                with self.lock:
                    self.shards[(meta["uuid"], shard)] = loaded
                time.sleep(max(0.3, len(loaded.docs) * 0.0005))
            else:
                target = self.target_copy(meta["uuid"], shard, alloc, name)
                deadline = time.time() + 10
                while True:
                    primary_id, address = self.find_primary_address(name, shard)
                    if address and primary_id != self.id:
                        break
                    if time.time() > deadline:
                        raise OSError("no active primary to recover from")
                    time.sleep(0.2)
                req = {"uuid": meta["uuid"], "shard": shard}
                count = self.rpc(address, "recovery_start", req, timeout=5.0)["count"]
                # Peer recovery takes time proportional to the data, like copying segments.
                time.sleep(min(20.0, max(0.3, count * 0.002)))
                ops = self.rpc(address, "recovery_finalize", req, timeout=30.0)["ops"]
                target.apply_many(ops)
                self.log.info("recovered [%s][%s] from [%s]: %d documents", name, shard, primary_id, len(ops))
            self.report_to_master("shard_started", {"index": name, "shard": shard, "alloc": alloc})
        except Exception as err:  # noqa: BLE001 - any failure fails the copy, as in ES
            self.log.warning("recovery of [%s][%s] failed: %s", name, shard, err)
            self.report_to_master("shard_failed", {"index": name, "shard": shard, "alloc": alloc, "why": str(err)})
        finally:
            with self.lock:
                self.recovering.discard(alloc)

    def still_assigned(self, name, shard, alloc):
        with self.lock:
            copies = (self.state or {}).get("routing", {}).get(name, {}).get(shard, [])
        return any(c["alloc"] == alloc and c["node"] == self.id and c["state"] == "INITIALIZING" for c in copies)

    def report_to_master(self, action, body):
        deadline = time.time() + 30
        while time.time() < deadline and not self.stop.is_set():
            if action == "shard_started" and not self.still_assigned(body["index"], body["shard"], body["alloc"]):
                return
            with self.lock:
                master, is_master = self.master_id, self.is_master
            try:
                if is_master:
                    getattr(self, "t_" + action)(body)
                    return
                if master:
                    resp = self.rpc(self.node_address(master), action, body, timeout=5.0)
                    if resp.get("ok"):
                        return
            except (OSError, NotMaster, TypeError):
                pass
            time.sleep(0.2)

    def t_recovery_start(self, body):
        shard = self.shards.get((body["uuid"], body["shard"]))
        if shard is None:
            raise OSError("no such shard copy here")
        return {"count": len(shard.docs)}

    def t_recovery_finalize(self, body):
        shard = self.shards.get((body["uuid"], body["shard"]))
        if shard is None:
            raise OSError("no such shard copy here")
        return {"ops": shard.ops()}

    def t_replicate(self, body):
        target = self.target_copy(body["uuid"], body["shard"], body["alloc"], body["index"])
        target.apply(body["op"])
        return {"ok": True}

    def t_write(self, body):
        name, shard = body["index"], body["shard"]
        with self.lock:
            state = self.state
            if state is None or name not in state["indices"]:
                return {"retry": "no such index here yet"}
            meta = state["indices"][name]
            copies = state["routing"][name][shard]
            mine = next((c for c in copies if c["node"] == self.id and c["primary"] and c["state"] in cl.ACTIVE), None)
            local = self.shards.get((meta["uuid"], shard))
        if mine is None or local is None or local.alloc != mine["alloc"]:
            return {"retry": "not the primary"}
        targets = [c for c in copies if c["node"] and c["node"] != self.id and c["state"] != "UNASSIGNED"]
        with local.lock:
            existing = local.docs.get(body["id"])
            if body["op_type"] == "create" and existing is not None:
                raise EsError(
                    409,
                    "version_conflict_engine_exception",
                    f"[{body['id']}]: version conflict, document already exists (current version "
                    f"[{existing['version']}])",
                    index_uuid=meta["uuid"],
                    shard=shard,
                    index=name,
                )
            op = {
                "id": body["id"],
                "source": body["source"],
                "version": (existing["version"] + 1) if existing else 1,
                "seq_no": local.max_seq + 1,
            }
            local.apply(op)
            ok, failed = 1, 0
            for target in targets:
                address = state["nodes"].get(target["node"], {}).get("transport_address")
                try:
                    self.rpc(
                        address,
                        "replicate",
                        {"uuid": meta["uuid"], "shard": shard, "alloc": target["alloc"], "index": name, "op": op},
                        timeout=5.0,
                    )
                    if target["state"] in cl.ACTIVE:
                        ok += 1
                except (OSError, TypeError, AttributeError) as err:
                    failed += 1
                    self.report_to_master(
                        "shard_failed",
                        {"index": name, "shard": shard, "alloc": target["alloc"], "why": f"replication failed: {err}"},
                    )
        return {
            "_index": name,
            "_id": body["id"],
            "_version": op["version"],
            "result": "updated" if existing else "created",
            "_shards": {"total": 1 + meta["replicas"], "successful": ok, "failed": failed},
            "_seq_no": op["seq_no"],
            "_primary_term": state["term"],
        }

    def t_get(self, body):
        with self.lock:
            local = self.shards.get((body["uuid"], body["shard"]))
        if local is None:
            return {"retry": "no copy here"}
        doc = local.docs.get(body["id"])
        return {"doc": doc}

    def t_doc_counts(self, _body):
        with self.lock:
            return {f"{uuid}/{shard}": len(copy.docs) for (uuid, shard), copy in self.shards.items()}

    def t_shard_docs(self, body):
        with self.lock:
            local = self.shards.get((body["uuid"], body["shard"]))
        if local is None:
            return {"retry": "no copy here"}
        return {"ops": local.ops()}

    def t_verify_repository(self, body):
        location = body["location"]
        if not any(os.path.commonpath([location, root]) == root for root in self.cfg.path_repo):
            raise EsError(
                500,
                "repository_exception",
                f"[{body['name']}] location [{location}] doesn't match any of the locations specified by "
                f"path.repo on node [{self.cfg.node_name}]",
            )
        probe = os.path.join(location, f"tests-{self.id}")
        try:
            os.makedirs(location, exist_ok=True)
            with open(probe, "w", encoding="utf-8") as handle:
                handle.write("verify")
            os.remove(probe)
        except OSError as err:
            raise EsError(
                500,
                "repository_verification_exception",
                f"[{body['name']}] store location [{location}] is not accessible on the node "
                f"[{self.cfg.node_name}]: {err}",
            ) from err
        return {"ok": True}

    # ---------------------------------------------------------------- clean shutdown
    def shutdown(self):
        """Tell the cluster we are leaving, as a closed transport connection would in ES."""
        with self.lock:
            is_master, master = self.is_master, self.master_id
            nodes = {
                nid: i["transport_address"] for nid, i in (self.state or {}).get("nodes", {}).items() if nid != self.id
            }
            term = self.current_term
        if is_master:
            self.is_master = False
            for address in nodes.values():
                try:
                    self.rpc(address, "master_leaving", {"master": self.id, "term": term}, timeout=0.5)
                except OSError:
                    pass
        elif master and master in nodes:
            try:
                self.rpc(nodes[master], "node_leaving", {"id": self.id}, timeout=2.0)
            except OSError:
                pass

    def t_master_leaving(self, body):
        with self.lock:
            if self.master_id == body["master"]:
                self.log.info("master node [%s] is shutting down, restarting discovery", body["master"])
                self.master_id = None
                self.election_after = time.time() + random.uniform(0.05, 0.3)
        return {"ok": True}

    def t_node_leaving(self, body):
        if not self.is_master:
            raise NotMaster("not the master")
        with self.lock:
            name = self.state["nodes"].get(body["id"], {}).get("name")
        if name:
            self.log.info("node-left [%s], reason: shutting down", name)
            self.background.submit(self._remove_quietly, body["id"])
        return {"ok": True}

    def _remove_quietly(self, node_id):
        try:
            self.submit(lambda s: cl.remove_nodes(s, [node_id]), "node-left")
        except NotMaster:
            pass

    # ---------------------------------------------------------------- loops
    def run_loops(self):
        def discovery():
            while not self.stop.is_set():
                try:
                    with self.lock:
                        if self.master_id and not self.is_master and time.time() - self.last_contact > LEADER_TIMEOUT:
                            self.log.warning("master node [%s] failed, restarting discovery", self.master_id)
                            self.master_id = None
                            self.election_after = time.time() + random.uniform(0.1, 0.6)
                        idle = self.master_id is None
                    if idle:
                        self.discovery_round()
                    elif self.is_master:
                        self.master_round()
                except Fatal as err:
                    self.fatal_error = str(err)
                    self.stop.set()
                    return
                except NotMaster:
                    pass
                except Exception:  # noqa: BLE001 - keep the node alive; log what went wrong
                    self.log.exception("coordination round failed")
                self.stop.wait(HEARTBEAT if self.is_master else 0.25)

        threading.Thread(target=discovery, daemon=True, name="coordination").start()
