#!/usr/bin/env bash
# The local stack without Docker: the tansu broker and a private PostgreSQL cluster.
# One implementation, used by `make up`, `make test` and the Rust test harness (testkit).
#
#   stack.sh ensure-tansu                 install the pinned broker once (cached), print its path
#   stack.sh tansu-start DIR PORT ENGINE  run tansu in DIR (its working directory) on 127.0.0.1:PORT
#   stack.sh pg-start DIR PORT            init (if needed) and start a PostgreSQL cluster in DIR
#   stack.sh pg-stop DIR                  fast shutdown of that cluster
#   stack.sh stop-pid FILE                stop the process whose pid is in FILE, wait for it
#   stack.sh scratch-up DIR               broker (in memory) and PostgreSQL on free ports in DIR;
#                                         prints the PAGEVIEWS_TEST_* exports for them
#   stack.sh scratch-down DIR             stop both and remove DIR
#   stack.sh free-port                    print a free TCP port on 127.0.0.1
#   stack.sh port-open PORT               succeed when 127.0.0.1:PORT accepts connections
#   stack.sh wait-port PORT SECONDS       wait until 127.0.0.1:PORT accepts connections
set -euo pipefail

TANSU_VERSION=0.6.0
TOOLS_DIR=${PAGEVIEWS_TOOLS_DIR:-$HOME/.cache/pageviews-tools}
PG_BIN=${PAGEVIEWS_PG_BIN:-/usr/lib/postgresql/15/bin}

say() { echo "stack: $*" >&2; }
die() { echo "stack: error: $*" >&2; exit 1; }

tansu_bin() { echo "$TOOLS_DIR/bin/tansu"; }

ensure_tansu() {
    local bin; bin=$(tansu_bin)
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
        echo "$bin"; return
    fi
    say "installing the tansu $TANSU_VERSION broker into $TOOLS_DIR (once; ~10 minutes on 2 cores)"
    mkdir -p "$TOOLS_DIR"
    # --locked: without it the build does not compile; the storage features: without them it has no engine.
    cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,libsql \
        --root "$TOOLS_DIR" >&2 || die "cargo install tansu failed (see above)"
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

tansu_start() {
    local dir=$1 port=$2 engine=$3 bin
    bin=$(ensure_tansu)
    mkdir -p "$dir"
    if port_open "$port"; then die "port $port is already in use; cannot start the broker there"; fi
    # The working directory matters: a sqlite:// path is relative to it (absolute paths get mangled).
    (cd "$dir" && exec nohup "$bin" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$engine" >>"$dir/tansu.log" 2>&1 </dev/null) &
    echo $! >"$dir/tansu.pid"
    wait_port "$port" 30 || die "tansu did not listen on $port within 30 s; see $dir/tansu.log"
    say "tansu broker on 127.0.0.1:$port ($engine), pid $(cat "$dir/tansu.pid"), log $dir/tansu.log"
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
        as_pg_user "$PG_BIN/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-locale >"$dir.initdb.log" 2>&1 \
            || die "initdb failed; see $dir.initdb.log"
    fi
    if port_open "$port"; then die "port $port is already in use; cannot start PostgreSQL there"; fi
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=${PAGEVIEWS_PG_FSYNC:-on}" \
        start >/dev/null || die "PostgreSQL did not start; see $dir/postgres.log"
    say "PostgreSQL on 127.0.0.1:$port, data $dir, log $dir/postgres.log"
}

pg_stop() {
    local dir=$1
    [ -f "$dir/postmaster.pid" ] || return 0
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null || true
}

install_postgres() {
    command -v apt-get >/dev/null || die "no PostgreSQL server in $PG_BIN and no apt-get to install it"
    say "installing PostgreSQL server binaries with apt-get"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 \
        || die "apt-get install postgresql failed"
    [ -x "$PG_BIN/initdb" ] || PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
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

scratch_up() {
    local dir=$1 port
    mkdir -p "$dir" && chmod 755 "$dir"
    port=$(free_port)
    tansu_start "$dir/tansu" "$port" memory://tansu/
    echo "export PAGEVIEWS_TEST_BROKERS=127.0.0.1:$port"
    port=$(free_port)
    pg_start "$dir/pg" "$port"
    echo "export PAGEVIEWS_TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:$port/postgres"
}

scratch_down() {
    local dir=$1
    stop_pid "$dir/tansu/tansu.pid" || true
    pg_stop "$dir/pg" || true
    rm -rf "$dir"
}

cmd=${1:-}
shift || true
case "$cmd" in
    ensure-tansu) ensure_tansu ;;
    tansu-start) tansu_start "$@" ;;
    pg-start) pg_start "$@" ;;
    pg-stop) pg_stop "$@" ;;
    stop-pid) stop_pid "$@" ;;
    scratch-up) scratch_up "$@" ;;
    scratch-down) scratch_down "$@" ;;
    free-port) free_port ;;
    port-open) port_open "$@" ;;
    wait-port) wait_port "$@" ;;
    *) die "usage: stack.sh ensure-tansu|tansu-start|pg-start|pg-stop|stop-pid|scratch-up|scratch-down|free-port|port-open|wait-port" ;;
esac
