"""Pure cluster-state logic of the Elasticsearch stand-in: allocation, node departure,
shard start, voting configuration, health. No I/O: functions take and mutate a state dict.

Cluster state layout (JSON-serialisable, published by the master to every node):
  cluster_uuid, term, version, master, nodes {id: info}, voting_config [ids],
  exclusions [{node_id, node_name}], settings {persistent, transient},
  indices {name: {uuid, shards, replicas, created, in_sync {shard: [alloc ids]}}},
  routing {name: {shard: [copy]}}, repositories {}, slm {}, snapshots {}
A copy: {node, primary, state (UNASSIGNED|INITIALIZING|STARTED|RELOCATING), alloc,
  relocating_node, relocation_source, reason, since, recovery (empty|existing_store|peer)}.
"""

import fnmatch
import time
import uuid

try:
    from .es_config import DATA_ROLES
except ImportError:
    from es_config import DATA_ROLES

PLACEHOLDER = "{bootstrap-placeholder}-"
ACTIVE = ("STARTED", "RELOCATING")


def new_id():
    return uuid.uuid4().hex[:22]


def effective_settings(state):
    merged = dict(state["settings"]["persistent"])
    merged.update(state["settings"]["transient"])
    return merged


def is_data_node(info):
    return bool(DATA_ROLES & set(info["roles"]))


def is_master_eligible(info):
    return "master" in info["roles"]


def unassigned_copy(primary, reason):
    return {
        "node": None,
        "primary": primary,
        "state": "UNASSIGNED",
        "alloc": None,
        "relocating_node": None,
        "relocation_source": None,
        "reason": reason,
        "since": time.time(),
        "recovery": None,
    }


def add_index(state, name, shards, replicas, index_uuid=None):
    index_uuid = index_uuid or new_id()
    state["indices"][name] = {
        "uuid": index_uuid,
        "shards": shards,
        "replicas": replicas,
        "created": int(time.time() * 1000),
        "in_sync": {str(n): [] for n in range(shards)},
    }
    state["routing"][name] = {
        str(n): [unassigned_copy(True, "INDEX_CREATED")]
        + [unassigned_copy(False, "INDEX_CREATED") for _ in range(replicas)]
        for n in range(shards)
    }
    return index_uuid


def set_replicas(state, name, replicas):
    meta = state["indices"][name]
    meta["replicas"] = replicas
    for copies in state["routing"][name].values():
        wanted = 1 + replicas
        # Shrink: drop unassigned replicas first, then initializing, then started ones.
        order = {"UNASSIGNED": 0, "INITIALIZING": 1, "STARTED": 2, "RELOCATING": 3}
        while len([c for c in copies if not c["relocation_source"]]) > wanted:
            removable = sorted(
                (c for c in copies if not c["primary"] and not c["relocation_source"]), key=lambda c: order[c["state"]]
            )
            victim = removable[0]
            copies.remove(victim)
            if victim["state"] == "RELOCATING":
                copies[:] = [c for c in copies if c["relocation_source"] != victim["node"]]
        while len([c for c in copies if not c["relocation_source"]]) < wanted:
            copies.append(unassigned_copy(False, "REPLICA_ADDED"))


def rebuild_routing(state):
    """After a full-cluster restart the routing is rebuilt from metadata: every copy unassigned."""
    state["routing"] = {}
    for name, meta in state["indices"].items():
        state["routing"][name] = {
            str(n): [unassigned_copy(True, "CLUSTER_RECOVERED")]
            + [unassigned_copy(False, "CLUSTER_RECOVERED") for _ in range(meta["replicas"])]
            for n in range(meta["shards"])
        }


def _primary_active(copies):
    return any(c["primary"] and c["state"] in ACTIVE for c in copies)


