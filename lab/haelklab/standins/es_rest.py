"""REST API of the Elasticsearch stand-in (HTTP on http.port) and the master-side
metadata operations it forwards to the elected master (`MasterOps`).

Strict like ES: unknown endpoints, methods and URL parameters are refused with ES's
status codes and error shapes.
"""

import fnmatch
import ipaddress
import json
import os
import re
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

try:
    from . import es_cluster as cl
    from .common import Server, EsError, StartupError, flatten_settings, now_millis, parse_time
    from .es_config import ROUTING_SETTING, is_known_setting, parse_auto_create_index
    from .es_node import VERSION, NotMaster, raise_remote_error, shard_for
    from .es_store import read_json, write_json_atomic
except ImportError:
    import es_cluster as cl
    from common import Server, EsError, StartupError, flatten_settings, now_millis, parse_time
    from es_config import ROUTING_SETTING, is_known_setting, parse_auto_create_index
    from es_node import VERSION, NotMaster, raise_remote_error, shard_for
    from es_store import read_json, write_json_atomic

COMMON_PARAMS = {"pretty", "human", "error_trace", "filter_path"}
DYNAMIC = [
    ROUTING_SETTING,
    re.compile(
        r"action\.destructive_requires_name|action\.auto_create_index|cluster\.max_shards_per_node|"
        r"cluster\.max_voting_config_exclusions|cluster\.auto_shrink_voting_configuration|"
        r"indices\.recovery\.max_bytes_per_sec|indices\.breaker\.[a-z_.]+|search\.max_buckets|"
        r"logger\.[A-Za-z0-9_.]+|xpack\.monitoring\.collection\.enabled"
    ),
]
ENUMS = {
    "cluster.routing.allocation.enable": ("all", "primaries", "new_primaries", "none"),
    "cluster.routing.rebalance.enable": ("all", "primaries", "replicas", "none"),
}
BOOLEANS = {
    "action.destructive_requires_name",
    "cluster.auto_shrink_voting_configuration",
    "xpack.monitoring.collection.enabled",
    "cluster.routing.allocation.disk.threshold_enabled",
}
INTEGERS = re.compile(
    r"cluster\.routing\.allocation\.(node_concurrent\w*|node_initial_primaries_recoveries|"
    r"total_shards_per_node|cluster_concurrent_rebalance)|cluster\.max_shards_per_node|"
    r"cluster\.max_voting_config_exclusions|search\.max_buckets"
)
INVALID_NAME_CHARS = set('\\/*?"<>| ,#:')


def is_ip_address(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def flatten(data):
    """Nested or dotted settings of a request body as dotted keys; a key given twice is refused."""
    if not isinstance(data, dict):
        raise EsError(400, "illegal_argument_exception", f"malformed settings: expected an object, got [{data}]")
    try:
        return flatten_settings(data)
    except StartupError as err:
        raise EsError(400, "settings_exception", str(err)) from err


def nest(flat):
    out = {}
    for key, value in sorted(flat.items()):
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def validate_index_name(name):
    if name != name.lower():
        raise EsError(
            400, "invalid_index_name_exception", f"Invalid index name [{name}], must be lowercase", index=name
        )
    if name.startswith(("_", "-", "+")) or name in (".", "..") or INVALID_NAME_CHARS & set(name):
        raise EsError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], must not start with '_', '-', or '+' and must not contain "
            "'\\', '/', '*', '?', '\"', '<', '>', '|', ' ', ',', '#', ':'",
            index=name,
        )


def resolve_date_math(name):
    """<snap-{now/d}> -> snap-2026.11.21 (the forms SLM policies use)."""
    if not (name.startswith("<") and name.endswith(">")):
        return name
    java = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}

    def fmt(match):
        pattern = match.group(1) or "yyyy.MM.dd"
        for key, value in java.items():
            pattern = pattern.replace(key, value)
        return time.strftime(pattern, time.gmtime())

    return re.sub(r"\{now(?:/[dMyhHmsw])?(?:\{([^}]*)\})?\}", fmt, name[1:-1])


def filter_path(payload, spec):
    """ES's filter_path: keep only the comma-separated dotted paths (`*` one level, `**` any depth)."""
    patterns = [p.split(".") for p in spec.split(",") if p]

    def keep(node, pats):
        if not pats:
            return node
        if isinstance(node, list):
            kept = [keep(item, pats) for item in node]
            kept = [k for k in kept if k is not None]
            return kept or None
        if not isinstance(node, dict):
            return node if any(not p for p in pats) else None
        out = {}
        for key, value in node.items():
            rests = []
            for pat in pats:
                if not pat:
                    rests.append([])
                elif pat[0] == "**":
                    rests.append(pat)
                    if len(pat) > 1 and fnmatch.fnmatchcase(key, pat[1]):
                        rests.append(pat[2:])
                elif fnmatch.fnmatchcase(key, pat[0]):
                    rests.append(pat[1:])
            if not rests:
                continue
            if any(not r for r in rests):
                out[key] = value
                continue
            sub = keep(value, rests)
            if sub not in (None, {}, []):
                out[key] = sub
        return out or None

    return keep(payload, patterns) or {}


def not_found_index(name, why=None):
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]" + (f" and {why}" if why else ""),
        **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name},
    )


def parse_bool(value, name):
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise EsError(
        400,
        "illegal_argument_exception",
        f"Failed to parse value [{value}] only [true] or [false] are allowed. (parameter [{name}])",
    )


