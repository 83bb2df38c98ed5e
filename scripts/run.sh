#!/usr/bin/env bash
# The main job: installs what is missing, builds the quickstart example (release, g++) and runs it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cmake --preset gcc-release > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
cmake --build --preset gcc-release --target quickstart
./build/gcc-release/examples/quickstart "$@"
