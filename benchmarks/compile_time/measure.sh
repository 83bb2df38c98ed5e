#!/usr/bin/env bash
# Compile time of one typed call against the same TLS POST written by hand (issue: target <= 1.3x).
# Usage: benchmarks/compile_time/measure.sh [runs]   Prints the best of N wall times per TU and compiler.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
best() { # compiler file
    local b=999999
    for _ in $(seq "$runs"); do
        local s e
        s=$(date +%s%N)
        "$1" -std=c++20 -O2 -DNDEBUG -DASIO_HAS_CO_AWAIT=1 -I"$root/include" -c "$here/$2" -o "$out/x.o"
        e=$(date +%s%N)
        local ms=$(((e - s) / 1000000))
        ((ms < b)) && b=$ms
    done
    echo "$b"
}
printf '%-10s %14s %16s %7s\n' compiler "typed (ms)" "handwritten (ms)" ratio
for cxx in g++ clang++; do
    t=$(best "$cxx" typed_call.cpp)
    h=$(best "$cxx" handwritten_post.cpp)
    printf '%-10s %14d %16d %7.2f\n' "$cxx" "$t" "$h" "$(awk -v t="$t" -v h="$h" 'BEGIN { print t / h }')"
done
