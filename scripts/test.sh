#!/usr/bin/env bash
# `make test`: everything the tests need, then fmt, clippy and the whole test suite.
# Starts its own Apache Kafka node, PostgreSQL and a streaming replica of it on free ports unless
# PAGEVIEWS_TEST_BROKERS, PAGEVIEWS_TEST_DATABASE_URL and PAGEVIEWS_TEST_STANDBY_URL name running
# ones, so it passes on a fresh machine and next to a running `make up`.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="bash scripts/stack.sh"

skipped=()
for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" \
        || rustup component add "$component" || skipped+=("$component")
done
loud() { printf '\n!!!!!!!! %s !!!!!!!!\n\n' "$*" >&2; }
$stack ensure-kafka >/dev/null
check_jsonschema=$($stack ensure-check-jsonschema)
# Debian's Chromium and playwright-core for the browser tests (dashboard/tests/browser.rs).
$stack ensure-browser >/dev/null
# The real country database and MaxMind's test databases (testkit::geoip_dir).
geoip_dir=$($stack ensure-geoip-tests)
export PAGEVIEWS_TEST_GEOIP_DIR=${PAGEVIEWS_TEST_GEOIP_DIR:-$geoip_dir}
# An independent Kafka client, to send a record as the tutorial's producer does.
kafka_python=$($stack ensure-kafka-python)
export PAGEVIEWS_TEST_KAFKA_PYTHON=${PAGEVIEWS_TEST_KAFKA_PYTHON:-$kafka_python}

run_dir=$(mktemp -d /tmp/pageviews-test.XXXXXX)
trap '$stack scratch-down "$run_dir"' EXIT
if [ -z "${PAGEVIEWS_TEST_BROKERS:-}" ] || [ -z "${PAGEVIEWS_TEST_DATABASE_URL:-}" ] \
    || [ -z "${PAGEVIEWS_TEST_STANDBY_URL:-}" ]; then
    # Test data is thrown away: no need for PostgreSQL to wait for the disk.
    # Assigned first: `eval "$(…)"` alone would hide a failed start under set -e.
    exports=$(PAGEVIEWS_PG_FSYNC=off $stack scratch-up "$run_dir")
    eval "$exports"
fi

echo "== docker-compose.yaml against the Compose specification"
"$check_jsonschema" --builtin-schema vendor.compose-spec docker-compose.yaml
if [[ " ${skipped[*]} " == *" rustfmt "* ]]; then
    loud "SKIPPED cargo fmt --check: the rustfmt component is missing and could not be added"
else
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
fi
if [[ " ${skipped[*]} " == *" clippy "* ]]; then
    loud "SKIPPED cargo clippy: the clippy component is missing and could not be added"
else
    echo "== cargo clippy --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
fi
echo "== cargo test (broker $PAGEVIEWS_TEST_BROKERS, database $PAGEVIEWS_TEST_DATABASE_URL)"
cargo test --workspace
