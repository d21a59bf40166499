#!/usr/bin/env bash
# Builds {{module}}.wasm with componentize-js against weir's WIT and JavaScript SDK. Every
# WASI feature of the JS engine is off: the component imports weir:plugin/host only.
set -euo pipefail
cd "$(dirname "$0")"
WEIR="{{weir}}"
TOOLS="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}"
CLI="$(ls -d "$TOOLS"/js-tools-*/node_modules/@bytecodealliance/componentize-js/src/cli.js 2>/dev/null | head -1 || true)"
if [[ -z "$CLI" ]]; then
  echo "componentize-js is not installed: run $WEIR/scripts/build-foreign-plugins.sh once (it installs the pinned toolchains)" >&2
  exit 2
fi
cp "$WEIR/sdk/js/weir-sdk.js" weir-sdk.js   # the SDK beside the plugin, at the version of this checkout
node "$CLI" app.js --wit "$WEIR/wit" --world-name {{world}} -d stdio random clocks http fetch-event -o {{module}}.wasm
echo "built {{module}}.wasm"
