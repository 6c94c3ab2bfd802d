#!/usr/bin/env bash
# Runs every test. The controller tests run on SQLite and on PostgreSQL
# (each test in a fresh database of its own, created from DATABASE_URL),
# validate the REST API's OpenAPI document with openapi-spec-validator, parse
# /metrics with the Prometheus client's parser, and restart a PostgreSQL they
# start themselves from the machine's binaries (/usr/lib/postgresql); the web
# console tests drive Debian's Chromium (installed here when missing).
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
# parse /metrics with the Prometheus client's OpenMetrics parser; the
# conformance tests read their JUnit reports with junitparser.
PYTHON_TOOLS=(openapi-spec-validator prometheus-client junitparser)
if ! python3 -c 'import openapi_spec_validator, prometheus_client, junitparser' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "${PYTHON_TOOLS[@]}"
fi
python3 -c 'import openapi_spec_validator, prometheus_client.openmetrics.parser, junitparser'
# The scale-out tests start a PostgreSQL of their own (to restart it).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null
# The web console tests drive Debian's Chromium through chromedriver.
if ! command -v chromedriver >/dev/null || ! [ -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test: the web console tests need Chromium: apt-get install chromium chromium-driver (as root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromedriver --version >/dev/null

cargo test --workspace "$@"