class MasterOps:
    """Metadata operations that only the elected master may run."""

    def __init__(self, node):
        self.node = node

    def run(self, op, args):
        return getattr(self, "op_" + op)(args)

    def state(self):
        with self.node.lock:
            return self.node.state

    def op_create_index(self, args):
        def create(state):
            if args["name"] in state["indices"]:
                meta = state["indices"][args["name"]]
                if args.get("uuid") and meta["uuid"] == args["uuid"]:
                    # A retry of this very request whose first publication was committed.
                    return meta["uuid"]
                raise EsError(
                    400,
                    "resource_already_exists_exception",
                    f"index [{args['name']}/{meta['uuid']}] already exists",
                    index=args["name"],
                )
            created = cl.add_index(state, args["name"], args["shards"], args["replicas"], args.get("uuid"))
            state["indices"][args["name"]]["delayed_timeout"] = args.get("delayed_timeout", 60.0)
            return created

        if args.get("auto") and args["name"] in self.state()["indices"]:
            return self.state()["indices"][args["name"]]["uuid"]
        return self.node.submit(create, f"create-index [{args['name']}]")

    def op_delete_index(self, args):
        def delete(state):
            for name in args["names"]:
                state["indices"].pop(name, None)
                state["routing"].pop(name, None)

        return self.node.submit(delete, f"delete-index {args['names']}")

    def op_set_replicas(self, args):
        return self.node.submit(lambda s: cl.set_replicas(s, args["name"], args["replicas"]), "update-settings")

    def op_set_delay(self, args):
        def update(state):
            state["indices"][args["name"]]["delayed_timeout"] = args["delay"]
            for copies in state["routing"][args["name"]].values():
                for c in copies:
                    if c.get("delayed_until"):
                        c["delayed_until"] = c["since"] + args["delay"]

        return self.node.submit(update, "update-settings")

    def op_cluster_settings(self, args):
        def update(state):
            for scope in ("persistent", "transient"):
                for key, value in args[scope].items():
                    if value is None:
                        state["settings"][scope].pop(key, None)
                    else:
                        state["settings"][scope][key] = value

        self.node.submit(update, "cluster-update-settings")
        return True

    def op_add_exclusions(self, args):
        def add(state):
            # As ES: an absent node is excluded by the half we know (the other is "_absent_"); a
            # present node that is not master-eligible has no vote to take away and is skipped.
            nodes = state["nodes"]
            by_name = {info["name"]: nid for nid, info in nodes.items()}
            wanted = [
                {"node_id": by_name.get(name, "_absent_"), "node_name": name} for name in args.get("node_names", [])
            ]
            wanted += [
                {"node_id": nid, "node_name": nodes.get(nid, {}).get("name", "_absent_")}
                for nid in args.get("node_ids", [])
            ]
            wanted = [e for e in wanted if e["node_id"] not in nodes or cl.is_master_eligible(nodes[e["node_id"]])]
            merged = list(state["exclusions"])
            for entry in wanted:
                if entry not in merged:
                    merged.append(entry)
            limit = int(cl.effective_settings(state).get("cluster.max_voting_config_exclusions", 10))
            if len(merged) > limit:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"add voting config exclusions request for {args} would add [{len(merged)}] exclusions "
                    f"to the existing [{len(state['exclusions'])}] which would exceed the maximum of "
                    f"[{limit}] set by [cluster.max_voting_config_exclusions]",
                )
            state["exclusions"] = merged
            return [e["node_id"] for e in wanted]

        return self.node.submit(add, "add-voting-config-exclusions")

    def op_clear_exclusions(self, args):
        def clear(state):
            if args["wait_for_removal"]:
                present = [e["node_name"] for e in state["exclusions"] if e["node_id"] in state["nodes"]]
                if present:
                    raise EsError(
                        408,
                        "elasticsearch_timeout_exception",
                        f"timed out waiting for removal of nodes; if nodes should not be removed, set "
                        f"[wait_for_removal] to false. Still present: {present}",
                    )
            state["exclusions"] = []

        return self.node.submit(clear, "clear-voting-config-exclusions")

    def op_explain(self, args):
        state = self.state()
        for name, shards in sorted(state["routing"].items()):
            if args.get("index") not in (None, name):
                continue
            for shard, copies in sorted(shards.items()):
                if args.get("shard") is not None and str(args["shard"]) != shard:
                    continue
                for copy in copies:
                    if args.get("primary") is not None and copy["primary"] != args["primary"]:
                        continue
                    if copy["relocation_source"]:
                        continue
                    if copy["state"] == "UNASSIGNED":
                        return cl.explain_unassigned(state, name, shard, copy, self.node.node_stores)
                    if args.get("index") is not None:
                        info = state["nodes"].get(copy["node"], {})
                        return {
                            "index": name,
                            "shard": int(shard),
                            "primary": copy["primary"],
                            "current_state": copy["state"].lower(),
                            "current_node": {
                                "id": copy["node"],
                                "name": info.get("name"),
                                "transport_address": info.get("transport_address"),
                            },
                            "can_remain_on_current_node": "yes",
                            "can_rebalance_cluster": "yes",
                            "can_rebalance_to_other_node": "no",
                            "rebalance_explanation": "Elasticsearch cannot rebalance this shard to another node.",
                        }
        if args.get("index") is not None:
            if args["index"] not in state["indices"]:
                raise not_found_index(args["index"])
            raise EsError(400, "illegal_argument_exception", f"No shard copy matches the request {args}")
        raise EsError(
            400,
            "illegal_argument_exception",
            "No shard was specified in the explain API request, so this request explains a randomly chosen "
            "unassigned shard. There are no unassigned shards in this cluster, so this request cannot "
            "explain anything.",
        )

    def op_put_repository(self, args):
        name, body = args["name"], args["body"]
        repo_type = body.get("type")
        unknown = set(body) - {"type", "settings"}
        if unknown:
            raise EsError(
                400, "parse_exception", f"failed to parse repository [{name}]: unknown field {sorted(unknown)}"
            )
        if repo_type != "fs":
            raise EsError(500, "repository_exception", f"[{name}] repository type [{repo_type}] does not exist")
        location = (body.get("settings") or {}).get("location")
        if not location:
            raise EsError(500, "repository_exception", f"[{name}] missing location")
        roots = self.node.cfg.path_repo
        if not roots:
            raise EsError(
                500,
                "repository_exception",
                f"[{name}] location [{location}] doesn't match any of the locations specified by path.repo "
                "because this setting is empty",
            )
        resolved = os.path.normpath(location if os.path.isabs(location) else os.path.join(roots[0], location))
        if not any(os.path.commonpath([resolved, root]) == root for root in roots):
            raise EsError(
                500,
                "repository_exception",
                f"[{name}] location [{location}] doesn't match any of the locations specified by path.repo",
            )
        if args.get("verify", True):
            state = self.state()
            for nid, info in state["nodes"].items():
                if not ("master" in info["roles"] or cl.is_data_node(info)):
                    continue
                resp = self.node.rpc(
                    info["transport_address"], "verify_repository", {"name": name, "location": resolved}, timeout=5.0
                )
                if "es_error" in resp:
                    err = resp["es_error"]["error"]
                    raise EsError(500, "repository_verification_exception", f"[{name}] [[{nid}, '{err['reason']}']]")
        settings = dict(body.get("settings") or {})

        def put(state):
            state["repositories"][name] = {"type": "fs", "settings": settings, "resolved": resolved}

        self.node.submit(put, f"put-repository [{name}]")
        return True

    def op_delete_repository(self, args):
        def delete(state):
            if args["name"] not in state["repositories"]:
                raise EsError(404, "repository_missing_exception", f"[{args['name']}] missing")
            state["repositories"].pop(args["name"])

        self.node.submit(delete, "delete-repository")
        return True

    def repo(self, name):
        repo = self.state()["repositories"].get(name)
        if repo is None:
            raise EsError(404, "repository_missing_exception", f"[{name}] missing")
        return repo

    def op_list_snapshots(self, args):
        repo = self.repo(args["repo"])
        return read_json(os.path.join(repo["resolved"], "index.json"), {"snapshots": []})["snapshots"]

    def op_create_snapshot(self, args):
        repo = self.repo(args["repo"])
        snap = resolve_date_math(args["snapshot"])
        if snap != snap.lower() or snap.startswith("_") or INVALID_NAME_CHARS & set(snap):
            raise EsError(
                400,
                "invalid_snapshot_name_exception",
                f"[{args['repo']}:{snap}] Invalid snapshot name [{snap}], must be lowercase and must not "
                'contain whitespace or any of \\, /, *, ?, ", <, >, |, ,, #',
            )
        index_file = os.path.join(repo["resolved"], "index.json")
        catalog = read_json(index_file, {"snapshots": []})
        if any(s["snapshot"] == snap for s in catalog["snapshots"]):
            raise EsError(
                400,
                "invalid_snapshot_name_exception",
                f"[{args['repo']}:{snap}] Invalid snapshot name [{snap}], snapshot with the same name already exists",
            )
        state = self.state()
        patterns = args.get("indices") or ["*"]
        names = sorted(n for n in state["indices"] if any(fnmatch.fnmatchcase(n, p) for p in patterns))
        missing_primaries = [
            n
            for n in names
            if any(
                not any(c["primary"] and c["state"] in cl.ACTIVE for c in copies)
                for copies in state["routing"][n].values()
            )
        ]
        if missing_primaries and not args.get("partial"):
            raise EsError(
                500,
                "snapshot_exception",
                f"[{args['repo']}:{snap}] Indices don't have primary shards {missing_primaries}",
            )
        started = now_millis()
        snap_uuid = cl.new_id()
        base = os.path.join(repo["resolved"], f"snap-{snap_uuid}")
        shards_ok = 0
        for name in names:
            meta = state["indices"][name]
            for shard, copies in state["routing"][name].items():
                primary = next((c for c in copies if c["primary"] and c["state"] in cl.ACTIVE), None)
                if primary is None:
                    continue
                address = state["nodes"][primary["node"]]["transport_address"]
                ops = self.node.rpc(address, "shard_docs", {"uuid": meta["uuid"], "shard": shard}, timeout=30.0)["ops"]
                os.makedirs(os.path.join(base, name), exist_ok=True)
                write_json_atomic(os.path.join(base, name, f"{shard}.json"), ops)
                shards_ok += 1
        total = sum(state["indices"][n]["shards"] for n in names)
        info = {
            "snapshot": snap,
            "uuid": snap_uuid,
            "repository": args["repo"],
            "version": VERSION,
            "indices": names,
            "data_streams": [],
            "include_global_state": True,
            "state": "SUCCESS" if shards_ok == total else "PARTIAL",
            "start_time_in_millis": started,
            "end_time_in_millis": now_millis(),
            "duration_in_millis": now_millis() - started,
            "failures": [],
            "shards": {"total": total, "failed": total - shards_ok, "successful": shards_ok},
            "metadata": args.get("metadata") or {},
        }
        catalog["snapshots"].append(info)
        write_json_atomic(index_file, catalog)
        return info

    def op_put_slm(self, args):
        name, policy = args["name"], args["policy"]
        self.repo_exists_or_400(policy["repository"])

        def put(state):
            old = state["slm"].get(name)
            state["slm"][name] = {
                "version": (old["version"] + 1) if old else 1,
                "modified_date_millis": now_millis(),
                "policy": policy,
            }

        self.node.submit(put, f"put-slm-policy [{name}]")
        return True

    def repo_exists_or_400(self, repo):
        if repo not in self.state()["repositories"]:
            raise EsError(400, "illegal_argument_exception", f"no such repository [{repo}]")

    def op_delete_slm(self, args):
        def delete(state):
            if args["name"] not in state["slm"]:
                raise EsError(
                    404, "resource_not_found_exception", f"snapshot lifecycle policy not found: {args['name']}"
                )
            state["slm"].pop(args["name"])

        self.node.submit(delete, "delete-slm-policy")
        return True

    def op_execute_slm(self, args):
        entry = self.state()["slm"].get(args["name"])
        if entry is None:
            raise EsError(
                404, "resource_not_found_exception", f"snapshot lifecycle policy or policies [{args['name']}] not found"
            )
        policy = entry["policy"]
        snap = resolve_date_math(policy["name"]) + "-" + cl.new_id().lower()
        config = policy.get("config") or {}
        info = self.op_create_snapshot(
            {
                "repo": policy["repository"],
                "snapshot": snap,
                "indices": config.get("indices"),
                "partial": config.get("partial", False),
                "metadata": {"policy": args["name"]},
            }
        )

        def record(state):
            if args["name"] in state["slm"]:
                state["slm"][args["name"]]["last_success"] = {"snapshot_name": snap, "time": now_millis()}

        self.node.submit(record, "slm-record")
        return {"snapshot_name": info["snapshot"]}


