#!/usr/bin/env bash
# The webhook listener against nginx and a Beast coroutine server (target >= 0.7x nginx): the listener part
# of benchmarks/run.sh on its own. wrk POSTs a callSummary event (post.lua) over CONNECTIONS keep-alive
# connections for DURATION seconds to nginx with one worker answering a fixed 200, to listener_bench (one
# thread: verify, parse, decode, run the handler, acknowledge) and to beast_server, and prints req/s and the
# ratios to nginx.
#   benchmarks/listener/run.sh            DURATION=10 CONNECTIONS=64 PRESET=gcc-release by default
set -euo pipefail
PARTS=listener exec "$(dirname "${BASH_SOURCE[0]}")/../run.sh"
