"""Strict reading of an Elasticsearch 8 config directory (elasticsearch.yml, jvm.options.d).

Everything here is a check that real Elasticsearch (or the FreeBSD port, or a bootstrap
check) would also make, so a rendering mistake in haelk fails here as it would there.
Returns a validated `EsConfig`; raises `StartupError` with an ES-like message otherwise.
"""

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field

try:
    from .common import StartupError, flatten_settings, load_yaml_file
except ImportError:  # run as a script: the directory is on sys.path
    from common import StartupError, flatten_settings, load_yaml_file

KNOWN_ROLES = {
    "master",
    "data",
    "data_content",
    "data_hot",
    "data_warm",
    "data_cold",
    "data_frozen",
    "ingest",
    "ml",
    "remote_cluster_client",
    "transform",
    "voting_only",
}
DATA_ROLES = {"data", "data_content", "data_hot", "data_warm", "data_cold", "data_frozen"}

_EXACT_SETTINGS = {
    "cluster.name",
    "node.name",
    "node.roles",
    "node.processors",
    "network.host",
    "network.bind_host",
    "network.publish_host",
    "http.port",
    "http.host",
    "http.bind_host",
    "http.publish_host",
    "http.publish_port",
    "http.max_content_length",
    "http.compression",
    "transport.port",
    "transport.host",
    "transport.bind_host",
    "transport.publish_host",
    "transport.publish_port",
    "transport.compress",
    "discovery.seed_hosts",
    "discovery.seed_providers",
    "discovery.type",
    "cluster.initial_master_nodes",
    "cluster.auto_shrink_voting_configuration",
    "cluster.max_shards_per_node",
    "path.data",
    "path.logs",
    "path.repo",
    "path.shared_data",
    "xpack.ml.enabled",
    "xpack.security.enabled",
    "xpack.security.enrollment.enabled",
    "xpack.security.autoconfiguration.enabled",
    "xpack.security.authc.api_key.enabled",
    "xpack.monitoring.collection.enabled",
    "xpack.watcher.enabled",
    "xpack.license.self_generated.type",
    "action.destructive_requires_name",
    "action.auto_create_index",
    "bootstrap.memory_lock",
    "gateway.expected_data_nodes",
    "gateway.recover_after_data_nodes",
    "gateway.recover_after_time",
    "ingest.geoip.downloader.enabled",
    "search.max_buckets",
}

_SSL_KEYS = (
    "enabled|key|certificate|certificate_authorities|verification_mode|client_authentication|"
    "supported_protocols|cipher_suites|key_passphrase|keystore\\.path|keystore\\.type|"
    "truststore\\.path|truststore\\.type"
)
_POOLS = (
    "search|search_throttled|search_coordination|write|get|analyze|snapshot|snapshot_meta|"
    "management|generic|refresh|flush|force_merge|warmer|fetch_shard_started|fetch_shard_store|"
    "system_read|system_write|system_critical_read|system_critical_write"
)
ROUTING_SETTING = re.compile(
    r"cluster\.routing\.(?:"
    r"allocation\.(?:enable|node_concurrent_recoveries|node_concurrent_incoming_recoveries|"
    r"node_concurrent_outgoing_recoveries|node_initial_primaries_recoveries|same_shard\.host|"
    r"total_shards_per_node|awareness\.attributes|balance\.(?:shard|index|threshold)|"
    r"cluster_concurrent_rebalance|allow_rebalance|"
    r"(?:exclude|include|require)\.[A-Za-z0-9_.]+|awareness\.force\.[A-Za-z0-9_.]+|"
    r"disk\.threshold_enabled|disk\.watermark\.(?:low|high|flood_stage)(?:\.max_headroom)?)"
    r"|rebalance\.enable|use_adaptive_replica_selection)"
)
_PREFIX_RULES = [
    re.compile(r"node\.attr\.[A-Za-z0-9_]+"),
    ROUTING_SETTING,
    re.compile(
        r"indices\.(?:memory\.[a-z_.]+|recovery\.[a-z_.]+|breaker\.[a-z_.]+|fielddata\.cache\.size|"
        r"queries\.cache\.size|requests\.cache\.(?:size|expire)|query\.bool\.max_clause_count|"
        r"lifecycle\.[a-z_.]+|id_field_data\.enabled)"
    ),
    re.compile(rf"thread_pool\.(?:{_POOLS})\.(?:size|queue_size|core|max|keep_alive)"),
    re.compile(rf"xpack\.security\.(?:transport|http)\.ssl\.(?:{_SSL_KEYS})"),
    re.compile(r"http\.cors\.(?:enabled|allow-origin|allow-methods|allow-headers|allow-credentials|max-age)"),
    re.compile(r"cluster\.fault_detection\.(?:leader_check|follower_check)\.(?:interval|timeout|retry_count)"),
    re.compile(r"cluster\.election\.(?:initial_timeout|back_off_time|max_timeout|duration)"),
    re.compile(r"logger\.[A-Za-z0-9_.]+"),
]