class Rest:
    """Request routing and the handlers; one instance per node."""

    def __init__(self, node):
        self.node = node
        n = r"([^/_][^/]*)"
        any_ = r"([^/]+)"
        self.routes = [
            ("/", {"GET": self.root, "HEAD": self.root}, set()),
            ("/_cluster/health", {"GET": self.health}, HEALTH_PARAMS),
            (f"/_cluster/health/{any_}", {"GET": self.health}, HEALTH_PARAMS),
            ("/_cluster/state", {"GET": self.cluster_state}, {"local", "master_timeout", "flat_settings"}),
            (f"/_cluster/state/{any_}", {"GET": self.cluster_state}, {"local", "master_timeout", "flat_settings"}),
            (
                "/_cluster/settings",
                {"GET": self.get_settings, "PUT": self.put_settings},
                {"flat_settings", "include_defaults", "master_timeout", "timeout"},
            ),
            (
                "/_cluster/voting_config_exclusions",
                {"POST": self.add_exclusions, "DELETE": self.clear_exclusions},
                {"node_names", "node_ids", "timeout", "master_timeout", "wait_for_removal"},
            ),
            (
                "/_cluster/allocation/explain",
                {"GET": self.explain, "POST": self.explain},
                {"include_disk_info", "include_yes_decisions", "master_timeout"},
            ),
            ("/_nodes/stats", {"GET": self.nodes_stats}, {"timeout", "level"}),
            (f"/_nodes/stats/{any_}", {"GET": self.nodes_stats}, {"timeout", "level"}),
            ("/_nodes", {"GET": self.nodes}, {"timeout", "flat_settings"}),
            (f"/_nodes/{any_}", {"GET": self.nodes}, {"timeout", "flat_settings"}),
            (f"/_nodes/{any_}/{any_}", {"GET": self.nodes}, {"timeout", "flat_settings"}),
            ("/_cat", {"GET": self.cat_help}, set()),
            ("/_cat/nodes", {"GET": self.cat_nodes}, CAT_PARAMS | {"full_id"}),
            ("/_cat/allocation", {"GET": self.cat_allocation}, CAT_PARAMS),
            (f"/_cat/allocation/{any_}", {"GET": self.cat_allocation}, CAT_PARAMS),
            ("/_cat/shards", {"GET": self.cat_shards}, CAT_PARAMS),
            (f"/_cat/shards/{any_}", {"GET": self.cat_shards}, CAT_PARAMS),
            ("/_cat/indices", {"GET": self.cat_indices}, CAT_PARAMS | {"health", "pri", "expand_wildcards"}),
            (f"/_cat/indices/{any_}", {"GET": self.cat_indices}, CAT_PARAMS | {"health", "pri", "expand_wildcards"}),
            ("/_cat/master", {"GET": self.cat_master}, CAT_PARAMS),
            ("/_cat/health", {"GET": self.cat_health}, CAT_PARAMS | {"ts"}),
            ("/_flush", {"POST": self.flush, "GET": self.flush}, {"force", "wait_if_ongoing", "expand_wildcards"}),
            (f"/{n}/_flush", {"POST": self.flush, "GET": self.flush}, {"force", "wait_if_ongoing", "expand_wildcards"}),
            ("/_refresh", {"POST": self.flush, "GET": self.flush}, {"expand_wildcards"}),
            (f"/{n}/_refresh", {"POST": self.flush, "GET": self.flush}, {"expand_wildcards"}),
            ("/_snapshot", {"GET": self.get_repos}, {"master_timeout", "local"}),
            (
                f"/_snapshot/{any_}",
                {"GET": self.get_repos, "PUT": self.put_repo, "POST": self.put_repo, "DELETE": self.delete_repo},
                {"master_timeout", "timeout", "verify", "local"},
            ),
            (
                f"/_snapshot/{any_}/{any_}",
                {"GET": self.get_snapshots, "PUT": self.create_snapshot, "POST": self.create_snapshot},
                {"master_timeout", "wait_for_completion", "verbose", "ignore_unavailable"},
            ),
            ("/_slm/policy", {"GET": self.get_slm}, {"master_timeout", "timeout"}),
            (
                f"/_slm/policy/{any_}",
                {"GET": self.get_slm, "PUT": self.put_slm, "DELETE": self.delete_slm},
                {"master_timeout", "timeout"},
            ),
            (
                f"/_slm/policy/{any_}/_execute",
                {"POST": self.execute_slm, "PUT": self.execute_slm},
                {"master_timeout", "timeout"},
            ),
            ("/_bulk", {"POST": self.bulk, "PUT": self.bulk}, DOC_WRITE_PARAMS),
            (f"/{n}/_bulk", {"POST": self.bulk, "PUT": self.bulk}, DOC_WRITE_PARAMS),
            ("/_count", {"GET": self.count, "POST": self.count}, {"q"}),
            (f"/{n}/_count", {"GET": self.count, "POST": self.count}, {"q", "ignore_unavailable", "expand_wildcards"}),
            ("/_search", {"GET": self.search, "POST": self.search}, {"q", "size", "from"}),
            (f"/{n}/_search", {"GET": self.search, "POST": self.search}, {"q", "size", "from", "ignore_unavailable"}),
            (f"/{n}/_doc", {"POST": self.index_doc}, DOC_WRITE_PARAMS),
            (
                f"/{n}/_doc/{any_}",
                {"PUT": self.index_doc, "POST": self.index_doc, "GET": self.get_doc, "HEAD": self.get_doc},
                DOC_WRITE_PARAMS | {"realtime", "preference", "_source"},
            ),
            (f"/{n}/_create/{any_}", {"PUT": self.create_doc, "POST": self.create_doc}, DOC_WRITE_PARAMS),
            (
                f"/{n}/_settings",
                {"GET": self.get_index_settings, "PUT": self.put_index_settings},
                {"master_timeout", "timeout", "flat_settings", "preserve_existing"},
            ),
            (
                f"/{n}",
                {"PUT": self.create_index, "DELETE": self.delete_index, "GET": self.get_index, "HEAD": self.get_index},
                {
                    "wait_for_active_shards",
                    "timeout",
                    "master_timeout",
                    "ignore_unavailable",
                    "allow_no_indices",
                    "expand_wildcards",
                    "flat_settings",
                },
            ),
        ]
        self.compiled = [(re.compile(pattern + r"/?"), methods, params) for pattern, methods, params in self.routes]

    # ------------------------------------------------------------ dispatch
    def dispatch(self, method, raw_path, body_bytes):
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path) or "/"
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        for pattern, methods, allowed in self.compiled:
            match = pattern.fullmatch(path) if path != "/" or pattern.pattern == "//?" else None
            if path == "/" and pattern.pattern != "//?":
                continue
            if not match:
                continue
            handler = methods.get(method)
            if handler is None:
                return 405, {
                    "error": f"Incorrect HTTP method for uri [{raw_path}] and method [{method}], allowed: "
                    f"[{', '.join(sorted(methods))}]",
                    "status": 405,
                }
            extra = set(params) - allowed - COMMON_PARAMS
            if extra:
                first = sorted(extra)[0]
                raise EsError(
                    400, "illegal_argument_exception", f"request [{path}] contains unrecognized parameter: [{first}]"
                )
            body = None
            if handler == self.bulk:
                return handler(params, body_bytes, *match.groups())
            if body_bytes:
                try:
                    body = json.loads(body_bytes)
                except ValueError as err:
                    raise EsError(400, "parse_exception", f"Failed to parse content to map: {err}") from err
            return handler(params, body, *match.groups())
        return 400, {"error": f"no handler found for uri [{raw_path}] and method [{method}]", "status": 400}

    # ------------------------------------------------------------ helpers
    def local_state(self):
        with self.node.lock:
            return self.node.state

    def wait_master(self, params):
        if parse_bool(params.get("local", "false"), "local"):
            return self.local_state()
        timeout = parse_time(params.get("master_timeout", "30s"), "master_timeout")
        deadline = time.time() + (timeout if timeout is not None else 1e9)
        while True:
            with self.node.lock:
                if self.node.master_id and self.node.state and not self.node.routing_stale:
                    return self.node.state
            if time.time() >= deadline:
                raise EsError(503, "master_not_discovered_exception", None)
            time.sleep(0.05)

    def master(self, op, args, params):
        timeout = parse_time(params.get("master_timeout", "30s"), "master_timeout")
        return self.node.call_master(op, args, timeout)

    def resolve_indices(self, state, expr, must_exist=True):
        names = []
        for part in (expr or "_all").split(","):
            if part in ("_all", "*"):
                names += list(state["indices"])
            elif "*" in part:
                names += [n for n in state["indices"] if fnmatch.fnmatchcase(n, part)]
            elif part in state["indices"]:
                names.append(part)
            elif must_exist:
                raise not_found_index(part)
        return sorted(set(names))

    def doc_counts(self, state):
        """{(uuid, shard, node_id): doc count} from every node (best effort)."""
        counts = {}

        def ask(item):
            nid, info = item
            try:
                return nid, self.node.rpc(info["transport_address"], "doc_counts", {}, timeout=1.0)
            except OSError:
                return nid, {}

        for nid, resp in self.node.pool.map(ask, list(state["nodes"].items())):
            for key, value in (resp or {}).items():
                uuid, shard = key.split("/")
                counts[(uuid, shard, nid)] = value
        return counts

    # ------------------------------------------------------------ root, health, state
    def root(self, params, body):
        state = self.local_state() or {}
        return 200, {
            "name": self.node.cfg.node_name,
            "cluster_name": self.node.cfg.cluster_name,
            "cluster_uuid": state.get("cluster_uuid") or "_na_",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "tar",
                "build_hash": "haelk-standin",
                "build_date": "2024-08-05T10:05:34.233336849Z",
                "build_snapshot": False,
                "lucene_version": "9.11.1",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def health_body(self, state, index_names=None):
        status, counts, _ = cl.health(state, index_names)
        if index_names is not None and any(n not in state["indices"] for n in index_names):
            status = "red"
        total = counts["active_shards"] + counts["initializing_shards"] + counts["unassigned_shards"]
        return {
            "cluster_name": self.node.cfg.cluster_name,
            "status": status,
            "timed_out": False,
            "number_of_nodes": len(state["nodes"]),
            "number_of_data_nodes": len([i for i in state["nodes"].values() if cl.is_data_node(i)]),
            **counts,
            "unassigned_primary_shards": sum(
                1
                for n, shards in state["routing"].items()
                if index_names is None or n in index_names
                for copies in shards.values()
                for c in copies
                if c["primary"] and c["state"] == "UNASSIGNED"
            ),
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0 if total == 0 else 100.0 * counts["active_shards"] / total,
        }

    def health(self, params, body, index_expr=None):
        timeout = parse_time(params.get("timeout", "30s"), "timeout")
        wanted = params.get("wait_for_status")
        if wanted not in (None, "green", "yellow", "red"):
            raise EsError(400, "illegal_argument_exception", f"unknown cluster health status [{wanted}]")
        nodes_cond = params.get("wait_for_nodes")
        if nodes_cond is not None:
            match = re.fullmatch(r"(>=|<=|>|<|ge\(|le\(|gt\(|lt\()?(\d+)\)?", nodes_cond)
            if not match:
                raise EsError(400, "illegal_argument_exception", f"failed to parse [wait_for_nodes]: [{nodes_cond}]")
        no_reloc = (
            parse_bool(params["wait_for_no_relocating_shards"], "wait_for_no_relocating_shards")
            if "wait_for_no_relocating_shards" in params
            else False
        )
        no_init = (
            parse_bool(params["wait_for_no_initializing_shards"], "wait_for_no_initializing_shards")
            if "wait_for_no_initializing_shards" in params
            else False
        )
        active = params.get("wait_for_active_shards")
        if active is not None and active != "all" and not active.isdigit():
            raise EsError(400, "illegal_argument_exception", f"failed to parse [wait_for_active_shards]: [{active}]")
        if params.get("wait_for_events") not in (None, "immediate", "urgent", "high", "normal", "low", "languid"):
            # The stand-in has no pending-task queue, so a valid priority is satisfied at once.
            raise EsError(400, "illegal_argument_exception", f"No priority found for [{params['wait_for_events']}]")
        if params.get("level") not in (None, "cluster", "indices", "shards"):
            raise EsError(400, "illegal_argument_exception", "level must be one of [cluster, indices, shards]")
        deadline = time.time() + (timeout if timeout is not None else 1e9)
        rank = {"green": 0, "yellow": 1, "red": 2}
        while True:
            state = self.wait_master(params)
            if state is None:
                raise EsError(503, "master_not_discovered_exception", None)
            names = None if index_expr is None else index_expr.split(",")
            out = self.health_body(state, names)
            ok = True
            if wanted and rank[out["status"]] > rank[wanted]:
                ok = False
            if nodes_cond is not None:
                op, num = match.group(1) or "", int(match.group(2))
                have = out["number_of_nodes"]
                ok &= {
                    "": have == num,
                    ">=": have >= num,
                    "ge(": have >= num,
                    "<=": have <= num,
                    "le(": have <= num,
                    ">": have > num,
                    "gt(": have > num,
                    "<": have < num,
                    "lt(": have < num,
                }[op]
            if no_reloc:
                ok &= out["relocating_shards"] == 0
            if no_init:
                ok &= out["initializing_shards"] == 0
            if active is not None:
                if active == "all":
                    ok &= out["unassigned_shards"] == 0 and out["initializing_shards"] == 0
                else:
                    ok &= out["active_shards"] >= int(active)
            if params.get("level") in ("indices", "shards"):
                out["indices"] = self.index_health(state, names)
            if ok:
                return 200, out
            if time.time() >= deadline:
                out["timed_out"] = True
                return 408, out
            time.sleep(0.1)

    def index_health(self, state, names):
        out = {}
        for name in sorted(state["indices"]):
            if names is not None and name not in names:
                continue
            status, counts, _ = cl.health(state, [name])
            meta = state["indices"][name]
            counts.pop("delayed_unassigned_shards", None)
            out[name] = {
                "status": status,
                "number_of_shards": meta["shards"],
                "number_of_replicas": meta["replicas"],
                **counts,
            }
        return out

    def cluster_state(self, params, body, metrics=None):
        unknown = [m for m in (metrics or "_all").split(",") if m not in CLUSTER_STATE_METRICS]
        if unknown:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"request [/_cluster/state/{metrics}] contains unrecognized metric: [{unknown[0]}]",
            )
        state = self.wait_master(params)
        if state is None:
            raise EsError(503, "master_not_discovered_exception", None)
        indices_meta = {}
        for name, meta in state["indices"].items():
            indices_meta[name] = {
                "state": "open",
                "settings": {
                    "index": {
                        "number_of_shards": str(meta["shards"]),
                        "number_of_replicas": str(meta["replicas"]),
                        "uuid": meta["uuid"],
                        "creation_date": str(meta["created"]),
                    }
                },
                "in_sync_allocations": meta["in_sync"],
            }
        routing = {
            name: {
                "shards": {
                    shard: [
                        {
                            "state": c["state"],
                            "primary": c["primary"],
                            "node": c["node"],
                            "relocating_node": c["relocating_node"],
                            "shard": int(shard),
                            "index": name,
                            **({"allocation_id": {"id": c["alloc"]}} if c["alloc"] else {}),
                            **({"unassigned_info": {"reason": c["reason"]}} if c["state"] == "UNASSIGNED" else {}),
                        }
                        for c in copies
                        if not c["relocation_source"]
                    ]
                    for shard, copies in shards.items()
                }
            }
            for name, shards in state["routing"].items()
        }
        return 200, {
            "cluster_name": self.node.cfg.cluster_name,
            "cluster_uuid": state["cluster_uuid"],
            "version": state["version"],
            "state_uuid": f"{state['term']}-{state['version']}",
            "master_node": state["master"],
            "blocks": {} if self.node.master_id else {"global": {"2": {"description": "no master", "retryable": True}}},
            "nodes": {
                nid: {
                    "name": i["name"],
                    "ephemeral_id": i["ephemeral_id"],
                    "transport_address": i["transport_address"],
                    "roles": i["roles"],
                    "attributes": i.get("attributes", {}),
                }
                for nid, i in state["nodes"].items()
            },
            "metadata": {
                "cluster_uuid": state["cluster_uuid"],
                "cluster_uuid_committed": bool(state.get("cluster_uuid_committed")),
                "cluster_coordination": {
                    "term": state["term"],
                    "last_committed_config": state["voting_config"],
                    "last_accepted_config": state["voting_config"],
                    "voting_config_exclusions": state["exclusions"],
                },
                "persistent_settings": nest(state["settings"]["persistent"]),
                "indices": indices_meta,
                "repositories": {
                    k: {"type": v["type"], "settings": v["settings"]} for k, v in state["repositories"].items()
                },
            },
            "routing_table": {"indices": routing},
        }

    # ------------------------------------------------------------ settings
    def get_settings(self, params, body):
        state = self.wait_master(params)
        flat = parse_bool(params.get("flat_settings", "false"), "flat_settings")
        fmt = (lambda d: dict(sorted(d.items()))) if flat else nest
        out = {"persistent": fmt(state["settings"]["persistent"]), "transient": fmt(state["settings"]["transient"])}
        if parse_bool(params.get("include_defaults", "false"), "include_defaults"):
            defaults = {
                "cluster.routing.allocation.enable": "all",
                "action.destructive_requires_name": "true",
                "cluster.name": self.node.cfg.cluster_name,
                "cluster.max_voting_config_exclusions": "10",
            }
            out["defaults"] = fmt(defaults)
        return 200, out

    def validate_setting(self, scope, key, value):
        if not any(rule.fullmatch(key) for rule in DYNAMIC):
            if is_known_setting(key):
                raise EsError(400, "illegal_argument_exception", f"{scope} setting [{key}], not dynamically updateable")
            raise EsError(400, "illegal_argument_exception", f"{scope} setting [{key}], not recognized")
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            raise EsError(400, "illegal_argument_exception", f"{scope} setting [{key}] has an invalid value")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key in ENUMS and text.lower() not in ENUMS[key]:
            # ES upper-cases the value before parsing: "PRIMARIES" is as valid as "primaries".
            kind = "allocation" if "allocation" in key else "rebalance"
            raise EsError(400, "illegal_argument_exception", f"Illegal {kind}.enable value [{text.upper()}]")
        if re.fullmatch(r"cluster\.routing\.allocation\.(require|include|exclude)\.(_ip|_host_ip|_publish_ip)", key):
            for address in (a.strip() for a in text.split(",") if a.strip()):
                if "*" not in address and not is_ip_address(address):
                    raise EsError(400, "illegal_argument_exception", f"invalid IP address [{address}] for [{key}]")
        if key == "action.auto_create_index":
            try:
                parse_auto_create_index(text)
            except ValueError as err:
                raise EsError(400, "illegal_argument_exception", str(err)) from err
        if key in BOOLEANS and text not in ("true", "false"):
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Failed to parse value [{text}] as only [true] or [false] are allowed.",
            )
        if INTEGERS.fullmatch(key) and not text.lstrip("-").isdigit():
            raise EsError(400, "illegal_argument_exception", f"Failed to parse value [{text}] for setting [{key}]")
        return text

    def put_settings(self, params, body):
        if not body:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no settings to update;")
        unknown = set(body) - {"persistent", "transient"}
        if unknown:
            raise EsError(
                400,
                "x_content_parse_exception",
                f"[1:2] [cluster_update_settings_request] unknown field [{sorted(unknown)[0]}]",
            )
        update = {}
        for scope in ("persistent", "transient"):
            flat = flatten(body.get(scope) or {})
            update[scope] = {k: self.validate_setting(scope, k, v) for k, v in flat.items()}
        if not update["persistent"] and not update["transient"]:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no settings to update;")
        self.master("cluster_settings", update, params)
        return 200, {
            "acknowledged": True,
            "persistent": nest({k: v for k, v in update["persistent"].items() if v is not None}),
            "transient": nest({k: v for k, v in update["transient"].items() if v is not None}),
        }

    # ------------------------------------------------------------ voting exclusions, explain
    def add_exclusions(self, params, body):
        names, ids = params.get("node_names"), params.get("node_ids")
        if (names is None) == (ids is None) or (names == "" or ids == ""):
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: Please set node identifiers correctly. One and only one of "
                "[node_name], [node_names] and [node_ids] has to be set;",
            )
        args = {"node_names": names.split(",")} if names else {"node_ids": ids.split(",")}
        excluded = self.master("add_exclusions", args, params)
        timeout = parse_time(params.get("timeout", "30s"), "timeout")
        deadline = time.time() + (timeout or 30)
        while time.time() < deadline:
            state = self.local_state()
            if state and not set(excluded) & set(state["voting_config"]):
                return 200, ""
            time.sleep(0.05)
        raise EsError(
            408,
            "elasticsearch_timeout_exception",
            f"timed out waiting for voting config exclusions {args} to take effect",
        )

    def clear_exclusions(self, params, body):
        wait = parse_bool(params.get("wait_for_removal", "true"), "wait_for_removal")
        timeout = parse_time(params.get("timeout", "30s"), "timeout")
        deadline = time.time() + (timeout or 30)
        while True:
            try:
                self.master("clear_exclusions", {"wait_for_removal": wait}, params)
                return 200, ""
            except EsError as err:
                if err.status != 408 or time.time() >= deadline:
                    raise
            time.sleep(0.2)

    def explain(self, params, body):
        args = {}
        if body:
            unknown = set(body) - {"index", "shard", "primary", "current_node"}
            if unknown:
                raise EsError(
                    400,
                    "x_content_parse_exception",
                    f"[cluster/allocation/explain] unknown field [{sorted(unknown)[0]}]",
                )
            args = dict(body)
            if not {"index", "shard", "primary"} <= set(args):
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    "you must specify the index name, shard number and whether it is primary to explain",
                )
        return 200, self.master("explain", args, params)

    # ------------------------------------------------------------ nodes and cat
    def nodes(self, params, body, *selector):
        state = self.wait_master({"master_timeout": "30s"})
        out = {}
        for nid, info in state["nodes"].items():
            out[nid] = {
                "name": info["name"],
                "transport_address": info["transport_address"],
                "host": info["host"],
                "ip": info["host"],
                "version": VERSION,
                "build_flavor": "default",
                "build_type": "tar",
                "roles": info["roles"],
                "attributes": info.get("attributes", {}),
                "settings": {"cluster": {"name": self.node.cfg.cluster_name}, "node": {"name": info["name"]}},
                "http": {"bound_address": [info["http_address"]], "publish_address": info["http_address"]},
                "transport": {
                    "bound_address": [info["transport_address"]],
                    "publish_address": info["transport_address"],
                },
                "jvm": {"mem": {"heap_init": info.get("heap"), "heap_max": info.get("heap")}},
            }
        return 200, {
            "_nodes": {"total": len(out), "successful": len(out), "failed": 0},
            "cluster_name": self.node.cfg.cluster_name,
            "nodes": out,
        }

    def nodes_stats(self, params, body, metrics=None):
        """`GET /_nodes/stats[/METRICS]`: the `jvm` and `fs` sections of ES 8's answer
        (the only ones the stand-in has); other real metrics are refused plainly."""
        wanted = set((metrics or "_all").split(","))
        if "_all" in wanted:
            wanted = {"jvm", "fs"}
        unknown = sorted(wanted - NODES_STATS_METRICS)
        if unknown:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"request [/_nodes/stats/{metrics}] contains unrecognized metric: [{unknown[0]}]",
            )
        missing = sorted(wanted - {"jvm", "fs"})
        if missing:
            raise EsError(400, "illegal_argument_exception", f"stand-in has no [{missing[0]}] node stats")
        state = self.wait_master({"master_timeout": "30s"})
        now = int(time.time() * 1000)
        out = {}
        for nid, info in state["nodes"].items():
            node = {
                "timestamp": now,
                "name": info["name"],
                "transport_address": info["transport_address"],
                "host": info["host"],
                "ip": info["transport_address"],
                "roles": info["roles"],
                "attributes": info.get("attributes", {}),
            }
            if "jvm" in wanted:
                heap_max = heap_bytes(info.get("heap"))
                used = heap_max * STANDIN_HEAP_PERCENT // 100
                node["jvm"] = {
                    "timestamp": now,
                    "uptime_in_millis": now - int(self.node.started * 1000),
                    "mem": {
                        "heap_used_in_bytes": used,
                        "heap_used_percent": STANDIN_HEAP_PERCENT,
                        "heap_committed_in_bytes": heap_max,
                        "heap_max_in_bytes": heap_max,
                        "non_heap_used_in_bytes": 0,
                        "non_heap_committed_in_bytes": 0,
                    },
                }
            if "fs" in wanted:
                disk = disk_usage(info.get("data_path"))
                node["fs"] = {
                    "timestamp": now,
                    "total": disk,
                    "data": [{"path": info.get("data_path"), "type": "zfs", **disk}],
                }
            out[nid] = node
        return 200, {
            "_nodes": {"total": len(out), "successful": len(out), "failed": 0},
            "cluster_name": self.node.cfg.cluster_name,
            "nodes": out,
        }

    def cat_allocation(self, params, body, node_expr=None):
        """`GET /_cat/allocation`: shard copies and disk per node, and an
        `UNASSIGNED` row when copies have no node, as ES 8 prints them."""
        state = self.wait_master(params)
        shards = {nid: 0 for nid in state["nodes"]}
        unassigned = 0
        for copies in state["routing"].values():
            for shard_copies in copies.values():
                for c in shard_copies:
                    if c["state"] == "UNASSIGNED" or c["node"] is None:
                        unassigned += 1
                    elif c["node"] in shards:
                        shards[c["node"]] += 1
        wanted_nodes = None if node_expr in (None, "_all", "*") else set(node_expr.split(","))
        rows = []
        for nid, info in state["nodes"].items():
            if wanted_nodes is not None and info["name"] not in wanted_nodes and nid not in wanted_nodes:
                continue
            disk = disk_usage(info.get("data_path"))
            used = disk["total_in_bytes"] - disk["available_in_bytes"]
            rows.append(
                {
                    "shards": shards[nid],
                    "disk.indices": 0,
                    "disk.used": used,
                    "disk.avail": disk["available_in_bytes"],
                    "disk.total": disk["total_in_bytes"],
                    "disk.percent": (used * 100 // disk["total_in_bytes"]) if disk["total_in_bytes"] else None,
                    "host": info["host"],
                    "ip": info["host"],
                    "node": info["name"],
                    "node.role": ",".join(info["roles"]),
                }
            )
        if unassigned and wanted_nodes is None:
            rows.append({"shards": unassigned, "node": "UNASSIGNED"})
        default = ["shards", "disk.indices", "disk.used", "disk.avail", "disk.total", "disk.percent", "host", "ip", "node"]
        return self.cat(
            params,
            rows,
            set(default) | {"node.role"},
            default,
            {"s": "shards", "di": "disk.indices", "du": "disk.used", "da": "disk.avail", "dt": "disk.total", "dp": "disk.percent", "h": "host", "n": "node", "r": "node.role"},
        )

    def cat(self, params, rows, columns, default, aliases=None):
        aliases = aliases or {}
        if "h" in params:
            wanted = []
            for h in params["h"].split(","):
                h = aliases.get(h.strip(), h.strip())
                if h in columns:
                    wanted.append(h)
        else:
            wanted = default
        if "s" in params:
            for spec in reversed(params["s"].split(",")):
                col, _, order = spec.partition(":")
                col = aliases.get(col, col)
                if col in columns:
                    rows.sort(key=lambda r: (r.get(col) is None, str(r.get(col))), reverse=order == "desc")
        if params.get("format") == "json":
            return 200, [{c: (None if r.get(c) is None else str(r.get(c))) for c in wanted} for r in rows]
        if params.get("format") not in (None, "txt", "text"):
            raise EsError(
                400, "illegal_argument_exception", f"stand-in supports format=json or text, not [{params['format']}]"
            )
        table = [[("" if r.get(c) is None else str(r.get(c))) for c in wanted] for r in rows]
        if "v" in params and parse_bool(params["v"], "v"):
            table.insert(0, wanted)
        widths = [max([len(row[i]) for row in table] or [0]) for i in range(len(wanted))]
        text = "".join(" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n" for row in table)
        return 200, text

    def cat_help(self, params, body):
        return 200, "=^.^=\n/_cat/health\n/_cat/indices\n/_cat/master\n/_cat/nodes\n/_cat/shards\n"

    def cat_nodes(self, params, body):
        state = self.wait_master(params)
        letters = {
            "data_cold": "c",
            "data": "d",
            "data_frozen": "f",
            "data_hot": "h",
            "ingest": "i",
            "ml": "l",
            "master": "m",
            "remote_cluster_client": "r",
            "data_content": "s",
            "transform": "t",
            "voting_only": "v",
            "data_warm": "w",
        }
        full = parse_bool(params.get("full_id", "false"), "full_id")
        rows = []
        for nid, info in state["nodes"].items():
            rows.append(
                {
                    "id": nid if full else nid[:4],
                    "name": info["name"],
                    "ip": info["host"],
                    "port": info["transport_address"].rsplit(":", 1)[1],
                    "http_address": info["http_address"],
                    "version": VERSION,
                    "node.role": "".join(sorted(letters[r] for r in info["roles"])) or "-",
                    "node.roles": ",".join(info["roles"]),
                    "master": "*" if nid == state["master"] else "-",
                    "heap.percent": STANDIN_HEAP_PERCENT,
                    "ram.percent": 50,
                    "cpu": 1,
                    "load_1m": "0.10",
                    "load_5m": "0.10",
                    "load_15m": "0.10",
                    "heap.max": info.get("heap"),
                }
            )
        columns = set(rows[0]) if rows else {"name"}
        default = [
            "ip",
            "heap.percent",
            "ram.percent",
            "cpu",
            "load_1m",
            "load_5m",
            "load_15m",
            "node.role",
            "master",
            "name",
        ]
        return self.cat(
            params,
            rows,
            columns | set(default),
            default,
            {
                "r": "node.role",
                "role": "node.role",
                "nodeRole": "node.role",
                "m": "master",
                "n": "name",
                "i": "ip",
                "hp": "heap.percent",
                "v": "version",
                "nodeId": "id",
            },
        )

    def cat_shards(self, params, body, index_expr=None):
        state = self.wait_master(params)
        names = self.resolve_indices(state, index_expr)
        counts = self.doc_counts(state)
        rows = []
        for name in names:
            meta = state["indices"][name]
            for shard, copies in sorted(state["routing"][name].items(), key=lambda kv: int(kv[0])):
                for c in sorted(copies, key=lambda c: not c["primary"]):
                    if c["relocation_source"]:
                        continue
                    info = state["nodes"].get(c["node"], {})
                    node = info.get("name")
                    if c["state"] == "RELOCATING":
                        target = state["nodes"].get(c["relocating_node"], {})
                        node = f"{node} -> {target.get('host')} {c['relocating_node'][:22]} {target.get('name')}"
                    rows.append(
                        {
                            "index": name,
                            "shard": shard,
                            "prirep": "p" if c["primary"] else "r",
                            "state": c["state"],
                            "docs": counts.get((meta["uuid"], shard, c["node"])),
                            "store": None if c["node"] is None else "1kb",
                            "ip": info.get("host"),
                            "node": node,
                            "id": c["node"],
                            "unassigned.reason": c["reason"] if c["state"] == "UNASSIGNED" else None,
                        }
                    )
        default = ["index", "shard", "prirep", "state", "docs", "store", "ip", "node"]
        return self.cat(
            params,
            rows,
            set(default) | {"id", "unassigned.reason"},
            default,
            {
                "i": "index",
                "s": "shard",
                "p": "prirep",
                "pr": "prirep",
                "st": "state",
                "d": "docs",
                "n": "node",
                "ur": "unassigned.reason",
            },
        )

    def cat_indices(self, params, body, index_expr=None):
        state = self.wait_master(params)
        names = self.resolve_indices(state, index_expr)
        counts = self.doc_counts(state)
        _, _, per_index = cl.health(state)
        rows = []
        for name in names:
            meta = state["indices"][name]
            docs = 0
            for shard, copies in state["routing"][name].items():
                primary = next((c for c in copies if c["primary"] and c["state"] in cl.ACTIVE), None)
                if primary:
                    docs += counts.get((meta["uuid"], shard, primary["node"]), 0)
            rows.append(
                {
                    "health": per_index.get(name, "red"),
                    "status": "open",
                    "index": name,
                    "uuid": meta["uuid"],
                    "pri": meta["shards"],
                    "rep": meta["replicas"],
                    "docs.count": docs,
                    "docs.deleted": 0,
                    "store.size": "1kb",
                    "pri.store.size": "1kb",
                    "dataset.size": "1kb",
                }
            )
        if "health" in params:
            rows = [r for r in rows if r["health"] == params["health"]]
        default = [
            "health",
            "status",
            "index",
            "uuid",
            "pri",
            "rep",
            "docs.count",
            "docs.deleted",
            "store.size",
            "pri.store.size",
            "dataset.size",
        ]
        return self.cat(params, rows, set(default), default, {"h": "health", "i": "index", "dc": "docs.count"})

    def cat_master(self, params, body):
        state = self.wait_master(params)
        info = state["nodes"].get(state["master"], {})
        rows = [{"id": state["master"], "host": info.get("host"), "ip": info.get("host"), "node": info.get("name")}]
        return self.cat(params, rows, {"id", "host", "ip", "node"}, ["id", "host", "ip", "node"])

    def cat_health(self, params, body):
        state = self.wait_master(params)
        h = self.health_body(state)
        rows = [
            {
                "epoch": int(time.time()),
                "timestamp": time.strftime("%H:%M:%S"),
                "cluster": h["cluster_name"],
                "status": h["status"],
                "node.total": h["number_of_nodes"],
                "node.data": h["number_of_data_nodes"],
                "shards": h["active_shards"],
                "pri": h["active_primary_shards"],
                "relo": h["relocating_shards"],
                "init": h["initializing_shards"],
                "unassign": h["unassigned_shards"],
                "pending_tasks": 0,
                "max_task_wait_time": "-",
                "active_shards_percent": f"{h['active_shards_percent_as_number']:.1f}%",
            }
        ]
        cols = list(rows[0])
        return self.cat(params, rows, set(cols), cols)

    # ------------------------------------------------------------ indices
    def flush(self, params, body, index_expr=None):
        state = self.local_state()
        names = self.resolve_indices(state, index_expr)
        total = ok = 0
        for name in names:
            for copies in state["routing"][name].values():
                total += len([c for c in copies if not c["relocation_source"]])
                ok += len([c for c in copies if c["state"] in cl.ACTIVE])
        return 200, {"_shards": {"total": total, "successful": ok, "failed": 0}}

    def parse_index_settings(self, settings, creating):
        flat = flatten(settings or {})
        out = {}
        for key, value in flat.items():
            short = key[len("index.") :] if key.startswith("index.") else key
            if short in ("number_of_shards", "number_of_replicas"):
                if not str(value).isdigit():
                    raise EsError(
                        400,
                        "illegal_argument_exception",
                        f"Failed to parse value [{value}] for setting [index.{short}]",
                    )
                num = int(value)
                if short == "number_of_shards" and not 1 <= num <= 1024:
                    raise EsError(
                        400,
                        "illegal_argument_exception",
                        f"Failed to parse value [{value}] for setting [index.number_of_shards] must be >= 1",
                    )
                if short == "number_of_shards" and not creating:
                    raise EsError(
                        400,
                        "illegal_argument_exception",
                        "final index setting [index.number_of_shards], not updateable",
                    )
                out[short] = num
            elif short == "refresh_interval":
                parse_time(value, "index.refresh_interval")
                out[short] = value
            elif short == "max_result_window":
                if not str(value).isdigit() or int(value) < 1:
                    raise EsError(
                        400,
                        "illegal_argument_exception",
                        f"Failed to parse value [{value}] for setting [index.max_result_window] must be >= 1",
                    )
                out[short] = int(value)
            elif short == "codec":
                if value not in ("default", "best_compression", "lz4", "zlib"):
                    raise EsError(
                        400,
                        "illegal_argument_exception",
                        f"unknown value for [index.codec] must be one of [default, lz4, best_compression, zlib] "
                        f"but was: {value}",
                    )
                out[short] = value
            elif short == "unassigned.node_left.delayed_timeout":
                out[short] = parse_time(value, "index." + short) or 0.0
            else:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"unknown setting [index.{short}] please check that any required plugins are installed, "
                    "or check the breaking changes documentation for removed settings",
                )
        return out

    def wait_for_index(self, name, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.local_state()
            if state and name in state["indices"]:
                return state
            time.sleep(0.05)
        raise not_found_index(name)

    def wait_primaries(self, name, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.local_state()
            routing = (state or {}).get("routing", {}).get(name)
            if routing and all(
                any(c["primary"] and c["state"] in cl.ACTIVE for c in copies) for copies in routing.values()
            ):
                return True
            time.sleep(0.05)
        return False

    def create_index(self, params, body, name):
        validate_index_name(name)
        body = body or {}
        unknown = set(body) - {"settings", "mappings", "aliases"}
        if unknown:
            raise EsError(400, "parse_exception", f"unknown key [{sorted(unknown)[0]}] for create index")
        settings = self.parse_index_settings(body.get("settings"), True)
        self.master(
            "create_index",
            {
                "name": name,
                "shards": settings.get("number_of_shards", 1),
                "replicas": settings.get("number_of_replicas", 1),
                "delayed_timeout": settings.get("unassigned.node_left.delayed_timeout", 60.0),
                # Chosen here so that a retry after a failed-but-committed publication is recognised.
                "uuid": cl.new_id(),
            },
            params,
        )
        self.wait_for_index(name)
        timeout = parse_time(params.get("timeout", "30s"), "timeout") or 30.0
        acked = self.wait_primaries(name, timeout)
        return 200, {"acknowledged": True, "shards_acknowledged": acked, "index": name}

    def destructive_guard(self, state, expr):
        setting = cl.effective_settings(state).get(
            "action.destructive_requires_name",
            str(self.node.cfg.settings.get("action.destructive_requires_name", "true")).lower(),
        )
        if setting == "true" and any(p in ("_all", "*") or "*" in p for p in expr.split(",")):
            raise EsError(400, "illegal_argument_exception", "Wildcard expressions or all indices are not allowed")

    def auto_create_guard(self, state, name):
        """Refuse to auto-create `name` as ES's AutoCreateIndex would (cluster setting, else elasticsearch.yml)."""
        value = cl.effective_settings(state).get("action.auto_create_index") if state else None
        if value is None:
            value = self.node.cfg.settings.get("action.auto_create_index", "true")
        enabled, expressions = parse_auto_create_index(value)
        if not enabled:
            raise not_found_index(name, "[action.auto_create_index] is [false]")
        if not expressions:
            return
        for pattern, allowed in expressions:
            if fnmatch.fnmatchcase(name, pattern):
                if allowed:
                    return
                raise not_found_index(
                    name,
                    f"[action.auto_create_index] contains [-{pattern}] which forbids automatic creation of the index",
                )
        raise not_found_index(name, f"[action.auto_create_index] ([{value}]) doesn't match")

    def delete_index(self, params, body, expr):
        state = self.wait_master(params)
        self.destructive_guard(state, expr)
        names = self.resolve_indices(state, expr)
        self.master("delete_index", {"names": names}, params)
        return 200, {"acknowledged": True}

    def get_index(self, params, body, expr):
        state = self.local_state()
        names = self.resolve_indices(state, expr)
        return 200, {
            n: {
                "aliases": {},
                "mappings": {},
                "settings": {
                    "index": {
                        "number_of_shards": str(state["indices"][n]["shards"]),
                        "number_of_replicas": str(state["indices"][n]["replicas"]),
                        "uuid": state["indices"][n]["uuid"],
                        "creation_date": str(state["indices"][n]["created"]),
                        "provided_name": n,
                        "unassigned": {
                            "node_left": {"delayed_timeout": f"{state['indices'][n].get('delayed_timeout', 60.0):g}s"}
                        },
                    }
                },
            }
            for n in names
        }

    def get_index_settings(self, params, body, expr):
        status, out = self.get_index(params, body, expr)
        return status, {n: {"settings": v["settings"]} for n, v in out.items()}

    def put_index_settings(self, params, body, expr):
        state = self.local_state()
        names = self.resolve_indices(state, expr)
        settings = self.parse_index_settings(body or {}, False)
        if "number_of_replicas" in settings:
            for name in names:
                self.master("set_replicas", {"name": name, "replicas": settings["number_of_replicas"]}, params)
        if "unassigned.node_left.delayed_timeout" in settings:
            for name in names:
                self.master(
                    "set_delay", {"name": name, "delay": settings["unassigned.node_left.delayed_timeout"]}, params
                )
        return 200, {"acknowledged": True}

    # ------------------------------------------------------------ documents
    def create_doc(self, params, body, name, doc_id):
        return self.index_doc(params, body, name, doc_id, op_type="create")

    def index_doc(self, params, body, name, doc_id=None, op_type=None):
        validate_index_name(name)
        if body is None:
            raise EsError(400, "parse_exception", "request body is required")
        if not isinstance(body, dict):
            raise EsError(400, "mapper_parsing_exception", "failed to parse, document is empty or not an object")
        op_type = op_type or params.get("op_type", "index")
        if op_type not in ("index", "create"):
            raise EsError(400, "illegal_argument_exception", f"opType must be 'create' or 'index', found: [{op_type}]")
        if doc_id is None:
            doc_id = cl.new_id()[:20]
            op_type = "create"
        if "refresh" in params and params["refresh"] not in ("", "true", "false", "wait_for"):
            raise EsError(400, "illegal_argument_exception", f"Unknown value for refresh: [{params['refresh']}].")
        unsupported = sorted({"version", "version_type", "if_seq_no", "if_primary_term"} & set(params))
        if unsupported:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"stand-in limitation: [{unsupported[0]}] (optimistic concurrency control, external versions) "
                "is not implemented",
            )
        if parse_bool(params.get("require_alias", "false"), "require_alias"):
            raise not_found_index(name, f"[require_alias] request flag is [true] and [{name}] is not an alias")
        wanted_active = params.get("wait_for_active_shards", "1")
        if wanted_active != "all" and not wanted_active.isdigit():
            raise EsError(
                400, "illegal_argument_exception", f"failed to parse [wait_for_active_shards]: [{wanted_active}]"
            )
        timeout = parse_time(params.get("timeout", "1m"), "timeout") or 60.0
        deadline = time.time() + timeout
        state = self.local_state()
        if state is None or name not in state["indices"]:
            self.auto_create_guard(state, name)
            self.master(
                "create_index",
                {"name": name, "shards": 1, "replicas": 1, "auto": True},
                {"master_timeout": params.get("timeout", "1m")},
            )
            state = self.wait_for_index(name)
        while True:
            state = self.local_state()
            meta = state["indices"].get(name)
            if meta is None:
                raise not_found_index(name)
            shard = shard_for(doc_id, meta["shards"])
            has_master = self.node.master_id is not None
            copies = [c for c in state["routing"][name][shard] if not c["relocation_source"]]
            primary = next((c for c in copies if c["primary"] and c["state"] in cl.ACTIVE), None)
            # ES checks wait_for_active_shards before the write (default 1: the primary).
            active = len([c for c in copies if c["state"] in cl.ACTIVE])
            needed = 1 + meta["replicas"] if wanted_active == "all" else int(wanted_active)
            if has_master and primary is not None and active >= needed:
                req = {"index": name, "shard": shard, "id": doc_id, "source": body, "op_type": op_type}
                try:
                    if primary["node"] == self.node.id:
                        resp = self.node.t_write(req)
                    else:
                        resp = self.node.rpc(
                            state["nodes"][primary["node"]]["transport_address"], "write", req, timeout=30.0
                        )
                        raise_remote_error(resp)
                    if "retry" not in resp:
                        return (201 if resp["result"] == "created" else 200), resp
                except (OSError, KeyError):
                    pass
            if time.time() >= deadline:
                if not has_master:
                    raise EsError(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];")
                if primary is not None:
                    raise EsError(
                        503,
                        "unavailable_shards_exception",
                        f"[{name}][{shard}] Not enough active copies to meet shard count of "
                        f"[{wanted_active.upper()}] (have {active}, needed {needed}). Timeout: "
                        f"[{params.get('timeout', '1m')}], request: [index {{[{name}][{doc_id}]}}]",
                    )
                raise EsError(
                    503,
                    "unavailable_shards_exception",
                    f"[{name}][{shard}] primary shard is not active Timeout: [{params.get('timeout', '1m')}], "
                    f"request: [index {{[{name}][{doc_id}]}}]",
                )
            time.sleep(0.1)

    def bulk(self, params, raw, default_index=None):
        lines = [line for line in (raw or b"").decode().split("\n") if line.strip()]
        if not lines:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        items, errors, i = [], False, 0
        started = time.time()
        while i < len(lines):
            try:
                action = json.loads(lines[i])
            except ValueError as err:
                raise EsError(
                    400, "x_content_parse_exception", f"[{i + 1}:1] malformed action/metadata line: {err}"
                ) from err
            if not isinstance(action, dict) or len(action) != 1:
                raise EsError(400, "illegal_argument_exception", f"Malformed action/metadata line [{i + 1}]")
            op, meta = next(iter(action.items()))
            if op not in ("index", "create"):
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i + 1}], expected one of [create, index] (stand-in: "
                    f"no [{op}]) but found [{op}]",
                )
            unknown = set(meta) - {"_index", "_id", "require_alias"}
            if unknown:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Action/metadata line [{i + 1}] contains an unknown parameter [{sorted(unknown)[0]}]",
                )
            if i + 1 >= len(lines):
                raise EsError(
                    400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"
                )
            source = json.loads(lines[i + 1])
            i += 2
            index = meta.get("_index", default_index)
            if index is None:
                raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
            try:
                status, resp = self.index_doc(
                    params, source, index, meta.get("_id"), op_type="create" if op == "create" else None
                )
                items.append({op: {**resp, "status": status}})
            except EsError as err:
                errors = True
                items.append(
                    {
                        op: {
                            "_index": index,
                            "_id": meta.get("_id"),
                            "status": err.status,
                            "error": {"type": err.err_type, "reason": err.reason},
                        }
                    }
                )
        return 200, {"took": int((time.time() - started) * 1000), "errors": errors, "items": items}

    def read_copies(self, state, name, shard):
        copies = [c for c in state["routing"][name][shard] if c["state"] in cl.ACTIVE]
        copies.sort(key=lambda c: (c["node"] != self.node.id, not c["primary"]))
        return copies

    def shard_call(self, state, name, shard, action, extra):
        meta = state["indices"][name]
        for c in self.read_copies(state, name, shard):
            req = {"uuid": meta["uuid"], "shard": shard, **extra}
            try:
                if c["node"] == self.node.id:
                    resp = getattr(self.node, "t_" + action)(req)
                else:
                    resp = self.node.rpc(state["nodes"][c["node"]]["transport_address"], action, req, timeout=10.0)
            except (OSError, KeyError):
                continue
            if "retry" not in resp:
                return resp
        return None

    def get_doc(self, params, body, name, doc_id):
        state = self.local_state()
        if state is None or name not in state["indices"]:
            raise not_found_index(name)
        meta = state["indices"][name]
        shard = shard_for(doc_id, meta["shards"])
        resp = self.shard_call(state, name, shard, "get", {"id": doc_id})
        if resp is None:
            raise EsError(
                503, "no_shard_available_action_exception", f"No shard available for [get [{name}][{doc_id}]]"
            )
        doc = resp["doc"]
        if doc is None:
            return 404, {"_index": name, "_id": doc_id, "found": False}
        return 200, {
            "_index": name,
            "_id": doc_id,
            "_version": doc["version"],
            "_seq_no": doc["seq_no"],
            "_primary_term": state["term"],
            "found": True,
            "_source": doc["source"],
        }

    def matcher(self, params, body):
        query = (body or {}).get("query")
        if body:
            unknown = set(body) - {"query", "size", "from", "sort", "track_total_hits"}
            if unknown:
                raise EsError(400, "parsing_exception", f"Unknown key for a START_OBJECT in [{sorted(unknown)[0]}].")
        if "q" in params:
            field, _, value = params["q"].partition(":")
            query = {"match_all": {}} if params["q"] in ("*", "*:*") else {"match": {field: value}}
        if query is None or "match_all" in query:
            return lambda src: True
        if len(query) == 1 and next(iter(query)) in ("term", "match"):
            spec = next(iter(query.values()))
            field, value = next(iter(spec.items()))
            if isinstance(value, dict):
                value = value.get("value", value.get("query"))
            return lambda src: str(src.get(field)) == str(value)
        raise EsError(400, "parsing_exception", f"stand-in supports only match_all, term and match queries: {query}")

    def gather(self, params, body, expr):
        state = self.local_state()
        names = self.resolve_indices(state, expr, must_exist=True)
        match = self.matcher(params, body)
        hits, total, ok = [], 0, 0
        for name in names:
            for shard in state["routing"][name]:
                total += 1
                resp = self.shard_call(state, name, shard, "shard_docs", {})
                if resp is None:
                    continue
                ok += 1
                hits += [(name, op) for op in resp["ops"] if match(op["source"])]
        if total and not ok:
            raise EsError(
                503,
                "search_phase_execution_exception",
                "all shards failed",
                phase="query",
                grouped=True,
                failed_shards=[],
            )
        return hits, {"total": total, "successful": ok, "skipped": 0, "failed": total - ok}

    def count(self, params, body, expr=None):
        hits, shards = self.gather(params, body, expr)
        return 200, {"count": len(hits), "_shards": shards}

    def search(self, params, body, expr=None):
        hits, shards = self.gather(params, body, expr)
        size = int(params.get("size", (body or {}).get("size", 10)))
        start = int(params.get("from", (body or {}).get("from", 0)))
        hits.sort(key=lambda h: (h[0], h[1]["id"]))
        return 200, {
            "took": 1,
            "timed_out": False,
            "_shards": shards,
            "hits": {
                "total": {"value": len(hits), "relation": "eq"},
                "max_score": 1.0 if hits else None,
                "hits": [
                    {"_index": n, "_id": op["id"], "_score": 1.0, "_source": op["source"]}
                    for n, op in hits[start : start + size]
                ],
            },
        }

    # ------------------------------------------------------------ snapshots and SLM
    def get_repos(self, params, body, name=None):
        state = self.wait_master(params)
        repos = state["repositories"]
        names = sorted(repos) if name in (None, "_all", "*") else name.split(",")
        out = {}
        for repo in names:
            if repo not in repos:
                raise EsError(404, "repository_missing_exception", f"[{repo}] missing")
            out[repo] = {"type": repos[repo]["type"], "settings": repos[repo]["settings"]}
        return 200, out

    def put_repo(self, params, body, name):
        if not body:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: type is missing;")
        verify = parse_bool(params.get("verify", "true"), "verify")
        self.master("put_repository", {"name": name, "body": body, "verify": verify}, params)
        return 200, {"acknowledged": True}

    def delete_repo(self, params, body, name):
        self.master("delete_repository", {"name": name}, params)
        return 200, {"acknowledged": True}

    def get_snapshots(self, params, body, repo, snap):
        snapshots = self.master("list_snapshots", {"repo": repo}, params)
        if snap not in ("_all", "*"):
            wanted = snap.split(",")
            found = [
                s
                for s in snapshots
                if s["snapshot"] in wanted or any(fnmatch.fnmatchcase(s["snapshot"], w) for w in wanted)
            ]
            missing = [w for w in wanted if "*" not in w and not any(s["snapshot"] == w for s in snapshots)]
            if missing:
                raise EsError(404, "snapshot_missing_exception", f"[{repo}:{missing[0]}] is missing")
            snapshots = found
        return 200, {"snapshots": snapshots, "total": len(snapshots), "remaining": 0}

    def create_snapshot(self, params, body, repo, snap):
        body = body or {}
        unknown = set(body) - {
            "indices",
            "ignore_unavailable",
            "include_global_state",
            "partial",
            "metadata",
            "feature_states",
        }
        if unknown:
            raise EsError(400, "illegal_argument_exception", f"Unknown parameter {sorted(unknown)[0]}")
        indices = body.get("indices")
        if isinstance(indices, str):
            indices = indices.split(",")
        info = self.master(
            "create_snapshot",
            {
                "repo": repo,
                "snapshot": snap,
                "indices": indices,
                "partial": body.get("partial", False),
                "metadata": body.get("metadata"),
            },
            params,
        )
        if parse_bool(params.get("wait_for_completion", "false"), "wait_for_completion"):
            return 200, {"snapshot": info}
        return 200, {"accepted": True}

    def get_slm(self, params, body, name=None):
        state = self.wait_master(params)
        names = sorted(state["slm"]) if name is None else name.split(",")
        missing = [n for n in names if n not in state["slm"]]
        if missing:
            raise EsError(
                404,
                "resource_not_found_exception",
                f"snapshot lifecycle policy or policies {missing} not found, no policies are configured"
                if not state["slm"]
                else f"snapshot lifecycle policy or policies {missing} not found",
            )
        return 200, {n: {**state["slm"][n], "next_execution_millis": now_millis() + 86_400_000} for n in names}

    def put_slm(self, params, body, name):
        if not body:
            raise EsError(400, "parse_exception", "request body is required")
        allowed = {"schedule", "name", "repository", "config", "retention"}
        unknown = set(body) - allowed
        if unknown:
            raise EsError(400, "x_content_parse_exception", f"[slm_policy] unknown field [{sorted(unknown)[0]}]")
        missing = [k for k in ("schedule", "name", "repository") if not body.get(k)]
        if missing:
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: "
                + " ".join(f"{i + 1}: invalid {k}: must not be empty;" for i, k in enumerate(missing)),
            )
        fields = str(body["schedule"]).split()
        ok = (
            len(fields) in (6, 7)
            and all(re.fullmatch(r"[0-9A-Z*?/,\-LW#]+", f) for f in fields)
            and (fields[3] == "?") != (fields[5] == "?")
        )
        if not ok:
            raise EsError(
                400,
                "action_request_validation_exception",
                f"Validation Failed: 1: invalid schedule [{body['schedule']}]: must be a valid cron expression "
                "(seconds minutes hours day-of-month month day-of-week [year], with '?' in exactly one of the "
                "day fields);",
            )
        retention = body.get("retention") or {}
        unknown = set(retention) - {"expire_after", "min_count", "max_count"}
        if unknown:
            raise EsError(
                400, "x_content_parse_exception", f"[snapshot_retention] unknown field [{sorted(unknown)[0]}]"
            )
        if "expire_after" in retention:
            parse_time(retention["expire_after"], "expire_after")
        for key in ("min_count", "max_count"):
            if key in retention and (not isinstance(retention[key], int) or retention[key] < 1):
                raise EsError(400, "illegal_argument_exception", f"{key} must be greater than 0")
        if retention.get("min_count", 0) > retention.get("max_count", 1 << 30):
            raise EsError(
                400,
                "illegal_argument_exception",
                "minimum snapshot count must be less than or equal to maximum snapshot count",
            )
        config = body.get("config") or {}
        unknown = set(config) - {
            "indices",
            "ignore_unavailable",
            "include_global_state",
            "partial",
            "feature_states",
            "metadata",
        }
        if unknown:
            raise EsError(400, "illegal_argument_exception", f"Unknown parameter {sorted(unknown)[0]}")
        self.master("put_slm", {"name": name, "policy": body}, params)
        return 200, {"acknowledged": True}

    def delete_slm(self, params, body, name):
        self.master("delete_slm", {"name": name}, params)
        return 200, {"acknowledged": True}

    def execute_slm(self, params, body, name):
        return 200, self.master("execute_slm", {"name": name}, params)


