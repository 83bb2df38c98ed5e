#!/usr/bin/env bash
# callsavvy against what its users would pick instead, in one run on loopback, printing req/s and ratios.
# Not part of the test suite. What it does (PARTS selects: client listener limiter compile memory, all by
# default):
#   client    nginx (one worker) answers a fixed getSummary envelope over plain HTTP and TLS (a throwaway CA
#             and certificate for 127.0.0.1); wrk, libcurl multi, a Beast coroutine client, cpp-httplib and
#             callsavvy's client_bench each POST getSummary over CONNECTIONS keep-alive connections for
#             DURATION s, plain then TLS; one table of req/s, TLS/plain and the ratios to wrk and libcurl.
#   listener  wrk POSTs a callSummary event to nginx (fixed 200), callsavvy's listener_bench and the Beast
#             coroutine server beast_server (Boost.JSON parse), ratios to nginx.
#   limiter   limiter_bench and a short rate_bench, their headline lines.
#   compile   compile_time/measure.sh 1 (typed call vs hand-written; single header vs modular headers).
#   memory    mem_bench's headline, when that target exists.
# Installs what is missing from Debian (wrk nginx-light libcurl4-openssl-dev libcpp-httplib-dev
# libboost1.81-dev), builds from a release preset (PRESET, gcc-release by default). Takes about 6 to 8
# minutes on 2 cores with DURATION=10.
#   benchmarks/run.sh        DURATION=10 CONNECTIONS=64 PRESET=gcc-release PARTS="client listener ..." by default
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/benchmarks
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
preset=${PRESET:-gcc-release}
parts=" ${PARTS:-client listener limiter compile memory} "
started=$(date +%s)
part() { [[ $parts == *" $1 "* ]]; }
say() { printf '%s\n' "$*" >&2; }

# --- what is needed, from Debian -------------------------------------------------------------------------------
need=()
installed() { dpkg-query -W -f='${Status}' "$1" 2> /dev/null | grep -q 'install ok installed'; }
for p in wrk nginx-light libcurl4-openssl-dev libcpp-httplib-dev libboost1.81-dev; do
    installed "$p" || need+=("$p")