REQUIRED = ("cluster.name", "node.name", "path.data", "path.logs", "network.host", "discovery.seed_hosts")


def is_known_setting(key):
    return key in _EXACT_SETTINGS or any(rule.fullmatch(key) for rule in _PREFIX_RULES)


def parse_auto_create_index(value):
    """ES's AutoCreate: a boolean, or comma-separated index patterns (`+` allows, `-` forbids,
    first match wins, no match forbids). Returns (enabled, [(pattern, allowed)]); ValueError
    with ES's message when the value is neither."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text in ("true", "false"):
        return text == "true", []
    expressions = []
    for pattern in text.split(","):
        pattern = pattern.strip()
        if not pattern:
            raise ValueError(
                f"Can't parse [{text}] for setting [action.auto_create_index] must be either "
                "[true, false, or a comma separated list of index patterns]"
            )
        if pattern[0] in "+-":
            if len(pattern) == 1:
                raise ValueError(
                    f"Can't parse [{text}] for setting [action.auto_create_index] must contain an index name "
                    f"after [{pattern}]"
                )
            expressions.append((pattern[1:], pattern[0] == "+"))
        else:
            expressions.append((pattern, True))
    return True, expressions


@dataclass
class EsConfig:
    """The validated settings a node runs with."""

    settings: dict
    cluster_name: str
    node_name: str
    roles: list
    host: str
    http_port: int
    transport_port: int
    seed_hosts: list  # [(host, port)]
    initial_master_nodes: list
    path_data: str
    path_logs: str
    path_repo: list
    heap: str = None
    extra: dict = field(default_factory=dict)

    @property
    def master_eligible(self):
        return "master" in self.roles

    @property
    def voting_only(self):
        return "voting_only" in self.roles

    @property
    def data(self):
        return bool(DATA_ROLES & set(self.roles))


def _as_list(value, key):
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [part.strip() for part in text.split(",") if part.strip()]
    raise StartupError(f"java.lang.IllegalArgumentException: illegal value for list setting [{key}]: [{value}]")


def _as_bool(value, key):
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise StartupError(
        f"java.lang.IllegalArgumentException: Failed to parse value [{value}] as only [true] or [false] "
        f"are allowed. (setting [{key}])"
    )


def _as_port(value, key):
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise StartupError(f"java.lang.IllegalArgumentException: Failed to parse value [{value}] for setting [{key}]")
    port = int(value)
    if not 1 <= port <= 65535:
        raise StartupError(
            f"java.lang.IllegalArgumentException: Failed to parse value [{value}] for setting [{key}] must be <= 65535"
        )
    return port


def _address_is_local(address):
    """True when `address` is an IPv4/IPv6 address this machine can bind (loopback 127/8 counts)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def _resolve_host(value):
    if value in ("_local_", "localhost"):
        return "127.0.0.1"
    if value in ("0.0.0.0", "::", "_site_", "_global_"):
        raise StartupError(
            f"stand-in limitation: network.host [{value}] binds every interface; give the node's own address"
        )
    if _address_is_local(value):
        return value
    try:
        resolved = socket.gethostbyname(value)
    except OSError as err:
        raise StartupError(f"java.net.UnknownHostException: {value}: Name or service not known") from err
    if not _address_is_local(resolved):
        raise StartupError(
            f"BindTransportException[Failed to bind to {value}]; nested: BindException[Cannot assign requested "
            f"address]; [{value}] is not an address of this machine"
        )
    return resolved


def _parse_seed(entry):
    text = str(entry).strip()
    match = re.fullmatch(r"\[?([^\[\]]+?)\]?(?::(\d+))?", text)
    if not match or not text:
        raise StartupError(f"java.lang.IllegalArgumentException: failed to parse seed host [{text}]")
    host, port = match.group(1), int(match.group(2) or 9300)
    if host.count(":") > 1 and not text.startswith("["):  # bare IPv6 without port
        host, port = text, 9300
    return host, port


_HEAP = re.compile(r"(\d+)([kKmMgGtT]?)")


