#!/usr/bin/env python3
"""Strict Elasticsearch 8 stand-in: one process = one node of a real multi-process cluster.

    python3 elasticsearch.py --path-conf DIR

Reads DIR/elasticsearch.yml and DIR/jvm.options.d/*.options, refuses to start (exit 1,
ES-like message on stderr) on what Elasticsearch 8 on FreeBSD would refuse, then serves
the REST API on http.port and its own JSON-over-HTTP transport on transport.port.
Logs to path.logs/<cluster.name>.log and stderr. SIGTERM/SIGINT stop it cleanly (exit 0).
See lab/STANDINS.md.
"""

import argparse
import os
import signal
import sys
import threading

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import StartupError, setup_logging
    from es_config import load_config
    from es_node import Node
    from es_rest import MasterOps, Rest, http_server
else:
    from .common import StartupError, setup_logging
    from .es_config import load_config
    from .es_node import Node
    from .es_rest import MasterOps, Rest, http_server


def main(argv=None):
    parser = argparse.ArgumentParser(description="Elasticsearch 8 stand-in")
    parser.add_argument("--path-conf", required=True, help="config directory holding elasticsearch.yml")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.path_conf)
    except StartupError as err:
        print(f"ERROR: Elasticsearch did not exit normally - {err}", file=sys.stderr)
        return 1
    log = setup_logging(f"o.e.n.Node][{cfg.node_name}", os.path.join(cfg.path_logs, f"{cfg.cluster_name}.log"))
    try:
        node = Node(cfg, log)
    except (StartupError, OSError) as err:
        log.error("fatal exception while booting Elasticsearch: %s", err)
        print(f"ERROR: Elasticsearch did not exit normally - {err}", file=sys.stderr)
        return 1
    node.master_ops = MasterOps(node)
    try:
        transport = node.transport_server()
        http = http_server(node, Rest(node))
    except OSError as err:
        log.error("BindTransportException[Failed to bind to %s]: %s", cfg.host, err)
        print(f"ERROR: Elasticsearch did not exit normally - BindException: {err}", file=sys.stderr)
        return 1
    for server in (transport, http):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    log.info(
        "publish_address {%s:%d}, bound_addresses {%s:%d} (transport)",
        cfg.host,
        cfg.transport_port,
        cfg.host,
        cfg.transport_port,
    )
    log.info(
        "publish_address {%s:%d}, bound_addresses {%s:%d} (http)", cfg.host, cfg.http_port, cfg.host, cfg.http_port
    )
    log.info("node [%s] started, roles %s, heap [%s]", cfg.node_name, cfg.roles, cfg.heap)

    def on_signal(signum, _frame):
        log.info("stopping (signal %d) ...", signum)
        node.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node.run_loops()
    while not node.stop.wait(0.5):
        pass
    if not node.fatal_error:
        node.shutdown()
    for server in (http, transport):
        server.shutdown()
        server.server_close()
    if node.fatal_error:
        log.error("fatal error, node stopping: %s", node.fatal_error)
        print(f"ERROR: Elasticsearch exited unexpectedly - {node.fatal_error}", file=sys.stderr)
        return 1
    log.info("stopped; closing ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