def remove_nodes(state, node_ids, reason="NODE_LEFT"):
    """Drop nodes from the state and fail every shard copy they held (promoting replicas)."""
    gone = set(node_ids)
    for node_id in gone:
        state["nodes"].pop(node_id, None)
    for name, shards in state["routing"].items():
        meta = state["indices"][name]
        for shard, copies in shards.items():
            lost = [c for c in copies if c["node"] in gone]
            if not lost:
                continue
            for copy in lost:
                fail_copy(copies, copy, reason, delay=meta.get("delayed_timeout", 60.0))
            if _primary_active(copies):
                alive = {c["alloc"] for c in copies if c["state"] in ACTIVE}
                meta["in_sync"][shard] = [a for a in meta["in_sync"][shard] if a in alive]


def fail_shard(state, name, shard, alloc, reason="ALLOCATION_FAILED"):
    """A copy failed (replication or recovery error): unassign it and drop it from the in-sync set."""
    copies = state["routing"].get(name, {}).get(shard)
    if copies is None:
        return False
    match = [c for c in copies if c["alloc"] == alloc and c["state"] != "UNASSIGNED"]
    if not match:
        return False
    fail_copy(copies, match[0], reason)
    meta = state["indices"][name]
    if _primary_active(copies):
        meta["in_sync"][shard] = [a for a in meta["in_sync"][shard] if a != alloc]
    return True


def fail_copy(copies, copy, reason, delay=None):
    """Fail one copy. A replica lost with its node (NODE_LEFT) waits `delay` seconds for
    that node to return before it is rebuilt elsewhere (index.unassigned.node_left.delayed_timeout)."""
    if copy not in copies:
        return
    if copy["relocation_source"]:
        # A relocation target died: the source simply stays where it is.
        copies.remove(copy)
        for src in copies:
            if src["node"] == copy["relocation_source"] and src["state"] == "RELOCATING":
                src["state"], src["relocating_node"] = "STARTED", None
        return
    if copy["state"] == "RELOCATING":
        # The source of a relocation died: the target has no source left to finish from.
        copies[:] = [c for c in copies if c["relocation_source"] != copy["node"]]
    was_primary = copy["primary"] and copy["state"] in ACTIVE
    idx = copies.index(copy)
    copies[idx] = unassigned_copy(False, reason)
    if reason == "NODE_LEFT" and delay:
        copies[idx]["delayed_until"] = time.time() + delay
        copies[idx]["last_node"] = copy["node"]
    if copy["primary"]:
        promoted = next((c for c in copies if not c["primary"] and c["state"] in ACTIVE), None)
        if promoted is not None and was_primary:
            promoted["primary"] = True
        else:
            copies[idx]["primary"] = True
            if was_primary or copy["state"] == "INITIALIZING":
                # Replicas still recovering from the lost primary cannot finish.
                for other in list(copies):
                    if other is not copies[idx] and other["state"] == "INITIALIZING":
                        copies[copies.index(other)] = unassigned_copy(False, reason)


def start_shard(state, name, shard, alloc):
    """A copy finished recovering: STARTED, in sync; a relocation target replaces its source."""
    copies = state["routing"].get(name, {}).get(shard)
    if copies is None:
        return False
    target = next((c for c in copies if c["alloc"] == alloc and c["state"] == "INITIALIZING"), None)
    if target is None:
        return False
    meta = state["indices"][name]
    if target["relocation_source"]:
        source = next(
            (c for c in copies if c["node"] == target["relocation_source"] and c["state"] == "RELOCATING"), None
        )
        if source is not None:
            copies.remove(source)
            meta["in_sync"][shard] = [a for a in meta["in_sync"][shard] if a != source["alloc"]]
            target["primary"] = source["primary"]
        target["relocation_source"] = None
    target["state"] = "STARTED"
    target["reason"] = None
    if alloc not in meta["in_sync"][shard]:
        meta["in_sync"][shard].append(alloc)
    return True


def _filters(settings, kind):
    """{attribute: [values]} of one filter group; empty values are ignored as in ES."""
    prefix = f"cluster.routing.allocation.{kind}."
    out = {}
    for key, value in settings.items():
        if key.startswith(prefix) and value is not None:
            values = [v.strip() for v in str(value).split(",") if v.strip()]
            if values:
                out[key[len(prefix) :]] = values
    return out


