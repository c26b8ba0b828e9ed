#!/usr/bin/env python3
"""Strict Kibana 8 stand-in.

    python3 kibana.py --config FILE [--log-file FILE]

Validates kibana.yml like Kibana 8 does (unknown keys, short encryption keys, the
forbidden `elastic` user, ...) and exits 1 with Kibana's message when it would refuse.
Otherwise serves on server.host:server.port: 503 "Kibana server is not ready yet" to
every request during a start-up phase (STARTUP_SECONDS and a first look at
Elasticsearch), then GET /api/status: 200 "available" while one of elasticsearch.hosts
answers with a green or yellow cluster whose nodes all pass Kibana's version check
(same major, minor no older than Kibana's; else "critical"), polled every second and
failing over between hosts, else 503 "unavailable". Writes pid.file; SIGTERM/SIGINT
stop it cleanly (exit 0). See lab/STANDINS.md.
"""

import argparse
import base64
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import Server, STACK_VERSION, StartupError, flatten_settings, http_json, load_yaml_file, setup_logging
else:
    from .common import Server, STACK_VERSION, StartupError, flatten_settings, http_json, load_yaml_file, setup_logging

VERSION = STACK_VERSION
# Real Kibana answers every route with 503 "Kibana server is not ready yet" until its
# plugins have started (tens of seconds); the stand-in's start-up phase is shorter.
STARTUP_SECONDS = 3.0
NOT_READY = "Kibana server is not ready yet"
KNOWN_KEYS = {
    "server.host",
    "server.port",
    "server.name",
    "server.publicBaseUrl",
    "server.basePath",
    "server.rewriteBasePath",
    "server.maxPayload",
    "server.shutdownTimeout",
    "server.keepaliveTimeout",
    "server.socketTimeout",
    "elasticsearch.hosts",
    "elasticsearch.username",
    "elasticsearch.password",
    "elasticsearch.serviceAccountToken",
    "elasticsearch.requestTimeout",
    "elasticsearch.pingTimeout",
    "elasticsearch.shardTimeout",
    "elasticsearch.requestHeadersWhitelist",
    "elasticsearch.customHeaders",
    "elasticsearch.sniffOnStart",
    "elasticsearch.sniffInterval",
    "elasticsearch.sniffOnConnectionFault",
    "path.data",
    "pid.file",
    "pid.exclusive",
    "xpack.encryptedSavedObjects.encryptionKey",
    "xpack.security.encryptionKey",
    "xpack.reporting.encryptionKey",
    "xpack.reporting.roles.enabled",
    "xpack.security.session.idleTimeout",
    "xpack.security.session.lifespan",
    "xpack.fleet.agents.enabled",
    "i18n.locale",
    "telemetry.enabled",
    "telemetry.optIn",
    "newsfeed.enabled",
    "status.allowAnonymous",
    "ops.interval",
    "monitoring.ui.container.elasticsearch.enabled",
    "monitoring.kibana.collection.enabled",
    "map.includeElasticMapsService",
    "logging.loggers",
}
# Kibana 8's logging schema: appenders, root, loggers. The 7.x keys (logging.dest, .json,
# .quiet, .silent, .verbose, .rotate.*, ...) were removed in 8.0 and refused.
KNOWN_PREFIXES = ("logging.appenders.", "logging.root.", "server.ssl.", "elasticsearch.ssl.")
ENCRYPTION_KEYS = (
    "xpack.encryptedSavedObjects.encryptionKey",
    "xpack.security.encryptionKey",
    "xpack.reporting.encryptionKey",
)


def config_error(key, message):
    section, _, leaf = key.rpartition(".")
    return StartupError(f"FATAL  Error: [config validation of [{section}].{leaf}]: {message}")


