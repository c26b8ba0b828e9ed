/*
 * Starts one real OpenSearch node in this JVM from a config directory, for the haelk lab.
 *
 * The node is an org.opensearch.node.Node built with the netty4 transport and the modules
 * as classpath plugins (no plugin directories, no JarHell, no security manager, no
 * bootstrap checks: those belong to the distribution's launcher, which the lab does not
 * have). Everything else - cluster formation, allocation, the REST API - is the real
 * engine's.
 *
 * Usage: java -cp JARS:CLASSES haelk.lab.opensearch.NodeLauncher CONFIG_DIR PIDFILE
 *
 * CONFIG_DIR/opensearch.yml is read as the distribution reads it; CONFIG_DIR is also the
 * node's path.home (so path.data and path.logs should be set, as haelk renders them).
 * With CONFIG_DIR/log4j2.properties the node logs as configured there (under path.logs),
 * otherwise only errors, on stderr. PIDFILE gets this JVM's PID before the node is built
 * and is removed when it stops. SIGTERM closes the node cleanly; the JVM then exits with 143.
 *
 * Exit codes: 2 bad usage or unreadable configuration, 1 the node failed to start,
 * 143 stopped by SIGTERM.
 */
package haelk.lab.opensearch;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public final class NodeLauncher {
    static final int EXIT_USAGE = 2;
    static final int EXIT_START_FAILED = 1;

    /** The plugins a distribution would load from modules/: HTTP and transport, analyzers, mapper types. */
    static final List<Class<? extends Plugin>> CLASSPATH_PLUGINS =
            List.of(Netty4Plugin.class, CommonAnalysisPlugin.class, MapperExtrasPlugin.class);

    /** How long SIGTERM waits for the node's thread pools to finish after close(). */
    static final long CLOSE_WAIT_SECONDS = 30;

    /** Node's constructor with classpath plugins is protected: embedding needs a subclass. */
    static final class LabNode extends Node {
        LabNode(Environment environment) {
            super(environment, CLASSPATH_PLUGINS, true);
        }
    }

    private NodeLauncher() {}

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: NodeLauncher CONFIG_DIR PIDFILE");
            System.exit(EXIT_USAGE);
        }
        Path configDir = Path.of(args[0]).toAbsolutePath().normalize();
        Path pidFile = Path.of(args[1]).toAbsolutePath().normalize();
        Path yml = configDir.resolve("opensearch.yml");
        if (!Files.isRegularFile(yml)) {
            System.err.println("opensearch: no configuration file " + yml);
            System.exit(EXIT_USAGE);
        }

        Environment environment;
        try {
            environment = InternalSettingsPreparer.prepareEnvironment(
                    Settings.builder().put(Environment.PATH_HOME_SETTING.getKey(), configDir.toString()).build(),
                    Map.of(), configDir, () -> "haelk-lab-node");
            configureLogging(environment);
        } catch (Exception e) {
            System.err.println("opensearch: cannot use the configuration in " + configDir + ": " + describe(e));
            System.exit(EXIT_USAGE);
            return;
        }

        try {
            writePidFile(pidFile);
        } catch (IOException e) {
            System.err.println("opensearch: cannot write pidfile " + pidFile + ": " + describe(e));
            System.exit(EXIT_START_FAILED);
        }

        Node node;
        try {
            node = new LabNode(environment);
        } catch (Exception e) {
            System.err.println("opensearch: cannot build the node: " + describe(e));
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
                    System.err.println("opensearch: thread pools still busy " + CLOSE_WAIT_SECONDS + " s after close");
                }
            } catch (IOException | InterruptedException e) {
                System.err.println("opensearch: error while closing the node: " + describe(e));
            } finally {
                removePidFile(pidFile);
                stopped.countDown();
            }
        }, "haelk-lab-shutdown");
        Runtime.getRuntime().addShutdownHook(onSigterm);

        try {
            node.start();
        } catch (Exception e) {
            System.err.println("opensearch: node failed to start: " + describe(e));
            // Exiting runs the hook, which closes the node and removes the pidfile.
            System.exit(EXIT_START_FAILED);
        }
        String name = Node.NODE_NAME_SETTING.get(environment.settings());
        System.out.println("haelk-lab: opensearch node " + name + " started (pid " + ProcessHandle.current().pid() + ")");
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
        if (Files.isRegularFile(environment.configFile().resolve("log4j2.properties"))) {
            LogConfigurator.configure(environment);
        } else {
            System.err.println("opensearch: no log4j2.properties in " + environment.configFile()
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