def _filter_attribute_matches(attr, values, info, node_id):
    """Does any of `values` match the node's `attr`? (ES's DiscoveryNodeFilters, per attribute.)"""
    if attr == "_id":
        return node_id in values
    if attr in ("_name", "name"):
        subject = info["name"]
    elif attr in ("_ip", "_host_ip", "_publish_ip", "_host"):
        subject = info["host"]  # the stand-in's host name is its one IP address
    else:
        subject = info.get("attributes", {}).get(attr)
    return subject is not None and any(fnmatch.fnmatchcase(subject, v) for v in values)


def _filter_group_matches(filters, info, node_id, require_all):
    """require: every value of every attribute must match (AND); include/exclude: any one (OR)."""
    if require_all:
        return all(
            _filter_attribute_matches(attr, [value], info, node_id)
            for attr, values in filters.items()
            for value in values
        )
    return any(_filter_attribute_matches(attr, values, info, node_id) for attr, values in filters.items())


def node_filter_decision(settings, info, node_id):
    """None when the node may hold shards, else the filter decider's explanation."""
    require = _filters(settings, "require")
    if require and not _filter_group_matches(require, info, node_id, True):
        return "node does not match cluster setting [cluster.routing.allocation.require] filters"
    include = _filters(settings, "include")
    if include and not _filter_group_matches(include, info, node_id, False):
        return "node does not match cluster setting [cluster.routing.allocation.include] filters"
    exclude = _filters(settings, "exclude")
    if exclude and _filter_group_matches(exclude, info, node_id, False):
        return "node matches cluster setting [cluster.routing.allocation.exclude] filters"
    return None


def allocation_enable(settings):
    """The effective cluster.routing.allocation.enable; ES parses the value case-insensitively."""
    return str(settings.get("cluster.routing.allocation.enable", "all")).lower()


def enable_allows(enable, primary, new_index):
    if enable == "all":
        return True
    if enable == "primaries":
        return primary
    if enable == "new_primaries":
        return primary and new_index
    return False


def reroute(state, node_stores, max_incoming=2):
    """Assign unassigned copies and start moves off filtered nodes. Returns True if changed.

    node_stores: {node_id: {"<index uuid>/<shard>": alloc id}} - the copies on each node's disk.
    """
    settings = effective_settings(state)
    enable = allocation_enable(settings)
    data_nodes = {nid: info for nid, info in state["nodes"].items() if is_data_node(info)}
    counts = {nid: 0 for nid in data_nodes}
    incoming = {nid: 0 for nid in data_nodes}
    for shards in state["routing"].values():
        for copies in shards.values():
            for c in copies:
                if c["node"] in counts:
                    counts[c["node"]] += 1
                    if c["state"] == "INITIALIZING" and c["recovery"] == "peer":
                        incoming[c["node"]] += 1
    allowed = {nid: node_filter_decision(settings, info, nid) is None for nid, info in data_nodes.items()}
    changed = False

    def pick(exclude_nodes, limit_incoming):
        candidates = [
            nid
            for nid in data_nodes
            if allowed[nid] and nid not in exclude_nodes and (not limit_incoming or incoming[nid] < max_incoming)
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda nid: (counts[nid], data_nodes[nid]["name"]))

    def assign(copy, nid, recovery, alloc=None):
        copy.update(node=nid, state="INITIALIZING", alloc=alloc or new_id(), reason=None, recovery=recovery)
        counts[nid] += 1
        if recovery == "peer":
            incoming[nid] += 1

    for name in sorted(state["routing"]):
        meta = state["indices"][name]
        for shard, copies in sorted(state["routing"][name].items(), key=lambda kv: int(kv[0])):
            in_sync = meta["in_sync"][shard]
            new_index = not in_sync
            holders = {c["node"] for c in copies if c["node"]} | {
                c["relocating_node"] for c in copies if c["relocating_node"]
            }
            primary = next((c for c in copies if c["primary"]), None)
            if primary is not None and primary["state"] == "UNASSIGNED" and enable_allows(enable, True, new_index):
                if new_index:
                    nid = pick(holders, False)
                    if nid:
                        assign(primary, nid, "empty")
                        holders.add(nid)
                        changed = True
                else:
                    key = f"{meta['uuid']}/{shard}"
                    with_copy = [nid for nid in data_nodes if node_stores.get(nid, {}).get(key) in in_sync]
                    # A filter can be overridden for the only valid copy of a primary (forced allocation).
                    preferred = [nid for nid in with_copy if allowed[nid]] or with_copy
                    if preferred:
                        nid = min(preferred, key=lambda n: counts[n])
                        assign(primary, nid, "existing_store", alloc=node_stores[nid][key])
                        holders.add(nid)
                        changed = True
            if _primary_active(copies) and enable_allows(enable, False, new_index):
                for copy in copies:
                    if copy["state"] == "UNASSIGNED" and not copy["primary"]:
                        if copy.get("delayed_until", 0) > time.time():
                            back = copy.get("last_node")
                            if back in data_nodes and allowed[back] and back not in holders:
                                assign(copy, back, "peer")
                                holders.add(back)
                                changed = True
                            continue
                        nid = pick(holders, True)
                        if nid is None:
                            break
                        assign(copy, nid, "peer")
                        holders.add(nid)
                        changed = True
            # Moves off nodes the filters no longer allow.
            for copy in list(copies):
                if copy["state"] != "STARTED" or copy["node"] not in data_nodes or allowed[copy["node"]]:
                    continue
                if not enable_allows(enable, copy["primary"], False):
                    continue
                if not copy["primary"] and not _primary_active(copies):
                    continue
                nid = pick(holders, True)
                if nid is None:
                    continue
                target = unassigned_copy(copy["primary"], None)
                assign(target, nid, "peer")
                target["relocation_source"] = copy["node"]
                copy["state"], copy["relocating_node"] = "RELOCATING", nid
                copies.append(target)
                holders.add(nid)
                changed = True
    return changed


