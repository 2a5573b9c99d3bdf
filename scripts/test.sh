#!/usr/bin/env bash
# `make test`: everything the tests need, then fmt, clippy and the whole test suite.
# Starts its own broker (tansu, in-memory) and PostgreSQL on free ports unless
# PAGEVIEWS_TEST_BROKERS / PAGEVIEWS_TEST_DATABASE_URL name running ones, so it passes on a fresh
# machine and next to a running `make up`.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="bash scripts/stack.sh"

for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
$stack ensure-tansu >/dev/null

run_dir=$(mktemp -d /tmp/pageviews-test.XXXXXX)
chmod 755 "$run_dir"
cleanup() {
    $stack stop-pid "$run_dir/tansu/tansu.pid" || true
    $stack pg-stop "$run_dir/pg" || true
    rm -rf "$run_dir"
}
trap cleanup EXIT

if [ -z "${PAGEVIEWS_TEST_BROKERS:-}" ]; then
    port=$($stack free-port)
    $stack tansu-start "$run_dir/tansu" "$port" memory://tansu/
    export PAGEVIEWS_TEST_BROKERS="127.0.0.1:$port"
fi
if [ -z "${PAGEVIEWS_TEST_DATABASE_URL:-}" ]; then
    port=$($stack free-port)
    # Test data is thrown away: no need to wait for the disk.
    PAGEVIEWS_PG_FSYNC=off $stack pg-start "$run_dir/pg" "$port"
    export PAGEVIEWS_TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:$port/postgres"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (broker $PAGEVIEWS_TEST_BROKERS, database $PAGEVIEWS_TEST_DATABASE_URL)"
cargo test --workspace
