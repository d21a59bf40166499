#!/usr/bin/env bash
# Builds {{module}}.wasm with componentize-js against the weir SDK and the WIT it carries,
# both from node_modules/weir-sdk (`npm install`; with `weir plugin new --local-sdk` the
# package is the copy in weir-sdk/). Every WASI feature of the JS engine is off: the
# component imports weir:plugin/host only.
set -euo pipefail
cd "$(dirname "$0")"
SDK=node_modules/weir-sdk
if [[ ! -f "$SDK/weir-sdk.js" && -f weir-sdk/weir-sdk.js ]]; then
  SDK=weir-sdk
fi
CLI="${COMPONENTIZE_JS:-node_modules/@bytecodealliance/componentize-js/src/cli.js}"
if [[ ! -f "$SDK/weir-sdk.js" || ! -f "$CLI" ]]; then
  echo "run npm install first: it installs weir-sdk {{sdk_version}} and componentize-js (package.json)" >&2
  exit 2
fi
# componentize-js resolves relative imports only: the SDK goes beside the plugin (copied
# only when it differs, so `weir plugin test --watch` does not see a change each build).
cmp -s "$SDK/weir-sdk.js" weir-sdk.js || cp "$SDK/weir-sdk.js" weir-sdk.js
# `./build.sh --aot` compiles the plugin ahead of time (weval): about 1.5x faster than the
# interpreter, a larger component. componentize-js downloads weval from GitHub unless
# WEVAL_BIN names one (`cargo install weval`).
AOT=()
if [[ "${1:-}" == "--aot" ]]; then
  AOT=(--aot)
  if [[ -n "${WEVAL_BIN:-}" ]]; then AOT+=(--weval-bin "$WEVAL_BIN"); fi
fi
node "$CLI" app.js --wit "$SDK/wit" --world-name {{world}} -d stdio random clocks http fetch-event \
  ${AOT[@]+"${AOT[@]}"} -o {{module}}.wasm
echo "built {{module}}.wasm"
