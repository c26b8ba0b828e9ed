"""Pieces shared by the Elasticsearch and Kibana stand-ins.

Pure helpers (YAML flattening, ES time values, error bodies) and the small JSON-over-HTTP
client both stand-ins use. Standard library plus PyYAML only.
"""

import http.client
import socketserver
from http.server import ThreadingHTTPServer
import json
import logging
import re
import sys
import time

import yaml

# The Elastic stack version the lab simulates: what the stand-in servers answer with and
# what `pkg info` reports for the elasticsearch8 and kibana8 packages (freebsd/pkg.py).
STACK_VERSION = "8.17.4"


class StartupError(Exception):
    """A configuration problem that makes the process refuse to start (exit 1)."""


class EsError(Exception):
    """An error answered to a REST client as an Elasticsearch error body."""

    def __init__(self, status, err_type, reason, **extra):
        super().__init__(reason)
        self.status = status
        self.err_type = err_type
        self.reason = reason
        self.extra = extra

    def body(self):
        cause = {"type": self.err_type, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [dict(cause)], **cause}, "status": self.status}


def load_yaml_file(path):
    """Parse a YAML config file into a mapping; an empty file is an empty mapping."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError as err:
        raise StartupError(f"java.nio.file.NoSuchFileException: {path}") from err
    except yaml.YAMLError as err:
        raise StartupError(f"Failed to load settings from [{path}]: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StartupError(f"Failed to load settings from [{path}]: not a mapping")
    return data


def flatten_settings(data, prefix=""):
    """Flatten nested mappings to dotted keys, as ES and Kibana both accept either form.

    A key given twice (once nested, once dotted) is a duplicate, which both refuse.
    """
    flat = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            for sub_key, sub_value in flatten_settings(value, full + ".").items():
                if sub_key in flat:
                    raise StartupError(f"duplicate settings key [{sub_key}] found")
                flat[sub_key] = sub_value
        else:
            if full in flat:
                raise StartupError(f"duplicate settings key [{full}] found")
            flat[full] = value
    return flat


_TIME_UNITS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(value, setting):
    """Parse an ES time value ("30s", "500ms", "1m", "-1") into seconds (None = forever)."""
    text = str(value).strip()
    if text in ("-1", "0"):
        return None if text == "-1" else 0.0
    match = re.fullmatch(r"(\d+)(nanos|micros|ms|s|m|h|d)", text)
    if not match:
        raise EsError(
            400,
            "illegal_argument_exception",
            f"failed to parse setting [{setting}] with value [{text}] as a time value: unit is missing or unrecognized",
        )
    return int(match.group(1)) * _TIME_UNITS[match.group(2)]


def http_json(host, port, method, path, body=None, timeout=2.0, headers=None):
    """One HTTP request with a JSON body; returns (status, parsed JSON or text).

    Raises OSError (ConnectionRefusedError, timeouts) when the peer cannot be reached.
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        conn.request(method, path, body=payload, headers=all_headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        return resp.status, data
    finally:
        conn.close()


def setup_logging(name, log_file):
    """Log to stderr and, when given, to a file (created if needed)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    fmt = logging.Formatter("[%(asctime)s][%(levelname)-5s][%(name)s] %(message)s")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if log_file:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def now_millis():
    return int(time.time() * 1000)


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer without its reverse DNS lookup of the bound address at bind
    time (http.server's getfqdn), which Elasticsearch and Kibana do not do: in a jail
    whose resolver is unreachable it would stall the start for ten seconds."""

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), port
