#!/usr/bin/env bash
# Tools the test suite uses beside cargo: DuckDB (Python package) to prove the warehouse's
# Parquet tables are readable by a query engine, schemathesis to fuzz the HTTP API
# against its OpenAPI document, and boto3 to send to the Kinesis-compatible endpoint. Installed once into a virtualenv under $WEIR_TOOLS_DIR
# (default /var/tmp/weir-tools); prints nothing when already there.
set -euo pipefail
TOOLS_DIR="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}"
VENV="$TOOLS_DIR/test-venv"
DUCKDB_VERSION=1.4.2
SCHEMATHESIS_VERSION=4.32.5
BOTO3_VERSION=1.44.8
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
fi
if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
if ! "$VENV/bin/python" -c "import boto3, sys; sys.exit(boto3.__version__ != '$BOTO3_VERSION')" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "boto3==$BOTO3_VERSION"
fi
