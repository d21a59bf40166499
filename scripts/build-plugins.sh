#!/usr/bin/env bash
# Builds every plugin component (examples and test-only hostile ones) for wasm32-wasip2.
# The components land in $CARGO_TARGET_DIR/wasm32-wasip2/plugin/<crate>.wasm
# (target/ by default).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
plugins=(orders-parser restaurant-enricher restaurant-stats lookup-enricher misbehaving-enricher future-version mistyped-host)
args=()
for p in "${plugins[@]}"; do args+=(-p "$p"); done
cargo build --profile plugin --target wasm32-wasip2 "${args[@]}"
dir="${CARGO_TARGET_DIR:-$PWD/target}/wasm32-wasip2/plugin"
for p in "${plugins[@]}"; do
  f="$dir/${p//-/_}.wasm"
  printf '  %-28s %8d bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"
done
