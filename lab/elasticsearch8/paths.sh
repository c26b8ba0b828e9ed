# Where the lab's Elasticsearch 8 lives; sourced by scripts/fetch-elasticsearch8 and run-node.
# The version is the pom's (one place); the cache holds lib/ (the server's jars),
# modules/ (transport-netty4 and its netty jars, laid out as a distribution's modules),
# classes/ (the compiled launcher) and stamp (what they were made from).
ES8_LAB_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ES8_VERSION="$(sed -n 's:.*<elasticsearch.version>\(.*\)</elasticsearch.version>.*:\1:p' "$ES8_LAB_SRC/pom.xml")"
ES8_LAB_HOME="${HAELK_LAB_CACHE:-/var/cache/haelk-lab}/elasticsearch-$ES8_VERSION"
# 8.19's jars target Java 17; the lab's OpenSearch uses the same JDK.
ES8_JAVA_HOME="${ES8_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"

# The digest of everything the cache is built from (the fetch script too: it lays out the
# modules): a change to any of them rebuilds it.
es8_lab_stamp() {
    (cd "$ES8_LAB_SRC" && find pom.xml src ../../scripts/fetch-elasticsearch8 -type f -print0 | sort -z \
        | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}
