#!/usr/bin/env bash
# Installs, from Debian 12's own repositories, whatever callsavvy needs to build and test that is missing.
# Idempotent and silent when everything is present; `apt-get update` runs only when something is missing.
set -euo pipefail

packages=(
    g++                 # g++ 12 on Debian 12, as the command `g++` the presets name
    clang               # clang++ 14 on Debian 12, as the command `clang++`
    clang-14
    libclang-rt-14-dev  # clang's sanitizer and libFuzzer runtimes
    clang-format-14     # scripts/format.sh, scripts/lint.sh
    clang-tidy-14       # scripts/lint.sh
    cmake               # 3.25: presets with workflows
    ninja-build
    libasio-dev         # standalone Asio 1.22
    libboost-json1.81-dev
    libboost1.81-dev    # Boost.Describe, Boost headers, Boost's CMake package files
    libboost-system1.81-dev # Boost.System's CMake package, for the Boost.Asio build (Boost.Asio, Beast: libboost1.81-dev)
    libssl-dev          # OpenSSL 3
    openssl             # the command line tool, for test certificates
    catch2              # Catch2 2.13
    libcli11-dev        # the command line tool's argument parser
    tinyproxy           # a real CONNECT proxy for the proxy tests
    redis-server        # the shared rate-limit store's tests start one (tests/net/redis_store_test.cpp)
    python3             # scripts/amalgamate.py
    libcurl4-openssl-dev  # benchmarks: curl_multi_bench (built only when found)
    libcpp-httplib-dev  # benchmarks: httplib_bench (built only when found)
)

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo > /dev/null || { echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
