# Where the lab's OpenSearch lives; sourced by scripts/fetch-opensearch and run-node.
# The version is the pom's (one place); the cache holds lib/ (the jars Maven fetched),
# classes/ (the compiled launcher) and stamp (what they were made from).
OPENSEARCH_LAB_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OPENSEARCH_VERSION="$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$OPENSEARCH_LAB_SRC/pom.xml")"
OPENSEARCH_LAB_HOME="${HAELK_LAB_CACHE:-/var/cache/haelk-lab}/opensearch-$OPENSEARCH_VERSION"
# 2.19 runs on Java 17 (Java 24+ has no security manager, which 2.19 still calls into).
OPENSEARCH_JAVA_HOME="${OPENSEARCH_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"

# The digest of everything the cache is built from: a change to any of them rebuilds it.
opensearch_lab_stamp() {
    (cd "$OPENSEARCH_LAB_SRC" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}
