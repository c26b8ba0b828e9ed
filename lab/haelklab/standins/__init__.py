"""Strict stand-ins for Elasticsearch 8 and Kibana 8, used by the local lab and tests.

Each is a standalone script (`elasticsearch.py --path-conf DIR`, `kibana.py --config FILE`)
built on the standard library and PyYAML; see lab/STANDINS.md.
"""
