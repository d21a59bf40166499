#!/usr/bin/env bash
# Builds {{module}}.wasm with componentize-py against the weir SDK and the WIT it carries:
# the copy beside this script (weir_sdk/, from `weir plugin new --local-sdk`) or else the
# installed package (`pip install -r requirements.txt`). Nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
TOOL="${COMPONENTIZE_PY:-$(command -v componentize-py || true)}"
if [[ -z "$TOOL" ]]; then
  echo "componentize-py is not installed: pip install -r requirements.txt (in a virtualenv)" >&2
  exit 2
fi
SEARCH=(-p .)
if [[ -d weir_sdk ]]; then
  SDK="$PWD/weir_sdk"
else
  SDK="$("$PYTHON" -c 'import os, weir_sdk; print(os.path.dirname(weir_sdk.__file__))' 2>/dev/null || true)"
  if [[ -z "$SDK" ]]; then
    echo "the weir SDK is not installed: pip install -r requirements.txt (weir-sdk=={{sdk_version}}), or recreate the plugin with weir plugin new --local-sdk" >&2
    exit 2
  fi
  # Only the SDK goes on componentize-py's path, not the whole site-packages it sits in.
  STAGE="$(mktemp -d)"
  trap 'rm -rf "$STAGE"' EXIT
  cp -r "$SDK" "$STAGE/weir_sdk"
  SEARCH+=(-p "$STAGE")
fi
"$TOOL" -d "$SDK/wit" -w {{world}} componentize app "${SEARCH[@]}" -o {{module}}.wasm
echo "built {{module}}.wasm"