def validate(settings):
    """Return the validated config dict; raise StartupError with Kibana's message."""
    unknown = sorted(k for k in settings if k not in KNOWN_KEYS and not k.startswith(KNOWN_PREFIXES))
    if unknown:
        raise StartupError(
            "FATAL  Error: Unknown configuration key(s): "
            + ", ".join(f'"{k}"' for k in unknown)
            + ". Check for spelling errors and ensure that expected plugins are installed."
        )
    for key in ENCRYPTION_KEYS:
        if key in settings:
            value = settings[key]
            if not isinstance(value, str):
                raise config_error(key, f"expected value of type [string] but got [{type(value).__name__}]")
            if len(value) < 32:
                raise config_error(key, f"value has length [{len(value)}] but it must have a minimum length of [32].")
    username = settings.get("elasticsearch.username")
    if username == "elastic":
        raise config_error(
            "elasticsearch.username",
            'value of "elastic" is forbidden. This is a superuser account that cannot write to system indices that '
            "Kibana needs to function. Use a service account token instead. Learn more: "
            "https://www.elastic.co/guide/en/elasticsearch/reference/8.0/service-accounts.html",
        )
    if username is not None and settings.get("elasticsearch.serviceAccountToken"):
        raise config_error(
            "elasticsearch.serviceAccountToken", 'serviceAccountToken cannot be specified when "username" is also set.'
        )
    if (username is None) != (settings.get("elasticsearch.password") is None):
        raise config_error(
            "elasticsearch.password" if username else "elasticsearch.username",
            "elasticsearch.username and elasticsearch.password must be set together (stand-in rule)",
        )
    if "server.host" not in settings:
        raise StartupError(
            "FATAL  Error: [server.host] is required by haelk's deployment (stand-in rule: Kibana "
            "would listen on localhost only)"
        )
    host = str(settings["server.host"])
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise config_error(
            "server.host", f"value must be a valid hostname or IP address (stand-in: an IP address): [{host}]"
        ) from None
    if not ip.is_loopback:
        with socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET) as sock:
            try:
                sock.bind((host, 0))
            except OSError:
                raise StartupError(f"FATAL  Error: listen EADDRNOTAVAIL: address not available {host}") from None
    port = settings.get("server.port", 5601)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise config_error("server.port", f"expected value of type [number] but got [{type(port).__name__}]")
    hosts = settings.get("elasticsearch.hosts", ["http://localhost:9200"])
    hosts = [hosts] if isinstance(hosts, str) else hosts
    if not isinstance(hosts, list) or not hosts:
        raise config_error("elasticsearch.hosts", "expected a URI or an array of URIs")
    for i, url in enumerate(hosts):
        parsed = urllib.parse.urlsplit(str(url))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise config_error(
                "elasticsearch.hosts",
                f"types that failed validation:\n- [elasticsearch.hosts.{i}]: expected URI with scheme [http|https].",
            )
        if parsed.scheme == "https":
            raise StartupError("stand-in limitation: https elasticsearch.hosts are not supported")
    public = settings.get("server.publicBaseUrl")
    if public is not None:
        parsed = urllib.parse.urlsplit(str(public))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise config_error("server.publicBaseUrl", "expected URI with scheme [http|https].")
        if str(public).endswith("/") or parsed.path not in ("",) or parsed.query or parsed.fragment:
            raise StartupError(
                "FATAL  Error: [server.publicBaseUrl] must not include a path, query or trailing slash "
                f"(got [{public}])"
            )
    name = settings.get("server.name", socket.gethostname())
    return {
        "host": host,
        "port": port,
        "hosts": [str(h) for h in hosts],
        "name": str(name),
        "username": username,
        "password": settings.get("elasticsearch.password"),
        "token": settings.get("elasticsearch.serviceAccountToken"),
        "path_data": settings.get("path.data"),
        "pid_file": settings.get("pid.file"),
    }


def es_version_compatible(es_version, kibana_version):
    """Kibana's rule (es_kibana_version_compatability): the same major, and an
    Elasticsearch minor no older than Kibana's; patch levels may differ."""
    try:
        es = [int(p) for p in es_version.split("-")[0].split(".")[:3]]
        kb = [int(p) for p in kibana_version.split("-")[0].split(".")[:3]]
    except ValueError:
        return False
    if len(es) < 2 or len(kb) < 2:
        return False
    return es[0] == kb[0] and es[1] >= kb[1]


class Status:
    """The Elasticsearch connection as Kibana sees it, refreshed by a poller thread."""

    def __init__(self, cfg, log):
        self.cfg, self.log = cfg, log
        self.lock = threading.Lock()
        self.level, self.summary = "unavailable", "Waiting for Elasticsearch"
        self.preferred = 0
        self.polled = threading.Event()

    def headers(self):
        if self.cfg["token"]:
            return {"Authorization": f"Bearer {self.cfg['token']}"}
        if self.cfg["username"]:
            raw = f"{self.cfg['username']}:{self.cfg['password']}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def poll_once(self):
        hosts = self.cfg["hosts"]
        problems = []
        for offset in range(len(hosts)):
            index = (self.preferred + offset) % len(hosts)
            url = urllib.parse.urlsplit(hosts[index])
            port = url.port or 9200
            try:
                status, body = http_json(
                    url.hostname,
                    port,
                    "GET",
                    "/_cluster/health?timeout=1s&master_timeout=1s",
                    timeout=2.0,
                    headers=self.headers(),
                )
            except OSError as err:
                problems.append(f"{hosts[index]}: {err}")
                continue
            if status == 200 and isinstance(body, dict) and body.get("status") in ("green", "yellow"):
                self.preferred = index
                incompatible = self.incompatible_nodes(url.hostname, port)
                if incompatible is None:
                    self.set("critical", "Unable to retrieve version information from Elasticsearch nodes.")
                elif incompatible:
                    self.set("critical", f"This version of Kibana (v{VERSION}) is incompatible with the "
                             "following Elasticsearch nodes in your cluster: " + ", ".join(incompatible))
                else:
                    self.set("available", f"Elasticsearch is available ({body['status']}) via {hosts[index]}")
                return
            problems.append(f"{hosts[index]}: HTTP {status} {body.get('status') if isinstance(body, dict) else body}")
        self.set("unavailable", "Unable to retrieve a usable cluster from elasticsearch.hosts: " + "; ".join(problems))

    def incompatible_nodes(self, host, port):
        """Kibana's version check (GET /_nodes): every node must pass
        es_version_compatible(); None when the versions cannot be read."""
        try:
            status, body = http_json(host, port, "GET", "/_nodes", timeout=2.0, headers=self.headers())
        except OSError:
            return None
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("nodes"), dict):
            return None
        bad = []
        for node in body["nodes"].values():
            version = str(node.get("version", ""))
            if not es_version_compatible(version, VERSION):
                address = (node.get("http") or {}).get("publish_address", "?")
                bad.append(f"v{version} @ {address} ({node.get('ip', '?')})")
        return bad

    def set(self, level, summary):
        with self.lock:
            if level != self.level:
                self.log.info("Kibana is now %s (was %s): %s", level, self.level, summary)
            self.level, self.summary = level, summary

    def body(self, instance_uuid):
        with self.lock:
            level, summary = self.level, self.summary
        return {
            "name": self.cfg["name"],
            "uuid": instance_uuid,
            "version": {"number": VERSION, "build_hash": "haelk-standin", "build_number": 1, "build_snapshot": False},
            "status": {
                "overall": {"level": level, "summary": summary},
                "core": {
                    "elasticsearch": {"level": level, "summary": summary},
                    "savedObjects": {"level": level, "summary": summary},
                },
                "plugins": {},
            },
            "metrics": {
                "last_updated": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "collection_interval_in_millis": 5000,
            },
        }


