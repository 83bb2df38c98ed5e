#!/usr/bin/env bash
# Rewrites README.md's endpoint table (between <!-- endpoints:begin --> and <!-- endpoints:end -->) from the
# catalog, via `callsavvy resources --markdown`. The CTest test readme_endpoint_table_is_current fails until
# this has been run after a catalog change.
#   scripts/endpoint_table.sh [path/to/callsavvy]   (default: build/gcc-release/tools/callsavvy/callsavvy)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli=${1:-$root/build/gcc-release/tools/callsavvy/callsavvy}
if [[ ! -x $cli ]]; then
    echo "endpoint_table.sh: $cli is not built; build the callsavvy_cli target or pass the tool's path" >&2
    exit 2
fi
cmake -DCLI="$cli" -DREADME="$root/README.md" -DFIX=ON -P "$root/cmake/check-endpoint-table.cmake"
