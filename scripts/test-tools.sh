#!/usr/bin/env bash
# Tools the test suite uses beside cargo: `build` (PyPA) to make the Python SDK's wheel, DuckDB (Python package) to prove the warehouse's
# Parquet tables are readable by a query engine, schemathesis to fuzz the HTTP API
# against its OpenAPI document, boto3 to send to the Kinesis-compatible endpoint, and the
# local AWS servers the Kinesis log is tested against: moto (DynamoDB, S3, Firehose) and
# kinesalite (Kinesis, with real-style sequence numbers; npm), and Debian's PostgreSQL
# server, the stand-in for Redshift's wire protocol (the tests start a throwaway cluster),
# and Debian's chromium with playwright-core (npm) for the console's browser test. Installed once into a virtualenv under $WEIR_TOOLS_DIR
# (default /var/tmp/weir-tools); prints nothing when already there.
set -euo pipefail
TOOLS_DIR="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}"
VENV="$TOOLS_DIR/test-venv"
DUCKDB_VERSION=1.4.2
SCHEMATHESIS_VERSION=4.32.5
BOTO3_VERSION=1.44.8
MOTO_VERSION=5.2.5
BUILD_VERSION=1.6.1
KINESALITE_VERSION=3.3.3
PLAYWRIGHT_CORE_VERSION=1.65.1
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
if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
if ! "$VENV/bin/python" -c "import build, sys; sys.exit(build.__version__ != '$BUILD_VERSION')" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "build==$BUILD_VERSION"
fi
if [ ! -f "$TOOLS_DIR/kinesalite/node_modules/kinesalite/package.json" ] ||
   ! grep -q "\"version\": \"$KINESALITE_VERSION\"" "$TOOLS_DIR/kinesalite/node_modules/kinesalite/package.json"; then
  mkdir -p "$TOOLS_DIR/kinesalite"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/kinesalite" "kinesalite@$KINESALITE_VERSION" >/dev/null
fi
if [ ! -f "$TOOLS_DIR/console-tools/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_CORE_VERSION\"" "$TOOLS_DIR/console-tools/node_modules/playwright-core/package.json"; then
  mkdir -p "$TOOLS_DIR/console-tools"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/console-tools" "playwright-core@$PLAYWRIGHT_CORE_VERSION" >/dev/null
fi
APT_PACKAGES=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null; then
  APT_PACKAGES+=(postgresql)
fi
if ! command -v chromium >/dev/null; then
  APT_PACKAGES+=(chromium)
fi
# The batch cluster's TLS test makes its certificates with docs/batch.md's openssl lines.
if ! command -v openssl >/dev/null; then
  APT_PACKAGES+=(openssl)
fi
if [ ${#APT_PACKAGES[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
fi