def log_fatal(log_file, message):
    """A refusal also lands in --log-file: under daemon(8) -f it is the only trace."""
    if not log_file:
        return
    try:
        with open(log_file, "a", encoding="utf-8") as handle:
            handle.write(f"[{time.strftime('%Y-%m-%dT%H:%M:%S')}][FATAL][root] {message}\n")
    except OSError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description="Kibana 8 stand-in")
    parser.add_argument("--config", "-c", required=True)
    parser.add_argument("--log-file", "-l", help="also log here (the rc script's --log-file)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        cfg = validate(flatten_settings(load_yaml_file(args.config)))
        for key in ("path_data",):
            if cfg[key]:
                try:
                    os.makedirs(cfg[key], exist_ok=True)
                except PermissionError:
                    # Kibana (as www) cannot create path.data under a root-owned directory.
                    raise StartupError(f"FATAL  Error: EACCES: permission denied, mkdir '{cfg[key]}'") from None
                if not os.access(cfg[key], os.W_OK):
                    raise StartupError(f"FATAL  Error: EACCES: permission denied, access '{cfg[key]}' (path.data)")
    except (StartupError, OSError) as err:
        print(str(err), file=sys.stderr)
        log_fatal(args.log_file, str(err))
        return 1
    log = setup_logging(f"kibana][{cfg['name']}", args.log_file)
    instance_uuid = str(uuid.uuid4())
    if cfg["path_data"]:
        uuid_file = os.path.join(cfg["path_data"], "uuid")
        if os.path.exists(uuid_file):
            with open(uuid_file, encoding="utf-8") as handle:
                instance_uuid = handle.read().strip()
        else:
            with open(uuid_file, "w", encoding="utf-8") as handle:
                handle.write(instance_uuid)
    status = Status(cfg, log)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            if time.monotonic() - started < STARTUP_SECONDS or not status.polled.is_set():
                data = NOT_READY.encode()
                self.send_response(503)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            if path in ("/api/status", "/api/status/"):
                body = status.body(instance_uuid)
                self.reply(200 if body["status"]["overall"]["level"] == "available" else 503, body)
            else:
                self.reply(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})

        do_HEAD = do_GET

    try:
        server = Server((cfg["host"], cfg["port"]), Handler)
    except OSError as err:
        print(f"FATAL  Error: listen {err.strerror}: {cfg['host']}:{cfg['port']}", file=sys.stderr)
        log_fatal(args.log_file, f"Error: listen {err.strerror}: {cfg['host']}:{cfg['port']}")
        return 1
    server.daemon_threads = True
    if cfg["pid_file"]:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(cfg["pid_file"])), exist_ok=True)
            with open(cfg["pid_file"], "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n")
        except OSError as err:
            print(f"FATAL  Error: EACCES: permission denied, open '{cfg['pid_file']}': {err}", file=sys.stderr)
            return 1
    stop = threading.Event()

    def poller():
        while not stop.is_set():
            status.poll_once()
            status.polled.set()
            stop.wait(1.0)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=poller, daemon=True).start()
    log.info("http server running at http://%s:%d", cfg["host"], cfg["port"])
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    if cfg["pid_file"]:
        try:
            os.remove(cfg["pid_file"])
        except OSError:
            pass
    log.info("Kibana stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
