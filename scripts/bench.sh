#!/usr/bin/env bash
# `make bench`: release builds, a fresh broker (tansu, in memory, as in the tests) and PostgreSQL
# on free ports, then every scenario in one run (bench/src/main.rs). Prints the table, writes
# bench/results.json (git-ignored) and bench/RESULTS.md (committed).
set -euo pipefail
cd "$(dirname "$0")/.."
stack="bash scripts/stack.sh"
$stack ensure-tansu >/dev/null
echo "== building release binaries"
cargo build --release --quiet -p bench

run_dir=$(mktemp -d /tmp/pageviews-bench.XXXXXX)
chmod 755 "$run_dir"
cleanup() {
    $stack stop-pid "$run_dir/tansu/tansu.pid" || true
    $stack pg-stop "$run_dir/pg" || true
    rm -rf "$run_dir"
}
trap cleanup EXIT
port=$($stack free-port)
$stack tansu-start "$run_dir/tansu" "$port" memory://tansu/
export PAGEVIEWS_TEST_BROKERS="127.0.0.1:$port"
port=$($stack free-port)
$stack pg-start "$run_dir/pg" "$port"
export PAGEVIEWS_TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:$port/postgres"

echo "== running the benchmark (about 3 minutes)"
./target/release/bench --out bench/results.json --results-md bench/RESULTS.md "$@"
