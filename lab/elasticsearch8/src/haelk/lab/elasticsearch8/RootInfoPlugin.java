/*
 * GET / (and HEAD /) for the lab's Elasticsearch 8 nodes.
 *
 * In the distribution these come from the rest-root module (modules/rest-root), which is not
 * published on Maven Central: without it the server answers GET / with 405. This plugin is
 * the lab's own small replacement, answering from the running node: its name, the cluster's
 * name and UUID (from the elected master's cluster state) and the server jar's build. It is
 * loaded as a module of its own (scripts/fetch-elasticsearch8 writes its descriptor).
 */
package haelk.lab.elasticsearch8;

import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.Supplier;

import org.elasticsearch.Build;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.admin.cluster.state.ClusterStateRequest;
import org.elasticsearch.action.admin.cluster.state.ClusterStateResponse;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterName;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.core.TimeValue;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

public final class RootInfoPlugin extends Plugin implements ActionPlugin {
    /** How long GET / waits for the master's cluster state (for the cluster UUID). */
    static final TimeValue MASTER_TIMEOUT = TimeValue.timeValueSeconds(30);

    @Override
    public Collection<RestHandler> getRestHandlers(Settings settings, NamedWriteableRegistry namedWriteableRegistry,
            RestController restController, ClusterSettings clusterSettings, IndexScopedSettings indexScopedSettings,
            SettingsFilter settingsFilter, IndexNameExpressionResolver indexNameExpressionResolver,
            Supplier<DiscoveryNodes> nodesInCluster, Predicate<NodeFeature> clusterSupportsFeature) {
        return List.of(new RootHandler(Node.NODE_NAME_SETTING.get(settings),
                ClusterName.CLUSTER_NAME_SETTING.get(settings).value()));
    }

    static final class RootHandler extends BaseRestHandler {
        private final String nodeName;
        private final String clusterName;

        RootHandler(String nodeName, String clusterName) {
            this.nodeName = nodeName;
            this.clusterName = clusterName;
        }

        @Override
        public String getName() {
            return "haelk_lab_root";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            ClusterStateRequest state = new ClusterStateRequest(MASTER_TIMEOUT).clear().metadata(true);
            return channel -> client.admin().cluster().state(state, new ActionListener<ClusterStateResponse>() {
                @Override
                public void onResponse(ClusterStateResponse response) {
                    try {
                        channel.sendResponse(new RestResponse(RestStatus.OK,
                                body(channel, response.getState().metadata().clusterUUID())));
                    } catch (Exception e) {
                        onFailure(e);
                    }
                }

                @Override
                public void onFailure(Exception e) {
                    try {
                        channel.sendResponse(new RestResponse(channel, e));
                    } catch (Exception inner) {
                        e.addSuppressed(inner);
                    }
                }
            });
        }

        /** The fields the distribution's GET / reports, from this node and its build. */
        private XContentBuilder body(RestChannel channel, String clusterUuid) throws java.io.IOException {
            Build build = Build.current();
            XContentBuilder out = channel.newBuilder();
            out.startObject();
            out.field("name", nodeName);
            out.field("cluster_name", clusterName);
            out.field("cluster_uuid", clusterUuid);
            out.startObject("version");
            out.field("number", build.qualifiedVersion());
            out.field("build_flavor", build.flavor());
            out.field("build_type", build.type().displayName());
            out.field("build_hash", build.hash());
            out.field("build_date", build.date());
            out.field("build_snapshot", build.isSnapshot());
            out.field("lucene_version", IndexVersion.current().luceneVersion().toString());
            out.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
            out.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
            out.endObject();
            out.field("tagline", "You Know, for Search");
            out.endObject();
            return out;
        }
    }
}
