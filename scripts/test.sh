#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script and nothing else):
#   setup        install what is missing (scripts/setup.sh)
#   gcc-debug    build with g++ 12, run every test and the quickstart example
#   clang-debug  build with clang++ 14, run every test
#   clang-asan   ASan + UBSan (clang, -O1), run every test and the quickstart example
#   gcc-tsan     TSan (g++, -O1), run the tests tagged [concurrency]
#   consumers    add_subdirectory, find_package and single-header consumers, with g++ and with clang++
#   fuzz         the fuzz targets, 60 s in all (scripts/fuzz.sh)
# Each preset builds into its own build/<preset>, so no target is built twice. The single header's
# freshness is a CTest test of every preset. Each stage prints how long it took.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

stage_times=()
stage() {
    local name=$1
    shift
    echo
    echo "######## $name"
    local start=$SECONDS
    "$@"
    local took=$((SECONDS - start))
    stage_times+=("$(printf '%-12s %4d s' "$name" "$took")")
    echo "######## $name: ${took} s"
}

# configure + build + test of one preset; the workflow keeps the three steps in CMakePresets.json.
preset() {
    cmake --workflow --preset "$1"
}

run_quickstart() {
    "build/$1/examples/quickstart"
}

total_start=$SECONDS
stage setup bash scripts/setup.sh
stage gcc-debug preset gcc-debug
stage quickstart run_quickstart gcc-debug
stage clang-debug preset clang-debug
stage clang-asan preset clang-asan
stage quickstart-asan run_quickstart clang-asan
stage gcc-tsan preset gcc-tsan
stage consumers-gcc bash scripts/consumers.sh g++
stage consumers-clang bash scripts/consumers.sh clang++
if [[ -f scripts/fuzz.sh ]]; then
    stage fuzz bash scripts/fuzz.sh 60
fi

echo
echo "######## stage times"
printf '%s\n' "${stage_times[@]}"
printf '%-12s %4d s\n' total $((SECONDS - total_start))
