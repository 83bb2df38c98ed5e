#!/usr/bin/env bash
# Builds callsavvy's libFuzzer targets with clang++ in build/fuzz and runs each for a bounded time on a copy
# of its seed corpus (the repository's corpus is never written). Exits non-zero when any target crashes,
# leaks, trips a sanitizer or fails to build.
#   scripts/fuzz.sh [seconds-per-target]   (default 60)
# Environment: FUZZ_BUILD_DIR (default build/fuzz), FUZZ_JOBS (build parallelism, default 2),
#              FUZZ_TARGETS (space-separated subset of the targets to run).
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build/fuzz}"
jobs="${FUZZ_JOBS:-2}"

# The main project builds the fuzzers when it knows CALLSAVVY_BUILD_FUZZERS; until then fuzz/ is its own project.
if grep -q CALLSAVVY_BUILD_FUZZERS "$root/CMakeLists.txt"; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCALLSAVVY_BUILD_FUZZERS=ON -DCALLSAVVY_BUILD_TESTS=OFF -DCALLSAVVY_BUILD_EXAMPLES=OFF \
    -DCALLSAVVY_BUILD_BENCHMARKS=OFF >/dev/null
else
  cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$jobs" --target callsavvy_fuzzers

manifest="$build/callsavvy_fuzz_targets.txt"
[[ -f "$manifest" ]] || { echo "fuzz.sh: $manifest missing" >&2; exit 2; }

status=0
summary=()
while read -r name binary seeds; do
  [[ -n "$name" ]] || continue
  if [[ -n "${FUZZ_TARGETS:-}" && " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  work="$build/fuzz-run/$name"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [[ -d "$seeds" ]]; then cp -R "$seeds/." "$work/corpus/"; fi
  echo "== $name: ${seconds}s on a copy of $(find "$work/corpus" -type f | wc -l) seeds"
  set +e
  (cd "$work" && "$binary" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log.txt" 2>&1)
  rc=$?
  set -e
  grep -E "^(#[0-9]+ +INITED|==[0-9]+==|SUMMARY|Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec)" \
    "$work/log.txt" || true
  if [[ $rc -ne 0 || -n "$(ls -A "$work/artifacts")" ]]; then
    echo "!! $name FAILED (exit $rc): see $work/log.txt and $work/artifacts/" >&2
    tail -n 40 "$work/log.txt" >&2
    status=1
  fi
  summary+=("$name: $(grep -Eo "^Done [0-9]+ runs in [0-9]+ second\(s\)" "$work/log.txt" || echo "no 'Done' line") ($(grep -Eo "average_exec_per_sec: *[0-9]+" "$work/log.txt" | grep -Eo "[0-9]+$" || echo "?") exec/s, $(find "$work/corpus" -type f | wc -l) corpus files)")
done < "$manifest"

printf '%s\n' "${summary[@]}"
exit $status
