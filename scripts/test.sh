#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script and nothing else):
#   setup            install what is missing (scripts/setup.sh)
#   gcc-release      build with g++ 12 at -O3, CMake's Release (the benchmarks too), run every test; then the quickstart example
#   clang-asan       ASan + UBSan (clang, -O1), run every test; then the quickstart example under them
#   gcc-tsan         TSan (g++, -O1), run the tests tagged [concurrency]
#   gcc-boost        the Boost.Asio build (CALLSAVVY_USE_BOOST_ASIO) with g++ at -O0 without debug info, the
#                    cheapest full build: every test, and the Boost.Beast example as one of them
#   clang-boost-asan the Boost.Asio build with clang++ under ASan + UBSan, every test
#   consumers-*      add_subdirectory, find_package and single-header consumers, with g++ and with clang++;
#                    consumers-boost: the same routes in the Boost.Asio build, with g++
#   fuzz             every fuzz target for 30 s (scripts/fuzz.sh 30)
# No clang release stage (the clang-release preset stays, for benchmarks by hand): clang's warnings (-Werror)
# are checked by clang-asan and clang-boost-asan, optimized code by gcc-release; the time it took pays for the
# two Boost.Asio stages.
# Each preset builds into its own build/<preset>, so no target is built twice; the single header's
# freshness is a CTest test of every preset. The release presets are what a user's first
# `cmake -DCMAKE_BUILD_TYPE=Release` builds; assertions run in the sanitizer builds (Debug at -O1). A failing stage does not stop the later ones (one run
# shows every failure); the script exits non-zero if any failed. Each stage prints how long it took, and the
# last line counts the CTest tests and the other stages that passed and failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
logs=build/test-logs
mkdir -p "$logs"

passed=0
failed=0
stage_times=()
failed_stages=()

# stage <name> <command...>: runs one stage, times it and counts its result. A stage that ran CTest counts
# CTest's tests (from its closing line); any other stage counts as one test.
stage() {
    local name=$1
    shift
    echo
    echo "######## $name"
    local start=$SECONDS rc=0
    "$@" 2>&1 | tee "$logs/$name.log" || rc=${PIPESTATUS[0]}
    local took=$((SECONDS - start))
    local result=passed
    [[ $rc -eq 0 ]] || { result=FAILED; failed_stages+=("$name"); }
    stage_times+=("$(printf '%-17s %5d s  %s' "$name" "$took" "$result")")
    echo "######## $name: $result in ${took} s"

    local summary
    summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$logs/$name.log" | tail -1 || true)
    if [[ -n $summary ]]; then
        local total failures
        failures=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<< "$summary")
        total=$(sed -E 's/.* tests failed out of ([0-9]+).*/\1/' <<< "$summary")
        passed=$((passed + total - failures))
        failed=$((failed + failures))
        # a stage whose tests passed but which failed after them still counts as a failure
        [[ $rc -eq 0 || $failures -gt 0 ]] || failed=$((failed + 1))
    elif [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    return 0
}

total_start=$SECONDS
stage setup bash scripts/setup.sh
if [[ ${#failed_stages[@]} -ne 0 ]]; then
    echo "setup failed; nothing else can run" >&2
    exit 1
fi
stage gcc-release cmake --workflow --preset gcc-release
stage quickstart build/gcc-release/examples/quickstart
stage clang-asan cmake --workflow --preset clang-asan
stage quickstart-asan build/clang-asan/examples/quickstart
stage gcc-tsan cmake --workflow --preset gcc-tsan
stage gcc-boost cmake --workflow --preset gcc-boost
stage clang-boost-asan cmake --workflow --preset clang-boost-asan
stage consumers-gcc bash scripts/consumers.sh g++
stage consumers-clang bash scripts/consumers.sh clang++
stage consumers-boost bash scripts/consumers.sh g++ boost
stage fuzz bash scripts/fuzz.sh 30

echo
echo "######## stage times"
printf '%s\n' "${stage_times[@]}"
printf '%-17s %5d s\n' "all stages" $((SECONDS - total_start))
if [[ ${#failed_stages[@]} -ne 0 ]]; then
    echo "failed stages: ${failed_stages[*]} (logs in $logs/)"
fi
echo "summary: $passed passed, $failed failed"
[[ $failed -eq 0 && ${#failed_stages[@]} -eq 0 ]]
