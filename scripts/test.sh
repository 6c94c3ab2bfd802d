#!/usr/bin/env bash
# Runs every test. The controller tests run on SQLite and on PostgreSQL
# (each test in a fresh database of its own, created from DATABASE_URL),
# validate the REST API's OpenAPI document with openapi-spec-validator, parse
# /metrics with the Prometheus client's parser, and restart a PostgreSQL they
# start themselves from the machine's binaries (/usr/lib/postgresql).
# All are required: a missing one fails the run, it is never skipped.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null; then
    echo "test: PostgreSQL at $DATABASE_URL is unreachable (set DATABASE_URL)" >&2
    exit 1
fi
# The REST tests check the OpenAPI document with openapi-spec-validator and
# parse /metrics with the Prometheus client's OpenMetrics parser.
if ! python3 -c 'import openapi_spec_validator, prometheus_client' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator prometheus-client
fi
python3 -c 'import openapi_spec_validator, prometheus_client.openmetrics.parser'
# The scale-out tests start a PostgreSQL of their own (to restart it).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null

cargo test --workspace "$@"