def explain_unassigned(state, name, shard, copy, node_stores):
    """Why an unassigned copy stays unassigned: the allocation-explain body."""
    settings = effective_settings(state)
    enable = allocation_enable(settings)
    meta = state["indices"][name]
    copies = state["routing"][name][shard]
    in_sync = meta["in_sync"][shard]
    decisions = []
    holders = {c["node"] for c in copies if c["node"]}
    for nid, info in sorted(state["nodes"].items(), key=lambda kv: kv[1]["name"]):
        deciders = []
        if not is_data_node(info):
            deciders.append(("data_tier", "node does not have a data role"))
        if not enable_allows(enable, copy["primary"], not in_sync):
            deciders.append(
                (
                    "enable",
                    f"{'primary' if copy['primary'] else 'replica'} allocations are forbidden due to "
                    f"cluster setting [cluster.routing.allocation.enable={enable}]",
                )
            )
        filt = node_filter_decision(settings, info, nid)
        if filt:
            deciders.append(("filter", filt))
        if nid in holders:
            deciders.append(("same_shard", "a copy of this shard is already allocated to this node"))
        if not copy["primary"] and not _primary_active(copies):
            deciders.append(("replica_after_primary_active", "primary shard for this replica is not yet active"))
        decisions.append(
            {
                "node_id": nid,
                "node_name": info["name"],
                "transport_address": info["transport_address"],
                "node_decision": "no" if deciders else "yes",
                "deciders": [{"decider": d, "decision": "NO", "explanation": e} for d, e in deciders],
            }
        )
    can = "yes" if any(d["node_decision"] == "yes" for d in decisions) else "no"
    remaining = copy.get("delayed_until", 0) - time.time()
    if remaining > 0 and not copy["primary"]:
        return {
            "index": name,
            "shard": int(shard),
            "primary": False,
            "current_state": "unassigned",
            "unassigned_info": {"reason": copy["reason"], "delayed": True},
            "can_allocate": "allocation_delayed",
            "allocate_explanation": f"The node containing this shard copy recently left the cluster. "
            f"Elasticsearch is waiting for it to return. If the node does not return "
            f"within [{remaining:.1f}s] then Elasticsearch will allocate this shard to "
            "another node. Please wait.",
            "configured_delay_in_millis": 0,
            "remaining_delay_in_millis": int(remaining * 1000),
            "node_allocation_decisions": decisions,
        }
    body = {
        "index": name,
        "shard": int(shard),
        "primary": copy["primary"],
        "current_state": "unassigned",
        "unassigned_info": {
            "reason": copy["reason"] or "UNKNOWN",
            "at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(copy["since"])),
            "last_allocation_status": "no" if can == "no" else "no_attempt",
        },
        "can_allocate": can,
    }
    if copy["primary"] and in_sync:
        key = f"{meta['uuid']}/{shard}"
        if not any(node_stores.get(nid, {}).get(key) in in_sync for nid in state["nodes"]):
            body["can_allocate"] = "no_valid_shard_copy"
            body["allocate_explanation"] = (
                "Elasticsearch can't allocate this shard because all the copies of its data "
                "in the cluster are stale or corrupt, or no node holds a copy: a previous copy "
                "of the primary shard existed but can no longer be found on the nodes in the cluster."
            )
            return body
    body["allocate_explanation"] = (
        "Elasticsearch can allocate the shard."
        if can == "yes"
        else "Elasticsearch isn't allowed to allocate this shard to any of the nodes in the cluster. "
        "Choose a node to which you expect this shard to be allocated, find this node in the "
        "node-by-node explanation, and address the reasons which prevent Elasticsearch from "
        "allocating this shard there."
    )
    body["node_allocation_decisions"] = decisions
    return body


