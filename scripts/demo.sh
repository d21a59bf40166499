#!/usr/bin/env bash
# The demo from a fresh clone: builds the example plugins and the weir binary, then runs
# the streaming pipeline on embedded defaults (no AWS, no Docker) with a generated
# sample of orders and prints what arrived in the lake.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh >/dev/null
cargo run --quiet -p weir -- demo "$@"
