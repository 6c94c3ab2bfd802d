#!/usr/bin/env bash
# Runs every test. The controller tests run on SQLite and on PostgreSQL
# (each test in a fresh database of its own, created from DATABASE_URL),
# and validate the REST API's OpenAPI document with openapi-spec-validator.
# Both are required: a missing one fails the run, it is never skipped.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null; then
    echo "test: PostgreSQL at $DATABASE_URL is unreachable (set DATABASE_URL)" >&2
    exit 1
fi
if ! python3 -m openapi_spec_validator --help >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator
fi
python3 -m openapi_spec_validator --help >/dev/null

cargo test --workspace "$@"