done
if [[ ${#need[@]} -ne 0 ]]; then
    say "installing ${need[*]}"
    sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null ||
        { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
            --no-install-recommends "${need[@]}" > /dev/null; }
fi

# --- build ----------------------------------------------------------------------------------------------------
build=$root/build/$preset
cmake --preset "$preset" > /dev/null
known=$(cmake --build "$build" --target help 2> /dev/null | sed -n 's/^\([A-Za-z0-9_]*\): .*/\1/p')
has_target() { grep -qx "$1" <<< "$known"; }
targets=()
want() { for t; do if has_target "$t"; then targets+=("$t"); else say "no target $t in this tree: its row is left out"; fi; done; }
part client && want curl_multi_bench beast_client_bench httplib_bench client_bench
part listener && want listener_bench beast_server
part limiter && want limiter_bench rate_bench
if part memory && has_target mem_bench; then targets+=(mem_bench); fi
if [[ ${#targets[@]} -ne 0 ]]; then
    say "building ${targets[*]} ($preset)"
    cmake --build "$build" --target "${targets[@]}" > "$build/run-sh-build.log" 2>&1 ||
        { tail -40 "$build/run-sh-build.log" >&2; exit 1; }
fi
built() { [[ " ${targets[*]} " == *" $1 "* ]]; }
bin=$build/benchmarks

# --- servers: nginx with one worker, plain and TLS; a throwaway CA ------------------------------------------------
work=$(mktemp -d)
pids=()
cleanup() {
    [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2> /dev/null || true
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=callsavvy bench CA" \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2> /dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$work/server.key" -out "$work/server.csr" 2> /dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
    > "$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
    -extfile "$work/server.ext" -out "$work/server.pem" 2> /dev/null

envelope=$(tr -d '\n' < "$here/get_summary.json")
plain_port=$(free_port)
tls_port=$(free_port)
ack_port=$(free_port)
cat > "$work/nginx.conf" << CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/body;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$plain_port;
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate $work/server.pem;
        ssl_certificate_key $work/server.key;
        location / { default_type application/json; return 200 '$envelope'; }
    }
    server {
        listen 127.0.0.1:$ack_port;
        location / { return 200 ""; }
    }
}
CONF
/usr/sbin/nginx -c "$work/nginx.conf"

run_wrk() { # script url -> requests/s, or nothing (and the reason on stderr)
    if ! wrk -t1 -c"$connections" -d"${duration}s" -s "$1" "$2" > "$work/wrk.out" 2>&1 ||
        ! grep -q '^non-200 answers: 0$' "$work/wrk.out" || grep -q '^  Socket errors' "$work/wrk.out"; then
        say "wrk against $2 failed or saw errors:"
        cat "$work/wrk.out" >&2
        return 0
    fi
    awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out"
}
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
num() { [[ -n ${1:-} ]] && printf '%.0f' "$1" || printf 'FAILED'; }

# --- the client table -------------------------------------------------------------------------------------------
if part client; then
    plain_url=http://127.0.0.1:$plain_port/v1/getSummary
    tls_url=https://127.0.0.1:$tls_port/v1/getSummary
    rows=(wrk)
    declare -A label=([wrk]="wrk -t1 (C, 1 thread)" [curl_multi_bench]="libcurl multi, 64 handles, 1 thread"
        [beast_client_bench]="Beast + Asio coroutines, 1 thread" [httplib_bench]="cpp-httplib, blocking: 64 threads"
        [client_bench]="callsavvy client_bench")
    declare -A plain tls
    for c in curl_multi_bench beast_client_bench httplib_bench client_bench; do built "$c" && rows+=("$c"); done
    run_client() { # program url -> requests/s, or nothing (and the reason on stderr)
        local out
        if ! out=$(timeout $((duration + 60)) "$bin/$1" --url "$2" --connections "$connections" --duration "$duration" \
            --ca "$work/ca.pem" 2> "$work/client.err"); then
            say "$1 $2 failed (exit status $?): $out $(head -c 600 "$work/client.err")"
            return 0
        fi
        local rps errors
        read -r _ rps _ errors <<< "$out"
        if [[ $errors != 0 ]]; then
            say "$1 $2: $errors errors, the row is marked FAILED: $(head -c 600 "$work/client.err")"
            return 0
        fi
        echo "$rps"
    }
    for c in "${rows[@]}"; do
        say "client: $c, plain and TLS, ${duration}s each"
        if [[ $c == wrk ]]; then
            plain[$c]=$(run_wrk "$here/get_summary.lua" "$plain_url")
            tls[$c]=$(run_wrk "$here/get_summary.lua" "$tls_url")
        else
            plain[$c]=$(run_client "$c" "$plain_url")
            tls[$c]=$(run_client "$c" "$tls_url")
        fi
    done
    client_table=$(
        echo "### Client: POST getSummary, nginx 1 worker answering a fixed ${#envelope}-byte envelope, $connections keep-alive connections, ${duration} s each"
        echo
        echo "| client | plain req/s | TLS req/s | TLS/plain | plain ÷ wrk | TLS ÷ wrk | plain ÷ libcurl | TLS ÷ libcurl |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        for c in "${rows[@]}"; do
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "${label[$c]}" "$(num "${plain[$c]}")" \
                "$(num "${tls[$c]}")" "$(ratio "${tls[$c]}" "${plain[$c]}")" \
                "$(ratio "${plain[$c]}" "${plain[wrk]}")" "$(ratio "${tls[$c]}" "${tls[wrk]}")" \
                "$(ratio "${plain[$c]}" "${plain[curl_multi_bench]:-}")" "$(ratio "${tls[$c]}" "${tls[curl_multi_bench]:-}")"
        done
        echo
        if built client_bench; then
            printf 'callsavvy: %s× wrk plain (target ≥ 0.8), %s× wrk TLS (≥ 0.7), TLS/plain %s (≥ 0.8), %s× / %s× libcurl multi plain / TLS (≥ 2)\n' \
                "$(ratio "${plain[client_bench]}" "${plain[wrk]}")" "$(ratio "${tls[client_bench]}" "${tls[wrk]}")" \
                "$(ratio "${tls[client_bench]}" "${plain[client_bench]}")" \
                "$(ratio "${plain[client_bench]}" "${plain[curl_multi_bench]:-}")" \
                "$(ratio "${tls[client_bench]}" "${tls[curl_multi_bench]:-}")"
        else
            echo "callsavvy: no client_bench target in this tree, no row"
        fi
        echo "wrk does not verify the server's certificate; every other client verifies it against the run's CA, with 127.0.0.1 checked."
    )
    printf '\n%s\n' "$client_table"
fi

# --- the listener table -----------------------------------------------------------------------------------------
start_server() { # program: sets port (the program prints "listening <port>")
    "$bin/$1" > "$work/$1.out" &
    pids+=($!)
    for _ in $(seq 100); do grep -q '^listening' "$work/$1.out" 2> /dev/null && break; sleep 0.1; done
    port=$(awk '/^listening/ {print $2}' "$work/$1.out")
}
stop_server() { # program: stops it; its last line ("handled ...") goes to handled[program]
    kill "${pids[-1]}" 2> /dev/null || true
    wait "${pids[-1]}" 2> /dev/null || true
    unset 'pids[-1]'
    handled[$1]=$(tail -1 "$work/$1.out")
}
if part listener; then
    declare -A srps handled
    say "listener: nginx, listener_bench, beast_server, ${duration}s each"
    srps[nginx]=$(run_wrk "$here/listener/post.lua" "http://127.0.0.1:$ack_port/")
    for s in listener_bench beast_server; do
        built "$s" || continue
        start_server "$s"
        srps[$s]=$(run_wrk "$here/listener/post.lua" "http://127.0.0.1:$port/")
        stop_server "$s"
    done
    listener_table=$(
        echo "### Webhook listener: wrk -t1 -c$connections POSTing a callSummary event, ${duration} s each"
        echo
        echo "| server | req/s | ÷ nginx |"
        echo "|---|---:|---:|"
        printf '| nginx 1 worker, fixed 200 | %s | 1.00 |\n' "$(num "${srps[nginx]}")"
        built listener_bench && printf '| callsavvy listener, 1 thread (verify, parse, typed decode, handler) | %s | %s |\n' \
            "$(num "${srps[listener_bench]}")" "$(ratio "${srps[listener_bench]}" "${srps[nginx]}")"
        built beast_server && printf '| Beast coroutine server, 1 thread (boost::json::parse, read "event") | %s | %s |\n' \
            "$(num "${srps[beast_server]}")" "$(ratio "${srps[beast_server]}" "${srps[nginx]}")"
        echo
        echo "target: listener ≥ 0.70× nginx. listener_bench: ${handled[listener_bench]:-not run}; beast_server: ${handled[beast_server]:-not run}"
    )
    printf '\n%s\n' "$listener_table"
fi

# --- the limiter -----------------------------------------------------------------------------------------------
if part limiter; then
    say "limiter: limiter_bench, rate_bench 600 1000 20"
    echo
    echo "### Limiter"
    echo
    if built limiter_bench; then
        "$bin/limiter_bench" > "$work/limiter.out" 2>&1 || say "limiter_bench exited non-zero"
        sed 's/^/    /' "$work/limiter.out"
    fi
    if built rate_bench; then
        # 600 calls in 1 s windows: 5 windows to wait, about 5 s.
        "$bin/rate_bench" 600 1000 20 > "$work/rate.out" 2>&1 || say "rate_bench exited non-zero (see below)"
        sed 's/^/    /' "$work/rate.out"
    fi
fi

# --- compile time ----------------------------------------------------------------------------------------------
if part compile; then
    say "compile time: compile_time/measure.sh 1"
    echo
    echo "### Compile time (ms, one run each)"
    echo
    "$here/compile_time/measure.sh" 1 | sed 's/^/    /'
fi

# --- memory ----------------------------------------------------------------------------------------------------
if part memory; then
    echo
    echo "### Memory per in-flight call"
    echo
    if built mem_bench; then
        say "memory: mem_bench"
        timeout 300 "$bin/mem_bench" > "$work/mem.out" 2>&1 || say "mem_bench exited non-zero"
        tail -5 "$work/mem.out" | sed 's/^/    /'
    else
        echo "    no mem_bench target in this tree"
    fi
fi

echo
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u '+%F %H:%M UTC'),"\
    "preset $preset, load average before the end: $(cut -d' ' -f1-3 /proc/loadavg); the whole run took $(( $(date +%s) - started )) s"