HEALTH_PARAMS = {
    "wait_for_status",
    "wait_for_nodes",
    "wait_for_no_relocating_shards",
    "wait_for_no_initializing_shards",
    "wait_for_active_shards",
    "wait_for_events",
    "timeout",
    "master_timeout",
    "local",
    "level",
    "expand_wildcards",
    "return_200_for_cluster_health_timeout",
}
CLUSTER_STATE_METRICS = {
    "_all",
    "version",
    "master_node",
    "blocks",
    "nodes",
    "metadata",
    "routing_table",
    "routing_nodes",
    "customs",
}
# What `GET /_nodes/stats/METRICS` accepts in ES 8.
NODES_STATS_METRICS = {
    "_all", "adaptive_selection", "allocations", "breaker", "discovery", "fs", "http", "indexing_pressure",
    "indices", "ingest", "jvm", "os", "process", "repositories", "script", "script_cache", "thread_pool",
    "transport",
}
# The stand-in's heap use, the same figure `_cat/nodes` reports.
STANDIN_HEAP_PERCENT = 20


def heap_bytes(size):
    """`512m` -> bytes; ES's default heap (1g in the stand-in) when unset."""
    if not size:
        return 1 << 30
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    size = size.strip().lower()
    if size[-1] in units:
        return int(size[:-1]) * units[size[-1]]
    return int(size)


