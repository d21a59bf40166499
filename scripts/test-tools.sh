#!/usr/bin/env bash
# Tools the test suite uses beside cargo: DuckDB (Python package) to prove the warehouse's
# Parquet tables are readable by a query engine, and schemathesis to fuzz the HTTP API
# against its OpenAPI document. Installed once into a virtualenv under $WEIR_TOOLS_DIR
# (default /var/tmp/weir-tools); prints nothing when already there.
set -euo pipefail
TOOLS_DIR="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}"
VENV="$TOOLS_DIR/test-venv"
DUCKDB_VERSION=1.4.2
SCHEMATHESIS_VERSION=4.32.5
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
fi
if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
