/*
 * Starts one real Elasticsearch 8 node in this JVM from a config directory, for the haelk lab.
 *
 * The node is an org.elasticsearch.node.Node built through its public constructor
 * (Environment, PluginsLoader). The plugins come from a modules directory laid out as the
 * distribution's (one sub-directory per module with its plugin-descriptor.properties and
 * jars); scripts/fetch-elasticsearch8 makes it from the transport-netty4 jar on Maven
 * Central. No JarHell, security manager, entitlements or bootstrap checks: those belong to
 * the distribution's launcher (org.elasticsearch.bootstrap.Elasticsearch), which reads its
 * arguments from its CLI on stdin and which the lab does not run.
 *
 * Usage: java -cp JARS:CLASSES haelk.lab.elasticsearch8.NodeLauncher CONFIG_DIR PIDFILE MODULES_DIR
 *
 * CONFIG_DIR/elasticsearch.yml is read as the distribution reads it; CONFIG_DIR is also the
 * node's path.home (so path.data and path.logs should be set, as haelk renders them).
 * With CONFIG_DIR/log4j2.properties the node logs as configured there, otherwise only
 * errors, on stderr. PIDFILE gets this JVM's PID before the node is built and is removed
 * when it stops. SIGTERM closes the node cleanly; the JVM then exits with 143.
 *
 * Exit codes: 2 bad usage or unreadable configuration, 1 the node failed to start,
 * 143 stopped by SIGTERM.
 */
package haelk.lab.elasticsearch8;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.PluginsLoader;

public final class NodeLauncher {
    static final int EXIT_USAGE = 2;
    static final int EXIT_START_FAILED = 1;

    /** How long SIGTERM waits for the node's thread pools to finish after close(). */
    static final long CLOSE_WAIT_SECONDS = 30;

    private NodeLauncher() {}

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: NodeLauncher CONFIG_DIR PIDFILE MODULES_DIR");
            System.exit(EXIT_USAGE);
        }
        Path configDir = Path.of(args[0]).toAbsolutePath().normalize();
        Path pidFile = Path.of(args[1]).toAbsolutePath().normalize();
        Path modulesDir = Path.of(args[2]).toAbsolutePath().normalize();
        Path yml = configDir.resolve("elasticsearch.yml");
        if (!Files.isRegularFile(yml)) {
            System.err.println("elasticsearch: no configuration file " + yml);
            System.exit(EXIT_USAGE);
        }

        Environment environment;
        try {
            environment = InternalSettingsPreparer.prepareEnvironment(
                    Settings.builder().put(Environment.PATH_HOME_SETTING.getKey(), configDir.toString()).build(),
                    Map.of(), configDir, () -> "haelk-lab-node");
            configureLogging(environment);
        } catch (Exception e) {
            System.err.println("elasticsearch: cannot use the configuration in " + configDir + ": " + describe(e));
            System.exit(EXIT_USAGE);
            return;
        }

        try {
            writePidFile(pidFile);
        } catch (IOException e) {
            System.err.println("elasticsearch: cannot write pidfile " + pidFile + ": " + describe(e));
            System.exit(EXIT_START_FAILED);
        }

        Node node;
        try {
            PluginsLoader plugins = PluginsLoader.createPluginsLoader(
                    PluginsLoader.loadModulesBundles(modulesDir), Set.of(), Map.of(), false);
            node = new Node(environment, plugins);
        } catch (Exception e) {
            System.err.println("elasticsearch: cannot build the node: " + describe(e));
            e.printStackTrace();
            removePidFile(pidFile);
            System.exit(EXIT_START_FAILED);
            return;
        }

        // The node's threads are daemons: this latch keeps the JVM up until shutdown.
        CountDownLatch stopped = new CountDownLatch(1);
        Thread onSigterm = new Thread(() -> {
            try {
                node.close();
                if (!node.awaitClose(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS)) {
                    System.err.println("elasticsearch: thread pools still busy " + CLOSE_WAIT_SECONDS + " s after close");
                }
            } catch (IOException | InterruptedException e) {
                System.err.println("elasticsearch: error while closing the node: " + describe(e));
            } finally {
                removePidFile(pidFile);
                stopped.countDown();
            }
        }, "haelk-lab-shutdown");
        Runtime.getRuntime().addShutdownHook(onSigterm);

        try {
            node.start();
        } catch (Exception e) {
            System.err.println("elasticsearch: node failed to start: " + describe(e));
            e.printStackTrace();
            // Exiting runs the hook, which closes the node and removes the pidfile.
            System.exit(EXIT_START_FAILED);
        }
        String name = Node.NODE_NAME_SETTING.get(environment.settings());
        System.out.println("haelk-lab: elasticsearch node " + name + " started (pid " + ProcessHandle.current().pid() + ")");
        System.out.flush();

        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** As the distribution does: the config's log4j2.properties if present, else the console. */
    static void configureLogging(Environment environment) throws Exception {
        LogConfigurator.registerErrorListener();
        if (Node.NODE_NAME_SETTING.exists(environment.settings())) {
            LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
        }
        if (Files.isRegularFile(environment.configDir().resolve("log4j2.properties"))) {
            LogConfigurator.configure(environment, false);
        } else {
            System.err.println("elasticsearch: no log4j2.properties in " + environment.configDir()
                    + ": only errors are logged, on stderr");
            LogConfigurator.configureWithoutConfig(environment.settings());
        }
    }

    /** Written whole, then renamed, so a reader never sees a partial PID. */
    static void writePidFile(Path pidFile) throws IOException {
        Path parent = pidFile.getParent();
        Files.createDirectories(parent);
        Path partial = Files.createTempFile(parent, ".pid", ".tmp");
        Files.writeString(partial, ProcessHandle.current().pid() + "\n", StandardCharsets.US_ASCII);
        Files.move(partial, pidFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Only our own PID is removed: a second node may have taken the file over. */
    static void removePidFile(Path pidFile) {
        try {
            String content = Files.readString(pidFile, StandardCharsets.US_ASCII).trim();
            if (content.equals(Long.toString(ProcessHandle.current().pid()))) {
                Files.delete(pidFile);
            }
        } catch (IOException e) {
            // Already gone or unreadable: nothing of ours to remove.
        }
    }

    /** The exception and its causes, each message once (wrappers often repeat their cause's). */
    static String describe(Throwable t) {
        StringBuilder out = new StringBuilder();
        for (Throwable cause = t; cause != null; cause = cause.getCause() == cause ? null : cause.getCause()) {
            String message = cause.getMessage() != null ? cause.getMessage() : cause.getClass().getName();
            if (out.indexOf(message) >= 0) {
                continue;
            }
            if (out.length() > 0) {
                out.append(": ");
            }
            out.append(message);
        }
        return out.toString();
    }
}