def reconfigure(state):
    """The voting configuration ES's Reconfigurator would choose (auto-shrink on): live
    master-eligible nodes that are not excluded, then departed members of the current
    configuration, up to max(live count rounded down to odd, 3) members."""
    excluded = {e["node_id"] for e in state["exclusions"]}
    master = state["master"]
    current = state["voting_config"]

    def order(nid):
        return (nid != master, state["nodes"].get(nid, {}).get("name", nid))

    live = [nid for nid, info in state["nodes"].items() if is_master_eligible(info) and nid not in excluded]
    live_in = sorted((n for n in live if n in current), key=order)
    live_out = sorted((n for n in live if n not in current), key=order)
    gone_in = [n for n in current if n not in live and n not in excluded]
    count = len(live)
    odd = count if count % 2 else count - 1
    target = max(odd, 1 if len(current) == 1 else 3)
    config = (live_in + live_out + gone_in)[:target]
    if not config:
        return False
    if set(config) != set(current):
        state["voting_config"] = config
        return True
    return False


def has_quorum(config, voters):
    real = list(config)
    if not real:
        return False
    return len([m for m in real if m in voters]) * 2 > len(real)


def health(state, index_names=None):
    counts = {
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "delayed_unassigned_shards": 0,
    }
    status = "green"
    per_index = {}
    for name, shards in state["routing"].items():
        if index_names is not None and name not in index_names:
            continue
        index_status = "green"
        for copies in shards.values():
            for c in copies:
                if c["state"] in ACTIVE:
                    counts["active_shards"] += 1
                    if c["primary"]:
                        counts["active_primary_shards"] += 1
                    if c["state"] == "RELOCATING":
                        counts["relocating_shards"] += 1
                elif c["state"] == "INITIALIZING":
                    if not c["relocation_source"]:
                        counts["initializing_shards"] += 1
                        index_status = _worse(index_status, "red" if c["primary"] else "yellow")
                else:
                    counts["unassigned_shards"] += 1
                    if not c["primary"] and c.get("delayed_until", 0) > time.time():
                        counts["delayed_unassigned_shards"] += 1
                    index_status = _worse(index_status, "red" if c["primary"] else "yellow")
        per_index[name] = index_status
        status = _worse(status, index_status)
    return status, counts, per_index


def _worse(a, b):
    order = ["green", "yellow", "red"]
    return order[max(order.index(a), order.index(b))]
