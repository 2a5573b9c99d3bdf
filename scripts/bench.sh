#!/usr/bin/env bash
# `make bench` (about 25 minutes after the build): release builds, a fresh Apache Kafka node
# (as in the tests) and PostgreSQL on free ports, then every scenario in one run
# (bench/src/main.rs). Prints the table, writes bench/results.json (git-ignored) and
# bench/RESULTS.md (committed).
set -euo pipefail
cd "$(dirname "$0")/.."
stack="bash scripts/stack.sh"
$stack ensure-kafka >/dev/null
# The producer's memory with a city database (scenario 7).
PAGEVIEWS_BENCH_GEOIP_CITY=$($stack ensure-geoip-city)
export PAGEVIEWS_BENCH_GEOIP_CITY
echo "== building release binaries"
cargo build --release --quiet -p bench

run_dir=$(mktemp -d /tmp/pageviews-bench.XXXXXX)
trap '$stack scratch-down "$run_dir"' EXIT
# No standby: replaying the benchmark's writes would take a core from what is measured.
exports=$(PAGEVIEWS_STANDBY=off $stack scratch-up "$run_dir")
eval "$exports"

if [ $# -gt 0 ]; then
    # A partial run (e.g. --only e2e) does not replace the recorded table.
    ./target/release/bench --out bench/results.json "$@"
else
    echo "== running the benchmark (about 25 minutes, most of it the 10-million-event dashboard)"
    ./target/release/bench --out bench/results.json --results-md bench/RESULTS.md
fi
