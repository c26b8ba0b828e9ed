"""A real 3-node OpenSearch 2.19 cluster (lab/opensearch/run-node) answers the APIs haelk uses.

The nodes run on loopback addresses 127.0.40.1-3 (outside the lab's ranges): os1 and os2
are cluster_manager+data, os3 a cluster_manager-only tie-breaker (real_engine.py holds the
harness and the checks every engine shares). The lab itself is not needed. Skipped only
when the jars are not fetched (scripts/fetch-opensearch, which scripts/install-deps runs).
"""
import real_engine
from real_engine import Engine, documents  # noqa: F401  (a fixture)

ENGINE = Engine(
    label="OpenSearch",
    launcher="opensearch",
    config_file="opensearch.yml",
    cluster_name="haelk-lab-opensearch-test",
    manager_role="cluster_manager",
    manager_column="cluster_manager",
    initial_managers_key="cluster.initial_cluster_manager_nodes",
    nodes={"os1": "127.0.40.1", "os2": "127.0.40.2", "os3": "127.0.40.3"},
    extra_files=("log4j2.properties",),
    logs=("logs/haelk-lab-opensearch-test.log",),
)
ENGINE.skip_unless_installed()
cluster = real_engine.cluster_fixture(ENGINE)


def test_root_reports_the_opensearch_distribution(cluster):
    for name in ENGINE.nodes:
        root = cluster.ok(name, "GET", "/")
        assert root["name"] == name
        assert root["version"]["distribution"] == "opensearch"
        assert root["version"]["number"].startswith("2.19.")


# The checks every engine passes, in this order (the last one stops os2 for good).
from real_engine import (  # noqa: E402,F401
    test_health_is_green_with_three_nodes_two_of_them_data,
    test_cat_nodes_has_the_manager_column_with_one_elected,
    test_allocation_enable_set_to_primaries_then_reset_with_null,
    test_flush_succeeds_on_every_shard,
    test_voting_config_exclusion_is_added_and_cleared,
    test_documents_are_read_back_and_both_copies_placed_on_the_data_nodes,
    test_cluster_stays_available_when_one_data_node_is_stopped,
)
