#!/usr/bin/env bash
# `make up`: the whole pipeline from a fresh clone, left running in the background.
# Docker compose when a Docker engine answers; otherwise the local stack: Apache Kafka (KRaft) on
# 127.0.0.1:9092 with its data in .data/kafka, PostgreSQL (the one at the database URL, or a private cluster),
# migrations, then consumer and producer. Idempotent: what already runs is left alone.
# `up.sh --status` only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=$ROOT/.data
stack="bash scripts/stack.sh"
export APP__DATABASE__URL=${APP__DATABASE__URL:-postgres://postgres:postgres@localhost:5432/analytics}
export APP__KAFKA__BROKERS=${APP__KAFKA__BROKERS:-localhost:9092}
HTTP_PORT=${APP__SERVER__PORT:-8080}
METRICS_PORT=${APP__CONSUMER__METRICS_PORT:-9100}
PRODUCER_METRICS_PORT=${APP__SERVER__METRICS_PORT:-9101}
DASHBOARD_PORT=${APP__DASHBOARD__PORT:-8081}
# A reverse proxy on this machine may name the client (X-Forwarded-For); nobody else can.
export APP__SERVER__TRUSTED_PROXIES=${APP__SERVER__TRUSTED_PROXIES:-127.0.0.1,::1}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { $stack port-open "$1"; }
url_part() { python3 -c "import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(u.unquote(str(getattr(p, sys.argv[2]) or '')))" "$@"; }

status() {
    for name in kafka producer consumer dashboard; do
        local pidfile=$DATA/run/$name.pid
        [ "$name" = kafka ] && pidfile=$DATA/kafka/kafka.pid
        if alive "$pidfile"; then echo "$name: running, pid $(cat "$pidfile")"; else echo "$name: not running (started by make up)"; fi
    done
    if [ -f "$DATA/pg/postmaster.pid" ]; then echo "postgres: private cluster in $DATA/pg"; else echo "postgres: external (or not started)"; fi
}
if [ "${1:-}" = --status ]; then status; exit 0; fi

# A token setting: the one set, else the one kept in .data/FILE, else a new one (mode 600).
token_setting() {
    local var=$1 file=$2 what=$3
    if [ -z "${!var:-}" ]; then
        if [ ! -s "$DATA/$file" ]; then
            (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$DATA/$file")
            echo "== generated $what into .data/$file"
        fi
        printf -v "$var" '%s' "$(cat "$DATA/$file")"
        export "${var?}"
    fi
}
mkdir -p "$DATA"
# The Stats API needs a token; goal management an admin token.
token_setting APP__DASHBOARD__API_TOKENS dashboard-token "a Stats API token"
token_setting APP__DASHBOARD__ADMIN_TOKENS admin-token "an admin token (goal management)"
TOKEN=${APP__DASHBOARD__API_TOKENS%%,*}
ADMIN_TOKEN=${APP__DASHBOARD__ADMIN_TOKENS%%,*}

usage() {
    cat <<EOF

The pipeline is up.
  GraphiQL:   http://localhost:$HTTP_PORT/
  GraphQL:    POST http://localhost:$HTTP_PORT/query
  Health:     http://localhost:$HTTP_PORT/healthz  http://localhost:$HTTP_PORT/readyz
  Metrics:    http://localhost:$METRICS_PORT/metrics  (consumer: events stored, dead letters, lag)
              http://localhost:$PRODUCER_METRICS_PORT/metrics  (producer: requests, produce latency)
  Dashboard:  http://localhost:$DASHBOARD_PORT/   (asks once for the token below; make demo sends sample traffic)
  Stats API:  POST http://localhost:$DASHBOARD_PORT/query   CSV: http://localhost:$DASHBOARD_PORT/export.csv
  API token:  $TOKEN   (kept in .data/dashboard-token; header "Authorization: Bearer <token>")
  Admin token: $ADMIN_TOKEN   (kept in .data/admin-token: reads, and manages sites and goals)
  Sites:      only registered sites are counted; kafka.demo.com is. Add yours:
    curl -s http://localhost:$DASHBOARD_PORT/query -H 'content-type: application/json' -H 'authorization: Bearer $ADMIN_TOKEN' \\
      -d '{"query":"mutation { addSite(domain: \\"example.com\\", timeZone: \\"Europe/Berlin\\") { domain } }"}'
  Tracker:    paste into your site's <head> (set data-site to its domain):
    <script defer src="http://localhost:$HTTP_PORT/tracker.js" data-site="example.com"></script>
  Logs:       .data/logs/   (make logs)      Stop: make down

Try it:
  curl -s http://localhost:$HTTP_PORT/query -H 'content-type: application/json' \\
    -d '{"query":"mutation { register_kafka_event(event: {eventType: \\"PAGE_VIEW\\", userId: \\"some_session_id\\", path: \\"/test\\", search: \\"?q=foo\\", title: \\"Kafka Demo\\", url: \\"kafka.demo.com\\"}) { id eventType } }"}'
  psql '$APP__DATABASE__URL' -c 'SELECT * FROM kafka_events;'

Then read it back (today's visitors, visits and page views of kafka.demo.com):
  curl -s http://localhost:$DASHBOARD_PORT/query -H 'content-type: application/json' -H 'authorization: Bearer $TOKEN' \\
    -d '{"query":"{ stats(query: {site: \\"kafka.demo.com\\", dateRange: {period: TODAY}, metrics: [VISITORS, VISITS, PAGEVIEWS]}) { results { metrics } } }"}'
EOF
}

# Only registered sites are counted: the tutorial's site is registered here (with the admin
# token, through the Stats API, as anyone adds a site); one registered already is left alone.
register_tutorial_site() {
    local answer
    answer=$(curl -s "http://127.0.0.1:$DASHBOARD_PORT/query" -H 'content-type: application/json' \
        -H "authorization: Bearer $ADMIN_TOKEN" \
        -d '{"query":"mutation { addSite(domain: \"kafka.demo.com\") { domain } }"}') || answer=""
    case $answer in
        *'"domain":"kafka.demo.com"'* | *SITE_EXISTS*) echo "== site kafka.demo.com registered" ;;
        *) echo "warning: could not register kafka.demo.com: $answer" >&2 ;;
    esac
}

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    echo "== a Docker engine answers: docker compose up (see docker-compose.yaml)"
    docker compose up -d --build --wait
    mkdir -p "$DATA/run" && touch "$DATA/run/compose"
    register_tutorial_site
    usage
    exit 0
fi
echo "== no Docker engine: starting the local stack (data and logs in .data/)"
mkdir -p "$DATA/logs" "$DATA/run"

echo "== the broker (Apache Kafka, pinned in scripts/kafka/pom.xml; fetched once and cached)"
$stack ensure-kafka >/dev/null
broker_port=$(url_part "//${APP__KAFKA__BROKERS%%,*}" port)
if alive "$DATA/kafka/kafka.pid"; then
    echo "Kafka already running, pid $(cat "$DATA/kafka/kafka.pid")"
elif port_open "$broker_port"; then
    echo "something already listens on $broker_port: using it as the broker"
else
    $stack kafka-start "$DATA/kafka" "$broker_port"
fi

echo "== the country database (ip-location-db, CC0; fetched once and cached)"
if [ -z "${APP__ANALYTICS__GEOIP_DATABASE:-}" ]; then
    APP__ANALYTICS__GEOIP_DATABASE=$($stack ensure-geoip)/country.mmdb
    export APP__ANALYTICS__GEOIP_DATABASE
fi
echo "analytics.geoip_database = $APP__ANALYTICS__GEOIP_DATABASE"

echo "== PostgreSQL"
db_name=$(url_part "$APP__DATABASE__URL" path); db_name=${db_name#/}
db_port=$(url_part "$APP__DATABASE__URL" port); db_port=${db_port:-5432}
admin_url=${APP__DATABASE__URL%/*}/postgres
if psql "$APP__DATABASE__URL" -qtAc 'select 1' >/dev/null 2>&1; then
    echo "database answers at $APP__DATABASE__URL"
else
    if ! psql "$admin_url" -qtAc 'select 1' >/dev/null 2>&1; then
        if port_open "$db_port"; then
            echo "error: something listens on port $db_port but does not accept $admin_url" >&2
            exit 1
        fi
        $stack pg-start "$DATA/pg" "$db_port" "$(url_part "$APP__DATABASE__URL" password)"
    fi
    if [ "$(psql "$admin_url" -qtAc "select 1 from pg_database where datname = '$db_name'")" != 1 ]; then
        echo "creating database $db_name"
        psql "$admin_url" -qc "CREATE DATABASE \"$db_name\"" >/dev/null
    fi
fi

echo "== building release binaries (cargo build --release)"
cargo build --release --quiet -p producer -p consumer -p dashboard -p migration

echo "== migrations"
DATABASE_URL=$APP__DATABASE__URL ./target/release/migration up 2>&1 | tail -n 3

start() {
    local name=$1
    if alive "$DATA/run/$name.pid"; then
        echo "$name already running, pid $(cat "$DATA/run/$name.pid")"
        return
    fi
    nohup "./target/release/$name" >>"$DATA/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$DATA/run/$name.pid"
    echo "$name started, pid $!, log .data/logs/$name.log"
}
echo "== consumer, producer and dashboard"
start consumer
start producer
start dashboard

for ((i = 0; i < 600; i++)); do
    if curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 &&
        curl -sf "http://127.0.0.1:$DASHBOARD_PORT/readyz" >/dev/null 2>&1; then
        register_tutorial_site
        usage
        exit 0
    fi
    for name in producer dashboard; do
        if ! alive "$DATA/run/$name.pid"; then
            echo "error: the $name exited; last lines of .data/logs/$name.log:" >&2
            tail -n 5 "$DATA/logs/$name.log" >&2
            exit 1
        fi
    done
    sleep 0.1
done
echo "error: the producer or dashboard did not become ready within 60 s; see .data/logs/" >&2
exit 1
