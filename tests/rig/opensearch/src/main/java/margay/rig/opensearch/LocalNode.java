package margay.rig.opensearch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.opensearch.Version;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.common.transport.TransportAddress;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A real OpenSearch single node in a plain JVM, from Maven Central jars (the test rig's OpenSearch peer).
 *
 * <p>Usage: {@code LocalNode <home> <http.port> [transport.port]}. Ports may be numbers or ranges
 * ("9200-9299"); the transport port defaults to the range 9300-9399. Binds 127.0.0.1 only. Prints
 * {@code OPENSEARCH_READY http://127.0.0.1:<port> <version>} once the cluster is yellow, then blocks
 * until SIGTERM, which closes the node. Plugins come from the classpath only: home/plugins and
 * home/modules stay empty, and no bootstrap checks run (so it runs as root).
 */
public final class LocalNode extends Node {

    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class,          // HTTP and transport: the only transport plugin loaded
        CommonAnalysisPlugin.class,  // analyzers, tokenizers and filters beyond "standard"
        PainlessPlugin.class,        // scripts
        MapperExtrasPlugin.class     // scaled_float, token_count, rank_feature(s), search_as_you_type
    );

    private LocalNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        super(environment, plugins, true);
    }

    /** Skipped: it fills a JVM-wide set-once holder (as the test framework's MockNode does). */
    @Override
    protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {}

    static Settings settings(Path home, String httpPort, String transportPort) {
        return Settings.builder()
            .put("path.home", home.toString())
            .put("cluster.name", "margay-rig")
            .put("node.name", "rig-0")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("indices.breaker.total.use_real_memory", false)
            .put("node.portsfile", true)
            .build();
    }

    public static void main(String[] args) {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: LocalNode <home> <http.port> [transport.port]");
            System.exit(2);
        }
        try {
            Path home = Paths.get(args[0]).toAbsolutePath();
            Files.createDirectories(home);
            Settings settings = settings(home, args[1], args.length > 2 ? args[2] : "9300-9399");
            Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "rig-0");
            Files.createDirectories(env.logsFile());  // node.portsfile writes there; nothing creates it
            LocalNode node = new LocalNode(env, PLUGINS);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    node.close();
                    node.awaitClose(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    e.printStackTrace();  // exiting anyway
                }
            }, "local-node-shutdown"));
            node.start();
            node.client().admin().cluster().prepareHealth().setWaitForYellowStatus().get(TimeValue.timeValueMinutes(1));
            // New indices get 0 replicas (so they go green on one node). Index creation reads this from the
            // cluster state's persistent/transient settings only: as a node setting it is accepted but ignored.
            node.client().admin().cluster().prepareUpdateSettings()
                .setPersistentSettings(Settings.builder().put("cluster.default_number_of_replicas", 0))
                .get(TimeValue.timeValueMinutes(1));
            TransportAddress http = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress();
            System.out.println("OPENSEARCH_READY http://127.0.0.1:" + http.getPort() + " " + Version.CURRENT);
            System.out.flush();
            Thread.currentThread().join();
        } catch (Throwable t) {
            System.err.println("OPENSEARCH_FAILED " + t);
            t.printStackTrace();
            System.err.flush();
            Runtime.getRuntime().halt(1);  // no shutdown hook: the node may be half-built
        }
    }
}
