#!/usr/bin/env bash
# The main job: installs what is missing, builds the demo (release, g++) and runs it: offline against the
# in-process mock server unless given --live (see examples/demo.cpp).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cmake --preset gcc-release > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
cmake --build --preset gcc-release --target demo
./build/gcc-release/examples/demo "$@"
