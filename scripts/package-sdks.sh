#!/usr/bin/env bash
# Builds the three plugin SDKs as the packages a plugin author would install, into
# $CARGO_TARGET_DIR/sdk-packages/ (target/ by default):
#   weir-events-<v>.crate, weir-sdk-<v>.crate   `cargo package --no-verify` (that they
#                                               build from the packaged sources alone is
#                                               what tests/all/new_plugin.rs checks)
#   weir_sdk-<v>-py3-none-any.whl               `python -m build --wheel`
#   weir-sdk-<v>.tgz                            `npm pack`
# Nothing is published from here; the end-to-end tests build scaffolded plugins against
# these files in directories outside the repository (tests/all/new_plugin.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
OUT="$TARGET/sdk-packages"
PYTHON="${WEIR_TEST_PYTHON:-${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}/test-venv/bin/python}"
rm -rf "$OUT"
mkdir -p "$OUT"
# A clean clone has nothing to allow; a working copy with edits may package them.
# --no-verify: cargo's check would build the SDK and its dependencies once more for the
# host; tests/all/new_plugin.rs builds real plugins against these very files instead.
cargo package --quiet --allow-dirty --no-verify -p weir-events -p weir-sdk
cp "$TARGET"/package/weir-events-*.crate "$TARGET"/package/weir-sdk-*.crate "$OUT/"
"$PYTHON" -m build --wheel --outdir "$OUT" sdk/python >"$OUT/.python-build.log" 2>&1 ||
  { cat "$OUT/.python-build.log" >&2; exit 1; }
npm pack --silent --pack-destination "$OUT" ./sdk/js >/dev/null
ls -1 "$OUT"
