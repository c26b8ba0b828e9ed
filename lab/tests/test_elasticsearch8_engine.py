"""A real 3-node Elasticsearch 8.19 cluster (lab/elasticsearch8/run-node) answers the APIs haelk uses.

The nodes run on loopback addresses 127.0.41.1-3 (outside the lab's ranges): es1 and es2 are
master+data, es3 a master-only tie-breaker (`voting_only` is an x-pack plugin that Maven
Central does not publish). GET / is the lab's RootInfoPlugin (the distribution's rest-root
module is not published either); everything else is the server jar's. real_engine.py holds
the harness and the checks every engine shares. The lab itself is not needed. Skipped only
when the jars are not fetched (scripts/fetch-elasticsearch8, which scripts/install-deps runs).
"""
import real_engine
from real_engine import Engine, documents  # noqa: F401  (a fixture)

ENGINE = Engine(
    label="Elasticsearch 8",
    launcher="elasticsearch8",
    config_file="elasticsearch.yml",
    cluster_name="haelk-lab-es8-test",
    manager_role="master",
    manager_column="master",
    initial_managers_key="cluster.initial_master_nodes",
    nodes={"es1": "127.0.41.1", "es2": "127.0.41.2", "es3": "127.0.41.3"},
)
ENGINE.skip_unless_installed()
cluster = real_engine.cluster_fixture(ENGINE)


def test_root_reports_elasticsearch_8_and_one_cluster_uuid(cluster):
    answers = {name: cluster.ok(name, "GET", "/") for name in ENGINE.nodes}
    for name, root in answers.items():
        assert root["name"] == name and root["cluster_name"] == ENGINE.cluster_name
        assert root["version"]["number"].startswith("8.19.")
        assert "distribution" not in root["version"], "only OpenSearch reports a distribution"
    uuids = {root["cluster_uuid"] for root in answers.values()}
    assert len(uuids) == 1 and "_na_" not in uuids


# The checks every engine passes, in this order (the last one stops es2 for good).
from real_engine import (  # noqa: E402,F401
    test_health_is_green_with_three_nodes_two_of_them_data,
    test_cat_nodes_has_the_manager_column_with_one_elected,
    test_allocation_enable_set_to_primaries_then_reset_with_null,
    test_flush_succeeds_on_every_shard,
    test_voting_config_exclusion_is_added_and_cleared,
    test_documents_are_read_back_and_both_copies_placed_on_the_data_nodes,
    test_cluster_stays_available_when_one_data_node_is_stopped,
)
