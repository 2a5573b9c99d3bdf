#!/usr/bin/env bash
# `make down`: stops exactly what `make up` started (by pid); data in .data/ is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(pwd)/.data
stack="bash scripts/stack.sh"
if [ -f "$DATA/run/compose" ]; then
    echo "== docker compose down (volumes kept)"
    docker compose down
    rm -f "$DATA/run/compose"
    exit 0
fi
for name in dashboard producer consumer; do
    if [ -f "$DATA/run/$name.pid" ]; then echo "stopping $name"; $stack stop-pid "$DATA/run/$name.pid"; fi
done
if [ -f "$DATA/kafka/kafka.pid" ]; then echo "stopping Kafka"; $stack stop-pid "$DATA/kafka/kafka.pid"; fi
if [ -f "$DATA/pg/postmaster.pid" ]; then echo "stopping the private PostgreSQL"; $stack pg-stop "$DATA/pg"; fi
echo "stopped; data kept in .data/ (rm -rf .data for a clean slate)"
