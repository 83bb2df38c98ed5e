#!/usr/bin/env bash
# The webhook listener against nginx, in one run (issue 11): wrk POSTs a callSummary event over 64 keep-alive
# connections for $DURATION seconds to (1) nginx with one worker answering every POST with a fixed 200 and
# (2) benchmarks/listener_bench (one thread: verify, parse, decode, run the handler, acknowledge), and prints
# requests per second and the ratio (target >= 0.7). Installs wrk and nginx from Debian if they are missing;
# builds listener_bench from a release preset (PRESET, gcc-release by default). Everything runs on loopback.
#   benchmarks/listener/run.sh            DURATION=10 CONNECTIONS=64 THREADS=1 PRESET=gcc-release by default
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/benchmarks/listener
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
threads=${THREADS:-1}
preset=${PRESET:-gcc-release}

need=()
command -v wrk > /dev/null || need+=(wrk)
[[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
if [[ ${#need[@]} -ne 0 ]]; then
    sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi

cmake --preset "$preset" > /dev/null
cmake --build --preset "$preset" --target listener_bench > /dev/null
bench=$root/build/$preset/benchmarks/listener_bench

work=$(mktemp -d)
cleanup() {
    [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2> /dev/null || true
    [[ -n ${bench_pid:-} ]] && kill "$bench_pid" 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nginx_port=$(free_port)
cat > "$work/nginx.conf" << CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/body;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nginx_port;
        location / { return 200 ""; }
    }
}
CONF
/usr/sbin/nginx -c "$work/nginx.conf"

"$bench" > "$work/bench.out" &
bench_pid=$!
for _ in $(seq 50); do grep -q '^listening' "$work/bench.out" 2> /dev/null && break; sleep 0.1; done
listener_port=$(awk '/^listening/ {print $2}' "$work/bench.out")

run_wrk() { # url -> requests/s
    wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$here/post.lua" "$1" > "$work/wrk.out"
    if ! grep -q '^non-200 answers: 0$' "$work/wrk.out"; then
        echo "listener/run.sh: $1 answered non-200:" >&2
        cat "$work/wrk.out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out"
}
nginx_rps=$(run_wrk "http://127.0.0.1:$nginx_port/")
listener_rps=$(run_wrk "http://127.0.0.1:$listener_port/")
kill "$bench_pid"
wait "$bench_pid" || true
bench_pid=
handled=$(awk '/^handled/ {print $2}' "$work/bench.out")

echo "wrk -t$threads -c$connections -d${duration}s, POST callSummary ($(nproc) cores, $(date -u +%F))"
printf '%-40s %12s\n' "server" "requests/s"
printf '%-40s %12.0f\n' "nginx 1 worker, fixed 200" "$nginx_rps"
printf '%-40s %12.0f\n' "callsavvy listener, 1 thread" "$listener_rps"
printf 'ratio listener/nginx: %.2f (target >= 0.70); events handled by the listener: %s\n' \
    "$(awk -v a="$listener_rps" -v b="$nginx_rps" 'BEGIN { print a / b }')" "$handled"
