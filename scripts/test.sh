#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs the wasm target and the Python and
# JavaScript plugin toolchains, builds the plugins and the SDK packages (scripts/package-sdks.sh)
# and the weir binary, runs every test (unit, runtime sandbox, harness golden files,
# end-to-end through the binary, the warehouse read by DuckDB).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export WEIR_PLUGIN_DIR="$CARGO_TARGET_DIR/wasm32-wasip2/plugin"
# The end-to-end tests run the dev-profile `weir`, the build the unit tests use too:
# its dependencies (Cranelift among them) are optimised (Cargo.toml), so it compiles the
# 12-18 MB Python and JavaScript components in seconds.
export WEIR_BIN="$CARGO_TARGET_DIR/debug/weir"
export WEIR_TEST_PYTHON="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}/test-venv/bin/python"
# The tools and the Python/JavaScript plugin toolchains come mostly from the network
# (apt, PyPI, npm): they install in the background while cargo holds the cores.
# CI's clippy wrapper is for this workspace's crates only: a Python package built from
# Rust sources by pip must not be linted.
TOOLS_LOG="$(mktemp)"
(
  unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
  scripts/test-tools.sh && scripts/build-foreign-plugins.sh
) >"$TOOLS_LOG" 2>&1 &
TOOLS_PID=$!
# A failed build below stops the background job (an install under way may finish).
trap 'kill "$TOOLS_PID" 2>/dev/null || true' EXIT
scripts/build-plugins.sh
# Every target the tests need at once, and the benchmarks so CI's lints see them: the
# `weir` binary the end-to-end tests run, every test, with the features
# `cargo test --workspace` resolves (`cargo build -p weir` alone would resolve others and
# compile the crates `weir` is made of a second time). Not `--all-targets`: that links
# the wasm-only plugins' cdylibs for the host, which cannot link there.
cargo build --workspace --bin weir --tests --benches --examples
if ! wait "$TOOLS_PID"; then
  cat "$TOOLS_LOG" >&2
  echo "installing the test tools or building the Python/JavaScript plugins failed" >&2
  exit 1
fi
trap - EXIT
cat "$TOOLS_LOG"
rm -f "$TOOLS_LOG"
scripts/package-sdks.sh
# The Python and JavaScript SDKs' own unit tests, under plain CPython and Node.
python3 -m unittest discover -s sdk/python/tests
node --import ./sdk/js/test/register.js --test sdk/js/test/
cargo test --workspace --no-fail-fast
