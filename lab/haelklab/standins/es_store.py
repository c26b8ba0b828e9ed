"""On-disk state of one Elasticsearch stand-in node under path.data.

_state/node.json     node id (stable across restarts, like ES's node id)
_state/coord.json    current term and vote (coordination metadata)
_state/cluster.json  last accepted cluster state (routing is not trusted after a restart)
indices/<index uuid>/<shard>/meta.json + ops.jsonl   one shard copy: allocation id, operations
"""

import fcntl
import json
import os
import shutil
import threading


def write_json_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path, default=None):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


class NodeLock:
    """ES's node.lock: one process per data path."""

    def __init__(self, path_data):
        self.path = os.path.join(path_data, "node.lock")
        self.handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self.handle.close()
            raise OSError(
                f"failed to obtain node locks, tried [{path_data}]; maybe these locations are not writable or "
                "multiple nodes were started on the same data path?"
            ) from err


class ShardCopy:
    """One shard copy: documents with per-document seq_no, persisted as an append-only log."""

    def __init__(self, path_data, index_uuid, shard, alloc, index_name):
        self.dir = os.path.join(path_data, "indices", index_uuid, str(shard))
        self.index_uuid, self.shard, self.alloc, self.index_name = index_uuid, str(shard), alloc, index_name
        self.lock = threading.RLock()
        self.docs = {}
        self.max_seq = -1

    @classmethod
    def create_empty(cls, path_data, index_uuid, shard, alloc, index_name):
        copy = cls(path_data, index_uuid, shard, alloc, index_name)
        shutil.rmtree(copy.dir, ignore_errors=True)
        os.makedirs(copy.dir, exist_ok=True)
        open(os.path.join(copy.dir, "ops.jsonl"), "w", encoding="utf-8").close()
        write_json_atomic(os.path.join(copy.dir, "meta.json"), {"alloc": alloc, "index": index_name})
        return copy

    @classmethod
    def load(cls, path_data, index_uuid, shard):
        meta = read_json(os.path.join(path_data, "indices", index_uuid, str(shard), "meta.json"))
        if meta is None:
            return None
        copy = cls(path_data, index_uuid, shard, meta["alloc"], meta.get("index"))
        try:
            with open(os.path.join(copy.dir, "ops.jsonl"), encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        try:
                            copy._apply(json.loads(line))
                        except ValueError:
                            break  # a torn last line from a crash: ES would replay its translog up to it
        except FileNotFoundError:
            pass
        return copy

    def _apply(self, op):
        current = self.docs.get(op["id"])
        if current is not None and current["seq_no"] >= op["seq_no"]:
            return False
        self.docs[op["id"]] = {"source": op["source"], "version": op["version"], "seq_no": op["seq_no"]}
        self.max_seq = max(self.max_seq, op["seq_no"])
        return True

    def apply(self, op):
        """Apply one operation (newer seq_no wins) and persist it."""
        with self.lock:
            if self._apply(op):
                with open(os.path.join(self.dir, "ops.jsonl"), "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(op) + "\n")

    def apply_many(self, ops):
        with self.lock:
            fresh = [op for op in ops if self._apply(op)]
            if fresh:
                with open(os.path.join(self.dir, "ops.jsonl"), "a", encoding="utf-8") as handle:
                    handle.writelines(json.dumps(op) + "\n" for op in fresh)

    def ops(self):
        with self.lock:
            return [{"id": doc_id, **doc} for doc_id, doc in self.docs.items()]

    def destroy(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        parent = os.path.dirname(self.dir)
        try:
            os.rmdir(parent)
        except OSError:
            pass


def list_stores(path_data):
    """{"<index uuid>/<shard>": alloc id} for every shard copy on disk."""
    found = {}
    root = os.path.join(path_data, "indices")
    if not os.path.isdir(root):
        return found
    for index_uuid in os.listdir(root):
        for shard in os.listdir(os.path.join(root, index_uuid)):
            meta = read_json(os.path.join(root, index_uuid, shard, "meta.json"))
            if meta:
                found[f"{index_uuid}/{shard}"] = meta["alloc"]
    return found
