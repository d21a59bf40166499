#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs the wasm target, builds the plugins
# and the weir binary, runs every test (unit, runtime sandbox, harness golden files,
# end-to-end through the binary, the warehouse read by DuckDB).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export WEIR_PLUGIN_DIR="$CARGO_TARGET_DIR/wasm32-wasip2/plugin"
export WEIR_BIN="$CARGO_TARGET_DIR/debug/weir"
export WEIR_TEST_PYTHON="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}/test-venv/bin/python"
scripts/test-tools.sh
scripts/build-plugins.sh
cargo build -p weir
cargo test --workspace --no-fail-fast