def disk_usage(path):
    """The `fs.total` block of a node's data path: total, free and available bytes."""
    try:
        st = os.statvfs(path)
    except (OSError, TypeError):
        return {"total_in_bytes": 0, "free_in_bytes": 0, "available_in_bytes": 0}
    return {
        "total_in_bytes": st.f_blocks * st.f_frsize,
        "free_in_bytes": st.f_bfree * st.f_frsize,
        "available_in_bytes": st.f_bavail * st.f_frsize,
    }


CAT_PARAMS = {"format", "h", "v", "s", "help", "local", "master_timeout", "bytes", "time"}
DOC_WRITE_PARAMS = {
    "refresh",
    "timeout",
    "wait_for_active_shards",
    "op_type",
    "version",
    "version_type",
    "if_seq_no",
    "if_primary_term",
    "require_alias",
}


def http_server(node, rest):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype_in = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            try:
                if raw and ctype_in not in (
                    "application/json",
                    "application/x-ndjson",
                    "application/yaml",
                    "application/vnd.elasticsearch+json",
                ):
                    # ES 8 refuses bodies without a supported Content-Type (e.g. curl -d's form encoding).
                    status, payload = (
                        406,
                        {"error": f"Content-Type header [{ctype_in}] is not supported", "status": 406},
                    )
                else:
                    status, payload = rest.dispatch(self.command, self.path, raw)
            except EsError as err:
                status, payload = err.status, err.body()
            except NotMaster:
                status, payload = 503, EsError(503, "master_not_discovered_exception", None).body()
            except Exception as err:  # noqa: BLE001 - a 500 like ES, with the cause
                node.log.exception("request %s %s failed", self.command, self.path)
                status, payload = 500, EsError(500, "exception", repr(err)).body()
            if isinstance(payload, str):
                data, ctype = payload.encode(), "text/plain; charset=UTF-8"
            else:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if "filter_path" in query and isinstance(payload, (dict, list)):
                    payload = filter_path(payload, query["filter_path"][-1])
                pretty = "pretty" in self.path
                data = (json.dumps(payload, indent=2 if pretty else None) + ("\n" if pretty else "")).encode()
                ctype = "application/json"
            if payload == "" and ctype.startswith("text/plain"):
                data = b""
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("X-elastic-product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    server = Server((node.cfg.host, node.cfg.http_port), Handler)
    server.daemon_threads = True
    return server
