#!/usr/bin/env bash
# Builds {{module}}.wasm with componentize-py against weir's WIT and Python SDK.
set -euo pipefail
cd "$(dirname "$0")"
WEIR="{{weir}}"
TOOL="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}/componentize-py-0.25.1/bin/componentize-py"
if [[ ! -x "$TOOL" ]]; then
  TOOL="$(command -v componentize-py || true)"
fi
if [[ -z "$TOOL" ]]; then
  echo "componentize-py is not installed: run $WEIR/scripts/build-foreign-plugins.sh once (it installs the pinned toolchains)" >&2
  exit 2
fi
"$TOOL" -d "$WEIR/wit" -w {{world}} componentize app -p . -p "$WEIR/sdk/python" -o {{module}}.wasm
echo "built {{module}}.wasm"
