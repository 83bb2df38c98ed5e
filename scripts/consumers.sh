#!/usr/bin/env bash
# Builds and runs the three consumer projects of tests/consumers/ with one compiler:
#   add_subdirectory  - callsavvy's source tree added to a CMake project
#   find_package      - callsavvy installed to a fresh prefix, found with find_package(callsavvy 0.1 CONFIG REQUIRED)
#   single_header     - single_include/callsavvy/callsavvy.hpp alone, built by the README's command line
#   single_header_separate - the same header in separate-compilation mode (README "Separate compilation")
# Each consumer compiles with -Wall -Wextra -Wpedantic -Werror, so a warning in our headers fails it, and
# prints the Asio it was built on, which must be the mode asked for.
# Usage: scripts/consumers.sh <c++ compiler> [standalone|boost]      (e.g. g++ or clang++; standalone Asio
#        by default, boost: every route with CALLSAVVY_USE_BOOST_ASIO, as the README gives it)
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || ( $# -eq 2 && $2 != standalone && $2 != boost ) ]]; then
    echo "usage: $0 <c++ compiler> [standalone|boost]" >&2
    exit 2
fi
cxx=$1
mode=${2:-standalone}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$root/build/consumers/$(basename "$cxx")-$mode
warnings="-Wall -Wextra -Wpedantic -Werror"

# The single-header route is tested with the very line the README prints (compiler and warnings aside).
if [[ $mode == boost ]]; then
    readonly single_header_command='g++ -std=c++20 -I single_include -DCALLSAVVY_USE_BOOST_ASIO app.cpp -o app -lboost_json -lssl -lcrypto -pthread'
    readonly separate_command='g++ -std=c++20 -I single_include -DCALLSAVVY_USE_BOOST_ASIO -DCALLSAVVY_SEPARATE_COMPILATION app.cpp src.cpp -o app -lboost_json -lssl -lcrypto -pthread'
    readonly cmake_mode=-DCALLSAVVY_USE_BOOST_ASIO=ON
    readonly expected="on Boost.Asio"
else
    readonly single_header_command='g++ -std=c++20 -I single_include -DASIO_HAS_CO_AWAIT=1 app.cpp -o app -lboost_json -lssl -lcrypto -pthread'
    readonly separate_command='g++ -std=c++20 -I single_include -DASIO_HAS_CO_AWAIT=1 -DCALLSAVVY_SEPARATE_COMPILATION app.cpp src.cpp -o app -lboost_json -lssl -lcrypto -pthread'
    readonly cmake_mode=-DCALLSAVVY_USE_BOOST_ASIO=OFF
    readonly expected="on standalone Asio"
fi
for line in "$single_header_command" "$separate_command"; do
    if ! grep -qF -- "$line" "$root/README.md"; then
        echo "consumers.sh: README.md no longer shows a single-header command this script tests:" >&2
        echo "  $line" >&2
        exit 1
    fi
done

rm -rf "$work"
mkdir -p "$work"
cmake_quiet() { cmake "$@" > "$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; return 1; }; }
# run_app <program>: runs a consumer and checks that it was built on the Asio of this mode.
run_app() {
    local out
    out=$("$@")
    echo "$out"
    if ! grep -qF -- "$expected" <<< "$out"; then
        echo "consumers.sh: the consumer was not built $expected" >&2
        return 1
    fi
}

echo "== consumer add_subdirectory ($cxx, $mode)"
cmake_quiet -S "$root/tests/consumers/add_subdirectory" -B "$work/add_subdirectory" -G Ninja \
    -DCMAKE_CXX_COMPILER="$cxx" -DCALLSAVVY_SOURCE_DIR="$root" "$cmake_mode"
cmake --build "$work/add_subdirectory"
run_app "$work/add_subdirectory/app"

echo "== consumer find_package ($cxx, $mode)"
# Installing needs no compiler work (the library is header-only); tests and examples stay off.
cmake_quiet -S "$root" -B "$work/install-build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
    -DCALLSAVVY_BUILD_TESTS=OFF -DCALLSAVVY_BUILD_EXAMPLES=OFF -DCALLSAVVY_BUILD_BENCHMARKS=OFF -DCALLSAVVY_BUILD_TOOLS=OFF \
    -DCALLSAVVY_INSTALL=ON "$cmake_mode"
cmake_quiet --install "$work/install-build" --prefix "$work/prefix"
cmake_quiet -S "$root/tests/consumers/find_package" -B "$work/find_package" -G Ninja \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$work/prefix"
cmake --build "$work/find_package"
run_app "$work/find_package/app"

# A single-header consumer: tests/consumers/<name>/ copied beside the single header (main.cpp as app.cpp,
# as the README's line names it), built by `command` with this compiler and warnings, and run.
single_header_consumer() { # name command
    local name=$1 dir=$work/$1
    echo "== consumer $name ($cxx, $mode)"
    mkdir -p "$dir"
    cp "$root/tests/consumers/$name/"*.cpp "$dir/"
    mv "$dir/main.cpp" "$dir/app.cpp"
    ln -sfn "$root/single_include" "$dir/single_include"
    local line=${2/#g++/$cxx $warnings}
    echo "$line"
    (cd "$dir" && $line && run_app ./app)
}
single_header_consumer single_header "$single_header_command"
single_header_consumer single_header_separate "$separate_command"
