#!/usr/bin/env bash
# Builds the Python (componentize-py) and JavaScript (componentize-js) plugins: the
# restaurant enrichers and the sandbox probes. Installs the toolchains first, pinned,
# under $WEIR_TOOLS_DIR (default /var/tmp/weir-tools), so a fresh clone needs only
# python3 (with venv) and node/npm:
#   - componentize-py in a virtualenv;
#   - the npm packages of plugins/js/package-lock.json (`npm ci` in a directory keyed by
#     the lock file's hash);
#   - weval (crates.io, `cargo install`, about 7 minutes from nothing on 2 cores), for
#     componentize-js's ahead-of-time compilation of the JavaScript plugins (`--aot`: 1.5x
#     faster than the interpreter, docs/plugins-js.md). componentize-js would download it
#     from GitHub at build time otherwise.
# The components land in $CARGO_TARGET_DIR/wasm32-wasip2/plugin/ (target/ by default):
# restaurant_enricher_py.wasm, restaurant_enricher_js.wasm, probe_py.wasm, probe_js.wasm.
# A component is rebuilt only when its sources, the WIT or the toolchain changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TOOLS_DIR="${WEIR_TOOLS_DIR:-/var/tmp/weir-tools}"
OUT="${CARGO_TARGET_DIR:-$ROOT/target}/wasm32-wasip2/plugin"
COMPONENTIZE_PY_VERSION=0.25.1
mkdir -p "$TOOLS_DIR" "$OUT"

# --- toolchains -----------------------------------------------------------------------

PY_VENV="$TOOLS_DIR/componentize-py-$COMPONENTIZE_PY_VERSION"
COMPONENTIZE_PY="$PY_VENV/bin/componentize-py"
if [[ "$("$COMPONENTIZE_PY" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
  echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $PY_VENV"
  rm -rf "$PY_VENV"
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

LOCK_HASH="$(sha256sum plugins/js/package-lock.json | cut -c1-16)"
JS_TOOLS="$TOOLS_DIR/js-tools-$LOCK_HASH"
COMPONENTIZE_JS="$JS_TOOLS/node_modules/@bytecodealliance/componentize-js/src/cli.js"
if [[ ! -f "$JS_TOOLS/.installed" ]]; then
  echo "installing the npm packages of plugins/js/package-lock.json into $JS_TOOLS"
  rm -rf "$TOOLS_DIR"/js-tools-*
  mkdir -p "$JS_TOOLS"
  cp plugins/js/package.json plugins/js/package-lock.json "$JS_TOOLS/"
  (cd "$JS_TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$JS_TOOLS/.installed"
fi

# 0.5.1 rather than the 0.5.0 componentize-js 0.23's npm dependency would download: the
# newest on crates.io; the JavaScript tests (golden output, sandbox, limits) pass on it.
WEVAL_VERSION=0.5.1
WEVAL="$TOOLS_DIR/weval-$WEVAL_VERSION/bin/weval"
# Installed when a JavaScript component is to be built, not before: it is a 7-minute
# compile, and CI runs this script beside the workspace's build (hence `nice`: the
# workspace's build, which the tests wait for, keeps the cores first).
ensure_weval() {
  [[ -x "$WEVAL" ]] && return 0
  echo "installing weval $WEVAL_VERSION into $TOOLS_DIR/weval-$WEVAL_VERSION" >&2
  rm -rf "$TOOLS_DIR"/weval-* || return 1
  # Its own target directory, removed after: not the workspace's build cache.
  nice -n 10 cargo install weval --version "$WEVAL_VERSION" --locked --quiet \
    --root "$TOOLS_DIR/weval-$WEVAL_VERSION" --target-dir "$TOOLS_DIR/weval-build" || return 1
  rm -rf "$TOOLS_DIR/weval-build"
}

# --- builds ---------------------------------------------------------------------------

# build NAME TOOL-VERSION INPUTS... -- COMMAND...: runs COMMAND (which writes $OUT/NAME.wasm)
# unless the hash of the inputs' contents is the one recorded at the last build.
build() {
  local name="$1" tool="$2"
  shift 2
  local inputs=()
  while [[ "$1" != "--" ]]; do inputs+=("$1"); shift; done
  shift
  local stamp="$OUT/.$name.inputs"
  local hash
  hash="$( (echo "$tool"; find "${inputs[@]}" -type f \( -name '*.py' -o -name '*.js' -o -name '*.wit' \) \
    -not -path '*/__pycache__/*' -not -path '*/test/*' -not -path '*/tests/*' | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-64)"
  if [[ -f "$OUT/$name.wasm" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    printf '  %-28s %8d bytes (up to date)\n' "$name.wasm" "$(stat -c %s "$OUT/$name.wasm")"
    return
  fi
  local started=$SECONDS
  rm -f "$stamp"
  "$@" >"$OUT/.$name.log" 2>&1 || { cat "$OUT/.$name.log" >&2; echo "building $name failed" >&2; exit 1; }
  echo "$hash" >"$stamp"
  printf '  %-28s %8d bytes (built in %ds)\n' "$name.wasm" "$(stat -c %s "$OUT/$name.wasm")" $((SECONDS - started))
}

python_plugin() { # NAME DIR WORLD
  build "$1" "componentize-py $COMPONENTIZE_PY_VERSION" "$2" sdk/python wit -- \
    "$COMPONENTIZE_PY" -d wit -w "$3" componentize app -p "$2" -p sdk/python -o "$OUT/$1.wasm"
}

# Every WASI feature of the JS engine off (stdio, random, clocks, http, fetch-event): the
# component imports weir:plugin/host and nothing else. (With the defaults it would import
# wasi:http, which the host does not link, and be refused at load.)
JS_PURE=(-d stdio random clocks http fetch-event)

# aot_js_build NAME DIR WORLD: the plugin compiled ahead of time. weval can read only the
# entry module's own directory (it has no --mapdir), so the plugin's directory and the SDK
# are copied into one and app.js imports the SDK from beside it (a plugin's other modules
# that import the SDK would need the same; these have none).
aot_js_build() {
  local name="$1" dir="$2" world="$3"
  local stage="$OUT/.$name.sources"
  # (Called where `set -e` does not apply: each step checked.)
  ensure_weval || return 1
  rm -rf "$stage" && mkdir -p "$stage" && cp -R "$dir"/. "$stage/" && cp sdk/js/weir-sdk.js "$stage/" || return 1
  local from="'../../../sdk/js/weir-sdk.js'"
  grep -q "$from" "$stage/app.js" || { echo "$dir/app.js does not import $from" >&2; return 1; }
  sed -i "s#$from#'./weir-sdk.js'#" "$stage/app.js" || return 1
  node "$COMPONENTIZE_JS" "$stage/app.js" --wit wit --world-name "$world" "${JS_PURE[@]}" \
    --aot --weval-bin "$WEVAL" -o "$OUT/$name.wasm"
}

js_plugin() { # NAME DIR WORLD
  build "$1" "componentize-js $LOCK_HASH, weval $WEVAL_VERSION" "$2" sdk/js wit -- aot_js_build "$1" "$2" "$3"
}

python_plugin restaurant_enricher_py plugins/python/restaurant-enricher-py enricher
python_plugin probe_py plugins/hostile/probe-py enricher
js_plugin restaurant_enricher_js plugins/js/restaurant-enricher-js enricher
js_plugin probe_js plugins/hostile/probe-js enricher
