#!/usr/bin/env bash
# Compile time of one typed call against the same TLS POST written by hand (issue 4: target <= 1.3x).
# Usage: benchmarks/compile_time/measure.sh [runs]   Prints the best of N wall times per TU and compiler.
#
# The typed call is measured both ways a program can build callsavvy: header-only (the default) and with
# CALLSAVVY_SEPARATE_COMPILATION, where the calling file compiles only the typed glue and the client's core
# is compiled once per program in the file including <callsavvy/src.hpp> (its time is shown on its own).
#
# And the single header against the modular headers: the same typed call including
# single_include/callsavvy/callsavvy.hpp (everything, as a single-header user gets it) instead of the one
# modular header it needs (<callsavvy/client.hpp>), and, for scale, including the modular umbrella
# <callsavvy/callsavvy.hpp> from include/ (the same code as the single header, in many files).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '#include <callsavvy/src.hpp>\n' >"$out/src.cpp"
sed 's|#include <callsavvy/client.hpp>|#include <callsavvy/callsavvy.hpp>|' "$here/typed_call.cpp" >"$out/typed_all.cpp"
grep -q '<callsavvy/callsavvy.hpp>' "$out/typed_all.cpp" || { echo "measure.sh: typed_call.cpp no longer includes <callsavvy/client.hpp>" >&2; exit 1; }
best() { # compiler file [extra flags...]; CALLSAVVY_INCLUDE picks include/ (default) or single_include/
    local cxx=$1 file=$2 b=999999 inc=${CALLSAVVY_INCLUDE:-$root/include}
    shift 2
    for _ in $(seq "$runs"); do
        local s e
        s=$(date +%s%N)
        "$cxx" -std=c++20 -O2 -DNDEBUG -DASIO_HAS_CO_AWAIT=1 -I"$inc" "$@" -c "$file" -o "$out/x.o"
        e=$(date +%s%N)
        local ms=$(((e - s) / 1000000))
        ((ms < b)) && b=$ms
    done
    echo "$b"
}
ratio() { awk -v t="$1" -v h="$2" 'BEGIN { printf "%.2f", t / h }'; }
printf '%-8s %10s %12s %14s %12s %9s %13s %12s %14s %14s\n' compiler "hand (ms)" "header (ms)" "separate (ms)" \
    "header/hand" "sep/hand" "src.hpp (ms)" "single (ms)" "umbrella (ms)" "single/header"
for cxx in g++ clang++; do
    h=$(best "$cxx" "$here/handwritten_post.cpp")
    t=$(best "$cxx" "$here/typed_call.cpp")
    s=$(best "$cxx" "$here/typed_call.cpp" -DCALLSAVVY_SEPARATE_COMPILATION)
    c=$(best "$cxx" "$out/src.cpp" -DCALLSAVVY_SEPARATE_COMPILATION)
    one=$(CALLSAVVY_INCLUDE=$root/single_include best "$cxx" "$out/typed_all.cpp")
    all=$(best "$cxx" "$out/typed_all.cpp")
    printf '%-8s %10d %12d %14d %12s %9s %13d %12d %14d %14s\n' "$cxx" "$h" "$t" "$s" "$(ratio "$t" "$h")" \
        "$(ratio "$s" "$h")" "$c" "$one" "$all" "$(ratio "$one" "$t")"
done