def read_heap(path_conf):
    """Read -Xms/-Xmx from jvm.options and jvm.options.d/*.options (later files win);
    refuse malformed lines and unequal sizes."""
    options_dir = os.path.join(path_conf, "jvm.options.d")
    found = {}
    files = [os.path.join(path_conf, "jvm.options")] if os.path.isfile(os.path.join(path_conf, "jvm.options")) else []
    if os.path.isdir(options_dir):
        files += [os.path.join(options_dir, n) for n in sorted(os.listdir(options_dir)) if n.endswith(".options")]
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for number, raw in enumerate(handle, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                match = re.fullmatch(r"(?:(\d+)(-)?(\d+)?:)?(-.*)", line)
                if not match:
                    raise StartupError(
                        f"encountered [1] error parsing [{path}]\n[{number}]: encountered improperly "
                        f"formatted JVM option in [{path}] on line number [{number}]: [{line}]"
                    )
                option = match.group(4)
                for flag in ("-Xms", "-Xmx"):
                    if option.startswith(flag):
                        size = option[len(flag) :]
                        if not _HEAP.fullmatch(size):
                            raise StartupError(
                                f"Invalid {'initial' if flag == '-Xms' else 'maximum'} heap size: {option}"
                            )
                        found[flag] = size
    if not found:
        return None
    xms, xmx = found.get("-Xms"), found.get("-Xmx")
    if _heap_bytes(xms) != _heap_bytes(xmx):
        raise StartupError(
            "bootstrap check failure [1] of [1]: initial heap size "
            f"[{xms or 'default'}] not equal to maximum heap size [{xmx or 'default'}]; this can cause resize "
            "pauses"
        )
    return xmx


def _heap_bytes(size):
    if size is None:
        return None
    match = _HEAP.fullmatch(size)
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[match.group(2).lower()]
    return int(match.group(1)) * scale


def _can_lock_memory():
    """Whether mlockall() works for this process, as ES's memory-lock bootstrap check needs."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.mlockall(1) != 0:  # MCL_CURRENT
            return False
        libc.munlockall()
        return True
    except (OSError, AttributeError):
        return False


def _check_writable_dir(path, key):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise StartupError(f"java.nio.file.AccessDeniedException: {path} (setting [{key}]): {err.strerror}") from err
    probe = os.path.join(path, ".es_temp_file")
    try:
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write("probe")
        os.remove(probe)
    except OSError as err:
        raise StartupError(f"java.nio.file.AccessDeniedException: {probe} (setting [{key}]): {err.strerror}") from err


def load_config(path_conf):
    """Read and validate DIR/elasticsearch.yml and DIR/jvm.options.d; raise StartupError if refused."""
    raw = load_yaml_file(os.path.join(path_conf, "elasticsearch.yml"))
    settings = flatten_settings(raw)
    unknown = sorted(key for key in settings if not is_known_setting(key))
    if unknown:
        key = unknown[0]
        hint = ""
        if key.startswith("discovery.zen.") or key in ("node.master", "node.data", "node.ingest", "node.ml"):
            hint = " (removed in Elasticsearch 8; use node.roles / discovery.seed_hosts)"
        raise StartupError(
            f"java.lang.IllegalArgumentException: unknown setting [{key}] please check that any required "
            "plugins are installed, or check the breaking changes documentation for removed settings" + hint
        )
    for key in REQUIRED:
        if settings.get(key) in (None, "", []):
            raise StartupError(
                f"java.lang.IllegalArgumentException: setting [{key}] is required by haelk's deployment "
                "(stand-in rule: haelk must render it)"
            )

    ml = settings.get("xpack.ml.enabled", True)
    if _as_bool(ml, "xpack.ml.enabled"):
        raise StartupError(
            "java.lang.IllegalStateException: ML is not supported on FreeBSD: the elasticsearch8 port has no "
            "machine learning native code; set [xpack.ml.enabled] to [false]"
        )

    if "node.roles" in settings:
        roles = _as_list(settings["node.roles"], "node.roles")
        for role in roles:
            if role not in KNOWN_ROLES:
                raise StartupError(f"java.lang.IllegalArgumentException: unknown role [{role}]")
        if len(set(roles)) != len(roles):
            raise StartupError(f"java.lang.IllegalArgumentException: duplicate roles in [node.roles]: {roles}")
    else:
        roles = [
            "data",
            "data_cold",
            "data_content",
            "data_frozen",
            "data_hot",
            "data_warm",
            "ingest",
            "master",
            "remote_cluster_client",
            "transform",
        ]
    if "voting_only" in roles and "master" not in roles:
        raise StartupError("java.lang.IllegalStateException: voting-only node must be master-eligible")
    if "ml" in roles:
        raise StartupError(
            "java.lang.IllegalArgumentException: node.roles contains [ml] but [xpack.ml.enabled] is false"
        )
    if "data" in roles and len(DATA_ROLES & set(roles)) > 1:
        raise StartupError(
            "java.lang.IllegalArgumentException: a node can not have the [data] role together with "
            "specialised data roles " + str(sorted(DATA_ROLES & set(roles) - {"data"}))
        )

    security = _as_bool(settings.get("xpack.security.enabled", True), "xpack.security.enabled")
    if security:
        if not _as_bool(
            settings.get("xpack.security.transport.ssl.enabled", False), "xpack.security.transport.ssl.enabled"
        ):
            raise StartupError(
                "bootstrap check failure [1] of [1]: Transport SSL must be enabled if security is enabled. "
                "Please set [xpack.security.transport.ssl.enabled] to [true] or disable security by setting "
                "[xpack.security.enabled] to [false]"
            )
        raise StartupError(
            "stand-in limitation: xpack.security.enabled: true is not implemented (no users, no TLS); "
            "set xpack.security.enabled: false"
        )

    for key in ("cluster.name", "node.name"):
        if not isinstance(settings[key], (str, int)) or isinstance(settings[key], bool):
            raise StartupError(f"java.lang.IllegalArgumentException: setting [{key}] must be a string")
    cluster_name = str(settings["cluster.name"])
    if ":" in cluster_name:
        raise StartupError(f"java.lang.IllegalArgumentException: Cluster name [{cluster_name}] may not contain ':'")

    hosts = _as_list(settings["network.host"], "network.host")
    if len(hosts) != 1:
        raise StartupError("stand-in limitation: network.host must be exactly one address")
    host = _resolve_host(hosts[0])
    http_port = _as_port(settings.get("http.port", 9200), "http.port")
    transport_port = _as_port(settings.get("transport.port", 9300), "transport.port")
    if http_port == transport_port:
        raise StartupError(
            f"BindTransportException[Failed to bind to {host}:{transport_port}]; "
            "http.port and transport.port are the same"
        )

    seeds = [_parse_seed(entry) for entry in _as_list(settings["discovery.seed_hosts"], "discovery.seed_hosts")]
    if settings.get("discovery.type") not in (None, "multi-node"):
        raise StartupError(
            f"stand-in limitation: discovery.type [{settings.get('discovery.type')}] is not supported "
            "(haelk deploys multi-node clusters)"
        )
    initial = _as_list(settings.get("cluster.initial_master_nodes", []), "cluster.initial_master_nodes")
    if len(set(initial)) != len(initial):
        raise StartupError(
            f"java.lang.IllegalArgumentException: setting [cluster.initial_master_nodes] contains duplicates: {initial}"
        )
    node_name = str(settings["node.name"])
    if initial and "master" in roles and node_name not in initial:
        raise StartupError(
            f"java.lang.IllegalArgumentException: master-eligible node [{node_name}] is not listed in "
            f"[cluster.initial_master_nodes] {initial}; the names there must match node.name exactly "
            "(stand-in rule)"
        )

    data_paths = (
        _as_list(settings["path.data"], "path.data")
        if isinstance(settings["path.data"], list)
        else [str(settings["path.data"])]
    )
    if len(data_paths) != 1:
        raise StartupError("java.lang.IllegalArgumentException: multiple [path.data] entries are deprecated; use one")
    path_data = os.path.abspath(data_paths[0])
    path_logs = os.path.abspath(str(settings["path.logs"]))
    _check_writable_dir(path_data, "path.data")
    _check_writable_dir(path_logs, "path.logs")
    path_repo = [os.path.abspath(p) for p in _as_list(settings.get("path.repo", []), "path.repo")]

    for key in ("action.destructive_requires_name", "bootstrap.memory_lock"):
        if key in settings:
            _as_bool(settings[key], key)
    if "action.auto_create_index" in settings:
        auto_create = settings["action.auto_create_index"]
        if isinstance(auto_create, list):
            raise StartupError(
                "stand-in limitation: [action.auto_create_index] is a YAML list; ES 8 reads a string setting "
                "given as a list as the list's text, not as patterns - give one comma-separated string"
            )
        try:
            parse_auto_create_index(auto_create)
        except ValueError as err:
            raise StartupError(f"java.lang.IllegalArgumentException: {err}") from err
    if _as_bool(settings.get("bootstrap.memory_lock", False), "bootstrap.memory_lock") and not _can_lock_memory():
        raise StartupError(
            "bootstrap check failure [1] of [1]: memory locking requested for elasticsearch process but memory is "
            "not locked (on FreeBSD: sysctl security.bsd.unprivileged_mlock=1 and allow.mlock in the jail)"
        )

    heap = read_heap(path_conf)
    return EsConfig(
        settings=settings,
        cluster_name=cluster_name,
        node_name=node_name,
        roles=sorted(roles),
        host=host,
        http_port=http_port,
        transport_port=transport_port,
        seed_hosts=seeds,
        initial_master_nodes=initial,
        path_data=path_data,
        path_logs=path_logs,
        path_repo=path_repo,
        heap=heap,
    )
